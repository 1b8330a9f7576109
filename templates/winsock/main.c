
/* ---------------------------------------------------------------------------------------------
 * main: start Winsock, bind the socket every worker shares, print the ready line, run the
 * loops, stop on a console control event.
 */

struct worker {
    HANDLE thread;
    SOCKET listener;
    unsigned index;
    int status;
};

static SRWLOCK startup_lock = SRWLOCK_INIT;
static CONDITION_VARIABLE startup_all_in = CONDITION_VARIABLE_INIT;
static unsigned startup_arrived;
static int startup_failed;
static unsigned char startup_passed[{{ v.upper }}_WORKERS]; /* worker i has arrived */
static struct sockaddr_storage ready_address;

/* Counts n workers in (absent ones arrive as failed) and wakes everyone once all are in. */
static void startup_arrive(unsigned n, int ok)
{
    startup_failed |= !ok;
    startup_arrived += n;
    if (startup_arrived >= {{ v.upper }}_WORKERS) {
        if (!startup_failed) {
            print_ready(&ready_address);
        }
        WakeAllConditionVariable(&startup_all_in);
    }
}

static int startup_ready(unsigned index, int ok)
{
    int go;
    AcquireSRWLockExclusive(&startup_lock);
    startup_passed[index] = 1;
    startup_arrive(1, ok);
    while (startup_arrived < {{ v.upper }}_WORKERS) {
        SleepConditionVariableSRW(&startup_all_in, &startup_lock, INFINITE, 0);
    }
    go = !startup_failed;
    ReleaseSRWLockExclusive(&startup_lock);
    return go;
}

/* Runs one worker's loop; a loop that failed while setting up still checks in, as failed,
 * so the others do not wait for it. */
static int worker_serve(SOCKET listener, unsigned index)
{
    int status = loop_main(listener, index);
    int passed;
    AcquireSRWLockExclusive(&startup_lock);
    passed = startup_passed[index];
    ReleaseSRWLockExclusive(&startup_lock);
    if (!passed) {
        startup_ready(index, 0);
    }
    if (status != 0) {
        request_stop(); /* one failed loop stops the server rather than leaving it half up */
    }
    return status;
}

static unsigned __stdcall worker_main(void *arg)
{
    struct worker *w = arg;
    w->status = worker_serve(w->listener, w->index);
    return 0;
}

int main(int argc, char **argv)
{
    struct worker workers[{{ v.upper }}_WORKERS];
    WSADATA wsa;
    SOCKET listener;
    unsigned i, started = 1;
    int status;

    if (parse_args(argc, argv, &command_line) != 0) {
        return 2;
    }
    status = WSAStartup(MAKEWORD(2, 2), &wsa);
    if (status != 0) {
        log_wsa_error("WSAStartup", status);
        return 1;
    }
    if (install_stop_handler() != 0{% if v.uses_iocp %} || ports_create() != 0{% endif %}) {
        WSACleanup();
        return 1;
    }
    listener = open_listener(command_line.address, command_line.port, &ready_address);
    if (listener == INVALID_SOCKET) {
        WSACleanup();
        return 1;
    }
    memset(workers, 0, sizeof workers);
    for (i = 0; i < {{ v.upper }}_WORKERS; i++) {
        workers[i].index = i;
        workers[i].listener = listener;
    }
    for (; started < {{ v.upper }}_WORKERS; started++) {
        uintptr_t thread = _beginthreadex(NULL, 0, worker_main, &workers[started], 0, NULL);
        if (thread == 0) {
            fprintf(stderr, "%s: cannot start worker %u: %s\n", {{ v.name }}_program, started,
                    strerror(errno));
            break;
        }
        workers[started].thread = (HANDLE)thread;
    }
    if (started < {{ v.upper }}_WORKERS) {
        /* Not every worker runs: the missing ones check in as failed, so no ready line. */
        AcquireSRWLockExclusive(&startup_lock);
        startup_arrive({{ v.upper }}_WORKERS - started, 0);
        ReleaseSRWLockExclusive(&startup_lock);
    }

    status = worker_serve(listener, 0);
    for (i = 1; i < started; i++) {
        WaitForSingleObject(workers[i].thread, INFINITE);
        CloseHandle(workers[i].thread);
        status |= workers[i].status;
    }
    closesocket(listener);
    fflush(stdout);
    fflush(stderr);
    SetEvent(stopped_event);
    WSACleanup();
    return status == 0 ? 0 : 1;
}
