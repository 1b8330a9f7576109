{%- if v.tcp || !v.client %}
{% include "rust/contract.rs" %}
{%- endif %}


/// Why a handler's `start_worker` failed: any error (`?` converts `io::Error` and friends; a
/// message is `Err("...".into())`).
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// A worker's start: its handler's error becomes the worker's, named, so the program says
/// which worker could not start.
fn worker_started<T>(index: usize, started: Result<T, StartError>) -> io::Result<T> {
    started.map_err(|e| io::Error::other(format!("worker {index}: {e}")))
}
{{ v.runtime_close }}
{% include "rust/command_line.rs" %}
{%- if !v.client %}

/// The server's options as the command line set them (the spec's values by default): where to
/// listen{% if !v.options.is_empty() %}, and the spec's own options{% endif %}.
#[derive(Debug, Clone, {% if v.options_copy %}Copy, {% endif %}PartialEq, Eq)]
pub struct Options {
    /// `-a`: the IPv4 or IPv6 literal to listen on.
    pub address: IpAddr,
    /// `-p`.
    pub port: u16,
{%- include "rust/option_fields.rs" %}
}

/// The name earlier versions gave [`Options`].
pub type Config = Options;

impl Default for Options {
    fn default() -> Self {
        Options {
            address: ADDRESS,
            port: PORT,
{%- include "rust/option_defaults.rs" %}
        }
    }
}

impl Options {
    /// Parses `[-a ADDRESS] [-p PORT]`, the spec's options and `-h`; Err carries the message
    /// for the user (the help text, starting with `usage`, for -h).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = next_option(&mut args, "ap")? {
            match arg {
                Arg::Help => return Err(HELP.to_string()),
                Arg::Long(name, inline) => options
                    .take_program_option(&name, inline, &mut args)
                    .map_err(|e| format!("{e}\n{}", usage_line()))?,
                Arg::Short('a', value) => {
                    options.address = value
                        .parse()
                        .map_err(|_| format!("invalid address '{value}' (expected an IPv4 or IPv6 literal)"))?;
                }
                Arg::Short(_, value) => {
                    options.port = value.parse().map_err(|_| format!("invalid port '{value}' (expected 0 to 65535)"))?;
                }
            }
        }
        if let Some(extra) = args.next() {
            return Err(format!("unexpected argument '{extra}'"));
        }
        Ok(options)
    }
{%- include "rust/option_parse.rs" %}
}

static OPTIONS: std::sync::OnceLock<Options> = std::sync::OnceLock::new();

/// The options the server runs with: the command line's once `main_with` has read it (or the
/// ones `serve` was given first), else the spec's.
pub fn options() -> &'static Options {
    OPTIONS.get_or_init(Options::default)
}
{%- endif %}
{{ v.runtime_open }}

{%- if !v.client %}
/// What a bind that found its port taken adds to the error.
const ADDRESS_IN_USE_ADVICE: &str = "; another program holds this port (ss -ltnup names it): stop it, or give another with -p (-p 0: any free port)";
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
{{ v.runtime_close }}

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
        let errno = error.raw_os_error().unwrap_or(0);
        let advice = if errno == libc::EADDRINUSE { ADDRESS_IN_USE_ADVICE } else { "" };
        return Err(io::Error::new(
            error.kind(),
            format!("bind {} port {}: {}{advice}", addr.ip(), addr.port(), describe_error(errno)),
        ));
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
{{ v.runtime_open }}
{%- if v.tcp %}

{%- if v.client || v.nodelay || v.keepalive || v.linger %}
{{ v.runtime_close }}

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
{{ v.runtime_open }}
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
