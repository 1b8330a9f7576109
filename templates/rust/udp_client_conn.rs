{% include "rust/conn_common.rs" %}

/// Why a socket of the pool was closed; `on_close` receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// [`Ctx::close`].
    Handler,
    /// The server's port refused the datagrams (ECONNREFUSED, from an ICMP port unreachable).
    Reset(i32),
    /// No datagram came for `IDLE_TIMEOUT`.
    Idle,
    /// The client is shutting down (SIGINT, SIGTERM).
    Stopping,
    /// A system call failed (its errno).
    Error(i32),
    /// A callback panicked; the panic was caught and only this socket ended.
    Panic,
}

impl CloseReason {
    /// The same names the C output uses.
    pub fn name(&self) -> &'static str {
        match self {
            CloseReason::Handler => "handler",
            CloseReason::Reset(_) => "refused",
            CloseReason::Idle => "idle_timeout",
            CloseReason::Stopping => "stopping",
            CloseReason::Error(_) => "error",
            CloseReason::Panic => "panic",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Reset(errno) | CloseReason::Error(errno) => {
                write!(f, "{} ({})", self.name(), io::Error::from_raw_os_error(*errno))
            }
            _ => f.write_str(self.name()),
        }
    }
}

/// What the handler may know about its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// Unique within this process, counting from 1.
    pub id: u64,
    /// Always 0: a client runs one worker.
    pub worker: usize,
    /// The server.
    pub peer: SocketAddr,
    /// The address the socket got.
    pub local: SocketAddr,
}

/// A datagram not sent: longer than `OUTPUT_BUFFER`, the socket is closing, or the kernel had
/// no room (a datagram may be lost anyway: a protocol over UDP keeps its own timers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputRefused;

impl std::fmt::Display for OutputRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("datagram not sent: too long, the socket is closing, or no room in the kernel")
    }
}

impl std::error::Error for OutputRefused {}

/// What a callback may ask of the loop.
#[derive(Debug)]
struct Control {
    info: ConnInfo,
    open: bool,
    reason: CloseReason,
    timer_at: Option<Instant>,
    /// [`Ctx::fail`] was called: the socket is not retried.
    failed: bool,
    /// A datagram came from the server: it was serving (the retry count starts over).
    heard: bool,
}

impl Control {
    /// Ends the socket for a reason; the first reason stays.
    fn end(&mut self, reason: CloseReason) {
        if self.open {
            self.open = false;
            self.reason = reason;
        }
    }
}

/// What a callback may do with its socket.
pub struct Ctx<'a, W> {
    /// The state the pool's sockets share; callbacks never run at the same time (in the
    /// blocking model too), so it needs no lock.
    pub worker: &'a mut W,
    socket: &'a UdpSocket,
    control: &'a mut Control,
}

impl<W> Ctx<'_, W> {
    /// The server, and the socket's own address.
    pub fn info(&self) -> &ConnInfo {
        &self.control.info
    }

    /// Sends one datagram of `data` (0 to `OUTPUT_BUFFER` bytes) to the server now.
    pub fn write(&mut self, data: &[u8]) -> Result<(), OutputRefused> {
        if !self.control.open || data.len() > OUTPUT_BUFFER {
            return Err(OutputRefused);
        }
        let sent = self.socket.send(data);
        op_log!("{PROGRAM}: op=send fd={} bytes={} result={}", self.socket.as_raw_fd(), data.len(), op_result(&sent));
        match sent {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS) => Err(OutputRefused),
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                self.control.end(if errno == libc::ECONNREFUSED { CloseReason::Reset(errno) } else { CloseReason::Error(errno) });
                Err(OutputRefused)
            }
        }
    }

    /// Arms the socket's one timer (re-arming replaces it): `on_timer` runs after `after`.
    pub fn set_timer(&mut self, after: Duration) {
        self.control.timer_at = Some(Instant::now() + after);
    }

    pub fn cancel_timer(&mut self) {
        self.control.timer_at = None;
    }

    /// Done with this socket: it is closed after the callback returns. No more callbacks but
    /// `on_close`.
    pub fn close(&mut self) {
        self.control.end(CloseReason::Handler);
    }

    /// The protocol failed: prints `PROGRAM: connection ID (PEER): message` on stderr, closes
    /// the socket and makes the program exit 1. A failed socket is not retried; the others
    /// carry on.
    pub fn fail(&mut self, message: impl std::fmt::Display) {
        log_line!("{PROGRAM}: connection {} ({}): {message}", self.control.info.id, self.control.info.peer);
        self.control.failed = true;
        CLIENT_FAILED.store(true, Ordering::Relaxed);
        self.close();
    }

    /// The run as the command line set it.
    pub fn options(&self) -> &'static Options {
        options()
    }
}

/// The one place for your protocol over UDP: the loop calls these, and they must not block.
/// Each socket of the pool is `connect()`ed to the server, so only its datagrams arrive.
/// Datagrams can be lost: a socket that hears nothing for `IDLE_TIMEOUT` ends (`Idle`), and
/// one whose server port refuses ends too (`Reset`); both are opened again with backoff and
/// `open` runs again. One the handler closed is done.
pub trait Handler: Sized + Send + 'static {
    /// State shared by the pool's sockets, made by `start_worker` when the pool starts.
    type Worker: Default + Send + 'static;

    /// The pool starts: make the state its sockets share (the default: `Default`). An error
    /// (a file that does not parse) stops the program before it connects: it prints
    /// `PROGRAM: worker 0: ERROR` and exits 1.
    fn start_worker(index: usize) -> Result<Self::Worker, StartError> {
        let _ = index;
        Ok(Self::Worker::default())
    }

    /// The socket is ready: make its handler; `ctx` may already send.
    fn open(ctx: &mut Ctx<'_, Self::Worker>) -> Self;

    /// One datagram from the server, whole.
    fn on_message(&mut self, msg: &[u8], ctx: &mut Ctx<'_, Self::Worker>);

    /// The timer from `ctx.set_timer` fired.
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self::Worker>) {
        let _ = ctx;
    }

    /// The socket is closed, and why.
    fn on_close(&mut self, reason: CloseReason, worker: &mut Self::Worker) {
        let _ = (reason, worker);
    }

    /// Every socket of the pool has ended for good: report from the worker's state (a
    /// failure no one socket owns goes to [`fail_run`]).
    fn on_worker_stop(worker: &mut Self::Worker) {
        let _ = worker;
    }
}
{%- if v.handler == Handler::EchoCheck || v.handler == Handler::Load %}
{% include "rust/udp_client_handlers.rs" %}
{%- endif %}

/// Datagrams longer than `BUFFER_SIZE`, dropped.
static OVERSIZED_DATAGRAMS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A client's UDP socket: the same shape as a TCP connection for the loops (open, service,
/// deadlines, release), minus the byte stream: a datagram is handed over whole and a write
/// sends one at once.
struct Conn<H: Handler> {
    socket: UdpSocket,
    /// None until `Handler::open` ran (and if it panicked).
    handler: Option<H>,
    control: Control,
    last_active: Instant,
{%- if v.uses_epoll %}
    /// Unused for datagrams: every read goes on until EAGAIN.
    read_to_eagain: bool,
    /// On the loop's list of sockets with work left.
    in_ready: bool,
{%- endif %}
{%- if v.uses_io_uring %}
    /// A readiness poll for it is in the ring; it is released only when none is left.
    poll_armed: bool,
    cancel_inflight: bool,
{%- endif %}
}

impl<H: Handler> Conn<H> {
    fn new(socket: UdpSocket, peer: SocketAddr, worker: usize, now: Instant) -> Conn<H> {
        let local = socket.local_addr().unwrap_or(peer);
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        Conn {
            socket,
            handler: None,
            control: Control { info: ConnInfo { id, worker, peer, local }, open: true, reason: CloseReason::Handler, timer_at: None, failed: false, heard: false },
            last_active: now,
{%- if v.uses_epoll %}
            read_to_eagain: false,
            in_ready: false,
{%- endif %}
{%- if v.uses_io_uring %}
            poll_armed: false,
            cancel_inflight: false,
{%- endif %}
        }
    }

    /// Its socket, for the loop's waits.
    fn raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Ends the socket at once for a reason the loop found.
    fn end(&mut self, reason: CloseReason) {
        self.control.end(reason);
    }

    /// A failed receive or wait: a refused port is the server's doing, anything else an error.
    fn fail(&mut self, error: &io::Error) {
        let errno = error.raw_os_error().unwrap_or(libc::EIO);
        self.end(if errno == libc::ECONNREFUSED { CloseReason::Reset(errno) } else { CloseReason::Error(errno) });
    }

    /// Runs a callback with a context, catching a panic: it is logged and counted and ends
    /// only this socket.
    fn call<A: WorkerAccess<H::Worker>>(&mut self, access: &mut A, f: impl FnOnce(&mut H, &mut Ctx<'_, H::Worker>)) {
        let Some(handler) = self.handler.as_mut() else { return };
        let (socket, control) = (&self.socket, &mut self.control);
        let result = access.with(|worker| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut ctx = Ctx { worker, socket, control };
                f(handler, &mut ctx);
            }))
        });
        if result.is_err() {
            self.panicked();
        }
    }

    fn panicked(&mut self) {
        let count = HANDLER_PANICS.fetch_add(1, Ordering::Relaxed) + 1;
        log_line!("{PROGRAM}: a handler panicked; socket {} closed ({count} so far)", self.control.info.id);
        self.end(CloseReason::Panic);
    }

    /// Makes the handler with `Handler::open` once the loop has filed the socket.
    fn start<A: WorkerAccess<H::Worker>>(&mut self, access: &mut A) {
        let (socket, control) = (&self.socket, &mut self.control);
        let result = access.with(|worker| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut ctx = Ctx { worker, socket, control };
                H::open(&mut ctx)
            }))
        });
        match result {
            Ok(handler) => self.handler = Some(handler),
            Err(_) => self.panicked(),
        }
    }

    /// Calls `on_close` with the reason decided earlier, then drops the socket.
    fn release<A: WorkerAccess<H::Worker>>(mut self, access: &mut A) {
        self.control.open = false;
        let reason = self.control.reason;
        if let Some(handler) = self.handler.as_mut() {
            let result = access.with(|worker| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.on_close(reason, worker)))
            });
            if result.is_err() {
                HANDLER_PANICS.fetch_add(1, Ordering::Relaxed);
                log_line!("{PROGRAM}: a handler panicked in on_close of socket {}", self.control.info.id);
            }
        }
        op_log!("{PROGRAM}: op=close fd={} reason={}", self.socket.as_raw_fd(), self.control.reason);
    }

    /// The earliest moment the loop must look at this socket without socket events.
    fn deadline(&self) -> Option<Instant> {
        if !self.control.open {
            return None;
        }
        let idle = IDLE_TIMEOUT.map(|t| self.last_active + t);
        match (self.control.timer_at, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A deadline passed: the handler's timer or the idle timeout.
    fn expire<A: WorkerAccess<H::Worker>>(&mut self, access: &mut A, now: Instant) {
        if self.control.open && self.control.timer_at.is_some_and(|at| now >= at) {
            self.control.timer_at = None;
            self.call(access, |h, ctx| h.on_timer(ctx));
        }
        if self.control.open && IDLE_TIMEOUT.is_some_and(|t| now >= self.last_active + t) {
            self.end(CloseReason::Idle);
        }
    }

    /// Reads datagrams until the socket is empty or the budget is spent, handing each to
    /// `on_message` whole. One longer than `BUFFER_SIZE` (MSG_TRUNC reports its real length)
    /// is dropped and logged, never handled cut short.
    fn service<A: WorkerAccess<H::Worker>>(&mut self, access: &mut A, scratch: &mut [u8], now: Instant) -> Status {
        for _ in 0..CONN_BUDGET {
            if !self.control.open {
                return Status::Done;
            }
            // SAFETY: recv writes at most BUFFER_SIZE bytes into the scratch buffer, which is
            // at least that long.
            let n = unsafe { libc::recv(self.socket.as_raw_fd(), scratch.as_mut_ptr().cast(), BUFFER_SIZE, libc::MSG_DONTWAIT | libc::MSG_TRUNC) };
            let received = if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) };
            op_log!("{PROGRAM}: op=recv fd={} bytes={n} result={}", self.socket.as_raw_fd(), op_result(&received));
            match received {
                Ok(len) => {
                    self.last_active = now;
                    self.control.heard = true;
                    if len > BUFFER_SIZE {
                        let mut count = OVERSIZED_DATAGRAMS.fetch_add(1, Ordering::Relaxed);
                        log_occurrence("dropped a datagram longer than io.buffer_size", &mut count);
                        continue;
                    }
                    self.call(access, |h, ctx| h.on_message(&scratch[..len], ctx));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Status::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.fail(&e),
            }
        }
        if self.control.open {
            Status::More
        } else {
            Status::Done
        }
    }
{%- if v.uses_poll || v.thread_per_connection %}

    /// What a poll()-based wait asks for: datagrams (errors such as a refused port come with them).
    fn poll_events(&self) -> libc::c_short {
        libc::POLLIN
    }
{%- endif %}
}
