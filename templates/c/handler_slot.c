{%- if v.inline_handler %}
{% include "c/handler.h" %}
{%- else %}
/* The handler callbacks: your protocol goes in this file. */
#include "{{ v.name }}_handler.h"
{%- endif %}
