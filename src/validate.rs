//! Stage 3, **validate**: `Spec` → `Plan`, collecting every problem in one pass.

use std::net::IpAddr;

use crate::backend::matrix::{default_model, emitted_models, impossible_reason, platform_name};
use crate::backend::{support, Support};
use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::plan::{
    ClientPlan, Framing, IoPlan, Keepalive, OptionValue, Plan, ProgramOption, ServerPlan,
    SocketPlan,
};
use crate::spec::{
    limits, Endian, FramingKind, Handler, IoSpec, Keyword, Lang, Model, OptionDefault, OptionSpec,
    OptionType, Protocol, Role, ServerSpec, SocketSpec, Spanned, Spec,
};

/// What the command line asks for on top of the spec; `None` means "as the spec says".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    pub lang: Option<Lang>,
    pub model: Option<Model>,
}

/// C keywords up to C23, plus names the generated program or libc already owns.
const C_KEYWORDS: &[&str] = &[
    "alignas",
    "alignof",
    "auto",
    "bool",
    "break",
    "case",
    "char",
    "const",
    "constexpr",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "false",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "nullptr",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "static_assert",
    "struct",
    "switch",
    "thread_local",
    "true",
    "typedef",
    "typeof",
    "typeof_unqual",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    "asm",
    "fortran",
];
const C_RESERVED: &[&str] = &[
    "main", "socket", "errno", "signal", "exit", "abort", "accept", "bind", "listen", "connect",
    "read", "write", "send", "recv", "close", "poll", "select", "epoll", "malloc", "free",
    "printf", "stdin", "stdout", "stderr", "NULL", "EOF", "assert", "environ", "time", "index",
    "sockgen",
];

/// Fields the options struct already has (the built-in options), and `help`.
const OPTION_BUILT_IN_NAMES: &[&str] = &[
    "address",
    "host",
    "port",
    "connections",
    "messages",
    "duration",
    "duration_ms",
    "help",
];

/// Lower-case names the C and Winsock headers define as object-like macros (a field named
/// `errno` or `small` would be rewritten by the preprocessor), beyond `C_RESERVED` and the
/// underscored names of `C_SYSTEM_NAMES`.
const C_LOWERCASE_MACROS: &[&str] = &[
    "errno",
    "stdin",
    "stdout",
    "stderr",
    "linux",
    "unix",
    "i386",
    "small",
    "interface",
    "near",
    "far",
    "min",
    "max",
    "hyper",
    "pascal",
    "cdecl",
    "boolean",
    "major",
    "minor",
    "makedev",
    "offsetof",
    "setjmp",
    "alloca",
    "h_addr",
    "s_addr",
    "sa_handler",
    "st_atime",
    "st_mtime",
    "st_ctime",
    "si_pid",
    "si_uid",
    "si_status",
    "si_addr",
    "si_value",
];

/// Keywords of every Rust edition (2015 to 2024), strict and reserved.
const RUST_KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];
/// Crates in every Rust program's namespace, which a module of that name would shadow.
const RUST_RESERVED: &[&str] = &["std", "core", "alloc", "libc", "proc_macro", "test"];
/// Package names Cargo refuses: its own artifact directories and Windows device names.
const CARGO_RESERVED: &[&str] = &[
    "build",
    "deps",
    "examples",
    "incremental",
    "con",
    "prn",
    "aux",
    "nul",
    "com1",
    "com2",
    "com3",
    "com4",
    "com5",
    "com6",
    "com7",
    "com8",
    "com9",
    "lpt1",
    "lpt2",
    "lpt3",
    "lpt4",
    "lpt5",
    "lpt6",
    "lpt7",
    "lpt8",
    "lpt9",
];

/// Every identifier with an underscore that the system headers of the C output declare
/// (glibc, Debian 12), sorted: `scripts/c-system-names.sh` regenerates it, and a test checks
/// it against the headers.
const C_SYSTEM_NAMES: &str = include_str!("backend/c_system_names.txt");

/// What the C output appends to the name (upper case, then as written) to make identifiers.
const C_UPPER_SUFFIXES: &[&str] = &[
    "ADDRESS",
    "PORT",
    "BUFFER_SIZE",
    "OUTPUT_BUFFER",
    "OUTPUT_LOW_WATER",
    "OUTPUT_LIMIT",
    "MAX_MESSAGE",
    "BACKLOG",
    "MAX_CONNECTIONS",
    "IDLE_TIMEOUT_MS",
    "LINGER_MS",
    "WORKERS",
    "MAX_EVENTS",
    "STACK_SIZE",
    "CLOSE_PEER",
    "CLOSE_HANDLER",
    "CLOSE_ABORT",
    "CLOSE_RESET",
    "CLOSE_IDLE",
    "CLOSE_OUTPUT_LIMIT",
    "CLOSE_INPUT_LIMIT",
    "CLOSE_STOPPING",
    "CLOSE_ERROR",
    "LINE_CHARS",
    "CYCLE",
    "RUNTIME_H",
    "RUNTIME_IMPLEMENTATION",
    "RUNTIME_IMPLEMENTED",
];
const C_LOWER_SUFFIXES: &[&str] = &[
    "program",
    "config",
    "conn",
    "info",
    "worker",
    "session",
    "close_reason",
    "close_reason_name",
    "write",
    "printf",
    "pending",
    "congested",
    "want_writable",
    "pause_input",
    "resume_input",
    "timer_set",
    "timer_cancel",
    "close",
    "abort",
    "send_message",
    "on_worker_start",
    "on_worker_stop",
    "on_open",
    "on_data",
    "on_message",
    "on_writable",
    "on_eof",
    "on_timer",
    "on_close",
    "chargen_next",
    "handler",
    "runtime",
    "options",
    "fail",
    "fail_run",
    "worker_start_failed",
];

/// The generated C's own file-scope identifiers that a name plus a suffix could spell
/// (`loop` + `close`); a test derives them from rendered output so this list cannot go stale.
const C_INTERNAL_IDENTIFIERS: &[&str] = &["loop_close", "dgram_close", "conn_fail"];

/// Every identifier the C output makes from `name`.
pub fn c_generated_identifiers(name: &str) -> Vec<String> {
    let upper = name.to_ascii_uppercase();
    C_UPPER_SUFFIXES
        .iter()
        .map(|suffix| format!("{upper}_{suffix}"))
        .chain(
            C_LOWER_SUFFIXES
                .iter()
                .map(|suffix| format!("{name}_{suffix}")),
        )
        .collect()
}

/// The first identifier the C output would make from `name` that the system headers or the
/// generated code itself already declare (`tcp` once made `TCP_CLOSE`, an enumerator of
/// <netinet/tcp.h>).
fn c_identifier_clash(name: &str) -> Option<String> {
    let known = |id: &str| {
        C_INTERNAL_IDENTIFIERS.contains(&id) || C_SYSTEM_NAMES.lines().any(|line| line == id)
    };
    c_generated_identifiers(name)
        .into_iter()
        .find(|id| known(id))
}

fn to_snake_case(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The Plan and the warnings about it, or every error found.
pub fn validate(
    spec: &Spec,
    spec_file: &str,
    overrides: Overrides,
) -> Result<(Plan, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut v = Validator {
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let plan = v.plan(spec, spec_file, overrides);
    match plan {
        Some(plan) if v.errors.is_empty() => Ok((plan, v.warnings)),
        _ => Err(v.errors),
    }
}

struct Validator {
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

fn get<T: Clone>(field: &Option<Spanned<T>>) -> Option<T> {
    field.as_ref().map(|s| s.value.clone())
}

/// The socket options with their defaults; the TCP-only ones are off for UDP.
fn socket_plan(socket: Option<&SocketSpec>, tcp: bool, is_client: bool) -> SocketPlan {
    let keepalive = socket
        .and_then(|s| s.keepalive.as_ref())
        .map(|k| Keepalive {
            idle_s: get(&k.value.idle_s).unwrap_or(60),
            interval_s: get(&k.value.interval_s).unwrap_or(10),
            count: get(&k.value.count).unwrap_or(5),
        });
    SocketPlan {
        reuseaddr: socket
            .and_then(|s| get(&s.reuseaddr))
            .unwrap_or(tcp && !is_client),
        v6only: socket.and_then(|s| get(&s.v6only)).unwrap_or(true),
        reuseport: socket.and_then(|s| get(&s.reuseport)).unwrap_or(false),
        nodelay: tcp && socket.and_then(|s| get(&s.nodelay)).unwrap_or(true),
        recv_buffer: socket.and_then(|s| get(&s.recv_buffer)),
        send_buffer: socket.and_then(|s| get(&s.send_buffer)),
        keepalive: keepalive.filter(|_| tcp),
        linger_s: socket.and_then(|s| get(&s.linger_s)).filter(|_| tcp),
    }
}

fn server_plan(server: Option<&ServerSpec>, client: Option<&ClientPlan>) -> ServerPlan {
    ServerPlan {
        backlog: server.and_then(|s| get(&s.backlog)).unwrap_or(1024),
        workers: server.and_then(|s| get(&s.workers)).unwrap_or(1),
        // The connection core reads its limits here; a client's come from `client`:
        // one loop holding the pool's connections, with the client's idle timeout.
        max_connections: match client {
            Some(c) => c.pool_size,
            None => server
                .and_then(|s| get(&s.max_connections))
                .unwrap_or(10_000),
        },
        idle_timeout_ms: match client {
            Some(c) => c.idle_timeout_ms,
            None => server
                .and_then(|s| get(&s.idle_timeout_ms))
                .unwrap_or(30_000),
        },
        linger_ms: server.and_then(|s| get(&s.linger_ms)).unwrap_or(2_000),
        stack_size: server.and_then(|s| get(&s.stack_size)).unwrap_or(256 << 10),
    }
}

impl Validator {
    fn error(&mut self, d: Diagnostic) {
        self.errors.push(d);
    }

    fn warn(&mut self, d: Diagnostic) {
        self.warnings.push(d);
    }

    /// Options that let another process share the port: valid, but worth saying what they do.
    fn socket_sharing_warnings(
        &mut self,
        socket: Option<&SocketSpec>,
        protocol: Protocol,
        workers: u32,
    ) {
        let Some(socket) = socket else { return };
        if let Some(reuseaddr) = socket.reuseaddr.as_ref().filter(|r| r.value) {
            if protocol == Protocol::Udp {
                self.warn(
                    Diagnostic::warning("SO_REUSEADDR on a UDP socket lets a second process bind the same port")
                        .with_span(reuseaddr.span.clone())
                        .with_label("another copy of this server, or any program, can then take its datagrams")
                        .with_hint("leave reuseaddr out for UDP (the default is off); it matters for TCP listeners, whose restart it allows"),
                );
            }
        }
        if let Some(reuseport) = socket.reuseport.as_ref().filter(|r| r.value) {
            if workers <= 1 {
                self.warn(
                    Diagnostic::warning("SO_REUSEPORT with one worker lets other processes join this port")
                        .with_span(reuseport.span.clone())
                        .with_label("any process of the same user can bind the port too and receive a share of the traffic")
                        .with_hint("keep it for server.workers > 1 or for a hand-over between an old and a new server; otherwise leave it out"),
                );
            }
        }
    }

    fn plan(&mut self, spec: &Spec, spec_file: &str, overrides: Overrides) -> Option<Plan> {
        let lang = overrides.lang.or(get(&spec.lang)).unwrap_or(Lang::C);
        let model = overrides
            .model
            .or(get(&spec.model))
            .unwrap_or(default_model(lang));
        self.check_support(spec, overrides, lang, model);

        let name = self.name(spec, lang);
        let role = get(&spec.role).unwrap_or(Role::Server);
        let protocol = get(&spec.protocol).unwrap_or(Protocol::Tcp);
        let is_client = role == Role::Client;
        let client = self.role_client(spec, is_client, protocol);
        let address = if is_client {
            Some(IpAddr::from([0, 0, 0, 0]))
        } else {
            self.address(spec)
        };
        let handler = self.handler(spec, role);

        let socket = spec.socket.as_ref().map(|s| &s.value);
        let server = spec.server.as_ref().map(|s| &s.value);
        let io = spec.io.as_ref().map(|s| &s.value);

        if protocol == Protocol::Udp {
            self.tcp_only_settings(spec, socket, server);
        }
        self.check_stack_size(server, model);
        let framing = self.handler_framing(spec, handler);
        self.check_linger(socket, model, protocol);
        self.check_port_sharing(socket, server, lang, model, protocol);
        let io = self.io(io, protocol);

        let tcp = protocol == Protocol::Tcp;
        let name_for_sources = name.clone();
        Some(Plan {
            name: name?,
            spec_file: crate::plan::safe_text(spec_file),
            origin: crate::plan::Origin::Render,
            lang,
            model,
            role,
            protocol,
            address: address?,
            port: get(&spec.port).unwrap_or(0),
            handler,
            socket: socket_plan(socket, tcp, is_client),
            server: server_plan(server, client.as_ref()),
            io,
            client: match (is_client, client) {
                (true, Some(c)) => Some(c),
                (true, None) => return None,
                (false, _) => None,
            },
            framing: framing.filter(|_| tcp).unwrap_or(Framing::None),
            sources: self.sources(spec, name_for_sources.as_deref())?,
            log_ops: get(&spec.log) == Some(crate::spec::LogLevel::Ops),
            options: self.options(spec)?,
            warnings: None,
        })
    }

    /// A client's settings; a server's spec must have none.
    fn role_client(
        &mut self,
        spec: &Spec,
        is_client: bool,
        protocol: Protocol,
    ) -> Option<ClientPlan> {
        if is_client {
            return self.client(spec, protocol);
        }
        if let Some(c) = &spec.client {
            self.error(
                Diagnostic::error("`client` settings apply to role: client")
                    .with_span(c.key_span.clone())
                    .with_label("this spec describes a server")
                    .with_hint("remove `client`, or set role: client"),
            );
        }
        None
    }

    /// For a UDP spec: the settings that only a TCP socket has.
    fn tcp_only_settings(
        &mut self,
        spec: &Spec,
        socket: Option<&SocketSpec>,
        server: Option<&ServerSpec>,
    ) {
        if let Some(s) = socket {
            self.tcp_only("socket.nodelay", &s.nodelay);
            self.tcp_only("socket.keepalive", &s.keepalive);
            self.tcp_only("socket.linger_s", &s.linger_s);
        }
        if let Some(s) = server {
            self.tcp_only("server.backlog", &s.backlog);
            self.tcp_only("server.max_connections", &s.max_connections);
            self.tcp_only("server.idle_timeout_ms", &s.idle_timeout_ms);
            self.tcp_only("server.linger_ms", &s.linger_ms);
        }
        if let Some(f) = &spec.framing {
            self.error(
                Diagnostic::error("`framing` applies to TCP only")
                    .with_span(f.key_span.clone())
                    .with_label("this spec uses protocol: udp")
                    .with_hint("a UDP datagram is already one message: remove `framing`"),
            );
        }
    }

    fn check_stack_size(&mut self, server: Option<&ServerSpec>, model: Model) {
        if let Some(stack) = server.and_then(|s| s.stack_size.as_ref()) {
            if model != Model::Blocking {
                self.error(
                    Diagnostic::error(format!(
                        "`server.stack_size` does not apply to the {model} model"
                    ))
                    .with_span(stack.key_span.clone())
                    .with_label("only the blocking model starts a thread per connection")
                    .with_hint("remove it, or choose model: blocking"),
                );
            }
        }
    }

    /// The spec's framing, which the built-in handlers that never look at messages refuse.
    fn handler_framing(&mut self, spec: &Spec, handler: Handler) -> Option<Framing> {
        let framing = self.framing(spec);
        if let (Some(f), Handler::Discard | Handler::Chargen) = (&spec.framing, handler) {
            if framing.as_ref().is_some_and(|f| *f != Framing::None) {
                self.error(
                    Diagnostic::error(format!(
                        "`framing` does not apply to the built-in {handler} handler"
                    ))
                    .with_span(f.key_span.clone())
                    .with_label(format!("{handler} never looks at message boundaries"))
                    .with_hint("remove `framing`, or use handler: echo or custom"),
                );
            }
        }
        framing
    }

    fn check_linger(&mut self, socket: Option<&SocketSpec>, model: Model, protocol: Protocol) {
        if let Some(linger) = socket.and_then(|s| s.linger_s.as_ref()) {
            if linger.value > 0 && model != Model::Blocking && protocol == Protocol::Tcp {
                self.error(
                    Diagnostic::error(format!("`socket.linger_s: {}` would block the {model} event loop", linger.value))
                        .with_span(linger.span.clone())
                        .with_label("close() waits up to this long for unsent data")
                        .with_hint("use linger_s: 0 (reset on close) or leave it out; a lingering close suits only the blocking model"),
                );
            }
        }
    }

    /// Workers and SO_REUSEPORT: several sockets on one port, which Windows does not allow.
    fn check_port_sharing(
        &mut self,
        socket: Option<&SocketSpec>,
        server: Option<&ServerSpec>,
        lang: Lang,
        model: Model,
        protocol: Protocol,
    ) {
        let reuseport = socket.and_then(|s| get(&s.reuseport)).unwrap_or(false);
        let workers = server.and_then(|s| s.workers.clone());
        let windows = lang == Lang::Winsock;
        if windows {
            // Winsock workers share one socket, and the server binds it exclusively.
            if let Some(r) = socket
                .and_then(|s| s.reuseport.as_ref())
                .filter(|r| r.value)
            {
                self.error(
                    Diagnostic::error("Windows has no SO_REUSEPORT")
                        .with_span(r.span.clone())
                        .with_label("--lang winsock cannot share a port between sockets this way")
                        .with_hint("remove socket.reuseport: the workers of a Winsock server share one listening socket, which needs no option"),
                );
            }
        } else {
            self.socket_sharing_warnings(socket, protocol, workers.as_ref().map_or(1, |w| w.value));
        }
        if let Some(w) = &workers {
            if w.value > 1 && model == Model::Blocking {
                self.error(
                    Diagnostic::error("`server.workers` does not apply to the blocking model")
                        .with_span(w.span.clone())
                        .with_label("blocking already runs a thread per connection")
                        .with_hint("remove `workers`, or choose model: poll or epoll"),
                );
            } else if w.value > 1 && !reuseport && !windows {
                self.error(
                    Diagnostic::error(format!("{} workers need `socket.reuseport: true`", w.value))
                        .with_span(w.span.clone())
                        .with_label("each worker binds its own socket to the same port")
                        .with_hint("set socket.reuseport: true, or use workers: 1"),
                );
            }
        }
    }

    /// Buffer sizes and limits; one that contradicts another is reported and replaced by the
    /// least that works, so that validation goes on.
    fn io(&mut self, io: Option<&IoSpec>, protocol: Protocol) -> IoPlan {
        let default_buffer = if protocol == Protocol::Udp {
            65_536
        } else {
            16_384
        };
        let buffer_size = io
            .and_then(|i| get(&i.buffer_size))
            .unwrap_or(default_buffer);
        let output_buffer = match io.and_then(|i| i.output_buffer.clone()) {
            Some(o) if o.value < buffer_size => {
                self.error(
                    Diagnostic::error(format!(
                        "`io.output_buffer` ({}) is smaller than `io.buffer_size` ({buffer_size})",
                        o.value
                    ))
                    .with_span(o.span.clone())
                    .with_label("must hold at least one full read")
                    .with_hint(format!(
                        "use at least {buffer_size}; the default is 4 × buffer_size"
                    )),
                );
                buffer_size
            }
            Some(o) => o.value,
            // A UDP reply is one datagram: room for more only costs memory in every reply slot.
            None if protocol == Protocol::Udp => buffer_size,
            None => buffer_size
                .saturating_mul(4)
                .min(limits::OUTPUT_BUFFER_MAX as u32),
        };

        let output_limit = match io.and_then(|i| i.output_limit.clone()) {
            Some(l) if l.value < u64::from(output_buffer) => {
                self.error(
                    Diagnostic::error(format!(
                        "`io.output_limit` ({}) is smaller than `io.output_buffer` ({output_buffer})",
                        l.value
                    ))
                    .with_span(l.span.clone())
                    .with_label("the hard limit must be at least the high-water mark")
                    .with_hint(format!("use at least {output_buffer}, or leave it out (64 MiB)")),
                );
                u64::from(output_buffer)
            }
            Some(l) => l.value,
            None => (64u64 << 20).max(4 * u64::from(output_buffer)),
        };
        IoPlan {
            buffer_size,
            output_buffer,
            output_limit,
            max_message: io.and_then(|i| get(&i.max_message)).unwrap_or(1 << 20),
            max_events: io.and_then(|i| get(&i.max_events)).unwrap_or(256),
        }
    }

    /// The user's C files: plain relative names, so they are safe in a Makefile and a C
    /// compiler's command line, and cannot collide with what sockgen writes.
    fn sources(&mut self, spec: &Spec, name: Option<&str>) -> Option<Vec<String>> {
        let Some(list) = &spec.sources else {
            return Some(Vec::new());
        };
        let mut ok = true;
        let mut seen = std::collections::BTreeSet::new();
        for file in &list.value {
            let text = file.value.as_str();
            let generated = name.is_some_and(|n| text == format!("{n}.c"));
            let problem = if !text.ends_with(".c") {
                Some("a C source file must end in `.c`".to_string())
            } else if text.starts_with('/')
                || text
                    .split('/')
                    .any(|part| part == ".." || part.is_empty() || part == ".")
            {
                Some("use a path relative to the project directory, without `..`".to_string())
            } else if !text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
                || text.starts_with('-')
            {
                Some("use letters, digits, `_`, `-`, `.` and `/` only (the name goes into a Makefile)".to_string())
            } else if generated {
                Some("that is the file sockgen generates".to_string())
            } else if !seen.insert(text) {
                Some("listed twice".to_string())
            } else {
                None
            };
            if let Some(hint) = problem {
                self.error(
                    Diagnostic::error(format!(
                        "`sources` entry `{}` cannot be used",
                        text.escape_debug()
                    ))
                    .with_span(file.span.clone())
                    .with_label("not a usable C file name")
                    .with_hint(hint),
                );
                ok = false;
            }
        }
        ok.then(|| list.value.iter().map(|f| f.value.clone()).collect())
    }

    /// The program's options: names safe as C and Rust fields on every target (a spec renders
    /// for any language), values of their type. None after an error.
    fn options(&mut self, spec: &Spec) -> Option<Vec<ProgramOption>> {
        let Some(list) = &spec.options else {
            return Some(Vec::new());
        };
        let mut options = Vec::new();
        let mut ok = true;
        for item in &list.value {
            match self.option(&item.value, item.span.clone(), &options) {
                Some(option) => options.push(option),
                None => ok = false,
            }
        }
        // `--no-NAME` clears a bool: no other option may be called that.
        for option in &options {
            if let Some(negated) = option.name.strip_prefix("no_") {
                if options
                    .iter()
                    .any(|o| o.name == negated && o.kind == OptionType::Bool)
                {
                    let span = list
                        .value
                        .iter()
                        .filter_map(|i| i.value.name.as_ref())
                        .find(|n| n.value == option.name)
                        .map_or(list.span.clone(), |n| n.span.clone());
                    self.error(
                        Diagnostic::error(format!(
                            "option `{}` would be spelt like the switch that clears the bool option `{negated}`",
                            option.name
                        ))
                        .with_span(span)
                        .with_label("taken by --no-".to_string() + &negated.replace('_', "-"))
                        .with_hint("choose another name"),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(options)
    }

    fn option(
        &mut self,
        spec: &OptionSpec,
        span: std::ops::Range<usize>,
        earlier: &[ProgramOption],
    ) -> Option<ProgramOption> {
        let Some(name) = &spec.name else {
            self.error(
                Diagnostic::error("an entry of `options` has no `name`")
                    .with_span(span.clone())
                    .with_hint("add name: zone (it becomes --zone and a field of the options)"),
            );
            return None;
        };
        let text = name.value.as_str();
        let bad_name = |message: String, hint: &str| {
            Diagnostic::error(message)
                .with_span(name.span.clone())
                .with_label("not usable as an option name")
                .with_hint(hint.to_string())
        };
        let valid = text.starts_with(|c: char| c.is_ascii_lowercase())
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !text.ends_with('_')
            && !text.contains("__");
        let problem = if !valid {
            Some((
                format!("option name `{}` is not a valid name", text.escape_debug()),
                "use lower-case letters, digits and single `_`s, starting with a letter, such as `key_space` (given as --key-space)",
            ))
        } else if text.len() > 32 {
            Some((
                format!(
                    "option name `{text}` is {} characters long; at most 32 are allowed",
                    text.len()
                ),
                "shorten it",
            ))
        } else if OPTION_BUILT_IN_NAMES.contains(&text) {
            Some((
                format!("option name `{text}` is taken by a built-in option of the program"),
                "choose a more specific name",
            ))
        } else if C_KEYWORDS.contains(&text)
            || C_RESERVED.contains(&text)
            || C_LOWERCASE_MACROS.contains(&text)
            || C_SYSTEM_NAMES.lines().any(|line| line == text)
        {
            Some((
                format!("option name `{text}` is a C keyword or a name the system headers define"),
                "choose a more specific name",
            ))
        } else if RUST_KEYWORDS.contains(&text) {
            Some((
                format!("option name `{text}` is a Rust keyword"),
                "choose a more specific name",
            ))
        } else if earlier.iter().any(|o| o.name == text) {
            Some((
                format!("option `{text}` is declared twice"),
                "remove one of them",
            ))
        } else {
            None
        };
        if let Some((message, hint)) = problem {
            self.error(bad_name(message, hint));
            return None;
        }
        let Some(kind) = spec.kind.as_ref().map(|k| k.value) else {
            self.error(
                Diagnostic::error(format!("option `{text}` has no `type`"))
                    .with_span(name.span.clone())
                    .with_hint("add type: path, string, int or bool"),
            );
            return None;
        };
        let mut ok = true;
        let help = match &spec.help {
            None => {
                self.error(
                    Diagnostic::error(format!("option `{text}` has no `help`"))
                        .with_span(name.span.clone())
                        .with_hint("add help: one line that --help prints for it"),
                );
                ok = false;
                String::new()
            }
            Some(help) => {
                let length = help.value.chars().count();
                if length == 0 || length > 200 || help.value.chars().any(char::is_control) {
                    self.error(
                        Diagnostic::error(format!(
                            "the help of option `{text}` must be one line of 1 to 200 characters"
                        ))
                        .with_span(help.span.clone())
                        .with_label("not one short line"),
                    );
                    ok = false;
                }
                help.value.clone()
            }
        };
        for (key, bound) in [("min", &spec.min), ("max", &spec.max)] {
            if let (Some(bound), true) = (bound, kind != OptionType::Int) {
                self.error(
                    Diagnostic::error(format!(
                        "`{key}` applies to int options only; `{text}` is a {kind}"
                    ))
                    .with_span(bound.key_span.clone())
                    .with_label("not used")
                    .with_hint(format!("remove `{key}`")),
                );
                ok = false;
            }
        }
        let min = spec.min.as_ref().map_or(i64::MIN, |m| m.value);
        let max = spec.max.as_ref().map_or(i64::MAX, |m| m.value);
        if min > max {
            let at = spec.max.as_ref().map_or(span.clone(), |m| m.span.clone());
            self.error(
                Diagnostic::error(format!("option `{text}` has max {max} below min {min}"))
                    .with_span(at)
                    .with_label("below min"),
            );
            return None;
        }
        let default = match (
            kind,
            spec.default.as_ref().map(|d| (&d.value, d.span.clone())),
        ) {
            (OptionType::Bool, None) => OptionValue::Bool(false),
            (OptionType::Int, None) if (min..=max).contains(&0) => OptionValue::Int(0),
            (OptionType::Int, None) => {
                self.error(
                    Diagnostic::error(format!(
                        "option `{text}` needs a default: 0 is outside {min}..={max}"
                    ))
                    .with_span(name.span.clone())
                    .with_hint(format!("add default: {min}")),
                );
                return None;
            }
            (OptionType::Path | OptionType::String, None) => OptionValue::Text(String::new()),
            (OptionType::Bool, Some((OptionDefault::Bool(b), _))) => OptionValue::Bool(*b),
            (OptionType::Int, Some((OptionDefault::Int(i), at))) => {
                if !(min..=max).contains(i) {
                    self.error(
                        Diagnostic::error(format!(
                            "the default of option `{text}` is {i}, outside {min}..={max}"
                        ))
                        .with_span(at)
                        .with_label("out of range"),
                    );
                    return None;
                }
                OptionValue::Int(*i)
            }
            (OptionType::Path | OptionType::String, Some((OptionDefault::Text(t), at))) => {
                if t.chars().any(char::is_control) || t.len() > 4096 {
                    self.error(
                        Diagnostic::error(format!(
                            "the default of option `{text}` must be one line of at most 4096 bytes"
                        ))
                        .with_span(at)
                        .with_label("not one line"),
                    );
                    return None;
                }
                OptionValue::Text(t.clone())
            }
            (_, Some((found, at))) => {
                let found = match found {
                    OptionDefault::Bool(_) => "a boolean",
                    OptionDefault::Int(_) => "an integer",
                    OptionDefault::Text(_) => "a string",
                };
                let expected = match kind {
                    OptionType::Bool => "true or false",
                    OptionType::Int => "an integer",
                    OptionType::Path | OptionType::String => "a string (quote it)",
                };
                self.error(
                    Diagnostic::error(format!(
                        "the default of {kind} option `{text}` is {found}; it must be {expected}"
                    ))
                    .with_span(at)
                    .with_label(format!("expected {expected}")),
                );
                return None;
            }
        };
        ok.then(|| ProgramOption {
            name: text.to_string(),
            kind,
            default,
            min,
            max,
            help,
        })
    }

    /// Resolves `framing`; every key must belong to the chosen kind. None after an error.
    fn framing(&mut self, spec: &Spec) -> Option<Framing> {
        let Some(f) = &spec.framing else {
            return Some(Framing::None);
        };
        let f = &f.value;
        let kind = get(&f.kind).unwrap_or(FramingKind::None);
        let mut ok = true;
        let mut only = |this: &mut Self,
                        key: &str,
                        span: Option<&std::ops::Range<usize>>,
                        owner: FramingKind| {
            if let Some(span) = span {
                if kind != owner {
                    this.error(
                        Diagnostic::error(format!(
                            "`framing.{key}` applies to kind `{owner}` only"
                        ))
                        .with_span(span.clone())
                        .with_label(format!("this framing is `{kind}`"))
                        .with_hint(format!("remove `{key}`, or set kind: {owner}")),
                    );
                    ok = false;
                }
            }
        };
        only(
            self,
            "bytes",
            f.bytes.as_ref().map(|b| &b.key_span),
            FramingKind::LengthPrefix,
        );
        only(
            self,
            "endian",
            f.endian.as_ref().map(|e| &e.key_span),
            FramingKind::LengthPrefix,
        );
        only(
            self,
            "delimiter",
            f.delimiter.as_ref().map(|d| &d.key_span),
            FramingKind::Delimiter,
        );
        if let Some(b) = &f.bytes {
            if ![1, 2, 4, 8].contains(&b.value) {
                self.error(
                    Diagnostic::error(format!(
                        "a length prefix of {} bytes is not supported",
                        b.value
                    ))
                    .with_span(b.span.clone())
                    .with_label("expected 1, 2, 4 or 8")
                    .with_hint("use bytes: 4 (the default) for lengths up to 4 GiB"),
                );
                ok = false;
            }
        }
        let framing = match kind {
            FramingKind::None => Framing::None,
            FramingKind::Line => Framing::Line,
            FramingKind::LengthPrefix => Framing::LengthPrefix {
                bytes: get(&f.bytes).unwrap_or(4),
                endian: get(&f.endian).unwrap_or(Endian::Big),
            },
            FramingKind::Delimiter => match &f.delimiter {
                Some(d) if !d.value.is_empty() && d.value.len() <= limits::DELIMITER_MAX_LEN => {
                    Framing::Delimiter(d.value.as_bytes().to_vec())
                }
                Some(d) => {
                    self.error(
                        Diagnostic::error(format!(
                            "`framing.delimiter` is {} bytes long; 1 to {} are allowed",
                            d.value.len(),
                            limits::DELIMITER_MAX_LEN
                        ))
                        .with_span(d.span.clone())
                        .with_label("not a usable separator")
                        .with_hint("write the separator, e.g. delimiter: \"\\r\\n\""),
                    );
                    return None;
                }
                None => {
                    let span = f.kind.as_ref().map(|k| k.span.clone()).unwrap_or(0..0);
                    self.error(
                        Diagnostic::error("framing kind `delimiter` needs `framing.delimiter`")
                            .with_span(span)
                            .with_label("which bytes separate messages?")
                            .with_hint("add delimiter: \"\\r\\n\" (or any 1 to 16 bytes)"),
                    );
                    return None;
                }
            },
        };
        ok.then_some(framing)
    }

    /// The handler, checked against the role: servers answer, clients ask.
    fn handler(&mut self, spec: &Spec, role: Role) -> Handler {
        let default = match role {
            Role::Server => Handler::Echo,
            Role::Client => Handler::EchoCheck,
        };
        let Some(h) = &spec.handler else {
            return default;
        };
        let for_client = matches!(h.value, Handler::EchoCheck | Handler::Load);
        let usable = h.value == Handler::Custom || for_client == (role == Role::Client);
        if !usable {
            let (label, hint) = match role {
                Role::Server => (
                    format!("{} is a client handler", h.value),
                    "set role: client to generate a client, or use echo, discard, chargen or custom",
                ),
                Role::Client => (
                    format!("{} answers peers: it is a server handler", h.value),
                    "a client runs echo-check, load or custom; or set role: server",
                ),
            };
            self.error(
                Diagnostic::error(format!(
                    "handler `{}` does not apply to role: {role}",
                    h.value
                ))
                .with_span(h.span.clone())
                .with_label(label)
                .with_hint(hint),
            );
        }
        h.value
    }

    /// A client's settings; None (with errors reported) when they cannot be used.
    fn client(&mut self, spec: &Spec, protocol: Protocol) -> Option<ClientPlan> {
        let mut ok = true;
        if let Some(s) = &spec.server {
            self.error(
                Diagnostic::error("`server` settings do not apply to role: client")
                    .with_span(s.key_span.clone())
                    .with_label("a client has no listening socket")
                    .with_hint("a client's timeouts, retries and pool go in the `client` table"),
            );
            ok = false;
        }
        if let Some(socket) = spec.socket.as_ref().map(|s| &s.value) {
            for (key, span) in [
                ("reuseaddr", socket.reuseaddr.as_ref().map(|f| &f.key_span)),
                ("reuseport", socket.reuseport.as_ref().map(|f| &f.key_span)),
                ("v6only", socket.v6only.as_ref().map(|f| &f.key_span)),
            ] {
                if let Some(span) = span {
                    self.error(
                        Diagnostic::error(format!(
                            "`socket.{key}` applies to a server's listening socket"
                        ))
                        .with_span(span.clone())
                        .with_label("this spec describes a client")
                        .with_hint(
                            "remove it: a client's socket takes a port of its own from the kernel",
                        ),
                    );
                    ok = false;
                }
            }
        }
        let host = self.client_host(spec);
        let c = spec.client.as_ref().map(|c| &c.value);
        let retry = c.and_then(|c| c.retry.as_ref()).map(|r| &r.value);
        let base_ms = retry.and_then(|r| get(&r.base_ms)).unwrap_or(100);
        let max_ms = match retry.and_then(|r| r.max_ms.clone()) {
            Some(m) if m.value < base_ms => {
                self.error(
                    Diagnostic::error(format!(
                        "`client.retry.max_ms` ({}) is smaller than `client.retry.base_ms` ({base_ms})",
                        m.value
                    ))
                    .with_span(m.span.clone())
                    .with_label("the largest backoff must be at least the first")
                    .with_hint(format!("use at least {base_ms}")),
                );
                ok = false;
                base_ms
            }
            Some(m) => m.value,
            None => 5_000.max(base_ms),
        };
        let handler = get(&spec.handler).unwrap_or(Handler::EchoCheck);
        let builtin = matches!(handler, Handler::EchoCheck | Handler::Load);
        if let (true, Some(f)) = (builtin, &spec.framing) {
            self.error(
                Diagnostic::error(format!(
                    "`framing` does not apply to the built-in {handler} handler"
                ))
                .with_span(f.key_span.clone())
                .with_label(format!("{handler} sends and checks raw payloads"))
                .with_hint("remove `framing`, or use handler: custom"),
            );
            ok = false;
        }
        // Settings only a built-in handler reads: set with custom they would do nothing.
        if let (Handler::Custom, Some(c)) = (handler, c) {
            for (key, span) in [
                ("messages", c.messages.as_ref().map(|f| &f.key_span)),
                ("sizes", c.sizes.as_ref().map(|f| &f.key_span)),
                ("duration_ms", c.duration_ms.as_ref().map(|f| &f.key_span)),
            ] {
                if let Some(span) = span {
                    self.error(
                        Diagnostic::error(format!("`client.{key}` is read by the built-in echo-check and load handlers only"))
                            .with_span(span.clone())
                            .with_label(format!("handler: {handler}"))
                            .with_hint("remove it; your callbacks decide what to send"),
                    );
                    ok = false;
                }
            }
        }
        if protocol == Protocol::Udp {
            // A datagram goes out and comes back whole: it must fit IPv4's UDP limit, one
            // receive and one send.
            let io = spec.io.as_ref().map(|i| &i.value);
            let buffer = io.and_then(|i| get(&i.buffer_size)).unwrap_or(65_536);
            let output = io.and_then(|i| get(&i.output_buffer)).unwrap_or(buffer);
            let limit = buffer.min(output).min(65_507);
            for size in c
                .and_then(|c| c.sizes.as_ref())
                .map(|s| s.value.as_slice())
                .unwrap_or_default()
                .iter()
                .filter(|size| size.value > limit)
            {
                self.error(
                    Diagnostic::error(format!(
                        "a UDP client cannot send a {}-byte datagram",
                        size.value
                    ))
                    .with_span(size.span.clone())
                    .with_label(format!("at most {limit} bytes here"))
                    .with_hint("a datagram must fit 65507 bytes (IPv4), io.buffer_size and io.output_buffer"),
                );
                ok = false;
            }
        }
        let plan = ClientPlan {
            host: host?,
            connect_timeout_ms: c.and_then(|c| get(&c.connect_timeout_ms)).unwrap_or(5_000),
            idle_timeout_ms: c.and_then(|c| get(&c.idle_timeout_ms)).unwrap_or(30_000),
            max_attempts: retry.and_then(|r| get(&r.max_attempts)).unwrap_or(5),
            backoff_base_ms: base_ms,
            backoff_max_ms: max_ms,
            pool_size: c
                .and_then(|c| c.pool.as_ref())
                .and_then(|p| get(&p.value.size))
                .unwrap_or(1),
            messages: c.and_then(|c| get(&c.messages)).unwrap_or(16),
            sizes: c
                .and_then(|c| c.sizes.as_ref())
                .map(|s| s.value.iter().map(|v| v.value).collect())
                .unwrap_or_else(|| match protocol {
                    Protocol::Tcp => vec![1, 1024, 65_536],
                    Protocol::Udp => vec![1, 1024, 1472],
                }),
            duration_ms: c.and_then(|c| get(&c.duration_ms)).unwrap_or(5_000),
        };
        ok.then_some(plan)
    }

    /// A client's target: an IP literal, or a DNS name the program resolves.
    fn client_host(&mut self, spec: &Spec) -> Option<String> {
        let Some(addr) = &spec.address else {
            return Some("127.0.0.1".to_string());
        };
        let text = addr.value.trim();
        let unbracketed = text.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Some(ip.to_string());
        }
        let problem = if text.is_empty() {
            Some("it is empty".to_string())
        } else if text.len() > limits::HOST_MAX_LEN {
            Some(format!(
                "it is {} characters long; a DNS name has at most {}",
                text.len(),
                limits::HOST_MAX_LEN
            ))
        } else if text
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            Some("put the port in `port`, not in `address`".to_string())
        } else if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
        {
            Some(format!(
                "`{}` cannot appear in a host name (letters, digits, `-` and `.` only)",
                bad.escape_debug()
            ))
        } else if text.split('.').any(|label| {
            label.is_empty() || label.len() > 63 || label.starts_with('-') || label.ends_with('-')
        }) {
            Some("each dot-separated part takes 1 to 63 letters, digits or inner `-`".to_string())
        } else {
            None
        };
        match problem {
            None => Some(text.to_string()),
            Some(hint) => {
                self.error(
                    Diagnostic::error(format!(
                        "`{}` is not a host name or IP address",
                        text.escape_debug()
                    ))
                    .with_span(addr.span.clone())
                    .with_label("the client connects here")
                    .with_hint(hint),
                );
                None
            }
        }
    }

    fn tcp_only<T>(&mut self, key: &str, field: &Option<Spanned<T>>) {
        if let Some(f) = field {
            self.error(
                Diagnostic::error(format!("`{key}` applies to TCP only"))
                    .with_span(f.key_span.clone())
                    .with_label("this spec uses protocol: udp")
                    .with_hint("remove it, or set protocol: tcp"),
            );
        }
    }

    fn check_support(&mut self, spec: &Spec, overrides: Overrides, lang: Lang, model: Model) {
        let choices = |models: Vec<Model>| {
            models
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if support(lang, model) == Support::Emitted {
            return;
        }
        let message = format!(
            "{model} is not available for --lang {lang}: {}",
            impossible_reason(lang, model)
        );
        let hint = format!(
            "add --model {} for --lang {lang} ({}), or another of {}",
            default_model(lang),
            platform_name(lang),
            choices(emitted_models(lang))
        );
        let mut d = Diagnostic::error(message).with_hint(hint);
        // Point at the spec only when the spec, not a flag, chose the model or language.
        if overrides.model.is_none() {
            if let Some(m) = &spec.model {
                d = d
                    .with_span(m.span.clone())
                    .with_label(format!("model {model}"));
            } else if let (None, Some(l)) = (overrides.lang, &spec.lang) {
                d = d
                    .with_span(l.span.clone())
                    .with_label(format!("lang {lang}"));
            }
        } else if overrides.lang.is_none() {
            if let Some(l) = &spec.lang {
                d = d
                    .with_span(l.span.clone())
                    .with_label(format!("lang {lang}"));
            }
        }
        self.error(d);
    }

    fn name(&mut self, spec: &Spec, lang: Lang) -> Option<String> {
        let Some(name) = &spec.name else {
            self.error(
                Diagnostic::error("the spec has no `name`")
                    .with_span(0..0)
                    .with_hint(
                    "add a line such as name: echo_tcp (it prefixes every generated identifier)",
                ),
            );
            return None;
        };
        let text = name.value.as_str();
        let bad = |message: String, hint: String| {
            Diagnostic::error(message)
                .with_span(name.span.clone())
                .with_label("not usable as a name")
                .with_hint(hint)
        };
        if text.starts_with("__")
            || (text.starts_with('_') && text[1..].starts_with(|c: char| c.is_ascii_uppercase()))
        {
            self.error(bad(
                format!("name `{text}` is reserved: identifiers starting with `__` or `_` and a capital letter belong to the C implementation"),
                format!("drop the leading underscores: `{}`", text.trim_start_matches('_')),
            ));
            return None;
        }
        let valid = text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            let suggestion: String = text
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
                .trim_matches('_')
                .to_string();
            let hint = if suggestion.starts_with(|c: char| c.is_ascii_alphabetic()) {
                format!(
                    "use letters, digits and `_`, starting with a letter, such as `{suggestion}`"
                )
            } else {
                "use letters, digits and `_`, starting with a letter".to_string()
            };
            self.error(bad(
                format!("name `{text}` is not a valid identifier"),
                hint,
            ));
            return None;
        }
        if text.len() > limits::NAME_MAX_LEN {
            self.error(bad(
                format!(
                    "name is {} characters long; at most {} are allowed",
                    text.len(),
                    limits::NAME_MAX_LEN
                ),
                "shorten it: it prefixes every generated identifier".to_string(),
            ));
            return None;
        }
        // The name becomes C identifiers and a program name on every target, so the C lists
        // apply to all languages; later targets add their own keywords here.
        // The name becomes C identifiers on every target (and a program name), so the C lists
        // apply everywhere; Rust output also makes it a module and crate name.
        if C_KEYWORDS.contains(&text) || C_RESERVED.contains(&text) {
            self.error(bad(
                format!("name `{text}` collides with a C keyword or reserved name"),
                format!("choose a more specific name, such as `{text}_server`"),
            ));
            return None;
        }
        if lang != Lang::Rust {
            if let Some(id) = c_identifier_clash(text) {
                self.error(bad(
                    format!("name `{text}` would make the C identifier `{id}`, which the system headers or the generated code already declare"),
                    format!("choose a more specific name, such as `{text}_server`"),
                ));
                return None;
            }
        }
        if lang == Lang::Rust {
            if CARGO_RESERVED.contains(&text.to_ascii_lowercase().as_str()) {
                self.error(bad(
                    format!("name `{text}` becomes the Cargo package name, and Cargo reserves it"),
                    format!("choose a more specific name, such as `{text}_server`"),
                ));
                return None;
            }
            if RUST_KEYWORDS.contains(&text) || RUST_RESERVED.contains(&text) {
                // A raw identifier (r#type) would do for the module, but not for the crate
                // and binary names Cargo derives from it, so refuse it clearly instead.
                self.error(bad(
                    format!(
                        "name `{text}` is a Rust keyword or a crate every Rust program can see"
                    ),
                    format!("choose a more specific name, such as `{text}_server`"),
                ));
                return None;
            }
            if text.chars().any(|c| c.is_ascii_uppercase()) {
                self.error(bad(
                    format!("name `{text}` becomes a Rust module, and Rust modules are snake_case"),
                    format!("use `{}`", to_snake_case(text)),
                ));
                return None;
            }
        }
        Some(text.to_string())
    }

    fn address(&mut self, spec: &Spec) -> Option<IpAddr> {
        let Some(addr) = &spec.address else {
            return Some(IpAddr::from([127, 0, 0, 1]));
        };
        let text = addr.value.trim();
        let unbracketed = text.trim_start_matches('[').trim_end_matches(']');
        match unbracketed.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                let hint = if text.eq_ignore_ascii_case("localhost") {
                    "write 127.0.0.1 (or ::1 for IPv6): the generated code binds literals, it does not resolve names".to_string()
                } else if text.contains(':')
                    && text.rsplit_once(':').is_some_and(|(h, p)| {
                        p.parse::<u16>().is_ok() && h.parse::<IpAddr>().is_ok()
                    })
                {
                    "put the port in `port`, not in `address`".to_string()
                } else if let Some(close) =
                    did_you_mean(text, ["0.0.0.0", "127.0.0.1", "::", "::1"])
                {
                    format!("did you mean `{close}`?")
                } else {
                    "write an IPv4 literal such as 127.0.0.1 or an IPv6 literal such as ::1"
                        .to_string()
                };
                self.error(
                    Diagnostic::error(format!("`{text}` is not an IP address"))
                        .with_span(addr.span.clone())
                        .with_label("expected an IPv4 or IPv6 literal")
                        .with_hint(hint),
                );
                None
            }
        }
    }
}
