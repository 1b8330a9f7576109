{%- include "c/header_comment.c" %}

{% include "c/prelude.c" %}
{% include "c/handler_slot.c" %}
{% include "c/runtime.c" %}

/* Blocks until fd is readable (1) or a stop is requested (0); -1 after logging an error.
 * Watching the stop pipe in the same poll means no signal is lost between two calls. */
static int wait_for_input_or_stop(int fd)
{
    struct pollfd fds[2];
    fds[0].fd = stop_pipe[0];
    fds[0].events = POLLIN;
    fds[1].fd = fd;
    fds[1].events = POLLIN;
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            log_errno("poll");
            return -1;
        }
        if (fds[0].revents != 0) {
            return 0;
        }
        if (fds[1].revents != 0) {
            return 1;
        }
    }
}
{%- if v.tcp %}

/* ---------------------------------------------------------------------------------------------
 * Thread per connection with blocking calls. The accept loop waits on the listener and the
 * stop pipe together; at most {{ v.upper }}_MAX_CONNECTIONS threads run, beyond that peers wait in
 * the backlog. The idle timeout is the sockets' SO_RCVTIMEO and SO_SNDTIMEO.
 */

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned active_connections;
static int slot_pipe[2] = { -1, -1 }; /* a finishing thread wakes the accept loop */

struct conn {
    int fd;
    struct {{ v.name }}_out out;
    struct {{ v.name }}_session session;
    unsigned char *scratch;
};

/* Sends everything queued; -1 when the peer is gone or stopped reading for the idle timeout. */
static int conn_flush_blocking(struct conn *c)
{
    size_t sent = 0;
    while (sent < c->out.len) {
        ssize_t n = send(c->fd, c->out.buf + sent, c->out.len - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return -1;
        }
    }
    c->out.len = 0;
    c->out.has_reply = 0;
    return 0;
}

static void *connection_thread(void *arg)
{
    struct conn *c = arg;
    int keep = {{ v.name }}_on_open(&c->session) == {{ v.upper }}_KEEP;
    while (keep) {
        ssize_t n;
        if ({{ v.upper }}_PRODUCER) {
            /* A producer talks without waiting for input; a peer that stops reading
             * blocks us until the send timeout. */
            keep = {{ v.name }}_on_writable(&c->session, &c->out) == {{ v.upper }}_KEEP;
            if (conn_flush_blocking(c) != 0) {
                break;
            }
            continue;
        }
        n = recv(c->fd, c->scratch, {{ v.upper }}_BUFFER_SIZE, 0);
        if (n > 0) {
            keep = {{ v.name }}_on_data(&c->session, c->scratch, (size_t)n, &c->out) == {{ v.upper }}_KEEP;
            if (conn_flush_blocking(c) != 0) {
                break;
            }
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            break; /* 0: the peer finished (its echo is already sent); <0: reset or idle timeout */
        }
    }
    {{ v.name }}_on_close(&c->session);
    close(c->fd);
    free(c->out.buf);
    free(c->scratch);
    free(c);

    pthread_mutex_lock(&slots_lock);
    active_connections--;
    pthread_mutex_unlock(&slots_lock);
    if (write(slot_pipe[1], "x", 1) < 0) {
        /* Full pipe: the accept loop has wakeups pending already. */
    }
    return NULL;
}

static int start_connection(int fd)
{
    pthread_attr_t attr;
    pthread_t thread;
    int rc;
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        log_errno("calloc");
        return -1;
    }
    c->fd = fd;
    c->out.cap = {{ v.upper }}_OUTPUT_BUFFER;
    c->out.buf = malloc(c->out.cap);
    c->scratch = malloc({{ v.upper }}_BUFFER_SIZE);
    if (c->out.buf == NULL || c->scratch == NULL) {
        log_errno("malloc");
        free(c->out.buf);
        free(c->scratch);
        free(c);
        return -1;
    }
{%- if v.idle_timeout_ms > 0 %}
    {
        struct timeval tv;
        tv.tv_sec = {{ v.upper }}_IDLE_TIMEOUT_MS / 1000u;
        tv.tv_usec = ({{ v.upper }}_IDLE_TIMEOUT_MS % 1000u) * 1000u;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0
            || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
            log_errno("setsockopt SO_RCVTIMEO");
        }
    }
{%- endif %}
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256u * 1024u); /* the buffers live on the heap */
    rc = pthread_create(&thread, &attr, connection_thread, c);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        fprintf(stderr, "%s: pthread_create: %s\n", {{ v.name }}_program, strerror(rc));
        free(c->out.buf);
        free(c->scratch);
        free(c);
        return -1;
    }
    return 0;
}

/* The accept loop. Connection threads run with SIGINT and SIGTERM blocked, so the signal
 * always reaches this thread's stop pipe. */
static int loop_main(int listen_fd)
{
    int spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int status = -1;
    if (pipe2(slot_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        log_errno("pipe2");
        return -1;
    }
    for (;;) {
        sigset_t blocked, previous;
        unsigned active;
        int watched, ready, fd;
        char drain[64];

        pthread_mutex_lock(&slots_lock);
        active = active_connections;
        pthread_mutex_unlock(&slots_lock);
        /* At the limit, wait for a thread to finish instead of accepting. */
        watched = active < {{ v.upper }}_MAX_CONNECTIONS ? listen_fd : slot_pipe[0];
        ready = wait_for_input_or_stop(watched);
        if (ready <= 0) {
            status = ready;
            break;
        }
        while (read(slot_pipe[0], drain, sizeof drain) > 0) {
        }
        if (watched != listen_fd) {
            continue;
        }
        fd = accept_connection(listen_fd, &spare_fd, 0);
        if (fd < 0) {
            continue;
        }
        pthread_mutex_lock(&slots_lock);
        active_connections++;
        pthread_mutex_unlock(&slots_lock);
        sigemptyset(&blocked);
        sigaddset(&blocked, SIGINT);
        sigaddset(&blocked, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &blocked, &previous);
        if (start_connection(fd) != 0) {
            close(fd);
            pthread_mutex_lock(&slots_lock);
            active_connections--;
            pthread_mutex_unlock(&slots_lock);
        }
        pthread_sigmask(SIG_SETMASK, &previous, NULL);
    }
    /* Connection threads end with the process; their sockets are closed by the kernel. */
    if (spare_fd >= 0) {
        close(spare_fd);
    }
    return status;
}
{%- else %}

/* ---------------------------------------------------------------------------------------------
 * One thread answers every datagram with blocking sends. It waits on the socket and the stop
 * pipe together, so a signal is never lost between two receives.
 */

static int loop_main(int fd)
{
    struct {{ v.name }}_session session;
    struct {{ v.name }}_out reply;
    unsigned char *scratch = malloc({{ v.upper }}_BUFFER_SIZE);
    unsigned long long truncated = 0, send_errors = 0, recv_errors = 0;
    int status = -1;

    reply.cap = {{ v.upper }}_OUTPUT_BUFFER;
    reply.buf = malloc(reply.cap);
    if (scratch == NULL || reply.buf == NULL) {
        log_errno("malloc");
        free(scratch);
        free(reply.buf);
        return -1;
    }
    {{ v.name }}_on_open(&session);
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        ssize_t n;

        int ready = wait_for_input_or_stop(fd);
        if (ready <= 0) {
            status = ready;
            break;
        }
        /* MSG_TRUNC: Linux returns the real length, so an over-long datagram is dropped
         * rather than echoed cut short. */
        n = recvfrom(fd, scratch, {{ v.upper }}_BUFFER_SIZE, MSG_TRUNC | MSG_DONTWAIT, (struct sockaddr *)&peer, &peer_len);
        if (n < 0) {
            if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
                log_occurrence("recvfrom failed", &recv_errors);
            }
            continue;
        }
        if ((size_t)n > {{ v.upper }}_BUFFER_SIZE) {
            log_occurrence("datagram longer than io.buffer_size dropped", &truncated);
            continue;
        }
        reply.len = 0;
        reply.has_reply = 0;
        (void){{ v.name }}_on_data(&session, scratch, (size_t)n, &reply);
        while (reply.has_reply
               && sendto(fd, reply.buf, reply.len, MSG_NOSIGNAL, (struct sockaddr *)&peer, peer_len) < 0) {
            if (errno != EINTR) {
                log_occurrence("sendto failed; reply dropped", &send_errors);
                break;
            }
        }
    }
    {{ v.name }}_on_close(&session);
    free(scratch);
    free(reply.buf);
    return status;
}
{%- endif %}
{% include "c/main.c" %}
