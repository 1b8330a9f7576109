//! Conversation files (`verify --conversation FILE`): what a protocol means, said by its
//! author as send/expect pairs, and checked against a live server byte for byte.
//!
//! ```text
//! # A Redis conversation.
//! connections: 4      # at once (default 1)
//! repeat: 50          # times each connection goes through the exchanges (default 1)
//! pipeline: yes       # send everything before reading (default no: one exchange at a time)
//! frame: no           # yes: frame each send and expect as the spec's framing does
//! send: PING\r\n
//! expect: +PONG\r\n
//! send: SET k v\r\n
//! expect: +OK\r\n
//! ```
//!
//! After `send: ` and `expect: ` comes the text to the end of the line, with `\r`, `\n`,
//! `\t`, `\0`, `\\` and `\xHH` escapes; `expect:` may be empty (nothing comes back).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::plan::Framing;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub send: Vec<u8>,
    pub expect: Vec<u8>,
    /// Where the `send:` line is, for messages.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub name: String,
    pub connections: usize,
    pub repeat: usize,
    pub pipeline: bool,
    pub frame: bool,
    pub exchanges: Vec<Exchange>,
}

const MOST_CONNECTIONS: usize = 1000;
const MOST_REPEATS: usize = 1_000_000;

/// Reads a conversation file's text; an error names the line and what is wrong.
pub fn parse(name: &str, text: &str) -> Result<Conversation, String> {
    let mut conversation = Conversation {
        name: name.to_string(),
        connections: 1,
        repeat: 1,
        pipeline: false,
        frame: false,
        exchanges: Vec::new(),
    };
    let mut pending_send: Option<(Vec<u8>, usize)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let at = |why: String| format!("{name}:{line_no}: {why}");
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(at(format!(
                "expected `key: value` (send, expect, connections, repeat, pipeline, frame), \
                 found `{raw}`"
            )));
        };
        // The value of send/expect is everything after one space; settings may carry comments.
        let text_value = value.strip_prefix(' ').unwrap_or(value);
        let setting = value.split('#').next().unwrap_or("").trim();
        match key.trim() {
            "send" => {
                if pending_send.is_some() {
                    return Err(at(
                        "two `send:` lines in a row: each needs its `expect:`".into()
                    ));
                }
                pending_send = Some((unescape(text_value).map_err(at)?, line_no));
            }
            "expect" => {
                let Some((send, line)) = pending_send.take() else {
                    return Err(at("`expect:` without a `send:` before it".into()));
                };
                let expect = unescape(text_value).map_err(at)?;
                conversation.exchanges.push(Exchange { send, expect, line });
            }
            "connections" => {
                conversation.connections = number(setting, 1, MOST_CONNECTIONS)
                    .map_err(|e| at(format!("connections: {e}")))?
            }
            "repeat" => {
                conversation.repeat =
                    number(setting, 1, MOST_REPEATS).map_err(|e| at(format!("repeat: {e}")))?
            }
            "pipeline" => {
                conversation.pipeline = yes_no(setting).map_err(|e| at(format!("pipeline: {e}")))?
            }
            "frame" => {
                conversation.frame = yes_no(setting).map_err(|e| at(format!("frame: {e}")))?
            }
            other => {
                return Err(at(format!(
                    "unknown key `{other}` (send, expect, connections, repeat, pipeline, frame)"
                )))
            }
        }
    }
    if let Some((_, line)) = pending_send {
        return Err(format!("{name}:{line}: `send:` without its `expect:`"));
    }
    if conversation.exchanges.is_empty() {
        return Err(format!("{name}: no `send:`/`expect:` pair"));
    }
    Ok(conversation)
}

fn number(text: &str, min: usize, max: usize) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("`{text}` is not a number from {min} to {max}")),
    }
}

fn yes_no(text: &str) -> Result<bool, String> {
    match text {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(format!("`{text}` is neither yes nor no")),
    }
}

/// `\r`, `\n`, `\t`, `\0`, `\\` and `\xHH`; any other backslash is an error, so a typo is not
/// sent as it stands.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'0') => out.push(0),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                let value = std::str::from_utf8(&hex)
                    .ok()
                    .filter(|h| h.len() == 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("`\\x` needs two hex digits")?;
                out.push(value);
            }
            Some(other) => {
                return Err(format!(
                    "unknown escape `\\{}` (use \\r \\n \\t \\0 \\\\ or \\xHH)",
                    char::from(other)
                ))
            }
            None => return Err("a backslash ends the line (write \\\\ for one)".into()),
        }
    }
    Ok(out)
}

const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One check per conversation, against the server of `plan` at `addr`.
pub fn checks(
    plan: &crate::plan::Plan,
    conversations: &[Conversation],
    addr: SocketAddr,
) -> Vec<super::CheckResult> {
    conversations
        .iter()
        .map(|c| {
            let result = if plan.is_tcp() {
                run(c, addr, &plan.framing, plan.io.max_message)
            } else {
                run_datagrams(c, addr)
            };
            super::CheckResult {
                name: format!("conversation {}", c.name),
                passed: result.is_ok(),
                detail: result.unwrap_or_else(|e| e),
            }
        })
        .collect()
}

/// Runs the conversation against a TCP server at `addr`; `framing` is the spec's, used when the
/// file says `frame: yes`. Ok with what was checked; Err with one line per failed connection.
pub fn run(
    conversation: &Conversation,
    addr: SocketAddr,
    framing: &Framing,
    max_message: u32,
) -> Result<String, String> {
    let started = Instant::now();
    // Each exchange as bytes on the wire: framed when asked.
    let framer = super::load::Framer::new(framing, max_message);
    let wire: Vec<Exchange> = conversation
        .exchanges
        .iter()
        .map(|e| {
            if conversation.frame {
                Exchange {
                    send: framer.frame(&e.send, false).0,
                    expect: framer.frame(&e.expect, false).1,
                    line: e.line,
                }
            } else {
                e.clone()
            }
        })
        .collect();
    let wire = Arc::new(wire);
    let handles: Vec<_> = (0..conversation.connections)
        .map(|_| {
            let wire = Arc::clone(&wire);
            let repeat = conversation.repeat;
            let pipeline = conversation.pipeline;
            thread::spawn(move || converse(addr, &wire, repeat, pipeline))
        })
        .collect();
    let mut failures = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("connection {i}: {e}")),
            Err(_) => failures.push(format!("connection {i}: thread panicked")),
        }
    }
    if !failures.is_empty() {
        return Err(super::load::failure_lines(&failures));
    }
    Ok(format!(
        "{} connection{} × {} × {} exchange{}{}{}: every reply byte-exact in {} ms",
        conversation.connections,
        if conversation.connections == 1 {
            ""
        } else {
            "s"
        },
        conversation.repeat,
        conversation.exchanges.len(),
        if conversation.exchanges.len() == 1 {
            ""
        } else {
            "s"
        },
        if conversation.pipeline {
            ", pipelined"
        } else {
            ""
        },
        if conversation.frame {
            format!(", framed ({})", framer.name())
        } else {
            String::new()
        },
        started.elapsed().as_millis()
    ))
}

/// How long a UDP conversation waits for each reply: loopback drops nothing with one datagram
/// in flight, so the wait only bounds a server that stalled or never answers.
const DATAGRAM_WAIT: Duration = Duration::from_secs(5);

/// A conversation with a UDP server: each `send:` is one datagram from the connection's own
/// socket, and its `expect:` the one datagram that must come back to it (an empty `expect:` is
/// an empty datagram). Exchanges go one at a time; `pipeline` and `frame` do not apply to
/// datagrams.
pub fn run_datagrams(conversation: &Conversation, addr: SocketAddr) -> Result<String, String> {
    if conversation.pipeline || conversation.frame {
        return Err(format!(
            "{}: `pipeline` and `frame` apply to TCP; a UDP server gets one datagram at a time",
            conversation.name
        ));
    }
    let started = Instant::now();
    let exchanges = Arc::new(conversation.exchanges.clone());
    let handles: Vec<_> = (0..conversation.connections)
        .map(|_| {
            let exchanges = Arc::clone(&exchanges);
            let repeat = conversation.repeat;
            thread::spawn(move || exchange_datagrams(addr, &exchanges, repeat))
        })
        .collect();
    let mut failures = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("socket {i}: {e}")),
            Err(_) => failures.push(format!("socket {i}: thread panicked")),
        }
    }
    if !failures.is_empty() {
        return Err(super::load::failure_lines(&failures));
    }
    Ok(format!(
        "{} socket{} × {} × {} datagram exchange{}: every reply whole and byte-exact in {} ms",
        conversation.connections,
        if conversation.connections == 1 {
            ""
        } else {
            "s"
        },
        conversation.repeat,
        conversation.exchanges.len(),
        if conversation.exchanges.len() == 1 {
            ""
        } else {
            "s"
        },
        started.elapsed().as_millis()
    ))
}

fn exchange_datagrams(
    addr: SocketAddr,
    exchanges: &[Exchange],
    repeat: usize,
) -> Result<(), String> {
    let bind = if addr.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let socket = std::net::UdpSocket::bind(bind).map_err(|e| format!("bind: {e}"))?;
    socket
        .connect(addr)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let mut buf = vec![0u8; 65536];
    for round in 0..repeat {
        for Exchange { send, expect, line } in exchanges {
            socket
                .send(send)
                .map_err(|e| format!("repeat {round}, the send of line {line}: {e}"))?;
            socket
                .set_read_timeout(Some(DATAGRAM_WAIT))
                .map_err(|e| e.to_string())?;
            match socket.recv(&mut buf) {
                Ok(n) if buf[..n] != expect[..] => {
                    return Err(format!(
                        "repeat {round}, the reply to line {line}: {}",
                        super::load::first_difference(expect, &buf[..n])
                    ))
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(format!(
                        "repeat {round}, the reply to line {line}: none within {} s ({e})",
                        DATAGRAM_WAIT.as_secs()
                    ))
                }
            }
        }
    }
    Ok(())
}

/// One connection's part: the exchanges `repeat` times, one at a time or all sent first.
fn converse(
    addr: SocketAddr,
    wire: &Arc<Vec<Exchange>>,
    repeat: usize,
    pipeline: bool,
) -> Result<(), String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let writer_stream = stream.try_clone().map_err(|e| e.to_string())?;
    let sender = if pipeline {
        let wire = Arc::clone(wire);
        Some(thread::spawn(move || -> Result<(), String> {
            let mut writer = writer_stream;
            for _ in 0..repeat {
                for exchange in wire.iter() {
                    writer
                        .write_all(&exchange.send)
                        .map_err(|e| format!("send (line {}): {e}", exchange.line))?;
                }
            }
            Ok(())
        }))
    } else {
        None
    };
    let mut stream = stream;
    let mut result = Ok(());
    'all: for round in 0..repeat {
        for Exchange { send, expect, line } in wire.iter() {
            if !pipeline {
                if let Err(e) = stream.write_all(send) {
                    result = Err(format!("repeat {round}, the send of line {line}: {e}"));
                    break 'all;
                }
            }
            let mut got = vec![0u8; expect.len()];
            let mut have = 0;
            while have < got.len() {
                match stream.read(&mut got[have..]) {
                    Ok(0) => {
                        result = Err(format!(
                            "repeat {round}, the reply to line {line}: the connection closed \
                             after {have} of its {} bytes",
                            expect.len()
                        ));
                        break 'all;
                    }
                    Ok(n) => have += n,
                    Err(e) => {
                        result = Err(format!(
                            "repeat {round}, the reply to line {line}: {have} of {} bytes, \
                             then {e}",
                            expect.len()
                        ));
                        break 'all;
                    }
                }
            }
            if got != *expect {
                result = Err(format!(
                    "repeat {round}, the reply to line {line}: {}",
                    super::load::first_difference(expect, &got)
                ));
                break 'all;
            }
        }
    }
    if result.is_err() {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    if let Some(sender) = sender {
        let sent = sender.join().map_err(|_| "sender panicked".to_string())?;
        if result.is_ok() {
            result = sent;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_reads_with_its_settings_and_escapes() {
        let text = "# redis\nconnections: 4  # at once\nrepeat: 50\npipeline: yes\n\
                    send: PING\\r\\n\nexpect: +PONG\\r\\n\nsend: \\x00\\t\\\\ x\nexpect:\n";
        let c = parse("r.conv", text).unwrap();
        assert_eq!(
            (c.connections, c.repeat, c.pipeline, c.frame),
            (4, 50, true, false)
        );
        assert_eq!(c.exchanges.len(), 2);
        assert_eq!(c.exchanges[0].send, b"PING\r\n");
        assert_eq!(c.exchanges[0].expect, b"+PONG\r\n");
        assert_eq!(c.exchanges[0].line, 5);
        assert_eq!(c.exchanges[1].send, b"\0\t\\ x");
        assert_eq!(c.exchanges[1].expect, b"");
    }

    #[test]
    fn mistakes_are_named_with_their_line() {
        let cases = [
            ("send: a\nsend: b\n", "r:2: two `send:` lines"),
            ("expect: a\n", "r:1: `expect:` without a `send:`"),
            ("send: a\n", "r:1: `send:` without its `expect:`"),
            ("send: \\q\nexpect:\n", "r:1: unknown escape `\\q`"),
            ("send: \\x4\nexpect:\n", "r:1: `\\x` needs two hex digits"),
            (
                "repeat: 0\nsend: a\nexpect: a\n",
                "r:1: repeat: `0` is not a number",
            ),
            ("pipeline: maybe\n", "r:1: pipeline: `maybe` is neither"),
            ("colour: red\n", "r:1: unknown key `colour`"),
            ("just text\n", "r:1: expected `key: value`"),
            ("# nothing\n", "r: no `send:`/`expect:` pair"),
        ];
        for (text, want) in cases {
            let err = parse("r", text).unwrap_err();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}
