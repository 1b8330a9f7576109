{%- for o in v.options %}
            {{ o.name }}: {{ o.rust_default }},
{%- endfor %}
