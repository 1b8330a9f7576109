//! Generated C builds beyond the glibc it is developed on: with musl (Debian's musl-tools),
//! whose C library lacks the glibc 2.32 extensions, every C output that needs no liburing
//! compiles with the strict flags and `log: ops`, and a musl-built server and client talk.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::plan_for;
use sockgen::proof::toolchain::{CCompiler, STRICT_C_FLAGS};
use sockgen::proof::RunningServer;

fn musl() -> CCompiler {
    let program = PathBuf::from("musl-gcc");
    assert!(
        Command::new(&program)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "musl-gcc not found (Debian: apt-get install musl-tools; ./scripts/test.sh does)"
    );
    CCompiler {
        program,
        flags: STRICT_C_FLAGS,
    }
}

fn build_with_musl(spec: &str, model: &str, dir: &std::path::Path) -> PathBuf {
    let plan = plan_for(spec, "c", model);
    let workdir = dir.join(model);
    std::fs::create_dir_all(&workdir).unwrap();
    sockgen::proof::build_c(&plan, &musl(), &workdir, &[])
        .unwrap_or_else(|e| panic!("{} {model} with musl: {e}", plan.name))
}

#[test]
fn c_outputs_build_and_run_with_musl() {
    const SERVER: &str = "name: musl_echo\nlog: ops\n";
    const UDP_SERVER: &str = "name: musl_udp\nprotocol: udp\nlog: ops\n";
    const CLIENT: &str = "name: musl_check\nrole: client\nhandler: echo-check\nlog: ops\nclient: { pool: { size: 2 }, messages: 4, sizes: [1, 1024] }\n";
    let dir = tempfile::tempdir().unwrap();
    for model in ["blocking", "poll", "epoll"] {
        build_with_musl(UDP_SERVER, model, dir.path());
        let server_bin = build_with_musl(SERVER, model, dir.path());
        let client_bin = build_with_musl(CLIENT, model, dir.path());
        let server = RunningServer::start(&server_bin, &["-p", "0"], Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{model}: {e}"));
        let port = server.addr.port().to_string();
        let client = Command::new(&client_bin)
            .args(["-a", "127.0.0.1", "-p", &port])
            .output()
            .unwrap();
        assert!(
            client.status.success(),
            "{model}: the musl-built client failed: {}",
            String::from_utf8_lossy(&client.stderr)
        );
        // A refused connect is logged by its errno's name, from the fallback table.
        let refused = Command::new(&client_bin)
            .args(["-a", "127.0.0.1", "-p", "1"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{model}: {text}");
        assert!(text.contains("ECONNREFUSED"), "{model}: {text}");
        let outcome = server.stop(Duration::from_secs(5));
        outcome.check().unwrap_or_else(|e| panic!("{model}: {e}"));
        assert!(
            outcome.stderr.contains("op=accept"),
            "{model}: {}",
            outcome.stderr
        );
    }
}
