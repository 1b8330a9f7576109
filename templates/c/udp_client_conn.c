
/* ---------------------------------------------------------------------------------------------
 * A client's UDP socket: connect()ed to the server, so only its datagrams arrive and an ICMP
 * port unreachable comes back as a refused error (see udp_error_named). Same shape as a TCP
 * connection for the loops
 * (open, service, deadlines, release), minus the byte stream: a datagram is handed over whole
 * and a write sends one at once.
 */

/* Receive calls per socket per wakeup, so one busy socket cannot starve the others. */
enum { CONN_BUDGET = 16 };

enum conn_status {
    CONN_WAIT, /* nothing more to do until the socket is ready or a timer is due */
    CONN_MORE, /* budget spent with work left: service again soon */
    CONN_DONE  /* finished or failed: close it */
};

enum conn_phase { PHASE_OPEN, PHASE_DONE };

#define NO_DEADLINE UINT64_MAX

struct {{ v.name }}_conn {
    {{ v.socket_type }} fd;
    enum conn_phase phase;
    enum {{ v.name }}_close_reason reason;
    int error;               /* the socket call's error code (or ENOMEM) for the error reasons */
    int opened;              /* on_open ran, so on_close is owed */
    int info_text_ready;     /* info's text forms are filled in */
    unsigned member;         /* its slot in the client's pool */
    int failed;              /* {{ v.name }}_fail() was called: not retried */
    int heard;               /* a datagram came from the server: it was serving (the retry count
                              * starts over) */
    uint64_t last_active_ms; /* for the idle timeout */
    uint64_t timer_at_ms;    /* the handler's timer, or NO_DEADLINE */
    struct {{ v.name }}_info info;
    struct {{ v.name }}_worker *worker;
    struct {{ v.name }}_session session;
{%- if !v.thread_per_connection %}
    size_t heap_index;       /* position in the timer heap, or SIZE_MAX */
    uint64_t heap_key;       /* the deadline it is filed under (never later than the real one) */
{%- endif %}
{%- if v.uses_epoll || v.completion %}
    struct {{ v.name }}_conn *prev, *next; /* every open socket, for shutdown */
{%- endif %}
{%- if v.uses_iocp %}
    /* The one overlapped receive: the socket is freed only when it is no longer pending. */
    struct overlapped_op recv_op;
    int recv_pending;
    int cancelled;           /* CancelIoEx was called for it */
    unsigned char *recv_buf; /* Windows writes into it until the receive completes */
{%- endif %}
{%- if v.uses_io_uring %}
    /* Requests in the ring for this socket: it is freed only when none is left. */
    int recv_armed;          /* a multishot receive is active */
    int cancel_inflight;     /* its cancel, when the socket is done */
    struct msghdr recv_msg;  /* the layout the multishot receive fills in: no name, no control */
{%- endif %}
{%- if v.uses_epoll %}
    struct {{ v.name }}_conn *ready_next;  /* the loop's list of sockets with work left */
    int in_ready;
    int released;            /* closed while still on the ready list; freed when popped */
    int read_to_eagain;      /* unused for datagrams: every read goes on until EAGAIN */
{%- endif %}
{%- if v.uses_poll %}
    int more;                /* spent its budget with work left */
    size_t slot;             /* its index in the loop's pollfd array */
{%- endif %}
{%- if v.thread_per_connection %}
    worker_mutex *worker_lock; /* callbacks of one worker never run at the same time */
{%- endif %}
};

typedef struct {{ v.name }}_conn Conn;

static shared_counter last_conn_id;
static shared_counter oversized_datagrams; /* longer than io.buffer_size: dropped */
{% include "c/conn_shims.c" %}
{%- if v.windows %}
{% include "winsock/udp_client_socket.c" %}
{%- else %}
{% include "c/udp_client_socket.c" %}
{%- endif %}

/* Ends the socket at once for a reason the loop found. */
static void conn_end(Conn *c, enum {{ v.name }}_close_reason reason, int error)
{
    if (c->phase == PHASE_OPEN) {
        c->reason = reason;
        c->error = error;
    }
    c->phase = PHASE_DONE;
}

/* A failed send or receive: a refused port is the server's doing, anything else an error. */
static void conn_fail(Conn *c, int error)
{
    error = udp_error_named(error);
    conn_end(c, error == UDP_REFUSED ? {{ v.upper }}_CLOSE_RESET : {{ v.upper }}_CLOSE_ERROR,
             error);
}

static inline int {{ v.name }}_write(Conn *c, const void *data, size_t len)
{
    int error;
    if (c->phase != PHASE_OPEN || len > {{ v.upper }}_OUTPUT_BUFFER) {
        return -1;
    }
    error = udp_send_now(c->fd, data, len);
    if (error > 0) {
        conn_fail(c, error);
    }
    return error == 0 ? 0 : -1;
}

static inline int {{ v.name }}_printf(Conn *c, const char *format, ...)
{
    char text[{{ v.upper }}_OUTPUT_BUFFER < 65536 ? {{ v.upper }}_OUTPUT_BUFFER + 1 : 65536];
    va_list args;
    int n;
    va_start(args, format);
    n = vsnprintf(text, sizeof text, format, args);
    va_end(args);
    if (n < 0 || (size_t)n >= sizeof text) {
        return -1;
    }
    return {{ v.name }}_write(c, text, (size_t)n);
}

static inline void {{ v.name }}_timer_set(Conn *c, uint32_t ms)
{
    c->timer_at_ms = now_ms() + ms;
}

static inline void {{ v.name }}_timer_cancel(Conn *c)
{
    c->timer_at_ms = NO_DEADLINE;
}

static inline void {{ v.name }}_close(Conn *c)
{
    if (c->phase == PHASE_OPEN) {
        c->phase = PHASE_DONE;
        c->reason = {{ v.upper }}_CLOSE_HANDLER;
    }
}

/* ---- the machinery ---- */
{%- if v.uses_epoll || v.completion %}

/* The loop's list of open sockets, walked at shutdown to close each one. */
static void conn_list_add(Conn **all, Conn *c)
{
    c->prev = NULL;
    c->next = *all;
    if (*all != NULL) {
        (*all)->prev = c;
    }
    *all = c;
}

static void conn_list_remove(Conn **all, Conn *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        *all = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
}
{%- endif %}

/* The earliest moment the loop must look at this socket again without socket events. */
static uint64_t conn_deadline(const Conn *c)
{
    uint64_t at = c->phase == PHASE_OPEN ? c->timer_at_ms : NO_DEADLINE;
#if {{ v.upper }}_IDLE_TIMEOUT_MS > 0
    if (c->phase == PHASE_OPEN && c->last_active_ms + {{ v.upper }}_IDLE_TIMEOUT_MS < at) {
        at = c->last_active_ms + {{ v.upper }}_IDLE_TIMEOUT_MS;
    }
#endif
    return at;
}

static Conn *conn_open({{ v.socket_type }} fd, const struct sockaddr_storage *peer,
                       struct {{ v.name }}_worker *worker, unsigned worker_index, uint64_t now)
{
    socklen_t local_len = (socklen_t)sizeof(struct sockaddr_storage);
    Conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        log_errno("calloc");
        return NULL;
    }
    c->fd = fd;
    c->phase = PHASE_OPEN;
    c->last_active_ms = now;
    c->timer_at_ms = NO_DEADLINE;
{%- if !v.thread_per_connection %}
    c->heap_index = SIZE_MAX;
{%- endif %}
    c->worker = worker;
    c->info.id = shared_counter_next(&last_conn_id);
    c->info.worker = worker_index;
    c->info.peer = *peer;
    if (getsockname(fd, (struct sockaddr *)&c->info.local, &local_len) != 0) {
        memset(&c->info.local, 0, sizeof c->info.local);
    }
    return c;
}

/* Runs on_open once the loop has filed the socket (it may write, close or set a timer). */
static void conn_start(Conn *c)
{
    handler_enter(c);
    c->opened = 1;
    {{ v.name }}_on_open(&c->session, c);
    handler_leave(c);
}

/* Calls on_close with the reason decided earlier and closes the socket; the struct is the
 * caller's. */
static void conn_release(Conn *c)
{
    c->phase = PHASE_DONE;
    if (c->opened) {
        handler_enter(c);
        {{ v.name }}_on_close(&c->session, c, c->reason, c->error);
        handler_leave(c);
    }
    OP_LOG("close", c->fd, " reason=%s error=%d", {{ v.name }}_close_reason_name(c->reason),
           c->error);
    udp_socket_close(&c->fd);
}

/* The loop found a deadline passed: the handler's timer or the idle timeout. */
static void conn_expire(Conn *c, uint64_t now)
{
    if (c->phase != PHASE_OPEN) {
        return;
    }
    if (c->timer_at_ms <= now) {
        c->timer_at_ms = NO_DEADLINE;
        handler_enter(c);
        {{ v.name }}_on_timer(&c->session, c);
        handler_leave(c);
    }
#if {{ v.upper }}_IDLE_TIMEOUT_MS > 0
    if (c->phase == PHASE_OPEN && c->last_active_ms + {{ v.upper }}_IDLE_TIMEOUT_MS <= now) {
        int pending = udp_pending_error(c->fd);
        if (pending != 0) {
            conn_fail(c, pending);
            return;
        }
        conn_end(c, {{ v.upper }}_CLOSE_IDLE, 0);
    }
#endif
}
{%- if v.uses_poll || v.thread_per_connection %}

/* What a poll()-based wait asks for: datagrams (errors such as a refused port come with them). */
static short conn_poll_events(const Conn *c)
{
    (void)c;
    return POLLIN;
}
{%- endif %}

/* One datagram for the handler, whole. One longer than io.buffer_size (len says so: see
 * udp_receive) is dropped and logged, never handled cut short. */
static void conn_deliver(Conn *c, const unsigned char *data, size_t len, uint64_t now)
{
    c->last_active_ms = now;
    c->heard = 1;
    if (len > {{ v.upper }}_BUFFER_SIZE) {
        log_shared_occurrence("dropped a datagram longer than io.buffer_size",
                              &oversized_datagrams);
        return;
    }
    handler_enter(c);
    {{ v.name }}_on_message(&c->session, c, data, len);
    handler_leave(c);
}
{%- if !v.completion %}

/* Reads datagrams until the socket is empty or the budget is spent. */
static int conn_service(Conn *c, unsigned char *scratch, uint64_t now)
{
    int budget;
    for (budget = 0; budget < CONN_BUDGET && c->phase == PHASE_OPEN; budget++) {
        size_t len = 0;
        int error = udp_receive(c->fd, scratch, &len);
        if (error == UDP_EMPTY) {
            return CONN_WAIT;
        }
        if (error == UDP_INTERRUPTED) {
            continue;
        }
        if (error != 0) {
            conn_fail(c, error);
            continue;
        }
        conn_deliver(c, scratch, len, now);
    }
    return c->phase != PHASE_OPEN ? CONN_DONE : CONN_MORE;
}
{%- endif %}
