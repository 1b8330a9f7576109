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
