
/* ---------------------------------------------------------------------------------------------
 * The client: command line, name resolution, connect attempts with backoff. Once a connection
 * is up it runs on the same machinery as a server's connections, so the handler contract is
 * the same on both sides.
 */

{%- if v.windows %}
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
{%- else %}
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
{%- endif %}

static inline const struct {{ v.name }}_options *{{ v.name }}_options(void)
{
    return &client_options;
}

static inline void {{ v.name }}_fail(Conn *c, const char *format, ...)
{
    char message[512];
    va_list args;
    const struct {{ v.name }}_info *info = {{ v.name }}_info(c);
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    fprintf(stderr, "%s: connection %llu (%s): %s\n", {{ v.name }}_program, info->id,
            info->peer_text, message);
    c->failed = 1;
    mark_run_failed();
{%- if v.tcp %}
    {{ v.name }}_abort(c);
{%- else %}
    {{ v.name }}_close(c);
{%- endif %}
}

static inline void {{ v.name }}_fail_run(const char *format, ...)
{
    char message[512];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    fprintf(stderr, "%s: %s\n", {{ v.name }}_program, message);
    mark_run_failed();
}

{%- if v.windows %}
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
{%- else %}
/* "ECONNREFUSED (Connection refused)": the name a search finds, and the text a person reads. */
static void describe_error(int error, char *text, size_t size)
{
    const char *name = errno_symbol(error);
    snprintf(text, size, "%s (%s)", name != NULL ? name : "unknown error", strerror(error));
}
{%- endif %}

/* A decimal number from min to max; -1 for anything else (signs, spaces, overflow). */
static int parse_number(const char *text, unsigned long min, unsigned long max,
                        unsigned long *value)
{
    char *end = NULL;
    if (*text < '0' || *text > '9') {
        return -1;
    }
    errno = 0;
    *value = strtoul(text, &end, 10);
    return errno != 0 || *end != '\0' || *value < min || *value > max ? -1 : 0;
}
{{ v.runtime_close }}

static void usage(FILE *to)
{
    fprintf(to, "usage: %s [-a HOST] [-p PORT] [-c CONNECTIONS]{{ v.client_extra_usage }}\n",
            {{ v.name }}_program);
}
{{ v.runtime_open }}

/* The next option of the command line, as getopt takes them (-x VALUE or -xVALUE; -h alone;
 * `--` ends the options) and the same on every platform. Returns the letter, '?' after saying
 * what is wrong, or -1 where the options end. */
static int next_option(int argc, char **argv, const char *with_value, int *index,
                       const char **value)
{
    const char *arg;
    if (*index >= argc || argv[*index][0] != '-' || argv[*index][1] == '\0') {
        return -1;
    }
    arg = argv[(*index)++];
    if (strcmp(arg, "--") == 0) {
        return -1;
    }
    if (arg[1] == 'h' && arg[2] == '\0') {
        return 'h';
    }
    if (strchr(with_value, arg[1]) == NULL) {
        fprintf(stderr, "%s: invalid option -- '%c'\n", {{ v.name }}_program, arg[1]);
        return '?';
    }
    if (arg[2] != '\0') {
        *value = arg + 2;
    } else if (*index < argc) {
        *value = argv[(*index)++];
    } else {
        fprintf(stderr, "%s: option requires an argument -- '%c'\n", {{ v.name }}_program,
                arg[1]);
        return '?';
    }
    return arg[1];
}
{{ v.runtime_close }}

static int parse_args(int argc, char **argv)
{
    int opt, index = 1;
    const char *optarg = NULL;
    client_options.host = {{ v.upper }}_HOST;
    client_options.port = {{ v.upper }}_PORT;
    client_options.connections = {{ v.upper }}_POOL_SIZE;
{%- if v.handler == Handler::EchoCheck %}
    client_options.messages = {{ v.upper }}_MESSAGES;
{%- endif %}
{%- if v.handler == Handler::Load %}
    client_options.duration_ms = {{ v.upper }}_DURATION_MS;
{%- endif %}
    while ((opt = next_option(argc, argv, "apc{% if v.handler == Handler::EchoCheck %}n{% endif %}{% if v.handler == Handler::Load %}d{% endif %}", &index, &optarg)) != -1) {
        unsigned long value;
        switch (opt) {
        case 'a':
            if (optarg[0] == '\0' || strlen(optarg) > 253) {
                fprintf(stderr, "%s: invalid host '%s' (expected a name or an IP address)\n",
                        {{ v.name }}_program, optarg);
                return -1;
            }
            client_options.host = optarg;
            break;
        case 'p':
            if (parse_number(optarg, 1, 65535, &value) != 0) {
                fprintf(stderr, "%s: invalid port '%s' (expected 1 to 65535)\n",
                        {{ v.name }}_program, optarg);
                return -1;
            }
            client_options.port = (int)value;
            break;
        case 'c':
            if (parse_number(optarg, 1, 10000, &value) != 0) {
                fprintf(stderr, "%s: invalid connection count '%s' (expected 1 to 10000)\n",
                        {{ v.name }}_program, optarg);
                return -1;
            }
            client_options.connections = (unsigned)value;
            break;
{%- if v.handler == Handler::EchoCheck %}
        case 'n':
            if (parse_number(optarg, 1, 1000000, &value) != 0) {
                fprintf(stderr, "%s: invalid message count '%s' (expected 1 to 1000000)\n",
                        {{ v.name }}_program, optarg);
                return -1;
            }
            client_options.messages = (unsigned)value;
            break;
{%- endif %}
{%- if v.handler == Handler::Load %}
        case 'd':
            if (parse_number(optarg, 1, 3600000, &value) != 0) {
                fprintf(stderr, "%s: invalid duration '%s' (expected 1 to 3600000 ms)\n",
                        {{ v.name }}_program, optarg);
                return -1;
            }
            client_options.duration_ms = (uint32_t)value;
            break;
{%- endif %}
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (index != argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", {{ v.name }}_program, argv[index]);
        return -1;
    }
    if (client_options.port == 0) {
        fprintf(stderr, "%s: no port to connect to: give -p PORT (the spec sets none)\n",
                {{ v.name }}_program);
        return -1;
    }
    return 0;
}
{{ v.runtime_open }}

/* One address of the server, as an attempt tries it. */
struct target {
    struct sockaddr_storage address;
    socklen_t length;
};

/* An attempt tries at most this many of the server's addresses, in getaddrinfo's order
 * (RFC 6724: the preferred one first). */
enum { MAX_ADDRESSES = 16 };

/* A host given as an address literal is parsed once, at start, and shared by every attempt:
 * it needs no resolver. A name is resolved by each attempt (member_resolve). */
static struct target literal_targets[MAX_ADDRESSES];
static size_t literal_count;

/* Copies getaddrinfo's IPv4 and IPv6 answers into `to` (room for MAX_ADDRESSES); how many. */
static size_t copy_targets(const struct addrinfo *list, struct target *to)
{
    const struct addrinfo *ai;
    size_t count = 0;
    for (ai = list; ai != NULL && count < MAX_ADDRESSES; ai = ai->ai_next) {
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
            && ai->ai_addrlen <= sizeof to[0].address) {
            memcpy(&to[count].address, ai->ai_addr, ai->ai_addrlen);
            to[count].length = (socklen_t)ai->ai_addrlen;
            count++;
        }
    }
    return count;
}

/* getaddrinfo for the host and port of the command line; `flags` beyond AI_NUMERICSERV. */
static int lookup_target(int flags, struct addrinfo **list)
{
    struct addrinfo hints;
    char port_text[8];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = {{ v.socktype }};
    hints.ai_flags = AI_NUMERICSERV | flags;
    snprintf(port_text, sizeof port_text, "%d", client_options.port);
    return getaddrinfo(client_options.host, port_text, &hints, list);
}

/* At start: whether the host is an address literal (AI_NUMERICHOST asks no resolver), kept in
 * literal_targets if so. */
static void parse_literal_target(void)
{
    struct addrinfo *list = NULL;
    if (lookup_target(AI_NUMERICHOST, &list) == 0) {
        literal_count = copy_targets(list, literal_targets);
        freeaddrinfo(list);
    }
}

/* Exponential backoff with full jitter: a uniform draw below min(max, base * 2^(n-1)), so
 * clients that failed together do not come back together. */
static uint64_t backoff_seed; /* set once in main; each member draws from its own state */

static uint32_t backoff_ms(uint64_t *rng, unsigned failures)
{
    uint64_t ceiling = {{ v.upper }}_BACKOFF_BASE_MS;
    unsigned i;
    for (i = 1; i < failures && ceiling < {{ v.upper }}_BACKOFF_MAX_MS; i++) {
        ceiling *= 2;
    }
    if (ceiling > {{ v.upper }}_BACKOFF_MAX_MS) {
        ceiling = {{ v.upper }}_BACKOFF_MAX_MS;
    }
    /* xorshift64: the draw needs to be spread, not secret */
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    return (uint32_t)(*rng % (ceiling + 1));
}

/* One place in the pool: an open connection, or the attempt to make one. */
enum member_state {
    MEMBER_CONNECTING, /* a nonblocking connect to targets[address] is under way */
    MEMBER_OPEN,       /* conn serves it */
    MEMBER_WAITING,    /* backing off until deadline_ms */
    MEMBER_DONE        /* finished, or gave up */
};

struct member {
    unsigned index;
    enum member_state state;
    client_socket fd;       /* the socket being connected, or NO_SOCKET */
    struct target *targets; /* this attempt's addresses: literal_targets, or its own resolution */
    size_t target_count;
    size_t address;         /* which of them is being tried */
    unsigned failures;      /* failed attempts in a row */
    uint64_t deadline_ms;   /* the connect timeout, or the end of the backoff */
    uint64_t rng;           /* its backoff draws */
    Conn *conn;
    char last_error[256];   /* what went wrong last, for the give-up message */
};

/* A member's first state: its own backoff draws, no socket yet. */
static void member_init(struct member *m, unsigned index)
{
    m->index = index;
    m->fd = NO_SOCKET;
    m->rng = backoff_seed ^ ((uint64_t)(index + 1) * 0x9e3779b97f4a7c15ull);
}

/* The address the member's attempt is at. */
static const struct sockaddr_storage *member_target(const struct member *m)
{
    return &m->targets[m->address].address;
}

/* Resolves a name for the attempt starting now, so that a transient failure (EAI_AGAIN) is
 * retried like a refused connect and a server whose address changed is found. 0, or -1 with
 * the reason in m->last_error. A literal was parsed at start. */
static int member_resolve(struct member *m)
{
    struct addrinfo *list = NULL;
    struct target *found;
    int rc;
    if (literal_count > 0) {
        m->targets = literal_targets;
        m->target_count = literal_count;
        return 0;
    }
    rc = lookup_target(0, &list);
    OP_LOG("resolve", NO_SOCKET, " host=%s result=%s", client_options.host,
           rc == 0 ? "ok" : "failed");
    if (rc != 0) {
        snprintf(m->last_error, sizeof m->last_error, "cannot resolve '%s': %s",
{%- if v.windows %}
                 client_options.host, gai_strerrorA(rc));
{%- else %}
                 client_options.host, rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
{%- endif %}
        return -1;
    }
    found = malloc(MAX_ADDRESSES * sizeof *found);
    if (found == NULL) {
        freeaddrinfo(list);
        snprintf(m->last_error, sizeof m->last_error, "cannot resolve '%s': out of memory",
                 client_options.host);
        return -1;
    }
    if (m->targets != literal_targets) {
        free(m->targets);
    }
    m->targets = found;
    m->target_count = copy_targets(list, found);
    freeaddrinfo(list);
    if (m->target_count == 0) {
        snprintf(m->last_error, sizeof m->last_error, "'%s' has no IPv4 or IPv6 address",
                 client_options.host);
        return -1;
    }
    return 0;
}

/* Frees what the pool's members resolved (members may be NULL). */
static void members_release(struct member *members)
{
    unsigned i;
    for (i = 0; members != NULL && i < client_options.connections; i++) {
        if (members[i].targets != literal_targets) {
            free(members[i].targets);
        }
        members[i].targets = NULL;
    }
}
{{ v.runtime_close }}

/* The spec's options for a client socket, set before connect so buffer sizes shape the
 * window. */
static int configure_client_socket(client_socket fd)
{
{%- if !v.tcp && v.recv_buffer.is_none() && v.send_buffer.is_none() %}
    (void)fd;
{%- endif %}
{%- if v.tcp %}
    /* Urgent data is read inline, as ordinary bytes, as servers do. */
    if (configure_connection(fd) != 0
        || set_int_option(fd, SOL_SOCKET, SO_OOBINLINE, 1, "setsockopt SO_OOBINLINE") != 0) {
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
    return 0;
}
{{ v.runtime_open }}
{%- if v.split_runtime %}

/* The spec's socket options: in {{ v.name }}.c, which the spec changes. */
static int configure_client_socket(client_socket fd);
{%- endif %}

/* Opens and configures a nonblocking socket for the member's current address, the attempt
 * under way from now. 0, or -1 with errno. */
static int member_open(struct member *m, uint64_t now)
{
    const struct sockaddr_storage *to = member_target(m);
{%- if v.windows %}
    SOCKET fd = socket(to->ss_family, {{ v.socktype }}, 0);
    OP_LOG("socket", fd, " family=%s type={% if v.tcp %}stream{% else %}dgram{% endif %} result=%s",
           to->ss_family == AF_INET6 ? "inet6" : "inet", OP_RESULT(fd != INVALID_SOCKET));
    if (fd == INVALID_SOCKET) {
        return -1;
    }
{%- if v.uses_iocp && v.tcp %}
    /* Overlapped requests do not depend on the socket's mode: it stays blocking. */
    if (configure_client_socket(fd) != 0) {
{%- else %}
    if (set_nonblocking(fd) != 0 || configure_client_socket(fd) != 0) {
{%- endif %}
        int saved = WSAGetLastError();
        closesocket(fd);
        WSASetLastError(saved);
        return -1;
    }
{%- else %}
    int fd = socket(to->ss_family, {{ v.socktype }} | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    OP_LOG("socket", fd, " family=%s type={% if v.tcp %}stream{% else %}dgram{% endif %} result=%s",
           to->ss_family == AF_INET6 ? "inet6" : "inet", OP_RESULT(fd >= 0));
    if (fd < 0) {
        return -1;
    }
    if (configure_client_socket(fd) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
{%- endif %}
    m->fd = fd;
    m->state = MEMBER_CONNECTING;
    m->deadline_ms = now + {{ v.upper }}_CONNECT_TIMEOUT_MS;
    return 0;
}
{%- if !v.completion %}

/* Starts a nonblocking connect to the member's current address. 0: under way (or done);
 * -1: failed at once, socket_error() says why. */
static int member_connect(struct member *m, uint64_t now)
{
    const struct sockaddr_storage *to = member_target(m);
    int rc, in_progress;
    if (member_open(m, now) != 0) {
        return -1;
    }
    rc = connect(m->fd, (const struct sockaddr *)to, m->targets[m->address].length);
{%- if v.windows %}
    in_progress = rc != 0 && WSAGetLastError() == WSAEWOULDBLOCK;
{%- else %}
    in_progress = rc != 0 && errno == EINPROGRESS;
{%- endif %}
    OP_LOG("connect", m->fd, " peer_port=%d result=%s", bound_port(to),
           rc == 0 ? "ok" : in_progress ? "in progress" : OP_RESULT(0));
    if (rc != 0 && !in_progress) {
        int saved = socket_error();
        close_socket(m->fd);
        m->fd = NO_SOCKET;
{%- if v.windows %}
        WSASetLastError(saved);
{%- else %}
        errno = saved;
{%- endif %}
        return -1;
    }
    return 0;
}
{%- endif %}

{%- if !v.completion %}

/* How the member's nonblocking connect ended, once its socket reported: 0 or the error. */
static int member_connect_result(const struct member *m)
{
    int error = 0;
{%- if v.windows %}
    int len = (int)sizeof error;
{%- else %}
    socklen_t len = sizeof error;
{%- endif %}
    if (getsockopt(m->fd, SOL_SOCKET, SO_ERROR, (char *)&error, &len) != 0) {
        error = socket_error();
    }
    OP_LOG("connected", m->fd, " result=%s", error == 0 ? "ok" : {% if v.windows %}socket_error_name{% else %}errno_name{% endif %}(error));
    return error;
}
{%- endif %}

/* Remembers why the current address failed, for the messages that follow. */
static void member_note_error(struct member *m, const char *what, int error)
{
    char address[INET6_ADDRSTRLEN + 8];
    char reason[128];
    format_address(member_target(m), address, sizeof address);
    describe_error(error, reason, sizeof reason);
    snprintf(m->last_error, sizeof m->last_error, "%s %s: %s", what, address, reason);
}

/* A whole attempt failed (every address, or the connection it made): back off and try again,
 * or give up once client.retry.max_attempts attempts in a row have failed. */
static void member_attempt_failed(struct member *m, uint64_t now)
{
    m->failures++;
    m->address = 0;
    if (m->failures >= {{ v.upper }}_MAX_ATTEMPTS) {
        fprintf(stderr,
                "%s: connection %u of %u: gave up after %u failed attempt%s; last error: %s\n",
                {{ v.name }}_program, m->index + 1, client_options.connections, m->failures,
                m->failures == 1 ? "" : "s", m->last_error);
        m->state = MEMBER_DONE;
        mark_run_failed();
    } else {
        uint32_t delay = backoff_ms(&m->rng, m->failures);
        fprintf(stderr,
                "%s: connection %u of %u: attempt %u of %u failed: %s; next attempt in %u ms\n",
                {{ v.name }}_program, m->index + 1, client_options.connections, m->failures,
                {{ v.upper }}_MAX_ATTEMPTS, m->last_error, (unsigned)delay);
        m->state = MEMBER_WAITING;
        m->deadline_ms = now + delay;
    }
}

/* The member's connection ended (on_close has run): reset, error and idle timeout count as a
 * failed attempt and are retried; anything else (the handler or the server closed it, or the
 * handler failed it) finishes this member. */
static void member_connection_ended(struct member *m, Conn *c, uint64_t now)
{
    const char *what = NULL;
    m->conn = NULL;
    if (c->heard) {
        /* The server answered: it was up and serving, so a failure now is the first of a new
         * run. A connect alone does not count: a server that accepts and resets at once, or
         * never answers, must still run the budget out. */
        m->failures = 0;
    }
    switch (c->reason) {
    case {{ v.upper }}_CLOSE_RESET:
        what = c->error == SOCKET_REFUSED ? "refused" : "reset";
        break;
    case {{ v.upper }}_CLOSE_ERROR:
        what = "failed";
        break;
    case {{ v.upper }}_CLOSE_IDLE:
        what = "idle timeout";
        break;
    default:
        break;
    }
    if (what != NULL && !c->failed) {
        char reason[128];
        if (c->reason == {{ v.upper }}_CLOSE_IDLE) {
            snprintf(reason, sizeof reason, "nothing moved for %u ms",
                     {{ v.upper }}_IDLE_TIMEOUT_MS);
        } else {
            describe_error(c->error, reason, sizeof reason);
        }
        snprintf(m->last_error, sizeof m->last_error, "connection to %s %s: %s",
                 {{ v.name }}_info(c)->peer_text, what, reason);
        member_attempt_failed(m, now);
        return;
    }
    m->state = MEMBER_DONE;
    if (!c->failed) {
        m->failures = 0;
    }
}
