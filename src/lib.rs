//! sockgen turns a declarative socket spec into socket servers that are compiled, run and
//! verified on loopback.
//!
//! The pipeline runs one way, and each stage is a module:
//! [`source`] (load YAML/TOML with spans) → [`spec`] (decode) → [`validate`] → [`plan`] →
//! [`render`] (askama templates, one [`backend`] per language) → [`proof`] (compile, run, verify).

pub mod backend;
pub mod builder;
#[cfg(feature = "cli")]
pub mod cli;
pub mod diagnostic;
pub mod plan;
#[cfg(feature = "proof")]
pub mod proof;
pub mod render;
pub mod source;
pub mod spec;
pub mod starter;
pub mod troubleshoot;
pub mod validate;

use std::path::Path;

pub use builder::Builder;
pub use diagnostic::{Diagnostic, Diagnostics};
pub use plan::Plan;
pub use render::{GeneratedFile, Layout};
pub use source::SourceFile;
pub use validate::Overrides;

/// Why a spec could not become a Plan or files.
#[derive(Debug)]
pub enum Error {
    /// The file could not be read or its format is unknown.
    Load(source::LoadError),
    /// The spec has problems; `Display` shows them all, located.
    Invalid(Box<Diagnostics>),
    Render(render::RenderError),
    /// A directory given for a project is not one sockgen can build (`verify DIR`).
    Project(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Load(e) => write!(f, "error: {e}"),
            Error::Invalid(d) => write!(f, "{d}"),
            Error::Render(e) => write!(f, "error: {e}"),
            Error::Project(e) => write!(f, "error: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// load → decode → validate for a spec already in memory.
pub fn plan_source(source: &SourceFile, overrides: Overrides) -> Result<Plan, Error> {
    let invalid = |items| {
        Error::Invalid(Box::new(Diagnostics {
            source: source.clone(),
            items,
        }))
    };
    let tree = source.parse().map_err(|d| invalid(vec![d]))?;
    let mut decoder = spec::Decoder {
        toml: source.format == source::Format::Toml,
        ..spec::Decoder::default()
    };
    let spec = spec::decode(&tree, &mut decoder);
    // Validation runs even when decoding found problems, so the user sees everything at once;
    // its own errors about keys that failed to decode are not duplicated because those keys
    // are simply absent from the Spec.
    let validated = validate::validate(&spec, &source.name, overrides);
    let mut problems = decoder.diagnostics;
    let plan = match validated {
        Ok((mut plan, warnings)) => {
            if !warnings.is_empty() {
                plan.warnings = Some(Box::new(Diagnostics {
                    source: source.clone(),
                    items: warnings,
                }));
            }
            Some(plan)
        }
        Err(more) => {
            problems.extend(more);
            None
        }
    };
    match plan {
        Some(plan) if problems.is_empty() => Ok(plan),
        _ => {
            // In source order, as a reader goes through the file; flag-only problems last.
            problems.sort_by_key(|d| d.span.as_ref().map_or(usize::MAX, |s| s.start));
            Err(invalid(problems))
        }
    }
}

/// Reads a spec file and turns it into a Plan, with `overrides` (command-line flags) on top.
pub fn plan_file(path: &Path, overrides: Overrides) -> Result<Plan, Error> {
    let source = match SourceFile::read(path) {
        Ok(source) => source,
        // Bytes that are not text are a problem of the spec (exit 2), shown where they start.
        Err(source::LoadError::NotUtf8 { source, offset }) => {
            let d = Diagnostic::error("the spec is not UTF-8 text")
                .with_span(offset..offset)
                .with_label("this byte does not start a UTF-8 character")
                .with_hint("save the file as UTF-8");
            return Err(Error::Invalid(Box::new(Diagnostics {
                source,
                items: vec![d],
            })));
        }
        Err(e) => return Err(Error::Load(e)),
    };
    plan_source(&source, overrides)
}

/// The whole pipeline for one spec file: the files sockgen would write.
pub fn generate(
    path: &Path,
    overrides: Overrides,
    layout: Layout,
) -> Result<Vec<GeneratedFile>, Error> {
    let plan = plan_file(path, overrides)?;
    render::render(&plan, layout).map_err(Error::Render)
}

/// The files `sockgen render SPEC -o DIR` writes into `out_dir`. Their text names the spec
/// relative to `out_dir`, so it is the same wherever sockgen runs from.
pub fn generate_project(
    path: &Path,
    overrides: Overrides,
    out_dir: &Path,
) -> Result<(Plan, Vec<GeneratedFile>), Error> {
    let plan = plan_file(path, overrides)?.for_project(path, out_dir);
    let files = render::render(&plan, Layout::Project).map_err(Error::Render)?;
    Ok((plan, files))
}

/// Where a top-level key's value is written in a spec, for diagnostics raised after validation.
pub fn top_level_value_span(source: &SourceFile, key: &str) -> Option<source::Span> {
    match source.parse().ok()?.value {
        source::Value::Map(entries) => entries
            .into_iter()
            .find(|e| e.key == key)
            .map(|e| e.value.span),
        _ => None,
    }
}
