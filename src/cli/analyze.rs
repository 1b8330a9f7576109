//! `sockgen analyze`: connection states, listen queues and socket memory, live or from saved
//! `ss`/`netstat` output.

use std::path::PathBuf;
use std::process::ExitCode;

pub(super) fn analyze(
    port: Option<u16>,
    pid: Option<u32>,
    from: Option<PathBuf>,
    json: bool,
) -> ExitCode {
    use crate::troubleshoot::analyze;
    let snapshot = match &from {
        Some(path) => {
            if pid.is_some() {
                eprintln!("error: --pid needs live data (saved ss/netstat output has no socket inodes); drop --from or --pid");
                return ExitCode::from(1);
            }
            let text = if path.as_os_str() == "-" {
                let mut text = String::new();
                match std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
                    Ok(_) => text,
                    Err(e) => {
                        eprintln!("error: cannot read stdin: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else {
                match std::fs::read_to_string(path) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("error: cannot read {}: {e}", path.display());
                        return ExitCode::from(1);
                    }
                }
            };
            let name = if path.as_os_str() == "-" {
                "stdin".to_string()
            } else {
                path.display().to_string()
            };
            analyze::parse_saved(&text, &name)
        }
        None => analyze::read_live(),
    };
    let snapshot = match snapshot {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let inodes = match pid {
        Some(pid) => match analyze::process_socket_inodes(pid) {
            Ok(i) => Some(i),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
        None => None,
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
