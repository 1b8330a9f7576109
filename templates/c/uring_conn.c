
/* ---------------------------------------------------------------------------------------------
 * A TCP connection's I/O on the ring, the same for a server's and a client's connections: one
 * multishot receive into the provided buffers and at most one send, so bytes never overtake
 * each other. The loop provides `ring`, `timers` and loop_close(), called once the ring holds
 * no request of the connection.
 */

static void loop_arm_recv(struct loop *lp, Conn *c)
{
    struct io_uring_sqe *sqe = ring_sqe(&lp->ring);
    if (sqe == NULL) {
        loop_ring_full(c);
        return;
    }
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RING_BUFFER_GROUP;
    io_uring_sqe_set_data64(sqe, ring_tag(c, OP_RECV));
    c->recv_armed = 1;
}

/* Cancels the request tagged `tag`, or with `fd` >= 0 every request on that socket. */
static int loop_cancel(struct loop *lp, Conn *c, uint64_t tag, int fd)
{
    struct io_uring_sqe *sqe = ring_sqe(&lp->ring);
    if (sqe == NULL) {
        return -1;
    }
    if (fd >= 0) {
        io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    } else {
        io_uring_prep_cancel64(sqe, tag, 0);
    }
    io_uring_sqe_set_data64(sqe, ring_tag(c, OP_CANCEL));
    if (c != NULL) {
        c->cancel_inflight++;
    }
    return 0;
}

/* Sends what is queued: one chunk with send(), several with sendmsg() and an iovec kept
 * until the completion, since the kernel may read it until then. */
static void loop_send(struct loop *lp, Conn *c)
{
    struct io_uring_sqe *sqe;
    if (c->out_head != c->out_tail && c->gather == NULL
        && (c->gather = malloc(sizeof *c->gather)) == NULL) {
        conn_end(c, {{ v.upper }}_CLOSE_ERROR, ENOMEM);
        return;
    }
    sqe = ring_sqe(&lp->ring);
    if (sqe == NULL) {
        loop_ring_full(c);
        return;
    }
    if (c->out_head == c->out_tail) {
        struct out_chunk *chunk = c->out_head;
        size_t len = chunk->tail - chunk->head;
        /* The request's length is 32 bits: a larger chunk goes in pieces (a send of 1 GiB
         * is partial anyway, and the rest follows). */
        io_uring_prep_send(sqe, c->fd, chunk->data + chunk->head,
                           len > 0x40000000u ? 0x40000000u : len, MSG_NOSIGNAL);
    } else {
        memset(&c->gather->msg, 0, sizeof c->gather->msg);
        c->gather->msg.msg_iov = c->gather->iov;
        c->gather->msg.msg_iovlen = (size_t)out_gather(c, c->gather->iov);
        io_uring_prep_sendmsg(sqe, c->fd, &c->gather->msg, MSG_NOSIGNAL);
    }
    io_uring_sqe_set_data64(sqe, ring_tag(c, OP_SEND));
    c->send_inflight = 1;
}

/* The connection is done: cancel what it has in the ring, and close it when nothing is left. */
static void loop_finish(struct loop *lp, Conn *c)
{
    timers_remove(&lp->timers, c);
    if (c->recv_armed || c->send_inflight) {
        if (c->cancel_inflight == 0) {
            /* Should the cancel not fit in the ring, the requests still end: when the peer
             * goes, or with the ring at shutdown. */
            (void)loop_cancel(lp, c, 0, c->fd);
        }
        return;
    }
    if (c->cancel_inflight == 0) {
        loop_close(lp, c);
    }
}

/* After the connection's handler ran: settle the contract's steps, then start the I/O they
 * call for (a send, a receive, or cancelling the receive while input is not wanted). */
static void loop_advance(struct loop *lp, Conn *c, uint64_t now)
{
    int round;
    for (round = 0; round < CONN_BUDGET && c->phase != PHASE_DONE; round++) {
        int progress = conn_settle(c, now);
        if (c->phase == PHASE_DONE || !(progress | conn_produce(c))) {
            break;
        }
    }
    if (c->phase != PHASE_DONE && c->out_pending > 0 && !c->send_inflight) {
        loop_send(lp, c);
    }
    if (c->phase != PHASE_DONE) {
        if (conn_wants_input(c)) {
            if (!c->recv_armed) {
                loop_arm_recv(lp, c);
            }
        } else if (c->recv_armed && !c->recv_cancelling) {
            /* Back-pressure: data already received still arrives and is kept. */
            if (loop_cancel(lp, c, ring_tag(c, OP_RECV), -1) == 0) {
                c->recv_cancelling = 1;
            }
        }
    }
    if (c->phase == PHASE_DONE) {
        loop_finish(lp, c);
        return;
    }
    timers_schedule(&lp->timers, c);
}

static void loop_on_recv(struct loop *lp, Conn *c, const struct io_uring_cqe *cqe, uint64_t now)
{
    int n = cqe->res;
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        c->recv_armed = 0;
        c->recv_cancelling = 0;
    }
    OP_LOG("recv", c->fd, " bytes=%d result=%s", n, n == 0 ? "EOF" : n > 0 ? "ok" : errno_name(-n));
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (n > 0 && c->phase != PHASE_DONE) {
{%- if v.client %}
            c->heard = 1;
{%- endif %}
            conn_receive(c, ring_buffer(&lp->ring, id), (size_t)n, now);
        }
        ring_return_buffer(&lp->ring, id);
    } else if (n == 0) {
        c->read_closed = 1;
        if (c->phase == PHASE_OPEN) {
            c->eof_pending = 1;
        } else if (c->phase == PHASE_LINGER) {
            c->phase = PHASE_DONE; /* the peer's FIN: it has everything */
        }
    } else if (n < 0 && n != -ENOBUFS && n != -ECANCELED && n != -EINTR && n != -EAGAIN) {
        /* ENOBUFS: every buffer was in use; nothing was lost, the receive is armed again. */
        conn_fail(c, -n);
    }
}

static void loop_on_send(Conn *c, const struct io_uring_cqe *cqe, uint64_t now)
{
    int n = cqe->res;
    c->send_inflight = 0;
    free(c->gather); /* what a queue of several chunks needs again is made again */
    c->gather = NULL;
    OP_LOG("send", c->fd, " bytes=%d result=%s", n, n >= 0 ? "ok" : errno_name(-n));
    if (n >= 0) {
        if (c->phase != PHASE_DONE) {
            out_consume(c, (size_t)n, now);
        }
    } else if (n != -EINTR && n != -EAGAIN && n != -ECANCELED) {
        conn_fail(c, -n);
    }
}

/* Handles every passed deadline; each connection at most once per turn. */
static void loop_expire(struct loop *lp, uint64_t now)
{
    size_t budget = lp->timers.len;
    Conn *c;
    while (budget-- > 0 && (c = timers_next_due(&lp->timers, now)) != NULL) {
        conn_expire(c, now);
        loop_advance(lp, c, now);
    }
}
