{{ v.runtime_close }}

/* The client's run as the command line set it (the spec's values by default). */
struct {{ v.name }}_options {
    const char *host;       /* -a */
    int port;               /* -p */
    unsigned connections;   /* -c: the pool's size */
{%- if v.handler == Handler::EchoCheck %}
    unsigned messages;      /* -n: per connection */
{%- endif %}
{%- if v.handler == Handler::Load %}
    uint32_t duration_ms;   /* -d: how long the load runs */
{%- endif %}
};

/* set from the command line before anything runs */
static struct {{ v.name }}_options client_options;
{{ v.runtime_open }}
static inline const struct {{ v.name }}_options *{{ v.name }}_options(void);
/* The protocol failed: prints "NAME: connection ID (PEER): <message>" on stderr, resets the
 * connection (also from on_close, where it only reports) and makes the program exit 1. A
 * failed connection is not retried; the others carry on. */
static inline void {{ v.name }}_fail(struct {{ v.name }}_conn *c, const char *format, ...){% if !v.windows %}
    __attribute__((format(printf, 2, 3))){% endif %};
/* The run failed for a reason no one connection owns (say, in on_worker_stop): prints
 * "NAME: <message>" on stderr and makes the program exit 1. */
static inline void {{ v.name }}_fail_run(const char *format, ...){% if !v.windows %}
    __attribute__((format(printf, 1, 2))){% endif %};
