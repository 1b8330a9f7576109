use std::io::{ {{ v.io_imports }} };
use std::net::{ {{ v.net_imports }} };
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
{%- if v.uses_io_uring %}
use io_uring::{cqueue, opcode, squeue, types, IoUring};
{%- endif %}
{%- if !v.time_imports.is_empty() %}
use std::time::{ {{ v.time_imports }} };
{%- endif %}

/// Writes one line to stderr. A stderr nobody reads (a pipe whose reader left) must not stop
/// the {% if v.client %}client{% else %}server{% endif %}, and `eprintln!` would panic there.
{% raw %}macro_rules! log_line {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stderr(), $($arg)*);
    }};
}{% endraw %}


/// The symbolic name of the errno values sockets meet, for messages a search can find.
fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::EAGAIN => "EAGAIN",
        libc::EINTR => "EINTR",
        libc::ECONNRESET => "ECONNRESET",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::EPIPE => "EPIPE",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::ENOBUFS => "ENOBUFS",
        libc::ENOMEM => "ENOMEM",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EACCES => "EACCES",
        libc::EINVAL => "EINVAL",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EINPROGRESS => "EINPROGRESS",
        _ => return None,
    })
}

/// "ECONNREFUSED (Connection refused)": the name a search finds, and the text a person reads.
fn describe_error(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    let text = text.strip_suffix(&format!(" (os error {errno})")).unwrap_or(&text).to_string();
    format!("{} ({text})", errno_name(errno).unwrap_or("unknown error"))
}

{%- if v.log_ops %}
/// `log: ops`: one line per socket operation on stderr, `op=NAME fd=N key=value...`.
{% raw %}macro_rules! op_log {
    ($($arg:tt)*) => {{
        log_line!($($arg)*);
    }};
}{% endraw %}

/// `ok`, or the errno's name for a failed operation.
fn op_result<T>(result: &io::Result<T>) -> String {
    let Err(error) = result else { return "ok".to_string() };
    match error.raw_os_error() {
        Some(n) => errno_name(n).map_or_else(|| format!("errno{n}"), str::to_string),
        None => error.kind().to_string(),
    }
}
{%- else %}
/// Socket operations are logged only with `log: ops` in the spec; here the macro expands to
/// nothing.
macro_rules! op_log {
    ($($arg:tt)*) => {};
}
{%- endif %}

/// Which sockgen and which spec produced this code; change the spec and regenerate rather than
/// editing it by hand.
pub const GENERATED_BY: &str = "sockgen {{ v.version }} from {{ v.spec_file }} (--lang rust --model {{ v.model }})";
/// The program name used in messages.
pub const PROGRAM: &str = "{{ v.name }}";
{%- if v.client %}
/// The server to connect to, a name or an address literal; `-a HOST` overrides it.
pub const HOST: &str = "{{ v.address }}";
/// Its port; `-p PORT` overrides it (0: the command line must give one).
pub const PORT: u16 = {{ v.port }};
{%- else %}
/// Default bind address; `-a ADDRESS` overrides it.
pub const ADDRESS: IpAddr = IpAddr::{{ v.address_expr }};
/// Default port; `-p PORT` overrides it, and 0 lets the kernel choose.
pub const PORT: u16 = {{ v.port }};
{%- endif %}
/// Bytes read per receive call.
pub const BUFFER_SIZE: usize = {{ v.buffer_size }};
{%- if v.tcp %}
/// Output high-water mark per connection: above it the peer is not read; reading resumes
/// below half of it.
pub const OUTPUT_BUFFER: usize = {{ v.output_buffer }};
/// A connection queuing more output than this is closed (`CloseReason::OutputLimit`).
pub const OUTPUT_LIMIT: u64 = {{ v.output_limit }};
/// The longest message: a handler that is not pacing itself may leave this much input
/// unconsumed (`CloseReason::InputLimit` past it).
pub const MAX_MESSAGE: usize = {{ v.max_message }};
{%- if v.framing_overhead > 0 %}
/// Most input left unconsumed while the handler is not pacing itself: a message of
/// `MAX_MESSAGE` and the framing bytes that may sit beside it before its end can be seen, so
/// the limit is on the message whatever the segmentation.
const INPUT_LIMIT: usize = MAX_MESSAGE + {{ v.framing_overhead }};
{%- else %}
/// Most input left unconsumed while the handler is not pacing itself.
const INPUT_LIMIT: usize = MAX_MESSAGE;
{%- endif %}
/// Most input one call to the handler is given: what it may leave unconsumed and one receive.
/// A completion model can hold more (what arrived while the handler paced itself); it is
/// presented in windows of this size, so every model draws the input limit in the same place.
const PRESENT_MAX: usize = INPUT_LIMIT + BUFFER_SIZE;
/// Lingering close: how long a closing connection reads and drops input after its half-close.
pub const LINGER: Duration = Duration::from_millis({{ v.linger_ms }});
{%- else %}
/// Most bytes of one reply datagram.
pub const OUTPUT_BUFFER: usize = {{ v.output_buffer }};
{%- endif %}
{%- if v.framing == FramingKind::Delimiter %}
/// The separator of framed messages.
pub const DELIMITER: [u8; {{ v.delimiter_len }}] = [{{ v.delimiter_bytes }}];
{%- endif %}
{%- if v.tcp && v.thread_per_connection %}
/// Stack of each connection thread.
pub const STACK_SIZE: usize = {{ v.stack_size }};
{%- endif %}
{%- if v.client %}
/// Connections quiet for this long are closed (and, being a failed attempt, opened again).
pub const IDLE_TIMEOUT: Option<Duration> = {% if v.idle_timeout_ms > 0 %}Some(Duration::from_millis({{ v.idle_timeout_ms }})){% else %}None{% endif %};
{%- else %}
{%- if v.tcp %}
/// listen(2) backlog.
pub const BACKLOG: i32 = {{ v.backlog }};
/// Open connections per worker; at the limit new peers wait in the backlog.
pub const MAX_CONNECTIONS: usize = {{ v.max_connections }};
/// Connections quiet for this long are closed.
pub const IDLE_TIMEOUT: Option<Duration> = {% if v.idle_timeout_ms > 0 %}Some(Duration::from_millis({{ v.idle_timeout_ms }})){% else %}None{% endif %};
{%- endif %}
/// Event loops, each on its own thread and socket.
pub const WORKERS: usize = {{ v.workers }};
{%- endif %}
{%- if v.uses_epoll %}
/// Events taken per epoll_wait.
pub const MAX_EVENTS: usize = {{ v.max_events }};
{%- endif %}

