//! The `sockgen` command line. Thin: every command is a call into the library.

mod analyze;
mod bench;
mod check;
mod explain;
mod init;
mod reference;
mod render;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::spec::{Lang, Model};
use crate::{Error, Overrides};

/// Exit status when the spec itself is invalid (1 is every other failure).
pub const EXIT_INVALID_SPEC: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "sockgen",
    version,
    about = "Generate proven socket servers from a declarative spec"
)]
pub struct Cli {
    /// Colour diagnostics and help: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE
    /// forces it), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Whether stderr gets colour, honouring NO_COLOR and CLICOLOR_FORCE (no-color.org,
    /// bixense.com/clicolors) when the choice is `auto`.
    pub fn resolve(self) -> bool {
        use std::io::IsTerminal;
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto if set("CLICOLOR_FORCE") => true,
            ColorWhen::Auto if set("NO_COLOR") => false,
            ColorWhen::Auto => std::io::stderr().is_terminal(),
        }
    }
}

/// The spec argument every spec-reading command takes.
const SPEC_HELP: &str = "The spec file (*.yaml, *.yml or *.toml); `sockgen init` writes a starter";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Render a spec to source code: one file on stdout, or a buildable project with -o.
    Render {
        #[arg(help = SPEC_HELP)]
        spec: PathBuf,
        #[command(flatten)]
        target: OverrideArgs,
        /// Write a project (source, handler callbacks, build file) into DIR.
        #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// Write nothing; exit 1 if the files in DIR differ from what would be written.
        #[arg(long, requires = "out_dir")]
        check: bool,
    },
    /// Validate a spec and report every problem; exit 0 if valid, 2 if not.
    Check {
        #[arg(help = SPEC_HELP)]
        spec: PathBuf,
        #[command(flatten)]
        target: OverrideArgs,
        /// Also check that the spec's address and port can be bound now (exit 1 if in use).
        #[arg(long)]
        port_free: bool,
    },
    /// Explain a socket error: an errno name or number, or a Winsock name or number.
    Explain {
        /// EAGAIN, 11, WSAECONNRESET, 10054, …
        code: String,
        /// Print the entry as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Report connection states, listen queues and socket memory, with findings.
    Analyze {
        /// Only sockets whose local or remote port is PORT.
        #[arg(long)]
        port: Option<u16>,
        /// Only sockets the process PID holds (live data only).
        #[arg(long)]
        pid: Option<u32>,
        /// Read saved `ss -tanmi` or `netstat -an` output from FILE, or `-` for stdin.
        #[arg(long, value_name = "FILE|-")]
        from: Option<PathBuf>,
        /// Print {operation, target, address, status, findings, recommendations, artifacts} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compile the spec's output, run it on loopback and check every byte; exit 1 on any failure.
    Verify {
        /// The spec file, or a project directory `render -o` wrote: then the program built is
        /// the user's (their handler file, their sources, their Rust main.rs and modules).
        spec: PathBuf,
        #[command(flatten)]
        only: FilterArgs,
        /// Print a JSON report instead of text.
        #[arg(long)]
        json: bool,
        /// Combinations proven at once.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Also put each echo server through the fault suite (resets, floods, SIGSTOP, bursts…),
        /// checking afterwards that it serves, holds no extra descriptors, does not spin and stops
        /// with status 0.
        #[arg(long)]
        faults: bool,
        /// A command to run against each live server (repeatable): `{port}` and `{host}` are
        /// substituted, `sh -c` runs it, exit status 0 passes; e.g. 'redis-cli -p {port} ping'.
        #[arg(long = "with", value_name = "CMD")]
        with: Vec<String>,
        /// A conversation file (repeatable): send/expect pairs checked byte for byte against
        /// each live TCP server; see docs/verify.md.
        #[arg(long = "conversation", value_name = "FILE")]
        conversations: Vec<PathBuf>,
        /// A file of your program (repeatable): the C handler file and sources, or the Rust
        /// main.rs and modules; verify builds them with the spec's generated files.
        #[arg(long = "handler", value_name = "FILE")]
        handler_files: Vec<PathBuf>,
    },
    /// Measure the spec's outputs under load (and peers in the same run); see docs/benchmarks.md.
    Bench(BenchArgs),
    /// Print the JSON Schema (draft-07) of the spec format.
    Schema,
    /// Print which I/O models each language supports.
    Models,
    /// Write a commented starter spec (to FILE, or stdout) to copy and edit.
    Init {
        /// Where to write it; refuses to overwrite an existing file.
        file: Option<PathBuf>,
    },
    /// Print a shell completion script: `sockgen completions bash > /etc/bash_completion.d/sockgen`.
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff): `sockgen man > sockgen.1 && man ./sockgen.1`; with --dir,
    /// write it and one page per subcommand (sockgen-render.1, ...) into DIR.
    Man {
        /// Write sockgen.1 and sockgen-SUBCOMMAND.1 here instead of printing sockgen.1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[arg(help = SPEC_HELP)]
    pub spec: PathBuf,
    #[command(flatten)]
    pub only: FilterArgs,
    /// Every (lang, model) the spec allows (the default when neither --lang nor --model is given).
    #[arg(long, conflicts_with_all = ["lang", "model"])]
    pub all: bool,
    /// Concurrent connections per case, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 64, 256, 1000], value_parser = clap::value_parser!(usize))]
    pub connections: Vec<usize>,
    /// Message sizes in bytes per case, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [64usize, 4096])]
    pub sizes: Vec<usize>,
    /// Messages each connection keeps in flight.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Measured time per run, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub duration_ms: u64,
    /// Warm-up per run before measuring, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub warmup_ms: u64,
    /// Runs per server and case, servers interleaved; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub repeats: u16,
    /// Skip the streaming case (discard handler, 64 KiB writes, iperf3 ceiling).
    #[arg(long)]
    pub no_stream: bool,
    /// Idle connections per idle case, comma-separated: each echoes 64 bytes once, then stays
    /// open and quiet, and the server's memory per connection is reported (TCP).
    #[arg(long, value_delimiter = ',', default_values_t = [8000usize])]
    pub idle: Vec<usize>,
    /// Skip the idle-connections case.
    #[arg(long)]
    pub no_idle: bool,
    /// Another echo server under the same load: NAME=COMMAND with {port} where it listens, or
    /// `tokio` for the tokio echo server in benches/tokio-echo. Ratios are printed against the first.
    #[arg(long = "peer", value_name = "NAME=CMD")]
    pub peers: Vec<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also draw every case side by side into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,
}

/// The language and model to generate, when not the ones the spec names.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct OverrideArgs {
    /// Output language [default: the spec's `lang`, else c].
    #[arg(long, value_parser = keyword_parser::<Lang>())]
    pub lang: Option<Lang>,
    /// I/O model [default: the spec's `model`, else the platform's best].
    #[arg(long, value_parser = keyword_parser::<Model>())]
    pub model: Option<Model>,
}

impl From<OverrideArgs> for Overrides {
    fn from(args: OverrideArgs) -> Overrides {
        Overrides {
            lang: args.lang,
            model: args.model,
        }
    }
}

/// Narrows the (lang, model) combinations a command runs through.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct FilterArgs {
    /// Only this language [default: every language sockgen emits; bench: C and Rust, or only
    /// winsock (under Wine) when the spec's lang is winsock].
    #[arg(long, value_parser = keyword_parser::<Lang>())]
    pub lang: Option<Lang>,
    /// Only this model [default: every model the spec allows].
    #[arg(long, value_parser = keyword_parser::<Model>())]
    pub model: Option<Model>,
}

/// A value parser that lists the keyword's values in --help and in errors.
fn keyword_parser<K: crate::spec::Keyword + Send + Sync + Clone>(
) -> impl clap::builder::TypedValueParser<Value = K> {
    use clap::builder::TypedValueParser;
    let names: Vec<&'static str> = K::ALL.iter().map(|k| k.as_str()).collect();
    clap::builder::PossibleValuesParser::new(names)
        .map(|text| K::parse(&text).expect("a listed value"))
}

/// Runs the CLI with the process's arguments.
pub fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    // The --color choice (and NO_COLOR / CLICOLOR_FORCE) also governs clap's own messages.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let wanted = args
        .iter()
        .zip(args.iter().skip(1))
        .find_map(|(a, b)| {
            let b = b.to_str()?;
            (a == "--color").then(|| b.to_string())
        })
        .or_else(|| {
            args.iter()
                .find_map(|a| a.to_str()?.strip_prefix("--color=").map(str::to_string))
        });
    let when = match wanted.as_deref() {
        Some("always") => ColorWhen::Always,
        Some("never") => ColorWhen::Never,
        _ => ColorWhen::Auto,
    };
    COLOR.store(when.resolve(), std::sync::atomic::Ordering::Relaxed);
    let command = Cli::command().color(if when.resolve() {
        clap::ColorChoice::Always
    } else {
        clap::ColorChoice::Never
    });
    let parsed = command
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not failures; usage errors are "other failures" (1),
            // so that 2 always means "the spec is invalid".
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if !matches!(cli.command, Command::Verify { .. } | Command::Bench(_)) {
        quiet_on_closed_stdout();
    }
    run(cli.command)
}

/// `sockgen schema | head` should end quietly, as Unix tools do, not panic on EPIPE: the
/// printing commands get SIGPIPE's default action back (Rust ignores it). verify and bench
/// keep it ignored, since they write to sockets of servers that may close.
fn quiet_on_closed_stdout() {
    // SAFETY: restoring a signal's default action before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Progress of a long command: a bar on a terminal, plain lines on stderr otherwise (so logs
/// and CI show it too). Results go to stdout either way.
#[derive(Clone)]
struct ProgressLine {
    bar: Option<indicatif::ProgressBar>,
    what: &'static str,
}

impl ProgressLine {
    fn new(what: &'static str) -> ProgressLine {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            let style = indicatif::ProgressStyle::with_template(
                "{prefix} [{elapsed}] {wide_bar} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(what);
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        ProgressLine { bar, what }
    }

    fn step(&self, done: usize, total: usize, message: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message(message.to_string());
            }
            None => eprintln!("{}: {done}/{total} {message}", self.what),
        }
    }

    /// A result line on stdout, without tearing the bar.
    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Whether diagnostics on stderr are coloured (see [`ColorWhen`]).
static COLOR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn fail(e: &Error) -> ExitCode {
    match e {
        Error::Invalid(d) => eprint!(
            "{}",
            d.render_styled(COLOR.load(std::sync::atomic::Ordering::Relaxed))
        ),
        _ => eprint!("{e}"),
    }
    if !matches!(e, Error::Invalid(_)) {
        eprintln!();
    }
    match e {
        Error::Invalid(_) | Error::Project(_) => ExitCode::from(EXIT_INVALID_SPEC),
        _ => ExitCode::from(1),
    }
}

/// Prints what validation warned about; the command goes on.
fn warn(plan: &crate::plan::Plan) {
    if let Some(warnings) = &plan.warnings {
        eprint!(
            "{}",
            warnings.render_styled(COLOR.load(std::sync::atomic::Ordering::Relaxed))
        );
    }
}

pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Render {
            spec,
            target,
            out_dir,
            check,
        } => render::render(&spec, target.into(), out_dir, check),
        Command::Check {
            spec,
            target,
            port_free,
        } => check::check(&spec, target.into(), port_free),
        Command::Verify {
            spec,
            only,
            json,
            jobs,
            faults,
            with,
            conversations,
            handler_files,
        } => verify::verify(verify::VerifyArgs {
            spec,
            only,
            json,
            jobs,
            faults,
            with,
            conversations,
            handler_files,
        }),
        Command::Bench(args) => bench::bench(args),
        Command::Explain { code, json } => explain::explain(&code, json),
        Command::Analyze {
            port,
            pid,
            from,
            json,
        } => analyze::analyze(port, pid, from, json),
        Command::Schema => reference::schema(),
        Command::Models => reference::models(),
        Command::Init { file } => init::init(file),
        Command::Completions { shell } => reference::completions(shell),
        Command::Man { dir } => reference::man(dir),
    }
}
