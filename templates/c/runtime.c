
/* ---------------------------------------------------------------------------------------------
 * Process plumbing: logging, shutdown, clock, command line, socket setup.
 */

static const char {{ v.name }}_program[] = "{{ v.name }}";
{%- if !v.client %}

/* What a bind that found its port taken adds to the error. */
#define ADDRESS_IN_USE_ADVICE \
    "; another program holds this port (ss -ltnup names it): stop it, or give another " \
    "with -p (-p 0: any free port)"
{%- endif %}

static void log_errno(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", {{ v.name }}_program, what, strerror(errno));
}

/* An errno's symbolic name ("ECONNREFUSED"), the word a search finds; NULL for one it does
 * not know. strerrorname_np came with glibc 2.32; with an older glibc or musl, a table of the
 * errors socket code meets. */
static const char *errno_symbol(int error)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    return strerrorname_np(error);
#else
    switch (error) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOSPC: return "ENOSPC";
    case EPIPE: return "EPIPE";
    case ENOSYS: return "ENOSYS";
    case ENOTSOCK: return "ENOTSOCK";
    case EMSGSIZE: return "EMSGSIZE";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETDOWN: return "ENETDOWN";
    case ENETUNREACH: return "ENETUNREACH";
    case ECONNABORTED: return "ECONNABORTED";
    case ECONNRESET: return "ECONNRESET";
    case ENOBUFS: return "ENOBUFS";
    case EISCONN: return "EISCONN";
    case ENOTCONN: return "ENOTCONN";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EALREADY: return "EALREADY";
    case EINPROGRESS: return "EINPROGRESS";
    case ECANCELED: return "ECANCELED";
    default: return NULL;
    }
#endif
}
{%- if v.log_ops %}

/* `log: ops`: one line per socket operation on stderr, `op=NAME fd=N key=value...`, with
 * `result=ERRNAME` when it failed. Without `log: ops` OP_LOG compiles to nothing. */
#define OP_LOG(op, fd, ...) op_log(op, fd, __VA_ARGS__)
#define OP_RESULT(ok) ((ok) ? "ok" : errno_name(errno))

static const char *errno_name(int error)
{
    const char *name = errno_symbol(error);
    return name != NULL ? name : "unknown";
}

static void op_log(const char *op, int fd, const char *format, ...)
{
    va_list args;
    int saved = errno;
    flockfile(stderr); /* one line per operation, also with several workers */
    fprintf(stderr, "%s: op=%s fd=%d", {{ v.name }}_program, op, fd);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    funlockfile(stderr);
    errno = saved;
}
{%- else %}

/* Socket operations are logged only with `log: ops` in the spec; here they compile to nothing. */
#define OP_LOG(op, fd, ...) ((void)0)
{%- endif %}

{% include "c/occurrence.c" %}

/* Descriptors 0, 1 and 2 may be closed by whoever started us (a supervisor, `<&- >&-`): the
 * stop pipe or a socket would then take their numbers, and the ready line or a log line would
 * be written into it. They are pointed at /dev/null first. */
static int open_standard_descriptors(void)
{
    for (;;) {
        int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            return -1;
        }
        if (fd > 2) {
            close(fd);
            return 0;
        }
        /* It took a standard number: clear close-on-exec, as 0, 1 and 2 normally are. */
        (void)fcntl(fd, F_SETFD, 0);
    }
}
{%- if v.tcp || v.client %}

/* Raises the soft limit on open descriptors toward what the spec needs (every worker's
 * max_connections and some slack), as redis does; logs once when the hard limit is lower. */
static void raise_descriptor_limit(void)
{
    struct rlimit limit;
    rlim_t wanted = (rlim_t){{ v.upper }}_WORKERS * {{ v.upper }}_MAX_CONNECTIONS + 64u;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted) {
        return;
    }
    limit.rlim_cur = limit.rlim_max != RLIM_INFINITY && limit.rlim_max < wanted
                         ? limit.rlim_max
                         : wanted;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        log_errno("setrlimit RLIMIT_NOFILE");
    } else if (limit.rlim_cur < wanted) {
        fprintf(stderr,
                "%s: open files limited to %llu by the hard limit; %llu would allow "
                "max_connections on every worker\n",
                {{ v.name }}_program, (unsigned long long)limit.rlim_cur,
                (unsigned long long)wanted);
    }
}
{%- endif %}

/*
 * Shutdown uses the self-pipe trick: the signal handler writes one byte and every event loop
 * watches the read end. Nobody drains it, so all workers see it, and no wakeup can be lost
 * between checking a flag and going to sleep.
 */
static int stop_pipe[2] = { -1, -1 };

static void request_stop(void)
{
    int saved = errno;
    if (write(stop_pipe[1], "x", 1) < 0) {
        /* The pipe is full: a stop is already pending. */
    }
    errno = saved;
}

static void on_stop_signal(int signo)
{
    (void)signo;
    request_stop();
}

static int install_signal_handlers(void)
{
    struct sigaction sa;
    if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        log_errno("pipe2");
        return -1;
    }
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_stop_signal;
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
        log_errno("sigaction");
        return -1;
    }
    /* Every send also passes MSG_NOSIGNAL; ignoring SIGPIPE covers code added in handlers. */
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0) {
        log_errno("sigaction");
        return -1;
    }
    return 0;
}

{%- if v.tcp || v.client || v.uses_io_uring %}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
{%- endif %}

{% include "c/address.c" %}
{% include "c/command_line.c" %}
{%- if !v.client %}
{% include "c/server_args.c" %}
{%- endif %}

{%- if !v.client || v.tcp || v.recv_buffer.is_some() || v.send_buffer.is_some() %}
{{ v.runtime_close }}

static int set_int_option(int fd, int level, int name, int value, const char *what)
{
    int rc = setsockopt(fd, level, name, &value, sizeof value);
    OP_LOG("setsockopt", fd, " option=%s value=%d result=%s", what + sizeof "setsockopt", value,
           OP_RESULT(rc == 0));
    if (rc != 0) {
        log_errno(what);
        return -1;
    }
    return 0;
}
{{ v.runtime_open }}
{%- endif %}
{%- if v.tcp %}

{%- if v.client || v.nodelay || v.keepalive || v.linger %}
{{ v.runtime_close }}

/* Options that belong to each {% if v.client %}connection{% else %}accepted connection{% endif %}. */
static int configure_connection(int fd)
{
{%- if !v.nodelay && !v.keepalive && !v.linger %}
    (void)fd;
{%- endif %}
{%- if v.nodelay %}
    if (set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1, "setsockopt TCP_NODELAY") != 0) {
        return -1;
    }
{%- endif %}
{%- if v.keepalive %}
    if (set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "setsockopt SO_KEEPALIVE") != 0
        || set_int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE, {{ v.keepalive_idle_s }}, "setsockopt TCP_KEEPIDLE") != 0
        || set_int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL, {{ v.keepalive_interval_s }}, "setsockopt TCP_KEEPINTVL") != 0
        || set_int_option(fd, IPPROTO_TCP, TCP_KEEPCNT, {{ v.keepalive_count }}, "setsockopt TCP_KEEPCNT") != 0) {
        return -1;
    }
{%- endif %}
{%- if v.linger %}
    {
        struct linger lg;
        lg.l_onoff = 1;
        lg.l_linger = {{ v.linger_s }};
        if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0) {
            log_errno("setsockopt SO_LINGER");
            return -1;
        }
    }
{%- endif %}
    return 0;
}
{{ v.runtime_open }}
{%- endif %}
{%- if !v.client %}

/* What accept_connection() returns besides a descriptor. */
enum { ACCEPT_NONE = -1, ACCEPT_EXHAUSTED = -2 };
/* How long a worker stops accepting after running out of descriptors or memory. */
enum { ACCEPT_PAUSE_MS = 100 };

static shared_counter accept_shed; /* every worker counts here */

/*
 * Accepts one connection. Returns its descriptor; ACCEPT_NONE when there is none to take now;
 * ACCEPT_EXHAUSTED when the process is out of descriptors or memory: the caller then stops
 * accepting for ACCEPT_PAUSE_MS (nginx's answer), because the listener stays readable and
 * would otherwise spin the loop. First the spare descriptor is given up to accept and close
 * the waiting peer (libuv's trick). Another worker may take the freed number before the
 * accept does: the pause makes that harmless, and the spare is taken again at the next accept
 * once a descriptor is free.
 */
static int accept_connection(int listen_fd, int *spare_fd, struct sockaddr_storage *peer)
{
    if (*spare_fd < 0) {
        *spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    for (;;) {
        socklen_t peer_len = sizeof *peer;
        int fd = accept4(listen_fd, (struct sockaddr *)peer, &peer_len,
                         SOCK_CLOEXEC | SOCK_NONBLOCK);
        OP_LOG("accept", listen_fd, " conn=%d peer_port=%d result=%s", fd,
               fd >= 0 ? bound_port(peer) : 0,
               fd >= 0 ? "ok" : errno == EAGAIN || errno == EWOULDBLOCK ? "EAGAIN" : OP_RESULT(0));
        if (fd >= 0) {
            return fd;
        }
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) {
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            const char *what = errno == EMFILE || errno == ENFILE
                                   ? "out of file descriptors: refused a connection"
                                   : "out of memory: refused a connection";
            if (*spare_fd >= 0) {
                close(*spare_fd);
                *spare_fd = -1;
                fd = accept(listen_fd, NULL, NULL);
                /* dup2 closes the refused peer's socket and makes its number the new spare in
                 * one step (a second reference to the listener), so no other worker can take
                 * the number in between. */
                if (fd >= 0 && dup2(listen_fd, fd) >= 0) {
                    *spare_fd = fd;
                } else if (fd >= 0) {
                    close(fd);
                }
            }
            if (*spare_fd < 0) {
                *spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            }
            log_shared_occurrence(what, &accept_shed);
            return ACCEPT_EXHAUSTED;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            log_errno("accept");
        }
        return ACCEPT_NONE;
    }
}
{%- endif %}
{%- endif %}
{%- if !v.client %}
{{ v.runtime_close }}

/* The spec's socket options, set before bind so buffer sizes shape the TCP window. */
static int configure_listener(int fd, int family)
{
    /* Whether `::` also takes IPv4 peers is decided here, not left to a sysctl. */
    if (family == AF_INET6
        && set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, {% if v.v6only %}1{% else %}0{% endif %}, "setsockopt IPV6_V6ONLY") != 0) {
        return -1;
    }
{%- if v.tcp %}
    /* TCP urgent data ("out of band") is read inline as ordinary bytes; accepted connections
     * inherit this. The handler sees every byte the peer sent, in order. */
    if (set_int_option(fd, SOL_SOCKET, SO_OOBINLINE, 1, "setsockopt SO_OOBINLINE") != 0) {
        return -1;
    }
{%- endif %}
{%- if v.reuseaddr %}
    if (set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt SO_REUSEADDR") != 0) {
        return -1;
    }
{%- endif %}
{%- if v.reuseport %}
    if (set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt SO_REUSEPORT") != 0) {
        return -1;
    }
{%- endif %}
{%- if let Some(bytes) = v.recv_buffer %}
    if (set_int_option(fd, SOL_SOCKET, SO_RCVBUF, {{ bytes }}, "setsockopt SO_RCVBUF") != 0) {
        return -1;
    }
{%- endif %}
{%- if let Some(bytes) = v.send_buffer %}
    if (set_int_option(fd, SOL_SOCKET, SO_SNDBUF, {{ bytes }}, "setsockopt SO_SNDBUF") != 0) {
        return -1;
    }
{%- endif %}
{%- if v.tcp && (v.nodelay || v.keepalive || v.linger) %}
    /* Accepted connections inherit these from the listener on Linux (it is cloned), so they
     * are set once here, not once per connection. */
    if (configure_connection(fd) != 0) {
        return -1;
    }
{%- endif %}
    return 0;
}
{{ v.runtime_open }}
{%- if v.split_runtime %}

/* The spec's socket options: in {{ v.name }}.c, which the spec changes. */
static int configure_listener(int fd, int family);
{%- endif %}

/* Creates the server socket, configures it, binds and listens; *bound receives the address
 * it got (with the kernel's port when port is 0). */
static int open_listener(const char *address, int port, int nonblocking,
                         struct sockaddr_storage *bound)
{
    struct addrinfo hints;
    struct addrinfo *ai = NULL;
    char port_text[8];
    socklen_t bound_len = sizeof *bound;
    int fd;
    int rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = {{ v.socktype }};
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(port_text, sizeof port_text, "%d", port);
    rc = getaddrinfo(address, port_text, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "%s: invalid address '%s': %s\n", {{ v.name }}_program, address,
                gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family,
                ai->ai_socktype | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    OP_LOG("socket", fd, " family=%s type=%s result=%s",
           ai->ai_family == AF_INET6 ? "inet6" : "inet",
           ai->ai_socktype == SOCK_STREAM ? "stream" : "dgram", OP_RESULT(fd >= 0));
    if (fd < 0) {
        log_errno("socket");
        freeaddrinfo(ai);
        return -1;
    }
    if (configure_listener(fd, ai->ai_family) != 0) {
        close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    rc = bind(fd, ai->ai_addr, ai->ai_addrlen);
    OP_LOG("bind", fd, " address=%s port=%d result=%s", address, port, OP_RESULT(rc == 0));
    if (rc != 0) {
        int error = errno;
        const char *name = errno_symbol(error);
        fprintf(stderr, "%s: bind %s port %d: %s (%s)%s\n", {{ v.name }}_program, address, port,
                name != NULL ? name : "error", strerror(error),
                error == EADDRINUSE ? ADDRESS_IN_USE_ADVICE : "");
        close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
{%- if v.tcp %}
    rc = listen(fd, {{ v.upper }}_BACKLOG);
    OP_LOG("listen", fd, " backlog=%d result=%s", {{ v.upper }}_BACKLOG, OP_RESULT(rc == 0));
    if (rc != 0) {
        log_errno("listen");
        close(fd);
        return -1;
    }
{%- endif %}
    if (getsockname(fd, (struct sockaddr *)bound, &bound_len) != 0) {
        log_errno("getsockname");
        close(fd);
        return -1;
    }
    return fd;
}


/* Start-up: every worker sets up its loop (descriptors, memory) and then waits for the others,
 * so nobody accepts while a worker is still starting (a flood could otherwise take the
 * descriptors it needs). The ready line is printed once all are set up, never when one failed.
 * Returns 1 to run the loop, 0 to stop. Defined with main below. */
static int startup_ready(int ok);
{%- endif %}
{% include "c/worker_start.c" %}
