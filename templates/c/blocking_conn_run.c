/* Serves one connection until it ends or the {% if v.client %}client{% else %}server{% endif %} stops. */
static void conn_run(Conn *c, unsigned char *scratch)
{
    conn_start(c);
    for (;;) {
{%- if v.windows %}
        WSAPOLLFD fds[2];
{%- else %}
        struct pollfd fds[2];
{%- endif %}
        uint64_t now = now_ms();
        uint64_t at;
        int timeout;
        int status = conn_service(c, scratch, now);
        if (status == CONN_DONE) {
            return;
        }
        at = conn_deadline(c);
        if (status == CONN_MORE || at <= now) {
            timeout = 0;
        } else if (at == NO_DEADLINE) {
            timeout = -1;
        } else {
            timeout = at - now > (uint64_t)INT32_MAX ? INT32_MAX : (int)(at - now);
        }
{%- if v.windows %}
        fds[0].fd = stop_socket;
        fds[0].events = POLLRDNORM;
        fds[0].revents = 0;
        fds[1].fd = c->fd;
        fds[1].events = conn_poll_events(c);
        fds[1].revents = 0;
        if (WSAPoll(fds, 2, timeout) == SOCKET_ERROR) {
            conn_fail(c, WSAGetLastError());
            return;
        }
{%- else %}
        fds[0].fd = stop_pipe[0];
        fds[0].events = POLLIN;
        fds[1].fd = c->fd;
        fds[1].events = conn_poll_events(c);
        if (poll(fds, 2, timeout) < 0) {
            if (errno == EINTR) {
                continue;
            }
            conn_fail(c, errno);
            return;
        }
{%- endif %}
        if (fds[0].revents != 0) {
            conn_end(c, {{ v.upper }}_CLOSE_STOPPING, 0);
            return;
        }
        now = now_ms();
        if (conn_deadline(c) <= now) {
            conn_expire(c, now);
        }
    }
}
