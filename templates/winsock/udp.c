{% include "c/udp_conn.c" %}

/* ---------------------------------------------------------------------------------------------
 * Datagrams: each worker waits in WSAPoll on the shared socket and the stop socket, then
 * answers what is queued, one datagram at a time. The socket is nonblocking, so a worker
 * whose datagram another took goes back to waiting.
 */

/* Datagrams answered per wakeup before the stop socket is looked at again. */
enum { DGRAM_BUDGET = 64 };
/* How long a reply may wait for room in the send buffer before it is dropped. */
enum { REPLY_WAIT_MS = 1000 };

/* Sends the reply; a full send buffer is waited out for up to REPLY_WAIT_MS. */
static void dgram_reply(SOCKET s, Conn *current, unsigned long long *send_errors)
{
    int attempt;
    OP_LOG("sendto", s, " bytes=%llu", (unsigned long long)current->reply_len);
    for (attempt = 0; attempt < 2; attempt++) {
        int error;
        if (sendto(s, (const char *)current->reply, (int)current->reply_len, 0,
                   (const struct sockaddr *)&current->info.peer, current->peer_len)
            != SOCKET_ERROR) {
            return;
        }
        error = WSAGetLastError();
        if (error != WSAEWOULDBLOCK || wait_for_socket_or_stop(s, POLLWRNORM, REPLY_WAIT_MS) != 1) {
            break;
        }
    }
    log_occurrence("sendto failed; reply dropped", send_errors);
}

static int loop_main(SOCKET s, unsigned index)
{
    struct {{ v.name }}_worker worker;
    Conn current;
    unsigned char *scratch = malloc({{ v.upper }}_BUFFER_SIZE);
    unsigned long long truncated = 0, send_errors = 0, recv_errors = 0;
    int status = -1;

    memset(&current, 0, sizeof current);
    current.info.worker = index;
    current.reply = malloc({{ v.upper }}_OUTPUT_BUFFER);
    if (scratch == NULL || current.reply == NULL) {
        log_errno("malloc");
        free(scratch);
        free(current.reply);
        return -1;
    }
    if (!worker_begin(&worker, index)) {
        free(scratch);
        free(current.reply);
        return -1;
    }
    for (;;) {
        int budget;
        int ready = wait_for_socket_or_stop(s, POLLRDNORM, -1);
        if (ready <= 0) {
            status = ready;
            break;
        }
        for (budget = 0; budget < DGRAM_BUDGET; budget++) {
            int n;
            int error;
            current.peer_len = (int)sizeof current.info.peer;
            n = recvfrom(s, (char *)scratch, (int){{ v.upper }}_BUFFER_SIZE, 0,
                         (struct sockaddr *)&current.info.peer, &current.peer_len);
            error = n == SOCKET_ERROR ? WSAGetLastError() : 0;
            OP_LOG("recvfrom", s, " bytes=%d result=%s", n,
                   error == WSAEWOULDBLOCK ? "WSAEWOULDBLOCK" : OP_RESULT(n >= 0));
            if (error == WSAEWOULDBLOCK) {
                break;
            }
            if (error == WSAEMSGSIZE) {
                /* Windows fills the buffer and reports the rest cut off: dropped, not echoed
                 * short. */
                log_occurrence("datagram longer than io.buffer_size dropped", &truncated);
                continue;
            }
            if (n == SOCKET_ERROR) {
                log_occurrence("recvfrom failed", &recv_errors);
                break;
            }
            dgram_begin(&current);
            {{ v.name }}_on_message(&worker, &current, scratch, (size_t)n);
            if (current.has_reply) {
                dgram_reply(s, &current, &send_errors);
            }
        }
    }
    {{ v.name }}_on_worker_stop(&worker);
    free(scratch);
    free(current.reply);
    return status;
}
