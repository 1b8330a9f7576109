{% include "c/udp_conn.c" %}

/* ---------------------------------------------------------------------------------------------
 * IOCP for datagrams: one completion port serves every worker thread, since datagrams are
 * independent of one another. Each worker keeps DGRAM_SLOTS slots going round: an overlapped
 * WSARecvFrom into the slot's buffer, the handler (with the state of whichever worker took
 * the completion), a WSASendTo of its reply from the slot, then the next receive. A slot's
 * buffers belong to Windows while a request of it is outstanding.
 */

enum { DGRAM_SLOTS = 32 };

struct dgram_slot {
    OVERLAPPED ov;           /* first: a completion's pointer is the slot */
    int sending;             /* the outstanding request is the reply, not a receive */
    int pending;
    volatile LONG idle;      /* its receive could not be posted: a worker posts it again later */
    unsigned char *data;
    Conn ctx;                /* the sender and the reply the handler builds */
};

/* One worker's counts. `received` numbers the datagrams it hands its handler (info.id): a
 * slot's own context would count only that slot's. */
struct dgram_tallies {
    unsigned long long received, truncated, send_errors, recv_errors;
};

static SOCKET dgram_socket = INVALID_SOCKET;
static struct dgram_slot *dgram_slots; /* WORKERS * DGRAM_SLOTS, made before any worker runs */
static volatile LONG dgram_running;   /* workers still in their loop; the last one drains */
static volatile LONG dgram_idle;      /* slots whose receive could not be posted */

/* How long a worker waits before posting idle slots' receives again: a receive refused at once
 * (WSAENOBUFS) must not leave its slot out of the rotation for good, or a worker would go deaf
 * after DGRAM_SLOTS such refusals. */
enum { DGRAM_RETRY_MS = 100 };

/* Posts the slot's receive. Its completion comes through the port in every case but a failure
 * to start: one done at once as well (the socket does not skip the port on success), and one
 * that fails at once with WSAEMSGSIZE too, since a datagram longer than the buffer is a
 * warning (STATUS_BUFFER_OVERFLOW), not a failed request: the completion, whichever worker
 * takes it, handles that datagram. The slot is marked pending first, as another worker may
 * take the completion before the call returns. */
static void dgram_post_receive(struct dgram_slot *slot, struct dgram_tallies *tallies)
{
    WSABUF buf;
    DWORD flags = 0;
    int error;
    buf.buf = (CHAR *)slot->data;
    buf.len = {{ v.upper }}_BUFFER_SIZE;
    memset(&slot->ov, 0, sizeof slot->ov);
    slot->sending = 0;
    slot->pending = 1;
    slot->ctx.peer_len = (int)sizeof slot->ctx.info.peer;
    if (WSARecvFrom(dgram_socket, &buf, 1, NULL, &flags, (struct sockaddr *)&slot->ctx.info.peer,
                    &slot->ctx.peer_len, &slot->ov, NULL) == 0) {
        return;
    }
    error = WSAGetLastError();
    if (error != WSA_IO_PENDING && error != WSAEMSGSIZE) {
        slot->pending = 0;
        log_occurrence("WSARecvFrom failed; posted again later", &tallies->recv_errors);
        InterlockedExchange(&slot->idle, 1);
        InterlockedIncrement(&dgram_idle);
    }
}

/* Posts again every receive that could not be posted; any worker may, and each idle slot is
 * taken by exactly one. */
static void dgram_post_idle(struct dgram_tallies *tallies)
{
    unsigned i;
    for (i = 0; i < {{ v.upper }}_WORKERS * DGRAM_SLOTS && dgram_idle > 0; i++) {
        if (InterlockedCompareExchange(&dgram_slots[i].idle, 0, 1) == 1) {
            InterlockedDecrement(&dgram_idle);
            dgram_post_receive(&dgram_slots[i], tallies);
        }
    }
}

/* A request of the slot completed: a datagram to answer, or a reply sent. */
static void dgram_completed(struct dgram_slot *slot, struct {{ v.name }}_worker *worker,
                            unsigned index, struct dgram_tallies *tallies)
{
    DWORD moved = 0, flags = 0;
    BOOL ok = WSAGetOverlappedResult(dgram_socket, &slot->ov, &moved, FALSE, &flags);
    int error = ok ? 0 : WSAGetLastError();
    slot->pending = 0;
    if (slot->sending) {
        OP_LOG("sendto", dgram_socket, " bytes=%lu result=%s", (unsigned long)moved,
               ok ? "ok" : socket_result_name());
        if (!ok && error != WSA_OPERATION_ABORTED) {
            log_occurrence("WSASendTo failed; reply dropped", &tallies->send_errors);
        }
        dgram_post_receive(slot, tallies);
        return;
    }
    OP_LOG("recvfrom", dgram_socket, " bytes=%lu result=%s", (unsigned long)moved,
           ok ? "ok" : socket_result_name());
    if (!ok) {
        if (error == WSAEMSGSIZE) {
            /* Windows fills the buffer and reports the rest cut off: dropped, not echoed
             * short. */
            log_occurrence("datagram longer than io.buffer_size dropped", &tallies->truncated);
        } else if (error != WSA_OPERATION_ABORTED) {
            log_occurrence("WSARecvFrom failed", &tallies->recv_errors);
        }
        if (error != WSA_OPERATION_ABORTED) {
            dgram_post_receive(slot, tallies);
        }
        return;
    }
    slot->ctx.info.worker = index;
    dgram_begin(&slot->ctx);
    slot->ctx.info.id = ++tallies->received;
    {{ v.name }}_on_message(worker, &slot->ctx, slot->data, (size_t)moved);
    if (slot->ctx.has_reply) {
        WSABUF buf;
        buf.buf = (CHAR *)slot->ctx.reply;
        buf.len = (ULONG)slot->ctx.reply_len;
        memset(&slot->ov, 0, sizeof slot->ov);
        slot->sending = 1;
        slot->pending = 1; /* first: another worker may take the completion before the call
                            * returns */
        if (WSASendTo(dgram_socket, &buf, 1, NULL, 0, (const struct sockaddr *)&slot->ctx.info.peer,
                      slot->ctx.peer_len, &slot->ov, NULL) == 0
            || WSAGetLastError() == WSA_IO_PENDING) {
            return;
        }
        slot->pending = 0;
        log_occurrence("WSASendTo failed; reply dropped", &tallies->send_errors);
    }
    dgram_post_receive(slot, tallies);
}

/* The last worker out cancels what is outstanding and takes the completions (at most
 * DRAIN_MS), so no slot is written after it is freed. */
static void dgram_drain(HANDLE port)
{
    OVERLAPPED_ENTRY entries[COMPLETION_BATCH];
    uint64_t until = now_ms() + DRAIN_MS;
    unsigned slot;
    (void)CancelIoEx((HANDLE)dgram_socket, NULL);
    for (;;) {
        ULONG count = 0, n, i;
        uint64_t now = now_ms();
        int waiting = 0;
        for (i = 0; i < {{ v.upper }}_WORKERS * DGRAM_SLOTS; i++) {
            waiting |= dgram_slots[i].pending;
        }
        if (!waiting) {
            break;
        }
        if (now >= until
            || !GetQueuedCompletionStatusEx(port, entries, COMPLETION_BATCH, &count,
                                            (DWORD)(until - now), FALSE)) {
            return; /* still outstanding: the slots are left to the process's exit */
        }
        for (n = 0; n < count; n++) {
            if (entries[n].lpCompletionKey == DGRAM_KEY) {
                ((struct dgram_slot *)(void *)entries[n].lpOverlapped)->pending = 0;
            }
        }
    }
    for (slot = 0; slot < {{ v.upper }}_WORKERS * DGRAM_SLOTS; slot++) {
        free(dgram_slots[slot].data);
        free(dgram_slots[slot].ctx.reply);
    }
    free(dgram_slots);
    dgram_slots = NULL;
}

/* Every slot's buffers, and the socket on the shared port; worker 0 does it before any other
 * worker passes start-up. */
static int dgram_setup(SOCKET s, HANDLE port)
{
    unsigned i;
    dgram_socket = s;
    dgram_slots = calloc({{ v.upper }}_WORKERS * DGRAM_SLOTS, sizeof *dgram_slots);
    if (dgram_slots == NULL) {
        log_errno("calloc");
        return -1;
    }
    for (i = 0; i < {{ v.upper }}_WORKERS * DGRAM_SLOTS; i++) {
        dgram_slots[i].data = malloc({{ v.upper }}_BUFFER_SIZE);
        dgram_slots[i].ctx.reply = malloc({{ v.upper }}_OUTPUT_BUFFER);
        if (dgram_slots[i].data == NULL || dgram_slots[i].ctx.reply == NULL) {
            log_errno("malloc");
            return -1;
        }
    }
    if (CreateIoCompletionPort((HANDLE)s, port, DGRAM_KEY, 0) == NULL) {
        log_wsa_error("CreateIoCompletionPort (socket)", (int)GetLastError());
        return -1;
    }
    return 0;
}

static int loop_main(SOCKET s, unsigned index)
{
    OVERLAPPED_ENTRY entries[COMPLETION_BATCH];
    struct {{ v.name }}_worker worker;
    struct dgram_tallies tallies;
    HANDLE port = worker_ports[index];
    unsigned i;
    int status = -1;
    memset(&tallies, 0, sizeof tallies);
    if (index == 0 && dgram_setup(s, port) != 0) {
        return -1;
    }
    InterlockedIncrement(&dgram_running);
    if (!worker_begin(&worker, index)) {
        if (InterlockedDecrement(&dgram_running) == 0) {
            dgram_drain(port);
        }
        return -1;
    }
    for (i = 0; i < DGRAM_SLOTS; i++) {
        dgram_post_receive(&dgram_slots[index * DGRAM_SLOTS + i], &tallies);
    }
    for (;;) {
        ULONG count = 0, n;
        DWORD wait = dgram_idle > 0 ? DGRAM_RETRY_MS : INFINITE;
        if (!GetQueuedCompletionStatusEx(port, entries, COMPLETION_BATCH, &count, wait, FALSE)) {
            if (GetLastError() == WAIT_TIMEOUT) {
                dgram_post_idle(&tallies);
                continue;
            }
            log_wsa_error("GetQueuedCompletionStatusEx", (int)GetLastError());
            break;
        }
        for (n = 0; n < count; n++) {
            if (entries[n].lpCompletionKey == STOP_KEY) {
                status = 0; /* the batch may hold another worker's stop: passed on below */
            } else {
                dgram_completed((struct dgram_slot *)(void *)entries[n].lpOverlapped, &worker,
                                index, &tallies);
            }
        }
        if (dgram_idle > 0) {
            dgram_post_idle(&tallies);
        }
        if (status == 0) {
            /* Every leaving worker posts one stop more, so none still waiting goes without. */
            (void)PostQueuedCompletionStatus(port, 0, STOP_KEY, NULL);
            break;
        }
    }
    {{ v.name }}_on_worker_stop(&worker);
    if (InterlockedDecrement(&dgram_running) == 0) {
        dgram_drain(port);
    }
    return status;
}
