//! The starter spec `sockgen init` writes, in YAML or TOML, built from what cannot drift: each
//! key's comment is the first sentence of its description in the JSON Schema, each value set is
//! the default validation fills in (read back from a Plan), and a test checks that every key
//! the decoder knows appears, set or commented.

use crate::source::Format;

/// One line of the starter: a key set to its default, or shown commented out with an example.
enum Line {
    Set(&'static str, Value),
    Example(&'static str, Value),
}

/// A value as both formats write it.
#[derive(Clone)]
enum Value {
    Text(String),
    Texts(Vec<String>),
    Int(u64),
    Bool(bool),
    List(Vec<u64>),
    /// An inline table: `{ kind: line }` / `{ kind = "line" }`.
    Table(Vec<(&'static str, Value)>),
    /// A list of inline tables.
    Tables(Vec<Vec<(&'static str, Value)>>),
}

impl Value {
    fn write(&self, format: Format) -> String {
        let toml = format == Format::Toml;
        match self {
            Value::Text(text) if toml => format!("{text:?}"),
            Value::Text(text) => yaml_text(text),
            Value::Texts(texts) => format!(
                "[{}]",
                texts
                    .iter()
                    .map(|t| Value::Text(t.clone()).write(format))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Int(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::List(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Table(fields) => {
                let separator = if toml { " = " } else { ": " };
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}{separator}{}", v.write(format)))
                    .collect();
                format!("{{ {} }}", fields.join(", "))
            }
            Value::Tables(tables) => {
                let tables: Vec<String> = tables
                    .iter()
                    .map(|t| Value::Table(t.clone()).write(format))
                    .collect();
                format!("[{}]", tables.join(", "))
            }
        }
    }
}

/// A YAML scalar written plain when YAML reads it back as the same string, quoted otherwise.
fn yaml_text(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
        && !matches!(
            text,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off"
        )
        && text.parse::<f64>().is_err();
    if plain {
        text.to_string()
    } else {
        format!("{text:?}")
    }
}

/// One table of the starter (the top level is the table with no name).
struct Section {
    name: &'static str,
    /// Shown commented out as a whole: it applies to another role.
    commented: bool,
    /// Said before the table.
    note: &'static str,
    lines: Vec<Line>,
}

/// The defaults, from Plans of minimal specs (so the starter states what validation fills in).
struct Defaults {
    server: crate::Plan,
    client: crate::Plan,
    keepalive: crate::plan::Keepalive,
}

fn plan_of(text: &str) -> crate::Plan {
    let source = crate::SourceFile::from_text("starter.yaml", text, Format::Yaml);
    match crate::plan_source(&source, crate::Overrides::default()) {
        Ok(plan) => plan,
        // The texts are fixed and valid; a failure here is a sockgen bug that the starter test
        // reports, so the starter is still written with what is known.
        Err(e) => panic!("the starter's defaults do not validate: {e}"),
    }
}

impl Defaults {
    fn new() -> Defaults {
        let server = plan_of("name: my_server\nhandler: custom\n");
        let client = plan_of("name: my_client\nrole: client\n");
        let keepalive = plan_of("name: k\nsocket: { keepalive: {} }\n")
            .socket
            .keepalive
            .unwrap_or(crate::plan::Keepalive {
                idle_s: 60,
                interval_s: 10,
                count: 5,
            });
        Defaults {
            server,
            client,
            keepalive,
        }
    }
}

fn sections(d: &Defaults) -> Vec<Section> {
    use Line::{Example, Set};
    use Value::{Bool, Int, List, Table, Tables, Text, Texts};
    let s = &d.server;
    let c = d.client.client.as_ref();
    let client = |f: fn(&crate::plan::ClientPlan) -> u32| Int(c.map_or(0, f).into());
    let k = d.keepalive;
    vec![
        Section {
            name: "",
            commented: false,
            note: "",
            lines: vec![
                Set("name", Text(s.name.clone())),
                Set("role", Text(s.role.to_string())),
                Set("protocol", Text(s.protocol.to_string())),
                Set("address", Text(s.address.to_string())),
                Set("port", Int(s.port.into())),
                Set("lang", Text(s.lang.to_string())),
                Set("model", Text(s.model.to_string())),
                Set("handler", Text(s.handler.to_string())),
                Set("log", Text(if s.log_ops { "ops" } else { "errors" }.into())),
                Example("sources", Texts(vec!["store.c".into()])),
                Example(
                    "options",
                    Tables(vec![vec![
                        ("name", Text("max_keys".into())),
                        ("type", Text("int".into())),
                        ("default", Int(1000)),
                        ("min", Int(1)),
                        ("max", Int(1_000_000)),
                        ("help", Text("keys kept at most".into())),
                    ]]),
                ),
                Example("framing", Table(vec![("kind", Text("line".into()))])),
            ],
        },
        Section {
            name: "framing",
            commented: true,
            note: "kind: length_prefix takes bytes and endian; kind: delimiter takes delimiter",
            lines: vec![
                Example("kind", Text("length_prefix".into())),
                Example("bytes", Int(4)),
                Example("endian", Text("big".into())),
                Example("delimiter", Text("\r\n".into())),
            ],
        },
        Section {
            name: "socket",
            commented: false,
            note: "",
            lines: vec![
                Set("reuseaddr", Bool(s.socket.reuseaddr)),
                Set("v6only", Bool(s.socket.v6only)),
                Set("reuseport", Bool(s.socket.reuseport)),
                Set("nodelay", Bool(s.socket.nodelay)),
                Example("recv_buffer", Int(65536)),
                Example("send_buffer", Int(65536)),
                Example(
                    "keepalive",
                    Table(vec![
                        ("idle_s", Int(k.idle_s.into())),
                        ("interval_s", Int(k.interval_s.into())),
                        ("count", Int(k.count.into())),
                    ]),
                ),
                Example("linger_s", Int(5)),
            ],
        },
        Section {
            name: "server",
            commented: false,
            note: "",
            lines: vec![
                Set("backlog", Int(s.server.backlog.into())),
                Set("workers", Int(s.server.workers.into())),
                Set("max_connections", Int(s.server.max_connections.into())),
                Set("idle_timeout_ms", Int(s.server.idle_timeout_ms.into())),
                Set("linger_ms", Int(s.server.linger_ms.into())),
                Example("stack_size", Int(s.server.stack_size.into())),
            ],
        },
        Section {
            name: "io",
            commented: false,
            note: "",
            lines: vec![
                Set("buffer_size", Int(s.io.buffer_size.into())),
                Set("output_buffer", Int(s.io.output_buffer.into())),
                Set("output_limit", Int(s.io.output_limit)),
                Set("max_message", Int(s.io.max_message.into())),
                Set("max_events", Int(s.io.max_events.into())),
            ],
        },
        Section {
            name: "client",
            commented: true,
            note: "role: client only (a client's defaults)",
            lines: vec![
                Example("connect_timeout_ms", client(|c| c.connect_timeout_ms)),
                Example("idle_timeout_ms", client(|c| c.idle_timeout_ms)),
                Example(
                    "retry",
                    Table(vec![
                        ("max_attempts", client(|c| c.max_attempts)),
                        ("base_ms", client(|c| c.backoff_base_ms)),
                        ("max_ms", client(|c| c.backoff_max_ms)),
                    ]),
                ),
                Example("pool", Table(vec![("size", client(|c| c.pool_size))])),
                Example("messages", client(|c| c.messages)),
                Example(
                    "sizes",
                    List(c.map_or(Vec::new(), |c| {
                        c.sizes.iter().map(|&s| u64::from(s)).collect()
                    })),
                ),
                Example("duration_ms", client(|c| c.duration_ms)),
            ],
        },
    ]
}

/// The first sentence of the schema's description of `path` (`socket.nodelay`), on one line.
fn describe(schema: &serde_json::Value, path: &str) -> String {
    let mut node = schema;
    for key in path.split('.') {
        let Some(next) = resolve(schema, node)
            .get("properties")
            .and_then(|p| p.get(key))
        else {
            return String::new();
        };
        node = next;
    }
    let text = node
        .get("description")
        .and_then(|d| d.as_str())
        .unwrap_or("")
        .replace('\n', " ");
    // The first sentence ("e.g." does not end one), at most about 60 characters.
    let mut end = text.len();
    let mut from = 0;
    while let Some(at) = text[from..].find(". ") {
        let at = from + at;
        if !text[..at].ends_with("e.g") {
            end = at;
            break;
        }
        from = at + 2;
    }
    let sentence = text[..end].trim_end_matches('.');
    if sentence.chars().count() <= 64 {
        return sentence.to_string();
    }
    let mut short = String::new();
    for word in sentence.split(' ') {
        if short.chars().count() + word.chars().count() + 1 > 60 {
            break;
        }
        if !short.is_empty() {
            short.push(' ');
        }
        short.push_str(word);
    }
    format!("{}…", short.trim_end_matches([',', ';', ':']))
}

/// Follows `$ref` and the `anyOf [T, null]` of an optional field to the table's schema.
fn resolve<'s>(root: &'s serde_json::Value, node: &'s serde_json::Value) -> &'s serde_json::Value {
    if let Some(name) = node
        .get("$ref")
        .and_then(|r| r.as_str())
        .and_then(|r| r.rsplit('/').next())
    {
        return resolve(root, &root["definitions"][name]);
    }
    if let Some(options) = node.get("anyOf").and_then(|a| a.as_array()) {
        if let Some(table) = options
            .iter()
            .find(|o| o.get("$ref").is_some() || o.get("properties").is_some())
        {
            return resolve(root, table);
        }
    }
    node
}

/// The starter spec in `format`.
pub fn text(format: Format) -> String {
    let toml = format == Format::Toml;
    let schema = crate::spec::json_schema();
    let defaults = Defaults::new();
    let mut out = String::new();
    out.push_str(if toml {
        "#:schema sockgen.schema.json\n"
    } else {
        "# yaml-language-server: $schema=sockgen.schema.json\n"
    });
    out.push_str(
        "# (editors complete and check keys from it: write it with `sockgen schema > sockgen.schema.json`)\n\
         # A sockgen spec. Every key but `name` is optional. The values set below are the defaults,\n\
         # except `handler: custom` (the default is echo), so the program runs your callbacks; the\n\
         # keys commented out show an example. docs/spec.md documents every key.\n\
         # Check it with `sockgen check THIS_FILE`, render with `sockgen render THIS_FILE -o DIR`,\n\
         # prove it with `sockgen verify THIS_FILE`.\n",
    );
    for section in sections(&defaults) {
        out.push('\n');
        let comment = if section.commented { "# " } else { "" };
        if !section.name.is_empty() {
            if !section.note.is_empty() {
                out.push_str(&format!("# {}\n", section.note));
            }
            if toml {
                out.push_str(&format!("{comment}[{}]\n", section.name));
            } else {
                out.push_str(&format!("{comment}{}:\n", section.name));
            }
        }
        let indent = if section.name.is_empty() || toml {
            ""
        } else {
            "  "
        };
        for line in &section.lines {
            let (key, value, set) = match line {
                Line::Set(key, value) => (*key, value, !section.commented),
                Line::Example(key, value) => (*key, value, false),
            };
            let path = if section.name.is_empty() {
                key.to_string()
            } else {
                format!("{}.{key}", section.name)
            };
            let assignment = if toml {
                format!("{key} = {}", value.write(format))
            } else {
                format!("{key}: {}", value.write(format))
            };
            let body = if set {
                format!("{indent}{assignment}")
            } else if section.commented {
                format!("# {indent}{assignment}")
            } else {
                format!("{indent}# {assignment}")
            };
            let about = describe(&schema, &path);
            if about.is_empty() {
                out.push_str(&format!("{body}\n"));
            } else if body.chars().count() > 36 {
                // A long example gets its comment on the line above.
                let lead = if section.commented { "# " } else { "" };
                out.push_str(&format!("{lead}{indent}# {about}\n{body}\n"));
            } else {
                out.push_str(&format!("{body:<36} # {about}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key the decoder knows is in both starters, set or commented: a new spec key
    /// cannot be left out of `sockgen init`.
    #[test]
    fn the_starter_shows_every_key() {
        for format in [Format::Yaml, Format::Toml] {
            let starter = text(format);
            for path in crate::spec::known_key_paths() {
                let key = path.rsplit('.').next().unwrap_or(&path);
                let written = if format == Format::Toml {
                    format!("{key} = ")
                } else {
                    format!("{key}: ")
                };
                let table = if format == Format::Toml {
                    format!("[{key}]")
                } else {
                    format!("{key}:\n")
                };
                assert!(
                    starter.contains(&written) || starter.contains(&table),
                    "the starter ({format:?}) leaves out `{path}`"
                );
            }
        }
    }
}
