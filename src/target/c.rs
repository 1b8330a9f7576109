//! C for POSIX/Linux: one askama template per model, sharing partials for the handler, socket
//! setup, the connection state machine and `main`.

use askama::Template;

use crate::plan::{Handler, Model, Plan};
use crate::render::{GeneratedFile, Layout};
use crate::spec::Keyword;

/// Everything the C templates read, precomputed from the Plan so templates stay declarative.
pub struct CView {
    pub version: &'static str,
    pub spec_file: String,
    pub name: String,
    pub upper: String,
    pub protocol_upper: &'static str,
    pub tcp: bool,
    pub model: &'static str,
    pub handler: &'static str,
    /// The unit that owns state: a connection for TCP, the server for UDP.
    pub unit: &'static str,
    pub address: String,
    pub port: u16,
    pub socktype: &'static str,
    pub listener_nonblocking: u8,
    pub buffer_size: u32,
    pub output_buffer: u32,
    pub backlog: u32,
    pub max_connections: u32,
    pub idle_timeout_ms: u32,
    pub workers: u32,
    pub max_events: u32,
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub nodelay: bool,
    pub recv_buffer: Option<u32>,
    pub send_buffer: Option<u32>,
    pub keepalive: bool,
    pub keepalive_idle_s: u16,
    pub keepalive_interval_s: u16,
    pub keepalive_count: u8,
    pub linger: bool,
    pub linger_s: u16,
    pub uses_int_options: bool,
    /// Single-file output carries the handler inline; a project includes NAME_handler.h.
    pub inline_handler: bool,
    /// `handler: custom` makes the handler file the user's own.
    pub user_owned_handler: bool,
    pub handler_location: String,
    /// Continuation indent that lines up the second line of `on_data`'s parameters.
    pub on_data_indent: String,
}

impl CView {
    pub fn new(plan: &Plan, inline_handler: bool) -> CView {
        let tcp = plan.is_tcp();
        let keepalive = plan.socket.keepalive;
        let user_owned_handler = plan.handler == Handler::Custom;
        let on_data_prefix = format!("static int {}_on_data(", plan.name);
        CView {
            version: env!("CARGO_PKG_VERSION"),
            spec_file: plan.spec_file.clone(),
            name: plan.name.clone(),
            upper: plan.name.to_ascii_uppercase(),
            protocol_upper: if tcp { "TCP" } else { "UDP" },
            tcp,
            model: plan.model.as_str(),
            handler: plan.handler.as_str(),
            unit: if tcp { "connection" } else { "server" },
            address: plan.address_text(),
            port: plan.port,
            socktype: if tcp { "SOCK_STREAM" } else { "SOCK_DGRAM" },
            listener_nonblocking: u8::from(tcp || plan.model != Model::Blocking),
            buffer_size: plan.io.buffer_size,
            output_buffer: plan.io.output_buffer,
            backlog: plan.server.backlog,
            max_connections: plan.server.max_connections,
            idle_timeout_ms: plan.server.idle_timeout_ms,
            workers: plan.server.workers,
            max_events: plan.io.max_events,
            reuseaddr: plan.socket.reuseaddr,
            reuseport: plan.socket.reuseport,
            nodelay: plan.socket.nodelay,
            recv_buffer: plan.socket.recv_buffer,
            send_buffer: plan.socket.send_buffer,
            keepalive: keepalive.is_some(),
            keepalive_idle_s: keepalive.map_or(0, |k| k.idle_s),
            keepalive_interval_s: keepalive.map_or(0, |k| k.interval_s),
            keepalive_count: keepalive.map_or(0, |k| k.count),
            linger: plan.socket.linger_s.is_some(),
            linger_s: plan.socket.linger_s.unwrap_or(0),
            uses_int_options: plan.socket.reuseaddr
                || plan.socket.reuseport
                || plan.socket.recv_buffer.is_some()
                || plan.socket.send_buffer.is_some()
                || plan.socket.nodelay
                || keepalive.is_some(),
            inline_handler,
            user_owned_handler,
            handler_location: if inline_handler {
                "the section marked \"Handler callbacks\" below".to_string()
            } else {
                format!("{}_handler.h", plan.name)
            },
            on_data_indent: " ".repeat(on_data_prefix.len()),
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
#[template(path = "c/handler.h", escape = "none")]
struct HandlerH<'a> {
    v: &'a CView,
}

#[derive(Template)]
#[template(path = "c/Makefile", escape = "none")]
struct Makefile<'a> {
    v: &'a CView,
}

fn server_source(view: &CView, model: Model) -> Result<String, askama::Error> {
    match model {
        Model::Blocking => BlockingC { v: view }.render(),
        Model::Poll => PollC { v: view }.render(),
        Model::Epoll => EpollC { v: view }.render(),
        // validate() only lets emitted models through; see target::lang::support.
        Model::IoUring | Model::Iocp => Err(askama::Error::Custom(
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
