
/* ---------------------------------------------------------------------------------------------
 * The client: command line, name resolution, connect attempts with backoff. Once a connection
 * is up it runs on the same machinery as a server's connections, so the handler contract is
 * the same on both sides.
 */

{%- if v.windows %}
{%- include "winsock/client_platform.c" %}
{%- else %}
{%- include "c/client_platform.c" %}
{%- endif %}

static inline const struct {{ v.name }}_options *{{ v.name }}_options(void)
{
    return &command_line;
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

static int parse_args(int argc, char **argv)
{
    int opt, index = 1;
    const char *optarg = NULL;
    while ((opt = next_option(argc, argv, "apc{% if v.handler == Handler::EchoCheck %}n{% endif %}{% if v.handler == Handler::Load %}d{% endif %}", &index, &optarg,
                              &command_line)) != -1) {
        unsigned long value;
        switch (opt) {
        case 0:
            break;
        case 'a':
            if (optarg[0] == '\0' || strlen(optarg) > 253) {
                fprintf(stderr, "%s: invalid host '%s' (expected a name or an IP address)\n",
                        {{ v.name }}_program, optarg);
                return -1;
            }
            command_line.host = optarg;
            break;
        case 'p':
            if (parse_number(optarg, 1, 65535, &value) != 0) {
                fprintf(stderr, "%s: invalid port '%s' (expected 1 to 65535)\n",
                        {{ v.name }}_program, optarg);
                return -1;
            }
            command_line.port = (int)value;
            break;
        case 'c':
            if (parse_number(optarg, 1, 10000, &value) != 0) {
                fprintf(stderr, "%s: invalid connection count '%s' (expected 1 to 10000)\n",
                        {{ v.name }}_program, optarg);
                return -1;
            }
            command_line.connections = (unsigned)value;
            break;
{%- if v.handler == Handler::EchoCheck %}
        case 'n':
            if (parse_number(optarg, 1, 1000000, &value) != 0) {
                fprintf(stderr, "%s: invalid message count '%s' (expected 1 to 1000000)\n",
                        {{ v.name }}_program, optarg);
                return -1;
            }
            command_line.messages = (unsigned)value;
            break;
{%- endif %}
{%- if v.handler == Handler::Load %}
        case 'd':
            if (parse_number(optarg, 1, 3600000, &value) != 0) {
                fprintf(stderr, "%s: invalid duration '%s' (expected 1 to 3600000 ms)\n",
                        {{ v.name }}_program, optarg);
                return -1;
            }
            command_line.duration_ms = (uint32_t)value;
            break;
{%- endif %}
        default:
            return help_or_usage(opt);
        }
    }
    if (arguments_left(argc, argv, index)) {
        return -1;
    }
    if (command_line.port == 0) {
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
    snprintf(port_text, sizeof port_text, "%d", command_line.port);
    return getaddrinfo(command_line.host, port_text, &hints, list);
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
{%- if !v.thread_per_connection %}
    unsigned deadlines_filed; /* the pool's filings of its deadline: the last one is live */
{%- endif %}
    uint64_t rng;           /* its backoff draws */
    Conn *conn;
    char last_error[256];   /* what went wrong last, for the give-up message */
};
{%- if !v.thread_per_connection %}

/* A member's connect timeout or backoff end, filed in the pool's deadlines. */
struct member_due {
    uint64_t at;
    unsigned member;
    unsigned filing; /* which of the member's filings: only its last is live */
};

/* The pool's deadlines, earliest first. An entry whose member has filed another since is stale
 * and skipped when it comes up, so filing a deadline costs O(log n) and no expiry scans the
 * pool. Room for twice the pool: each member has one live entry at most (its last filing; the
 * same deadline filed twice within a millisecond is still one), so dropping the stale ones when
 * it is full always frees more than half, after at least a pool's worth of filings. */
struct member_deadlines {
    struct member_due *items;
    size_t len, cap;
};
{%- endif %}

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
    OP_LOG("resolve", NO_SOCKET, " host=%s result=%s", command_line.host,
           rc == 0 ? "ok" : "failed");
    if (rc != 0) {
        snprintf(m->last_error, sizeof m->last_error, "cannot resolve '%s': %s",
                 command_line.host, resolve_error_text(rc));
        return -1;
    }
    found = malloc(MAX_ADDRESSES * sizeof *found);
    if (found == NULL) {
        freeaddrinfo(list);
        snprintf(m->last_error, sizeof m->last_error, "cannot resolve '%s': out of memory",
                 command_line.host);
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
                 command_line.host);
        return -1;
    }
    return 0;
}

/* Frees what the pool's members resolved (members may be NULL). */
static void members_release(struct member *members)
{
    unsigned i;
    for (i = 0; members != NULL && i < command_line.connections; i++) {
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
    client_socket fd = client_socket_open(to->ss_family);
    if (fd == NO_SOCKET) {
        return -1;
    }
    if (configure_client_socket(fd) != 0) {
        int saved = socket_error();
        close_socket(fd);
        set_socket_error(saved);
        return -1;
    }
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
    in_progress = rc != 0 && connect_in_progress();
    OP_LOG("connect", m->fd, " peer_port=%d result=%s", bound_port(to),
           rc == 0 ? "ok" : in_progress ? "in progress" : OP_RESULT(0));
    if (rc != 0 && !in_progress) {
        int saved = socket_error();
        close_socket(m->fd);
        m->fd = NO_SOCKET;
        set_socket_error(saved);
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
    option_length len = (option_length)sizeof error;
    if (getsockopt(m->fd, SOL_SOCKET, SO_ERROR, (char *)&error, &len) != 0) {
        error = socket_error();
    }
    OP_LOG("connected", m->fd, " result=%s", error == 0 ? "ok" : socket_error_name(error));
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
                {{ v.name }}_program, m->index + 1, command_line.connections, m->failures,
                m->failures == 1 ? "" : "s", m->last_error);
        m->state = MEMBER_DONE;
        mark_run_failed();
    } else {
        uint32_t delay = backoff_ms(&m->rng, m->failures);
        fprintf(stderr,
                "%s: connection %u of %u: attempt %u of %u failed: %s; next attempt in %u ms\n",
                {{ v.name }}_program, m->index + 1, command_line.connections, m->failures,
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
