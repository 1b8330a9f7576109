//! Rust for Linux: askama renders one template per model (sharing partials), then `syn` parses
//! the text and `prettyplease` prints it, so every Rust output is known to parse and is
//! consistently formatted.
//!
//! prettyplease keeps doc comments but drops `//` comments, so the templates explain themselves
//! in doc comments on items; the one kind of `//` comment that must reach the output, the
//! `// SAFETY:` note above every `unsafe` block (clippy's `undocumented_unsafe_blocks` reads
//! it there), is carried through syn as a marker statement and printed back as a comment.

use askama::Template;
use quote::format_ident;

use super::view::View;
use crate::plan::{Handler, Model, Plan};
use crate::render::{GeneratedFile, Layout};
use crate::spec::FramingKind;

/// What the Rust templates read beyond the shared [`View`].
pub struct RustView {
    pub base: View,
    /// `V4(std::net::Ipv4Addr::new(127, 0, 0, 1))`: a const expression for `ADDRESS`.
    pub address_expr: String,
    pub socktype: &'static str,
    /// The std type of a worker's socket.
    pub socket_type: &'static str,
    pub listener_nonblocking: bool,
    pub io_imports: String,
    pub net_imports: String,
    pub time_imports: String,
    /// The built-in handler's type (`Echo`, …); empty for `custom`.
    pub handler_type: &'static str,
    /// A client's payload sizes as a Rust list (`1, 1024, 65536`).
    pub sizes_rust: String,
    pub summary: String,
}

impl std::ops::Deref for RustView {
    type Target = View;
    fn deref(&self) -> &View {
        &self.base
    }
}

impl RustView {
    pub fn new(plan: &Plan) -> RustView {
        let base = View::new(plan);
        let tcp = base.tcp;
        let address_expr = match plan.address {
            std::net::IpAddr::V4(ip) => {
                let [a, b, c, d] = ip.octets();
                format!("V4(std::net::Ipv4Addr::new({a}, {b}, {c}, {d}))")
            }
            std::net::IpAddr::V6(ip) => {
                let s = ip
                    .segments()
                    .iter()
                    .map(|x| format!("{x:#x}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("V6(std::net::Ipv6Addr::new({s}))")
            }
        };
        // Import exactly what this variant uses: an unused import is a warning, and generated
        // crates must pass clippy with -D warnings.
        let mut io = vec!["self", "Write"];
        // io_uring reads through completions, not `Read`.
        if tcp && plan.model != Model::IoUring {
            io.push("Read");
        }
        let net = match (tcp, plan.client.is_some()) {
            (true, false) => "IpAddr, SocketAddr, TcpListener, TcpStream",
            (false, false) => "IpAddr, SocketAddr, UdpSocket",
            (true, true) => "SocketAddr, TcpStream",
            (false, true) => "SocketAddr, UdpSocket",
        };
        let time = match (tcp, plan.model) {
            (true, _) => "Duration, Instant",
            _ if plan.client.is_some() => "Duration, Instant",
            (false, Model::IoUring) => "Duration, Instant", // the ring's waits take timeouts
            (false, _) => "",
        };
        RustView {
            address_expr,
            socktype: if tcp {
                "libc::SOCK_STREAM"
            } else {
                "libc::SOCK_DGRAM"
            },
            socket_type: if tcp { "TcpListener" } else { "UdpSocket" },
            listener_nonblocking: tcp || plan.model != Model::Blocking,
            io_imports: io.join(", "),
            net_imports: net.to_string(),
            time_imports: time.to_string(),
            handler_type: match plan.handler {
                Handler::Echo => "Echo",
                Handler::Discard => "Discard",
                Handler::Chargen => "Chargen",
                Handler::EchoCheck => "EchoCheck",
                Handler::Load => "Load",
                Handler::Custom => "",
            },
            sizes_rust: plan.client.as_ref().map_or(String::new(), |c| {
                c.sizes
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
            summary: format!(
                "{} {} {}, {} model",
                if tcp { "TCP" } else { "UDP" },
                plan.handler,
                if plan.client.is_some() {
                    "client"
                } else {
                    "server"
                },
                plan.model
            ),
            base,
        }
    }
}

#[derive(Template)]
#[template(path = "rust/blocking.rs", escape = "none")]
struct BlockingRs<'a> {
    v: &'a RustView,
}

#[derive(Template)]
#[template(path = "rust/poll.rs", escape = "none")]
struct PollRs<'a> {
    v: &'a RustView,
}

#[derive(Template)]
#[template(path = "rust/epoll.rs", escape = "none")]
struct EpollRs<'a> {
    v: &'a RustView,
}

#[derive(Template)]
#[template(path = "rust/io_uring.rs", escape = "none")]
struct IoUringRs<'a> {
    v: &'a RustView,
}

#[derive(Template)]
#[template(path = "rust/epoll_client.rs", escape = "none")]
struct EpollClientRs<'a> {
    v: &'a RustView,
}

#[derive(Template)]
#[template(path = "rust/poll_client.rs", escape = "none")]
struct PollClientRs<'a> {
    v: &'a RustView,
}

#[derive(Template)]
#[template(path = "rust/blocking_client.rs", escape = "none")]
struct BlockingClientRs<'a> {
    v: &'a RustView,
}

#[derive(Template)]
#[template(path = "rust/io_uring_client.rs", escape = "none")]
struct IoUringClientRs<'a> {
    v: &'a RustView,
}

#[derive(Template)]
#[template(path = "rust/main.rs", escape = "none")]
struct MainRs<'a> {
    v: &'a RustView,
}

#[derive(Template)]
#[template(path = "rust/Cargo.toml", escape = "none")]
struct CargoToml<'a> {
    v: &'a RustView,
}

/// The marker a `// SAFETY:` line travels through syn as: a statement (or impl item) macro,
/// which syn keeps where the comment stood. Never defined, so one that [`print`] missed fails
/// the build rather than vanishing.
const COMMENT_MARKER: &str = "__sockgen_comment!";

/// Turns each own-line `// SAFETY:` comment, and the `//` lines that continue it, into marker
/// statements: `// SAFETY: x` becomes `__sockgen_comment!("SAFETY: x");`.
fn mark_safety_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_note = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let comment = trimmed
            .strip_prefix("//")
            .filter(|rest| !rest.starts_with('/') && !rest.starts_with('!'));
        in_note = match comment {
            Some(rest) => in_note || rest.trim_start().starts_with("SAFETY:"),
            None => false,
        };
        match comment {
            Some(rest) if in_note => {
                let indent = &line[..line.len() - trimmed.len()];
                // Debug formatting of a str is a valid Rust string literal.
                out.push_str(&format!("{indent}{COMMENT_MARKER}({:?});\n", rest.trim()));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// prettyplease's text with every marker back as the `//` comment it was. A marker too long
/// for one line is printed over three: `__sockgen_comment!(`, the literal, `);`.
fn print(file: &syn::File) -> String {
    let text = prettyplease::unparse(file);
    let mut out = String::with_capacity(text.len());
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if !trimmed.starts_with(COMMENT_MARKER) {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut marker = trimmed.to_string();
        while !marker.ends_with(");") {
            match lines.next() {
                Some(next) => marker.push_str(next.trim()),
                None => break,
            }
        }
        let indent = &line[..line.len() - trimmed.len()];
        let literal = marker
            .strip_prefix(COMMENT_MARKER)
            .and_then(|rest| rest.strip_prefix('('))
            .and_then(|rest| rest.strip_suffix(");"))
            .and_then(|literal| syn::parse_str::<syn::LitStr>(literal).ok());
        match literal {
            Some(literal) => out.push_str(&format!("{indent}// {}\n", literal.value())),
            // Not a marker sockgen wrote: left as is, so the build names it.
            None => out.push_str(&format!("{indent}{marker}\n")),
        }
    }
    out
}

/// A template produced text `syn` cannot parse: always a sockgen bug, reported with context.
fn parse(what: &str, text: &str) -> Result<syn::File, askama::Error> {
    let text = &mark_safety_comments(text);
    syn::parse_file(text).map_err(|e| {
        let line = e.span().start().line;
        let context = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
        askama::Error::Custom(
            format!(
                "generated {what} does not parse at line {line}: {e}: `{}`",
                context.trim()
            )
            .into(),
        )
    })
}

fn header(plan: &Plan) -> String {
    let how = match plan.origin {
        crate::plan::Origin::BuildScript => {
            "// Do not edit by hand: change the spec; build.rs (sockgen::Builder) regenerates it.\n"
                .to_string()
        }
        crate::plan::Origin::Project => format!(
            "// Do not edit by hand: change the spec and run, in this directory,\n//     {}\n",
            plan.render_command()
        ),
        crate::plan::Origin::Render => format!(
            "// Do not edit by hand: change the spec and run\n//     {}\n",
            plan.render_command()
        ),
    };
    format!(
        "// {}: generated by sockgen {} from {} (--lang rust --model {}).\n{how}",
        plan.name,
        env!("CARGO_PKG_VERSION"),
        plan.spec_file,
        plan.model,
    )
}

/// The generated module: everything but `main`. This is what a build.rs writes to OUT_DIR
/// for `include!`, so it has no inner attributes.
pub fn module(plan: &Plan) -> Result<syn::File, askama::Error> {
    let view = RustView::new(plan);
    let text = match (plan.client.is_some(), plan.model) {
        // validate() lets through only emitted models, and each has a client (backend::client_support).
        (true, Model::Epoll) => EpollClientRs { v: &view }.render()?,
        (true, Model::Poll) => PollClientRs { v: &view }.render()?,
        (true, Model::Blocking) => BlockingClientRs { v: &view }.render()?,
        (true, Model::IoUring) => IoUringClientRs { v: &view }.render()?,
        (true, model) => {
            return Err(askama::Error::Custom(
                format!("no Rust {model} client template").into(),
            ))
        }
        (false, Model::Blocking) => BlockingRs { v: &view }.render()?,
        (false, Model::Poll) => PollRs { v: &view }.render()?,
        (false, Model::Epoll) => EpollRs { v: &view }.render()?,
        (false, Model::IoUring) => IoUringRs { v: &view }.render()?,
        (false, Model::Iocp) => {
            return Err(askama::Error::Custom(
                format!("Rust has no {} template", plan.model).into(),
            ))
        }
    };
    parse("module", &text)
}

/// The module as a file for `include!` (build.rs output).
pub fn module_source(plan: &Plan) -> Result<String, askama::Error> {
    Ok(format!("{}\n{}", header(plan), print(&module(plan)?)))
}

pub fn render(plan: &Plan, layout: Layout) -> Result<Vec<GeneratedFile>, askama::Error> {
    let view = RustView::new(plan);
    let module = module(plan)?;
    let main = parse("main.rs", &MainRs { v: &view }.render()?)?;
    match layout {
        Layout::SingleFile => {
            // One self-contained file: the module goes inline where main.rs declares it.
            let name = format_ident!("{}", plan.name);
            let module_items = &module.items;
            let mut file = main;
            for item in &mut file.items {
                if let syn::Item::Mod(m) = item {
                    if m.ident == name && m.content.is_none() {
                        let attrs = &m.attrs;
                        *item = syn::parse_quote! {
                            #(#attrs)*
                            mod #name {
                                #(#module_items)*
                            }
                        };
                    }
                }
            }
            let contents = format!("{}\n{}", header(plan), print(&file));
            Ok(vec![GeneratedFile::generated("main.rs", contents)])
        }
        Layout::Project => {
            let main_file = GeneratedFile {
                path: "src/main.rs".to_string(),
                contents: format!("{}\n{}", header(plan), print(&main)),
                user_owned: view.user_owned_handler,
            };
            let module_file = GeneratedFile::generated(
                format!("src/{}.rs", plan.name),
                format!("{}\n{}", header(plan), print(&module)),
            );
            Ok(vec![
                GeneratedFile::generated("Cargo.toml", CargoToml { v: &view }.render()?),
                main_file,
                module_file,
            ])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safety_notes_survive_syn_and_prettyplease_word_for_word() {
        let long = "x".repeat(120);
        let text = format!(
            "fn f(p: *const u8) -> u8 {{\n    let zero = 0;\n    // an ordinary comment: dropped\n    \
             // SAFETY: \"quoted\", a \\ backslash, and {long}\n    \
             // a second line of the same note.\n    unsafe {{ *p.add(zero) }}\n}}\n"
        );
        let printed = print(&parse("test", &text).unwrap());
        assert_eq!(
            printed,
            format!(
                "fn f(p: *const u8) -> u8 {{\n    let zero = 0;\n    \
                 // SAFETY: \"quoted\", a \\ backslash, and {long}\n    \
                 // a second line of the same note.\n    unsafe {{ *p.add(zero) }}\n}}\n"
            )
        );
    }

    #[test]
    fn a_stray_marker_is_left_for_the_compiler_to_name() {
        let text = "fn f() {\n    __sockgen_comment!(not_a_string);\n}\n";
        let printed = print(&parse("test", text).unwrap());
        assert!(
            printed.contains("__sockgen_comment!(not_a_string);"),
            "{printed}"
        );
    }
}
