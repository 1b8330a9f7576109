
/* ---------------------------------------------------------------------------------------------
 * The datagram being answered: the sender and the reply the handler builds for it.
 */

struct {{ v.name }}_conn {
    struct {{ v.name }}_info info;
    int info_text_ready;     /* info.peer_text is filled in for this datagram */
    socklen_t peer_len;
    unsigned char *reply;
    size_t reply_len;
    int has_reply;
};

typedef struct {{ v.name }}_conn Conn;

static inline const struct {{ v.name }}_info *{{ v.name }}_info(Conn *c)
{
    if (!c->info_text_ready) {
        /* Formatted on first use: most handlers never ask, and receiving stays cheap. */
        format_address(&c->info.peer, c->info.peer_text, sizeof c->info.peer_text);
        c->info_text_ready = 1;
    }
    return &c->info;
}

static inline int {{ v.name }}_write(Conn *c, const void *data, size_t len)
{
    if (len > {{ v.upper }}_OUTPUT_BUFFER - c->reply_len) {
        return -1;
    }
    if (len > 0) {
        memcpy(c->reply + c->reply_len, data, len);
        c->reply_len += len;
    }
    c->has_reply = 1;
    return 0;
}

static inline int {{ v.name }}_printf(Conn *c, const char *format, ...)
{
    size_t room = {{ v.upper }}_OUTPUT_BUFFER - c->reply_len;
    va_list args;
    int needed;
    va_start(args, format);
    needed = vsnprintf((char *)c->reply + c->reply_len, room, format, args);
    va_end(args);
    if (needed < 0 || (size_t)needed >= room) {
        return -1; /* too long: nothing is appended (the NUL vsnprintf left is past reply_len) */
    }
    c->reply_len += (size_t)needed;
    c->has_reply = 1;
    return 0;
}

/* Prepares the context for a datagram just received from c->info.peer. */
static void dgram_begin(Conn *c)
{
    c->info.id++;
    c->info_text_ready = 0;
    c->reply_len = 0;
    c->has_reply = 0;
}
