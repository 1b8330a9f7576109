
/* ---------------------------------------------------------------------------------------------
 * main: bind every worker's socket, print the ready line, run the loops, stop on a signal.
 */

struct worker {
    pthread_t thread;
    int fd;
    unsigned index;
    int status;
};

static pthread_mutex_t startup_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t startup_all_in = PTHREAD_COND_INITIALIZER;
static unsigned startup_arrived;
static int startup_failed;
static struct sockaddr_storage ready_address;
static _Thread_local int startup_passed; /* this thread has arrived */

/* Counts n workers in (absent ones arrive as failed) and wakes everyone once all are in. */
static void startup_arrive(unsigned n, int ok)
{
    startup_failed |= !ok;
    startup_arrived += n;
    if (startup_arrived >= {{ v.upper }}_WORKERS) {
        if (!startup_failed) {
            print_ready(&ready_address);
        }
        pthread_cond_broadcast(&startup_all_in);
    }
}

static int startup_ready(int ok)
{
    int go;
    startup_passed = 1;
    pthread_mutex_lock(&startup_lock);
    startup_arrive(1, ok);
    while (startup_arrived < {{ v.upper }}_WORKERS) {
        pthread_cond_wait(&startup_all_in, &startup_lock);
    }
    go = !startup_failed;
    pthread_mutex_unlock(&startup_lock);
    return go;
}

/* Runs one worker's loop; a loop that failed while setting up still checks in, as failed,
 * so the others do not wait for it. */
static int worker_serve(int fd, unsigned index)
{
    int status = loop_main(fd, index);
    if (!startup_passed) {
        startup_ready(0);
    }
    if (status != 0) {
        request_stop(); /* one failed loop stops the server rather than leaving it half up */
    }
    return status;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    w->status = worker_serve(w->fd, w->index);
    return NULL;
}

int main(int argc, char **argv)
{
    struct sockaddr_storage bound;
    struct worker workers[{{ v.upper }}_WORKERS];
    sigset_t blocked, previous;
    unsigned i, started = 1;
    int status;

    if (open_standard_descriptors() != 0) {
        return 1;
    }
    if (parse_args(argc, argv, &command_line) != 0) {
        return 2;
    }
    if (install_signal_handlers() != 0) {
        return 1;
    }
{%- if v.tcp %}
    raise_descriptor_limit();
{%- endif %}
    memset(workers, 0, sizeof workers);
    for (i = 0; i < {{ v.upper }}_WORKERS; i++) {
        /* With port 0 the first socket gets a port from the kernel; the others must share it. */
        workers[i].index = i;
        workers[i].fd = open_listener(command_line.address,
                                      i == 0 ? command_line.port : bound_port(&bound),
                                      {{ v.listener_nonblocking }}, &bound);
        if (workers[i].fd < 0) {
            while (i > 0) {
                close(workers[--i].fd);
            }
            return 1;
        }
    }
    ready_address = bound;
    /* Signals go to the main thread only, so the other workers never see EINTR surprises. */
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &blocked, &previous);
    for (; started < {{ v.upper }}_WORKERS; started++) {
        int rc = pthread_create(&workers[started].thread, NULL, worker_main, &workers[started]);
        if (rc != 0) {
            fprintf(stderr, "%s: cannot start worker %u: %s\n", {{ v.name }}_program, started,
                    strerror(rc));
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (started < {{ v.upper }}_WORKERS) {
        /* Not every worker runs: the missing ones check in as failed, so no ready line. */
        pthread_mutex_lock(&startup_lock);
        startup_arrive({{ v.upper }}_WORKERS - started, 0);
        pthread_mutex_unlock(&startup_lock);
    }

    status = worker_serve(workers[0].fd, 0);
    for (i = 1; i < started; i++) {
        pthread_join(workers[i].thread, NULL);
        status |= workers[i].status;
    }
    for (i = 0; i < {{ v.upper }}_WORKERS; i++) {
        close(workers[i].fd);
    }
    return status == 0 ? 0 : 1;
}
