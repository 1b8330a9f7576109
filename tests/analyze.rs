//! `sockgen explain` and `sockgen analyze`: real sockets on loopback in known states, saved
//! ss/netstat output parsed to the expected report, and malformed input rejected clearly.

mod common;

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sockgen::troubleshoot::analyze::{self, Filter};

/// A listener with a backlog of 1 (std always asks for 128), so its accept queue can fill.
fn listener_with_backlog_1() -> std::net::TcpListener {
    // SAFETY: plain socket calls on a descriptor we own; ownership passes to TcpListener.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len),
            0
        );
        assert_eq!(libc::listen(fd, 1), 0);
        std::net::TcpListener::from_raw_fd(fd)
    }
}

fn wait_for(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn live_sockets_in_every_state_are_found() {
    let listener = listener_with_backlog_1();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let port = addr.port();
    let connect = || TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();

    // CLOSE_WAIT: the peer closed, we keep our accepted socket open.
    let a = connect();
    let (a_server, _) = listener.accept().unwrap();
    drop(a);
    // TIME_WAIT: the client closes first, then the server; the client side lingers.
    let b = connect();
    let (b_server, _) = listener.accept().unwrap();
    b.shutdown(Shutdown::Both).unwrap();
    drop(b);
    std::thread::sleep(Duration::from_millis(50));
    drop(b_server);
    // ESTABLISHED both ways.
    let mut c = connect();
    let (c_server, _) = listener.accept().unwrap();
    c.write_all(b"hello").unwrap();
    // A full accept queue: backlog 1 holds two connections nobody accepts.
    let d = connect();
    let e = connect();

    let mut report = None;
    wait_for(|| {
        let r = analyze::analyze(
            &analyze::read_live().unwrap(),
            &Filter {
                port: Some(port),
                ..Filter::default()
            },
            None,
        );
        let done = r.artifacts.states.contains_key("TIME_WAIT")
            && r.artifacts.states.contains_key("CLOSE_WAIT");
        report = Some(r);
        done
    });
    let report = report.unwrap();
    let states = &report.artifacts.states;
    assert_eq!(states.get("LISTEN"), Some(&1), "{states:?}");
    assert!(
        states.get("ESTABLISHED").copied().unwrap_or(0) >= 2,
        "{states:?}"
    );
    assert_eq!(states.get("CLOSE_WAIT"), Some(&1), "{states:?}");
    assert_eq!(states.get("TIME_WAIT"), Some(&1), "{states:?}");
    let codes: Vec<&str> = report.findings.iter().map(|f| f.code).collect();
    for code in [
        "accept_queue_full",
        "close_wait",
        "time_wait",
        "port_in_use",
    ] {
        assert!(
            codes.contains(&code),
            "missing {code}: {}",
            analyze::render(&report)
        );
    }
    assert_eq!(report.status, "critical");
    assert_eq!(
        report.artifacts.listeners[0].backlog, 1,
        "backlog from sock_diag"
    );
    assert_eq!(report.artifacts.listeners[0].accept_queue, 2);
    assert_eq!(report.address.as_deref(), Some(addr.to_string().as_str()));
    assert!(report
        .recommendations
        .iter()
        .any(|r| r.contains("somaxconn")));

    // The same through the CLI, as exactly the documented JSON structure.
    let out = sockgen(&["analyze", "--port", &port.to_string(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "address",
            "artifacts",
            "findings",
            "operation",
            "recommendations",
            "status",
            "target"
        ]
    );
    assert_eq!(doc["operation"], "analyze");
    assert_eq!(doc["target"], format!("port {port}"));

    // --pid narrows to this test process's own sockets.
    let out = sockgen(&[
        "analyze",
        "--pid",
        &std::process::id().to_string(),
        "--port",
        &port.to_string(),
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["artifacts"]["states"]["LISTEN"], 1, "{doc}");
    assert!(
        doc["artifacts"]["states"].get("TIME_WAIT").is_none(),
        "TIME_WAIT sockets belong to no process"
    );
    drop((a_server, c, c_server, d, e));
}

#[test]
fn saved_outputs_parse_to_the_expected_reports() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    let _guard = settings.bind_to_scope();
    for name in analyze_fixtures() {
        let path = format!("tests/fixtures/analyze/{name}.txt");
        let text = std::fs::read_to_string(root().join(&path)).unwrap();
        let snapshot = analyze::parse_saved(&text, &path).unwrap_or_else(|e| panic!("{e}"));
        let port = if name.starts_with("ss") {
            Some(8080)
        } else {
            None
        };
        let report = analyze::analyze(
            &snapshot,
            &Filter {
                port,
                ..Filter::default()
            },
            None,
        );
        insta::assert_snapshot!(
            format!("analyze__{}", name.replace('-', "_")),
            serde_json::to_string_pretty(&report).unwrap()
        );
    }
}

/// A listener's Send-Q is its backlog, not bytes: the data totals leave listeners out, and
/// `ss -tan state listening` (no State column) is read.
#[test]
fn listener_backlogs_are_not_counted_as_queued_data() {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/analyze/ss-state-listening.txt"))
            .unwrap();
    let snapshot = analyze::parse_saved(&text, "listening").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snapshot.sockets.len(), 3);
    assert!(snapshot.sockets.iter().all(|s| s.state == "LISTEN"));
    let report = analyze::analyze(&snapshot, &Filter::default(), None);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["artifacts"]["send_q_total"], 0, "{json:#}");
    assert_eq!(json["artifacts"]["recv_q_total"], 0, "{json:#}");
    // Other rows without a State column cannot be read, and say why.
    let error = analyze::parse_saved(
        "Recv-Q Send-Q Local Address:Port Peer Address:Port\n0 0 127.0.0.1:1 127.0.0.1:2\n",
        "x",
    )
    .unwrap_err();
    assert!(error.contains("no State column"), "{error}");
}

#[test]
fn malformed_input_is_a_clear_error() {
    let cases = [
        ("malformed-ss-queue", "line 2: bad queue `zero`"),
        ("malformed-netstat-state", "line 2: unknown state `DANCING`"),
        ("malformed-unknown", "unrecognised input"),
        (
            "malformed-proc-short",
            "line 2: expected at least 10 columns",
        ),
    ];
    for (name, expected) in cases {
        let path = format!("tests/fixtures/analyze/{name}.txt");
        let out = sockgen(&["analyze", "--from", &path]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
    // From stdin, and binary garbage: an error, never a panic.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sockgen"))
        .args(["analyze", "--from", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"State Recv-Q\n\xff\xfe\x00garbage\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = sockgen(&[
        "analyze",
        "--from",
        "tests/fixtures/analyze/ss-tanmi.txt",
        "--pid",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pid needs live data"));
}

#[test]
fn explain_knows_errno_and_winsock_codes() {
    let out = sockgen(&["explain", "EAGAIN"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(
            "EAGAIN (11 on Linux), also EWOULDBLOCK ↔ WSAEWOULDBLOCK (10035 on Windows)"
        ),
        "{text}"
    );
    assert!(text.contains("In sockgen's generated code:"));
    for code in ["10054", "WSAECONNRESET", "econnreset", "104"] {
        let out = sockgen(&["explain", code]);
        assert!(out.status.success(), "{code}");
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("ECONNRESET (104 on Linux)"),
            "{code}"
        );
    }
    let out = sockgen(&["explain", "EPIPE", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["linux"], 32);
    assert!(doc["winsock"].is_null());
    assert!(doc["platform_note"]
        .as_str()
        .unwrap()
        .contains("WSAECONNABORTED"));
    let out = sockgen(&["explain", "EBOGUS"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown error code `EBOGUS`"));
}

#[test]
fn check_port_free_reports_a_taken_port_before_a_server_would_fail() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("s.yaml");
    std::fs::write(&spec, format!("name: busy\nport: {port}\n")).unwrap();
    let out = sockgen(&["check", spec.to_str().unwrap(), "--port-free"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("tcp port {port} on 127.0.0.1 cannot be bound now")),
        "{err}"
    );
    assert!(
        err.contains(&format!("held by pid {}", std::process::id())),
        "{err}"
    );
    assert!(err.contains("s.yaml:2:7"), "{err}");
    drop(taken);
    let out = sockgen(&["check", spec.to_str().unwrap(), "--port-free"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("is free"));
}
