//! `sockgen verify DIR` proves the user's own program: a `render -o` project built with their
//! files, driven by commands of theirs (`--with`), started and stopped while connections
//! stream; a broken handler or a failing command fails, naming the check.

mod common;

use std::path::{Path, PathBuf};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `cp -r specs/EXAMPLE/LANG/* DIR && sockgen render SPEC --lang L --model M -o DIR`.
fn example_project(example: &str, spec: &str, lang: &str, model: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = common::root().join("specs").join(example).join(lang);
    copy_tree(&source, dir.path());
    let spec = format!("specs/{example}/{spec}");
    let out = common::sockgen(&[
        "render",
        &spec,
        "--lang",
        lang,
        "--model",
        model,
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target: PathBuf = to.join(path.file_name().unwrap());
        if path.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

fn verify(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["verify", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    common::sockgen(&args)
}

#[test]
fn the_resp_kv_project_verifies_with_redis_cli() {
    let project = example_project("resp-kv", "resp_kv.yaml", "c", "epoll");
    let out = verify(
        project.path(),
        &[
            "--lang",
            "c",
            "--with",
            "redis-cli -p {port} ping | grep -qx PONG",
            "--with",
            "redis-cli -p {port} set k v && test \"$(redis-cli -p {port} get k)\" = v",
            "--conversation",
            "specs/resp-kv/redis.conv",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("your handler: resp_kv_handler.c, resp_store.c, resp_store.h"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok   --with redis-cli -p {port} ping"),
        "{stdout}"
    );
    assert!(stdout.contains("connections stream"), "{stdout}");
    assert!(
        stdout.contains("ok   conversation specs/resp-kv/redis.conv: 4 connections × 50 × 3 exchanges, pipelined"),
        "{stdout}"
    );
}

#[test]
fn the_http_hello_rust_project_verifies_with_curl() {
    let project = example_project("http-hello", "http_hello.yaml", "rust", "epoll");
    let out = verify(
        project.path(),
        &[
            "--model",
            "epoll",
            "--with",
            "curl -sf http://{host}:{port}/ -o /dev/null",
            "--conversation",
            "specs/http-hello/http.conv",
            "--json",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let checks = doc["results"][0]["checks"].as_array().unwrap();
    assert_eq!(
        checks[0]["detail"].as_str().unwrap().split(';').next(),
        Some("your handler: src/main.rs")
    );
    assert!(checks
        .iter()
        .any(|c| c["name"].as_str().unwrap().starts_with("--with curl")));
    assert!(checks
        .iter()
        .any(|c| c["name"] == "conversation specs/http-hello/http.conv" && c["passed"] == true));
}

/// A C project `name` (custom handler, poll model) whose generated stub gets `line` inserted
/// at the top of the callback `callback`.
fn broken_project(dir: &Path, name: &str, callback: &str, line: &str) -> PathBuf {
    let spec = dir.join(format!("{name}.yaml"));
    std::fs::write(&spec, format!("name: {name}\nhandler: custom\n")).unwrap();
    let project = dir.join("p");
    let out = common::sockgen(&[
        "render",
        spec.to_str().unwrap(),
        "--lang",
        "c",
        "--model",
        "poll",
        "-o",
        project.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let handler = project.join(format!("{name}_handler.c"));
    let stub = std::fs::read_to_string(&handler).unwrap();
    let at = stub.find(&format!("{name}_{callback}(")).unwrap();
    let body = at + stub[at..].find('{').unwrap() + 1;
    std::fs::write(
        &handler,
        format!("{}\n    {line}{}", &stub[..body], &stub[body..]),
    )
    .unwrap();
    project
}

/// A handler that crashes on its first input: the stop check fails and says how it died.
#[test]
fn a_crashing_handler_fails_the_check_it_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let project = broken_project(dir.path(), "crash", "on_data", "abort();");

    let out = verify(&project, &["--lang", "c", "--model", "poll"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let failed: Vec<&str> = stdout.lines().filter(|l| l.contains("FAIL ")).collect();
    assert!(
        failed
            .iter()
            .any(|l| l.contains("stops with status 0") && l.contains("SIGABRT")),
        "{stdout}"
    );
}

/// A command of the user's that fails fails the run, naming the command and its output.
#[test]
fn a_failing_with_command_is_named() {
    let project = example_project("resp-kv", "resp_kv.yaml", "c", "poll");
    let out = verify(
        project.path(),
        &[
            "--lang",
            "winsock",
            "--model",
            "iocp",
            "--with",
            "redis-cli -p {port} get nothing-here | grep -q something",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL --with redis-cli -p {port} get nothing-here"),
        "{stdout}"
    );
}

/// Not a project, or a language its handler is not written in: exit 2 and say why.
#[test]
fn a_directory_that_is_no_project_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = verify(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not a project `sockgen render -o` wrote"),
        "{}",
        text(&out.stderr)
    );
    let project = example_project("resp-kv", "resp_kv.yaml", "c", "epoll");
    let out = verify(project.path(), &["--lang", "rust"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("holds a handler for --lang c, which --lang rust cannot build"),
        "{}",
        text(&out.stderr)
    );
}

/// The README's tutorial, step 6, as printed: its spec and handler, then its `verify` command
/// line run by a shell with sockgen on the PATH.
#[test]
fn the_readme_prove_your_server_step_works() {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let from = readme
        .find("/* upper_handler.c")
        .expect("the README's handler");
    let handler = &readme[from..from + readme[from..].find("```").unwrap()];
    let command = readme
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("sockgen verify upper --with"))
        .expect("the README's verify command");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("upper.yaml"),
        "name: upper\nhandler: custom\nframing: { kind: line }\n",
    )
    .unwrap();
    let project = dir.path().join("upper");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("upper_handler.c"), handler).unwrap();
    let sockgen = Path::new(env!("CARGO_BIN_EXE_sockgen"));
    let path = format!(
        "{}:{}",
        sockgen.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |line: &str| {
        std::process::Command::new("sh")
            .args(["-c", line])
            .current_dir(dir.path())
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let out = run("sockgen render upper.yaml --lang c --model epoll -o upper");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(command);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{command}\n{stdout}{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("your handler: upper_handler.c"), "{stdout}");
}

/// A conversation whose expectation is wrong fails on every connection, naming the line and
/// the bytes; one that cannot be read is refused before anything is built.
#[test]
fn a_wrong_conversation_fails_and_a_malformed_one_is_refused() {
    let project = example_project("resp-kv", "resp_kv.yaml", "c", "epoll");
    let wrong = project.path().join("wrong.conv");
    std::fs::write(&wrong, "send: PING\\r\\n\nexpect: +PING\\r\\n\n").unwrap();
    let out = verify(
        project.path(),
        &[
            "--model",
            "epoll",
            "--conversation",
            wrong.to_str().unwrap(),
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "the reply to line 1: first difference at byte 2 of 7: expected 0x49 'I', got 0x4f 'O'"
        ),
        "{stdout}"
    );
    let malformed = project.path().join("malformed.conv");
    std::fs::write(&malformed, "send: PING\n").unwrap();
    let out = verify(
        project.path(),
        &["--conversation", malformed.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("malformed.conv:1: `send:` without its `expect:`"),
        "{}",
        text(&out.stderr)
    );
}

/// `frame: yes` frames each send and expect as the spec does: the line-framed stub of
/// `sockgen init` echoes each message, and a framed conversation says so.
#[test]
fn a_framed_conversation_drives_a_framed_spec() {
    let dir = tempfile::tempdir().unwrap();
    let starter = sockgen::starter::text(sockgen::source::Format::Yaml);
    let spec = dir.path().join("line.yaml");
    std::fs::write(
        &spec,
        starter.replace("# framing: { kind: line }", "framing: { kind: line }"),
    )
    .unwrap();
    let conversation = dir.path().join("echo.conv");
    std::fs::write(
        &conversation,
        "frame: yes\nrepeat: 10\nsend: hello\nexpect: hello\nsend:\nexpect:\n",
    )
    .unwrap();
    let out = common::sockgen(&[
        "verify",
        spec.to_str().unwrap(),
        "--lang",
        "c",
        "--model",
        "epoll",
        "--conversation",
        conversation.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("framed (line)"), "{stdout}");
}

/// A handler that leaks a descriptor per connection: `--faults` finds it, naming the fault
/// and the descriptors; the same project without the leak passes under ASan and UBSan.
#[test]
fn a_descriptor_leak_fails_the_faults() {
    let dir = tempfile::tempdir().unwrap();
    let project = broken_project(
        dir.path(),
        "leaky",
        "on_open",
        "(void)open(\"/dev/null\", O_RDONLY); /* never closed */",
    );
    let out = verify(&project, &["--lang", "c", "--model", "poll", "--faults"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("FAIL fault: ") && l.contains("descriptors open after the fault")),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    let project = broken_project(dir.path(), "tidy", "on_open", "/* nothing leaks */");
    let out = verify(&project, &["--lang", "c", "--model", "poll", "--faults"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("(ASan+UBSan build)"), "{stdout}");
}

/// A handler that crashes on a one-byte read: a check fails (the one-byte fault, or the
/// stream under stop if a one-byte read came there first) and the run exits 1.
#[test]
fn a_crash_on_a_one_byte_read_fails() {
    let dir = tempfile::tempdir().unwrap();
    let project = broken_project(
        dir.path(),
        "fragile",
        "on_data",
        "if (len == 1) { abort(); }",
    );
    let out = verify(&project, &["--lang", "c", "--model", "poll", "--faults"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.lines().any(
            |l| l.contains("FAIL ") && (l.contains("one-byte writes") || l.contains("SIGABRT"))
        ),
        "{stdout}"
    );
}

/// `verify SPEC --handler FILE...` builds the spec's program with the user's files, as a
/// project would hold them (C at its top, Rust under src/); files of two languages are refused.
#[test]
fn verify_a_spec_with_the_users_handler_files() {
    let out = common::sockgen(&[
        "verify",
        "specs/resp-kv/resp_kv.yaml",
        "--lang",
        "c",
        "--model",
        "epoll",
        "--handler",
        "specs/resp-kv/c/resp_kv_handler.c",
        "--handler",
        "specs/resp-kv/c/resp_store.c",
        "--handler",
        "specs/resp-kv/c/resp_store.h",
        "--conversation",
        "specs/resp-kv/redis.conv",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("your handler: resp_kv_handler.c, resp_store.c, resp_store.h"),
        "{stdout}"
    );
    let out = common::sockgen(&[
        "verify",
        "specs/http-hello/http_hello.yaml",
        "--model",
        "poll",
        "--handler",
        "specs/http-hello/rust/src/main.rs",
        "--with",
        "curl -sf http://{host}:{port}/ -o /dev/null",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("--lang rust --model poll"), "{stdout}");
    assert!(stdout.contains("your handler: src/main.rs"), "{stdout}");
    let out = common::sockgen(&[
        "verify",
        "specs/http-hello/http_hello.yaml",
        "--handler",
        "specs/http-hello/rust/src/main.rs",
        "--handler",
        "specs/http-hello/c/http_hello_handler.c",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--handler files mix C and Rust"),
        "{}",
        text(&out.stderr)
    );
}

/// A UDP conversation: each send one datagram from the socket's own port, each expect the one
/// datagram that comes back (empty included); a wrong one is named.
#[test]
fn a_udp_conversation_checks_each_reply_datagram() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.conv");
    std::fs::write(
        &good,
        "connections: 3\nrepeat: 10\nsend: ping\\x00\\xff\nexpect: ping\\x00\\xff\nsend:\nexpect:\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.conv");
    std::fs::write(&bad, "send: ping\nexpect: pong\n").unwrap();
    let out = common::sockgen(&[
        "verify",
        "specs/echo-udp.toml",
        "--lang",
        "c",
        "--model",
        "epoll",
        "--conversation",
        good.to_str().unwrap(),
        "--conversation",
        bad.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("3 sockets × 10 × 2 datagram exchanges: every reply whole and byte-exact"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "the reply to line 1: first difference at byte 1 of 4: expected 0x6f 'o', got 0x69 'i'"
        ),
        "{stdout}"
    );
}
