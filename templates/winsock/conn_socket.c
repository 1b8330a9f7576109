
/* ---------------------------------------------------------------------------------------------
 * A connection's socket calls on Winsock (POSIX: c/conn_socket.c).
 */

/* A failed send or receive the peer caused (a reset), rather than an error of ours. */
static int conn_error_is_reset(int error)
{
    return error == WSAECONNRESET || error == WSAECONNABORTED || error == WSAETIMEDOUT
           || error == WSAESHUTDOWN || error == WSAENETRESET;
}

static void conn_forget_socket(Conn *c)
{
    closesocket(c->fd);
    c->fd = INVALID_SOCKET;
}

static int conn_shutdown_send(Conn *c)
{
    OP_LOG("shutdown", c->fd, " how=SD_SEND");
    return shutdown(c->fd, SD_SEND);
}

/* Points `bufs` at up to OUT_IOV chunks of queued output; returns how many. */
static DWORD out_gather(const Conn *c, WSABUF *bufs)
{
    const struct out_chunk *chunk;
    DWORD count = 0;
    for (chunk = c->out_head; chunk != NULL && count < OUT_IOV; chunk = chunk->next) {
        size_t len = chunk->tail - chunk->head;
        if (len > 0) {
            bufs[count].buf = (CHAR *)(chunk->data + chunk->head);
            bufs[count].len = len > 0x40000000u ? 0x40000000u
                                                : (ULONG)len; /* ULONG; the rest goes next time */
            count++;
        }
    }
    return count;
}
{%- if !v.completion %}

/* One receive that does not block (the socket is nonblocking): bytes, 0 at the peer's FIN, -1
 * (conn_io_failure says why). */
static long conn_recv(Conn *c, unsigned char *into, size_t len)
{
    return (long)recv(c->fd, (char *)into, (int)len, 0);
}

static enum conn_io conn_io_failure(int *error)
{
    *error = WSAGetLastError();
    return *error == WSAEWOULDBLOCK ? CONN_IO_WOULD_BLOCK : CONN_IO_FAILED;
}

/* Sends queued output. 1: all sent; 0: the socket is full; -1: failed (WSAGetLastError). */
static int conn_flush(Conn *c, uint64_t now)
{
    while (c->out_pending > 0) {
        WSABUF bufs[OUT_IOV];
        DWORD sent = 0;
        DWORD count = out_gather(c, bufs);
        int rc = WSASend(c->fd, bufs, count, &sent, 0, NULL, NULL);
        OP_LOG("send", c->fd, " bytes=%lu result=%s", (unsigned long)sent, OP_RESULT(rc == 0));
        if (rc != 0) {
            return WSAGetLastError() == WSAEWOULDBLOCK ? 0 : -1;
        }
        out_consume(c, sent, now);
    }
    return 1;
}
{%- endif %}
