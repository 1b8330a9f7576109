//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sockgen::proof;
use sockgen::Plan;

/// The Linux outputs sockgen emits, as (lang, model): C and Rust in every model the matrix
/// (backend::matrix::support) says is emitted, so a model that lands is proven everywhere
/// without a test edit.
pub fn linux_targets() -> Vec<(&'static str, &'static str)> {
    emitted_targets(|lang| lang != sockgen::spec::Lang::Winsock)
}

/// The Winsock C outputs: cross-compiled with MinGW-w64 and run under Wine.
pub fn winsock_targets() -> Vec<(&'static str, &'static str)> {
    emitted_targets(|lang| lang == sockgen::spec::Lang::Winsock)
}

fn emitted_targets(
    wanted: impl Fn(sockgen::spec::Lang) -> bool,
) -> Vec<(&'static str, &'static str)> {
    use sockgen::backend::matrix::{support, Support};
    use sockgen::spec::{Keyword, Lang, Model};
    let mut targets = Vec::new();
    for &lang in Lang::ALL.iter().filter(|&&l| wanted(l)) {
        for &model in Model::ALL {
            if support(lang, model) == Support::Emitted {
                targets.push((lang.as_str(), model.as_str()));
            }
        }
    }
    targets
}

/// The clients (role: client) sockgen generates today for `protocol` ("tcp" or "udp"), as
/// (lang, model): every client scenario runs with each. Taken from
/// backend::matrix::client_support, so a client that lands is proven without a test edit.
pub fn client_targets(protocol: &str) -> Vec<(&'static str, &'static str)> {
    use sockgen::backend::matrix::{client_support, Support};
    use sockgen::spec::{Keyword, Lang, Model, Protocol};
    let protocol: Protocol = protocol.parse().unwrap();
    let mut targets = Vec::new();
    for &lang in Lang::ALL {
        for &model in Model::ALL {
            if client_support(lang, model, protocol) == Support::Emitted {
                targets.push((lang.as_str(), model.as_str()));
            }
        }
    }
    targets
}

/// The protocol a spec's text asks for.
pub fn spec_protocol(spec: &str) -> &'static str {
    if spec.contains("protocol: udp") {
        "udp"
    } else {
        "tcp"
    }
}

/// Linux and Windows outputs alike, for the tests that hold all of them to the same rules.
pub fn all_targets() -> Vec<(&'static str, &'static str)> {
    let mut targets = linux_targets();
    targets.extend(winsock_targets());
    targets
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every example spec, as a path relative to the crate root (as users would write it).
pub fn example_specs() -> Vec<PathBuf> {
    specs_in("specs")
}

pub fn invalid_specs() -> Vec<PathBuf> {
    specs_in("specs/invalid")
}

fn specs_in(dir: &str) -> Vec<PathBuf> {
    let mut specs: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .expect("spec directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && sockgen::source::Format::from_path(p).is_some())
        .map(|p| Path::new(dir).join(p.file_name().unwrap()))
        .collect();
    specs.sort();
    specs
}

/// Runs with the crate root as working directory so spec paths stay relative in headers.
pub fn in_root<T>(f: impl FnOnce() -> T) -> T {
    static CWD: Mutex<()> = Mutex::new(());
    let _guard = CWD.lock().unwrap_or_else(|e| e.into_inner());
    let previous = std::env::current_dir().unwrap();
    std::env::set_current_dir(root()).unwrap();
    let result = f();
    std::env::set_current_dir(previous).unwrap();
    result
}

/// Every Plan each example spec allows (spec × lang × model), plus the excluded combinations.
pub fn all_plans() -> Vec<Plan> {
    in_root(|| {
        example_specs()
            .iter()
            .flat_map(|spec| {
                let m = proof::matrix(spec).unwrap_or_else(|e| panic!("{}: {e}", spec.display()));
                for (lang, model, why) in &m.excluded {
                    // Only settings that truly can't apply may exclude a combination.
                    assert!(
                        why.contains("does not apply to the blocking model")
                            || why.contains("Windows has no SO_REUSEPORT")
                            // Clients land model by model (backend::matrix::client_support).
                            || why.contains("client for --lang"),
                        "{} excluded for --lang {lang} --model {model}: {why}",
                        spec.display()
                    );
                }
                m.plans
            })
            .collect()
    })
}

pub fn stem(plan: &Plan) -> String {
    Path::new(&plan.spec_file)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Names (without `suffix`) of the files in `dir` (relative to the crate root) ending in it, sorted.
pub fn file_stems(dir: &str, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(suffix))
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

/// Saved ss/netstat outputs whose reports are snapshotted (the malformed ones are not).
pub fn analyze_fixtures() -> Vec<String> {
    file_stems("tests/fixtures/analyze", ".txt")
        .into_iter()
        .filter(|n| !n.starts_with("malformed"))
        .collect()
}

/// The generated C poll echo server for a spec named `name`: its Plan and single-file source,
/// for tests that need a peer or patch in a deliberate defect.
pub fn c_poll_echo(name: &str) -> (Plan, String) {
    use sockgen::source::{Format, SourceFile};
    let source = SourceFile::from_text(
        format!("{name}.yaml"),
        format!("name: {name}\n"),
        Format::Yaml,
    );
    let target = sockgen::Overrides {
        lang: None,
        model: Some(sockgen::plan::Model::Poll),
    };
    let plan = sockgen::plan_source(&source, target).unwrap_or_else(|e| panic!("{e}"));
    let code = sockgen::render::render(&plan, sockgen::Layout::SingleFile)
        .unwrap()
        .remove(0)
        .contents;
    (plan, code)
}

/// Compiles C source with the proof's strict flags into `dir`; returns the program.
pub fn compile_c(dir: &Path, name: &str, code: &str) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, code).unwrap();
    let bin = dir.join(name);
    sockgen::proof::CCompiler::find()
        .unwrap()
        .compile(&src, &bin)
        .unwrap_or_else(|e| panic!("{e}"));
    bin
}

/// Runs the sockgen binary from the crate root, as a user in a checkout would.
pub fn sockgen(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sockgen"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

/// Patches a generated C echo handler (named `name`) to flip the first byte of every read it
/// echoes: a server verify and bench must catch.
pub fn corrupt_echo(code: &str, name: &str) -> String {
    let patched = code.replace(
        &format!("    if ({name}_write(c, data, len) == 0) {{"),
        &format!(
            "    unsigned char flipped = (unsigned char)(len > 0 ? data[0] ^ 1u : 0);\n    \
             if (len > 0 && {name}_write(c, &flipped, 1) == 0 && {name}_write(c, data + 1, len - 1) == 0) {{"
        ),
    );
    assert_ne!(patched, code, "the corrupting patch did not apply");
    patched
}

/// The Plan of spec text for (lang, model); panics with the diagnostics if it is invalid.
pub fn plan_for(spec_yaml: &str, lang: &str, model: &str) -> Plan {
    use sockgen::source::{Format, SourceFile};
    let source = SourceFile::from_text("test.yaml", spec_yaml, Format::Yaml);
    let target = sockgen::Overrides {
        lang: Some(lang.parse().unwrap()),
        model: Some(model.parse().unwrap()),
    };
    sockgen::plan_source(&source, target).unwrap_or_else(|e| panic!("{e}"))
}

/// Builds a server from spec text for (lang, model) into a fresh directory: the directory
/// (keep it while the program runs), the program and its Plan.
pub fn build(spec_yaml: &str, lang: &str, model: &str) -> (tempfile::TempDir, PathBuf, Plan) {
    let plan = plan_for(spec_yaml, lang, model);
    let dir = tempfile::tempdir().unwrap();
    let bin = proof::build(&plan, dir.path()).unwrap_or_else(|(stage, e)| panic!("{stage}: {e}"));
    (dir, bin, plan)
}
