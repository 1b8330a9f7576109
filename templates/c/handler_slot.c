{%- if v.inline_handler %}
{% include "c/handler.c" %}
{%- else if v.user_owned_handler %}
/* The handler callbacks: your protocol goes in this file. */
#include "{{ v.name }}_handler.c"
{%- else %}
/* The handler callbacks (the built-in {{ v.handler }}; set `handler: custom` in the spec to write
 * your own in a file that regeneration leaves alone). */
#include "{{ v.name }}_handler.c"
{%- endif %}
