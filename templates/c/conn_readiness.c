
/* ---------------------------------------------------------------------------------------------
 * A connection's I/O in a readiness model (blocking, poll, epoll; WSAPoll): the loop says the
 * socket is ready, and conn_service() reads and writes until it would block, through the
 * platform's calls (c/conn_socket.c, winsock/conn_socket.c).
 */

/* Read and dropped while closing, so the peer's writes cannot stall our last bytes. */
static int conn_discard(Conn *c, unsigned char *scratch, uint64_t now)
{
    long n = conn_recv(c, scratch, {{ v.upper }}_BUFFER_SIZE);
    int error;
    if (n > 0) {
        c->last_active_ms = now;
        return 1;
    }
    if (n == 0) {
        c->read_closed = 1;
        return 1;
    }
    switch (conn_io_failure(&error)) {
    case CONN_IO_INTERRUPTED:
        return 1;
    case CONN_IO_WOULD_BLOCK:
        return 0;
    default:
        conn_fail(c, error);
        return 1;
    }
}

/*
 * Does all the work the socket allows: flush, produce, read and hand to the handler, flush
{%- if v.client %}
 * again. A client reads on while its output waits: the replies are what it asked for, and a
 * server that paces it would otherwise wait for it while it waits for the server. Returns an
 * enum conn_status.
{%- else %}
 * again. Reading stops while the output queue is above its high-water mark, so a peer that
 * sends without reading is throttled instead of growing our memory. Returns an enum
 * conn_status.
{%- endif %}
 */
static int conn_service(Conn *c, unsigned char *scratch, uint64_t now)
{
    int can_read = 1;
    int round;
    for (round = 0;; round++) {
        int progress = 0;
        int flushed;
        if (c->phase == PHASE_DONE) {
            return CONN_DONE;
        }
        flushed = conn_flush(c, now);
        if (flushed < 0) {
            conn_fail(c, {{ v.socket_error }});
            return CONN_DONE;
        }
        progress = conn_settle(c, now);
        if (c->phase == PHASE_DONE) {
            return CONN_DONE;
        }
        if (round == CONN_BUDGET) {
            return CONN_MORE;
        }
        progress |= conn_produce(c);
        if (!can_read || !conn_wants_input(c)) {
            /* nothing to read now */
        } else if (c->phase != PHASE_OPEN) {
            if (conn_discard(c, scratch, now)) {
                progress = 1;
            } else {
                can_read = 0;
            }
            if (c->phase == PHASE_LINGER && c->read_closed) {
                return CONN_DONE; /* the peer's FIN: it has everything */
            }
        } else {
            unsigned char *into = scratch;
            long n;
            int error;
            if (c->in_len > 0) {
                if (conn_input_room(c) != 0) {
                    conn_end(c, {{ v.upper }}_CLOSE_ERROR, ENOMEM);
                    return CONN_DONE;
                }
                into = c->in_buf + c->in_start + c->in_len;
            }
            n = conn_recv(c, into, {{ v.upper }}_BUFFER_SIZE);
            OP_LOG("recv", c->fd, " bytes=%ld result=%s", n, n == 0 ? "EOF" : OP_RESULT(n > 0));
            if (n > 0) {
                c->last_active_ms = now;
{%- if v.client %}
                c->heard = 1;
{%- endif %}
                if (c->in_len > 0) {
                    c->in_len += (size_t)n;
                    conn_deliver(c, NULL, 0);
                } else {
                    conn_deliver(c, scratch, (size_t)n);
                }
                /* A short read emptied the socket: skip the read that would only say EAGAIN.
{%- if v.uses_epoll %}
                 * Unless it may not have (read_to_eagain): no new edge would announce what
                 * is left. */
{%- else %}
                 * Poll reports anything left. */
{%- endif %}
                if ((size_t)n < {{ v.upper }}_BUFFER_SIZE{% if v.uses_epoll %} && !c->read_to_eagain{% endif %}) {
                    can_read = 0;
                }
                progress = 1;
            } else if (n == 0) {
                c->read_closed = 1;
                c->eof_pending = 1;
                progress = 1;
            } else {
                switch (conn_io_failure(&error)) {
                case CONN_IO_INTERRUPTED:
                    progress = 1;
                    break;
                case CONN_IO_WOULD_BLOCK:
                    can_read = 0;
                    break;
                default:
                    conn_fail(c, error);
                    return CONN_DONE;
                }
            }
        }
        if (!progress) {
            return CONN_WAIT;
        }
    }
}
