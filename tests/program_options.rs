//! The spec's `options:` reach every generated `main` the same way: `--help` lists them with
//! the same text in every language, values of the wrong type exit 2 with the same message,
//! given values reach the handler, and a worker whose start fails (`worker_start_failed` in C,
//! `start_worker` returning Err in Rust) makes the program exit 1 without its ready line.

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sockgen::proof::{self, client::ClientRun, harness::RunningServer};

const OPTIONS: &str = r#"
options:
  - name: zone
    type: path
    default: "zones/a b.zone"
    help: the zone file to serve
  - name: keys
    type: int
    default: 1000
    min: -5
    max: 1000000
    help: keys to preload
  - name: big
    type: int
    help: any 64-bit integer
  - name: verbose
    type: bool
    default: true
    help: log each request
  - name: label
    type: string
    help: "a label, \"quoted\" or 100% not"
  - name: fail_start
    type: bool
    help: make the worker's start fail
"#;

/// What every handler below says about its options: one line.
const C_LINE: &str = r#"
static int options_line(char *out, size_t size)
{
    const struct opts_options *o = opts_options();
    return snprintf(out, size, "zone=%s keys=%lld big=%lld verbose=%d label=%s\n", o->zone,
                    o->keys, o->big, o->verbose, o->label);
}
"#;

fn c_server_handler(tcp: bool) -> String {
    let callbacks = if tcp {
        r#"
struct opts_worker { int unused; };
struct opts_session { int unused; };

static void opts_on_worker_start(struct opts_worker *w, unsigned index)
{
    (void)w;
    if (opts_options()->fail_start) {
        opts_worker_start_failed(index, "cannot read zone '%s'", opts_options()->zone);
    }
}

static void opts_on_worker_stop(struct opts_worker *w) { (void)w; }

static void opts_on_open(struct opts_session *s, struct opts_conn *c)
{
    char line[512];
    int n = options_line(line, sizeof line);
    (void)s;
    opts_write(c, line, (size_t)n);
    opts_close(c);
}

static size_t opts_on_data(struct opts_session *s, struct opts_conn *c,
                           const unsigned char *data, size_t len)
{
    (void)c; (void)s; (void)data;
    return len;
}

static void opts_on_writable(struct opts_session *s, struct opts_conn *c) { (void)c; (void)s; }
static void opts_on_eof(struct opts_session *s, struct opts_conn *c) { (void)s; opts_close(c); }
static void opts_on_timer(struct opts_session *s, struct opts_conn *c) { (void)c; (void)s; }
static void opts_on_close(struct opts_session *s, struct opts_conn *c,
                          enum opts_close_reason reason, int error)
{
    (void)c; (void)s; (void)reason; (void)error;
}
"#
    } else {
        r#"
struct opts_worker { int unused; };

static void opts_on_worker_start(struct opts_worker *w, unsigned index)
{
    (void)w;
    if (opts_options()->fail_start) {
        opts_worker_start_failed(index, "cannot read zone '%s'", opts_options()->zone);
    }
}

static void opts_on_worker_stop(struct opts_worker *w) { (void)w; }

static void opts_on_message(struct opts_worker *w, struct opts_conn *c,
                            const unsigned char *msg, size_t len)
{
    char line[512];
    int n = options_line(line, sizeof line);
    (void)w; (void)msg; (void)len;
    opts_write(c, line, (size_t)n);
}
"#
    };
    format!("{C_LINE}{callbacks}")
}

fn rust_server_main(tcp: bool) -> String {
    let handler = if tcp {
        r#"
#[derive(Default)]
struct Probe;

impl Handler for Probe {
    type Worker = ();

    fn start_worker(_index: usize) -> Result<(), opts::StartError> {
        check_start()
    }

    fn open(ctx: &mut Ctx<'_, ()>) -> Probe {
        let _ = ctx.write(options_line().as_bytes());
        ctx.close();
        Probe
    }

    fn on_data(&mut self, input: &[u8], _ctx: &mut Ctx<'_, ()>) -> usize {
        input.len()
    }
}
"#
    } else {
        r#"
#[derive(Default)]
struct Probe;

impl Handler for Probe {
    fn start_worker(_index: usize) -> Result<Probe, opts::StartError> {
        check_start().map(|()| Probe)
    }

    fn on_message(&mut self, _msg: &[u8], ctx: &mut Ctx<'_>) {
        let _ = ctx.write(options_line().as_bytes());
    }
}
"#
    };
    format!(
        r#"#[allow(dead_code)]
mod opts;

use opts::{{options, Ctx, Handler}};

fn options_line() -> String {{
    let o = options();
    format!(
        "zone={{}} keys={{}} big={{}} verbose={{}} label={{}}\n",
        o.zone.display(),
        o.keys,
        o.big,
        i32::from(o.verbose),
        o.label
    )
}}

fn check_start() -> Result<(), opts::StartError> {{
    if options().fail_start {{
        return Err(format!("cannot read zone '{{}}'", options().zone.display()).into());
    }}
    Ok(())
}}
{handler}
fn main() -> std::process::ExitCode {{
    opts::main_with::<Probe>()
}}
"#
    )
}

fn c_client_handler() -> String {
    format!(
        r#"{C_LINE}
struct opts_worker {{ int unused; }};
struct opts_session {{ int unused; }};

static void opts_on_worker_start(struct opts_worker *w, unsigned index)
{{
    (void)w;
    if (opts_options()->fail_start) {{
        opts_worker_start_failed(index, "cannot read zone '%s'", opts_options()->zone);
    }}
}}

static void opts_on_worker_stop(struct opts_worker *w) {{ (void)w; }}

static void opts_on_open(struct opts_session *s, struct opts_conn *c)
{{
    char line[512];
    options_line(line, sizeof line);
    (void)s;
    fputs(line, stdout);
    fflush(stdout);
    opts_close(c);
}}

static size_t opts_on_data(struct opts_session *s, struct opts_conn *c,
                           const unsigned char *data, size_t len)
{{
    (void)c; (void)s; (void)data;
    return len;
}}

static void opts_on_writable(struct opts_session *s, struct opts_conn *c) {{ (void)c; (void)s; }}
static void opts_on_eof(struct opts_session *s, struct opts_conn *c) {{ (void)s; opts_close(c); }}
static void opts_on_timer(struct opts_session *s, struct opts_conn *c) {{ (void)c; (void)s; }}
static void opts_on_close(struct opts_session *s, struct opts_conn *c,
                          enum opts_close_reason reason, int error)
{{
    (void)c; (void)s; (void)reason; (void)error;
}}
"#
    )
}

fn rust_client_main() -> String {
    r#"#[allow(dead_code)]
mod opts;

use opts::{options, Ctx, Handler};

#[derive(Default)]
struct Probe;

impl Handler for Probe {
    type Worker = ();

    fn start_worker(_index: usize) -> Result<(), opts::StartError> {
        if options().fail_start {
            return Err(format!("cannot read zone '{}'", options().zone.display()).into());
        }
        Ok(())
    }

    fn open(ctx: &mut Ctx<'_, ()>) -> Probe {
        let o = options();
        print!(
            "zone={} keys={} big={} verbose={} label={}\n",
            o.zone.display(),
            o.keys,
            o.big,
            i32::from(o.verbose),
            o.label
        );
        ctx.close();
        Probe
    }

    fn on_data(&mut self, input: &[u8], _ctx: &mut Ctx<'_, ()>) -> usize {
        input.len()
    }
}

fn main() -> std::process::ExitCode {
    opts::main_with::<Probe>()
}
"#
    .to_string()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    TcpServer,
    UdpServer,
    TcpClient,
}

fn spec(kind: Kind) -> String {
    let head = match kind {
        Kind::TcpServer => "name: opts\nhandler: custom\n",
        Kind::UdpServer => "name: opts\nhandler: custom\nprotocol: udp\n",
        Kind::TcpClient => {
            "name: opts\nrole: client\nhandler: custom\nclient:\n  retry: { max_attempts: 1 }\n"
        }
    };
    format!("{head}{OPTIONS}")
}

fn build(kind: Kind, lang: &str, model: &str, dir: &Path) -> PathBuf {
    let plan = common::plan_for(&spec(kind), lang, model);
    let files = match (lang, kind) {
        ("rust", Kind::TcpClient) => vec![("src/main.rs".to_string(), rust_client_main())],
        ("rust", kind) => vec![(
            "src/main.rs".to_string(),
            rust_server_main(kind == Kind::TcpServer),
        )],
        (_, Kind::TcpClient) => vec![("opts_handler.c".to_string(), c_client_handler())],
        (_, kind) => vec![(
            "opts_handler.c".to_string(),
            c_server_handler(kind == Kind::TcpServer),
        )],
    };
    proof::build_project(&plan, dir, &files)
        .unwrap_or_else(|(stage, e)| panic!("{lang}/{model}: {stage}: {e}"))
}

/// Runs the program to its end, bounded, with CRLF read as LF (Wine's console writes CRLF).
/// The harness's runner, not `wait_with_output`: a Windows program's pipes can outlive it.
fn run(binary: &Path, args: &[&str]) -> ClientRun {
    let mut out = proof::client::run_client(binary, args, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    assert!(
        out.status.is_some(),
        "{} {args:?} did not end in 60 s",
        binary.display()
    );
    out.stdout = out.stdout.replace("\r\n", "\n");
    out.stderr = out.stderr.replace("\r\n", "\n");
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\r\n", "\n")
}

/// What the handler reports with these arguments, asked the way the program's kind answers.
fn reported(kind: Kind, binary: &Path, args: &[&str]) -> String {
    match kind {
        Kind::TcpServer => {
            let server = RunningServer::start(binary, args, Duration::from_secs(30)).unwrap();
            let mut stream = TcpStream::connect(server.addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut line = String::new();
            stream.read_to_string(&mut line).unwrap();
            server.stop(Duration::from_secs(10)).check().unwrap();
            line
        }
        Kind::UdpServer => {
            let server = RunningServer::start(binary, args, Duration::from_secs(30)).unwrap();
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let mut reply = [0u8; 1024];
            let mut got = None;
            for _ in 0..5 {
                socket.send_to(b"?", server.addr).unwrap();
                if let Ok(n) = socket.recv(&mut reply) {
                    got = Some(text(&reply[..n]));
                    break;
                }
            }
            server.stop(Duration::from_secs(10)).check().unwrap();
            got.expect("no reply datagram")
        }
        Kind::TcpClient => {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port().to_string();
            // Bounded on both sides: a client that never connects, or never closes, fails
            // the test with what it printed instead of holding it forever.
            listener.set_nonblocking(true).unwrap();
            let accepting = std::thread::spawn(move || {
                let deadline = std::time::Instant::now() + Duration::from_secs(70);
                while std::time::Instant::now() < deadline {
                    match listener.accept() {
                        Ok((mut peer, _)) => {
                            peer.set_nonblocking(false).unwrap();
                            peer.set_read_timeout(Some(Duration::from_secs(60)))
                                .unwrap();
                            let mut rest = Vec::new();
                            return peer.read_to_end(&mut rest).is_ok();
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
                false
            });
            let mut all = vec!["-p", &port];
            all.extend_from_slice(args);
            let out = run(binary, &all);
            let served = accepting.join().unwrap();
            assert_eq!(out.status, Some(0), "{}", out.stderr);
            assert!(
                served,
                "the client never connected, or never closed: {}",
                out.stderr
            );
            out.stdout
        }
    }
}

/// Every check of one program; returns its `--help` text and its first stderr line for each
/// bad command line, for the comparison across languages.
fn prove(kind: Kind, lang: &str, model: &str) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let binary = build(kind, lang, model, dir.path());
    let cell = format!("{lang}/{model}");

    let help = run(&binary, &["--help"]);
    assert_eq!(help.status, Some(0), "{cell} --help");
    let help = help.stdout;
    assert!(
        help.contains("--zone PATH   the zone file to serve (default: zones/a b.zone)"),
        "{cell}: {help}"
    );
    assert_eq!(
        run(&binary, &["-h"]).stdout,
        help,
        "{cell}: -h and --help differ"
    );

    assert_eq!(
        reported(kind, &binary, &[]),
        "zone=zones/a b.zone keys=1000 big=0 verbose=1 label=\n",
        "{cell}: the defaults"
    );
    assert_eq!(
        reported(
            kind,
            &binary,
            &[
                "--zone=/tmp/z",
                "--keys",
                "-5",
                "--big",
                "-9223372036854775808",
                "--no-verbose",
                "--label",
                "a%sb \"c\""
            ],
        ),
        "zone=/tmp/z keys=-5 big=-9223372036854775808 verbose=0 label=a%sb \"c\"\n",
        "{cell}: given values"
    );

    let mut refusals = Vec::new();
    for bad in [
        &["--keys", "1000001"][..],
        &["--keys", "5x"],
        &["--keys", "+5"],
        &["--big", "9223372036854775808"],
        &["--zone", ""],
        &["--verbose=1"],
        &["--label"],
        &["--nope"],
        &["stray"],
    ] {
        let out = run(&binary, bad);
        assert_eq!(
            out.status,
            Some(2),
            "{cell} {bad:?}: {}",
            out.stderr.clone()
        );
        refusals.push(
            out.stderr
                .clone()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        );
    }

    // A client fails before it connects: port 1 is never reached.
    let port = if kind == Kind::TcpClient { "1" } else { "0" };
    let failed = run(
        &binary,
        &["--fail-start", "--zone", "missing.zone", "-p", port],
    );
    let stderr = failed.stderr.clone();
    assert_eq!(failed.status, Some(1), "{cell} --fail-start: {stderr}");
    assert!(
        stderr.contains("opts: worker 0: cannot read zone 'missing.zone'"),
        "{cell}: {stderr}"
    );
    assert!(
        !failed.stdout.contains("listening on"),
        "{cell}: ready line after a failed start"
    );
    (help, refusals)
}

/// Every cell of a kind agrees with the first on `--help` and on every refusal's message.
fn prove_all(kind: Kind, cells: &[(&str, &str)]) {
    let mut first: Option<(String, Vec<String>, String)> = None;
    for (lang, model) in cells {
        let (help, refusals) = prove(kind, lang, model);
        match &first {
            None => first = Some((help, refusals, format!("{lang}/{model}"))),
            Some((h, r, cell)) => {
                assert_eq!(&help, h, "{lang}/{model} and {cell} print different help");
                assert_eq!(&refusals, r, "{lang}/{model} and {cell} refuse differently");
            }
        }
    }
}

#[test]
fn tcp_servers_read_their_options_the_same_way() {
    prove_all(
        Kind::TcpServer,
        &[
            ("c", "blocking"),
            ("c", "poll"),
            ("c", "epoll"),
            ("c", "io_uring"),
            ("rust", "blocking"),
            ("rust", "poll"),
            ("rust", "epoll"),
            ("rust", "io_uring"),
            ("winsock", "blocking"),
            ("winsock", "poll"),
            ("winsock", "iocp"),
        ],
    );
}

#[test]
fn udp_servers_read_their_options_the_same_way() {
    prove_all(
        Kind::UdpServer,
        &[
            ("c", "blocking"),
            ("c", "poll"),
            ("c", "epoll"),
            ("c", "io_uring"),
            ("rust", "epoll"),
            ("rust", "io_uring"),
            ("winsock", "blocking"),
            ("winsock", "iocp"),
        ],
    );
}

#[test]
fn clients_read_their_options_the_same_way() {
    prove_all(
        Kind::TcpClient,
        &[
            ("c", "blocking"),
            ("c", "poll"),
            ("c", "epoll"),
            ("c", "io_uring"),
            ("rust", "blocking"),
            ("rust", "epoll"),
            ("winsock", "poll"),
            ("winsock", "iocp"),
        ],
    );
}
