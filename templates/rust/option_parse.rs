
    /// Takes one of the spec's options (`--NAME`, with its value from `inline` or the next
    /// argument); Err carries the message for the user.
    fn take_program_option(
        &mut self,
        name: &str,
        inline: Option<String>,
        args: &mut impl Iterator<Item = String>,
    ) -> Result<(), String> {
{%- if v.options.is_empty() %}
        let _ = (inline, args);
        Err(format!("unknown option '--{name}' (--help lists them)"))
{%- else %}
{%- if !v.options_take_values %}
        let _ = &args;
{%- endif %}
        match name {
{%- for o in v.options %}
{%- match o.kind %}
{%- when OptionType::Bool %}
            "{{ o.flag }}" | "no-{{ o.flag }}" => {
                if inline.is_some() {
                    return Err(format!("option '--{name}' takes no value"));
                }
                self.{{ o.name }} = name == "{{ o.flag }}";
            }
{%- when OptionType::Int %}
            "{{ o.flag }}" => {
                let value = option_value(name, inline, args)?;
                self.{{ o.name }} = parse_integer(&value, {{ o.rust_min }}, {{ o.rust_max }}).ok_or_else(|| {
                    format!("invalid value '{value}' for --{{ o.flag }} (expected {{ o.expected }})")
                })?;
            }
{%- when OptionType::Path %}
            "{{ o.flag }}" => {
                let value = option_value(name, inline, args)?;
                if value.is_empty() {
                    return Err("invalid value '' for --{{ o.flag }} (expected a path)".to_string());
                }
                self.{{ o.name }} = std::path::PathBuf::from(value);
            }
{%- when OptionType::String %}
            "{{ o.flag }}" => self.{{ o.name }} = option_value(name, inline, args)?,
{%- endmatch %}
{%- endfor %}
            _ => return Err(format!("unknown option '--{name}' (--help lists them)")),
        }
        Ok(())
{%- endif %}
    }
