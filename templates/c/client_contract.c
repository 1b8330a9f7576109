{%- include "c/options_contract.c" %}
/* The protocol failed: prints "NAME: connection ID (PEER): <message>" on stderr, resets the
 * connection (also from on_close, where it only reports) and makes the program exit 1. A
 * failed connection is not retried; the others carry on. */
static inline void {{ v.name }}_fail(struct {{ v.name }}_conn *c, const char *format, ...){% if !v.windows %}
    __attribute__((format(printf, 2, 3))){% endif %};
/* The run failed for a reason no one connection owns (say, in on_worker_stop): prints
 * "NAME: <message>" on stderr and makes the program exit 1. */
static inline void {{ v.name }}_fail_run(const char *format, ...){% if !v.windows %}
    __attribute__((format(printf, 1, 2))){% endif %};
