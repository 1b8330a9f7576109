//! The handler contract, proven on every language and model: a probe handler (C:
//! tests/fixtures/probe/probe_handler.h, Rust: tests/fixtures/probe/src/main.rs) exposes each
//! point of the contract through a line protocol, and these tests drive it over loopback.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{all_targets, plan_for, TARGETS};
use sockgen::proof::{self, RunningServer};

/// Small buffers so back-pressure shows at test sizes; a short idle timeout and linger.
const PROBE_SPEC: &str = "\
name: probe
handler: custom
io: { buffer_size: 4096, output_buffer: 65536, output_limit: 4194304, max_message: 65536 }
server: { idle_timeout_ms: 1500, linger_ms: 1000 }
socket: { recv_buffer: 65536, send_buffer: 65536 }
";

/// (lang, model) pairs.
type Targets = [(&'static str, &'static str)];

fn fixture(path: &str) -> String {
    std::fs::read_to_string(common::root().join("tests/fixtures/probe").join(path)).unwrap()
}

/// Builds `spec` as a project for (lang, model) with the given user files, under the test
/// target directory so a rerun finds it clean.
fn build_project(
    spec: &str,
    lang: &str,
    model: &str,
    user_files: &[(String, String)],
    group: &str,
) -> PathBuf {
    build_project_with(spec, lang, model, user_files, group, &[])
}

/// [`build_project`] with more C compiler flags (sanitizers).
fn build_project_with(
    spec: &str,
    lang: &str,
    model: &str,
    user_files: &[(String, String)],
    group: &str,
    c_flags: &[&str],
) -> PathBuf {
    let plan = plan_for(spec, lang, model);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(group)
        .join(format!("{lang}-{model}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    proof::build_project_with(&plan, &dir, user_files, c_flags)
        .unwrap_or_else(|(stage, e)| panic!("{lang}/{model} {stage}: {e}"))
}

/// The probe for every target, built once per test run, two builds at a time; the C models
/// also built with AddressSanitizer and UndefinedBehaviorSanitizer, so every scenario below
/// runs under them too (a report aborts the server or fails its exit status).
fn probes() -> &'static [(String, PathBuf)] {
    static PROBES: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    PROBES.get_or_init(|| {
        // Winsock C takes the C probe, built for Windows and run under Wine.
        let mut builds: Vec<(&str, &str, bool)> =
            all_targets().iter().map(|&(l, m)| (l, m, false)).collect();
        builds.extend(
            TARGETS
                .iter()
                .filter(|(l, _)| *l == "c")
                .map(|&(l, m)| (l, m, true)),
        );
        proof::run_parallel(&builds, 2, |&(lang, model, sanitized)| {
            let files = if lang != "rust" {
                vec![("probe_handler.h".to_string(), fixture("probe_handler.h"))]
            } else {
                vec![("src/main.rs".to_string(), fixture("src/main.rs"))]
            };
            let flags: &[&str] = if sanitized {
                proof::toolchain::ASAN_UBSAN_FLAGS
            } else {
                &[]
            };
            let suffix = if sanitized { "+asan" } else { "" };
            let group = format!("contract-probe{}", if sanitized { "-asan" } else { "" });
            (
                format!("{lang}/{model}{suffix}"),
                build_project_with(PROBE_SPEC, lang, model, &files, &group, flags),
            )
        })
    })
}

fn start(bin: &std::path::Path) -> RunningServer {
    RunningServer::start(bin, &["-p", "0"], Duration::from_secs(10)).unwrap()
}

fn connect(server: &RunningServer) -> TcpStream {
    let stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

fn pattern(start: u64, n: usize) -> Vec<u8> {
    (0..n as u64).map(|i| ((start + i) % 251) as u8).collect()
}

fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stream.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

/// Reads to EOF; Err names a reset.
fn read_all(stream: &mut TcpStream) -> Result<Vec<u8>, std::io::Error> {
    let mut got = Vec::new();
    stream.read_to_end(&mut got).map(|_| got)
}

fn stop(server: RunningServer, label: &str) -> String {
    let outcome = server.stop(Duration::from_secs(5));
    outcome.check().unwrap_or_else(|e| panic!("{label}: {e}"));
    outcome.stderr
}

/// on_data sees every unconsumed byte: a command split across reads is completed by the
/// next bytes; on_open's connection info names both ends.
#[test]
fn input_is_kept_until_consumed_and_info_names_both_ends() {
    for (label, bin) in probes() {
        let server = start(bin);
        let mut stream = connect(&server);
        stream.write_all(b"ECHO a\nEC").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        stream.write_all(b"HO b\nIN").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        stream.write_all(b"FO\n").unwrap();
        assert_eq!(read_line(&mut stream), "a", "{label}");
        assert_eq!(read_line(&mut stream), "b", "{label}");
        let info = read_line(&mut stream);
        let expected = format!(
            "peer={} local={}",
            stream.local_addr().unwrap(),
            server.addr
        );
        assert!(
            info.starts_with("id=") && info.ends_with(&expected),
            "{label}: {info}"
        );
        drop(stream);
        stop(server, label);
    }
}

/// 2,000 pipelined requests whose replies (16 MB) pass the output limit (4 MiB) many times
/// over, then a half-close: the handler paces itself with congested(), input is held and
/// presented again, and every reply arrives before a clean FIN.
#[test]
fn a_long_pipeline_then_half_close_gets_every_reply() {
    for (label, bin) in probes() {
        let server = start(bin);
        let mut stream = connect(&server);
        let mut writer = stream.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            writer.write_all(&b"BIG 8192\n".repeat(2000)).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        std::thread::sleep(Duration::from_millis(300)); // let the server hold replies back
        let got = read_all(&mut stream).unwrap_or_else(|e| panic!("{label}: {e}"));
        sender.join().unwrap();
        assert_eq!(got.len(), 2000 * 8192, "{label}");
        assert!(
            got.chunks(8192).all(|c| c == pattern(0, 8192)),
            "{label}: replies differ"
        );
        let stderr = stop(server, label);
        assert!(stderr.contains("reason=peer"), "{label}: {stderr}");
    }
}

/// A request followed by a half-close (HTTP/1.0, whois, nc -N) still gets a 32 MiB reply
/// streamed from on_writable: EOF is an event, and writing stays open.
#[test]
fn half_close_then_a_streamed_reply_arrives_whole() {
    for (label, bin) in probes() {
        let server = start(bin);
        let mut stream = connect(&server);
        stream.write_all(b"STREAM 33554432\n").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let got = read_all(&mut stream).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(got.len(), 32 << 20, "{label}");
        assert!(got == pattern(0, 32 << 20), "{label}: stream differs");
        stop(server, label);
    }
}

/// close() with unread input would reset the connection and destroy the reply; the lingering
/// close delivers it: all 30,000 bytes, then a clean EOF.
#[test]
fn close_with_unread_input_delivers_the_reply() {
    for (label, bin) in probes() {
        let server = start(bin);
        for round in 0..5 {
            let mut stream = connect(&server);
            let mut request = b"CLOSE 30000\n".to_vec();
            request.extend(std::iter::repeat_n(b'x', 20_000));
            stream.write_all(&request).unwrap();
            let got = read_all(&mut stream)
                .unwrap_or_else(|e| panic!("{label} round {round}: {e} (a reset)"));
            assert!(
                got == pattern(0, 30_000),
                "{label} round {round}: {} bytes",
                got.len()
            );
        }
        let stderr = stop(server, label);
        assert!(stderr.contains("reason=handler"), "{label}: {stderr}");
    }
}

/// A peer that lets more than io.output_limit pile up is closed with a reason, while
/// another connection is served; abort() resets.
#[test]
fn output_limit_and_abort_end_only_their_connection() {
    for (label, bin) in probes() {
        let server = start(bin);
        let mut hog = connect(&server);
        hog.write_all(b"BIG 8000000\n").unwrap();
        let mut other = connect(&server);
        other.write_all(b"ECHO still served\n").unwrap();
        assert_eq!(read_line(&mut other), "still served", "{label}");
        let mut aborted = connect(&server);
        aborted.write_all(b"ABORT\n").unwrap();
        let error = read_all(&mut aborted).expect_err("abort must reset");
        assert_eq!(error.kind(), ErrorKind::ConnectionReset, "{label}");
        // The hog gets at most the limit, then the connection ends.
        let got = read_all(&mut hog).unwrap_or_default();
        assert!(got.len() < 8_000_000, "{label}: {} bytes", got.len());
        drop(other);
        let stderr = stop(server, label);
        assert!(stderr.contains("reason=output_limit"), "{label}: {stderr}");
        assert!(stderr.contains("past io.output_limit"), "{label}: {stderr}");
        assert!(stderr.contains("reason=abort"), "{label}: {stderr}");
    }
}

/// The timer fires within its tolerance, cancel works, and the idle timeout closes with its
/// reason; input past io.max_message closes with input_limit.
#[test]
fn timers_idle_timeout_and_input_limit() {
    for (label, bin) in probes() {
        let server = start(bin);
        let mut stream = connect(&server);
        let armed = Instant::now();
        stream.write_all(b"TIMER 300\n").unwrap();
        assert_eq!(read_line(&mut stream), "TIMER", "{label}");
        let waited = armed.elapsed();
        assert!(
            waited >= Duration::from_millis(295) && waited < Duration::from_millis(600),
            "{label}: the 300 ms timer fired after {waited:?}"
        );
        // The server's idle clock restarts when this arrives, so not before `last_input`.
        let last_input = Instant::now();
        stream
            .write_all(b"TIMER 200\nCANCEL\nECHO after\n")
            .unwrap();
        assert_eq!(read_line(&mut stream), "after", "{label}");
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut byte = [0u8; 1];
        assert!(
            stream.read(&mut byte).is_err(),
            "{label}: a cancelled timer fired"
        );
        // Idle: nothing moves for 1.5 s.
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(stream.read(&mut byte).unwrap_or(0), 0, "{label}");
        let idle = last_input.elapsed();
        assert!(
            idle >= Duration::from_millis(1450),
            "{label}: closed as idle {idle:?} after the last input"
        );
        let mut flood = connect(&server);
        let _ = flood.write_all(&[b'y'; 100_000]); // no newline: never consumed
        let _ = read_all(&mut flood);
        let stderr = stop(server, label);
        assert!(stderr.contains("reason=idle_timeout"), "{label}: {stderr}");
        assert!(stderr.contains("reason=input_limit"), "{label}: {stderr}");
    }
}

/// A handler that asks for on_writable and then produces nothing costs no CPU (it is not
/// called again until it asks), and an open connection is told `stopping` at shutdown.
#[test]
fn an_idle_producer_costs_nothing_and_shutdown_closes_with_a_reason() {
    for (label, bin) in probes() {
        let server = start(bin);
        let mut stream = connect(&server);
        stream.write_all(b"IDLE\nECHO ready\n").unwrap();
        assert_eq!(read_line(&mut stream), "ready", "{label}");
        let before = server.cpu_time().unwrap();
        std::thread::sleep(Duration::from_millis(1000));
        let spent = server.cpu_time().unwrap() - before;
        assert!(
            spent < Duration::from_millis(50),
            "{label}: {spent:?} of CPU while idle"
        );
        stream.write_all(b"WORKER\n").unwrap();
        assert!(
            read_line(&mut stream).starts_with("connections="),
            "{label}"
        );
        let stderr = stop(server, label);
        assert!(stderr.contains("reason=stopping"), "{label}: {stderr}");
        assert!(
            stderr.contains("stopped after"),
            "{label}: on_worker_stop: {stderr}"
        );
    }
}

/// A stop while many connections stream: every connection that opened gets on_close with
/// reason `stopping`, and the program exits 0. (The IOCP loops once acted on the stop packet
/// at once and dropped the rest of the completion batch it came in: the connections those
/// completions belonged to waited for them until the drain gave up, and never got on_close.)
#[test]
fn a_stop_while_many_connections_stream_closes_every_one() {
    const CONNECTIONS: usize = 160;
    let targets: &Targets = &[("c", "epoll"), ("winsock", "iocp")];
    let built = proof::run_parallel(targets, 2, |&(lang, model)| {
        // Two workers: the stop reaches two loops (Linux workers share the port by reuseport).
        let spec = format!(
            "name: probe\nhandler: custom\nserver: {{ workers: 2 }}\n{}\
             io: {{ buffer_size: 4096, output_buffer: 65536 }}\n",
            if lang == "c" {
                "socket: { reuseport: true }\n"
            } else {
                ""
            }
        );
        let files = vec![("probe_handler.h".to_string(), fixture("probe_handler.h"))];
        (
            format!("{lang}/{model}"),
            build_project(&spec, lang, model, &files, "contract-stop-streaming"),
        )
    });
    for (label, bin) in &built {
        let server = start(bin);
        let streaming = std::sync::atomic::AtomicUsize::new(0);
        let outcome = std::thread::scope(|scope| {
            for _ in 0..CONNECTIONS {
                let mut stream = connect(&server);
                stream.write_all(b"STREAM 1000000000000\n").unwrap();
                let streaming = &streaming;
                // Each peer reads as fast as it can until the server's stop ends the stream.
                scope.spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    let mut counted = false;
                    while let Ok(1..) = stream.read(&mut buf) {
                        if !counted {
                            counted = true;
                            streaming.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                });
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while streaming.load(std::sync::atomic::Ordering::SeqCst) < CONNECTIONS
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(
                streaming.load(std::sync::atomic::Ordering::SeqCst),
                CONNECTIONS,
                "{label}: not every connection streams"
            );
            std::thread::sleep(Duration::from_millis(300));
            server.stop(Duration::from_secs(10))
        });
        outcome.check().unwrap_or_else(|e| panic!("{label}: {e}"));
        let stderr = &outcome.stderr;
        let opened: usize = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("probe: worker "))
            .filter_map(|l| l.split(" stopped after ").nth(1))
            .map(|n| n.trim_end_matches(" connections").parse::<usize>().unwrap())
            .sum();
        let closed: std::collections::BTreeSet<&str> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("probe: closed id="))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let stopping = stderr.matches(" reason=stopping ").count();
        assert_eq!(opened, CONNECTIONS, "{label}: {stderr}");
        assert_eq!(
            (closed.len(), stopping),
            (CONNECTIONS, CONNECTIONS),
            "{label}: on_close for {} connections ({stopping} of them stopping) of {CONNECTIONS}",
            closed.len()
        );
    }
}

/// A panicking Rust handler closes only its own connection; the worker goes on serving.
#[test]
fn a_panicking_rust_handler_closes_only_its_connection() {
    for (label, bin) in probes()
        .iter()
        .filter(|(label, _)| label.starts_with("rust"))
    {
        let server = start(bin);
        let mut other = connect(&server);
        other.write_all(b"ECHO one\n").unwrap();
        assert_eq!(read_line(&mut other), "one", "{label}");
        let mut panicking = connect(&server);
        panicking.write_all(b"PANIC\n").unwrap();
        let _ = read_all(&mut panicking);
        other.write_all(b"ECHO two\n").unwrap();
        assert_eq!(read_line(&mut other), "two", "{label}");
        let mut fresh = connect(&server);
        fresh.write_all(b"ECHO three\n").unwrap();
        assert_eq!(read_line(&mut fresh), "three", "{label}");
        drop((other, fresh));
        let stderr = stop(server, label);
        assert!(stderr.contains("a handler panicked"), "{label}: {stderr}");
        assert!(stderr.contains("reason=panic"), "{label}: {stderr}");
    }
}

/// Sends `input` in the given pieces (pausing between them, so messages are split across
/// reads), half-closes, and returns everything until EOF.
fn exchange(server: &RunningServer, pieces: &[&[u8]]) -> Vec<u8> {
    let mut stream = connect(server);
    for piece in pieces {
        stream.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    stream.shutdown(Shutdown::Write).unwrap();
    read_all(&mut stream).unwrap()
}

/// Built-in framing: the echo handler receives whole messages in on_message and sends each
/// back framed the same way; a partial message at EOF is not delivered; a length prefix past
/// io.max_message closes the connection. Length prefixes run on every target; line and
/// delimiter framing share that machinery and run on epoll and IOCP.
#[test]
fn framing_delivers_whole_messages() {
    let every_target = all_targets();
    // Winsock C has its own search for a delimiter (the C runtime there has no memmem).
    let kinds: [(&str, &str, &Targets); 3] = [
        (
            "length_prefix",
            "{ kind: length_prefix, bytes: 2 }",
            &every_target,
        ),
        (
            "line",
            "{ kind: line }",
            &[("c", "epoll"), ("rust", "epoll"), ("winsock", "iocp")],
        ),
        (
            "delimiter",
            "{ kind: delimiter, delimiter: \"\\r\\n\\r\\n\" }",
            &[("c", "epoll"), ("rust", "epoll"), ("winsock", "iocp")],
        ),
    ];
    for (kind, framing, targets) in kinds {
        let spec = format!("name: framed\nframing: {framing}\nio: {{ max_message: 1024 }}\n");
        let built = proof::run_parallel(targets, 2, |&(lang, model)| {
            (
                format!("{kind} {lang}/{model}"),
                build_project(&spec, lang, model, &[], &format!("contract-{kind}")),
            )
        });
        for (label, bin) in &built {
            let server = start(bin);
            let (pieces, expected): (Vec<&[u8]>, Vec<u8>) = match kind {
                "length_prefix" => (
                    vec![b"\x00\x03abc\x00\x00\x00", b"\x05he", b"llo\x00\x09partial"],
                    b"\x00\x03abc\x00\x00\x00\x05hello".to_vec(),
                ),
                "line" => (
                    vec![b"one\r\ntwo\nth", b"ree\n\nlast without newline"],
                    b"one\ntwo\nthree\n\n".to_vec(),
                ),
                _ => (
                    vec![b"GET /\r\n\r\nGET /x\r", b"\n\r\n\r\n\r\nrest"],
                    b"GET /\r\n\r\nGET /x\r\n\r\n\r\n\r\n".to_vec(),
                ),
            };
            assert_eq!(exchange(&server, &pieces), expected, "{label}");
            if kind == "length_prefix" {
                let mut stream = connect(&server);
                stream.write_all(b"\x00\x02ok\xff\xffnever").unwrap();
                let got = read_all(&mut stream).unwrap_or_else(|e| panic!("{label}: {e}"));
                assert_eq!(got, b"\x00\x02ok", "{label}: a message past max_message");
            }
            let stderr = stop(server, label);
            if kind == "length_prefix" {
                assert!(
                    stderr.contains("input is longer than io.max_message"),
                    "{label}: {stderr}"
                );
            }
        }
    }
}

/// The worked example in the README's handler contract section compiles as printed and
/// behaves as described: a greeting, upper-cased lines, and the slow peer dropped.
#[test]
fn the_readme_worked_example_works() {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let from = readme
        .find("/* upper_handler.h")
        .expect("the worked example in the README");
    let to = from + readme[from..].find("```").unwrap();
    let handler = readme[from..to].to_string();
    let spec = "name: upper\nhandler: custom\nframing: { kind: line }\n";
    let bin = build_project(
        spec,
        "c",
        "epoll",
        &[("upper_handler.h".to_string(), handler)],
        "contract-readme",
    );
    let server = start(&bin);
    let mut stream = connect(&server);
    let greeting = read_line(&mut stream);
    assert_eq!(greeting, format!("hello {}", stream.local_addr().unwrap()));
    stream.write_all(b"shout this\r\nand th").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    // The 5 s timer is set when this line arrives, so not before `quiet`.
    let quiet = Instant::now();
    stream.write_all(b"is\n").unwrap();
    assert_eq!(read_line(&mut stream), "SHOUT THIS");
    assert_eq!(read_line(&mut stream), "AND THIS");
    assert_eq!(read_line(&mut stream), "too slow");
    assert!(
        quiet.elapsed() >= Duration::from_millis(4900),
        "{:?}",
        quiet.elapsed()
    );
    assert!(read_all(&mut stream).unwrap().is_empty());
    stop(server, "readme");
}

/// UDP: each datagram reaches on_message whole with its sender named in info, the reply goes
/// back to that sender, and the worker's state persists between datagrams.
#[test]
fn udp_handlers_see_the_sender_and_keep_worker_state() {
    const C_HANDLER: &str = r#"
struct udp_probe_worker { unsigned long long datagrams; };
static void udp_probe_on_worker_start(struct udp_probe_worker *w, unsigned index) { (void)index; w->datagrams = 0; }
static void udp_probe_on_worker_stop(struct udp_probe_worker *w) { (void)w; }
static void udp_probe_on_message(struct udp_probe_worker *w, struct udp_probe_conn *c,
                                 const unsigned char *msg, size_t len)
{
    w->datagrams++;
    udp_probe_printf(c, "%llu %s %.*s", w->datagrams, udp_probe_info(c)->peer_text, (int)len, (const char *)msg);
}
"#;
    const RUST_MAIN: &str = r#"
#[allow(dead_code)]
mod udp_probe;
use std::io::Write;
use udp_probe::{Ctx, Handler};
#[derive(Default)]
struct Probe { datagrams: u64 }
impl Handler for Probe {
    fn on_message(&mut self, msg: &[u8], ctx: &mut Ctx<'_>) {
        self.datagrams += 1;
        let peer = ctx.info().peer;
        let _ = write!(ctx.out, "{} {peer} {}", self.datagrams, String::from_utf8_lossy(msg));
    }
}
fn main() -> std::process::ExitCode { udp_probe::main_with::<Probe>() }
"#;
    let spec = "name: udp_probe\nprotocol: udp\nhandler: custom\n";
    let built = proof::run_parallel(&all_targets(), 2, |&(lang, model)| {
        let files = if lang != "rust" {
            vec![("udp_probe_handler.h".to_string(), C_HANDLER.to_string())]
        } else {
            vec![("src/main.rs".to_string(), RUST_MAIN.to_string())]
        };
        (
            format!("{lang}/{model}"),
            build_project(spec, lang, model, &files, "contract-udp"),
        )
    });
    for (label, bin) in &built {
        let server = start(bin);
        let sockets: Vec<_> = (0..3)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut buf = [0u8; 256];
        for (i, socket) in sockets.iter().enumerate() {
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            socket
                .send_to(format!("hello {i}").as_bytes(), server.addr)
                .unwrap();
            let (n, from) = socket
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(from, server.addr, "{label}");
            let expected = format!("{} {} hello {i}", i + 1, socket.local_addr().unwrap());
            assert_eq!(String::from_utf8_lossy(&buf[..n]), expected, "{label}");
        }
        stop(server, label);
    }
}
