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
        .filter(|o| o.contains("cargo:rerun-if-changed=upper.yaml"))
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

    // A spec renamed: its old module is removed, not left to compile stale.
    let renamed = dir.path().join("renamed.yaml");
    std::fs::write(&renamed, "name: echo_renamed\n").unwrap();
    let written = sockgen::Builder::new()
        .spec(root().join("specs/echo-udp.toml"))
        .spec(&renamed)
        .out_dir(dir.path())
        .emit_rerun_if_changed(false)
        .compile()
        .unwrap();
    assert_eq!(written[1], dir.path().join("echo_renamed.rs"));
    assert!(
        !dir.path().join("echo_tcp.rs").exists(),
        "the stale module is still there"
    );
    assert!(dir.path().join("echo_udp.rs").exists());

    // Without OUT_DIR or out_dir(), a clear error rather than a panic.
    let err = sockgen::Builder::new()
        .spec(root().join("specs/echo-tcp.yaml"))
        .emit_rerun_if_changed(false)
        .compile();
    if std::env::var_os("OUT_DIR").is_none() {
        assert!(err.unwrap_err().to_string().contains("OUT_DIR is not set"));
    }
}

/// The "From a build.rs" blocks of docs/rust.md are the fixture's files: a user who copies
/// them gets the crate the test builds.
#[test]
fn docs_build_rs_blocks_are_the_fixture() {
    let doc = std::fs::read_to_string(root().join("docs/rust.md")).unwrap();
    let section = &doc[doc.find("## From a build.rs").unwrap()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let blocks: Vec<&str> = section.split("```").skip(1).step_by(2).collect();
    assert_eq!(blocks.len(), 3, "{section}");
    let fixture = |f: &str| {
        std::fs::read_to_string(root().join("tests/fixtures/buildrs-upper").join(f)).unwrap()
    };
    let toml = blocks[0]
        .trim_start_matches("toml\n")
        .replace("path = \"…\"", "path = \"../../..\"");
    assert!(
        fixture("Cargo.toml").contains(&toml),
        "Cargo.toml lacks:\n{toml}"
    );
    assert_eq!(blocks[1].trim_start_matches("rust\n"), fixture("build.rs"));
    let main = blocks[2]
        .trim_start_matches("rust\n")
        .trim_start_matches("// src/main.rs\n");
    assert!(
        fixture("src/main.rs").contains(main),
        "src/main.rs lacks:\n{main}"
    );
}

/// Every generated module, `include!`d the way a build.rs user does, in one crate per Rust
/// edition: clippy -D warnings must pass in 2021 and in 2024 (what `cargo new` makes).
#[test]
fn generated_modules_are_clippy_clean_when_included_in_2021_and_2024() {
    let toolchain = RustToolchain::find().unwrap();
    let plans: Vec<_> = all_plans()
        .into_iter()
        .filter(|p| p.lang == Lang::Rust)
        .collect();
    for edition in ["2021", "2024"] {
        let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("included-{edition}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        let mut main =
            String::from("//! Every generated module, included as a build.rs user would.\n");
        for (i, plan) in plans.iter().enumerate() {
            let mut plan = plan.clone();
            plan.origin = sockgen::plan::Origin::BuildScript;
            let module = sockgen::backend::rust::module_source(&plan).unwrap();
            std::fs::write(dir.join(format!("src/m{i}.rs")), module).unwrap();
            main.push_str(&format!(
                "#[allow(dead_code)]\nmod m{i} {{\n    include!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/src/m{i}.rs\"));\n}}\n"
            ));
        }
        let echo = plans
            .iter()
            .position(|p| p.handler == sockgen::plan::Handler::Echo)
            .unwrap();
        main.push_str(&format!("fn main() -> std::process::ExitCode {{\n    m{echo}::main_with::<m{echo}::Echo>()\n}}\n"));
        std::fs::write(dir.join("src/main.rs"), main).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            format!("[package]\nname = \"included\"\nversion = \"0.1.0\"\nedition = \"{edition}\"\n\n[dependencies]\nlibc = \"0.2\"\nio-uring = \"0.7\"\n\n[workspace]\n"),
        )
        .unwrap();
        toolchain
            .clippy(&dir, "included")
            .unwrap_or_else(|e| panic!("edition {edition}: {e}"));
    }
}
