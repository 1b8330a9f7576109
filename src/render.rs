//! Stage 4, **render**: a Plan becomes files, and `-o DIR --check` compares them with disk.

use std::path::{Path, PathBuf};

use crate::backend;
use crate::plan::{Lang, Plan};

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Relative to the output directory.
    pub path: String,
    pub contents: String,
    /// The user edits it (custom handler callbacks): written only when absent, never checked.
    pub user_owned: bool,
}

impl GeneratedFile {
    pub fn generated(path: impl Into<String>, contents: String) -> Self {
        GeneratedFile {
            path: path.into(),
            contents,
            user_owned: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One self-contained source file (what `render` prints without `-o`).
    SingleFile,
    /// A buildable project: sources, the handler callbacks file, a build file.
    Project,
}

#[derive(Debug)]
pub enum RenderError {
    Template(askama::Error),
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::Template(e) => {
                write!(f, "template error (a sockgen bug, please report it): {e}")
            }
            RenderError::Io { path, error } => {
                write!(f, "cannot write {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for RenderError {}

pub fn render(plan: &Plan, layout: Layout) -> Result<Vec<GeneratedFile>, RenderError> {
    match plan.lang {
        // Winsock C shares the C templates' handler contract and connection core.
        Lang::C | Lang::Winsock => backend::c::render(plan, layout).map_err(RenderError::Template),
        Lang::Rust => backend::rust::render(plan, layout).map_err(RenderError::Template),
    }
}

/// How a file on disk compares with what sockgen would write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    UpToDate,
    Missing,
    Differs,
    /// A user-owned file that exists: left alone.
    Kept,
}

pub fn compare(dir: &Path, files: &[GeneratedFile]) -> Vec<(String, FileState)> {
    files
        .iter()
        .map(|f| {
            let state = match std::fs::read_to_string(dir.join(&f.path)) {
                Err(_) => FileState::Missing,
                Ok(_) if f.user_owned => FileState::Kept,
                Ok(existing) if existing == f.contents => FileState::UpToDate,
                Ok(_) => FileState::Differs,
            };
            (f.path.clone(), state)
        })
        .collect()
}

/// Writes the files, leaving existing user-owned ones alone. Returns the paths written.
pub fn write(dir: &Path, files: &[GeneratedFile]) -> Result<Vec<String>, RenderError> {
    std::fs::create_dir_all(dir).map_err(|error| RenderError::Io {
        path: dir.to_owned(),
        error,
    })?;
    let mut written = Vec::new();
    for f in files {
        let path = dir.join(&f.path);
        if f.user_owned && path.exists() {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| RenderError::Io {
                path: parent.to_owned(),
                error,
            })?;
        }
        if std::fs::read_to_string(&path).is_ok_and(|existing| existing == f.contents) {
            continue;
        }
        std::fs::write(&path, &f.contents).map_err(|error| RenderError::Io { path, error })?;
        written.push(f.path.clone());
    }
    Ok(written)
}
