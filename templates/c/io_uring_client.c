{%- include "c/header_comment.c" %}

{% include "c/prelude.c" %}
{% include "c/handler_slot.c" %}
{{ v.implementation_open }}
{% include "c/runtime.c" %}
{%- if v.tcp %}
{% include "c/tcp_conn.c" %}
{% include "c/conn_socket.c" %}
{% include "c/conn_completion.c" %}

#define RING_BUFFER_SIZE {{ v.upper }}_BUFFER_SIZE
{%- else %}
{% include "c/udp_client_conn.c" %}

/* A received datagram in a provided buffer: io_uring's header, then the payload (a connected
 * socket needs no sender's address). */
#define RING_BUFFER_SIZE (sizeof(struct io_uring_recvmsg_out) + {{ v.upper }}_BUFFER_SIZE)
{%- endif %}

{% include "c/timers.c" %}
{% include "c/uring.c" %}
{% include "c/client_runtime.c" %}
{{ v.runtime_close }}

/* ---------------------------------------------------------------------------------------------
 * The io_uring loop of a client. Each connect is an IORING_OP_CONNECT with a timeout linked to
 * it, so the kernel itself ends an attempt at client.connect_timeout_ms (the connect completes
 * with ECANCELED, taken as ETIMEDOUT). The pool's retries and backoff are the other models'.
{%- if v.tcp %}
 * Once connected, the socket's I/O is the server's: one multishot receive into the provided
 * buffers and at most one send, so bytes never overtake each other.
{%- else %}
 * Once connected, a multishot receive takes the server's datagrams into the provided buffers;
 * a write is sent at once, as in every model.
{%- endif %}
 */

struct loop {
    struct ring ring;
    Conn *all; /* every open connection */
    struct timer_heap timers;
{%- if v.tcp %}
    struct chunk_cache chunks;
{%- endif %}
    struct {{ v.name }}_worker worker;
    struct member *members;  /* the pool */
    unsigned members_left;   /* not done yet */
    struct member_deadlines members_due; /* connect timeouts and backoff ends */
};

/* The kernel reads a linked timeout's duration when the request is submitted. */
static struct __kernel_timespec connect_timeout = {
    {{ v.upper }}_CONNECT_TIMEOUT_MS / 1000,
    ({{ v.upper }}_CONNECT_TIMEOUT_MS % 1000) * 1000000ll,
};

/* Queues the member's connect (the socket is open) with its timeout linked; 0, or -1 with
 * errno. The kernel, not the loop, watches this deadline. */
static int loop_watch_connecting(struct loop *lp, struct member *m)
{
    struct io_uring_sqe *connect_sqe, *timeout_sqe;
    /* Both in one submission: a link cannot span two. */
    if (io_uring_sq_space_left(&lp->ring.uring) < 2) {
        int rc;
        ring_give_back(&lp->ring);
        rc = io_uring_submit(&lp->ring.uring);
        if (rc < 0) {
            errno = -rc;
            return -1;
        }
    }
    connect_sqe = ring_sqe(&lp->ring);
    timeout_sqe = ring_sqe(&lp->ring);
    io_uring_prep_connect(connect_sqe, m->fd, (const struct sockaddr *)member_target(m),
                          m->targets[m->address].length);
    connect_sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(connect_sqe, ring_tag(m, OP_CONNECT));
    io_uring_prep_link_timeout(timeout_sqe, &connect_timeout, 0);
    io_uring_sqe_set_data64(timeout_sqe, ring_tag(NULL, OP_CONNECT_TIMEOUT));
    m->deadline_ms = NO_DEADLINE;
    return 0;
}

/* Called only once the connect has completed: the ring holds nothing of the socket. */
static void loop_unwatch_connecting(struct loop *lp, struct member *m)
{
    (void)lp;
    (void)m;
}

{% include "c/client_pool.c" %}

/* on_close, then the member's next step: done, or a failed attempt to retry. Only once the
 * ring holds no request of the connection. */
static void loop_close(struct loop *lp, Conn *c)
{
    struct member *m = &lp->members[c->member];
    conn_list_remove(&lp->all, c);
    conn_release(c);
    member_connection_ended(m, c, now_ms());
    free(c);
    loop_member_settled(lp, m);
}
{%- if v.tcp %}

{% include "c/uring_conn.c" %}
{%- else %}

static void loop_arm_recv(struct loop *lp, Conn *c)
{
    struct io_uring_sqe *sqe = ring_sqe(&lp->ring);
    if (sqe == NULL) {
        loop_ring_full(c);
        return;
    }
    memset(&c->recv_msg, 0, sizeof c->recv_msg);
    io_uring_prep_recvmsg_multishot(sqe, c->fd, &c->recv_msg, MSG_TRUNC);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RING_BUFFER_GROUP;
    io_uring_sqe_set_data64(sqe, ring_tag(c, OP_RECV));
    c->recv_armed = 1;
}

/* The socket is done: cancel its receive, and close it when the ring holds nothing of it. */
static void loop_finish(struct loop *lp, Conn *c)
{
    timers_remove(&lp->timers, c);
    if (c->recv_armed) {
        if (c->cancel_inflight == 0) {
            struct io_uring_sqe *sqe = ring_sqe(&lp->ring);
            if (sqe != NULL) {
                io_uring_prep_cancel64(sqe, ring_tag(c, OP_RECV), 0);
                io_uring_sqe_set_data64(sqe, ring_tag(c, OP_CANCEL));
                c->cancel_inflight++;
            }
            /* else the receive still ends: with the ring at shutdown */
        }
        return;
    }
    if (c->cancel_inflight == 0) {
        loop_close(lp, c);
    }
}

/* After the handler ran: keep the receive armed while the socket is open. */
static void loop_advance(struct loop *lp, Conn *c, uint64_t now)
{
    (void)now;
    if (c->phase == PHASE_OPEN && !c->recv_armed) {
        loop_arm_recv(lp, c);
    }
    if (c->phase != PHASE_OPEN) {
        loop_finish(lp, c);
        return;
    }
    timers_schedule(&lp->timers, c);
}

static void loop_on_recv(struct loop *lp, Conn *c, const struct io_uring_cqe *cqe, uint64_t now)
{
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        c->recv_armed = 0; /* ENOBUFS or an error ended it: armed again if the socket is open */
    }
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        unsigned char *buffer = ring_buffer(&lp->ring, id);
        struct io_uring_recvmsg_out *out =
            io_uring_recvmsg_validate(buffer, cqe->res, &c->recv_msg);
        OP_LOG("recv", c->fd, " bytes=%u result=ok", out != NULL ? out->payloadlen : 0u);
        if (out != NULL && c->phase == PHASE_OPEN) {
            /* MSG_TRUNC: payloadlen is the datagram's real length, past io.buffer_size. */
            conn_deliver(c, io_uring_recvmsg_payload(out, &c->recv_msg), out->payloadlen, now);
        }
        ring_return_buffer(&lp->ring, id);
    } else if (cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -ECANCELED
               && cqe->res != -EINTR && cqe->res != -EAGAIN) {
        OP_LOG("recv", c->fd, " bytes=%d result=%s", cqe->res, errno_name(-cqe->res));
        /* ENOBUFS: every buffer was in use; nothing was lost, the receive is armed again. */
        conn_fail(c, -cqe->res);
    }
}

/* Handles every passed deadline; each socket at most once per turn. */
static void loop_expire(struct loop *lp, uint64_t now)
{
    size_t budget = lp->timers.len;
    Conn *c;
    while (budget-- > 0 && (c = timers_next_due(&lp->timers, now)) != NULL) {
        conn_expire(c, now);
        loop_advance(lp, c, now);
    }
}
{%- endif %}

/* The member's connect completed: connected, refused, failed, or ended by its timeout. */
static void loop_on_connect(struct loop *lp, struct member *m, int result, uint64_t now)
{
    int error = result == -ECANCELED ? ETIMEDOUT : -result;
    Conn *c;
    OP_LOG("connect", m->fd, " result=%s", result == 0 ? "ok" : errno_name(error));
    if (result < 0) {
        loop_connect_failed(lp, m, error, now);
        return;
    }
    c = conn_open(m->fd, member_target(m), &lp->worker, 0, {% if v.tcp %}&lp->chunks, {% endif %}now);
    if (c == NULL) {
        loop_connect_failed(lp, m, ENOMEM, now);
        return;
    }
    c->member = m->index;
    m->fd = -1;
    m->conn = c;
    m->state = MEMBER_OPEN;
    conn_list_add(&lp->all, c);
    conn_start(c);
    loop_advance(lp, c, now);
}

/* Handles one completion. Returns 1 when the stop pipe became readable. */
static int loop_complete(struct loop *lp, const struct io_uring_cqe *cqe, uint64_t now)
{
    uint64_t tag = io_uring_cqe_get_data64(cqe);
    Conn *c = ring_tag_owner(tag);
    switch (ring_tag_op(tag)) {
    case OP_STOP:
        return 1;
    case OP_CONNECT_TIMEOUT:
        return 0; /* its connect's own completion says how the attempt ended */
    case OP_CONNECT:
        loop_on_connect(lp, ring_tag_owner(tag), cqe->res, now);
        return 0;
    case OP_CANCEL:
        c->cancel_inflight--;
        break;
    case OP_RECV:
        loop_on_recv(lp, c, cqe, now);
        break;
{%- if v.tcp %}
    case OP_SEND:
        loop_on_send(c, cqe, now);
        break;
{%- else %}
    case OP_SEND:
        return 0; /* a client's datagrams are sent at once, not through the ring */
{%- endif %}
    }
    if (c->phase == PHASE_DONE) {
        loop_finish(lp, c);
    } else {
        loop_advance(lp, c, now);
    }
    return 0;
}

/* Runs until every member of the pool is done (0), a stop signal (0) or a failed wait (-1). */
static int loop_run(struct loop *lp)
{
    uint64_t now = now_ms();
    while (lp->members_left > 0) {
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        int stop = 0;
        if (ring_wait(&lp->ring,
                      loop_members_timeout(lp, timers_timeout(&lp->timers, now), now)) != 0) {
            log_errno("io_uring_submit_and_wait_timeout");
            return -1;
        }
        now = now_ms();
        io_uring_for_each_cqe(&lp->ring.uring, head, cqe) {
            ring_seen(&lp->ring, cqe);
            stop |= loop_complete(lp, cqe, now);
            seen++;
        }
        io_uring_cq_advance(&lp->ring.uring, seen);
        if (stop) {
            return 0;
        }
        loop_expire(lp, now);
        loop_members_due(lp, now);
    }
    return 0;
}

/* Opens the pool and runs the loop; on a stop every connection ends with reason stopping. */
static int loop_main(void)
{
    struct loop lp;
    struct io_uring_sqe *sqe;
    Conn *released = NULL;
    unsigned i;
    int status = -1;
    uint64_t now = now_ms();

    memset(&lp, 0, sizeof lp);
    lp.members = calloc(command_line.connections, sizeof *lp.members);
    if (lp.members == NULL || member_deadlines_init(&lp.members_due, command_line.connections) != 0
        || timers_init(&lp.timers) != 0) {
        log_errno("malloc");
        goto out_memory;
    }
    if (ring_open(&lp.ring) != 0) {
        goto out_memory;
    }
    sqe = ring_sqe(&lp.ring);
    io_uring_prep_poll_add(sqe, stop_pipe[0], POLLIN);
    io_uring_sqe_set_data64(sqe, ring_tag(NULL, OP_STOP));
    if (!worker_start(&lp.worker, 0)) {
        ring_close(&lp.ring); /* nothing was submitted but the stop watch */
        goto out_memory;
    }
    lp.members_left = command_line.connections;
    for (i = 0; i < command_line.connections; i++) {
        member_init(&lp.members[i], i);
        loop_connect(&lp, &lp.members[i], now);
    }
    status = loop_run(&lp);
    /* on_close for every connection; ring_close then cancels their requests (and connects
     * still under way) and waits for them, after which the kernel no longer touches their
     * memory. */
    while (lp.all != NULL) {
        Conn *c = lp.all;
        lp.all = c->next;
        conn_end(c, {{ v.upper }}_CLOSE_STOPPING, 0);
{%- if v.tcp %}
        conn_close_socket(c); /* its buffers wait for the ring: a send may still read them */
{%- else %}
        conn_release(c);
{%- endif %}
        c->next = released;
        released = c;
    }
    {{ v.name }}_on_worker_stop(&lp.worker);
    if (ring_close(&lp.ring)) {
        while (released != NULL) {
            Conn *c = released;
            released = c->next;
{%- if v.tcp %}
            conn_free_buffers(c);
{%- endif %}
            free(c);
        }
    }
    for (i = 0; i < command_line.connections; i++) {
        if (lp.members[i].fd >= 0) {
            close(lp.members[i].fd);
        }
    }
out_memory:
    members_release(lp.members);
    free(lp.members);
    free(lp.members_due.items);
    free(lp.timers.items);
{%- if v.tcp %}
    chunk_cache_drain(&lp.chunks);
{%- endif %}
    return status;
}

{% include "c/client_main.c" %}
