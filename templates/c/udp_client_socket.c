
/* A client UDP socket's calls on POSIX (Winsock C: winsock/udp_client_socket.c). */

/* The error a refused port (an ICMP port unreachable) reports. */
#define UDP_REFUSED ECONNREFUSED
/* What udp_send_now and udp_receive return besides 0 and an errno value. */
enum { UDP_NO_ROOM = -1, UDP_EMPTY = -2, UDP_INTERRUPTED = -3 };

/* The error as this program names it: as the system does. */
static inline int udp_error_named(int error)
{
    return error;
}

/* Sends one datagram now: 0, UDP_NO_ROOM when the socket has no room for it, or the error. */
static int udp_send_now(int fd, const void *data, size_t len)
{
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    OP_LOG("send", fd, " bytes=%zd result=%s", n, OP_RESULT(n >= 0));
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS ? UDP_NO_ROOM : errno;
    }
    return 0;
}
{%- if !v.completion %}

/* Takes one datagram into buf: 0 with *len its whole length (more than fits when it was cut
 * short: MSG_TRUNC reports its real length), UDP_EMPTY, UDP_INTERRUPTED, or the error. */
static int udp_receive(int fd, unsigned char *buf, size_t *len)
{
    ssize_t n = recv(fd, buf, {{ v.upper }}_BUFFER_SIZE, MSG_DONTWAIT | MSG_TRUNC);
    OP_LOG("recv", fd, " bytes=%zd result=%s", n,
           n >= 0 ? "ok" : errno == EAGAIN ? "EAGAIN" : OP_RESULT(0));
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK ? UDP_EMPTY
               : errno == EINTR                        ? UDP_INTERRUPTED
                                                       : errno;
    }
    *len = (size_t)n;
    return 0;
}
{%- endif %}

/* A refused port the socket holds but no wait reported: POSIX reports it at the next recv. */
static inline int udp_pending_error(int fd)
{
    (void)fd;
    return 0;
}

static void udp_socket_close(int *fd)
{
    close(*fd);
    *fd = -1;
}
