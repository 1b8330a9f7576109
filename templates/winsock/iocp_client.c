{%- include "c/header_comment.c" %}

{% include "winsock/prelude.c" %}
{% include "c/handler_slot.c" %}
{{ v.implementation_open }}

/* Completion keys: what a completion packet is about. */
enum { STOP_KEY = 1, SOCKET_KEY{% if v.tcp %}, RESUME_KEY{% endif %} };
/* Completions taken per GetQueuedCompletionStatusEx call. */
enum { COMPLETION_BATCH = 64 };
/* How long a stopping client waits for the requests it cancelled to complete. */
enum { DRAIN_MS = 1000 };

/* One overlapped request; the OVERLAPPED comes first, so a completion's pointer is the
 * request. `conn` is NULL for a connect, which has no connection yet. */
struct overlapped_op {
    OVERLAPPED ov;
    struct {{ v.name }}_conn *conn;
};
{% include "winsock/runtime.c" %}
{%- if v.tcp %}
{% include "c/tcp_conn.c" %}
{% include "winsock/conn_socket.c" %}
{% include "c/conn_completion.c" %}
{%- else %}
{% include "c/udp_client_conn.c" %}
{%- endif %}

{% include "c/timers.c" %}
{% include "c/client_runtime.c" %}
{{ v.runtime_close }}

/* ---------------------------------------------------------------------------------------------
 * IOCP client: one thread and one completion port for the whole pool.
{%- if v.tcp %} Each connect is a
 * ConnectEx on a socket bound to the wildcard address and attached to the port; a connected
 * socket then carries the same requests as a server's connections (one WSARecv, at most one
 * WSASend). A ConnectEx that outlives its connect timeout is cancelled and its socket
 * closed; its record lives on until its completion arrives, so a late completion never
 * meets the member's next attempt.
{%- else %} A datagram
 * socket's connect only names its peer and is done at once; it is finished through the port
 * all the same, as a stream's ConnectEx is. Each socket then keeps one overlapped WSARecv
 * pending; a write is sent at once (the socket is nonblocking), as in every model.
{%- endif %}
 */

struct connect_op {
    struct overlapped_op op; /* first, with op.conn NULL: a completion's pointer is the record */
    struct member *member;   /* NULL once abandoned */
    SOCKET socket;
};

struct loop {
    HANDLE port;
    Conn *all;                     /* every open connection, for shutdown */
    struct timer_heap timers;
{%- if v.tcp %}
    struct chunk_cache chunks;
{%- endif %}
    struct {{ v.name }}_worker worker;
    struct member *members;        /* the pool */
    struct connect_op **connects;  /* member i's ConnectEx under way, or NULL */
    unsigned connects_abandoned;   /* timed out or stopped, completion still to come */
    unsigned members_left;         /* not done yet */
    struct member_deadlines members_due; /* connect timeouts and backoff ends */
};

/* Attaches the member's socket to the port and makes the record its connect completes with.
 * NULL with WSAGetLastError() saying why. */
static struct connect_op *connect_op_new(struct loop *lp, struct member *m)
{
    struct connect_op *op;
    if (CreateIoCompletionPort((HANDLE)m->fd, lp->port, SOCKET_KEY, 0) == NULL) {
        WSASetLastError((int)GetLastError());
        return NULL;
    }
    op = calloc(1, sizeof *op);
    if (op == NULL) {
        WSASetLastError(WSAENOBUFS);
        return NULL;
    }
    op->member = m;
    op->socket = m->fd;
    return op;
}

{%- if v.tcp %}

/* Binds the member's new socket, attaches it to the port and starts its ConnectEx. 0, or -1
 * with WSAGetLastError() saying why. */
static int loop_watch_connecting(struct loop *lp, struct member *m)
{
    const struct sockaddr_storage *to = member_target(m);
    struct sockaddr_storage wildcard;
    GUID guid = WSAID_CONNECTEX;
    LPFN_CONNECTEX connect_ex = NULL;
    DWORD returned = 0;
    struct connect_op *op;
    BOOL done;
    /* ConnectEx takes only a bound socket: any local address, any port, as connect() would. */
    memset(&wildcard, 0, sizeof wildcard);
    wildcard.ss_family = to->ss_family;
    if (bind(m->fd, (const struct sockaddr *)&wildcard,
             to->ss_family == AF_INET6 ? (int)sizeof(struct sockaddr_in6)
                                       : (int)sizeof(struct sockaddr_in)) != 0
        || WSAIoctl(m->fd, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, (DWORD)sizeof guid,
                    &connect_ex, (DWORD)sizeof connect_ex, &returned, NULL, NULL) != 0
        || (op = connect_op_new(lp, m)) == NULL) {
        return -1;
    }
    done = connect_ex(m->fd, (const struct sockaddr *)to, m->targets[m->address].length, NULL, 0,
                      NULL, &op->op.ov);
    OP_LOG("connect", m->fd, " peer_port=%d result=%s", bound_port(to),
           done ? "ok" : WSAGetLastError() == ERROR_IO_PENDING ? "in progress" : OP_RESULT(0));
    if (!done && WSAGetLastError() != ERROR_IO_PENDING) {
        int saved = WSAGetLastError();
        free(op);
        WSASetLastError(saved);
        return -1;
    }
    lp->connects[m->index] = op; /* done at once or not, the completion comes through the port */
    return 0;
}
{%- else %}

/* Connects the member's new socket (a datagram socket's connect is done at once), attaches
 * it to the port and posts its completion. 0, or -1 with WSAGetLastError() saying why. */
static int loop_watch_connecting(struct loop *lp, struct member *m)
{
    const struct sockaddr_storage *to = member_target(m);
    struct connect_op *op;
    int rc = connect(m->fd, (const struct sockaddr *)to, m->targets[m->address].length);
    OP_LOG("connect", m->fd, " peer_port=%d result=%s", bound_port(to), OP_RESULT(rc == 0));
    if (rc != 0 || (op = connect_op_new(lp, m)) == NULL) {
        return -1;
    }
    if (!PostQueuedCompletionStatus(lp->port, 0, SOCKET_KEY, &op->op.ov)) {
        int error = (int)GetLastError();
        free(op);
        WSASetLastError(error);
        return -1;
    }
    lp->connects[m->index] = op;
    return 0;
}
{%- endif %}

/* The member's connect is given up (timed out, or stopping): cancelled, and its record left
 * for the completion to free. The caller closes the socket. */
static void loop_unwatch_connecting(struct loop *lp, struct member *m)
{
    struct connect_op *op = lp->connects[m->index];
    if (op == NULL) {
        return;
    }
    op->member = NULL;
    lp->connects[m->index] = NULL;
    lp->connects_abandoned++;
    (void)CancelIoEx((HANDLE)m->fd, &op->op.ov);
}

{% include "c/client_pool.c" %}

/* Frees a finished connection once Windows holds none of its requests (until then they are
 * cancelled and their completions awaited), then tells its member. Returns 1 when freed. */
static int conn_retire(struct loop *lp, Conn *c)
{
    struct member *m;
{%- if v.tcp %}
    if (c->resume_pending) {
        return 0; /* its packet is in the port: retired when it is taken */
    }
    if (c->recv_pending || c->send_pending) {
{%- else %}
    if (c->recv_pending) {
{%- endif %}
        if (!c->cancelled) {
            c->cancelled = 1;
            (void)CancelIoEx((HANDLE)c->fd, NULL);
        }
        return 0;
    }
    m = &lp->members[c->member];
    timers_remove(&lp->timers, c);
    conn_list_remove(&lp->all, c);
    conn_release(c); /* on_close runs here */
    member_connection_ended(m, c, now_ms());
    free(c->recv_buf);
    free(c);
    loop_member_settled(lp, m);
    return 1;
}

{%- if v.tcp %}
{% include "winsock/iocp_conn.c" %}
{%- else %}

/* ---------------------------------------------------------------------------------------------
 * A socket's one overlapped receive, its completion, and what follows each event.
 */

/* A receive ended: a datagram for the handler, or the error that ends the socket. */
static void conn_received(Conn *c, int error, DWORD moved, uint64_t now)
{
    c->recv_pending = 0;
    OP_LOG("recv", c->fd, " bytes=%lu result=%s", (unsigned long)moved,
           error != 0 ? socket_error_name(error) : "ok");
    if (error == WSAEMSGSIZE) {
        /* Windows filled the buffer and cut the rest off: one more than fits, so it is dropped. */
        conn_deliver(c, c->recv_buf, (size_t){{ v.upper }}_BUFFER_SIZE + 1, now);
    } else if (error != 0) {
        if (error != WSA_OPERATION_ABORTED) {
            conn_fail(c, error);
        }
    } else {
        conn_deliver(c, c->recv_buf, moved, now);
    }
}

/* Starts the receive when none is pending. Its completion comes through the port in every
 * case but a failure to start: one done at once as well (the socket does not skip the port on
 * success), and one that fails at once with WSAEMSGSIZE too, since a datagram longer than the
 * buffer is a warning (STATUS_BUFFER_OVERFLOW), not a failed request. Handled here as well,
 * that datagram would be handled twice, and the next receive would reuse an OVERLAPPED whose
 * completion is still queued. */
static void conn_post_recv(Conn *c, uint64_t now)
{
    WSABUF buf;
    DWORD flags = 0, got = 0;
    int error;
    if (c->phase != PHASE_OPEN || c->recv_pending) {
        return;
    }
    buf.buf = (CHAR *)c->recv_buf;
    buf.len = {{ v.upper }}_BUFFER_SIZE;
    memset(&c->recv_op.ov, 0, sizeof c->recv_op.ov);
    c->recv_pending = 1;
    if (WSARecv(c->fd, &buf, 1, &got, &flags, &c->recv_op.ov, NULL) == 0) {
        return;
    }
    error = WSAGetLastError();
    if (error != WSA_IO_PENDING && error != WSAEMSGSIZE) {
        conn_received(c, error, 0, now);
    }
}

/* After anything happened to a socket: its receive, then its deadline; a finished socket is
 * retired. */
static void conn_drive(struct loop *lp, Conn *c, uint64_t now)
{
    conn_post_recv(c, now);
    if (c->phase != PHASE_OPEN) {
        (void)conn_retire(lp, c);
        return;
    }
    timers_schedule(&lp->timers, c);
}

/* The drain gave up waiting for the socket's receive: on_close runs and the socket closes,
 * but the buffer stays, as Windows may still write into it. */
static void conn_abandon(Conn *c)
{
    conn_release(c);
}

/* The socket's receive completed. */
static void conn_completed(struct loop *lp, struct overlapped_op *op, uint64_t now)
{
    Conn *c = op->conn;
    DWORD moved = 0, flags = 0;
    int error =
        WSAGetOverlappedResult(c->fd, &op->ov, &moved, FALSE, &flags) ? 0 : WSAGetLastError();
    conn_received(c, error, moved, now);
    conn_drive(lp, c, now);
}
{%- endif %}

/* A ConnectEx completed: the member's connection opens, or its next address is tried. */
static void loop_connect_completed(struct loop *lp, struct connect_op *op, uint64_t now)
{
    struct member *m = op->member;
{%- if v.tcp %}
    DWORD moved = 0, flags = 0;
    WSAPROTOCOL_INFOW info;
    int info_len = (int)sizeof info;
{%- endif %}
    int error = 0;
    Conn *c;
    if (m == NULL) {
        free(op); /* abandoned: its socket is closed already */
        lp->connects_abandoned--;
        return;
    }
    lp->connects[m->index] = NULL;
{%- if v.tcp %}
    error = WSAGetOverlappedResult(op->socket, &op->op.ov, &moved, FALSE, &flags)
                ? 0
                : WSAGetLastError();
    /* Without this the socket knows nothing of its connect: getpeername, shutdown fail. */
    if (error == 0 && setsockopt(m->fd, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0) != 0) {
        error = WSAGetLastError();
    }
{%- endif %}
    free(op);
    OP_LOG("connected", m->fd, " result=%s", error == 0 ? "ok" : socket_error_name(error));
    c = error == 0 ? conn_open(m->fd, member_target(m), &lp->worker, 0, {% if v.tcp %}&lp->chunks, {% endif %}now) : NULL;
    if (c == NULL) {
        loop_connect_failed(lp, m, error != 0 ? error : ENOMEM, now);
        return;
    }
    c->member = m->index;
    m->fd = INVALID_SOCKET;
    m->conn = c;
    m->state = MEMBER_OPEN;
    c->recv_buf = malloc({{ v.upper }}_BUFFER_SIZE);
    c->recv_op.conn = c;
{%- if v.tcp %}
    c->send_op.conn = c;
{%- endif %}
    conn_list_add(&lp->all, c);
    if (c->recv_buf == NULL) {
        conn_end(c, {{ v.upper }}_CLOSE_ERROR, ENOMEM);
    } else {
{%- if v.tcp %}
        /* Requests that complete at once are handled at once, with no trip through the port,
         * only where the provider is the system's own (a layered one may lose them). */
        c->skips_port = getsockopt(c->fd, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&info,
                                   &info_len) == 0
                        && (info.dwServiceFlags1 & XP1_IFS_HANDLES) != 0
                        && SetFileCompletionNotificationModes(
                            (HANDLE)c->fd,
                            FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE);
{%- endif %}
        conn_start(c);
    }
    conn_drive(lp, c, now);
}

/* One packet from the port. Returns 0 when it asks the loop to stop. */
static int loop_dispatch(struct loop *lp, const OVERLAPPED_ENTRY *entry, uint64_t now)
{
    struct overlapped_op *op = (struct overlapped_op *)(void *)entry->lpOverlapped;
    switch (entry->lpCompletionKey) {
    case STOP_KEY:
        return 0;
{%- if v.tcp %}
    case RESUME_KEY:
        conn_resumed(lp, (Conn *)(void *)entry->lpOverlapped, now);
        return 1;
{%- endif %}
    default:
        if (op->conn == NULL) {
            loop_connect_completed(lp, (struct connect_op *)(void *)op, now);
        } else {
            conn_completed(lp, op, now);
        }
        return 1;
    }
}

/* Runs until every member of the pool is done (0), a stop (0) or a failed wait (-1). */
static int loop_run(struct loop *lp)
{
    OVERLAPPED_ENTRY entries[COMPLETION_BATCH];
    uint64_t now = now_ms();
    int stopping = 0;
    while (lp->members_left > 0) {
        int count, i;
        size_t budget;
        Conn *due;
        count = take_completions(lp->port, entries,
                                 loop_members_timeout(lp, timers_timeout(&lp->timers, now), now));
        if (count < 0) {
            return -1;
        }
        now = now_ms();
        /* A stop is acted on after the rest of its batch: a completion taken from the port
         * and left unhandled would never come again, and its connection would wait for it
         * in the drain and go without on_close. */
        for (i = 0; i < count; i++) {
            stopping |= !loop_dispatch(lp, &entries[i], now);
        }
        if (stopping) {
            return 0;
        }
        budget = lp->timers.len;
        while (budget-- > 0 && (due = timers_next_due(&lp->timers, now)) != NULL) {
            conn_expire(due, now);
            conn_drive(lp, due, now);
        }
        loop_members_due(lp, now);
    }
    return 0;
}

/* Stopping: every connection ends with reason stopping and every connect is given up; the
 * completions of their cancelled requests are taken (at most DRAIN_MS) before anything
 * Windows may still write into is freed. */
static void loop_drain(struct loop *lp)
{
    OVERLAPPED_ENTRY entries[COMPLETION_BATCH];
    uint64_t until = now_ms() + DRAIN_MS;
    Conn *c, *next;
    unsigned i;
    for (c = lp->all; c != NULL; c = next) {
        next = c->next;
        conn_end(c, {{ v.upper }}_CLOSE_STOPPING, 0);
        (void)conn_retire(lp, c);
    }
    for (i = 0; i < command_line.connections; i++) {
        struct member *m = &lp->members[i];
        if (m->fd != INVALID_SOCKET) {
            loop_unwatch_connecting(lp, m);
            closesocket(m->fd);
            m->fd = INVALID_SOCKET;
        }
    }
    for (;;) {
        int count, n;
        uint64_t now = now_ms();
        if ((lp->all == NULL && lp->connects_abandoned == 0) || now >= until) {
            break;
        }
        count = take_completions(lp->port, entries, (int)(until - now));
        if (count <= 0) {
            break;
        }
        for (n = 0; n < count; n++) {
            struct overlapped_op *op = (struct overlapped_op *)(void *)entries[n].lpOverlapped;
            if (entries[n].lpCompletionKey == SOCKET_KEY && op->conn == NULL) {
                loop_connect_completed(lp, (struct connect_op *)(void *)op, now);
            } else if (entries[n].lpCompletionKey == SOCKET_KEY) {
{%- if v.tcp %}
                conn_request_drained(lp, op);
            } else if (entries[n].lpCompletionKey == RESUME_KEY) {
                conn_resume_drained(lp, (Conn *)(void *)entries[n].lpOverlapped);
{%- else %}
                op->conn->recv_pending = 0;
                (void)conn_retire(lp, op->conn);
{%- endif %}
            }
        }
    }
    /* Requests still outstanding after DRAIN_MS are left to the process's exit, with the
     * memory they may write into; their connections still get on_close. */
    for (c = lp->all; c != NULL; c = c->next) {
        conn_abandon(c);
    }
}

/* Opens the pool and runs the loop; on a stop every connection ends with reason stopping. */
static int loop_main(void)
{
    struct loop lp;
    unsigned i;
    int status = -1;

    memset(&lp, 0, sizeof lp);
    lp.members = calloc(command_line.connections, sizeof *lp.members);
    lp.connects = calloc(command_line.connections, sizeof *lp.connects);
    if (lp.members == NULL || lp.connects == NULL
        || member_deadlines_init(&lp.members_due, command_line.connections) != 0
        || timers_init(&lp.timers) != 0) {
        log_errno("malloc");
        goto out;
    }
    lp.port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (lp.port == NULL) {
        log_wsa_error("CreateIoCompletionPort", (int)GetLastError());
        goto out;
    }
    /* A stop posts to the port from now on; one that came before is seen here. */
    worker_ports[0] = lp.port;
    if (stop_is_requested()) {
        status = 0;
        goto out;
    }
    if (!worker_start(&lp.worker, 0)) {
        goto out;
    }
    lp.members_left = command_line.connections;
    for (i = 0; i < command_line.connections; i++) {
        member_init(&lp.members[i], i);
    }
    for (i = 0; i < command_line.connections; i++) {
        loop_connect(&lp, &lp.members[i], now_ms());
    }
    status = loop_run(&lp);
    loop_drain(&lp);
    {{ v.name }}_on_worker_stop(&lp.worker);
out:
    members_release(lp.members);
    free(lp.members);
    free(lp.members_due.items);
    free(lp.connects);
    free(lp.timers.items);
{%- if v.tcp %}
    chunk_cache_drain(&lp.chunks);
{%- endif %}
    return status;
}
{% include "winsock/client_main.c" %}
