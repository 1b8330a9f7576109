//! The generated servers held to the rules for generated code: each rule one test, over every
//! target it applies to. (The per-spec proof that every cell echoes byte for byte is
//! `tests/verify.rs`.)

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use sockgen::proof::{self, load, ProofOptions, RunningServer};
use sockgen::source::Format;
use sockgen::{Overrides, SourceFile};

/// Builds the spec for every target, Linux and Windows, two at a time; yields (label, dir to
/// keep, binary).
fn build_all(spec_yaml: &str) -> Vec<(String, tempfile::TempDir, PathBuf)> {
    build_on(spec_yaml, &all_targets())
}

/// Builds the spec for every Linux target: for tests of what only Linux has (rlimits,
/// descriptor numbers, /proc).
fn build_linux(spec_yaml: &str) -> Vec<(String, tempfile::TempDir, PathBuf)> {
    build_on(spec_yaml, &linux_targets())
}

/// Builds the spec for these (lang, model) pairs, two at a time.
fn build_on(
    spec_yaml: &str,
    targets: &[(&str, &str)],
) -> Vec<(String, tempfile::TempDir, PathBuf)> {
    proof::run_parallel(targets, 2, |(lang, model)| {
        let (dir, bin, _) = build(spec_yaml, lang, model);
        (format!("{lang}/{model}"), dir, bin)
    })
}

/// Runs a generated program to its end (under Wine for a Windows one), bounded: the
/// harness's runner, since a Windows program's pipes can outlive it.
fn run_program(bin: &Path, args: &[&str]) -> proof::client::ClientRun {
    let out = proof::client::run_client(bin, args, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    assert!(
        out.status.is_some(),
        "{} {args:?} ran past 60 s",
        bin.display()
    );
    out
}

/// How the target's error text names EADDRINUSE.
fn address_in_use(target: &str) -> &'static str {
    if target.starts_with("winsock") {
        "WSAEADDRINUSE (10048)"
    } else {
        "EADDRINUSE (Address already in use); another program holds this port"
    }
}

fn start(bin: &Path) -> RunningServer {
    RunningServer::start(bin, &["-p", "0"], Duration::from_secs(10)).unwrap()
}

/// A peer that sends without reading is throttled: the server's memory stays bounded, and
/// when the peer finally reads, every byte arrives intact.
#[test]
fn slow_reader_gets_everything_without_unbounded_memory() {
    for (model, _dir, bin) in build_all("name: slow\nio: { buffer_size: 4096, output_buffer: 16384 }\nsocket: { recv_buffer: 16384, send_buffer: 16384 }\n") {
        let server = start(&bin);
        let before = server.rss_kib();
        let stream = TcpStream::connect(server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let payload = load::Rng::new(11).bytes(32 << 20);
        let expected = payload.clone();
        let sender = std::thread::spawn(move || {
            writer.write_all(&payload).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        // Let the server fill every buffer it has while we read nothing.
        std::thread::sleep(Duration::from_millis(700));
        let during = server.rss_kib();
        assert!(
            during < before + 4096,
            "{model}: server grew from {before} KiB to {during} KiB while the peer did not read"
        );
        let mut got = Vec::with_capacity(expected.len());
        let mut reader = stream;
        reader.read_to_end(&mut got).unwrap();
        sender.join().unwrap();
        assert!(
            got == expected,
            "{model}: echo differs after the slow reader resumed ({} of {} bytes)",
            got.len(),
            expected.len()
        );
        server.stop(Duration::from_secs(5)).check().unwrap();
    }
}

/// At max_connections the server stops accepting; the next peer is served once one leaves.
#[test]
fn max_connections_is_enforced() {
    for (model, _dir, bin) in build_all("name: capped\nserver: { max_connections: 2 }\n") {
        let server = start(&bin);
        let echo_ok = |s: &mut TcpStream| -> bool {
            s.set_read_timeout(Some(Duration::from_millis(400)))
                .unwrap();
            s.write_all(b"ping").is_ok() && {
                let mut b = [0u8; 4];
                s.read_exact(&mut b).is_ok() && &b == b"ping"
            }
        };
        let mut a = TcpStream::connect(server.addr).unwrap();
        let mut b = TcpStream::connect(server.addr).unwrap();
        assert!(
            echo_ok(&mut a) && echo_ok(&mut b),
            "{model}: first two connections served"
        );
        let mut c = TcpStream::connect(server.addr).unwrap(); // sits in the backlog
        assert!(
            !echo_ok(&mut c),
            "{model}: third connection served beyond max_connections"
        );
        drop(a);
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(
            &buf, b"ping",
            "{model}: the waiting peer is served once a slot frees"
        );
        drop((b, c));
        server.stop(Duration::from_secs(5)).check().unwrap();
    }
}

#[test]
fn idle_connections_are_closed() {
    for (model, _dir, bin) in build_all("name: idle\nserver: { idle_timeout_ms: 200 }\n") {
        let server = start(&bin);
        // Timed from before the connect, which the server's idle clock cannot start before:
        // timed from after it, a test thread held up on a busy machine (once 173 ms) made a
        // correct server look early.
        let started = Instant::now();
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1];
        let read = s.read(&mut buf);
        let waited = started.elapsed();
        assert!(
            matches!(read, Ok(0)),
            "{model}: expected the server to close the idle connection, read gave {read:?}"
        );
        assert!(
            waited >= Duration::from_millis(150),
            "{model}: closed after only {waited:?}"
        );
        server.stop(Duration::from_secs(5)).check().unwrap();
    }
}

#[test]
fn sigint_also_stops_cleanly_and_workers_share_the_port() {
    // Winsock workers share one listening socket, with no SO_REUSEPORT.
    for (lang, model, spec) in [
        (
            "c",
            "epoll",
            "name: multi\nsocket: { reuseport: true }\nserver: { workers: 3 }\n",
        ),
        (
            "rust",
            "epoll",
            "name: multi\nsocket: { reuseport: true }\nserver: { workers: 3 }\n",
        ),
        ("winsock", "poll", "name: multi\nserver: { workers: 3 }\n"),
        ("winsock", "iocp", "name: multi\nserver: { workers: 3 }\n"),
        (
            "winsock",
            "iocp",
            "name: multi\nprotocol: udp\nserver: { workers: 3 }\n",
        ),
    ] {
        let (_dir, bin, _) = build(spec, lang, model);
        let server = start(&bin);
        let echoed = if spec.contains("udp") {
            load::udp_echo(server.addr, &[0, 1, 1472, 65507], 16, 5)
        } else {
            load::tcp_echo(server.addr, &[64 * 1024; 16], 5)
        };
        echoed.unwrap_or_else(|e| panic!("{lang}/{model}: {e}"));
        // SAFETY: kill(2) on the child we own.
        unsafe { libc::kill(server.pid().unwrap() as i32, libc::SIGINT) };
        server
            .stop(Duration::from_secs(5))
            .check()
            .unwrap_or_else(|e| panic!("{lang}: {e}"));
    }
}

/// The generated program's own command line: bad input is a clear error, never a crash.
#[test]
fn generated_program_rejects_bad_arguments() {
    for lang in ["c", "rust", "winsock"] {
        let (_dir, bin, _) = build("name: args\n", lang, "poll");
        let run = |args: &[&str]| run_program(&bin, args);
        let stderr = |out: &proof::client::ClientRun| out.stderr.clone();
        let out = run(&["-p", "70000"]);
        assert_eq!(out.status, Some(2), "{lang}");
        assert!(
            stderr(&out).contains("invalid port '70000'"),
            "{lang}: {}",
            stderr(&out)
        );
        let out = run(&["-a", "not-an-ip", "-p", "0"]);
        assert_eq!(out.status, Some(2), "{lang}");
        assert!(
            stderr(&out).contains("invalid address 'not-an-ip'"),
            "{lang}: {}",
            stderr(&out)
        );
        let out = run(&["extra"]);
        assert_eq!(out.status, Some(2), "{lang}");

        // A port already taken: the bind error names the address and port.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port().to_string();
        let out = run(&["-p", &port]);
        assert_eq!(out.status, Some(1), "{lang}");
        let text = stderr(&out);
        assert!(
            text.contains(&format!(
                "bind 127.0.0.1 port {port}: {}",
                address_in_use(lang)
            )),
            "{lang}: {text}"
        );
    }
}

/// Peers that reset mid-stream or vanish must not take the server down.
#[test]
fn abrupt_peers_do_not_hurt_the_server() {
    for (model, _dir, bin) in build_all("name: rst\n") {
        let server = start(&bin);
        for _ in 0..20 {
            let s = TcpStream::connect(server.addr).unwrap();
            let mut w = s.try_clone().unwrap();
            let _ = w.write_all(&vec![7u8; 200_000]);
            // SO_LINGER 0: close sends RST while the server may be writing to us.
            let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            // SAFETY: setsockopt on a valid socket with a correctly sized struct.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    &linger as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::linger>() as u32,
                );
            }
        }
        load::tcp_echo(server.addr, &[256 * 1024; 4], 9).unwrap_or_else(|e| panic!("{model}: {e}"));
        server
            .stop(Duration::from_secs(5))
            .check()
            .unwrap_or_else(|e| panic!("{model}: {e}"));
    }
}

/// After a fault has passed: the server echoes `payloads` byte-exact again, stops with status 0,
/// and logged `logged` on the way.
fn serves_again_and_logged(server: RunningServer, payloads: &[usize], model: &str, logged: &str) {
    let recovered = load::tcp_echo(server.addr, payloads, 3);
    let stop = server.stop(Duration::from_secs(10));
    recovered.unwrap_or_else(|e| panic!("{model}: after the fault: {e}\nstderr: {}", stop.stderr));
    stop.check().unwrap_or_else(|e| panic!("{model}: {e}"));
    assert!(stop.stderr.contains(logged), "{model}: {}", stop.stderr);
}

/// Out of descriptors, the server sheds new peers instead of spinning on a readable listener,
/// keeps serving the ones it has, and accepts again once descriptors free up.
#[test]
fn emfile_on_accept_sheds_peers_without_spinning() {
    for (model, _dir, bin) in build_linux("name: fds\nserver: { idle_timeout_ms: 0 }\n") {
        let server = RunningServer::start_with_fd_limit(
            &bin,
            &["-p", "0"],
            Duration::from_secs(10),
            Some(24),
        )
        .unwrap();
        let mut held: Vec<TcpStream> = Vec::new();
        for _ in 0..40 {
            held.push(TcpStream::connect(server.addr).unwrap());
        }
        let spent = server.cpu_spent_over(Duration::from_secs(1)).unwrap();
        assert!(
            spent < Duration::from_millis(300),
            "{model}: {spent:?} of CPU in 1 s while out of descriptors"
        );
        // The first connections were accepted before the limit and are still served.
        held[0]
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        held[0].write_all(b"still here").unwrap();
        let mut buf = [0u8; 10];
        held[0].read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"still here", "{model}");
        held.clear();
        std::thread::sleep(Duration::from_millis(200));
        serves_again_and_logged(server, &[64 * 1024; 4], &model, "out of file descriptors");
    }
}

/// The checks can fail: a server that corrupts one byte, or ignores SIGTERM, is caught.
#[test]
fn verify_catches_broken_servers() {
    let (plan, code) = c_poll_echo("broken");
    let code = &code;
    let cases = [
        (
            "corrupts byte 0 of every read",
            corrupt_echo(code, "broken"),
            "first difference",
        ),
        (
            "ignores SIGTERM",
            code.replace("    (void)signo;\n    request_stop();", "    (void)signo;"),
            "still running",
        ),
    ];
    for (what, broken, expected) in cases {
        assert_ne!(&broken, code, "the patch for '{what}' did not apply");
        let dir = tempfile::tempdir().unwrap();
        let bin = compile_c(dir.path(), "broken", &broken);
        let options = ProofOptions {
            stop_timeout: Duration::from_millis(500),
            ..ProofOptions::default()
        };
        let report = proof::prove_binary(&plan, &bin, &options).unwrap();
        assert!(
            !report.passed(),
            "{what}: verify passed a broken server:\n{}",
            report.summary()
        );
        assert!(
            report.summary().contains(expected),
            "{what}:\n{}",
            report.summary()
        );
    }
}

/// A datagram longer than io.buffer_size is dropped and logged, never echoed cut short, and
/// the server goes on answering the next one. Then bursts of them, more than the server has
/// receives outstanding (the IOCP server keeps 32 per worker), each followed by an empty
/// datagram and a normal one: both come back byte for byte every round, and the server
/// logs no failure. (The IOCP server once took a receive that failed at once with WSAEMSGSIZE
/// for a failed request, logging "WSARecvFrom failed" per datagram, though its completion,
/// still queued, was handled as well.)
#[test]
fn oversized_datagrams_are_dropped_not_truncated() {
    for (model, _dir, bin) in build_all("name: big\nprotocol: udp\nio: { buffer_size: 1024 }\n") {
        let server = start(&bin);
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 4096];
        socket.send_to(&[7u8; 1025], server.addr).unwrap();
        assert!(
            socket.recv_from(&mut buf).is_err(),
            "{model}: a 1025-byte datagram was answered"
        );
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket.send_to(&[9u8; 1024], server.addr).unwrap();
        let (n, _) = socket
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(&buf[..n], &[9u8; 1024][..], "{model}");
        const BURST: usize = 48;
        const ROUNDS: usize = 8;
        for round in 0..ROUNDS {
            // 48 of 1025 to 1500 bytes fit the default receive buffer (208 KiB) whole.
            for i in 0..BURST {
                socket
                    .send_to(&[7u8; 1500][..1025 + (i * 53) % 476], server.addr)
                    .unwrap();
            }
            let normal: Vec<u8> = (0..1024).map(|i| (i * 7 + round) as u8).collect();
            socket.send_to(&[], server.addr).unwrap();
            socket.send_to(&normal, server.addr).unwrap();
            // The two replies may come in either order (workers answer independently).
            let (mut empty_back, mut normal_back) = (false, false);
            while !(empty_back && normal_back) {
                let (n, _) = socket.recv_from(&mut buf).unwrap_or_else(|e| {
                    panic!("{model}: round {round}: empty back {empty_back}, normal back {normal_back}: {e}")
                });
                match n {
                    0 => empty_back = true,
                    _ => {
                        assert_eq!(&buf[..n], &normal[..], "{model}: round {round}");
                        normal_back = true;
                    }
                }
            }
        }
        let stop = server.stop(Duration::from_secs(5));
        stop.check().unwrap_or_else(|e| panic!("{model}: {e}"));
        assert!(
            stop.stderr
                .contains("datagram longer than io.buffer_size dropped (256 so far)"),
            "{model}: {}",
            stop.stderr
        );
        assert!(!stop.stderr.contains("failed"), "{model}: {}", stop.stderr);
    }
}

/// A port nobody holds right now, for servers whose ready line cannot be read.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Echo one message on the port, retrying while the server starts.
fn echo_on(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s.write_all(b"alive").map_err(|e| e.to_string())?;
                let mut buf = [0u8; 5];
                s.read_exact(&mut buf).map_err(|e| e.to_string())?;
                return if &buf == b"alive" {
                    Ok(())
                } else {
                    Err("wrong echo".into())
                };
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("never served: {e}")),
        }
    }
}

/// Daemons often start with closed or broken stdio: a server with stdin and stdout closed, or
/// whose stdout is a pipe nobody reads, still serves and stops with status 0.
#[test]
fn closed_or_broken_stdio_does_not_stop_a_server() {
    use std::os::unix::process::CommandExt;
    for (model, _dir, bin) in build_linux("name: stdio\n") {
        for case in ["closed", "broken"] {
            let port = free_port();
            let mut command = Command::new(&bin);
            command
                .args(["-p", &port.to_string()])
                .stderr(std::process::Stdio::null());
            let mut ends = [0; 2];
            assert_eq!(unsafe { libc::pipe(ends.as_mut_ptr()) }, 0);
            // SAFETY: pipe(2) just returned these two descriptors; each is owned once.
            let (read_end, write_end) = unsafe {
                use std::os::fd::FromRawFd;
                (
                    std::fs::File::from_raw_fd(ends[0]),
                    std::fs::File::from_raw_fd(ends[1]),
                )
            };
            if case == "closed" {
                // SAFETY: close(2) on the child's own descriptors between fork and exec.
                unsafe {
                    command.pre_exec(|| {
                        libc::close(0);
                        libc::close(1);
                        Ok(())
                    });
                }
            } else {
                command.stdout(write_end);
                drop(read_end); // nobody will ever read the ready line
            }
            let mut child = command.spawn().unwrap();
            let served = echo_on(port);
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let status = child.wait().unwrap();
            served.unwrap_or_else(|e| panic!("{model}, stdio {case}: {e}"));
            assert_eq!(status.code(), Some(0), "{model}, stdio {case}: {status}");
        }
    }
}

/// SO_REUSEADDR lets a second UDP socket bind a port and take its datagrams, so a UDP server
/// sets it only when the spec asks: a second copy on the same port fails to start.
#[test]
fn a_second_udp_server_cannot_take_the_port() {
    for (model, _dir, bin) in build_all("name: once\nprotocol: udp\n") {
        let first = start(&bin);
        let port = first.addr.port().to_string();
        let second = run_program(&bin, &["-p", &port]);
        assert_eq!(
            second.status,
            Some(1),
            "{model}: a second UDP server started"
        );
        assert!(
            second.stderr.contains(address_in_use(&model)),
            "{model}: {}",
            second.stderr
        );
        first
            .stop(Duration::from_secs(5))
            .check()
            .unwrap_or_else(|e| panic!("{model}: {e}"));
    }
}

/// `::` takes IPv6 peers only by default (IPV6_V6ONLY set, whatever the sysctl says), and
/// IPv4-mapped peers too with `v6only: false`.
#[test]
fn v6only_decides_whether_ipv4_peers_reach_an_ipv6_server() {
    for (v6only, spec) in [
        (true, "name: six\naddress: \"::\"\n"),
        (
            false,
            "name: six\naddress: \"::\"\nsocket: { v6only: false }\n",
        ),
    ] {
        for (model, _dir, bin) in build_all(spec) {
            let server = start(&bin);
            let port = server.addr.port();
            assert!(
                TcpStream::connect(("::1", port)).is_ok(),
                "{model}: IPv6 peer refused"
            );
            let v4 = TcpStream::connect(("127.0.0.1", port));
            assert_eq!(
                v4.is_ok(),
                !v6only,
                "{model} v6only={v6only}: IPv4 connect {v4:?}"
            );
            server
                .stop(Duration::from_secs(5))
                .check()
                .unwrap_or_else(|e| panic!("{model}: {e}"));
        }
    }
}

/// Urgent data does not stall an echo: 100 × A, one B sent with MSG_OOB, 100 × C in one
/// corked burst come back whole and in order (the urgent byte is read inline), with no more
/// input from the peer to wake the server.
#[test]
fn urgent_data_is_echoed_inline_without_stalling() {
    use std::os::fd::AsRawFd;
    for (model, _dir, bin) in build_all("name: urgent\n") {
        let server = start(&bin);
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let fd = stream.as_raw_fd();
        let set_cork = |on: libc::c_int| {
            // SAFETY: a live socket and an int option of the right size.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_CORK,
                    (&on as *const libc::c_int).cast(),
                    4,
                )
            };
            assert_eq!(rc, 0);
        };
        set_cork(1);
        stream.write_all(&[b'A'; 100]).unwrap();
        // SAFETY: sends one byte from a live buffer on a live socket.
        let sent = unsafe { libc::send(fd, b"B".as_ptr().cast(), 1, libc::MSG_OOB) };
        assert_eq!(sent, 1);
        stream.write_all(&[b'C'; 100]).unwrap();
        set_cork(0);
        let mut expected = vec![b'A'; 100];
        expected.push(b'B');
        expected.extend([b'C'; 100]);
        let mut got = vec![0u8; expected.len()];
        stream
            .read_exact(&mut got)
            .unwrap_or_else(|e| panic!("{model}: stalled: {e}"));
        assert_eq!(got, expected, "{model}");
        drop(stream);
        server
            .stop(Duration::from_secs(5))
            .check()
            .unwrap_or_else(|e| panic!("{model}: {e}"));
    }
}

/// The poll and epoll servers of C and Rust: the models whose workers share a port through
/// SO_REUSEPORT and shed with a spare descriptor.
const EVENT_LOOP_TARGETS: [(&str, &str); 4] = [
    ("c", "poll"),
    ("c", "epoll"),
    ("rust", "poll"),
    ("rust", "epoll"),
];

/// Up to `max` connections that the server has not accepted, held open; fewer when the
/// backlog is full, which is pressure enough.
fn fill_backlog(addr: std::net::SocketAddr, max: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..max {
        match TcpStream::connect(addr) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    held
}

/// Whether the server closed this peer without a word: EOF or a reset, read at once.
fn was_shed(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    stream.set_nonblocking(true).unwrap();
    match (&*stream).read(&mut byte) {
        Ok(n) => n == 0,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// Four workers on one port under a low descriptor limit, 300 peers: between giving up its
/// spare descriptor and reopening it a worker can lose the number to another, which once left
/// it spinning at 100 % CPU. Now no interleaving spins, and the server recovers.
#[test]
fn emfile_with_several_workers_does_not_spin() {
    let spec =
        "name: fds4\nsocket: { reuseport: true }\nserver: { workers: 4, idle_timeout_ms: 0 }\n";
    let built = build_on(spec, &EVENT_LOOP_TARGETS);
    for (model, _dir, bin) in built {
        let server = RunningServer::start_with_fd_limit(
            &bin,
            &["-p", "0"],
            Duration::from_secs(10),
            Some(64),
        )
        .unwrap();
        for episode in 1..=2 {
            let mut held = fill_backlog(server.addr, 300);
            std::thread::sleep(Duration::from_millis(300));
            let spent = server.cpu_spent_over(Duration::from_secs(1)).unwrap();
            assert!(
                spent < Duration::from_millis(300),
                "{model}: {spent:?} of CPU in 1 s while out of descriptors"
            );
            // Shed peers are told at once (EOF or reset) rather than left in the backlog; in
            // the second episode too, since each worker takes its spare descriptor again
            // (once, a worker whose spare number another worker took never shed again).
            let shed = held.iter().filter(|s| was_shed(s)).count();
            assert!(
                shed > 0,
                "{model}: episode {episode}: none of {} waiting peers was shed",
                held.len()
            );
            held.clear();
            std::thread::sleep(Duration::from_millis(300));
        }
        serves_again_and_logged(server, &[64 * 1024; 4], &model, "out of file descriptors");
    }
}

/// Defect 15, made deterministic: when the number a worker freed to shed a peer is taken by
/// another thread before the worker reopens its spare (here an LD_PRELOAD shim fails that open
/// with EMFILE, once), the worker must still shed in a second episode. The race itself is too
/// narrow to hit on demand with real workers.
#[test]
fn a_spare_descriptor_taken_by_another_thread_is_not_lost() {
    let shim_dir = tempfile::tempdir().unwrap();
    let shim = shim_dir.path().join("spare_thief.so");
    let built_shim = Command::new("gcc")
        .args([
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o",
        ])
        .arg(&shim)
        .arg(root().join("tests/fixtures/spare-thief/spare_thief.c"))
        .arg("-ldl")
        .output()
        .unwrap();
    assert!(
        built_shim.status.success(),
        "{}",
        String::from_utf8_lossy(&built_shim.stderr)
    );
    let spec = "name: spare1\nserver: { workers: 1, idle_timeout_ms: 0 }\n";
    for (model, _dir, bin) in build_on(spec, &EVENT_LOOP_TARGETS) {
        let launch = sockgen::proof::harness::Launch {
            max_fds: Some(64),
            env: vec![("LD_PRELOAD".to_string(), shim.display().to_string())],
            ..Default::default()
        };
        let server =
            RunningServer::launch(&bin, &["-p", "0"], Duration::from_secs(10), &launch).unwrap();
        for episode in 1..=2 {
            let mut held = fill_backlog(server.addr, 200);
            std::thread::sleep(Duration::from_millis(400));
            let shed = held.iter().filter(|s| was_shed(s)).count();
            assert!(
                shed > 0,
                "{model}: episode {episode}: none of {} waiting peers was shed",
                held.len()
            );
            held.clear();
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// Under an address-space limit, 1,500 connections to a thread-per-connection server: the
/// threads and buffers that do not fit are refused (the connection is shed), the process does
/// not abort, and it serves again once the load is gone.
#[test]
fn blocking_servers_shed_connections_under_memory_pressure() {
    const BLOCKING: [(&str, &str); 2] = [("c", "blocking"), ("rust", "blocking")];
    let built = build_on("name: tight\nserver: { idle_timeout_ms: 0 }\n", &BLOCKING);
    for (model, _dir, bin) in built {
        let launch = sockgen::proof::harness::Launch {
            max_address_space: Some(150 << 20),
            ..Default::default()
        };
        let server =
            RunningServer::launch(&bin, &["-p", "0"], Duration::from_secs(10), &launch).unwrap();
        let mut held = Vec::new();
        for _ in 0..1500 {
            match TcpStream::connect(server.addr) {
                Ok(mut s) => {
                    let _ = s.write_all(b"x");
                    held.push(s);
                }
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        held.clear();
        std::thread::sleep(Duration::from_millis(500));
        serves_again_and_logged(
            server,
            &[4096; 4],
            &model,
            "cannot start a connection thread",
        );
    }
}

/// `log: ops` logs every socket operation as one `key=value` line; without it the logging
/// is compiled out (no trace of it in the generated code).
#[test]
fn log_ops_logs_every_socket_operation_and_is_compiled_out_otherwise() {
    for (protocol, expected) in [
        (
            "tcp",
            &[
                "op=socket",
                "op=setsockopt",
                "op=bind",
                "op=listen",
                "op=accept",
                "op=recv",
                "op=send",
                "op=close",
            ][..],
        ),
        // Event loops batch datagrams (recvmmsg/sendmmsg); blocking and io_uring take one.
        ("udp", &["op=socket", "op=bind", "op=recv", "op=send"][..]),
    ] {
        for (model, _dir, bin) in
            build_all(&format!("name: traced\nprotocol: {protocol}\nlog: ops\n"))
        {
            let server = start(&bin);
            if protocol == "tcp" {
                let mut s = TcpStream::connect(server.addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s.write_all(b"trace").unwrap();
                let mut buf = [0u8; 5];
                s.read_exact(&mut buf).unwrap();
            } else {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s.send_to(b"trace", server.addr).unwrap();
                let mut buf = [0u8; 16];
                s.recv_from(&mut buf).unwrap();
            }
            std::thread::sleep(Duration::from_millis(100));
            let stop = server.stop(Duration::from_secs(5));
            stop.check().unwrap_or_else(|e| panic!("{model}: {e}"));
            for op in expected {
                assert!(
                    stop.stderr.contains(op),
                    "{model} {protocol}: no {op} in\n{}",
                    stop.stderr
                );
            }
            assert!(
                stop.stderr
                    .lines()
                    // Batched UDP counts datagrams per call instead of bytes.
                    .any(|l| l.contains("result=ok")
                        && (l.contains("bytes=5") || l.contains("datagrams=1"))),
                "{model}: {}",
                stop.stderr
            );
        }
    }
    for lang in ["c", "rust", "winsock"] {
        for protocol in ["tcp", "udp"] {
            let source = SourceFile::from_text(
                "quiet.yaml",
                format!("name: quiet\nprotocol: {protocol}\n"),
                Format::Yaml,
            );
            let target = Overrides {
                lang: Some(lang.parse().unwrap()),
                model: None,
            };
            let plan = sockgen::plan_source(&source, target).unwrap();
            let code = sockgen::render::render(&plan, sockgen::Layout::SingleFile)
                .unwrap()
                .remove(0)
                .contents;
            // C and Winsock C: OP_LOG is `((void)0)`; Rust: `op_log!` expands to nothing. Neither output
            // keeps the code that formats a line.
            let machinery = if lang != "rust" {
                "static void op_log("
            } else {
                "fn op_result"
            };
            assert!(
                !code.contains(machinery),
                "{lang} {protocol}: operation logging left in the default output"
            );
        }
    }
}

fn int_option(fd: i32, level: i32, name: i32) -> i32 {
    let mut value: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid for getsockopt to write an int into.
    let rc =
        unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut i32).cast(), &mut len) };
    assert_eq!(rc, 0, "getsockopt {level}/{name}");
    value
}

/// The Linux servers set TCP_NODELAY, keepalive and SO_LINGER once, on the listener, and rely
/// on accepted connections inheriting them: proven here on this kernel with a listener of our
/// own, and by the generated servers' `log: ops` (no setsockopt after the first accept).
#[test]
fn accepted_connections_inherit_the_listeners_options() {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fd = listener.as_raw_fd();
    let set = |level: i32, name: i32, value: i32| {
        // SAFETY: an int option on a socket we own.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
    };
    set(libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 77);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 7);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 5,
    };
    // SAFETY: a struct linger for SO_LINGER on a socket we own.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let a = accepted.as_raw_fd();
    assert_eq!(int_option(a, libc::IPPROTO_TCP, libc::TCP_NODELAY), 1);
    assert_eq!(int_option(a, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
    assert_eq!(int_option(a, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 77);
    assert_eq!(int_option(a, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 7);
    assert_eq!(int_option(a, libc::IPPROTO_TCP, libc::TCP_KEEPCNT), 3);
    let mut got = libc::linger {
        l_onoff: 0,
        l_linger: 0,
    };
    let mut len = std::mem::size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: got and len are valid for a struct linger.
    let rc = unsafe {
        libc::getsockopt(
            a,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&mut got as *mut libc::linger).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0);
    assert_eq!((got.l_onoff != 0, got.l_linger), (true, 5));

    let spec = "name: inherit\nlog: ops\nsocket: { nodelay: true, keepalive: { idle_s: 60, interval_s: 10, count: 5 } }\n";
    for (model, _dir, bin) in build_linux(spec) {
        let server = RunningServer::start(&bin, &["-p", "0"], Duration::from_secs(10)).unwrap();
        load::tcp_echo(server.addr, &[100; 3], 3).unwrap_or_else(|e| panic!("{model}: {e}"));
        let outcome = server.stop(Duration::from_secs(5));
        outcome.check().unwrap_or_else(|e| panic!("{model}: {e}"));
        let log = &outcome.stderr;
        let first_accept = log
            .find("op=accept")
            .unwrap_or_else(|| panic!("{model}: no accept logged: {log}"));
        assert!(
            log[..first_accept].contains("op=setsockopt"),
            "{model}: the listener's options were not logged: {log}"
        );
        assert!(
            !log[first_accept..].contains("op=setsockopt"),
            "{model}: options set per connection: {log}"
        );
    }
}
