//! Finding and running the toolchains that build generated code.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Flags every generated C file must pass: no warning is acceptable.
pub const STRICT_C_FLAGS: &[&str] = &[
    "-std=c11",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Wpedantic",
    "-Werror",
    "-pthread",
];

#[derive(Debug, Clone)]
pub struct CCompiler {
    pub program: PathBuf,
}

impl CCompiler {
    /// `$CC` if set, else `cc` or `gcc` from PATH.
    pub fn find() -> Result<CCompiler, String> {
        let candidates: Vec<PathBuf> = match std::env::var_os("CC") {
            Some(cc) if !cc.is_empty() => vec![PathBuf::from(cc)],
            _ => vec![PathBuf::from("cc"), PathBuf::from("gcc")],
        };
        for program in candidates {
            if Command::new(&program)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Ok(CCompiler { program });
            }
        }
        Err("no C compiler found: install one (Debian: apt-get install gcc) or set CC".to_string())
    }

    /// Compiles one C file with [`STRICT_C_FLAGS`]; the error carries the compiler's output.
    pub fn compile(&self, source: &Path, output: &Path) -> Result<(), String> {
        let result = Command::new(&self.program)
            .args(STRICT_C_FLAGS)
            .arg(source)
            .arg("-o")
            .arg(output)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        if result.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {} {} failed:\n{}",
                self.program.display(),
                STRICT_C_FLAGS.join(" "),
                source.display(),
                String::from_utf8_lossy(&result.stderr)
            ))
        }
    }
}
