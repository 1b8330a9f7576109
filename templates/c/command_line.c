
/* One of the spec's options (--NAME...), stored into `options` through option_fields; 0, or -1
 * after saying what is wrong. */
static int take_program_option(const char *arg, int argc, char **argv, int *index, void *options)
{
    size_t length = strcspn(arg, "=");
    const char *value = arg[length] == '=' ? arg + length + 1 : NULL;
    const struct option_field *f;
    int negated = 0;
    char *field;
    for (f = option_fields; f->name != NULL; f++) {
        size_t n = strlen(f->name);
        if (n == length && memcmp(f->name, arg, n) == 0) {
            break;
        }
        if (f->kind == 'b' && length == n + 3 && memcmp(arg, "no-", 3) == 0
            && memcmp(arg + 3, f->name, n) == 0) {
            negated = 1;
            break;
        }
    }
    if (f->name == NULL) {
        fprintf(stderr, "%s: unknown option '--%.*s' (--help lists them)\n", {{ v.name }}_program,
                (int)length, arg);
        return -1;
    }
    field = (char *)options + f->offset;
    if (f->kind == 'b') {
        if (value != NULL) {
            fprintf(stderr, "%s: option '--%.*s' takes no value\n", {{ v.name }}_program,
                    (int)length, arg);
            return -1;
        }
        *(int *)field = !negated;
        return 0;
    }
    if (value == NULL) {
        if (*index >= argc) {
            fprintf(stderr, "%s: option '--%s' needs a value\n", {{ v.name }}_program, f->name);
            return -1;
        }
        value = argv[(*index)++];
    }
    if (f->kind == 'i') {
        /* Digits with an optional '-', nothing else: no '+', spaces, hex or trailing text. */
        const char *digits = value[0] == '-' ? value + 1 : value;
        char *end = NULL;
        long long number = 0;
        int valid = *digits >= '0' && *digits <= '9';
        if (valid) {
            errno = 0;
            number = strtoll(value, &end, 10);
            valid = errno == 0 && *end == '\0' && number >= f->min && number <= f->max;
        }
        if (!valid) {
            fprintf(stderr, "%s: invalid value '%s' for --%s (expected %s)\n",
                    {{ v.name }}_program, value, f->name, f->expected);
            return -1;
        }
        *(long long *)field = number;
        return 0;
    }
    if (f->kind == 'p' && value[0] == '\0') {
        fprintf(stderr, "%s: invalid value '' for --%s (expected %s)\n", {{ v.name }}_program,
                f->name, f->expected);
        return -1;
    }
    *(const char **)field = value;
    return 0;
}

/* The next option of the command line, read the same way on every platform: -x VALUE or
 * -xVALUE for the letters of with_value, -h or --help alone, the spec's --NAME options (stored
 * into `options`); `--` ends the options. Returns the letter ('h' for help, 0 after one of the
 * spec's options), '?' after saying what is wrong, or -1 where the options end. */
static int next_option(int argc, char **argv, const char *with_value, int *index,
                       const char **value, void *options)
{
    const char *arg;
    if (*index >= argc || argv[*index][0] != '-' || argv[*index][1] == '\0') {
        return -1;
    }
    arg = argv[(*index)++];
    if (strcmp(arg, "--") == 0) {
        return -1;
    }
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
        return 'h';
    }
    if (arg[1] == '-') {
        return take_program_option(arg + 2, argc, argv, index, options) == 0 ? 0 : '?';
    }
    if (strchr(with_value, arg[1]) == NULL) {
        fprintf(stderr, "%s: invalid option -- '%c'\n", {{ v.name }}_program, arg[1]);
        return '?';
    }
    if (arg[2] != '\0') {
        *value = arg + 2;
    } else if (*index < argc) {
        *value = argv[(*index)++];
    } else {
        fprintf(stderr, "%s: option requires an argument -- '%c'\n", {{ v.name }}_program,
                arg[1]);
        return '?';
    }
    return arg[1];
}

/* -h: the help on stdout, and the program ends. A mistake (already said): the usage line on
 * stderr, the rest of the help being for -h; returns -1. */
static int help_or_usage(int opt)
{
    if (opt == 'h') {
        printf("%s\n", program_help);
        exit(0);
    }
    fprintf(stderr, "%.*s\n", (int)strcspn(program_help, "\n"), program_help);
    return -1;
}

/* 1, after saying so, when arguments are left after the options: the program takes none. */
static int arguments_left(int argc, char **argv, int index)
{
    if (index == argc) {
        return 0;
    }
    fprintf(stderr, "%s: unexpected argument '%s'\n", {{ v.name }}_program, argv[index]);
    return 1;
}
