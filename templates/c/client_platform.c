
/* The client's calls that differ by platform, on POSIX (Winsock C: winsock/client_platform.c). */
typedef int client_socket;
#define NO_SOCKET (-1)
#define SOCKET_TIMED_OUT ETIMEDOUT
#define SOCKET_REFUSED ECONNREFUSED

static atomic_int client_failed; /* a connection failed or gave up: the program exits 1 */

static void mark_run_failed(void)
{
    atomic_store(&client_failed, 1);
}

static int run_failed(void)
{
    return atomic_load(&client_failed);
}

/* The error of the last socket call. */
static int socket_error(void)
{
    return errno;
}

static void close_socket(int fd)
{
    close(fd);
}
{%- if v.uses_poll || v.thread_per_connection %}

typedef struct pollfd poll_slot;

/* What every wait watches for a stop request: the stop pipe the signal handler writes. */
static int stop_watch(void)
{
    return stop_pipe[0];
}

/* The ready slots, 0 when the time is up or a signal came (the stop pipe tells which), -1
 * when the wait failed (socket_error() says why). */
static int poll_slots(poll_slot *slots, unsigned long count, int timeout_ms)
{
    int n = poll(slots, (nfds_t)count, timeout_ms);
    return n < 0 && errno == EINTR ? 0 : n;
}
{%- endif %}
/* "ECONNREFUSED (Connection refused)": the name a search finds, and the text a person reads. */
static void describe_error(int error, char *text, size_t size)
{
    const char *name = errno_symbol(error);
    snprintf(text, size, "%s (%s)", name != NULL ? name : "unknown error", strerror(error));
}

/* Sets the error socket_error() reports, as a failed call would have. */
static inline void set_socket_error(int error)
{
    errno = error;
}

/* After connect() on a nonblocking socket returned nonzero: 1 if it is under way. */
static inline int connect_in_progress(void)
{
    return errno == EINPROGRESS;
}

/* Why getaddrinfo() failed, in words. */
static inline const char *resolve_error_text(int rc)
{
    return rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);
}

/* getsockopt()'s length type. */
typedef socklen_t option_length;

/* OP_LOG names an error as Winsock C does. */
#define socket_error_name errno_name

/* A nonblocking socket for one attempt, closed on exec; NO_SOCKET with socket_error() set. */
static client_socket client_socket_open(int family)
{
    int fd = socket(family, {{ v.socktype }} | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    OP_LOG("socket", fd, " family=%s type={% if v.tcp %}stream{% else %}dgram{% endif %} result=%s",
           family == AF_INET6 ? "inet6" : "inet", OP_RESULT(fd >= 0));
    return fd < 0 ? NO_SOCKET : fd;
}
