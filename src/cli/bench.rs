//! `sockgen bench`: the spec's outputs (and peers) measured side by side under the same load.

use std::process::ExitCode;

use super::{fail, warn, BenchArgs, ProgressLine};

pub(super) fn bench(args: BenchArgs) -> ExitCode {
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
