
/* ---------------------------------------------------------------------------------------------
 * A connection's requests on a completion port, the same for a server's and a client's: one
 * WSARecv into its own buffer and at most one WSASend at a time. The loop provides
 * conn_retire() (free a finished connection once Windows holds none of its requests) and
 * `port` (its completion port, for resume packets).
 */

static int conn_retire(struct loop *lp, Conn *c);

/* A receive ended: bytes for the handler, the peer's FIN, or the error that ends it. */
static void conn_received(Conn *c, int error, DWORD moved, uint64_t now)
{
    c->recv_pending = 0;
    OP_LOG("recv", c->fd, " bytes=%lu result=%s", (unsigned long)moved,
           error != 0 ? socket_error_name(error) : moved == 0 ? "EOF" : "ok");
    if (error != 0) {
        if (error != WSA_OPERATION_ABORTED) {
            conn_fail(c, error);
        }
    } else if (moved == 0) {
        c->read_closed = 1;
        if (c->phase == PHASE_OPEN) {
            c->eof_pending = 1;
        } else if (c->phase == PHASE_LINGER) {
            c->phase = PHASE_DONE; /* the peer's FIN: it has everything */
        }
    } else {
{%- if v.client %}
        c->heard = 1;
{%- endif %}
        conn_receive(c, c->recv_buf, moved, now);
    }
}

/* A send ended: its bytes leave the queue, or the error ends the connection. */
static void conn_sent(Conn *c, int error, DWORD moved, uint64_t now)
{
    c->send_pending = 0;
    OP_LOG("send", c->fd, " bytes=%lu result=%s", (unsigned long)moved,
           error != 0 ? socket_error_name(error) : "ok");
    if (error != 0) {
        if (error != WSA_OPERATION_ABORTED) {
            conn_fail(c, error);
        }
    } else {
        out_consume(c, moved, now);
    }
}

/* Starts what the connection can do now: a send while output waits, a receive while it
 * takes input. Returns 1 when one of them completed at once and was handled (the caller
 * looks again); a request that cannot start ends the connection. */
static int conn_post(Conn *c, uint64_t now)
{
    if (c->phase == PHASE_DONE) {
        return 0;
    }
    if (!c->send_pending && c->out_pending > 0) {
        DWORD count = out_gather(c, c->send_bufs);
        DWORD sent = 0;
        int rc;
        memset(&c->send_op.ov, 0, sizeof c->send_op.ov);
        c->send_pending = 1;
        rc = WSASend(c->fd, c->send_bufs, count, &sent, 0, &c->send_op.ov, NULL);
        if (rc == 0 && c->skips_port) {
            conn_sent(c, 0, sent, now);
            return 1;
        }
        if (rc != 0 && WSAGetLastError() != WSA_IO_PENDING) {
            conn_sent(c, WSAGetLastError(), 0, now);
            return 0;
        }
    }
    if (!c->recv_pending && conn_wants_input(c)) {
        WSABUF buf;
        DWORD flags = 0, got = 0;
        int rc;
        buf.buf = (CHAR *)c->recv_buf;
        buf.len = {{ v.upper }}_BUFFER_SIZE;
        memset(&c->recv_op.ov, 0, sizeof c->recv_op.ov);
        c->recv_pending = 1;
        rc = WSARecv(c->fd, &buf, 1, &got, &flags, &c->recv_op.ov, NULL);
        if (rc == 0 && c->skips_port) {
            conn_received(c, 0, got, now);
            return 1;
        }
        if (rc != 0 && WSAGetLastError() != WSA_IO_PENDING) {
            conn_received(c, WSAGetLastError(), 0, now);
            return 0;
        }
    }
    return 0;
}

/* After anything happened to a connection: the contract's steps, then the requests they
 * call for, then its deadline; a finished connection is retired. Requests that complete at
 * once are handled here, CONN_BUDGET rounds at most: then a resume packet lets the other
 * connections of the worker have their turn first. */
static void conn_drive(struct loop *lp, Conn *c, uint64_t now)
{
    int round;
    for (round = 0; c->phase != PHASE_DONE; round++) {
        int guard;
        for (guard = 0; guard < CONN_BUDGET && c->phase != PHASE_DONE; guard++) {
            if (!(conn_settle(c, now) | conn_produce(c))) {
                break;
            }
        }
        if (round == CONN_BUDGET) {
            if (PostQueuedCompletionStatus(lp->port, 0, RESUME_KEY, (LPOVERLAPPED)(void *)c)) {
                c->resume_pending = 1;
            } else {
                conn_end(c, {{ v.upper }}_CLOSE_ERROR, (int)GetLastError());
            }
            break;
        }
        if (!conn_post(c, now)) {
            break;
        }
    }
    if (c->phase == PHASE_DONE) {
        (void)conn_retire(lp, c);
        return;
    }
    timers_schedule(&lp->timers, c);
}

/* One request of a connection completed (bytes moved, or the error that ended it). */
static void conn_completed(struct loop *lp, struct overlapped_op *op, uint64_t now)
{
    Conn *c = op->conn;
    DWORD moved = 0, flags = 0;
    int error =
        WSAGetOverlappedResult(c->fd, &op->ov, &moved, FALSE, &flags) ? 0 : WSAGetLastError();
    if (op == &c->recv_op) {
        conn_received(c, error, moved, now);
    } else {
        conn_sent(c, error, moved, now);
    }
    if (c->phase == PHASE_DONE) {
        (void)conn_retire(lp, c);
    } else {
        conn_drive(lp, c, now);
    }
}

/* A resume packet came back: the connection goes on where its budget stopped it. */
static void conn_resumed(struct loop *lp, Conn *c, uint64_t now)
{
    c->resume_pending = 0;
    conn_drive(lp, c, now);
}

/* While the loop drains, a request of an ended connection came back (cancelled or done): its
 * bytes no longer matter, and the connection is freed once Windows holds nothing else of it. */
static void conn_request_drained(struct loop *lp, struct overlapped_op *op)
{
    Conn *c = op->conn;
    if (op == &c->recv_op) {
        c->recv_pending = 0;
    } else {
        c->send_pending = 0;
    }
    (void)conn_retire(lp, c);
}

/* While the loop drains, an ended connection's resume packet came back. */
static void conn_resume_drained(struct loop *lp, Conn *c)
{
    c->resume_pending = 0;
    (void)conn_retire(lp, c);
}

/* The drain gave up waiting for the requests of an ended connection: on_close runs and the
 * socket closes, but the buffers and the output queue stay, as Windows may still use them. */
static void conn_abandon(Conn *c)
{
    if (c->opened) {
        c->opened = 0;
        handler_enter(c);
        {{ v.name }}_on_close(&c->session, c, c->reason, c->error);
        handler_leave(c);
    }
    OP_LOG("close", c->fd, " reason=%s error=%d", {{ v.name }}_close_reason_name(c->reason),
           c->error);
    closesocket(c->fd);
    c->fd = INVALID_SOCKET;
}
