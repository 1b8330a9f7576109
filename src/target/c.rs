//! C for POSIX/Linux: one askama template per model, sharing partials for the handler, socket
//! setup, the connection state machine and `main`.

use askama::Template;

use super::view::View;
use crate::plan::{Model, Plan};
use crate::render::{GeneratedFile, Layout};

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
        CView {
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
#[template(path = "c/io_uring.c", escape = "none")]
struct IoUringC<'a> {
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

/// Libraries a program of this model links with, beyond libc and -pthread.
pub fn libraries(model: Model) -> &'static [&'static str] {
    match model {
        Model::IoUring => &["-luring"],
        _ => &[],
    }
}

fn server_source(view: &CView, model: Model) -> Result<String, askama::Error> {
    match model {
        Model::Blocking => BlockingC { v: view }.render(),
        Model::Poll => PollC { v: view }.render(),
        Model::Epoll => EpollC { v: view }.render(),
        Model::IoUring => IoUringC { v: view }.render(),
        // validate() only lets emitted models through; see target::lang::support.
        Model::Iocp => Err(askama::Error::Custom(
            format!("C has no {model} template").into(),
        )),
    }
}

pub fn render(plan: &Plan, layout: Layout) -> Result<Vec<GeneratedFile>, askama::Error> {
    match layout {
        Layout::SingleFile => {
            let view = CView::new(plan, true);
            Ok(vec![GeneratedFile::generated(
                format!("{}.c", plan.name),
                tidy(server_source(&view, plan.model)?),
            )])
        }
        Layout::Project => {
            let view = CView::new(plan, false);
            let handler = GeneratedFile {
                path: format!("{}_handler.h", plan.name),
                contents: tidy(HandlerH { v: &view }.render()?),
                user_owned: view.user_owned_handler,
            };
            Ok(vec![
                GeneratedFile::generated(
                    format!("{}.c", plan.name),
                    tidy(server_source(&view, plan.model)?),
                ),
                handler,
                GeneratedFile::generated("Makefile", tidy(Makefile { v: &view }.render()?)),
            ])
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
