
/* One option the spec declares (options:), as the command line gives it: --NAME VALUE or
 * --NAME=VALUE, and --NAME or --no-NAME for a bool. */
struct option_field {
    const char *name;     /* as given after "--"; NULL ends the table */
    char kind;            /* 'p' path, 's' string, 'i' int, 'b' bool */
    size_t offset;        /* of its field in the options struct */
    long long min, max;   /* the range of an int */
    const char *expected; /* what a bad value is told it should be */
};
{{ v.runtime_close }}

/* The program's options as the command line set them (the spec's values by default). */
struct {{ v.name }}_options {
{%- if v.client %}
    const char *host;       /* -a */
    int port;               /* -p */
    unsigned connections;   /* -c: the pool's size */
{%- if v.handler == Handler::EchoCheck %}
    unsigned messages;      /* -n: per connection */
{%- endif %}
{%- if v.handler == Handler::Load %}
    uint32_t duration_ms;   /* -d: how long the load runs */
{%- endif %}
{%- else %}
    const char *address;    /* -a: the IPv4 or IPv6 literal to listen on */
    int port;               /* -p */
{%- endif %}
{%- for o in v.options %}
    {{ o.c_declaration }}; /* {{ o.synopsis }}: {{ o.comment }} */
{%- endfor %}
};

/* set from the command line before anything runs */
static struct {{ v.name }}_options command_line = {
{%- if v.client %}
    {{ v.upper }}_HOST, {{ v.upper }}_PORT, {{ v.upper }}_POOL_SIZE,
{%- if v.handler == Handler::EchoCheck %}
    {{ v.upper }}_MESSAGES,
{%- endif %}
{%- if v.handler == Handler::Load %}
    {{ v.upper }}_DURATION_MS,
{%- endif %}
{%- else %}
    {{ v.upper }}_ADDRESS, {{ v.upper }}_PORT,
{%- endif %}
{%- for o in v.options %}
    {{ o.c_default }},
{%- endfor %}
};

static const struct option_field option_fields[] = {
{%- for o in v.options %}
    { "{{ o.flag }}", '{{ o.kind_letter }}', offsetof(struct {{ v.name }}_options, {{ o.name }}), {{ o.c_min }},
      {{ o.c_max }}, "{{ o.expected }}" },
{%- endfor %}
    { NULL, 0, 0, 0, 0, NULL }
};

/* What -h and --help print. */
static const char program_help[] =
    {{ v.help_c }};
{{ v.runtime_open }}

/* The options the program runs with: the spec's values, or the command line's. */
static inline const struct {{ v.name }}_options *{{ v.name }}_options(void);
