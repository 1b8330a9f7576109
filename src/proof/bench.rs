//! `sockgen bench`: a closed-loop load generator with latency histograms, the server's CPU time
//! per message, a streaming mode, peers measured in the same run, and an SVG chart.
//!
//! On a small machine the load generator costs about as much CPU per message as the server, so
//! messages/s mostly measures the client once there are many connections. The figure that
//! says which server is cheaper is the server's CPU time per message, read from /proc over the
//! measured window; pipelining lowers the client's share of the work.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};

use super::bench_idle::{connect_spread, resident_bytes};
use super::harness::{pin_current_thread, process_cpu_time, Launch, RunningServer};
use super::load::Rng;

/// One load shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Case {
    pub connections: usize,
    pub size: usize,
    /// Messages each connection keeps in flight.
    pub pipeline: usize,
}

/// Told about each finished run, so a long bench can show progress: `(runs done, runs in all,
/// what finished)`.
#[derive(Clone, Default)]
pub struct Progress(Option<std::sync::Arc<ReportRun>>);

/// `(runs done, runs in all, what finished)`.
type ReportRun = dyn Fn(usize, usize, &str) + Send + Sync;

impl Progress {
    pub fn new(report: impl Fn(usize, usize, &str) + Send + Sync + 'static) -> Progress {
        Progress(Some(std::sync::Arc::new(report)))
    }

    pub(super) fn report(&self, done: usize, total: usize, what: &str) {
        if let Some(report) = &self.0 {
            report(done, total, what);
        }
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(..)"
        } else {
            "Progress(none)"
        })
    }
}

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub cases: Vec<Case>,
    /// Where finished runs are reported (nowhere by default).
    pub progress: Progress,
    pub warmup: Duration,
    pub duration: Duration,
    /// Also measure a single stream of large writes into a discard server.
    pub streaming: bool,
    /// Runs per (server, case); the median is reported.
    pub repeats: usize,
    pub seed: u64,
    /// The servers speak UDP: each "connection" is a socket, each message a datagram.
    pub udp: bool,
}

impl Default for BenchConfig {
    /// The default matrix: connections {1, 64, 256, 1000} × size {64 B, 4 KiB}, plus streaming.
    fn default() -> Self {
        let mut cases = Vec::new();
        for connections in [1, 64, 256, 1000] {
            for size in [64, 4096] {
                cases.push(Case {
                    connections,
                    size,
                    pipeline: 1,
                });
            }
        }
        BenchConfig {
            cases,
            progress: Progress::default(),
            warmup: Duration::from_millis(300),
            duration: Duration::from_secs(1),
            streaming: true,
            repeats: 3,
            seed: 0xbe7c_4a11,
            udp: false,
        }
    }
}

/// What one server did under one case.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseResult {
    pub server: String,
    pub case: Case,
    pub messages: u64,
    pub msgs_per_s: f64,
    /// Echoed payload, one direction.
    pub mb_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub errors: u64,
    /// UDP: datagrams whose echo did not come back in time (UDP may drop; not an error).
    pub losses: u64,
    /// Server CPU (user + system, all threads) per message over the measured window.
    pub server_cpu_ns_per_msg: Option<f64>,
    /// Mean time to connect, one connection after another, before the run (TCP).
    pub connect_us_per_conn: Option<f64>,
    /// The server's resident memory at the end of the measured window, less what it held
    /// before the first connection, per connection.
    pub server_rss_bytes_per_conn: Option<f64>,
}

/// One stream of large writes into a discard server.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamResult {
    pub server: String,
    pub mb_per_s: f64,
    pub server_cpu_ns_per_mb: Option<f64>,
}

/// A server to measure: a generated program (ready line) or a peer command (port placeholder).
pub enum Contender<'a> {
    Generated { label: String, binary: &'a Path },
    Peer { label: String, command: String },
}

/// A running server of either kind, pinned away from the load generator.
pub struct Server {
    pub label: String,
    pub addr: SocketAddr,
    pid: u32,
    process: ServerProcess,
}

enum ServerProcess {
    Generated(RunningServer),
    Peer(Child),
}

/// The CPU the server gets and the one the load generator keeps, when there are two.
pub fn cpu_plan() -> (Option<usize>, Option<usize>) {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if cpus >= 2 {
        (Some(1), Some(0))
    } else {
        (None, None)
    }
}

impl Server {
    /// Starts the server; a peer is ready once it accepts (TCP) or echoes a probe (`udp`).
    pub fn start(target: &Contender, cpu: Option<usize>, udp: bool) -> Result<Server, String> {
        let launch = Launch {
            cpu,
            ..Launch::default()
        };
        match target {
            Contender::Generated { label, binary } => {
                let running = RunningServer::launch(
                    binary,
                    &["-a", "127.0.0.1", "-p", "0"],
                    Duration::from_secs(10),
                    &launch,
                )?;
                Ok(Server {
                    label: label.clone(),
                    addr: running.addr,
                    pid: running.pid().unwrap_or(0),
                    process: ServerProcess::Generated(running),
                })
            }
            Contender::Peer { label, command } => {
                let port = free_port()?;
                let line = command.replace("{port}", &port.to_string());
                let mut cmd = Command::new("sh");
                // exec: the PID we measure is the server's own, not a shell's.
                cmd.arg("-c")
                    .arg(format!("exec {line}"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                launch.apply(&mut cmd);
                let child = cmd
                    .spawn()
                    .map_err(|e| format!("peer {label}: cannot start `{line}`: {e}"))?;
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let mut server = Server {
                    label: label.clone(),
                    addr,
                    pid: child.id(),
                    process: ServerProcess::Peer(child),
                };
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let ready = if udp {
                        super::bench_udp::wait_for_udp_echo(
                            addr,
                            Instant::now() + Duration::from_millis(300),
                        )
                    } else {
                        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                    };
                    if ready {
                        return Ok(server);
                    }
                    if let ServerProcess::Peer(child) = &mut server.process {
                        if let Ok(Some(status)) = child.try_wait() {
                            return Err(format!(
                                "peer {label}: `{line}` exited with {status} before accepting"
                            ));
                        }
                    }
                    if Instant::now() > deadline {
                        server.stop();
                        return Err(format!(
                            "peer {label}: nothing {} on {addr} 10 s after `{line}`",
                            if udp { "echoes" } else { "accepts" }
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    pub fn cpu_time(&self) -> Option<Duration> {
        process_cpu_time(self.pid)
    }

    /// The measured process: the server itself, not a shell or a launcher.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn stop(self) {
        match self.process {
            ServerProcess::Generated(running) => {
                running.stop(Duration::from_secs(5));
            }
            ServerProcess::Peer(mut child) => {
                // SAFETY: kill(2) on a child we spawned and have not reaped.
                unsafe {
                    libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
                }
                let deadline = Instant::now() + Duration::from_secs(3);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// One connection of the closed loop.
struct Conn {
    stream: mio::net::TcpStream,
    rng: Rng,
    /// Bytes of queued messages not yet written.
    unsent: Vec<u8>,
    unsent_off: usize,
    /// Bytes written (or queued) whose echo has not arrived: the echo must match them.
    expected: Vec<u8>,
    expected_off: usize,
    /// When each in-flight message was queued, and the stream offset where it ends.
    inflight: VecDeque<(Instant, u64)>,
    queued_total: u64,
    received_total: u64,
    dead: bool,
}

impl Conn {
    fn queue_message(&mut self, size: usize, now: Instant) {
        let start = self.unsent.len();
        self.unsent.resize(start + size, 0);
        self.rng.fill(&mut self.unsent[start..]);
        self.expected.extend_from_slice(&self.unsent[start..]);
        self.queued_total += size as u64;
        self.inflight.push_back((now, self.queued_total));
    }

    /// Writes until the socket is full. Err on a broken connection.
    fn flush(&mut self) -> Result<(), String> {
        while self.unsent_off < self.unsent.len() {
            match self.stream.write(&self.unsent[self.unsent_off..]) {
                Ok(0) => return Err("write returned 0".into()),
                Ok(n) => self.unsent_off += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        self.unsent.clear();
        self.unsent_off = 0;
        Ok(())
    }
}

/// What a run counts: messages completed in the measured window and their latencies, errors
/// (and, for UDP, losses) during it.
pub(super) struct Tally {
    pub(super) measuring: bool,
    messages: u64,
    pub(super) errors: u64,
    pub(super) losses: u64,
    histogram: Histogram<u64>,
}

impl Tally {
    pub(super) fn new() -> Result<Tally, String> {
        Ok(Tally {
            measuring: false,
            messages: 0,
            errors: 0,
            losses: 0,
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?,
        })
    }

    /// A message sent at `sent_at` came back whole; counted if the window is open.
    pub(super) fn completed(&mut self, sent_at: Instant) {
        if self.measuring {
            self.messages += 1;
            let _ = self
                .histogram
                .record(sent_at.elapsed().as_micros().max(1) as u64);
        }
    }

    fn result(&self, case: Case, secs: f64) -> CaseResult {
        let h = &self.histogram;
        CaseResult {
            server: String::new(),
            case,
            messages: self.messages,
            msgs_per_s: self.messages as f64 / secs,
            mb_per_s: (self.messages * case.size as u64) as f64 / secs / 1e6,
            p50_us: h.value_at_quantile(0.50) as f64,
            p99_us: h.value_at_quantile(0.99) as f64,
            p999_us: h.value_at_quantile(0.999) as f64,
            errors: self.errors,
            losses: self.losses,
            server_cpu_ns_per_msg: None,
            connect_us_per_conn: None,
            server_rss_bytes_per_conn: None,
        }
    }
}

/// A run's time: `warmup`, then the measured window of `duration`. `on_window` is told when the
/// window opens (true) and closes (false), to sample the server's CPU.
pub(super) struct Clock<F: FnMut(bool)> {
    warm_end: Instant,
    end: Instant,
    window_start: Instant,
    duration: Duration,
    on_window: F,
}

impl<F: FnMut(bool)> Clock<F> {
    pub(super) fn start(config: &BenchConfig, on_window: F) -> Clock<F> {
        let warm_end = Instant::now() + config.warmup;
        Clock {
            warm_end,
            end: warm_end + config.duration,
            window_start: warm_end,
            duration: config.duration,
            on_window,
        }
    }

    /// Opens the window once warm-up is over. The next moment the loop must look up from
    /// waiting, or None when the run is over.
    pub(super) fn tick(&mut self, tally: &mut Tally) -> Option<Instant> {
        let now = Instant::now();
        if !tally.measuring && now >= self.warm_end {
            tally.measuring = true;
            self.window_start = now;
            (self.on_window)(true);
        }
        if now >= self.end {
            return None;
        }
        Some(if tally.measuring {
            self.end
        } else {
            self.warm_end
        })
    }

    /// Closes the window and makes the run's result.
    pub(super) fn finish(mut self, tally: &Tally, case: Case) -> CaseResult {
        let elapsed = self
            .window_start
            .elapsed()
            .min(self.duration + Duration::from_millis(50));
        (self.on_window)(false);
        tally.result(case, elapsed.as_secs_f64().max(1e-9))
    }
}

/// Drives `case` against `addr` for warm-up + duration; `on_window` is called when the
/// measured window starts and ends (to sample the server's CPU).
pub fn run_case(
    addr: SocketAddr,
    case: Case,
    config: &BenchConfig,
    on_window: impl FnMut(bool),
) -> Result<CaseResult, String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut conns = Vec::with_capacity(case.connections);
    let connecting = Instant::now();
    for i in 0..case.connections {
        let std_stream = connect_spread(addr, i, Duration::from_secs(5))
            .map_err(|e| format!("connect #{i} to {addr}: {e}"))?;
        std_stream.set_nodelay(true).map_err(|e| e.to_string())?;
        std_stream
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let mut stream = mio::net::TcpStream::from_std(std_stream);
        poll.registry()
            .register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        conns.push(Conn {
            stream,
            rng: Rng::new(config.seed.wrapping_add(i as u64)),
            unsent: Vec::new(),
            unsent_off: 0,
            expected: Vec::new(),
            expected_off: 0,
            inflight: VecDeque::new(),
            queued_total: 0,
            received_total: 0,
            dead: false,
        });
    }
    let connect_us = connecting.elapsed().as_secs_f64() * 1e6 / case.connections.max(1) as f64;
    let mut tally = Tally::new()?;
    let started = Instant::now();
    for c in conns.iter_mut() {
        for _ in 0..case.pipeline {
            c.queue_message(case.size, started);
        }
        if let Err(_e) = c.flush() {
            c.dead = true;
            tally.errors += 1;
        }
    }
    let mut clock = Clock::start(config, on_window);
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    while let Some(deadline) = clock.tick(&mut tally) {
        poll.poll(
            &mut events,
            Some(deadline.saturating_duration_since(Instant::now())),
        )
        .map_err(|e| e.to_string())?;
        for event in events.iter() {
            let c = &mut conns[event.token().0];
            if c.dead {
                continue;
            }
            if let Err(()) = service(c, &mut buf, case, &mut tally) {
                c.dead = true;
                tally.errors += 1;
                let _ = poll.registry().deregister(&mut c.stream);
            }
        }
    }
    let mut result = clock.finish(&tally, case);
    result.connect_us_per_conn = Some(connect_us);
    Ok(result)
}

/// Reads what arrived, checks it against what was sent, completes messages and sends the
/// next ones (closed loop), then writes what the socket takes.
fn service(c: &mut Conn, buf: &mut [u8], case: Case, tally: &mut Tally) -> Result<(), ()> {
    loop {
        match c.stream.read(buf) {
            Ok(0) => return Err(()),
            Ok(n) => {
                let want = &c.expected[c.expected_off..];
                if n > want.len() || buf[..n] != want[..n] {
                    return Err(()); // more bytes than sent, or different ones
                }
                c.expected_off += n;
                c.received_total += n as u64;
                let now = Instant::now();
                while c
                    .inflight
                    .front()
                    .is_some_and(|&(_, end)| end <= c.received_total)
                {
                    let (sent_at, _) = c.inflight.pop_front().unwrap_or((now, 0));
                    tally.completed(sent_at);
                    c.queue_message(case.size, now);
                }
                if c.expected_off >= 64 * 1024 && c.expected_off * 2 >= c.expected.len() {
                    c.expected.drain(..c.expected_off);
                    c.expected_off = 0;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    c.flush().map_err(|_| ())
}

/// Streams 64 KiB writes into a discard server for the configured time.
pub fn run_stream(
    addr: SocketAddr,
    config: &BenchConfig,
    mut on_window: impl FnMut(bool),
) -> Result<f64, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let chunk = Rng::new(config.seed).bytes(64 * 1024);
    let started = Instant::now();
    let warm_end = started + config.warmup;
    let end = warm_end + config.duration;
    let mut measuring = false;
    let mut window_start = warm_end;
    let mut bytes = 0u64;
    loop {
        let now = Instant::now();
        if !measuring && now >= warm_end {
            measuring = true;
            window_start = now;
            on_window(true);
        }
        if now >= end {
            break;
        }
        stream
            .write_all(&chunk)
            .map_err(|e| format!("stream write: {e}"))?;
        if measuring {
            bytes += chunk.len() as u64;
        }
    }
    let secs = window_start.elapsed().as_secs_f64().max(1e-9);
    on_window(false);
    Ok(bytes as f64 / secs / 1e6)
}

/// One measured run: a fresh server (no case inherits another's connections or memory), the
/// load generator pinned away from it, the server's CPU sampled over the measured window.
pub fn run_once(
    target: &Contender,
    case: Case,
    config: &BenchConfig,
) -> Result<CaseResult, String> {
    let (server_cpu, client_cpu) = cpu_plan();
    let server = Server::start(target, server_cpu, config.udp)?;
    let addr = server.addr;
    let label = server.label.clone();
    let mut cpu_marks = Vec::new();
    let rss_before = resident_bytes(server.pid());
    let mut rss_loaded = None;
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            if let Some(cpu) = client_cpu {
                let _ = pin_current_thread(cpu);
            }
            let mark = |opening: bool| {
                cpu_marks.push(server.cpu_time());
                if !opening {
                    rss_loaded = resident_bytes(server.pid());
                }
            };
            if config.udp {
                super::bench_udp::run_udp_case(addr, case, config, mark)
            } else {
                run_case(addr, case, config, mark)
            }
        })
        .join()
        .unwrap_or_else(|_| Err("load generator panicked".into()))
    });
    server.stop();
    let mut result = result.map_err(|e| format!("{label} {case:?}: {e}"))?;
    result.server = label;
    if let [Some(start), Some(end)] = cpu_marks[..] {
        if result.messages > 0 {
            result.server_cpu_ns_per_msg =
                Some((end - start).as_nanos() as f64 / result.messages as f64);
        }
    }
    result.server_rss_bytes_per_conn = rss_before
        .zip(rss_loaded)
        .map(|(before, loaded)| (loaded as f64 - before as f64) / case.connections as f64);
    Ok(result)
}

/// Every case against every server, `config.repeats` times, with the servers interleaved
/// within each repetition: a machine that is busier for a while then slows every server
/// alike instead of whichever happened to run then. Each (server, case) reports its median
/// run by msgs/s, with the errors of all its runs.
pub fn bench_all(targets: &[Contender], config: &BenchConfig) -> Result<Vec<CaseResult>, String> {
    let mut results = Vec::new();
    let total = config.cases.len() * targets.len() * config.repeats.max(1);
    let mut done = 0;
    for &case in &config.cases {
        let mut runs: Vec<Vec<CaseResult>> = targets.iter().map(|_| Vec::new()).collect();
        for _ in 0..config.repeats.max(1) {
            for (i, target) in targets.iter().enumerate() {
                let run = run_once(target, case, config)?;
                done += 1;
                let what = format!(
                    "{} {} conns × {} B: {:.0} msgs/s",
                    run.server, case.connections, case.size, run.msgs_per_s
                );
                config.progress.report(done, total, &what);
                runs[i].push(run);
            }
        }
        for mut server_runs in runs {
            let errors: u64 = server_runs.iter().map(|r| r.errors).sum();
            let losses: u64 = server_runs.iter().map(|r| r.losses).sum();
            server_runs.sort_by(|a, b| a.msgs_per_s.total_cmp(&b.msgs_per_s));
            let mut median = server_runs.swap_remove(server_runs.len() / 2);
            median.errors = errors;
            median.losses = losses;
            results.push(median);
        }
    }
    // Grouped by server, as tables and charts read best.
    let order: Vec<String> =
        results
            .iter()
            .map(|r| r.server.clone())
            .fold(Vec::new(), |mut seen, s| {
                if !seen.contains(&s) {
                    seen.push(s);
                }
                seen
            });
    results.sort_by_key(|r| order.iter().position(|s| *s == r.server));
    Ok(results)
}

pub fn bench_stream(target: &Contender, config: &BenchConfig) -> Result<StreamResult, String> {
    let (server_cpu, client_cpu) = cpu_plan();
    let server = Server::start(target, server_cpu, false)?;
    let addr = server.addr;
    let mut cpu_marks = Vec::new();
    let mb_per_s = std::thread::scope(|s| {
        s.spawn(|| {
            if let Some(cpu) = client_cpu {
                let _ = pin_current_thread(cpu);
            }
            run_stream(addr, config, |_| cpu_marks.push(server.cpu_time()))
        })
        .join()
        .unwrap_or_else(|_| Err("stream generator panicked".into()))
    });
    let label = server.label.clone();
    server.stop();
    let mb_per_s = mb_per_s.map_err(|e| format!("{label} streaming: {e}"))?;
    let secs = config.duration.as_secs_f64();
    let server_cpu_ns_per_mb = match cpu_marks[..] {
        [Some(start), Some(end)] if mb_per_s > 0.0 => {
            Some((end - start).as_nanos() as f64 / (mb_per_s * secs))
        }
        _ => None,
    };
    Ok(StreamResult {
        server: label,
        mb_per_s,
        server_cpu_ns_per_mb,
    })
}

/// Streaming for every target and iperf3, interleaved `config.repeats` times; medians.
/// iperf3 failing is a warning (its figure is then None), not an error.
pub fn bench_streams(
    targets: &[Contender],
    config: &BenchConfig,
) -> Result<(Vec<StreamResult>, Option<f64>), String> {
    let mut runs: Vec<Vec<StreamResult>> = targets.iter().map(|_| Vec::new()).collect();
    let mut ceilings = Vec::new();
    let total = targets.len() * config.repeats.max(1);
    let mut done = 0;
    for _ in 0..config.repeats.max(1) {
        for (i, target) in targets.iter().enumerate() {
            let run = bench_stream(target, config)?;
            done += 1;
            config.progress.report(
                done,
                total,
                &format!("{} streaming: {:.0} MB/s", run.server, run.mb_per_s),
            );
            runs[i].push(run);
        }
        match iperf3_ceiling(config) {
            Some(Ok(mb)) => ceilings.push(mb),
            Some(Err(e)) => eprintln!("warning: iperf3 ceiling not measured: {e}"),
            None => {}
        }
    }
    let streams = runs
        .into_iter()
        .map(|mut r| {
            r.sort_by(|a, b| a.mb_per_s.total_cmp(&b.mb_per_s));
            r.swap_remove(r.len() / 2)
        })
        .collect();
    ceilings.sort_by(f64::total_cmp);
    let ceiling = ceilings.get(ceilings.len() / 2).copied();
    Ok((streams, ceiling))
}

/// iperf3's single-stream loopback throughput, the ceiling for streaming; None without iperf3.
pub fn iperf3_ceiling(config: &BenchConfig) -> Option<Result<f64, String>> {
    Command::new("iperf3").arg("--version").output().ok()?;
    let run = || -> Result<f64, String> {
        let port = free_port()?;
        let (server_cpu, client_cpu) = cpu_plan();
        let mut server_cmd = Command::new("iperf3");
        // Not one-off (-1): the readiness probe below would count as its one test.
        server_cmd
            .args(["-s", "-B", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Launch {
            cpu: server_cpu,
            ..Launch::default()
        }
        .apply(&mut server_cmd);
        let mut server = server_cmd.spawn().map_err(|e| format!("iperf3 -s: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let secs = (config.warmup + config.duration).as_secs().max(1);
        let mut client_cmd = Command::new("iperf3");
        client_cmd.args([
            "-c",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            &secs.to_string(),
            "-J",
        ]);
        if let Some(cpu) = client_cpu {
            Launch {
                cpu: Some(cpu),
                ..Launch::default()
            }
            .apply(&mut client_cmd);
        }
        let out = client_cmd.output().map_err(|e| format!("iperf3 -c: {e}"));
        let _ = server.kill();
        let _ = server.wait();
        let out = out?;
        let doc: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("iperf3 JSON: {e}"))?;
        doc["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .map(|bps| bps / 8.0 / 1e6)
            .ok_or_else(|| format!("iperf3 gave no result: {}", doc["error"]))
    };
    Some(run())
}

/// The tokio echo peer's sources, carried inside sockgen so an installed binary builds it
/// wherever the clone it came from went.
const TOKIO_PEER_FILES: [(&str, &str); 3] = [
    (
        "Cargo.toml",
        include_str!("../../benches/tokio-echo/Cargo.toml"),
    ),
    (
        "Cargo.lock",
        include_str!("../../benches/tokio-echo/Cargo.lock"),
    ),
    (
        "src/main.rs",
        include_str!("../../benches/tokio-echo/src/main.rs"),
    ),
];

/// Where the peer is built: the user's cache (`$XDG_CACHE_HOME` or `~/.cache`), else the
/// temporary directory; one directory per sockgen version, reused across runs.
fn tokio_peer_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join(format!("sockgen/tokio-echo-{}", env!("CARGO_PKG_VERSION")))
}

/// A conventional tokio echo server, TCP or (`udp`) UDP, built from the sources sockgen
/// carries (benches/tokio-echo in its repository).
pub fn tokio_peer_command(udp: bool) -> Result<String, String> {
    tokio_peer_command_in(&tokio_peer_dir(), udp)
}

/// [`tokio_peer_command`], built in `dir`.
pub fn tokio_peer_command_in(dir: &Path, udp: bool) -> Result<String, String> {
    for (path, contents) in TOKIO_PEER_FILES {
        let path = dir.join(path);
        // Rewritten only when it changed, so cargo's build stays fresh across runs.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(contents) {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            std::fs::write(&path, contents).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let manifest = dir.join("Cargo.toml");
    let target_dir = dir.join("target");
    let status = Command::new("cargo")
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .map_err(|e| format!("cargo build of the tokio peer: {e}"))?;
    if !status.success() {
        return Err(
            "building the tokio peer failed (its sources are in benches/tokio-echo)".into(),
        );
    }
    let binary: PathBuf = target_dir.join("release/tokio-echo");
    let mode = if udp { " --udp" } else { "" };
    Ok(format!("{}{mode} --port {{port}}", binary.display()))
}

/// An aligned table; ratios against `baseline` (a server label) when given.
pub fn table(results: &[CaseResult], baseline: Option<&str>) -> String {
    let mut out = format!(
        "{:<16} {:>5} {:>6} {:>4} {:>11} {:>9} {:>8} {:>8} {:>9} {:>6} {:>6} {:>12} {:>8} {:>8}",
        "server",
        "conns",
        "size",
        "pipe",
        "msgs/s",
        "MB/s",
        "p50 us",
        "p99 us",
        "p999 us",
        "errors",
        "lost",
        "cpu ns/msg",
        "conn us",
        "B/conn"
    );
    if let Some(b) = baseline {
        out.push_str(&format!(
            " {:>13} {:>13}",
            format!("msgs/s÷{b}"),
            format!("cpu÷{b}")
        ));
    }
    out.push('\n');
    for r in results {
        out.push_str(&format!(
            "{:<16} {:>5} {:>6} {:>4} {:>11.0} {:>9.1} {:>8.0} {:>8.0} {:>9.0} {:>6} {:>6} {:>12} {:>8} {:>8}",
            r.server,
            r.case.connections,
            r.case.size,
            r.case.pipeline,
            r.msgs_per_s,
            r.mb_per_s,
            r.p50_us,
            r.p99_us,
            r.p999_us,
            r.errors,
            r.losses,
            r.server_cpu_ns_per_msg
                .map_or("-".to_string(), |v| format!("{v:.0}")),
            r.connect_us_per_conn
                .map_or("-".to_string(), |v| format!("{v:.1}")),
            r.server_rss_bytes_per_conn
                .map_or("-".to_string(), |v| format!("{v:.0}")),
        ));
        if let Some(b) = baseline {
            let base = results.iter().find(|x| x.server == b && x.case == r.case);
            let ratio = |f: Metric| match (base.and_then(f), f(r)) {
                (Some(b), Some(v)) if b > 0.0 => format!("{:.2}", v / b),
                _ => "-".to_string(),
            };
            out.push_str(&format!(
                " {:>13} {:>13}",
                ratio(|x| Some(x.msgs_per_s)),
                ratio(|x| x.server_cpu_ns_per_msg)
            ));
        }
        out.push('\n');
    }
    out
}

/// Reads one figure out of a result, if it was measured.
type Metric = fn(&CaseResult) -> Option<f64>;

/// Text for SVG: server and peer names are the user's (`--peer NAME=CMD`), the title names a
/// spec path.
fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Twelve colours no two of which are easily confused (Tableau 10 and two more); a chart with
/// more series repeats them with a dashed outline.
const PALETTE: [&str; 12] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#1b9e77", "#7570b3",
];

/// The smallest "nice" step (1, 2 or 5 × 10^k) that divides 0..=max into at most 5 ticks.
fn nice_step(max: f64) -> f64 {
    let raw = (max / 5.0).max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// A ratio as a bar's label: `1.23`, `12.3`, `123`.
fn ratio_label(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Grouped bar chart of what the tables argue: per case, each server's figure as a ratio to the
/// baseline's in the same case (the first peer, else the first server), so a noisy small case
/// cannot flatten the others. Messages per second above (higher is better), server CPU per
/// message below (lower is better); each bar is labelled with its ratio, each case with the
/// baseline's absolute figure.
pub fn chart_svg(results: &[CaseResult], title: &str, baseline: Option<&str>) -> String {
    let mut servers: Vec<&str> = Vec::new();
    let mut cases: Vec<Case> = Vec::new();
    for r in results {
        if !servers.contains(&r.server.as_str()) {
            servers.push(&r.server);
        }
        if !cases.contains(&r.case) {
            cases.push(r.case);
        }
    }
    let baseline = baseline
        .filter(|b| servers.contains(b))
        .or(servers.first().copied())
        .unwrap_or("");
    let figure = |server: &str, case: &Case, metric: Metric| {
        results
            .iter()
            .find(|r| r.server == server && r.case == *case)
            .and_then(metric)
    };
    let (left, top, panel_h, gap) = (70.0, 84.0, 220.0, 96.0);
    let bar_w = 16.0;
    let group_w = (servers.len() as f64 * (bar_w + 2.0) + 28.0).max(110.0);
    let legend_w = 40.0 + 7.0 * servers.iter().map(|s| s.len()).max().unwrap_or(0) as f64;
    let width = (left + cases.len() as f64 * group_w + legend_w).max(720.0);
    let mut panels: Vec<(&str, Metric, &str)> = vec![
        (
            "messages per second, × the baseline (higher is better)",
            |r| Some(r.msgs_per_s),
            "/s",
        ),
        (
            "server CPU per message, × the baseline (lower is better)",
            |r| r.server_cpu_ns_per_msg,
            " ns",
        ),
    ];
    if results
        .iter()
        .any(|r| r.server_rss_bytes_per_conn.is_some())
    {
        panels.push((
            "server memory per connection under load, × the baseline (lower is better)",
            |r| r.server_rss_bytes_per_conn.filter(|b| *b > 0.0),
            " B",
        ));
    }
    let height = top + panels.len() as f64 * (panel_h + gap) - gap + 70.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    svg.push_str(&format!(
        "<text x=\"{left}\" y=\"24\" font-size=\"15\" font-weight=\"bold\">{}</text>\n",
        xml_escape(title)
    ));
    svg.push_str(&format!(
        "<text x=\"{left}\" y=\"42\" fill=\"#555\">each bar: the server's figure ÷ {}'s in the same case (connections × message size, pipeline)</text>\n",
        xml_escape(baseline)
    ));
    let plot_right = left + cases.len() as f64 * group_w;
    for (p, (panel_title, metric, unit)) in panels.iter().enumerate() {
        let y0 = top + p as f64 * (panel_h + gap);
        let ratio = |server: &str, case: &Case| {
            let base = figure(baseline, case, *metric).filter(|b| *b > 0.0)?;
            figure(server, case, *metric).map(|v| v / base)
        };
        let max = cases
            .iter()
            .flat_map(|c| servers.iter().filter_map(move |s| ratio(s, c)))
            .fold(1.0f64, f64::max)
            * 1.08; // room above the tallest bar for its label
        let step = nice_step(max);
        let top_value = (max / step).ceil() * step;
        let scale = |v: f64| y0 + panel_h - panel_h * v / top_value;
        svg.push_str(&format!(
            "<text x=\"{left}\" y=\"{:.0}\" font-size=\"13\">{panel_title}</text>\n",
            y0 - 14.0
        ));
        let mut tick = 0.0;
        while tick <= top_value + step / 2.0 {
            let y = scale(tick);
            svg.push_str(&format!(
                "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{}×</text>\n",
                left - 6.0,
                y + 4.0,
                format!("{tick:.2}")
                    .trim_end_matches('0')
                    .trim_end_matches('.')
            ));
            svg.push_str(&format!(
                "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{plot_right:.0}\" y2=\"{y:.1}\" stroke=\"#e4e4e4\"/>\n"
            ));
            tick += step;
        }
        // The baseline itself: 1×.
        svg.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{plot_right:.0}\" y2=\"{y:.1}\" stroke=\"#333\" stroke-dasharray=\"4 3\"/>\n",
            y = scale(1.0)
        ));
        svg.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{y:.0}\" x2=\"{plot_right:.0}\" y2=\"{y:.0}\" stroke=\"#333\"/>\n",
            y = y0 + panel_h
        ));
        for (ci, case) in cases.iter().enumerate() {
            let gx = left + ci as f64 * group_w + 14.0;
            for (si, server) in servers.iter().enumerate() {
                let Some(v) = ratio(server, case) else {
                    continue;
                };
                let x = gx + si as f64 * (bar_w + 2.0);
                let y = scale(v);
                let dashed = if si >= PALETTE.len() {
                    " stroke=\"#000\" stroke-dasharray=\"2 2\""
                } else {
                    ""
                };
                svg.push_str(&format!(
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w}\" height=\"{:.1}\" fill=\"{}\"{dashed}><title>{}: {}×</title></rect>\n",
                    y0 + panel_h - y,
                    PALETTE[si % PALETTE.len()],
                    xml_escape(server),
                    ratio_label(v)
                ));
                svg.push_str(&format!(
                    "<text transform=\"translate({:.1},{:.1}) rotate(-90)\" font-size=\"9\">{}</text>\n",
                    x + bar_w / 2.0 + 3.0,
                    y - 3.0,
                    ratio_label(v)
                ));
            }
            let label_x = gx + servers.len() as f64 * (bar_w + 2.0) / 2.0;
            svg.push_str(&format!(
                "<text x=\"{label_x:.0}\" y=\"{:.0}\" text-anchor=\"middle\">{}×{}B p{}</text>\n",
                y0 + panel_h + 15.0,
                case.connections,
                case.size,
                case.pipeline
            ));
            let base = figure(baseline, case, *metric)
                .filter(|b| *b > 0.0)
                .map_or("no baseline figure".to_string(), |b| {
                    format!("1× = {}{unit}", human(b))
                });
            svg.push_str(&format!(
                "<text x=\"{label_x:.0}\" y=\"{:.0}\" text-anchor=\"middle\" fill=\"#555\" font-size=\"10\">{base}</text>\n",
                y0 + panel_h + 29.0
            ));
        }
    }
    for (si, server) in servers.iter().enumerate() {
        let x = plot_right + 20.0;
        let y = top + si as f64 * 18.0;
        svg.push_str(&format!(
            "<rect x=\"{x:.0}\" y=\"{y:.0}\" width=\"12\" height=\"12\" fill=\"{}\"/>\n",
            PALETTE[si % PALETTE.len()]
        ));
        let marker = if *server == baseline {
            " (baseline)"
        } else {
            ""
        };
        svg.push_str(&format!(
            "<text x=\"{:.0}\" y=\"{:.0}\">{}{marker}</text>\n",
            x + 18.0,
            y + 10.0,
            xml_escape(server)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}
