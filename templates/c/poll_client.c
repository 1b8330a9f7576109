{%- include "c/header_comment.c" %}

{% if v.windows %}
{% include "winsock/prelude.c" %}
{%- else %}
{% include "c/prelude.c" %}
{%- endif %}
{% include "c/handler_slot.c" %}
{{ v.implementation_open }}
{%- if v.windows %}
{% include "winsock/runtime.c" %}
{%- else %}
{% include "c/runtime.c" %}
{%- endif %}
{%- if v.tcp %}
{% include "c/tcp_conn.c" %}
{%- if v.windows %}
{% include "winsock/conn_socket.c" %}
{%- else %}
{% include "c/conn_socket.c" %}
{%- endif %}
{% include "c/conn_readiness.c" %}
{%- else %}
{% include "c/udp_client_conn.c" %}
{%- endif %}

{% include "c/timers.c" %}
{% include "c/client_runtime.c" %}
{{ v.runtime_close }}

/* ---------------------------------------------------------------------------------------------
 * The {% if v.windows %}WSAPoll{% else %}poll{% endif %} loop of a client, level-triggered. Slot 0 is the stop {% if v.windows %}socket{% else %}pipe{% endif %};
 * member i of the pool owns slot i + 1 for good: its connecting socket (watched for POLLOUT,
 * the end of the connect; a refused one may report POLLHUP or POLLERR instead), then its
 * connection (asking only for what it can use now), and NO_SOCKET (ignored) while it backs
 * off or is done.
 */

enum { STOP_SLOT = 0, FIRST_MEMBER_SLOT = 1 };

struct loop {
    poll_slot *fds;
    int more;                /* some connection spent its budget with work left */
    unsigned char *scratch;
    struct timer_heap timers;
{%- if v.tcp %}
    struct chunk_cache chunks;
{%- endif %}
    struct {{ v.name }}_worker worker;
    struct member *members;  /* the pool */
    unsigned members_left;   /* not done yet */
    struct member_deadlines members_due; /* connect timeouts and backoff ends */
};

static int loop_watch_connecting(struct loop *lp, struct member *m)
{
    lp->fds[FIRST_MEMBER_SLOT + m->index].fd = m->fd;
    lp->fds[FIRST_MEMBER_SLOT + m->index].events = POLLOUT;
    return 0;
}

static void loop_unwatch_connecting(struct loop *lp, struct member *m)
{
    lp->fds[FIRST_MEMBER_SLOT + m->index].fd = NO_SOCKET;
}

{% include "c/client_pool.c" %}

static void loop_close(struct loop *lp, Conn *c, uint64_t now)
{
    struct member *m = &lp->members[c->member];
    lp->fds[c->slot].fd = NO_SOCKET;
    timers_remove(&lp->timers, c);
    conn_release(c); /* on_close runs here */
    member_connection_ended(m, c, now);
    free(c);
    loop_member_settled(lp, m);
}

static void loop_service(struct loop *lp, Conn *c, uint64_t now)
{
    int status = conn_service(c, lp->scratch, now);
    if (status == CONN_DONE) {
        loop_close(lp, c, now);
        return;
    }
    c->more = status == CONN_MORE;
    lp->more |= c->more;
    lp->fds[c->slot].events = conn_poll_events(c);
    timers_schedule(&lp->timers, c);
}

/* The connecting socket became writable (or failed): the connect finished, one way or the other. */
static void loop_connected(struct loop *lp, struct member *m, uint64_t now)
{
    int error = member_connect_result(m);
    Conn *c;
    c = error == 0 ? conn_open(m->fd, member_target(m), &lp->worker, 0, {% if v.tcp %}&lp->chunks, {% endif %}now) : NULL;
    if (c == NULL) {
        loop_connect_failed(lp, m, error != 0 ? error : ENOMEM, now);
        return;
    }
    c->member = m->index;
    c->slot = FIRST_MEMBER_SLOT + m->index;
    m->fd = NO_SOCKET;
    m->conn = c;
    m->state = MEMBER_OPEN;
    lp->fds[c->slot].fd = c->fd;
    conn_start(c);
    loop_service(lp, c, now); /* sends what on_open queued */
}

/* Runs until every member of the pool is done (0), a stop (0) or a failed wait (-1). */
static int loop_run(struct loop *lp)
{
    unsigned long count = FIRST_MEMBER_SLOT + command_line.connections;
    uint64_t now = now_ms();
    while (lp->members_left > 0) {
        unsigned i;
        size_t budget;
        Conn *due;
        if (poll_slots(lp->fds, count,
                       loop_members_timeout(lp, lp->more ? 0 : timers_timeout(&lp->timers, now),
                                            now)) < 0) {
{%- if v.windows %}
            log_socket_error("WSAPoll");
{%- else %}
            log_errno("poll");
{%- endif %}
            return -1;
        }
        now = now_ms();
        if (lp->fds[STOP_SLOT].revents != 0) {
            return 0;
        }
        lp->more = 0;
        for (i = 0; i < command_line.connections; i++) {
            struct member *m = &lp->members[i];
            poll_slot *slot = &lp->fds[FIRST_MEMBER_SLOT + i];
            if (slot->fd == NO_SOCKET) {
                continue;
            }
            if (m->state == MEMBER_CONNECTING && slot->revents != 0) {
                loop_connected(lp, m, now);
            } else if (m->state == MEMBER_OPEN && (slot->revents != 0 || m->conn->more)) {
                loop_service(lp, m->conn, now);
            }
            slot->revents = 0;
        }
        budget = lp->timers.len;
        while (budget-- > 0 && (due = timers_next_due(&lp->timers, now)) != NULL) {
            conn_expire(due, now);
            loop_service(lp, due, now);
        }
        loop_members_due(lp, now);
    }
    return 0;
}

/* Opens the pool and runs the loop; on a stop every connection ends with reason stopping. */
static int loop_main(void)
{
    struct loop lp;
    unsigned i;
    int status = -1;
    uint64_t now = now_ms();

    memset(&lp, 0, sizeof lp);
    lp.fds = calloc(FIRST_MEMBER_SLOT + command_line.connections, sizeof *lp.fds);
    lp.members = calloc(command_line.connections, sizeof *lp.members);
    lp.scratch = malloc({{ v.upper }}_BUFFER_SIZE);
    if (lp.fds == NULL || lp.members == NULL || lp.scratch == NULL
        || member_deadlines_init(&lp.members_due, command_line.connections) != 0
        || timers_init(&lp.timers) != 0) {
        log_errno("malloc");
        goto out;
    }
    lp.fds[STOP_SLOT].fd = stop_watch();
    lp.fds[STOP_SLOT].events = POLLIN;
    if (!worker_start(&lp.worker, 0)) {
        goto out;
    }
    lp.members_left = command_line.connections;
    for (i = 0; i < command_line.connections; i++) {
        member_init(&lp.members[i], i);
        lp.fds[FIRST_MEMBER_SLOT + i].fd = NO_SOCKET;
    }
    for (i = 0; i < command_line.connections; i++) {
        loop_connect(&lp, &lp.members[i], now);
    }
    status = loop_run(&lp);
    for (i = 0; i < command_line.connections; i++) {
        struct member *m = &lp.members[i];
        if (m->state == MEMBER_OPEN) {
            conn_end(m->conn, {{ v.upper }}_CLOSE_STOPPING, 0);
            loop_close(&lp, m->conn, now_ms());
        }
        if (m->fd != NO_SOCKET) {
            close_socket(m->fd);
        }
    }
    {{ v.name }}_on_worker_stop(&lp.worker);
out:
    members_release(lp.members);
    free(lp.members);
    free(lp.members_due.items);
    free(lp.fds);
    free(lp.timers.items);
{%- if v.tcp %}
    chunk_cache_drain(&lp.chunks);
{%- endif %}
    free(lp.scratch);
    return status;
}
{%- if v.windows %}
{% include "winsock/client_main.c" %}
{%- else %}
{% include "c/client_main.c" %}
{%- endif %}
