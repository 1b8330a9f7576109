//! http_hello: an HTTP/1.1 keep-alive server written only against the handler contract.
//!   GET /          "Hello, world!\n"
//!   GET /bytes/N   N bytes (up to 1 GiB) produced by on_writable as the client reads them
//!   POST /echo     the request body back (Content-Length bodies up to 1 MiB)
//! Requests may be pipelined and split across reads; HEAD works everywhere GET does.
//! HTTP/1.1 keeps the connection unless "Connection: close"; HTTP/1.0 closes unless
//! "Connection: keep-alive" (ab -k).

#[allow(dead_code)]
mod http_hello;

use http_hello::{Ctx, Handler};
use std::io::Write;

const MAX_HEADER: usize = 16 * 1024;
const MAX_BODY: usize = 1 << 20;

/// Requests answered by this worker.
#[derive(Default)]
struct Worker {
    requests: u64,
}

#[derive(Default)]
struct Http {
    /// Body bytes of /bytes/N still to produce.
    stream_left: u64,
    stream_pos: u64,
    /// Close once the current response is out.
    close_after: bool,
}

/// What the headers of one request say.
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    http10: bool,
    keep_alive: bool,
}

fn respond(ctx: &mut Ctx<'_, Worker>, request: &Request<'_>, status: &str, body: &[u8], send_body: bool) {
    let connection = match (request.keep_alive, request.http10) {
        (false, _) => "Connection: close\r\n",
        (true, true) => "Connection: keep-alive\r\n",
        (true, false) => "",
    };
    let _ = write!(ctx.out, "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{connection}\r\n", body.len());
    if send_body && request.method != "HEAD" {
        let _ = ctx.write(body);
    }
}

/// An error response after which the connection closes.
fn refuse(ctx: &mut Ctx<'_, Worker>, status: &str, body: &[u8]) {
    let request = Request { method: "GET", path: "", http10: false, keep_alive: false };
    respond(ctx, &request, status, body, true);
}

impl Http {
    fn request(&mut self, ctx: &mut Ctx<'_, Worker>, request: &Request<'_>, body: &[u8]) {
        ctx.worker.requests += 1;
        let readable = matches!(request.method, "GET" | "HEAD");
        let bytes = request.path.strip_prefix("/bytes/").and_then(|n| n.parse::<u64>().ok()).filter(|&n| n <= 1 << 30);
        match (request.method, request.path, bytes) {
            (_, "/", _) if readable => respond(ctx, request, "200 OK", b"Hello, world!\n", true),
            (_, _, Some(n)) if readable => {
                let _ = write!(ctx.out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {n}\r\n");
                let _ = ctx.write(match (request.keep_alive, request.http10) {
                    (false, _) => b"Connection: close\r\n\r\n" as &[u8],
                    (true, true) => b"Connection: keep-alive\r\n\r\n",
                    (true, false) => b"\r\n",
                });
                if request.method == "GET" && n > 0 {
                    self.stream_left = n;
                    self.stream_pos = 0;
                    ctx.pause_input(); // pipelined requests wait unread until the body is sent
                    ctx.want_writable(true);
                }
            }
            ("POST", "/echo", _) => respond(ctx, request, "200 OK", body, true),
            ("POST", _, _) => respond(ctx, request, "404 Not Found", b"not found\n", true),
            _ if readable => respond(ctx, request, "404 Not Found", b"not found\n", true),
            _ => respond(ctx, request, "405 Method Not Allowed", b"method not allowed\n", true),
        }
    }
}

impl Handler for Http {
    type Worker = Worker;

    fn open(_ctx: &mut Ctx<'_, Worker>) -> Http {
        Http::default()
    }

    /// Parses and answers every complete request; a request whose body has not fully
    /// arrived stays unconsumed and comes again with the next bytes.
    fn on_data(&mut self, input: &[u8], ctx: &mut Ctx<'_, Worker>) -> usize {
        let mut used = 0;
        while used < input.len() && self.stream_left == 0 && !self.close_after && !ctx.congested() {
            let data = &input[used..];
            let search = &data[..data.len().min(MAX_HEADER)];
            let Some(end) = search.windows(4).position(|w| w == b"\r\n\r\n") else {
                if data.len() >= MAX_HEADER {
                    refuse(ctx, "431 Request Header Fields Too Large", b"headers too large\n");
                    self.close_after = true;
                }
                break;
            };
            let head_len = end + 4;
            let head = String::from_utf8_lossy(&data[..end]);
            let mut lines = head.split("\r\n");
            let mut words = lines.next().unwrap_or("").split(' ');
            let (method, path, version) = (words.next().unwrap_or(""), words.next().unwrap_or(""), words.next().unwrap_or(""));
            let (mut content_length, mut close_token, mut keep_token) = (0usize, false, false);
            for line in lines {
                let Some((name, value)) = line.split_once(':') else { continue };
                let value = value.trim().to_ascii_lowercase();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => content_length = value.parse().unwrap_or(usize::MAX),
                    "transfer-encoding" => {
                        refuse(ctx, "501 Not Implemented", b"chunked bodies are not supported\n");
                        self.close_after = true;
                    }
                    "connection" => {
                        close_token |= value.contains("close");
                        keep_token |= value.contains("keep-alive");
                    }
                    _ => {}
                }
            }
            if self.close_after {
                break;
            }
            if content_length > MAX_BODY {
                refuse(ctx, "413 Content Too Large", b"body too large\n");
                self.close_after = true;
                break;
            }
            if data.len() - head_len < content_length {
                break; // the body is still arriving
            }
            let http10 = version == "HTTP/1.0";
            let keep_alive = if http10 { keep_token && !close_token } else { !close_token };
            let request = Request { method, path, http10, keep_alive };
            self.request(ctx, &request, &data[head_len..head_len + content_length]);
            used += head_len + content_length;
            self.close_after |= !keep_alive;
        }
        if self.close_after && self.stream_left == 0 {
            ctx.close(); // after the response; unread input is drained, not reset
            return input.len();
        }
        used
    }

    /// Streams the body of /bytes/N as the client reads it.
    fn on_writable(&mut self, ctx: &mut Ctx<'_, Worker>) {
        let mut chunk = [0u8; 16384];
        while self.stream_left > 0 && !ctx.congested() {
            let n = self.stream_left.min(chunk.len() as u64) as usize;
            for (i, byte) in chunk[..n].iter_mut().enumerate() {
                *byte = b'a' + ((self.stream_pos + i as u64) % 26) as u8;
            }
            if ctx.write(&chunk[..n]).is_err() {
                return;
            }
            self.stream_pos += n as u64;
            self.stream_left -= n as u64;
        }
        if self.stream_left == 0 {
            if self.close_after {
                ctx.close();
            } else {
                ctx.resume_input(); // the next pipelined request, if one is waiting
            }
        }
    }

    fn on_eof(&mut self, ctx: &mut Ctx<'_, Worker>) {
        self.close_after = true;
        if self.stream_left == 0 {
            ctx.close();
        }
    }
}

fn main() -> std::process::ExitCode {
    http_hello::main_with::<Http>()
}
