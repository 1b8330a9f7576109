//! `sockgen init`: a commented starter spec to copy and edit.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::source::Format;

/// Writes the starter to FILE, in TOML for a `.toml` name and YAML otherwise; without FILE, the
/// YAML starter goes to stdout.
pub(super) fn init(file: Option<PathBuf>) -> ExitCode {
    let Some(path) = file else {
        print!("{}", crate::starter::text(Format::Yaml));
        return ExitCode::SUCCESS;
    };
    let format = Format::from_path(&path).unwrap_or(Format::Yaml);
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path);
    let starter = crate::starter::text(format);
    match created.and_then(|mut f| f.write_all(starter.as_bytes())) {
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
