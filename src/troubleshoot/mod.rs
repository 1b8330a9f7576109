//! Helping people debug sockets: `explain` interprets error codes, `analyze` reads connection
//! states and queues, and `port_owner`/`port_is_free` back `sockgen check --port-free`.

pub mod analyze;
pub mod explain;

use std::net::{SocketAddr, TcpListener, UdpSocket};

use crate::plan::{Plan, Protocol};

/// Tries to bind the address and port the plan names, the way the generated server will.
/// Ok when a server could bind it now; Err with the OS error otherwise.
pub fn port_is_free(plan: &Plan) -> Result<(), std::io::Error> {
    let addr = SocketAddr::new(plan.address, plan.port);
    match plan.protocol {
        // std sets SO_REUSEADDR on Unix listeners, as generated servers do by default, so
        // TIME_WAIT leftovers do not count as "in use".
        Protocol::Tcp => TcpListener::bind(addr).map(drop),
        Protocol::Udp => UdpSocket::bind(addr).map(drop),
    }
}

/// Who holds a port, best effort: "pid 1234 (name)" for each process with a socket bound to
/// it that this user may inspect.
pub fn port_owners(port: u16, proto: Protocol) -> Vec<String> {
    let Ok(snapshot) = analyze::read_live() else {
        return Vec::new();
    };
    let want = match proto {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    let inodes: Vec<u64> = snapshot
        .sockets
        .iter()
        .filter(|s| {
            s.proto == want && s.local.port() == port && (s.state == "LISTEN" || want == "udp")
        })
        .filter_map(|s| s.inode)
        .filter(|&i| i != 0)
        .collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut owners = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return owners;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(held) = analyze::process_socket_inodes(pid) else {
            continue;
        };
        if held.iter().any(|i| inodes.contains(i)) {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            owners.push(format!("pid {pid} ({})", name.trim()));
        }
    }
    owners
}
