/// The generated server: {{ v.summary }}. It is an API (config, handler trait, built-in
/// handlers, serve) of which one program uses a part, hence `dead_code` is allowed.
#[allow(dead_code)]
mod {{ v.name }};
{%- if v.handler == "custom" %}

use {{ v.name }}::{Flow, Handler, Out};

/// Your protocol. As generated it echoes, so the server works from the first build; replace
/// the bodies. Each connection gets its own clone, so fields are per-connection state.
#[derive(Debug, Clone, Default)]
struct Protocol {
    bytes_in: u64,
}

impl Handler for Protocol {
    fn on_data(&mut self, data: &[u8], out: &mut Out<'_>) -> Flow {
        self.bytes_in += data.len() as u64;
        if out.write(data).is_err() {
            return Flow::Close;
        }
        Flow::Keep
    }
}

fn main() -> std::process::ExitCode {
    {{ v.name }}::main_with(Protocol::default())
}
{%- else %}

fn main() -> std::process::ExitCode {
    {{ v.name }}::main_with({{ v.name }}::{{ v.handler_type }}::default())
}
{%- endif %}
