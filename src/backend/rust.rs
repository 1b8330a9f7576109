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
use crate::plan::{Handler, Model, OptionType, Plan};
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
    /// Opens and closes the `mod runtime { … }` around the spec-independent partials in a
    /// project (split into `src/NAME/runtime.rs` after parsing); empty in one-file output.
    pub runtime_open: &'static str,
    pub runtime_close: &'static str,
}

impl std::ops::Deref for RustView {
    type Target = View;
    fn deref(&self) -> &View {
        &self.base
    }
}

impl RustView {
    pub fn new(plan: &Plan, split_runtime: bool) -> RustView {
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
            runtime_open: if split_runtime {
                "mod runtime {\n    use super::*;"
            } else {
                ""
            },
            runtime_close: if split_runtime { "}" } else { "" },
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

/// The header of a `handler: custom` project's `src/main.rs`: the user's file from its first
/// render on, so it says so (as the C handler file does) instead of "do not edit".
fn owned_header(plan: &Plan) -> String {
    format!(
        "// {}: written by sockgen {} from {} (--lang rust --model {}) as a starting point.\n\
         // This file is yours: `sockgen render -o` writes it only when it does not exist yet.\n\
         // The module in src/{}/ is generated: change the spec and run, in this directory,\n\
         //     {}\n",
        plan.name,
        env!("CARGO_PKG_VERSION"),
        plan.spec_file,
        plan.model,
        plan.name,
        plan.render_command()
    )
}

/// The generated module: everything but `main`. This is what a build.rs writes to OUT_DIR
/// for `include!`, so it has no inner attributes.
pub fn module(plan: &Plan) -> Result<syn::File, askama::Error> {
    module_of(plan, &RustView::new(plan, false))
}

fn module_of(plan: &Plan, view: &RustView) -> Result<syn::File, askama::Error> {
    let text = match (plan.client.is_some(), plan.model) {
        // validate() lets through only emitted models, and each has a client (backend::client_support).
        (true, Model::Epoll) => EpollClientRs { v: view }.render()?,
        (true, Model::Poll) => PollClientRs { v: view }.render()?,
        (true, Model::Blocking) => BlockingClientRs { v: view }.render()?,
        (true, Model::IoUring) => IoUringClientRs { v: view }.render()?,
        (true, model) => {
            return Err(askama::Error::Custom(
                format!("no Rust {model} client template").into(),
            ))
        }
        (false, Model::Blocking) => BlockingRs { v: view }.render()?,
        (false, Model::Poll) => PollRs { v: view }.render()?,
        (false, Model::Epoll) => EpollRs { v: view }.render()?,
        (false, Model::IoUring) => IoUringRs { v: view }.render()?,
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
    match layout {
        Layout::SingleFile => {
            let view = RustView::new(plan, false);
            let module = module_of(plan, &view)?;
            let main = parse("main.rs", &MainRs { v: &view }.render()?)?;
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
            let view = RustView::new(plan, true);
            let mut module = module_of(plan, &view)?;
            let runtime = split_runtime(&mut module)?;
            let main = parse("main.rs", &MainRs { v: &view }.render()?)?;
            let main_header = if view.user_owned_handler {
                owned_header(plan)
            } else {
                header(plan)
            };
            let main_file = GeneratedFile {
                path: "src/main.rs".to_string(),
                contents: format!("{main_header}\n{}", print(&main)),
                user_owned: view.user_owned_handler,
            };
            Ok(vec![
                GeneratedFile::generated("Cargo.toml", CargoToml { v: &view }.render()?),
                main_file,
                GeneratedFile::generated(
                    format!("src/{}/mod.rs", plan.name),
                    format!("{}\n{}", header(plan), print(&module)),
                ),
                GeneratedFile::generated(
                    format!("src/{}/runtime.rs", plan.name),
                    format!("{}\n{}", header(plan), print(&runtime)),
                ),
            ])
        }
    }
}

/// The path a project's module had before it was split (`src/NAME.rs`); a regeneration removes
/// it if sockgen wrote it, since Rust refuses a module found at both `NAME.rs` and `NAME/mod.rs`.
pub fn retired_paths(plan: &Plan) -> Vec<String> {
    vec![format!("src/{}.rs", plan.name)]
}

/// Takes the `mod runtime { … }` the templates wrap around the spec-independent partials (the
/// handler contract, the connection core, timers, platform calls) out of the module, as the
/// file `runtime.rs`, leaving `mod runtime; pub use runtime::*;` in its place. Its private items
/// become `pub(super)`: the rest of the module (settings, the model's loop, `serve`) used them
/// as its own, and a child module's private items are not visible to its parent. What was
/// `pub` stays the public API through the re-export.
///
/// A template steps out of the runtime for what a spec chooses (the built-in handler) by
/// closing the block and opening another; the blocks are joined in order.
fn split_runtime(module: &mut syn::File) -> Result<syn::File, askama::Error> {
    let is_runtime = |item: &syn::Item| matches!(item, syn::Item::Mod(m) if m.ident == "runtime" && m.content.is_some());
    let Some(position) = module.items.iter().position(is_runtime) else {
        return Err(askama::Error::Custom(
            "the template has no `mod runtime { … }` to split".into(),
        ));
    };
    let mut items: Vec<syn::Item> = Vec::new();
    let mut kept = Vec::with_capacity(module.items.len());
    let mut seen_super_glob = false;
    for item in std::mem::take(&mut module.items) {
        match item {
            syn::Item::Mod(m) if m.ident == "runtime" && m.content.is_some() => {
                for inner in m.content.map(|(_, inner)| inner).unwrap_or_default() {
                    // Each block opens with the same `use super::*;`: one is enough.
                    let is_super_glob = matches!(&inner, syn::Item::Use(u)
                        if quote::ToTokens::to_token_stream(&u.tree).to_string() == "super :: *");
                    if !(is_super_glob && seen_super_glob) {
                        items.push(inner);
                    }
                    seen_super_glob |= is_super_glob;
                }
            }
            other => kept.push(other),
        }
    }
    module.items = kept;
    for item in &mut items {
        widen_to_parent(item);
    }
    let declaration: Vec<syn::Item> = vec![
        syn::parse_quote! {
            /// The handler contract, the connection core, timers and platform calls: the same
            /// for every spec of this model and role.
            mod runtime;
        },
        syn::parse_quote! { pub use runtime::*; },
    ];
    module.items.splice(position..position, declaration);
    Ok(syn::File {
        shebang: None,
        attrs: Vec::new(),
        items,
    })
}

/// Private (inherited) visibility becomes `pub(super)` on an item, a struct's fields and an
/// inherent impl's members; `use` items stay private, so the runtime's imports do not leak.
fn widen_to_parent(item: &mut syn::Item) {
    fn widen(vis: &mut syn::Visibility) {
        if matches!(vis, syn::Visibility::Inherited) {
            *vis = syn::parse_quote!(pub(super));
        }
    }
    match item {
        syn::Item::Const(i) => widen(&mut i.vis),
        syn::Item::Enum(i) => widen(&mut i.vis),
        syn::Item::Fn(i) => widen(&mut i.vis),
        syn::Item::Static(i) => widen(&mut i.vis),
        syn::Item::Trait(i) => widen(&mut i.vis),
        syn::Item::Type(i) => widen(&mut i.vis),
        syn::Item::Union(i) => widen(&mut i.vis),
        syn::Item::Struct(i) => {
            widen(&mut i.vis);
            for field in i.fields.iter_mut() {
                widen(&mut field.vis);
            }
        }
        syn::Item::Impl(i) if i.trait_.is_none() => {
            for member in &mut i.items {
                match member {
                    syn::ImplItem::Const(c) => widen(&mut c.vis),
                    syn::ImplItem::Fn(f) => widen(&mut f.vis),
                    syn::ImplItem::Type(t) => widen(&mut t.vis),
                    _ => {}
                }
            }
        }
        _ => {}
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
