{%- include "c/header_comment.c" %}

{% include "c/prelude.c" %}
{% include "c/handler_slot.c" %}
{{ v.implementation_open }}
{% include "c/runtime.c" %}

/* Blocks until fd is readable (1), a stop is requested (0) or timeout_ms pass (2; -1 waits
 * forever); -1 after logging an error. Watching the stop pipe in the same poll means no
 * signal is lost between two calls. A negative fd waits for the stop or the timeout only. */
static int wait_for_input_or_stop(int fd, int timeout_ms)
{
    struct pollfd fds[2];
    fds[0].fd = stop_pipe[0];
    fds[0].events = POLLIN;
    fds[1].fd = fd;
    fds[1].events = POLLIN;
    for (;;) {
        int n = poll(fds, 2, timeout_ms);
        if (n == 0) {
            return 2;
        }
        if (n < 0) {
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
{% include "c/tcp_conn.c" %}
{% include "c/conn_socket.c" %}
{% include "c/conn_readiness.c" %}
{{ v.runtime_close }}

/* ---------------------------------------------------------------------------------------------
 * Thread per connection. Each thread sleeps in poll() on its socket, the stop pipe and its
 * next deadline, and runs the same connection machinery as the event loops, so the handler
 * contract (back-pressure, EOF, lingering close, timers) is the same here. The accept loop
 * waits on the listener and the stop pipe together; at most {{ v.upper }}_MAX_CONNECTIONS threads
 * run, beyond that peers wait in the backlog.
 */

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slots_empty = PTHREAD_COND_INITIALIZER;
static unsigned active_connections;
static int slot_pipe[2] = { -1, -1 }; /* a finishing thread wakes the accept loop */

/* The one worker: its state, and the lock its connection threads take around callbacks. */
static pthread_mutex_t worker_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {{ v.name }}_worker worker_state;

{% include "c/blocking_conn_run.c" %}

static void *connection_thread(void *arg)
{
    Conn *c = arg;
    unsigned char *scratch = malloc({{ v.upper }}_BUFFER_SIZE);
    if (scratch == NULL) {
        conn_end(c, {{ v.upper }}_CLOSE_ERROR, ENOMEM);
    } else {
        conn_run(c, scratch);
    }
    conn_release(c);
    free(c);
    free(scratch);

    pthread_mutex_lock(&slots_lock);
    if (--active_connections == 0) {
        pthread_cond_broadcast(&slots_empty);
    }
    pthread_mutex_unlock(&slots_lock);
    if (write(slot_pipe[1], "x", 1) < 0) {
        /* Full pipe: the accept loop has wakeups pending already. */
    }
    return NULL;
}

static int start_connection(int fd, const struct sockaddr_storage *peer)
{
    static shared_counter thread_failures;
    pthread_attr_t attr;
    pthread_t thread;
    int rc;
    Conn *c = conn_open(fd, peer, &worker_state, 0, NULL, now_ms());
    if (c == NULL) {
        return -1;
    }
    c->worker_lock = &worker_lock;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, {{ v.upper }}_STACK_SIZE); /* the buffers live on the heap */
    rc = pthread_create(&thread, &attr, connection_thread, c);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        log_shared_occurrence("cannot start a connection thread: connection refused",
                              &thread_failures);
        c->fd = -1; /* the caller closes it */
        free(c);
        return -1;
    }
    return 0;
}

/* The accept loop. Connection threads run with SIGINT and SIGTERM blocked, so the signal
 * always reaches this thread's stop pipe; every connection thread watches the pipe too. */
static int loop_main(int listen_fd, unsigned index)
{
    int spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int status = -1;
    if (pipe2(slot_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        log_errno("pipe2");
        return -1;
    }
    if (!worker_begin(&worker_state, index)) {
        return -1;
    }
    for (;;) {
        struct sockaddr_storage peer;
        sigset_t blocked, previous;
        unsigned active;
        int watched, ready, fd;
        char drain[64];

        pthread_mutex_lock(&slots_lock);
        active = active_connections;
        pthread_mutex_unlock(&slots_lock);
        /* At the limit, wait for a thread to finish instead of accepting. */
        watched = active < {{ v.upper }}_MAX_CONNECTIONS ? listen_fd : slot_pipe[0];
        ready = wait_for_input_or_stop(watched, -1);
        if (ready <= 0) {
            status = ready;
            break;
        }
        while (read(slot_pipe[0], drain, sizeof drain) > 0) {
        }
        if (watched != listen_fd) {
            continue;
        }
        fd = accept_connection(listen_fd, &spare_fd, &peer);
        if (fd == ACCEPT_EXHAUSTED) {
            /* Out of descriptors or memory: pause, or the readable listener would spin us. */
            ready = wait_for_input_or_stop(-1, ACCEPT_PAUSE_MS);
            if (ready <= 0) {
                status = ready;
                break;
            }
            continue;
        }
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
        if (start_connection(fd, &peer) != 0) {
            close(fd);
            pthread_mutex_lock(&slots_lock);
            active_connections--;
            pthread_mutex_unlock(&slots_lock);
        }
        pthread_sigmask(SIG_SETMASK, &previous, NULL);
    }
    /* Every connection thread sees the stop pipe too: wait until each has run on_close. */
    pthread_mutex_lock(&slots_lock);
    while (active_connections > 0) {
        pthread_cond_wait(&slots_empty, &slots_lock);
    }
    pthread_mutex_unlock(&slots_lock);
    {{ v.name }}_on_worker_stop(&worker_state);
    if (spare_fd >= 0) {
        close(spare_fd);
    }
    return status;
}
{%- else %}
{% include "c/udp_conn.c" %}
{{ v.runtime_close }}

/* ---------------------------------------------------------------------------------------------
 * One thread answers every datagram with blocking sends. It waits on the socket and the stop
 * pipe together, so a signal is never lost between two receives.
 */

static int loop_main(int fd, unsigned index)
{
    struct {{ v.name }}_worker worker;
    Conn current;
    unsigned char *scratch = malloc({{ v.upper }}_BUFFER_SIZE);
    unsigned long long truncated = 0, send_errors = 0, recv_errors = 0;
    int status = -1;

    memset(&current, 0, sizeof current);
    current.info.worker = index;
    current.reply = malloc({{ v.upper }}_OUTPUT_BUFFER);
    if (scratch == NULL || current.reply == NULL) {
        log_errno("malloc");
        free(scratch);
        free(current.reply);
        return -1;
    }
    if (!worker_begin(&worker, index)) {
        free(scratch);
        free(current.reply);
        return -1;
    }
    for (;;) {
        ssize_t n;
        int ready = wait_for_input_or_stop(fd, -1);
        if (ready <= 0) {
            status = ready;
            break;
        }
        current.peer_len = sizeof current.info.peer;
        /* MSG_TRUNC: Linux returns the real length, so an over-long datagram is dropped
         * rather than echoed cut short. */
        n = recvfrom(fd, scratch, {{ v.upper }}_BUFFER_SIZE, MSG_TRUNC | MSG_DONTWAIT,
                     (struct sockaddr *)&current.info.peer, &current.peer_len);
        OP_LOG("recvfrom", fd, " bytes=%zd result=%s", n,
               n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? "EAGAIN" : OP_RESULT(n >= 0));
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
        dgram_begin(&current);
        {{ v.name }}_on_message(&worker, &current, scratch, (size_t)n);
        if (current.has_reply) {
            OP_LOG("sendto", fd, " bytes=%zu", current.reply_len);
        }
        while (current.has_reply
               && sendto(fd, current.reply, current.reply_len, MSG_NOSIGNAL,
                         (struct sockaddr *)&current.info.peer, current.peer_len) < 0) {
            if (errno != EINTR) {
                log_occurrence("sendto failed; reply dropped", &send_errors);
                break;
            }
        }
    }
    {{ v.name }}_on_worker_stop(&worker);
    free(scratch);
    free(current.reply);
    return status;
}
{%- endif %}
{% include "c/main.c" %}
