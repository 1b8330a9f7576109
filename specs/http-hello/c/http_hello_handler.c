/*
 * http_hello: an HTTP/1.1 keep-alive server written only against the handler contract.
 *   GET /          "Hello, world!\n"
 *   GET /bytes/N   N bytes (up to 1 GiB) produced by on_writable as the client reads them
 *   POST /echo     the request body back (Content-Length bodies up to 1 MiB)
 * Requests may be pipelined and split across reads; HEAD works everywhere GET does.
 * HTTP/1.1 keeps the connection unless "Connection: close"; HTTP/1.0 closes unless
 * "Connection: keep-alive" (ab -k).
 */
#include <ctype.h>

enum { HTTP_MAX_HEADER = 16384, HTTP_MAX_BODY = 1 << 20 };

struct http_hello_worker {
    unsigned long long requests;
};

struct http_hello_session {
    unsigned long long stream_left; /* body bytes of /bytes/N still to produce */
    unsigned long long stream_pos;
    int close_after;                 /* close once the current response is out */
};

static void http_hello_on_worker_start(struct http_hello_worker *w, unsigned index)
{
    (void)index;
    w->requests = 0;
}

static void http_hello_on_worker_stop(struct http_hello_worker *w)
{
    (void)w;
}

static void http_hello_on_open(struct http_hello_session *s, struct http_hello_conn *c)
{
    (void)c;
    memset(s, 0, sizeof *s);
}

/* Case-insensitive match of a header name at the start of a line. */
static int http_header_is(const char *line, size_t len, const char *name)
{
    size_t i, n = strlen(name);
    if (len <= n || line[n] != ':') {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (tolower((unsigned char)line[i]) != name[i]) {
            return 0;
        }
    }
    return 1;
}

/* Whether the header value (after the colon) contains the token, case-insensitively. */
static int http_value_has(const char *value, size_t len, const char *token)
{
    size_t i, j, n = strlen(token);
    for (i = 0; i + n <= len; i++) {
        for (j = 0; j < n && tolower((unsigned char)value[i + j]) == token[j]; j++) {
        }
        if (j == n) {
            return 1;
        }
    }
    return 0;
}

static void http_respond(struct http_hello_conn *c, int head, const char *status, const char *body, size_t len,
                         int keep_alive, int http10)
{
    http_hello_printf(c, "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n", status, len,
                      !keep_alive ? "Connection: close\r\n" : http10 ? "Connection: keep-alive\r\n" : "");
    if (!head) {
        http_hello_write(c, body, len);
    }
}

/* Handles one complete request (head_len bytes of headers, then body_len bytes of body). */
static void http_request(struct http_hello_session *s, struct http_hello_conn *c, const char *req, size_t head_len,
                         const unsigned char *body, size_t body_len, int keep_alive, int http10)
{
    char method[8] = "", path[64] = "";
    unsigned long long n = 0;
    char extra;
    int head;
    (void)head_len;
    sscanf(req, "%7s %63s", method, path);
    head = strcmp(method, "HEAD") == 0;
    http_hello_worker(c)->requests++;
    if ((strcmp(method, "GET") == 0 || head) && strcmp(path, "/") == 0) {
        http_respond(c, head, "200 OK", "Hello, world!\n", 14, keep_alive, http10);
    } else if ((strcmp(method, "GET") == 0 || head) && sscanf(path, "/bytes/%llu%c", &n, &extra) == 1
               && n <= (1ull << 30)) {
        http_respond(c, 1, "200 OK", NULL, (size_t)n, keep_alive, http10);
        if (!head && n > 0) {
            s->stream_left = n;
            s->stream_pos = 0;
            http_hello_pause_input(c); /* pipelined requests wait unread until the body is sent */
            http_hello_want_writable(c, 1);
        }
    } else if (strcmp(method, "POST") == 0 && strcmp(path, "/echo") == 0) {
        http_respond(c, 0, "200 OK", (const char *)body, body_len, keep_alive, http10);
    } else if (strcmp(method, "GET") == 0 || head || strcmp(method, "POST") == 0) {
        http_respond(c, head, "404 Not Found", "not found\n", 10, keep_alive, http10);
    } else {
        http_respond(c, 0, "405 Method Not Allowed", "method not allowed\n", 19, keep_alive, http10);
    }
}

/* Parses and answers every complete request; returns the bytes used. A request whose body
 * has not fully arrived stays unconsumed and comes again with the next bytes. */
static size_t http_hello_on_data(struct http_hello_session *s, struct http_hello_conn *c,
                                 const unsigned char *data, size_t len)
{
    size_t used = 0;
    while (used < len && s->stream_left == 0 && !s->close_after && !http_hello_congested(c)) {
        const char *req = (const char *)data + used;
        size_t avail = len - used, head_len = 0, line_start, content_length = 0;
        int keep_alive, http10, has_length = 0, close_token = 0, keep_token = 0;
        const unsigned char *end = NULL;
        size_t i;
        for (i = 0; i + 3 < avail && i < HTTP_MAX_HEADER; i++) {
            if (req[i] == '\r' && memcmp(req + i, "\r\n\r\n", 4) == 0) {
                end = (const unsigned char *)req + i;
                break;
            }
        }
        if (end == NULL) {
            if (avail >= HTTP_MAX_HEADER) {
                http_respond(c, 0, "431 Request Header Fields Too Large", "headers too large\n", 18, 0, 0);
                s->close_after = 1;
            }
            break;
        }
        head_len = (size_t)(end - (const unsigned char *)req) + 4;
        http10 = memmem(req, head_len, " HTTP/1.0\r\n", 11) != NULL;
        /* Headers: one per line after the request line. */
        line_start = (size_t)((const char *)memchr(req, '\n', head_len) - req) + 1;
        while (line_start < head_len - 2) {
            const char *line = req + line_start;
            const char *eol = memchr(line, '\r', head_len - line_start);
            size_t line_len = (size_t)(eol - line);
            if (http_header_is(line, line_len, "content-length")) {
                char *stop;
                unsigned long long value = strtoull(line + 15, &stop, 10);
                has_length = 1;
                content_length = value > HTTP_MAX_BODY ? HTTP_MAX_BODY + 1 : (size_t)value;
            } else if (http_header_is(line, line_len, "transfer-encoding")) {
                http_respond(c, 0, "501 Not Implemented", "chunked bodies are not supported\n", 33, 0, 0);
                s->close_after = 1;
                break;
            } else if (http_header_is(line, line_len, "connection")) {
                close_token |= http_value_has(line + 11, line_len - 11, "close");
                keep_token |= http_value_has(line + 11, line_len - 11, "keep-alive");
            }
            line_start += line_len + 2;
        }
        if (s->close_after) {
            break;
        }
        if (has_length && content_length > HTTP_MAX_BODY) {
            http_respond(c, 0, "413 Content Too Large", "body too large\n", 15, 0, 0);
            s->close_after = 1;
            break;
        }
        if (avail - head_len < content_length) {
            break; /* the body is still arriving */
        }
        keep_alive = http10 ? keep_token && !close_token : !close_token;
        http_request(s, c, req, head_len, (const unsigned char *)req + head_len, content_length, keep_alive, http10);
        used += head_len + content_length;
        if (!keep_alive) {
            s->close_after = 1;
        }
    }
    if (s->close_after && s->stream_left == 0) {
        http_hello_close(c); /* after the response; unread input is drained, not reset */
        return len;
    }
    return used;
}

/* Streams the body of /bytes/N as the client reads it. */
static void http_hello_on_writable(struct http_hello_session *s, struct http_hello_conn *c)
{
    unsigned char chunk[16384];
    while (s->stream_left > 0 && !http_hello_congested(c)) {
        size_t i, n = s->stream_left < sizeof chunk ? (size_t)s->stream_left : sizeof chunk;
        for (i = 0; i < n; i++) {
            chunk[i] = (unsigned char)('a' + (s->stream_pos + i) % 26);
        }
        if (http_hello_write(c, chunk, n) != 0) {
            return;
        }
        s->stream_pos += n;
        s->stream_left -= n;
    }
    if (s->stream_left == 0) {
        if (s->close_after) {
            http_hello_close(c);
        } else {
            http_hello_resume_input(c); /* the next pipelined request, if one is waiting */
        }
    }
}

static void http_hello_on_eof(struct http_hello_session *s, struct http_hello_conn *c)
{
    s->close_after = 1;
    if (s->stream_left == 0) {
        http_hello_close(c);
    }
}

static void http_hello_on_timer(struct http_hello_session *s, struct http_hello_conn *c)
{
    (void)s;
    (void)c;
}

static void http_hello_on_close(struct http_hello_session *s, struct http_hello_conn *c,
                                enum http_hello_close_reason reason, int error)
{
    (void)s;
    (void)c;
    (void)reason;
    (void)error;
}
