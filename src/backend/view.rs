//! What every language's templates read: the Plan flattened into plain values.

use crate::plan::{Endian, Framing, Handler, Model, Plan};
use crate::spec::FramingKind;

pub struct View {
    pub version: &'static str,
    pub spec_file: String,
    /// The command that renders this output again (see `Plan::render_command`).
    pub render_command: String,
    /// A project: the command runs in its directory.
    pub project: bool,
    pub name: String,
    pub tcp: bool,
    /// Printed only: templates test the predicates below, never the name.
    pub model: Model,
    /// The I/O style, as predicates (a misspelt one fails to compile).
    /// A thread per connection, sleeping in poll() on its one socket (`blocking`).
    pub thread_per_connection: bool,
    /// One loop per worker over a pollfd array: poll() or WSAPoll().
    pub uses_poll: bool,
    /// One edge-triggered epoll set per worker.
    pub uses_epoll: bool,
    pub uses_io_uring: bool,
    pub uses_iocp: bool,
    /// poll or epoll: the loop is told a socket is ready and makes the call itself.
    pub readiness: bool,
    /// io_uring or IOCP: the kernel owns a buffer from the request until its completion.
    pub completion: bool,
    pub handler: Handler,
    /// The unit that owns state: a connection for TCP, the server for UDP.
    pub unit: &'static str,
    pub address: String,
    pub port: u16,
    pub buffer_size: u32,
    pub output_buffer: u32,
    pub output_limit: u64,
    pub max_message: u32,
    pub backlog: u32,
    pub max_connections: u32,
    pub idle_timeout_ms: u32,
    pub linger_ms: u32,
    pub stack_size: u32,
    pub workers: u32,
    pub max_events: u32,
    /// io_uring: provided buffers per worker (a power of two), about 4 MiB of them.
    pub ring_buffers: u32,
    pub reuseaddr: bool,
    /// Set IPV6_V6ONLY (to the spec's value) on an IPv6 listener.
    pub v6only: bool,
    pub reuseport: bool,
    pub nodelay: bool,
    pub recv_buffer: Option<u32>,
    pub send_buffer: Option<u32>,
    pub keepalive: bool,
    pub keepalive_idle_s: u16,
    pub keepalive_interval_s: u16,
    pub keepalive_count: u8,
    pub linger: bool,
    pub linger_s: u16,
    /// `handler: custom` makes the handler file the user's own.
    pub user_owned_handler: bool,
    pub framing: FramingKind,
    /// The handler receives whole messages (`on_message`) rather than the stream (`on_data`).
    pub framed: bool,
    pub prefix_bytes: u8,
    pub prefix_big_endian: bool,
    /// The delimiter as a list of hex byte literals (`0x0d, 0x0a`): valid in C and Rust, and no
    /// byte of the spec's text reaches the source unescaped.
    pub delimiter_bytes: String,
    pub delimiter_len: usize,
    /// Bytes of framing that may sit in unconsumed input with a message before its end can be
    /// seen (a length prefix, a line's CR, all but the last byte of a delimiter): the input
    /// limit is `max_message` plus these, so the limit is on the message, whatever the
    /// segmentation.
    pub framing_overhead: usize,
    /// The user's extra C files (validated: safe in a Makefile).
    pub sources: Vec<String>,
    /// Log every socket operation (`log: ops`).
    pub log_ops: bool,
    /// role: client; the fields below are the client's settings (zero for a server).
    pub client: bool,
    pub connect_timeout_ms: u32,
    pub max_attempts: u32,
    pub backoff_base_ms: u32,
    pub backoff_max_ms: u32,
    pub pool_size: u32,
    pub messages: u32,
    /// The payload sizes as an initializer list (`1u, 1024u, 65536u`).
    pub sizes: String,
    pub sizes_len: usize,
    pub duration_ms: u32,
    /// The built-in client handlers' own options, as the usage line shows them.
    pub client_extra_usage: &'static str,
}

impl View {
    pub fn new(plan: &Plan) -> View {
        let tcp = plan.is_tcp();
        let keepalive = plan.socket.keepalive;
        let client = plan.client.as_ref();
        View {
            version: env!("CARGO_PKG_VERSION"),
            spec_file: plan.spec_file.clone(),
            render_command: plan.render_command(),
            project: plan.origin == crate::plan::Origin::Project,
            name: plan.name.clone(),
            tcp,
            model: plan.model,
            thread_per_connection: plan.model == Model::Blocking,
            uses_poll: plan.model == Model::Poll,
            uses_epoll: plan.model == Model::Epoll,
            uses_io_uring: plan.model == Model::IoUring,
            uses_iocp: plan.model == Model::Iocp,
            readiness: matches!(plan.model, Model::Poll | Model::Epoll),
            completion: matches!(plan.model, Model::IoUring | Model::Iocp),
            handler: plan.handler,
            unit: if tcp { "connection" } else { "server" },
            address: match &plan.client {
                Some(c) => c.host.clone(),
                None => plan.address.to_string(),
            },
            port: plan.port,
            buffer_size: plan.io.buffer_size,
            output_buffer: plan.io.output_buffer,
            output_limit: plan.io.output_limit,
            max_message: plan.io.max_message,
            backlog: plan.server.backlog,
            max_connections: plan.server.max_connections,
            idle_timeout_ms: plan.server.idle_timeout_ms,
            linger_ms: plan.server.linger_ms,
            stack_size: plan.server.stack_size,
            workers: plan.server.workers,
            max_events: plan.io.max_events,
            ring_buffers: ring_buffers(plan.io.buffer_size),
            reuseaddr: plan.socket.reuseaddr,
            v6only: plan.socket.v6only,
            reuseport: plan.socket.reuseport,
            nodelay: plan.socket.nodelay,
            recv_buffer: plan.socket.recv_buffer,
            send_buffer: plan.socket.send_buffer,
            keepalive: keepalive.is_some(),
            keepalive_idle_s: keepalive.map_or(0, |k| k.idle_s),
            keepalive_interval_s: keepalive.map_or(0, |k| k.interval_s),
            keepalive_count: keepalive.map_or(0, |k| k.count),
            linger: plan.socket.linger_s.is_some(),
            linger_s: plan.socket.linger_s.unwrap_or(0),
            user_owned_handler: plan.handler == Handler::Custom,
            framing: match plan.framing {
                Framing::None => FramingKind::None,
                Framing::Line => FramingKind::Line,
                Framing::LengthPrefix { .. } => FramingKind::LengthPrefix,
                Framing::Delimiter(_) => FramingKind::Delimiter,
            },
            framed: plan.framing != Framing::None,
            prefix_bytes: match plan.framing {
                Framing::LengthPrefix { bytes, .. } => bytes,
                _ => 0,
            },
            prefix_big_endian: matches!(
                plan.framing,
                Framing::LengthPrefix {
                    endian: Endian::Big,
                    ..
                }
            ),
            delimiter_bytes: match &plan.framing {
                Framing::Delimiter(d) => d
                    .iter()
                    .map(|b| format!("0x{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => String::new(),
            },
            sources: plan.sources.clone(),
            log_ops: plan.log_ops,
            delimiter_len: match &plan.framing {
                Framing::Delimiter(d) => d.len(),
                _ => 0,
            },
            framing_overhead: match &plan.framing {
                Framing::None => 0,
                Framing::Line => 1,
                Framing::LengthPrefix { bytes, .. } => usize::from(*bytes),
                Framing::Delimiter(d) => d.len().saturating_sub(1),
            },
            client: plan.client.is_some(),
            connect_timeout_ms: client.map_or(0, |c| c.connect_timeout_ms),
            max_attempts: client.map_or(0, |c| c.max_attempts),
            backoff_base_ms: client.map_or(0, |c| c.backoff_base_ms),
            backoff_max_ms: client.map_or(0, |c| c.backoff_max_ms),
            pool_size: client.map_or(0, |c| c.pool_size),
            messages: client.map_or(0, |c| c.messages),
            sizes: client.map_or(String::new(), |c| {
                c.sizes
                    .iter()
                    .map(|s| format!("{s}u"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
            sizes_len: client.map_or(0, |c| c.sizes.len()),
            duration_ms: client.map_or(0, |c| c.duration_ms),
            client_extra_usage: match plan.handler {
                Handler::EchoCheck => " [-n MESSAGES]",
                Handler::Load => " [-d DURATION_MS]",
                _ => "",
            },
        }
    }
}

/// Provided buffers for an io_uring worker: as many `buffer_size` buffers as fit in 4 MiB,
/// rounded down to a power of two (the kernel's ring size rule), between 16 and 4,096. A
/// buffer is busy only from a receive's completion until the handler has seen it, so this
/// bounds receives completed in one batch, not connections; a batch larger than that ends some
/// receives with ENOBUFS, and they are armed again (nothing is lost). The kernel cycles through
/// the whole ring, so all of it becomes resident: 4 MiB per worker.
fn ring_buffers(buffer_size: u32) -> u32 {
    let fit = (4u32 << 20) / buffer_size.max(1);
    let power = if fit == 0 {
        1
    } else {
        1 << (31 - fit.leading_zeros())
    };
    power.clamp(16, 4096)
}
