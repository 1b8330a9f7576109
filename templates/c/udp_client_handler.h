/*
 * Handler callbacks for {{ v.name }}, a UDP client: the one place for your protocol.
{%- include "c/handler_ownership.c" %}
 *
 * Each connection of the pool is a UDP socket connect()ed to the server. Each callback is
 * named {{ v.name }}_ and then:
 *   on_worker_start  the event loop starts: set up the state the pool's sockets share
 *   on_worker_stop   every socket has ended for good: report, free
 *   on_open          the socket is ready ({{ v.name }}_info(c)->peer is the server): send
 *   on_message       one datagram from the server, whole
 *   on_timer         the timer from {{ v.name }}_timer_set(c, ms) fired
 *   on_close         the socket is closed, and why
 * {{ v.name }}_write() sends one datagram at once. Datagrams can be lost: a socket that hears
 * nothing for client.idle_timeout_ms ends (idle_timeout), and one whose server port refuses
 * (ECONNREFUSED) ends too; both are opened again with backoff (up to client.retry.max_attempts
 * failures in a row) and on_open runs again with a fresh session. One the handler closed is
 * done; {{ v.name }}_fail() marks the run failed (exit 1). The program exits when every
 * socket of the pool is done.
 */
{%- if v.handler == Handler::EchoCheck || v.handler == Handler::Load %}

static const uint32_t {{ v.name }}_sizes[] = {{ v.upper }}_SIZES;

{% include "c/client_payload.h" %}

/* Sends datagram `message` of `size` random bytes; 0 or -1 like {{ v.name }}_write. */
static int {{ v.name }}_send_datagram(struct {{ v.name }}_conn *c, unsigned char *buffer,
{{ v.align("int", "send_datagram") }}unsigned message, size_t size)
{
    unsigned long long id = {{ v.name }}_info(c)->id;
    size_t i;
    for (i = 0; i < size; i++) {
        buffer[i] = {{ v.name }}_payload_byte(id, message, i);
    }
    return {{ v.name }}_write(c, buffer, size);
}

/* Whether a datagram is exactly datagram `message` of `size` bytes; fails the socket if not. */
static int {{ v.name }}_check_datagram(struct {{ v.name }}_conn *c, unsigned message,
{{ v.align("int", "check_datagram") }}size_t size, const unsigned char *data, size_t len)
{
    unsigned long long id = {{ v.name }}_info(c)->id;
    size_t i;
    if (len != size) {
        {{ v.name }}_fail(c, "datagram %u: sent %zu bytes, got back %zu", message + 1, size, len);
        return 0;
    }
    for (i = 0; i < len; i++) {
        unsigned char want = {{ v.name }}_payload_byte(id, message, i);
        if (data[i] != want) {
            {{ v.name }}_fail(c,
                   "datagram %u (size %zu), byte %zu: sent 0x%02x, got back 0x%02x",
                   message + 1, size, i, want, data[i]);
            return 0;
        }
    }
    return 1;
}
{%- endif %}
{%- match v.handler %}
{%- when Handler::EchoCheck %}

/*
 * echo-check: each socket sends {{ v.upper }}_MESSAGES datagrams of random bytes (sizes from
 * client.sizes in turn), one at a time, and checks that each comes back whole and unaltered
 * before sending the next. A lost datagram shows as the idle timeout: the socket starts over.
 * One summary line on stdout.
 */
struct {{ v.name }}_worker {
    uint64_t start_ns;
    unsigned long long messages_checked, bytes_checked; /* of the sockets that finished */
    unsigned connections_done;  /* checked every datagram */
    unsigned connections_cut;   /* ended early (retried, failed, stopped) */
    unsigned long long messages_cut; /* checked on those before they ended */
    unsigned char datagram[65507]; /* what is being sent: callbacks never run at once */
};

struct {{ v.name }}_session {
    unsigned message;  /* the datagram in flight, from 0 */
    unsigned long long bytes_checked;
    int complete;
};

{% include "c/client_summary_echo_check.h" %}

static size_t {{ v.name }}_size_of(unsigned message)
{
    return {{ v.name }}_sizes[message % {{ v.upper }}_SIZE_COUNT];
}

static void {{ v.name }}_on_open(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    memset(s, 0, sizeof *s);
    (void){{ v.name }}_send_datagram(c, {{ v.name }}_worker(c)->datagram, 0,
    {{ v.name_blank() }}                     {{ v.name }}_size_of(0));
}

static void {{ v.name }}_on_message(struct {{ v.name }}_session *s,
{{ v.align("void", "on_message") }}struct {{ v.name }}_conn *c,
{{ v.align("void", "on_message") }}const unsigned char *msg, size_t len)
{
    struct {{ v.name }}_worker *w = {{ v.name }}_worker(c);
    if (s->complete
        || !{{ v.name }}_check_datagram(c, s->message, {{ v.name }}_size_of(s->message),
        {{ v.name_blank() }}                    msg, len)) {
        return;
    }
    s->bytes_checked += len;
    if (++s->message == {{ v.name }}_options()->messages) {
        s->complete = 1;
        w->connections_done++;
        w->messages_checked += s->message;
        w->bytes_checked += s->bytes_checked;
        {{ v.name }}_close(c);
        return;
    }
    (void){{ v.name }}_send_datagram(c, w->datagram, s->message,
    {{ v.name_blank() }}                     {{ v.name }}_size_of(s->message));
}

static void {{ v.name }}_on_timer(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    (void)s;
    (void)c;
}

static void {{ v.name }}_on_close(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c,
{{ v.align("void", "on_close") }}enum {{ v.name }}_close_reason reason, int error)
{
    struct {{ v.name }}_worker *w = {{ v.name }}_worker(c);
    (void)error;
    if (!s->complete) {
        w->connections_cut++;
        w->messages_cut += s->message;
    }
    /* Refusals, errors and idle timeouts are retried by the runtime; a stop ends the run. */
    if (!s->complete && reason == {{ v.upper }}_CLOSE_STOPPING) {
        {{ v.name }}_fail(c, "stopping during datagram %u of %u", s->message + 1,
               {{ v.name }}_options()->messages);
    }
}
{%- when Handler::Load %}

/*
 * load: closed loop. Each socket sends a datagram of client.sizes[0] random bytes, waits for
 * it to come back (checked), and sends the next, until {{ v.upper }}_DURATION_MS have passed.
 * Then one line: round trips per second and latency percentiles. A lost datagram shows as the
 * idle timeout: the socket starts over.
 */
enum { {{ v.upper }}_SUB_BUCKETS = 32 }; /* per power of two: about 3% resolution */

struct {{ v.name }}_worker {
    uint64_t start_ns;
    unsigned long long messages, bytes;
    unsigned long long latency_ns_max;
    unsigned long long histogram[64 * {{ v.upper }}_SUB_BUCKETS]; /* round trips by log-linear
    {{ v.name_blank() }}                                                  * bucket of ns */
    unsigned char datagram[65507];
};

struct {{ v.name }}_session {
    unsigned message;
    uint64_t sent_ns; /* when the datagram in flight was sent */
};

{% include "c/client_latency.h" %}

/* Sends the next datagram, or closes once the run's time is up. */
static void {{ v.name }}_next(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    uint64_t ran_ns = {{ v.name }}_now_ns() - {{ v.name }}_worker(c)->start_ns;
    if (ran_ns >= (uint64_t){{ v.name }}_options()->duration_ms * 1000000u) {
        {{ v.name }}_close(c);
        return;
    }
    s->sent_ns = {{ v.name }}_now_ns();
    (void){{ v.name }}_send_datagram(c, {{ v.name }}_worker(c)->datagram, s->message,
    {{ v.name_blank() }}                     {{ v.name }}_sizes[0]);
}

{% include "c/client_summary_load.h" %}

static void {{ v.name }}_on_open(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    memset(s, 0, sizeof *s);
    {{ v.name }}_next(s, c);
}

static void {{ v.name }}_on_message(struct {{ v.name }}_session *s,
{{ v.align("void", "on_message") }}struct {{ v.name }}_conn *c,
{{ v.align("void", "on_message") }}const unsigned char *msg, size_t len)
{
    struct {{ v.name }}_worker *w = {{ v.name }}_worker(c);
    uint64_t ns = {{ v.name }}_now_ns() - s->sent_ns;
    if (!{{ v.name }}_check_datagram(c, s->message, {{ v.name }}_sizes[0], msg, len)) {
        return;
    }
    w->histogram[{{ v.name }}_bucket(ns)]++;
    if (ns > w->latency_ns_max) {
        w->latency_ns_max = ns;
    }
    w->messages++;
    w->bytes += len;
    s->message++;
    {{ v.name }}_next(s, c);
}

static void {{ v.name }}_on_timer(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    (void)s;
    (void)c;
}

static void {{ v.name }}_on_close(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c,
{{ v.align("void", "on_close") }}enum {{ v.name }}_close_reason reason, int error)
{
    (void)s;
    (void)c;
    (void)reason;
    (void)error;
}
{%- when _ %}

/*
 * Your protocol goes here. As generated it sends one datagram, prints the first one that
 * comes back on stdout and closes, so it works against any UDP echo server from the first
 * build: replace the bodies. Per-socket state goes in the session struct; what the pool's
 * sockets share goes in the worker struct.
 */
struct {{ v.name }}_worker {
    unsigned long long replies;
};

struct {{ v.name }}_session {
    int answered;
};

static void {{ v.name }}_on_worker_start(struct {{ v.name }}_worker *w, unsigned index)
{
    (void)index;
    w->replies = 0;
}

static void {{ v.name }}_on_worker_stop(struct {{ v.name }}_worker *w)
{
    (void)w;
}

static void {{ v.name }}_on_open(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    s->answered = 0;
    (void){{ v.name }}_printf(c, "hello from %s, connection %llu", "{{ v.name }}",
    {{ v.name_blank() }}              {{ v.name }}_info(c)->id);
}

static void {{ v.name }}_on_message(struct {{ v.name }}_session *s,
{{ v.align("void", "on_message") }}struct {{ v.name }}_conn *c,
{{ v.align("void", "on_message") }}const unsigned char *msg, size_t len)
{
    printf("reply: %.*s\n", (int)len, (const char *)msg);
    fflush(stdout);
    s->answered = 1;
    {{ v.name }}_worker(c)->replies++;
    {{ v.name }}_close(c);
}

static void {{ v.name }}_on_timer(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    (void)s;
    (void)c;
}

static void {{ v.name }}_on_close(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c,
{{ v.align("void", "on_close") }}enum {{ v.name }}_close_reason reason, int error)
{
    (void)s;
    (void)c;
    (void)reason;
    (void)error;
}
{%- endmatch %}
