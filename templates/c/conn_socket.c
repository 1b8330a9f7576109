
/* ---------------------------------------------------------------------------------------------
 * A connection's socket calls on POSIX (Winsock C: winsock/conn_socket.c).
 */

/* A failed send or receive the peer caused (a reset), rather than an error of ours. */
static int conn_error_is_reset(int error)
{
    return error == ECONNRESET || error == EPIPE || error == ECONNABORTED || error == ETIMEDOUT;
}

static void conn_forget_socket(Conn *c)
{
    close(c->fd);
    c->fd = -1;
}

static int conn_shutdown_send(Conn *c)
{
    OP_LOG("shutdown", c->fd, " how=SHUT_WR");
    return shutdown(c->fd, SHUT_WR);
}

/* Points `iov` at up to OUT_IOV chunks of queued output; returns how many. */
static int out_gather(const Conn *c, struct iovec *iov)
{
    const struct out_chunk *chunk;
    int count = 0;
    for (chunk = c->out_head; chunk != NULL && count < OUT_IOV; chunk = chunk->next) {
        if (chunk->tail > chunk->head) {
            iov[count].iov_base = (void *)(chunk->data + chunk->head);
            iov[count].iov_len = chunk->tail - chunk->head;
            count++;
        }
    }
    return count;
}
{%- if !v.completion %}

/* One receive that does not block: bytes, 0 at the peer's FIN, -1 (conn_io_failure says why). */
static long conn_recv(Conn *c, unsigned char *into, size_t len)
{
    return (long)recv(c->fd, into, len, MSG_DONTWAIT);
}

static enum conn_io conn_io_failure(int *error)
{
    *error = errno;
    if (errno == EINTR) {
        return CONN_IO_INTERRUPTED;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK ? CONN_IO_WOULD_BLOCK : CONN_IO_FAILED;
}

/* Sends queued output. 1: all sent; 0: the socket is full; -1: failed (errno set). */
static int conn_flush(Conn *c, uint64_t now)
{
    while (c->out_pending > 0) {
        struct iovec iov[OUT_IOV];
        struct msghdr msg;
        struct out_chunk *chunk = c->out_head;
        ssize_t n;
        if (chunk == c->out_tail) {
            /* One chunk, the usual case for request and reply: no iovec to build. */
            n = send(c->fd, chunk->data + chunk->head, chunk->tail - chunk->head,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
            memset(&msg, 0, sizeof msg);
            msg.msg_iov = iov;
            msg.msg_iovlen = (size_t)out_gather(c, iov);
            n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        OP_LOG("send", c->fd, " bytes=%zd result=%s", n, OP_RESULT(n >= 0));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return 0;
            }
            return -1;
        }
        out_consume(c, (size_t)n, now);
    }
    return 1;
}
{%- endif %}
