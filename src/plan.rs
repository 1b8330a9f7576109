//! Stage 3, the **Plan**: the checked, target-neutral description templates read.
//!
//! Every default is filled in and every value is known to be valid for the chosen language and
//! model, so rendering cannot fail for a reason the user could have fixed.

use std::net::IpAddr;

pub use crate::spec::{
    Endian, FramingKind, Handler, Lang, LogLevel, Model, OptionType, Protocol, Role,
};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Plan {
    /// Identifier prefix and program name; checked against the target's reserved words.
    pub name: String,
    /// The spec file as the generated header names it: as the user typed it, or relative to
    /// the `-o` directory for a project. Every character outside `[A-Za-z0-9._/+@,:~=-]` is
    /// replaced by `_`, so it is safe in every context it reaches (C and Rust comments and
    /// strings, Makefile, Cargo.toml).
    pub spec_file: String,
    /// How the output is regenerated, for the header's "do not edit" note.
    pub origin: Origin,
    pub lang: Lang,
    pub model: Model,
    pub role: Role,
    pub protocol: Protocol,
    /// What a server binds. A client's target is `client.host` instead (this is then unused).
    pub address: IpAddr,
    pub port: u16,
    pub handler: Handler,
    pub socket: SocketPlan,
    pub server: ServerPlan,
    pub io: IoPlan,
    /// Present exactly when `role` is client.
    pub client: Option<ClientPlan>,
    /// How input is cut into messages; always `None` for UDP (a datagram is a message).
    pub framing: Framing,
    /// The user's extra C files, relative to the project directory; safe in a Makefile.
    pub sources: Vec<String>,
    /// Log every socket operation to stderr.
    pub log_ops: bool,
    /// The program's own command-line options, in the spec's order.
    pub options: Vec<ProgramOption>,
    /// What validation warned about (rendered against the spec's text); the output is
    /// generated all the same. Printed by every command that reads a spec.
    #[serde(skip)]
    pub warnings: Option<Box<crate::Diagnostics>>,
}

/// Who produces the output, so its header can say how to produce it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Origin {
    /// `sockgen render SPEC` to stdout.
    Render,
    /// `sockgen render SPEC -o DIR`: `spec_file` is relative to DIR, the command runs there.
    Project,
    /// `sockgen::Builder` in a build.rs.
    BuildScript,
}

/// Text from the user (a path) made safe for every generated context by replacing each
/// character outside `[A-Za-z0-9._/+@,:~=-]` with `_`.
pub fn safe_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._/+@,:~=-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Plan {
    /// The command that renders this output again, for headers and hints.
    pub fn render_command(&self) -> String {
        let base = format!(
            "sockgen render {} --lang {} --model {}",
            self.spec_file, self.lang, self.model
        );
        match self.origin {
            Origin::Project => format!("{base} -o ."),
            Origin::Render | Origin::BuildScript => base,
        }
    }

    /// Rebases `spec_file` for a project written into `out_dir`: relative to that directory, so
    /// the generated text does not depend on where sockgen ran.
    pub fn for_project(mut self, spec: &std::path::Path, out_dir: &std::path::Path) -> Plan {
        self.origin = Origin::Project;
        self.spec_file = safe_text(&relative_to(out_dir, spec));
        self
    }
}

/// `file` as seen from `dir` (`../specs/x.yaml`), both taken as absolute paths; falls back to
/// the file name when no relative path exists.
fn relative_to(dir: &std::path::Path, file: &std::path::Path) -> String {
    use std::path::{Component, PathBuf};
    let absolute = |p: &std::path::Path| -> Option<PathBuf> {
        let p = if p.is_absolute() {
            p.to_owned()
        } else {
            std::env::current_dir().ok()?.join(p)
        };
        // Resolve what exists (symlinks, `..`); keep the rest as written.
        let mut existing = p.clone();
        let mut rest = Vec::new();
        while !existing.exists() {
            rest.push(existing.file_name()?.to_owned());
            existing = existing.parent()?.to_owned();
        }
        let mut resolved = existing.canonicalize().ok()?;
        for part in rest.into_iter().rev() {
            resolved.push(part);
        }
        Some(resolved)
    };
    let name = || {
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let (Some(dir), Some(file)) = (absolute(dir), absolute(file)) else {
        return name();
    };
    let dir: Vec<Component> = dir.components().collect();
    let file: Vec<Component> = file.components().collect();
    let common = dir.iter().zip(&file).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return name();
    }
    let mut parts: Vec<String> =
        std::iter::repeat_n("..".to_string(), dir.len() - common).collect();
    parts.extend(
        file[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// A command-line option the spec declares for the program, checked: its name is a safe
/// identifier in C and Rust, its default has its type and lies within its range.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProgramOption {
    /// Lower-case letters, digits and `_`; the command line spells `_` as `-`.
    pub name: String,
    pub kind: OptionType,
    pub default: OptionValue,
    /// The range of an `int` (the whole of i64 unless the spec narrows it).
    pub min: i64,
    pub max: i64,
    /// One line of any text but control characters; every generated context escapes it.
    pub help: String,
}

/// A program option's value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum OptionValue {
    Text(String),
    Int(i64),
    Bool(bool),
}

impl ProgramOption {
    /// `key_space` is given as `--key-space`.
    pub fn flag(&self) -> String {
        self.name.replace('_', "-")
    }
}

/// Built-in framing, resolved.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Framing {
    None,
    Line,
    LengthPrefix { bytes: u8, endian: Endian },
    Delimiter(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SocketPlan {
    /// Defaults differ by protocol: true for TCP, false for UDP.
    pub reuseaddr: bool,
    /// IPV6_V6ONLY, applied when the address is IPv6.
    pub v6only: bool,
    pub reuseport: bool,
    /// Always false for UDP.
    pub nodelay: bool,
    pub recv_buffer: Option<u32>,
    pub send_buffer: Option<u32>,
    pub keepalive: Option<Keepalive>,
    pub linger_s: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Keepalive {
    pub idle_s: u16,
    pub interval_s: u16,
    pub count: u8,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServerPlan {
    pub backlog: u32,
    pub workers: u32,
    pub max_connections: u32,
    /// 0 means connections never time out.
    pub idle_timeout_ms: u32,
    /// How long a closing connection reads and drops input after its half-close.
    pub linger_ms: u32,
    /// Connection thread stack (blocking model).
    pub stack_size: u32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClientPlan {
    /// An IP literal or a DNS name (letters, digits, `-` and `.` only, so it is safe in every
    /// generated string); resolved by the program at start.
    pub host: String,
    pub connect_timeout_ms: u32,
    /// 0 means connections never time out.
    pub idle_timeout_ms: u32,
    pub max_attempts: u32,
    pub backoff_base_ms: u32,
    pub backoff_max_ms: u32,
    pub pool_size: u32,
    /// Built-in handlers: messages per connection (echo-check) and payload sizes.
    pub messages: u32,
    pub sizes: Vec<u32>,
    /// How long `load` runs.
    pub duration_ms: u32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IoPlan {
    pub buffer_size: u32,
    /// High-water mark of a connection's output queue: above it, the peer is not read.
    pub output_buffer: u32,
    /// Hard limit of a connection's output queue: above it, the connection is closed.
    pub output_limit: u64,
    /// Most unconsumed input (or the longest framed message) a connection may hold.
    pub max_message: u32,
    pub max_events: u32,
}

impl Plan {
    pub fn is_tcp(&self) -> bool {
        self.protocol == Protocol::Tcp
    }

    pub fn is_ipv6(&self) -> bool {
        self.address.is_ipv6()
    }

    pub fn is_client(&self) -> bool {
        self.role == Role::Client
    }
}
