//! The UDP side of `sockgen bench`: the same closed loop as for TCP, with datagrams. Each
//! socket keeps `pipeline` datagrams in flight; a datagram carries its sequence number and
//! bytes derived from it, so every echo is checked whole and matched to its own request even
//! if datagrams overtake each other. One that is not back within `LOSS_TIMEOUT` is counted
//! lost (UDP may drop; that is not an error) and replaced, so a loss cannot stall the loop.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use super::bench::{BenchConfig, Case, CaseResult, Clock, Tally};

/// How long an echo may take before its datagram counts as lost.
const LOSS_TIMEOUT: Duration = Duration::from_millis(200);

/// The payload of datagram `seq`: the number, then bytes that depend on it and their offset.
fn payload(seq: u64, size: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&seq.to_le_bytes());
    let mix = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    out.extend((8..size).map(|j| (mix >> ((j % 8) * 8)) as u8 ^ j as u8));
}

struct Socket {
    socket: mio::net::UdpSocket,
    /// Datagrams sent and not yet echoed: (sequence number, when sent).
    inflight: VecDeque<(u64, Instant)>,
    next_seq: u64,
    /// Datagrams the socket had no room for; sent as soon as it has.
    owed: usize,
}

impl Socket {
    /// Sends what is owed; a full socket keeps the rest owed.
    fn send_owed(&mut self, size: usize, scratch: &mut Vec<u8>, tally: &mut Tally) {
        while self.owed > 0 {
            let seq = self.next_seq;
            payload(seq, size, scratch);
            match self.socket.send(scratch) {
                Ok(_) => {
                    self.next_seq += 1;
                    self.owed -= 1;
                    self.inflight.push_back((seq, Instant::now()));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    tally.errors += 1;
                    self.owed -= 1;
                }
            }
        }
    }
}

/// Drives `case` (`connections` sockets) against a UDP echo server at `addr`.
pub fn run_udp_case(
    addr: SocketAddr,
    case: Case,
    config: &BenchConfig,
    on_window: impl FnMut(bool),
) -> Result<CaseResult, String> {
    if case.size < 8 {
        return Err(
            "UDP bench datagrams carry an 8-byte sequence number: --sizes of at least 8".into(),
        );
    }
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut sockets = Vec::with_capacity(case.connections);
    for i in 0..case.connections {
        let std_socket = std::net::UdpSocket::bind(("127.0.0.1", 0))
            .and_then(|s| s.connect(addr).map(|()| s))
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| format!("UDP socket #{i} for {addr}: {e}"))?;
        let mut socket = mio::net::UdpSocket::from_std(std_socket);
        poll.registry()
            .register(&mut socket, Token(i), Interest::READABLE)
            .map_err(|e| e.to_string())?;
        sockets.push(Socket {
            socket,
            inflight: VecDeque::new(),
            // Disjoint sequence ranges: a datagram that reached the wrong socket is an error.
            next_seq: (i as u64) << 40,
            owed: case.pipeline,
        });
    }
    let mut tally = Tally::new()?;
    let mut scratch = Vec::with_capacity(case.size);
    for s in sockets.iter_mut() {
        s.send_owed(case.size, &mut scratch, &mut tally);
    }
    let mut clock = Clock::start(config, on_window);
    let mut last_loss_check = Instant::now();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 65536];
    while let Some(deadline) = clock.tick(&mut tally) {
        let now = Instant::now();
        let deadline = deadline.min(now + LOSS_TIMEOUT / 4);
        poll.poll(&mut events, Some(deadline.saturating_duration_since(now)))
            .map_err(|e| e.to_string())?;
        for event in events.iter() {
            let s = &mut sockets[event.token().0];
            receive(s, &mut buf, case, &mut scratch, &mut tally);
            s.send_owed(case.size, &mut scratch, &mut tally);
        }
        let now = Instant::now();
        if now >= last_loss_check + LOSS_TIMEOUT / 4 {
            last_loss_check = now;
            for s in sockets.iter_mut() {
                while s
                    .inflight
                    .front()
                    .is_some_and(|&(_, at)| now - at > LOSS_TIMEOUT)
                {
                    s.inflight.pop_front();
                    if tally.measuring {
                        tally.losses += 1;
                    }
                    s.owed += 1;
                }
                s.send_owed(case.size, &mut scratch, &mut tally);
            }
        }
    }
    Ok(clock.finish(&tally, case))
}

/// Reads every echo waiting on `s`: each must be a datagram this socket has in flight, whole
/// and unchanged; it is then complete, and the next one is owed.
fn receive(s: &mut Socket, buf: &mut [u8], case: Case, scratch: &mut Vec<u8>, tally: &mut Tally) {
    loop {
        let n = match s.socket.recv(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                // ECONNREFUSED: nothing listens (an ICMP error for an earlier datagram).
                tally.errors += 1;
                return;
            }
        };
        let seq = buf[..n.min(8)]
            .try_into()
            .map(u64::from_le_bytes)
            .unwrap_or(u64::MAX);
        let Some(position) = s.inflight.iter().position(|&(q, _)| q == seq) else {
            tally.errors += 1; // not a datagram in flight here: duplicated, corrupted or stray
            continue;
        };
        let (_, sent_at) = s.inflight.remove(position).unwrap_or((seq, Instant::now()));
        s.owed += 1;
        payload(seq, case.size, scratch);
        if buf[..n] != scratch[..] {
            tally.errors += 1; // the right number, the wrong bytes: not an echo
            continue;
        }
        tally.completed(sent_at);
    }
}

/// Waits until a UDP echo server at `addr` answers (a peer has no ready line to read).
pub fn wait_for_udp_echo(addr: SocketAddr, deadline: Instant) -> bool {
    let Ok(probe) = std::net::UdpSocket::bind(("127.0.0.1", 0)) else {
        return false;
    };
    if probe.connect(addr).is_err()
        || probe
            .set_read_timeout(Some(Duration::from_millis(200)))
            .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    while Instant::now() < deadline {
        if probe.send(b"sockgen-probe").is_ok() && probe.recv(&mut buf).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
