/* Bucket of a value: its power of two, then the five bits below the top one. */
static unsigned {{ v.name }}_bucket(uint64_t ns)
{
    unsigned top;
    if (ns < {{ v.upper }}_SUB_BUCKETS) {
        return (unsigned)ns;
    }
{%- if v.windows %}
    for (top = 63u; (ns >> top) == 0; top--) {
        /* the highest bit set (no GCC builtins: MSVC builds this too) */
    }
{%- else %}
    top = 63u - (unsigned)__builtin_clzll(ns);
{%- endif %}
    return (top - 4u) * {{ v.upper }}_SUB_BUCKETS
           + (unsigned)((ns >> (top - 5u)) & ({{ v.upper }}_SUB_BUCKETS - 1));
}

/* The largest value bucket b holds: percentiles are reported as upper bounds. */
static uint64_t {{ v.name }}_bucket_top(unsigned b)
{
    unsigned group = b / {{ v.upper }}_SUB_BUCKETS, sub = b % {{ v.upper }}_SUB_BUCKETS;
    if (group == 0) {
        return sub;
    }
    return ((uint64_t)({{ v.upper }}_SUB_BUCKETS + sub + 1) << (group - 1u)) - 1u;
}

static double {{ v.name }}_percentile_us(const struct {{ v.name }}_worker *w, double fraction)
{
    unsigned long long want = (unsigned long long)(fraction * (double)w->messages + 0.999999);
    unsigned long long seen = 0;
    unsigned b;
    for (b = 0; b < 64 * {{ v.upper }}_SUB_BUCKETS; b++) {
        seen += w->histogram[b];
        if (seen >= want && seen > 0) {
            uint64_t top = {{ v.name }}_bucket_top(b);
            return (double)(top < w->latency_ns_max ? top : w->latency_ns_max) / 1000.0;
        }
    }
    return (double)w->latency_ns_max / 1000.0;
}
