static void {{ v.name }}_on_worker_start(struct {{ v.name }}_worker *w, unsigned index)
{
    (void)index;
    memset(w, 0, sizeof *w);
    w->start_ns = {{ v.name }}_now_ns();
}

static void {{ v.name }}_on_worker_stop(struct {{ v.name }}_worker *w)
{
    double seconds = (double)({{ v.name }}_now_ns() - w->start_ns) / 1e9;
    printf("load: %u connections, %u-byte messages, %llu round trips in %.2f s: %.0f msgs/s, "
           "%.1f MB/s; latency p50 %.0f us, p90 %.0f us, p99 %.0f us, max %.0f us\n",
           {{ v.name }}_options()->connections, (unsigned){{ v.name }}_sizes[0], w->messages,
           seconds, seconds > 0 ? (double)w->messages / seconds : 0.0,
           seconds > 0 ? (double)w->bytes / seconds / 1e6 : 0.0,
           {{ v.name }}_percentile_us(w, 0.50), {{ v.name }}_percentile_us(w, 0.90),
           {{ v.name }}_percentile_us(w, 0.99), (double)w->latency_ns_max / 1000.0);
    fflush(stdout);
}
