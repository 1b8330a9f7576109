//! The differential contract suite for UDP servers. Conversations of datagrams generated from
//! a seed — empty ones, ones of exactly io.buffer_size bytes and longer ones, replies up to and
//! past io.output_buffer in one write or in pieces, several senders, bursts — run against every
//! UDP target, and each reply, each silence and the worker's count of handled datagrams is
//! compared with a reference model of the UDP probe handler written here.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sockgen::proof::load::Rng;
use sockgen::proof::{self, RunningServer};

use super::{all_targets, build_project_with, linux_targets, start};

/// One worker, so the count of handled datagrams is one number; small buffers so the limits
/// show at test sizes.
const SPEC: &str = "\
name: udp_probe
protocol: udp
handler: custom
io: { buffer_size: 1024, output_buffer: 2048 }
server: { workers: 1 }
";
const BUFFER_SIZE: usize = 1024;
const OUTPUT_BUFFER: usize = 2048;
/// Senders in a conversation.
const SENDERS: usize = 3;
/// The most bytes one burst sends before reading its replies: well inside the server's default
/// receive buffer, so loopback drops nothing and every silence is the server's choice.
const BURST_BYTES: usize = 48_000;

/// One datagram of a generated conversation; `tag` (its position) names its reply.
#[derive(Debug, Clone)]
enum Datagram {
    /// Zero bytes: an empty reply.
    Empty,
    /// `E…` of this many bytes in all (random binary after the tag): the rest back.
    Echo(usize),
    /// `N`: no reply.
    Silent,
    /// `Z`: the handler writes zero bytes, which is an empty reply.
    ZeroWrite,
    /// `B tag:n`: n pattern bytes in one write, or `refused` when they do not fit.
    OneWrite(usize),
    /// `P tag:n`: n pattern bytes in writes of 100, as many as fit.
    Pieces(usize),
    /// `I`: the sender's address, from info.
    Info,
    /// An `E…` datagram of this many bytes, longer than io.buffer_size: dropped unseen.
    Oversized(usize),
}

impl Datagram {
    fn wire(&self, tag: usize, fill: u64) -> Vec<u8> {
        let padded = |len: usize| {
            let mut bytes = format!("E{tag}:").into_bytes();
            let mut rng = Rng::new(fill | 1);
            let rest = len.saturating_sub(bytes.len());
            bytes.extend(rng.bytes(rest));
            bytes
        };
        match self {
            Datagram::Empty => Vec::new(),
            Datagram::Echo(len) | Datagram::Oversized(len) => padded(*len),
            Datagram::Silent => format!("N{tag}").into_bytes(),
            Datagram::ZeroWrite => format!("Z{tag}").into_bytes(),
            Datagram::OneWrite(n) => format!("B{tag}:{n}").into_bytes(),
            Datagram::Pieces(n) => format!("P{tag}:{n}").into_bytes(),
            Datagram::Info => format!("I{tag}").into_bytes(),
        }
    }

    /// The reference model: the reply the probe sends, if any.
    fn reply(&self, tag: usize, fill: u64, sender: SocketAddr) -> Option<Vec<u8>> {
        let head = format!("{tag}:").into_bytes();
        let pattern = |n: usize| (0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>();
        Some(match self {
            Datagram::Empty | Datagram::ZeroWrite => Vec::new(),
            Datagram::Echo(_) => self.wire(tag, fill)[1..].to_vec(),
            Datagram::Silent | Datagram::Oversized(_) => return None,
            Datagram::OneWrite(n) if head.len() + n <= OUTPUT_BUFFER => {
                [head, pattern(*n)].concat()
            }
            Datagram::OneWrite(_) => [head, b"refused".to_vec()].concat(),
            Datagram::Pieces(n) => {
                let mut fits = 0;
                while fits < *n && head.len() + fits + (n - fits).min(100) <= OUTPUT_BUFFER {
                    fits += (n - fits).min(100);
                }
                [head, pattern(fits)].concat()
            }
            Datagram::Info => [head, sender.to_string().into_bytes()].concat(),
        })
    }

    fn handled(&self) -> bool {
        !matches!(self, Datagram::Oversized(_))
    }
}

/// A generated conversation: bursts of datagrams, each from one of the senders; the replies
/// to a burst are read before the next is sent.
#[derive(Debug, Clone)]
pub struct Conversation {
    seed: u64,
    bursts: Vec<Vec<(usize, Datagram)>>,
}

impl Conversation {
    fn generate(seed: u64) -> Conversation {
        let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut bursts = Vec::new();
        for _ in 0..1 + rng.below(12) {
            let mut burst = Vec::new();
            let mut bytes = 0;
            for _ in 0..1 + rng.below(24) {
                let datagram = match rng.below(20) {
                    0 => Datagram::Empty,
                    1..=5 => Datagram::Echo(8 + rng.below(BUFFER_SIZE - 8)),
                    // At the limit: exactly io.buffer_size, and one byte past it.
                    6 => Datagram::Echo(BUFFER_SIZE),
                    7 => Datagram::Oversized(BUFFER_SIZE + 1),
                    8 | 9 => Datagram::Oversized(BUFFER_SIZE + 1 + rng.below(8000)),
                    10 => Datagram::Silent,
                    11 => Datagram::ZeroWrite,
                    12 | 13 => Datagram::OneWrite(rng.below(OUTPUT_BUFFER + 64)),
                    14 => Datagram::OneWrite(OUTPUT_BUFFER - 8 + rng.below(16)),
                    15 | 16 => Datagram::Pieces(rng.below(3000)),
                    _ => Datagram::Info,
                };
                let size = match datagram {
                    Datagram::Echo(n) | Datagram::Oversized(n) => n,
                    _ => 16,
                };
                if bytes + size > BURST_BYTES {
                    break;
                }
                bytes += size;
                burst.push((rng.below(SENDERS), datagram));
            }
            bursts.push(burst);
        }
        Conversation { seed, bursts }
    }

    fn dropped(&self) -> u64 {
        self.datagrams().filter(|d| !d.handled()).count() as u64
    }

    fn handled(&self) -> u64 {
        self.datagrams().filter(|d| d.handled()).count() as u64
    }

    fn datagrams(&self) -> impl Iterator<Item = &Datagram> {
        self.bursts.iter().flatten().map(|(_, d)| d)
    }

    /// Runs it against a server that has handled `handled_before` datagrams, ending with a
    /// count from the first sender; Ok has the datagrams handled now.
    fn run(&self, server: &RunningServer, handled_before: u64) -> Result<u64, String> {
        let senders: Vec<UdpSocket> = (0..SENDERS)
            .map(|_| {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket.connect(server.addr).unwrap();
                socket
            })
            .collect();
        let addresses: Vec<SocketAddr> = senders.iter().map(|s| s.local_addr().unwrap()).collect();
        let mut tag = 0;
        for (index, burst) in self.bursts.iter().enumerate() {
            let mut owed: Vec<Vec<Vec<u8>>> = vec![Vec::new(); SENDERS];
            for (sender, datagram) in burst {
                let fill = self.seed ^ (tag as u64) << 20;
                senders[*sender]
                    .send(&datagram.wire(tag, fill))
                    .map_err(|e| format!("sending datagram {tag}: {e}"))?;
                if let Some(reply) = datagram.reply(tag, fill, addresses[*sender]) {
                    owed[*sender].push(reply);
                }
                tag += 1;
            }
            for (sender, owed) in owed.into_iter().enumerate() {
                collect(&senders[sender], owed)
                    .map_err(|e| format!("burst {index}, sender {sender}: {e}"))?;
            }
        }
        // Every earlier datagram was answered or is silent: the count covers them all.
        let handled = handled_before + self.handled() + 1;
        senders[0].send(b"Cend").unwrap();
        let count = format!("end:count={handled} id={handled}").into_bytes();
        collect(&senders[0], vec![count]).map_err(|e| format!("the final count: {e}"))?;
        for (sender, socket) in senders.iter().enumerate() {
            socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let mut buf = vec![0u8; 65536];
            if let Ok(n) = socket.recv(&mut buf) {
                return Err(format!(
                    "sender {sender} got a reply nobody was owed: {}",
                    &buf[..n.min(80)].escape_ascii()
                ));
            }
        }
        Ok(handled)
    }
}

/// Reads the replies a sender is owed, in any order (the contract promises none); Err names
/// what was missing or what came that was not owed.
fn collect(socket: &UdpSocket, mut owed: Vec<Vec<u8>>) -> Result<(), String> {
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !owed.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let n = socket.recv(&mut buf).map_err(|e| {
            let first = &owed[0];
            format!(
                "{} replies never came ({e}), the first {} bytes: {}",
                owed.len(),
                first.len(),
                &first[..first.len().min(60)].escape_ascii()
            )
        })?;
        match owed.iter().position(|reply| reply[..] == buf[..n]) {
            Some(at) => {
                owed.remove(at);
            }
            None => {
                return Err(format!(
                    "a reply of {n} bytes nobody was owed: {}",
                    &buf[..n.min(80)].escape_ascii()
                ))
            }
        }
    }
    Ok(())
}

/// The UDP probe for every target, the C ones also under ASan + UBSan.
fn probes() -> &'static [(String, PathBuf)] {
    static PROBES: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    PROBES.get_or_init(|| {
        let mut builds: Vec<(&str, &str, bool)> =
            all_targets().iter().map(|&(l, m)| (l, m, false)).collect();
        builds.extend(
            linux_targets()
                .iter()
                .filter(|(l, _)| *l == "c")
                .map(|&(l, m)| (l, m, true)),
        );
        let fixture = |path: &str| {
            std::fs::read_to_string(
                super::common::root()
                    .join("tests/fixtures/udp-probe")
                    .join(path),
            )
            .unwrap()
        };
        proof::run_parallel(&builds, 2, |&(lang, model, sanitized)| {
            let files = if lang != "rust" {
                vec![(
                    "udp_probe_handler.c".to_string(),
                    fixture("udp_probe_handler.c"),
                )]
            } else {
                vec![("src/main.rs".to_string(), fixture("src/main.rs"))]
            };
            let flags: &[&str] = if sanitized {
                proof::toolchain::ASAN_UBSAN_FLAGS
            } else {
                &[]
            };
            let suffix = if sanitized { "+asan" } else { "" };
            let group = format!("contract-udp-probe{}", if sanitized { "-asan" } else { "" });
            (
                format!("{lang}/{model}{suffix}"),
                build_project_with(SPEC, lang, model, &files, &group, flags),
            )
        })
    })
}

/// Runs conversations on one server started from `bin`, then stops it while a sender floods
/// it, and checks what it logged: the dropped datagrams counted, the handled ones counted by
/// the worker's own state at its stop, and no failure. Returns the first failure.
fn run_batch(bin: &Path, conversations: &[Conversation]) -> Result<(), (Conversation, String)> {
    let server = start(bin);
    let mut handled = 0;
    for conversation in conversations {
        handled = conversation
            .run(&server, handled)
            .map_err(|e| (conversation.clone(), e))?;
    }
    let last = conversations.last().cloned().unwrap();
    let dropped: u64 = conversations.iter().map(Conversation::dropped).sum();
    let addr = server.addr;
    let flooding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flood = {
        let flooding = flooding.clone();
        std::thread::spawn(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut sent = 0u64;
            while flooding.load(std::sync::atomic::Ordering::Relaxed) && sent < 200_000 {
                let _ = socket.send_to(format!("B{sent}:2000").as_bytes(), addr);
                sent += 1;
            }
        })
    };
    std::thread::sleep(Duration::from_millis(30));
    let outcome = server.stop(Duration::from_secs(10));
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    flood.join().unwrap();
    let fail = |e: String| (last.clone(), e);
    outcome
        .check()
        .map_err(|e| fail(format!("a stop under a flood: {e}")))?;
    let stderr = &outcome.stderr;
    if stderr.contains("failed") {
        return Err(fail(format!("the server logged a failure: {stderr}")));
    }
    // The log counts the 1st, 2nd, 4th… dropped datagram: the last power of two up to the
    // number dropped is there, the next is not.
    let logged = |count: u64| {
        stderr.contains(&format!(
            "datagram longer than io.buffer_size dropped ({count} so far)"
        ))
    };
    if dropped > 0 {
        let power = 1u64 << (63 - dropped.leading_zeros());
        if !logged(power) || logged(power * 2) {
            return Err(fail(format!(
                "{dropped} datagrams were longer than io.buffer_size; the log says: {stderr}"
            )));
        }
    } else if logged(1) {
        return Err(fail(format!(
            "no datagram was too long; the log says: {stderr}"
        )));
    }
    // The flood's datagrams were handled too, so the stop's count is at least the model's.
    let stopped_with: Option<u64> = stderr
        .lines()
        .find_map(|line| line.strip_prefix("udp-probe: stopping handled="))
        .and_then(|n| n.trim().parse().ok());
    if stopped_with.is_none_or(|n| n < handled) {
        return Err(fail(format!(
            "the worker stopped with {stopped_with:?} handled, at least {handled} expected: {stderr}"
        )));
    }
    Ok(())
}

/// A smaller conversation that still fails on a fresh server: bursts dropped, then datagrams;
/// at most `budget` runs.
fn shrink(bin: &Path, mut failing: Conversation, budget: usize) -> Conversation {
    let mut runs = 0;
    loop {
        let mut candidates = Vec::new();
        for b in 0..failing.bursts.len() {
            if failing.bursts.len() > 1 {
                let mut smaller = failing.clone();
                smaller.bursts.remove(b);
                candidates.push(smaller);
            }
            for d in 0..failing.bursts[b].len() {
                let mut smaller = failing.clone();
                smaller.bursts[b].remove(d);
                candidates.push(smaller);
            }
        }
        let mut smaller_found = false;
        for candidate in candidates {
            if runs >= budget {
                return failing;
            }
            runs += 1;
            if run_batch(bin, std::slice::from_ref(&candidate)).is_err() {
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

/// The differential suite for UDP servers: generated conversations (see the module's comment)
/// against every UDP target — C, Rust, Winsock under Wine, the C ones also under ASan + UBSan
/// — each batch ending with a stop under a flood. Every reply and every silence is the model's;
/// the log counts the dropped datagrams and no failure; the worker's own count at its stop
/// covers every handled datagram. A failure names the target, the seed, the conversation and
/// the smallest conversation found that still fails. SOCKGEN_CONTRACT_CASES sets the number of
/// conversations per target (CI: 10), SOCKGEN_CONTRACT_SEED the first seed.
#[test]
fn generated_datagrams_match_the_reference_model_on_every_target() {
    let cases: u64 = std::env::var("SOCKGEN_CONTRACT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let base: u64 = std::env::var("SOCKGEN_CONTRACT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut ran = 0;
    let mut datagrams = 0;
    for (label, bin) in probes() {
        let conversations: Vec<Conversation> =
            (base..base + cases).map(Conversation::generate).collect();
        if let Err((failing, error)) = run_batch(bin, &conversations) {
            let minimal = shrink(bin, failing.clone(), 60);
            panic!(
                "{label}, seed {}: {error}\n{failing:#?}\n\
                 smallest conversation found that still fails:\n{minimal:#?}",
                failing.seed
            );
        }
        ran += conversations.len();
        datagrams += conversations
            .iter()
            .map(|c| c.datagrams().count())
            .sum::<usize>();
    }
    eprintln!("{ran} generated datagram conversations ({datagrams} datagrams), every reply as the reference model says");
}
