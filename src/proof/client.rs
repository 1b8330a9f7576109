//! Proving generated clients: peers of the harness's own (an echo server that can also reset
//! connections or never answer), a runner that bounds a client's time, and the checks
//! `verify` runs. The tests drive the same pieces against servers sockgen did not write.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::harness::{is_windows_program, program_command};
use super::{CheckResult, ProofOptions, ProofReport};
use crate::plan::{Handler, Plan};

/// What the harness's peer does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerBehaviour {
    /// Echo every byte back (RFC 862).
    Echo,
    /// Echo, but reset (SO_LINGER 0 and close) each of the first `connections` connections
    /// once `after_bytes` bytes have come back.
    ResetFirst { connections: u64, after_bytes: u64 },
    /// Echo with one byte altered: the byte at offset `at` of each connection comes back
    /// with its bits flipped (a hostile or broken server).
    Corrupt { at: u64 },
    /// Accept and read, never answer (a server that hangs).
    Silent,
}

#[derive(Default)]
struct PeerStats {
    connections: AtomicU64,
    bytes_echoed: AtomicU64,
}

/// A loopback TCP peer on its own threads; stops (and joins them) when dropped.
pub struct EchoPeer {
    pub addr: SocketAddr,
    stats: Arc<PeerStats>,
    stop: Arc<AtomicBool>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl EchoPeer {
    /// Listens on 127.0.0.1 (or ::1) with a port of the kernel's choosing.
    pub fn start(behaviour: PeerBehaviour, ipv6: bool) -> Result<EchoPeer, String> {
        let bind = if ipv6 { "[::1]:0" } else { "127.0.0.1:0" };
        let listener = TcpListener::bind(bind).map_err(|e| format!("peer bind: {e}"))?;
        Self::serve(listener, behaviour)
    }

    /// Serves on a listener the caller bound (a port that had to be known in advance).
    pub fn serve(listener: TcpListener, behaviour: PeerBehaviour) -> Result<EchoPeer, String> {
        let addr = listener
            .local_addr()
            .map_err(|e| format!("peer address: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("peer nonblocking: {e}"))?;
        let stats = Arc::new(PeerStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (stats, stop) = (stats.clone(), stop.clone());
            thread::spawn(move || accept_loop(listener, behaviour, &stats, &stop))
        };
        Ok(EchoPeer {
            addr,
            stats,
            stop,
            acceptor: Some(acceptor),
        })
    }

    pub fn connections(&self) -> u64 {
        self.stats.connections.load(Ordering::SeqCst)
    }

    pub fn bytes_echoed(&self) -> u64 {
        self.stats.bytes_echoed.load(Ordering::SeqCst)
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    behaviour: PeerBehaviour,
    stats: &Arc<PeerStats>,
    stop: &Arc<AtomicBool>,
) {
    let mut workers = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let ordinal = stats.connections.fetch_add(1, Ordering::SeqCst);
                let (stats, stop) = (stats.clone(), stop.clone());
                workers.push(thread::spawn(move || {
                    echo_connection(stream, ordinal, behaviour, &stats, &stop)
                }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
}

fn echo_connection(
    mut stream: TcpStream,
    ordinal: u64,
    behaviour: PeerBehaviour,
    stats: &PeerStats,
    stop: &AtomicBool,
) {
    // Short read timeouts so the thread notices the stop; the connection itself may idle.
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = stream.set_nodelay(true);
    let reset_after = match behaviour {
        PeerBehaviour::ResetFirst {
            connections,
            after_bytes,
        } if ordinal < connections => Some(after_bytes),
        _ => None,
    };
    let mut echoed = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => return,
        };
        let n = match reset_after {
            Some(limit) => n.min(usize::try_from(limit.saturating_sub(echoed)).unwrap_or(n)),
            None => n,
        };
        match behaviour {
            PeerBehaviour::Silent => continue,
            PeerBehaviour::Corrupt { at } if (echoed..echoed + n as u64).contains(&at) => {
                buf[(at - echoed) as usize] ^= 0xff;
            }
            _ => {}
        }
        // Counted before it leaves: the client may have it and exit before this thread runs
        // again. A failed write ends the connection, and the client cannot have those bytes.
        stats.bytes_echoed.fetch_add(n as u64, Ordering::SeqCst);
        if stream.write_all(&buf[..n]).is_err() {
            return;
        }
        echoed += n as u64;
        if reset_after.is_some_and(|limit| echoed >= limit) {
            super::load::reset_on_close(&stream);
            return;
        }
    }
}

/// What the harness's UDP peer does with each datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpBehaviour {
    /// Send it back to its sender.
    Echo,
    /// Drop the first `datagrams`, then echo (loss, as a network may cause).
    DropFirst { datagrams: u64 },
    /// Echo with the byte at offset `at` flipped, in every datagram long enough.
    Corrupt { at: usize },
    /// Before each echo, send `count` datagrams of `len` bytes (longer than the client's
    /// io.buffer_size: each must be dropped, never delivered cut short) and, every other one,
    /// of 65,507 bytes, the largest there is: several queue up at the client at once.
    OversizedFirst { count: usize, len: usize },
}

/// A loopback UDP peer on its own thread; stops (and joins it) when dropped.
pub struct UdpEchoPeer {
    pub addr: SocketAddr,
    stats: Arc<PeerStats>,
    stop: Arc<AtomicBool>,
    worker: Option<thread::JoinHandle<()>>,
}

impl UdpEchoPeer {
    pub fn start(behaviour: UdpBehaviour, ipv6: bool) -> Result<UdpEchoPeer, String> {
        let bind = if ipv6 { "[::1]:0" } else { "127.0.0.1:0" };
        let socket = std::net::UdpSocket::bind(bind).map_err(|e| format!("peer bind: {e}"))?;
        let addr = socket
            .local_addr()
            .map_err(|e| format!("peer address: {e}"))?;
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| format!("peer timeout: {e}"))?;
        let stats = Arc::new(PeerStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (stats, stop) = (stats.clone(), stop.clone());
            thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                let junk = vec![0xa5u8; 65_507];
                let mut seen = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let Ok((n, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    seen += 1;
                    stats.connections.store(seen, Ordering::SeqCst);
                    match behaviour {
                        UdpBehaviour::DropFirst { datagrams } if seen <= datagrams => continue,
                        UdpBehaviour::Corrupt { at } if at < n => buf[at] ^= 0xff,
                        UdpBehaviour::OversizedFirst { count, len } => {
                            for i in 0..count {
                                let size = if i % 2 == 0 {
                                    len.min(junk.len())
                                } else {
                                    junk.len()
                                };
                                let _ = socket.send_to(&junk[..size], from);
                            }
                        }
                        _ => {}
                    }
                    // Counted before it leaves: the client may have it and exit before
                    // this thread runs again.
                    stats.bytes_echoed.fetch_add(n as u64, Ordering::SeqCst);
                    if socket.send_to(&buf[..n], from).is_err() {
                        stats.bytes_echoed.fetch_sub(n as u64, Ordering::SeqCst);
                    }
                }
            })
        };
        Ok(UdpEchoPeer {
            addr,
            stats,
            stop,
            worker: Some(worker),
        })
    }

    /// Datagrams received so far.
    pub fn datagrams(&self) -> u64 {
        self.stats.connections.load(Ordering::SeqCst)
    }

    pub fn bytes_echoed(&self) -> u64 {
        self.stats.bytes_echoed.load(Ordering::SeqCst)
    }
}

impl Drop for UdpEchoPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// How a client run ended.
#[derive(Debug)]
pub struct ClientRun {
    /// The exit status; None when it was killed (it ran past its time).
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl ClientRun {
    /// "exit 0 after 120 ms" or "killed after 60 s", then what it printed.
    pub fn describe(&self) -> String {
        let end = match self.status {
            Some(code) => format!("exit {code} after {} ms", self.elapsed.as_millis()),
            None => format!("still running after {} s: killed", self.elapsed.as_secs()),
        };
        format!(
            "{end}; stdout: {:?}; stderr: {:?}",
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Runs a client to its end, killing it after `limit`; `on_start` gets its process id (on
/// each start).
///
/// A Windows program that failed without printing a word was not run: every failure of a
/// generated program says what failed, so this is Wine's launcher giving up (seen once on a
/// busy machine, after 10 ms). It is started once more, as a user would, and the note says so.
pub fn run_client_with(
    binary: &Path,
    args: &[&str],
    limit: Duration,
    on_start: impl FnMut(u32),
) -> Result<ClientRun, String> {
    run_client_under(&[], binary, args, limit, on_start)
}

/// [`run_client_with`], the program started by `prefix` (a command that ends by running the
/// rest of its arguments, as `unshare -m sh -c 'mount ... && exec "$@"' sh` does); empty for
/// none. Wine's environment, when it runs the program, passes through the prefix.
pub fn run_client_under(
    prefix: &[&str],
    binary: &Path,
    args: &[&str],
    limit: Duration,
    mut on_start: impl FnMut(u32),
) -> Result<ClientRun, String> {
    let first = run_client_once(prefix, binary, args, limit, &mut on_start)?;
    let silent_failure = matches!(first.status, Some(code) if code != 0)
        && first.stdout.trim().is_empty()
        && first.stderr.trim().is_empty();
    if !(silent_failure && is_windows_program(binary)) {
        return Ok(first);
    }
    eprintln!(
        "note: {} under Wine {}; starting it once more",
        binary.display(),
        first.describe()
    );
    run_client_once(prefix, binary, args, limit, &mut on_start)
}

fn run_client_once(
    prefix: &[&str],
    binary: &Path,
    args: &[&str],
    limit: Duration,
    on_start: &mut impl FnMut(u32),
) -> Result<ClientRun, String> {
    let mut command = program_command(binary)?;
    if let Some((first, rest)) = prefix.split_first() {
        let mut prefixed = Command::new(first);
        prefixed
            .args(rest)
            .arg(command.get_program())
            .args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => prefixed.env(key, value),
                None => prefixed.env_remove(key),
            };
        }
        command = prefixed;
    }
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    on_start(child.id());
    // What each pipe delivered so far. A Windows program's pipes can outlive it: the Wine
    // helpers its start spawns (services.exe, explorer.exe) inherit them and live as long as
    // Wine's server, so the output is taken once the program has exited and its pipes are
    // quiet, not at their end.
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        let text = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&text);
        let reader = thread::spawn(move || {
            if let Some(mut pipe) = pipe {
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    sink.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&chunk[..n]);
                }
            }
        });
        (text, reader)
    };
    let stdout = read_all(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read_all(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if started.elapsed() < limit => thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let elapsed = started.elapsed();
    let quiet_by = Instant::now() + Duration::from_secs(2);
    while !(stdout.1.is_finished() && stderr.1.is_finished()) && Instant::now() < quiet_by {
        thread::sleep(Duration::from_millis(10));
    }
    let text = |(bytes, _): &(
        std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
        thread::JoinHandle<()>,
    )| {
        String::from_utf8_lossy(&bytes.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    };
    Ok(ClientRun {
        status,
        stdout: text(&stdout),
        stderr: text(&stderr),
        elapsed,
    })
}

pub fn run_client(binary: &Path, args: &[&str], limit: Duration) -> Result<ClientRun, String> {
    run_client_with(binary, args, limit, |_| {})
}

/// Every unsigned number in a line, in order ("4 of 4 connections" → [4, 4]).
pub fn numbers_in(line: &str) -> Vec<u64> {
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// Checks an echo-check run: exit 0 and a summary saying every connection and message was
/// checked, with exactly the bytes the peer says it echoed (when the peer can tell).
pub fn check_echo_check(run: &ClientRun, peer_bytes: Option<u64>) -> Result<String, String> {
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("echo-check: "))
        .ok_or_else(|| format!("no echo-check summary: {}", run.describe()))?;
    let n = numbers_in(line);
    let [done, connections, checked, messages, bytes, ..] = n[..] else {
        return Err(format!("unreadable summary {line:?}"));
    };
    if run.status != Some(0) || done != connections || checked != messages {
        return Err(run.describe());
    }
    if let Some(peer) = peer_bytes.filter(|&p| p != bytes) {
        return Err(format!(
            "the client checked {bytes} bytes, the server echoed {peer}: {}",
            run.describe()
        ));
    }
    Ok(format!("{line} (exit 0)"))
}

/// Proves a generated client against the harness's echo server.
pub fn prove_client(
    plan: &Plan,
    binary: &Path,
    _options: &ProofOptions,
) -> Result<ProofReport, String> {
    let ipv6 = plan
        .client
        .as_ref()
        .is_some_and(|c| c.host.parse::<std::net::Ipv6Addr>().is_ok());
    // Each peer reports the bytes it echoed, to hold against what the client says it checked.
    let (addr, echoed): (SocketAddr, Box<dyn Fn() -> u64>) = if plan.is_tcp() {
        let peer = EchoPeer::start(PeerBehaviour::Echo, ipv6)?;
        (peer.addr, Box::new(move || peer.bytes_echoed()))
    } else {
        let peer = UdpEchoPeer::start(UdpBehaviour::Echo, ipv6)?;
        (peer.addr, Box::new(move || peer.bytes_echoed()))
    };
    let host = addr.ip().to_string();
    let port = addr.port().to_string();
    let mut args = vec!["-a", host.as_str(), "-p", port.as_str()];
    if plan.handler == Handler::Load {
        args.extend(["-d", "1000"]);
    }
    let run = run_client(binary, &args, Duration::from_secs(120))?;
    let (name, result) = match plan.handler {
        Handler::EchoCheck => (
            "echo-check against an echo server",
            check_echo_check(&run, Some(echoed())),
        ),
        Handler::Load => (
            "load against an echo server",
            check_load(&run, plan, echoed()),
        ),
        _ => ("one request and its reply", check_custom(&run, plan)),
    };
    Ok(ProofReport {
        spec: plan.spec_file.clone(),
        name: plan.name.clone(),
        lang: plan.lang.to_string(),
        model: plan.model.to_string(),
        protocol: plan.protocol.to_string(),
        checks: vec![CheckResult {
            name: name.to_string(),
            passed: result.is_ok(),
            detail: result.unwrap_or_else(|e| e),
        }],
    })
}

fn check_load(run: &ClientRun, plan: &Plan, peer_echoed: u64) -> Result<String, String> {
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("load: "))
        .ok_or_else(|| format!("no load summary: {}", run.describe()))?;
    let round_trips = *numbers_in(line)
        .get(2)
        .ok_or_else(|| format!("unreadable summary {line:?}"))?;
    let size = plan
        .client
        .as_ref()
        .and_then(|c| c.sizes.first())
        .copied()
        .unwrap_or(0);
    if run.status != Some(0) || round_trips == 0 {
        return Err(run.describe());
    }
    if peer_echoed != round_trips * u64::from(size) {
        return Err(format!(
            "{round_trips} round trips of {size} bytes, but the server echoed {peer_echoed} bytes: {}",
            run.describe()
        ));
    }
    Ok(format!("{line} (exit 0)"))
}

fn check_custom(run: &ClientRun, plan: &Plan) -> Result<String, String> {
    let expected = format!("reply: hello from {}", plan.name);
    match run.stdout.lines().find(|l| l.starts_with(&expected)) {
        Some(line) if run.status == Some(0) => Ok(format!("{line} (exit 0)")),
        _ => Err(run.describe()),
    }
}
