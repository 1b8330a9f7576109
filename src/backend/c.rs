//! C for POSIX/Linux and Winsock C for Windows: one askama template per model, sharing
//! partials for the handler contract, the connection state machine and the timers; each
//! platform has its own process plumbing (`c/runtime.c`, `winsock/runtime.c`) and `main`.

use askama::Template;

use super::view::View;
use crate::plan::{Handler, Lang, Model, Plan};
use crate::render::{GeneratedFile, Layout};
use crate::spec::FramingKind;

/// What the C templates read beyond the shared [`View`].
pub struct CView {
    pub base: View,
    pub upper: String,
    pub protocol_upper: &'static str,
    pub socktype: &'static str,
    pub listener_nonblocking: u8,
    /// Single-file output carries the handler inline; a project includes NAME_handler.h.
    pub inline_handler: bool,
    pub handler_location: String,
    /// Winsock C for Windows rather than C for POSIX/Linux.
    pub windows: bool,
    /// A socket's type: `int` or `SOCKET`.
    pub socket_type: &'static str,
    /// The last socket call's error: `errno` or `WSAGetLastError()`.
    pub socket_error: &'static str,
    /// Winsock error names and numbers the generated code can name in its messages.
    pub wsa_names: Vec<(&'static str, i32)>,
}

impl std::ops::Deref for CView {
    type Target = View;
    fn deref(&self) -> &View {
        &self.base
    }
}

impl CView {
    /// Spaces that line a continued parameter list up under the first parameter of
    /// `static RET NAME_CALLBACK(`.
    pub fn align(&self, ret: &str, callback: &str) -> String {
        " ".repeat(format!("static {ret} {}_{callback}(", self.name).len())
    }

    pub fn new(plan: &Plan, inline_handler: bool) -> CView {
        let base = View::new(plan);
        let windows = plan.lang == Lang::Winsock;
        CView {
            windows,
            socket_type: if windows { "SOCKET" } else { "int" },
            socket_error: if windows {
                "WSAGetLastError()"
            } else {
                "errno"
            },
            wsa_names: if windows { wsa_names() } else { Vec::new() },
            upper: plan.name.to_ascii_uppercase(),
            protocol_upper: if base.tcp { "TCP" } else { "UDP" },
            socktype: if base.tcp {
                "SOCK_STREAM"
            } else {
                "SOCK_DGRAM"
            },
            listener_nonblocking: u8::from(base.tcp || plan.model != Model::Blocking),
            inline_handler,
            handler_location: if inline_handler {
                "the section marked \"Handler callbacks\" below".to_string()
            } else {
                format!("{}_handler.h", plan.name)
            },
            base,
        }
    }
}

#[derive(Template)]
#[template(path = "c/blocking.c", escape = "none")]
struct BlockingC<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "c/poll.c", escape = "none")]
struct PollC<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "c/epoll.c", escape = "none")]
struct EpollC<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "c/epoll_client.c", escape = "none")]
struct EpollClientC<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "c/blocking_client.c", escape = "none")]
struct BlockingClientC<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "c/poll_client.c", escape = "none")]
struct PollClientC<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "c/io_uring_client.c", escape = "none")]
struct IoUringClientC<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "winsock/iocp_client.c", escape = "none")]
struct WinsockIocpClient<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "c/io_uring.c", escape = "none")]
struct IoUringC<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "winsock/blocking.c", escape = "none")]
struct WinsockBlocking<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "winsock/poll.c", escape = "none")]
struct WinsockPoll<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "winsock/iocp.c", escape = "none")]
struct WinsockIocp<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "winsock/Makefile", escape = "none")]
struct WinsockMakefile<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "winsock/CMakeLists.txt", escape = "none")]
struct CMakeLists<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "c/handler.h", escape = "none")]
struct HandlerH<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "c/Makefile", escape = "none")]
struct Makefile<'a> {
    v: &'a CView,
}

/// Libraries a program of this language and model links with, beyond libc and -pthread.
pub fn libraries(lang: Lang, model: Model) -> &'static [&'static str] {
    match (lang, model) {
        (Lang::Winsock, _) => &["-lws2_32"],
        (_, Model::IoUring) => &["-luring"],
        _ => &[],
    }
}

/// Winsock's error names from the `explain` catalogue, and the few more a server meets that
/// have no Linux twin there, so generated messages say WSAECONNRESET rather than only 10054.
fn wsa_names() -> Vec<(&'static str, i32)> {
    let mut names: Vec<(&'static str, i32)> = crate::troubleshoot::explain::CATALOGUE
        .iter()
        .filter_map(|e| e.winsock)
        .collect();
    names.extend([
        ("WSA_OPERATION_ABORTED", 995),
        ("WSA_IO_PENDING", 997),
        ("WSAEBADF", 10009),
        ("WSAEFAULT", 10014),
        ("WSAEINVAL", 10022),
        ("WSAENOTSOCK", 10038),
        ("WSAENOPROTOOPT", 10042),
        ("WSAEOPNOTSUPP", 10045),
        ("WSAEAFNOSUPPORT", 10047),
        ("WSAENETDOWN", 10050),
        ("WSAENETRESET", 10052),
        ("WSAECONNABORTED", 10053),
        ("WSAESHUTDOWN", 10058),
        ("WSASYSNOTREADY", 10091),
        ("WSAVERNOTSUPPORTED", 10092),
        ("WSANOTINITIALISED", 10093),
        ("WSAHOST_NOT_FOUND", 11001),
        ("WSATRY_AGAIN", 11002),
        ("WSANO_RECOVERY", 11003),
        ("WSANO_DATA", 11004),
    ]);
    names.sort_by_key(|&(_, number)| number);
    names.dedup_by_key(|&mut (_, number)| number);
    names
}

fn program_source(view: &CView, model: Model) -> Result<String, askama::Error> {
    if view.client {
        // validate() lets through only emitted models, and each has a client (backend::client_support).
        return match (view.windows, model) {
            (false, Model::Epoll) => EpollClientC { v: view }.render(),
            (_, Model::Poll) => PollClientC { v: view }.render(),
            (_, Model::Blocking) => BlockingClientC { v: view }.render(),
            (false, Model::IoUring) => IoUringClientC { v: view }.render(),
            (true, Model::Iocp) => WinsockIocpClient { v: view }.render(),
            _ => Err(askama::Error::Custom(
                format!("no {model} client template for this language").into(),
            )),
        };
    }
    match (view.windows, model) {
        (false, Model::Blocking) => BlockingC { v: view }.render(),
        (false, Model::Poll) => PollC { v: view }.render(),
        (false, Model::Epoll) => EpollC { v: view }.render(),
        (false, Model::IoUring) => IoUringC { v: view }.render(),
        (true, Model::Blocking) => WinsockBlocking { v: view }.render(),
        (true, Model::Poll) => WinsockPoll { v: view }.render(),
        (true, Model::Iocp) => WinsockIocp { v: view }.render(),
        // validate() only lets emitted models through; see backend::matrix::support.
        (windows, _) => Err(askama::Error::Custom(
            format!(
                "{} has no {model} template",
                if windows { "Winsock C" } else { "C" }
            )
            .into(),
        )),
    }
}

pub fn render(plan: &Plan, layout: Layout) -> Result<Vec<GeneratedFile>, askama::Error> {
    match layout {
        Layout::SingleFile => {
            let view = CView::new(plan, true);
            Ok(vec![GeneratedFile::generated(
                format!("{}.c", plan.name),
                tidy(program_source(&view, plan.model)?),
            )])
        }
        Layout::Project => {
            let view = CView::new(plan, false);
            let handler = GeneratedFile {
                path: format!("{}_handler.h", plan.name),
                contents: tidy(HandlerH { v: &view }.render()?),
                user_owned: view.user_owned_handler,
            };
            let source = GeneratedFile::generated(
                format!("{}.c", plan.name),
                tidy(program_source(&view, plan.model)?),
            );
            if view.windows {
                Ok(vec![
                    source,
                    handler,
                    GeneratedFile::generated(
                        "Makefile",
                        tidy(WinsockMakefile { v: &view }.render()?),
                    ),
                    GeneratedFile::generated(
                        "CMakeLists.txt",
                        tidy(CMakeLists { v: &view }.render()?),
                    ),
                ])
            } else {
                Ok(vec![
                    source,
                    handler,
                    GeneratedFile::generated("Makefile", tidy(Makefile { v: &view }.render()?)),
                ])
            }
        }
    }
}

/// Templates leave runs of blank lines where conditional blocks are skipped; one is enough.
fn tidy(text: String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    let trimmed = out.trim_start_matches('\n').trim_end_matches('\n');
    format!("{trimmed}\n")
}
