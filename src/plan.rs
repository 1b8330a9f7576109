//! Stage 3, the **Plan**: the checked, target-neutral description templates read.
//!
//! Every default is filled in and every value is known to be valid for the chosen language and
//! model, so rendering cannot fail for a reason the user could have fixed.

use std::net::IpAddr;

pub use crate::spec::{Handler, Lang, Model, Protocol, Role};

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
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IoPlan {
    pub buffer_size: u32,
    pub output_buffer: u32,
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
