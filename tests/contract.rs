//! The handler contract, proven on every language and model: a probe handler (C:
//! tests/fixtures/probe/probe_handler.c, Rust: tests/fixtures/probe/src/main.rs) exposes each
//! point of the contract through a line protocol, and these tests drive it over loopback.

mod common;
#[path = "contract/datagrams.rs"]
mod datagrams;
#[path = "contract/differential.rs"]
mod differential;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{all_targets, linux_targets, plan_for};
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
            linux_targets()
                .iter()
                .filter(|(l, _)| *l == "c")
                .map(|&(l, m)| (l, m, true)),
        );
        proof::run_parallel(&builds, 2, |&(lang, model, sanitized)| {
            let files = if lang != "rust" {
                vec![("probe_handler.c".to_string(), fixture("probe_handler.c"))]
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

/// One write larger than io.output_limit (5 MB against 4 MiB) ends the connection with
/// output_limit, and the log says what happened rather than blaming a peer that was reading.
#[test]
fn one_write_past_the_output_limit_is_named_as_such() {
    for (label, bin) in probes() {
        let server = start(bin);
        let mut stream = connect(&server);
        stream.write_all(b"ECHO before\n").unwrap();
        assert_eq!(read_line(&mut stream), "before", "{label}");
        stream.write_all(b"ONE 5000000\n").unwrap();
        let got = read_all(&mut stream).unwrap_or_default();
        assert!(
            got.is_empty(),
            "{label}: {} bytes of the refused write",
            got.len()
        );
        let stderr = stop(server, label);
        assert!(stderr.contains("reason=output_limit"), "{label}: {stderr}");
        assert!(
            stderr.contains("one write larger than io.output_limit"),
            "{label}: {stderr}"
        );
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
        let spent = server.cpu_spent_over(Duration::from_secs(1)).unwrap();
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
        let files = vec![("probe_handler.c".to_string(), fixture("probe_handler.c"))];
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
                // A message of exactly io.max_message, split one byte before its end: its
                // prefix is not counted against the limit.
                let mut full = vec![0x04, 0x00];
                full.extend((0..1024u32).map(|i| (i % 251) as u8));
                let got = exchange(&server, &[&full[..1025], &full[1025..]]);
                assert!(got == full, "{label}: {} of 1026 bytes back", got.len());
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

/// The worked example in the README's tutorial ("Your first protocol") compiles as printed and
/// behaves as described: a greeting, upper-cased lines, and the slow peer dropped.
#[test]
fn the_readme_worked_example_works() {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let from = readme
        .find("/* upper_handler.c")
        .expect("the worked example in the README");
    let to = from + readme[from..].find("```").unwrap();
    let handler = readme[from..to].to_string();
    let spec = "name: upper\nhandler: custom\nframing: { kind: line }\n";
    let bin = build_project(
        spec,
        "c",
        "epoll",
        &[("upper_handler.c".to_string(), handler)],
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
            vec![("udp_probe_handler.c".to_string(), C_HANDLER.to_string())]
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

/// Starts `bin` with environment variables set (a ring setup this kernel would not choose).
fn start_with_env(bin: &std::path::Path, env: &[(&str, &str)]) -> Result<RunningServer, String> {
    let launch = proof::harness::Launch {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    RunningServer::launch(bin, &["-p", "0"], Duration::from_secs(10), &launch)
}

/// Reads to EOF in bursts with pauses, so a pipelining writer gets far ahead of the server
/// again and again; Err names a reset.
fn read_all_in_bursts(stream: &mut TcpStream, burst: usize) -> Result<Vec<u8>, std::io::Error> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut since_pause = 0;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(got);
        }
        got.extend_from_slice(&buf[..n]);
        since_pause += n;
        if since_pause >= burst {
            since_pause = 0;
            std::thread::sleep(Duration::from_millis(30));
        }
    }
}

/// A peer pipelining far ahead of a handler that paces itself with congested(): 300,000
/// requests (2.1 MB) for 19.2 MB of replies, read in bursts. The server stops reading and is
/// never closed for input it chose not to read yet (io_uring's cancelled multishot receive
/// still delivers what the socket held: it is kept, not counted against io.max_message).
#[test]
fn a_pipeline_far_ahead_of_a_pacing_handler_is_never_closed() {
    const REQUESTS: usize = 300_000;
    for (label, bin) in probes() {
        let server = start(bin);
        let mut stream = connect(&server);
        let mut writer = stream.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            writer.write_all(&b"BIG 64\n".repeat(REQUESTS))?;
            writer.shutdown(Shutdown::Write)
        });
        std::thread::sleep(Duration::from_millis(200)); // the writer gets ahead
        let got =
            read_all_in_bursts(&mut stream, 1 << 20).unwrap_or_else(|e| panic!("{label}: {e}"));
        let sent = sender.join().unwrap();
        assert_eq!(got.len(), REQUESTS * 64, "{label}: sending: {sent:?}");
        assert!(
            got.chunks(64).all(|c| c == pattern(0, 64)),
            "{label}: replies differ"
        );
        let stderr = stop(server, label);
        assert!(!stderr.contains("input_limit"), "{label}: {stderr}");
    }
}

/// A handler that streams a reply and takes no request behind it until the reply is sent
/// (HOLD; it calls resume_input() when done), and a peer that sends two more requests and
/// half-closes: on_eof comes after the held requests were presented again and answered, in
/// every model; with a small reply (no back-pressure) as with a large one.
#[test]
fn eof_waits_for_requests_held_behind_a_streamed_reply() {
    for (label, bin) in probes() {
        let server = start(bin);
        for size in [100usize, 1_000_000] {
            let mut stream = connect(&server);
            stream
                .write_all(format!("HOLD {size}\nECHO x\nECHO y\n").as_bytes())
                .unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
            let got = read_all(&mut stream).unwrap_or_else(|e| panic!("{label}: {e}"));
            let mut expected = pattern(0, size);
            expected.extend_from_slice(b"x\ny\n");
            assert_eq!(got.len(), expected.len(), "{label}: HOLD {size}");
            assert!(got == expected, "{label}: HOLD {size}: replies differ");
        }
        // A reply that ends with an on_writable call queuing nothing, and a partial request
        // behind it: the request is presented again and on_eof follows at once, not at the
        // idle timeout (1.5 s), which was all that ended it while nothing was left to wait on.
        let mut stream = connect(&server);
        let asked = Instant::now();
        stream
            .write_all(
                b"STREAM 10
EC",
            )
            .unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let got = read_all(&mut stream).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(got == pattern(0, 10), "{label}: {} bytes", got.len());
        let took = asked.elapsed();
        assert!(
            took < Duration::from_millis(1200),
            "{label}: EOF after a finished stream took {took:?}"
        );
        let stderr = stop(server, label);
        assert!(!stderr.contains("reason=idle_timeout"), "{label}: {stderr}");
    }
}

/// A peer that pipelines four times io.max_message of requests behind a reply its handler
/// streams with its input paused (HOLD calls pause_input()), and reads in bursts: every request
/// is answered, in order, and the connection ends with the peer's half-close, never
/// `input_limit`. Without a pause, what was read behind the reply counted against the limit
/// whenever the queue sat between its water marks, sooner or later by the peer's timing: the
/// differential suite found io_uring closing a conversation that epoll answered.
#[test]
fn requests_pipelined_behind_a_paused_reply_are_not_counted_against_the_limit() {
    const ECHOES: usize = 4 * 65536 / 7 + 1;
    for (label, bin) in probes() {
        let server = start(bin);
        let mut stream = connect(&server);
        let mut reader = stream.try_clone().unwrap();
        let reading = std::thread::spawn(move || read_all_in_bursts(&mut reader, 200_000));
        let mut wire = b"HOLD 3000000\n".to_vec();
        let mut expected = pattern(0, 3_000_000);
        for _ in 0..ECHOES {
            wire.extend_from_slice(b"ECHO x\n");
            expected.extend_from_slice(b"x\n");
        }
        stream.write_all(&wire).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let got = reading
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(
            got == expected,
            "{label}: {} bytes back of {}, first difference at {:?}",
            got.len(),
            expected.len(),
            got.iter().zip(&expected).position(|(a, b)| a != b)
        );
        let stderr = stop(server, label);
        assert!(stderr.contains("reason=peer"), "{label}: {stderr}");
        assert!(!stderr.contains("input_limit"), "{label}: {stderr}");
    }
}

/// One connection sends 32 MB of 4 KiB requests that its handler consumes one at a time,
/// so a piece of a request is always left over: the input buffer holds what is unconsumed,
/// not everything received (Rust io_uring once grew by the whole stream). Native builds
/// only: AddressSanitizer's quarantine and Wine make resident memory say nothing here.
#[test]
fn input_consumed_piece_by_piece_keeps_memory_flat() {
    const LINES: usize = 8192;
    for (label, bin) in probes()
        .iter()
        .filter(|(label, _)| !label.ends_with("+asan") && !label.starts_with("winsock"))
    {
        let server = start(bin);
        let mut stream = connect(&server);
        stream.write_all(b"ECHO ready\n").unwrap();
        assert_eq!(read_line(&mut stream), "ready", "{label}");
        let before = server.peak_rss_kib();
        let mut writer = stream.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            let mut line = b"ECHO ".to_vec();
            line.extend(std::iter::repeat_n(b'q', 4090));
            line.push(b'\n');
            for _ in 0..LINES {
                writer.write_all(&line)?;
            }
            writer.shutdown(Shutdown::Write)
        });
        let got = read_all(&mut stream).unwrap_or_else(|e| panic!("{label}: {e}"));
        sender.join().unwrap().unwrap();
        assert!(got.len() >= LINES * 100, "{label}: {} bytes", got.len());
        let grown = server.peak_rss_kib().saturating_sub(before);
        assert!(
            grown < 8 * 1024,
            "{label}: resident memory grew by {grown} KiB for 32 MB of input"
        );
        stop(server, label);
    }
}

/// The io_uring ring setups this kernel would not choose (a 6.0 kernel takes COOP_TASKRUN,
/// older ones neither), selected with SOCKGEN_IO_URING_SETUP: a stop while a 3 MB reply is
/// in flight to a peer that is not reading sends only the queued bytes (the output queue is
/// freed only once the ring is done with it), and on_close runs.
#[test]
fn io_uring_stop_with_a_send_in_flight_in_every_ring_setup() {
    for (label, bin) in probes()
        .iter()
        .filter(|(label, _)| label.contains("io_uring"))
    {
        let refused = start_with_env(bin, &[("SOCKGEN_IO_URING_SETUP", "fastest")])
            .err()
            .unwrap_or_else(|| panic!("{label}: started with an unknown ring setup"));
        assert!(
            refused.contains("SOCKGEN_IO_URING_SETUP must be defer, coop or plain"),
            "{label}: {refused}"
        );
        for setup in ["defer", "coop", "plain"] {
            // Under ASan, freed memory is filled at once: a send that read it after the
            // free would show the fill bytes to the peer.
            let env = [
                ("SOCKGEN_IO_URING_SETUP", setup),
                (
                    "ASAN_OPTIONS",
                    "max_free_fill_size=4194304:free_fill_byte=255",
                ),
            ];
            let server =
                start_with_env(bin, &env).unwrap_or_else(|e| panic!("{label} {setup}: {e}"));
            let mut stream = connect(&server);
            stream.write_all(b"ECHO up\nBIG 3000000\n").unwrap();
            assert_eq!(read_line(&mut stream), "up", "{label} {setup}");
            // A slow reader: the socket keeps becoming writable again, so a send is in the
            // ring, waiting for room or about to copy, when the stop comes.
            let reader = std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    std::thread::sleep(Duration::from_millis(1));
                }
                got
            });
            std::thread::sleep(Duration::from_millis(150));
            let stderr = stop(server, &format!("{label} {setup}"));
            assert!(
                stderr.contains("reason=stopping"),
                "{label} {setup}: {stderr}"
            );
            let got = reader.join().unwrap();
            assert!(
                got.len() <= 3_000_000,
                "{label} {setup}: {} bytes",
                got.len()
            );
            assert!(
                got == pattern(0, got.len()),
                "{label} {setup}: bytes that were never queued reached the peer"
            );
        }
    }
}

/// Built-in framing: io.max_message bounds the message, not the bytes buffered with it. A
/// message of exactly the limit passes whether its delimiter arrives whole or split at any
/// byte; one byte more closes with input_limit; and 100,000 small messages pipelined far
/// ahead are paced, never refused (their sum is far past the limit). Every target.
#[test]
fn the_input_limit_is_on_a_message_whatever_the_segmentation() {
    let spec = "name: framed_limit\nframing: { kind: delimiter, delimiter: \"\\r\\n\\r\\n\" }\nio: { max_message: 1000 }\n";
    let built = proof::run_parallel(&all_targets(), 2, |&(lang, model)| {
        (
            format!("{lang}/{model}"),
            build_project(spec, lang, model, &[], "contract-limit"),
        )
    });
    let message: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
    for (label, bin) in &built {
        let server = start(bin);
        for split in 1000..=1003 {
            let mut wire = message.clone();
            wire.extend_from_slice(b"\r\n\r\n");
            let (first, rest) = wire.split_at(split);
            let mut last = rest.to_vec();
            last.extend_from_slice(b"ok\r\n\r\n");
            let got = exchange(&server, &[first, &last]);
            let mut expected = wire.clone();
            expected.extend_from_slice(b"ok\r\n\r\n");
            assert!(
                got == expected,
                "{label}: split after byte {split}: {} bytes back",
                got.len()
            );
        }
        let mut over = message.clone();
        over.push(b'!');
        over.extend_from_slice(b"\r\n\r\n");
        let got = exchange(&server, &[&over[..1001], &over[1001..]]);
        assert!(got.is_empty(), "{label}: a 1001-byte message was echoed");

        const MESSAGES: usize = 100_000;
        let mut small = vec![b'm'; 60];
        small.extend_from_slice(b"\r\n\r\n");
        let mut stream = connect(&server);
        let mut writer = stream.try_clone().unwrap();
        let wire = small.repeat(MESSAGES);
        let sender = std::thread::spawn(move || {
            writer.write_all(&wire)?;
            writer.shutdown(Shutdown::Write)
        });
        std::thread::sleep(Duration::from_millis(200));
        let got =
            read_all_in_bursts(&mut stream, 1 << 20).unwrap_or_else(|e| panic!("{label}: {e}"));
        let sent = sender.join().unwrap();
        assert_eq!(got.len(), MESSAGES * 64, "{label}: sending: {sent:?}");
        assert!(got.chunks(64).all(|c| c == small), "{label}: echoes differ");
        let stderr = stop(server, label);
        assert_eq!(
            stderr
                .matches("input is longer than io.max_message")
                .count(),
            1,
            "{label}: only the 1001-byte message is refused: {stderr}"
        );
    }
}

/// Delimiter framing searches each byte once: a 1 MiB message arriving in 100-byte writes
/// costs the server no more CPU than the same bytes as 10,922 small messages in the same
/// writes (a search from the start on every arrival made it 10 to 20 times more). A ratio of
/// two workloads on one server in one run, with a wide margin, not a time.
#[test]
fn framing_searches_a_message_arriving_in_pieces_once() {
    const TARGETS_HERE: [(&str, &str); 4] = [
        ("c", "epoll"),
        ("rust", "epoll"),
        ("c", "io_uring"),
        ("rust", "io_uring"),
    ];
    let spec = "name: framed_scan\nframing: { kind: delimiter, delimiter: \"\\r\\n\\r\\n\" }\nio: { max_message: 4194304, buffer_size: 512 }\n";
    let built = proof::run_parallel(&TARGETS_HERE, 2, |&(lang, model)| {
        (
            format!("{lang}/{model}"),
            build_project(spec, lang, model, &[], "contract-scan"),
        )
    });
    let send_in_pieces = |server: &RunningServer, wire: &[u8]| -> Duration {
        let mut stream = connect(server);
        stream.set_nodelay(true).unwrap();
        let mut reader = stream.try_clone().unwrap();
        let expected = wire.len();
        let receiver = std::thread::spawn(move || {
            let mut got = 0;
            let mut buf = vec![0u8; 65536];
            while got < expected {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            got
        });
        let before = server.cpu_time().unwrap();
        for piece in wire.chunks(100) {
            stream.write_all(piece).unwrap();
        }
        assert_eq!(receiver.join().unwrap(), expected);
        server.cpu_time().unwrap() - before
    };
    for (label, bin) in &built {
        let server = start(bin);
        let mut one = vec![b'z'; 1 << 20];
        one.extend_from_slice(b"\r\n\r\n");
        let mut many = vec![b'z'; 92];
        many.extend_from_slice(b"\r\n\r\n");
        let many = many.repeat(one.len() / 96);
        let one_message = send_in_pieces(&server, &one);
        let many_messages = send_in_pieces(&server, &many);
        eprintln!("{label}: one message {one_message:?}, many {many_messages:?}");
        assert!(
            one_message < many_messages * 3 + Duration::from_millis(60),
            "{label}: one 1 MiB message took {one_message:?} of server CPU, \
             {} small ones {many_messages:?}",
            many.len() / 96
        );
        stop(server, label);
    }
}
