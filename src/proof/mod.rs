//! Stage 5, **proof**: compile generated code, run it on loopback, drive traffic, verify every
//! byte, stop it. One harness serves the test suite (and the `verify`/`bench` commands that
//! grow from it): find a toolchain, build in a temporary directory, start the program on port
//! 0, read its ready line, check, send SIGTERM, expect exit status 0.

pub mod bench;
pub mod bench_idle;
pub mod bench_udp;
pub mod client;
pub mod conversation;
pub mod faults;
pub mod harness;
pub mod load;
pub mod project;
pub mod toolchain;

use std::path::Path;
use std::time::Duration;

use crate::plan::{Handler, Plan, Protocol};
use crate::render::{self, Layout};

pub use harness::{RunningServer, StopOutcome};
pub use toolchain::{CCompiler, RustToolchain};

/// What a proof run checked, for reports and test failures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProofReport {
    pub spec: String,
    pub name: String,
    pub lang: String,
    pub model: String,
    pub protocol: String,
    pub checks: Vec<CheckResult>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

impl ProofReport {
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }

    /// A report for a combination that could not even be built or started.
    pub fn failed_before_running(plan: &Plan, stage: &str, detail: String) -> ProofReport {
        ProofReport {
            spec: plan.spec_file.clone(),
            name: plan.name.clone(),
            lang: plan.lang.to_string(),
            model: plan.model.to_string(),
            protocol: plan.protocol.to_string(),
            checks: vec![CheckResult {
                name: stage.to_string(),
                passed: false,
                detail,
            }],
        }
    }

    pub fn summary(&self) -> String {
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        let mut out = format!(
            "{verdict} {} --lang {} --model {} ({} {})\n",
            self.spec, self.lang, self.model, self.protocol, self.name
        );
        for c in &self.checks {
            // A detail of several lines (one per failed connection) stays under its check.
            out.push_str(&format!(
                "  {} {}: {}\n",
                if c.passed { "ok  " } else { "FAIL" },
                c.name,
                c.detail.replace('\n', "\n         ")
            ));
        }
        out
    }
}

/// How much traffic the loopback proof drives.
#[derive(Debug, Clone)]
pub struct ProofOptions {
    /// One concurrent TCP connection per entry, each echoing that many random bytes.
    pub tcp_payloads: Vec<usize>,
    /// UDP datagram sizes, each sent from every one of `udp_sockets` sockets.
    pub udp_sizes: Vec<usize>,
    pub udp_sockets: usize,
    pub seed: u64,
    pub ready_timeout: Duration,
    pub stop_timeout: Duration,
    /// Also run the fault suite (`verify --faults`, see [`faults`]).
    pub faults: bool,
    /// Commands run against each live server (`verify --with`): `{port}` and `{host}`
    /// substituted, exit status 0 passes.
    pub with: Vec<String>,
    /// Conversation files (`verify --conversation`), run against each live TCP server.
    pub conversations: Vec<conversation::Conversation>,
}

impl Default for ProofOptions {
    /// What `sockgen verify` and the test suite run: 16 concurrent connections with payloads
    /// from 1 byte to 4 MiB (eight of exactly 1 MiB, the rest spread log-uniformly), and UDP
    /// datagrams of 0, 1, 1472 (one Ethernet MTU) and 65507 (the IPv4 maximum) bytes.
    fn default() -> Self {
        let seed = 0x5eed_0f50_c6e7;
        let mut rng = load::Rng::new(seed);
        let mut tcp_payloads = vec![1, 4 << 20];
        tcp_payloads.extend([1 << 20; 8]);
        for _ in 0..6 {
            // 2^0 .. 2^22 bytes, uniform in the exponent.
            let exponent = rng.below(23);
            tcp_payloads.push((1usize << exponent) + rng.below(1 << exponent));
        }
        ProofOptions {
            tcp_payloads,
            udp_sizes: vec![0, 1, 1472, 65507],
            udp_sockets: 16,
            seed,
            ready_timeout: Duration::from_secs(10),
            stop_timeout: Duration::from_secs(5),
            faults: false,
            with: Vec::new(),
            conversations: Vec::new(),
        }
    }
}

/// Renders one self-contained C file into `workdir` and compiles it with the strict flags plus
/// `extra` (sanitizers, the analyzer); returns the program's path.
pub fn build_c(
    plan: &Plan,
    compiler: &CCompiler,
    workdir: &Path,
    extra: &[&str],
) -> Result<std::path::PathBuf, String> {
    let files = render::render(plan, Layout::SingleFile).map_err(|e| e.to_string())?;
    let source = workdir.join(&files[0].path);
    std::fs::write(&source, &files[0].contents)
        .map_err(|e| format!("write {}: {e}", source.display()))?;
    let binary = workdir.join(program_file(plan));
    compiler.compile_with(
        &[&source],
        &binary,
        extra,
        crate::backend::c::libraries(plan.lang, plan.model),
    )?;
    Ok(binary)
}

/// Writes the plan's project (`render -o` layout) into `workdir`, after the user's own files
/// (`(relative path, contents)`: a handler file, `sources`), which the render leaves alone as
/// it would in a user's directory; then builds it. Returns the program.
pub fn build_project(
    plan: &Plan,
    workdir: &Path,
    user_files: &[(String, String)],
) -> Result<std::path::PathBuf, (String, String)> {
    build_project_with(plan, workdir, user_files, &[])
}

/// [`build_project`] with more C compiler flags (sanitizers); ignored for Rust.
pub fn build_project_with(
    plan: &Plan,
    workdir: &Path,
    user_files: &[(String, String)],
    c_flags: &[&str],
) -> Result<std::path::PathBuf, (String, String)> {
    use crate::spec::Lang;
    let io = |e: std::io::Error| ("write".to_string(), e.to_string());
    for (path, contents) in user_files {
        let path = workdir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, contents).map_err(io)?;
    }
    let files =
        render::render(plan, Layout::Project).map_err(|e| ("render".to_string(), e.to_string()))?;
    render::rename_former(workdir, plan).map_err(|e| ("write".to_string(), e.to_string()))?;
    render::write(workdir, &files).map_err(|e| ("write".to_string(), e.to_string()))?;
    match plan.lang {
        Lang::C | Lang::Winsock => {
            let compiler =
                CCompiler::for_lang(plan.lang).map_err(|e| ("toolchain".to_string(), e))?;
            let mut sources = vec![workdir.join(format!("{}.c", plan.name))];
            sources.extend(plan.sources.iter().map(|s| workdir.join(s)));
            let sources: Vec<&Path> = sources.iter().map(|p| p.as_path()).collect();
            let binary = workdir.join(program_file(plan));
            compiler
                .compile_with(
                    &sources,
                    &binary,
                    c_flags,
                    crate::backend::c::libraries(plan.lang, plan.model),
                )
                .map_err(|e| ("compile".to_string(), e))?;
            Ok(binary)
        }
        Lang::Rust => {
            let toolchain = RustToolchain::find().map_err(|e| ("toolchain".to_string(), e))?;
            let built = toolchain
                .build(
                    workdir,
                    &plan.name,
                    crate::spec::Keyword::as_str(&plan.model),
                )
                .map_err(|e| ("compile".to_string(), e))?;
            let binary = workdir.join(&plan.name);
            std::fs::copy(&built, &binary).map_err(io)?;
            Ok(binary)
        }
    }
}

/// The program's file name: NAME, or NAME.exe for Windows (which the harness runs under Wine).
pub fn program_file(plan: &Plan) -> String {
    match plan.lang {
        crate::spec::Lang::Winsock => format!("{}.exe", plan.name),
        _ => plan.name.clone(),
    }
}

/// Renders and builds any language's output with its toolchain; returns the program. C is one
/// self-contained file; Rust, the crate `render -o` writes.
pub fn build(plan: &Plan, workdir: &Path) -> Result<std::path::PathBuf, (String, String)> {
    match plan.lang {
        crate::spec::Lang::C | crate::spec::Lang::Winsock => {
            let compiler =
                CCompiler::for_lang(plan.lang).map_err(|e| ("toolchain".to_string(), e))?;
            build_c(plan, &compiler, workdir, &[]).map_err(|e| ("compile".to_string(), e))
        }
        _ => build_project(plan, workdir, &[]),
    }
}

/// Proves one Plan end to end in a fresh temporary directory; never panics, and a failure at
/// any stage (toolchain, compile, start) becomes a failed report naming that stage.
pub fn prove(plan: &Plan, options: &ProofOptions) -> ProofReport {
    let dir = match tempfile::Builder::new().prefix("sockgen-proof-").tempdir() {
        Ok(d) => d,
        Err(e) => return ProofReport::failed_before_running(plan, "workdir", e.to_string()),
    };
    let binary = match build(plan, dir.path()) {
        Ok(b) => b,
        Err((stage, e)) => return ProofReport::failed_before_running(plan, &stage, e),
    };
    let mut report = match prove_binary(plan, &binary, options) {
        Ok(report) => report,
        Err(e) => return ProofReport::failed_before_running(plan, "start", e),
    };
    if options.faults && !plan.is_client() {
        report.checks.extend(faults::prove_faults(plan, &binary));
    }
    if plan.handler == Handler::Custom {
        // Said first, so nobody takes a pass for a proof of their own code.
        report.checks.insert(
            0,
            CheckResult {
                name: "program".into(),
                passed: true,
                detail: "the generated stub of `handler: custom`, not your handler: \
                         `sockgen verify DIR` proves the project `render -o DIR` wrote, with \
                         your files"
                    .into(),
            },
        );
    }
    report
}

/// `sockgen verify`: proves every (lang, model) the spec allows, narrowed by `lang`/`model`,
/// running up to `jobs` proofs at once. An invalid spec, or a filter the spec does not allow,
/// is an error with the usual diagnostics.
pub fn verify(
    spec: &Path,
    lang: Option<crate::spec::Lang>,
    model: Option<crate::spec::Model>,
    options: &ProofOptions,
    jobs: usize,
) -> Result<Vec<ProofReport>, crate::Error> {
    verify_reporting(spec, lang, model, options, jobs, |_, _| {})
}

/// [`verify`], telling `finished` about each report as soon as it is done (from the thread
/// that made it), with the number of combinations in all.
pub fn verify_reporting(
    spec: &Path,
    lang: Option<crate::spec::Lang>,
    model: Option<crate::spec::Model>,
    options: &ProofOptions,
    jobs: usize,
    finished: impl Fn(&ProofReport, usize) + Sync,
) -> Result<Vec<ProofReport>, crate::Error> {
    let plans = select_plans(spec, lang, model)?;
    Ok(run_parallel(&plans, jobs, |plan| {
        let report = prove(plan, options);
        finished(&report, plans.len());
        report
    }))
}

/// The Plans of every (lang, model) the spec allows, narrowed to `lang`/`model`. When the
/// narrowing leaves nothing, validation of that exact target says why (a model the language
/// lacks, a setting that rules it out), as an error.
pub fn select_plans(
    spec: &Path,
    lang: Option<crate::spec::Lang>,
    model: Option<crate::spec::Model>,
) -> Result<Vec<Plan>, crate::Error> {
    let plans: Vec<Plan> = matrix(spec)?
        .plans
        .into_iter()
        .filter(|p| lang.is_none_or(|l| p.lang == l) && model.is_none_or(|m| p.model == m))
        .collect();
    if plans.is_empty() {
        crate::plan_file(spec, crate::Overrides { lang, model })?;
    }
    Ok(plans)
}

/// Runs `f` over `items` on up to `jobs` threads, keeping the order of `items`.
pub fn run_parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Starts an already built server and checks it according to its plan.
pub fn prove_binary(
    plan: &Plan,
    binary: &Path,
    options: &ProofOptions,
) -> Result<ProofReport, String> {
    if plan.is_client() {
        return client::prove_client(plan, binary, options);
    }
    let loopback = if plan.is_ipv6() { "::1" } else { "127.0.0.1" };
    let server = RunningServer::start(binary, &["-a", loopback, "-p", "0"], options.ready_timeout)?;
    let addr = server.addr;
    let mut checks = Vec::new();
    let mut record = |name: &str, result: Result<String, String>| {
        checks.push(match result {
            Ok(detail) => CheckResult {
                name: name.to_string(),
                passed: true,
                detail,
            },
            Err(detail) => CheckResult {
                name: name.to_string(),
                passed: false,
                detail,
            },
        })
    };
    match (plan.protocol, plan.handler) {
        (Protocol::Tcp, Handler::Echo | Handler::Custom)
            if plan.framing != crate::plan::Framing::None =>
        {
            record(
                "tcp framed echo",
                load::tcp_framed_echo(addr, &plan.framing, plan.io.max_message, options.seed),
            )
        }
        (Protocol::Tcp, Handler::Echo | Handler::Custom) => record(
            "tcp echo",
            load::tcp_echo(addr, &options.tcp_payloads, options.seed),
        ),
        (Protocol::Tcp, Handler::Discard) => record(
            "tcp discard",
            load::tcp_discard(addr, 1 << 20, plan.socket.linger_s == Some(0)),
        ),
        (Protocol::Tcp, Handler::Chargen) => {
            record("tcp chargen", load::tcp_chargen(addr, 256 * 1024))
        }
        (Protocol::Udp, Handler::Echo | Handler::Custom) => record(
            "udp echo",
            load::udp_echo(addr, &options.udp_sizes, options.udp_sockets, options.seed),
        ),
        (Protocol::Udp, Handler::Discard) => record("udp discard", load::udp_discard(addr)),
        (Protocol::Udp, Handler::Chargen) => record("udp chargen", load::udp_chargen(addr, 32)),
        // Clients are proven above, against servers of the harness's own.
        (_, Handler::EchoCheck | Handler::Load) => {}
    }
    for check in conversation::checks(plan, &options.conversations, addr) {
        let result = if check.passed {
            Ok(check.detail)
        } else {
            Err(check.detail)
        };
        record(&check.name, result);
    }
    for with in project::run_with_commands(&options.with, addr) {
        let result = if with.passed {
            Ok(with.detail)
        } else {
            Err(with.detail)
        };
        record(&with.name, result);
    }
    let stop = server.stop(options.stop_timeout);
    record(
        &format!("{} stops with status 0", stop.signal.name()),
        stop.check(),
    );
    Ok(ProofReport {
        spec: plan.spec_file.clone(),
        name: plan.name.clone(),
        lang: plan.lang.to_string(),
        model: plan.model.to_string(),
        protocol: plan.protocol.to_string(),
        checks,
    })
}

/// Every (lang, model) sockgen emits, split into the Plans this spec allows and the ones its
/// settings rule out (with the reason), so callers can prove all of them and explain the rest.
pub struct Matrix {
    pub plans: Vec<Plan>,
    pub excluded: Vec<(crate::spec::Lang, crate::spec::Model, String)>,
}

pub fn matrix(spec: &Path) -> Result<Matrix, crate::Error> {
    use crate::backend::matrix::emitted_models;
    use crate::spec::{Keyword, Lang};
    let source = crate::SourceFile::read(spec).map_err(crate::Error::Load)?;
    // A spec that is invalid on its own terms is an error, not an empty matrix.
    crate::plan_source(&source, crate::Overrides::default())?;
    let mut plans = Vec::new();
    let mut excluded = Vec::new();
    for &lang in Lang::ALL {
        for model in emitted_models(lang) {
            let target = crate::Overrides {
                lang: Some(lang),
                model: Some(model),
            };
            match crate::plan_source(&source, target) {
                Ok(plan) => plans.push(plan),
                Err(crate::Error::Invalid(d)) => {
                    let reasons: Vec<String> = d.items.iter().map(|i| i.message.clone()).collect();
                    excluded.push((lang, model, reasons.join("; ")));
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(Matrix { plans, excluded })
}
