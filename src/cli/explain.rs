//! `sockgen explain`: what an errno or Winsock error code means for a socket program.

use std::process::ExitCode;

use crate::troubleshoot::explain;

pub(super) fn explain(code: &str, json: bool) -> ExitCode {
    match explain::lookup(code) {
        Some(info) if json => {
            println!("{}", serde_json::to_string_pretty(info).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Some(info) => {
            print!("{}", explain::render(info));
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "unknown error code `{code}`: sockgen knows these: {}",
                explain::CATALOGUE
                    .iter()
                    .map(|e| e.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            ExitCode::from(1)
        }
    }
}
