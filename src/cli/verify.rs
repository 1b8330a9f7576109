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

/// What `sockgen verify` was asked.
pub(super) struct VerifyArgs {
    pub spec: std::path::PathBuf,
    pub only: FilterArgs,
    pub json: bool,
    pub jobs: u16,
    pub faults: bool,
    pub with: Vec<String>,
    pub conversations: Vec<std::path::PathBuf>,
    pub handler_files: Vec<std::path::PathBuf>,
}

pub(super) fn verify(args: VerifyArgs) -> ExitCode {
    let VerifyArgs {
        spec,
        only,
        json,
        jobs,
        faults,
        with,
        conversations: conversation_files,
        handler_files,
    } = args;
    let spec = spec.as_path();
    let mut conversations = Vec::new();
    for file in &conversation_files {
        let read = std::fs::read_to_string(file)
            .map_err(|e| format!("{}: {e}", file.display()))
            .and_then(|text| crate::proof::conversation::parse(&file.display().to_string(), &text));
        match read {
            Ok(conversation) => conversations.push(conversation),
            Err(e) => return fail(&crate::Error::Project(e)),
        }
    }
    let options = crate::proof::ProofOptions {
        faults,
        with,
        conversations,
        ..crate::proof::ProofOptions::default()
    };
    if spec.is_dir() {
        if !handler_files.is_empty() {
            return fail(&crate::Error::Project(
                "--handler goes with a spec; a project directory holds its own files".into(),
            ));
        }
        return verify_project(spec, only, json, jobs, &options);
    }
    if !handler_files.is_empty() {
        warn_about_spec(spec);
        let progress = Progress::new(json);
        let verified = crate::proof::project::verify_with_files(
            spec,
            &handler_files,
            only.lang,
            only.model,
            &options,
            usize::from(jobs),
            |report, total| progress.finished(report, total),
        );
        progress.line.finish();
        return match verified {
            Ok(reports) => report_all(&spec.display().to_string(), &reports, json),
            Err(e) => fail(&e),
        };
    }
    warn_about_spec(spec);
    let progress = Progress::new(json);
    let verified = crate::proof::verify_reporting(
        spec,
        only.lang,
        only.model,
        &options,
        usize::from(jobs),
        |report, total| progress.finished(report, total),
    );
    progress.line.finish();
    let reports = match verified {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    report_all(&spec.display().to_string(), &reports, json)
}

/// `verify DIR`: the user's program in a `render -o` project, in every model its spec allows
/// for the handler's language (narrowed by --lang/--model).
fn verify_project(
    dir: &Path,
    only: FilterArgs,
    json: bool,
    jobs: u16,
    options: &crate::proof::ProofOptions,
) -> ExitCode {
    let progress = Progress::new(json);
    let verified = crate::proof::project::verify_project(
        dir,
        only.lang,
        only.model,
        options,
        usize::from(jobs),
        |report, total| progress.finished(report, total),
    );
    progress.line.finish();
    match verified {
        Ok(reports) => report_all(&dir.display().to_string(), &reports, json),
        Err(e) => fail(&e),
    }
}

/// Progress of a verify run: a step per finished combination, and (without --json) its report
/// as it completes, not all at the end.
struct Progress {
    line: ProgressLine,
    done: std::sync::atomic::AtomicUsize,
    json: bool,
}

impl Progress {
    fn new(json: bool) -> Progress {
        Progress {
            line: ProgressLine::new("verify"),
            done: std::sync::atomic::AtomicUsize::new(0),
            json,
        }
    }

    fn finished(&self, report: &crate::proof::ProofReport, total: usize) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let verdict = if report.passed() { "PASS" } else { "FAIL" };
        self.line.step(
            done,
            total,
            &format!("{verdict} --lang {} --model {}", report.lang, report.model),
        );
        if !self.json {
            self.line.println(report.summary().trim_end());
        }
    }
}

/// The closing summary (or the JSON document); exit 1 if anything failed.
fn report_all(what: &str, reports: &[crate::proof::ProofReport], json: bool) -> ExitCode {
    let passed = reports.iter().filter(|r| r.passed()).count();
    let failed = reports.len() - passed;
    if json {
        let doc = serde_json::json!({
            "spec": what,
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
