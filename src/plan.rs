//! Stage 3, the **Plan**: the checked, target-neutral description templates read.
//!
//! Every default is filled in and every value is known to be valid for the chosen language and
//! model, so rendering cannot fail for a reason the user could have fixed.

use std::net::IpAddr;

pub use crate::spec::{Endian, FramingKind, Handler, Lang, Model, Protocol, Role};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Plan {
    /// Identifier prefix and program name; checked against the target's reserved words.
    pub name: String,
    /// The spec file as the user named it, for the generated header comment.
    pub spec_file: String,
    pub lang: Lang,
    pub model: Model,
    pub role: Role,
    pub protocol: Protocol,
    pub address: IpAddr,
    pub port: u16,
    pub handler: Handler,
    pub socket: SocketPlan,
    pub server: ServerPlan,
    pub io: IoPlan,
    /// How input is cut into messages; always `None` for UDP (a datagram is a message).
    pub framing: Framing,
    /// The user's extra C files, relative to the project directory; safe in a Makefile.
    pub sources: Vec<String>,
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
    pub reuseaddr: bool,
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
}
