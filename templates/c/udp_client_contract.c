
/* One connected UDP socket of the pool, from on_open until on_close returns. Never keep the
 * pointer beyond that. */
struct {{ v.name }}_conn;

/* Why a socket of the pool was closed; on_close receives it, with an errno value for the
 * error reasons. */
enum {{ v.name }}_close_reason {
    {{ v.upper }}_CLOSE_HANDLER,  /* {{ v.name }}_close() */
    {{ v.upper }}_CLOSE_RESET,    /* the server's port refused the datagrams (error: ECONNREFUSED,
                                   * from an ICMP port unreachable) */
    {{ v.upper }}_CLOSE_IDLE,     /* no datagram came for client.idle_timeout_ms */
    {{ v.upper }}_CLOSE_STOPPING, /* the client is shutting down */
    {{ v.upper }}_CLOSE_ERROR     /* a system call failed (error: its errno) */
};

static inline const char *{{ v.name }}_close_reason_name(enum {{ v.name }}_close_reason reason)
{
    static const char *const names[] = { "handler", "refused", "idle_timeout", "stopping",
                                         "error" };
    return (unsigned)reason < sizeof names / sizeof names[0] ? names[reason] : "unknown";
}

/* What the handler may know about its socket. */
struct {{ v.name }}_info {
    unsigned long long id;          /* unique within this process, counting from 1 */
    unsigned worker;                /* always 0: a client runs one worker */
    struct sockaddr_storage peer;   /* the server */
    struct sockaddr_storage local;  /* the address the socket got */
    char peer_text[INET6_ADDRSTRLEN + 8];  /* "192.0.2.1:5000" or "[2001:db8::1]:5000" */
    char local_text[INET6_ADDRSTRLEN + 8];
};

static inline const struct {{ v.name }}_info *{{ v.name }}_info(struct {{ v.name }}_conn *c);
/* The state the pool's sockets share (see on_worker_start). */
static inline struct {{ v.name }}_worker *{{ v.name }}_worker(struct {{ v.name }}_conn *c);
/* Sends one datagram of len bytes (0 to io.output_buffer) to the server now. Returns 0, or -1
 * when it is too long, the socket is closing or the kernel had no room (a datagram may be
 * lost anyway: a protocol over UDP keeps its own timers). */
static inline int {{ v.name }}_write(struct {{ v.name }}_conn *c, const void *data, size_t len);
/* printf into one datagram; 0 or -1 like {{ v.name }}_write. */
static inline int {{ v.name }}_printf(struct {{ v.name }}_conn *c, const char *format, ...);
/* Arms the socket's one timer (re-arming replaces it): on_timer runs after ms. */
static inline void {{ v.name }}_timer_set(struct {{ v.name }}_conn *c, uint32_t ms);
static inline void {{ v.name }}_timer_cancel(struct {{ v.name }}_conn *c);
/* Done with this socket: it is closed after the callback returns. No more callbacks but
 * on_close. */
static inline void {{ v.name }}_close(struct {{ v.name }}_conn *c);
{% include "c/client_contract.c" %}
