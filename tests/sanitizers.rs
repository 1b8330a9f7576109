//! The generated C under the tools that find what tests miss: every output proven by verify
//! when built with AddressSanitizer + UndefinedBehaviorSanitizer, the multi-threaded ones with
//! ThreadSanitizer, and every output clean under gcc's static analyzer. (The contract tests
//! also run every scenario against ASan+UBSan builds of the probe.)

mod common;

use std::path::Path;

use common::*;
use sockgen::proof::toolchain::{ASAN_UBSAN_FLAGS, TSAN_FLAGS};
use sockgen::proof::{self, CCompiler, ProofOptions};
use sockgen::Plan;

fn c_plans() -> Vec<Plan> {
    all_plans()
        .into_iter()
        .filter(|p| p.lang == sockgen::plan::Lang::C)
        .collect()
}

/// Renders the plan into `dir` and compiles it with the strict flags plus `extra`.
fn compile(plan: &Plan, dir: &Path, extra: &[&str]) -> Result<std::path::PathBuf, String> {
    proof::build_c(plan, &CCompiler::find()?, dir, extra)
}

/// Builds each plan with `flags` and runs verify's checks against it.
fn verify_all(plans: &[Plan], flags: &[&str]) -> Vec<String> {
    proof::run_parallel(plans, 2, |plan| {
        let dir = tempfile::tempdir().unwrap();
        let label = format!("{} --model {} {}", plan.spec_file, plan.model, flags[0]);
        let binary = match compile(plan, dir.path(), flags) {
            Ok(b) => b,
            Err(e) => return Some(format!("{label}: {e}")),
        };
        // Sanitized code runs slower: allow more time to stop.
        let options = ProofOptions {
            stop_timeout: std::time::Duration::from_secs(15),
            ..ProofOptions::default()
        };
        match proof::prove_binary(plan, &binary, &options) {
            Ok(report) if report.passed() => None,
            Ok(report) => Some(format!("{label}:\n{}", report.summary())),
            Err(e) => Some(format!("{label}: {e}")),
        }
    })
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn every_c_output_passes_verify_under_asan_and_ubsan() {
    let plans = c_plans();
    let failures = in_root(|| verify_all(&plans, ASAN_UBSAN_FLAGS));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn multi_threaded_c_outputs_pass_verify_under_tsan() {
    // Several workers, or a thread per connection sharing the worker's state.
    let plans: Vec<Plan> = c_plans()
        .into_iter()
        .filter(|p| {
            p.server.workers > 1 || (p.model == sockgen::plan::Model::Blocking && p.is_tcp())
        })
        .collect();
    assert!(plans.len() >= 3, "{} threaded outputs", plans.len());
    let failures = in_root(|| verify_all(&plans, TSAN_FLAGS));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_c_output_is_clean_under_the_static_analyzer() {
    let plans = c_plans();
    let failures: Vec<String> = in_root(|| {
        proof::run_parallel(&plans, 2, |plan| {
            let dir = tempfile::tempdir().unwrap();
            compile(plan, dir.path(), &["-fanalyzer"])
                .err()
                .map(|e| format!("{} --model {}: {e}", plan.spec_file, plan.model))
        })
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The fault suite (`verify --faults`) against every C echo server, TCP and UDP, built with
/// ASan + UBSan: a fault that makes the server touch freed memory, overflow a buffer or hit
/// undefined behaviour aborts it, and the scenario fails. Resident memory is not checked here
/// (ASan keeps freed blocks in quarantine).
#[test]
fn every_c_echo_server_survives_the_fault_suite_under_asan_and_ubsan() {
    let plans: Vec<Plan> = c_plans()
        .into_iter()
        .filter(|p| {
            p.handler == sockgen::plan::Handler::Echo
                && (p.spec_file.ends_with("echo-tcp.yaml")
                    || p.spec_file.ends_with("echo-udp.toml"))
        })
        .collect();
    assert_eq!(plans.len(), 8, "four C models × TCP and UDP");
    let failures: Vec<String> = in_root(|| {
        proof::run_parallel(&plans, 2, |plan| {
            let dir = tempfile::tempdir().unwrap();
            let label = format!("{} --model {}", plan.spec_file, plan.model);
            let binary = match compile(plan, dir.path(), ASAN_UBSAN_FLAGS) {
                Ok(b) => b,
                Err(e) => return Some(format!("{label}: {e}")),
            };
            let failed: Vec<String> = proof::faults::prove_faults_sanitized(plan, &binary)
                .into_iter()
                .filter(|c| !c.passed)
                .map(|c| format!("{label}: {}: {}", c.name, c.detail))
                .collect();
            (!failed.is_empty()).then(|| failed.join("\n"))
        })
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An odd io.buffer_size (65509): the io_uring UDP server's and client's provided buffers each
/// begin with an io_uring_recvmsg_out, which UndefinedBehaviorSanitizer once reported
/// misaligned on the first datagram. Both proven by verify under ASan + UBSan.
#[test]
fn io_uring_udp_with_an_odd_buffer_size_is_aligned_under_ubsan() {
    let plans = [
        plan_for(
            "name: odd_udp\nprotocol: udp\nio: { buffer_size: 65509 }\n",
            "c",
            "io_uring",
        ),
        plan_for(
            "name: odd_udp_check\nrole: client\nprotocol: udp\nhandler: echo-check\nio: { buffer_size: 65509 }\nclient: { messages: 8, sizes: [1, 1000], pool: { size: 2 } }\n",
            "c",
            "io_uring",
        ),
    ];
    let failures = verify_all(&plans, ASAN_UBSAN_FLAGS);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
