{%- include "c/header_comment.c" %}

{% include "winsock/prelude.c" %}
{% include "c/handler_slot.c" %}
{{ v.implementation_open }}
{% include "winsock/runtime.c" %}
{%- if v.tcp %}
{% include "c/tcp_conn.c" %}
{% include "winsock/conn_socket.c" %}
{% include "c/conn_readiness.c" %}

{% include "c/timers.c" %}
{{ v.runtime_close }}

/* ---------------------------------------------------------------------------------------------
 * The WSAPoll loop, level-triggered: slot 0 is the stop socket, slot 1 the listener (shared by
 * every worker), and each connection's slot asks only for what it can use now (POLLOUT only
 * while output waits).
 */

enum { STOP_SLOT = 0, LISTEN_SLOT = 1, FIRST_CONN_SLOT = 2 };

struct loop {
    WSAPOLLFD *fds;      /* fds[i] belongs to conns[i] from FIRST_CONN_SLOT on */
    Conn **conns;
    ULONG count;
    uint64_t accept_resume_ms; /* when out of sockets: accept again from then; 0 = not waiting */
    unsigned index;
    int more;            /* some connection spent its budget with work left */
    unsigned char *scratch;
    struct timer_heap timers;
    struct chunk_cache chunks;
    struct {{ v.name }}_worker worker;
};

/* Closes the connection in slot i by moving the last slot into it. */
static void loop_close(struct loop *lp, ULONG i)
{
    Conn *c = lp->conns[i];
    timers_remove(&lp->timers, c);
    conn_release(c);
    free(c);
    lp->count--;
    if (i < lp->count) {
        lp->fds[i] = lp->fds[lp->count];
        lp->conns[i] = lp->conns[lp->count];
        lp->conns[i]->slot = i;
    }
}

/* Services slot i; returns 0 when it was closed (the slot now holds another connection). */
static int loop_service(struct loop *lp, ULONG i, uint64_t now)
{
    Conn *c = lp->conns[i];
    int status = conn_service(c, lp->scratch, now);
    if (status == CONN_DONE) {
        loop_close(lp, i);
        return 0;
    }
    c->more = status == CONN_MORE;
    lp->more |= c->more;
    lp->fds[i].events = conn_poll_events(c);
    lp->fds[i].revents = 0;
    timers_schedule(&lp->timers, c);
    return 1;
}

static void loop_accept(struct loop *lp, uint64_t now)
{
    int i;
    for (i = 0; i < 64 && lp->count < FIRST_CONN_SLOT + {{ v.upper }}_MAX_CONNECTIONS; i++) {
        struct sockaddr_storage peer;
        SOCKET s;
        Conn *c;
        ULONG slot;
        enum accept_result got = accept_connection(lp->fds[LISTEN_SLOT].fd, &s, &peer);
        if (got == ACCEPT_EXHAUSTED) {
            lp->accept_resume_ms = now + ACCEPT_PAUSE_MS;
            return;
        }
        if (got != ACCEPT_OK) {
            return;
        }
        c = conn_open(s, &peer, &lp->worker, lp->index, &lp->chunks, now);
        if (c == NULL) {
            closesocket(s);
            continue;
        }
        slot = lp->count++;
        c->slot = slot;
        lp->conns[slot] = c;
        lp->fds[slot].fd = s;
        conn_start(c);
        (void)loop_service(lp, slot, now); /* sends what on_open queued */
    }
}

static int loop_run(struct loop *lp)
{
    uint64_t now = now_ms();
    for (;;) {
        ULONG i;
        size_t budget;
        Conn *due;
        int n;
        int timeout = lp->more ? 0 : timers_timeout(&lp->timers, now);
        if (lp->accept_resume_ms != 0 && now >= lp->accept_resume_ms) {
            lp->accept_resume_ms = 0;
        }
        if (lp->accept_resume_ms != 0) {
            int until_resume = (int)(lp->accept_resume_ms - now);
            timeout = timeout < 0 || until_resume < timeout ? until_resume : timeout;
        }
        /* At the connection limit, or while out of sockets, new peers wait in the backlog. */
        lp->fds[LISTEN_SLOT].events =
            lp->count < FIRST_CONN_SLOT + {{ v.upper }}_MAX_CONNECTIONS
            && lp->accept_resume_ms == 0 ? POLLRDNORM : 0;
        n = WSAPoll(lp->fds, lp->count, timeout);
        if (n == SOCKET_ERROR) {
            log_socket_error("WSAPoll");
            return -1;
        }
        now = now_ms();
        if (lp->fds[STOP_SLOT].revents != 0) {
            return 0;
        }
        lp->more = 0;
        i = FIRST_CONN_SLOT;
        while (i < lp->count) {
            if ((lp->fds[i].revents == 0 && !lp->conns[i]->more) || loop_service(lp, i, now)) {
                i++;
            }
        }
        if (lp->fds[LISTEN_SLOT].revents != 0) {
            loop_accept(lp, now);
        }
        budget = lp->timers.len;
        while (budget-- > 0 && (due = timers_next_due(&lp->timers, now)) != NULL) {
            conn_expire(due, now);
            (void)loop_service(lp, (ULONG)due->slot, now);
        }
    }
}

/* One event loop; every worker runs one, all polling the shared listener. */
static int loop_main(SOCKET listener, unsigned index)
{
    struct loop lp;
    int status = -1;
    int started = 0;
    memset(&lp, 0, sizeof lp);
    lp.index = index;
    lp.fds = calloc(FIRST_CONN_SLOT + {{ v.upper }}_MAX_CONNECTIONS, sizeof *lp.fds);
    lp.conns = calloc(FIRST_CONN_SLOT + {{ v.upper }}_MAX_CONNECTIONS, sizeof *lp.conns);
    lp.scratch = malloc({{ v.upper }}_BUFFER_SIZE);
    if (lp.fds != NULL && lp.conns != NULL && lp.scratch != NULL && timers_init(&lp.timers) == 0) {
        lp.fds[STOP_SLOT].fd = stop_socket;
        lp.fds[STOP_SLOT].events = POLLRDNORM;
        lp.fds[LISTEN_SLOT].fd = listener;
        lp.count = FIRST_CONN_SLOT;
        started = worker_begin(&lp.worker, index);
        if (started) {
            status = loop_run(&lp);
        }
        while (lp.count > FIRST_CONN_SLOT) {
            conn_end(lp.conns[lp.count - 1], {{ v.upper }}_CLOSE_STOPPING, 0);
            loop_close(&lp, lp.count - 1);
        }
        if (started) {
            {{ v.name }}_on_worker_stop(&lp.worker);
        }
    } else {
        log_errno("calloc");
    }
    free(lp.timers.items);
    chunk_cache_drain(&lp.chunks);
    free(lp.fds);
    free(lp.conns);
    free(lp.scratch);
    return status;
}
{%- else %}
{{ v.runtime_close }}
{% include "winsock/udp.c" %}
{%- endif %}
{% include "winsock/main.c" %}
