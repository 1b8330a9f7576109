
/* The client's calls that differ by platform, on Winsock (POSIX: c/client_platform.c). */
typedef SOCKET client_socket;
#define NO_SOCKET INVALID_SOCKET
#define SOCKET_TIMED_OUT WSAETIMEDOUT
#define SOCKET_REFUSED WSAECONNREFUSED

static volatile LONG client_failed; /* a connection failed or gave up: the program exits 1 */

static void mark_run_failed(void)
{
    (void)InterlockedExchange(&client_failed, 1);
}

static int run_failed(void)
{
    return InterlockedCompareExchange(&client_failed, 0, 0) != 0;
}

/* The error of the last socket call. */
static int socket_error(void)
{
    return WSAGetLastError();
}

static void close_socket(SOCKET s)
{
    closesocket(s);
}
{%- if v.uses_poll || v.thread_per_connection %}

typedef WSAPOLLFD poll_slot;

/* What every wait watches for a stop request. */
static SOCKET stop_watch(void)
{
    return stop_socket;
}

/* The ready slots, 0 when the time is up, -1 when the wait failed (socket_error() says why). */
static int poll_slots(poll_slot *slots, unsigned long count, int timeout_ms)
{
    int n = WSAPoll(slots, count, timeout_ms);
    return n == SOCKET_ERROR ? -1 : n;
}
{%- endif %}
/* "WSAECONNREFUSED (No connection could be made ...)": the name a search finds, and the text a
 * person reads. */
static void describe_error(int error, char *text, size_t size)
{
    char system_text[200];
    const char *name = wsa_error_name(error);
    DWORD len = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
                               (DWORD)error, 0, system_text, (DWORD)sizeof system_text, NULL);
    while (len > 0 && (system_text[len - 1] == '\r' || system_text[len - 1] == '\n'
                       || system_text[len - 1] == ' ' || system_text[len - 1] == '.')) {
        len--;
    }
    system_text[len] = '\0';
    if (len == 0) {
        /* Some systems (Wine among them) have no text for these: the BSD wording, which
         * Winsock's names come from. */
        const char *bsd = error == WSAETIMEDOUT ? "Connection timed out"
                        : error == WSAECONNREFUSED ? "Connection refused"
                        : error == WSAECONNRESET ? "Connection reset by peer"
                        : error == WSAECONNABORTED ? "Software caused connection abort"
                        : error == WSAEHOSTUNREACH ? "No route to host"
                        : error == WSAENETUNREACH ? "Network is unreachable"
                        : "no description";
        snprintf(system_text, sizeof system_text, "%s", bsd);
    }
    snprintf(text, size, "%s (%s)", name != NULL ? name : "unknown error", system_text);
}

/* Sets the error socket_error() reports, as a failed call would have. */
static inline void set_socket_error(int error)
{
    WSASetLastError(error);
}

/* After connect() on a nonblocking socket returned nonzero: 1 if it is under way. */
static inline int connect_in_progress(void)
{
    return WSAGetLastError() == WSAEWOULDBLOCK;
}

/* Why getaddrinfo() failed, in words. */
static inline const char *resolve_error_text(int rc)
{
    return gai_strerrorA(rc);
}

/* getsockopt()'s length type. */
typedef int option_length;

/* A socket for one attempt{% if !(v.uses_iocp && v.tcp) %}, nonblocking{% endif %}; NO_SOCKET with socket_error() set. */
static client_socket client_socket_open(int family)
{
    SOCKET fd = socket(family, {{ v.socktype }}, 0);
    OP_LOG("socket", fd, " family=%s type={% if v.tcp %}stream{% else %}dgram{% endif %} result=%s",
           family == AF_INET6 ? "inet6" : "inet", OP_RESULT(fd != INVALID_SOCKET));
    if (fd == INVALID_SOCKET) {
        return NO_SOCKET;
    }
{%- if v.uses_iocp && v.tcp %}
    /* Overlapped requests do not depend on the socket's mode: it stays blocking. */
{%- else %}
    if (set_nonblocking(fd) != 0) {
        int saved = WSAGetLastError();
        closesocket(fd);
        WSASetLastError(saved);
        return NO_SOCKET;
    }
{%- endif %}
    return fd;
}
