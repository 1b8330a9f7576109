
/* A client UDP socket's calls on Winsock (POSIX: c/udp_client_socket.c). */

/* The error a refused port (an ICMP port unreachable) reports, once named by udp_error_named. */
#define UDP_REFUSED WSAECONNREFUSED
/* What udp_send_now and udp_receive return besides 0 and a WSA error. */
enum { UDP_NO_ROOM = -1, UDP_EMPTY = -2, UDP_INTERRUPTED = -3 };

/* A UDP socket has no connection to reset: Windows says WSAECONNRESET for the ICMP port
 * unreachable other systems (and Wine) call refused, so it is named as they name it. */
static inline int udp_error_named(int error)
{
    return error == WSAECONNRESET ? WSAECONNREFUSED : error;
}

/* Sends one datagram now: 0, UDP_NO_ROOM when the socket has no room for it, or the error. */
static int udp_send_now(SOCKET fd, const void *data, size_t len)
{
    int n = send(fd, (const char *)data, (int)len, 0);
    OP_LOG("send", fd, " bytes=%d result=%s", n, OP_RESULT(n >= 0));
    if (n < 0) {
        int error = WSAGetLastError();
        return error == WSAEWOULDBLOCK || error == WSAENOBUFS ? UDP_NO_ROOM : error;
    }
    return 0;
}
{%- if !v.completion %}

/* Takes one datagram into buf: 0 with *len its length (one more than fits when it was cut
 * short), UDP_EMPTY, or the error. */
static int udp_receive(SOCKET fd, unsigned char *buf, size_t *len)
{
    int n = recv(fd, (char *)buf, (int){{ v.upper }}_BUFFER_SIZE, 0);
    int error = n < 0 ? WSAGetLastError() : 0;
    OP_LOG("recv", fd, " bytes=%d result=%s", n, n >= 0 ? "ok" : socket_error_name(error));
    if (error == WSAEWOULDBLOCK) {
        return UDP_EMPTY;
    }
    if (error == WSAEMSGSIZE) {
        /* Windows fills the buffer and says the rest was cut off: one more than fits. */
        *len = (size_t){{ v.upper }}_BUFFER_SIZE + 1;
        return 0;
    }
    if (n < 0) {
        return error;
    }
    *len = (size_t)n;
    return 0;
}
{%- endif %}

/* A refused port the socket holds but no wait reported. Windows reports it at the next recv;
 * Wine only keeps it as the socket's pending error, so it is asked for before the silence is
 * called idle. */
static inline int udp_pending_error(SOCKET fd)
{
    int pending = 0;
    int len = (int)sizeof pending;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, (char *)&pending, &len) != 0) {
        return 0;
    }
    return pending;
}

static void udp_socket_close(SOCKET *fd)
{
    closesocket(*fd);
    *fd = INVALID_SOCKET;
}
