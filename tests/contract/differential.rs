//! The differential contract suite. Conversations generated from a seed run against every
//! target, and each target's transcript — the bytes its peer got and how the stream ended, the
//! callbacks the handler saw in order, the close reason — is compared with a reference model of
//! the probe handler written here. Two targets that disagree cannot both match it.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use sockgen::proof::load::Rng;
use sockgen::proof::{self, RunningServer};

use super::{connect, pattern, probes, start_with_env};

/// PROBE_SPEC's limits: io.output_limit, io.output_buffer (the high-water mark), io.max_message
/// and io.buffer_size (the most one receive adds to the unconsumed input).
const OUTPUT_LIMIT: u64 = 4_194_304;
const OUTPUT_BUFFER: u64 = 65_536;
const MAX_MESSAGE: usize = 65_536;
const BUFFER_SIZE: usize = 4096;

/// One request of a generated conversation. The probe's reply and transcript letter for each
/// are the reference model below.
#[derive(Debug, Clone)]
enum Request {
    /// `ECHO text`: the text back on a line.
    Echo(String),
    /// `BIG n`: n pattern bytes queued at once.
    Big(u64),
    /// `HOLD n`: n pattern bytes streamed from on_writable, no request taken meanwhile.
    Hold(u64),
    /// `ONE n`: n pattern bytes in one write; n up to what fits under io.output_limit whatever
    /// is queued when it runs (the probe runs it only below the high-water mark).
    One(u64),
    /// An unknown command line of this many bytes, up to io.max_message: `ERR` back.
    Long(usize),
    /// `ONE n` past io.output_limit: the connection ends with `output_limit`, nothing of it sent.
    PastOutputLimit(u64),
    /// A line that cannot fit io.max_message whatever the segmentation: `input_limit`.
    PastInputLimit(usize),
}

impl Request {
    fn wire(&self) -> Vec<u8> {
        match self {
            Request::Echo(text) => format!("ECHO {text}\n").into_bytes(),
            Request::Big(n) => format!("BIG {n}\n").into_bytes(),
            Request::Hold(n) => format!("HOLD {n}\n").into_bytes(),
            Request::One(n) | Request::PastOutputLimit(n) => format!("ONE {n}\n").into_bytes(),
            Request::Long(len) | Request::PastInputLimit(len) => {
                let mut line = b"NOTE ".to_vec();
                line.resize(len - 1, b'x');
                line.push(b'\n');
                line
            }
        }
    }

    /// What the probe sends for it.
    fn reply(&self) -> Vec<u8> {
        match self {
            Request::Echo(text) => format!("{text}\n").into_bytes(),
            Request::Big(n) | Request::Hold(n) | Request::One(n) => pattern(0, *n as usize),
            Request::Long(_) => b"ERR\n".to_vec(),
            Request::PastOutputLimit(_) | Request::PastInputLimit(_) => Vec::new(),
        }
    }

    /// The probe's transcript letter for it (a line the loop never presents has none).
    fn letter(&self) -> Option<char> {
        match self {
            Request::Echo(_) => Some('E'),
            Request::Big(_) => Some('B'),
            Request::Hold(_) => Some('H'),
            Request::One(_) | Request::PastOutputLimit(_) => Some('O'),
            Request::Long(_) => Some('N'),
            Request::PastInputLimit(_) => None,
        }
    }

    /// The close reason a request that ends the connection ends it with.
    fn ends_with(&self) -> Option<&'static str> {
        match self {
            Request::PastOutputLimit(_) => Some("output_limit"),
            Request::PastInputLimit(_) => Some("input_limit"),
            _ => None,
        }
    }
}

/// A conversation: requests, the sizes of the writes that carry them (cut anywhere, also
/// inside a request), whether the peer reads while it writes (else it pipelines everything
/// first), then a half-close — or, for some, a reset after `reset_after` of the writes. At most
/// its last request passes a limit.
#[derive(Debug, Clone)]
pub struct Conversation {
    requests: Vec<Request>,
    cuts: Vec<usize>,
    read_while_writing: bool,
    reset_after: Option<usize>,
}

/// How the stream ended for the peer.
#[derive(Debug, PartialEq)]
enum End {
    /// EOF after the server's FIN.
    Eof,
    /// The server reset it (or a write found it reset).
    Reset,
    /// The peer reset it itself, as the conversation said.
    ResetByPeer,
}

/// What the peer saw: the bytes that came back, how the stream ended, and its own address
/// (which names the connection in the server's log).
#[derive(Debug)]
struct PeerSide {
    local: SocketAddr,
    bytes: Vec<u8>,
    end: End,
}

/// What the handler saw, from its close line.
#[derive(Debug, Clone)]
struct ServerSide {
    reason: String,
    transcript: String,
}

/// The close lines of a server's log by peer address.
fn closes_by_peer(stderr: &str) -> HashMap<String, ServerSide> {
    stderr
        .lines()
        .filter(|line| line.starts_with("probe: closed "))
        .filter_map(|line| {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|word| word.strip_prefix(name))
                    .map(str::to_string)
            };
            Some((
                field("peer=")?,
                ServerSide {
                    reason: field("reason=")?,
                    transcript: field("transcript=").unwrap_or_default(),
                },
            ))
        })
        .collect()
}

/// Reads to EOF or a reset, keeping what came before either.
fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, End) {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, End::Eof),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return (got, End::Reset),
        }
    }
}

/// Cuts that carry `total` bytes: `cuts` as far as they go, the last one made to fit.
fn fit(cuts: &[usize], total: usize) -> Vec<usize> {
    let mut fitted = Vec::new();
    let mut left = total;
    for &piece in cuts {
        if left == 0 {
            break;
        }
        fitted.push(piece.min(left));
        left -= piece.min(left);
    }
    if left > 0 {
        fitted.push(left);
    }
    fitted
}

impl Conversation {
    pub fn generate(seed: u64) -> Conversation {
        let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let count = 1 + rng.below(40);
        let mut requests = Vec::new();
        for _ in 0..count {
            let request = match rng.below(40) {
                0..=19 => Request::Echo(
                    (0..rng.below(100))
                        .map(|_| (b'a' + rng.below(26) as u8) as char)
                        .collect(),
                ),
                20..=26 => Request::Big(rng.below(300_000) as u64),
                27..=33 => Request::Hold(rng.below(300_000) as u64),
                34 | 35 => Request::One(rng.below(100_000) as u64),
                // At a limit: the largest write that always fits, a line of exactly
                // io.max_message bytes.
                36 => Request::One(OUTPUT_LIMIT - OUTPUT_BUFFER - rng.below(2) as u64),
                37 => Request::Long(MAX_MESSAGE - rng.below(2)),
                // Past one, which ends the conversation.
                38 => Request::PastOutputLimit(
                    OUTPUT_LIMIT + 1 + (rng.below(2) * rng.below(1000)) as u64,
                ),
                _ => Request::PastInputLimit(MAX_MESSAGE + 2 * BUFFER_SIZE + 1 + rng.below(100)),
            };
            let ends = request.ends_with().is_some();
            requests.push(request);
            if ends {
                break;
            }
        }
        let total: usize = requests.iter().map(|r| r.wire().len()).sum();
        let mut cuts = Vec::new();
        let mut left = total;
        while left > 0 {
            // Mostly small pieces, some of one byte, some large, some of everything left.
            let piece = match rng.below(10) {
                0 => 1,
                1 => left,
                2 => 1 + rng.below(20_000),
                _ => 1 + rng.below(64),
            }
            .min(left);
            cuts.push(piece);
            left -= piece;
        }
        let cuts_len = cuts.len();
        let ends_at_a_limit = requests.last().is_some_and(|r| r.ends_with().is_some());
        Conversation {
            requests,
            cuts,
            // A peer that writes a line longer than the server may hold without reading what
            // it is owed deadlocks with it, rightly: it must read.
            read_while_writing: ends_at_a_limit || total > 100_000 || rng.below(2) == 0,
            reset_after: (!ends_at_a_limit && rng.below(4) == 0).then(|| rng.below(cuts_len + 1)),
        }
    }

    fn wire(&self) -> Vec<u8> {
        self.requests.iter().flat_map(Request::wire).collect()
    }

    fn expected(&self) -> Vec<u8> {
        self.requests.iter().flat_map(Request::reply).collect()
    }

    fn letters(&self) -> String {
        self.requests.iter().filter_map(Request::letter).collect()
    }

    fn limit_reason(&self) -> Option<&'static str> {
        self.requests.last().and_then(Request::ends_with)
    }

    /// Runs it against a server.
    fn run(&self, server: &RunningServer) -> Result<PeerSide, String> {
        let wire = self.wire();
        let mut stream = connect(server);
        stream
            .set_write_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let local = stream.local_addr().unwrap();
        let mut reader = stream.try_clone().unwrap();
        let early = self
            .read_while_writing
            .then(|| std::thread::spawn(move || read_to_end(&mut reader)));
        let mut at = 0;
        let mut write_failed = None;
        for (written, &piece) in self.cuts.iter().enumerate() {
            if self.reset_after == Some(written) {
                break;
            }
            if let Err(e) = stream.write_all(&wire[at..at + piece]) {
                write_failed = Some(e);
                break;
            }
            at += piece;
            if piece == 1 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if let Some(e) = write_failed {
            // Only a connection the server ended at a limit may refuse the rest.
            if self.limit_reason().is_none() || e.kind() == ErrorKind::WouldBlock {
                return Err(format!("writing at byte {at}: {e}"));
            }
        }
        if self.reset_after.is_some() {
            std::thread::sleep(Duration::from_millis(20));
            proof::load::reset_on_close(&stream); // whatever is unread or unsent
            let _ = stream.shutdown(Shutdown::Read); // the reader thread, if any, ends
            let bytes = match early {
                Some(reader) => reader.join().unwrap().0,
                None => Vec::new(),
            };
            drop(stream);
            return Ok(PeerSide {
                local,
                bytes,
                end: End::ResetByPeer,
            });
        }
        let _ = stream.shutdown(Shutdown::Write);
        let (bytes, end) = match early {
            Some(reader) => reader.join().unwrap(),
            None => read_to_end(&mut stream),
        };
        Ok(PeerSide { local, bytes, end })
    }

    /// The reference model's verdict on what the peer and the handler saw.
    /// `wine`: the program runs under Wine, whose sockets report a peer's reset as EOF (recv
    /// returns 0) or an EOF as a reset (WSAECONNRESET) now and then, where Windows and Linux
    /// report each as what it was; there the two ends are taken for one another.
    fn judge(
        &self,
        peer: &PeerSide,
        server: Option<&ServerSide>,
        wine: bool,
    ) -> Result<(), String> {
        let expected = self.expected();
        let letters = self.letters();
        let prefix_only = self.reset_after.is_some() || self.limit_reason().is_some();
        let bytes_ok = if prefix_only {
            expected.starts_with(&peer.bytes)
        } else {
            peer.bytes == expected
        };
        if !bytes_ok {
            return Err(format!(
                "{} bytes back, {} expected{}, first difference at {:?}",
                peer.bytes.len(),
                expected.len(),
                if prefix_only { " (or a prefix)" } else { "" },
                peer.bytes.iter().zip(&expected).position(|(a, b)| a != b)
            ));
        }
        if self.reset_after.is_none() && self.limit_reason().is_none() && peer.end != End::Eof {
            return Err(format!("the stream ended with {:?}, not EOF", peer.end));
        }
        let Some(server) = server else {
            return Err("the server logged no on_close for this connection".into());
        };
        let mut server = server.clone();
        if wine && matches!(server.reason.as_str(), "peer" | "reset") {
            let ended_by_eof = server.transcript.ends_with('.');
            server.reason = if self.reset_after.is_some() {
                "reset"
            } else {
                "peer"
            }
            .into();
            if self.reset_after.is_some() && ended_by_eof {
                server.transcript.pop();
            } else if self.reset_after.is_none() && !ended_by_eof && server.transcript == letters {
                server.transcript.push('.');
            }
        }
        let (reasons, transcript_ok) = match (self.reset_after, self.limit_reason()) {
            // A reset the server had not read yet when the stop came ends as `stopping`.
            (Some(_), _) => (
                vec!["reset", "stopping"],
                letters.starts_with(&server.transcript),
            ),
            (None, Some(reason)) => (vec![reason], server.transcript == letters),
            (None, None) => (vec!["peer"], server.transcript == format!("{letters}.")),
        };
        if !reasons.contains(&server.reason.as_str()) || !transcript_ok {
            return Err(format!(
                "the handler saw {:?} and closed with {}; the model says {:?}{} and {}",
                server.transcript,
                server.reason,
                letters,
                match (self.reset_after, self.limit_reason()) {
                    (Some(_), _) => " or a prefix, no EOF,",
                    (None, Some(_)) => ", no EOF,",
                    (None, None) => " then EOF",
                },
                reasons.join(" or ")
            ));
        }
        Ok(())
    }
}

/// Runs conversations on one server started from `bin`, then stops it while one more
/// connection is being sent a long reply it does not read, and judges every transcript.
/// Returns the failures, each with its conversation.
fn run_batch(
    label: &str,
    bin: &Path,
    setup: &str,
    conversations: &[(u64, Conversation)],
) -> Result<Vec<(u64, Conversation, String)>, String> {
    let server = start_with_env(bin, &[("SOCKGEN_IO_URING_SETUP", setup)])?;
    let mut failures = Vec::new();
    let mut peers = Vec::new();
    for (seed, conversation) in conversations {
        match conversation.run(&server) {
            Ok(peer) => peers.push((*seed, conversation, peer)),
            Err(e) => failures.push((*seed, conversation.clone(), e)),
        }
    }
    // A stop with a reply in flight: what arrives is a prefix of it, never other bytes
    // (a freed chunk still being sent), and the handler hears `stopping`.
    let mut sending = connect(&server);
    sending.write_all(b"HOLD 3000000\nECHO after\n").unwrap();
    let mut first = vec![0u8; 100_000];
    sending
        .read_exact(&mut first)
        .map_err(|e| format!("the in-flight reply: {e}"))?;
    let stopping = std::thread::spawn(move || server.stop(Duration::from_secs(10)));
    let (mut rest, _) = read_to_end(&mut sending);
    first.append(&mut rest);
    let outcome = stopping.join().unwrap();
    outcome.check()?;
    let mut in_flight = pattern(0, 3_000_000);
    in_flight.extend_from_slice(b"after\n");
    if !in_flight.starts_with(&first) {
        return Err(format!(
            "a stop with a reply in flight: {} bytes arrived, first difference at {:?}",
            first.len(),
            first.iter().zip(&in_flight).position(|(a, b)| a != b)
        ));
    }
    let closes = closes_by_peer(&outcome.stderr);
    let in_flight_close = closes.get(&sending.local_addr().unwrap().to_string());
    if !in_flight_close.is_some_and(|c| c.reason == "stopping" && c.transcript.starts_with('H')) {
        return Err(format!(
            "a stop with a reply in flight: the handler saw {in_flight_close:?}, \
             the model says H (and E if the reply ended) then stopping"
        ));
    }
    for (seed, conversation, peer) in peers {
        let server_side = closes.get(&peer.local.to_string());
        if let Err(e) = conversation.judge(&peer, server_side, label.starts_with("winsock")) {
            failures.push((seed, conversation.clone(), e));
        }
    }
    Ok(failures)
}

/// A smaller conversation that still fails, found by dropping requests, joining writes and
/// dropping the reset while the result still fails; at most `budget` runs, a fresh server each.
fn shrink(
    label: &str,
    bin: &Path,
    setup: &str,
    mut failing: Conversation,
    budget: usize,
) -> Conversation {
    let mut runs = 0;
    let still_fails = |candidate: &Conversation, runs: &mut usize| {
        *runs += 1;
        run_batch(label, bin, setup, &[(0, candidate.clone())]).map_or(true, |f| !f.is_empty())
    };
    loop {
        let mut candidates = Vec::new();
        for i in (0..failing.requests.len()).rev() {
            let mut smaller = failing.clone();
            smaller.requests.remove(i);
            if smaller.requests.is_empty() {
                continue;
            }
            let total = smaller.wire().len();
            smaller.cuts = fit(&failing.cuts, total);
            smaller.reset_after = smaller.reset_after.map(|r| r.min(smaller.cuts.len()));
            candidates.push(smaller);
        }
        if failing.cuts.len() > 1 {
            let mut joined = failing.clone();
            joined.cuts = vec![failing.wire().len()];
            joined.reset_after = joined.reset_after.map(|r| r.min(1));
            candidates.push(joined);
        }
        if failing.reset_after.is_some() {
            candidates.push(Conversation {
                reset_after: None,
                ..failing.clone()
            });
        }
        let mut smaller_found = false;
        for candidate in candidates {
            if runs >= budget {
                return failing;
            }
            if still_fails(&candidate, &mut runs) {
                failing = candidate;
                smaller_found = true;
                break;
            }
        }
        if !smaller_found {
            return failing;
        }
    }
}

/// The differential contract suite: generated conversations (requests that pace the handler
/// with back-pressure, replies held behind streamed ones, single writes up to and past
/// io.output_limit, lines up to and past io.max_message, pipelines written before reading or
/// read while writing, cut into pieces at any byte, then a half-close or a reset at any write)
/// run against every target — C, Rust, Winsock under Wine, the C ones also under ASan + UBSan,
/// and io_uring in each ring setup — each followed by a stop while a reply is in flight. Every
/// transcript (bytes, the handler's callbacks in order, the close reason) is compared with the
/// reference model of the probe handler above. A failure names the target, the seed, the
/// conversation and the smallest conversation found that still fails.
/// SOCKGEN_CONTRACT_CASES sets the number of conversations per target (CI: 10),
/// SOCKGEN_CONTRACT_SEED the first seed.
#[test]
fn generated_conversations_match_the_reference_model_on_every_target() {
    let cases: u64 = std::env::var("SOCKGEN_CONTRACT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let base: u64 = std::env::var("SOCKGEN_CONTRACT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut ran = 0;
    for (label, bin) in probes() {
        let setups: &[&str] = if label.contains("io_uring") {
            &["defer", "coop", "plain"]
        } else {
            &["defer"]
        };
        for (index, setup) in setups.iter().enumerate() {
            let conversations: Vec<(u64, Conversation)> = (0..cases)
                .map(|case| base + case * 3 + index as u64)
                .map(|seed| (seed, Conversation::generate(seed)))
                .collect();
            let failures = run_batch(label, bin, setup, &conversations)
                .unwrap_or_else(|e| panic!("{label} (ring setup {setup}): {e}"));
            if let Some((seed, conversation, error)) = failures.into_iter().next() {
                let minimal = shrink(label, bin, setup, conversation.clone(), 60);
                panic!(
                    "{label} (ring setup {setup}), seed {seed}: {error}\n{conversation:#?}\n\
                     smallest conversation found that still fails:\n{minimal:#?}"
                );
            }
            ran += conversations.len() + 1;
        }
    }
    eprintln!("{ran} generated conversations, every transcript as the reference model says");
}
