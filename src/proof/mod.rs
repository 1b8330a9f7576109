//! Stage 5, **proof**: compile generated code, run it on loopback, drive traffic, verify every
//! byte, stop it. One harness serves the test suite (and the `verify`/`bench` commands that
//! grow from it): find a toolchain, build in a temporary directory, start the program on port
//! 0, read its ready line, check, send SIGTERM, expect exit status 0.

pub mod harness;
pub mod load;
pub mod toolchain;

use std::path::Path;
use std::time::Duration;

use crate::plan::{Handler, Plan, Protocol};
use crate::render::{self, Layout};

pub use harness::{RunningServer, StopOutcome};
pub use toolchain::CCompiler;

/// What a proof run checked, for reports and test failures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProofReport {
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

    pub fn summary(&self) -> String {
        let mut out = format!(
            "{} --lang {} --model {} ({})\n",
            self.name, self.lang, self.model, self.protocol
        );
        for c in &self.checks {
            out.push_str(&format!(
                "  {} {}: {}\n",
                if c.passed { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            ));
        }
        out
    }
}

/// How much traffic the loopback proof drives.
#[derive(Debug, Clone)]
pub struct ProofOptions {
    pub tcp_connections: usize,
    pub tcp_bytes_per_connection: usize,
    pub udp_sizes: Vec<usize>,
    pub udp_sockets: usize,
    pub seed: u64,
    pub ready_timeout: Duration,
    pub stop_timeout: Duration,
}

impl Default for ProofOptions {
    fn default() -> Self {
        ProofOptions {
            tcp_connections: 8,
            tcp_bytes_per_connection: 1 << 20,
            udp_sizes: vec![0, 1, 1472, 65507],
            udp_sockets: 4,
            seed: 0x5eed_0f50_c6e7,
            ready_timeout: Duration::from_secs(10),
            stop_timeout: Duration::from_secs(5),
        }
    }
}

/// Renders `plan` as one C file, compiles it with strict flags into `workdir`, and proves it.
pub fn prove_c(
    plan: &Plan,
    compiler: &CCompiler,
    workdir: &Path,
    options: &ProofOptions,
) -> Result<ProofReport, String> {
    let files = render::render(plan, Layout::SingleFile).map_err(|e| e.to_string())?;
    let source = workdir.join(&files[0].path);
    std::fs::write(&source, &files[0].contents)
        .map_err(|e| format!("write {}: {e}", source.display()))?;
    let binary = workdir.join(&plan.name);
    compiler.compile(&source, &binary)?;
    prove_binary(plan, &binary, options)
}

/// Starts an already built server and checks it according to its plan.
pub fn prove_binary(
    plan: &Plan,
    binary: &Path,
    options: &ProofOptions,
) -> Result<ProofReport, String> {
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
        (Protocol::Tcp, Handler::Echo | Handler::Custom) => record(
            "tcp echo",
            load::tcp_echo(
                addr,
                options.tcp_connections,
                options.tcp_bytes_per_connection,
                options.seed,
            ),
        ),
        (Protocol::Tcp, Handler::Discard) => record(
            "tcp discard",
            load::tcp_discard(
                addr,
                options.tcp_bytes_per_connection,
                plan.socket.linger_s == Some(0),
            ),
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
    }
    let stop = server.stop(options.stop_timeout);
    record("SIGTERM stops with status 0", stop.check());
    Ok(ProofReport {
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
    use crate::spec::{Keyword, Lang};
    use crate::target::lang::emitted_models;
    let source = crate::SourceFile::read(spec).map_err(crate::Error::Load)?;
    // A spec that is invalid on its own terms is an error, not an empty matrix.
    crate::plan_source(&source, crate::Target::default())?;
    let mut plans = Vec::new();
    let mut excluded = Vec::new();
    for &lang in Lang::ALL {
        for model in emitted_models(lang) {
            let target = crate::Target {
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
