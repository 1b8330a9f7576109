//! `sockgen analyze`: connection states, listen queues and socket memory, live or from saved
//! `ss`/`netstat` output.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::troubleshoot::analyze::{self, Snapshot};

pub(super) fn analyze(
    port: Option<u16>,
    pid: Option<u32>,
    from: Option<PathBuf>,
    json: bool,
) -> ExitCode {
    let (snapshot, inodes) = match snapshot(from.as_deref(), pid) {
        Ok(found) => found,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(1);
        }
    };
    let somaxconn = if snapshot.live {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
    } else {
        None
    };
    let report = analyze::analyze(&snapshot, &analyze::Filter { port, inodes, pid }, somaxconn);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", analyze::render(&report));
    }
    ExitCode::SUCCESS
}

/// The sockets, live or saved in `from`, and the socket inodes `pid` holds.
fn snapshot(from: Option<&Path>, pid: Option<u32>) -> Result<(Snapshot, Option<Vec<u64>>), String> {
    let snapshot = match from {
        Some(_) if pid.is_some() => {
            return Err("--pid needs live data (saved ss/netstat output has no socket inodes); drop --from or --pid".to_string());
        }
        Some(path) => {
            let (text, name) = read_saved(path)?;
            analyze::parse_saved(&text, &name)?
        }
        None => analyze::read_live()?,
    };
    let inodes = pid.map(analyze::process_socket_inodes).transpose()?;
    Ok((snapshot, inodes))
}

/// Saved `ss`/`netstat` output, and the name the report gives it; `-` is stdin.
fn read_saved(path: &Path) -> Result<(String, String), String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        Ok((text, "stdin".to_string()))
    } else {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok((text, path.display().to_string()))
    }
}
