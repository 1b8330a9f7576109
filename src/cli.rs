//! The `sockgen` command line. Thin: every command is a call into the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::render::{self, FileState, Layout};
use crate::spec::{Lang, Model};
use crate::target::lang;
use crate::{Error, Target};

/// Exit status when the spec itself is invalid (1 is every other failure).
pub const EXIT_INVALID_SPEC: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "sockgen",
    version,
    about = "Generate proven socket servers from a declarative spec"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Render a spec to source code: one file on stdout, or a buildable project with -o.
    Render {
        /// The spec file (*.yaml, *.yml or *.toml).
        spec: PathBuf,
        #[command(flatten)]
        target: TargetArgs,
        /// Write a project (source, handler callbacks, build file) into DIR.
        #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// Write nothing; exit 1 if the files in DIR differ from what would be written.
        #[arg(long, requires = "out_dir")]
        check: bool,
    },
    /// Validate a spec and report every problem; exit 0 if valid, 2 if not.
    Check {
        spec: PathBuf,
        #[command(flatten)]
        target: TargetArgs,
        /// Also check that the spec's address and port can be bound now (exit 1 if in use).
        #[arg(long)]
        port_free: bool,
    },
    /// Explain a socket error: an errno name or number, or a Winsock name or number.
    Explain {
        /// EAGAIN, 11, WSAECONNRESET, 10054, …
        code: String,
        #[arg(long)]
        json: bool,
    },
    /// Report connection states, listen queues and socket memory, with findings.
    Analyze {
        /// Only sockets whose local or remote port is P.
        #[arg(long)]
        port: Option<u16>,
        /// Only sockets the process PID holds (live data only).
        #[arg(long)]
        pid: Option<u32>,
        /// Read saved `ss -tanmi` or `netstat -an` output from FILE, or `-` for stdin.
        #[arg(long, value_name = "FILE|-")]
        from: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Compile the spec's output, run it on loopback and check every byte; exit 1 on any failure.
    Verify {
        spec: PathBuf,
        #[command(flatten)]
        only: FilterArgs,
        /// Print a JSON report instead of text.
        #[arg(long)]
        json: bool,
        /// Combinations proven at once.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
    },
    /// Measure the spec's outputs under load (and peers in the same run); see README "Benchmarks".
    Bench(BenchArgs),
    /// Print the JSON Schema (draft-07) of the spec format.
    Schema,
    /// Print which I/O models each language supports.
    Models,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    pub spec: PathBuf,
    #[command(flatten)]
    pub only: FilterArgs,
    /// Every (lang, model) the spec allows (the default when neither --lang nor --model is given).
    #[arg(long, conflicts_with_all = ["lang", "model"])]
    pub all: bool,
    /// Concurrent connections per case, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 64, 1000], value_parser = clap::value_parser!(usize))]
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
pub struct TargetArgs {
    /// Output language [default: the spec's `lang`, else c].
    #[arg(long, value_parser = parse_lang)]
    pub lang: Option<Lang>,
    /// I/O model [default: the spec's `model`, else the platform's best].
    #[arg(long, value_parser = parse_model)]
    pub model: Option<Model>,
}

impl From<TargetArgs> for Target {
    fn from(args: TargetArgs) -> Target {
        Target {
            lang: args.lang,
            model: args.model,
        }
    }
}

/// Narrows the (lang, model) combinations a command runs through.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct FilterArgs {
    /// Only this language [default: every language sockgen emits].
    #[arg(long, value_parser = parse_lang)]
    pub lang: Option<Lang>,
    /// Only this model [default: every model the spec allows].
    #[arg(long, value_parser = parse_model)]
    pub model: Option<Model>,
}

fn parse_lang(s: &str) -> Result<Lang, String> {
    s.parse()
}

fn parse_model(s: &str) -> Result<Model, String> {
    s.parse()
}

/// Runs the CLI with the process's arguments.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
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
    run(cli.command)
}

fn fail(e: &Error) -> ExitCode {
    eprint!("{e}");
    if !matches!(e, Error::Invalid(_)) {
        eprintln!();
    }
    match e {
        Error::Invalid(_) => ExitCode::from(EXIT_INVALID_SPEC),
        _ => ExitCode::from(1),
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
            let target = Target::from(target);
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
        } => {
            let options = crate::proof::ProofOptions::default();
            let reports = match crate::proof::verify(
                &spec,
                only.lang,
                only.model,
                &options,
                usize::from(jobs),
            ) {
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
                for r in &reports {
                    print!("{}", r.summary());
                }
                println!("verify: {passed} passed, {failed} failed");
            }
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Bench(args) => bench(args),
        Command::Explain { code, json } => match crate::diagnose::explain::lookup(&code) {
            Some(info) if json => {
                println!("{}", serde_json::to_string_pretty(info).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Some(info) => {
                print!("{}", crate::diagnose::explain::render(info));
                ExitCode::SUCCESS
            }
            None => {
                eprintln!(
                    "unknown error code `{code}`: sockgen knows these: {}",
                    crate::diagnose::explain::CATALOGUE
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
            print!("{}", lang::matrix_table());
            ExitCode::SUCCESS
        }
    }
}

fn bench(args: BenchArgs) -> ExitCode {
    use crate::proof::bench::{self, BenchConfig, Case, Target as BenchTarget};
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
    let config = BenchConfig {
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
                match bench::tokio_peer_command(root) {
                    Ok(command) => ("tokio".to_string(), command),
                    Err(e) => return bad_usage(e),
                }
            }
            None => return bad_usage(format!("--peer {p}: expected NAME=COMMAND or `tokio`")),
        };
        peers.push((name, command));
    }

    let plans = match crate::proof::select_plans(&args.spec, args.only.lang, args.only.model) {
        Ok(plans) => plans,
        Err(e) => return fail(&e),
    };
    if let Some(p) = plans.iter().find(|p| {
        p.protocol != crate::spec::Protocol::Tcp || p.handler != crate::spec::Handler::Echo
    }) {
        return bad_usage(format!(
            "bench drives TCP echo servers; {} is a {} {} server",
            args.spec.display(),
            p.protocol,
            p.handler
        ));
    }
    let workdir = match tempfile::Builder::new().prefix("sockgen-bench-").tempdir() {
        Ok(d) => d,
        Err(e) => return bad_usage(e.to_string()),
    };
    let mut builds = Vec::new();
    for plan in &plans {
        let label = format!("{}/{}", plan.lang, plan.model);
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
        match (
            crate::proof::build(plan, &dir),
            crate::proof::build(&discard, &stream_dir),
        ) {
            (Ok(echo), Ok(discard)) => builds.push((label, echo, discard)),
            (Err((_, e)), _) | (_, Err((_, e))) => return bad_usage(e),
        }
    }

    let mut results = Vec::new();
    let mut targets: Vec<BenchTarget> = builds
        .iter()
        .map(|(label, echo, _)| BenchTarget::Generated {
            label: label.clone(),
            binary: echo,
        })
        .collect();
    targets.extend(peers.iter().map(|(name, command)| BenchTarget::Peer {
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
        let targets: Vec<BenchTarget> = builds
            .iter()
            .map(|(label, _, discard)| BenchTarget::Generated {
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
    if let Some(path) = &args.chart {
        if let Err(e) = std::fs::write(path, bench::chart_svg(&results)) {
            return bad_usage(format!("cannot write {}: {e}", path.display()));
        }
    }
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
                    "  {:<24} {:>9.1} MB/s  (single-stream loopback ceiling)",
                    "iperf3", c
                );
            }
        }
    }
    if errors > 0 {
        eprintln!("error: {errors} connections failed or returned wrong bytes");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn analyze(port: Option<u16>, pid: Option<u32>, from: Option<PathBuf>, json: bool) -> ExitCode {
    use crate::diagnose::analyze;
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

fn check(spec: &std::path::Path, target: Target, port_free: bool) -> ExitCode {
    let plan = match crate::plan_file(spec, target) {
        Ok(plan) => plan,
        Err(e) => return fail(&e),
    };
    if port_free && plan.port != 0 {
        if let Err(error) = crate::diagnose::port_is_free(&plan) {
            let owners = crate::diagnose::port_owners(plan.port, plan.protocol);
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
        "{}: ok ({} {} server, --lang {} --model {}{free})",
        spec.display(),
        plan.protocol,
        plan.handler,
        plan.lang,
        plan.model
    );
    ExitCode::SUCCESS
}
