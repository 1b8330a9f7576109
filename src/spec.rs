//! Stage 2, **decode**: the raw spec as the user wrote it, every value with its span.
//!
//! The same types derive the JSON Schema (`sockgen schema`), so the documented keys and the
//! decoded keys cannot drift apart unnoticed (a unit test compares them). Decoding checks the
//! shape and range of each value and collects every problem; cross-field and per-target checks
//! belong to `validate`.

use std::ops::RangeInclusive;

use schemars::JsonSchema;

use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::source::{Entry, Node, Span, Value};

/// A value from the spec and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    /// The value's span.
    pub span: Span,
    /// The key's span: where to point when the key itself is the problem.
    pub key_span: Span,
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// Accepted ranges, shared by the decoder and the JSON Schema.
pub mod limits {
    pub const PORT_MAX: i128 = 65_535;
    pub const BUFFER_MIN: i128 = 1_024;
    pub const BUFFER_MAX: i128 = 64 << 20;
    pub const IO_BUFFER_MIN: i128 = 512;
    pub const IO_BUFFER_MAX: i128 = 16 << 20;
    pub const OUTPUT_BUFFER_MAX: i128 = 256 << 20;
    pub const KEEPALIVE_SECONDS_MAX: i128 = 32_767;
    pub const KEEPALIVE_COUNT_MAX: i128 = 127;
    pub const LINGER_MAX: i128 = 65_535;
    pub const BACKLOG_MAX: i128 = 65_535;
    pub const WORKERS_MAX: i128 = 256;
    pub const CONNECTIONS_MAX: i128 = 1_000_000;
    pub const IDLE_TIMEOUT_MAX: i128 = 86_400_000;
    pub const EVENTS_MAX: i128 = 65_536;
    pub const NAME_MAX_LEN: usize = 48;
    pub const MESSAGE_MIN: i128 = 16;
    pub const MESSAGE_MAX: i128 = 256 << 20;
    pub const OUTPUT_LIMIT_MAX: i128 = 4 << 30;
    pub const LINGER_MS_MAX: i128 = 60_000;
    pub const STACK_MIN: i128 = 64 << 10;
    pub const STACK_MAX: i128 = 64 << 20;
    pub const DELIMITER_MAX_LEN: usize = 16;
    pub const CONNECT_TIMEOUT_MAX: i128 = 600_000;
    pub const ATTEMPTS_MAX: i128 = 1_000;
    pub const BACKOFF_MAX: i128 = 600_000;
    pub const POOL_MAX: i128 = 10_000;
    pub const MESSAGES_MAX: i128 = 1_000_000;
    pub const PAYLOAD_MAX: i128 = 64 << 20;
    pub const SIZES_MAX_LEN: usize = 32;
    pub const DURATION_MAX: i128 = 3_600_000;
    pub const HOST_MAX_LEN: usize = 253;
    pub const OPTIONS_MAX: usize = 32;
}

macro_rules! keyword_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema, serde::Serialize)]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $text)] $variant),+ }

        impl Keyword for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::parse(s)
            }
        }
    };
}

/// A closed set of words, such as the protocols.
pub trait Keyword: Sized + Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(&self) -> &'static str;

    fn parse(text: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| {
                let choices: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                match did_you_mean(text, choices.iter().copied()) {
                    Some(close) => {
                        format!("did you mean `{close}`? (one of {})", choices.join(", "))
                    }
                    None => format!("expected one of {}", choices.join(", ")),
                }
            })
    }
}

keyword_enum!(
    /// Whether the program accepts connections or makes them.
    Role { Server = "server", Client = "client" }
);
keyword_enum!(
    /// Transport protocol.
    Protocol { Tcp = "tcp", Udp = "udp" }
);
keyword_enum!(
    /// Output language.
    Lang {
        /// C11 for POSIX/Linux.
        C = "c",
        /// Rust for Linux.
        Rust = "rust",
        /// C for Windows Winsock.
        Winsock = "winsock"
    }
);
keyword_enum!(
    /// I/O model of the event loop.
    Model {
        /// One thread per connection with blocking calls.
        Blocking = "blocking",
        /// poll(2) / WSAPoll readiness loop.
        Poll = "poll",
        /// Linux epoll, edge-triggered.
        Epoll = "epoll",
        /// Linux io_uring completion loop.
        IoUring = "io_uring",
        /// Windows I/O completion ports.
        Iocp = "iocp"
    }
);
keyword_enum!(
    /// What the server does with the bytes it receives.
    Handler {
        /// RFC 862: send back every byte received.
        Echo = "echo",
        /// RFC 863: read and drop everything.
        Discard = "discard",
        /// RFC 864: send a stream of printable characters, ignore input.
        Chargen = "chargen",
        /// Your own protocol in the generated handler callbacks.
        Custom = "custom",
        /// Client: sends random payloads of `client.sizes`, checks every echoed byte, prints
        /// one summary line; exit 0 only when everything came back intact.
        EchoCheck = "echo-check",
        /// Client: closed-loop load (each connection sends, waits for the echo, sends again)
        /// for `client.duration_ms`, then prints msgs/s and latency percentiles.
        Load = "load"
    }
);

keyword_enum!(
    /// How the byte stream is cut into messages before the handler sees it.
    FramingKind {
        /// The raw stream: `on_data` sees every unconsumed byte and says how many it used.
        None = "none",
        /// Lines ending in LF; a CR before it is dropped too.
        Line = "line",
        /// A big- or little-endian length of 1, 2, 4 or 8 bytes, then that many bytes.
        LengthPrefix = "length_prefix",
        /// Messages separated by the bytes of `delimiter`.
        Delimiter = "delimiter"
    }
);
keyword_enum!(
    /// What a generated program logs to stderr beyond its errors.
    LogLevel {
        /// Errors and throttled warnings only.
        Errors = "errors",
        /// Also every socket operation, one `key=value` line each (compiled out otherwise).
        Ops = "ops"
    }
);
keyword_enum!(
    /// Byte order of a length prefix.
    Endian { Big = "big", Little = "little" }
);
keyword_enum!(
    /// What a program option of the spec takes on the command line.
    OptionType {
        /// A file or directory (non-empty); Rust gets a `PathBuf`.
        Path = "path",
        /// Any text.
        String = "string",
        /// A 64-bit signed integer, within `min` and `max` when given.
        Int = "int",
        /// A switch: `--NAME` sets it, `--no-NAME` clears it.
        Bool = "bool"
    }
);

/// A socket spec: everything sockgen needs to generate a server.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(title = "sockgen spec", deny_unknown_fields)]
pub struct Spec {
    /// Prefix of every generated identifier and the program's name. Letters, digits and `_`,
    /// starting with a letter; at most 48 characters. Required.
    #[schemars(length(min = 1, max = 48), regex(pattern = r"^[A-Za-z][A-Za-z0-9_]*$"))]
    pub name: Option<Spanned<String>>,
    /// `server` (default) or `client` (settings in `client`).
    pub role: Option<Spanned<Role>>,
    /// `tcp` (default) or `udp`.
    pub protocol: Option<Spanned<Protocol>>,
    /// Server: the IPv4 or IPv6 literal it binds (default `127.0.0.1`; `0.0.0.0` or `::` for
    /// all interfaces). Client: the host it connects to, a literal or a DNS name resolved at
    /// start (every address tried in order; default `127.0.0.1`).
    pub address: Option<Spanned<String>>,
    /// Server: port to bind, 0–65535 (default 0: the kernel picks one and the program prints
    /// it). Client: port to connect to (0: the program must be given `-p PORT`).
    #[schemars(range(min = 0, max = 65535))]
    pub port: Option<Spanned<u16>>,
    /// Output language when `--lang` is not given (default `c`).
    pub lang: Option<Spanned<Lang>>,
    /// I/O model when `--model` is not given (default `epoll` for c and rust, `iocp` for winsock).
    pub model: Option<Spanned<Model>>,
    /// Built-in handler or `custom` callbacks (default `echo`).
    pub handler: Option<Spanned<Handler>>,
    /// Socket options.
    pub socket: Option<Spanned<SocketSpec>>,
    /// Server limits (role: server).
    pub server: Option<Spanned<ServerSpec>>,
    /// Connecting, retrying and the built-in client handlers (role: client).
    pub client: Option<Spanned<ClientSpec>>,
    /// Application buffers and event batching.
    pub io: Option<Spanned<IoSpec>>,
    /// Built-in framing (TCP only): the handler receives whole messages in `on_message`.
    pub framing: Option<Spanned<FramingSpec>>,
    /// `errors` (default) or `ops`: also log every socket operation (socket, setsockopt, bind,
    /// listen, accept, recv/send sizes, shutdown, close, errors with errno name) to stderr, one
    /// `key=value` line each. Compiled out entirely when not `ops`.
    pub log: Option<Spanned<LogLevel>>,
    /// More C files of yours (beside the handler file, relative to the `-o` directory) that the
    /// generated Makefile compiles into the program, e.g. `[store.c, parser.c]`. Rust projects
    /// declare their modules in `src/main.rs` instead.
    #[schemars(length(max = 64))]
    pub sources: Option<Spanned<Vec<Spanned<String>>>>,
    /// The program's own command-line options, beside the built-in ones: each becomes
    /// `--NAME VALUE` (`--NAME` and `--no-NAME` for a bool), is listed by `--help`, checked
    /// for its type (exit 2 on a bad value) and handed to the handler: a field of
    /// `NAME_options()` in C, of `options()` in Rust.
    #[schemars(length(max = 32))]
    pub options: Option<Spanned<Vec<Spanned<OptionSpec>>>>,
}

/// One command-line option of the program.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct OptionSpec {
    /// The field's name and, with `-` for `_`, the option's (`key_space` is `--key-space`):
    /// lower-case letters, digits and `_`, starting with a letter, at most 32 characters.
    /// Required.
    #[schemars(length(min = 1, max = 32), regex(pattern = r"^[a-z][a-z0-9_]*$"))]
    pub name: Option<Spanned<String>>,
    /// `path`, `string`, `int` or `bool`. Required.
    #[schemars(rename = "type")]
    pub kind: Option<Spanned<OptionType>>,
    /// The value when the option is not given, of the option's type (default: empty text, 0
    /// or false).
    pub default: Option<Spanned<OptionDefault>>,
    /// Smallest value an `int` takes (default: the 64-bit minimum).
    pub min: Option<Spanned<i64>>,
    /// Largest value an `int` takes (default: the 64-bit maximum).
    pub max: Option<Spanned<i64>>,
    /// One line for `--help`, at most 200 characters. Required.
    #[schemars(length(min = 1, max = 200))]
    pub help: Option<Spanned<String>>,
}

/// A program option's default, as the spec writes it.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum OptionDefault {
    Bool(bool),
    Int(i64),
    Text(String),
}

/// Built-in framing of a TCP stream into messages, each at most `io.max_message` bytes.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FramingSpec {
    /// `none` (default), `line`, `length_prefix` or `delimiter`.
    pub kind: Option<Spanned<FramingKind>>,
    /// Length prefix size in bytes: 1, 2, 4 (default) or 8 (`length_prefix` only).
    #[schemars(range(min = 1, max = 8))]
    pub bytes: Option<Spanned<u8>>,
    /// Length prefix byte order: `big` (default, network order) or `little` (`length_prefix` only).
    pub endian: Option<Spanned<Endian>>,
    /// The separator, 1–16 bytes (`delimiter` only). YAML and TOML escapes such as "\r\n" work.
    #[schemars(length(min = 1, max = 16))]
    pub delimiter: Option<Spanned<String>>,
}

/// Socket options applied to the listening socket (and inherited by accepted ones).
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SocketSpec {
    /// SO_REUSEADDR. TCP (default true): restart without waiting for TIME_WAIT to expire. UDP
    /// (default false): it would let a second process bind the same port and take the traffic,
    /// so it is set only when asked for.
    pub reuseaddr: Option<Spanned<bool>>,
    /// IPV6_V6ONLY for an IPv6 address (default true): `::` then accepts IPv6 only, whatever the
    /// `net.ipv6.bindv6only` sysctl says; false accepts IPv4-mapped peers too.
    pub v6only: Option<Spanned<bool>>,
    /// SO_REUSEPORT (default false; Linux). Required when `server.workers` > 1.
    pub reuseport: Option<Spanned<bool>>,
    /// TCP_NODELAY (default true; TCP only): send small replies without Nagle's delay.
    pub nodelay: Option<Spanned<bool>>,
    /// SO_RCVBUF in bytes, 1024–67108864 (default: the kernel's).
    #[schemars(range(min = 1024, max = 67108864))]
    pub recv_buffer: Option<Spanned<u32>>,
    /// SO_SNDBUF in bytes, 1024–67108864 (default: the kernel's).
    #[schemars(range(min = 1024, max = 67108864))]
    pub send_buffer: Option<Spanned<u32>>,
    /// TCP keepalive probes (TCP only; default off).
    pub keepalive: Option<Spanned<KeepaliveSpec>>,
    /// SO_LINGER seconds, 0–65535; 0 resets connections on close (default: off, null).
    #[schemars(range(min = 0, max = 65535))]
    pub linger_s: Option<Spanned<u16>>,
}

/// TCP keepalive timing.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct KeepaliveSpec {
    /// Idle seconds before the first probe, 1–32767 (default 60).
    #[schemars(range(min = 1, max = 32767))]
    pub idle_s: Option<Spanned<u16>>,
    /// Seconds between probes, 1–32767 (default 10).
    #[schemars(range(min = 1, max = 32767))]
    pub interval_s: Option<Spanned<u16>>,
    /// Unanswered probes before the connection is dropped, 1–127 (default 5).
    #[schemars(range(min = 1, max = 127))]
    pub count: Option<Spanned<u8>>,
}

/// Limits of the server.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ServerSpec {
    /// listen(2) backlog, 1–65535 (default 1024; TCP only; the kernel caps it at somaxconn).
    #[schemars(range(min = 1, max = 65535))]
    pub backlog: Option<Spanned<u32>>,
    /// Event loops, each on its own thread and SO_REUSEPORT socket, 1–256 (default 1; poll and epoll).
    #[schemars(range(min = 1, max = 256))]
    pub workers: Option<Spanned<u32>>,
    /// Open connections per worker, 1–1000000 (default 10000; TCP only). At the limit the
    /// server stops accepting; waiting peers stay in the backlog.
    #[schemars(range(min = 1, max = 1000000))]
    pub max_connections: Option<Spanned<u32>>,
    /// Close a connection after this many ms without traffic, 0–86400000; 0 = never (default 30000; TCP only).
    #[schemars(range(min = 0, max = 86400000))]
    pub idle_timeout_ms: Option<Spanned<u32>>,
    /// Lingering close, 0–60000 ms (default 2000; TCP only): after the last byte of a closing
    /// connection is sent, the server half-closes and reads and drops the peer's input for at
    /// most this long, so unread input does not turn the close into a reset that destroys the reply.
    #[schemars(range(min = 0, max = 60000))]
    pub linger_ms: Option<Spanned<u32>>,
    /// Stack of each connection thread in bytes, 65536–67108864 (default 262144; blocking only).
    #[schemars(range(min = 65536, max = 67108864))]
    pub stack_size: Option<Spanned<u32>>,
}

/// How a client connects, retries and (with the built-in handlers) what it sends.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ClientSpec {
    /// How long one connect to one address may take, 1–600000 ms (default 5000); then the
    /// next address is tried, or the attempt counts as failed.
    #[schemars(range(min = 1, max = 600000))]
    pub connect_timeout_ms: Option<Spanned<u32>>,
    /// Close a connection after this many ms without traffic, 0–86400000; 0 = never (default
    /// 30000). It ends with reason `idle_timeout` and is retried like a reset.
    #[schemars(range(min = 0, max = 86400000))]
    pub idle_timeout_ms: Option<Spanned<u32>>,
    /// Reconnecting after a refused, timed-out or reset connection.
    pub retry: Option<Spanned<RetrySpec>>,
    /// How many connections the client keeps open at once.
    pub pool: Option<Spanned<PoolSpec>>,
    /// Messages each connection sends (echo-check), 1–1000000 (default 16).
    #[schemars(range(min = 1, max = 1000000))]
    pub messages: Option<Spanned<u32>>,
    /// Payload sizes in bytes, 1–67108864 each, used in turn (echo-check; load uses the
    /// first); at most 32 (default [1, 1024, 65536]).
    #[schemars(length(min = 1, max = 32))]
    pub sizes: Option<Spanned<Vec<Spanned<u32>>>>,
    /// How long `load` runs, 1–3600000 ms (default 5000).
    #[schemars(range(min = 1, max = 3600000))]
    pub duration_ms: Option<Spanned<u32>>,
}

/// Exponential backoff with full jitter: before retry n the client waits a random time
/// between 0 and min(max_ms, base_ms × 2^(n-1)).
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RetrySpec {
    /// Failed attempts in a row after which a connection gives up and the program exits
    /// non-zero, 1–1000 (default 5; 1 = never retry).
    #[schemars(range(min = 1, max = 1000))]
    pub max_attempts: Option<Spanned<u32>>,
    /// First backoff ceiling in ms, 1–600000 (default 100).
    #[schemars(range(min = 1, max = 600000))]
    pub base_ms: Option<Spanned<u32>>,
    /// Largest backoff ceiling in ms, 1–600000 (default 5000), at least base_ms.
    #[schemars(range(min = 1, max = 600000))]
    pub max_ms: Option<Spanned<u32>>,
}

/// The client's connections.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PoolSpec {
    /// Connections open at once, 1–10000 (default 1). A broken one is replaced (with
    /// backoff) while the others keep working.
    #[schemars(range(min = 1, max = 10000))]
    pub size: Option<Spanned<u32>>,
}

/// Application buffers.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct IoSpec {
    /// Bytes read per receive call, 512–16777216 (default 16384 for TCP, 65536 for UDP). A UDP
    /// datagram longer than this is dropped and logged, never handled cut short.
    #[schemars(range(min = 512, max = 16777216))]
    pub buffer_size: Option<Spanned<u32>>,
    /// High-water mark of each connection's output queue in bytes, from buffer_size to
    /// 268435456 (default 4 × buffer_size). Handlers may queue beyond it; while the queue is
    /// above it the server stops reading that peer, and resumes below half of it. UDP: the
    /// longest reply datagram (default buffer_size, since a reply is one datagram).
    #[schemars(range(min = 512, max = 268435456))]
    pub output_buffer: Option<Spanned<u32>>,
    /// Hard limit of a connection's output queue in bytes, from output_buffer to 4294967296
    /// (default 64 MiB, at least 4 × output_buffer): a peer that lets more pile up is closed,
    /// with reason `output_limit` (redis's client-output-buffer-limit).
    #[schemars(range(min = 512, max = 4294967296u64))]
    pub output_limit: Option<Spanned<u64>>,
    /// Most input a connection may hold unconsumed (or the longest framed message), 16–268435456
    /// bytes (default 1048576): past it the connection is closed with reason `input_limit`.
    #[schemars(range(min = 16, max = 268435456))]
    pub max_message: Option<Spanned<u32>>,
    /// Events taken per epoll_wait, 1–65536 (default 256).
    #[schemars(range(min = 1, max = 65536))]
    pub max_events: Option<Spanned<u32>>,
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Collects diagnostics while decoding; `keys_seen` lets a test compare with the schema.
#[derive(Default)]
pub struct Decoder {
    pub diagnostics: Vec<Diagnostic>,
    /// Every (table path, key) the decoder knows, in order.
    pub known_keys: Vec<(String, &'static str)>,
    /// The spec is TOML: hints speak its syntax (`key = true`, not YAML's).
    pub toml: bool,
}

impl Decoder {
    fn error(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }
}

/// One table being decoded: remembers which keys were asked for, so the rest are unknown.
struct Table<'n> {
    path: String,
    entries: &'n [Entry],
    asked: Vec<&'static str>,
}

impl<'n> Table<'n> {
    fn new(path: &str, node: &'n Node, dec: &mut Decoder) -> Option<Table<'n>> {
        match &node.value {
            Value::Map(entries) => Some(Table {
                path: path.to_string(),
                entries,
                asked: Vec::new(),
            }),
            other => {
                let what = if path.is_empty() {
                    "the spec".to_string()
                } else {
                    format!("`{path}`")
                };
                dec.error(
                    Diagnostic::error(format!(
                        "{what} must be a table, found {}",
                        other.kind_name()
                    ))
                    .with_span(node.span.clone()),
                );
                None
            }
        }
    }

    fn entry(&mut self, key: &'static str, dec: &mut Decoder) -> Option<&'n Entry> {
        self.asked.push(key);
        dec.known_keys.push((self.path.clone(), key));
        // YAML `key: ~` and `key:` mean "not set", the same as leaving the key out.
        self.entries
            .iter()
            .find(|e| e.key == key)
            .filter(|e| e.value.value != Value::Null)
    }

    fn full_key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn bool(&mut self, key: &'static str, dec: &mut Decoder) -> Option<Spanned<bool>> {
        let entry = self.entry(key, dec)?;
        match &entry.value.value {
            Value::Bool(b) => Some(spanned(*b, entry)),
            other => {
                let found = match other {
                    Value::Str(s) => format!("the string \"{s}\""),
                    other => other.kind_name().to_string(),
                };
                dec.error(
                    Diagnostic::error(format!(
                        "`{}` must be true or false, found {found}",
                        self.full_key(key)
                    ))
                    .with_span(entry.value.span.clone())
                    .with_label("expected a boolean")
                    .with_hint(if dec.toml {
                        format!("write {key} = true or {key} = false, without quotes")
                    } else {
                        "write true or false (YAML 1.2 reads yes/no/on/off as strings)".to_string()
                    }),
                );
                None
            }
        }
    }

    fn int<T: TryFrom<i128>>(
        &mut self,
        key: &'static str,
        range: RangeInclusive<i128>,
        dec: &mut Decoder,
    ) -> Option<Spanned<T>> {
        let entry = self.entry(key, dec)?;
        let full = self.full_key(key);
        let value = match &entry.value.value {
            Value::Int(i) => *i,
            Value::Str(s) if unit_amount(&full, s).is_some() => {
                let (amount, unit) = unit_amount(&full, s).unwrap_or_default();
                dec.error(
                    Diagnostic::error(format!(
                        "`{full}` must be a number, found the string \"{s}\""
                    ))
                    .with_span(entry.value.span.clone())
                    .with_label("expected an integer")
                    .with_hint(format!("write {amount} (the key's unit is {unit})")),
                );
                return None;
            }
            Value::Str(s) if s.trim().parse::<i128>().is_ok() => {
                dec.error(
                    Diagnostic::error(format!(
                        "`{full}` must be a number, found the string \"{s}\""
                    ))
                    .with_span(entry.value.span.clone())
                    .with_label("expected an integer")
                    .with_hint(format!("remove the quotes around {}", s.trim())),
                );
                return None;
            }
            other => {
                dec.error(
                    Diagnostic::error(format!(
                        "`{full}` must be an integer, found {}",
                        other.kind_name()
                    ))
                    .with_span(entry.value.span.clone())
                    .with_label("expected an integer"),
                );
                return None;
            }
        };
        if !range.contains(&value) {
            dec.error(
                Diagnostic::error(format!(
                    "`{full}` is {value}, outside {}..={}",
                    range.start(),
                    range.end()
                ))
                .with_span(entry.value.span.clone())
                .with_label("out of range")
                .with_hint(format!(
                    "choose a value from {} to {}",
                    range.start(),
                    range.end()
                )),
            );
            return None;
        }
        // The range is within T for every caller, so this only fails on a programming error,
        // which we still report instead of panicking.
        match T::try_from(value) {
            Ok(v) => Some(spanned(v, entry)),
            Err(_) => {
                dec.error(
                    Diagnostic::error(format!("`{full}` does not fit"))
                        .with_span(entry.value.span.clone()),
                );
                None
            }
        }
    }

    fn string(&mut self, key: &'static str, dec: &mut Decoder) -> Option<Spanned<String>> {
        let entry = self.entry(key, dec)?;
        match &entry.value.value {
            Value::Str(s) => Some(spanned(s.clone(), entry)),
            other => {
                dec.error(
                    Diagnostic::error(format!(
                        "`{}` must be a string, found {}",
                        self.full_key(key),
                        other.kind_name()
                    ))
                    .with_span(entry.value.span.clone())
                    .with_label("expected a string")
                    .with_hint("quote it"),
                );
                None
            }
        }
    }

    fn string_list(
        &mut self,
        key: &'static str,
        dec: &mut Decoder,
    ) -> Option<Spanned<Vec<Spanned<String>>>> {
        let entry = self.entry(key, dec)?;
        let full = self.full_key(key);
        let Value::Seq(items) = &entry.value.value else {
            dec.error(
                Diagnostic::error(format!(
                    "`{full}` must be a list of strings, found {}",
                    entry.value.value.kind_name()
                ))
                .with_span(entry.value.span.clone())
                .with_hint(format!("write {key}: [a.c, b.c]")),
            );
            return None;
        };
        let mut values = Vec::new();
        for item in items {
            match &item.value {
                Value::Str(text) => values.push(Spanned {
                    value: text.clone(),
                    span: item.span.clone(),
                    key_span: item.span.clone(),
                }),
                other => dec.error(
                    Diagnostic::error(format!(
                        "`{full}` must hold strings, found {}",
                        other.kind_name()
                    ))
                    .with_span(item.span.clone())
                    .with_label("expected a file name"),
                ),
            }
        }
        Some(spanned(values, entry))
    }

    fn int_list(
        &mut self,
        key: &'static str,
        range: RangeInclusive<i128>,
        max_len: usize,
        dec: &mut Decoder,
    ) -> Option<Spanned<Vec<Spanned<u32>>>> {
        let entry = self.entry(key, dec)?;
        let full = self.full_key(key);
        let Value::Seq(items) = &entry.value.value else {
            dec.error(
                Diagnostic::error(format!(
                    "`{full}` must be a list of integers, found {}",
                    entry.value.value.kind_name()
                ))
                .with_span(entry.value.span.clone())
                .with_hint(format!("write {key}: [1, 1024, 65536]")),
            );
            return None;
        };
        if items.is_empty() || items.len() > max_len {
            dec.error(
                Diagnostic::error(format!(
                    "`{full}` has {} entries; it takes 1 to {max_len}",
                    items.len()
                ))
                .with_span(entry.value.span.clone()),
            );
            return None;
        }
        let mut values = Vec::new();
        for item in items {
            match &item.value {
                Value::Int(i) if range.contains(i) => values.push(Spanned {
                    value: *i as u32,
                    span: item.span.clone(),
                    key_span: item.span.clone(),
                }),
                Value::Int(i) => dec.error(
                    Diagnostic::error(format!(
                        "`{full}` holds {i}, outside {}..={}",
                        range.start(),
                        range.end()
                    ))
                    .with_span(item.span.clone())
                    .with_label("out of range"),
                ),
                other => dec.error(
                    Diagnostic::error(format!(
                        "`{full}` must hold integers, found {}",
                        other.kind_name()
                    ))
                    .with_span(item.span.clone())
                    .with_label("expected an integer"),
                ),
            }
        }
        Some(spanned(values, entry))
    }

    /// A program option's default: a boolean, an integer or a string (which one is right is
    /// checked against the option's type later).
    fn option_default(
        &mut self,
        key: &'static str,
        dec: &mut Decoder,
    ) -> Option<Spanned<OptionDefault>> {
        let entry = self.entry(key, dec)?;
        let value = match &entry.value.value {
            Value::Bool(b) => OptionDefault::Bool(*b),
            Value::Int(i) => match i64::try_from(*i) {
                Ok(i) => OptionDefault::Int(i),
                Err(_) => {
                    dec.error(
                        Diagnostic::error(format!(
                            "`{}` is {i}, outside the 64-bit integers",
                            self.full_key(key)
                        ))
                        .with_span(entry.value.span.clone())
                        .with_label("out of range"),
                    );
                    return None;
                }
            },
            Value::Str(s) => OptionDefault::Text(s.clone()),
            other => {
                dec.error(
                    Diagnostic::error(format!(
                        "`{}` must be a boolean, an integer or a string, found {}",
                        self.full_key(key),
                        other.kind_name()
                    ))
                    .with_span(entry.value.span.clone())
                    .with_label("not a default value"),
                );
                return None;
            }
        };
        Some(spanned(value, entry))
    }

    /// A list of tables, each decoded like a nested table (unknown keys are errors).
    fn table_list<T>(
        &mut self,
        key: &'static str,
        max_len: usize,
        dec: &mut Decoder,
        decode: impl for<'t> Fn(&mut Table<'t>, &mut Decoder) -> T,
    ) -> Option<Spanned<Vec<Spanned<T>>>> {
        let full = self.full_key(key);
        let Some(entry) = self.entry(key, dec) else {
            // Decode one empty item, so `known_keys` lists the item's keys too.
            let empty = Node {
                value: Value::Map(Vec::new()),
                span: 0..0,
            };
            if let Some(mut table) = Table::new(&full, &empty, dec) {
                decode(&mut table, dec);
            }
            return None;
        };
        let Value::Seq(items) = &entry.value.value else {
            dec.error(
                Diagnostic::error(format!(
                    "`{full}` must be a list of tables, found {}",
                    entry.value.value.kind_name()
                ))
                .with_span(entry.value.span.clone())
                .with_hint(format!("write each entry as `- name: ...` under {key}:")),
            );
            return None;
        };
        if items.len() > max_len {
            dec.error(
                Diagnostic::error(format!(
                    "`{full}` has {} entries; at most {max_len} are allowed",
                    items.len()
                ))
                .with_span(entry.value.span.clone()),
            );
            return None;
        }
        let mut values = Vec::new();
        for item in items {
            let mut probe = Decoder::default();
            let Some(mut table) = Table::new(&full, item, dec) else {
                continue;
            };
            // Keys of the list's items are listed once, by the absent-list probe above; each
            // item's own listing goes to a scratch decoder.
            let value = decode(&mut table, &mut probe);
            table.finish(&mut probe);
            dec.diagnostics.append(&mut probe.diagnostics);
            values.push(Spanned {
                value,
                span: item.span.clone(),
                key_span: item.span.clone(),
            });
        }
        Some(spanned(values, entry))
    }

    fn keyword<K: Keyword>(&mut self, key: &'static str, dec: &mut Decoder) -> Option<Spanned<K>> {
        let entry = self.entry(key, dec)?;
        let full = self.full_key(key);
        let text = match &entry.value.value {
            Value::Str(s) => s,
            other => {
                let choices: Vec<&str> = K::ALL.iter().map(|k| k.as_str()).collect();
                dec.error(
                    Diagnostic::error(format!(
                        "`{full}` must be one of {}, found {}",
                        choices.join(", "),
                        other.kind_name()
                    ))
                    .with_span(entry.value.span.clone()),
                );
                return None;
            }
        };
        match K::parse(text) {
            Ok(k) => Some(spanned(k, entry)),
            Err(hint) => {
                dec.error(
                    Diagnostic::error(format!("unknown {key} `{text}`"))
                        .with_span(entry.value.span.clone())
                        .with_label(format!("not a {key}"))
                        .with_hint(hint),
                );
                None
            }
        }
    }

    fn table<T>(
        &mut self,
        key: &'static str,
        dec: &mut Decoder,
        decode: impl for<'t> FnOnce(&mut Table<'t>, &mut Decoder) -> T,
    ) -> Option<Spanned<T>> {
        let full = self.full_key(key);
        let entry = self.entry(key, dec);
        // Decode even when absent, so `known_keys` lists the nested keys too.
        let empty = Node {
            value: Value::Map(Vec::new()),
            span: 0..0,
        };
        let node = entry.map(|e| &e.value).unwrap_or(&empty);
        let mut table = Table::new(&full, node, dec)?;
        let value = decode(&mut table, dec);
        table.finish(dec);
        entry.map(|e| spanned(value, e))
    }

    /// Every key nobody asked for is unknown; suggest the closest known one.
    fn finish(self, dec: &mut Decoder) {
        for e in self.entries {
            if self.asked.contains(&e.key.as_str()) {
                continue;
            }
            let full = self.full_key(&e.key);
            let mut d = Diagnostic::error(format!("unknown key `{full}`"))
                .with_span(e.key_span.clone())
                .with_label("not a spec key");
            d = match did_you_mean(&e.key, self.asked.iter().copied()) {
                Some(close) => d.with_hint(format!("did you mean `{close}`?")),
                None => {
                    let hint = match nested_home(&e.key) {
                        Some(table) if table != self.path => {
                            format!("`{}` belongs in the `{table}` table", e.key)
                        }
                        _ => format!("known keys here: {}", self.asked.join(", ")),
                    };
                    d.with_hint(hint)
                }
            };
            dec.error(d);
        }
    }
}

/// A duration or size written with a unit (`30s`, `64KiB`) for a key whose name gives the
/// unit (`_ms`, `_s`, sizes in bytes): the number the key wants, and its unit.
fn unit_amount(key: &str, text: &str) -> Option<(u128, &'static str)> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let amount: u128 = digits.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let seconds_scale = |to: &str| -> Option<u128> {
        let ms = match unit.as_str() {
            "ms" => 1,
            "s" | "sec" | "secs" | "second" | "seconds" => 1000,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
            "h" | "hour" | "hours" => 3_600_000,
            _ => return None,
        };
        match to {
            "ms" => Some(amount * ms),
            _ if ms >= 1000 => Some(amount * ms / 1000),
            _ => None,
        }
    };
    if key.ends_with("_ms") {
        return seconds_scale("ms").map(|n| (n, "milliseconds"));
    }
    if key.ends_with("_s") {
        return seconds_scale("s").map(|n| (n, "seconds"));
    }
    let bytes = match unit.as_str() {
        "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    let sized = ["buffer", "limit", "message", "size", "stack"]
        .iter()
        .any(|word| key.contains(word));
    sized.then_some((amount * bytes, "bytes"))
}

/// Every key the decoder knows, with the path of the table it belongs to, in spec order: found
/// by decoding an empty spec, which visits every key (absent ones included).
fn probed_keys() -> Vec<(String, &'static str)> {
    let mut probe = Decoder::default();
    decode_root(
        &Node {
            value: Value::Map(Vec::new()),
            span: 0..0,
        },
        &mut probe,
    );
    probe.known_keys
}

/// Where a key belongs when it was written in the wrong table (e.g. `nodelay` at the top).
fn nested_home(key: &str) -> Option<String> {
    probed_keys()
        .into_iter()
        .find(|(path, k)| *k == key && !path.is_empty())
        .map(|(path, _)| path)
}

fn spanned<T>(value: T, entry: &Entry) -> Spanned<T> {
    Spanned {
        value,
        span: entry.value.span.clone(),
        key_span: entry.key_span.clone(),
    }
}

/// Decodes a parsed spec; problems land in `dec.diagnostics`.
pub fn decode(root: &Node, dec: &mut Decoder) -> Spec {
    decode_root(root, dec)
}

fn decode_root(root: &Node, dec: &mut Decoder) -> Spec {
    use limits::*;
    let Some(mut t) = Table::new("", root, dec) else {
        return Spec::default();
    };
    let spec = Spec {
        name: t.string("name", dec),
        role: t.keyword("role", dec),
        protocol: t.keyword("protocol", dec),
        address: t.string("address", dec),
        port: t.int("port", 0..=PORT_MAX, dec),
        lang: t.keyword("lang", dec),
        model: t.keyword("model", dec),
        handler: t.keyword("handler", dec),
        socket: t.table("socket", dec, |t, dec| SocketSpec {
            reuseaddr: t.bool("reuseaddr", dec),
            v6only: t.bool("v6only", dec),
            reuseport: t.bool("reuseport", dec),
            nodelay: t.bool("nodelay", dec),
            recv_buffer: t.int("recv_buffer", BUFFER_MIN..=BUFFER_MAX, dec),
            send_buffer: t.int("send_buffer", BUFFER_MIN..=BUFFER_MAX, dec),
            keepalive: t.table("keepalive", dec, |t, dec| KeepaliveSpec {
                idle_s: t.int("idle_s", 1..=KEEPALIVE_SECONDS_MAX, dec),
                interval_s: t.int("interval_s", 1..=KEEPALIVE_SECONDS_MAX, dec),
                count: t.int("count", 1..=KEEPALIVE_COUNT_MAX, dec),
            }),
            linger_s: t.int("linger_s", 0..=LINGER_MAX, dec),
        }),
        server: t.table("server", dec, |t, dec| ServerSpec {
            backlog: t.int("backlog", 1..=BACKLOG_MAX, dec),
            workers: t.int("workers", 1..=WORKERS_MAX, dec),
            max_connections: t.int("max_connections", 1..=CONNECTIONS_MAX, dec),
            idle_timeout_ms: t.int("idle_timeout_ms", 0..=IDLE_TIMEOUT_MAX, dec),
            linger_ms: t.int("linger_ms", 0..=LINGER_MS_MAX, dec),
            stack_size: t.int("stack_size", STACK_MIN..=STACK_MAX, dec),
        }),
        client: t.table("client", dec, |t, dec| ClientSpec {
            connect_timeout_ms: t.int("connect_timeout_ms", 1..=CONNECT_TIMEOUT_MAX, dec),
            idle_timeout_ms: t.int("idle_timeout_ms", 0..=IDLE_TIMEOUT_MAX, dec),
            retry: t.table("retry", dec, |t, dec| RetrySpec {
                max_attempts: t.int("max_attempts", 1..=ATTEMPTS_MAX, dec),
                base_ms: t.int("base_ms", 1..=BACKOFF_MAX, dec),
                max_ms: t.int("max_ms", 1..=BACKOFF_MAX, dec),
            }),
            pool: t.table("pool", dec, |t, dec| PoolSpec {
                size: t.int("size", 1..=POOL_MAX, dec),
            }),
            messages: t.int("messages", 1..=MESSAGES_MAX, dec),
            sizes: t.int_list("sizes", 1..=PAYLOAD_MAX, SIZES_MAX_LEN, dec),
            duration_ms: t.int("duration_ms", 1..=DURATION_MAX, dec),
        }),
        io: t.table("io", dec, |t, dec| IoSpec {
            buffer_size: t.int("buffer_size", IO_BUFFER_MIN..=IO_BUFFER_MAX, dec),
            output_buffer: t.int("output_buffer", IO_BUFFER_MIN..=OUTPUT_BUFFER_MAX, dec),
            output_limit: t.int("output_limit", IO_BUFFER_MIN..=OUTPUT_LIMIT_MAX, dec),
            max_message: t.int("max_message", MESSAGE_MIN..=MESSAGE_MAX, dec),
            max_events: t.int("max_events", 1..=EVENTS_MAX, dec),
        }),
        framing: t.table("framing", dec, |t, dec| FramingSpec {
            kind: t.keyword("kind", dec),
            bytes: t.int("bytes", 1..=8, dec),
            endian: t.keyword("endian", dec),
            delimiter: t.string("delimiter", dec),
        }),
        log: t.keyword("log", dec),
        sources: t.string_list("sources", dec),
        options: t.table_list("options", limits::OPTIONS_MAX, dec, |t, dec| OptionSpec {
            name: t.string("name", dec),
            kind: t.keyword("type", dec),
            default: t.option_default("default", dec),
            min: t.int("min", i64::MIN.into()..=i64::MAX.into(), dec),
            max: t.int("max", i64::MIN.into()..=i64::MAX.into(), dec),
            help: t.string("help", dec),
        }),
    };
    t.finish(dec);
    spec
}

/// Every key the decoder knows, as full paths (`socket.keepalive.idle_s`), in spec order: what
/// the schema, the starter and the reference are each checked against.
pub fn known_key_paths() -> Vec<String> {
    probed_keys()
        .into_iter()
        .map(|(path, key)| {
            if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            }
        })
        .collect()
}

/// The JSON Schema of the spec, draft-07 (what yaml-language-server and taplo read).
pub fn json_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Spec>();
    serde_json::to_value(schema).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The decoder and the published schema must accept exactly the same keys.
    #[test]
    fn schema_and_decoder_know_the_same_keys() {
        let decoded: BTreeSet<String> = known_key_paths().into_iter().collect();

        let schema = json_schema();
        let mut documented = BTreeSet::new();
        fn walk(
            schema: &serde_json::Value,
            root: &serde_json::Value,
            prefix: &str,
            out: &mut BTreeSet<String>,
        ) {
            let resolved = match schema.get("$ref").and_then(|r| r.as_str()) {
                Some(r) => {
                    let name = r.rsplit('/').next().unwrap_or_default();
                    &root["definitions"][name]
                }
                None => schema,
            };
            // Option<T> fields appear as anyOf [T, null].
            if let Some(any) = resolved.get("anyOf").and_then(|a| a.as_array()) {
                for s in any {
                    walk(s, root, prefix, out);
                }
                return;
            }
            // A list of tables (`options`): its items' keys belong to the list's path.
            if let Some(items) = resolved.get("items").filter(|i| i.is_object()) {
                walk(items, root, prefix, out);
                return;
            }
            if let Some(props) = resolved.get("properties").and_then(|p| p.as_object()) {
                assert_eq!(
                    resolved["additionalProperties"],
                    serde_json::Value::Bool(false),
                    "{prefix}"
                );
                for (k, v) in props {
                    let full = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    out.insert(full.clone());
                    walk(v, root, &full, out);
                }
            }
        }
        walk(&schema, &schema, "", &mut documented);
        assert_eq!(decoded, documented);
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    }
}
