{%- include "c/header_comment.c" %}

{% include "winsock/prelude.c" %}
{% include "c/handler_slot.c" %}
{{ v.implementation_open }}

/* Completion keys: what a completion packet is about. */
enum { STOP_KEY = 1, ACCEPT_KEY, CONN_KEY, HANDOFF_KEY, REARM_KEY, RESUME_KEY{% if !v.tcp %}, DGRAM_KEY{% endif %} };
/* Completions taken per GetQueuedCompletionStatusEx call. */
enum { COMPLETION_BATCH = 64 };
/* How long a stopping worker waits for the requests it cancelled to complete. */
enum { DRAIN_MS = 1000 };
{%- if v.tcp %}

/* One overlapped request of a connection; the OVERLAPPED comes first, so a completion's
 * pointer is the request. */
struct overlapped_op {
    OVERLAPPED ov;
    struct {{ v.name }}_conn *conn;
};
{%- endif %}
{% include "winsock/runtime.c" %}
{%- if v.tcp %}
{% include "c/tcp_conn.c" %}
{% include "winsock/conn_socket.c" %}
{% include "c/conn_completion.c" %}

{% include "c/timers.c" %}
{{ v.runtime_close }}

/* ---------------------------------------------------------------------------------------------
 * IOCP. Every worker thread owns a completion port and the connections on it: a connection's
 * completions all reach the thread that runs its callbacks, so a worker's callbacks never run
 * at the same time and the handler needs no lock (one port shared by every thread would hand
 * any completion to any thread, and every connection would need a lock).
 *
 * The listener belongs to worker 0's port. AcceptEx requests wait on it, never more than the
 * connections still allowed ({{ v.upper }}_MAX_CONNECTIONS per worker), so a peer past the
 * limit waits in the backlog. Worker 0 hands each accepted socket to the worker with room, in
 * turn; that worker attaches it to its own port. Per connection, one overlapped WSARecv into
 * its own buffer and at most one WSASend (of up to OUT_IOV queued chunks) are outstanding. A
 * finished connection cancels its requests and is freed only when none is left, since Windows
 * may still write into its buffer or read its output queue until then.
 */

enum { ACCEPT_ADDRESS_SPACE = sizeof(struct sockaddr_storage) + 16 }; /* AcceptEx's rule */
enum { ACCEPTS_OUTSTANDING = 16 };

struct accept_slot {
    OVERLAPPED ov;           /* first: a completion's pointer is the slot */
    SOCKET socket;           /* made in advance; the accepted connection lands on it */
    int pending;
    unsigned char addresses[2 * ACCEPT_ADDRESS_SPACE];
};

struct loop {
    unsigned index;
    HANDLE port;
    Conn *all;               /* every connection of this worker, for shutdown */
    struct timer_heap timers;
    struct chunk_cache chunks;
    struct {{ v.name }}_worker worker;
    volatile LONG open;      /* connections it holds or is being handed: worker 0 reads it */
};

static struct loop loops[{{ v.upper }}_WORKERS];

/* Worker 0's accepting state. */
static struct accept_slot accept_slots[ACCEPTS_OUTSTANDING];
static SOCKET accept_listener = INVALID_SOCKET;
static int accept_family;
static LPFN_ACCEPTEX accept_ex;
static unsigned handoff_next;
static volatile LONG connections_total; /* accepted and not yet freed, every worker */
static uint64_t accept_resume_ms;       /* out of sockets: post accepts again from then */
static shared_counter accept_shed;
static int accepting = 1;               /* cleared when worker 0 stops */
/* Requests that complete at once are handled at once, with no trip through the port
 * (FILE_SKIP_COMPLETION_PORT_ON_SUCCESS), where the socket provider is the system's own: a
 * layered provider that is not may lose such completions, so there every one is queued. */
static int skip_port_on_success;

/* Posts an AcceptEx into every idle slot while the limit allows. */
static void accept_refill(uint64_t now)
{
    LONG room = (LONG)({{ v.upper }}_WORKERS * {{ v.upper }}_MAX_CONNECTIONS)
                - InterlockedCompareExchange(&connections_total, 0, 0);
    int posted = 0;
    int i;
    if (!accepting || (accept_resume_ms != 0 && now < accept_resume_ms)) {
        return;
    }
    accept_resume_ms = 0;
    for (i = 0; i < ACCEPTS_OUTSTANDING; i++) {
        posted += accept_slots[i].pending;
    }
    for (i = 0; i < ACCEPTS_OUTSTANDING && posted < room; i++) {
        struct accept_slot *slot = &accept_slots[i];
        DWORD received = 0;
        if (slot->pending) {
            continue;
        }
        if (slot->socket == INVALID_SOCKET) {
            slot->socket = socket(accept_family, SOCK_STREAM, IPPROTO_TCP);
            if (slot->socket == INVALID_SOCKET) {
                int error = WSAGetLastError();
                if (error == WSAEMFILE || error == WSAENOBUFS) {
                    log_shared_occurrence("out of sockets: new peers wait", &accept_shed);
                    accept_resume_ms = now + 100;
                } else {
                    log_wsa_error("socket (for AcceptEx)", error);
                }
                return;
            }
        }
        memset(&slot->ov, 0, sizeof slot->ov);
        if (!accept_ex(accept_listener, slot->socket, slot->addresses, 0, ACCEPT_ADDRESS_SPACE,
                       ACCEPT_ADDRESS_SPACE, &received, &slot->ov)
            && WSAGetLastError() != ERROR_IO_PENDING) {
            log_socket_error("AcceptEx");
            closesocket(slot->socket);
            slot->socket = INVALID_SOCKET;
            return;
        }
        OP_LOG("accept", accept_listener, " slot=%d result=pending", i);
        slot->pending = 1;
        posted++;
    }
}

/* A worker with room for one more connection, in turn; worker 0 when every one is full
 * (cannot happen: accepts never outrun the total). */
static unsigned handoff_target(void)
{
    unsigned tried;
    for (tried = 0; tried < {{ v.upper }}_WORKERS; tried++) {
        unsigned w = handoff_next++ % {{ v.upper }}_WORKERS;
        if ((unsigned)InterlockedCompareExchange(&loops[w].open, 0, 0)
            < {{ v.upper }}_MAX_CONNECTIONS) {
            return w;
        }
    }
    return 0;
}

/* An AcceptEx completed: the socket becomes a connection of some worker. */
static void accept_completed(struct accept_slot *slot, BOOL ok, uint64_t now)
{
    SOCKET s = slot->socket;
    struct sockaddr_storage peer;
    int peer_len = (int)sizeof peer;
    unsigned w;
    Conn *c;
    slot->pending = 0;
    slot->socket = INVALID_SOCKET;
    OP_LOG("accept", accept_listener, " conn=%llu result=%s", (unsigned long long)s,
           ok ? "ok" : socket_result_name());
    if (!ok || !accepting) {
        /* The peer gave up while waiting (WSAECONNRESET), the listener is closing, or the
         * server is stopping: a connection handed over now might reach a worker that has
         * finished already. */
        closesocket(s);
        return;
    }
    /* Without this the socket knows nothing of its listener: getpeername, shutdown fail. */
    if (setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (const char *)&accept_listener,
                   (int)sizeof accept_listener) != 0
        || getpeername(s, (struct sockaddr *)&peer, &peer_len) != 0
        || configure_connection(s) != 0) {
        closesocket(s);
        return;
    }
    w = handoff_target();
    c = conn_open(s, &peer, &loops[w].worker, w, &loops[w].chunks, now);
    if (c == NULL) {
        closesocket(s);
        return;
    }
    InterlockedIncrement(&connections_total);
    InterlockedIncrement(&loops[w].open);
    if (!PostQueuedCompletionStatus(loops[w].port, 0, HANDOFF_KEY, (LPOVERLAPPED)(void *)c)) {
        log_wsa_error("PostQueuedCompletionStatus", (int)GetLastError());
        InterlockedDecrement(&connections_total);
        InterlockedDecrement(&loops[w].open);
        conn_release(c);
        free(c);
    }
}

/* Frees a finished connection once Windows holds none of its requests; until then its
 * requests are cancelled and their completions awaited. Returns 1 when it was freed. */
static int conn_retire(struct loop *lp, Conn *c)
{
    if (c->resume_pending) {
        return 0; /* its packet is in the port: freed when it is taken */
    }
    if (c->recv_pending || c->send_pending) {
        if (!c->cancelled) {
            c->cancelled = 1;
            (void)CancelIoEx((HANDLE)c->fd, NULL);
        }
        return 0;
    }
    timers_remove(&lp->timers, c);
    conn_list_remove(&lp->all, c);
    conn_release(c);
    free(c->recv_buf);
    free(c);
    InterlockedDecrement(&lp->open);
    InterlockedDecrement(&connections_total);
    if (lp->index == 0) {
        accept_refill(now_ms());
    } else {
        (void)PostQueuedCompletionStatus(loops[0].port, 0, REARM_KEY, NULL);
    }
    return 1;
}

{% include "winsock/iocp_conn.c" %}

/* A connection handed over by worker 0: attach it to this worker's port and open it. */
static void conn_adopt(struct loop *lp, Conn *c, uint64_t now)
{
    c->recv_buf = malloc({{ v.upper }}_BUFFER_SIZE);
    c->recv_op.conn = c;
    c->send_op.conn = c;
    conn_list_add(&lp->all, c);
    if (c->recv_buf == NULL) {
        conn_end(c, {{ v.upper }}_CLOSE_ERROR, ENOMEM);
    } else if (CreateIoCompletionPort((HANDLE)c->fd, lp->port, CONN_KEY, 0) == NULL) {
        conn_end(c, {{ v.upper }}_CLOSE_ERROR, (int)GetLastError());
    } else {
        c->skips_port = skip_port_on_success
                        && SetFileCompletionNotificationModes(
                            (HANDLE)c->fd,
                            FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE);
        conn_start(c);
    }
    conn_drive(lp, c, now);
}

/* Dispatches one completion packet; returns 0 when it asks the loop to stop. */
static int loop_dispatch(struct loop *lp, const OVERLAPPED_ENTRY *entry, uint64_t now)
{
    switch (entry->lpCompletionKey) {
    case STOP_KEY:
        if (lp->index == 0) {
            accepting = 0; /* accepts later in the batch take on no one */
        }
        return 0;
    case ACCEPT_KEY: {
        struct accept_slot *slot = (struct accept_slot *)(void *)entry->lpOverlapped;
        DWORD moved = 0, flags = 0;
        BOOL ok = WSAGetOverlappedResult(accept_listener, &slot->ov, &moved, FALSE, &flags);
        accept_completed(slot, ok, now);
        accept_refill(now);
        return 1;
    }
    case HANDOFF_KEY:
        conn_adopt(lp, (Conn *)(void *)entry->lpOverlapped, now);
        return 1;
    case REARM_KEY:
        accept_refill(now);
        return 1;
    case RESUME_KEY:
        conn_resumed(lp, (Conn *)(void *)entry->lpOverlapped, now);
        return 1;
    default:
        conn_completed(lp, (struct overlapped_op *)(void *)entry->lpOverlapped, now);
        return 1;
    }
}

static int loop_run(struct loop *lp)
{
    OVERLAPPED_ENTRY entries[COMPLETION_BATCH];
    uint64_t now = now_ms();
    int stopping = 0;
    for (;;) {
        int count, i;
        size_t budget;
        Conn *due;
        int timeout = timers_timeout(&lp->timers, now);
        if (lp->index == 0 && accept_resume_ms != 0) {
            int until_resume = accept_resume_ms > now ? (int)(accept_resume_ms - now) : 0;
            timeout = timeout < 0 || until_resume < timeout ? until_resume : timeout;
        }
        count = take_completions(lp->port, entries, timeout);
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
        if (lp->index == 0 && accept_resume_ms != 0 && now >= accept_resume_ms) {
            accept_refill(now);
        }
        budget = lp->timers.len;
        while (budget-- > 0 && (due = timers_next_due(&lp->timers, now)) != NULL) {
            conn_expire(due, now);
            conn_drive(lp, due, now);
        }
    }
}

/* Stopping: every connection is ended and its requests cancelled; completions are taken
 * until none is left (at most DRAIN_MS), then what remains is freed. */
static void loop_drain(struct loop *lp)
{
    OVERLAPPED_ENTRY entries[COMPLETION_BATCH];
    uint64_t until = now_ms() + DRAIN_MS;
    Conn *c, *next;
    int i, waiting;
    if (lp->index == 0) {
        accepting = 0;
    }
    for (c = lp->all; c != NULL; c = next) {
        next = c->next;
        conn_end(c, {{ v.upper }}_CLOSE_STOPPING, 0);
        (void)conn_retire(lp, c);
    }
    if (lp->index == 0) {
        (void)CancelIoEx((HANDLE)accept_listener, NULL);
    }
    for (;;) {
        int count, n;
        uint64_t now = now_ms();
        waiting = lp->all != NULL;
        for (i = 0; lp->index == 0 && i < ACCEPTS_OUTSTANDING; i++) {
            waiting |= accept_slots[i].pending;
        }
        if (!waiting || now >= until) {
            break;
        }
        count = take_completions(lp->port, entries, (int)(until - now));
        if (count <= 0) {
            break;
        }
        for (n = 0; n < count; n++) {
            if (entries[n].lpCompletionKey == ACCEPT_KEY) {
                struct accept_slot *slot = (struct accept_slot *)(void *)entries[n].lpOverlapped;
                slot->pending = 0;
            } else if (entries[n].lpCompletionKey == CONN_KEY) {
                conn_request_drained(lp, (struct overlapped_op *)(void *)entries[n].lpOverlapped);
            } else if (entries[n].lpCompletionKey == RESUME_KEY) {
                conn_resume_drained(lp, (Conn *)(void *)entries[n].lpOverlapped);
            } else if (entries[n].lpCompletionKey == HANDOFF_KEY) {
                c = (Conn *)(void *)entries[n].lpOverlapped;
                c->opened = 0; /* never opened here: no on_close owed */
                conn_release(c);
                free(c);
            }
        }
    }
    /* Requests still outstanding after DRAIN_MS are left to the process's exit, with the
     * memory they may use; their connections still get on_close. */
    for (c = lp->all; c != NULL; c = c->next) {
        conn_abandon(c);
    }
    for (i = 0; lp->index == 0 && i < ACCEPTS_OUTSTANDING; i++) {
        if (!accept_slots[i].pending && accept_slots[i].socket != INVALID_SOCKET) {
            closesocket(accept_slots[i].socket);
            accept_slots[i].socket = INVALID_SOCKET;
        }
    }
}

/* Worker 0 sets up accepting: the listener on its port and AcceptEx found. */
static int accept_setup(SOCKET listener, HANDLE port)
{
    GUID guid = WSAID_ACCEPTEX;
    DWORD returned = 0;
    WSAPROTOCOL_INFOW info;
    int info_len = (int)sizeof info;
    int i;
    accept_listener = listener;
    if (getsockopt(listener, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&info, &info_len) != 0) {
        log_socket_error("getsockopt SO_PROTOCOL_INFOW");
        return -1;
    }
    accept_family = info.iAddressFamily;
    skip_port_on_success = (info.dwServiceFlags1 & XP1_IFS_HANDLES) != 0;
    if (WSAIoctl(listener, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, (DWORD)sizeof guid,
                 &accept_ex, (DWORD)sizeof accept_ex, &returned, NULL, NULL) != 0) {
        log_socket_error("WSAIoctl AcceptEx");
        return -1;
    }
    if (CreateIoCompletionPort((HANDLE)listener, port, ACCEPT_KEY, 0) == NULL) {
        log_wsa_error("CreateIoCompletionPort (listener)", (int)GetLastError());
        return -1;
    }
    for (i = 0; i < ACCEPTS_OUTSTANDING; i++) {
        accept_slots[i].socket = INVALID_SOCKET;
    }
    return 0;
}

/* One worker: its completion port, its connections, its timers. */
static int loop_main(SOCKET listener, unsigned index)
{
    struct loop *lp = &loops[index];
    int status = -1;
    int started = 0;
    lp->index = index;
    lp->port = worker_ports[index];
    if (lp->port != NULL && timers_init(&lp->timers) == 0
        && (index != 0 || accept_setup(listener, lp->port) == 0)) {
        started = worker_begin(&lp->worker, index);
        if (started) {
            if (index == 0) {
                accept_refill(now_ms());
            }
            status = loop_run(lp);
        }
        loop_drain(lp);
        if (started) {
            {{ v.name }}_on_worker_stop(&lp->worker);
        }
    }
    free(lp->timers.items);
    chunk_cache_drain(&lp->chunks);
    return status;
}
{%- else %}
{{ v.runtime_close }}
{% include "winsock/udp_iocp.c" %}
{%- endif %}

/* Completion ports exist before any worker starts, so a stop or a hand-off always has
 * somewhere to go. */
static int ports_create(void)
{
    unsigned i;
    for (i = 0; i < {{ v.upper }}_WORKERS; i++) {
        {%- if v.tcp %}
        worker_ports[i] = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
        {%- else %}
        worker_ports[i] = i == 0 ? CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0,
                                                          {{ v.upper }}_WORKERS)
                                 : worker_ports[0];
        {%- endif %}
        if (worker_ports[i] == NULL) {
            log_wsa_error("CreateIoCompletionPort", (int)GetLastError());
            return -1;
        }
    }
    return 0;
}
{% include "winsock/main.c" %}
