{%- include "c/header_comment.c" %}

{% include "c/prelude.c" %}
{% include "c/handler_slot.c" %}
{% include "c/runtime.c" %}
{%- if v.tcp %}
{% include "c/tcp_conn.c" %}
{%- else %}
{% include "c/udp_client_conn.c" %}
{%- endif %}
{% include "c/client_runtime.c" %}

/* ---------------------------------------------------------------------------------------------
 * A thread per connection of the pool. Each thread connects (a nonblocking connect waited
 * for in poll() beside the stop pipe, so the connect timeout and a stop both cut it short),
 * serves its connection with the same machinery as the event loops, and after a failure
 * backs off and tries again. Callbacks take the worker's lock, so a handler needs no locking
 * of its own, exactly as in the event-loop models.
 */

enum { MEMBER_STACK_SIZE = 262144 }; /* buffers live on the heap: a small stack is enough */

static pthread_mutex_t worker_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {{ v.name }}_worker worker_state;

{% include "c/blocking_conn_run.c" %}

/* Waits in poll() for the stop pipe and, when fd >= 0, for `events` on fd, until `until`
 * (NO_DEADLINE: no limit). 1: fd is ready; 0: a stop was requested; 2: the time is up;
 * -1: poll failed (errno). */
static int wait_for_socket_or_stop(int fd, short events, uint64_t until)
{
    for (;;) {
        struct pollfd fds[2];
        uint64_t now = now_ms();
        int timeout = until == NO_DEADLINE ? -1 : until > now ? (int)(until - now) : 0;
        int n;
        fds[0].fd = stop_pipe[0];
        fds[0].events = POLLIN;
        fds[1].fd = fd;
        fds[1].events = events;
        n = poll(fds, fd >= 0 ? 2 : 1, timeout);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (fds[0].revents != 0) {
            return 0;
        }
        if (n == 0) {
            return 2;
        }
        if (fd >= 0 && fds[1].revents != 0) {
            return 1;
        }
    }
}

/* One attempt: every address in order. 1: connected (m->fd); 0: failed (noted); -1: stopped. */
static int member_attempt(struct member *m)
{
    for (m->address = 0; m->address < target_count; m->address++) {
        int error = 0;
        int waited;
        if (member_connect(m, now_ms()) != 0) {
            member_note_error(m, "connect", errno);
            continue;
        }
        waited = wait_for_socket_or_stop(m->fd, POLLOUT, m->deadline_ms);
        if (waited == 1) {
            socklen_t len = sizeof error;
            if (getsockopt(m->fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) {
                error = errno;
            }
            OP_LOG("connected", m->fd, " result=%s", error == 0 ? "ok" : errno_name(error));
        } else {
            error = waited == 2 ? ETIMEDOUT : errno;
        }
        if (waited != 0 && error == 0) {
            return 1;
        }
        close(m->fd);
        m->fd = -1;
        if (waited == 0) {
            return -1;
        }
        member_note_error(m, "connect", error);
    }
    m->address = 0;
    return 0;
}

/* One member of the pool, from its first attempt until it is done or the client stops. */
static void member_run(struct member *m, unsigned char *scratch)
{
    while (m->state != MEMBER_DONE) {
        int attempt;
        Conn *c;
        if (m->state == MEMBER_WAITING && wait_for_socket_or_stop(-1, 0, m->deadline_ms) != 2) {
            break; /* stopped while backing off */
        }
        attempt = member_attempt(m);
        if (attempt < 0) {
            break;
        }
        c = attempt == 1 ? conn_open(m->fd, &target_addresses[m->address], &worker_state, 0, now_ms()) : NULL;
        if (c == NULL) {
            if (attempt == 1) {
                member_note_error(m, "connect", ENOMEM);
                close(m->fd);
                m->fd = -1;
            }
            member_attempt_failed(m, now_ms());
            continue;
        }
        m->fd = -1;
        m->state = MEMBER_OPEN;
        m->conn = c;
        c->member = m->index;
        c->worker_lock = &worker_lock;
        conn_run(c, scratch);
        conn_release(c); /* on_close runs here, under the worker's lock */
        member_connection_ended(m, c, now_ms());
        free(c);
    }
    m->state = MEMBER_DONE;
}

static void *member_thread(void *arg)
{
    struct member *m = arg;
    unsigned char *scratch = malloc({{ v.upper }}_BUFFER_SIZE);
    if (scratch == NULL) {
        fprintf(stderr, "%s: connection %u of %u: out of memory\n", {{ v.name }}_program, m->index + 1, client_options.connections);
        mark_run_failed();
        return NULL;
    }
    member_run(m, scratch);
    free(scratch);
    return NULL;
}

/* Starts a thread per member (signals stay with the main thread, which only waits), joins
 * them all, then reports. */
static int loop_main(void)
{
    struct member *members = calloc(client_options.connections, sizeof *members);
    pthread_t *threads = calloc(client_options.connections, sizeof *threads);
    pthread_attr_t attr;
    sigset_t blocked, previous;
    unsigned i, started = 0;
    if (members == NULL || threads == NULL || pthread_attr_init(&attr) != 0) {
        log_errno("calloc");
        free(members);
        free(threads);
        return -1;
    }
    pthread_attr_setstacksize(&attr, MEMBER_STACK_SIZE);
    {{ v.name }}_on_worker_start(&worker_state, 0);
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &blocked, &previous);
    for (; started < client_options.connections; started++) {
        int rc;
        member_init(&members[started], started);
        rc = pthread_create(&threads[started], &attr, member_thread, &members[started]);
        if (rc != 0) {
            fprintf(stderr, "%s: cannot start a thread for connection %u of %u: %s\n", {{ v.name }}_program, started + 1,
                    client_options.connections, strerror(rc));
            mark_run_failed();
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    pthread_attr_destroy(&attr);
    for (i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
    }
    {{ v.name }}_on_worker_stop(&worker_state);
    free(threads);
    free(members);
    return 0;
}
{% include "c/client_main.c" %}
