
/* ---------------------------------------------------------------------------------------------
 * main: bind every worker's socket, print the ready line, run the loops, stop on a signal.
 */

struct worker {
    pthread_t thread;
    int fd;
    unsigned index;
    int status;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    w->status = loop_main(w->fd, w->index);
    if (w->status != 0) {
        request_stop(); /* one failed loop stops the server rather than leaving it half up */
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct {{ v.name }}_config cfg;
    struct sockaddr_storage bound;
    struct worker workers[{{ v.upper }}_WORKERS];
    sigset_t blocked, previous;
    unsigned i, started = 1;
    int status;

    if (open_standard_descriptors() != 0) {
        return 1;
    }
    if (parse_args(argc, argv, &cfg) != 0) {
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
        workers[i].fd = open_listener(cfg.address, i == 0 ? cfg.port : bound_port(&bound), {{ v.listener_nonblocking }}, &bound);
        if (workers[i].fd < 0) {
            while (i > 0) {
                close(workers[--i].fd);
            }
            return 1;
        }
    }
    /* Signals go to the main thread only, so the other workers never see EINTR surprises. */
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &blocked, &previous);
    for (; started < {{ v.upper }}_WORKERS; started++) {
        int rc = pthread_create(&workers[started].thread, NULL, worker_main, &workers[started]);
        if (rc != 0) {
            fprintf(stderr, "%s: cannot start worker %u: %s\n", {{ v.name }}_program, started, strerror(rc));
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (started < {{ v.upper }}_WORKERS) {
        /* Not every worker runs: stop the others and fail before claiming to be ready. */
        request_stop();
        for (i = 1; i < started; i++) {
            pthread_join(workers[i].thread, NULL);
        }
        for (i = 0; i < {{ v.upper }}_WORKERS; i++) {
            close(workers[i].fd);
        }
        return 1;
    }
    print_ready(&bound);

    status = loop_main(workers[0].fd, 0);
    if (status != 0) {
        request_stop();
    }
    for (i = 1; i < started; i++) {
        pthread_join(workers[i].thread, NULL);
        status |= workers[i].status;
    }
    for (i = 0; i < {{ v.upper }}_WORKERS; i++) {
        close(workers[i].fd);
    }
    return status == 0 ? 0 : 1;
}
