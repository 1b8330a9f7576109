
/* ---------------------------------------------------------------------------------------------
 * A connection's input in a completion model (io_uring, IOCP): the loop's requests complete
 * with bytes, handed over here (c/uring_conn.c and winsock/iocp_conn.c make the requests).
 */

/* Bytes a completion delivered. While open they go to the handler after what it kept, as
 * after a read; while closing they are dropped. A completion can come after reading paused
 * (the receive's cancel, or a receive posted earlier, had not landed): those bytes are kept,
 * never counted against the input limit since the handler chose not to read them yet, and
 * presented in windows once reading resumes, like what a readiness model finds in its socket. */
static void conn_receive(Conn *c, const unsigned char *data, size_t n, uint64_t now)
{
    int paused = c->read_paused || c->input_paused;
    c->last_active_ms = now;
    if (c->phase != PHASE_OPEN) {
        return;
    }
    if (c->in_len == 0 && !paused) {
        conn_deliver(c, data, n);
        return;
    }
    if (conn_input_room(c) != 0) {
        conn_end(c, {{ v.upper }}_CLOSE_ERROR, ENOMEM);
        return;
    }
    memcpy(c->in_buf + c->in_start + c->in_len, data, n); /* n <= BUFFER_SIZE: it fits */
    c->in_len += n;
    if (paused) {
        c->input_held = 1;
    } else {
        conn_deliver(c, NULL, 0);
    }
}
