//! `sockgen verify DIR`: the user's own program, built from a `render -o` project, proven for
//! what does not depend on its protocol's meaning (it starts, streams, stops) and for what
//! the user says it means (`--with` commands against the live server).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{build_project, CheckResult, ProofOptions, ProofReport, RunningServer};
use crate::plan::Plan;
use crate::spec::{Keyword, Lang, Model};

/// What a project's build file says produced it: `# Render again ...: sockgen render SPEC
/// --lang L --model M -o .`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub dir: PathBuf,
    /// The spec, as a path that works from where sockgen runs.
    pub spec: PathBuf,
    pub lang: Lang,
    pub model: Model,
}

const RENDER_LINE: &str = "sockgen render ";

/// The spec, language and model of the project in `dir`, from its Makefile (C, Winsock C) or
/// Cargo.toml (Rust).
pub fn find(dir: &Path) -> Result<Project, String> {
    let candidates = ["Makefile", "Cargo.toml"];
    for file in candidates {
        let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
            continue;
        };
        if let Some(line) = text
            .lines()
            .take(5)
            .find_map(|l| l.split_once(RENDER_LINE).map(|(_, rest)| rest))
        {
            return parse_render_line(dir, line).map_err(|why| {
                format!(
                    "{}: the render command in it {why}",
                    dir.join(file).display()
                )
            });
        }
    }
    Err(format!(
        "{} is not a project `sockgen render -o` wrote (no Makefile or Cargo.toml naming the \
         render command; projects from sockgen before 0.2 lack it: render again with -o)",
        dir.display()
    ))
}

/// `SPEC --lang L --model M -o .`: the spec's path may hold spaces, so it is what comes
/// before ` --lang `.
fn parse_render_line(dir: &Path, line: &str) -> Result<Project, String> {
    let (spec, rest) = line.split_once(" --lang ").ok_or("has no --lang")?;
    let mut words = rest.split_whitespace();
    let lang = words.next().ok_or("has no language after --lang")?;
    if words.next() != Some("--model") {
        return Err("has no --model after the language".into());
    }
    let model = words.next().ok_or("has no model after --model")?;
    let lang = <Lang as Keyword>::parse(lang).map_err(|_| format!("names no language: {lang}"))?;
    let model = <Model as Keyword>::parse(model).map_err(|_| format!("names no model: {model}"))?;
    Ok(Project {
        dir: dir.to_owned(),
        spec: dir.join(spec.trim()),
        lang,
        model,
    })
}

/// The user's files in the project: sources (`.c`, `.h`, `.rs`) outside build output and hidden
/// directories. The generated ones among them are rendered afresh over the copies.
fn user_files(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        let entries =
            std::fs::read_dir(&current).map_err(|e| format!("{}: {e}", current.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| e.to_string())?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().map_err(|e| e.to_string())?;
            if kind.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    stack.push(path);
                }
                continue;
            }
            let source = [".c", ".h", ".rs"].iter().any(|ext| name.ends_with(ext));
            if !kind.is_file() || !source {
                continue;
            }
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let relative = path
                .strip_prefix(dir)
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .into_owned();
            files.push((relative, text));
        }
    }
    files.sort();
    Ok(files)
}

/// Which of the project's files are the user's program, for the report.
fn describe_program(plan: &Plan, files: &[(String, String)]) -> String {
    let generated: std::collections::BTreeSet<String> =
        crate::render::render(plan, crate::render::Layout::Project)
            .map(|files| {
                files
                    .into_iter()
                    .filter(|f| !f.user_owned)
                    .map(|f| f.path)
                    .collect()
            })
            .unwrap_or_default();
    let mine: Vec<&str> = files
        .iter()
        .map(|(path, _)| path.as_str())
        .filter(|path| !generated.contains(*path))
        .collect();
    if plan.handler != crate::plan::Handler::Custom {
        return format!(
            "the built-in {} handler (the spec says `handler: {}`), with {}",
            plan.handler,
            plan.handler,
            if mine.is_empty() {
                "no file of yours".to_string()
            } else {
                mine.join(", ")
            }
        );
    }
    format!(
        "your handler: {}; the generated files rendered afresh from the spec",
        mine.join(", ")
    )
}

/// Whether a handler written for `project` serves `lang` too: one C handler file builds for
/// C and Winsock C; Rust has its own.
fn same_handler_language(project: Lang, lang: Lang) -> bool {
    let c_family = |l: Lang| matches!(l, Lang::C | Lang::Winsock);
    c_family(project) == c_family(lang)
}

/// Proves the project in `dir` in every model its spec allows for the project's handler
/// language (C and Winsock C share a handler file; Rust has its own), narrowed by
/// `lang`/`model`: for each, the user's files are copied into a temporary directory, the
/// generated ones rendered afresh over them, and the program built and proven.
pub fn verify_project(
    dir: &Path,
    lang: Option<Lang>,
    model: Option<Model>,
    options: &ProofOptions,
    jobs: usize,
    finished: impl Fn(&ProofReport, usize) + Sync,
) -> Result<Vec<ProofReport>, crate::Error> {
    let project = find(dir).map_err(crate::Error::Project)?;
    if let Some(asked) = lang {
        if !same_handler_language(project.lang, asked) {
            return Err(crate::Error::Project(format!(
                "{} holds a handler for --lang {}, which --lang {} cannot build",
                dir.display(),
                project.lang.as_str(),
                asked.as_str()
            )));
        }
    }
    let plans: Vec<Plan> = super::select_plans(&project.spec, lang, model)?
        .into_iter()
        .filter(|p| same_handler_language(project.lang, p.lang))
        .map(|p| p.for_project(&project.spec, dir))
        .collect();
    if plans.is_empty() {
        return Err(crate::Error::Project(format!(
            "{}: the spec allows no model for its handler's language with these filters",
            dir.display()
        )));
    }
    let files = user_files(dir).map_err(crate::Error::Project)?;
    Ok(super::run_parallel(&plans, jobs, |plan| {
        let report = verify_one(dir, plan, &files, options);
        finished(&report, plans.len());
        report
    }))
}

/// `verify SPEC --handler FILE...`: the spec's program with the user's files (their handler
/// file and sources for C, named as the project would name them; their Rust `main.rs` and
/// modules, which go to `src/`), proven in every model the spec allows for the files'
/// language, narrowed by `lang`/`model`.
pub fn verify_with_files(
    spec: &Path,
    handler_files: &[PathBuf],
    lang: Option<Lang>,
    model: Option<Model>,
    options: &ProofOptions,
    jobs: usize,
    finished: impl Fn(&ProofReport, usize) + Sync,
) -> Result<Vec<ProofReport>, crate::Error> {
    let mut files = Vec::new();
    let mut rust = None;
    for path in handler_files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let is_rust = name.ends_with(".rs");
        if !is_rust && !name.ends_with(".c") && !name.ends_with(".h") {
            return Err(crate::Error::Project(format!(
                "--handler {}: expected a .c, .h or .rs file",
                path.display()
            )));
        }
        if rust.is_some_and(|r| r != is_rust) {
            return Err(crate::Error::Project(
                "--handler files mix C and Rust: give one language's".into(),
            ));
        }
        rust = Some(is_rust);
        let text = std::fs::read_to_string(path)
            .map_err(|e| crate::Error::Project(format!("--handler {}: {e}", path.display())))?;
        let relative = if is_rust { format!("src/{name}") } else { name };
        files.push((relative, text));
    }
    let handler_lang = if rust == Some(true) {
        Lang::Rust
    } else {
        Lang::C
    };
    let plans: Vec<Plan> = super::select_plans(spec, lang, model)?
        .into_iter()
        .filter(|p| same_handler_language(handler_lang, p.lang))
        .collect();
    if plans.is_empty() {
        return Err(crate::Error::Project(format!(
            "{}: the spec allows no model for {} handler files with these filters",
            spec.display(),
            if handler_lang == Lang::Rust {
                "Rust"
            } else {
                "C"
            }
        )));
    }
    Ok(super::run_parallel(&plans, jobs, |plan| {
        let report = verify_one(spec, plan, &files, options);
        finished(&report, plans.len());
        report
    }))
}

/// One model of a project: built in a work directory and proven.
fn verify_one(
    dir: &Path,
    plan: &Plan,
    files: &[(String, String)],
    options: &ProofOptions,
) -> ProofReport {
    let program = describe_program(plan, files);
    let mut report = match tempfile::Builder::new()
        .prefix("sockgen-verify-project-")
        .tempdir()
    {
        Err(e) => ProofReport::failed_before_running(plan, "workdir", e.to_string()),
        Ok(workdir) => match build_project(plan, workdir.path(), files) {
            Ok(binary) => prove_user_binary(plan, &binary, options),
            Err((stage, e)) => ProofReport::failed_before_running(plan, &stage, e),
        },
    };
    if options.faults && report.passed() {
        report.checks.extend(project_faults(plan, files, options));
    }
    report.spec = dir.display().to_string();
    report.checks.insert(
        0,
        CheckResult {
            name: "program".into(),
            passed: true,
            detail: program,
        },
    );
    report
}

/// `verify DIR --faults`: the protocol-agnostic faults against the user's program, built with
/// AddressSanitizer and UndefinedBehaviorSanitizer where it is C for Linux. Serving, before and
/// after each fault, means accepting a connection and passing the user's conversations and
/// `--with` commands.
fn project_faults(
    plan: &Plan,
    files: &[(String, String)],
    options: &ProofOptions,
) -> Vec<CheckResult> {
    let sanitized = plan.lang == Lang::C;
    let flags = if sanitized {
        super::toolchain::ASAN_UBSAN_FLAGS
    } else {
        &[]
    };
    let workdir = match tempfile::Builder::new()
        .prefix("sockgen-verify-faults-")
        .tempdir()
    {
        Ok(dir) => dir,
        Err(e) => return vec![failed("faults", format!("a work directory: {e}"))],
    };
    let binary = match super::build_project_with(plan, workdir.path(), files, flags) {
        Ok(binary) => binary,
        Err((stage, e)) => return vec![failed("faults", format!("{stage}: {e}"))],
    };
    let serve = |addr: SocketAddr| -> Result<(), String> {
        TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("connect: {e}"))?;
        let checks = super::conversation::checks(plan, &options.conversations, addr)
            .into_iter()
            .chain(run_with_commands(&options.with, addr));
        for check in checks {
            if !check.passed {
                return Err(format!("{}: {}", check.name, check.detail));
            }
        }
        Ok(())
    };
    let mut checks = super::faults::prove_agnostic_faults(plan, &binary, !sanitized, &serve);
    if sanitized {
        for check in &mut checks {
            check.name.push_str(" (ASan+UBSan build)");
        }
    }
    checks
}

fn failed(name: &str, detail: String) -> CheckResult {
    CheckResult {
        name: name.into(),
        passed: false,
        detail,
    }
}

/// Proves a program whose protocol sockgen does not know: it starts and prints its ready
/// line, each `--with` command passes against it, and it stops with status 0 while
/// connections stream random bytes at it.
pub fn prove_user_binary(plan: &Plan, binary: &Path, options: &ProofOptions) -> ProofReport {
    let mut report = ProofReport::failed_before_running(plan, "start", String::new());
    report.checks.clear();
    let loopback = if plan.is_ipv6() { "::1" } else { "127.0.0.1" };
    let started = Instant::now();
    let server =
        match RunningServer::start(binary, &["-a", loopback, "-p", "0"], options.ready_timeout) {
            Ok(server) => server,
            Err(e) => {
                report.checks.push(CheckResult {
                    name: "starts".into(),
                    passed: false,
                    detail: e,
                });
                return report;
            }
        };
    report.checks.push(CheckResult {
        name: "starts".into(),
        passed: true,
        detail: format!(
            "ready line after {} ms: listening on {}",
            started.elapsed().as_millis(),
            server.addr
        ),
    });
    report.checks.extend(super::conversation::checks(
        plan,
        &options.conversations,
        server.addr,
    ));
    report
        .checks
        .extend(run_with_commands(&options.with, server.addr));
    let streaming = Stream::start(plan.is_tcp(), server.addr);
    // Let the connections get going, so the stop meets them mid-stream.
    thread::sleep(Duration::from_millis(200));
    let stop = server.stop(options.stop_timeout);
    let streamed = streaming.finish();
    let name = format!(
        "{} stops with status 0 while {streamed}",
        stop.signal.name()
    );
    let result = stop.check();
    report.checks.push(CheckResult {
        name,
        passed: result.is_ok(),
        detail: result.unwrap_or_else(|e| e),
    });
    report
}

/// `--with` commands against the live server: `{port}` and `{host}` substituted, run with
/// `sh -c`, each bounded to a minute; exit status 0 passes.
pub fn run_with_commands(commands: &[String], addr: SocketAddr) -> Vec<CheckResult> {
    commands
        .iter()
        .map(|template| {
            let command = template
                .replace("{port}", &addr.port().to_string())
                .replace("{host}", &addr.ip().to_string());
            let result = run_bounded(&command, Duration::from_secs(60));
            CheckResult {
                name: format!("--with {template}"),
                passed: result.is_ok(),
                detail: result.unwrap_or_else(|e| e),
            }
        })
        .collect()
}

/// Runs `sh -c command`; Ok with its output's last line, or why it failed.
fn run_bounded(command: &str, limit: Duration) -> Result<String, String> {
    let mut child = Command::new("sh")
        .args(["-c", command])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out = thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = stdout.as_mut() {
            let _ = pipe.take(64 * 1024).read_to_string(&mut text);
        }
        text
    });
    let err = thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = stderr.as_mut() {
            let _ = pipe.take(64 * 1024).read_to_string(&mut text);
        }
        text
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Err(e) => return Err(format!("waiting for `{command}`: {e}")),
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    let last = |text: &str| text.trim_end().lines().last().unwrap_or("").to_string();
    match status {
        None => Err(format!(
            "`{command}` was still running after {} s and was killed",
            limit.as_secs()
        )),
        Some(status) if status.success() => Ok(format!("`{command}`: exit 0 {}", last(&out))
            .trim_end()
            .to_string()),
        Some(status) => Err(format!(
            "`{command}`: {status}; stderr: {}; stdout: {}",
            last(&err),
            last(&out)
        )),
    }
}

/// Connections (or a UDP socket) sending random bytes and draining replies until the server
/// goes or they are told to stop: what a stop must cope with.
struct Stream {
    stop: Arc<AtomicBool>,
    workers: Vec<thread::JoinHandle<usize>>,
    tcp: bool,
}

const STREAM_CONNECTIONS: usize = 8;

impl Stream {
    fn start(tcp: bool, addr: SocketAddr) -> Stream {
        let stop = Arc::new(AtomicBool::new(false));
        let count = if tcp { STREAM_CONNECTIONS } else { 1 };
        let workers = (0..count)
            .map(|i| {
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let mut rng = super::load::Rng::new(0x0571_2ea3 + i as u64);
                    if tcp {
                        stream_tcp(addr, &stop, &mut rng)
                    } else {
                        stream_udp(addr, &stop, &mut rng)
                    }
                })
            })
            .collect();
        Stream { stop, workers, tcp }
    }

    /// Stops the senders; says what they sent.
    fn finish(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let bytes: usize = self
            .workers
            .into_iter()
            .map(|w| w.join().unwrap_or(0))
            .sum();
        if self.tcp {
            format!("{STREAM_CONNECTIONS} connections stream ({bytes} random bytes sent)")
        } else {
            format!("datagrams stream ({bytes} random bytes sent)")
        }
    }
}

fn stream_tcp(addr: SocketAddr, stop: &AtomicBool, rng: &mut super::load::Rng) -> usize {
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return 0;
    };
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let reader = stream.try_clone();
    // Replies are drained so a server that answers is not held up by us.
    let drain = reader.ok().map(|mut r| {
        thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            let _ = r.set_read_timeout(Some(Duration::from_secs(10)));
            while matches!(r.read(&mut buf), Ok(n) if n > 0) {}
        })
    });
    let mut writer = stream;
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let len = 1 + rng.below(4096);
        let chunk = rng.bytes(len);
        match writer.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    let _ = writer.shutdown(std::net::Shutdown::Both);
    if let Some(drain) = drain {
        let _ = drain.join();
    }
    sent
}

fn stream_udp(addr: SocketAddr, stop: &AtomicBool, rng: &mut super::load::Rng) -> usize {
    let bind = if addr.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let Ok(socket) = UdpSocket::bind(bind) else {
        return 0;
    };
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let len = rng.below(1400);
        let datagram = rng.bytes(len);
        if let Ok(n) = socket.send_to(&datagram, addr) {
            sent += n;
        }
        thread::sleep(Duration::from_millis(1));
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_render_line_names_spec_lang_and_model() {
        let dir = Path::new("proj");
        let project =
            parse_render_line(dir, "../specs/my spec.yaml --lang c --model epoll -o .").unwrap();
        assert_eq!(project.spec, Path::new("proj/../specs/my spec.yaml"));
        assert_eq!((project.lang, project.model), (Lang::C, Model::Epoll));
        assert!(
            parse_render_line(dir, "x.yaml --lang cobol --model epoll -o .")
                .unwrap_err()
                .contains("cobol")
        );
        assert!(parse_render_line(dir, "x.yaml -o .").is_err());
    }
}
