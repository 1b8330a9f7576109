
/* ---------------------------------------------------------------------------------------------
 * Deadlines: one binary min-heap per loop holds each connection with a deadline (its timer,
 * idle timeout or lingering close), so finding what is due costs O(log n), not a sweep over
 * every connection. Entries are filed lazily: activity that moves a deadline later does not
 * touch the heap; a connection found early is simply filed again under its real deadline.
 */

struct timer_heap {
    Conn **items;
    size_t len;
};

static int timers_init(struct timer_heap *h)
{
    /* One slot per connection the loop may hold, so filing never needs memory later. */
    h->items = calloc({{ v.upper }}_MAX_CONNECTIONS, sizeof *h->items);
    h->len = 0;
    return h->items == NULL ? -1 : 0;
}

static void timers_place(struct timer_heap *h, size_t i, Conn *c)
{
    h->items[i] = c;
    c->heap_index = i;
}

static void timers_up(struct timer_heap *h, size_t i)
{
    Conn *c = h->items[i];
    while (i > 0 && h->items[(i - 1) / 2]->heap_key > c->heap_key) {
        timers_place(h, i, h->items[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    timers_place(h, i, c);
}

static void timers_down(struct timer_heap *h, size_t i)
{
    Conn *c = h->items[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->len) {
            break;
        }
        if (child + 1 < h->len && h->items[child + 1]->heap_key < h->items[child]->heap_key) {
            child++;
        }
        if (h->items[child]->heap_key >= c->heap_key) {
            break;
        }
        timers_place(h, i, h->items[child]);
        i = child;
    }
    timers_place(h, i, c);
}

static void timers_remove(struct timer_heap *h, Conn *c)
{
    size_t i = c->heap_index;
    if (i == SIZE_MAX) {
        return;
    }
    c->heap_index = SIZE_MAX;
    h->len--;
    if (i < h->len) {
        Conn *moved = h->items[h->len];
        timers_place(h, i, moved);
        timers_up(h, i);
        timers_down(h, moved->heap_index);
    }
}

/* Files the connection under its deadline when that is earlier than where it is filed. */
static void timers_schedule(struct timer_heap *h, Conn *c)
{
    uint64_t at = conn_deadline(c);
    if (c->heap_index == SIZE_MAX) {
        if (at == NO_DEADLINE) {
            return;
        }
        c->heap_key = at;
        timers_place(h, h->len++, c);
        timers_up(h, c->heap_index);
    } else if (at < c->heap_key) {
        c->heap_key = at;
        timers_up(h, c->heap_index);
    }
}

/* Milliseconds until the earliest deadline, for the poll timeout; -1 when there is none. */
static int timers_timeout(const struct timer_heap *h, uint64_t now)
{
    uint64_t at;
    if (h->len == 0) {
        return -1;
    }
    at = h->items[0]->heap_key;
    if (at <= now) {
        return 0;
    }
    return at - now > (uint64_t)INT32_MAX ? INT32_MAX : (int)(at - now);
}

/* The next connection whose deadline has passed, or NULL. Connections found early are filed
 * again under their real deadline on the way. */
static Conn *timers_next_due(struct timer_heap *h, uint64_t now)
{
    while (h->len > 0 && h->items[0]->heap_key <= now) {
        Conn *c = h->items[0];
        uint64_t at = conn_deadline(c);
        if (at <= now) {
            timers_remove(h, c);
            return c;
        }
        timers_remove(h, c);
        if (at != NO_DEADLINE) {
            c->heap_key = at;
            timers_place(h, h->len++, c);
            timers_up(h, c->heap_index);
        }
    }
    return NULL;
}
