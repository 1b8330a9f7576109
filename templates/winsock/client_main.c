
/* ---------------------------------------------------------------------------------------------
 * main: read the command line, start Winsock, resolve the target, run the pool until every
 * connection is done; a console control event (Ctrl-C) stops it.
 */

int main(int argc, char **argv)
{
    WSADATA wsa;
    int status;

    if (parse_args(argc, argv) != 0) {
        return 2;
    }
    status = WSAStartup(MAKEWORD(2, 2), &wsa);
    if (status != 0) {
        log_wsa_error("WSAStartup", status);
        return 1;
    }
    if (install_stop_handler() != 0) {
        WSACleanup();
        return 1;
    }
    parse_literal_target();
    backoff_seed = ((uint64_t)GetTickCount64() << 20) ^ ((uint64_t)GetCurrentProcessId() << 40)
                   ^ 0x9e3779b97f4a7c15ull;
    status = loop_main();
    fflush(stdout);
    fflush(stderr);
    SetEvent(stopped_event);
    WSACleanup();
    return status != 0 || run_failed() ? 1 : 0;
}
