{%- for o in v.options %}
    /// `{{ o.synopsis }}`: {{ o.comment }}
    pub {{ o.name }}: {{ o.rust_type }},
{%- endfor %}
