{%- include "c/header_comment.c" %}

{% include "c/prelude.c" %}
{% include "c/handler_slot.c" %}
{{ v.implementation_open }}
{% include "c/runtime.c" %}
{%- if v.tcp %}
{% include "c/tcp_conn.c" %}
{% include "c/conn_socket.c" %}
{% include "c/conn_readiness.c" %}
{%- else %}
{% include "c/udp_client_conn.c" %}
{%- endif %}

{% include "c/timers.c" %}
{% include "c/client_runtime.c" %}
{{ v.runtime_close }}

/* ---------------------------------------------------------------------------------------------
 * The epoll loop of a client. A connecting socket is watched for writability (the end of a
 * nonblocking connect, either way); once connected it is registered edge-triggered for both
 * directions like a server's connection, and conn_service() works until EAGAIN.
 */

static char stop_tag; /* its address marks the stop pipe's events */

struct loop {
    int epfd;
    unsigned char *scratch;
    Conn *all;   /* every open connection */
    Conn *ready; /* connections that spent their budget with work left */
    struct timer_heap timers;
{%- if v.tcp %}
    struct chunk_cache chunks;
{%- endif %}
    struct {{ v.name }}_worker worker;
    struct member *members;  /* the pool */
    unsigned members_left;   /* not done yet */
    struct member_deadlines members_due; /* connect timeouts and backoff ends */
};

/* Whether an event's tag is a pool member (connecting) rather than a connection. */
static struct member *loop_member_of(const struct loop *lp, void *tag)
{
    const char *first = (const char *)lp->members;
    const char *end = (const char *)(lp->members + command_line.connections);
    return (const char *)tag >= first && (const char *)tag < end ? tag : NULL;
}

/* Watches a member's connecting socket for the end of its connect; 0, or -1 with errno. */
static int loop_watch_connecting(struct loop *lp, struct member *m)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLOUT;
    ev.data.ptr = m;
    return epoll_ctl(lp->epfd, EPOLL_CTL_ADD, m->fd, &ev);
}

/* A connecting socket is about to be closed: close() takes it out of the epoll set. */
static void loop_unwatch_connecting(struct loop *lp, struct member *m)
{
    (void)lp;
    (void)m;
}

{% include "c/client_pool.c" %}

/* The connecting socket became writable: the connect finished, one way or the other. */
static void loop_connected(struct loop *lp, struct member *m, uint64_t now)
{
    struct epoll_event ev;
    int error;
    Conn *c;
    if (m->state != MEMBER_CONNECTING) {
        return;
    }
    error = member_connect_result(m);
    c = error == 0 ? conn_open(m->fd, member_target(m), &lp->worker, 0, {% if v.tcp %}&lp->chunks, {% endif %}now) : NULL;
    if (c != NULL) {
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
        ev.data.ptr = c;
        if (epoll_ctl(lp->epfd, EPOLL_CTL_MOD, m->fd, &ev) != 0) {
            error = errno;
            free(c);
            c = NULL;
        }
    } else if (error == 0) {
        error = ENOMEM;
    }
    if (c == NULL) {
        loop_connect_failed(lp, m, error, now);
        return;
    }
    c->member = m->index;
    m->fd = -1;
    m->conn = c;
    m->state = MEMBER_OPEN;
    conn_list_add(&lp->all, c);
    /* Re-registering reports the socket writable, so output from on_open goes out then. */
    conn_start(c);
    timers_schedule(&lp->timers, c);
}

static void loop_close(struct loop *lp, Conn *c, uint64_t now)
{
    struct member *m = &lp->members[c->member];
    conn_list_remove(&lp->all, c);
    timers_remove(&lp->timers, c);
    conn_release(c); /* on_close runs here; close() also removes it from the epoll set */
    member_connection_ended(m, c, now);
    if (c->in_ready) {
        c->released = 1;
    } else {
        free(c);
    }
    loop_member_settled(lp, m);
}

static void loop_service(struct loop *lp, Conn *c, uint64_t now)
{
    int status = conn_service(c, lp->scratch, now);
    if (status == CONN_DONE) {
        loop_close(lp, c, now);
        return;
    }
    if (status == CONN_MORE && !c->in_ready) {
        /* Edge-triggered: no new event will come for work we left, so remember it. */
        c->in_ready = 1;
        c->ready_next = lp->ready;
        lp->ready = c;
    }
    timers_schedule(&lp->timers, c);
}

/* Handles every passed deadline; each connection at most once per turn. */
static void loop_expire(struct loop *lp, uint64_t now)
{
    size_t budget = lp->timers.len;
    Conn *c;
    while (budget-- > 0 && (c = timers_next_due(&lp->timers, now)) != NULL) {
        conn_expire(c, now);
        loop_service(lp, c, now);
    }
}

/* Runs until every member of the pool is done (0), a stop signal (0) or a failed wait (-1). */
static int loop_run(struct loop *lp)
{
    struct epoll_event *events = calloc({{ v.upper }}_MAX_EVENTS, sizeof *events);
    uint64_t now = now_ms();
    if (events == NULL) {
        log_errno("calloc");
        return -1;
    }
    while (lp->members_left > 0) {
        Conn *ready;
        int timeout = loop_members_timeout(
            lp, lp->ready != NULL ? 0 : timers_timeout(&lp->timers, now), now);
        int n, i;
        n = epoll_wait(lp->epfd, events, {{ v.upper }}_MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            log_errno("epoll_wait");
            free(events);
            return -1;
        }
        now = now_ms();
        for (i = 0; i < n; i++) {
            void *tag = events[i].data.ptr;
            struct member *m = loop_member_of(lp, tag);
            if (tag == &stop_tag) {
                free(events);
                return 0;
            }
            if (m != NULL) {
                loop_connected(lp, m, now);
            } else {
                Conn *c = tag;
                if (events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) {
                    c->read_to_eagain = 1;
                }
                if (!c->in_ready) {
                    loop_service(lp, c, now);
                }
            }
        }
        ready = lp->ready;
        lp->ready = NULL;
        while (ready != NULL) {
            Conn *c = ready;
            ready = c->ready_next;
            c->in_ready = 0;
            if (c->released) {
                free(c);
            } else {
                loop_service(lp, c, now);
            }
        }
        loop_expire(lp, now);
        loop_members_due(lp, now);
    }
    free(events);
    return 0;
}

/* Opens the pool and runs the loop; on a stop every connection ends with reason stopping. */
static int loop_main(void)
{
    struct loop lp;
    struct epoll_event ev;
    unsigned i;
    int status = -1;
    uint64_t now = now_ms();

    memset(&lp, 0, sizeof lp);
    lp.scratch = malloc({{ v.upper }}_BUFFER_SIZE);
    lp.members = calloc(command_line.connections, sizeof *lp.members);
    lp.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (lp.scratch == NULL || lp.members == NULL
        || member_deadlines_init(&lp.members_due, command_line.connections) != 0 || lp.epfd < 0
        || timers_init(&lp.timers) != 0) {
        log_errno(lp.epfd < 0 ? "epoll_create1" : "malloc");
        goto out;
    }
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = &stop_tag;
    if (epoll_ctl(lp.epfd, EPOLL_CTL_ADD, stop_pipe[0], &ev) != 0) {
        log_errno("epoll_ctl stop pipe");
        goto out;
    }
    if (!worker_start(&lp.worker, 0)) {
        goto out;
    }
    lp.members_left = command_line.connections;
    for (i = 0; i < command_line.connections; i++) {
        member_init(&lp.members[i], i);
        loop_connect(&lp, &lp.members[i], now);
    }
    status = loop_run(&lp);
    while (lp.all != NULL) {
        conn_end(lp.all, {{ v.upper }}_CLOSE_STOPPING, 0);
        loop_close(&lp, lp.all, now_ms());
    }
    while (lp.ready != NULL) {
        Conn *c = lp.ready;
        lp.ready = c->ready_next;
        free(c); /* every connection was released above */
    }
    for (i = 0; i < command_line.connections; i++) {
        if (lp.members[i].fd >= 0) {
            close(lp.members[i].fd);
        }
    }
    {{ v.name }}_on_worker_stop(&lp.worker);
out:
    if (lp.epfd >= 0) {
        close(lp.epfd);
    }
    members_release(lp.members);
    free(lp.members);
    free(lp.members_due.items);
    free(lp.timers.items);
{%- if v.tcp %}
    chunk_cache_drain(&lp.chunks);
{%- endif %}
    free(lp.scratch);
    return status;
}

{% include "c/client_main.c" %}
