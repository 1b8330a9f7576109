
/* ---------------------------------------------------------------------------------------------
 * The ring: one per worker, used only by that worker's thread. Set up with the fastest flags
 * the kernel takes (SINGLE_ISSUER + DEFER_TASKRUN: completions are posted only when the loop
 * asks for them, with no interrupting task work; else COOP_TASKRUN; else none), its descriptor
 * registered so io_uring_enter skips a file lookup, and a provided-buffer ring that multishot
 * receives fill: a buffer is used only from the moment data arrives until the handler has seen
 * it, so RING_BUFFERS buffers serve any number of connections.
 */

#define RING_ENTRIES 4096u /* submission queue; the completion queue is four times larger */
#define RING_BUFFER_GROUP 0

/* What a completion belongs to, kept in the low bits of user_data; the rest is the pointer of
 * the connection it concerns (allocations are aligned to at least 8 bytes). */
enum ring_op { OP_RECV = 1, OP_SEND, OP_CANCEL, {% if v.client %}OP_CONNECT, OP_CONNECT_TIMEOUT, {% else %}OP_ACCEPT, {% endif %}OP_STOP };
#define RING_OP_MASK 7u

struct ring {
    struct io_uring uring;
    struct io_uring_buf_ring *provided; /* the buffer ring the kernel takes buffers from */
    unsigned char *buffers;             /* RING_BUFFERS buffers of RING_BUFFER_SIZE bytes,
                                         * RING_BUFFER_STRIDE apart */
    unsigned returned;                  /* buffers given back since the kernel last saw the tail */
    unsigned inflight;                  /* requests whose last completion has not come yet */
};

static uint64_t ring_tag(const void *owner, enum ring_op op)
{
    return (uint64_t)(uintptr_t)owner | (uint64_t)op;
}

static enum ring_op ring_tag_op(uint64_t tag)
{
    return (enum ring_op)(tag & RING_OP_MASK);
}

static void *ring_tag_owner(uint64_t tag)
{
    return (void *)(uintptr_t)(tag & ~(uint64_t)RING_OP_MASK);
}

/* Says once, whatever the number of workers, why this program cannot run here. */
static void ring_unavailable(const char *what, int error)
{
    static atomic_flag said = ATOMIC_FLAG_INIT;
    const char *cause = error == ENOSYS ? "this kernel has no io_uring"
                      : error == EPERM || error == EACCES
                          ? "io_uring is refused here (a seccomp profile, as in many containers, "
                            "or the kernel.io_uring_disabled sysctl)"
                      : error == EINVAL
                          ? "this kernel's io_uring lacks what this {% if v.client %}client{% else %}server{% endif %} uses "
                            "(Linux 6.0 or later)"
                      : "io_uring could not be set up";
    if (!atomic_flag_test_and_set(&said)) {
        fprintf(stderr, "%s: %s: %s: %s; render the spec with --model epoll to run without it\n",
                {{ v.name }}_program, cause, what, strerror(error));
    }
}

/* The kernel may take buffers given back so far (one store, however many there were). */
static void ring_give_back(struct ring *r)
{
    if (r->returned > 0) {
        io_uring_buf_ring_advance(r->provided, (int)r->returned);
        r->returned = 0;
    }
}

/* Buffers start 16-byte aligned, whatever io.buffer_size: a datagram's buffer begins with an
 * io_uring_recvmsg_out, whose fields must be aligned. The kernel is told RING_BUFFER_SIZE, so
 * a datagram one byte longer than io.buffer_size is still truncated, and seen to be. */
#define RING_BUFFER_STRIDE ((RING_BUFFER_SIZE + 15u) & ~(size_t)15u)

static unsigned char *ring_buffer(struct ring *r, unsigned id)
{
    return r->buffers + (size_t)id * RING_BUFFER_STRIDE;
}

static void ring_return_buffer(struct ring *r, unsigned id)
{
    io_uring_buf_ring_add(r->provided, ring_buffer(r, id), RING_BUFFER_SIZE, (unsigned short)id,
                          io_uring_buf_ring_mask(RING_BUFFERS), (int)r->returned);
    r->returned++;
}

/* A free submission entry; a full queue is submitted first. NULL only if the kernel refuses
 * that submission. */
static struct io_uring_sqe *ring_sqe(struct ring *r)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);
    if (sqe == NULL) {
        ring_give_back(r); /* receives submitted now must find the buffers given back */
        if (io_uring_submit(&r->uring) < 0) {
            return NULL;
        }
        sqe = io_uring_get_sqe(&r->uring);
    }
    if (sqe != NULL) {
        r->inflight++;
    }
    return sqe;
}

/* A completion was taken: its request is over unless more completions will follow. */
static void ring_seen(struct ring *r, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE) && r->inflight > 0) {
        r->inflight--;
    }
}

/* Waits up to `timeout_ms` (-1: no limit) for a completion, submitting what is queued. */
static int ring_wait(struct ring *r, int timeout_ms)
{
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts;
    int rc;
    ring_give_back(r);
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
    rc = io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1, timeout_ms >= 0 ? &ts : NULL, NULL);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
        errno = -rc;
        return -1;
    }
    return 0;
}

/* Start-up check that multishot receive into provided buffers works (Linux 6.0), on a
 * socket pair: one byte must arrive in a buffer with more to come, then EOF ends it. */
static int ring_check_multishot(struct ring *r)
{
    int pair[2];
    int got_byte = 0, got_eof = 0, error = 0;
    struct io_uring_sqe *sqe;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        log_errno("socketpair");
        return -1;
    }
    sqe = io_uring_get_sqe(&r->uring);
    io_uring_prep_recv_multishot(sqe, pair[0], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RING_BUFFER_GROUP;
    io_uring_sqe_set_data64(sqe, 0);
    if (write(pair[1], "x", 1) != 1) {
        error = errno;
    }
    close(pair[1]);
    while (error == 0 && !got_eof) {
        struct io_uring_cqe *cqe;
        int rc = io_uring_submit_and_wait(&r->uring, 1);
        if (rc < 0 && rc != -EINTR) {
            error = -rc;
            break;
        }
        while (io_uring_peek_cqe(&r->uring, &cqe) == 0) {
            if (cqe->flags & IORING_CQE_F_BUFFER) {
                ring_return_buffer(r, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
            }
            if (cqe->res == 1 && (cqe->flags & IORING_CQE_F_MORE)) {
                got_byte = 1;
            } else if (cqe->res == 0 && got_byte) {
                got_eof = 1;
            } else {
                error = cqe->res < 0 ? -cqe->res : EINVAL;
            }
            io_uring_cqe_seen(&r->uring, cqe);
        }
    }
    ring_give_back(r);
    close(pair[0]);
    if (error != 0) {
        ring_unavailable("multishot receive", error);
        return -1;
    }
    return 0;
}

/* Cancels every request and waits (a second at most) for their last completions, so the
 * kernel is done with the buffers, connections and replies before they are freed: closing the
 * ring alone would leave their cancellation to run after close() has returned. */
static void ring_drain(struct ring *r)
{
    uint64_t deadline = now_ms() + 1000;
    struct io_uring_sqe *sqe = ring_sqe(r);
    if (sqe != NULL) {
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data64(sqe, 0);
    }
    while (r->inflight > 0 && now_ms() < deadline) {
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        if (ring_wait(r, 100) != 0) {
            break;
        }
        io_uring_for_each_cqe(&r->uring, head, cqe) {
            ring_seen(r, cqe);
            seen++;
        }
        io_uring_cq_advance(&r->uring, seen);
    }
}

/* Closes the ring. Returns 1 when the kernel is done with every request, so the memory they
 * used may be freed; 0 when some outlived the drain: the kernel may still touch their memory
 * after the ring's close returns, so it is left to the process's exit, never freed. */
static int ring_close(struct ring *r)
{
    int done;
    if (r->inflight > 0) {
        ring_drain(r);
    }
    done = r->inflight == 0;
    io_uring_queue_exit(&r->uring);
    if (done) {
        if (r->provided != NULL) {
            munmap(r->provided, RING_BUFFERS * sizeof(struct io_uring_buf));
        }
        free(r->buffers);
    }
    return done;
}

/* Where in the list of ring setups to start: SOCKGEN_IO_URING_SETUP=coop or =plain skips the
 * faster ones, so the fallbacks a kernel older than this one would take can be run (and
 * proven) here; unset or =defer tries the fastest first. -1 for a value it does not know. */
static int ring_first_setup(void)
{
    static const char *const names[] = { "defer", "coop", "plain" };
    const char *choice = getenv("SOCKGEN_IO_URING_SETUP");
    int i;
    if (choice == NULL || choice[0] == '\0') {
        return 0;
    }
    for (i = 0; i < 3; i++) {
        if (strcmp(choice, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static int ring_open(struct ring *r)
{
    static const unsigned flag_sets[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    static atomic_flag said = ATOMIC_FLAG_INIT;
    struct io_uring_buf_reg reg;
    int first = ring_first_setup();
    size_t i;
    int rc = -EINVAL;
    memset(r, 0, sizeof *r);
    if (first < 0) {
        if (!atomic_flag_test_and_set(&said)) {
            fprintf(stderr, "%s: SOCKGEN_IO_URING_SETUP must be defer, coop or plain\n",
                    {{ v.name }}_program);
        }
        return -1;
    }
    for (i = (size_t)first; i < sizeof flag_sets / sizeof flag_sets[0] && rc == -EINVAL; i++) {
        struct io_uring_params params;
        memset(&params, 0, sizeof params);
        params.flags = flag_sets[i] | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
        params.cq_entries = 4 * RING_ENTRIES;
        rc = io_uring_queue_init_params(RING_ENTRIES, &r->uring, &params);
        OP_LOG("io_uring_setup", -1, " flags=0x%x result=%s", params.flags,
               rc < 0 ? errno_name(-rc) : "ok");
    }
    if (rc < 0) {
        ring_unavailable("io_uring_setup", -rc);
        return -1;
    }
    (void)io_uring_register_ring_fd(&r->uring); /* an optimisation: fine without it */
    r->provided = mmap(NULL, RING_BUFFERS * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    r->buffers = malloc((size_t)RING_BUFFERS * RING_BUFFER_STRIDE);
    if (r->provided == MAP_FAILED || r->buffers == NULL) {
        log_errno("buffer ring");
        if (r->provided == MAP_FAILED) {
            r->provided = NULL;
        }
        ring_close(r);
        return -1;
    }
    /* The kernel cycles through every buffer within the first RING_BUFFERS receives: touch
     * them now, so their memory is resident from the start (no page faults while serving, and
     * a steady resident size) rather than growing in the first seconds of traffic. */
    for (i = 0; i < (size_t)RING_BUFFERS * RING_BUFFER_STRIDE; i += 4096) {
        ((volatile unsigned char *)r->buffers)[i] = 0;
    }
    io_uring_buf_ring_init(r->provided);
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)r->provided;
    reg.ring_entries = RING_BUFFERS;
    reg.bgid = RING_BUFFER_GROUP;
    rc = io_uring_register_buf_ring(&r->uring, &reg, 0);
    if (rc < 0) {
        ring_unavailable("io_uring_register_buf_ring", -rc);
        ring_close(r);
        return -1;
    }
    for (i = 0; i < RING_BUFFERS; i++) {
        ring_return_buffer(r, (unsigned)i);
    }
    ring_give_back(r);
    if (ring_check_multishot(r) != 0) {
        ring_close(r);
        return -1;
    }
    return 0;
}
{%- if v.tcp || v.client %}

/* A request for this connection could not be queued (the kernel refused a submission). */
static void loop_ring_full(Conn *c)
{
    static shared_counter refused;
    log_shared_occurrence("io_uring refused a submission: connection closed", &refused);
    conn_end(c, {{ v.upper }}_CLOSE_ERROR, EBUSY);
}
{%- endif %}
