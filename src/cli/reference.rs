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

/// What a page adds to clap's: examples and exit status, per subcommand ("" for sockgen(1)).
const MAN_EXTRAS: &[(&str, &[&str], &str)] = &[
    (
        "",
        &[
            "sockgen init echo.yaml",
            "sockgen render echo.yaml --lang c --model epoll -o echo && make -C echo",
            "sockgen verify echo",
        ],
        "0 success; 1 a failure the command reports (a check failed, a file could not be \
         written); 2 an invalid spec or command line",
    ),
    (
        "render",
        &[
            "sockgen render echo.yaml --lang c --model epoll > echo.c",
            "sockgen render echo.yaml --lang rust -o echo",
            "sockgen render echo.yaml -o echo --check",
        ],
        "0 written, or up to date; 1 a file could not be written, or --check found differences; \
         2 the spec is invalid or unreadable",
    ),
    (
        "check",
        &[
            "sockgen check echo.yaml",
            "sockgen check echo.yaml --lang winsock --model iocp",
            "sockgen check echo.yaml --port-free",
        ],
        "0 valid (warnings are printed); 1 --port-free found the port taken; 2 invalid",
    ),
    (
        "verify",
        &[
            "sockgen verify echo.yaml",
            "sockgen verify echo.yaml --lang c --model io_uring --faults",
            "sockgen verify my-project --with 'redis-cli -p {port} ping' --conversation redis.conv",
        ],
        "0 every check passed; 1 a check failed; 2 the spec, the project or a conversation file is \
         invalid",
    ),
    (
        "bench",
        &[
            "sockgen bench specs/echo-tcp.yaml --lang c --model epoll --peer tokio",
            "sockgen bench specs/echo-tcp.yaml --all --chart bench.svg",
        ],
        "0 measured; 1 a server failed or a peer could not be built; 2 a bad command line or spec",
    ),
    (
        "init",
        &["sockgen init server.yaml", "sockgen init server.toml"],
        "0 written; 1 FILE exists (it is never overwritten) or cannot be created",
    ),
];

/// One manual page: clap's, then EXAMPLES and EXIT STATUS where MAN_EXTRAS has them.
fn man_page(
    command: clap::Command,
    extras_for: &str,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    clap_mangen::Man::new(command).render(out)?;
    if let Some((_, examples, status)) = MAN_EXTRAS.iter().find(|(name, _, _)| *name == extras_for)
    {
        writeln!(out, ".SH EXAMPLES")?;
        for example in *examples {
            writeln!(out, ".TP\n.B {}", roff_text(example))?;
        }
        writeln!(out, ".SH \"EXIT STATUS\"\n{}", roff_text(status))?;
    }
    Ok(())
}

/// Text for roff: backslashes and leading dots or quotes escaped, `-` as a minus sign.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// sockgen(1) and, into a directory, one page per subcommand (sockgen-render.1, ...), so
/// every page sockgen(1) names exists.
fn write_pages(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut command = Cli::command();
    command.build();
    let mut top = std::fs::File::create(dir.join("sockgen.1"))?;
    man_page(command.clone(), "", &mut top)?;
    for sub in command.get_subcommands() {
        let name = sub.get_name().to_string();
        // clap names commands with 'static text; the pages are written once, then sockgen exits.
        let page_name: &'static str = Box::leak(format!("sockgen-{name}").into_boxed_str());
        let page = sub.clone().name(page_name);
        let mut file = std::fs::File::create(dir.join(format!("sockgen-{name}.1")))?;
        man_page(page, &name, &mut file)?;
    }
    Ok(())
}

pub(super) fn man(dir: Option<std::path::PathBuf>) -> ExitCode {
    let written = match &dir {
        Some(dir) => {
            write_pages(dir).map(|()| eprintln!("wrote the manual pages into {}", dir.display()))
        }
        None => man_page(Cli::command(), "", &mut std::io::stdout()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
