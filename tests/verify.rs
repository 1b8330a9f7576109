//! The proof: every example spec × every (lang, model) it allows is compiled with strict flags,
//! started on port 0, driven on loopback and checked byte for byte, then stopped — through
//! `sockgen verify`'s own harness, one test per combination, named `SPEC::LANG_MODEL`, so
//! `cargo test --test verify c_io_uring` proves one target and a failure names its cell.
//!
//! The cells come from the example specs and the support matrix, never from a list here: a
//! model or a spec that lands is proven without a test edit. The `[fast]` ones (echo-tcp for
//! servers, echo-check-tcp for clients: one verify per target) are the fast tier's proof.

mod common;

use common::*;
use libtest_mimic::{Arguments, Failed, Trial};
use sockgen::proof::{self, ProofOptions};

/// One server spec and one client spec: every target proven once in the fast tier.
const FAST_SPECS: [&str; 2] = ["echo-tcp", "echo-check-tcp"];

fn main() {
    let arguments = Arguments::from_args();
    // Spec paths stay relative, as users write them (they appear in generated headers); this
    // process runs nothing else, so it can stay in the crate root.
    std::env::set_current_dir(root()).unwrap();
    let plans = all_plans(); // asserts that only settings that cannot apply exclude a combination
    assert!(plans.len() >= 17, "only {} combinations", plans.len());
    let trials = plans
        .into_iter()
        .map(|plan| {
            let spec = stem(&plan);
            let name = format!("{}::{}_{}", spec.replace('-', "_"), plan.lang, plan.model);
            let fast = FAST_SPECS.contains(&spec.as_str());
            Trial::test(name, move || {
                let report = proof::prove(&plan, &ProofOptions::default());
                if report.passed() {
                    Ok(())
                } else {
                    Err(Failed::from(report.summary()))
                }
            })
            .with_kind(if fast { "fast" } else { "" })
        })
        .collect();
    libtest_mimic::run(&arguments, trials).exit();
}
