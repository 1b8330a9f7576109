//! `sockgen init`: a commented starter spec to copy and edit.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// The starter spec `sockgen init` writes: every key, commented, with its default.
pub const STARTER_SPEC: &str = include_str!("../starter.yaml");

pub(super) fn init(file: Option<PathBuf>) -> ExitCode {
    let Some(path) = file else {
        print!("{STARTER_SPEC}");
        return ExitCode::SUCCESS;
    };
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path);
    match created.and_then(|mut f| f.write_all(STARTER_SPEC.as_bytes())) {
        Ok(()) => {
            eprintln!(
                "wrote {}: edit it, then `sockgen check {}`",
                path.display(),
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot create {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}
