{%- include "c/header_comment.c" %}

{% include "c/prelude.c" %}
{% include "c/handler_slot.c" %}
{{ v.implementation_open }}
{% include "c/runtime.c" %}
{%- if v.tcp %}
{% include "c/tcp_conn.c" %}
{% include "c/conn_socket.c" %}
{% include "c/conn_completion.c" %}

{% include "c/timers.c" %}

#define RING_BUFFER_SIZE {{ v.upper }}_BUFFER_SIZE
{% include "c/uring.c" %}
{{ v.runtime_close }}

/* ---------------------------------------------------------------------------------------------
 * The io_uring loop. The listener has one multishot accept; each connection has one multishot
 * receive into the provided buffers and at most one send, so bytes never overtake each other.
 * Completions are handled in batches, and everything they cause is submitted with the next
 * wait, in one system call. The connection machinery is the one every model shares: only
 * what starts I/O differs.
 */

struct loop {
    struct ring ring;
    int listen_fd;
    int spare_fd;              /* given up to shed a connection when out of descriptors */
    int accept_armed;          /* the multishot accept is in the ring */
    int accept_cancelling;     /* ...and a cancel for it too */
    uint64_t accept_resume_ms; /* out of descriptors: accept again from then; 0 = not waiting */
    unsigned index;
    unsigned active;
    /* Connections the multishot accept took past max_connections before its cancel landed:
     * they wait, unread, as they would have in the backlog. */
    int *parked;
    size_t parked_len, parked_cap;
    Conn *all; /* every open connection */
    struct timer_heap timers;
    struct chunk_cache chunks;
    struct {{ v.name }}_worker worker;
};

/* Calls on_close, closes the socket and frees the connection: only once the ring holds no
 * request of it. */
static void loop_close(struct loop *lp, Conn *c)
{
    conn_list_remove(&lp->all, c);
    lp->active--;
    conn_release(c);
    free(c);
}

{% include "c/uring_conn.c" %}

static void loop_arm_accept(struct loop *lp)
{
    struct io_uring_sqe *sqe = ring_sqe(&lp->ring);
    if (sqe == NULL) {
        return; /* tried again after the next completions */
    }
    io_uring_prep_multishot_accept(sqe, lp->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ring_tag(NULL, OP_ACCEPT));
    lp->accept_armed = 1;
}

/* Keeps the accept armed while there is room for connections, and cancels it at
 * max_connections, so new peers wait in the backlog. */
static void loop_manage_accept(struct loop *lp, uint64_t now)
{
    int room = lp->active + lp->parked_len < {{ v.upper }}_MAX_CONNECTIONS;
    if (lp->accept_resume_ms != 0 && now >= lp->accept_resume_ms) {
        lp->accept_resume_ms = 0;
    }
    if (room && !lp->accept_armed && lp->accept_resume_ms == 0) {
        loop_arm_accept(lp);
    } else if (!room && lp->accept_armed && !lp->accept_cancelling) {
        if (loop_cancel(lp, NULL, ring_tag(NULL, OP_ACCEPT), -1) == 0) {
            lp->accept_cancelling = 1;
        }
    }
}

static void loop_open(struct loop *lp, int fd, uint64_t now)
{
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    Conn *c;
    if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) != 0) {
        memset(&peer, 0, sizeof peer);
    }
    c = conn_open(fd, &peer, &lp->worker, lp->index, &lp->chunks, now);
    if (c == NULL) {
        close(fd);
        return;
    }
    conn_list_add(&lp->all, c);
    lp->active++;
    conn_start(c);
    loop_advance(lp, c, now);
}

/* An accepted connection: opened, or parked while max_connections are open (the timer heap
 * holds exactly that many). */
static void loop_take(struct loop *lp, int fd, uint64_t now)
{
    if (lp->active >= {{ v.upper }}_MAX_CONNECTIONS) {
        if (lp->parked_len == lp->parked_cap) {
            size_t cap = lp->parked_cap == 0 ? 16 : 2 * lp->parked_cap;
            int *grown = realloc(lp->parked, cap * sizeof *grown);
            if (grown == NULL) {
                close(fd);
                return;
            }
            lp->parked = grown;
            lp->parked_cap = cap;
        }
        lp->parked[lp->parked_len++] = fd;
        return;
    }
    loop_open(lp, fd, now);
}

static void loop_on_accept(struct loop *lp, const struct io_uring_cqe *cqe, uint64_t now)
{
    int fd = cqe->res;
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        lp->accept_armed = 0;
        lp->accept_cancelling = 0;
    }
    OP_LOG("accept", lp->listen_fd, " conn=%d result=%s", fd, fd >= 0 ? "ok" : errno_name(-fd));
    if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
        /* Shed the waiting peer with the spare descriptor, then pause (see accept_connection). */
        struct sockaddr_storage peer;
        fd = accept_connection(lp->listen_fd, &lp->spare_fd, &peer);
        if (fd == ACCEPT_EXHAUSTED) {
            lp->accept_resume_ms = now + ACCEPT_PAUSE_MS;
            if (lp->accept_armed && !lp->accept_cancelling
                && loop_cancel(lp, NULL, ring_tag(NULL, OP_ACCEPT), -1) == 0) {
                lp->accept_cancelling = 1;
            }
            return;
        }
        if (fd >= 0) {
            loop_take(lp, fd, now); /* a descriptor was free again after all */
        }
        return;
    }
    if (fd < 0) {
        if (fd != -ECANCELED && fd != -ECONNABORTED && fd != -EINTR && fd != -EAGAIN) {
            errno = -fd;
            log_errno("accept");
        }
        return;
    }
    loop_take(lp, fd, now);
}

/* Handles one completion. Returns 1 when the stop pipe became readable. */
static int loop_complete(struct loop *lp, const struct io_uring_cqe *cqe, uint64_t now)
{
    uint64_t tag = io_uring_cqe_get_data64(cqe);
    Conn *c = ring_tag_owner(tag);
    switch (ring_tag_op(tag)) {
    case OP_STOP:
        return 1;
    case OP_ACCEPT:
        loop_on_accept(lp, cqe, now);
        return 0;
    case OP_CANCEL:
        if (c == NULL) {
            return 0; /* the accept's cancel: its own completion says when it ended */
        }
        c->cancel_inflight--;
        break;
    case OP_RECV:
        loop_on_recv(lp, c, cqe, now);
        break;
    case OP_SEND:
        loop_on_send(c, cqe, now);
        break;
    }
    if (c->phase == PHASE_DONE) {
        loop_finish(lp, c);
    } else {
        loop_advance(lp, c, now);
    }
    return 0;
}

/* Connections parked past max_connections take the places of those that closed. */
static void loop_unpark(struct loop *lp, uint64_t now)
{
    size_t taken = 0;
    while (taken < lp->parked_len && lp->active < {{ v.upper }}_MAX_CONNECTIONS) {
        loop_open(lp, lp->parked[taken++], now);
    }
    if (taken > 0) {
        memmove(lp->parked, lp->parked + taken, (lp->parked_len - taken) * sizeof *lp->parked);
        lp->parked_len -= taken;
    }
}

static int loop_run(struct loop *lp)
{
    uint64_t now = now_ms();
    for (;;) {
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        int stop = 0;
        int timeout = timers_timeout(&lp->timers, now);
        if (lp->accept_resume_ms != 0) {
            int until_resume = lp->accept_resume_ms > now ? (int)(lp->accept_resume_ms - now) : 0;
            timeout = timeout < 0 || until_resume < timeout ? until_resume : timeout;
        }
        if (ring_wait(&lp->ring, timeout) != 0) {
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
        loop_unpark(lp, now);
        loop_manage_accept(lp, now);
    }
}

/* One event loop on its own listening socket; every worker runs one. */
static int loop_main(int listen_fd, unsigned index)
{
    struct loop lp;
    struct io_uring_sqe *sqe;
    Conn *released = NULL;
    int status = -1;
    size_t i;

    memset(&lp, 0, sizeof lp);
    lp.listen_fd = listen_fd;
    lp.index = index;
    lp.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (timers_init(&lp.timers) != 0) {
        log_errno("malloc");
        goto out_timers;
    }
    if (ring_open(&lp.ring) != 0) {
        goto out_timers;
    }
    sqe = ring_sqe(&lp.ring);
    io_uring_prep_poll_add(sqe, stop_pipe[0], POLLIN);
    io_uring_sqe_set_data64(sqe, ring_tag(NULL, OP_STOP));
    loop_arm_accept(&lp);
    if (!worker_begin(&lp.worker, index)) {
        goto out;
    }
    status = loop_run(&lp);
    /* on_close for every connection; ring_close then cancels their requests and waits for
     * them, after which the kernel no longer touches their memory. */
    while (lp.all != NULL) {
        Conn *c = lp.all;
        lp.all = c->next;
        conn_end(c, {{ v.upper }}_CLOSE_STOPPING, 0);
        conn_close_socket(c); /* its buffers wait for the ring: a send may still read them */
        c->next = released;
        released = c;
    }
    {{ v.name }}_on_worker_stop(&lp.worker);
out:
    if (ring_close(&lp.ring)) {
        while (released != NULL) {
            Conn *c = released;
            released = c->next;
            conn_free_buffers(c);
            free(c);
        }
    }
out_timers:
    for (i = 0; i < lp.parked_len; i++) {
        close(lp.parked[i]);
    }
    free(lp.parked);
    if (lp.spare_fd >= 0) {
        close(lp.spare_fd);
    }
    free(lp.timers.items);
    chunk_cache_drain(&lp.chunks);
    return status;
}
{%- else %}
{% include "c/udp_conn.c" %}

/* A received datagram in a provided buffer: io_uring's header, the sender's address, then the
 * payload; one byte more than io.buffer_size would fit is detected by MSG_TRUNC. */
#define RING_BUFFER_SIZE \
    (sizeof(struct io_uring_recvmsg_out) + sizeof(struct sockaddr_storage) \
     + {{ v.upper }}_BUFFER_SIZE)
{% include "c/uring.c" %}
{{ v.runtime_close }}

/* ---------------------------------------------------------------------------------------------
 * The io_uring loop for UDP: one multishot recvmsg fills provided buffers with datagrams and
 * their senders; each reply is sent from a slot of its own (its bytes, address and msghdr must
 * live until the kernel is done with them), so many replies are in flight at once and one
 * system call submits a batch of them. When every slot is in flight a reply is dropped, counted
 * and logged: the handler never waits, and nothing is lost silently.
 */

#define REPLY_SLOTS RING_BUFFERS

struct reply_slot {
    struct msghdr msg;
    struct iovec iov;
    struct sockaddr_storage peer;
    struct reply_slot *next_free;
    unsigned char data[{{ v.upper }}_OUTPUT_BUFFER];
};

struct dgram_loop {
    struct ring ring;
    int fd;
    int recv_armed;
    struct msghdr recv_msg;   /* what the multishot receive fills in: the sender, no control data */
    Conn current;             /* the datagram being answered */
    unsigned char *overflow;  /* the reply buffer while every slot is in flight */
    struct reply_slot *slots;
    struct reply_slot *free_slots;
    struct {{ v.name }}_worker worker;
    unsigned long long truncated, send_errors, recv_errors, replies_dropped;
};

static void dgram_arm_recv(struct dgram_loop *d)
{
    struct io_uring_sqe *sqe = ring_sqe(&d->ring);
    if (sqe == NULL) {
        return; /* tried again after the next completions */
    }
    io_uring_prep_recvmsg_multishot(sqe, d->fd, &d->recv_msg, MSG_TRUNC);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RING_BUFFER_GROUP;
    io_uring_sqe_set_data64(sqe, ring_tag(NULL, OP_RECV));
    d->recv_armed = 1;
}

/* Sends the reply the handler built in `slot`. */
static void dgram_send(struct dgram_loop *d, struct reply_slot *slot)
{
    struct io_uring_sqe *sqe = ring_sqe(&d->ring);
    if (sqe == NULL) {
        log_occurrence("io_uring refused a submission; reply dropped", &d->send_errors);
        slot->next_free = d->free_slots;
        d->free_slots = slot;
        return;
    }
    slot->peer = d->current.info.peer;
    slot->iov.iov_base = slot->data;
    slot->iov.iov_len = d->current.reply_len;
    memset(&slot->msg, 0, sizeof slot->msg);
    slot->msg.msg_name = &slot->peer;
    slot->msg.msg_namelen = d->current.peer_len;
    slot->msg.msg_iov = &slot->iov;
    slot->msg.msg_iovlen = 1;
    io_uring_prep_sendmsg(sqe, d->fd, &slot->msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ring_tag(slot, OP_SEND));
}

/* One datagram: hands it to the handler and sends the reply it built, if any. */
static void dgram_handle(struct dgram_loop *d, const struct io_uring_cqe *cqe)
{
    unsigned id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    unsigned char *buffer = ring_buffer(&d->ring, id);
    struct io_uring_recvmsg_out *out = io_uring_recvmsg_validate(buffer, cqe->res, &d->recv_msg);
    struct reply_slot *slot = d->free_slots;
    if (out == NULL || out->namelen > sizeof d->current.info.peer) {
        log_occurrence("malformed receive completion", &d->recv_errors);
        return;
    }
    OP_LOG("recvfrom", d->fd, " bytes=%u result=ok", out->payloadlen);
    if (out->flags & MSG_TRUNC) {
        log_occurrence("datagram longer than io.buffer_size dropped", &d->truncated);
        return;
    }
    dgram_begin(&d->current);
    memcpy(&d->current.info.peer, io_uring_recvmsg_name(out), out->namelen);
    d->current.peer_len = out->namelen;
    d->current.reply = slot != NULL ? slot->data : d->overflow;
    {{ v.name }}_on_message(&d->worker, &d->current,
    {{ v.name_blank() }}            io_uring_recvmsg_payload(out, &d->recv_msg), out->payloadlen);
    if (!d->current.has_reply) {
        return;
    }
    if (slot == NULL) {
        log_occurrence("every reply slot is in flight; reply dropped", &d->replies_dropped);
        return;
    }
    d->free_slots = slot->next_free;
    dgram_send(d, slot);
}

static void dgram_complete(struct dgram_loop *d, const struct io_uring_cqe *cqe)
{
    uint64_t tag = io_uring_cqe_get_data64(cqe);
    if (ring_tag_op(tag) == OP_SEND) {
        struct reply_slot *slot = ring_tag_owner(tag);
        OP_LOG("sendto", d->fd, " bytes=%d result=%s", cqe->res,
               cqe->res >= 0 ? "ok" : errno_name(-cqe->res));
        if (cqe->res < 0) {
            log_occurrence("sendto failed; reply dropped", &d->send_errors);
        }
        slot->next_free = d->free_slots;
        d->free_slots = slot;
        return;
    }
    /* OP_RECV */
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        d->recv_armed = 0; /* ENOBUFS or an error ended it: armed again before the next wait */
    }
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        dgram_handle(d, cqe);
        ring_return_buffer(&d->ring, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    } else if (cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -EINTR && cqe->res != -EAGAIN) {
        /* ICMP errors from earlier replies (ECONNREFUSED...) must not stop the server. */
        log_occurrence("recvmsg failed", &d->recv_errors);
    }
}

static int loop_main(int fd, unsigned index)
{
    struct dgram_loop d;
    struct io_uring_sqe *sqe;
    int status = -1;
    unsigned i;

    memset(&d, 0, sizeof d);
    d.fd = fd;
    d.current.info.worker = index;
    d.recv_msg.msg_namelen = sizeof(struct sockaddr_storage);
    d.slots = malloc(REPLY_SLOTS * sizeof *d.slots);
    d.overflow = malloc({{ v.upper }}_OUTPUT_BUFFER);
    if (d.slots == NULL || d.overflow == NULL) {
        log_errno("malloc");
        goto out_memory;
    }
    for (i = 0; i < REPLY_SLOTS; i++) {
        d.slots[i].next_free = d.free_slots;
        d.free_slots = &d.slots[i];
    }
    if (ring_open(&d.ring) != 0) {
        goto out_memory;
    }
    sqe = ring_sqe(&d.ring);
    io_uring_prep_poll_add(sqe, stop_pipe[0], POLLIN);
    io_uring_sqe_set_data64(sqe, ring_tag(NULL, OP_STOP));
    dgram_arm_recv(&d);
    if (!worker_begin(&d.worker, index)) {
        goto out;
    }
    for (;;) {
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        int stop = 0;
        if (ring_wait(&d.ring, -1) != 0) {
            log_errno("io_uring_submit_and_wait_timeout");
            break;
        }
        io_uring_for_each_cqe(&d.ring.uring, head, cqe) {
            ring_seen(&d.ring, cqe);
            if (ring_tag_op(io_uring_cqe_get_data64(cqe)) == OP_STOP) {
                stop = 1;
            } else {
                dgram_complete(&d, cqe);
            }
            seen++;
        }
        io_uring_cq_advance(&d.ring.uring, seen);
        if (stop) {
            status = 0;
            break;
        }
        if (!d.recv_armed) {
            dgram_arm_recv(&d);
        }
    }
    {{ v.name }}_on_worker_stop(&d.worker);
out:
    if (!ring_close(&d.ring)) {
        return status; /* the kernel may still read the reply slots: left to the exit */
    }
out_memory:
    free(d.slots);
    free(d.overflow);
    return status;
}
{%- endif %}
{% include "c/main.c" %}
