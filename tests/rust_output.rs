//! Rust output beyond the shared proof: every generated crate passes clippy with -D warnings,
//! and the build.rs path works end to end in a fixture crate with its own handler.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::*;
use sockgen::plan::Lang;
use sockgen::proof::{self, RunningServer, RustToolchain};

#[test]
fn every_generated_crate_passes_clippy() {
    let toolchain = RustToolchain::find().unwrap();
    let plans: Vec<_> = all_plans()
        .into_iter()
        .filter(|p| p.lang == Lang::Rust)
        .collect();
    assert!(plans.len() >= 17, "{} Rust combinations", plans.len());
    let failures: Vec<String> = proof::run_parallel(&plans, 2, |plan| {
        let dir = tempfile::tempdir().unwrap();
        let files = sockgen::render::render(plan, sockgen::Layout::Project).unwrap();
        sockgen::render::write(dir.path(), &files).unwrap();
        toolchain
            .clippy(dir.path(), &plan.model.to_string())
            .err()
            .map(|e| format!("{} --model {}: {e}", plan.spec_file, plan.model))
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn build_rs_fixture_generates_a_server_with_its_own_handler() {
    let fixture = root().join("tests/fixtures/buildrs-upper");
    let target = root().join("target/fixture-buildrs");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--manifest-path"])
        .arg(fixture.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env("CARGO_BUILD_JOBS", "2")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    // The build script told Cargo to rerun when the spec changes.
    let outputs: Vec<String> = std::fs::read_dir(target.join("debug/build"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("output")).ok())
        .filter(|o| o.contains("sockgen-build-rs-generate-us"))
        .collect();
    assert!(
        !outputs.is_empty(),
        "the build script's output was not found"
    );
    assert!(
        outputs
            .iter()
            .all(|o| o.contains("cargo:rerun-if-changed=upper.yaml")),
        "{outputs:?}"
    );

    let server = RunningServer::start(
        &target.join("debug/buildrs-upper"),
        &["-p", "0"],
        Duration::from_secs(10),
    )
    .unwrap();
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let sent = b"Hello, build.rs! 123 \xff";
    stream.write_all(sent).unwrap();
    let mut got = vec![0u8; sent.len()];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(got, b"HELLO, BUILD.RS! 123 \xff");
    drop(stream);
    server.stop(Duration::from_secs(5)).check().unwrap();
}

#[test]
fn builder_reports_located_diagnostics_and_writes_modules() {
    let dir = tempfile::tempdir().unwrap();
    let err = sockgen::Builder::new()
        .spec(root().join("specs/invalid/unknown-keys.yaml"))
        .out_dir(dir.path())
        .emit_rerun_if_changed(false)
        .compile()
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("unknown-keys.yaml:6:3"), "{text}");
    assert!(text.contains("help: did you mean `nodelay`?"), "{text}");

    let written = sockgen::Builder::new()
        .spec(root().join("specs/echo-udp.toml"))
        .spec(root().join("specs/echo-tcp.yaml"))
        .model(sockgen::plan::Model::Poll)
        .out_dir(dir.path())
        .emit_rerun_if_changed(false)
        .compile()
        .unwrap();
    assert_eq!(
        written,
        vec![
            dir.path().join("echo_udp.rs"),
            dir.path().join("echo_tcp.rs")
        ]
    );
    let module = std::fs::read_to_string(&written[1]).unwrap();
    assert!(module.contains("pub fn main_with<H: Handler>"), "{module}");
    assert!(
        !module.contains("#!["),
        "include!() cannot take inner attributes"
    );

    // Without OUT_DIR or out_dir(), a clear error rather than a panic.
    let err = sockgen::Builder::new()
        .spec(root().join("specs/echo-tcp.yaml"))
        .emit_rerun_if_changed(false)
        .compile();
    if std::env::var_os("OUT_DIR").is_none() {
        assert!(err.unwrap_err().to_string().contains("OUT_DIR is not set"));
    }
}
