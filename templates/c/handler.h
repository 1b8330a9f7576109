/*
 * Handler callbacks for {{ v.name }}: the one place for your protocol.
{%- if v.user_owned_handler %}
 *
 * This file is yours: `sockgen render -o` writes it only when it does not exist yet.
{%- endif %}
 *
 * The event loop calls these and they must not block:
 *   {{ v.name }}_on_open      {% if v.tcp %}a peer connected{% else %}the server started (UDP has no connections){% endif %}
 *   {{ v.name }}_on_data      bytes arrived{% if !v.tcp %} (one whole datagram){% endif %}; queue replies with {{ v.name }}_out_write()
{%- if v.tcp %}
 *   {{ v.name }}_on_writable  the output queue has room again (for producers such as chargen)
{%- endif %}
 *   {{ v.name }}_on_close     {% if v.tcp %}the connection is going away{% else %}the server is stopping{% endif %}
 * Return {{ v.upper }}_KEEP to go on, or {{ v.upper }}_CLOSE to close once queued output is sent.
 */

{%- match v.handler %}
{%- when "echo" %}

/* RFC 862 echo: every byte received is sent back, in order. */
struct {{ v.name }}_session {
    unsigned long long bytes_echoed;
};

/* 1 when on_writable produces output; this handler only answers what it receives. */
enum { {{ v.upper }}_PRODUCER = 0 };

static int {{ v.name }}_on_open(struct {{ v.name }}_session *s)
{
    s->bytes_echoed = 0;
    return {{ v.upper }}_KEEP;
}

static int {{ v.name }}_on_data(struct {{ v.name }}_session *s, const unsigned char *data, size_t len,
{{ v.on_data_indent }}struct {{ v.name }}_out *out)
{
    if ({{ v.name }}_out_write(out, data, len) != 0) {
        return {{ v.upper }}_CLOSE; /* cannot happen: the loop reads at most what fits */
    }
    s->bytes_echoed += len;
    return {{ v.upper }}_KEEP;
}

{%- if v.tcp %}

static int {{ v.name }}_on_writable(struct {{ v.name }}_session *s, struct {{ v.name }}_out *out)
{
    (void)s;
    (void)out;
    return {{ v.upper }}_KEEP;
}
{%- endif %}

static void {{ v.name }}_on_close(struct {{ v.name }}_session *s)
{
    (void)s;
}
{%- when "discard" %}

/* RFC 863 discard: everything received is thrown away; nothing is ever sent. */
struct {{ v.name }}_session {
    unsigned long long bytes_discarded;
};

/* 1 when on_writable produces output; this handler only answers what it receives. */
enum { {{ v.upper }}_PRODUCER = 0 };

static int {{ v.name }}_on_open(struct {{ v.name }}_session *s)
{
    s->bytes_discarded = 0;
    return {{ v.upper }}_KEEP;
}

static int {{ v.name }}_on_data(struct {{ v.name }}_session *s, const unsigned char *data, size_t len,
{{ v.on_data_indent }}struct {{ v.name }}_out *out)
{
    (void)data;
    (void)out;
    s->bytes_discarded += len;
    return {{ v.upper }}_KEEP;
}

{%- if v.tcp %}

static int {{ v.name }}_on_writable(struct {{ v.name }}_session *s, struct {{ v.name }}_out *out)
{
    (void)s;
    (void)out;
    return {{ v.upper }}_KEEP;
}
{%- endif %}

static void {{ v.name }}_on_close(struct {{ v.name }}_session *s)
{
    (void)s;
}
{%- when "chargen" %}

/*
 * RFC 864 character generator: lines of 72 printable ASCII characters (codes 32 to 126) ending
 * in CR LF, each line starting one character further along the 95-character cycle.
{%- if v.tcp %}
 * Input is ignored; output flows as fast as the peer reads it.
{%- else %}
 * Each datagram received is answered by one datagram of 0 to 512 characters.
{%- endif %}
 */
enum { {{ v.upper }}_LINE_CHARS = 72, {{ v.upper }}_CYCLE = 95 };

struct {{ v.name }}_session {
    unsigned line;   /* which line of the pattern comes next */
    unsigned column; /* position within that line, CR LF included (0..73) */
{%- if !v.tcp %}
    uint32_t rng;    /* picks each reply's length */
{%- endif %}
};

/* on_writable produces output: the loop asks for writability even with nothing queued. */
enum { {{ v.upper }}_PRODUCER = {% if v.tcp %}1{% else %}0{% endif %} };

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

/* Appends up to max bytes of the pattern. */
static void {{ v.name }}_chargen_fill(struct {{ v.name }}_session *s, struct {{ v.name }}_out *out, size_t max)
{
    size_t room = {{ v.name }}_out_room(out);
    size_t n = max < room ? max : room;
    for (size_t i = 0; i < n; i++) {
        out->buf[out->len + i] = {{ v.name }}_chargen_next(s);
    }
    out->len += n;
    out->has_reply = 1;
}

static int {{ v.name }}_on_open(struct {{ v.name }}_session *s)
{
    s->line = 0;
    s->column = 0;
{%- if !v.tcp %}
    s->rng = 2463534242u;
{%- endif %}
    return {{ v.upper }}_KEEP;
}

static int {{ v.name }}_on_data(struct {{ v.name }}_session *s, const unsigned char *data, size_t len,
{{ v.on_data_indent }}struct {{ v.name }}_out *out)
{
    (void)data;
    (void)len;
{%- if v.tcp %}
    (void)s;
    (void)out;
{%- else %}
    /* xorshift32: cheap, and good enough to vary reply lengths. */
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 17;
    s->rng ^= s->rng << 5;
    {{ v.name }}_chargen_fill(s, out, s->rng % 513u);
{%- endif %}
    return {{ v.upper }}_KEEP;
}

{%- if v.tcp %}

static int {{ v.name }}_on_writable(struct {{ v.name }}_session *s, struct {{ v.name }}_out *out)
{
{%- if v.tcp %}
    {{ v.name }}_chargen_fill(s, out, {{ v.name }}_out_room(out));
{%- else %}
    (void)s;
    (void)out;
{%- endif %}
    return {{ v.upper }}_KEEP;
}
{%- endif %}

static void {{ v.name }}_on_close(struct {{ v.name }}_session *s)
{
    (void)s;
}
{%- when _ %}

/*
 * Your protocol goes here. As generated it echoes, so the server works from the first build;
 * replace the bodies. Per-{{ v.unit }} state goes in the session struct.
 */
struct {{ v.name }}_session {
    unsigned long long bytes_in;
};

/* Set to 1 when on_writable produces output (a server that talks first, such as chargen). */
enum { {{ v.upper }}_PRODUCER = 0 };

static int {{ v.name }}_on_open(struct {{ v.name }}_session *s)
{
    s->bytes_in = 0;
    return {{ v.upper }}_KEEP;
}

static int {{ v.name }}_on_data(struct {{ v.name }}_session *s, const unsigned char *data, size_t len,
{{ v.on_data_indent }}struct {{ v.name }}_out *out)
{
    s->bytes_in += len;
    if ({{ v.name }}_out_write(out, data, len) != 0) {
        return {{ v.upper }}_CLOSE;
    }
    return {{ v.upper }}_KEEP;
}

{%- if v.tcp %}

static int {{ v.name }}_on_writable(struct {{ v.name }}_session *s, struct {{ v.name }}_out *out)
{
    (void)s;
    (void)out;
    return {{ v.upper }}_KEEP;
}
{%- endif %}

static void {{ v.name }}_on_close(struct {{ v.name }}_session *s)
{
    (void)s;
}
{%- endmatch %}
