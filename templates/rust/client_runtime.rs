{{ v.runtime_close }}

/// How long one connect may take before that address counts as failed (ETIMEDOUT).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis({{ v.connect_timeout_ms }});
/// Failed attempts in a row after which a connection gives up.
pub const MAX_ATTEMPTS: u32 = {{ v.max_attempts }};
/// Backoff before attempt n + 1: a random time below min(BACKOFF_MAX_MS, BACKOFF_BASE_MS × 2^(n-1)).
pub const BACKOFF_BASE_MS: u64 = {{ v.backoff_base_ms }};
pub const BACKOFF_MAX_MS: u64 = {{ v.backoff_max_ms }};
/// Connections at once; `-c CONNECTIONS` overrides it.
pub const POOL_SIZE: usize = {{ v.pool_size }};
{%- if v.handler == Handler::EchoCheck || v.handler == Handler::Load %}
/// The built-in's message sizes, in turn.
pub const SIZES: [usize; {{ v.sizes_len }}] = [{{ v.sizes_rust }}];
{%- endif %}
{%- if v.handler == Handler::EchoCheck %}
/// Messages per connection; `-n MESSAGES` overrides it.
pub const MESSAGES: u32 = {{ v.messages }};
{%- endif %}
{%- if v.handler == Handler::Load %}
/// How long the load runs; `-d DURATION_MS` overrides it.
pub const DURATION: Duration = Duration::from_millis({{ v.duration_ms }});
{%- endif %}
/// The socket a member's connection runs on.
type Socket = {% if v.tcp %}TcpStream{% else %}UdpSocket{% endif %};
/// Addresses of the server tried at most, in the resolver's order.
const MAX_ADDRESSES: usize = 16;

/// The client's run as the command line set it (the spec's values by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `-a`: a name or an address literal.
    pub host: String,
    /// `-p`.
    pub port: u16,
    /// `-c`: the pool's size.
    pub connections: usize,
{%- if v.handler == Handler::EchoCheck %}
    /// `-n`: messages per connection.
    pub messages: u32,
{%- endif %}
{%- if v.handler == Handler::Load %}
    /// `-d`: how long the load runs.
    pub duration: Duration,
{%- endif %}
{%- include "rust/option_fields.rs" %}
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: HOST.to_string(),
            port: PORT,
            connections: POOL_SIZE,
{%- if v.handler == Handler::EchoCheck %}
            messages: MESSAGES,
{%- endif %}
{%- if v.handler == Handler::Load %}
            duration: DURATION,
{%- endif %}
{%- include "rust/option_defaults.rs" %}
        }
    }
}

/// A decimal number from `min` to `max`; None for anything else (signs, spaces, overflow).
fn parse_number(text: &str, min: u64, max: u64) -> Option<u64> {
    if !text.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>().ok().filter(|n| (min..=max).contains(n))
}

impl Options {
    /// Parses `[-a HOST] [-p PORT] [-c CONNECTIONS]{{ v.client_extra_usage }}`, the spec's
    /// options and `-h`; Err carries the message for the user (the help text, starting with
    /// `usage`, for -h).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = next_option(&mut args, "apc{% if v.handler == Handler::EchoCheck %}n{% endif %}{% if v.handler == Handler::Load %}d{% endif %}")? {
            let (option, value) = match arg {
                Arg::Help => return Err(HELP.to_string()),
                Arg::Long(name, inline) => {
                    options
                    .take_program_option(&name, inline, &mut args)
                    .map_err(|e| format!("{e}\n{}", usage_line()))?;
                    continue;
                }
                Arg::Short(option, value) => (option, value),
            };
            match option {
                'a' => {
                    if value.is_empty() || value.len() > 253 {
                        return Err(format!("invalid host '{value}' (expected a name or an IP address)"));
                    }
                    options.host = value;
                }
                'p' => {
                    options.port = parse_number(&value, 1, 65535)
                        .ok_or_else(|| format!("invalid port '{value}' (expected 1 to 65535)"))? as u16;
                }
{%- if v.handler == Handler::EchoCheck %}
                'n' => {
                    options.messages = parse_number(&value, 1, 1_000_000)
                        .ok_or_else(|| format!("invalid message count '{value}' (expected 1 to 1000000)"))? as u32;
                }
{%- endif %}
{%- if v.handler == Handler::Load %}
                'd' => {
                    let ms = parse_number(&value, 1, 3_600_000)
                        .ok_or_else(|| format!("invalid duration '{value}' (expected 1 to 3600000 ms)"))?;
                    options.duration = Duration::from_millis(ms);
                }
{%- endif %}
                _ => {
                    options.connections = parse_number(&value, 1, 10_000)
                        .ok_or_else(|| format!("invalid connection count '{value}' (expected 1 to 10000)"))? as usize;
                }
            }
        }
        if let Some(extra) = args.next() {
            return Err(format!("unexpected argument '{extra}'"));
        }
        if options.port == 0 {
            return Err("no port to connect to: give -p PORT (the spec sets none)".to_string());
        }
        Ok(options)
    }
{%- include "rust/option_parse.rs" %}
}

{{ v.runtime_open }}

static OPTIONS: std::sync::OnceLock<Options> = std::sync::OnceLock::new();

/// The run's options: the command line's once `main_with` has read it, else the spec's.
pub fn options() -> &'static Options {
    OPTIONS.get_or_init(Options::default)
}

/// A connection failed or gave up, or the handler failed the run: the program exits 1.
static CLIENT_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The run failed for a reason no one connection owns (say, in `on_worker_stop`): prints
/// `PROGRAM: message` on stderr and makes the program exit 1.
pub fn fail_run(message: impl std::fmt::Display) {
    log_line!("{PROGRAM}: {message}");
    CLIENT_FAILED.store(true, Ordering::Relaxed);
}

/// `PROGRAM: connection ID (PEER): message`, and the program exits 1: for a handler that
/// finds its connection failed where it has no `Ctx` (in `on_close`).
pub fn fail_connection(info: &ConnInfo, message: impl std::fmt::Display) {
    log_line!("{PROGRAM}: connection {} ({}): {message}", info.id, info.peer);
    CLIENT_FAILED.store(true, Ordering::Relaxed);
}

/// The server's addresses for an attempt starting now, in the resolver's order (getaddrinfo,
/// RFC 6724: the preferred one first); the attempt tries each in turn. An address literal is
/// parsed, with no resolver; a name is resolved by each attempt, so that a transient failure
/// (EAI_AGAIN) is retried like a refused connect and a server whose address changed is found.
fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found = std::net::ToSocketAddrs::to_socket_addrs(&(host, port));
    op_log!("{PROGRAM}: op=resolve fd=-1 host={host} result={}", if found.is_ok() { "ok" } else { "failed" });
    let found = found.map_err(|e| {
        // std says "failed to lookup address information: TEXT"; TEXT is gai_strerror's.
        let text = e.to_string();
        format!("cannot resolve '{host}': {}", text.strip_prefix("failed to lookup address information: ").unwrap_or(&text))
    })?;
    let targets: Vec<SocketAddr> = found.take(MAX_ADDRESSES).collect();
    if targets.is_empty() {
        return Err(format!("'{host}' has no IPv4 or IPv6 address"));
    }
    Ok(targets)
}

/// The sockaddr of `addr`, for connect(2).
fn raw_address(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data for which all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: a sockaddr_in fits in a sockaddr_storage, which is aligned for it.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for a sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Opens a nonblocking socket for `target` with the spec's options, set before connect so
/// buffer sizes shape the window.
fn open_client_socket(target: &SocketAddr) -> io::Result<OwnedFd> {
    let domain = if target.is_ipv6() { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: socket(2) takes plain integers.
    let socket = cvt(unsafe { libc::socket(domain, {{ v.socktype }} | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) });
    op_log!("{PROGRAM}: op=socket fd={} domain={domain} result={}", socket.as_ref().map_or(-1, |fd| *fd), op_result(&socket));
    // SAFETY: socket(2) just returned this descriptor; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(socket?) };
{%- if v.tcp %}
    let stream = TcpStream::from(fd);
    configure_connection(stream.as_raw_fd())?;
    // Urgent data is read inline, as ordinary bytes, as servers do.
    set_int_option(stream.as_raw_fd(), libc::SOL_SOCKET, libc::SO_OOBINLINE, 1)?;
    let fd = OwnedFd::from(stream);
{%- endif %}
{%- if let Some(bytes) = v.recv_buffer %}
    set_int_option(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, {{ bytes }})?;
{%- endif %}
{%- if let Some(bytes) = v.send_buffer %}
    set_int_option(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, {{ bytes }})?;
{%- endif %}
    Ok(fd)
}
{%- if !v.uses_io_uring %}

/// Opens the socket and starts a nonblocking connect. Ok: under way, or done.
fn start_connect(target: &SocketAddr) -> io::Result<OwnedFd> {
    let fd = open_client_socket(target)?;
    let (address, len) = raw_address(target);
    // SAFETY: connect gets a live sockaddr_storage and the exact length of the address in it.
    let connected = cvt(unsafe { libc::connect(fd.as_raw_fd(), (&address as *const libc::sockaddr_storage).cast(), len) });
    op_log!("{PROGRAM}: op=connect fd={} peer={target} result={}", fd.as_raw_fd(), op_result(&connected));
    match connected {
        Err(e) if e.raw_os_error() != Some(libc::EINPROGRESS) => Err(e),
        _ => Ok(fd),
    }
}
{%- endif %}

/// How a nonblocking connect ended, once its socket is writable: 0, or the errno.
fn connect_result(fd: &OwnedFd) -> i32 {
    let mut error: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the live c_int.
    let rc = unsafe { libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_ERROR, (&mut error as *mut libc::c_int).cast(), &mut len) };
    if rc != 0 {
        io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
    } else {
        error
    }
}

/// Where a member of the pool is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberState {
    /// A nonblocking connect to `targets[address]` is under way.
    Connecting,
    /// Its connection serves it.
    Open,
    /// Backing off until `deadline`.
    Waiting,
    /// Finished, or gave up.
    Done,
}

/// One place in the pool: an open connection, or the attempt to make one.
#[derive(Debug)]
struct Member {
    index: usize,
    state: MemberState,
    /// The socket being connected.
    connecting: Option<OwnedFd>,
    /// This attempt's addresses of the server.
    targets: Vec<SocketAddr>,
    /// Which of them is being tried.
    address: usize,
    /// Failed attempts in a row.
    failures: u32,
    /// The connect timeout, or the end of the backoff.
    deadline: Option<Instant>,
    /// Its backoff draws (xorshift64: spread, not secret).
    rng: u64,
    /// What went wrong last, for the give-up message.
    last_error: String,
}

impl Member {
    fn new(index: usize, seed: u64) -> Member {
        Member {
            index,
            state: MemberState::Waiting,
            connecting: None,
            targets: Vec::new(),
            address: 0,
            failures: 0,
            deadline: None,
            rng: seed ^ ((index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1,
            last_error: String::new(),
        }
    }

    /// Exponential backoff with full jitter: a uniform draw below min(max, base × 2^(n-1)), so
    /// clients that failed together do not come back together.
    fn backoff(&mut self) -> Duration {
        let ceiling = BACKOFF_BASE_MS.saturating_mul(1u64 << (self.failures.saturating_sub(1)).min(32)).min(BACKOFF_MAX_MS);
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        Duration::from_millis(self.rng % (ceiling + 1))
    }

{%- if v.uses_io_uring %}
    /// Opens the socket for the current address; the loop's ring makes the connect, with
    /// its timeout linked to it, so the pool keeps no deadline of its own.
    fn connect(&mut self, _now: Instant) -> io::Result<()> {
        self.connecting = Some(open_client_socket(&self.targets[self.address])?);
        self.state = MemberState::Connecting;
        self.deadline = None;
        Ok(())
    }
{%- else %}
    /// Starts connecting to the current address: Ok when under way.
    fn connect(&mut self, now: Instant) -> io::Result<()> {
        let fd = start_connect(&self.targets[self.address])?;
        self.connecting = Some(fd);
        self.state = MemberState::Connecting;
        self.deadline = Some(now + CONNECT_TIMEOUT);
        Ok(())
    }
{%- endif %}

    /// The address the attempt is at.
    fn target(&self) -> SocketAddr {
        self.targets[self.address]
    }

    /// Resolves the host for the attempt starting now: false (with the reason noted) when it
    /// failed, which fails the attempt.
    fn resolve(&mut self) -> bool {
        let o = options();
        match resolve(&o.host, o.port) {
            Ok(targets) => {
                self.targets = targets;
                true
            }
            Err(message) => {
                self.targets.clear();
                self.last_error = message;
                false
            }
        }
    }

    /// Remembers why the current address failed, for the messages that follow.
    fn note_error(&mut self, what: &str, errno: i32) {
        self.last_error = format!("{what} {}: {}", self.target(), describe_error(errno));
    }

    /// A whole attempt failed (every address, or the connection it made): back off and try
    /// again, or give up once `MAX_ATTEMPTS` attempts in a row have failed.
    fn attempt_failed(&mut self, now: Instant) {
        self.failures += 1;
        self.address = 0;
        self.connecting = None;
        let connections = options().connections;
        if self.failures >= MAX_ATTEMPTS {
            log_line!(
                "{PROGRAM}: connection {} of {connections}: gave up after {} failed attempt{}; last error: {}",
                self.index + 1,
                self.failures,
                if self.failures == 1 { "" } else { "s" },
                self.last_error
            );
            self.state = MemberState::Done;
            CLIENT_FAILED.store(true, Ordering::Relaxed);
        } else {
            let delay = self.backoff();
            log_line!(
                "{PROGRAM}: connection {} of {connections}: attempt {} of {MAX_ATTEMPTS} failed: {}; next attempt in {} ms",
                self.index + 1,
                self.failures,
                self.last_error,
                delay.as_millis()
            );
            self.state = MemberState::Waiting;
            self.deadline = Some(now + delay);
        }
    }

    /// The member's connection ended (`on_close` has run): reset, error and idle timeout
    /// count as a failed attempt and are retried; anything else (the handler or the server
    /// closed it, or the handler failed it) finishes this member.
    ///
    /// A connection that heard from the server (some of its bytes arrived) starts the count of
    /// failures in a row over: the server was up and serving. A connect alone does not: a
    /// server that accepts and resets at once, or never answers, must still run the budget out.
    fn connection_ended(&mut self, reason: CloseReason, failed: bool, heard: bool, peer: &SocketAddr, now: Instant) {
        if heard {
            self.failures = 0;
        }
        let what = match reason {
            CloseReason::Reset(libc::ECONNREFUSED) => Some(("refused", describe_error(libc::ECONNREFUSED))),
            CloseReason::Reset(errno) => Some(("reset", describe_error(errno))),
            CloseReason::Error(errno) => Some(("failed", describe_error(errno))),
            CloseReason::Idle => Some(("idle timeout", format!("nothing moved for {} ms", IDLE_TIMEOUT.map_or(0, |t| t.as_millis())))),
            _ => None,
        };
        match what {
            Some((what, why)) if !failed => {
                self.last_error = format!("connection to {peer} {what}: {why}");
                self.attempt_failed(now);
            }
            _ => {
                self.state = MemberState::Done;
                if !failed {
                    self.failures = 0;
                }
            }
        }
    }
}

/// A seed for the members' backoff draws, different in every run and process.
fn backoff_seed() -> u64 {
    let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (u64::from(time.subsec_nanos()) << 20) ^ time.as_secs() ^ (u64::from(std::process::id()) << 40) ^ 0x9e37_79b9_7f4a_7c15
}
{%- if !v.thread_per_connection %}

/// What a loop passes the pool to start watching a connecting socket (member index,
/// descriptor, the address it connects to) for the end of its connect.
type Watch<'a> = dyn FnMut(usize, RawFd, SocketAddr) -> io::Result<()> + 'a;

/// The pool's connect attempts, the same in every event loop; the loop passes a [`Watch`].
struct Pool {
    members: Vec<Member>,
    /// Members not done yet.
    left: usize,
    /// Connect timeouts and backoff ends, earliest first, with their member. An entry whose
    /// member has moved on since is stale and skipped when it comes up: filing a deadline
    /// costs O(log n), and no expiry scans the pool.
    due: std::collections::BinaryHeap<std::cmp::Reverse<(Instant, usize)>>,
}

impl Pool {
    fn new() -> Pool {
        let seed = backoff_seed();
        let connections = options().connections;
        Pool {
            members: (0..connections).map(|i| Member::new(i, seed)).collect(),
            left: connections,
            due: std::collections::BinaryHeap::with_capacity(connections),
        }
    }

    /// Files the member's next deadline, or counts it out when it is done.
    fn settled(&mut self, i: usize) {
        let m = &self.members[i];
        match m.state {
            MemberState::Done => self.left -= 1,
            MemberState::Open => {}
            _ => {
                if let Some(at) = m.deadline {
                    self.due.push(std::cmp::Reverse((at, i)));
                }
            }
        }
    }

    /// Starts an attempt at the member's current address, moving on to the next address when
    /// a connect fails at once; when none is left the attempt has failed. A new attempt (at the
    /// first address) resolves the host first.
    fn connect(&mut self, i: usize, now: Instant, watch: &mut Watch<'_>) {
        let m = &mut self.members[i];
        if m.address == 0 && !m.resolve() {
            m.attempt_failed(now);
            return self.settled(i);
        }
        while m.address < m.targets.len() {
            match m.connect(now) {
                Ok(()) => {
                    let fd = m.connecting.as_ref().map_or(-1, |fd| fd.as_raw_fd());
                    match watch(i, fd, m.target()) {
                        Ok(()) => return self.settled(i),
                        Err(e) => {
                            m.connecting = None;
                            m.note_error("watching a connect to", e.raw_os_error().unwrap_or(libc::EIO));
                        }
                    }
                }
                Err(e) => m.note_error("connect", e.raw_os_error().unwrap_or(libc::EIO)),
            }
            m.address += 1;
        }
        m.attempt_failed(now);
        self.settled(i);
    }

    /// The connect to the member's current address failed: the next address, or the attempt
    /// failed. Dropping the socket also takes it out of the loop's watch.
    fn connect_failed(&mut self, i: usize, errno: i32, now: Instant, watch: &mut Watch<'_>) {
        let m = &mut self.members[i];
        m.note_error("connect", errno);
        m.connecting = None;
        m.address += 1;
        self.connect(i, now, watch);
    }

    /// The member's connection ended: done, or a failed attempt to retry.
    fn ended(&mut self, i: usize, reason: CloseReason, failed: bool, heard: bool, peer: &SocketAddr, now: Instant) {
        self.members[i].connection_ended(reason, failed, heard, peer, now);
        self.settled(i);
    }

    /// Connect timeouts and ended backoffs, in deadline order.
    fn expire(&mut self, now: Instant, watch: &mut Watch<'_>) {
        while let Some(&std::cmp::Reverse((at, i))) = self.due.peek() {
            if at > now {
                break;
            }
            self.due.pop();
            if self.members[i].deadline != Some(at) {
                continue; // stale: the member connected, or filed a later deadline
            }
            match self.members[i].state {
                MemberState::Connecting => self.connect_failed(i, libc::ETIMEDOUT, now, watch),
                MemberState::Waiting => self.connect(i, now, watch),
                _ => {}
            }
        }
    }

    /// How long the loop may sleep given its own `timeout_ms` (-1: no limit) and the pool's
    /// next deadline.
    fn timeout(&self, timeout_ms: i32, now: Instant) -> i32 {
        // A stale entry on top only wakes the loop early, to skip it.
        let Some(&std::cmp::Reverse((due, _))) = self.due.peek() else { return timeout_ms };
        let until = due.saturating_duration_since(now).as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        if timeout_ms < 0 {
            until
        } else {
            timeout_ms.min(until)
        }
    }
}
{%- endif %}

/// A complete `main` for a client: parses the command line, runs the pool until every connection is done, and maps the outcome to an exit status (0: every
/// connection done; 1: one gave up or failed; 2: a bad command line).
pub fn main_with<H: Handler>() -> std::process::ExitCode {
    let parsed = match utf8_args().and_then(Options::from_args) {
        Ok(parsed) => parsed,
        Err(message) if message.starts_with("usage") => {
            let _ = writeln!(io::stdout(), "{message}");
            return std::process::ExitCode::SUCCESS;
        }
        Err(message) => {
            log_line!("{PROGRAM}: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    let _ = OPTIONS.set(parsed);
    let ran = open_standard_descriptors().and_then(|()| install_stop_signal()).and_then(|stop| {
{%- if v.tcp %}
        raise_descriptor_limit();
{%- endif %}
        run_pool::<H>(stop.as_raw_fd())
    });
    match ran {
        Ok(()) if !CLIENT_FAILED.load(Ordering::Relaxed) => std::process::ExitCode::SUCCESS,
        Ok(()) => std::process::ExitCode::from(1),
        Err(e) => {
            log_line!("{PROGRAM}: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
