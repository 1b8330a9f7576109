
/* ---------------------------------------------------------------------------------------------
 * One TCP connection: read, hand bytes to the handler, send what it queued. Shared by the
 * event loops; {{ v.model }} decides when to call conn_service().
 */

/* Receive calls per connection per wakeup, so one busy peer cannot starve the others. */
enum { CONN_BUDGET = 16 };

enum conn_status {
    CONN_WAIT, /* nothing more to do until the socket is ready again */
    CONN_MORE, /* budget spent with work left: service again soon */
    CONN_DONE  /* finished or failed: close it */
};

struct conn {
    int fd;
    int read_closed;         /* the peer shut down its sending side */
    int closing;             /* the handler asked to close once output is sent */
{%- if v.model == "epoll" %}
    int peer_hup;            /* EPOLLRDHUP seen: a short read may hide the FIN behind it */
{%- endif %}
    uint64_t last_active_ms; /* for the idle timeout */
    size_t out_sent;         /* bytes of out already sent */
    struct {{ v.name }}_out out;
    struct {{ v.name }}_session session;
{%- if v.model == "epoll" %}
    struct conn *prev, *next; /* every open connection, for the idle sweep */
    struct conn *ready_next;  /* the loop's list of connections with work left */
    int in_ready;
    int released;             /* closed while still on the ready list; freed when popped */
{%- endif %}
};

static struct conn *conn_open(int fd, uint64_t now)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        log_errno("calloc");
        return NULL;
    }
    c->fd = fd;
    c->last_active_ms = now;
    /* The queue is allocated on first use: idle connections cost no buffer. */
    c->out.cap = {{ v.upper }}_OUTPUT_BUFFER;
    if ({{ v.name }}_on_open(&c->session) != {{ v.upper }}_KEEP) {
        c->closing = 1;
    }
    return c;
}

/* Closes the socket and frees the buffers; the struct itself is the caller's to free. */
static void conn_release(struct conn *c)
{
    {{ v.name }}_on_close(&c->session);
    close(c->fd);
    c->fd = -1;
    free(c->out.buf);
    c->out.buf = NULL;
}

static size_t conn_pending(const struct conn *c)
{
    return c->out.len - c->out_sent;
}

/* Room the handler would have after compaction. */
static size_t conn_room(const struct conn *c)
{
    return c->out.cap - conn_pending(c);
}

/* Sends queued output. 1: all sent; 0: the socket is full; -1: the connection failed. */
static int conn_flush(struct conn *c, uint64_t now)
{
    while (c->out_sent < c->out.len) {
        ssize_t n = send(c->fd, c->out.buf + c->out_sent, c->out.len - c->out_sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_sent += (size_t)n;
            c->last_active_ms = now;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1; /* EPIPE, ECONNRESET...: the peer is gone */
        }
    }
    c->out.len = 0;
    c->out_sent = 0;
    c->out.has_reply = 0;
    return 1;
}

/* Makes the queue ready for the handler: allocated, unsent bytes moved to the front. */
static int conn_prepare_out(struct conn *c)
{
    if (c->out.buf == NULL) {
        c->out.buf = malloc(c->out.cap);
        if (c->out.buf == NULL) {
            log_errno("malloc");
            return -1;
        }
    }
    if (c->out_sent > 0) {
        memmove(c->out.buf, c->out.buf + c->out_sent, conn_pending(c));
        c->out.len -= c->out_sent;
        c->out_sent = 0;
    }
    return 0;
}

/*
 * Does all the work the socket allows: flush, produce, read and hand to the handler, flush
 * again. Reading stops while the output queue cannot take one more full read, so a peer that
 * sends without reading is throttled instead of growing our memory. Returns an enum
 * conn_status.
 */
static int conn_service(struct conn *c, unsigned char *scratch, uint64_t now)
{
    int can_read = 1;
    int round;
    for (round = 0;; round++) {
        int progress = 0;
        int flushed = conn_flush(c, now);
        if (flushed < 0) {
            return CONN_DONE;
        }
        if (c->closing || c->read_closed) {
            /* Half-close: the peer still gets everything queued before we close. */
            return flushed ? CONN_DONE : CONN_WAIT;
        }
        if (!flushed && conn_room(c) < {{ v.upper }}_BUFFER_SIZE) {
            return CONN_WAIT; /* back-pressure: resume when the peer reads */
        }
        if (round == CONN_BUDGET) {
            return CONN_MORE;
        }
        if (conn_prepare_out(c) != 0) {
            return CONN_DONE;
        }
        if ({{ v.upper }}_PRODUCER && flushed) {
            if ({{ v.name }}_on_writable(&c->session, &c->out) != {{ v.upper }}_KEEP) {
                c->closing = 1;
            }
            progress = c->out.len > 0 || c->closing;
        }
        if (can_read && conn_room(c) >= {{ v.upper }}_BUFFER_SIZE) {
            ssize_t n = recv(c->fd, scratch, {{ v.upper }}_BUFFER_SIZE, 0);
            if (n > 0) {
                c->last_active_ms = now;
                if ({{ v.name }}_on_data(&c->session, scratch, (size_t)n, &c->out) != {{ v.upper }}_KEEP) {
                    c->closing = 1;
                }
                /* A short read emptied the socket: skip the read that would only say EAGAIN.
                 * {% if v.model == "epoll" %}Unless the peer hung up: then the FIN may be queued behind the data and
                 * no new edge would announce it.{% else %}Level-triggered poll reports anything left.{% endif %} */
                if ((size_t)n < {{ v.upper }}_BUFFER_SIZE{% if v.model == "epoll" %} && !c->peer_hup{% endif %}) {
                    can_read = 0;
                }
                progress = 1;
            } else if (n == 0) {
                c->read_closed = 1;
                progress = 1;
            } else if (errno == EINTR) {
                progress = 1;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                can_read = 0;
            } else {
                return CONN_DONE; /* ECONNRESET and friends */
            }
        }
        if (!progress) {
            return CONN_WAIT;
        }
    }
}
