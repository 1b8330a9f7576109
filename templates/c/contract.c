/* Settings from the spec (change the spec and regenerate, rather than these). */
{%- if v.client %}
/* what -a overrides: resolved at start, every address tried */
#define {{ v.upper }}_HOST "{{ v.address }}"
#define {{ v.upper }}_PORT {{ v.port }}  /* what -p overrides{% if v.port == 0 %}; 0: -p is required{% endif %} */
#define {{ v.upper }}_CONNECT_TIMEOUT_MS {{ v.connect_timeout_ms }}u  /* one connect to one address */
#define {{ v.upper }}_MAX_ATTEMPTS {{ v.max_attempts }}u  /* failed attempts in a row before giving up */
/* backoff before retry n: random in [0, min(max, base * 2^(n-1))] */
#define {{ v.upper }}_BACKOFF_BASE_MS {{ v.backoff_base_ms }}u
#define {{ v.upper }}_BACKOFF_MAX_MS {{ v.backoff_max_ms }}u
#define {{ v.upper }}_POOL_SIZE {{ v.pool_size }}u  /* connections at once (what -c overrides) */
{%- if v.handler == Handler::EchoCheck %}
#define {{ v.upper }}_MESSAGES {{ v.messages }}u  /* per connection (what -n overrides) */
{%- endif %}
{%- if v.handler == Handler::Load %}
#define {{ v.upper }}_DURATION_MS {{ v.duration_ms }}u  /* how long the load runs (what -d overrides) */
{%- endif %}
{%- if v.handler == Handler::EchoCheck || v.handler == Handler::Load %}
#define {{ v.upper }}_SIZES { {{ v.sizes }} }  /* payload bytes, used in turn */
#define {{ v.upper }}_SIZE_COUNT {{ v.sizes_len }}u
{%- endif %}
{%- else %}
#define {{ v.upper }}_ADDRESS "{{ v.address }}"
#define {{ v.upper }}_PORT {{ v.port }}
{%- endif %}
#define {{ v.upper }}_BUFFER_SIZE {{ v.buffer_size }}u  /* bytes per receive call */
{%- if v.tcp %}
/* output high-water mark: above it the peer is not read */
#define {{ v.upper }}_OUTPUT_BUFFER {{ v.output_buffer }}u
#define {{ v.upper }}_OUTPUT_LOW_WATER {{ v.output_buffer / 2 }}u  /* reading resumes below this */
#define {{ v.upper }}_OUTPUT_LIMIT {{ v.output_limit }}ull  /* a connection queuing more is closed */
#define {{ v.upper }}_MAX_MESSAGE {{ v.max_message }}u  /* most unconsumed input per connection */
{%- if !v.client %}
#define {{ v.upper }}_BACKLOG {{ v.backlog }}
{%- endif %}
{%- if v.client %}
/* the pool: -c, or client.pool.size */
#define {{ v.upper }}_MAX_CONNECTIONS (client_options.connections)
{%- else %}
#define {{ v.upper }}_MAX_CONNECTIONS {{ v.max_connections }}u
{%- endif %}
#define {{ v.upper }}_IDLE_TIMEOUT_MS {{ v.idle_timeout_ms }}u  /* 0 = never */
#define {{ v.upper }}_LINGER_MS {{ v.linger_ms }}u  /* lingering close: read and drop for at most this long */
{%- else if v.client %}
#define {{ v.upper }}_OUTPUT_BUFFER {{ v.output_buffer }}u  /* most bytes of one datagram sent */
/* the pool: -c, or client.pool.size */
#define {{ v.upper }}_MAX_CONNECTIONS (client_options.connections)
#define {{ v.upper }}_IDLE_TIMEOUT_MS {{ v.idle_timeout_ms }}u  /* 0 = never */
{%- else %}
#define {{ v.upper }}_OUTPUT_BUFFER {{ v.output_buffer }}u  /* most bytes of one reply datagram */
{%- endif %}
#define {{ v.upper }}_WORKERS {{ v.workers }}u  /* event loops, one thread each */
{%- if v.uses_epoll %}
#define {{ v.upper }}_MAX_EVENTS {{ v.max_events }}  /* events taken per epoll_wait */
{%- endif %}
{%- if v.thread_per_connection && v.tcp && !v.client %}
#define {{ v.upper }}_STACK_SIZE {{ v.stack_size }}u  /* bytes of stack per connection thread */
{%- endif %}

/* ---------------------------------------------------------------------------------------------
 * The handler contract: what your callbacks may call. The same in every model.
 */

{%- if v.tcp %}

/* One connection, from on_open until on_close returns. Never keep the pointer beyond that. */
struct {{ v.name }}_conn;

/* Why a connection ended; on_close receives it, with an errno value for the error reasons. */
enum {{ v.name }}_close_reason {
    {{ v.upper }}_CLOSE_PEER,         /* the peer half-closed and everything queued was sent */
    {{ v.upper }}_CLOSE_HANDLER,      /* {{ v.name }}_close(): queued output was sent first */
    {{ v.upper }}_CLOSE_ABORT,        /* {{ v.name }}_abort(): reset, queued output dropped */
    {{ v.upper }}_CLOSE_RESET,        /* the peer reset the connection (error: ECONNRESET,
    {{ v.name_blank() }}                      * EPIPE...) */
    {{ v.upper }}_CLOSE_IDLE,         /* nothing moved for {% if v.client %}client{% else %}server{% endif %}.idle_timeout_ms */
    {{ v.upper }}_CLOSE_OUTPUT_LIMIT, /* more than io.output_limit bytes were queued */
    {{ v.upper }}_CLOSE_INPUT_LIMIT,  /* more than io.max_message bytes were left unconsumed */
    {{ v.upper }}_CLOSE_STOPPING,     /* the {% if v.client %}client{% else %}server{% endif %} is shutting down */
    {{ v.upper }}_CLOSE_ERROR         /* a system call failed (error: its errno) */
};

static inline const char *{{ v.name }}_close_reason_name(enum {{ v.name }}_close_reason reason)
{
    static const char *const names[] = { "peer", "handler", "abort", "reset", "idle_timeout",
                                         "output_limit", "input_limit", "stopping", "error" };
    return (unsigned)reason < sizeof names / sizeof names[0] ? names[reason] : "unknown";
}

/* What the handler may know about a connection. */
struct {{ v.name }}_info {
    unsigned long long id;          /* unique within this process, counting from 1 */
    unsigned worker;                /* which event loop serves it, from 0 */
    struct sockaddr_storage peer;   /* the remote address */
    struct sockaddr_storage local;  /* the address it reached */
    char peer_text[INET6_ADDRSTRLEN + 8];  /* "192.0.2.1:5000" or "[2001:db8::1]:5000" */
    char local_text[INET6_ADDRSTRLEN + 8];
};

static inline const struct {{ v.name }}_info *{{ v.name }}_info(struct {{ v.name }}_conn *c);
/* The per-worker state every connection of this event loop shares (see on_worker_start). */
static inline struct {{ v.name }}_worker *{{ v.name }}_worker(struct {{ v.name }}_conn *c);

/* Queues bytes for the peer; they are sent in order. There is no soft limit: a handler may
 * always write (check {{ v.name }}_congested() to pace a large producer). Returns 0, or -1 when
 * the queue would pass io.output_limit (the connection is then closed with reason
 * output_limit) or the connection is already closing. */
static inline int {{ v.name }}_write(struct {{ v.name }}_conn *c, const void *data, size_t len);
{%- if v.framed %}
/* Writes one message framed the way input is framed ({{ v.framing }}); 0, or -1 like
 * {{ v.name }}_write (also when it is too long for the length prefix). */
static inline int {{ v.name }}_send_message(struct {{ v.name }}_conn *c, const void *msg,
{{ v.align("inline int", "send_message") }}size_t len);
{%- endif %}
/* printf into the output queue; returns 0 or -1 like {{ v.name }}_write. */
static inline int {{ v.name }}_printf(struct {{ v.name }}_conn *c, const char *format, ...);
/* Bytes queued and not yet taken by the kernel. */
static inline size_t {{ v.name }}_pending(const struct {{ v.name }}_conn *c);
/* 1 while the queue is above the high-water mark (io.output_buffer): the peer is not read,
 * and a producer should stop and wait for on_writable. */
static inline int {{ v.name }}_congested(const struct {{ v.name }}_conn *c);
/* on = 1: call on_writable whenever the queue is below the low-water mark (half of
 * io.output_buffer), until a call queues nothing or on = 0. Nothing is polled otherwise. */
static inline void {{ v.name }}_want_writable(struct {{ v.name }}_conn *c, int on);
/* Stops reading this peer until resume_input: for a handler that stops consuming for a reason
 * of its own (a reply still streaming). What it left unconsumed waits, is not counted against
 * io.max_message, and is not presented again until it resumes; on_eof waits too. */
static inline void {{ v.name }}_pause_input(struct {{ v.name }}_conn *c);
/* Ends a pause_input, and presents the unconsumed input to on_data again once the output queue
 * is below the low-water mark, without waiting for new bytes: for a handler that stopped
 * consuming for a reason of its own and is ready for the next request. */
static inline void {{ v.name }}_resume_input(struct {{ v.name }}_conn *c);
/* Arms the connection's one timer (re-arming replaces it): on_timer runs after ms. */
static inline void {{ v.name }}_timer_set(struct {{ v.name }}_conn *c, uint32_t ms);
static inline void {{ v.name }}_timer_cancel(struct {{ v.name }}_conn *c);
/* Graceful close: send everything queued, half-close, read and drop the peer's input for up
 * to server.linger_ms, then close. No more callbacks but on_close. */
static inline void {{ v.name }}_close(struct {{ v.name }}_conn *c);
/* Reset now: queued output is dropped and the peer sees ECONNRESET. */
static inline void {{ v.name }}_abort(struct {{ v.name }}_conn *c);
{%- if v.client %}
{% include "c/client_contract.c" %}
{%- endif %}
{%- else if v.client %}
{% include "c/udp_client_contract.c" %}
{%- else %}

/* The datagram being answered: who sent it, and the reply being built. */
struct {{ v.name }}_conn;

struct {{ v.name }}_info {
    unsigned long long id;          /* counts the datagrams this worker received, from 1 */
    unsigned worker;                /* which event loop received it, from 0 */
    struct sockaddr_storage peer;   /* the sender; the reply goes back to it */
    char peer_text[INET6_ADDRSTRLEN + 8];
};

static inline const struct {{ v.name }}_info *{{ v.name }}_info(struct {{ v.name }}_conn *c);
/* Appends to the reply datagram (io.output_buffer bytes at most). Returns 0, or -1 with
 * nothing appended when it would not fit. Writing nothing sends no reply; writing zero bytes
 * sends an empty datagram. */
static inline int {{ v.name }}_write(struct {{ v.name }}_conn *c, const void *data, size_t len);
static inline int {{ v.name }}_printf(struct {{ v.name }}_conn *c, const char *format, ...);
{%- endif %}

