//! `sockgen analyze`: connection states, listen queues and socket memory, read live from
//! /proc/net or from saved `ss -tanmi` / `netstat -an` output, turned into findings.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One socket as any of the sources describe it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SocketEntry {
    pub proto: &'static str,
    pub local: SocketAddr,
    /// None for a wildcard peer (`*:*`, `0.0.0.0:*`).
    pub remote: Option<SocketAddr>,
    /// Canonical Linux names: LISTEN, ESTABLISHED, TIME_WAIT, CLOSE_WAIT, SYN_RECV, UNCONN…
    pub state: String,
    /// For LISTEN sockets: connections waiting in the accept queue.
    pub recv_q: u64,
    /// For LISTEN sockets: the accept queue's limit (the effective backlog).
    pub send_q: u64,
    pub inode: Option<u64>,
    /// From `ss -m`: (bytes queued for reading, receive buffer, bytes queued for sending, send buffer).
    pub skmem: Option<Skmem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Skmem {
    pub rmem_alloc: u64,
    pub rcvbuf: u64,
    pub wmem_alloc: u64,
    pub sndbuf: u64,
}

/// Sockets plus /proc/net/sockstat counters, and where they came from.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub source: String,
    pub sockets: Vec<SocketEntry>,
    /// "TCP" → {"inuse": 5, "tw": 2, …}
    pub sockstat: BTreeMap<String, BTreeMap<String, u64>>,
    /// Whether the data is this machine's live state (system settings apply).
    pub live: bool,
}

#[derive(Debug)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// /proc/net/{tcp,tcp6,udp,udp6}

const PROC_TCP_STATES: [&str; 13] = [
    "",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "NEW_SYN_RECV",
];

/// Parses `0100007F:1F90` (IPv4) or the 32-hex-digit IPv6 form: the kernel prints each 32-bit
/// word of the address in host (little-endian) order.
fn proc_addr(text: &str, line: usize) -> Result<SocketAddr, ParseError> {
    let (ip_hex, port_hex) = text
        .split_once(':')
        .ok_or_else(|| err(line, format!("bad address `{text}`")))?;
    let port = u16::from_str_radix(port_hex, 16)
        .map_err(|_| err(line, format!("bad port in `{text}`")))?;
    let word = |chunk: &str| {
        u32::from_str_radix(chunk, 16)
            .map(u32::swap_bytes)
            .map_err(|_| err(line, format!("bad address `{text}`")))
    };
    let ip = match ip_hex.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip_hex)?)),
        32 => {
            let mut octets = [0u8; 16];
            for i in 0..4 {
                octets[i * 4..i * 4 + 4]
                    .copy_from_slice(&word(&ip_hex[i * 8..i * 8 + 8])?.to_be_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return Err(err(line, format!("bad address `{text}`"))),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Parses the text of /proc/net/tcp, tcp6, udp or udp6.
pub fn parse_proc_net(text: &str, proto: &'static str) -> Result<Vec<SocketEntry>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() || fields[0] == "sl" {
            continue;
        }
        if fields.len() < 10 {
            return Err(err(
                n,
                format!("expected at least 10 columns, found {}", fields.len()),
            ));
        }
        let local = proc_addr(fields[1], n)?;
        let remote = proc_addr(fields[2], n)?;
        let st = usize::from_str_radix(fields[3], 16)
            .map_err(|_| err(n, format!("bad state `{}`", fields[3])))?;
        let state = match (proto, st) {
            ("udp", 7) => "UNCONN".to_string(),
            (_, s) if (1..PROC_TCP_STATES.len()).contains(&s) => PROC_TCP_STATES[s].to_string(),
            _ => return Err(err(n, format!("unknown state {}", fields[3]))),
        };
        let (tx, rx) = fields[4]
            .split_once(':')
            .ok_or_else(|| err(n, format!("bad queues `{}`", fields[4])))?;
        let hex =
            |v: &str| u64::from_str_radix(v, 16).map_err(|_| err(n, format!("bad queue `{v}`")));
        out.push(SocketEntry {
            proto,
            local,
            remote: (!remote.ip().is_unspecified() || remote.port() != 0).then_some(remote),
            state,
            recv_q: hex(rx)?,
            send_q: hex(tx)?,
            inode: fields[9].parse().ok(),
            skmem: None,
        });
    }
    Ok(out)
}

/// Parses /proc/net/sockstat: `TCP: inuse 5 orphan 0 tw 2 alloc 7 mem 1`.
pub fn parse_sockstat(text: &str) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((proto, rest)) = line.split_once(':') else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let counters: BTreeMap<String, u64> = words
            .chunks(2)
            .filter_map(|kv| match kv {
                [k, v] => v.parse().ok().map(|v| (k.to_string(), v)),
                _ => None,
            })
            .collect();
        out.insert(proto.trim().to_string(), counters);
    }
    out
}

/// Accept-queue length and limit of every TCP listener, by socket inode, from the kernel's
/// sock_diag netlink interface (what `ss` uses): /proc/net/tcp shows the queue length of a
/// listener but not its backlog. None when netlink is unavailable.
pub fn listener_queues() -> Option<std::collections::HashMap<u64, (u64, u64)>> {
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 0x1;
    const NLM_F_DUMP: u16 = 0x300;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const HEADER: usize = 16; // struct nlmsghdr
    const REQUEST: usize = 56; // struct inet_diag_req_v2
    const MSG_INODE: usize = 68; // offset of idiag_inode in struct inet_diag_msg
    const MSG_RQUEUE: usize = 56;
    const MSG_WQUEUE: usize = 60;
    let mut result = std::collections::HashMap::new();
    // SAFETY: a plain socket(2) call; the descriptor is closed below on every path.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return None;
    }
    let mut ok = true;
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        let mut req = [0u8; HEADER + REQUEST];
        req[0..4].copy_from_slice(&((HEADER + REQUEST) as u32).to_ne_bytes());
        req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req[HEADER] = family;
        req[HEADER + 1] = libc::IPPROTO_TCP as u8;
        req[HEADER + 4..HEADER + 8].copy_from_slice(&(1u32 << 10).to_ne_bytes()); // TCP_LISTEN
                                                                                  // SAFETY: req is a valid buffer of the given length.
        if unsafe { libc::send(fd, req.as_ptr().cast(), req.len(), 0) } < 0 {
            ok = false;
            break;
        }
        let mut buf = vec![0u8; 32 * 1024];
        'recv: loop {
            // SAFETY: buf is a valid writable buffer of the given length.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n <= 0 {
                ok = false;
                break;
            }
            let mut off = 0usize;
            let n = n as usize;
            while off + HEADER <= n {
                let len =
                    u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap_or_default()) as usize;
                let kind = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap_or_default());
                if len < HEADER || off + len > n {
                    ok = false;
                    break 'recv;
                }
                match kind {
                    NLMSG_DONE => break 'recv,
                    NLMSG_ERROR => {
                        ok = false;
                        break 'recv;
                    }
                    _ if len >= HEADER + MSG_INODE + 4 => {
                        let body = &buf[off + HEADER..off + len];
                        let word = |at: usize| {
                            u32::from_ne_bytes(body[at..at + 4].try_into().unwrap_or_default())
                                as u64
                        };
                        result.insert(word(MSG_INODE), (word(MSG_RQUEUE), word(MSG_WQUEUE)));
                    }
                    _ => {}
                }
                off += (len + 3) & !3;
            }
        }
        if !ok {
            break;
        }
    }
    // SAFETY: fd came from socket(2) above and is closed once.
    unsafe { libc::close(fd) };
    ok.then_some(result)
}

/// Reads this machine's sockets now.
pub fn read_live() -> Result<Snapshot, String> {
    let mut snap = Snapshot {
        source: "/proc/net".to_string(),
        live: true,
        ..Snapshot::default()
    };
    for (file, proto) in [
        ("tcp", "tcp"),
        ("tcp6", "tcp"),
        ("udp", "udp"),
        ("udp6", "udp"),
    ] {
        let path = format!("/proc/net/{file}");
        match std::fs::read_to_string(&path) {
            Ok(text) => snap
                .sockets
                .extend(parse_proc_net(&text, proto).map_err(|e| format!("{path}: {e}"))?),
            // A kernel without IPv6 has no tcp6/udp6.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.ends_with('6') => {}
            Err(e) => return Err(format!("cannot read {path}: {e}")),
        }
    }
    if let Some(queues) = listener_queues() {
        for s in snap
            .sockets
            .iter_mut()
            .filter(|s| s.state == "LISTEN" && s.proto == "tcp")
        {
            if let Some(&(waiting, backlog)) = s.inode.and_then(|i| queues.get(&i)) {
                s.recv_q = waiting;
                s.send_q = backlog;
            }
        }
        snap.source = "/proc/net + sock_diag".to_string();
    }
    for file in ["sockstat", "sockstat6"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/net/{file}")) {
            for (proto, counters) in parse_sockstat(&text) {
                snap.sockstat.insert(proto, counters);
            }
        }
    }
    Ok(snap)
}

/// Socket inodes a process holds open, from /proc/PID/fd.
pub fn process_socket_inodes(pid: u32) -> Result<Vec<u64>, String> {
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {dir}: {e} (is PID {pid} running, and yours?)"))?;
    Ok(entries
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Saved `ss` and `netstat` output

/// Canonical state names from every tool's spelling.
fn canonical_state(word: &str) -> Option<String> {
    let w = word.to_ascii_uppercase().replace('-', "_");
    let canonical = match w.as_str() {
        "ESTAB" | "ESTABLISHED" => "ESTABLISHED",
        "LISTEN" | "LISTENING" => "LISTEN",
        "SYN_SENT" => "SYN_SENT",
        "SYN_RECV" | "SYN_RECEIVED" => "SYN_RECV",
        "FIN_WAIT1" | "FIN_WAIT_1" => "FIN_WAIT1",
        "FIN_WAIT2" | "FIN_WAIT_2" => "FIN_WAIT2",
        "TIME_WAIT" => "TIME_WAIT",
        "CLOSE" | "CLOSED" => "CLOSE",
        "CLOSE_WAIT" => "CLOSE_WAIT",
        "LAST_ACK" => "LAST_ACK",
        "CLOSING" => "CLOSING",
        "UNCONN" => "UNCONN",
        "BOUND" => "BOUND",
        _ => return None,
    };
    Some(canonical.to_string())
}

/// `127.0.0.1:80`, `[::1]:80`, `::1:80` (netstat), `*:80`, `0.0.0.0:*`, `127.0.0.53%lo:53`.
/// Returns None for a wildcard peer.
fn tool_addr(text: &str, line: usize) -> Result<Option<SocketAddr>, ParseError> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| err(line, format!("bad address `{text}`")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.split('%').next().unwrap_or(host);
    let ip: IpAddr = match host {
        "*" | "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        h => h
            .parse()
            .map_err(|_| err(line, format!("bad address `{text}`")))?,
    };
    if port == "*" {
        return Ok(None);
    }
    let port: u16 = port
        .parse()
        .map_err(|_| err(line, format!("bad port in `{text}`")))?;
    let addr = SocketAddr::new(ip, port);
    Ok((!(ip.is_unspecified() && port == 0)).then_some(addr))
}

fn parse_skmem(line: &str) -> Option<Skmem> {
    let inner = line.split("skmem:(").nth(1)?.split(')').next()?;
    let mut m = Skmem {
        rmem_alloc: 0,
        rcvbuf: 0,
        wmem_alloc: 0,
        sndbuf: 0,
    };
    for item in inner.split(',') {
        let key: String = item
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let value: u64 = item[key.len()..].parse().ok()?;
        match key.as_str() {
            "r" => m.rmem_alloc = value,
            "rb" => m.rcvbuf = value,
            "t" => m.wmem_alloc = value,
            "tb" => m.sndbuf = value,
            _ => {}
        }
    }
    Some(m)
}

/// Parses `ss -tanmi` (or `ss -tuanmi`, with a Netid column).
pub fn parse_ss(text: &str) -> Result<Vec<SocketEntry>, ParseError> {
    let mut out: Vec<SocketEntry> = Vec::new();
    let mut has_netid = false;
    let mut no_state_column = false;
    let mut saw_header = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields[0] == "State" || fields[0] == "Netid" || fields[0] == "Recv-Q" {
            has_netid = fields[0] == "Netid";
            // `ss ... state listening` leaves the State column out.
            no_state_column =
                fields[0] == "Recv-Q" || (has_netid && fields.get(1) == Some(&"Recv-Q"));
            saw_header = true;
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            // Continuation lines (-m, -i) belong to the socket above.
            if let (Some(last), Some(m)) = (out.last_mut(), parse_skmem(line)) {
                last.skmem = Some(m);
            }
            continue;
        }
        if !saw_header {
            return Err(err(
                n,
                "expected the `State Recv-Q Send-Q …` header of ss output first",
            ));
        }
        let (proto, rest) = if has_netid {
            let proto = match fields[0] {
                "tcp" => "tcp",
                "udp" => "udp",
                other => {
                    return Err(err(
                        n,
                        format!("unsupported Netid `{other}` (tcp and udp are read)"),
                    ))
                }
            };
            (proto, &fields[1..])
        } else {
            ("tcp", &fields[..])
        };
        let implied_listen;
        let rest: &[&str] = if no_state_column {
            // Only a listener has a peer of `*`; other rows need the State column to be read.
            let peer_is_any = rest.get(3).is_some_and(|p| p.ends_with(":*"));
            if !peer_is_any {
                return Err(err(
                    n,
                    "this ss output has no State column (saved with a `state` filter other than listening): save `ss -tanmi` without it",
                ));
            }
            implied_listen = [&["LISTEN"][..], rest].concat();
            &implied_listen
        } else {
            rest
        };
        if rest.len() < 5 {
            return Err(err(
                n,
                format!(
                    "expected State Recv-Q Send-Q Local Peer, found {} columns",
                    rest.len()
                ),
            ));
        }
        let state = canonical_state(rest[0])
            .ok_or_else(|| err(n, format!("unknown state `{}`", rest[0])))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| err(n, format!("bad queue `{v}`")))
        };
        out.push(SocketEntry {
            proto,
            recv_q: num(rest[1])?,
            send_q: num(rest[2])?,
            local: tool_addr(rest[3], n)?
                .ok_or_else(|| err(n, format!("bad local address `{}`", rest[3])))?,
            remote: tool_addr(rest[4], n)?,
            state,
            inode: None,
            skmem: None,
        });
    }
    if !saw_header {
        return Err(err(1, "no ss header found"));
    }
    Ok(out)
}

/// Parses `netstat -an` from Linux (Proto Recv-Q Send-Q Local Foreign State) or Windows
/// (Proto Local Foreign State, no queues). UNIX-domain sections are skipped.
pub fn parse_netstat(text: &str) -> Result<Vec<SocketEntry>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = fields.first() else {
            continue;
        };
        if line.starts_with("Active UNIX") {
            break;
        }
        let proto = match first.to_ascii_lowercase().as_str() {
            "tcp" | "tcp6" | "tcp4" => "tcp",
            "udp" | "udp6" | "udp4" => "udp",
            _ => continue, // headers and titles
        };
        // Linux lines carry the two queue columns; Windows lines do not.
        let linux = fields.len() >= 5
            && fields[1].parse::<u64>().is_ok()
            && fields[2].parse::<u64>().is_ok();
        let (recv_q, send_q, rest) = if linux {
            (
                fields[1].parse().unwrap_or(0),
                fields[2].parse().unwrap_or(0),
                &fields[3..],
            )
        } else {
            (0, 0, &fields[1..])
        };
        if rest.len() < 2 {
            return Err(err(
                n,
                format!(
                    "expected local and foreign addresses, found {} columns",
                    fields.len()
                ),
            ));
        }
        let state = match rest.get(2) {
            Some(s) => canonical_state(s).ok_or_else(|| err(n, format!("unknown state `{s}`")))?,
            None if proto == "udp" => "UNCONN".to_string(),
            None => return Err(err(n, "a TCP line without a state")),
        };
        out.push(SocketEntry {
            proto,
            local: tool_addr(rest[0], n)?
                .ok_or_else(|| err(n, format!("bad local address `{}`", rest[0])))?,
            remote: tool_addr(rest[1], n)?,
            state,
            recv_q,
            send_q,
            inode: None,
            skmem: None,
        });
    }
    if out.is_empty() {
        return Err(err(1, "no tcp or udp lines found in the netstat output"));
    }
    Ok(out)
}

/// Recognises the format of saved output and parses it.
pub fn parse_saved(text: &str, source: &str) -> Result<Snapshot, String> {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let words: Vec<&str> = first.split_whitespace().collect();
    let sockets = if words
        .first()
        .is_some_and(|w| *w == "State" || *w == "Netid" || *w == "Recv-Q")
    {
        parse_ss(text)
    } else if first.contains("Active Internet")
        || first.contains("Active Connections")
        || words.first() == Some(&"Proto")
    {
        parse_netstat(text)
    } else if words.first() == Some(&"sl") && first.contains("local_address") {
        // A saved /proc/net/tcp (or tcp6): udp files say so in their state column.
        parse_proc_net(text, "tcp")
    } else {
        return Err(format!(
            "{source}: unrecognised input: expected the output of `ss -tanmi`, `netstat -an`, or a copy of /proc/net/tcp"
        ));
    };
    let sockets = sockets.map_err(|e| format!("{source}: {e}"))?;
    Ok(Snapshot {
        source: source.to_string(),
        sockets,
        sockstat: BTreeMap::new(),
        live: false,
    })
}

// ---------------------------------------------------------------------------------------------
// Findings

/// Thresholds, documented in docs/verify.md.
pub mod thresholds {
    pub const TIME_WAIT_WARN: usize = 100;
    pub const CLOSE_WAIT_CRITICAL: usize = 100;
    pub const SYN_RECV_WARN: usize = 100;
    pub const RECV_Q_WARN: u64 = 64 * 1024;
    pub const SEND_Q_WARN: u64 = 256 * 1024;
    pub const SMALL_BUFFER: u64 = 64 * 1024;
    pub const ACCEPT_QUEUE_NEAR_FULL: f64 = 0.8;
}

use thresholds::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Listener {
    pub proto: &'static str,
    pub local: String,
    pub accept_queue: u64,
    pub backlog: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Artifacts {
    pub source: String,
    pub sockets: usize,
    pub states: BTreeMap<String, usize>,
    pub listeners: Vec<Listener>,
    pub recv_q_total: u64,
    pub send_q_total: u64,
    pub max_recv_q: u64,
    pub max_send_q: u64,
    pub sockstat: BTreeMap<String, BTreeMap<String, u64>>,
    pub somaxconn: Option<u64>,
}

/// Exactly the structure `--json` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub operation: &'static str,
    pub target: String,
    pub address: Option<String>,
    pub status: &'static str,
    pub findings: Vec<Finding>,
    pub recommendations: Vec<String>,
    pub artifacts: Artifacts,
}

/// Which sockets to look at.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub port: Option<u16>,
    /// Socket inodes of a process (live data only).
    pub inodes: Option<Vec<u64>>,
    pub pid: Option<u32>,
}

fn describe(s: &SocketEntry) -> String {
    let remote = s.remote.map_or("*".to_string(), |r| r.to_string());
    format!(
        "{} {} {} -> {} recv-q {} send-q {}",
        s.proto, s.state, s.local, remote, s.recv_q, s.send_q
    )
}

/// Turns a snapshot into the report: counts, queues, findings and what to do about them.
pub fn analyze(snapshot: &Snapshot, filter: &Filter, somaxconn: Option<u64>) -> Report {
    let selected = select(snapshot, filter);
    let mut states = BTreeMap::new();
    for s in &selected {
        *states.entry(s.state.clone()).or_insert(0usize) += 1;
    }
    let listeners: Vec<&SocketEntry> = selected
        .iter()
        .copied()
        .filter(|s| s.state == "LISTEN")
        .collect();

    let mut found = Findings::default();
    found.accept_queues(&listeners, somaxconn);
    found.close_wait(&selected);
    found.time_wait(&selected, &listeners);
    found.syn_recv(&states);
    found.queue_backlogs(&selected);
    found.small_buffers(&selected);
    if let Some(port) = filter.port {
        found.port_in_use(&selected, port);
    }
    found.orphans(&snapshot.sockstat);

    let status = match found.findings.iter().map(|f| f.severity).max() {
        Some(Severity::Critical) => "critical",
        Some(Severity::Warning) => "warning",
        _ => "ok",
    };
    let target = match (filter.port, filter.pid) {
        (Some(p), Some(pid)) => format!("port {p} of pid {pid}"),
        (Some(p), None) => format!("port {p}"),
        (None, Some(pid)) => format!("pid {pid}"),
        (None, None) => "all sockets".to_string(),
    };
    let address = match listeners.len() {
        0 => None,
        _ => Some(
            listeners
                .iter()
                .map(|l| l.local.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    };
    Report {
        operation: "analyze",
        target,
        address,
        status,
        findings: found.findings,
        recommendations: found.recommendations,
        artifacts: artifacts(snapshot, &selected, states, &listeners, somaxconn),
    }
}

/// The sockets the filter keeps: on its port (either end), held by its process.
fn select<'a>(snapshot: &'a Snapshot, filter: &Filter) -> Vec<&'a SocketEntry> {
    snapshot
        .sockets
        .iter()
        .filter(|s| {
            filter
                .port
                .is_none_or(|p| s.local.port() == p || s.remote.is_some_and(|r| r.port() == p))
        })
        .filter(|s| {
            filter
                .inodes
                .as_ref()
                .is_none_or(|set| s.inode.is_some_and(|i| set.contains(&i)))
        })
        .collect()
}

fn in_state<'a>(selected: &[&'a SocketEntry], state: &str) -> Vec<&'a SocketEntry> {
    selected
        .iter()
        .copied()
        .filter(|s| s.state == state)
        .collect()
}

/// The selected sockets in numbers, for the report and `--json`.
fn artifacts(
    snapshot: &Snapshot,
    selected: &[&SocketEntry],
    states: BTreeMap<String, usize>,
    listeners: &[&SocketEntry],
    somaxconn: Option<u64>,
) -> Artifacts {
    let data_sockets = || selected.iter().filter(|s| s.state != "LISTEN");
    Artifacts {
        source: snapshot.source.clone(),
        sockets: selected.len(),
        states,
        listeners: listeners
            .iter()
            .map(|l| Listener {
                proto: l.proto,
                local: l.local.to_string(),
                accept_queue: l.recv_q,
                backlog: l.send_q,
            })
            .collect(),
        // A listener's Recv-Q and Send-Q are its accept queue and backlog (shown above),
        // not bytes: they stay out of the data totals.
        recv_q_total: data_sockets().map(|s| s.recv_q).sum(),
        send_q_total: data_sockets().map(|s| s.send_q).sum(),
        max_recv_q: data_sockets().map(|s| s.recv_q).max().unwrap_or(0),
        max_send_q: data_sockets().map(|s| s.send_q).max().unwrap_or(0),
        sockstat: snapshot.sockstat.clone(),
        somaxconn,
    }
}

/// The findings in the order they are looked for, and what to do about them: several
/// findings can lead to the same advice, which is given once.
#[derive(Default)]
struct Findings {
    findings: Vec<Finding>,
    recommendations: Vec<String>,
}

impl Findings {
    fn recommend(&mut self, text: String) {
        if !self.recommendations.contains(&text) {
            self.recommendations.push(text);
        }
    }

    fn accept_queues(&mut self, listeners: &[&SocketEntry], somaxconn: Option<u64>) {
        for l in listeners {
            if l.send_q == 0 {
                continue;
            }
            let fill = l.recv_q as f64 / l.send_q as f64;
            // Linux queues up to backlog + 1 connections and drops handshakes beyond that.
            if l.recv_q > l.send_q {
                self.findings.push(Finding {
                    severity: Severity::Critical,
                    code: "accept_queue_full",
                    message: format!(
                        "the accept queue of {} is full ({} waiting, backlog {}): new connections are dropped or refused",
                        l.local, l.recv_q, l.send_q
                    ),
                    evidence: vec![describe(l)],
                });
            } else if fill >= ACCEPT_QUEUE_NEAR_FULL {
                self.findings.push(Finding {
                    severity: Severity::Warning,
                    code: "accept_queue_near_full",
                    message: format!(
                        "the accept queue of {} is {:.0}% full ({} of {})",
                        l.local,
                        fill * 100.0,
                        l.recv_q,
                        l.send_q
                    ),
                    evidence: vec![describe(l)],
                });
            } else {
                continue;
            }
            let limit = somaxconn.map_or(String::new(), |s| {
                format!(" (net.core.somaxconn is {s} here)")
            });
            self.recommend(format!(
                "raise the listen backlog (server.backlog) and net.core.somaxconn{limit}, which caps it"
            ));
            self.recommend("accept faster: an event-driven model (epoll), more server.workers with SO_REUSEPORT, or less work before accept() returns to the loop".to_string());
        }
    }

    fn close_wait(&mut self, selected: &[&SocketEntry]) {
        let close_wait = in_state(selected, "CLOSE_WAIT");
        if close_wait.is_empty() {
            return;
        }
        self.findings.push(Finding {
            severity: if close_wait.len() >= CLOSE_WAIT_CRITICAL { Severity::Critical } else { Severity::Warning },
            code: "close_wait",
            message: format!(
                "{} connection(s) in CLOSE_WAIT: the peer closed, but this application has not closed its socket",
                close_wait.len()
            ),
            evidence: close_wait.iter().take(10).map(|s| describe(s)).collect(),
        });
        self.recommend("close the socket when recv() returns 0 and on every error path; CLOSE_WAIT that only grows is a descriptor leak (EMFILE comes next)".to_string());
    }

    fn time_wait(&mut self, selected: &[&SocketEntry], listeners: &[&SocketEntry]) {
        let time_wait = in_state(selected, "TIME_WAIT");
        if time_wait.is_empty() {
            return;
        }
        // TIME_WAIT sits on the side that closed first.
        let server_closed = time_wait
            .iter()
            .filter(|s| listeners.iter().any(|l| l.local.port() == s.local.port()))
            .count();
        let closer = if server_closed * 2 > time_wait.len() {
            "this host's server side closes first"
        } else {
            "this host is the active closer (the client side here)"
        };
        let many = time_wait.len() >= TIME_WAIT_WARN;
        self.findings.push(Finding {
            severity: if many {
                Severity::Warning
            } else {
                Severity::Info
            },
            code: "time_wait",
            message: format!("{} socket(s) in TIME_WAIT: {closer}", time_wait.len()),
            evidence: time_wait.iter().take(10).map(|s| describe(s)).collect(),
        });
        if many {
            self.recommend("TIME_WAIT piles up on the active closer: reuse connections (keep-alive, a pool) instead of one per request, or let the peer close first; socket.reuseaddr lets a server restart meanwhile".to_string());
        }
    }

    fn syn_recv(&mut self, states: &BTreeMap<String, usize>) {
        let syn_recv = states.get("SYN_RECV").copied().unwrap_or(0);
        if syn_recv < SYN_RECV_WARN {
            return;
        }
        self.findings.push(Finding {
            severity: Severity::Warning,
            code: "syn_recv",
            message: format!(
                "{syn_recv} handshakes in SYN_RECV: a SYN flood, or clients that do not finish connecting"
            ),
            evidence: Vec::new(),
        });
        self.recommend(
            "keep net.ipv4.tcp_syncookies enabled and look at where the SYNs come from".to_string(),
        );
    }

    /// Unread data (a slow application) and unsent data (a slow peer or path).
    fn queue_backlogs(&mut self, selected: &[&SocketEntry]) {
        let slow_readers: Vec<&SocketEntry> = selected
            .iter()
            .copied()
            .filter(|s| s.state != "LISTEN" && s.recv_q >= RECV_Q_WARN)
            .collect();
        if !slow_readers.is_empty() {
            self.findings.push(Finding {
                severity: Severity::Warning,
                code: "recv_q_backlog",
                message: format!(
                    "{} socket(s) hold at least {} KiB of unread data (Recv-Q): the application is a slow consumer",
                    slow_readers.len(),
                    RECV_Q_WARN / 1024
                ),
                evidence: slow_readers.iter().take(10).map(|s| describe(s)).collect(),
            });
            self.recommend(
                "read faster: do less per event, move slow work off the I/O loop, or add workers"
                    .to_string(),
            );
        }
        let slow_peers: Vec<&SocketEntry> = selected
            .iter()
            .copied()
            .filter(|s| s.state != "LISTEN" && s.send_q >= SEND_Q_WARN)
            .collect();
        if !slow_peers.is_empty() {
            self.findings.push(Finding {
                severity: Severity::Warning,
                code: "send_q_backlog",
                message: format!(
                    "{} socket(s) have at least {} KiB unacknowledged or unsent (Send-Q): the peer reads slowly or the path is congested",
                    slow_peers.len(),
                    SEND_Q_WARN / 1024
                ),
                evidence: slow_peers.iter().take(10).map(|s| describe(s)).collect(),
            });
            self.recommend("bound per-connection output (sockgen's io.output_buffer stops reading a peer that does not read) and time out stalled peers".to_string());
        }
    }

    fn small_buffers(&mut self, selected: &[&SocketEntry]) {
        let cramped: Vec<&SocketEntry> = selected
            .iter()
            .copied()
            .filter(|s| {
                s.skmem.is_some_and(|m| {
                    (m.rcvbuf > 0 && m.rcvbuf < SMALL_BUFFER && m.rmem_alloc * 4 >= m.rcvbuf * 3)
                        || (m.sndbuf > 0
                            && m.sndbuf < SMALL_BUFFER
                            && m.wmem_alloc * 4 >= m.sndbuf * 3)
                })
            })
            .collect();
        if cramped.is_empty() {
            return;
        }
        self.findings.push(Finding {
            severity: Severity::Warning,
            code: "small_buffers",
            message: format!(
                "{} socket(s) have a buffer under {} KiB that is at least 3/4 full: too small for the traffic",
                cramped.len(),
                SMALL_BUFFER / 1024
            ),
            evidence: cramped
                .iter()
                .take(10)
                .map(|s| {
                    let m = s.skmem.unwrap_or(Skmem { rmem_alloc: 0, rcvbuf: 0, wmem_alloc: 0, sndbuf: 0 });
                    format!("{} skmem r{} rb{} t{} tb{}", describe(s), m.rmem_alloc, m.rcvbuf, m.wmem_alloc, m.sndbuf)
                })
                .collect(),
        });
        self.recommend("raise socket.recv_buffer / socket.send_buffer (SO_RCVBUF/SO_SNDBUF), or leave them unset so Linux autotunes".to_string());
    }

    /// For `--port`: whether a server could bind it now.
    fn port_in_use(&mut self, selected: &[&SocketEntry], port: u16) {
        let bound: Vec<&SocketEntry> = selected
            .iter()
            .copied()
            .filter(|s| s.local.port() == port && (s.state == "LISTEN" || s.proto == "udp"))
            .collect();
        if !bound.is_empty() {
            self.findings.push(Finding {
                severity: Severity::Info,
                code: "port_in_use",
                message: format!(
                    "port {port} is in use: a server binding it would fail with EADDRINUSE (unless every socket on it sets SO_REUSEPORT)"
                ),
                evidence: bound.iter().map(|s| describe(s)).collect(),
            });
        }
    }

    fn orphans(&mut self, sockstat: &BTreeMap<String, BTreeMap<String, u64>>) {
        if let Some(tcp) = sockstat.get("TCP") {
            if tcp.get("orphan").copied().unwrap_or(0) >= 1000 {
                self.findings.push(Finding {
                    severity: Severity::Warning,
                    code: "orphans",
                    message: format!(
                        "{} orphaned TCP sockets (closed by applications, still sending)",
                        tcp["orphan"]
                    ),
                    evidence: Vec::new(),
                });
                self.recommend("many orphans mean closes with unsent data to unresponsive peers; check net.ipv4.tcp_max_orphans".to_string());
            }
        }
    }
}

/// The human report.
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "analyze {} ({}): {}\n",
        report.target, report.artifacts.source, report.status
    );
    if let Some(a) = &report.address {
        out.push_str(&format!("listening: {a}\n"));
    }
    out.push_str(&format!("sockets: {}", report.artifacts.sockets));
    for (state, n) in &report.artifacts.states {
        out.push_str(&format!("  {state} {n}"));
    }
    out.push('\n');
    for l in &report.artifacts.listeners {
        if l.backlog == 0 {
            // netstat on Windows and /proc without sock_diag do not report the backlog.
            out.push_str(&format!(
                "  {} {} (accept queue not reported by this source)\n",
                l.proto, l.local
            ));
        } else {
            out.push_str(&format!(
                "  {} {} accept queue {}/{}\n",
                l.proto, l.local, l.accept_queue, l.backlog
            ));
        }
    }
    out.push_str(&format!(
        "queues: Recv-Q total {} (max {}), Send-Q total {} (max {})\n",
        report.artifacts.recv_q_total,
        report.artifacts.max_recv_q,
        report.artifacts.send_q_total,
        report.artifacts.max_send_q
    ));
    if let Some(tcp) = report.artifacts.sockstat.get("TCP") {
        let field = |k: &str| tcp.get(k).map_or("?".to_string(), |v| v.to_string());
        out.push_str(&format!(
            "kernel TCP: inuse {} orphan {} tw {} mem {} pages\n",
            field("inuse"),
            field("orphan"),
            field("tw"),
            field("mem")
        ));
    }
    if report.findings.is_empty() {
        out.push_str("\nno findings\n");
    }
    for f in &report.findings {
        let tag = match f.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "CRITICAL",
        };
        out.push_str(&format!("\n{tag} [{}]: {}\n", f.code, f.message));
        for e in &f.evidence {
            out.push_str(&format!("    {e}\n"));
        }
    }
    if !report.recommendations.is_empty() {
        out.push_str("\nrecommendations:\n");
        for r in &report.recommendations {
            out.push_str(&format!("  - {r}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_addresses_are_little_endian_words() {
        assert_eq!(
            proc_addr("0100007F:1F90", 1).unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            proc_addr("00000000000000000000000001000000:0050", 1).unwrap(),
            "[::1]:80".parse().unwrap()
        );
        assert!(proc_addr("zz:1", 1).is_err());
    }

    #[test]
    fn tool_addresses_in_every_spelling() {
        assert_eq!(
            tool_addr("127.0.0.1:80", 1).unwrap(),
            Some("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(
            tool_addr("[::1]:80", 1).unwrap(),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(
            tool_addr("::1:80", 1).unwrap(),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(
            tool_addr("127.0.0.53%lo:53", 1).unwrap(),
            Some("127.0.0.53:53".parse().unwrap())
        );
        assert_eq!(tool_addr("*:*", 1).unwrap(), None);
        assert_eq!(tool_addr("0.0.0.0:*", 1).unwrap(), None);
        assert_eq!(tool_addr("0.0.0.0:0", 1).unwrap(), None);
        assert!(tool_addr("nonsense", 1).is_err());
    }
}
