
/* ---------------------------------------------------------------------------------------------
 * The pool's connect attempts, the same in every event loop. The loop provides `members`,
 * `members_left` and `members_due` (made by member_deadlines_init), and watches connecting
 * sockets with loop_watch_connecting() / loop_unwatch_connecting().
 */

static int member_deadlines_init(struct member_deadlines *d, unsigned members)
{
    d->len = 0;
    d->cap = 2u * (size_t)members + 1;
    d->items = calloc(d->cap, sizeof *d->items);
    return d->items != NULL ? 0 : -1;
}

static int member_due_before(const struct member_due *a, const struct member_due *b)
{
    return a->at < b->at;
}

static void member_deadlines_sift_down(struct member_deadlines *d, size_t i)
{
    for (;;) {
        size_t least = i, left = 2 * i + 1, right = left + 1;
        struct member_due swap;
        if (left < d->len && member_due_before(&d->items[left], &d->items[least])) {
            least = left;
        }
        if (right < d->len && member_due_before(&d->items[right], &d->items[least])) {
            least = right;
        }
        if (least == i) {
            return;
        }
        swap = d->items[i];
        d->items[i] = d->items[least];
        d->items[least] = swap;
        i = least;
    }
}

/* The entry is its member's last filing, and the member still waits for that moment. */
static int member_due_live(const struct member *members, const struct member_due *due)
{
    const struct member *m = &members[due->member];
    return due->filing == m->deadlines_filed
           && (m->state == MEMBER_CONNECTING || m->state == MEMBER_WAITING)
           && m->deadline_ms == due->at;
}

/* Files the member's deadline, making any earlier filing of it stale; when the heap is full
 * the stale entries go first (see struct member_deadlines: that always makes room). */
static void member_deadlines_push(struct member_deadlines *d, struct member *members,
                                  unsigned member)
{
    struct member *m = &members[member];
    size_t i;
    if (d->len == d->cap) {
        size_t kept = 0;
        for (i = 0; i < d->len; i++) {
            if (member_due_live(members, &d->items[i])) {
                d->items[kept++] = d->items[i];
            }
        }
        d->len = kept;
        for (i = d->len / 2; i-- > 0;) {
            member_deadlines_sift_down(d, i);
        }
    }
    i = d->len++;
    d->items[i].at = m->deadline_ms;
    d->items[i].member = m->index;
    d->items[i].filing = ++m->deadlines_filed;
    while (i > 0 && member_due_before(&d->items[i], &d->items[(i - 1) / 2])) {
        struct member_due swap = d->items[i];
        d->items[i] = d->items[(i - 1) / 2];
        d->items[(i - 1) / 2] = swap;
        i = (i - 1) / 2;
    }
}

static void member_deadlines_pop(struct member_deadlines *d)
{
    d->items[0] = d->items[--d->len];
    member_deadlines_sift_down(d, 0);
}

/* Files the member's next deadline, or counts it out when it is done. */
static void loop_member_settled(struct loop *lp, struct member *m)
{
    if (m->state == MEMBER_DONE) {
        lp->members_left--;
    } else if (m->state != MEMBER_OPEN && m->deadline_ms != NO_DEADLINE) {
        member_deadlines_push(&lp->members_due, lp->members, m->index);
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

/* Connect timeouts and ended backoffs, in deadline order. */
static void loop_members_due(struct loop *lp, uint64_t now)
{
    struct member_deadlines *d = &lp->members_due;
    while (d->len > 0 && d->items[0].at <= now) {
        struct member_due due = d->items[0];
        struct member *m = &lp->members[due.member];
        member_deadlines_pop(d);
        if (!member_due_live(lp->members, &due)) {
            continue; /* stale: the member connected, or filed a later deadline */
        }
        if (m->state == MEMBER_CONNECTING) {
            loop_connect_failed(lp, m, SOCKET_TIMED_OUT, now);
        } else {
            loop_connect(lp, m, now);
        }
    }
}

/* How long the loop may sleep given its own timeout and the pool's next deadline (a stale one
 * on top only wakes it early, to skip it). */
static int loop_members_timeout(const struct loop *lp, int timeout, uint64_t now)
{
    int until_due;
    uint64_t due;
    if (lp->members_due.len == 0) {
        return timeout;
    }
    due = lp->members_due.items[0].at;
    until_due = due > now ? (int)(due - now) : 0;
    return timeout < 0 || until_due < timeout ? until_due : timeout;
}
