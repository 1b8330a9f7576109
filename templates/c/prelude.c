#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
{%- if v.model == "epoll" %}
#include <sys/epoll.h>
{%- endif %}

/* Settings from the spec (change the spec and regenerate, rather than these). */
#define {{ v.upper }}_ADDRESS "{{ v.address }}"
#define {{ v.upper }}_PORT {{ v.port }}
#define {{ v.upper }}_BUFFER_SIZE {{ v.buffer_size }}u  /* bytes per receive call */
#define {{ v.upper }}_OUTPUT_BUFFER {{ v.output_buffer }}u  /* per-{{ v.unit }} output queue */
{%- if v.tcp %}
#define {{ v.upper }}_BACKLOG {{ v.backlog }}
#define {{ v.upper }}_MAX_CONNECTIONS {{ v.max_connections }}u
#define {{ v.upper }}_IDLE_TIMEOUT_MS {{ v.idle_timeout_ms }}u  /* 0 = never */
{%- endif %}
#define {{ v.upper }}_WORKERS {{ v.workers }}u  /* event loops, one thread each */
{%- if v.model == "epoll" %}
#define {{ v.upper }}_MAX_EVENTS {{ v.max_events }}  /* events taken per epoll_wait */
{%- endif %}

/* What a handler callback returns. */
enum { {{ v.upper }}_KEEP = 0, {{ v.upper }}_CLOSE = 1 };

/*
 * Output queued for the peer. Handlers append with {{ v.name }}_out_write(); the event loop
 * sends it.{% if v.tcp %} The loop only reads while {{ v.upper }}_BUFFER_SIZE bytes fit, so a handler
 * can always queue as many bytes as it was given.{% else %} For UDP it is the reply datagram to
 * the sender: write nothing to send no reply, or zero bytes to send an empty datagram.{% endif %}
 */
struct {{ v.name }}_out {
    unsigned char *buf;
    size_t len;
    size_t cap;
    int has_reply;
};

static inline size_t {{ v.name }}_out_room(const struct {{ v.name }}_out *out)
{
    return out->cap - out->len;
}

/* Queues len bytes; returns 0, or -1 with nothing queued when they do not fit. */
static inline int {{ v.name }}_out_write(struct {{ v.name }}_out *out, const void *data, size_t len)
{
    if (len > {{ v.name }}_out_room(out)) {
        return -1;
    }
    if (len > 0) {
        memcpy(out->buf + out->len, data, len);
        out->len += len;
    }
    out->has_reply = 1;
    return 0;
}
