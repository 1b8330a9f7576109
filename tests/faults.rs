//! `sockgen verify --faults` on every language × model (Winsock under Wine), TCP and UDP: the fault suite
//! (src/proof/faults.rs) runs each scenario against a fresh server and checks afterwards that
//! it serves byte-exact, holds no extra descriptors, does not spin and stops with status 0.
//! (loopback.rs and contract.rs hold the scenarios that need special builds or limits: closed
//! stdio, EMFILE with one and four workers, RLIMIT_AS, max_connections, idle timeout…)

mod common;

use common::*;
use sockgen::proof::{self, ProofOptions};

#[test]
fn every_echo_server_survives_the_fault_suite() {
    let options = ProofOptions {
        faults: true,
        ..ProofOptions::default()
    };
    let reports: Vec<_> = in_root(|| {
        ["specs/echo-tcp.yaml", "specs/echo-udp.toml"]
            .iter()
            .flat_map(|spec| {
                proof::verify(std::path::Path::new(spec), None, None, &options, 2).unwrap()
            })
            .collect()
    });
    assert_eq!(
        reports.len(),
        22,
        "eleven TCP and eleven UDP servers: eight Linux, three Winsock (under Wine)"
    );
    let mut failures = Vec::new();
    for report in &reports {
        let faults = report
            .checks
            .iter()
            .filter(|c| c.name.starts_with("fault: "))
            .count();
        assert!(
            faults >= 3,
            "{}: only {faults} fault checks",
            report.summary()
        );
        if !report.passed() {
            failures.push(report.summary());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn verify_faults_reports_each_scenario_in_json() {
    let out = sockgen(&[
        "verify",
        "specs/echo-udp.toml",
        "--lang",
        "c",
        "--model",
        "epoll",
        "--faults",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = json["results"][0]["checks"].as_array().unwrap();
    for scenario in [
        "fault: zero-length datagram",
        "fault: 65,507-byte datagram",
        "fault: burst past the receive buffer",
    ] {
        assert!(
            checks
                .iter()
                .any(|c| c["name"] == scenario && c["passed"] == true),
            "{scenario}: {json:#}"
        );
    }
}
