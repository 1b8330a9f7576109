//! Traffic that checks a server: random payloads sent and compared byte for byte.
//! Every loop here is bounded in count and time, and only talks to the address it is given
//! (the tests pass loopback).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::plan::{Endian, Framing};

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

/// A byte as a person reads it: `0x0d '\r'`, `0x41 'A'`, `0xff`.
pub fn describe_byte(byte: u8) -> String {
    let text: String = std::ascii::escape_default(byte).map(char::from).collect();
    if !text.starts_with("\\x") {
        format!("0x{byte:02x} '{text}'")
    } else {
        format!("0x{byte:02x}")
    }
}

/// Where two byte strings first differ, for a failure message that helps.
pub(crate) fn first_difference(expected: &[u8], got: &[u8]) -> String {
    let at = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    let show = |byte: Option<&u8>| byte.map_or("nothing".to_string(), |&b| describe_byte(b));
    format!(
        "first difference at byte {at} of {}: expected {}, got {} ({} bytes read)",
        expected.len(),
        show(expected.get(at)),
        show(got.get(at)),
        got.len(),
    )
}

/// One connection of a byte-stream echo: the input as it is sent, and the reply expected.
#[derive(Clone)]
struct Exchange {
    input: Vec<u8>,
    reply: Vec<u8>,
    /// Writes of 1 to 3 bytes now and then, so framing bytes are split across reads.
    tiny_writes: bool,
}

/// One connection: a writer thread sends `payload` in random-sized pieces while this thread
/// reads the echo and compares it as it arrives; then half-closes and expects EOF.
fn echo_one(addr: SocketAddr, payload: Arc<Vec<u8>>, seed: u64) -> Result<(), String> {
    let exchange = Exchange {
        input: payload.to_vec(),
        reply: payload.to_vec(),
        tiny_writes: false,
    };
    exchange_one(addr, Arc::new(exchange), seed)
}

/// One connection: a writer thread sends the input in random-sized pieces without waiting
/// (pipelined) while this thread reads the reply and compares it as it arrives; then
/// half-closes and expects EOF after the whole reply.
fn exchange_one(addr: SocketAddr, exchange: Arc<Exchange>, seed: u64) -> Result<(), String> {
    let stream = connect(addr)?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let total = exchange.reply.len();
    let expected = Arc::clone(&exchange);
    let sender = thread::spawn(move || -> Result<(), String> {
        let payload = &exchange.input;
        let mut rng = Rng::new(seed);
        let mut sent = 0;
        while sent < payload.len() {
            let piece = if exchange.tiny_writes && rng.below(4) == 0 {
                1 + rng.below(3)
            } else {
                1 + rng.below(64 * 1024)
            };
            let piece = piece.min(payload.len() - sent);
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
                let want = &expected.reply[received..received + n];
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
        return Err(failure_lines(&failures));
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

/// One line per failed connection: the first few, then how many more.
pub(crate) fn failure_lines(failures: &[String]) -> String {
    const SHOWN: usize = 4;
    let mut text = failures
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    if failures.len() > SHOWN {
        text.push_str(&format!(
            "\n... and {} more connections failed",
            failures.len() - SHOWN
        ));
    }
    text
}

/// A message's framing as the proof writes and expects it; see the contract's "Built-in
/// framing".
pub(crate) struct Framer<'a> {
    framing: &'a Framing,
    /// The longest message the server takes: io.max_message, or less where the length prefix
    /// cannot say more.
    longest: usize,
}

impl Framer<'_> {
    pub(crate) fn new(framing: &Framing, max_message: u32) -> Framer<'_> {
        let mut longest = max_message as usize;
        if let Framing::LengthPrefix { bytes, .. } = framing {
            if *bytes < 8 {
                longest = longest.min((1usize << (8 * u32::from(*bytes))) - 1);
            }
        }
        Framer { framing, longest }
    }

    /// Random message bytes that hold no framing: no LF, and no CR at the end, for lines; none
    /// of the delimiter's bytes for a delimiter.
    fn content(&self, rng: &mut Rng, len: usize) -> Vec<u8> {
        let mut bytes = rng.bytes(len);
        match self.framing {
            Framing::Line => {
                for b in bytes.iter_mut() {
                    if *b == b'\n' {
                        *b = b'n';
                    }
                }
                if bytes.last() == Some(&b'\r') {
                    *bytes.last_mut().unwrap() = b'r';
                }
            }
            Framing::Delimiter(delimiter) => {
                let allowed: Vec<u8> = (0..=255u8).filter(|b| !delimiter.contains(b)).collect();
                for b in bytes.iter_mut() {
                    if delimiter.contains(b) {
                        *b = allowed[usize::from(*b) % allowed.len()];
                    }
                }
            }
            Framing::LengthPrefix { .. } | Framing::None => {}
        }
        bytes
    }

    /// The message as sent, and the reply a framed echo writes back. `variant` picks CR LF
    /// rather than LF for a line (the server strips the CR and answers with LF alone).
    pub(crate) fn frame(&self, content: &[u8], variant: bool) -> (Vec<u8>, Vec<u8>) {
        match self.framing {
            Framing::Line => {
                let mut input = content.to_vec();
                input.extend_from_slice(if variant { b"\r\n" } else { b"\n" });
                let mut reply = content.to_vec();
                reply.push(b'\n');
                (input, reply)
            }
            Framing::Delimiter(delimiter) => {
                let mut framed = content.to_vec();
                framed.extend_from_slice(delimiter);
                (framed.clone(), framed)
            }
            Framing::LengthPrefix { bytes, endian } => {
                let width = usize::from(*bytes);
                let length = (content.len() as u64).to_be_bytes();
                let mut prefix = length[8 - width..].to_vec();
                if *endian == Endian::Little {
                    prefix.reverse();
                }
                prefix.extend_from_slice(content);
                (prefix.clone(), prefix)
            }
            Framing::None => (content.to_vec(), content.to_vec()),
        }
    }

    pub(crate) fn name(&self) -> String {
        match self.framing {
            Framing::Line => "line".into(),
            Framing::Delimiter(d) => format!(
                "delimiter {}",
                d.iter()
                    .map(|&b| describe_byte(b))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Framing::LengthPrefix { bytes, endian } => {
                format!("{bytes}-byte {endian}-endian length prefix")
            }
            Framing::None => "none".into(),
        }
    }
}

/// A framed echo server (built-in framing, each message echoed framed the same way): several
/// connections pipeline messages from empty to the longest the server takes, in writes that
/// now and then split the framing bytes, and every reply must come back byte-exact, in order,
/// then EOF after a half-close. One more connection sends a message one byte too long after a
/// good one, and must see the good reply and then the connection end (input_limit).
pub fn tcp_framed_echo(
    addr: SocketAddr,
    framing: &Framing,
    max_message: u32,
    seed: u64,
) -> Result<String, String> {
    const CONNECTIONS: u64 = 4;
    let framer = Framer::new(framing, max_message);
    let started = Instant::now();
    let mut exchanges = Vec::new();
    for conn in 0..CONNECTIONS {
        let mut rng = Rng::new(seed.wrapping_add(conn * 0x9e37_79b9));
        let longest = framer.longest;
        let mut sizes = vec![0, 1, 2, longest, longest.saturating_sub(1)];
        sizes.extend((0..24).map(|_| rng.below(100.min(longest) + 1)));
        sizes.extend((0..8).map(|_| rng.below((16 << 10).min(longest) + 1)));
        // Every connection a different order, so the long ones meet every neighbour.
        for i in (1..sizes.len()).rev() {
            sizes.swap(i, rng.below(i + 1));
        }
        let mut input = Vec::new();
        let mut reply = Vec::new();
        for (i, &len) in sizes.iter().enumerate() {
            let content = framer.content(&mut rng, len);
            let (sent, back) = framer.frame(&content, i % 2 == 1);
            input.extend_from_slice(&sent);
            reply.extend_from_slice(&back);
        }
        exchanges.push((
            sizes.len(),
            Exchange {
                input,
                reply,
                tiny_writes: true,
            },
        ));
    }
    let handles: Vec<_> = exchanges
        .iter()
        .enumerate()
        .map(|(i, (_, exchange))| {
            let exchange = Arc::new(exchange.clone());
            let conn_seed = seed.wrapping_add(i as u64);
            thread::spawn(move || exchange_one(addr, exchange, conn_seed))
        })
        .collect();
    let mut failures = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!(
                "connection {i} ({} messages, {} bytes): {e}",
                exchanges[i].0,
                exchanges[i].1.input.len()
            )),
            Err(_) => failures.push(format!("connection {i}: thread panicked")),
        }
    }
    let too_long = if (framer.longest as u64) < u64::from(max_message) {
        "no message is too long: the prefix cannot say more than io.max_message".to_string()
    } else {
        match framed_too_long(addr, &framer, seed) {
            Ok(()) => format!(
                "a {}-byte message ended its connection after the good reply before it",
                framer.longest + 1
            ),
            Err(e) => {
                failures.push(format!("the connection with a message too long: {e}"));
                String::new()
            }
        }
    };
    if !failures.is_empty() {
        return Err(failure_lines(&failures));
    }
    let messages: usize = exchanges.iter().map(|(n, _)| n).sum();
    let bytes: usize = exchanges.iter().map(|(_, e)| e.input.len()).sum();
    Ok(format!(
        "{CONNECTIONS} connections pipelined {messages} messages ({} framing; 0 to {} bytes, \
         {bytes} B in all, framing split across writes) and got each echoed framed, byte-exact, \
         in {:.0} ms; {too_long}",
        framer.name(),
        framer.longest,
        started.elapsed().as_secs_f64() * 1e3
    ))
}

/// A good message, its reply, then one a byte longer than the server takes: the connection
/// must end (EOF or reset) with nothing more sent back.
fn framed_too_long(addr: SocketAddr, framer: &Framer, seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed ^ 0x7f4a_7c15);
    let mut stream = connect(addr)?;
    let good = framer.content(&mut rng, 10);
    let (input, reply) = framer.frame(&good, false);
    stream
        .write_all(&input)
        .map_err(|e| format!("send the good message: {e}"))?;
    let mut got = vec![0u8; reply.len()];
    stream
        .read_exact(&mut got)
        .map_err(|e| format!("the good message's reply: {e}"))?;
    if got != reply {
        return Err(format!(
            "the good message's reply: {}",
            first_difference(&reply, &got)
        ));
    }
    let content = framer.content(&mut rng, framer.longest + 1);
    let (input, _) = framer.frame(&content, false);
    // The server may close while this is still being written: a failed write is expected.
    let _ = stream.write_all(&input);
    let mut buf = [0u8; 4096];
    match stream.read(&mut buf) {
        Ok(0) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
        Ok(n) => Err(format!(
            "{n} bytes came back for a message longer than io.max_message ({}), where the \
             connection should end",
            framer.longest
        )),
        Err(e) => Err(format!(
            "the connection stayed open after a message longer than io.max_message: {e}"
        )),
    }
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
    fn bytes_are_named_as_a_person_reads_them() {
        assert_eq!(describe_byte(b'\r'), "0x0d '\\r'");
        assert_eq!(describe_byte(b'A'), "0x41 'A'");
        assert_eq!(describe_byte(b' '), "0x20 ' '");
        assert_eq!(describe_byte(0xff), "0xff");
        assert_eq!(describe_byte(0), "0x00");
        let text = first_difference(b"ab\n", b"ab\r");
        assert_eq!(
            text,
            "first difference at byte 2 of 3: expected 0x0a '\\n', got 0x0d '\\r' (3 bytes read)"
        );
    }

    #[test]
    fn framing_is_written_as_the_contract_says() {
        let line = Framing::Line;
        let framer = Framer::new(&line, 100);
        assert_eq!(
            framer.frame(b"hi", true),
            (b"hi\r\n".to_vec(), b"hi\n".to_vec())
        );
        assert_eq!(
            framer.frame(b"hi", false),
            (b"hi\n".to_vec(), b"hi\n".to_vec())
        );
        let prefix = Framing::LengthPrefix {
            bytes: 2,
            endian: Endian::Little,
        };
        let framer = Framer::new(&prefix, 1 << 20);
        assert_eq!(framer.longest, 65535, "two bytes say at most 65535");
        assert_eq!(framer.frame(&[7; 258], false).0[..3], [2, 1, 7]);
        let big = Framing::LengthPrefix {
            bytes: 4,
            endian: Endian::Big,
        };
        assert_eq!(
            Framer::new(&big, 300).frame(&[7; 258], false).0[..5],
            [0, 0, 1, 2, 7]
        );
        let delimiter = Framing::Delimiter(b"\r\n\r\n".to_vec());
        let framer = Framer::new(&delimiter, 100);
        let mut rng = Rng::new(3);
        let content = framer.content(&mut rng, 10_000);
        assert!(!content.iter().any(|b| *b == b'\r' || *b == b'\n'));
        let mut rng = Rng::new(3);
        let content = Framer::new(&line, 100).content(&mut rng, 10_000);
        assert!(!content.contains(&b'\n') && content.last() != Some(&b'\r'));
    }

    #[test]
    fn rng_is_deterministic() {
        assert_eq!(Rng::new(3).bytes(16), Rng::new(3).bytes(16));
        assert_ne!(Rng::new(3).bytes(16), Rng::new(4).bytes(16));
    }
}
