
/* ---------------------------------------------------------------------------------------------
 * One TCP connection: the handler contract's machinery, shared by every model; {{ v.model }}
 * only decides when to call conn_service() and when timers are due.
 *
 * Input is read into a per-loop scratch buffer; only what the handler leaves unconsumed is
 * copied into the connection's own buffer. Output is a list of chunks sent with sendmsg()
 * and an iovec, so a partial send costs no copying. A connection moves through phases:
 *   OPEN     the handler is called;
 *   CLOSING  after {{ v.name }}_close() or EOF: queued output is sent, input is read and dropped;
 *   LINGER   after shutdown(SHUT_WR): input is dropped until the peer's FIN or server.linger_ms,
 *            so unread input cannot turn close() into a reset that destroys the reply;
 *   DONE     closed next, with on_close(reason).
 */

/* Receive calls per connection per wakeup, so one busy peer cannot starve the others. */
enum { CONN_BUDGET = 16 };
/* Chunk size of the output queue; a larger write gets one chunk of its own size. */
enum { OUT_CHUNK = 16384 };
/* Chunks handed to one sendmsg(). */
enum { OUT_IOV = 16 };
{%- if v.framing_overhead > 0 %}
/* Most input left unconsumed while the handler is not pacing itself: a message of
 * io.max_message and the framing bytes that may sit beside it before its end can be seen, so
 * the limit is on the message whatever the segmentation. */
#define INPUT_LIMIT ((size_t){{ v.upper }}_MAX_MESSAGE + {{ v.framing_overhead }}u)
{%- else %}
/* Most input left unconsumed while the handler is not pacing itself. */
#define INPUT_LIMIT ((size_t){{ v.upper }}_MAX_MESSAGE)
{%- endif %}
/* Most input one call to the handler is given: what it may leave unconsumed and one receive.
 * A completion model can hold more (what arrived while the handler paced itself); it is
 * presented in windows of this size, so every model draws the input limit in the same place. */
#define PRESENT_MAX (INPUT_LIMIT + (size_t){{ v.upper }}_BUFFER_SIZE)

enum conn_status {
    CONN_WAIT, /* nothing more to do until the socket is ready or a timer is due */
    CONN_MORE, /* budget spent with work left: service again soon */
    CONN_DONE  /* finished or failed: close it */
};

enum conn_phase { PHASE_OPEN, PHASE_CLOSING, PHASE_LINGER, PHASE_DONE };

#define NO_DEADLINE UINT64_MAX

struct out_chunk {
    struct out_chunk *next;
    size_t head; /* first byte not yet sent */
    size_t tail; /* end of the bytes queued */
    size_t cap;
    unsigned char data[];
};

/* Chunks of OUT_CHUNK bytes an event loop keeps for reuse: a connection whose queue is empty
 * holds none, so an idle connection costs its struct and no chunk, and a busy loop still does
 * not call malloc for each reply. A thread per connection has no cache (NULL): its chunks go
 * back to malloc when its queue empties. */
enum { CHUNK_CACHE_MAX = 32 };
struct chunk_cache {
    struct out_chunk *free;
    unsigned count;
};
{%- if v.uses_io_uring %}

/* What a sendmsg of several chunks hands the kernel, which may read it until the completion.
 * Made for such a send only (a single chunk goes with send()), so an idle connection does
 * not carry it. */
struct send_gather {
    struct msghdr msg;
    struct iovec iov[OUT_IOV];
};
{%- endif %}

{%- if !v.thread_per_connection %}

static void chunk_cache_drain(struct chunk_cache *cache)
{
    while (cache->free != NULL) {
        struct out_chunk *next = cache->free->next;
        free(cache->free);
        cache->free = next;
    }
    cache->count = 0;
}
{%- endif %}

struct {{ v.name }}_conn {
    {{ v.socket_type }} fd;
    enum conn_phase phase;
    enum {{ v.name }}_close_reason reason;
    int error;               /* the socket call's error code (or ENOMEM) for the error reasons */
    int opened;              /* on_open ran, so on_close is owed */
    int read_closed;         /* the peer's FIN was read */
    int eof_pending;         /* ...and on_eof is still owed */
    int input_held;          /* input waits for the handler (left while congested, or behind a
                              * reply it produced on demand): present it again */
    int read_paused;         /* output above the high-water mark: do not read */
    int input_paused;        /* the handler paused its input until it resumes it */
    int want_writable;
    int reset_on_close;      /* {{ v.name }}_abort(): SO_LINGER 0 */
    int info_text_ready;     /* info's text forms are filled in */
{%- if v.client %}
    unsigned member;         /* its slot in the client's pool */
    int failed;              /* {{ v.name }}_fail() was called: not retried */
    int heard;               /* bytes came from the server: it was serving (the retry count
                              * starts over) */
{%- endif %}
{%- if v.uses_epoll %}
    int read_to_eagain;      /* a short read may not mean empty: the peer hung up (the FIN can
                              * sit behind the data) or sent urgent data (a read stops at its
                              * mark) */
{%- endif %}
    uint64_t last_active_ms; /* for the idle timeout */
    uint64_t timer_at_ms;    /* the handler's timer, or NO_DEADLINE */
    uint64_t linger_until_ms;
    /* Unconsumed input: in_len bytes from in_buf + in_start. */
    unsigned char *in_buf;
    size_t in_start, in_len, in_cap;
{%- if v.framing == FramingKind::Line || v.framing == FramingKind::Delimiter %}
    size_t frame_scanned;    /* leading unconsumed bytes known to hold no delimiter */
{%- endif %}
    /* Queued output. */
    struct out_chunk *out_head, *out_tail;
    size_t out_pending;
    struct chunk_cache *chunks; /* the loop's, or NULL */
    struct {{ v.name }}_info info;
    struct {{ v.name }}_worker *worker;
    struct {{ v.name }}_session session;
    /* The loop's bookkeeping. */
    size_t heap_index;       /* position in the timer heap, or SIZE_MAX */
    uint64_t heap_key;       /* the deadline it is filed under (never later than the real one) */
{%- if v.uses_epoll || v.uses_io_uring %}
    struct {{ v.name }}_conn *prev, *next; /* every open connection, for shutdown */
{%- endif %}
{%- if v.uses_epoll %}
    struct {{ v.name }}_conn *ready_next;  /* the loop's list of connections with work left */
    int in_ready;
    int released;            /* closed while still on the ready list; freed when popped */
{%- endif %}
{%- if v.uses_io_uring %}
    /* Requests in the ring for this connection. It is freed only when none is left, since
     * the kernel may still write to its buffers or read its output queue until then. */
    int recv_armed;          /* a multishot receive is active */
    int recv_cancelling;     /* ...and a cancel for it is in the ring */
    int send_inflight;       /* at most one send at a time, so bytes never overtake each other */
    int cancel_inflight;     /* the cancel of everything on the socket, when it is done */
    struct send_gather *gather; /* the sendmsg in flight's header and iovec, or NULL */
{%- endif %}
{%- if v.uses_poll %}
    int more;                /* spent its budget with work left */
    size_t slot;             /* its index in the loop's pollfd array */
{%- endif %}
{%- if v.thread_per_connection %}
    worker_mutex *worker_lock; /* callbacks of one worker never run at the same time */
{%- endif %}
{%- if v.uses_iocp %}
    /* Overlapped requests of this connection. It is freed only when none is left, since
     * Windows may still write to its buffers or read its output queue until then. */
    struct overlapped_op recv_op, send_op;
    unsigned char *recv_buf; /* what the outstanding WSARecv fills */
    int recv_pending;        /* a WSARecv is outstanding */
    int send_pending;        /* at most one WSASend at a time, so bytes never overtake each other */
    int cancelled;           /* CancelIoEx ran: what is outstanding completes as aborted */
    int skips_port;          /* a request that completes at once queues no completion */
    int resume_pending;      /* a resume packet for it is in the port */
    struct {{ v.name }}_conn *prev, *next; /* every open connection, for shutdown */
    WSABUF send_bufs[OUT_IOV];
{%- endif %}
};

typedef struct {{ v.name }}_conn Conn;

static shared_counter last_conn_id;
static shared_counter output_limit_closes, input_limit_closes; /* every worker counts here */

/* What the connection core needs from the platform, defined with the platform's socket calls
 * further down (beside out_gather() and, in a readiness model, conn_flush(), conn_recv() and
 * conn_io_failure()), before the model's I/O: conn_service() or conn_receive(). */
static int conn_error_is_reset(int error);
static void conn_forget_socket(Conn *c); /* closes the socket and forgets it */
static int conn_shutdown_send(Conn *c);  /* the half-close: 0, or -1 */

/* How a socket call that did nothing failed. */
enum conn_io { CONN_IO_INTERRUPTED, CONN_IO_WOULD_BLOCK, CONN_IO_FAILED };

{% include "c/conn_shims.c" %}

static inline size_t {{ v.name }}_pending(const Conn *c)
{
    return c->out_pending;
}

static inline int {{ v.name }}_congested(const Conn *c)
{
    return c->out_pending >= {{ v.upper }}_OUTPUT_BUFFER;
}

/* A reply produced on demand has ended: input that waited behind it is presented again. */
static inline void conn_producer_stopped(Conn *c)
{
    c->want_writable = 0;
    if (c->in_len > 0) {
        c->input_held = 1;
    }
}

static inline void {{ v.name }}_want_writable(Conn *c, int on)
{
    if (!on && c->want_writable) {
        conn_producer_stopped(c);
    }
    c->want_writable = on != 0;
}

static inline void {{ v.name }}_pause_input(Conn *c)
{
    c->input_paused = 1;
}

static inline void {{ v.name }}_resume_input(Conn *c)
{
    c->input_paused = 0;
    c->input_held = c->in_len > 0;
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
        c->phase = PHASE_CLOSING;
        c->reason = c->read_closed ? {{ v.upper }}_CLOSE_PEER : {{ v.upper }}_CLOSE_HANDLER;
    }
}

static inline void {{ v.name }}_abort(Conn *c)
{
    if (c->phase != PHASE_DONE) {
        c->phase = PHASE_DONE;
        c->reason = {{ v.upper }}_CLOSE_ABORT;
        c->reset_on_close = 1;
    }
}

/* Ends the connection at once for a reason the loop found. A graceful close already under
 * way keeps the reason it began with, unless an error cuts it short. */
static void conn_end(Conn *c, enum {{ v.name }}_close_reason reason, int error)
{
    int is_error = reason == {{ v.upper }}_CLOSE_RESET || reason == {{ v.upper }}_CLOSE_ERROR;
    if (c->phase == PHASE_OPEN || (c->phase != PHASE_DONE && is_error)) {
        c->reason = reason;
        c->error = error;
    }
    c->phase = PHASE_DONE;
}

/* Input past io.max_message: what was queued is still delivered, then a lingering close. */
static void conn_reject_input(Conn *c)
{
    if (c->phase == PHASE_OPEN) {
        log_shared_occurrence("closed a connection whose input is longer than io.max_message",
                              &input_limit_closes);
        c->phase = PHASE_CLOSING;
        c->reason = {{ v.upper }}_CLOSE_INPUT_LIMIT;
    }
}

/* A failed send or receive: resets are the peer's doing, anything else is an error. */
static void conn_fail(Conn *c, int error)
{
    int reset = conn_error_is_reset(error);
    conn_end(c, reset ? {{ v.upper }}_CLOSE_RESET : {{ v.upper }}_CLOSE_ERROR, error);
}

/* Room for at least `want` bytes at the tail of the queue; NULL when out of memory. */
static struct out_chunk *out_reserve(Conn *c, size_t want)
{
    struct out_chunk *chunk = c->out_tail;
    size_t cap;
    if (chunk != NULL && chunk->cap - chunk->tail >= want) {
        return chunk;
    }
    if (want <= OUT_CHUNK && c->chunks != NULL && c->chunks->free != NULL) {
        chunk = c->chunks->free;
        c->chunks->free = chunk->next;
        c->chunks->count--;
    } else {
        cap = want > OUT_CHUNK ? want : OUT_CHUNK;
        chunk = malloc(sizeof *chunk + cap);
        if (chunk == NULL) {
            return NULL;
        }
        chunk->cap = cap;
    }
    chunk->next = NULL;
    chunk->head = 0;
    chunk->tail = 0;
    if (c->out_tail != NULL) {
        c->out_tail->next = chunk;
    } else {
        c->out_head = chunk;
    }
    c->out_tail = chunk;
    return chunk;
}

/* Checks that len more bytes may be queued; past the hard limit the connection ends. */
static int out_admit(Conn *c, size_t len)
{
    if (c->phase != PHASE_OPEN && c->phase != PHASE_CLOSING) {
        return -1;
    }
    if ((unsigned long long)c->out_pending + len > {{ v.upper }}_OUTPUT_LIMIT) {
        log_shared_occurrence((unsigned long long)len > {{ v.upper }}_OUTPUT_LIMIT
                                  ? "closed a connection: the handler made one write larger than "
                                    "io.output_limit"
                                  : "closed a connection past io.output_limit (the peer does not "
                                    "read as fast as the handler writes)",
                              &output_limit_closes);
        conn_end(c, {{ v.upper }}_CLOSE_OUTPUT_LIMIT, 0);
        return -1;
    }
    return 0;
}

static inline int {{ v.name }}_write(Conn *c, const void *data, size_t len)
{
    const unsigned char *bytes = data;
    if (out_admit(c, len) != 0) {
        return -1;
    }
    while (len > 0) {
        struct out_chunk *chunk = c->out_tail;
        size_t n;
        if (chunk == NULL || chunk->tail == chunk->cap) {
            chunk = out_reserve(c, len);
            if (chunk == NULL) {
                conn_end(c, {{ v.upper }}_CLOSE_ERROR, ENOMEM);
                return -1;
            }
        }
        n = chunk->cap - chunk->tail;
        if (n > len) {
            n = len;
        }
        memcpy(chunk->data + chunk->tail, bytes, n);
        chunk->tail += n;
        c->out_pending += n;
        bytes += n;
        len -= n;
    }
    return 0;
}

static inline int {{ v.name }}_printf(Conn *c, const char *format, ...)
{
    struct out_chunk *chunk;
    va_list args;
    int needed;
    va_start(args, format);
    needed = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (needed < 0 || out_admit(c, (size_t)needed) != 0) {
        return -1;
    }
    chunk = out_reserve(c, (size_t)needed + 1); /* vsnprintf writes a NUL we do not send */
    if (chunk == NULL) {
        conn_end(c, {{ v.upper }}_CLOSE_ERROR, ENOMEM);
        return -1;
    }
    va_start(args, format);
    vsnprintf((char *)chunk->data + chunk->tail, (size_t)needed + 1, format, args);
    va_end(args);
    chunk->tail += (size_t)needed;
    c->out_pending += (size_t)needed;
    return 0;
}

/* ---- the machinery ---- */
{%- if v.uses_epoll || v.completion %}

/* The loop's list of open connections, walked at shutdown to close each one. */
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

/* The earliest moment the loop must look at this connection again without socket events. */
static uint64_t conn_deadline(const Conn *c)
{
    uint64_t at = c->phase == PHASE_OPEN ? c->timer_at_ms : NO_DEADLINE;
    if (c->phase == PHASE_LINGER) {
        return c->linger_until_ms < at ? c->linger_until_ms : at;
    }
#if {{ v.upper }}_IDLE_TIMEOUT_MS > 0
    if (c->last_active_ms + {{ v.upper }}_IDLE_TIMEOUT_MS < at) {
        at = c->last_active_ms + {{ v.upper }}_IDLE_TIMEOUT_MS;
    }
#endif
    return at;
}

static Conn *conn_open({{ v.socket_type }} fd, const struct sockaddr_storage *peer,
                       struct {{ v.name }}_worker *worker, unsigned worker_index,
                       struct chunk_cache *chunks, uint64_t now)
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
    c->heap_index = SIZE_MAX;
    c->worker = worker;
    c->chunks = chunks;
    c->info.id = shared_counter_next(&last_conn_id);
    c->info.worker = worker_index;
    c->info.peer = *peer;
    if (getsockname(fd, (struct sockaddr *)&c->info.local, &local_len) != 0) {
        memset(&c->info.local, 0, sizeof c->info.local);
    }
    return c;
}

/* Runs on_open once the loop has filed the connection (it may write, close or set a timer). */
static void conn_start(Conn *c)
{
    handler_enter(c);
    c->opened = 1;
    {{ v.name }}_on_open(&c->session, c);
    handler_leave(c);
}

/* Calls on_close with the reason decided earlier and closes the socket; the buffers stay, for
 * a completion model whose requests may still use them (conn_free_buffers). */
static void conn_close_socket(Conn *c)
{
    c->phase = PHASE_DONE;
    if (c->opened) {
        handler_enter(c);
        {{ v.name }}_on_close(&c->session, c, c->reason, c->error);
        handler_leave(c);
    }
    if (c->reset_on_close) {
        struct linger lg;
        lg.l_onoff = 1;
        lg.l_linger = 0;
        (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, (const char *)&lg, (socklen_t)sizeof lg);
    }
    OP_LOG("close", c->fd, " reason=%s error=%d", {{ v.name }}_close_reason_name(c->reason),
           c->error);
    conn_forget_socket(c);
}

/* A chunk the queue is done with goes to the loop's cache while it has room, else to malloc. */
static void out_chunk_retire(Conn *c, struct out_chunk *chunk)
{
    if (chunk->cap == OUT_CHUNK && c->chunks != NULL && c->chunks->count < CHUNK_CACHE_MAX) {
        chunk->next = c->chunks->free;
        c->chunks->free = chunk;
        c->chunks->count++;
    } else {
        free(chunk);
    }
}

/* Frees the input and output buffers; the struct is the caller's. */
static void conn_free_buffers(Conn *c)
{
    struct out_chunk *chunk = c->out_head;
    while (chunk != NULL) {
        struct out_chunk *next = chunk->next;
        out_chunk_retire(c, chunk);
        chunk = next;
    }
    free(c->in_buf);
    c->out_head = c->out_tail = NULL;
    c->in_buf = NULL;
{%- if v.uses_io_uring %}
    free(c->gather);
    c->gather = NULL;
{%- endif %}
}

/* on_close, close and free the buffers: for a connection nothing else refers to. */
static void conn_release(Conn *c)
{
    conn_close_socket(c);
    conn_free_buffers(c);
}

/* `n` bytes of the queue were sent: whole chunks are retired, the first partly sent one only
 * moves its head. */
static void out_consume(Conn *c, size_t n, uint64_t now)
{
    c->last_active_ms = now;
    c->out_pending -= n;
    while (c->out_head != NULL) {
        struct out_chunk *chunk = c->out_head;
        size_t queued = chunk->tail - chunk->head;
        if (n < queued) {
            chunk->head += n;
            break;
        }
        n -= queued;
        c->out_head = chunk->next;
        if (c->out_head == NULL) {
            c->out_tail = NULL;
        }
        out_chunk_retire(c, chunk);
    }
}


/* Makes room for one more receive after the unconsumed input; -1 when out of memory. */
static int conn_input_room(Conn *c)
{
    if (c->in_start > 0 && c->in_start + c->in_len + {{ v.upper }}_BUFFER_SIZE > c->in_cap) {
        memmove(c->in_buf, c->in_buf + c->in_start, c->in_len);
        c->in_start = 0;
    }
    if (c->in_len + {{ v.upper }}_BUFFER_SIZE > c->in_cap) {
        size_t cap = c->in_cap == 0 ? 2u * {{ v.upper }}_BUFFER_SIZE : 2 * c->in_cap;
        unsigned char *grown;
        while (cap < c->in_len + {{ v.upper }}_BUFFER_SIZE) {
            cap *= 2;
        }
        grown = realloc(c->in_buf, cap);
        if (grown == NULL) {
            return -1;
        }
        c->in_buf = grown;
        c->in_cap = cap;
    }
    return 0;
}

{%- if v.framed %}

static inline int {{ v.name }}_send_message(Conn *c, const void *msg, size_t len)
{
{%- if v.framing == FramingKind::Line %}
    if ({{ v.name }}_write(c, msg, len) != 0) {
        return -1;
    }
    return {{ v.name }}_write(c, "\n", 1);
{%- else if v.framing == FramingKind::Delimiter %}
    static const unsigned char delimiter[{{ v.delimiter_len }}] = { {{ v.delimiter_bytes }} };
    if ({{ v.name }}_write(c, msg, len) != 0) {
        return -1;
    }
    return {{ v.name }}_write(c, delimiter, sizeof delimiter);
{%- else %}
    unsigned char prefix[{{ v.prefix_bytes }}];
    uint64_t length = len;
    int i;
{%- if v.prefix_bytes < 8 %}
    if (length >> (8 * {{ v.prefix_bytes }}) != 0) {
        return -1;
    }
{%- endif %}
    for (i = 0; i < {{ v.prefix_bytes }}; i++) {
{%- if v.prefix_big_endian %}
        prefix[{{ v.prefix_bytes }} - 1 - i] = (unsigned char)(length >> (8 * i));
{%- else %}
        prefix[i] = (unsigned char)(length >> (8 * i));
{%- endif %}
    }
    if ({{ v.name }}_write(c, prefix, sizeof prefix) != 0) {
        return -1;
    }
    return {{ v.name }}_write(c, msg, len);
{%- endif %}
}


/* Built-in framing ({{ v.framing }}): hands every whole message to on_message and consumes it.
{%- if v.client %}
 * A client takes every message while its output waits: the replies are what it asked for. */
{%- else %}
 * Stops while the output is congested, so a pipelining peer is paced by what it reads. */
{%- endif %}
static size_t framing_deliver(Conn *c, const unsigned char *data, size_t len)
{
    size_t used = 0;
{%- if v.framing == FramingKind::Line || v.framing == FramingKind::Delimiter %}
    /* A message arriving in many pieces is searched once, not once per piece: the search
     * resumes where the last one found nothing. */
    size_t skip = c->frame_scanned < len ? c->frame_scanned : 0;
    c->frame_scanned = 0;
{%- endif %}
    while (c->phase == PHASE_OPEN && used < len{% if !v.client %} && !{{ v.name }}_congested(c){% endif %}) {
        const unsigned char *start = data + used;
        size_t avail = len - used;
{%- if v.framing == FramingKind::Line %}
        const unsigned char *end = memchr(start + skip, '\n', avail - skip);
        size_t msg_len;
        if (end == NULL) {
            c->frame_scanned = avail;
            break;
        }
        skip = 0;
        msg_len = (size_t)(end - start);
        if (msg_len > 0 && start[msg_len - 1] == '\r') {
            msg_len--;
        }
        if (msg_len > {{ v.upper }}_MAX_MESSAGE) {
            conn_reject_input(c);
            break;
        }
        used += (size_t)(end - start) + 1;
        {{ v.name }}_on_message(&c->session, c, start, msg_len);
{%- else if v.framing == FramingKind::Delimiter %}
        static const unsigned char delimiter[{{ v.delimiter_len }}] = { {{ v.delimiter_bytes }} };
        const unsigned char *end = find_bytes(start + skip, avail - skip, delimiter,
                                              sizeof delimiter);
        size_t msg_len;
        if (end == NULL) {
            /* A delimiter may begin in the last sizeof delimiter - 1 bytes. */
            c->frame_scanned = avail >= sizeof delimiter ? avail - (sizeof delimiter - 1) : 0;
            break;
        }
        skip = 0;
        msg_len = (size_t)(end - start);
        if (msg_len > {{ v.upper }}_MAX_MESSAGE) {
            conn_reject_input(c);
            break;
        }
        used += msg_len + sizeof delimiter;
        {{ v.name }}_on_message(&c->session, c, start, msg_len);
{%- else %}
        uint64_t msg_len = 0;
        int i;
        if (avail < {{ v.prefix_bytes }}u) {
            break;
        }
        for (i = 0; i < {{ v.prefix_bytes }}; i++) {
{%- if v.prefix_big_endian %}
            msg_len = (msg_len << 8) | start[i];
{%- else %}
            msg_len |= (uint64_t)start[i] << (8 * i);
{%- endif %}
        }
        if (msg_len > {{ v.upper }}_MAX_MESSAGE) {
            conn_reject_input(c);
            break;
        }
        if (avail - {{ v.prefix_bytes }}u < msg_len) {
            break;
        }
        used += {{ v.prefix_bytes }}u + (size_t)msg_len;
        {{ v.name }}_on_message(&c->session, c, start + {{ v.prefix_bytes }}, (size_t)msg_len);
{%- endif %}
    }
    return used;
}
{%- endif %}

/* Hands one window of input to the handler: `fresh` (just received into the scratch buffer)
 * after whatever the connection kept. Unconsumed bytes are kept for next time, up to
 * io.max_message. Returns 1 when input beyond the window waits and the handler can take it. */
static int conn_deliver_window(Conn *c, const unsigned char *fresh, size_t fresh_len)
{
    const unsigned char *data = fresh;
    size_t len = fresh_len;
    size_t used, left_in_window;
    if (c->in_len > 0) {
        data = c->in_buf + c->in_start; /* fresh bytes were received right after them */
        len = c->in_len < PRESENT_MAX ? c->in_len : PRESENT_MAX;
    }
    if (len == 0) {
        return 0;
    }
    handler_enter(c);
{%- if v.framed %}
    used = framing_deliver(c, data, len);
{%- else %}
    used = {{ v.name }}_on_data(&c->session, c, data, len);
{%- endif %}
    handler_leave(c);
    if (used > len) {
        used = len; /* a handler cannot consume what it was not given */
    }
    if (c->in_len > 0) {
        c->in_start += used;
        c->in_len -= used;
        if (c->in_len == 0) {
            c->in_start = 0;
            if (c->in_cap > 4u * {{ v.upper }}_BUFFER_SIZE) {
                free(c->in_buf); /* a large message is over: do not keep its buffer */
                c->in_buf = NULL;
                c->in_cap = 0;
            }
        }
    } else if (used < len && c->phase == PHASE_OPEN) {
        /* Keep the rest; the next receive appends to it. */
        if (c->in_cap < len - used) {
            free(c->in_buf);
            c->in_cap = 2u * {{ v.upper }}_BUFFER_SIZE > len - used
                            ? 2u * {{ v.upper }}_BUFFER_SIZE
                            : len - used;
            c->in_buf = malloc(c->in_cap);
            if (c->in_buf == NULL) {
                c->in_cap = 0;
                conn_end(c, {{ v.upper }}_CLOSE_ERROR, ENOMEM);
                return 0;
            }
        }
        memcpy(c->in_buf, data + used, len - used);
        c->in_start = 0;
        c->in_len = len - used;
    }
    left_in_window = len - used;
    c->input_held = c->in_len > 0 && ({{ v.name }}_congested(c) || c->input_paused);
{%- if v.client %}
    /* A client reads on while its output waits, so what it leaves unconsumed is bounded here
     * unless its handler paused its input. */
    if (c->in_len > 0 && c->input_paused) {
        return 0;
    } else if (left_in_window > INPUT_LIMIT) {
{%- else %}
    if (c->input_held) {
        /* Paced, not refused: reading stops, and what is held may be several messages, so
         * the input limit does not apply to it. */
        c->read_paused = 1;
        return 0;
    } else if (left_in_window > INPUT_LIMIT) {
{%- endif %}
        conn_reject_input(c);
        return 0;
    }
    return used > 0 && c->in_len > left_in_window && c->phase == PHASE_OPEN;
}

/* Hands input to the handler, window by window while it takes some. */
static void conn_deliver(Conn *c, const unsigned char *fresh, size_t fresh_len)
{
    while (conn_deliver_window(c, fresh, fresh_len)) {
        fresh_len = 0; /* what lies beyond the window is kept input, presented next */
    }
}


{% if v.client %}
/* Whether the connection takes input now: while open, unless paused by back-pressure
 * (never, for a client) or waiting for the handler to take EOF; while closing, to read and
 * drop what still comes. */
{%- else %}
/* Whether the connection takes input now: while open, unless paused by back-pressure or
 * waiting for the handler to take EOF; while closing, to read and drop what still comes. */
{%- endif %}
static int conn_wants_input(const Conn *c)
{
    return !c->read_closed
           && (c->phase != PHASE_OPEN || (!c->read_paused && !c->input_paused && !c->eof_pending));
}
{%- if v.uses_poll || v.thread_per_connection %}

/* What a poll()-based wait asks for: input while the connection takes it, output while some
 * waits. Nothing else is polled, so an idle connection costs nothing. */
static short conn_poll_events(const Conn *c)
{
    short events = 0;
    if (conn_wants_input(c)) {
        events |= POLLIN;
    }
    if (c->out_pending > 0) {
        events |= POLLOUT;
    }
    return events;
}
{%- endif %}

/* The loop found a deadline passed: the handler's timer, the idle timeout or the linger. */
static void conn_expire(Conn *c, uint64_t now)
{
    if (c->phase == PHASE_LINGER && now >= c->linger_until_ms) {
        c->phase = PHASE_DONE; /* the reason was decided when closing began */
        return;
    }
#if {{ v.upper }}_IDLE_TIMEOUT_MS > 0
    if (now >= c->last_active_ms + {{ v.upper }}_IDLE_TIMEOUT_MS) {
        conn_end(c, {{ v.upper }}_CLOSE_IDLE, 0);
        return;
    }
#endif
    if (c->phase == PHASE_OPEN && now >= c->timer_at_ms) {
        c->timer_at_ms = NO_DEADLINE;
        handler_enter(c);
        {{ v.name }}_on_timer(&c->session, c);
        handler_leave(c);
    }
}

/*
 * The contract's steps that need no socket call: input held back while congested is presented
 * again once output drains below the low-water mark, on_eof is delivered once the handler has
 * taken what came before it, and a close whose output is all sent becomes a lingering close
 * (or ends at once). Returns 1 when something happened.
 */
static int conn_settle(Conn *c, uint64_t now)
{
    int progress = 0;
    if (c->out_pending <= {{ v.upper }}_OUTPUT_LOW_WATER) {
        c->read_paused = 0;
        if (c->input_held && !c->input_paused && c->phase == PHASE_OPEN) {
            conn_deliver(c, NULL, 0); /* the handler held input back while congested */
            progress = 1;
        }
    }
    /* The FIN is behind every byte: it is taken only when reading would have reached it (not
     * while paused; a completion model may have received it early) and once no input waits
     * for the handler, held or behind a reply it is producing. */
    if (c->eof_pending && !c->input_held && !c->read_paused && !c->input_paused
        && !(c->want_writable && c->in_len > 0) && c->phase == PHASE_OPEN) {
        c->eof_pending = 0;
        handler_enter(c);
        {{ v.name }}_on_eof(&c->session, c);
        handler_leave(c);
        progress = 1;
    }
    if (c->phase == PHASE_CLOSING && c->out_pending == 0) {
        if (c->read_closed) {
            c->phase = PHASE_DONE; /* the peer already finished: nothing to linger for */
            return 1;
        }
        if (conn_shutdown_send(c) != 0 || {{ v.upper }}_LINGER_MS == 0) {
            c->phase = PHASE_DONE;
            return 1;
        }
        c->phase = PHASE_LINGER;
        c->linger_until_ms = now + {{ v.upper }}_LINGER_MS;
        progress = 1;
    }
    return progress;
}

/* Asks a handler that wants to produce (want_writable) for more while output is below the
{%- if v.client %}
 * low-water mark. Returns 1 when it produced. */
{%- else %}
 * low-water mark, and stops reading above the high-water mark. Returns 1 when it produced. */
{%- endif %}
static int conn_produce(Conn *c)
{
    int progress = 0;
    if (c->phase == PHASE_OPEN && c->want_writable
        && c->out_pending <= {{ v.upper }}_OUTPUT_LOW_WATER) {
        size_t before = c->out_pending;
        handler_enter(c);
        {{ v.name }}_on_writable(&c->session, c);
        handler_leave(c);
        if (c->out_pending == before) {
            conn_producer_stopped(c); /* it had nothing to say: wait until it asks again */
            progress = c->input_held; /* ...and input that waited behind it is presented now */
        } else {
            progress = 1;
        }
    }
{%- if v.client %}
    /* A client reads on while its output waits: what comes back is what it asked for, and a
     * server that stops reading until its replies are read would otherwise wait on us as we
     * wait on it. Its output is bounded by io.output_limit, its input by what it consumes. */
{%- else %}
    if (c->out_pending >= {{ v.upper }}_OUTPUT_BUFFER) {
        c->read_paused = 1;
    }
{%- endif %}
    return progress;
}

