//! `sockgen verify`: compile each (lang, model) the spec allows, run it and check every byte.

use std::path::Path;
use std::process::ExitCode;

use super::{fail, warn, FilterArgs, ProgressLine};
use crate::Overrides;

/// Warnings for `verify`, which reads the spec again for each target: said once, here.
fn warn_about_spec(spec: &Path) {
    if let Ok(plan) = crate::plan_file(spec, Overrides::default()) {
        warn(&plan);
    }
}

pub(super) fn verify(
    spec: &Path,
    only: FilterArgs,
    json: bool,
    jobs: u16,
    faults: bool,
) -> ExitCode {
    warn_about_spec(spec);
    let options = crate::proof::ProofOptions {
        faults,
        ..crate::proof::ProofOptions::default()
    };
    let progress = ProgressLine::new("verify");
    let done = std::sync::atomic::AtomicUsize::new(0);
    let verified = crate::proof::verify_reporting(
        spec,
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
