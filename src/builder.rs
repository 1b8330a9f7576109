//! Code generation from a `build.rs`, in the manner of prost-build:
//!
//! ```no_run
//! // in build.rs's main():
//! sockgen::Builder::new()
//!     .spec("specs/echo.yaml")
//!     .model(sockgen::plan::Model::Epoll)
//!     .compile()
//!     .unwrap_or_else(|e| panic!("{e}"));
//! ```
//!
//! and on the consumer side, for a spec named `echo`:
//!
//! ```ignore
//! #[allow(dead_code)]
//! mod echo {
//!     include!(concat!(env!("OUT_DIR"), "/echo.rs"));
//! }
//! ```

use std::path::{Path, PathBuf};

use crate::plan::{Lang, Model};
use crate::{Error, Overrides};

/// The file in the output directory listing what the last `compile()` wrote.
const OUTPUTS_MANIFEST: &str = "sockgen-outputs.txt";

/// Generates a Rust module per spec into OUT_DIR (or another directory).
#[derive(Debug, Clone, Default)]
pub struct Builder {
    specs: Vec<PathBuf>,
    model: Option<Model>,
    out_dir: Option<PathBuf>,
    emit_rerun_if_changed: bool,
}

impl Builder {
    pub fn new() -> Builder {
        Builder {
            emit_rerun_if_changed: true,
            ..Builder::default()
        }
    }

    /// A spec to generate from; call once per spec.
    pub fn spec(mut self, path: impl AsRef<Path>) -> Builder {
        self.specs.push(path.as_ref().to_owned());
        self
    }

    /// The I/O model, overriding each spec's `model`.
    pub fn model(mut self, model: Model) -> Builder {
        self.model = Some(model);
        self
    }

    /// Where to write `NAME.rs` (default: Cargo's OUT_DIR).
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Builder {
        self.out_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for every spec (default true).
    pub fn emit_rerun_if_changed(mut self, emit: bool) -> Builder {
        self.emit_rerun_if_changed = emit;
        self
    }

    /// Generates every spec; returns the files written. A spec with problems gives
    /// [`Error::Invalid`], whose `Display` is the same located report as `sockgen check`.
    pub fn compile(&self) -> Result<Vec<PathBuf>, Error> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    Error::Load(crate::source::LoadError::Io {
                    path: PathBuf::from("$OUT_DIR"),
                    error: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "OUT_DIR is not set: call compile() from a build script, or set out_dir()",
                    ),
                })
                })?,
        };
        let mut written = Vec::new();
        // What an earlier run wrote: files no spec produces any more are removed below, so a
        // renamed spec cannot leave a stale module that still compiles.
        let manifest = out_dir.join(OUTPUTS_MANIFEST);
        let previous: Vec<String> = std::fs::read_to_string(&manifest)
            .map(|text| text.lines().map(str::to_string).collect())
            .unwrap_or_default();
        for spec in &self.specs {
            if self.emit_rerun_if_changed {
                // Before loading, so a spec that fails still triggers a rebuild once fixed.
                println!("cargo:rerun-if-changed={}", spec.display());
            }
            let mut plan = crate::plan_file(
                spec,
                Overrides {
                    lang: Some(Lang::Rust),
                    model: self.model,
                },
            )?;
            plan.origin = crate::plan::Origin::BuildScript;
            if let Some(warnings) = &plan.warnings {
                for line in cargo_warnings(warnings) {
                    println!("{line}");
                }
            }
            let source = crate::backend::rust::module_source(&plan)
                .map_err(|e| Error::Render(crate::render::RenderError::Template(e)))?;
            let path = out_dir.join(format!("{}.rs", plan.name));
            // Unchanged output keeps its timestamp, so dependants are not rebuilt for nothing.
            if std::fs::read_to_string(&path).ok().as_deref() != Some(source.as_str()) {
                std::fs::write(&path, source).map_err(|error| {
                    Error::Render(crate::render::RenderError::Io {
                        path: path.clone(),
                        error,
                    })
                })?;
            }
            written.push(path);
        }
        let names: Vec<String> = written
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        for old in previous.iter().filter(|old| !names.contains(old)) {
            // Only plain NAME.rs entries: a damaged manifest cannot delete anything else.
            let plain = old.ends_with(".rs") && !old.contains(['/', '\\']) && !old.starts_with('.');
            if plain {
                let _ = std::fs::remove_file(out_dir.join(old));
            }
        }
        std::fs::write(&manifest, names.join("\n")).map_err(|error| {
            Error::Render(crate::render::RenderError::Io {
                path: manifest.clone(),
                error,
            })
        })?;
        Ok(written)
    }
}

/// Validation warnings as `cargo:warning=` lines, which Cargo shows to whoever builds: one per
/// line of the rendered text (a directive ends at its newline), blank lines left out.
fn cargo_warnings(warnings: &crate::Diagnostics) -> Vec<String> {
    warnings
        .render()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| format!("cargo:warning={line}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn spec_warnings_reach_cargo_one_directive_per_line() {
        let source = crate::SourceFile {
            name: "kv.yaml".into(),
            text: "name: kv\nprotocol: udp\nsocket: { reuseaddr: true }\n".into(),
            format: crate::source::Format::Yaml,
        };
        let plan = crate::plan_source(&source, crate::Overrides::default()).unwrap();
        let lines = super::cargo_warnings(plan.warnings.as_deref().expect("a warning"));
        assert!(lines
            .iter()
            .all(|l| l.starts_with("cargo:warning=") && !l.contains('\n')));
        assert!(
            lines[0].contains("warning: SO_REUSEADDR on a UDP socket"),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("kv.yaml:3:22")),
            "{lines:?}"
        );
    }
}
