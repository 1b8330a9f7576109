{%- include "c/header_comment.c" %}

{% include "winsock/prelude.c" %}
{% include "c/handler_slot.c" %}
{{ v.implementation_open }}
{% include "winsock/runtime.c" %}
{%- if v.tcp %}
{% include "c/tcp_conn.c" %}
{% include "winsock/conn_socket.c" %}
{% include "c/conn_readiness.c" %}
{{ v.runtime_close }}

/* ---------------------------------------------------------------------------------------------
 * Thread per connection. Each thread sleeps in WSAPoll on its socket, the stop socket and its
 * next deadline, and runs the same connection machinery as the event loops, so the handler
 * contract (back-pressure, EOF, lingering close, timers) is the same here. The accept loop
 * waits on the listener and the stop socket together; at most
 * {{ v.upper }}_MAX_CONNECTIONS threads run, beyond that peers wait in the backlog.
 */

static SRWLOCK slots_lock = SRWLOCK_INIT;
static CONDITION_VARIABLE slots_changed = CONDITION_VARIABLE_INIT; /* a thread finished, or a
                                                                    * stop came */
static unsigned active_connections;

/* The one worker: its state, and the lock its connection threads take around callbacks. */
static SRWLOCK worker_lock = SRWLOCK_INIT;
static struct {{ v.name }}_worker worker_state;

static void wake_accept_loop(void)
{
    AcquireSRWLockExclusive(&slots_lock);
    WakeAllConditionVariable(&slots_changed);
    ReleaseSRWLockExclusive(&slots_lock);
}

{% include "c/blocking_conn_run.c" %}

static unsigned __stdcall connection_thread(void *arg)
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

    AcquireSRWLockExclusive(&slots_lock);
    active_connections--;
    WakeAllConditionVariable(&slots_changed);
    ReleaseSRWLockExclusive(&slots_lock);
    return 0;
}

static int start_connection(SOCKET s, const struct sockaddr_storage *peer)
{
    static shared_counter thread_failures;
    uintptr_t thread;
    Conn *c = conn_open(s, peer, &worker_state, 0, NULL, now_ms());
    if (c == NULL) {
        return -1;
    }
    c->worker_lock = &worker_lock;
    /* The buffers live on the heap: a small stack is enough. */
    thread = _beginthreadex(NULL, {{ v.upper }}_STACK_SIZE, connection_thread, c,
                            STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
    if (thread == 0) {
        log_shared_occurrence("cannot start a connection thread: connection refused",
                              &thread_failures);
        c->fd = INVALID_SOCKET; /* the caller closes it */
        free(c);
        return -1;
    }
    CloseHandle((HANDLE)thread); /* detached: it ends by itself */
    return 0;
}

/* The accept loop; every connection thread watches the stop socket too. */
static int loop_main(SOCKET listener, unsigned index)
{
    int status = -1;
    if (!worker_begin(&worker_state, index)) {
        return -1;
    }
    for (;;) {
        struct sockaddr_storage peer;
        enum accept_result got;
        SOCKET s;
        int ready;

        /* At the limit, wait for a thread to finish instead of accepting. */
        AcquireSRWLockExclusive(&slots_lock);
        while (active_connections >= {{ v.upper }}_MAX_CONNECTIONS && !stop_is_requested()) {
            SleepConditionVariableSRW(&slots_changed, &slots_lock, INFINITE, 0);
        }
        ReleaseSRWLockExclusive(&slots_lock);
        ready = wait_for_socket_or_stop(listener, POLLRDNORM, -1);
        if (ready <= 0) {
            status = ready;
            break;
        }
        got = accept_connection(listener, &s, &peer);
        if (got == ACCEPT_EXHAUSTED) {
            /* Out of sockets or memory: pause, or the readable listener would spin us. */
            ready = wait_for_socket_or_stop(INVALID_SOCKET, 0, ACCEPT_PAUSE_MS);
            if (ready == 0 || ready < 0) {
                status = ready;
                break;
            }
            continue;
        }
        if (got != ACCEPT_OK) {
            continue;
        }
        AcquireSRWLockExclusive(&slots_lock);
        active_connections++;
        ReleaseSRWLockExclusive(&slots_lock);
        if (start_connection(s, &peer) != 0) {
            closesocket(s);
            AcquireSRWLockExclusive(&slots_lock);
            active_connections--;
            ReleaseSRWLockExclusive(&slots_lock);
        }
    }
    /* Every connection thread sees the stop socket too: wait until each has run on_close. */
    AcquireSRWLockExclusive(&slots_lock);
    while (active_connections > 0) {
        SleepConditionVariableSRW(&slots_changed, &slots_lock, INFINITE, 0);
    }
    ReleaseSRWLockExclusive(&slots_lock);
    {{ v.name }}_on_worker_stop(&worker_state);
    return status;
}
{%- else %}
{{ v.runtime_close }}
{% include "winsock/udp.c" %}
{%- endif %}
{% include "winsock/main.c" %}
