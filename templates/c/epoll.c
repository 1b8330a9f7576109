{%- include "c/header_comment.c" %}

{% include "c/prelude.c" %}
{% include "c/handler_slot.c" %}
{{ v.implementation_open }}
{% include "c/runtime.c" %}
{%- if v.tcp %}
{% include "c/tcp_conn.c" %}
{% include "c/conn_socket.c" %}
{% include "c/conn_readiness.c" %}

{% include "c/timers.c" %}
{{ v.runtime_close }}

/* ---------------------------------------------------------------------------------------------
 * The epoll loop. Connections are registered edge-triggered for both directions, so each
 * readiness change is reported once and conn_service() works until EAGAIN (or a short read).
 * The listener and the stop pipe are level-triggered.
 */

static char listener_tag, stop_tag; /* their addresses mark non-connection events */

struct loop {
    int epfd;
    int listen_fd;
    int spare_fd; /* given up to shed a connection when out of descriptors */
    int accept_paused;      /* the listener is out of the epoll set */
    uint64_t accept_resume_ms; /* when out of descriptors: accept again from then;
                                * 0 = not waiting */
    unsigned index;
    unsigned active;
    unsigned char *scratch;
    Conn *all;   /* every open connection */
    Conn *ready; /* connections that spent their budget with work left */
    struct timer_heap timers;
    struct chunk_cache chunks;
    struct {{ v.name }}_worker worker;
};

static int loop_watch_listener(struct loop *lp, int op)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = &listener_tag;
    if (epoll_ctl(lp->epfd, op, lp->listen_fd, &ev) != 0) {
        log_errno("epoll_ctl listener");
        return -1;
    }
    return 0;
}

static void loop_close(struct loop *lp, Conn *c)
{
    conn_list_remove(&lp->all, c);
    lp->active--;
    timers_remove(&lp->timers, c);
    conn_release(c); /* close() also removes it from the epoll set */
    if (c->in_ready) {
        c->released = 1;
    } else {
        free(c);
    }
    if (lp->accept_paused && lp->accept_resume_ms == 0
        && lp->active < {{ v.upper }}_MAX_CONNECTIONS) {
        if (loop_watch_listener(lp, EPOLL_CTL_ADD) == 0) {
            lp->accept_paused = 0;
        }
    }
}

/* Stops watching the listener: at max_connections, or for a while when out of descriptors. */
static void loop_pause_accept(struct loop *lp)
{
    if (!lp->accept_paused && epoll_ctl(lp->epfd, EPOLL_CTL_DEL, lp->listen_fd, NULL) == 0) {
        lp->accept_paused = 1;
    }
}

/* The pause after running out of descriptors is over: watch the listener again. */
static void loop_resume_accept(struct loop *lp, uint64_t now)
{
    if (lp->accept_resume_ms == 0 || now < lp->accept_resume_ms) {
        return;
    }
    lp->accept_resume_ms = 0;
    if (lp->accept_paused && lp->active < {{ v.upper }}_MAX_CONNECTIONS
        && loop_watch_listener(lp, EPOLL_CTL_ADD) == 0) {
        lp->accept_paused = 0;
    }
}

static void loop_service(struct loop *lp, Conn *c, uint64_t now)
{
    int status = conn_service(c, lp->scratch, now);
    if (status == CONN_DONE) {
        loop_close(lp, c);
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

static void loop_accept(struct loop *lp, uint64_t now)
{
    int i;
    for (i = 0; i < 64; i++) {
        struct sockaddr_storage peer;
        struct epoll_event ev;
        Conn *c;
        int fd;
        if (lp->active >= {{ v.upper }}_MAX_CONNECTIONS) {
            /* At the limit: leave new peers in the backlog until a connection closes. */
            loop_pause_accept(lp);
            return;
        }
        fd = accept_connection(lp->listen_fd, &lp->spare_fd, &peer);
        if (fd == ACCEPT_EXHAUSTED) {
            loop_pause_accept(lp);
            lp->accept_resume_ms = now + ACCEPT_PAUSE_MS;
            return;
        }
        if (fd < 0) {
            return;
        }
        c = conn_open(fd, &peer, &lp->worker, lp->index, &lp->chunks, now);
        if (c == NULL) {
            close(fd);
            continue;
        }
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
        ev.data.ptr = c;
        if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            log_errno("epoll_ctl add");
            conn_release(c);
            free(c);
            continue;
        }
        conn_list_add(&lp->all, c);
        lp->active++;
        /* Registering reports the socket writable, so output from on_open goes out then. */
        conn_start(c);
        timers_schedule(&lp->timers, c);
    }
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

static int loop_run(struct loop *lp)
{
    struct epoll_event *events = calloc({{ v.upper }}_MAX_EVENTS, sizeof *events);
    uint64_t now = now_ms();
    if (events == NULL) {
        log_errno("calloc");
        return -1;
    }
    for (;;) {
        Conn *ready;
        int timeout = lp->ready != NULL ? 0 : timers_timeout(&lp->timers, now);
        if (lp->accept_resume_ms != 0) {
            int until_resume = lp->accept_resume_ms > now ? (int)(lp->accept_resume_ms - now) : 0;
            timeout = timeout < 0 || until_resume < timeout ? until_resume : timeout;
        }
        int n = epoll_wait(lp->epfd, events, {{ v.upper }}_MAX_EVENTS, timeout);
        int i;
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
            if (tag == &stop_tag) {
                free(events);
                return 0;
            }
            if (tag == &listener_tag) {
                loop_accept(lp, now);
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
        loop_resume_accept(lp, now);
    }
}

/* One event loop on its own listening socket; every worker runs one. */
static int loop_main(int listen_fd, unsigned index)
{
    struct loop lp;
    struct epoll_event ev;
    int status = -1;

    memset(&lp, 0, sizeof lp);
    lp.listen_fd = listen_fd;
    lp.index = index;
    lp.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    lp.scratch = malloc({{ v.upper }}_BUFFER_SIZE);
    lp.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (lp.scratch == NULL || lp.epfd < 0 || timers_init(&lp.timers) != 0) {
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
    if (loop_watch_listener(&lp, EPOLL_CTL_ADD) != 0 || !worker_begin(&lp.worker, index)) {
        goto out;
    }
    status = loop_run(&lp);
    while (lp.all != NULL) {
        conn_end(lp.all, {{ v.upper }}_CLOSE_STOPPING, 0);
        loop_close(&lp, lp.all);
    }
    while (lp.ready != NULL) {
        Conn *c = lp.ready;
        lp.ready = c->ready_next;
        free(c); /* every connection was released above */
    }
    {{ v.name }}_on_worker_stop(&lp.worker);
out:
    if (lp.epfd >= 0) {
        close(lp.epfd);
    }
    if (lp.spare_fd >= 0) {
        close(lp.spare_fd);
    }
    free(lp.timers.items);
    chunk_cache_drain(&lp.chunks);
    free(lp.scratch);
    return status;
}
{%- else %}
{% include "c/udp_dgram.c" %}
{{ v.runtime_close }}

/* ---------------------------------------------------------------------------------------------
 * The epoll loop: the socket is registered edge-triggered, so dgram_service() reads until
 * EAGAIN; when its budget runs out the loop polls again without sleeping. Write readiness is
 * asked for only while replies wait for room: otherwise every reply sent would wake the loop.
 */

static char socket_tag, stop_tag; /* their addresses tell events apart */

/* Watches the socket for input, and for room to send while replies wait. */
static int dgram_watch(int epfd, int fd, int op, int want_output)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | EPOLLET | (want_output ? EPOLLOUT : 0);
    ev.data.ptr = &socket_tag;
    if (epoll_ctl(epfd, op, fd, &ev) != 0) {
        log_errno("epoll_ctl socket");
        return -1;
    }
    return 0;
}

static int loop_main(int fd, unsigned index)
{
    struct dgram_server d;
    struct epoll_event events[4];
    struct epoll_event ev;
    int more = 1; /* data may have arrived before the socket was registered */
    int watching_output = 0;
    int status = -1;
    int epfd = epoll_create1(EPOLL_CLOEXEC);

    if (epfd < 0) {
        log_errno("epoll_create1");
        return -1;
    }
    if (dgram_open(&d, fd, index) != 0) {
        close(epfd);
        return -1;
    }
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = &stop_tag;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, stop_pipe[0], &ev) != 0) {
        log_errno("epoll_ctl stop pipe");
        goto out;
    }
    if (dgram_watch(epfd, fd, EPOLL_CTL_ADD, 0) != 0) {
        goto out;
    }
    if (!startup_ready(1)) {
        goto out;
    }
    for (;;) {
        int i;
        int n = epoll_wait(epfd, events, 4, more ? 0 : -1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            log_errno("epoll_wait");
            goto out;
        }
        for (i = 0; i < n; i++) {
            if (events[i].data.ptr == &stop_tag) {
                status = 0;
                goto out;
            }
            more = 1;
        }
        if (more) {
            more = dgram_service(&d) == DGRAM_MORE;
        }
        if (dgram_replies_waiting(&d) != watching_output) {
            /* Re-arming also reports the socket writable at once if it already is. */
            watching_output = !watching_output;
            if (dgram_watch(epfd, fd, EPOLL_CTL_MOD, watching_output) != 0) {
                goto out;
            }
        }
    }
out:
    dgram_close(&d);
    close(epfd);
    return status;
}
{%- endif %}
{% include "c/main.c" %}
