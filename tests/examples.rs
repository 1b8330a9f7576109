//! The example protocols in specs/ (a RESP key-value server and an HTTP/1.1 server, each
//! written only in its handler files) are built the way docs/contract.md tells a user to, for every
//! language and model, and proven with clients sockgen did not write: redis-cli,
//! redis-benchmark, curl and ab.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::linux_targets;
use sockgen::proof::{self, RunningServer};
use sockgen::{Overrides, SourceFile};

/// The user's files of an example for one language: everything under specs/EXAMPLE/LANG.
fn user_files(example: &str, lang: &str) -> Vec<(String, String)> {
    let base = common::root().join("specs").join(example).join(lang);
    let mut files = Vec::new();
    let mut stack = vec![base.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path
                    .strip_prefix(&base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    files
}

/// Builds the example as `cp -r specs/EXAMPLE/LANG DIR && sockgen render SPEC -o DIR` would.
fn build_example(example: &str, spec: &str) -> Vec<(String, PathBuf)> {
    proof::run_parallel(&linux_targets(), 2, |&(lang, model)| {
        let spec_path = Path::new("specs").join(example).join(spec);
        let source =
            common::in_root(|| SourceFile::read(&spec_path)).unwrap_or_else(|e| panic!("{e}"));
        let target = Overrides {
            lang: Some(lang.parse().unwrap()),
            model: Some(model.parse().unwrap()),
        };
        let plan = sockgen::plan_source(&source, target).unwrap_or_else(|e| panic!("{e}"));
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("example-{example}"))
            .join(format!("{lang}-{model}"));
        let _ = std::fs::remove_dir_all(&dir);
        let bin = proof::build_project(&plan, &dir, &user_files(example, lang))
            .unwrap_or_else(|(stage, e)| panic!("{example} {lang}/{model} {stage}: {e}"));
        (format!("{lang}/{model}"), bin)
    })
}

fn start(bin: &Path) -> RunningServer {
    RunningServer::start(bin, &["-p", "0"], Duration::from_secs(10)).unwrap()
}

/// Runs a client program; returns its stdout, failing the test with its stderr otherwise.
fn client(program: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e} (./scripts/test.sh installs it)"));
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn redis(addr: SocketAddr, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let port = addr.port().to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", port.as_str()];
    all.extend_from_slice(args);
    client("redis-cli", &all, stdin)
}

#[test]
fn resp_kv_serves_redis_clients() {
    for (label, bin) in build_example("resp-kv", "resp_kv.yaml") {
        let server = start(&bin);
        let addr = server.addr;
        assert_eq!(redis(addr, &["PING"], b""), b"PONG\n", "{label}");
        assert_eq!(
            redis(addr, &["SET", "greeting", "hello world"], b""),
            b"OK\n",
            "{label}"
        );
        assert_eq!(
            redis(addr, &["GET", "greeting"], b""),
            b"hello world\n",
            "{label}"
        );
        assert_eq!(redis(addr, &["GET", "missing"], b""), b"\n", "{label}");
        let error = redis(addr, &["NOPE"], b"");
        assert!(
            error.starts_with(b"ERR unknown command 'NOPE'"),
            "{label}: {}",
            String::from_utf8_lossy(&error)
        );
        // Binary-safe: NUL, CR LF and every byte value, read back raw.
        let binary: Vec<u8> = (0..=255u8).chain(b"\r\n\0end".iter().copied()).collect();
        assert_eq!(
            redis(addr, &["-x", "SET", "binary"], &binary),
            b"OK\n",
            "{label}"
        );
        let mut expected = binary.clone();
        expected.push(b'\n');
        assert!(
            redis(addr, &["--raw", "GET", "binary"], b"") == expected,
            "{label}: binary value changed"
        );
        // A 10 MB value, split across many reads on the way in and many writes on the way out.
        let big = sockgen::proof::load::Rng::new(7).bytes(10_000_000);
        assert_eq!(redis(addr, &["-x", "SET", "big"], &big), b"OK\n", "{label}");
        let got = redis(addr, &["--raw", "GET", "big"], b"");
        assert!(
            got.len() == big.len() + 1 && got[..big.len()] == big[..],
            "{label}: 10 MB value differs"
        );
        // 10,000 pipelined commands through --pipe (mass insertion).
        let mut pipe = Vec::new();
        for i in 0..10_000 {
            let (key, value) = (format!("key:{i}"), format!("value {i}"));
            write!(
                pipe,
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
                key.len(),
                value.len()
            )
            .unwrap();
        }
        let report = String::from_utf8(redis(addr, &["--pipe"], &pipe)).unwrap();
        assert!(
            report.contains("errors: 0, replies: 10000"),
            "{label}: {report}"
        );
        assert_eq!(
            redis(addr, &["GET", "key:9999"], b""),
            b"value 9999\n",
            "{label}"
        );
        assert_eq!(redis(addr, &["DBSIZE"], b""), b"10003\n", "{label}");
        // redis-benchmark, pipelined 16 deep.
        let port = addr.port().to_string();
        let bench = client(
            "redis-benchmark",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "set,get",
                "-n",
                "5000",
                "-P",
                "16",
                "-c",
                "8",
                "-q",
            ],
            b"",
        );
        let bench = String::from_utf8_lossy(&bench);
        assert!(
            bench.contains("SET:") && bench.contains("GET:"),
            "{label}: {bench}"
        );
        server
            .stop(Duration::from_secs(5))
            .check()
            .unwrap_or_else(|e| panic!("{label}: {e}"));
    }
}

fn curl(args: &[&str]) -> Vec<u8> {
    client("curl", &[&["-sS", "--max-time", "20"], args].concat(), b"")
}

/// Reads HTTP/1.1 responses with Content-Length bodies until EOF; returns (status, body) pairs.
fn read_responses(stream: &mut TcpStream) -> Vec<(String, Vec<u8>)> {
    let mut data = Vec::new();
    stream.read_to_end(&mut data).unwrap();
    let mut responses = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let end = data[at..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete header")
            + at;
        let head = String::from_utf8_lossy(&data[at..end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim().parse().ok())
            .expect("Content-Length");
        let status = head.lines().next().unwrap_or("").to_string();
        responses.push((status, data[end + 4..end + 4 + length].to_vec()));
        at = end + 4 + length;
    }
    responses
}

#[test]
fn http_hello_serves_curl_and_ab() {
    for (label, bin) in build_example("http-hello", "http_hello.yaml") {
        let server = start(&bin);
        let base = format!("http://{}", server.addr);
        // Two URLs on one kept-alive connection: the second needs no new connect.
        let out = curl(&[
            &format!("{base}/"),
            &format!("{base}/nope"),
            "-w",
            "[%{http_code} %{num_connects}]",
        ]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Hello, world!\n[200 1]not found\n[404 0]",
            "{label}"
        );
        let body = curl(&[&format!("{base}/bytes/10000000")]);
        assert_eq!(body.len(), 10_000_000, "{label}");
        assert!(
            body.iter()
                .enumerate()
                .all(|(i, &b)| b == b'a' + (i % 26) as u8),
            "{label}: body differs"
        );
        assert_eq!(
            curl(&["--data-binary", "posted body", &format!("{base}/echo")]),
            b"posted body",
            "{label}"
        );
        let head = String::from_utf8(curl(&["-I", &format!("{base}/")])).unwrap();
        assert!(
            head.starts_with("HTTP/1.1 200 OK") && head.contains("Content-Length: 14"),
            "{label}: {head}"
        );
        // ab with keep-alive (HTTP/1.0 + Connection: keep-alive), and without.
        for keep_alive in [true, false] {
            let url = format!("{base}/");
            let mut args = vec!["-q", "-n", "2000", "-c", "10"];
            if keep_alive {
                args.push("-k");
            }
            args.push(&url);
            let report = String::from_utf8(client("ab", &args, b"")).unwrap();
            assert!(
                report.contains("Complete requests:      2000"),
                "{label}: {report}"
            );
            assert!(
                report.contains("Failed requests:        0"),
                "{label}: {report}"
            );
            if keep_alive {
                assert!(
                    report.contains("Keep-Alive requests:    2000"),
                    "{label}: {report}"
                );
            }
        }
        // 100 pipelined requests in one write, a streamed body among them, the last one
        // asking to close: every response, in order, then EOF.
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut pipeline = Vec::new();
        for i in 0..99 {
            let path = if i == 50 { "/bytes/100000" } else { "/" };
            write!(pipeline, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        }
        pipeline.extend_from_slice(
            b"POST /echo HTTP/1.1\r\nContent-Length: 4\r\nConnection: close\r\n\r\nlast",
        );
        stream.write_all(&pipeline).unwrap();
        let responses = read_responses(&mut stream);
        assert_eq!(responses.len(), 100, "{label}");
        assert_eq!(responses[50].1.len(), 100_000, "{label}");
        assert_eq!(responses[99].1, b"last", "{label}");
        assert!(
            responses
                .iter()
                .all(|(status, _)| status == "HTTP/1.1 200 OK"),
            "{label}"
        );
        // One request split across many small reads.
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        for piece in b"GET / HTTP/1.1\r\nHost: split\r\nConnection: close\r\n\r\n".chunks(3) {
            stream.write_all(piece).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        let responses = read_responses(&mut stream);
        assert_eq!(
            responses,
            vec![("HTTP/1.1 200 OK".to_string(), b"Hello, world!\n".to_vec())],
            "{label}"
        );
        server
            .stop(Duration::from_secs(5))
            .check()
            .unwrap_or_else(|e| panic!("{label}: {e}"));
    }
}
