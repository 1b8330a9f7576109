//! Failures a socket loop must survive, on every language and model, each followed by the same
//! checks: the server still serves byte-exact, its descriptors are back to where they were, it
//! did not spin, and SIGTERM still gives exit status 0. (More scenarios live in loopback.rs and
//! contract.rs; these are the ones they do not cover.)

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sockgen::proof::{self, load, RunningServer};
use sockgen::source::{Format, SourceFile};
use sockgen::Target;

const TARGETS: [(&str, &str); 6] = [
    ("c", "blocking"),
    ("c", "poll"),
    ("c", "epoll"),
    ("rust", "blocking"),
    ("rust", "poll"),
    ("rust", "epoll"),
];

fn build_all(spec: &str, group: &str) -> Vec<(String, PathBuf)> {
    proof::run_parallel(&TARGETS, 2, |&(lang, model)| {
        let source = SourceFile::from_text("fault.yaml", spec, Format::Yaml);
        let target = Target {
            lang: Some(lang.parse().unwrap()),
            model: Some(model.parse().unwrap()),
        };
        let plan = sockgen::plan_source(&source, target).unwrap_or_else(|e| panic!("{e}"));
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(group)
            .join(format!("{lang}-{model}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let bin = proof::build(&plan, &dir).unwrap_or_else(|(stage, e)| panic!("{stage}: {e}"));
        (format!("{lang}/{model}"), bin)
    })
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Runs `fault` against a fresh server, then the common checks.
fn survive(label: &str, bin: &std::path::Path, fault: impl FnOnce(&RunningServer)) {
    let server = RunningServer::start(bin, &["-p", "0"], Duration::from_secs(10)).unwrap();
    let pid = server.pid().unwrap();
    // One echo first, so lazily made resources exist before the baseline is taken.
    load::tcp_echo(server.addr, &[16], 1).unwrap_or_else(|e| panic!("{label}: before: {e}"));
    std::thread::sleep(Duration::from_millis(100));
    let baseline = open_fds(pid);
    fault(&server);
    // Descriptors back to baseline once the peers are gone (closing takes a moment).
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds(pid) > baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        open_fds(pid) <= baseline,
        "{label}: {} descriptors open after the fault, {baseline} before",
        open_fds(pid)
    );
    let cpu = server.cpu_time().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Threads that ended take their time out of the sum: never negative.
    let idle = server.cpu_time().unwrap().saturating_sub(cpu);
    assert!(
        idle < Duration::from_millis(100),
        "{label}: {idle:?} of CPU in 0.5 s of quiet"
    );
    load::tcp_echo(server.addr, &[1, 4096, 1 << 20], 9)
        .unwrap_or_else(|e| panic!("{label}: after the fault: {e}"));
    server
        .stop(Duration::from_secs(5))
        .check()
        .unwrap_or_else(|e| panic!("{label}: {e}"));
}

#[test]
fn one_byte_writes_a_single_16_mib_write_and_vanishing_clients() {
    for (label, bin) in build_all("name: faults\n", "faults-data") {
        survive(&label, &bin, |server| {
            // 2,000 one-byte writes, each its own segment.
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.set_nodelay(true).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let payload = load::Rng::new(3).bytes(2000);
            for b in &payload {
                s.write_all(std::slice::from_ref(b)).unwrap();
            }
            let mut got = vec![0u8; payload.len()];
            s.read_exact(&mut got).unwrap();
            assert!(got == payload, "{label}: one-byte writes");
            // One 16 MiB write, read back concurrently.
            let big = load::Rng::new(4).bytes(16 << 20);
            let mut writer = s.try_clone().unwrap();
            let expected = big.clone();
            let sender = std::thread::spawn(move || {
                writer.write_all(&big).unwrap();
                writer.shutdown(Shutdown::Write).unwrap();
            });
            let mut echoed = Vec::new();
            s.read_to_end(&mut echoed).unwrap();
            sender.join().unwrap();
            assert!(
                echoed == expected,
                "{label}: 16 MiB write, {} bytes back",
                echoed.len()
            );
            // Clients that send and vanish without reading (their close resets).
            for _ in 0..20 {
                let mut v = TcpStream::connect(server.addr).unwrap();
                let _ = v.write_all(&[7u8; 256 * 1024]);
            }
        });
    }
}

#[test]
fn connect_flood_stop_and_continue_and_sigterm_under_load() {
    for (label, bin) in build_all(
        "name: flood\nserver: { backlog: 16, idle_timeout_ms: 0 }\n",
        "faults-flood",
    ) {
        survive(&label, &bin, |server| {
            // More connections than the backlog holds, all at once, then gone.
            let flood: Vec<_> = (0..400)
                .filter_map(|_| {
                    TcpStream::connect_timeout(&server.addr, Duration::from_millis(200)).ok()
                })
                .collect();
            drop(flood);
            // SIGSTOP while a peer is sending; the bytes wait in the kernel; SIGCONT resumes.
            let pid = server.pid().unwrap() as i32;
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            s.write_all(b"while stopped").unwrap();
            std::thread::sleep(Duration::from_millis(300));
            unsafe { libc::kill(pid, libc::SIGCONT) };
            let mut got = [0u8; 13];
            s.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"while stopped", "{label}");
        });
        // SIGTERM while 32 connections stream: exit 0, promptly.
        let server = RunningServer::start(&bin, &["-p", "0"], Duration::from_secs(10)).unwrap();
        let addr = server.addr;
        let streams: Vec<_> = (0..32)
            .map(|i| {
                std::thread::spawn(move || {
                    let Ok(mut s) = TcpStream::connect(addr) else {
                        return; // the server already stopped
                    };
                    let data = vec![i as u8; 64 * 1024];
                    let mut buf = vec![0u8; 64 * 1024];
                    for _ in 0..10_000 {
                        if s.write_all(&data).is_err() || s.read(&mut buf).unwrap_or(0) == 0 {
                            break;
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let outcome = server.stop(Duration::from_secs(5));
        outcome
            .check()
            .unwrap_or_else(|e| panic!("{label}: SIGTERM under load: {e}"));
        for s in streams {
            let _ = s.join();
        }
    }
}

#[test]
fn a_udp_burst_beyond_the_receive_buffer_loses_datagrams_not_the_server() {
    for (label, bin) in build_all("name: burst\nprotocol: udp\n", "faults-udp") {
        let server = RunningServer::start(&bin, &["-p", "0"], Duration::from_secs(10)).unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let datagram = [0x55u8; 1400];
        let mut sent = 0;
        for _ in 0..20_000 {
            if socket.send_to(&datagram, server.addr).is_ok() {
                sent += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        let mut buf = [0u8; 2048];
        let mut replies = 0;
        while let Ok((n, _)) = socket.recv_from(&mut buf) {
            assert_eq!(&buf[..n], &datagram[..], "{label}: a reply was altered");
            replies += 1;
        }
        assert!(
            replies <= sent,
            "{label}: {replies} replies to {sent} datagrams"
        );
        // Still answering, exactly once.
        socket.set_nonblocking(false).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket.send_to(b"after", server.addr).unwrap();
        loop {
            let (n, _) = socket
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            if &buf[..n] == b"after" {
                break;
            }
        }
        server
            .stop(Duration::from_secs(5))
            .check()
            .unwrap_or_else(|e| panic!("{label}: {e}"));
    }
}
