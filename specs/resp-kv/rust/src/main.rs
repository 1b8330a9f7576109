//! resp_kv: a Redis-compatible key-value server, written only against the handler contract.
//! It reads RESP2 arrays of bulk strings (what redis-cli and redis-benchmark send) and inline
//! commands (what a person types into nc), so values are binary-safe.

#[allow(dead_code)]
mod resp_kv;
mod store;

use resp_kv::{Ctx, Handler, MAX_MESSAGE};
use std::io::Write;
use store::Store;

const MAX_ARGS: usize = 64;

/// One parsed command: ranges into the input.
enum Parsed {
    /// The command's arguments and the bytes it spans.
    Command(Vec<std::ops::Range<usize>>, usize),
    Incomplete,
    Error(&'static str),
}

/// Reads a decimal number ending in CR LF at `*pos`.
fn number(data: &[u8], pos: &mut usize) -> Result<Option<i64>, ()> {
    let start = *pos;
    let digits_start = if data.get(start) == Some(&b'-') { start + 1 } else { start };
    let digits = data[digits_start.min(data.len())..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > 12 {
        return Err(());
    }
    let end = digits_start + digits;
    if end + 1 >= data.len() {
        return Ok(None);
    }
    if digits == 0 || &data[end..end + 2] != b"\r\n" {
        return Err(());
    }
    let text = std::str::from_utf8(&data[start..end]).map_err(|_| ())?;
    *pos = end + 2;
    text.parse().map(Some).map_err(|_| ())
}

fn parse(data: &[u8]) -> Parsed {
    if data[0] != b'*' {
        // An inline command: words separated by spaces, ending in LF.
        let Some(end) = data.iter().position(|&b| b == b'\n') else { return Parsed::Incomplete };
        let line = if end > 0 && data[end - 1] == b'\r' { end - 1 } else { end };
        let mut args = Vec::new();
        let mut at = 0;
        while at < line {
            while at < line && (data[at] == b' ' || data[at] == b'\t') {
                at += 1;
            }
            let start = at;
            while at < line && data[at] != b' ' && data[at] != b'\t' {
                at += 1;
            }
            if at > start {
                if args.len() == MAX_ARGS {
                    return Parsed::Error("too many arguments");
                }
                args.push(start..at);
            }
        }
        return Parsed::Command(args, end + 1);
    }
    let mut pos = 1;
    let count = match number(data, &mut pos) {
        Ok(None) => return Parsed::Incomplete,
        Ok(Some(n)) if (1..=MAX_ARGS as i64).contains(&n) => n as usize,
        Ok(Some(n)) if n > MAX_ARGS as i64 => return Parsed::Error("too many arguments"),
        _ => return Parsed::Error("invalid multibulk length"),
    };
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        match data.get(pos) {
            None => return Parsed::Incomplete,
            Some(b'$') => pos += 1,
            Some(_) => return Parsed::Error("expected '$'"),
        }
        let len = match number(data, &mut pos) {
            Ok(None) => return Parsed::Incomplete,
            Ok(Some(n)) if n >= 0 && n as u64 <= MAX_MESSAGE as u64 => n as usize,
            _ => return Parsed::Error("invalid bulk length"),
        };
        if data.len() - pos < len + 2 {
            return Parsed::Incomplete;
        }
        if &data[pos + len..pos + len + 2] != b"\r\n" {
            return Parsed::Error("bulk string not ended by CR LF");
        }
        args.push(pos..pos + len);
        pos += len + 2;
    }
    Parsed::Command(args, pos)
}

fn bulk(ctx: &mut Ctx<'_, Store>, value: &[u8]) {
    let _ = write!(ctx.out, "${}\r\n", value.len());
    let _ = ctx.write(value);
    let _ = ctx.write(b"\r\n");
}

/// Runs one command; false after QUIT.
fn run(ctx: &mut Ctx<'_, Store>, args: &[&[u8]]) -> bool {
    let Some(name) = args.first() else { return true };
    let name = name.to_ascii_uppercase();
    let arity_error = |ctx: &mut Ctx<'_, Store>| {
        let shown = String::from_utf8_lossy(&args[0][..args[0].len().min(32)]).into_owned();
        let _ = write!(ctx.out, "-ERR wrong number of arguments for '{shown}' command\r\n");
    };
    match (name.as_slice(), args.len()) {
        (b"PING", 1) => {
            let _ = ctx.write(b"+PONG\r\n");
        }
        (b"PING" | b"ECHO", 2) => bulk(ctx, args[1]),
        (b"SET", 3) => {
            ctx.worker.set(args[1], args[2]);
            let _ = ctx.write(b"+OK\r\n");
        }
        (b"GET", 2) => match ctx.worker.get(args[1]).map(<[u8]>::to_vec) {
            Some(value) => bulk(ctx, &value),
            None => {
                let _ = ctx.write(b"$-1\r\n");
            }
        },
        (b"DEL" | b"EXISTS", n) if n >= 2 => {
            let delete = name == b"DEL";
            let hits = args[1..]
                .iter()
                .filter(|key| if delete { ctx.worker.del(key) } else { ctx.worker.get(key).is_some() })
                .count();
            let _ = write!(ctx.out, ":{hits}\r\n");
        }
        (b"DBSIZE", 1) => {
            let len = ctx.worker.len();
            let _ = write!(ctx.out, ":{len}\r\n");
        }
        (b"FLUSHALL" | b"FLUSHDB", _) => {
            ctx.worker.clear();
            let _ = ctx.write(b"+OK\r\n");
        }
        (b"CONFIG", 3) if args[1].eq_ignore_ascii_case(b"GET") => {
            // redis-benchmark asks for `save` and `appendonly`: this server has neither.
            let _ = ctx.write(b"*2\r\n");
            bulk(ctx, args[2]);
            bulk(ctx, b"");
        }
        (b"COMMAND", _) => {
            let _ = ctx.write(b"*0\r\n"); // redis-cli asks for command docs: none
        }
        (b"QUIT", _) => {
            let _ = ctx.write(b"+OK\r\n");
            return false;
        }
        (b"PING" | b"ECHO" | b"SET" | b"GET" | b"DEL" | b"EXISTS" | b"DBSIZE", _) => arity_error(ctx),
        _ => {
            let shown = String::from_utf8_lossy(&args[0][..args[0].len().min(32)]).into_owned();
            let _ = write!(ctx.out, "-ERR unknown command '{shown}'\r\n");
        }
    }
    true
}

struct Client;

impl Handler for Client {
    type Worker = Store;

    fn open(_ctx: &mut Ctx<'_, Store>) -> Client {
        Client
    }

    /// Every complete command is run; a partial one stays unconsumed and comes again with
    /// the next bytes. While the output is congested, parsing stops: pipelining clients are
    /// paced by how fast they read replies.
    fn on_data(&mut self, input: &[u8], ctx: &mut Ctx<'_, Store>) -> usize {
        let mut used = 0;
        while used < input.len() && !ctx.congested() {
            let data = &input[used..];
            match parse(data) {
                Parsed::Incomplete => break,
                Parsed::Error(error) => {
                    let _ = write!(ctx.out, "-ERR Protocol error: {error}\r\n");
                    ctx.close(); // as redis does: the stream cannot be resynchronised
                    return input.len();
                }
                Parsed::Command(ranges, spanned) => {
                    used += spanned;
                    let args: Vec<&[u8]> = ranges.into_iter().map(|r| &data[r]).collect();
                    if !run(ctx, &args) {
                        ctx.close();
                        return input.len();
                    }
                }
            }
        }
        used
    }
}

fn main() -> std::process::ExitCode {
    resp_kv::main_with::<Client>()
}
