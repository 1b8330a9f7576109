//! The harness's answer to Wine's launcher giving up before a program runs (seen once on a
//! busy machine: "exited 1 after 10 ms", not a word printed): a Windows client that fails
//! without saying anything is started once more, and one that said why it failed is not.
//!
//! Its own test binary, as `SOCKGEN_WINE` is read once per process.

mod common;

use common::build;
use sockgen::proof::client::{run_client, EchoPeer, PeerBehaviour};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::time::Duration;

/// A `wine` that runs the real one, except that the first program it is asked to start
/// exits 1 at once, printing nothing. Every program start is appended to `starts`.
fn install_failing_once_wine(dir: &Path, starts: &Path) {
    let failed_once = dir.join("failed-once");
    let script = format!(
        "#!/bin/sh\n\
         if [ \"$1\" != --version ]; then\n\
         \techo \"$1\" >> '{starts}'\n\
         \tif [ ! -e '{failed}' ]; then : > '{failed}'; exit 1; fi\n\
         fi\n\
         exec wine \"$@\"\n",
        starts = starts.display(),
        failed = failed_once.display(),
    );
    let wine = dir.join("wine");
    std::fs::write(&wine, script).unwrap();
    std::fs::set_permissions(&wine, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The harness runs Wine's tools from beside the `wine` it is given.
    for tool in ["wineboot", "wineserver"] {
        let real = which(tool);
        symlink(real, dir.join(tool)).unwrap();
    }
}

fn which(tool: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(tool))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("{tool} not on PATH (installed by the README's test command)"))
}

#[test]
fn a_silent_wine_start_failure_is_retried_once_and_a_reported_failure_is_not() {
    let fake = tempfile::tempdir().unwrap();
    let starts = fake.path().join("starts");
    install_failing_once_wine(fake.path(), &starts);
    // Set before anything in this process looks for Wine (the binary's only test).
    std::env::set_var("SOCKGEN_WINE", fake.path().join("wine"));
    let started = || {
        std::fs::read_to_string(&starts)
            .unwrap_or_default()
            .lines()
            .count()
    };

    let spec = "name: echo_check\nrole: client\nhandler: echo-check\nport: 7000\nclient:\n  pool: { size: 1 }\n";
    let (_dir, client, _) = build(spec, "winsock", "blocking");
    let peer = EchoPeer::start(PeerBehaviour::Echo, false).unwrap();
    let port = peer.addr.port().to_string();
    let run = run_client(
        &client,
        &["-a", "127.0.0.1", "-p", &port],
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(run.status, Some(0), "{}", run.describe());
    assert!(run.stdout.starts_with("echo-check: "), "{}", run.describe());
    assert_eq!(started(), 2, "the silent failure, then the real run");

    // A failure that says what failed is the program's answer: taken as it is.
    let run = run_client(&client, &["-p", "not-a-port"], Duration::from_secs(60)).unwrap();
    assert_eq!(run.status, Some(2), "{}", run.describe());
    assert!(!run.stderr.trim().is_empty(), "{}", run.describe());
    assert_eq!(started(), 3, "a reported failure is not run again");
}
