//! The `sockgen` command line. Thin: every command is a call into the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::render::{self, FileState, Layout};
use crate::spec::{Lang, Model};
use crate::target::lang;
use crate::{Error, Target};

/// Exit status when the spec itself is invalid (1 is every other failure).
pub const EXIT_INVALID_SPEC: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "sockgen",
    version,
    about = "Generate proven socket servers from a declarative spec"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Render a spec to source code: one file on stdout, or a buildable project with -o.
    Render {
        /// The spec file (*.yaml, *.yml or *.toml).
        spec: PathBuf,
        /// Output language [default: the spec's `lang`, else c].
        #[arg(long, value_parser = parse_lang)]
        lang: Option<Lang>,
        /// I/O model [default: the spec's `model`, else the platform's best].
        #[arg(long, value_parser = parse_model)]
        model: Option<Model>,
        /// Write a project (source, handler callbacks, build file) into DIR.
        #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// Write nothing; exit 1 if the files in DIR differ from what would be written.
        #[arg(long, requires = "out_dir")]
        check: bool,
    },
    /// Validate a spec and report every problem; exit 0 if valid, 2 if not.
    Check {
        spec: PathBuf,
        #[arg(long, value_parser = parse_lang)]
        lang: Option<Lang>,
        #[arg(long, value_parser = parse_model)]
        model: Option<Model>,
    },
    /// Compile the spec's output, run it on loopback and check every byte; exit 1 on any failure.
    Verify {
        spec: PathBuf,
        /// Only this language [default: every language sockgen emits].
        #[arg(long, value_parser = parse_lang)]
        lang: Option<Lang>,
        /// Only this model [default: every model the spec allows].
        #[arg(long, value_parser = parse_model)]
        model: Option<Model>,
        /// Print a JSON report instead of text.
        #[arg(long)]
        json: bool,
        /// Combinations proven at once.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
    },
    /// Print the JSON Schema (draft-07) of the spec format.
    Schema,
    /// Print which I/O models each language supports.
    Models,
}

fn parse_lang(s: &str) -> Result<Lang, String> {
    s.parse()
}

fn parse_model(s: &str) -> Result<Model, String> {
    s.parse()
}

/// Runs the CLI with the process's arguments.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
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
    run(cli.command)
}

fn fail(e: &Error) -> ExitCode {
    eprint!("{e}");
    if !matches!(e, Error::Invalid(_)) {
        eprintln!();
    }
    match e {
        Error::Invalid(_) => ExitCode::from(EXIT_INVALID_SPEC),
        _ => ExitCode::from(1),
    }
}

pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Render {
            spec,
            lang,
            model,
            out_dir,
            check,
        } => {
            let target = Target { lang, model };
            let layout = if out_dir.is_some() {
                Layout::Project
            } else {
                Layout::SingleFile
            };
            let files = match crate::generate(&spec, target, layout) {
                Ok(files) => files,
                Err(e) => return fail(&e),
            };
            match out_dir {
                None => {
                    let mut stdout = std::io::stdout().lock();
                    for f in &files {
                        if stdout.write_all(f.contents.as_bytes()).is_err() {
                            return ExitCode::from(1);
                        }
                    }
                    ExitCode::SUCCESS
                }
                Some(dir) if check => {
                    let mut stale = false;
                    for (path, state) in render::compare(&dir, &files) {
                        let shown = dir.join(&path);
                        match state {
                            FileState::UpToDate | FileState::Kept => {}
                            FileState::Missing => {
                                stale = true;
                                eprintln!("missing: {}", shown.display());
                            }
                            FileState::Differs => {
                                stale = true;
                                eprintln!("differs: {}", shown.display());
                            }
                        }
                    }
                    if stale {
                        eprintln!(
                            "generated code is out of date: run `sockgen render {} -o {}`",
                            spec.display(),
                            dir.display()
                        );
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Some(dir) => match render::write(&dir, &files) {
                    Ok(written) => {
                        for path in written {
                            eprintln!("wrote {}", dir.join(path).display());
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(&Error::Render(e)),
                },
            }
        }
        Command::Check { spec, lang, model } => {
            match crate::plan_file(&spec, Target { lang, model }) {
                Ok(plan) => {
                    println!(
                        "{}: ok ({} {} server, --lang {} --model {})",
                        spec.display(),
                        plan.protocol,
                        plan.handler,
                        plan.lang,
                        plan.model
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Verify {
            spec,
            lang,
            model,
            json,
            jobs,
        } => {
            let options = crate::proof::ProofOptions::default();
            let reports =
                match crate::proof::verify(&spec, lang, model, &options, usize::from(jobs)) {
                    Ok(r) => r,
                    Err(e) => return fail(&e),
                };
            let passed = reports.iter().filter(|r| r.passed()).count();
            let failed = reports.len() - passed;
            if json {
                let doc = serde_json::json!({
                    "spec": spec.display().to_string(),
                    "passed": passed,
                    "failed": failed,
                    "results": reports,
                });
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                for r in &reports {
                    print!("{}", r.summary());
                }
                println!("verify: {passed} passed, {failed} failed");
            }
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Schema => {
            let schema = crate::spec::json_schema();
            match serde_json::to_string_pretty(&schema) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Models => {
            print!("{}", lang::matrix_table());
            ExitCode::SUCCESS
        }
    }
}
