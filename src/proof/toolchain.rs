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

/// [`STRICT_C_FLAGS`] for Windows programs: no -pthread (they use Windows threads).
pub const STRICT_WINDOWS_C_FLAGS: &[&str] = &[
    "-std=c11",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Wpedantic",
    "-Werror",
];

/// The MinGW-w64 cross compiler the Debian package `gcc-mingw-w64-x86-64` installs.
pub const MINGW_CC: &str = "x86_64-w64-mingw32-gcc";

#[derive(Debug, Clone)]
pub struct CCompiler {
    pub program: PathBuf,
    /// The flags every compile starts with: [`STRICT_C_FLAGS`] or [`STRICT_WINDOWS_C_FLAGS`].
    pub flags: &'static [&'static str],
}

impl CCompiler {
    /// The compiler for a language's output: the host's for C, MinGW-w64 for Winsock C.
    pub fn for_lang(lang: crate::spec::Lang) -> Result<CCompiler, String> {
        match lang {
            crate::spec::Lang::Winsock => CCompiler::mingw(),
            _ => CCompiler::find(),
        }
    }

    /// `$SOCKGEN_MINGW_CC` if set, else [`MINGW_CC`] from PATH.
    pub fn mingw() -> Result<CCompiler, String> {
        let program = std::env::var_os("SOCKGEN_MINGW_CC")
            .filter(|cc| !cc.is_empty())
            .map_or_else(|| PathBuf::from(MINGW_CC), PathBuf::from);
        if Command::new(&program)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            Ok(CCompiler {
                program,
                flags: STRICT_WINDOWS_C_FLAGS,
            })
        } else {
            Err(format!(
                "{} not found: Winsock output is cross-compiled with MinGW-w64 (Debian: apt-get install gcc-mingw-w64-x86-64) or set SOCKGEN_MINGW_CC",
                program.display()
            ))
        }
    }

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
                return Ok(CCompiler {
                    program,
                    flags: STRICT_C_FLAGS,
                });
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
            .args(self.flags)
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
                self.flags.join(" "),
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

    /// `cargo clippy -- -D warnings`: generated crates must be warning-free, and every
    /// `unsafe` block in them must say why it is sound (`// SAFETY:` above it).
    pub fn clippy(&self, crate_dir: &Path, group: &str) -> Result<(), String> {
        self.run(
            crate_dir,
            group,
            &[
                "clippy",
                "--release",
                "--quiet",
                "--",
                "-D",
                "warnings",
                "-D",
                "clippy::undocumented_unsafe_blocks",
            ],
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

/// Wine, to run Winsock programs on Linux. Every program of one run shares a prefix (Wine's
/// idea of a Windows installation), which is made once: `wineboot` takes seconds the first
/// time and milliseconds after.
#[derive(Debug, Clone)]
pub struct Wine {
    pub program: PathBuf,
    pub prefix: PathBuf,
}

impl Wine {
    /// `$SOCKGEN_WINE` or `wine` from PATH; the prefix is `$SOCKGEN_WINEPREFIX`, else
    /// `sockgen-wine` in the Cargo target directory this program runs from, else in the system
    /// temp directory. The prefix is ready to use (see [`prepare`](Self::prepare)). Found once
    /// per process: every Windows program the harness starts asks, and `wine --version` and
    /// the prefix check cost tens of milliseconds each time.
    pub fn find() -> Result<Wine, String> {
        static FOUND: std::sync::OnceLock<Wine> = std::sync::OnceLock::new();
        if let Some(wine) = FOUND.get() {
            return Ok(wine.clone());
        }
        let wine = Self::locate()?;
        Ok(FOUND.get_or_init(|| wine).clone())
    }

    fn locate() -> Result<Wine, String> {
        let program = std::env::var_os("SOCKGEN_WINE")
            .filter(|w| !w.is_empty())
            .map_or_else(|| PathBuf::from("wine"), PathBuf::from);
        if !Command::new(&program)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Err(format!(
                "{} not found: Winsock programs run under Wine on Linux (Debian: apt-get install wine64) or set SOCKGEN_WINE",
                program.display()
            ));
        }
        let prefix = std::env::var_os("SOCKGEN_WINEPREFIX")
            .map(PathBuf::from)
            .or_else(|| cargo_target_dir().map(|dir| dir.join("sockgen-wine")))
            .unwrap_or_else(|| std::env::temp_dir().join("sockgen-wine"));
        let wine = Wine { program, prefix };
        wine.prepare()?;
        wine.keep_server_up();
        Ok(wine)
    }

    /// Wine's server normally quits 3 s after its last program, and the next program then
    /// waits for a new one; a run of tests starts programs one after another, so the server
    /// is asked to stay 30 s instead (once per process; a server already running stays as is).
    fn keep_server_up(&self) {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let mut server = self.command_for("wineserver");
            server.arg("-p30");
            let _ = run_bounded(server, std::time::Duration::from_secs(10));
        });
    }

    /// Creates the prefix unless a finished one is there. Processes that start at once wait
    /// for one another on a lock file rather than booting the same prefix twice.
    pub fn prepare(&self) -> Result<(), String> {
        use std::os::unix::io::AsRawFd;
        let ready = self.prefix.join(".sockgen-ready");
        if ready.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.prefix)
            .map_err(|e| format!("create {}: {e}", self.prefix.display()))?;
        let lock_path = self.prefix.with_extension("lock");
        let lock = std::fs::File::create(&lock_path)
            .map_err(|e| format!("create {}: {e}", lock_path.display()))?;
        // SAFETY: flock on a descriptor this function owns; released when `lock` is dropped.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!(
                "lock {}: {}",
                lock_path.display(),
                std::io::Error::last_os_error()
            ));
        }
        if ready.exists() {
            return Ok(());
        }
        let mut boot = self.command_for("wineboot");
        boot.arg("-i");
        let status = run_bounded(boot, std::time::Duration::from_secs(180))
            .map_err(|e| format!("wineboot -i in {}: {e}", self.prefix.display()))?;
        if !status.success() {
            return Err(format!(
                "wineboot -i in {} failed with {status}",
                self.prefix.display()
            ));
        }
        std::fs::write(&ready, b"").map_err(|e| format!("write {}: {e}", ready.display()))
    }

    /// `wine PROGRAM` in this prefix, with Wine's own debug chatter off and no offer to install
    /// Mono or Gecko (nothing here needs .NET or HTML).
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(&self.program);
        command.arg(program);
        self.environment(&mut command);
        command
    }

    fn command_for(&self, tool: &str) -> Command {
        let sibling = self.program.with_file_name(tool);
        let mut command = Command::new(if self.program.components().count() > 1 {
            sibling
        } else {
            PathBuf::from(tool)
        });
        self.environment(&mut command);
        command
    }

    fn environment(&self, command: &mut Command) {
        command
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=");
    }
}

/// Runs a command with its output discarded, killing it after `limit`.
fn run_bounded(
    mut command: Command,
    limit: std::time::Duration,
) -> Result<std::process::ExitStatus, String> {
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "still running after {} s (killed)",
                limit.as_secs()
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
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
