
{% include "c/udp_conn.c" %}

/* ---------------------------------------------------------------------------------------------
 * The UDP socket: each datagram goes to the handler whole, and its reply goes back to the
 * sender. Shared by the event loops; {{ v.model }} decides when to call dgram_service().
 */

/* Datagrams taken by one recvmmsg(), and replies sent by one sendmmsg(). */
enum { DGRAM_BATCH = 32 };
/* Batches per wakeup before the loop checks for shutdown again. */
enum { DGRAM_BUDGET = 4 };

enum dgram_status {
    DGRAM_WAIT, /* the socket has nothing to read, or no room for the replies queued */
    DGRAM_MORE  /* budget spent with datagrams possibly left */
};

/*
 * One recvmmsg() takes up to DGRAM_BATCH datagrams with their senders; the handler answers
 * each into a reply slot of its own, and one sendmmsg() sends the replies, each to its own
 * sender. Replies the socket has no room for wait in their slots (the loop then asks for
 * write readiness), and nothing is read until they are out, so no reply is ever dropped for
 * lack of room: excess datagrams wait in the kernel's receive buffer instead.
 */
struct dgram_server {
    int fd;
    unsigned char *in;   /* DGRAM_BATCH receive buffers of BUFFER_SIZE bytes */
    unsigned char *out;  /* DGRAM_BATCH reply buffers of OUTPUT_BUFFER bytes */
    struct mmsghdr in_msgs[DGRAM_BATCH];
    struct iovec in_iov[DGRAM_BATCH];
    struct sockaddr_storage in_peers[DGRAM_BATCH];
    struct mmsghdr out_msgs[DGRAM_BATCH];
    struct iovec out_iov[DGRAM_BATCH];
    struct sockaddr_storage out_peers[DGRAM_BATCH];
    unsigned out_len;    /* replies queued */
    unsigned out_sent;   /* ...of which sent */
    Conn current;        /* the sender of the datagram being answered, and its reply */
    struct {{ v.name }}_worker worker;
    unsigned long long truncated, send_errors, recv_errors;
};

static int dgram_open(struct dgram_server *d, int fd, unsigned index)
{
    unsigned i;
    memset(d, 0, sizeof *d);
    d->fd = fd;
    d->current.info.worker = index;
    d->in = malloc((size_t)DGRAM_BATCH * {{ v.upper }}_BUFFER_SIZE);
    d->out = malloc((size_t)DGRAM_BATCH * {{ v.upper }}_OUTPUT_BUFFER);
    if (d->in == NULL || d->out == NULL) {
        log_errno("malloc");
        free(d->in);
        free(d->out);
        return -1;
    }
    for (i = 0; i < DGRAM_BATCH; i++) {
        d->in_iov[i].iov_base = d->in + (size_t)i * {{ v.upper }}_BUFFER_SIZE;
        d->in_iov[i].iov_len = {{ v.upper }}_BUFFER_SIZE;
        d->in_msgs[i].msg_hdr.msg_iov = &d->in_iov[i];
        d->in_msgs[i].msg_hdr.msg_iovlen = 1;
        d->in_msgs[i].msg_hdr.msg_name = &d->in_peers[i];
        d->out_iov[i].iov_base = d->out + (size_t)i * {{ v.upper }}_OUTPUT_BUFFER;
        d->out_msgs[i].msg_hdr.msg_iov = &d->out_iov[i];
        d->out_msgs[i].msg_hdr.msg_iovlen = 1;
        d->out_msgs[i].msg_hdr.msg_name = &d->out_peers[i];
    }
    if (!worker_start(&d->worker, index)) {
        free(d->in);
        free(d->out);
        return -1;
    }
    return 0;
}

static void dgram_close(struct dgram_server *d)
{
    {{ v.name }}_on_worker_stop(&d->worker);
    free(d->in);
    free(d->out);
}

/* Replies wait for room in the socket's send buffer. */
static int dgram_replies_waiting(const struct dgram_server *d)
{
    return d->out_sent < d->out_len;
}

/* Sends the queued replies. 1: all left (a reply the kernel refuses for a reason of its own is
 * dropped with a log line); 0: the socket is full and the rest wait. */
static int dgram_flush(struct dgram_server *d)
{
    while (d->out_sent < d->out_len) {
        int n = sendmmsg(d->fd, d->out_msgs + d->out_sent, d->out_len - d->out_sent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        OP_LOG("sendmmsg", d->fd, " replies=%d result=%s", n, OP_RESULT(n >= 0));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
                return 0;
            }
            /* The first reply failed alone (EMSGSIZE, an ICMP error for its sender...). */
            log_occurrence("sendto failed; reply dropped", &d->send_errors);
            n = 1;
        }
        d->out_sent += (unsigned)n;
    }
    d->out_len = d->out_sent = 0;
    return 1;
}

/* Hands datagram i of the last batch to the handler; queues the reply it built. */
static void dgram_answer(struct dgram_server *d, unsigned i)
{
    size_t len = d->in_msgs[i].msg_len;
    struct mmsghdr *reply = &d->out_msgs[d->out_len];
    if (len > {{ v.upper }}_BUFFER_SIZE) {
        log_occurrence("datagram longer than io.buffer_size dropped", &d->truncated);
        return;
    }
    dgram_begin(&d->current);
    memcpy(&d->current.info.peer, &d->in_peers[i], d->in_msgs[i].msg_hdr.msg_namelen);
    d->current.peer_len = d->in_msgs[i].msg_hdr.msg_namelen;
    d->current.reply = d->out_iov[d->out_len].iov_base;
    {{ v.name }}_on_message(&d->worker, &d->current, d->in_iov[i].iov_base, len);
    if (d->current.has_reply) {
        d->out_peers[d->out_len] = d->current.info.peer;
        reply->msg_hdr.msg_namelen = d->current.peer_len;
        d->out_iov[d->out_len].iov_len = d->current.reply_len;
        d->out_len++;
    }
}

static int dgram_service(struct dgram_server *d)
{
    int round;
    for (round = 0; round < DGRAM_BUDGET; round++) {
        unsigned i;
        int n;
        if (dgram_replies_waiting(d) && !dgram_flush(d)) {
            return DGRAM_WAIT; /* read nothing until these replies are out */
        }
        for (i = 0; i < DGRAM_BATCH; i++) {
            d->in_msgs[i].msg_hdr.msg_namelen = sizeof d->in_peers[i];
        }
        /* MSG_TRUNC makes Linux report each datagram's real length, so one longer than the
         * buffer is detected and dropped instead of handled cut short. */
        n = recvmmsg(d->fd, d->in_msgs, DGRAM_BATCH, MSG_TRUNC | MSG_DONTWAIT, NULL);
        OP_LOG("recvmmsg", d->fd, " datagrams=%d result=%s", n,
               n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? "EAGAIN" : OP_RESULT(n >= 0));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return DGRAM_WAIT;
            }
            /* ICMP errors from earlier replies (ECONNREFUSED...) must not stop the server. */
            log_occurrence("recvmmsg failed", &d->recv_errors);
            continue;
        }
        for (i = 0; i < (unsigned)n; i++) {
            dgram_answer(d, i);
        }
        if (!dgram_flush(d)) {
            return DGRAM_WAIT;
        }
        if (n < DGRAM_BATCH) {
            return DGRAM_WAIT; /* a short batch emptied the socket */
        }
    }
    return DGRAM_MORE;
}
