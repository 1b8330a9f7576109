//! Stage 1, **load**: YAML or TOML text into one format-neutral tree of [`Node`]s that keeps
//! the byte span of every key and value, so later stages can point at the exact place.
//!
//! Both formats land in the same tree on purpose: the decoder and validator never know which
//! format a spec was written in, which is what makes a YAML spec and its TOML twin mean the same.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::diagnostic::Diagnostic;

/// A byte range in the spec's source text.
pub type Span = Range<usize>;

/// The text of a spec and where it came from; diagnostics are rendered against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as the user gave it; shown in diagnostics and in the generated header.
    pub name: String,
    pub text: String,
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Toml,
}

impl Format {
    /// The format is chosen by extension, as users expect from config files.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

/// One value in the spec tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

impl Value {
    /// The word used in "expected X, found Y" messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a table",
        }
    }
}

/// Errors that stop loading before any tree exists: the file can't be read, or isn't valid
/// YAML/TOML. Problems inside a well-formed document are [`Diagnostic`]s of later stages.
#[derive(Debug)]
pub enum LoadError {
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    UnknownFormat {
        path: PathBuf,
    },
    IsDirectory {
        path: PathBuf,
    },
    /// The file is not UTF-8: an invalid spec, with the text as far as it could be read.
    NotUtf8 {
        source: SourceFile,
        offset: usize,
    },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            LoadError::NotUtf8 { source, offset } => {
                write!(f, "{} is not UTF-8 text (byte {offset})", source.name)
            }
            LoadError::IsDirectory { path } => write!(
                f,
                "{} is a directory: pass a spec file (*.yaml, *.yml or *.toml); `sockgen init FILE` writes one",
                path.display()
            ),
            LoadError::UnknownFormat { path } => write!(
                f,
                "cannot tell the format of {}: name it *.yaml, *.yml or *.toml",
                path.display()
            ),
        }
    }
}

impl std::error::Error for LoadError {}

impl SourceFile {
    pub fn read(path: &Path) -> Result<SourceFile, LoadError> {
        if path.is_dir() {
            return Err(LoadError::IsDirectory {
                path: path.to_owned(),
            });
        }
        let format = Format::from_path(path).ok_or_else(|| LoadError::UnknownFormat {
            path: path.to_owned(),
        })?;
        let bytes = std::fs::read(path).map_err(|error| LoadError::Io {
            path: path.to_owned(),
            error,
        })?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                return Err(LoadError::NotUtf8 {
                    source: SourceFile {
                        name: path.display().to_string(),
                        text: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                        format,
                    },
                    offset,
                });
            }
        };
        Ok(SourceFile {
            name: path.display().to_string(),
            text,
            format,
        })
    }

    pub fn from_text(name: impl Into<String>, text: impl Into<String>, format: Format) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
            format,
        }
    }

    /// Parses the text into a tree. A syntax error becomes a located diagnostic.
    pub fn parse(&self) -> Result<Node, Diagnostic> {
        match self.format {
            Format::Yaml => parse_yaml(&self.text),
            Format::Toml => parse_toml(&self.text),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// YAML through serde-saphyr: its `Spanned` wrapper hands us the location of every node.

fn parse_yaml(text: &str) -> Result<Node, Diagnostic> {
    if text.trim().is_empty()
        || text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(Diagnostic::error("the spec is empty")
            .with_span(0..0)
            .with_hint(
                "`sockgen init FILE` writes a commented starter spec (in a checkout, specs/ holds examples)",
            ));
    }
    // serde-saphyr's default budget already bounds depth, aliases and size (billion laughs).
    match serde_saphyr::from_str::<YamlNode>(text) {
        Ok(node) => Ok(node.0),
        Err(error) => {
            let span = error.location().and_then(|loc| {
                loc.span()
                    .byte_offset()
                    .map(|o| o as usize)
                    .or_else(|| offset_of(text, loc.line() as usize, loc.column() as usize))
            });
            // The message repeats the location we already show under the caret.
            let message = first_line(&error.to_string());
            let message = strip_location_prefix(&message);
            let duplicate = message
                .strip_prefix("duplicate mapping key: ")
                .map(|rest| rest.split(',').next().unwrap_or(rest).trim().to_string());
            let mut d = if message.contains("multiple YAML documents") {
                Diagnostic::error("invalid YAML: a spec is one document, this file has several")
                    .with_hint("remove the `---` separator and keep one spec per file")
            } else if let Some(key) = duplicate {
                duplicate_key(
                    text,
                    &key,
                    span.and_then(|at| first_key_occurrence(text, &key, at)),
                )
            } else {
                Diagnostic::error(format!("invalid YAML: {message}"))
            };
            if let Some(start) = span {
                d = d.with_span(start..start);
            }
            Err(d)
        }
    }
}

/// Where `key` is first written as a mapping key before byte `before`: at a line start (after
/// indentation) or after `{` or `,`, followed by optional spaces and `:`.
fn first_key_occurrence(text: &str, key: &str, before: usize) -> Option<usize> {
    text[..before.min(text.len())]
        .match_indices(key)
        .map(|(i, _)| i)
        .find(|&i| {
            let prefix_ok = text[..i]
                .chars()
                .rev()
                .find(|c| *c != ' ' && *c != '\t')
                .is_none_or(|c| matches!(c, '\n' | '{' | ','));
            prefix_ok
                && text[i + key.len()..]
                    .trim_start_matches([' ', '\t'])
                    .starts_with(':')
        })
}

/// "key `name` appears twice (first at 1:1)", pointing at the second one.
fn duplicate_key(text: &str, key: &str, first: Option<usize>) -> Diagnostic {
    let first = first
        .map(|i| {
            let line = text[..i].matches('\n').count() + 1;
            let column = text[..i].rfind('\n').map_or(i, |nl| i - nl - 1) + 1;
            format!(" (first at {line}:{column})")
        })
        .unwrap_or_default();
    Diagnostic::error(format!("key `{key}` appears twice{first}"))
        .with_label("again here")
        .with_hint("keep one of them")
}

/// Where a TOML key `key` (followed by `=`) is first written before byte `before`.
fn first_toml_key(text: &str, key: &str, before: usize) -> Option<usize> {
    text[..before.min(text.len())]
        .match_indices(key)
        .map(|(i, _)| i)
        .find(|&i| {
            let line_start = text[..i].rfind('\n').map_or(0, |nl| nl + 1);
            text[line_start..i].trim().is_empty()
                && text[i + key.len()..]
                    .trim_start_matches([' ', '\t'])
                    .starts_with('=')
        })
}

/// Byte offset of a 1-based line and character column.
fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let line_start = if line <= 1 {
        0
    } else {
        text.match_indices('\n').nth(line - 2)?.0 + 1
    };
    let rest = &text[line_start..];
    let in_line = rest
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(rest.len(), |(i, _)| i);
    Some(line_start + in_line)
}

fn strip_location_prefix(message: &str) -> &str {
    let m = message.strip_prefix("error: ").unwrap_or(message);
    match m.strip_prefix("line ") {
        Some(rest) => rest.split_once(": ").map_or(m, |(_, tail)| tail),
        None => m,
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

struct YamlNode(Node);

fn saphyr_span(spanned_at: &serde_saphyr::Location) -> Span {
    let span = spanned_at.span();
    let start = span.byte_offset().unwrap_or(0) as usize;
    let len = span.byte_len().unwrap_or(0) as usize;
    start..start + len
}

impl<'de> Deserialize<'de> for YamlNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<YamlValue>::deserialize(d)?;
        Ok(YamlNode(Node {
            span: saphyr_span(&spanned.referenced),
            value: spanned.value.0,
        }))
    }
}

struct YamlValue(Value);

impl<'de> Deserialize<'de> for YamlValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(YamlValueVisitor)
    }
}

struct YamlValueVisitor;

impl<'de> Visitor<'de> for YamlValueVisitor {
    type Value = YamlValue;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<YamlValue, E> {
        Ok(YamlValue(Value::Null))
    }
    fn visit_none<E>(self) -> Result<YamlValue, E> {
        Ok(YamlValue(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<YamlValue, D::Error> {
        YamlValue::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<YamlValue, E> {
        Ok(YamlValue(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<YamlValue, E> {
        Ok(YamlValue(Value::Int(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<YamlValue, E> {
        Ok(YamlValue(Value::Int(v.into())))
    }
    fn visit_i128<E>(self, v: i128) -> Result<YamlValue, E> {
        Ok(YamlValue(Value::Int(v)))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<YamlValue, E> {
        i128::try_from(v)
            .map(|v| YamlValue(Value::Int(v)))
            .map_err(|_| E::custom("integer is far too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<YamlValue, E> {
        Ok(YamlValue(Value::Float(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<YamlValue, E> {
        Ok(YamlValue(Value::Str(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<YamlValue, E> {
        Ok(YamlValue(Value::Str(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YamlValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<YamlNode>()? {
            items.push(item.0);
        }
        Ok(YamlValue(Value::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YamlValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<serde_saphyr::Spanned<String>>()? {
            let value = map.next_value::<YamlNode>()?;
            entries.push(Entry {
                key_span: saphyr_span(&key.referenced),
                key: key.value,
                value: value.0,
            });
        }
        Ok(YamlValue(Value::Map(entries)))
    }
}

// ---------------------------------------------------------------------------------------------
// TOML through the toml crate's span-preserving document parser.

fn parse_toml(text: &str) -> Result<Node, Diagnostic> {
    match toml::de::DeTable::parse(text) {
        Ok(table) => {
            let span = table.span();
            Ok(Node {
                value: toml_table(table.into_inner()),
                span,
            })
        }
        Err(error) => {
            let message = first_line(error.message());
            let key = error
                .span()
                .filter(|_| message.starts_with("duplicate key"))
                .and_then(|span| text.get(span))
                .map(|key| key.trim().trim_matches('"').to_string());
            let mut d = match key {
                Some(key) => {
                    let at = error.span().map_or(0, |s| s.start);
                    let first = first_key_occurrence(text, &key, at)
                        .or_else(|| first_toml_key(text, &key, at));
                    duplicate_key(text, &key, first)
                }
                None => Diagnostic::error(format!("invalid TOML: {message}")),
            };
            if let Some(span) = error.span() {
                d = d.with_span(span);
            }
            Err(d)
        }
    }
}

fn toml_table(table: toml::de::DeTable<'_>) -> Value {
    Value::Map(
        table
            .into_iter()
            .map(|(key, value)| {
                let key_span = key.span();
                Entry {
                    key: key.into_inner().into_owned(),
                    key_span,
                    value: toml_node(value),
                }
            })
            .collect(),
    )
}

fn toml_node(value: toml::Spanned<toml::de::DeValue<'_>>) -> Node {
    use toml::de::DeValue;
    let span = value.span();
    let value = match value.into_inner() {
        DeValue::String(s) => Value::Str(s.into_owned()),
        DeValue::Integer(i) => match parse_toml_integer(i.as_str(), i.radix()) {
            Some(v) => Value::Int(v),
            None => Value::Str(i.as_str().to_owned()),
        },
        DeValue::Float(f) => match f.as_str().replace('_', "").parse::<f64>() {
            Ok(v) => Value::Float(v),
            Err(_) => Value::Str(f.as_str().to_owned()),
        },
        DeValue::Boolean(b) => Value::Bool(b),
        DeValue::Datetime(d) => Value::Str(d.to_string()),
        DeValue::Array(items) => Value::Seq(items.into_iter().map(toml_node).collect()),
        DeValue::Table(t) => toml_table(t),
    };
    Node { value, span }
}

/// The parser hands integers over as their source text; TOML allows `_` separators, a sign
/// and `0x`/`0o`/`0b` prefixes.
fn parse_toml_integer(text: &str, radix: u32) -> Option<i128> {
    let cleaned: String = text.chars().filter(|&c| c != '_').collect();
    let (negative, digits) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cleaned.strip_prefix('+').unwrap_or(&cleaned)),
    };
    let digits = match radix {
        16 => digits.strip_prefix("0x")?,
        8 => digits.strip_prefix("0o")?,
        2 => digits.strip_prefix("0b")?,
        _ => digits,
    };
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Node {
        SourceFile::from_text("t.yaml", text, Format::Yaml)
            .parse()
            .unwrap()
    }
    fn toml(text: &str) -> Node {
        SourceFile::from_text("t.toml", text, Format::Toml)
            .parse()
            .unwrap()
    }

    fn entries(node: &Node) -> &[Entry] {
        match &node.value {
            Value::Map(e) => e,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn yaml_spans_point_at_keys_and_values() {
        let text = "name: echo\nsocket:\n  nodelay: true\n  recv_buffer: 4096\n";
        let root = yaml(text);
        let socket = &entries(&root)[1];
        assert_eq!(&text[socket.key_span.clone()], "socket");
        let inner = entries(&socket.value);
        assert_eq!(&text[inner[1].key_span.clone()], "recv_buffer");
        assert_eq!(inner[1].value.value, Value::Int(4096));
        assert!(text[inner[1].value.span.start..].starts_with("4096"));
    }

    #[test]
    fn toml_spans_point_at_keys_and_values() {
        let text = "name = \"echo\"\n[socket]\nrecv_buffer = 4_096\n";
        let root = toml(text);
        let socket = &entries(&root)[1];
        let inner = entries(&socket.value);
        assert_eq!(&text[inner[0].key_span.clone()], "recv_buffer");
        assert_eq!(&text[inner[0].value.span.clone()], "4_096");
        assert_eq!(inner[0].value.value, Value::Int(4096));
    }

    #[test]
    fn toml_integers_in_every_radix() {
        assert_eq!(parse_toml_integer("0x1F", 16), Some(31));
        assert_eq!(parse_toml_integer("-12", 10), Some(-12));
        assert_eq!(parse_toml_integer("0b101", 2), Some(5));
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = SourceFile::from_text("t.toml", "name = \n", Format::Toml)
            .parse()
            .unwrap_err();
        assert!(err.span.is_some(), "{err:?}");
        let err = SourceFile::from_text("t.yaml", "a: [1, 2\n", Format::Yaml)
            .parse()
            .unwrap_err();
        assert!(err.message.starts_with("invalid YAML"), "{err:?}");
    }
}
