//! The commands that print reference material: `schema`, `models`, `completions` and `man`.

use std::process::ExitCode;

use clap::CommandFactory;

use super::Cli;
use crate::backend::matrix;

pub(super) fn schema() -> ExitCode {
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

pub(super) fn models() -> ExitCode {
    print!("{}", matrix::matrix_table());
    ExitCode::SUCCESS
}

pub(super) fn completions(shell: clap_complete::Shell) -> ExitCode {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "sockgen",
        &mut std::io::stdout(),
    );
    ExitCode::SUCCESS
}

pub(super) fn man() -> ExitCode {
    match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
