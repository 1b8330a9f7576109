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

/* Call from on_worker_start when the worker cannot start (a file that does not parse): the
 * program prints "NAME: worker INDEX: <message>" on stderr and exits 1 before it is ready
 * ({% if v.client %}a client: before it connects{% else %}no ready line{% endif %}). on_worker_stop does not run for that worker. */
static inline void {{ v.name }}_worker_start_failed(unsigned index, const char *format, ...){% if !v.windows %}
    __attribute__((format(printf, 2, 3))){% endif %};
{%- if !v.client %}
{% include "c/options_contract.c" %}
{%- endif %}
