{%- if v.thread_per_connection %}

/* Connection threads share their worker's state, so callbacks take the worker's lock: a
 * handler needs no locking of its own, exactly as in the event-loop models. */
static void handler_enter(Conn *c)
{
    worker_mutex_lock(c->worker_lock);
}

static void handler_leave(Conn *c)
{
    worker_mutex_unlock(c->worker_lock);
}
{%- else %}

/* Callbacks run on their worker's thread only: nothing to lock. */
static void handler_enter(Conn *c)
{
    (void)c;
}

static void handler_leave(Conn *c)
{
    (void)c;
}
{%- endif %}

/* ---- the contract's functions ---- */

static inline const struct {{ v.name }}_info *{{ v.name }}_info(Conn *c)
{
    if (!c->info_text_ready) {
        /* Formatted on first use: most connections never ask, and accepting stays cheap. */
        format_address(&c->info.peer, c->info.peer_text, sizeof c->info.peer_text);
        format_address(&c->info.local, c->info.local_text, sizeof c->info.local_text);
        c->info_text_ready = 1;
    }
    return &c->info;
}

static inline struct {{ v.name }}_worker *{{ v.name }}_worker(Conn *c)
{
    return c->worker;
}
