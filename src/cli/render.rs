//! `sockgen render`: one file on stdout, or a project written (or checked) in a directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{fail, warn};
use crate::render::{self, FileState, GeneratedFile, Layout, Retired};
use crate::{Error, Overrides};

pub(super) fn render(
    spec: &Path,
    target: Overrides,
    out_dir: Option<PathBuf>,
    check: bool,
) -> ExitCode {
    let target = match out_dir.as_deref() {
        Some(dir) => project_target(spec, dir, target),
        None => target,
    };
    let generated = match &out_dir {
        Some(dir) => crate::generate_project(spec, target, dir),
        None => crate::plan_file(spec, target).and_then(|plan| {
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
        None => to_stdout(&files),
        Some(dir) if check => check_project(spec, &plan, &dir, &files),
        Some(dir) => write_project(&plan, &dir, &files),
    }
}

/// Into an existing project, without `--lang` and `--model`: its own language and model (its
/// build file records them), not the spec's, so a re-render or a `--check` never turns an
/// io_uring project into an epoll one behind the user's back.
fn project_target(spec: &Path, dir: &Path, target: Overrides) -> Overrides {
    if target.lang.is_some() || target.model.is_some() {
        return target;
    }
    match crate::proof::project::find(dir) {
        Ok(project) => {
            let spec_choice = crate::plan_file(spec, Overrides::default())
                .map(|plan| (plan.lang, plan.model))
                .ok();
            if spec_choice != Some((project.lang, project.model)) {
                eprintln!(
                "{}: a --lang {} --model {} project (its build file says so); --lang and --model \
                 change that",
                    dir.display(),
                    project.lang,
                    project.model
                );
            }
            Overrides {
                lang: Some(project.lang),
                model: Some(project.model),
            }
        }
        Err(_) => target,
    }
}

fn to_stdout(files: &[GeneratedFile]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    for f in files {
        if stdout.write_all(f.contents.as_bytes()).is_err() {
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

/// `--check`: writes nothing, says which files are stale and how to bring them up to date.
fn check_project(
    spec: &Path,
    plan: &crate::plan::Plan,
    dir: &Path,
    files: &[GeneratedFile],
) -> ExitCode {
    let mut stale = false;
    for (path, state) in render::compare(dir, files) {
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
    for (renamed, both) in render::renamed_on_disk(dir, plan) {
        stale = true;
        let former = dir.join(&renamed.former);
        let current = dir.join(&renamed.current);
        if both {
            eprintln!(
                "both: {} and {} (the program includes only the second: move what you need \
                 from the first into it and delete the first)",
                former.display(),
                current.display()
            );
        } else {
            eprintln!(
                "renamed: {} (sockgen now names it {}; a re-render renames it, its text \
                 unchanged)",
                former.display(),
                current.display()
            );
        }
    }
    for (path, who) in render::retired_on_disk(dir, plan) {
        stale = true;
        let shown = dir.join(&path);
        match who {
            Retired::Generated => eprintln!(
                "retired: {} (sockgen no longer writes it; a re-render removes it)",
                shown.display()
            ),
            Retired::Foreign => report_foreign(&shown),
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

fn write_project(plan: &crate::plan::Plan, dir: &Path, files: &[GeneratedFile]) -> ExitCode {
    let renamed = match render::rename_former(dir, plan) {
        Ok(renamed) => renamed,
        Err(e) => return fail(&Error::Render(e)),
    };
    for r in &renamed {
        eprintln!(
            "renamed {} to {} (an earlier sockgen's name for it; its text is unchanged)",
            dir.join(&r.former).display(),
            dir.join(&r.current).display()
        );
    }
    let written = match render::write(dir, files) {
        Ok(written) => written,
        Err(e) => return fail(&Error::Render(e)),
    };
    let retired = match render::retire(dir, plan) {
        Ok(retired) => retired,
        Err(e) => return fail(&Error::Render(e)),
    };
    if written.is_empty() && retired.is_empty() && renamed.is_empty() {
        eprintln!("{}: up to date, nothing written", dir.display());
    }
    for path in written {
        eprintln!("wrote {}", dir.join(path).display());
    }
    for (path, who) in retired {
        let shown = dir.join(&path);
        match who {
            Retired::Generated => eprintln!(
                "removed {} (an earlier sockgen wrote it; its code is in the files above)",
                shown.display()
            ),
            Retired::Foreign => report_foreign(&shown),
        }
    }
    ExitCode::SUCCESS
}

/// A file where sockgen once wrote one, but not written by sockgen: never deleted, only named.
fn report_foreign(path: &Path) {
    eprintln!(
        "warning: {} is not sockgen's and is left alone, but the build may refuse it beside the \
         generated files (Rust: a module found at both NAME.rs and NAME/mod.rs); move its \
         contents elsewhere",
        path.display()
    );
}
