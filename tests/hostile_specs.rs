//! Hostile or broken spec files: each must give a clear error, quickly, and never a panic.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn check_rejects(name: &str, bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let started = Instant::now();
    let out = sockgen(&["check", path.to_str().unwrap()]);
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        matches!(out.status.code(), Some(1) | Some(2)),
        "{name}: exit {:?} (a panic exits 101)\n{stderr}",
        out.status.code()
    );
    assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    assert!(
        stderr.contains("error"),
        "{name}: no error message: {stderr}"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "{name}: took {elapsed:?}"
    );
    stderr
}

#[test]
fn hostile_yaml() {
    let laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
                  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n\
                  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\nname: x\n";
    check_rejects("laughs.yaml", laughs.as_bytes());
    let deep = check_rejects(
        "deep.yaml",
        format!(
            "name: x\nsocket: {}{}\n",
            "[".repeat(20_000),
            "]".repeat(20_000)
        )
        .as_bytes(),
    );
    assert!(
        deep.contains("deep.yaml:2:") && deep.len() < 2_000,
        "a huge line is pointed at, not printed: {} bytes",
        deep.len()
    );
    let utf8 = check_rejects("utf8.yaml", b"name: \xff\xfe\n");
    assert!(
        utf8.contains("not UTF-8") && utf8.contains("utf8.yaml:1:7"),
        "{utf8}"
    );
    check_rejects("nul.yaml", b"name: a\0b\n");
    let huge = check_rejects(
        "huge.yaml",
        b"name: x\nport: 100000000000000000000000000000000000000000\n",
    );
    assert!(huge.contains("port"), "{huge}");
    check_rejects("complex-key.yaml", b"name: x\n? [a, b]\n: c\n");
    check_rejects("number-key.yaml", b"name: x\n1: 2\n");
    check_rejects("list.yaml", b"- name: x\n");
    check_rejects("scalar.yaml", b"just a string\n");
    check_rejects("dup.yaml", b"name: x\nname: y\n");
    check_rejects("tabs.yaml", b"name: x\nsocket:\n\tnodelay: true\n");
    check_rejects("float.yaml", b"name: x\nport: 80.5\n");
    check_rejects("nan.yaml", b"name: x\nport: .nan\n");
    let multi = check_rejects("multi-doc.yaml", b"name: x\n---\nname: y\n");
    assert!(multi.contains("a spec is one document"), "{multi}");
}

#[test]
fn hostile_toml() {
    check_rejects(
        "deep.toml",
        format!(
            "name = \"x\"\nsocket = {}{}\n",
            "[".repeat(20_000),
            "]".repeat(20_000)
        )
        .as_bytes(),
    );
    check_rejects("utf8.toml", b"name = \"\xff\"\n");
    check_rejects(
        "huge.toml",
        b"name = \"x\"\nport = 99999999999999999999999999\n",
    );
    check_rejects("date.toml", b"name = \"x\"\nport = 1979-05-27\n");
    check_rejects("dup.toml", b"name = \"x\"\nname = \"y\"\n");
    check_rejects(
        "array-of-tables.toml",
        b"name = \"x\"\n[[socket]]\nnodelay = true\n",
    );
    check_rejects("empty.toml", b"");
}

/// Every invalid spec exits 2, the README's promise; problems of the file system exit 1.
#[test]
fn exit_codes_and_messages_for_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let run = |path: &str| {
        let out = sockgen(&["check", path]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&write("bad.toml", b"name = \"\xc3\x28\"\n"));
    assert_eq!(code, Some(2), "{stderr}");
    let (code, stderr) = run(&write("dup.yaml", b"name: a\nport: 1\nname: b\n"));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("key `name` appears twice (first at 1:1)")
            && stderr.contains("dup.yaml:3:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("DuplicateKeyPolicy"), "{stderr}");
    let (code, stderr) = run(&write("dup.toml", b"name = \"a\"\nname = \"b\"\n"));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("key `name` appears twice (first at 1:1)"),
        "{stderr}"
    );
    let (code, stderr) = run(dir.path().to_str().unwrap());
    assert_eq!(code, Some(1));
    assert!(stderr.contains("is a directory"), "{stderr}");
    let (code, stderr) = run(&write("empty.yaml", b"# nothing\n"));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("sockgen init"), "{stderr}");
}

/// Names that are valid identifiers but dangerous in the output (protobuf's bad-identifiers
/// idea): each gives a program that compiles, or a clear error before any code is written.
#[test]
fn hostile_names_compile_or_are_refused() {
    let names = [
        "tcp",
        "TCP",
        "udp",
        "so",
        "sock",
        "SOCK",
        "epoll_x",
        "sig",
        "pthread",
        "in6",
        "build",
        "deps",
        "examples",
        "incremental",
        "con",
        "self_test",
        "main_loop",
        "errno_x",
        "EOF_x",
        "stdin_x",
        "loop_",
        "conn",
        "worker",
        "info",
        "Conn",
        "PHASE_OPEN",
        "out_chunk",
        "loop",
        "dgram",
        "timers",
        "stop",
        "format",
    ];
    let dir = tempfile::tempdir().unwrap();
    let compiler = sockgen::proof::CCompiler::find().unwrap();
    let mut rust_accepted = Vec::new();
    for name in names {
        let spec = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&spec, format!("name: {name}\nhandler: custom\n")).unwrap();
        for lang in ["c", "rust"] {
            let target = sockgen::Overrides {
                lang: Some(lang.parse().unwrap()),
                model: None,
            };
            match sockgen::plan_file(&spec, target) {
                Err(e) => {
                    let text = e.to_string();
                    assert!(
                        text.contains("not usable as a name"),
                        "{name} ({lang}): unclear refusal:\n{text}"
                    );
                }
                Ok(plan) if lang == "c" => {
                    sockgen::proof::build_c(&plan, &compiler, dir.path(), &[]).unwrap_or_else(
                        |e| panic!("{name} was accepted for C but does not compile:\n{e}"),
                    );
                }
                Ok(plan) => rust_accepted.push(plan),
            }
        }
    }
    // Each accepted Rust name as its own generated crate (the package name is the name).
    let toolchain = sockgen::proof::RustToolchain::find().unwrap();
    for plan in rust_accepted {
        let crate_dir = dir.path().join(format!("rust-{}", plan.name));
        let files = sockgen::render::render(&plan, sockgen::Layout::Project).unwrap();
        sockgen::render::write(&crate_dir, &files).unwrap();
        toolchain
            .check(&crate_dir, "hostile-names")
            .unwrap_or_else(|e| {
                panic!(
                    "{} was accepted for Rust but does not build:\n{e}",
                    plan.name
                )
            });
    }
}

/// The system names validation checks against are those of this machine's headers.
#[test]
fn the_embedded_system_names_are_current() {
    let committed = std::fs::read_to_string(root().join("src/backend/c_system_names.txt")).unwrap();
    let out = std::process::Command::new("bash")
        .arg(root().join("scripts/c-system-names.sh"))
        .env("SOCKGEN_NAMES_OUT", "-")
        .env("SOCKGEN", env!("CARGO_BIN_EXE_sockgen"))
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = String::from_utf8(out.stdout).unwrap();
    let missing: Vec<&str> = fresh
        .lines()
        .filter(|id| !committed.lines().any(|c| c == *id))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "run scripts/c-system-names.sh: the headers declare {missing:?}…"
    );
}

/// No name can spell one of the generated C's own identifiers: every file-scope identifier of
/// every rendered model that some name would also generate is refused by validation.
#[test]
fn generated_identifiers_never_meet_the_outputs_own() {
    let mut own = std::collections::BTreeSet::new();
    for spec in [
        "echo-tcp.yaml",
        "echo-udp.toml",
        "chargen-tcp.yaml",
        "custom-workers.yaml",
    ] {
        for model in ["blocking", "poll", "epoll"] {
            let out = sockgen(&[
                "render",
                &format!("specs/{spec}"),
                "--lang",
                "c",
                "--model",
                model,
            ]);
            if !out.status.success() {
                continue; // custom-workers has no blocking form
            }
            let code = String::from_utf8(out.stdout).unwrap();
            // Struct members live in their struct's namespace: a function may share their name.
            let words = code_words(&code);
            let members: std::collections::BTreeSet<&String> = words
                .windows(2)
                .filter(|w| w[0] == "->" || w[0] == ".")
                .map(|w| &w[1])
                .collect();
            for word in words.iter().filter(|w| !members.contains(w)).cloned() {
                let lower = word.to_ascii_lowercase();
                let named = ["echo", "chargen", "custom"]
                    .iter()
                    .any(|n| lower.starts_with(n));
                if word.contains('_') && !named {
                    own.insert(word);
                }
            }
        }
    }
    let system = std::fs::read_to_string(root().join("src/backend/c_system_names.txt")).unwrap();
    for id in &own {
        if system.lines().any(|n| n == id) {
            continue; // the system's: checked by validation against that list
        }
        for (i, _) in id.match_indices('_') {
            let prefix = &id[..i];
            if !prefix.starts_with(|c: char| c.is_ascii_alphabetic()) {
                continue;
            }
            if sockgen::validate::c_generated_identifiers(prefix)
                .iter()
                .any(|g| g == id)
            {
                let source = sockgen::SourceFile::from_text(
                    "x.yaml",
                    format!("name: {prefix}\n"),
                    sockgen::source::Format::Yaml,
                );
                assert!(
                    sockgen::plan_source(&source, sockgen::Overrides::default()).is_err(),
                    "name `{prefix}` would make `{id}`, which the generated code already declares"
                );
            }
        }
    }
}

/// The identifier-like words of C code outside comments and string literals.
fn code_words(code: &str) -> Vec<String> {
    let mut text = String::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'*') => {
                let mut last = ' ';
                for d in chars.by_ref() {
                    if last == '*' && d == '/' {
                        break;
                    }
                    last = d;
                }
                text.push(' ');
            }
            '"' => {
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                text.push(' ');
            }
            _ => text.push(c),
        }
    }
    // Words, with `->` and `.` kept as tokens so member accesses can be told apart.
    let text = text.replace("->", " -> ").replace('.', " . ");
    text.split(|c: char| {
        !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '>' || c == '.')
    })
    .filter(|w| !w.is_empty())
    .filter(|w| *w == "->" || *w == "." || !w.contains(['-', '>', '.']))
    .map(str::to_string)
    .collect()
}

/// Validation checks the identifiers the C output makes from the name; that list must cover
/// every one the templates emit, in every handler, protocol, model and framing.
#[test]
fn the_checked_identifiers_cover_everything_the_c_output_names() {
    let known = sockgen::validate::c_generated_identifiers("zzq");
    for protocol in ["tcp", "udp"] {
        for handler in ["echo", "discard", "chargen", "custom"] {
            for framing in ["", "framing: { kind: line }\n"] {
                if protocol == "udp" && !framing.is_empty()
                    || matches!(handler, "discard" | "chargen") && !framing.is_empty()
                {
                    continue;
                }
                for model in ["blocking", "poll", "epoll"] {
                    let text = format!(
                        "name: zzq\nprotocol: {protocol}\nhandler: {handler}\nlog: ops\n{framing}"
                    );
                    let source = sockgen::SourceFile::from_text(
                        "x.yaml",
                        text,
                        sockgen::source::Format::Yaml,
                    );
                    let target = sockgen::Overrides {
                        lang: None,
                        model: Some(model.parse().unwrap()),
                    };
                    let plan =
                        sockgen::plan_source(&source, target).unwrap_or_else(|e| panic!("{e}"));
                    for file in sockgen::render::render(&plan, sockgen::Layout::Project).unwrap() {
                        for word in code_words(&file.contents) {
                            if word.starts_with("zzq_") || word.starts_with("ZZQ_") {
                                assert!(known.contains(&word), "`{word}` ({protocol} {handler} {model}) is missing from validate's suffix lists");
                            }
                        }
                    }
                }
            }
        }
    }
}
