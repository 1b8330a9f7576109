//! `sockgen bench`, kept short: the load generator, CPU sampling, peers, JSON and the chart
//! work end to end, and corrupted echoes are counted as errors. The figures themselves are
//! benchmarks, never asserted as timings here.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use sockgen::proof::bench::{self, BenchConfig, Case, Contender};
use sockgen::proof::bench_idle;
use sockgen::proof::harness::RunningServer;

fn build_poll_echo(dir: &std::path::Path, patch: impl Fn(&str) -> String) -> std::path::PathBuf {
    let (_, code) = c_poll_echo("peer");
    compile_c(dir, "peer", &patch(&code))
}

#[test]
fn bench_runs_generated_servers_and_a_peer_with_json_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    let peer = build_poll_echo(dir.path(), |c| c.to_string());
    let chart = dir.path().join("chart.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_sockgen"))
        .current_dir(root())
        .args([
            "bench",
            "specs/echo-tcp.yaml",
            "--lang",
            "c",
            "--model",
            "epoll",
            "--connections",
            "3",
            "--sizes",
            "64,1000",
        ])
        .args([
            "--pipeline",
            "4",
            "--duration-ms",
            "300",
            "--warmup-ms",
            "100",
            "--no-stream",
            "--idle",
            "1000",
            "--json",
        ])
        .arg("--chart")
        .arg(&chart)
        .arg("--peer")
        .arg(format!("other={} -p {{port}}", peer.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4, "2 sizes × (c/epoll + peer)");
    for c in cases {
        assert_eq!(c["errors"], 0, "{c}");
        assert!(c["messages"].as_u64().unwrap() > 0, "{c}");
        assert!(c["server_cpu_ns_per_msg"].as_f64().unwrap() > 0.0, "{c}");
        assert!(
            c["p50_us"].as_f64().unwrap() <= c["p999_us"].as_f64().unwrap(),
            "{c}"
        );
        assert_eq!(c["case"]["pipeline"], 4);
    }
    assert_eq!(cases[0]["server"], "c/epoll");
    assert_eq!(cases[3]["server"], "other");
    for c in cases {
        assert!(c["connect_us_per_conn"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["server_rss_bytes_per_conn"].is_number(), "{c}");
    }
    let idle = doc["idle"].as_array().unwrap();
    assert_eq!(idle.len(), 2, "c/epoll and the peer: {doc:#}");
    for run in idle {
        assert_eq!(run["connections"], 1000, "{run}");
        assert!(run["setup_us_per_conn"].as_f64().unwrap() > 0.0, "{run}");
        // Each connection costs a generated server a few hundred bytes: a reading of nothing,
        // or of a page per connection, means the measurement is broken.
        let per_conn = run["rss_bytes_per_conn"].as_f64().unwrap();
        assert!((64.0..4096.0).contains(&per_conn), "{run}");
    }
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.starts_with("<svg")
            && svg.contains("c/epoll")
            && svg.contains("other (baseline)")
            && svg.contains("× the baseline")
            && svg.contains("memory per connection under load"),
        "{svg}"
    );
}

/// A spec whose language is winsock benches its three Windows models under Wine, and only
/// them: their figures compare with one another, not with Linux servers.
#[test]
fn bench_runs_winsock_servers_under_wine_when_the_spec_says_winsock() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("win.yaml");
    std::fs::write(&spec, "name: win\nlang: winsock\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sockgen"))
        .arg("bench")
        .arg(&spec)
        .args([
            "--connections",
            "4",
            "--sizes",
            "64",
            "--duration-ms",
            "300",
        ])
        .args([
            "--warmup-ms",
            "100",
            "--repeats",
            "1",
            "--no-stream",
            "--no-idle",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let servers: Vec<&str> = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["errors"], 0, "{c}");
            assert!(c["messages"].as_u64().unwrap() > 0, "{c}");
            c["server"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        servers,
        ["winsock/blocking", "winsock/poll", "winsock/iocp"],
        "{doc}"
    );
}

#[test]
fn the_load_generator_counts_corrupted_echoes_as_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broken = build_poll_echo(dir.path(), |c| corrupt_echo(c, "peer"));
    let server = RunningServer::start(&broken, &["-p", "0"], Duration::from_secs(10)).unwrap();
    let config = BenchConfig {
        warmup: Duration::from_millis(50),
        duration: Duration::from_millis(200),
        ..BenchConfig::default()
    };
    let result = bench::run_case(
        server.addr,
        Case {
            connections: 4,
            size: 64,
            pipeline: 1,
        },
        &config,
        |_| {},
    )
    .unwrap();
    assert_eq!(
        result.errors, 4,
        "every connection saw a corrupted echo: {result:?}"
    );
    assert_eq!(result.messages, 0);
    server.stop(Duration::from_secs(5)).check().unwrap();
}

#[test]
fn bench_rejects_what_it_cannot_measure() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sockgen"))
            .current_dir(root())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["bench", "specs/chargen-udp.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bench drives echo servers"));
    let out = run(&["bench", "specs/echo-tcp.yaml", "--connections", "0"]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(&["bench", "specs/echo-tcp.yaml", "--peer", "nope=true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("{port}"));
    let out = run(&["bench", "specs/echo-tcp.yaml", "--idle", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-idle"));
    // More connections than this process may hold descriptors for: refused before anything
    // is built, naming the limit.
    let out = run(&["bench", "specs/echo-tcp.yaml", "--idle", "1000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ulimit -Hn"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// UDP: generated servers and a UDP peer under the same load; every echo is checked, and the
/// peer's readiness is a probe datagram, not a connection.
#[test]
fn bench_drives_udp_echo_servers_and_a_udp_peer() {
    let (_peer_dir, peer, _) = build("name: udp_peer\nprotocol: udp\n", "c", "poll");
    let out = Command::new(env!("CARGO_BIN_EXE_sockgen"))
        .current_dir(root())
        .args([
            "bench",
            "specs/echo-udp.toml",
            "--lang",
            "c",
            "--model",
            "epoll",
        ])
        .args([
            "--connections",
            "8",
            "--sizes",
            "64,1400",
            "--pipeline",
            "2",
        ])
        .args([
            "--duration-ms",
            "300",
            "--warmup-ms",
            "100",
            "--repeats",
            "1",
            "--json",
        ])
        .arg("--peer")
        .arg(format!("other={} -p {{port}}", peer.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4, "two servers × two sizes: {doc:#}");
    for case in cases {
        assert!(case["messages"].as_u64().unwrap() > 0, "{case:#}");
        assert_eq!(case["errors"], 0, "{case:#}");
    }
    assert!(
        doc["streaming"].as_array().is_none_or(|s| s.is_empty()),
        "no streaming over UDP: {doc:#}"
    );
}

/// A UDP server that corrupts every other echo and drops every third datagram: corrupted
/// echoes are errors, missing ones are losses (UDP may drop), and neither stalls the loop.
#[test]
fn udp_bench_counts_corruption_as_errors_and_drops_as_losses() {
    let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = std::sync::Arc::clone(&stop);
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut count = 0u64;
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((n, peer)) = server.recv_from(&mut buf) else {
                continue;
            };
            count += 1;
            if count % 3 == 0 {
                continue;
            }
            if count % 2 == 0 {
                buf[n - 1] ^= 1;
            }
            let _ = server.send_to(&buf[..n], peer);
        }
    });
    let config = BenchConfig {
        warmup: Duration::from_millis(50),
        duration: Duration::from_millis(600),
        udp: true,
        ..BenchConfig::default()
    };
    let case = Case {
        connections: 2,
        size: 64,
        pipeline: 1,
    };
    let result = sockgen::proof::bench_udp::run_udp_case(addr, case, &config, |_| {}).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    echo.join().unwrap();
    assert!(
        result.errors > 0,
        "corrupted echoes not counted: {result:?}"
    );
    assert!(
        result.losses > 0,
        "dropped datagrams not counted: {result:?}"
    );
    assert!(result.messages > 0, "the loop stalled: {result:?}");
}

/// `--peer tokio` builds the peer from the sources sockgen carries, in a directory of its own,
/// not from the clone sockgen was built in (an installed binary outlives a moved clone); the
/// peer it builds echoes.
#[test]
fn the_tokio_peer_builds_from_the_sources_sockgen_carries() {
    use std::io::{Read, Write};
    let dir = common::root().join("target/test-tokio-peer");
    let command =
        sockgen::proof::bench::tokio_peer_command_in(&dir, false).unwrap_or_else(|e| panic!("{e}"));
    assert!(command.starts_with(dir.to_str().unwrap()), "{command}");
    let binary = command.split_whitespace().next().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut child = std::process::Command::new(binary)
        .args(["--port", &port.to_string()])
        .spawn()
        .unwrap();
    let mut stream = None;
    for _ in 0..100 {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    let mut stream = stream.expect("the tokio peer never listened");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    stream.write_all(b"hello").unwrap();
    let mut echoed = [0u8; 5];
    stream.read_exact(&mut echoed).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(&echoed, b"hello");
}

/// An idle connection costs an event-loop server at most 1 KiB of memory, in C and Rust: a
/// keep-alive server's clients mostly sit quiet, and one that kept a buffer for each would
/// spend hundreds of megabytes on 100,000 of them. Memory is counted, not timed, so this
/// holds on a busy machine as on an idle one. (A thread per connection costs its stack and
/// cannot: docs/benchmarks.md.)
#[test]
fn an_idle_connection_costs_an_event_loop_server_at_most_1_kib() {
    let spec = std::fs::read_to_string(root().join("specs/echo-tcp.yaml")).unwrap();
    for (lang, model) in [
        ("c", "poll"),
        ("c", "epoll"),
        ("c", "io_uring"),
        ("rust", "poll"),
        ("rust", "epoll"),
        ("rust", "io_uring"),
    ] {
        let (_dir, binary, _) = build(&spec, lang, model);
        let label = format!("{lang}/{model}");
        let run = bench_idle::run_idle(
            &Contender::Generated {
                label: label.clone(),
                binary: &binary,
            },
            2000,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            run.rss_bytes_per_conn > 0.0 && run.rss_bytes_per_conn <= 1024.0,
            "{label}: {run:?}"
        );
    }
}
