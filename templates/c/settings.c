/* Settings from the spec (change the spec and regenerate, rather than these). */
{%- if v.client %}
/* what -a overrides: resolved at start, every address tried */
#define {{ v.upper }}_HOST "{{ v.address }}"
#define {{ v.upper }}_PORT {{ v.port }}  /* what -p overrides{% if v.port == 0 %}; 0: -p is required{% endif %} */
#define {{ v.upper }}_CONNECT_TIMEOUT_MS {{ v.connect_timeout_ms }}u  /* one connect to one address */
#define {{ v.upper }}_MAX_ATTEMPTS {{ v.max_attempts }}u  /* failed attempts in a row before giving up */
/* backoff before retry n: random in [0, min(max, base * 2^(n-1))] */
#define {{ v.upper }}_BACKOFF_BASE_MS {{ v.backoff_base_ms }}u
#define {{ v.upper }}_BACKOFF_MAX_MS {{ v.backoff_max_ms }}u
#define {{ v.upper }}_POOL_SIZE {{ v.pool_size }}u  /* connections at once (what -c overrides) */
{%- if v.handler == Handler::EchoCheck %}
#define {{ v.upper }}_MESSAGES {{ v.messages }}u  /* per connection (what -n overrides) */
{%- endif %}
{%- if v.handler == Handler::Load %}
#define {{ v.upper }}_DURATION_MS {{ v.duration_ms }}u  /* how long the load runs (what -d overrides) */
{%- endif %}
{%- if v.handler == Handler::EchoCheck || v.handler == Handler::Load %}
#define {{ v.upper }}_SIZES { {{ v.sizes }} }  /* payload bytes, used in turn */
#define {{ v.upper }}_SIZE_COUNT {{ v.sizes_len }}u
{%- endif %}
{%- else %}
#define {{ v.upper }}_ADDRESS "{{ v.address }}"
#define {{ v.upper }}_PORT {{ v.port }}
{%- endif %}
#define {{ v.upper }}_BUFFER_SIZE {{ v.buffer_size }}u  /* bytes per receive call */
{%- if v.tcp %}
/* output high-water mark: above it the peer is not read */
#define {{ v.upper }}_OUTPUT_BUFFER {{ v.output_buffer }}u
#define {{ v.upper }}_OUTPUT_LOW_WATER {{ v.output_buffer / 2 }}u  /* reading resumes below this */
#define {{ v.upper }}_OUTPUT_LIMIT {{ v.output_limit }}ull  /* a connection queuing more is closed */
#define {{ v.upper }}_MAX_MESSAGE {{ v.max_message }}u  /* most unconsumed input per connection */
{%- if !v.client %}
#define {{ v.upper }}_BACKLOG {{ v.backlog }}
{%- endif %}
{%- if v.client %}
/* the pool: -c, or client.pool.size */
#define {{ v.upper }}_MAX_CONNECTIONS (command_line.connections)
{%- else %}
#define {{ v.upper }}_MAX_CONNECTIONS {{ v.max_connections }}u
{%- endif %}
#define {{ v.upper }}_IDLE_TIMEOUT_MS {{ v.idle_timeout_ms }}u  /* 0 = never */
#define {{ v.upper }}_LINGER_MS {{ v.linger_ms }}u  /* lingering close: read and drop for at most this long */
{%- else if v.client %}
#define {{ v.upper }}_OUTPUT_BUFFER {{ v.output_buffer }}u  /* most bytes of one datagram sent */
/* the pool: -c, or client.pool.size */
#define {{ v.upper }}_MAX_CONNECTIONS (command_line.connections)
#define {{ v.upper }}_IDLE_TIMEOUT_MS {{ v.idle_timeout_ms }}u  /* 0 = never */
{%- else %}
#define {{ v.upper }}_OUTPUT_BUFFER {{ v.output_buffer }}u  /* most bytes of one reply datagram */
{%- endif %}
#define {{ v.upper }}_WORKERS {{ v.workers }}u  /* event loops, one thread each */
{%- if v.uses_io_uring %}
#define RING_BUFFERS {{ v.ring_buffers }}u  /* io_uring provided buffers per worker (~4 MiB) */
{%- endif %}
{%- if v.uses_epoll %}
#define {{ v.upper }}_MAX_EVENTS {{ v.max_events }}  /* events taken per epoll_wait */
{%- endif %}
{%- if v.thread_per_connection && v.tcp && !v.client %}
#define {{ v.upper }}_STACK_SIZE {{ v.stack_size }}u  /* bytes of stack per connection thread */
{%- endif %}
