use std::io::{ {{ v.io_imports }} };
use std::net::{ {{ v.net_imports }} };
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
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

{%- if v.log_ops || v.client %}

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
{%- endif %}

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

{%- if v.tcp || !v.client %}
{% include "rust/contract.rs" %}
{%- endif %}

{%- if !v.client %}
/// Where to listen, from the spec and the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub address: IpAddr,
    pub port: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config { address: ADDRESS, port: PORT }
    }
}

impl Config {
    /// Parses `[-a ADDRESS] [-p PORT] [-h]`; Err carries the message for the user.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
        let mut config = Config::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-a" => {
                    let value = args.next().ok_or("-a needs an address")?;
                    config.address = value
                        .parse()
                        .map_err(|_| format!("invalid address '{value}' (expected an IPv4 or IPv6 literal)"))?;
                }
                "-p" => {
                    let value = args.next().ok_or("-p needs a port")?;
                    config.port = value.parse().map_err(|_| format!("invalid port '{value}' (expected 0 to 65535)"))?;
                }
                "-h" | "--help" => return Err(format!("usage: {PROGRAM} [-a ADDRESS] [-p PORT]")),
                other => return Err(format!("unexpected argument '{other}'; usage: {PROGRAM} [-a ADDRESS] [-p PORT]")),
            }
        }
        Ok(config)
    }
}
{%- endif %}

/// Turns a -1 from a system call into the OS error.
fn cvt(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// The write end of the stop pipe, for the signal handler (which can only use statics).
static STOP_PIPE: AtomicI32 = AtomicI32::new(-1);

/// Shutdown uses the self-pipe trick: the handler writes one byte and every loop watches the
/// read end, which nobody drains, so all workers see it and no wakeup is lost.
extern "C" fn on_stop_signal(_signal: libc::c_int) {
    let fd = STOP_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) and errno access are async-signal-safe; the descriptor stays open for
        // the life of the process.
        unsafe {
            let saved = *libc::__errno_location();
            libc::write(fd, b"x".as_ptr().cast(), 1);
            *libc::__errno_location() = saved;
        }
    }
}

/// Creates the stop pipe and routes SIGINT and SIGTERM to it; returns the read end.
fn install_stop_signal() -> io::Result<OwnedFd> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills the two-element array it is given.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
    // SAFETY: pipe2 just returned this descriptor; nothing else owns it.
    let read_end = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    STOP_PIPE.store(fds[1], Ordering::Relaxed);
    let handler: extern "C" fn(libc::c_int) = on_stop_signal;
    // SAFETY: sigaction gets a zeroed, fully initialised struct whose handler only calls
    // async-signal-safe functions.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        cvt(libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()))?;
        cvt(libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut()))?;
    }
    Ok(read_end)
}

/// Descriptors 0, 1 and 2 may be closed by whoever started us (a supervisor, `<&- >&-`): the
/// stop pipe or a socket would then take their numbers, and the ready line or a log line
/// would be written into it. They are pointed at /dev/null first.
fn open_standard_descriptors() -> io::Result<()> {
    loop {
        // SAFETY: open(2) gets a NUL-terminated path.
        let fd = cvt(unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) })?;
        if fd > 2 {
            // SAFETY: a descriptor above 2 that open(2) just returned: ours alone, closed once.
            unsafe { libc::close(fd) };
            return Ok(());
        }
    }
}
{%- if v.tcp %}

/// Raises the soft limit on open descriptors toward what the spec needs (every worker's
/// `MAX_CONNECTIONS` and some slack), as redis does; says so once when the hard limit is lower.
fn raise_descriptor_limit() {
    let wanted = ({% if v.client %}options().connections{% else %}WORKERS * MAX_CONNECTIONS{% endif %} + 64) as libc::rlim_t;
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into a live `rlimit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 || limit.rlim_cur >= wanted {
        return;
    }
    limit.rlim_cur = if limit.rlim_max != libc::RLIM_INFINITY && limit.rlim_max < wanted { limit.rlim_max } else { wanted };
    // SAFETY: setrlimit reads a live, initialised `rlimit`.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        log_line!("{PROGRAM}: setrlimit RLIMIT_NOFILE: {}", io::Error::last_os_error());
    } else if limit.rlim_cur < wanted {
        log_line!(
            "{PROGRAM}: open files limited to {} by the hard limit; {wanted} would allow {% if v.client %}every connection of the pool{% else %}MAX_CONNECTIONS on every worker{% endif %}",
            limit.rlim_cur
        );
    }
}
{%- endif %}

{%- if !v.client %}

/// Stops every loop, as SIGTERM would (one failed worker stops the server).
fn request_stop() {
    on_stop_signal(0);
}
{%- endif %}

{%- if !v.uses_epoll %}

/// Waits for readiness on `fds`; Ok(0) on timeout. `timeout_ms` < 0 waits forever.
fn sys_poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `fds` is an exclusively borrowed slice of pollfd, and poll gets its length.
    let n = cvt(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) })?;
    Ok(n as usize)
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd { fd, events, revents: 0 }
}
{%- endif %}

/// Sets an integer socket option.
fn set_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the option value is a live `c_int` and its exact size is passed.
    let result = cvt(unsafe { libc::setsockopt(fd, level, name, (&value as *const libc::c_int).cast(), size) }).map(drop);
    op_log!("{PROGRAM}: op=setsockopt fd={fd} level={level} option={name} value={value} result={}", op_result(&result));
    result
}
{%- if v.tcp %}

/// SO_LINGER with the given seconds (0: close resets the connection).
fn set_linger(fd: RawFd, seconds: libc::c_int) -> io::Result<()> {
    let value = libc::linger { l_onoff: 1, l_linger: seconds };
    let size = std::mem::size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: the option value is a live `linger` struct and its exact size is passed.
    cvt(unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER, (&value as *const libc::linger).cast(), size) }).map(drop)
}
{%- endif %}

{%- if !v.client %}
/// Creates the server socket with the spec's options, binds and (TCP) listens.
fn open_socket(addr: SocketAddr, nonblocking: bool) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv6() { libc::AF_INET6 } else { libc::AF_INET };
    let flags = libc::SOCK_CLOEXEC | if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: socket(2) takes plain integers.
    let socket = cvt(unsafe { libc::socket(domain, {{ v.socktype }} | flags, 0) });
    op_log!("{PROGRAM}: op=socket fd={} domain={domain} result={}", socket.as_ref().map_or(-1, |fd| *fd), op_result(&socket));
    // SAFETY: socket(2) just returned this descriptor; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(socket?) };
    let raw = fd.as_raw_fd();
    if addr.is_ipv6() {
        // Whether `::` also takes IPv4 peers is decided here, not left to a sysctl.
        set_int_option(raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, {% if v.v6only %}1{% else %}0{% endif %})?;
    }
{%- if v.tcp %}
    // TCP urgent data ("out of band") is read inline as ordinary bytes; accepted connections
    // inherit this. The handler sees every byte the peer sent, in order.
    set_int_option(raw, libc::SOL_SOCKET, libc::SO_OOBINLINE, 1)?;
{%- endif %}
{%- if v.reuseaddr %}
    set_int_option(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
{%- endif %}
{%- if v.reuseport %}
    set_int_option(raw, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
{%- endif %}
{%- if let Some(bytes) = v.recv_buffer %}
    set_int_option(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, {{ bytes }})?;
{%- endif %}
{%- if let Some(bytes) = v.send_buffer %}
    set_int_option(raw, libc::SOL_SOCKET, libc::SO_SNDBUF, {{ bytes }})?;
{%- endif %}
{%- if v.tcp && !v.client && (v.nodelay || v.keepalive || v.linger) %}
    // Accepted connections inherit these from the listener on Linux (it is cloned), so they
    // are set once here, not once per connection.
    configure_connection(raw)?;
{%- endif %}
    let bound = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            let size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            // SAFETY: bind gets a live sockaddr_in and its exact size.
            unsafe { libc::bind(raw, (&sin as *const libc::sockaddr_in).cast(), size) }
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            let size = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            // SAFETY: bind gets a live sockaddr_in6 and its exact size.
            unsafe { libc::bind(raw, (&sin6 as *const libc::sockaddr_in6).cast(), size) }
        }
    };
    op_log!(
        "{PROGRAM}: op=bind fd={raw} address={addr} result={}",
        op_result(&if bound < 0 { Err(io::Error::last_os_error()) } else { Ok(()) })
    );
    if bound < 0 {
        let error = io::Error::last_os_error();
        return Err(io::Error::new(error.kind(), format!("bind {} port {}: {error}", addr.ip(), addr.port())));
    }
{%- if v.tcp %}
    // SAFETY: listen(2) takes plain integers.
    let listening = cvt(unsafe { libc::listen(raw, BACKLOG) });
    op_log!("{PROGRAM}: op=listen fd={raw} backlog={BACKLOG} result={}", op_result(&listening));
    listening?;
{%- endif %}
    Ok(fd)
}
{%- endif %}
{%- if v.tcp %}

{%- if v.client || v.nodelay || v.keepalive || v.linger %}

/// Options that belong to each {% if v.client %}connection{% else %}accepted connection{% endif %}.
fn configure_connection(raw: RawFd) -> io::Result<()> {
{%- if v.nodelay %}
    set_int_option(raw, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
{%- endif %}
{%- if v.keepalive %}
    set_int_option(raw, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    set_int_option(raw, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, {{ v.keepalive_idle_s }})?;
    set_int_option(raw, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, {{ v.keepalive_interval_s }})?;
    set_int_option(raw, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, {{ v.keepalive_count }})?;
{%- endif %}
{%- if v.linger %}
    set_linger(raw, {{ v.linger_s }})?;
{%- endif %}
{%- if !v.nodelay && !v.keepalive && !v.linger %}
    let _ = raw;
{%- endif %}
    Ok(())
}
{%- endif %}

{%- if !v.client %}

/// What `accept_connection` found.
enum Accepted {
    Conn(TcpStream, SocketAddr),
    /// Nothing to take now.
    None,
    /// Out of descriptors or memory: stop accepting for `ACCEPT_PAUSE` (nginx's answer),
    /// because the listener stays readable and would otherwise spin the loop.
    Exhausted,
}

/// How long a worker stops accepting after running out of descriptors or memory.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Connections refused for lack of descriptors or memory, counted by every worker.
static ACCEPT_SHED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Accepts one connection. When the process is out of descriptors the spare one is given up
/// to accept and close the waiting peer (libuv's trick). Another worker may take the freed
/// number before the accept does: the pause after `Exhausted` makes that harmless, and the
/// spare is taken again at the next accept once a descriptor is free.
fn accept_connection(listener: &TcpListener, spare: &mut Option<std::fs::File>) -> Accepted {
    if spare.is_none() {
        *spare = std::fs::File::open("/dev/null").ok();
    }
    loop {
        let accepted = listener.accept();
        op_log!(
            "{PROGRAM}: op=accept fd={} conn={} peer={} result={}",
            listener.as_raw_fd(),
            accepted.as_ref().map_or(-1, |(s, _)| s.as_raw_fd()),
            accepted.as_ref().map_or("-".to_string(), |(_, p)| p.to_string()),
            op_result(&accepted)
        );
        match accepted {
            Ok((stream, peer)) => match stream.set_nonblocking(true) {
                Ok(()) => return Accepted::Conn(stream, peer),
                Err(_) => continue,
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::ConnectionAborted => continue,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) => {
                let refused = if spare.take().is_some() { listener.accept().ok() } else { None };
                if let Some((refused, _)) = refused {
                    // dup2 closes the refused peer's socket and makes its number the new spare
                    // in one step (a second reference to the listener), so no other worker can
                    // take the number in between.
                    let fd = std::os::fd::IntoRawFd::into_raw_fd(refused);
                    // SAFETY: both descriptors are ours; on success `fd` refers to the listener
                    // and the File owns it, on failure it is closed here.
                    unsafe {
                        if libc::dup2(listener.as_raw_fd(), fd) >= 0 {
                            *spare = Some(std::fs::File::from_raw_fd(fd));
                        } else {
                            libc::close(fd);
                        }
                    }
                }
                if spare.is_none() {
                    *spare = std::fs::File::open("/dev/null").ok();
                }
                let what = if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                    "out of file descriptors: refused a connection"
                } else {
                    "out of memory: refused a connection"
                };
                let mut count = ACCEPT_SHED.fetch_add(1, Ordering::Relaxed);
                log_occurrence(what, &mut count);
                return Accepted::Exhausted;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Accepted::None,
            Err(e) => {
                log_line!("{PROGRAM}: accept: {e}");
                return Accepted::None;
            }
        }
    }
}
{%- endif %}
{%- endif %}

{%- if !v.tcp && !v.thread_per_connection %}

/// The sender's address as the kernel wrote it.
fn socket_addr_from(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in, which fits in a sockaddr_storage.
            let sin: &libc::sockaddr_in = unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::new(ip.into(), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 = unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(ip, u16::from_be(sin6.sin6_port), sin6.sin6_flowinfo, sin6.sin6_scope_id)))
        }
        _ => None,
    }
}
{%- endif %}

/// Logs the 1st, 2nd, 4th, 8th... occurrence, so a hostile peer cannot flood the log.
fn log_occurrence(what: &str, count: &mut u64) {
    *count += 1;
    if count.is_power_of_two() {
        log_line!("{PROGRAM}: {what} ({count} so far)");
    }
}
