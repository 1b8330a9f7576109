//! Finding and running the toolchains that build generated code.

use std::path::{Path, PathBuf};
use std::process::Command;

/// AddressSanitizer and UndefinedBehaviorSanitizer, stopping at the first report.
pub const ASAN_UBSAN_FLAGS: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
    "-g",
];
/// ThreadSanitizer, for outputs that run several threads.
pub const TSAN_FLAGS: &[&str] = &["-fsanitize=thread", "-g"];

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
        self.compile_all(&[source], output)
    }

    /// Compiles and links C files into one program with [`STRICT_C_FLAGS`].
    pub fn compile_all(&self, sources: &[&Path], output: &Path) -> Result<(), String> {
        self.compile_with(sources, output, &[], &[])
    }

    /// [`compile_all`](Self::compile_all) with more flags after the strict ones (sanitizers,
    /// the static analyzer), and libraries to link, which go after the sources.
    pub fn compile_with(
        &self,
        sources: &[&Path],
        output: &Path,
        extra: &[&str],
        libraries: &[&str],
    ) -> Result<(), String> {
        let source = sources.first().ok_or("nothing to compile")?;
        let result = Command::new(&self.program)
            .args(STRICT_C_FLAGS)
            .args(extra)
            .args(sources)
            .arg("-o")
            .arg(output)
            .args(libraries)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        if result.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {} {} {} failed:\n{}",
                self.program.display(),
                STRICT_C_FLAGS.join(" "),
                extra.join(" "),
                source.display(),
                String::from_utf8_lossy(&result.stderr)
            ))
        }
    }
}

/// Cargo, for generated Rust crates. Crates of one model share a target directory, so libc is
/// compiled once per model rather than once per crate.
#[derive(Debug, Clone)]
pub struct RustToolchain {
    pub cargo: PathBuf,
    pub target_root: PathBuf,
}

impl RustToolchain {
    /// `$CARGO` or `cargo` from PATH; target directories under `$SOCKGEN_RUST_TARGET_DIR`, else
    /// under `sockgen-rust` in the Cargo target directory this program runs from (a checkout's
    /// `cargo run` and `cargo test`), else in the system temp directory (an installed sockgen).
    pub fn find() -> Result<RustToolchain, String> {
        let cargo = std::env::var_os("CARGO")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("cargo"));
        if !Command::new(&cargo)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Err(
                "cargo not found: install Rust (rustup) to build --lang rust output".to_string(),
            );
        }
        let target_root = std::env::var_os("SOCKGEN_RUST_TARGET_DIR")
            .map(PathBuf::from)
            .or_else(|| cargo_target_dir().map(|dir| dir.join("sockgen-rust")))
            .unwrap_or_else(|| std::env::temp_dir().join("sockgen-rust-target"));
        Ok(RustToolchain { cargo, target_root })
    }

    fn target_dir(&self, group: &str) -> PathBuf {
        self.target_root.join(group)
    }

    /// `cargo build --release`; returns the binary. The error carries cargo's output.
    pub fn build(&self, crate_dir: &Path, binary: &str, group: &str) -> Result<PathBuf, String> {
        self.run(crate_dir, group, &["build", "--release", "--quiet"])?;
        Ok(self.target_dir(group).join("release").join(binary))
    }

    /// `cargo check`: the crate builds (quicker than a release build).
    pub fn check(&self, crate_dir: &Path, group: &str) -> Result<(), String> {
        self.run(crate_dir, group, &["check", "--quiet"])
    }

    /// `cargo clippy -- -D warnings`: generated crates must be warning-free.
    pub fn clippy(&self, crate_dir: &Path, group: &str) -> Result<(), String> {
        self.run(
            crate_dir,
            group,
            &["clippy", "--release", "--quiet", "--", "-D", "warnings"],
        )
    }

    fn run(&self, crate_dir: &Path, group: &str, args: &[&str]) -> Result<(), String> {
        // The subcommand first, then the manifest, then its flags (clippy's end with `-- …`).
        let (subcommand, flags) = args.split_first().unwrap_or((&"build", &[]));
        let out = Command::new(&self.cargo)
            .arg(subcommand)
            .arg("--manifest-path")
            .arg(crate_dir.join("Cargo.toml"))
            .args(flags)
            .env("CARGO_TARGET_DIR", self.target_dir(group))
            .env("CARGO_BUILD_JOBS", "2")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.cargo.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "cargo {} in {} failed:\n{}",
                args.join(" "),
                crate_dir.display(),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

/// The Cargo target directory the running program was built into, if it runs from one: the
/// nearest ancestor holding Cargo's `CACHEDIR.TAG`.
fn cargo_target_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
}
