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
    /// A file an earlier sockgen named otherwise sits beside its new name: which one holds the
    /// user's code is not sockgen's to guess.
    BothNames {
        former: PathBuf,
        current: PathBuf,
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
            RenderError::BothNames { former, current } => write!(
                f,
                "both {} and {} exist, and the program now includes only {}: move what you \
                 need from the first into the second, delete the first, and render again \
                 (nothing was written)",
                former.display(),
                current.display(),
                current.display()
            ),
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

/// Files an earlier sockgen wrote into a project that this one does not (the Rust module that
/// became `src/NAME/mod.rs` and `runtime.rs`), and that would now break the build.
pub fn retired_paths(plan: &Plan) -> Vec<String> {
    match plan.lang {
        Lang::Rust => backend::rust::retired_paths(plan),
        Lang::C | Lang::Winsock => Vec::new(),
    }
}

/// A file an earlier sockgen wrote under another name: a C project's handler callbacks were
/// `NAME_handler.h` until they became `NAME_handler.c`, since the file holds definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renamed {
    pub former: String,
    pub current: String,
}

pub fn renamed_paths(plan: &Plan) -> Vec<Renamed> {
    match plan.lang {
        Lang::C | Lang::Winsock => vec![Renamed {
            former: backend::c::former_handler_file(&plan.name),
            current: backend::c::handler_file(&plan.name),
        }],
        Lang::Rust => Vec::new(),
    }
}

/// The renamed files found under their former name in `dir`, and whether the current name is
/// taken too (then a re-render refuses to guess; see [`RenderError::BothNames`]).
pub fn renamed_on_disk(dir: &Path, plan: &Plan) -> Vec<(Renamed, bool)> {
    renamed_paths(plan)
        .into_iter()
        .filter(|r| dir.join(&r.former).is_file())
        .map(|r| {
            let both = dir.join(&r.current).exists();
            (r, both)
        })
        .collect()
}

/// Moves each file found under its former name to its current one, its text unchanged, so
/// the user's callbacks stay in the file the program includes. Refuses, renaming nothing,
/// when a current name is taken too.
pub fn rename_former(dir: &Path, plan: &Plan) -> Result<Vec<Renamed>, RenderError> {
    let found = renamed_on_disk(dir, plan);
    if let Some((r, _)) = found.iter().find(|(_, both)| *both) {
        return Err(RenderError::BothNames {
            former: dir.join(&r.former),
            current: dir.join(&r.current),
        });
    }
    let mut renamed = Vec::new();
    for (r, _) in found {
        let to = dir.join(&r.current);
        std::fs::rename(dir.join(&r.former), &to)
            .map_err(|error| RenderError::Io { path: to, error })?;
        renamed.push(r);
    }
    Ok(renamed)
}

/// Whether `text` is a file sockgen generated (its first line says so), not one a user wrote.
fn generated_by_sockgen(text: &str) -> bool {
    text.lines()
        .next()
        .is_some_and(|first| first.contains(": generated by sockgen "))
}

/// Who wrote a retired file found on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    /// sockgen: a re-render removes it.
    Generated,
    /// Someone else: left alone, and reported, since the build may refuse it.
    Foreign,
}

/// The retired files present in `dir`, and who wrote each.
pub fn retired_on_disk(dir: &Path, plan: &Plan) -> Vec<(String, Retired)> {
    retired_paths(plan)
        .into_iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(dir.join(&path)).ok()?;
            let who = if generated_by_sockgen(&text) {
                Retired::Generated
            } else {
                Retired::Foreign
            };
            Some((path, who))
        })
        .collect()
}

/// Removes the retired files sockgen generated; one it did not write is left alone. Returns
/// every retired file found, removed or not.
pub fn retire(dir: &Path, plan: &Plan) -> Result<Vec<(String, Retired)>, RenderError> {
    let found = retired_on_disk(dir, plan);
    for (path, who) in &found {
        if *who == Retired::Generated {
            let path = dir.join(path);
            std::fs::remove_file(&path).map_err(|error| RenderError::Io { path, error })?;
        }
    }
    Ok(found)
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
