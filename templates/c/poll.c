{%- include "c/header_comment.c" %}

{% include "c/prelude.c" %}
{% include "c/handler_slot.c" %}
{% include "c/runtime.c" %}
{%- if v.tcp %}
{% include "c/tcp_conn.c" %}

/* ---------------------------------------------------------------------------------------------
 * The poll loop, level-triggered: slot 0 is the stop pipe, slot 1 the listener, and each
 * connection's slot asks only for what it can use now (no POLLIN while its output is full).
 */

enum { STOP_SLOT = 0, LISTEN_SLOT = 1, FIRST_CONN_SLOT = 2 };

struct loop {
    struct pollfd *fds;  /* fds[i] belongs to conns[i] from FIRST_CONN_SLOT on */
    struct conn **conns;
    nfds_t count;
    int spare_fd;        /* given up to shed a connection when out of descriptors */
    unsigned char *scratch;
    uint64_t next_sweep_ms;
};

static short conn_poll_events(const struct conn *c)
{
    short events = 0;
    if (!c->read_closed && !c->closing && conn_room(c) >= {{ v.upper }}_BUFFER_SIZE) {
        events |= POLLIN;
    }
    if (conn_pending(c) > 0 || ({{ v.upper }}_PRODUCER && !c->closing)) {
        events |= POLLOUT;
    }
    return events;
}

/* Closes the connection in slot i by moving the last slot into it. */
static void loop_close(struct loop *lp, nfds_t i)
{
    conn_release(lp->conns[i]);
    free(lp->conns[i]);
    lp->count--;
    lp->fds[i] = lp->fds[lp->count];
    lp->conns[i] = lp->conns[lp->count];
}

static void loop_accept(struct loop *lp, uint64_t now)
{
    int i;
    for (i = 0; i < 64 && lp->count < FIRST_CONN_SLOT + {{ v.upper }}_MAX_CONNECTIONS; i++) {
        struct conn *c;
        int fd = accept_connection(lp->fds[LISTEN_SLOT].fd, &lp->spare_fd, SOCK_NONBLOCK);
        if (fd < 0) {
            return;
        }
        c = conn_open(fd, now);
        if (c == NULL) {
            close(fd);
            continue;
        }
        lp->conns[lp->count] = c;
        lp->fds[lp->count].fd = fd;
        lp->fds[lp->count].events = conn_poll_events(c);
        lp->fds[lp->count].revents = 0;
        lp->count++;
    }
}

{%- if v.idle_timeout_ms > 0 %}

static void loop_sweep(struct loop *lp, uint64_t now)
{
    nfds_t i = FIRST_CONN_SLOT;
    if (now < lp->next_sweep_ms) {
        return;
    }
    while (i < lp->count) {
        if (now - lp->conns[i]->last_active_ms >= {{ v.upper }}_IDLE_TIMEOUT_MS) {
            loop_close(lp, i); /* slot i now holds another connection: look at it next */
        } else {
            i++;
        }
    }
    lp->next_sweep_ms = now + ({{ v.upper }}_IDLE_TIMEOUT_MS + 3) / 4;
}
{%- endif %}

static int loop_run(struct loop *lp)
{
    uint64_t now = now_ms();
{%- if v.idle_timeout_ms > 0 %}
    lp->next_sweep_ms = now + ({{ v.upper }}_IDLE_TIMEOUT_MS + 3) / 4;
{%- endif %}
    for (;;) {
        nfds_t i;
        int timeout = -1;
        int n;
{%- if v.idle_timeout_ms > 0 %}
        timeout = lp->next_sweep_ms > now ? (int)(lp->next_sweep_ms - now) : 0;
{%- endif %}
        /* At the connection limit new peers wait in the backlog. */
        lp->fds[LISTEN_SLOT].events = lp->count < FIRST_CONN_SLOT + {{ v.upper }}_MAX_CONNECTIONS ? POLLIN : 0;
        n = poll(lp->fds, lp->count, timeout);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            log_errno("poll");
            return -1;
        }
        now = now_ms();
        if (lp->fds[STOP_SLOT].revents != 0) {
            return 0;
        }
        i = FIRST_CONN_SLOT;
        while (i < lp->count) {
            struct conn *c = lp->conns[i];
            if (lp->fds[i].revents == 0) {
                i++;
                continue;
            }
            /* CONN_MORE needs no bookkeeping: level-triggered poll reports the rest again. */
            if (conn_service(c, lp->scratch, now) == CONN_DONE) {
                loop_close(lp, i);
                continue;
            }
            lp->fds[i].events = conn_poll_events(c);
            lp->fds[i].revents = 0;
            i++;
        }
        if (lp->fds[LISTEN_SLOT].revents != 0) {
            loop_accept(lp, now);
        }
{%- if v.idle_timeout_ms > 0 %}
        loop_sweep(lp, now);
{%- endif %}
    }
}

/* One event loop on its own listening socket; every worker runs one. */
static int loop_main(int listen_fd)
{
    struct loop lp;
    int status = -1;
    memset(&lp, 0, sizeof lp);
    lp.fds = calloc(FIRST_CONN_SLOT + {{ v.upper }}_MAX_CONNECTIONS, sizeof *lp.fds);
    lp.conns = calloc(FIRST_CONN_SLOT + {{ v.upper }}_MAX_CONNECTIONS, sizeof *lp.conns);
    lp.scratch = malloc({{ v.upper }}_BUFFER_SIZE);
    lp.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (lp.fds != NULL && lp.conns != NULL && lp.scratch != NULL) {
        lp.fds[STOP_SLOT].fd = stop_pipe[0];
        lp.fds[STOP_SLOT].events = POLLIN;
        lp.fds[LISTEN_SLOT].fd = listen_fd;
        lp.count = FIRST_CONN_SLOT;
        status = loop_run(&lp);
        while (lp.count > FIRST_CONN_SLOT) {
            loop_close(&lp, lp.count - 1);
        }
    } else {
        log_errno("calloc");
    }
    if (lp.spare_fd >= 0) {
        close(lp.spare_fd);
    }
    free(lp.fds);
    free(lp.conns);
    free(lp.scratch);
    return status;
}
{%- else %}
{% include "c/udp_dgram.c" %}

/* ---------------------------------------------------------------------------------------------
 * The poll loop, level-triggered: the socket is watched for input, or for room to send while
 * a reply waits.
 */

static int loop_main(int fd)
{
    struct dgram_server d;
    struct pollfd fds[2];
    int status = -1;
    if (dgram_open(&d, fd) != 0) {
        return -1;
    }
    fds[0].fd = stop_pipe[0];
    fds[0].events = POLLIN;
    fds[1].fd = fd;
    for (;;) {
        int n;
        fds[1].events = d.reply_pending ? POLLOUT : POLLIN;
        n = poll(fds, 2, -1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            log_errno("poll");
            break;
        }
        if (fds[0].revents != 0) {
            status = 0;
            break;
        }
        if (fds[1].revents != 0) {
            (void)dgram_service(&d); /* level-triggered: leftovers are reported again */
        }
    }
    dgram_close(&d);
    return status;
}
{%- endif %}
{% include "c/main.c" %}
