
/* ---------------------------------------------------------------------------------------------
 * Process plumbing for Windows: error text, shutdown, clock, command line, socket setup.
 */

static const char {{ v.name }}_program[] = "{{ v.name }}";

/* C runtime failures (malloc, calloc) set errno; socket calls report through WSAGetLastError. */
static void log_errno(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", {{ v.name }}_program, what, strerror(errno));
}

/* The symbolic name of a Winsock error, as in winerror.h; NULL for one not listed here. */
static const char *wsa_error_name(int code)
{
    switch (code) {
{%- for (name, number) in v.wsa_names %}
    case {{ number }}:
        return "{{ name }}";
{%- endfor %}
    default:
        return NULL;
    }
}

/* "what: WSAECONNRESET (10054): An existing connection was forcibly closed by the remote host" */
static void log_wsa_error(const char *what, int code)
{
    char text[256];
    const char *name = wsa_error_name(code);
    DWORD len = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
                               (DWORD)code, 0, text, (DWORD)sizeof text, NULL);
    while (len > 0
           && (text[len - 1] == '\r' || text[len - 1] == '\n' || text[len - 1] == ' '
               || text[len - 1] == '.')) {
        len--;
    }
    text[len] = '\0';
    fprintf(stderr, "%s: %s: %s (%d)%s%s\n", {{ v.name }}_program, what,
            name != NULL ? name : "error", code, len > 0 ? ": " : "", text);
}

static void log_socket_error(const char *what)
{
    log_wsa_error(what, WSAGetLastError());
}
{%- if v.log_ops %}

/* `log: ops`: one line per socket operation on stderr, `op=NAME fd=N key=value...`, with
 * `result=WSANAME` when it failed. Without `log: ops` OP_LOG compiles to nothing. */
#define OP_LOG(op, fd, ...) op_log(op, (unsigned long long)(fd), __VA_ARGS__)
#define OP_RESULT(ok) ((ok) ? "ok" : socket_error_name(WSAGetLastError()))

static const char *socket_error_name(int code)
{
    const char *name = wsa_error_name(code);
    return name != NULL ? name : "unknown";
}

{%- if v.uses_iocp && !v.client %}

/* The name of the last socket call's error, for a completion's result. */
static const char *socket_result_name(void)
{
    return socket_error_name(WSAGetLastError());
}
{%- endif %}

static void op_log(const char *op, unsigned long long fd, const char *format, ...)
{
    va_list args;
    int saved = WSAGetLastError();
    _lock_file(stderr); /* one line per operation, also with several workers */
    fprintf(stderr, "%s: op=%s fd=%llu", {{ v.name }}_program, op, fd);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    _unlock_file(stderr);
    WSASetLastError(saved);
}
{%- else %}

/* Socket operations are logged only with `log: ops` in the spec; here they compile to nothing. */
#define OP_LOG(op, fd, ...) ((void)0)
{%- endif %}

{% include "c/occurrence.c" %}

/*
 * Shutdown. A console program gets no signals on Windows but control events (Ctrl-C, Ctrl-Break,
 * the console closing), handled on a thread of their own. The handler sends one datagram to
 * the stop socket, a UDP socket on loopback that every wait watches and nobody reads: all
 * waits see it, and none can miss it between checking a flag and going to sleep.
 */
static SOCKET stop_socket = INVALID_SOCKET;
static SOCKET stop_sender = INVALID_SOCKET; /* made in advance: a stop needs no new socket */
static struct sockaddr_in stop_address;
static volatile LONG stop_requested;
static HANDLE stopped_event; /* set when main is done, for a console that is closing */
{%- if v.uses_iocp %}
/* the IOCP loops wait here, not on the stop socket */
static HANDLE worker_ports[{{ v.upper }}_WORKERS];
{%- endif %}
{%- if v.thread_per_connection && v.tcp && !v.client %}
static void wake_accept_loop(void);
{%- endif %}

static void request_stop(void)
{
    int saved = WSAGetLastError();
{%- if v.uses_iocp %}
    unsigned i;
{%- endif %}
    if (InterlockedExchange(&stop_requested, 1) == 0) {
        (void)sendto(stop_sender, "x", 1, 0, (const struct sockaddr *)&stop_address,
                     (int)sizeof stop_address);
    }
{%- if v.uses_iocp %}
    for (i = 0; i < {{ v.upper }}_WORKERS; i++) {
        if (worker_ports[i] != NULL) {
            (void)PostQueuedCompletionStatus(worker_ports[i], 0, STOP_KEY, NULL);
        }
    }
{%- endif %}
{%- if v.thread_per_connection && v.tcp && !v.client %}
    wake_accept_loop();
{%- endif %}
    WSASetLastError(saved);
}

static BOOL WINAPI on_console_control(DWORD event)
{
    switch (event) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT:
        request_stop();
        return TRUE;
    case CTRL_CLOSE_EVENT:
    case CTRL_LOGOFF_EVENT:
    case CTRL_SHUTDOWN_EVENT:
        /* Windows ends the process when this returns: give on_close its chance first (Windows
         * allows about 5 s). */
        request_stop();
        (void)WaitForSingleObject(stopped_event, 4500);
        return TRUE;
    default:
        return FALSE;
    }
}

static int install_stop_handler(void)
{
    int len = (int)sizeof stop_address;
    stopped_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    stop_socket = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    stop_sender = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    if (stopped_event == NULL || stop_socket == INVALID_SOCKET || stop_sender == INVALID_SOCKET) {
        log_socket_error("socket (stop socket)");
        return -1;
    }
    memset(&stop_address, 0, sizeof stop_address);
    stop_address.sin_family = AF_INET;
    stop_address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(stop_socket, (struct sockaddr *)&stop_address, len) != 0
        || getsockname(stop_socket, (struct sockaddr *)&stop_address, &len) != 0) {
        log_socket_error("bind (stop socket)");
        return -1;
    }
    if (!SetConsoleCtrlHandler(on_console_control, TRUE)) {
        fprintf(stderr, "%s: SetConsoleCtrlHandler failed (error %lu)\n", {{ v.name }}_program,
                (unsigned long)GetLastError());
        return -1;
    }
    return 0;
}

{%- if v.uses_iocp && (v.tcp || v.client) %}

/* Takes what the port has, up to COMPLETION_BATCH packets, waiting up to timeout_ms for the
 * first (-1: no limit). The count (0 when the time is up), or -1 after logging a failed wait. */
static int take_completions(HANDLE port, OVERLAPPED_ENTRY *entries, int timeout_ms)
{
    ULONG count = 0;
    if (!GetQueuedCompletionStatusEx(port, entries, COMPLETION_BATCH, &count,
                                     timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms, FALSE)) {
        DWORD error = GetLastError();
        if (error == WAIT_TIMEOUT) {
            return 0;
        }
        log_wsa_error("GetQueuedCompletionStatusEx", (int)error);
        return -1;
    }
    return (int)count;
}
{%- endif %}

{%- if (v.thread_per_connection && v.tcp && !v.client) || (v.uses_iocp && v.client) %}

static int stop_is_requested(void)
{
    return InterlockedCompareExchange(&stop_requested, 0, 0) != 0;
}
{%- endif %}

{%- if v.tcp || v.uses_iocp || v.client %}

static uint64_t now_ms(void)
{
    return (uint64_t)GetTickCount64();
}
{%- endif %}

{% include "c/address.c" %}

{% include "c/command_line.c" %}
{%- if !v.client %}
{% include "c/server_args.c" %}
{%- endif %}
{%- if !v.client || v.tcp || v.recv_buffer.is_some() || v.send_buffer.is_some() %}
{{ v.runtime_close }}

static int set_int_option(SOCKET s, int level, int name, int value, const char *what)
{
    int rc = setsockopt(s, level, name, (const char *)&value, (int)sizeof value);
    OP_LOG("setsockopt", s, " option=%s value=%d result=%s", what + sizeof "setsockopt", value,
           OP_RESULT(rc == 0));
    if (rc != 0) {
        log_socket_error(what);
        return -1;
    }
    return 0;
}
{{ v.runtime_open }}
{%- endif %}

{%- if !v.client && (v.thread_per_connection || (v.uses_poll && !v.tcp)) %}

/* Waits until s is ready for `events` (1), the stop socket is readable (0) or timeout_ms pass
 * (2; -1 waits for ever); -1 after logging an error. With INVALID_SOCKET it waits for the
 * stop or the time only. */
static int wait_for_socket_or_stop(SOCKET s, SHORT events, int timeout_ms)
{
    WSAPOLLFD fds[2];
    int n;
    fds[0].fd = stop_socket;
    fds[0].events = POLLRDNORM;
    fds[0].revents = 0;
    fds[1].fd = s;
    fds[1].events = events;
    fds[1].revents = 0;
    n = WSAPoll(fds, s == INVALID_SOCKET ? 1 : 2, timeout_ms);
    if (n == SOCKET_ERROR) {
        log_socket_error("WSAPoll");
        return -1;
    }
    if (fds[0].revents != 0) {
        return 0;
    }
    return n == 0 ? 2 : 1;
}
{%- endif %}
{%- if !v.uses_iocp || (v.client && !v.tcp) %}

/* Sockets are nonblocking for the waits (WSAPoll) to decide when to call{% if v.uses_iocp %},
 * and for a UDP client's sends, which go at once or not at all{% endif %}; IOCP needs no mode. */
static int set_nonblocking(SOCKET s)
{
    u_long on = 1;
    if (ioctlsocket(s, FIONBIO, &on) != 0) {
        log_socket_error("ioctlsocket FIONBIO");
        return -1;
    }
    return 0;
}
{%- endif %}
{%- if v.tcp %}
{{ v.runtime_close }}
{%- if v.keepalive %}

#include <mstcpip.h>
/* The keep-alive probe count: Windows 10 1703 and later (ws2ipdef.h of newer SDKs). */
#ifndef TCP_KEEPCNT
#define TCP_KEEPCNT 16
#endif
{%- endif %}

/* Options that belong to each {% if v.client %}connection{% else %}accepted connection{% endif %}. */
static int configure_connection(SOCKET s)
{
{%- if !v.nodelay && !v.keepalive && !v.linger %}
    (void)s;
{%- endif %}
{%- if v.nodelay %}
    if (set_int_option(s, IPPROTO_TCP, TCP_NODELAY, 1, "setsockopt TCP_NODELAY") != 0) {
        return -1;
    }
{%- endif %}
{%- if v.keepalive %}
    {
        /* SIO_KEEPALIVE_VALS sets idle time and interval on every Windows; the probe count
         * only TCP_KEEPCNT sets (Windows 10 1703 and later). Older systems send 10 probes,
         * which is said once rather than refusing every connection. */
        static volatile LONG count_unsupported_told;
        struct tcp_keepalive timing;
        DWORD returned = 0;
        int count = {{ v.keepalive_count }};
        timing.onoff = 1;
        timing.keepalivetime = {{ v.keepalive_idle_s }}u * 1000u;
        timing.keepaliveinterval = {{ v.keepalive_interval_s }}u * 1000u;
        if (WSAIoctl(s, SIO_KEEPALIVE_VALS, &timing, (DWORD)sizeof timing, NULL, 0, &returned,
                     NULL, NULL) != 0) {
            log_socket_error("WSAIoctl SIO_KEEPALIVE_VALS");
            return -1;
        }
        if (setsockopt(s, IPPROTO_TCP, TCP_KEEPCNT, (const char *)&count, (int)sizeof count) != 0
            && InterlockedExchange(&count_unsupported_told, 1) == 0) {
            fprintf(stderr,
                    "%s: TCP_KEEPCNT is not supported here: keep-alive sends the system's 10 "
                    "probes, not %d\n",
                    {{ v.name }}_program, count);
        }
    }
{%- endif %}
{%- if v.linger %}
    {
        struct linger lg;
        lg.l_onoff = 1;
        lg.l_linger = {{ v.linger_s }};
        if (setsockopt(s, SOL_SOCKET, SO_LINGER, (const char *)&lg, (int)sizeof lg) != 0) {
            log_socket_error("setsockopt SO_LINGER");
            return -1;
        }
    }
{%- endif %}
    return 0;
}
{{ v.runtime_open }}
{%- if v.split_runtime %}

/* The spec's socket options: in {{ v.name }}.c, which the spec changes. */
static int configure_connection(SOCKET s);
{%- endif %}
{%- if !v.uses_iocp && !v.client %}

/* What accept_connection() found. */
enum accept_result { ACCEPT_OK, ACCEPT_NONE, ACCEPT_EXHAUSTED };
/* How long a worker stops accepting after running out of sockets or memory. */
enum { ACCEPT_PAUSE_MS = 100 };

static shared_counter accept_shed; /* every worker counts here */

/*
 * Accepts one connection into *out. ACCEPT_NONE when there is none to take now (another
 * worker may have taken it); ACCEPT_EXHAUSTED when Windows is out of sockets or buffer space:
 * the caller stops accepting for ACCEPT_PAUSE_MS, since the listener stays readable and would
 * otherwise spin the loop.
 */
static enum accept_result accept_connection(SOCKET listener, SOCKET *out,
                                            struct sockaddr_storage *peer)
{
    for (;;) {
        int peer_len = (int)sizeof *peer;
        SOCKET s = accept(listener, (struct sockaddr *)peer, &peer_len);
        int error = s == INVALID_SOCKET ? WSAGetLastError() : 0;
        OP_LOG("accept", listener, " conn=%llu peer_port=%d result=%s", (unsigned long long)s,
               s != INVALID_SOCKET ? bound_port(peer) : 0, OP_RESULT(s != INVALID_SOCKET));
        if (s != INVALID_SOCKET) {
            if (set_nonblocking(s) != 0 || configure_connection(s) != 0) {
                closesocket(s);
                continue;
            }
            *out = s;
            return ACCEPT_OK;
        }
        if (error == WSAECONNRESET || error == WSAEINTR) {
            continue; /* the peer gave up while waiting in the backlog */
        }
        if (error == WSAEMFILE || error == WSAENOBUFS) {
            log_shared_occurrence(error == WSAEMFILE ? "out of sockets: a connection waits"
                                                     : "out of buffer space: a connection waits",
                                  &accept_shed);
            return ACCEPT_EXHAUSTED;
        }
        if (error != WSAEWOULDBLOCK) {
            log_wsa_error("accept", error);
        }
        return ACCEPT_NONE;
    }
}
{%- endif %}
{%- endif %}

{%- if !v.client %}
{{ v.runtime_close }}

/*
 * The spec's socket options, set before bind so buffer sizes shape the TCP window. A server
 * always binds with SO_EXCLUSIVEADDRUSE: on Windows SO_REUSEADDR would let another process
 * bind the same port and take over its traffic, and a restarted server needs neither option
 * to listen while old connections sit in TIME_WAIT.
 */
static int configure_listener(SOCKET s, int family)
{
    /* Whether `::` also takes IPv4 peers is decided here, not left to the system default. */
    if (family == AF_INET6
        && set_int_option(s, IPPROTO_IPV6, IPV6_V6ONLY, {% if v.v6only %}1{% else %}0{% endif %}, "setsockopt IPV6_V6ONLY") != 0) {
        return -1;
    }
    if (set_int_option(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1,
                       "setsockopt SO_EXCLUSIVEADDRUSE") != 0) {
        return -1;
    }
{%- if v.tcp %}
    /* TCP urgent data ("out of band") is read inline as ordinary bytes; accepted connections
     * inherit this. The handler sees every byte the peer sent, in order. */
    if (set_int_option(s, SOL_SOCKET, SO_OOBINLINE, 1, "setsockopt SO_OOBINLINE") != 0) {
        return -1;
    }
{%- else %}
    /* An ICMP port-unreachable for an earlier reply would otherwise fail the next receive
     * with WSAECONNRESET: one vanished client must not disturb the others. */
    {
        BOOL report = FALSE;
        DWORD returned = 0;
        if (WSAIoctl(s, SIO_UDP_CONNRESET, &report, (DWORD)sizeof report, NULL, 0, &returned,
                     NULL, NULL) != 0) {
            log_socket_error("WSAIoctl SIO_UDP_CONNRESET");
            return -1;
        }
    }
{%- endif %}
{%- if let Some(bytes) = v.recv_buffer %}
    if (set_int_option(s, SOL_SOCKET, SO_RCVBUF, {{ bytes }}, "setsockopt SO_RCVBUF") != 0) {
        return -1;
    }
{%- endif %}
{%- if let Some(bytes) = v.send_buffer %}
    if (set_int_option(s, SOL_SOCKET, SO_SNDBUF, {{ bytes }}, "setsockopt SO_SNDBUF") != 0) {
        return -1;
    }
{%- endif %}
    return 0;
}
{{ v.runtime_open }}
{%- if v.split_runtime %}

/* The spec's socket options: in {{ v.name }}.c, which the spec changes. */
static int configure_listener(SOCKET s, int family);
{%- endif %}

/* Creates the server socket, configures it, binds (and listens); *bound receives the address
 * it got (with the system's port when port is 0). Every worker shares this one socket. */
static SOCKET open_listener(const char *address, int port, struct sockaddr_storage *bound)
{
    struct addrinfo hints;
    struct addrinfo *ai = NULL;
    char port_text[8];
    int bound_len = (int)sizeof *bound;
    SOCKET s;
    int rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = {{ v.socktype }};
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(port_text, sizeof port_text, "%d", port);
    rc = getaddrinfo(address, port_text, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "%s: invalid address '%s' (getaddrinfo: %s, %d)\n", {{ v.name }}_program,
                address, wsa_error_name(rc) != NULL ? wsa_error_name(rc) : "error", rc);
        return INVALID_SOCKET;
    }
    s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    OP_LOG("socket", s, " family=%s type=%s result=%s",
           ai->ai_family == AF_INET6 ? "inet6" : "inet",
           ai->ai_socktype == SOCK_STREAM ? "stream" : "dgram", OP_RESULT(s != INVALID_SOCKET));
    if (s == INVALID_SOCKET) {
        log_socket_error("socket");
        freeaddrinfo(ai);
        return INVALID_SOCKET;
    }
    if (configure_listener(s, ai->ai_family) != 0{% if !v.uses_iocp %} || set_nonblocking(s) != 0{% endif %}) {
        closesocket(s);
        freeaddrinfo(ai);
        return INVALID_SOCKET;
    }
    rc = bind(s, ai->ai_addr, (int)ai->ai_addrlen);
    OP_LOG("bind", s, " address=%s port=%d result=%s", address, port, OP_RESULT(rc == 0));
    if (rc != 0) {
        char what[96];
        snprintf(what, sizeof what, "bind %s port %d", address, port);
        log_socket_error(what);
        closesocket(s);
        freeaddrinfo(ai);
        return INVALID_SOCKET;
    }
    freeaddrinfo(ai);
{%- if v.tcp %}
    rc = listen(s, {{ v.upper }}_BACKLOG);
    OP_LOG("listen", s, " backlog=%d result=%s", {{ v.upper }}_BACKLOG, OP_RESULT(rc == 0));
    if (rc != 0) {
        log_socket_error("listen");
        closesocket(s);
        return INVALID_SOCKET;
    }
{%- endif %}
    if (getsockname(s, (struct sockaddr *)bound, &bound_len) != 0) {
        log_socket_error("getsockname");
        closesocket(s);
        return INVALID_SOCKET;
    }
    return s;
}

/* Start-up: every worker sets up its loop and then waits for the others, so nobody accepts
 * while a worker is still starting. The ready line is printed once all are set up, never when
 * one failed. Returns 1 to run the loop, 0 to stop. Defined with main below. */
static int startup_ready(unsigned index, int ok);
{%- endif %}
{% include "c/worker_start.c" %}
