/* The port of an IPv4 or IPv6 address, in host order. */
static int bound_port(const struct sockaddr_storage *addr)
{
    if (addr->ss_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)(const void *)addr)->sin6_port);
    }
    return ntohs(((const struct sockaddr_in *)(const void *)addr)->sin_port);
}

/* "192.0.2.1:5000" or "[2001:db8::1]:5000"; "?" for an address of another family. */
static void format_address(const struct sockaddr_storage *addr, char *text, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    const void *raw;
    if (addr->ss_family == AF_INET6) {
        raw = &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr;
    } else if (addr->ss_family == AF_INET) {
        raw = &((const struct sockaddr_in *)(const void *)addr)->sin_addr;
    } else {
        snprintf(text, size, "?");
        return;
    }
    if (inet_ntop(addr->ss_family, raw, ip, sizeof ip) == NULL) {
        snprintf(text, size, "?");
    } else if (addr->ss_family == AF_INET6) {
        snprintf(text, size, "[%s]:%d", ip, bound_port(addr));
    } else {
        snprintf(text, size, "%s:%d", ip, bound_port(addr));
    }
}
{%- if !v.client %}

/* The ready line tests and scripts wait for; flushed so a pipe sees it at once. */
static void print_ready(const struct sockaddr_storage *addr)
{
    char text[INET6_ADDRSTRLEN + 8];
    format_address(addr, text, sizeof text);
    printf("listening on %s\n", text);
    fflush(stdout);
}
{%- endif %}
