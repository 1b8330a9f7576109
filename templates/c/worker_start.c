
/* Workers whose on_worker_start called {{ v.name }}_worker_start_failed: each slot is written
 * and read by its own worker's thread only. */
static unsigned char worker_start_failures[{% if v.client %}1{% else %}{{ v.upper }}_WORKERS{% endif %}];

static inline void {{ v.name }}_worker_start_failed(unsigned index, const char *format, ...)
{
    char message[512];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    fprintf(stderr, "%s: worker %u: %s\n", {{ v.name }}_program, index, message);
    if (index < sizeof worker_start_failures) {
        worker_start_failures[index] = 1;
    }
}

/* Runs on_worker_start: 1 when it went well, 0 when it called worker_start_failed. */
static int worker_start(struct {{ v.name }}_worker *w, unsigned index)
{
    {{ v.name }}_on_worker_start(w, index);
    return !worker_start_failures[index];
}
{%- if !v.client && !(v.readiness && !v.tcp && !v.windows) %}

/* Starts the worker's handler state, then checks in: 1 when every worker is up and this one's
 * loop may run; 0 when this or another worker could not start (a worker that did start has
 * then run on_worker_stop, and its loop must end). */
static int worker_begin(struct {{ v.name }}_worker *w, unsigned index)
{
    int started = worker_start(w, index);
    if (startup_ready({% if v.windows %}index, {% endif %}started)) {
        return 1;
    }
    if (started) {
        {{ v.name }}_on_worker_stop(w);
    }
    return 0;
}
{%- endif %}
