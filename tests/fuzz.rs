//! Property-based fuzzing of the pipeline: specs built from the spec's own keys with values
//! of every shape (right, wrong, out of range, hostile text), in YAML and TOML, and raw bytes.
//! Properties: loading, validating and rendering never panic; every accepted spec renders in
//! every layout; accepted specs compile (a sample, since a C compile takes a fraction of a
//! second). The case count is bounded for the suite; `PROPTEST_CASES=20000 cargo test --test
//! fuzz` is the longer run CONTRIBUTING.md reports.

use proptest::prelude::*;
use sockgen::source::{Format, SourceFile};
use sockgen::{Layout, Overrides};

/// A value of any shape a user (or an attacker) might write.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        (0u32..70_000).prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "tcp",
            "udp",
            "echo",
            "custom",
            "chargen",
            "discard",
            "c",
            "rust",
            "winsock",
            "epoll",
            "poll",
            "blocking",
            "io_uring",
            "iocp",
            "line",
            "length_prefix",
            "delimiter",
            "none",
            "big",
            "little",
            "::",
            "::1",
            "127.0.0.1",
            "0.0.0.0",
            "server",
            "client",
        ])
        .prop_map(|s| format!("\"{s}\"")),
        "[a-zA-Z0-9_:.* /$\"\\\\-]{0,20}".prop_map(|s| format!("{s:?}")),
        Just("~".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("1.5".to_string()),
    ]
}

const TOP: &[&str] = &[
    "name", "role", "protocol", "address", "port", "lang", "model", "handler", "sources", "nme",
];
const TABLES: &[(&str, &[&str])] = &[
    (
        "socket",
        &[
            "reuseaddr",
            "reuseport",
            "nodelay",
            "recv_buffer",
            "send_buffer",
            "linger_s",
            "v6only",
            "keepalive",
        ],
    ),
    (
        "server",
        &[
            "backlog",
            "workers",
            "max_connections",
            "idle_timeout_ms",
            "linger_ms",
            "stack_size",
        ],
    ),
    (
        "io",
        &[
            "buffer_size",
            "output_buffer",
            "output_limit",
            "max_message",
            "max_events",
        ],
    ),
    ("framing", &["kind", "bytes", "endian", "delimiter"]),
];

/// A value that usually suits `key` (so many specs are valid), sometimes anything.
fn value_for(key: &'static str) -> BoxedStrategy<String> {
    let quoted = |words: &'static [&'static str]| {
        prop::sample::select(words)
            .prop_map(|w| format!("\"{w}\""))
            .boxed()
    };
    let plausible: BoxedStrategy<String> = match key {
        "protocol" => quoted(&["tcp", "udp"]),
        "lang" => quoted(&["c", "rust"]),
        "model" => quoted(&["blocking", "poll", "epoll"]),
        "handler" => quoted(&["echo", "discard", "chargen", "custom"]),
        "role" => quoted(&["server"]),
        "address" => quoted(&["127.0.0.1", "::1", "0.0.0.0", "::"]),
        "kind" => quoted(&["none", "line", "length_prefix", "delimiter"]),
        "endian" => quoted(&["big", "little"]),
        "delimiter" => quoted(&["\\r\\n", "|", "END"]),
        "sources" => Just("[\"store.c\"]".to_string()).boxed(),
        "reuseaddr" | "reuseport" | "nodelay" | "v6only" => {
            any::<bool>().prop_map(|b| b.to_string()).boxed()
        }
        "bytes" => prop::sample::select(vec![1u32, 2, 4, 8])
            .prop_map(|n| n.to_string())
            .boxed(),
        "port" => (0u32..65_536).prop_map(|n| n.to_string()).boxed(),
        "workers" => Just("1".to_string()).boxed(),
        "keepalive" => Just("{ idle_s: 30 }".to_string()).boxed(),
        _ => (1024u32..200_000).prop_map(|n| n.to_string()).boxed(),
    };
    prop_oneof![4 => plausible, 1 => value()].boxed()
}

/// One key of `keys` with a value for it.
fn entry(keys: &'static [&'static str]) -> impl Strategy<Value = (&'static str, String)> {
    prop::sample::select(keys).prop_flat_map(|key| value_for(key).prop_map(move |v| (key, v)))
}

/// A spec in YAML flow style (which TOML inline tables mirror), mostly valid names.
fn spec() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        3 => "[a-z][a-z0-9_]{0,12}".prop_map(|s| format!("\"{s}\"")),
        1 => value(),
    ];
    let top = prop::collection::vec(entry(TOP), 0..6);
    let tables = prop::collection::vec(
        prop::sample::select(TABLES).prop_flat_map(|(table, keys)| {
            prop::collection::vec(entry(keys), 0..5).prop_map(move |entries| (table, entries))
        }),
        0..4,
    );
    (name, top, tables).prop_map(|(name, top, tables)| {
        let mut yaml = format!("name: {name}\n");
        let mut toml = format!("name = {}\n", toml_value(&name));
        let mut seen = vec!["name".to_string()];
        for (key, value) in top {
            if seen.iter().any(|k| k == key) {
                continue;
            }
            seen.push(key.to_string());
            yaml.push_str(&format!("{key}: {value}\n"));
            toml.push_str(&format!("{key} = {}\n", toml_value(&value)));
        }
        for (table, entries) in tables {
            if seen.iter().any(|k| k == table) {
                continue;
            }
            seen.push(table.to_string());
            let mut pairs: Vec<(&str, String)> = Vec::new();
            for (key, value) in entries {
                if !pairs.iter().any(|(k, _)| *k == key) {
                    pairs.push((key, value));
                }
            }
            let flow = |sep: &str, conv: &dyn Fn(&str) -> String| {
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}{sep}{}", conv(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            yaml.push_str(&format!(
                "{table}: {{ {} }}\n",
                flow(": ", &|v| v.to_string())
            ));
            toml.push_str(&format!("{table} = {{ {} }}\n", flow(" = ", &toml_value)));
        }
        (yaml, toml)
    })
}

/// The same value in TOML spelling (`~` has no TOML form: an empty table stands in).
fn toml_value(v: &str) -> String {
    match v {
        "~" => "{}".to_string(),
        other => other.to_string(),
    }
}

/// The pipeline on one text: never panics; an accepted spec renders in every layout.
fn exercise(text: &str, format: Format) -> Option<sockgen::Plan> {
    let source = SourceFile::from_text("fuzz", text, format);
    let plan = sockgen::plan_source(&source, Overrides::default()).ok()?;
    for layout in [Layout::SingleFile, Layout::Project] {
        let files = sockgen::render::render(&plan, layout)
            .unwrap_or_else(|e| panic!("an accepted spec failed to render:\n{text}\n{e}"));
        assert!(!files.is_empty());
    }
    Some(plan)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn structured_specs_never_panic((yaml, toml) in spec()) {
        exercise(&yaml, Format::Yaml);
        exercise(&toml, Format::Toml);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}", bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        exercise(&text, Format::Yaml);
        exercise(&text, Format::Toml);
        let lossy = String::from_utf8_lossy(&bytes);
        exercise(&lossy, Format::Yaml);
        exercise(&lossy, Format::Toml);
    }
}

proptest! {
    // Each accepted case is compiled with the strict flags: few cases, many seconds.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn accepted_specs_compile((yaml, _toml) in spec()) {
        if let Some(plan) = exercise(&yaml, Format::Yaml) {
            if plan.lang == sockgen::plan::Lang::C {
                let dir = tempfile::tempdir().unwrap();
                let compiler = sockgen::proof::CCompiler::find().unwrap();
                sockgen::proof::build_c(&plan, &compiler, dir.path(), &[])
                    .unwrap_or_else(|e| panic!("an accepted spec does not compile:\n{yaml}\n{e}"));
            }
        }
    }
}

/// The generator reaches valid specs often enough for the properties above to mean something.
#[test]
fn the_generator_reaches_valid_specs() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = spec();
    let (mut accepted, total) = (0, 400);
    for _ in 0..total {
        let (yaml, _) = strategy.new_tree(&mut runner).unwrap().current();
        accepted += usize::from(exercise(&yaml, Format::Yaml).is_some());
    }
    assert!(
        accepted * 10 >= total,
        "only {accepted} of {total} generated specs are valid"
    );
    eprintln!("{accepted} of {total} generated specs valid");
}
