
/* ---------------------------------------------------------------------------------------------
 * The pool's connect attempts, the same in every event loop. The loop provides `members`,
 * `members_left` and `members_due_ms`, and watches connecting sockets with
 * loop_watch_connecting() / loop_unwatch_connecting().
 */

/* Files the member's next deadline, or counts it out when it is done. */
static void loop_member_settled(struct loop *lp, struct member *m)
{
    if (m->state == MEMBER_DONE) {
        lp->members_left--;
    } else if (m->state != MEMBER_OPEN && m->deadline_ms < lp->members_due_ms) {
        lp->members_due_ms = m->deadline_ms;
    }
}

/* Starts an attempt at the member's current address, moving on to the next address when a
 * connect fails at once; when none is left the attempt has failed. A new attempt (at the
 * first address) resolves the host first. */
static void loop_connect(struct loop *lp, struct member *m, uint64_t now)
{
    if (m->address == 0 && member_resolve(m) != 0) {
        member_attempt_failed(m, now);
        loop_member_settled(lp, m);
        return;
    }
    while (m->address < m->target_count) {
{%- if v.completion %}
        /* Only the socket: loop_watch_connecting() starts the connect ({% if v.uses_iocp %}ConnectEx{% else %}in the ring{% endif %}). */
        if (member_open(m, now) == 0) {
{%- else %}
        if (member_connect(m, now) == 0) {
{%- endif %}
            if (loop_watch_connecting(lp, m) == 0) {
                loop_member_settled(lp, m);
                return;
            }
            member_note_error(m, "{% if v.completion %}connect{% else %}watching a connect to{% endif %}", socket_error());
            close_socket(m->fd);
            m->fd = NO_SOCKET;
        } else {
            member_note_error(m, "connect", socket_error());
        }
        m->address++;
    }
    member_attempt_failed(m, now);
    loop_member_settled(lp, m);
}

/* The connect to the current address failed (error): the next address, or the attempt failed. */
static void loop_connect_failed(struct loop *lp, struct member *m, int error, uint64_t now)
{
    member_note_error(m, "connect", error);
    loop_unwatch_connecting(lp, m);
    close_socket(m->fd);
    m->fd = NO_SOCKET;
    m->address++;
    loop_connect(lp, m, now);
}

/* Connect timeouts and ended backoffs; also finds the next such moment. */
static void loop_members_due(struct loop *lp, uint64_t now)
{
    unsigned i;
    if (lp->members_due_ms > now) {
        return;
    }
    lp->members_due_ms = NO_DEADLINE;
    for (i = 0; i < command_line.connections; i++) {
        struct member *m = &lp->members[i];
        if (m->state == MEMBER_CONNECTING && m->deadline_ms <= now) {
            loop_connect_failed(lp, m, SOCKET_TIMED_OUT, now);
        } else if (m->state == MEMBER_WAITING && m->deadline_ms <= now) {
            loop_connect(lp, m, now);
        } else if (m->state == MEMBER_CONNECTING || m->state == MEMBER_WAITING) {
            loop_member_settled(lp, m);
        }
    }
}

/* How long the loop may sleep given its own timeout and the pool's next deadline. */
static int loop_members_timeout(const struct loop *lp, int timeout, uint64_t now)
{
    int until_due;
    if (lp->members_due_ms == NO_DEADLINE) {
        return timeout;
    }
    until_due = lp->members_due_ms > now ? (int)(lp->members_due_ms - now) : 0;
    return timeout < 0 || until_due < timeout ? until_due : timeout;
}
