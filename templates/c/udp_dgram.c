
{% include "c/udp_conn.c" %}

/* ---------------------------------------------------------------------------------------------
 * The UDP socket: each datagram goes to the handler whole, and its reply goes back to the
 * sender. Shared by the event loops; {{ v.model }} decides when to call dgram_service().
 */

/* Datagrams per wakeup before the loop checks for shutdown again. */
enum { DGRAM_BUDGET = 64 };

enum dgram_status {
    DGRAM_WAIT, /* the socket has nothing to read, or no room for our reply */
    DGRAM_MORE  /* budget spent with datagrams possibly left */
};

struct dgram_server {
    int fd;
    unsigned char *scratch;       /* one received datagram */
    Conn current;                 /* its sender and the handler's reply */
    int reply_pending;            /* the reply waits for room in the send buffer */
    struct {{ v.name }}_worker worker;
    unsigned long long truncated, send_errors, recv_errors;
};

static int dgram_open(struct dgram_server *d, int fd, unsigned index)
{
    memset(d, 0, sizeof *d);
    d->fd = fd;
    d->current.info.worker = index;
    d->scratch = malloc({{ v.upper }}_BUFFER_SIZE);
    d->current.reply = malloc({{ v.upper }}_OUTPUT_BUFFER);
    if (d->scratch == NULL || d->current.reply == NULL) {
        log_errno("malloc");
        free(d->scratch);
        free(d->current.reply);
        return -1;
    }
    {{ v.name }}_on_worker_start(&d->worker, index);
    return 0;
}

static void dgram_close(struct dgram_server *d)
{
    {{ v.name }}_on_worker_stop(&d->worker);
    free(d->scratch);
    free(d->current.reply);
}

/* Returns 1 when the reply left (or was dropped with a log line), 0 when the socket is full. */
static int dgram_send_reply(struct dgram_server *d)
{
    for (;;) {
        ssize_t n = sendto(d->fd, d->current.reply, d->current.reply_len, MSG_NOSIGNAL | MSG_DONTWAIT,
                           (const struct sockaddr *)&d->current.info.peer, d->current.peer_len);
        OP_LOG("sendto", d->fd, " bytes=%zd result=%s", n, OP_RESULT(n >= 0));
        if (n >= 0) {
            break;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        }
        log_occurrence("sendto failed; reply dropped", &d->send_errors);
        break;
    }
    d->reply_pending = 0;
    return 1;
}

static int dgram_service(struct dgram_server *d)
{
    int round;
    for (round = 0; round < DGRAM_BUDGET; round++) {
        ssize_t n;
        if (d->reply_pending && !dgram_send_reply(d)) {
            return DGRAM_WAIT; /* don't read more until this reply is out */
        }
        d->current.peer_len = sizeof d->current.info.peer;
        /* MSG_TRUNC makes Linux return the real length, so a datagram longer than the buffer
         * is detected and dropped instead of echoed cut short. */
        n = recvfrom(d->fd, d->scratch, {{ v.upper }}_BUFFER_SIZE, MSG_TRUNC | MSG_DONTWAIT,
                     (struct sockaddr *)&d->current.info.peer, &d->current.peer_len);
        OP_LOG("recvfrom", d->fd, " bytes=%zd result=%s", n,
               n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? "EAGAIN" : OP_RESULT(n >= 0));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return DGRAM_WAIT;
            }
            /* ICMP errors from earlier replies (ECONNREFUSED...) must not stop the server. */
            log_occurrence("recvfrom failed", &d->recv_errors);
            continue;
        }
        if ((size_t)n > {{ v.upper }}_BUFFER_SIZE) {
            log_occurrence("datagram longer than io.buffer_size dropped", &d->truncated);
            continue;
        }
        dgram_begin(&d->current);
        {{ v.name }}_on_message(&d->worker, &d->current, d->scratch, (size_t)n);
        d->reply_pending = d->current.has_reply;
    }
    if (d->reply_pending && !dgram_send_reply(d)) {
        return DGRAM_WAIT;
    }
    return DGRAM_MORE;
}
