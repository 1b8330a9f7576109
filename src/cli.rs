//! The `sockgen` command line. Thin: every command is a call into the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::backend::matrix;
use crate::render::{self, FileState, Layout};
use crate::spec::{Lang, Model};
use crate::{Error, Overrides};

/// Exit status when the spec itself is invalid (1 is every other failure).
pub const EXIT_INVALID_SPEC: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "sockgen",
    version,
    about = "Generate proven socket servers from a declarative spec"
)]
pub struct Cli {
    /// Colour diagnostics and help: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE
    /// forces it), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Whether stderr gets colour, honouring NO_COLOR and CLICOLOR_FORCE (no-color.org,
    /// bixense.com/clicolors) when the choice is `auto`.
    pub fn resolve(self) -> bool {
        use std::io::IsTerminal;
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto if set("CLICOLOR_FORCE") => true,
            ColorWhen::Auto if set("NO_COLOR") => false,
            ColorWhen::Auto => std::io::stderr().is_terminal(),
        }
    }
}

/// The spec argument every spec-reading command takes.
const SPEC_HELP: &str = "The spec file (*.yaml, *.yml or *.toml); `sockgen init` writes a starter";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Render a spec to source code: one file on stdout, or a buildable project with -o.
    Render {
        #[arg(help = SPEC_HELP)]
        spec: PathBuf,
        #[command(flatten)]
        target: OverrideArgs,
        /// Write a project (source, handler callbacks, build file) into DIR.
        #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// Write nothing; exit 1 if the files in DIR differ from what would be written.
        #[arg(long, requires = "out_dir")]
        check: bool,
    },
    /// Validate a spec and report every problem; exit 0 if valid, 2 if not.
    Check {
        #[arg(help = SPEC_HELP)]
        spec: PathBuf,
        #[command(flatten)]
        target: OverrideArgs,
        /// Also check that the spec's address and port can be bound now (exit 1 if in use).
        #[arg(long)]
        port_free: bool,
    },
    /// Explain a socket error: an errno name or number, or a Winsock name or number.
    Explain {
        /// EAGAIN, 11, WSAECONNRESET, 10054, …
        code: String,
        /// Print the entry as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Report connection states, listen queues and socket memory, with findings.
    Analyze {
        /// Only sockets whose local or remote port is PORT.
        #[arg(long)]
        port: Option<u16>,
        /// Only sockets the process PID holds (live data only).
        #[arg(long)]
        pid: Option<u32>,
        /// Read saved `ss -tanmi` or `netstat -an` output from FILE, or `-` for stdin.
        #[arg(long, value_name = "FILE|-")]
        from: Option<PathBuf>,
        /// Print {operation, target, address, status, findings, recommendations, artifacts} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compile the spec's output, run it on loopback and check every byte; exit 1 on any failure.
    Verify {
        #[arg(help = SPEC_HELP)]
        spec: PathBuf,
        #[command(flatten)]
        only: FilterArgs,
        /// Print a JSON report instead of text.
        #[arg(long)]
        json: bool,
        /// Combinations proven at once.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Also put each echo server through the fault suite (resets, floods, SIGSTOP, bursts…),
        /// checking afterwards that it serves, holds no extra descriptors, does not spin and stops
        /// with status 0.
        #[arg(long)]
        faults: bool,
    },
    /// Measure the spec's outputs under load (and peers in the same run); see docs/benchmarks.md.
    Bench(BenchArgs),
    /// Print the JSON Schema (draft-07) of the spec format.
    Schema,
    /// Print which I/O models each language supports.
    Models,
    /// Write a commented starter spec (to FILE, or stdout) to copy and edit.
    Init {
        /// Where to write it; refuses to overwrite an existing file.
        file: Option<PathBuf>,
    },
    /// Print a shell completion script: `sockgen completions bash > /etc/bash_completion.d/sockgen`.
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff): `sockgen man > sockgen.1 && man ./sockgen.1`.
    Man,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[arg(help = SPEC_HELP)]
    pub spec: PathBuf,
    #[command(flatten)]
    pub only: FilterArgs,
    /// Every (lang, model) the spec allows (the default when neither --lang nor --model is given).
    #[arg(long, conflicts_with_all = ["lang", "model"])]
    pub all: bool,
    /// Concurrent connections per case, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 64, 256, 1000], value_parser = clap::value_parser!(usize))]
    pub connections: Vec<usize>,
    /// Message sizes in bytes per case, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [64usize, 4096])]
    pub sizes: Vec<usize>,
    /// Messages each connection keeps in flight.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Measured time per run, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub duration_ms: u64,
    /// Warm-up per run before measuring, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub warmup_ms: u64,
    /// Runs per server and case, servers interleaved; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub repeats: u16,
    /// Skip the streaming case (discard handler, 64 KiB writes, iperf3 ceiling).
    #[arg(long)]
    pub no_stream: bool,
    /// Another echo server under the same load: NAME=COMMAND with {port} where it listens, or
    /// `tokio` for the tokio echo server in benches/tokio-echo. Ratios are printed against the first.
    #[arg(long = "peer", value_name = "NAME=CMD")]
    pub peers: Vec<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also draw every case side by side into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,
}

/// The language and model to generate, when not the ones the spec names.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct OverrideArgs {
    /// Output language [default: the spec's `lang`, else c].
    #[arg(long, value_parser = keyword_parser::<Lang>())]
    pub lang: Option<Lang>,
    /// I/O model [default: the spec's `model`, else the platform's best].
    #[arg(long, value_parser = keyword_parser::<Model>())]
    pub model: Option<Model>,
}

impl From<OverrideArgs> for Overrides {
    fn from(args: OverrideArgs) -> Overrides {
        Overrides {
            lang: args.lang,
            model: args.model,
        }
    }
}

/// Narrows the (lang, model) combinations a command runs through.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct FilterArgs {
    /// Only this language [default: every language sockgen emits; bench: C and Rust, or only
    /// winsock (under Wine) when the spec's lang is winsock].
    #[arg(long, value_parser = keyword_parser::<Lang>())]
    pub lang: Option<Lang>,
    /// Only this model [default: every model the spec allows].
    #[arg(long, value_parser = keyword_parser::<Model>())]
    pub model: Option<Model>,
}

/// A value parser that lists the keyword's values in --help and in errors.
fn keyword_parser<K: crate::spec::Keyword + Send + Sync + Clone>(
) -> impl clap::builder::TypedValueParser<Value = K> {
    use clap::builder::TypedValueParser;
    let names: Vec<&'static str> = K::ALL.iter().map(|k| k.as_str()).collect();
    clap::builder::PossibleValuesParser::new(names)
        .map(|text| K::parse(&text).expect("a listed value"))
}

/// Runs the CLI with the process's arguments.
pub fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    // The --color choice (and NO_COLOR / CLICOLOR_FORCE) also governs clap's own messages.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let wanted = args
        .iter()
        .zip(args.iter().skip(1))
        .find_map(|(a, b)| {
            let b = b.to_str()?;
            (a == "--color").then(|| b.to_string())
        })
        .or_else(|| {
            args.iter()
                .find_map(|a| a.to_str()?.strip_prefix("--color=").map(str::to_string))
        });
    let when = match wanted.as_deref() {
        Some("always") => ColorWhen::Always,
        Some("never") => ColorWhen::Never,
        _ => ColorWhen::Auto,
    };
    COLOR.store(when.resolve(), std::sync::atomic::Ordering::Relaxed);
    let command = Cli::command().color(if when.resolve() {
        clap::ColorChoice::Always
    } else {
        clap::ColorChoice::Never
    });
    let parsed = command
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not failures; usage errors are "other failures" (1),
            // so that 2 always means "the spec is invalid".
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if !matches!(cli.command, Command::Verify { .. } | Command::Bench(_)) {
        quiet_on_closed_stdout();
    }
    run(cli.command)
}

/// `sockgen schema | head` should end quietly, as Unix tools do, not panic on EPIPE: the
/// printing commands get SIGPIPE's default action back (Rust ignores it). verify and bench
/// keep it ignored, since they write to sockets of servers that may close.
fn quiet_on_closed_stdout() {
    // SAFETY: restoring a signal's default action before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Progress of a long command: a bar on a terminal, plain lines on stderr otherwise (so logs
/// and CI show it too). Results go to stdout either way.
#[derive(Clone)]
struct ProgressLine {
    bar: Option<indicatif::ProgressBar>,
    what: &'static str,
}

impl ProgressLine {
    fn new(what: &'static str) -> ProgressLine {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            let style = indicatif::ProgressStyle::with_template(
                "{prefix} [{elapsed}] {wide_bar} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(what);
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        ProgressLine { bar, what }
    }

    fn step(&self, done: usize, total: usize, message: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message(message.to_string());
            }
            None => eprintln!("{}: {done}/{total} {message}", self.what),
        }
    }

    /// A result line on stdout, without tearing the bar.
    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Whether diagnostics on stderr are coloured (see [`ColorWhen`]).
static COLOR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn fail(e: &Error) -> ExitCode {
    match e {
        Error::Invalid(d) => eprint!(
            "{}",
            d.render_styled(COLOR.load(std::sync::atomic::Ordering::Relaxed))
        ),
        _ => eprint!("{e}"),
    }
    if !matches!(e, Error::Invalid(_)) {
        eprintln!();
    }
    match e {
        Error::Invalid(_) => ExitCode::from(EXIT_INVALID_SPEC),
        _ => ExitCode::from(1),
    }
}

/// Prints what validation warned about; the command goes on.
fn warn(plan: &crate::plan::Plan) {
    if let Some(warnings) = &plan.warnings {
        eprint!(
            "{}",
            warnings.render_styled(COLOR.load(std::sync::atomic::Ordering::Relaxed))
        );
    }
}

/// Warnings for `verify`, which reads the spec again for each target: said once, here.
fn warn_about_spec(spec: &std::path::Path) {
    if let Ok(plan) = crate::plan_file(spec, Overrides::default()) {
        warn(&plan);
    }
}

pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Render {
            spec,
            target,
            out_dir,
            check,
        } => {
            let target = Overrides::from(target);
            let generated = match &out_dir {
                Some(dir) => crate::generate_project(&spec, target, dir),
                None => crate::plan_file(&spec, target).and_then(|plan| {
                    let files = render::render(&plan, Layout::SingleFile).map_err(Error::Render)?;
                    Ok((plan, files))
                }),
            };
            let (plan, files) = match generated {
                Ok(generated) => generated,
                Err(e) => return fail(&e),
            };
            warn(&plan);
            match out_dir {
                None => {
                    let mut stdout = std::io::stdout().lock();
                    for f in &files {
                        if stdout.write_all(f.contents.as_bytes()).is_err() {
                            return ExitCode::from(1);
                        }
                    }
                    ExitCode::SUCCESS
                }
                Some(dir) if check => {
                    let mut stale = false;
                    for (path, state) in render::compare(&dir, &files) {
                        let shown = dir.join(&path);
                        match state {
                            FileState::UpToDate | FileState::Kept => {}
                            FileState::Missing => {
                                stale = true;
                                eprintln!("missing: {}", shown.display());
                            }
                            FileState::Differs => {
                                stale = true;
                                eprintln!("differs: {}", shown.display());
                            }
                        }
                    }
                    if stale {
                        eprintln!(
                            "generated code is out of date: run `sockgen render {} --lang {} --model {} -o {}`",
                            spec.display(),
                            plan.lang,
                            plan.model,
                            dir.display()
                        );
                        ExitCode::from(1)
                    } else {
                        eprintln!("{}: up to date", dir.display());
                        ExitCode::SUCCESS
                    }
                }
                Some(dir) => match render::write(&dir, &files) {
                    Ok(written) => {
                        if written.is_empty() {
                            eprintln!("{}: up to date, nothing written", dir.display());
                        }
                        for path in written {
                            eprintln!("wrote {}", dir.join(path).display());
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(&Error::Render(e)),
                },
            }
        }
        Command::Check {
            spec,
            target,
            port_free,
        } => check(&spec, target.into(), port_free),
        Command::Verify {
            spec,
            only,
            json,
            jobs,
            faults,
        } => {
            warn_about_spec(&spec);
            let options = crate::proof::ProofOptions {
                faults,
                ..crate::proof::ProofOptions::default()
            };
            let progress = ProgressLine::new("verify");
            let done = std::sync::atomic::AtomicUsize::new(0);
            let verified = crate::proof::verify_reporting(
                &spec,
                only.lang,
                only.model,
                &options,
                usize::from(jobs),
                |report, total| {
                    let done = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    let verdict = if report.passed() { "PASS" } else { "FAIL" };
                    progress.step(
                        done,
                        total,
                        &format!("{verdict} --lang {} --model {}", report.lang, report.model),
                    );
                    if !json {
                        // Each result as it completes, not all at the end.
                        progress.println(report.summary().trim_end());
                    }
                },
            );
            progress.finish();
            let reports = match verified {
                Ok(r) => r,
                Err(e) => return fail(&e),
            };
            let passed = reports.iter().filter(|r| r.passed()).count();
            let failed = reports.len() - passed;
            if json {
                let doc = serde_json::json!({
                    "spec": spec.display().to_string(),
                    "passed": passed,
                    "failed": failed,
                    "results": reports,
                });
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                println!("verify: {passed} passed, {failed} failed");
            }
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Bench(args) => bench(args),
        Command::Explain { code, json } => match crate::troubleshoot::explain::lookup(&code) {
            Some(info) if json => {
                println!("{}", serde_json::to_string_pretty(info).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Some(info) => {
                print!("{}", crate::troubleshoot::explain::render(info));
                ExitCode::SUCCESS
            }
            None => {
                eprintln!(
                    "unknown error code `{code}`: sockgen knows these: {}",
                    crate::troubleshoot::explain::CATALOGUE
                        .iter()
                        .map(|e| e.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                ExitCode::from(1)
            }
        },
        Command::Analyze {
            port,
            pid,
            from,
            json,
        } => analyze(port, pid, from, json),
        Command::Schema => {
            let schema = crate::spec::json_schema();
            match serde_json::to_string_pretty(&schema) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Models => {
            print!("{}", matrix::matrix_table());
            ExitCode::SUCCESS
        }
        Command::Init { file } => init(file),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "sockgen",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Man => {
            use clap::CommandFactory;
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// The starter spec `sockgen init` writes: every key, commented, with its default.
pub const STARTER_SPEC: &str = include_str!("starter.yaml");

fn init(file: Option<PathBuf>) -> ExitCode {
    let Some(path) = file else {
        print!("{STARTER_SPEC}");
        return ExitCode::SUCCESS;
    };
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path);
    match created.and_then(|mut f| f.write_all(STARTER_SPEC.as_bytes())) {
        Ok(()) => {
            eprintln!(
                "wrote {}: edit it, then `sockgen check {}`",
                path.display(),
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot create {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}

fn bench(args: BenchArgs) -> ExitCode {
    use crate::proof::bench::{self, BenchConfig, Case, Contender};
    let bad_usage = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(1)
    };
    if args.connections.iter().chain(&args.sizes).any(|&n| n == 0) || args.pipeline == 0 {
        return bad_usage("--connections, --sizes and --pipeline must be positive".into());
    }
    if args.connections.iter().any(|&n| n > 20_000)
        || args.sizes.iter().any(|&n| n > 16 << 20)
        || args.pipeline > 1024
    {
        return bad_usage(
            "at most 20000 connections, 16 MiB messages and a pipeline of 1024".into(),
        );
    }
    if !(1..=600_000).contains(&args.duration_ms) || args.warmup_ms > 60_000 {
        return bad_usage("--duration-ms must be 1..=600000 and --warmup-ms at most 60000".into());
    }
    // Minutes of measurements must not be lost to a chart path that cannot be written: check
    // it first, and print the tables even if writing fails at the end.
    if let Some(path) = &args.chart {
        let existed = path.exists();
        if let Err(e) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            return bad_usage(format!("cannot write the chart to {}: {e}", path.display()));
        }
        if !existed {
            let _ = std::fs::remove_file(path);
        }
    }
    let progress = ProgressLine::new("bench");
    let reporter = progress.clone();
    let mut config = BenchConfig {
        progress: bench::Progress::new(move |done, total, what| reporter.step(done, total, what)),
        cases: args
            .connections
            .iter()
            .flat_map(|&connections| {
                args.sizes.iter().map(move |&size| Case {
                    connections,
                    size,
                    pipeline: args.pipeline,
                })
            })
            .collect(),
        warmup: std::time::Duration::from_millis(args.warmup_ms),
        duration: std::time::Duration::from_millis(args.duration_ms),
        streaming: !args.no_stream,
        repeats: usize::from(args.repeats),
        ..BenchConfig::default()
    };
    let plans = match crate::proof::select_plans(&args.spec, args.only.lang, args.only.model) {
        Ok(plans) => {
            // Warnings are about the spec, the same in every plan: said once.
            if let Some(plan) = plans.first() {
                warn(plan);
            }
            plans
        }
        Err(e) => return fail(&e),
    };
    // Winsock servers run under Wine, whose socket calls pass through its server process:
    // their figures compare with one another, not with Linux servers. They are benched when
    // the spec's language (or --lang) is winsock, and then alone.
    let only_windows = plans.iter().all(|p| p.lang == crate::spec::Lang::Winsock);
    let windows = only_windows
        || crate::plan_file(&args.spec, crate::Overrides::default())
            .is_ok_and(|p| p.lang == crate::spec::Lang::Winsock);
    let plans: Vec<_> = plans
        .into_iter()
        .filter(|p| (p.lang == crate::spec::Lang::Winsock) == windows)
        .collect();
    if let Some(p) = plans
        .iter()
        .find(|p| p.handler != crate::spec::Handler::Echo)
    {
        return bad_usage(format!(
            "bench drives echo servers (TCP or UDP); {} is a {} {} {}",
            args.spec.display(),
            p.protocol,
            p.handler,
            p.role
        ));
    }
    let udp = plans.iter().any(|p| !p.is_tcp());
    config.udp = udp;
    // Streaming measures a TCP byte stream into a discard server: nothing to stream over UDP.
    config.streaming &= !udp;
    let mut peers = Vec::new();
    for p in &args.peers {
        let (name, command) = match p.split_once('=') {
            Some((name, command)) if !name.is_empty() && command.contains("{port}") => {
                (name.to_string(), command.to_string())
            }
            Some(_) => {
                return bad_usage(format!(
                    "--peer {p}: expected NAME=COMMAND with {{port}} in the command"
                ))
            }
            None if p == "tokio" => {
                let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
                match bench::tokio_peer_command(root, udp) {
                    Ok(command) => ("tokio".to_string(), command),
                    Err(e) => return bad_usage(e),
                }
            }
            None => return bad_usage(format!("--peer {p}: expected NAME=COMMAND or `tokio`")),
        };
        peers.push((name, command));
    }

    let workdir = match tempfile::Builder::new().prefix("sockgen-bench-").tempdir() {
        Ok(d) => d,
        Err(e) => return bad_usage(e.to_string()),
    };
    let mut builds = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let label = format!("{}/{}", plan.lang, plan.model);
        progress.step(i, plans.len(), &format!("building {label}"));
        let dir = workdir.path().join(label.replace('/', "-"));
        let mut discard = plan.clone();
        discard.handler = crate::spec::Handler::Discard;
        discard.name = format!("{}_discard", plan.name);
        let stream_dir = dir.join("discard");
        for d in [&dir, &stream_dir] {
            if let Err(e) = std::fs::create_dir_all(d) {
                return bad_usage(format!("cannot create {}: {e}", d.display()));
            }
        }
        let echo = crate::proof::build(plan, &dir);
        // The discard build serves only the streaming case.
        let discard = if config.streaming {
            crate::proof::build(&discard, &stream_dir)
        } else {
            echo.clone()
        };
        match (echo, discard) {
            (Ok(echo), Ok(discard)) => builds.push((label, echo, discard)),
            (Err((_, e)), _) | (_, Err((_, e))) => return bad_usage(e),
        }
    }

    let mut results = Vec::new();
    let mut targets: Vec<Contender> = builds
        .iter()
        .map(|(label, echo, _)| Contender::Generated {
            label: label.clone(),
            binary: echo,
        })
        .collect();
    targets.extend(peers.iter().map(|(name, command)| Contender::Peer {
        label: name.clone(),
        command: command.clone(),
    }));
    match bench::bench_all(&targets, &config) {
        Ok(r) => results.extend(r),
        Err(e) => return bad_usage(e),
    }
    let mut streams = Vec::new();
    let mut ceiling = None;
    if config.streaming {
        let targets: Vec<Contender> = builds
            .iter()
            .map(|(label, _, discard)| Contender::Generated {
                label: format!("{label} discard"),
                binary: discard,
            })
            .collect();
        match bench::bench_streams(&targets, &config) {
            Ok((s, c)) => {
                streams = s;
                ceiling = c;
            }
            Err(e) => return bad_usage(e),
        }
    }
    progress.finish();
    let chart_failed = args.chart.as_ref().and_then(|path| {
        std::fs::write(path, bench::chart_svg(&results))
            .err()
            .map(|e| format!("cannot write the chart to {}: {e}", path.display()))
    });
    let errors: u64 = results.iter().map(|r| r.errors).sum();
    let (server_cpu, client_cpu) = bench::cpu_plan();
    if args.json {
        let doc = serde_json::json!({
            "spec": args.spec.display().to_string(),
            "machine": { "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
                         "server_cpu": server_cpu, "load_generator_cpu": client_cpu },
            "warmup_ms": args.warmup_ms,
            "duration_ms": args.duration_ms,
            "repeats": args.repeats,
            "cases": results,
            "streaming": streams,
            "iperf3_mb_per_s": ceiling,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        let pinning = match (server_cpu, client_cpu) {
            (Some(s), Some(c)) => format!("server on CPU {s}, load generator on CPU {c}"),
            _ => "one CPU: no pinning".to_string(),
        };
        println!(
            "{} — median of {} interleaved runs of {} ms after {} ms warm-up; {pinning}",
            args.spec.display(),
            args.repeats,
            args.duration_ms,
            args.warmup_ms
        );
        print!(
            "{}",
            bench::table(&results, peers.first().map(|(n, _)| n.as_str()))
        );
        if !streams.is_empty() {
            println!("\nstreaming (one connection, 64 KiB writes into a discard server):");
            for s in &streams {
                let vs = ceiling.map_or(String::new(), |c| {
                    format!("  {:.2}× iperf3", s.mb_per_s / c)
                });
                let cpu = s
                    .server_cpu_ns_per_mb
                    .map_or("-".to_string(), |v| format!("{:.0}", v / 1e3));
                println!(
                    "  {:<24} {:>9.1} MB/s  server CPU {cpu} µs/MB{vs}",
                    s.server, s.mb_per_s
                );
            }
            if let Some(c) = ceiling {
                println!(
                    "  {:<24} {:>9.1} MB/s  (iperf3's single stream, for reference: not a ceiling)",
                    "iperf3", c
                );
            }
        }
    }
    if let Some(message) = chart_failed {
        return bad_usage(message);
    }
    if errors > 0 {
        eprintln!("error: {errors} connections failed or returned wrong bytes");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn analyze(port: Option<u16>, pid: Option<u32>, from: Option<PathBuf>, json: bool) -> ExitCode {
    use crate::troubleshoot::analyze;
    let snapshot = match &from {
        Some(path) => {
            if pid.is_some() {
                eprintln!("error: --pid needs live data (saved ss/netstat output has no socket inodes); drop --from or --pid");
                return ExitCode::from(1);
            }
            let text = if path.as_os_str() == "-" {
                let mut text = String::new();
                match std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
                    Ok(_) => text,
                    Err(e) => {
                        eprintln!("error: cannot read stdin: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else {
                match std::fs::read_to_string(path) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("error: cannot read {}: {e}", path.display());
                        return ExitCode::from(1);
                    }
                }
            };
            let name = if path.as_os_str() == "-" {
                "stdin".to_string()
            } else {
                path.display().to_string()
            };
            analyze::parse_saved(&text, &name)
        }
        None => analyze::read_live(),
    };
    let snapshot = match snapshot {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let inodes = match pid {
        Some(pid) => match analyze::process_socket_inodes(pid) {
            Ok(i) => Some(i),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    let somaxconn = if snapshot.live {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
    } else {
        None
    };
    let report = analyze::analyze(&snapshot, &analyze::Filter { port, inodes, pid }, somaxconn);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", analyze::render(&report));
    }
    ExitCode::SUCCESS
}

fn check(spec: &std::path::Path, target: Overrides, port_free: bool) -> ExitCode {
    let plan = match crate::plan_file(spec, target) {
        Ok(plan) => plan,
        Err(e) => return fail(&e),
    };
    warn(&plan);
    // A client binds no port: there is nothing to find free.
    let port_free = port_free && !plan.is_client();
    if port_free && plan.port != 0 {
        if let Err(error) = crate::troubleshoot::port_is_free(&plan) {
            let owners = crate::troubleshoot::port_owners(plan.port, plan.protocol);
            let held_by = if owners.is_empty() {
                String::new()
            } else {
                format!(" (held by {})", owners.join(", "))
            };
            let source = match crate::SourceFile::read(spec) {
                Ok(s) => s,
                Err(e) => return fail(&Error::Load(e)),
            };
            let mut d = crate::Diagnostic::error(format!(
                "{} port {} on {} cannot be bound now: {error}{held_by}",
                plan.protocol, plan.port, plan.address
            ))
            .with_hint("stop the other server, choose another port, or port 0; `sockgen analyze --port P` shows who uses it");
            if let Some(span) = crate::top_level_value_span(&source, "port") {
                d = d.with_span(span).with_label("in use");
            }
            eprint!(
                "{}",
                crate::Diagnostics {
                    source,
                    items: vec![d]
                }
            );
            return ExitCode::from(1);
        }
    }
    let free = if port_free && plan.port != 0 {
        format!(", {} port {} is free", plan.protocol, plan.port)
    } else {
        String::new()
    };
    println!(
        "{}: ok ({} {} {}, --lang {} --model {}{free})",
        spec.display(),
        plan.protocol,
        plan.handler,
        plan.role,
        plan.lang,
        plan.model
    );
    ExitCode::SUCCESS
}
