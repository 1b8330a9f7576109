/*
 * Handler callbacks for {{ v.name }}, a client: the one place for your protocol.
{%- include "c/handler_ownership.c" %}
 *
 * The contract is the servers' (README, "The handler contract"), seen from the side that
 * connects. Each callback is named {{ v.name }}_ and then:
 *   on_worker_start  the event loop starts: set up the state the pool's connections share
 *   on_worker_stop   every connection has ended for good: report, free
 *   on_open          a connection is up ({{ v.name }}_info(c)->peer is the server): send the
 *                    request
{%- if v.framed %}
 *   on_message       one whole message ({{ v.framing }} framing), without its framing bytes
{%- else %}
 *   on_data          input arrived: it gets every byte not consumed yet and returns how many it
 *                    used; the rest comes again, with the next bytes, on the next call
{%- endif %}
 *   on_writable      the output queue fell below half of io.output_buffer, after
 *                    {{ v.name }}_want_writable(c, 1) asked for it: produce more
 *   on_eof           the server will send no more; writing still works
 *   on_timer         the timer from {{ v.name }}_timer_set(c, ms) fired
 *   on_close         the connection is gone, and why
 * A connection that ends by reset, error or idle timeout is opened again (with backoff, up to
 * client.retry.max_attempts failures in a row) and on_open runs again with a fresh session;
 * one the handler or the server closed is done. {{ v.name }}_fail() marks the run failed
 * (exit 1). The program exits when every connection of the pool is done.
 */
{%- if v.handler == Handler::EchoCheck || v.handler == Handler::Load %}

/* A message of random bytes in flight: how much of it is queued, how much came back. */
struct {{ v.name }}_payload {
    unsigned message; /* from 0 */
    size_t size;
    size_t sent;
    size_t checked;
};

static const uint32_t {{ v.name }}_sizes[] = {{ v.upper }}_SIZES;

{% include "c/client_payload.h" %}

/* Queues the rest of the message while the queue has room; asks for on_writable to be called
 * for what is left. */
static void {{ v.name }}_send_more(struct {{ v.name }}_payload *p,
{{ v.align("void", "send_more") }}struct {{ v.name }}_conn *c)
{
    unsigned char chunk[4096];
    unsigned long long id = {{ v.name }}_info(c)->id;
    while (p->sent < p->size && !{{ v.name }}_congested(c)) {
        size_t n = p->size - p->sent < sizeof chunk ? p->size - p->sent : sizeof chunk;
        size_t i;
        for (i = 0; i < n; i++) {
            chunk[i] = {{ v.name }}_payload_byte(id, p->message, p->sent + i);
        }
        if ({{ v.name }}_write(c, chunk, n) != 0) {
            return;
        }
        p->sent += n;
    }
    {{ v.name }}_want_writable(c, p->sent < p->size);
}

static void {{ v.name }}_send_message_of(struct {{ v.name }}_payload *p,
{{ v.align("void", "send_message_of") }}struct {{ v.name }}_conn *c, size_t size)
{
    p->size = size;
    p->sent = 0;
    p->checked = 0;
    {{ v.name }}_send_more(p, c);
}

/* Compares len echoed bytes with what was sent; 0, or -1 after failing the connection. */
static int {{ v.name }}_check(struct {{ v.name }}_payload *p, struct {{ v.name }}_conn *c,
{{ v.align("int", "check") }}const unsigned char *data, size_t len)
{
    unsigned long long id = {{ v.name }}_info(c)->id;
    size_t i;
    if (p->checked + len > p->sent) {
        {{ v.name }}_fail(c, "the server sent %zu bytes more than message %u had so far",
               p->checked + len - p->sent, p->message + 1);
        return -1;
    }
    for (i = 0; i < len; i++) {
        unsigned char want = {{ v.name }}_payload_byte(id, p->message, p->checked + i);
        if (data[i] != want) {
            {{ v.name }}_fail(c,
                   "message %u (size %zu), byte %zu: sent 0x%02x, got back 0x%02x",
                   p->message + 1, p->size, p->checked + i, want, data[i]);
            return -1;
        }
    }
    p->checked += len;
    return 0;
}
{%- endif %}
{%- match v.handler %}
{%- when Handler::EchoCheck %}

/*
 * echo-check: each connection sends {{ v.upper }}_MESSAGES messages of random bytes (sizes from
 * client.sizes in turn), one at a time, and checks every byte that comes back before sending
 * the next. One summary line on stdout; any difference fails the run.
 */
struct {{ v.name }}_worker {
    uint64_t start_ns;
    unsigned long long messages_checked, bytes_checked; /* of the connections that finished */
    unsigned connections_done; /* checked every message */
    unsigned connections_cut;  /* ended early (reset and retried, failed, stopped) */
    unsigned long long messages_cut; /* checked on those before they ended */
};

struct {{ v.name }}_session {
    struct {{ v.name }}_payload out;
    unsigned long long bytes_checked; /* of the messages before out */
    int complete; /* every message came back intact */
};

{% include "c/client_summary_echo_check.h" %}

static void {{ v.name }}_on_open(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    memset(s, 0, sizeof *s);
    {{ v.name }}_send_message_of(&s->out, c, {{ v.name }}_sizes[0]);
}

static size_t {{ v.name }}_on_data(struct {{ v.name }}_session *s,
{{ v.align("size_t", "on_data") }}struct {{ v.name }}_conn *c,
{{ v.align("size_t", "on_data") }}const unsigned char *data, size_t len)
{
    struct {{ v.name }}_worker *w = {{ v.name }}_worker(c);
    size_t used = 0;
    while (used < len && !s->complete) {
        size_t rest = s->out.size - s->out.checked;
        size_t take = len - used < rest ? len - used : rest;
        if ({{ v.name }}_check(&s->out, c, data + used, take) != 0) {
            return len;
        }
        used += take;
        if (s->out.checked == s->out.size) {
            s->bytes_checked += s->out.size;
            if (++s->out.message == {{ v.name }}_options()->messages) {
                s->complete = 1;
                w->connections_done++;
                w->messages_checked += s->out.message;
                w->bytes_checked += s->bytes_checked;
                {{ v.name }}_close(c);
            } else {
                {{ v.name }}_send_message_of(
                    &s->out, c, {{ v.name }}_sizes[s->out.message % {{ v.upper }}_SIZE_COUNT]);
            }
        }
    }
    if (used < len) {
        {{ v.name }}_fail(c, "the server sent %zu bytes after the last message", len - used);
    }
    return len;
}

static void {{ v.name }}_on_writable(struct {{ v.name }}_session *s,
{{ v.align("void", "on_writable") }}struct {{ v.name }}_conn *c)
{
    {{ v.name }}_send_more(&s->out, c);
}

static void {{ v.name }}_on_eof(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    if (!s->complete) {
        {{ v.name }}_fail(c,
               "the server closed the connection during message %u of %u (%zu of %zu bytes back)",
               s->out.message + 1, {{ v.name }}_options()->messages, s->out.checked, s->out.size);
    }
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
        w->messages_cut += s->out.message;
    }
    /* Resets, errors and idle timeouts are retried by the runtime; these end the run. */
    if (!s->complete
        && (reason == {{ v.upper }}_CLOSE_STOPPING || reason == {{ v.upper }}_CLOSE_OUTPUT_LIMIT
            || reason == {{ v.upper }}_CLOSE_INPUT_LIMIT)) {
        {{ v.name }}_fail(c, "%s during message %u of %u", {{ v.name }}_close_reason_name(reason),
               s->out.message + 1, {{ v.name }}_options()->messages);
    }
}
{%- when Handler::Load %}

/*
 * load: closed loop. Each connection sends a message of client.sizes[0] random bytes, waits
 * until all of it has come back (checked byte for byte) and sends the next, until
 * {{ v.upper }}_DURATION_MS have passed. Then one line: messages per second and round-trip
 * latency percentiles.
 */
enum { {{ v.upper }}_SUB_BUCKETS = 32 }; /* per power of two: about 3% resolution */

struct {{ v.name }}_worker {
    uint64_t start_ns;
    unsigned long long messages, bytes;
    unsigned long long latency_ns_max;
    unsigned long long histogram[64 * {{ v.upper }}_SUB_BUCKETS]; /* round trips by log-linear
    {{ v.name_blank() }}                                                  * bucket of ns */
};

struct {{ v.name }}_session {
    struct {{ v.name }}_payload out;
    uint64_t sent_ns; /* when the message in flight was queued */
};

{% include "c/client_latency.h" %}

/* Sends the next message, or closes once the run's time is up. */
static void {{ v.name }}_next(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    uint64_t ran_ns = {{ v.name }}_now_ns() - {{ v.name }}_worker(c)->start_ns;
    if (ran_ns >= (uint64_t){{ v.name }}_options()->duration_ms * 1000000u) {
        {{ v.name }}_close(c);
        return;
    }
    s->sent_ns = {{ v.name }}_now_ns();
    {{ v.name }}_send_message_of(&s->out, c, {{ v.name }}_sizes[0]);
}

{% include "c/client_summary_load.h" %}

static void {{ v.name }}_on_open(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    memset(s, 0, sizeof *s);
    {{ v.name }}_next(s, c);
}

static size_t {{ v.name }}_on_data(struct {{ v.name }}_session *s,
{{ v.align("size_t", "on_data") }}struct {{ v.name }}_conn *c,
{{ v.align("size_t", "on_data") }}const unsigned char *data, size_t len)
{
    struct {{ v.name }}_worker *w = {{ v.name }}_worker(c);
    if ({{ v.name }}_check(&s->out, c, data, len) != 0) {
        return len;
    }
    if (s->out.checked == s->out.size) {
        uint64_t ns = {{ v.name }}_now_ns() - s->sent_ns;
        w->histogram[{{ v.name }}_bucket(ns)]++;
        if (ns > w->latency_ns_max) {
            w->latency_ns_max = ns;
        }
        w->messages++;
        w->bytes += s->out.size;
        s->out.message++;
        {{ v.name }}_next(s, c);
    }
    return len;
}

static void {{ v.name }}_on_writable(struct {{ v.name }}_session *s,
{{ v.align("void", "on_writable") }}struct {{ v.name }}_conn *c)
{
    {{ v.name }}_send_more(&s->out, c);
}

static void {{ v.name }}_on_eof(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    if (s->out.checked < s->out.size) {
        {{ v.name }}_fail(c,
               "the server closed the connection with %zu of %zu bytes of a message still out",
               s->out.size - s->out.checked, s->out.size);
    }
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
    (void)error;
    if (reason == {{ v.upper }}_CLOSE_OUTPUT_LIMIT || reason == {{ v.upper }}_CLOSE_INPUT_LIMIT) {
        {{ v.name }}_fail(c, "%s", {{ v.name }}_close_reason_name(reason));
    }
}
{%- when _ %}

/*
 * Your protocol goes here. As generated it sends one line, prints the first line that comes
 * back on stdout and closes, so it works against any echo server from the first build:
 * replace the bodies. Per-connection state goes in the session struct; what the pool's
 * connections share goes in the worker struct.
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
{%- if v.framed %}
    (void){{ v.name }}_send_message(c, "hello from {{ v.name }}",
    {{ v.name_blank() }}                    sizeof "hello from {{ v.name }}" - 1);
{%- else %}
    (void){{ v.name }}_printf(c, "hello from %s, connection %llu\n", "{{ v.name }}",
    {{ v.name_blank() }}              {{ v.name }}_info(c)->id);
{%- endif %}
}
{%- if v.framed %}

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
{%- else %}

static size_t {{ v.name }}_on_data(struct {{ v.name }}_session *s,
{{ v.align("size_t", "on_data") }}struct {{ v.name }}_conn *c,
{{ v.align("size_t", "on_data") }}const unsigned char *data, size_t len)
{
    const unsigned char *end = memchr(data, '\n', len);
    if (end == NULL) {
        return 0; /* not a whole line yet: it comes again with the next bytes */
    }
    printf("reply: %.*s\n", (int)(end - data), (const char *)data);
    fflush(stdout);
    s->answered = 1;
    {{ v.name }}_worker(c)->replies++;
    {{ v.name }}_close(c);
    return len;
}
{%- endif %}

static void {{ v.name }}_on_writable(struct {{ v.name }}_session *s,
{{ v.align("void", "on_writable") }}struct {{ v.name }}_conn *c)
{
    (void)s;
    (void)c;
}

static void {{ v.name }}_on_eof(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    if (!s->answered) {
        {{ v.name }}_fail(c, "the server closed the connection without a reply");
    }
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
