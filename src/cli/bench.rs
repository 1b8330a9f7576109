//! `sockgen bench`: the spec's outputs (and peers) measured side by side under the same load.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{fail, warn, BenchArgs, ProgressLine};
use crate::plan::Plan;
use crate::proof::bench::{self, BenchConfig, Case, CaseResult, Contender, StreamResult};
use crate::proof::bench_idle::{self, IdleResult};

/// One generated server, built twice: the echo build runs the cases, the discard build the
/// streaming case (the same binary when there is no streaming).
struct Build {
    label: String,
    echo: PathBuf,
    discard: PathBuf,
}

/// What the runs measured.
struct Measured {
    results: Vec<CaseResult>,
    streams: Vec<StreamResult>,
    /// iperf3's single stream, when it could be measured.
    ceiling: Option<f64>,
    idle: Vec<IdleResult>,
}

/// Bench fails with 1 for everything but an invalid spec (2), as the other commands do.
fn bad_usage(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(1)
}

pub(super) fn bench(args: BenchArgs) -> ExitCode {
    if let Err(message) = check_args(&args) {
        return bad_usage(message);
    }
    let progress = ProgressLine::new("bench");
    let mut config = config(&args, &progress);
    let plans = match plans(&args) {
        Ok(plans) => plans,
        Err(exit) => return exit,
    };
    let udp = plans.iter().any(|p| !p.is_tcp());
    config.udp = udp;
    // Streaming measures a TCP byte stream into a discard server: nothing to stream over UDP.
    config.streaming &= !udp;
    let peers = match peers(&args.peers, udp) {
        Ok(peers) => peers,
        Err(message) => return bad_usage(message),
    };

    let workdir = match tempfile::Builder::new().prefix("sockgen-bench-").tempdir() {
        Ok(d) => d,
        Err(e) => return bad_usage(e.to_string()),
    };
    let builds = match build(&plans, workdir.path(), config.streaming, &progress) {
        Ok(builds) => builds,
        Err(message) => return bad_usage(message),
    };
    let idle_counts = if args.no_idle || udp {
        Vec::new()
    } else {
        args.idle.clone()
    };
    let measured = match measure(&builds, &peers, &config, &idle_counts) {
        Ok(measured) => measured,
        Err(message) => return bad_usage(message),
    };
    progress.finish();
    let chart_failed = args.chart.as_ref().and_then(|path| {
        let title = format!("sockgen bench {}", args.spec.display());
        let baseline = peers.first().map(|(n, _)| n.as_str());
        std::fs::write(path, bench::chart_svg(&measured.results, &title, baseline))
            .err()
            .map(|e| format!("cannot write the chart to {}: {e}", path.display()))
    });
    let errors: u64 = measured.results.iter().map(|r| r.errors).sum();
    if args.json {
        print_json(&args, &measured);
    } else {
        print_tables(&args, &measured, peers.first().map(|(n, _)| n.as_str()));
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

/// The limits on the numbers, and the chart path, checked before anything is built.
fn check_args(args: &BenchArgs) -> Result<(), String> {
    if args.connections.iter().chain(&args.sizes).any(|&n| n == 0) || args.pipeline == 0 {
        return Err("--connections, --sizes and --pipeline must be positive".into());
    }
    if args.connections.iter().any(|&n| n > 20_000)
        || args.sizes.iter().any(|&n| n > 16 << 20)
        || args.pipeline > 1024
    {
        return Err("at most 20000 connections, 16 MiB messages and a pipeline of 1024".into());
    }
    if !args.no_idle && args.idle.contains(&0) {
        return Err("--idle counts must be positive (--no-idle skips the case)".into());
    }
    // The load generator holds every connection of a case at once, plus a few descriptors
    // of its own.
    let most = args
        .connections
        .iter()
        .chain(if args.no_idle {
            &[][..]
        } else {
            &args.idle[..]
        })
        .max()
        .copied()
        .unwrap_or(0) as u64;
    let room = bench_idle::raise_descriptor_limit().saturating_sub(64);
    if most > room {
        return Err(format!(
            "{most} connections need {most} descriptors in this process, and it may hold {room} \
             besides its own (the hard limit, `ulimit -Hn`, less 64)"
        ));
    }
    if !(1..=600_000).contains(&args.duration_ms) || args.warmup_ms > 60_000 {
        return Err("--duration-ms must be 1..=600000 and --warmup-ms at most 60000".into());
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
            return Err(format!("cannot write the chart to {}: {e}", path.display()));
        }
        if !existed {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(())
}

/// The cases (--connections × --sizes) and timings; `udp` is set once the plans are known.
fn config(args: &BenchArgs, progress: &ProgressLine) -> BenchConfig {
    let reporter = progress.clone();
    BenchConfig {
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
    }
}

/// The (lang, model) plans to bench, all echo servers. `Err` is the exit status, the reason
/// already printed.
fn plans(args: &BenchArgs) -> Result<Vec<Plan>, ExitCode> {
    let plans = match crate::proof::select_plans(&args.spec, args.only.lang, args.only.model) {
        Ok(plans) => {
            // Warnings are about the spec, the same in every plan: said once.
            if let Some(plan) = plans.first() {
                warn(plan);
            }
            plans
        }
        Err(e) => return Err(fail(&e)),
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
        return Err(bad_usage(format!(
            "bench drives echo servers (TCP or UDP); {} is a {} {} {}",
            args.spec.display(),
            p.protocol,
            p.handler,
            p.role
        )));
    }
    Ok(plans)
}

/// Each `--peer` as (name, command with {port}); `tokio` is the echo server in benches/.
fn peers(specs: &[String], udp: bool) -> Result<Vec<(String, String)>, String> {
    let mut peers = Vec::new();
    for p in specs {
        let (name, command) = match p.split_once('=') {
            Some((name, command)) if !name.is_empty() && command.contains("{port}") => {
                (name.to_string(), command.to_string())
            }
            Some(_) => {
                return Err(format!(
                    "--peer {p}: expected NAME=COMMAND with {{port}} in the command"
                ))
            }
            None if p == "tokio" => ("tokio".to_string(), bench::tokio_peer_command(udp)?),
            None => return Err(format!("--peer {p}: expected NAME=COMMAND or `tokio`")),
        };
        peers.push((name, command));
    }
    Ok(peers)
}

/// Builds every plan in its own directory under `workdir`, and its discard twin if streaming.
fn build(
    plans: &[Plan],
    workdir: &Path,
    streaming: bool,
    progress: &ProgressLine,
) -> Result<Vec<Build>, String> {
    let mut builds = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let label = format!("{}/{}", plan.lang, plan.model);
        progress.step(i, plans.len(), &format!("building {label}"));
        let dir = workdir.join(label.replace('/', "-"));
        let mut discard = plan.clone();
        discard.handler = crate::spec::Handler::Discard;
        discard.name = format!("{}_discard", plan.name);
        let stream_dir = dir.join("discard");
        for d in [&dir, &stream_dir] {
            if let Err(e) = std::fs::create_dir_all(d) {
                return Err(format!("cannot create {}: {e}", d.display()));
            }
        }
        let echo = crate::proof::build(plan, &dir);
        // The discard build serves only the streaming case.
        let discard = if streaming {
            crate::proof::build(&discard, &stream_dir)
        } else {
            echo.clone()
        };
        match (echo, discard) {
            (Ok(echo), Ok(discard)) => builds.push(Build {
                label,
                echo,
                discard,
            }),
            (Err((_, e)), _) | (_, Err((_, e))) => return Err(e),
        }
    }
    Ok(builds)
}

/// Every case for the builds and peers, interleaved, then the streaming case for the builds.
fn measure(
    builds: &[Build],
    peers: &[(String, String)],
    config: &BenchConfig,
    idle_counts: &[usize],
) -> Result<Measured, String> {
    let mut targets: Vec<Contender> = builds
        .iter()
        .map(|b| Contender::Generated {
            label: b.label.clone(),
            binary: &b.echo,
        })
        .collect();
    targets.extend(peers.iter().map(|(name, command)| Contender::Peer {
        label: name.clone(),
        command: command.clone(),
    }));
    let results = bench::bench_all(&targets, config)?;
    let idle = bench_idle::bench_idle(&targets, idle_counts, config)?;
    let (streams, ceiling) = if config.streaming {
        let targets: Vec<Contender> = builds
            .iter()
            .map(|b| Contender::Generated {
                label: format!("{} discard", b.label),
                binary: &b.discard,
            })
            .collect();
        bench::bench_streams(&targets, config)?
    } else {
        (Vec::new(), None)
    };
    Ok(Measured {
        results,
        streams,
        ceiling,
        idle,
    })
}

fn print_json(args: &BenchArgs, measured: &Measured) {
    let (server_cpu, client_cpu) = bench::cpu_plan();
    let doc = serde_json::json!({
        "spec": args.spec.display().to_string(),
        "machine": { "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
                     "server_cpu": server_cpu, "load_generator_cpu": client_cpu },
        "warmup_ms": args.warmup_ms,
        "duration_ms": args.duration_ms,
        "repeats": args.repeats,
        "cases": measured.results,
        "streaming": measured.streams,
        "iperf3_mb_per_s": measured.ceiling,
        "idle": measured.idle,
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

/// The cases' table, ratios against `baseline` (the first peer), then the streaming case.
fn print_tables(args: &BenchArgs, measured: &Measured, baseline: Option<&str>) {
    let (server_cpu, client_cpu) = bench::cpu_plan();
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
    print!("{}", bench::table(&measured.results, baseline));
    if !measured.streams.is_empty() {
        println!("\nstreaming (one connection, 64 KiB writes into a discard server):");
        for s in &measured.streams {
            let vs = measured.ceiling.map_or(String::new(), |c| {
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
        if let Some(c) = measured.ceiling {
            println!(
                "  {:<24} {:>9.1} MB/s  (iperf3's single stream, for reference: not a ceiling)",
                "iperf3", c
            );
        }
    }
    if !measured.idle.is_empty() {
        print!("\n{}", bench_idle::table(&measured.idle, baseline));
    }
}
