//! `verify` proves a framed server with framed messages: a spec from `sockgen init` with any
//! framing passes when its server is right, and a server that frames its replies wrongly fails
//! with the bytes named as a person reads them.

mod common;

use std::path::PathBuf;

use sockgen::proof::{self, ProofOptions};

/// The `sockgen init` spec with its framing line uncommented and set to `framing`.
fn starter_with(framing: &str) -> String {
    let starter = sockgen::starter::text(sockgen::source::Format::Yaml);
    let commented = "# framing: { kind: line }";
    assert!(
        starter.contains(commented),
        "the starter's framing line moved"
    );
    starter.replace(commented, &format!("framing: {framing}"))
}

fn write_spec(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every verify report passed, and each ran the framed echo check.
fn assert_framed_pass(reports: &[proof::ProofReport], what: &str) {
    assert!(!reports.is_empty(), "{what}: nothing verified");
    for report in reports {
        let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
        assert!(
            failed.is_empty(),
            "{what} {}/{}: {failed:#?}",
            report.lang,
            report.model
        );
        assert!(
            report.checks.iter().any(|c| c.name == "tcp framed echo"),
            "{what} {}/{}: no framed check in {:#?}",
            report.lang,
            report.model,
            report.checks
        );
    }
}

#[test]
fn a_starter_spec_verifies_with_every_framing() {
    let framings = [
        "{ kind: line }",
        "{ kind: length_prefix }",
        "{ kind: length_prefix, bytes: 1 }",
        "{ kind: length_prefix, bytes: 2, endian: little }",
        "{ kind: length_prefix, bytes: 8, endian: little }",
        r#"{ kind: delimiter, delimiter: "\r\n\r\n" }"#,
        r#"{ kind: delimiter, delimiter: "|" }"#,
    ];
    for framing in framings {
        let dir = tempfile::tempdir().unwrap();
        let spec = write_spec(&dir, &starter_with(framing));
        let reports = proof::verify(
            &spec,
            Some("c".parse().unwrap()),
            Some("epoll".parse().unwrap()),
            &ProofOptions::default(),
            1,
        )
        .unwrap_or_else(|e| panic!("{framing}: {e}"));
        assert_framed_pass(&reports, framing);
    }
}

/// Every language and model, with the framing the issue found failing first.
#[test]
fn line_framing_verifies_in_every_model() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(&dir, &starter_with("{ kind: line }"));
    let reports = proof::verify(&spec, None, None, &ProofOptions::default(), 2).unwrap();
    let targets = common::all_targets().len();
    assert_eq!(reports.len(), targets, "every target of the matrix");
    assert_framed_pass(&reports, "line");
}

/// A handler that answers each line with CR LF where the framing writes LF: the check fails,
/// and says which byte it expected and which came, as hex and escaped text.
#[test]
fn a_wrongly_framed_reply_fails_with_the_bytes_named() {
    let spec = "name: crlf\nhandler: custom\nframing: { kind: line }\n";
    let plan = common::plan_for(spec, "c", "epoll");
    let stub = sockgen::render::render(&plan, sockgen::Layout::Project)
        .unwrap()
        .into_iter()
        .find(|f| f.path == "crlf_handler.c")
        .unwrap()
        .contents;
    let framed_reply = "(void)crlf_send_message(c, msg, len);";
    assert!(stub.contains(framed_reply), "the stub's reply moved");
    let wrong = stub.replace(
        framed_reply,
        "(void)crlf_write(c, msg, len);\n    (void)crlf_write(c, \"\\r\\n\", 2);",
    );
    let dir = tempfile::tempdir().unwrap();
    let binary = proof::build_project(&plan, dir.path(), &[("crlf_handler.c".to_string(), wrong)])
        .unwrap_or_else(|(stage, e)| panic!("{stage}: {e}"));
    let report = proof::prove_binary(&plan, &binary, &ProofOptions::default()).unwrap();
    let check = report
        .checks
        .iter()
        .find(|c| c.name == "tcp framed echo")
        .expect("a framed check");
    assert!(!check.passed, "a CR LF reply passed: {}", check.detail);
    assert!(
        check.detail.contains("expected 0x0a '\\n', got 0x0d '\\r'"),
        "{}",
        check.detail
    );
    assert!(!check.detail.contains("Some("), "{}", check.detail);
}
