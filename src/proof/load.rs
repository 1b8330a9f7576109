//! Traffic that checks a server: random payloads sent and compared byte for byte.
//! Every loop here is bounded in count and time, and only talks to the address it is given
//! (the tests pass loopback).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Makes the stream's close send a reset rather than a FIN (SO_LINGER 0): a peer that vanishes.
pub fn reset_on_close(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a live socket and a linger struct of the right size.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// How long one UDP reply is waited for. Loopback with one datagram in flight does not drop
/// them, so this only bounds a stalled server; it is generous because a Windows program's
/// every call goes through Wine's server, which a busy two-core machine can hold up for
/// a second or more (CI once failed a Winsock UDP server that is byte for byte the one that
/// passed beside it; this 1 s wait was the tightest of its checks).
const UDP_REPLY_WAIT: Duration = Duration::from_secs(5);

/// xorshift64*: deterministic per seed, so a failing payload can be reproduced.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

/// Where two byte strings first differ, for a failure message that helps.
fn first_difference(expected: &[u8], got: &[u8]) -> String {
    let at = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    format!(
        "first difference at byte {at} of {} (got {} bytes; expected {:?}, got {:?})",
        expected.len(),
        got.len(),
        expected.get(at),
        got.get(at)
    )
}

/// One connection: a writer thread sends `payload` in random-sized pieces while this thread
/// reads the echo and compares it as it arrives; then half-closes and expects EOF.
fn echo_one(addr: SocketAddr, payload: Arc<Vec<u8>>, seed: u64) -> Result<(), String> {
    let stream = connect(addr)?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let total = payload.len();
    let expected = Arc::clone(&payload);
    let sender = thread::spawn(move || -> Result<(), String> {
        let mut rng = Rng::new(seed);
        let mut sent = 0;
        while sent < payload.len() {
            let piece = (1 + rng.below(64 * 1024)).min(payload.len() - sent);
            writer
                .write_all(&payload[sent..sent + piece])
                .map_err(|e| format!("send after {sent} bytes: {e}"))?;
            sent += piece;
        }
        // Half-close: the server must still send back everything before closing.
        writer
            .shutdown(Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))?;
        Ok(())
    });
    let mut reader = stream;
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let mut result: Result<(), String> = Ok(());
    while received < total {
        match reader.read(&mut buf) {
            Ok(0) => {
                result = Err(format!(
                    "connection closed after {received} of {total} bytes"
                ));
                break;
            }
            Ok(n) if received + n > total => {
                result = Err(format!(
                    "{} bytes more than were sent",
                    received + n - total
                ));
                break;
            }
            Ok(n) => {
                let want = &expected[received..received + n];
                if buf[..n] != *want {
                    let detail = first_difference(want, &buf[..n]);
                    result = Err(format!("in the read starting at byte {received}: {detail}"));
                    break;
                }
                received += n;
            }
            Err(e) => {
                result = Err(format!("read after {received} of {total} bytes: {e}"));
                break;
            }
        }
    }
    if result.is_ok() {
        // After the whole echo the server closes its side: anything more is wrong.
        match reader.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => result = Err(format!("{n} unexpected bytes after the echo")),
            Err(e) => result = Err(format!("no EOF after the echo: {e}")),
        }
    }
    let sent = sender
        .join()
        .map_err(|_| "sender thread panicked".to_string())?;
    result.and(sent)
}

/// One concurrent connection per entry of `payloads`, each streaming that many random bytes
/// in random-sized writes without waiting (pipelined), then half-closing; every echo must come
/// back byte-exact, in order, followed by EOF.
pub fn tcp_echo(addr: SocketAddr, payloads: &[usize], seed: u64) -> Result<String, String> {
    let started = Instant::now();
    let handles: Vec<_> = payloads
        .iter()
        .enumerate()
        .map(|(i, &bytes)| {
            let conn_seed = seed.wrapping_add(i as u64 * 0x9e37_79b9);
            let payload = Arc::new(Rng::new(conn_seed).bytes(bytes));
            thread::spawn(move || echo_one(addr, payload, conn_seed))
        })
        .collect();
    let mut failures = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("connection {i} ({} bytes): {e}", payloads[i])),
            Err(_) => failures.push(format!("connection {i}: thread panicked")),
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("; "));
    }
    let secs = started.elapsed().as_secs_f64();
    let total: usize = payloads.iter().sum();
    let (min, max) = (
        payloads.iter().min().unwrap_or(&0),
        payloads.iter().max().unwrap_or(&0),
    );
    Ok(format!(
        "{} connections, {min} B to {max} B each ({total} B), echoed byte-exact with half-close in {:.0} ms ({:.1} MB/s)",
        payloads.len(),
        secs * 1e3,
        total as f64 / secs / 1e6
    ))
}

/// Discard: nothing ever comes back, and our FIN is answered by the server closing (with a
/// reset when the spec sets `linger_s: 0`).
pub fn tcp_discard(addr: SocketAddr, bytes: usize, reset_on_close: bool) -> Result<String, String> {
    let mut stream = connect(addr)?;
    let payload = Rng::new(7).bytes(bytes);
    stream
        .write_all(&payload)
        .map_err(|e| format!("send: {e}"))?;
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    match stream.read(&mut buf) {
        Ok(0) => Ok(format!(
            "{bytes} bytes sent, none returned, closed after our FIN"
        )),
        Ok(n) => Err(format!("discard server sent {n} bytes")),
        Err(e) if reset_on_close && e.kind() == std::io::ErrorKind::ConnectionReset => Ok(format!(
            "{bytes} bytes sent, none returned, reset after our FIN (linger_s: 0)"
        )),
        Err(e) => Err(format!("expected EOF: {e}")),
    }
}

/// The RFC 864 pattern: 72 printable characters per line starting one further each line.
pub fn chargen_pattern(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut line = 0usize;
    while out.len() < len {
        for col in 0..72 {
            out.push(b' ' + ((line + col) % 95) as u8);
        }
        out.extend_from_slice(b"\r\n");
        line += 1;
    }
    out.truncate(len);
    out
}

/// Chargen over TCP: the stream is the RFC 864 pattern from its first byte.
pub fn tcp_chargen(addr: SocketAddr, bytes: usize) -> Result<String, String> {
    let mut stream = connect(addr)?;
    let mut got = vec![0u8; bytes];
    stream
        .read_exact(&mut got)
        .map_err(|e| format!("read: {e}"))?;
    let want = chargen_pattern(bytes);
    if got != want {
        return Err(first_difference(&want, &got));
    }
    Ok(format!("{bytes} bytes of the RFC 864 pattern"))
}

fn udp_socket(addr: SocketAddr) -> Result<UdpSocket, String> {
    let local: SocketAddr = if addr.is_ipv6() {
        "[::1]:0".parse().unwrap_or(addr)
    } else {
        SocketAddr::from(([127, 0, 0, 1], 0))
    };
    let socket = UdpSocket::bind(local).map_err(|e| format!("bind: {e}"))?;
    socket
        .set_read_timeout(Some(UDP_REPLY_WAIT))
        .map_err(|e| e.to_string())?;
    Ok(socket)
}

/// UDP echo: every size is sent from each of `sockets` sockets, one datagram in flight at a
/// time (so loopback never drops one), and must come back whole to its own sender exactly
/// once: a missing reply fails, and so does any extra datagram found when the sockets are
/// drained at the end.
pub fn udp_echo(
    addr: SocketAddr,
    sizes: &[usize],
    sockets: usize,
    seed: u64,
) -> Result<String, String> {
    let mut rng = Rng::new(seed);
    let socks: Vec<UdpSocket> = (0..sockets)
        .map(|_| udp_socket(addr))
        .collect::<Result<_, _>>()?;
    let mut buf = vec![0u8; 65536];
    let mut checked = 0;
    for &size in sizes {
        for (s, socket) in socks.iter().enumerate() {
            let payload = rng.bytes(size);
            socket
                .send_to(&payload, addr)
                .map_err(|e| format!("socket {s}: send {size} bytes: {e}"))?;
            let (n, from) = socket.recv_from(&mut buf).map_err(|e| {
                format!(
                    "socket {s}: no reply to a {size}-byte datagram within {} s: {e}",
                    UDP_REPLY_WAIT.as_secs()
                )
            })?;
            if from != addr {
                return Err(format!("socket {s}: reply came from {from}, not {addr}"));
            }
            if buf[..n] != payload[..] {
                return Err(format!(
                    "socket {s}, {size}-byte datagram: {}",
                    first_difference(&payload, &buf[..n])
                ));
            }
            checked += 1;
        }
    }
    for (s, socket) in socks.iter().enumerate() {
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .map_err(|e| e.to_string())?;
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            return Err(format!(
                "socket {s}: an extra {n}-byte datagram arrived (a reply sent twice?)"
            ));
        }
    }
    let list: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
    Ok(format!("{checked} datagrams of {} bytes from {sockets} sockets, each echoed once, whole, to its sender", list.join("/")))
}

/// UDP discard: datagrams get no reply.
pub fn udp_discard(addr: SocketAddr) -> Result<String, String> {
    let socket = udp_socket(addr)?;
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .map_err(|e| e.to_string())?;
    for size in [0usize, 1, 512] {
        socket
            .send_to(&vec![0x5a; size], addr)
            .map_err(|e| e.to_string())?;
    }
    let mut buf = [0u8; 1024];
    match socket.recv_from(&mut buf) {
        Ok((n, _)) => Err(format!("discard server replied with {n} bytes")),
        Err(_) => Ok("3 datagrams, no reply".to_string()),
    }
}

/// UDP chargen: each datagram gets 0..=512 bytes continuing the RFC 864 pattern.
pub fn udp_chargen(addr: SocketAddr, datagrams: usize) -> Result<String, String> {
    let socket = udp_socket(addr)?;
    let mut stream = Vec::new();
    let mut buf = vec![0u8; 2048];
    for i in 0..datagrams {
        socket.send_to(b"?", addr).map_err(|e| e.to_string())?;
        let (n, _) = socket.recv_from(&mut buf).map_err(|e| {
            format!(
                "datagram {i}: no reply within {} s: {e}",
                UDP_REPLY_WAIT.as_secs()
            )
        })?;
        if n > 512 {
            return Err(format!("reply of {n} bytes exceeds 512"));
        }
        stream.extend_from_slice(&buf[..n]);
    }
    let want = chargen_pattern(stream.len());
    if stream != want {
        return Err(first_difference(&want, &stream));
    }
    Ok(format!(
        "{datagrams} replies, {} bytes of the pattern in order",
        stream.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chargen_lines_shift_by_one() {
        let p = chargen_pattern(74 * 2);
        assert_eq!(&p[..3], b" !\"");
        assert_eq!(&p[72..74], b"\r\n");
        assert_eq!(p[74], b'!');
    }

    #[test]
    fn rng_is_deterministic() {
        assert_eq!(Rng::new(3).bytes(16), Rng::new(3).bytes(16));
        assert_ne!(Rng::new(3).bytes(16), Rng::new(4).bytes(16));
    }
}
