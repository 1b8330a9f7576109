static void {{ v.name }}_on_worker_start(struct {{ v.name }}_worker *w, unsigned index)
{
    (void)index;
    memset(w, 0, sizeof *w);
    w->start_ns = {{ v.name }}_now_ns();
}

static void {{ v.name }}_on_worker_stop(struct {{ v.name }}_worker *w)
{
    const struct {{ v.name }}_options *o = {{ v.name }}_options();
    printf("echo-check: %u of %u connections, %llu of %llu messages, %llu bytes echoed "
           "byte-exact in %llu ms",
           w->connections_done, o->connections, w->messages_checked,
           (unsigned long long)o->connections * o->messages, w->bytes_checked,
           (unsigned long long)(({{ v.name }}_now_ns() - w->start_ns) / 1000000u));
    if (w->connections_cut > 0) {
        printf("; connection attempts that ended early: %u, with %llu messages checked",
               w->connections_cut, w->messages_cut);
    }
    printf("\n");
    fflush(stdout);
    /* Also when a stop came while a connection was backing off: it never checked its messages. */
    if (w->connections_done < o->connections) {
        {{ v.name }}_fail_run("echo-check failed: %u of %u connections did not check every "
        {{ v.name_blank() }}          "message",
        {{ v.name_blank() }}          o->connections - w->connections_done, o->connections);
    }
}
