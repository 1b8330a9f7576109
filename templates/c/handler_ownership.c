{%- if v.user_owned_handler %}
 *
 * This file is yours: `sockgen render -o` writes it only when it does not exist yet.
{%- if v.split_runtime %}
 * {{ v.project_handler_note() }}
{%- endif %}
{%- else if v.split_runtime %}
 *
 * Generated for the built-in {{ v.handler }}: a re-render overwrites it. For callbacks of your
 * own, set `handler: custom` in the spec.
{%- endif %}
