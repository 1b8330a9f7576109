/*
 * {{ v.name }}: {{ v.protocol_upper }} {{ v.handler }} {% if v.client %}client{% else %}server{% endif %}, {{ v.model }} model, C11 for {% if v.windows %}Windows (Winsock 2){% else %}POSIX/Linux{% endif %}.
 *
 * {{ v.generated_from() }}
 * Do not edit by hand: change the spec and run{% if v.project %}, in this directory,{% endif %}
 *     {{ v.render_command_lines() }}
{%- if v.user_owned_handler %}
 * Your protocol lives in the handler callbacks ({{ v.handler_location }}).
{%- endif %}
{%- if v.split_runtime %}
 * {{ v.project_layout() }}
{%- endif %}
 *
{%- if v.uses_io_uring %}
 * Needs liburing (Debian: apt-get install liburing-dev):
 *     cc -O2 -o {{ v.name }} {{ v.name }}.c -pthread -luring
 * and Linux 6.0 or later; where io_uring is refused it says so and exits 1 (use --model epoll).
 *
{%- endif %}
{%- if v.windows %}
 * Build with MinGW-w64:
 *     x86_64-w64-mingw32-gcc -std=c11 -O2 -o {{ v.name }}.exe {{ v.name }}.c -lws2_32
 * or with MSVC:
 *     cl /std:c11 /O2 {{ v.name }}.c ws2_32.lib   (Windows Vista or later)
 *
{%- endif %}
{%- if v.client %}
 * Usage: {{ v.name }} [-a HOST] [-p PORT] [-c CONNECTIONS]{{ v.client_extra_usage }}
 *   (defaults {{ v.address }}, {% if v.port == 0 %}no port{% else %}{{ v.port }}{% endif %}, {{ v.pool_size }}{% if v.handler == Handler::EchoCheck %}, {{ v.messages }}{% endif %}{% if v.handler == Handler::Load %}, {{ v.duration_ms }}{% endif %})
 * Connects every connection of the pool, retrying with backoff; exits 0 once each is done,
 * 1 when one failed or gave up (the reason is on stderr). SIGINT or SIGTERM stops it.
{%- else %}
 * Usage: {{ v.name }} [-a ADDRESS] [-p PORT]
 *   (defaults {{ v.address }} and {{ v.port }}; port 0 = any)
{%- endif %}
{%- if v.client %}
{%- else if v.windows %}
 * Prints "listening on ADDRESS:PORT" once ready; Ctrl-C, Ctrl-Break or closing the console
 * stops it with status 0.
{%- else %}
 * Prints "listening on ADDRESS:PORT" once ready; SIGINT or SIGTERM stops it with status 0.
{%- endif %}
 */
