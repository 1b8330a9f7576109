//! Snapshots reviewed in pull requests: every example spec × every (lang, model) it allows,
//! and the diagnostics of every spec in specs/invalid. All live in the top-level snapshots/.

mod common;

use std::collections::BTreeSet;

use common::*;
use sockgen::render::{render, Layout};
use sockgen::{Error, Overrides, SourceFile};

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(root().join("snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

fn code_snapshot_names() -> Vec<(String, sockgen::Plan)> {
    all_plans()
        .into_iter()
        .map(|p| (format!("{}__{}__{}", p.lang, p.model, stem(&p)), p))
        .collect()
}

fn diagnostic_snapshot_name(spec: &std::path::Path) -> String {
    format!(
        "invalid__{}",
        spec.file_name()
            .unwrap()
            .to_string_lossy()
            .replace('.', "_")
    )
}

#[test]
fn generated_code() {
    let _s = settings().bind_to_scope();
    for (name, plan) in code_snapshot_names() {
        let files = render(&plan, Layout::SingleFile).unwrap();
        assert_eq!(files.len(), 1);
        insta::assert_snapshot!(name, files[0].contents);
    }
}

#[test]
fn project_layout_files() {
    let _s = settings().bind_to_scope();
    let plan =
        in_root(|| sockgen::plan_file("specs/custom-workers.yaml".as_ref(), Overrides::default()))
            .unwrap();
    // A C project: the spec's part (settings, socket options, the model's loop, main), the
    // runtime every spec of the model shares, and the user's handler file.
    for f in render(&plan, Layout::Project).unwrap() {
        insta::assert_snapshot!(
            format!("project__custom_workers__{}", f.path.replace('.', "_")),
            f.contents
        );
    }
    // A Rust project: the spec's part (settings, socket options, the built-in handler, the
    // model's loop, serve) apart from the runtime every spec of the model shares.
    let target = Overrides {
        lang: Some("rust".parse().unwrap()),
        model: Some("epoll".parse().unwrap()),
    };
    let plan = in_root(|| sockgen::plan_file("specs/echo-tcp.yaml".as_ref(), target)).unwrap();
    for f in render(&plan, Layout::Project).unwrap() {
        insta::assert_snapshot!(rust_project_snapshot_name(&f.path), f.contents);
    }
    // Winsock projects build with MinGW-w64 (Makefile) or MSVC (CMakeLists.txt).
    let target = Overrides {
        lang: Some("winsock".parse().unwrap()),
        model: Some("iocp".parse().unwrap()),
    };
    let plan = in_root(|| sockgen::plan_file("specs/echo-udp.toml".as_ref(), target)).unwrap();
    for f in render(&plan, Layout::Project).unwrap() {
        if f.path == "Makefile" || f.path == "CMakeLists.txt" {
            insta::assert_snapshot!(
                format!("project__winsock_echo_udp__{}", f.path.replace('.', "_")),
                f.contents
            );
        }
    }
}

/// A Rust project's `runtime.rs` is what sockgen, not the spec, decides: two example specs of
/// the same model, role and protocol, unframed and without `log: ops`, get the same file but
/// for its header (which names the spec).
#[test]
fn rust_runtime_is_the_same_for_every_spec_of_a_model() {
    use std::collections::BTreeMap;
    let mut seen: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut compared = 0;
    for plan in all_plans() {
        if plan.lang != sockgen::plan::Lang::Rust
            || plan.log_ops
            || !matches!(plan.framing, sockgen::plan::Framing::None)
        {
            continue;
        }
        let files = render(&plan, Layout::Project).unwrap();
        let runtime = files
            .iter()
            .find(|f| f.path.ends_with("/runtime.rs"))
            .unwrap_or_else(|| panic!("{}: no runtime.rs", plan.spec_file));
        let body: String = runtime
            .contents
            .lines()
            .skip_while(|line| line.starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let key = format!("{} {} {}", plan.model, plan.role, plan.protocol);
        match seen.get(&key) {
            Some((first, first_body)) => {
                compared += 1;
                assert!(
                    *first_body == body,
                    "{key}: runtime.rs of {} and {} differ",
                    first,
                    plan.spec_file
                );
            }
            None => {
                seen.insert(key, (plan.spec_file.clone(), body));
            }
        }
    }
    assert!(compared >= 8, "only {compared} comparisons");
}

/// A C project's `NAME_runtime.h` is what sockgen, not the spec, decides: example specs of the
/// same language, model, role and protocol, unframed and without `log: ops`, get the same file
/// once their names are taken out (the names prefix every identifier, and comments aligned
/// under a name move with its length).
#[test]
fn c_runtime_is_the_same_for_every_spec_of_a_model() {
    use std::collections::BTreeMap;
    let mut seen: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut compared = 0;
    for plan in all_plans() {
        if plan.lang == sockgen::plan::Lang::Rust
            || plan.log_ops
            || !matches!(plan.framing, sockgen::plan::Framing::None)
        {
            continue;
        }
        let files = render(&plan, Layout::Project).unwrap();
        let runtime_file = format!("{}_runtime.h", plan.name);
        let runtime = files
            .iter()
            .find(|f| f.path == runtime_file)
            .unwrap_or_else(|| panic!("{}: no {runtime_file}", plan.spec_file));
        let body = runtime
            .contents
            .replace(&plan.name.to_ascii_uppercase(), "UPPER")
            .replace(&plan.name, "NAME")
            .split(' ')
            .filter(|word| !word.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let key = format!(
            "{} {} {} {}",
            plan.lang, plan.model, plan.role, plan.protocol
        );
        match seen.get(&key) {
            Some((first, first_body)) => {
                compared += 1;
                if *first_body != body {
                    let line = first_body
                        .lines()
                        .zip(body.lines())
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                    panic!(
                        "{key}: {runtime_file} of {first} and {} differ from line {}",
                        plan.spec_file,
                        line + 1
                    );
                }
            }
            None => {
                seen.insert(key, (plan.spec_file.clone(), body));
            }
        }
    }
    assert!(compared >= 20, "only {compared} comparisons");
}

fn rust_project_snapshot_name(path: &str) -> String {
    format!("project__rust_echo_tcp__{}", path.replace(['.', '/'], "_"))
}

#[test]
fn invalid_spec_diagnostics() {
    let _s = settings().bind_to_scope();
    let specs = invalid_specs();
    assert!(
        specs.len() >= 8,
        "specs/invalid should cover the diagnostics catalogue"
    );
    for spec in specs {
        let rendered = in_root(|| {
            let source = SourceFile::read(&spec).unwrap();
            match sockgen::plan_source(&source, Overrides::default()) {
                Err(Error::Invalid(d)) => d.render(),
                Ok(_) => panic!("{} is valid but lives in specs/invalid", spec.display()),
                Err(e) => panic!("{}: {e}", spec.display()),
            }
        });
        insta::assert_snapshot!(diagnostic_snapshot_name(&spec), rendered);
    }
}

/// Spec features no example spec uses (framing, custom clients, `log: ops`...), so that their
/// template branches are held to the line width too; names as long as the longest example's.
const WIDTH_VARIANTS: [&str; 7] = [
    "name: framing_length\nframing: { kind: length_prefix, bytes: 2 }\nlog: ops\n",
    "name: framing_custom\nhandler: custom\nframing: { kind: line }\n",
    "name: framing_delims\nframing: { kind: delimiter, delimiter: \"\\r\\n\\r\\n\" }\n\
     address: \"::1\"\nsocket: { v6only: true, recv_buffer: 65536, send_buffer: 65536 }\n",
    "name: custom_client1\nrole: client\nhandler: custom\nport: 7000\nlog: ops\n",
    "name: framed_client1\nrole: client\nhandler: custom\nport: 7000\nframing: { kind: line }\n",
    "name: udp_custom_cli\nrole: client\nprotocol: udp\nhandler: custom\nport: 7000\nlog: ops\n",
    "name: udp_custom_srv\nprotocol: udp\nhandler: custom\nlog: ops\n",
];

/// Every C and Winsock C plan: the example specs' and the width variants' on every target.
fn c_plans() -> Vec<sockgen::Plan> {
    use sockgen::source::Format;
    let mut plans: Vec<sockgen::Plan> = all_plans()
        .into_iter()
        .filter(|p| p.lang != sockgen::plan::Lang::Rust)
        .collect();
    for (i, text) in WIDTH_VARIANTS.iter().enumerate() {
        // A spec path long enough that the header's render command must wrap.
        let path =
            format!("specs/width-variants/a-directory-name-long-enough-to-wrap/variant{i}.yaml");
        let source = SourceFile::from_text(path, *text, Format::Yaml);
        for (lang, model) in all_targets() {
            if lang == "rust" {
                continue;
            }
            let target = Overrides {
                lang: Some(lang.parse().unwrap()),
                model: Some(model.parse().unwrap()),
            };
            match sockgen::plan_source(&source, target) {
                Ok(plan) => plans.push(plan),
                Err(e) => panic!("width variant {i} for --lang {lang} --model {model}: {e}"),
            }
        }
    }
    plans
}

/// Generated C and Winsock C stay within 100 columns, in a single file and in every C source
/// and header of a project (the handler starter too: sockgen writes it before the user owns it).
/// Only what the user chose can pass the limit: a name longer than the examples' or a spec path
/// too long for a line of its own.
#[test]
fn generated_c_within_100_columns() {
    const MAX: usize = sockgen::backend::c::MAX_COLUMNS;
    let mut long = Vec::new();
    for plan in c_plans() {
        for layout in [Layout::SingleFile, Layout::Project] {
            for f in render(&plan, layout).unwrap() {
                if !(f.path.ends_with(".c") || f.path.ends_with(".h")) {
                    continue;
                }
                for (i, line) in f.contents.lines().enumerate() {
                    if line.chars().count() > MAX {
                        long.push(format!(
                            "{} --lang {} --model {} ({layout:?}) {}:{}: {line}",
                            plan.spec_file,
                            plan.lang,
                            plan.model,
                            f.path,
                            i + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "{} generated C lines are longer than {MAX} columns:\n{}",
        long.len(),
        long.join("\n")
    );
}

/// A snapshot no test produces is stale: delete it (CI fails instead of keeping dead files).
#[test]
fn no_unreferenced_snapshots() {
    let mut expected: BTreeSet<String> =
        code_snapshot_names().into_iter().map(|(n, _)| n).collect();
    expected.extend(invalid_specs().iter().map(|s| diagnostic_snapshot_name(s)));
    expected.extend(
        analyze_fixtures()
            .iter()
            .map(|n| format!("analyze__{}", n.replace('-', "_"))),
    );
    expected.extend([
        "project__custom_workers__custom_workers_c".to_string(),
        "project__custom_workers__custom_workers_runtime_h".to_string(),
        "project__custom_workers__custom_workers_handler_c".to_string(),
        "project__custom_workers__Makefile".to_string(),
        "project__winsock_echo_udp__Makefile".to_string(),
        "project__winsock_echo_udp__CMakeLists_txt".to_string(),
    ]);
    expected.extend(
        [
            "Cargo.toml",
            "src/main.rs",
            "src/echo_tcp/mod.rs",
            "src/echo_tcp/runtime.rs",
        ]
        .map(rust_project_snapshot_name),
    );
    let on_disk: BTreeSet<String> = file_stems("snapshots", ".snap").into_iter().collect();
    let stale: Vec<_> = on_disk.difference(&expected).collect();
    assert!(
        stale.is_empty(),
        "unreferenced snapshots in snapshots/: {stale:?}"
    );
}
