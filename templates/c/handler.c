{%- if v.client && v.tcp %}
{%- include "c/client_handler.h" %}
{%- else if v.client %}
{%- include "c/udp_client_handler.h" %}
{%- else %}
/*
 * Handler callbacks for {{ v.name }}: the one place for your protocol.
{%- include "c/handler_ownership.c" %}
 *
 * The contract is the same in every model (README, "The handler contract"). Each callback is
 * named {{ v.name }}_ and then:
{%- if v.tcp %}
 *   on_worker_start  an event loop starts: set up the state its connections share
 *   on_worker_stop   it stopped; every connection has been closed
 *   on_open          a peer connected ({{ v.name }}_info(c) says who); it may write a greeting
{%- if v.framed %}
 *   on_message       one whole message ({{ v.framing }} framing), without its framing bytes;
 *                    {{ v.name }}_send_message() writes one back framed the same way
{%- else %}
 *   on_data          input arrived: it gets every byte not consumed yet and returns how many it
 *                    used; the rest comes again, with the next bytes, on the next call
{%- endif %}
 *   on_writable      the output queue fell below half of io.output_buffer, after
 *                    {{ v.name }}_want_writable(c, 1) asked for it: produce more
 *   on_eof           the peer will send no more; writing still works; {{ v.name }}_close(c)
 *                    ends it
 *   on_timer         the timer from {{ v.name }}_timer_set(c, ms) fired
 *   on_close         the connection is gone, and why: free what the session holds
 * Output ({{ v.name }}_write, {{ v.name }}_printf) is never refused below io.output_limit;
 * above io.output_buffer the peer is not read until it catches up ({{ v.name }}_congested()).
 * Callbacks must not block. Callbacks of one worker never run at the same time (with the
 * blocking model too), so the worker struct needs no lock; state shared between workers
 * (server.workers > 1) does.
{%- else %}
 *   on_worker_start  an event loop starts: set up its state
 *   on_message       one datagram arrived whole; {{ v.name }}_info(c)->peer sent it, and what
 *                    {{ v.name }}_write() appends goes back to that sender (nothing: no reply)
 *   on_worker_stop   the loop stopped
 * Callbacks must not block. Each worker's callbacks run on its own thread only.
{%- endif %}
 */
{%- if v.tcp %}
{%- match v.handler %}
{%- when Handler::Echo %}

/* RFC 862 echo: every byte received is sent back, in order. */
struct {{ v.name }}_worker {
    unsigned long long connections; /* opened on this worker so far */
};

struct {{ v.name }}_session {
    unsigned long long bytes_echoed;
};
{%- when Handler::Discard %}

/* RFC 863 discard: everything received is thrown away; nothing is ever sent. */
struct {{ v.name }}_worker {
    unsigned long long connections; /* opened on this worker so far */
};

struct {{ v.name }}_session {
    unsigned long long bytes_discarded;
};
{%- when Handler::Chargen %}

/*
 * RFC 864 character generator: lines of 72 printable ASCII characters (codes 32 to 126) ending
 * in CR LF, each line starting one character further along the 95-character cycle. Input is
 * ignored; output flows as fast as the peer reads it (on_writable refills the queue).
 */
enum { {{ v.upper }}_LINE_CHARS = 72, {{ v.upper }}_CYCLE = 95 };

struct {{ v.name }}_worker {
    unsigned long long connections; /* opened on this worker so far */
};

struct {{ v.name }}_session {
    unsigned line;   /* which line of the pattern comes next */
    unsigned column; /* position within that line, CR LF included (0..73) */
};
{%- when _ %}

/*
 * Your protocol goes here. As generated it echoes{% if v.framed %} each message{% endif %}, so the server works from
 * the first build: replace the bodies. Per-connection state goes in the session struct; state
 * its worker's connections share goes in the worker struct.
 */
struct {{ v.name }}_worker {
    unsigned long long connections; /* opened on this worker so far */
};

struct {{ v.name }}_session {
    unsigned long long bytes_in;
};
{%- endmatch %}

static void {{ v.name }}_on_worker_start(struct {{ v.name }}_worker *w, unsigned index)
{
    (void)index;
    w->connections = 0;
}

static void {{ v.name }}_on_worker_stop(struct {{ v.name }}_worker *w)
{
    (void)w;
}
{%- match v.handler %}
{%- when Handler::Chargen %}

static unsigned char {{ v.name }}_chargen_next(struct {{ v.name }}_session *s)
{
    unsigned char c;
    if (s->column < {{ v.upper }}_LINE_CHARS) {
        c = (unsigned char)(' ' + (s->line + s->column) % {{ v.upper }}_CYCLE);
    } else {
        c = s->column == {{ v.upper }}_LINE_CHARS ? '\r' : '\n';
    }
    if (++s->column == {{ v.upper }}_LINE_CHARS + 2) {
        s->column = 0;
        s->line = (s->line + 1) % {{ v.upper }}_CYCLE;
    }
    return c;
}

static void {{ v.name }}_on_open(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    s->line = 0;
    s->column = 0;
    {{ v.name }}_worker(c)->connections++;
    {{ v.name }}_want_writable(c, 1); /* talk first: on_writable runs while the queue has room */
}

{%- if v.framed %}

static void {{ v.name }}_on_message(struct {{ v.name }}_session *s,
{{ v.align("void", "on_message") }}struct {{ v.name }}_conn *c,
{{ v.align("void", "on_message") }}const unsigned char *msg, size_t len)
{
    (void)s;
    (void)c;
    (void)msg;
    (void)len;
}
{%- else %}

static size_t {{ v.name }}_on_data(struct {{ v.name }}_session *s,
{{ v.align("size_t", "on_data") }}struct {{ v.name }}_conn *c,
{{ v.align("size_t", "on_data") }}const unsigned char *data, size_t len)
{
    (void)s;
    (void)c;
    (void)data;
    return len; /* input is ignored */
}
{%- endif %}

/* Tops the queue up to the high-water mark, a few kilobytes at a time. */
static void {{ v.name }}_on_writable(struct {{ v.name }}_session *s,
{{ v.align("void", "on_writable") }}struct {{ v.name }}_conn *c)
{
    unsigned char chunk[4096];
    while (!{{ v.name }}_congested(c)) {
        size_t i;
        for (i = 0; i < sizeof chunk; i++) {
            chunk[i] = {{ v.name }}_chargen_next(s);
        }
        if ({{ v.name }}_write(c, chunk, sizeof chunk) != 0) {
            return;
        }
    }
}
{%- when Handler::Discard %}

static void {{ v.name }}_on_open(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    s->bytes_discarded = 0;
    {{ v.name }}_worker(c)->connections++;
}
{%- if v.framed %}

static void {{ v.name }}_on_message(struct {{ v.name }}_session *s,
{{ v.align("void", "on_message") }}struct {{ v.name }}_conn *c,
{{ v.align("void", "on_message") }}const unsigned char *msg, size_t len)
{
    (void)c;
    (void)msg;
    s->bytes_discarded += len;
}
{%- else %}

static size_t {{ v.name }}_on_data(struct {{ v.name }}_session *s,
{{ v.align("size_t", "on_data") }}struct {{ v.name }}_conn *c,
{{ v.align("size_t", "on_data") }}const unsigned char *data, size_t len)
{
    (void)c;
    (void)data;
    s->bytes_discarded += len;
    return len;
}
{%- endif %}
{%- when Handler::Echo %}

static void {{ v.name }}_on_open(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    s->bytes_echoed = 0;
    {{ v.name }}_worker(c)->connections++;
}
{%- if v.framed %}

/* Each message goes back framed as it came. */
static void {{ v.name }}_on_message(struct {{ v.name }}_session *s,
{{ v.align("void", "on_message") }}struct {{ v.name }}_conn *c,
{{ v.align("void", "on_message") }}const unsigned char *msg, size_t len)
{
    if ({{ v.name }}_send_message(c, msg, len) == 0) {
        s->bytes_echoed += len;
    }
}
{%- else %}

static size_t {{ v.name }}_on_data(struct {{ v.name }}_session *s,
{{ v.align("size_t", "on_data") }}struct {{ v.name }}_conn *c,
{{ v.align("size_t", "on_data") }}const unsigned char *data, size_t len)
{
    /* The loop stops reading while the queue is above io.output_buffer, so echoing all of it
     * never piles up more than one read past that. */
    if ({{ v.name }}_write(c, data, len) == 0) {
        s->bytes_echoed += len;
    }
    return len;
}
{%- endif %}
{%- when _ %}

static void {{ v.name }}_on_open(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    s->bytes_in = 0;
    {{ v.name }}_worker(c)->connections++;
}
{%- if v.framed %}

static void {{ v.name }}_on_message(struct {{ v.name }}_session *s,
{{ v.align("void", "on_message") }}struct {{ v.name }}_conn *c,
{{ v.align("void", "on_message") }}const unsigned char *msg, size_t len)
{
    s->bytes_in += len;
    (void){{ v.name }}_send_message(c, msg, len); /* -1 only when the connection is closing */
}
{%- else %}

static size_t {{ v.name }}_on_data(struct {{ v.name }}_session *s,
{{ v.align("size_t", "on_data") }}struct {{ v.name }}_conn *c,
{{ v.align("size_t", "on_data") }}const unsigned char *data, size_t len)
{
    s->bytes_in += len;
    (void){{ v.name }}_write(c, data, len); /* -1 only when the connection is closing */
    return len; /* everything used; return less to see the rest again with the next bytes */
}
{%- endif %}
{%- endmatch %}
{%- if v.handler != Handler::Chargen %}

/* Nothing to produce unless asked: {{ v.name }}_want_writable() is never called here. */
static void {{ v.name }}_on_writable(struct {{ v.name }}_session *s,
{{ v.align("void", "on_writable") }}struct {{ v.name }}_conn *c)
{
    (void)s;
    (void)c;
}
{%- endif %}

static void {{ v.name }}_on_eof(struct {{ v.name }}_session *s, struct {{ v.name }}_conn *c)
{
    (void)s;
    {{ v.name }}_close(c); /* after everything queued is sent */
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
{%- else %}
{%- match v.handler %}
{%- when Handler::Echo %}

/* RFC 862 echo: every datagram is sent back whole to its sender. */
struct {{ v.name }}_worker {
    unsigned long long datagrams;
};

static void {{ v.name }}_on_message(struct {{ v.name }}_worker *w,
{{ v.align("void", "on_message") }}struct {{ v.name }}_conn *c,
{{ v.align("void", "on_message") }}const unsigned char *msg, size_t len)
{
    w->datagrams++;
    (void){{ v.name }}_write(c, msg, len); /* fits: io.output_buffer >= io.buffer_size */
}
{%- when Handler::Discard %}

/* RFC 863 discard: every datagram is dropped; nothing is ever sent. */
struct {{ v.name }}_worker {
    unsigned long long datagrams;
};

static void {{ v.name }}_on_message(struct {{ v.name }}_worker *w,
{{ v.align("void", "on_message") }}struct {{ v.name }}_conn *c,
{{ v.align("void", "on_message") }}const unsigned char *msg, size_t len)
{
    (void)c;
    (void)msg;
    (void)len;
    w->datagrams++;
}
{%- when Handler::Chargen %}

/*
 * RFC 864 character generator: each datagram received is answered by one datagram of 0 to 512
 * characters of the pattern (lines of 72 printable characters ending in CR LF, each line
 * starting one character further along the 95-character cycle), continuing where the last
 * reply stopped.
 */
enum { {{ v.upper }}_LINE_CHARS = 72, {{ v.upper }}_CYCLE = 95 };

struct {{ v.name }}_worker {
    unsigned line;   /* which line of the pattern comes next */
    unsigned column; /* position within that line, CR LF included (0..73) */
    uint32_t rng;    /* picks each reply's length */
};

static unsigned char {{ v.name }}_chargen_next(struct {{ v.name }}_worker *w)
{
    unsigned char c;
    if (w->column < {{ v.upper }}_LINE_CHARS) {
        c = (unsigned char)(' ' + (w->line + w->column) % {{ v.upper }}_CYCLE);
    } else {
        c = w->column == {{ v.upper }}_LINE_CHARS ? '\r' : '\n';
    }
    if (++w->column == {{ v.upper }}_LINE_CHARS + 2) {
        w->column = 0;
        w->line = (w->line + 1) % {{ v.upper }}_CYCLE;
    }
    return c;
}

static void {{ v.name }}_on_message(struct {{ v.name }}_worker *w,
{{ v.align("void", "on_message") }}struct {{ v.name }}_conn *c,
{{ v.align("void", "on_message") }}const unsigned char *msg, size_t len)
{
    unsigned char reply[512];
    size_t i, n;
    (void)msg;
    (void)len;
    /* xorshift32: cheap, and good enough to vary reply lengths. */
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 17;
    w->rng ^= w->rng << 5;
    n = w->rng % 513u;
    for (i = 0; i < n; i++) {
        reply[i] = {{ v.name }}_chargen_next(w);
    }
    (void){{ v.name }}_write(c, reply, n);
}
{%- when _ %}

/*
 * Your protocol goes here. As generated it echoes, so the server works from the first build;
 * replace the body. State goes in the worker struct (one per event loop).
 */
struct {{ v.name }}_worker {
    unsigned long long datagrams;
};

static void {{ v.name }}_on_message(struct {{ v.name }}_worker *w,
{{ v.align("void", "on_message") }}struct {{ v.name }}_conn *c,
{{ v.align("void", "on_message") }}const unsigned char *msg, size_t len)
{
    w->datagrams++;
    (void){{ v.name }}_write(c, msg, len); /* the reply goes back to
    {{ v.name_blank() }}                            * {{ v.name }}_info(c)->peer */
}
{%- endmatch %}

static void {{ v.name }}_on_worker_start(struct {{ v.name }}_worker *w, unsigned index)
{
    (void)index;
    memset(w, 0, sizeof *w);
{%- if v.handler == Handler::Chargen %}
    w->rng = 2463534242u;
{%- endif %}
}

static void {{ v.name }}_on_worker_stop(struct {{ v.name }}_worker *w)
{
    (void)w;
}
{%- endif %}
{%- endif %}
