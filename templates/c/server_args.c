
/* -a ADDRESS, -p PORT and the spec's options; -h or --help prints what they are. */
static int parse_args(int argc, char **argv, struct {{ v.name }}_options *options)
{
    int opt, index = 1;
    const char *value = NULL;
    while ((opt = next_option(argc, argv, "ap", &index, &value, options)) != -1) {
        char *end = NULL;
        long port;
        switch (opt) {
        case 0:
            break;
        case 'a': {
            unsigned char probe[sizeof(struct in6_addr)];
            if (inet_pton(AF_INET, value, probe) != 1 && inet_pton(AF_INET6, value, probe) != 1) {
                fprintf(stderr, "%s: invalid address '%s' (expected an IPv4 or IPv6 literal)\n",
                        {{ v.name }}_program, value);
                return -1;
            }
            options->address = value;
            break;
        }
        case 'p':
            errno = 0;
            port = strtol(value, &end, 10);
            if (errno != 0 || end == value || *end != '\0' || port < 0 || port > 65535) {
                fprintf(stderr, "%s: invalid port '%s' (expected 0 to 65535)\n",
                        {{ v.name }}_program, value);
                return -1;
            }
            options->port = (int)port;
            break;
        default:
            return help_or_usage(opt);
        }
    }
    if (arguments_left(argc, argv, index)) {
        return -1;
    }
    return 0;
}

static inline const struct {{ v.name }}_options *{{ v.name }}_options(void)
{
    return &command_line;
}
