/*
 * resp_kv: a Redis-compatible key-value server, written only against the handler contract.
 * It reads RESP2 arrays of bulk strings (what redis-cli and redis-benchmark send) and inline
 * commands (what a person types into nc), so values are binary-safe. The store is one per
 * worker (workers: 1 here), so it needs no lock; resp_store.c holds it (see `sources`).
 */
#include <ctype.h>

#include "resp_store.h"

enum { RESP_MAX_ARGS = 64 };

struct resp_kv_worker {
    struct kv_store store;
};

struct resp_kv_session {
    unsigned long long commands;
};

struct resp_arg {
    const unsigned char *p;
    size_t len;
};

static void resp_kv_on_worker_start(struct resp_kv_worker *w, unsigned index)
{
    (void)index;
    kv_init(&w->store);
}

static void resp_kv_on_worker_stop(struct resp_kv_worker *w)
{
    kv_free(&w->store);
}

static void resp_kv_on_open(struct resp_kv_session *s, struct resp_kv_conn *c)
{
    (void)c;
    s->commands = 0;
}

/* Reads a decimal number ending in CR LF at data[*pos]; 1 done, 0 incomplete, -1 malformed. */
static int resp_number(const unsigned char *data, size_t len, size_t *pos, long long *value)
{
    size_t i = *pos;
    int negative = 0, digits = 0;
    long long n = 0;
    if (i < len && data[i] == '-') {
        negative = 1;
        i++;
    }
    for (; i < len && isdigit(data[i]); i++, digits++) {
        if (n > 100000000000LL) {
            return -1;
        }
        n = n * 10 + (data[i] - '0');
    }
    if (i + 1 >= len) {
        return digits > 20 ? -1 : 0;
    }
    if (digits == 0 || data[i] != '\r' || data[i + 1] != '\n') {
        return -1;
    }
    *pos = i + 2;
    *value = negative ? -n : n;
    return 1;
}

/* Parses one command. Returns the bytes it spans, 0 when it is not complete yet, or -1 for a
 * protocol error (*error says which). */
static long resp_parse(const unsigned char *data, size_t len, struct resp_arg *args, int *argc, const char **error)
{
    size_t pos = 1;
    long long count, i;
    int rc;
    if (data[0] != '*') {
        /* An inline command: words separated by spaces, ending in LF. */
        const unsigned char *end = memchr(data, '\n', len);
        size_t line_len, at = 0;
        if (end == NULL) {
            return 0;
        }
        line_len = (size_t)(end - data);
        if (line_len > 0 && data[line_len - 1] == '\r') {
            line_len--;
        }
        *argc = 0;
        while (at < line_len) {
            size_t start;
            while (at < line_len && (data[at] == ' ' || data[at] == '\t')) {
                at++;
            }
            start = at;
            while (at < line_len && data[at] != ' ' && data[at] != '\t') {
                at++;
            }
            if (at > start) {
                if (*argc == RESP_MAX_ARGS) {
                    *error = "too many arguments";
                    return -1;
                }
                args[*argc].p = data + start;
                args[*argc].len = at - start;
                (*argc)++;
            }
        }
        return (long)(end - data) + 1;
    }
    rc = resp_number(data, len, &pos, &count);
    if (rc <= 0) {
        *error = "invalid multibulk length";
        return rc;
    }
    if (count < 1 || count > RESP_MAX_ARGS) {
        *error = count < 1 ? "invalid multibulk length" : "too many arguments";
        return -1;
    }
    for (i = 0; i < count; i++) {
        long long arg_len;
        if (pos >= len) {
            return 0;
        }
        if (data[pos] != '$') {
            *error = "expected '$'";
            return -1;
        }
        pos++;
        rc = resp_number(data, len, &pos, &arg_len);
        if (rc <= 0) {
            *error = "invalid bulk length";
            return rc;
        }
        if (arg_len < 0 || (unsigned long long)arg_len > RESP_KV_MAX_MESSAGE) {
            *error = "invalid bulk length";
            return -1;
        }
        if (len - pos < (size_t)arg_len + 2) {
            return 0;
        }
        if (data[pos + (size_t)arg_len] != '\r' || data[pos + (size_t)arg_len + 1] != '\n') {
            *error = "bulk string not ended by CR LF";
            return -1;
        }
        args[i].p = data + pos;
        args[i].len = (size_t)arg_len;
        pos += (size_t)arg_len + 2;
    }
    *argc = (int)count;
    return (long)pos;
}

static int resp_is(const struct resp_arg *arg, const char *word)
{
    size_t i, n = strlen(word);
    if (arg->len != n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (toupper(arg->p[i]) != word[i]) {
            return 0;
        }
    }
    return 1;
}

static void resp_bulk(struct resp_kv_conn *c, const unsigned char *p, size_t len)
{
    resp_kv_printf(c, "$%zu\r\n", len);
    resp_kv_write(c, p, len);
    resp_kv_write(c, "\r\n", 2);
}

static void resp_wrong_arity(struct resp_kv_conn *c, const struct resp_arg *name)
{
    resp_kv_printf(c, "-ERR wrong number of arguments for '%.*s' command\r\n", (int)(name->len > 32 ? 32 : name->len),
                   (const char *)name->p);
}

/* Runs one command; returns 0 after QUIT. */
static int resp_run(struct resp_kv_conn *c, const struct resp_arg *args, int argc)
{
    struct kv_store *store = &resp_kv_worker(c)->store;
    const struct resp_arg *name = &args[0];
    int i;
    if (argc == 0) {
        return 1; /* an empty inline line */
    }
    if (resp_is(name, "PING")) {
        if (argc == 1) {
            resp_kv_write(c, "+PONG\r\n", 7);
        } else if (argc == 2) {
            resp_bulk(c, args[1].p, args[1].len);
        } else {
            resp_wrong_arity(c, name);
        }
    } else if (resp_is(name, "ECHO")) {
        if (argc != 2) {
            resp_wrong_arity(c, name);
        } else {
            resp_bulk(c, args[1].p, args[1].len);
        }
    } else if (resp_is(name, "SET")) {
        if (argc != 3) {
            resp_wrong_arity(c, name);
        } else if (kv_set(store, args[1].p, args[1].len, args[2].p, args[2].len) != 0) {
            resp_kv_printf(c, "-OOM out of memory\r\n");
        } else {
            resp_kv_write(c, "+OK\r\n", 5);
        }
    } else if (resp_is(name, "GET")) {
        const unsigned char *value;
        size_t value_len;
        if (argc != 2) {
            resp_wrong_arity(c, name);
        } else if (kv_get(store, args[1].p, args[1].len, &value, &value_len)) {
            resp_bulk(c, value, value_len);
        } else {
            resp_kv_write(c, "$-1\r\n", 5);
        }
    } else if (resp_is(name, "DEL") || resp_is(name, "EXISTS")) {
        int del = resp_is(name, "DEL");
        long long n = 0;
        const unsigned char *value;
        size_t value_len;
        if (argc < 2) {
            resp_wrong_arity(c, name);
            return 1;
        }
        for (i = 1; i < argc; i++) {
            n += del ? kv_del(store, args[i].p, args[i].len)
                     : kv_get(store, args[i].p, args[i].len, &value, &value_len);
        }
        resp_kv_printf(c, ":%lld\r\n", n);
    } else if (resp_is(name, "DBSIZE")) {
        resp_kv_printf(c, ":%zu\r\n", store->count);
    } else if (resp_is(name, "FLUSHALL") || resp_is(name, "FLUSHDB")) {
        kv_clear(store);
        resp_kv_write(c, "+OK\r\n", 5);
    } else if (resp_is(name, "CONFIG") && argc == 3 && resp_is(&args[1], "GET")) {
        /* redis-benchmark asks for `save` and `appendonly`: this server has neither. */
        resp_kv_write(c, "*2\r\n", 4);
        resp_bulk(c, args[2].p, args[2].len);
        resp_bulk(c, (const unsigned char *)"", 0);
    } else if (resp_is(name, "COMMAND")) {
        resp_kv_write(c, "*0\r\n", 4); /* redis-cli asks for command docs: none */
    } else if (resp_is(name, "QUIT")) {
        resp_kv_write(c, "+OK\r\n", 5);
        return 0;
    } else {
        resp_kv_printf(c, "-ERR unknown command '%.*s'\r\n", (int)(name->len > 32 ? 32 : name->len),
                       (const char *)name->p);
    }
    return 1;
}

/* Every complete command is run; a partial one stays unconsumed and is presented again with
 * the next bytes. While the output is congested, parsing stops: pipelining clients are paced
 * by how fast they read replies. */
static size_t resp_kv_on_data(struct resp_kv_session *s, struct resp_kv_conn *c,
                              const unsigned char *data, size_t len)
{
    size_t used = 0;
    while (used < len && !resp_kv_congested(c)) {
        struct resp_arg args[RESP_MAX_ARGS];
        const char *error = "";
        int argc = 0;
        long n = resp_parse(data + used, len - used, args, &argc, &error);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            resp_kv_printf(c, "-ERR Protocol error: %s\r\n", error);
            resp_kv_close(c); /* as redis does: the stream cannot be resynchronised */
            return len;
        }
        used += (size_t)n;
        s->commands++;
        if (!resp_run(c, args, argc)) {
            resp_kv_close(c);
            return len;
        }
    }
    return used;
}

static void resp_kv_on_writable(struct resp_kv_session *s, struct resp_kv_conn *c)
{
    (void)s;
    (void)c;
}

static void resp_kv_on_eof(struct resp_kv_session *s, struct resp_kv_conn *c)
{
    (void)s;
    resp_kv_close(c); /* every reply queued so far is still sent */
}

static void resp_kv_on_timer(struct resp_kv_session *s, struct resp_kv_conn *c)
{
    (void)s;
    (void)c;
}

static void resp_kv_on_close(struct resp_kv_session *s, struct resp_kv_conn *c,
                             enum resp_kv_close_reason reason, int error)
{
    (void)s;
    (void)c;
    (void)reason;
    (void)error;
}
