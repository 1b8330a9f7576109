//! The language × model matrix: what sockgen emits, and what cannot exist.

use crate::spec::{Keyword, Lang, Model, Protocol};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// sockgen renders it, and the test suite compiles, runs and verifies it.
    Emitted,
    /// The platform has no such API.
    Impossible,
}

pub fn support(lang: Lang, model: Model) -> Support {
    use Lang::*;
    use Model::*;
    match (lang, model) {
        (C | Rust, Blocking | Poll | Epoll | IoUring) => Support::Emitted,
        (Winsock, Blocking | Poll | Iocp) => Support::Emitted,
        (C | Rust, Iocp) | (Winsock, Epoll | IoUring) => Support::Impossible,
    }
}

/// Whether sockgen generates a client for this combination: wherever it generates a server,
/// for TCP and UDP alike (the client shares the server's connection machinery, and the
/// proof runs every scenario on each). The proof's list of client targets and `sockgen
/// models` read it here, so a model whose client lands later has one place to say so.
pub fn client_support(lang: Lang, model: Model, _protocol: Protocol) -> Support {
    support(lang, model)
}

/// The client combinations generated today, for hints: "tcp with --lang c --model epoll".
pub fn emitted_clients() -> String {
    // (lang, models, protocols): protocols that share the same models are named together.
    let mut found: Vec<(Lang, String, Vec<&str>)> = Vec::new();
    for &lang in Lang::ALL {
        for &protocol in Protocol::ALL {
            let models: Vec<&str> = Model::ALL
                .iter()
                .filter(|&&m| client_support(lang, m, protocol) == Support::Emitted)
                .map(|m| m.as_str())
                .collect();
            let choices = match models.split_last() {
                Some((last, [])) => last.to_string(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => continue,
            };
            match found
                .iter_mut()
                .find(|(l, c, _)| *l == lang && *c == choices)
            {
                Some((_, _, protocols)) => protocols.push(protocol.as_str()),
                None => found.push((lang, choices, vec![protocol.as_str()])),
            }
        }
    }
    found
        .iter()
        .map(|(lang, choices, protocols)| {
            format!(
                "{} with --lang {lang} --model {choices}",
                protocols.join(" and ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Models sockgen can render today for `lang`.
pub fn emitted_models(lang: Lang) -> Vec<Model> {
    Model::ALL
        .iter()
        .copied()
        .filter(|&m| support(lang, m) == Support::Emitted)
        .collect()
}

/// The model a spec gets when it names none: the best one for the platform.
pub fn default_model(lang: Lang) -> Model {
    match lang {
        Lang::C | Lang::Rust => Model::Epoll,
        Lang::Winsock => Model::Iocp,
    }
}

pub fn platform_name(lang: Lang) -> &'static str {
    match lang {
        Lang::C => "POSIX/Linux",
        Lang::Rust => "Linux",
        Lang::Winsock => "Windows",
    }
}

/// One line per (lang, model) for `sockgen models`.
pub fn matrix_table() -> String {
    let mut out = String::from("lang     model     status      notes\n");
    for &lang in Lang::ALL {
        for &model in Model::ALL {
            let (status, note) = match support(lang, model) {
                Support::Emitted => ("emitted", note(lang, model)),
                Support::Impossible => ("n/a", impossible_reason(lang, model)),
            };
            out.push_str(&format!(
                "{:<8} {:<9} {:<11} {}\n",
                lang.as_str(),
                model.as_str(),
                status,
                note
            ));
        }
    }
    out.push_str(&format!(
        "\nclients (role: client) are generated for {}\n",
        emitted_clients()
    ));
    out
}

fn note(lang: Lang, model: Model) -> &'static str {
    match (lang, model) {
        (Lang::Winsock, Model::Blocking) => {
            "tcp+udp; thread per connection, capped by server.max_connections; MinGW-w64 or MSVC"
        }
        (Lang::Winsock, Model::Poll) => {
            "tcp+udp; level-triggered WSAPoll, server.workers loops on one shared socket"
        }
        (Lang::Winsock, Model::Iocp) => {
            "tcp+udp; AcceptEx, overlapped WSARecv/WSASend, GetQueuedCompletionStatusEx batches"
        }
        (_, Model::Blocking) => "tcp+udp; thread per connection, capped by server.max_connections",
        (_, Model::Poll) => "tcp+udp; level-triggered poll(2), server.workers loops",
        (_, Model::Epoll) => {
            "tcp+udp; edge-triggered epoll, drained to EAGAIN, server.workers loops"
        }
        (Lang::C, Model::IoUring) => {
            "tcp+udp; multishot accept/receive, provided buffers, batched submission; liburing, Linux 6.0+"
        }
        (_, Model::IoUring) => {
            "tcp+udp; multishot accept/receive, provided buffers, batched submission; io-uring crate, Linux 6.0+"
        }
        _ => "",
    }
}

pub fn impossible_reason(lang: Lang, model: Model) -> &'static str {
    match (lang, model) {
        (_, Model::Iocp) => "IOCP is Windows-only (Winsock C: --lang winsock)",
        (_, Model::Epoll) => "epoll is Linux-only",
        (_, Model::IoUring) => "io_uring is Linux-only",
        _ => "",
    }
}
