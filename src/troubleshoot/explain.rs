//! `sockgen explain`: what a socket error means, why it happens, what to do, and how the code
//! sockgen generates handles it, for Linux errno values and their Winsock twins.

/// One error as both platforms know it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ErrorInfo {
    pub name: &'static str,
    /// Other names for the same Linux value (EWOULDBLOCK is EAGAIN).
    pub aliases: &'static [&'static str],
    pub linux: Option<i32>,
    pub winsock: Option<(&'static str, i32)>,
    pub meaning: &'static str,
    pub causes: &'static [&'static str],
    pub what_to_do: &'static [&'static str],
    pub generated_code: &'static str,
    /// When the twin is not an exact match, what differs.
    pub platform_note: Option<&'static str>,
}

macro_rules! catalogue {
    ($($name:literal $(| $alias:literal)* = $num:expr, $wsa:expr;
       meaning: $meaning:literal;
       causes: [$($cause:literal),* $(,)?];
       todo: [$($todo:literal),* $(,)?];
       generated: $gen:literal;
       note: $note:expr;)*) => {
        pub const CATALOGUE: &[ErrorInfo] = &[$(ErrorInfo {
            name: $name,
            aliases: &[$($alias),*],
            linux: $num,
            winsock: $wsa,
            meaning: $meaning,
            causes: &[$($cause),*],
            what_to_do: &[$($todo),*],
            generated_code: $gen,
            platform_note: $note,
        }),*];
    };
}

catalogue! {
    "EAGAIN" | "EWOULDBLOCK" = Some(11), Some(("WSAEWOULDBLOCK", 10035));
    meaning: "The operation would block: a nonblocking socket has no data to read, no room to write, or no connection to accept right now.";
    causes: ["reading a nonblocking socket whose receive buffer is empty", "writing while the send buffer is full because the peer reads slowly", "accept() with an empty accept queue", "SO_RCVTIMEO/SO_SNDTIMEO expired on a blocking socket"];
    todo: ["wait for readiness (poll/epoll/WSAPoll) and retry; it is not an error", "on a blocking socket with timeouts, treat it as the timeout firing"];
    generated: "poll/epoll loops stop reading or writing that socket and wait for the next readiness event; edge-triggered epoll reads until EAGAIN (or a short read). The blocking model sets SO_RCVTIMEO/SO_SNDTIMEO to the idle timeout and closes the connection when they fire.";
    note: Some("On Windows a nonblocking connect() reports WSAEWOULDBLOCK where Linux reports EINPROGRESS.");

    "EINTR" = Some(4), Some(("WSAEINTR", 10004));
    meaning: "A blocking call was interrupted by a signal before it completed.";
    causes: ["a signal handler ran (SIGINT, SIGCHLD, a timer) while the thread was blocked in the call"];
    todo: ["retry the call (or install handlers with SA_RESTART); check a shutdown flag first if the signal meant stop"];
    generated: "Every generated call retries on EINTR. Shutdown does not rely on EINTR: the signal handler writes to a self-pipe every loop watches.";
    note: Some("On Windows WSAEINTR appears only when a blocking call is cancelled with WSACancelBlockingCall.");

    "ECONNRESET" = Some(104), Some(("WSAECONNRESET", 10054));
    meaning: "The peer reset the connection (sent RST): unsent and unread data is lost.";
    causes: ["the peer process crashed or exited without reading all data", "the peer closed with SO_LINGER 0", "a firewall or NAT dropped the connection state", "writing to a connection the peer already closed"];
    todo: ["treat it as the end of this connection: close it and free its state", "if it is frequent, check whether peers close while data is unread (application protocol bug)"];
    generated: "The connection is closed and its handler's on_close runs; other connections are unaffected.";
    note: Some("Windows also reports WSAECONNRESET on a UDP socket after an ICMP port-unreachable; Linux reports ECONNREFUSED there.");

    "ECONNREFUSED" = Some(111), Some(("WSAECONNREFUSED", 10061));
    meaning: "Nobody listens at that address and port: the target host answered the SYN with RST.";
    causes: ["the server is not running or listens on another port or address (127.0.0.1 vs ::1 vs 0.0.0.0)", "the server's accept queue overflowed and tcp_abort_on_overflow is set", "on UDP: an earlier datagram drew an ICMP port-unreachable"];
    todo: ["check the server is up and bound where you connect (sockgen analyze --port P)", "for a full accept queue, raise the backlog and accept faster"];
    generated: "Generated servers never connect; on UDP the error from an earlier reply's ICMP is logged (rate-limited) and the loop goes on.";
    note: None;

    "ETIMEDOUT" = Some(110), Some(("WSAETIMEDOUT", 10060));
    meaning: "The connection timed out: the connect got no answer, or keepalive/retransmissions went unanswered.";
    causes: ["a firewall silently drops packets", "the peer host is down or unreachable without ICMP", "keepalive probes went unanswered (socket.keepalive)"];
    todo: ["check routing and firewalls; try a connect from the same host", "tune keepalive (idle_s, interval_s, count) to detect dead peers sooner or later"];
    generated: "A connection that fails this way is closed like any failed connection; enabling socket.keepalive makes the kernel report dead peers this way.";
    note: None;

    "EADDRINUSE" = Some(98), Some(("WSAEADDRINUSE", 10048));
    meaning: "The local address and port are already in use.";
    causes: ["another process (or another instance) listens on the port", "restarting a server while its old connections sit in TIME_WAIT without SO_REUSEADDR", "several sockets on one port without SO_REUSEPORT"];
    todo: ["find the owner: sockgen analyze --port P (or ss -ltnp)", "enable socket.reuseaddr (the default) for restarts; socket.reuseport for several workers", "pick another port or port 0"];
    generated: "The generated server prints `bind ADDRESS port P: EADDRINUSE (Address already in use); another program holds this port...` (Winsock: `WSAEADDRINUSE (10048)`) and exits 1; `sockgen check --port-free SPEC` reports it before you start.";
    note: Some("Windows SO_REUSEADDR lets another socket steal a bound port; use SO_EXCLUSIVEADDRUSE there.");

    "EADDRNOTAVAIL" = Some(99), Some(("WSAEADDRNOTAVAIL", 10049));
    meaning: "The address is not available on this host, or no local port is left for an outgoing connection.";
    causes: ["binding an IP address no interface has", "the ephemeral port range is exhausted by many outgoing connections (often TIME_WAIT)"];
    todo: ["bind an address the host has (ip addr), or 0.0.0.0 / ::", "for outgoing connections: reuse connections, widen net.ipv4.ip_local_port_range"];
    generated: "The server reports the bind error with the address and exits 1.";
    note: None;

    "EPIPE" = Some(32), None;
    meaning: "Writing to a connection whose other end is closed (or that we shut down for writing).";
    causes: ["the peer closed and we kept writing", "writing after shutdown(SHUT_WR)"];
    todo: ["close the connection; pass MSG_NOSIGNAL or ignore SIGPIPE so the process is not killed"];
    generated: "Every send passes MSG_NOSIGNAL and SIGPIPE is ignored, so EPIPE is an ordinary error that closes one connection.";
    note: Some("Windows has no SIGPIPE and no EPIPE: writes to a closed connection fail with WSAECONNRESET, WSAECONNABORTED (10053) or WSAESHUTDOWN (10058).");

    "EMFILE" = Some(24), Some(("WSAEMFILE", 10024));
    meaning: "The process has reached its open file descriptor limit (RLIMIT_NOFILE).";
    causes: ["more connections than `ulimit -n` allows", "a descriptor leak: sockets not closed (look for CLOSE_WAIT)"];
    todo: ["raise the limit (ulimit -n, LimitNOFILE= in systemd)", "cap connections (server.max_connections) below the limit", "fix leaks: every accepted socket must be closed"];
    generated: "poll/epoll/blocking accept loops keep a spare descriptor: on EMFILE they release it, accept and close the waiting peer, and take it back, so the listener does not spin; the event is logged with a count.";
    note: None;

    "ENFILE" = Some(23), None;
    meaning: "The whole system has reached its open file limit (fs.file-max).";
    causes: ["many processes with many descriptors", "a leak in some process"];
    todo: ["raise fs.file-max, find the process holding the most descriptors"];
    generated: "Handled like EMFILE: the spare descriptor sheds the waiting peer and the server goes on.";
    note: Some("Windows has no system-wide descriptor limit error; WSAEMFILE (10024) is the nearest.");

    "ENOBUFS" = Some(105), Some(("WSAENOBUFS", 10055));
    meaning: "The kernel could not allocate memory for socket buffers.";
    causes: ["socket memory pressure (net.ipv4.tcp_mem reached; see /proc/net/sockstat mem)", "a UDP send queue full on some drivers", "huge SO_SNDBUF/SO_RCVBUF across many sockets"];
    todo: ["lower per-socket buffers or connection counts; check sockstat memory", "retry later: it is usually transient"];
    generated: "A failed send closes that connection (TCP) or drops that reply with a rate-limited log line (UDP).";
    note: None;

    "EINPROGRESS" = Some(115), Some(("WSAEINPROGRESS", 10036));
    meaning: "A nonblocking connect() has started and will complete later.";
    causes: ["connect() on a nonblocking socket: the normal case"];
    todo: ["wait for writability, then read SO_ERROR to learn whether the connect succeeded"];
    generated: "Generated servers do not connect; client generation will wait for writability and read SO_ERROR.";
    note: Some("On Windows a nonblocking connect() fails with WSAEWOULDBLOCK, not WSAEINPROGRESS; WSAEINPROGRESS means a blocking call is already running on the thread.");

    "EALREADY" = Some(114), Some(("WSAEALREADY", 10037));
    meaning: "A nonblocking connect() is already in progress on this socket.";
    causes: ["calling connect() again before the first one completed"];
    todo: ["wait for writability and read SO_ERROR instead of calling connect() again"];
    generated: "Generated servers do not connect.";
    note: None;

    "EISCONN" = Some(106), Some(("WSAEISCONN", 10056));
    meaning: "The socket is already connected.";
    causes: ["connect() on a connected socket (sometimes how a repeated nonblocking connect reports success)", "sendto() with an address on a connected socket"];
    todo: ["treat as success after a nonblocking connect; otherwise do not connect twice"];
    generated: "Generated servers do not connect; UDP replies use an unconnected socket with sendto.";
    note: None;

    "ENOTCONN" = Some(107), Some(("WSAENOTCONN", 10057));
    meaning: "The socket is not connected.";
    causes: ["send/recv on a TCP socket before connect completed or after it failed", "getpeername() on an unconnected socket", "shutdown() on a socket that was never connected"];
    todo: ["check the connect result (SO_ERROR) before using the socket"];
    generated: "Only accepted (connected) sockets are read or written.";
    note: None;

    "EHOSTUNREACH" = Some(113), Some(("WSAEHOSTUNREACH", 10065));
    meaning: "No route to the host: an ICMP host-unreachable came back, or the host is on-link but does not answer ARP/ND.";
    causes: ["the host is down", "a firewall answers with host-unreachable", "a wrong address"];
    todo: ["check the address and that the host is up (ping, ip neigh)"];
    generated: "The connection fails and is closed.";
    note: None;

    "ENETUNREACH" = Some(101), Some(("WSAENETUNREACH", 10051));
    meaning: "No route to the network.";
    causes: ["no route for the destination (ip route)", "IPv6 address used on a host without IPv6 connectivity"];
    todo: ["check routes and the address family; try the IPv4 address"];
    generated: "The connection fails and is closed.";
    note: None;

    "EMSGSIZE" = Some(90), Some(("WSAEMSGSIZE", 10040));
    meaning: "The datagram is too large: over 65507 bytes for UDP over IPv4, or over the path MTU with don't-fragment set.";
    causes: ["sending a UDP payload larger than 65507 (IPv4) / 65527 (IPv6) bytes", "IP_PMTUDISC_DO with a datagram over the path MTU"];
    todo: ["split the payload or use TCP; keep datagrams at or below 1472 bytes to avoid fragmentation on Ethernet"];
    generated: "A reply that cannot be sent is dropped with a rate-limited log line; received datagrams longer than io.buffer_size are detected with MSG_TRUNC and dropped, never handled cut short.";
    note: Some("On Windows WSAEMSGSIZE is also returned by recv when a datagram was truncated to the buffer.");

    "EACCES" = Some(13), Some(("WSAEACCES", 10013));
    meaning: "Permission denied.";
    causes: ["binding a port below 1024 without CAP_NET_BIND_SERVICE", "sending to a broadcast address without SO_BROADCAST", "a security module (SELinux, AppArmor) or firewall rule"];
    todo: ["use a port at or above 1024, or grant CAP_NET_BIND_SERVICE (setcap) or lower net.ipv4.ip_unprivileged_port_start"];
    generated: "The server reports the failed bind with its address and exits 1.";
    note: Some("On Windows WSAEACCES on bind often means another process holds the port with SO_EXCLUSIVEADDRUSE, or the port is in an excluded range (netsh int ipv4 show excludedportrange).");
}

/// Finds an error by name (any case, with or without the WSA prefix), by Linux number, or by
/// Winsock number.
pub fn lookup(query: &str) -> Option<&'static ErrorInfo> {
    let q = query.trim();
    if let Ok(n) = q.parse::<i32>() {
        return CATALOGUE
            .iter()
            .find(|e| e.linux == Some(n) || e.winsock.is_some_and(|(_, w)| w == n));
    }
    let upper = q.to_ascii_uppercase();
    CATALOGUE.iter().find(|e| {
        e.name == upper
            || e.aliases.contains(&upper.as_str())
            || e.winsock.is_some_and(|(w, _)| w == upper)
            // Winsock names without their prefix, and errno names written with it.
            || upper.strip_prefix("WSA").is_some_and(|bare| e.name == bare || e.aliases.contains(&bare))
    })
}

/// Human text for `sockgen explain`.
pub fn render(e: &ErrorInfo) -> String {
    let mut out = String::new();
    let linux = match e.linux {
        Some(n) => format!("{} ({n} on Linux)", e.name),
        None => e.name.to_string(),
    };
    out.push_str(&linux);
    if !e.aliases.is_empty() {
        out.push_str(&format!(", also {}", e.aliases.join(", ")));
    }
    match e.winsock {
        Some((w, n)) => out.push_str(&format!(" ↔ {w} ({n} on Windows)\n")),
        None => out.push_str(" ↔ no exact Winsock twin\n"),
    }
    out.push_str(&format!("\n{}\n", e.meaning));
    out.push_str("\nCommon causes:\n");
    for c in e.causes {
        out.push_str(&format!("  - {c}\n"));
    }
    out.push_str("\nWhat to do:\n");
    for t in e.what_to_do {
        out.push_str(&format!("  - {t}\n"));
    }
    out.push_str(&format!(
        "\nIn sockgen's generated code:\n  {}\n",
        e.generated_code
    ));
    if let Some(note) = e.platform_note {
        out.push_str(&format!("\nPlatform note:\n  {note}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalogue's Linux numbers are the ones this machine's libc uses.
    #[test]
    fn linux_numbers_match_libc() {
        let expected = [
            ("EAGAIN", libc::EAGAIN),
            ("EINTR", libc::EINTR),
            ("ECONNRESET", libc::ECONNRESET),
            ("ECONNREFUSED", libc::ECONNREFUSED),
            ("ETIMEDOUT", libc::ETIMEDOUT),
            ("EADDRINUSE", libc::EADDRINUSE),
            ("EADDRNOTAVAIL", libc::EADDRNOTAVAIL),
            ("EPIPE", libc::EPIPE),
            ("EMFILE", libc::EMFILE),
            ("ENFILE", libc::ENFILE),
            ("ENOBUFS", libc::ENOBUFS),
            ("EINPROGRESS", libc::EINPROGRESS),
            ("EALREADY", libc::EALREADY),
            ("EISCONN", libc::EISCONN),
            ("ENOTCONN", libc::ENOTCONN),
            ("EHOSTUNREACH", libc::EHOSTUNREACH),
            ("ENETUNREACH", libc::ENETUNREACH),
            ("EMSGSIZE", libc::EMSGSIZE),
            ("EACCES", libc::EACCES),
        ];
        for (name, number) in expected {
            let e = lookup(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(e.linux, Some(number), "{name}");
        }
        assert_eq!(libc::EWOULDBLOCK, libc::EAGAIN);
        assert_eq!(CATALOGUE.len(), expected.len());
    }

    /// Winsock numbers are WSABASEERR (10000) + the BSD errno, as winerror.h defines them.
    #[test]
    fn winsock_numbers_follow_the_bsd_offsets() {
        let bsd = [
            ("WSAEINTR", 4),
            ("WSAEACCES", 13),
            ("WSAEMFILE", 24),
            ("WSAEWOULDBLOCK", 35),
            ("WSAEINPROGRESS", 36),
            ("WSAEALREADY", 37),
            ("WSAEMSGSIZE", 40),
            ("WSAEADDRINUSE", 48),
            ("WSAEADDRNOTAVAIL", 49),
            ("WSAENETUNREACH", 51),
            ("WSAECONNRESET", 54),
            ("WSAENOBUFS", 55),
            ("WSAEISCONN", 56),
            ("WSAENOTCONN", 57),
            ("WSAETIMEDOUT", 60),
            ("WSAECONNREFUSED", 61),
            ("WSAEHOSTUNREACH", 65),
        ];
        for (name, offset) in bsd {
            let e = lookup(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(e.winsock, Some((name, 10_000 + offset)));
            assert_eq!(
                lookup(&(10_000 + offset).to_string()).map(|x| x.name),
                Some(e.name)
            );
        }
    }

    #[test]
    fn lookups_by_every_spelling() {
        assert_eq!(lookup("ewouldblock").unwrap().name, "EAGAIN");
        assert_eq!(lookup("11").unwrap().name, "EAGAIN");
        assert_eq!(lookup("10054").unwrap().name, "ECONNRESET");
        assert_eq!(lookup("WSAECONNRESET").unwrap().name, "ECONNRESET");
        assert_eq!(lookup("wsaeconnreset").unwrap().name, "ECONNRESET");
        assert!(lookup("EBOGUS").is_none());
        assert!(lookup("99999").is_none());
        assert!(lookup("").is_none());
    }
}
