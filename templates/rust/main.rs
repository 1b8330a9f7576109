/// The generated {% if v.client %}client{% else %}server{% endif %}: {{ v.summary }}. It is an API ({% if v.client %}options, handler trait, built-in
/// handlers, the pool{% else %}config, handler trait, built-in
/// handlers, serve{% endif %}) of which one program uses a part, hence `dead_code` is allowed.
#[allow(dead_code)]
mod {{ v.name }};
{%- if v.handler == Handler::Custom && v.client && !v.tcp %}

use {{ v.name }}::{Ctx, Handler};

/// Your protocol. As generated it sends one datagram, prints the first one that comes back on
/// stdout and closes, so it works against any UDP echo server from the first build: replace
/// the bodies. Each socket of the pool gets its own value from `open`; `Worker` is state the
/// pool's sockets share.
#[derive(Debug, Default)]
struct Protocol;

impl Handler for Protocol {
    /// Replies seen by the whole pool.
    type Worker = u64;

    fn open(ctx: &mut Ctx<'_, u64>) -> Protocol {
        let hello = format!("hello from {{ v.name }}, connection {}", ctx.info().id);
        let _ = ctx.write(hello.as_bytes());
        Protocol
    }

    fn on_message(&mut self, msg: &[u8], ctx: &mut Ctx<'_, u64>) {
        println!("reply: {}", String::from_utf8_lossy(msg));
        *ctx.worker += 1;
        ctx.close();
    }
}

fn main() -> std::process::ExitCode {
    {{ v.name }}::main_with::<Protocol>()
}
{%- else if v.handler == Handler::Custom && v.client %}

use {{ v.name }}::{Ctx, Handler};

/// Your protocol. As generated it sends one line, prints the first line that comes back on
/// stdout and closes, so it works against any echo server from the first build: replace the
/// bodies. Each connection gets its own value from `open`, so fields are per-connection
/// state; `Worker` is state the pool's connections share.
#[derive(Debug, Default)]
struct Protocol {
    answered: bool,
}

impl Handler for Protocol {
    /// Replies seen by the whole pool.
    type Worker = u64;

    fn open(ctx: &mut Ctx<'_, u64>) -> Protocol {
{%- if v.framed %}
        let _ = ctx.send_message(b"hello from {{ v.name }}");
{%- else %}
        let hello = format!("hello from {{ v.name }}, connection {}\n", ctx.info().id);
        let _ = ctx.write(hello.as_bytes());
{%- endif %}
        Protocol::default()
    }
{%- if v.framed %}

    fn on_message(&mut self, msg: &[u8], ctx: &mut Ctx<'_, u64>) {
        println!("reply: {}", String::from_utf8_lossy(msg));
        self.answered = true;
        *ctx.worker += 1;
        ctx.close();
    }
{%- else %}

    /// A whole line, or nothing yet: an unconsumed partial line comes again with the next bytes.
    fn on_data(&mut self, input: &[u8], ctx: &mut Ctx<'_, u64>) -> usize {
        let Some(end) = input.iter().position(|&b| b == b'\n') else { return 0 };
        println!("reply: {}", String::from_utf8_lossy(&input[..end]));
        self.answered = true;
        *ctx.worker += 1;
        ctx.close();
        input.len()
    }
{%- endif %}

    fn on_eof(&mut self, ctx: &mut Ctx<'_, u64>) {
        if !self.answered {
            ctx.fail("the server closed the connection without a reply");
        }
        ctx.close();
    }
}

fn main() -> std::process::ExitCode {
    {{ v.name }}::main_with::<Protocol>()
}
{%- else if v.handler == Handler::Custom %}
{%- if v.tcp %}

use {{ v.name }}::{Ctx, Handler};

/// Your protocol. As generated it echoes{% if v.framed %} each message{% endif %}, so the server works from the first build;
/// replace the bodies. Each connection gets its own value from `open`, so fields are
/// per-connection state; `Worker` is state the connections of one worker share.
#[derive(Debug, Default)]
struct Protocol {
    bytes_in: u64,
}

impl Handler for Protocol {
    type Worker = ();

    fn open(_ctx: &mut Ctx<'_, ()>) -> Protocol {
        Protocol::default()
    }
{%- if v.framed %}

    fn on_message(&mut self, msg: &[u8], ctx: &mut Ctx<'_, ()>) {
        self.bytes_in += msg.len() as u64;
        let _ = ctx.send_message(msg); // refused only while the connection is closing
    }
{%- else %}

    /// Everything used; return less to see the rest again with the next bytes.
    fn on_data(&mut self, input: &[u8], ctx: &mut Ctx<'_, ()>) -> usize {
        self.bytes_in += input.len() as u64;
        let _ = ctx.write(input); // refused only while the connection is closing
        input.len()
    }
{%- endif %}
}
{%- else %}

use {{ v.name }}::{Ctx, Handler};

/// Your protocol. As generated it echoes, so the server works from the first build; replace
/// the body. Each worker makes its own `Protocol` with `Default`: fields are that worker's state.
#[derive(Debug, Default)]
struct Protocol {
    datagrams: u64,
}

impl Handler for Protocol {
    /// The reply goes back to `ctx.info().peer`.
    fn on_message(&mut self, msg: &[u8], ctx: &mut Ctx<'_>) {
        self.datagrams += 1;
        let _ = ctx.write(msg);
    }
}
{%- endif %}

fn main() -> std::process::ExitCode {
    {{ v.name }}::main_with::<Protocol>()
}
{%- else %}

fn main() -> std::process::ExitCode {
    {{ v.name }}::main_with::<{{ v.name }}::{{ v.handler_type }}>()
}
{%- endif %}
