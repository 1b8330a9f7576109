{%- if !v.tcp && !v.client %}

/* Logs the 1st, 2nd, 4th, 8th... occurrence, so a hostile peer cannot flood the log. */
static void log_occurrence(const char *what, unsigned long long *count)
{
    *count += 1;
    if ((*count & (*count - 1)) == 0) {
        fprintf(stderr, "%s: %s (%llu so far)\n", {{ v.name }}_program, what, *count);
    }
}
{%- else %}

/* Logs the 1st, 2nd, 4th, 8th... occurrence, so a hostile peer cannot flood the log; the
 * count is shared by every worker thread. */
static void log_shared_occurrence(const char *what, shared_counter *count)
{
    unsigned long long seen = shared_counter_next(count);
    if ((seen & (seen - 1)) == 0) {
        fprintf(stderr, "%s: %s (%llu so far)\n", {{ v.name }}_program, what, seen);
    }
}
{%- endif %}
