//! What every language's templates read: the Plan flattened into plain values.

use crate::plan::{Endian, Framing, Handler, Model, OptionType, OptionValue, Plan, ProgramOption};
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
    /// The spec's program options.
    pub options: Vec<OptionView>,
    /// Some option of the spec takes a value (is not a bool).
    pub options_take_values: bool,
    /// Every option of the spec is a number or a bool, so the Rust options struct can be `Copy`.
    pub options_copy: bool,
    /// What `-h` and `--help` print (the same text in every language), as a C string literal.
    pub help_c: String,
    /// The same text as a Rust string literal.
    pub help_rust: String,
}

/// One program option as the templates write it; every piece of the spec's text is escaped
/// for the context it reaches.
pub struct OptionView {
    /// The field's name.
    pub name: String,
    /// As given after `--`.
    pub flag: String,
    pub kind: OptionType,
    /// The C table's kind letter: `p`ath, `s`tring, `i`nt, `b`ool.
    pub kind_letter: char,
    /// The field's C declaration (`const char *zone`).
    pub c_declaration: String,
    /// The default as a C initializer.
    pub c_default: String,
    pub c_min: String,
    pub c_max: String,
    /// The field's Rust type.
    pub rust_type: &'static str,
    /// The default as a Rust expression.
    pub rust_default: String,
    pub rust_min: String,
    pub rust_max: String,
    /// What a bad value is told it should be ("an integer from 1 to 100"); plain ASCII.
    pub expected: String,
    /// The help line, safe inside a C comment and a Rust line comment.
    pub comment: String,
    /// `--zone PATH`, as the usage line shows it.
    pub synopsis: String,
}

impl OptionView {
    fn new(option: &ProgramOption) -> OptionView {
        let flag = option.flag();
        let (kind_letter, c_declaration, rust_type, metavar) = match option.kind {
            OptionType::Path => (
                'p',
                format!("const char *{}", option.name),
                "std::path::PathBuf",
                " PATH",
            ),
            OptionType::String => (
                's',
                format!("const char *{}", option.name),
                "String",
                " TEXT",
            ),
            OptionType::Int => ('i', format!("long long {}", option.name), "i64", " N"),
            OptionType::Bool => ('b', format!("int {}", option.name), "bool", ""),
        };
        let (c_default, rust_default) = match &option.default {
            OptionValue::Text(text) => {
                let rust = match option.kind {
                    OptionType::Path => format!("std::path::PathBuf::from({text:?})"),
                    _ => format!("String::from({text:?})"),
                };
                (c_string_literal(text), rust)
            }
            OptionValue::Int(i) => (c_integer(*i), rust_integer(*i)),
            OptionValue::Bool(b) => (if *b { "1" } else { "0" }.to_string(), b.to_string()),
        };
        let expected = match option.kind {
            OptionType::Int if option.min == i64::MIN && option.max == i64::MAX => {
                "an integer".to_string()
            }
            OptionType::Int => format!("an integer from {} to {}", option.min, option.max),
            OptionType::Path => "a path".to_string(),
            OptionType::String => "text".to_string(),
            OptionType::Bool => "no value".to_string(),
        };
        OptionView {
            name: option.name.clone(),
            synopsis: format!("--{flag}{metavar}"),
            flag,
            kind: option.kind,
            kind_letter,
            c_declaration,
            c_default,
            c_min: c_integer(option.min),
            c_max: c_integer(option.max),
            rust_type,
            rust_default,
            rust_min: rust_integer(option.min),
            rust_max: rust_integer(option.max),
            expected,
            comment: option.help.replace("*/", "* /"),
        }
    }
}

/// `text` as a C string literal: `\`, `"` and `?` (trigraphs) escaped, every byte outside
/// printable ASCII as three octal digits (which, unlike `\x`, cannot swallow what follows).
pub fn c_string_literal(text: &str) -> String {
    let mut out = String::from("\"");
    for byte in text.bytes() {
        match byte {
            b'\\' | b'"' | b'?' => {
                out.push('\\');
                out.push(byte as char);
            }
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\{byte:03o}")),
        }
    }
    out.push('"');
    out
}

/// `text` as adjacent C string literals, one per line of the text and none much longer than
/// 80 columns (broken after a space), so the source stays readable.
fn c_string_lines(text: &str) -> String {
    let mut pieces = Vec::new();
    for line in text.split_inclusive('\n') {
        let mut rest = line;
        while rest.len() > 76 {
            let cut = rest[..76].rfind(' ').map_or(76, |i| i + 1);
            let cut = (cut..=rest.len())
                .find(|&i| rest.is_char_boundary(i))
                .unwrap_or(rest.len());
            pieces.push(c_string_literal(&rest[..cut]));
            rest = &rest[cut..];
        }
        pieces.push(c_string_literal(rest));
    }
    pieces.join("\n    ")
}

/// An i64 as a C `long long` constant; the minimum has no literal of its own.
fn c_integer(value: i64) -> String {
    if value == i64::MIN {
        "(-9223372036854775807LL - 1)".to_string()
    } else {
        format!("{value}LL")
    }
}

fn rust_integer(value: i64) -> String {
    match value {
        i64::MIN => "i64::MIN".to_string(),
        i64::MAX => "i64::MAX".to_string(),
        _ => value.to_string(),
    }
}

/// What `--help` prints: the usage line, then (when the spec declares options) one line per
/// option with its help and default. The same text in every language.
fn help_text(plan: &Plan, options: &[OptionView], client_extra_usage: &str) -> String {
    let mut usage = if plan.is_client() {
        format!(
            "usage: {} [-a HOST] [-p PORT] [-c CONNECTIONS]{client_extra_usage}",
            plan.name
        )
    } else {
        format!("usage: {} [-a ADDRESS] [-p PORT]", plan.name)
    };
    for option in options {
        usage.push_str(&format!(" [{}]", option.synopsis));
    }
    if options.is_empty() {
        return usage;
    }
    usage.push_str("\n\noptions of this program:");
    let width = options.iter().map(|o| o.synopsis.len()).max().unwrap_or(0);
    for (option, declared) in options.iter().zip(&plan.options) {
        let default = match &declared.default {
            OptionValue::Text(text) if text.is_empty() => "none".to_string(),
            OptionValue::Text(text) => text.clone(),
            OptionValue::Int(i) => i.to_string(),
            OptionValue::Bool(true) => "on; --no-".to_string() + &option.flag + " turns it off",
            OptionValue::Bool(false) => "off".to_string(),
        };
        let range = match option.kind {
            OptionType::Int if option.expected != "an integer" => {
                format!("; {} to {}", declared.min, declared.max)
            }
            _ => String::new(),
        };
        usage.push_str(&format!(
            "\n  {:width$}  {} (default: {default}{range})",
            option.synopsis, declared.help
        ));
    }
    usage
}

impl View {
    pub fn new(plan: &Plan) -> View {
        let tcp = plan.is_tcp();
        let keepalive = plan.socket.keepalive;
        let client = plan.client.as_ref();
        let client_extra_usage = match plan.handler {
            Handler::EchoCheck if plan.is_client() => " [-n MESSAGES]",
            Handler::Load if plan.is_client() => " [-d DURATION_MS]",
            _ => "",
        };
        let options: Vec<OptionView> = plan.options.iter().map(OptionView::new).collect();
        let help = help_text(plan, &options, client_extra_usage);
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
            client_extra_usage,
            help_c: c_string_lines(&help),
            help_rust: format!("{help:?}"),
            options_take_values: options.iter().any(|o| o.kind != OptionType::Bool),
            options_copy: options
                .iter()
                .all(|o| matches!(o.kind, OptionType::Bool | OptionType::Int)),
            options,
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
