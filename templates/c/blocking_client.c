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
{% include "c/client_runtime.c" %}
{{ v.runtime_close }}

/* ---------------------------------------------------------------------------------------------
 * A thread per connection of the pool. Each thread connects (a nonblocking connect waited
 * for in {% if v.windows %}WSAPoll() beside the stop socket{% else %}poll() beside the stop pipe{% endif %}, so the connect timeout and a stop both cut it short),
 * serves its connection with the same machinery as the event loops, and after a failure
 * backs off and tries again. Callbacks take the worker's lock, so a handler needs no locking
 * of its own, exactly as in the event-loop models.
 */

enum { MEMBER_STACK_SIZE = 262144 }; /* buffers live on the heap: a small stack is enough */

{% if v.windows %}
static SRWLOCK worker_lock = SRWLOCK_INIT;
{%- else %}
static pthread_mutex_t worker_lock = PTHREAD_MUTEX_INITIALIZER;
{%- endif %}
static struct {{ v.name }}_worker worker_state;

{% include "c/blocking_conn_run.c" %}

/* Waits for a stop request and, unless fd is NO_SOCKET, for `events` on fd, until `until`
 * (NO_DEADLINE: no limit). 1: fd is ready; 0: a stop was requested; 2: the time is up;
 * -1: the wait failed (socket_error()). */
static int wait_for_socket_or_stop(client_socket fd, short events, uint64_t until)
{
    for (;;) {
        poll_slot fds[2];
        uint64_t now = now_ms();
        int timeout = until == NO_DEADLINE ? -1 : until > now ? (int)(until - now) : 0;
        int n;
        fds[0].fd = stop_watch();
        fds[0].events = POLLIN;
        fds[0].revents = 0;
        fds[1].fd = fd;
        fds[1].events = events;
        fds[1].revents = 0;
        n = poll_slots(fds, fd != NO_SOCKET ? 2 : 1, timeout);
        if (n < 0) {
            return -1;
        }
        if (fds[0].revents != 0) {
            return 0;
        }
        if (fd != NO_SOCKET && fds[1].revents != 0) {
            return 1;
        }
        if (now_ms() >= until) {
            return 2;
        }
    }
}

/* One attempt: resolve the host, then every address in order. 1: connected (m->fd); 0:
 * failed (noted); -1: stopped. */
static int member_attempt(struct member *m)
{
    m->address = 0;
    if (member_resolve(m) != 0) {
        return 0;
    }
    for (; m->address < m->target_count; m->address++) {
        int error = 0;
        int waited;
        if (member_connect(m, now_ms()) != 0) {
            member_note_error(m, "connect", socket_error());
            continue;
        }
        waited = wait_for_socket_or_stop(m->fd, POLLOUT, m->deadline_ms);
        if (waited == 1) {
            error = member_connect_result(m);
        } else {
            error = waited == 2 ? SOCKET_TIMED_OUT : socket_error();
        }
        if (waited != 0 && error == 0) {
            return 1;
        }
        close_socket(m->fd);
        m->fd = NO_SOCKET;
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
        c = attempt == 1 ? conn_open(m->fd, member_target(m), &worker_state, 0,
                                     {% if v.tcp %}NULL, {% endif %}now_ms())
                         : NULL;
        if (c == NULL) {
            if (attempt == 1) {
                member_note_error(m, "connect", ENOMEM);
                close_socket(m->fd);
                m->fd = NO_SOCKET;
            }
            member_attempt_failed(m, now_ms());
            continue;
        }
        m->fd = NO_SOCKET;
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


{% if v.windows %}
static unsigned __stdcall member_thread(void *arg)
{%- else %}
static void *member_thread(void *arg)
{%- endif %}
{
    struct member *m = arg;
    unsigned char *scratch = malloc({{ v.upper }}_BUFFER_SIZE);
    if (scratch == NULL) {
        fprintf(stderr, "%s: connection %u of %u: out of memory\n", {{ v.name }}_program,
                m->index + 1, command_line.connections);
        mark_run_failed();
        return 0;
    }
    member_run(m, scratch);
    free(scratch);
    return 0;
}

{%- if v.windows %}

/* Starts a thread per member (the console's stop handler runs on a thread of its own), waits
 * for them all, then reports. */
static int loop_main(void)
{
    struct member *members = calloc(command_line.connections, sizeof *members);
    HANDLE *threads = calloc(command_line.connections, sizeof *threads);
    unsigned i, started = 0;
    if (members == NULL || threads == NULL) {
        log_errno("calloc");
        free(members);
        free(threads);
        return -1;
    }
    if (!worker_start(&worker_state, 0)) {
        free(members);
        free(threads);
        return -1;
    }
    for (; started < command_line.connections; started++) {
        uintptr_t thread;
        member_init(&members[started], started);
        thread = _beginthreadex(NULL, MEMBER_STACK_SIZE, member_thread, &members[started],
                                STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
        if (thread == 0) {
            fprintf(stderr, "%s: cannot start a thread for connection %u of %u: %s\n",
                    {{ v.name }}_program, started + 1, command_line.connections,
                    strerror(errno));
            mark_run_failed();
            break;
        }
        threads[started] = (HANDLE)thread;
    }
    for (i = 0; i < started; i++) {
        WaitForSingleObject(threads[i], INFINITE);
        CloseHandle(threads[i]);
    }
    {{ v.name }}_on_worker_stop(&worker_state);
    free(threads);
    members_release(members);
    free(members);
    return 0;
}
{%- else %}

/* Starts a thread per member (signals stay with the main thread, which only waits), joins
 * them all, then reports. */
static int loop_main(void)
{
    struct member *members = calloc(command_line.connections, sizeof *members);
    pthread_t *threads = calloc(command_line.connections, sizeof *threads);
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
    if (!worker_start(&worker_state, 0)) {
        pthread_attr_destroy(&attr);
        free(members);
        free(threads);
        return -1;
    }
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &blocked, &previous);
    for (; started < command_line.connections; started++) {
        int rc;
        member_init(&members[started], started);
        rc = pthread_create(&threads[started], &attr, member_thread, &members[started]);
        if (rc != 0) {
            fprintf(stderr, "%s: cannot start a thread for connection %u of %u: %s\n",
                    {{ v.name }}_program, started + 1, command_line.connections, strerror(rc));
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
    members_release(members);
    free(members);
    return 0;
}
{%- endif %}
{%- if v.windows %}
{% include "winsock/client_main.c" %}
{%- else %}
{% include "c/client_main.c" %}
{%- endif %}
