{%- if v.tcp %}
/// Why a connection ended; `on_close` receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer half-closed and everything queued was sent.
    Peer,
    /// [`Ctx::close`]: queued output was sent first.
    Handler,
    /// [`Ctx::abort`]: reset, queued output dropped.
    Abort,
    /// The peer reset the connection (the errno: ECONNRESET, EPIPE...).
    Reset(i32),
    /// Nothing moved for `IDLE_TIMEOUT`.
    Idle,
    /// More than `OUTPUT_LIMIT` bytes were queued: the peer does not read.
    OutputLimit,
    /// More than `MAX_MESSAGE` bytes were left unconsumed.
    InputLimit,
    /// The {% if v.client %}client{% else %}server{% endif %} is shutting down (SIGINT, SIGTERM).
    Stopping,
    /// A system call failed (its errno).
    Error(i32),
    /// A callback panicked; the panic was caught and only this connection ended.
    Panic,
}

impl CloseReason {
    /// The same names the C output uses.
    pub fn name(&self) -> &'static str {
        match self {
            CloseReason::Peer => "peer",
            CloseReason::Handler => "handler",
            CloseReason::Abort => "abort",
            CloseReason::Reset(_) => "reset",
            CloseReason::Idle => "idle_timeout",
            CloseReason::OutputLimit => "output_limit",
            CloseReason::InputLimit => "input_limit",
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

/// What the handler may know about a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// Unique within this process, counting from 1.
    pub id: u64,
    /// Which event loop serves it, from 0.
    pub worker: usize,
    /// The remote address.
    pub peer: SocketAddr,
    /// The address it reached.
    pub local: SocketAddr,
}

/// A write refused because the connection is closing, or because it would pass
/// `OUTPUT_LIMIT` (the connection then closes with [`CloseReason::OutputLimit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputRefused;

impl std::fmt::Display for OutputRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("output refused: the connection is closing or past its output limit")
    }
}

impl std::error::Error for OutputRefused {}

/// Size of the output queue's chunks; a larger write gets one chunk of its own size.
const OUT_CHUNK: usize = 16 * 1024;
/// Chunks handed to one writev.
const OUT_IOV: usize = 16;
{%- if v.thread_per_connection %}

/// A thread per connection keeps no spare chunks: a queue's chunks are freed when it empties,
/// so an idle connection holds none.
fn cached_chunk() -> Option<Vec<u8>> {
    None
}

fn retire_chunk(_chunk: Vec<u8>) {}
{%- else %}

/// Chunks of `OUT_CHUNK` bytes an event loop's thread keeps for reuse: a connection whose
/// queue is empty holds none, so an idle connection costs no chunk, and a busy loop still does
/// not allocate for each reply.
const CHUNK_CACHE_MAX: usize = 32;

type ChunkCache = std::cell::RefCell<Vec<Vec<u8>>>;

thread_local! {
    static CHUNK_CACHE: ChunkCache = const { ChunkCache::new(Vec::new()) };
}

/// A standard chunk from the thread's cache, if it has one.
fn cached_chunk() -> Option<Vec<u8>> {
    CHUNK_CACHE.try_with(|cache| cache.borrow_mut().pop()).ok().flatten()
}

/// A chunk the queue is done with goes to the thread's cache while it has room.
fn retire_chunk(mut chunk: Vec<u8>) {
    if chunk.capacity() != OUT_CHUNK {
        return;
    }
    chunk.clear();
    let _ = CHUNK_CACHE.try_with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() < CHUNK_CACHE_MAX && cache.try_reserve(1).is_ok() {
            cache.push(chunk);
        }
    });
}
{%- endif %}

/// Output queued for the peer, sent in order: a list of chunks sent with writev, so a
/// partial send costs no copying. There is no soft limit: a handler may always write below
/// `OUTPUT_LIMIT`; above `OUTPUT_BUFFER` the peer is not read until it catches up.
/// Implements [`io::Write`] and [`std::fmt::Write`] (import one of them for `write!`).
#[derive(Debug, Default)]
pub struct Out {
    chunks: std::collections::VecDeque<Vec<u8>>,
    /// Bytes of the first chunk already sent.
    head: usize,
    pending: usize,
    over_limit: bool,
    /// ...by one write that alone was larger than `OUTPUT_LIMIT`, whatever the peer read.
    oversized_write: bool,
    /// A chunk could not be allocated.
    out_of_memory: bool,
    closed: bool,
}

impl Out {
    /// Queues `data`, or refuses it all (see [`OutputRefused`]).
    pub fn write_bytes(&mut self, mut data: &[u8]) -> Result<(), OutputRefused> {
        if self.closed {
            return Err(OutputRefused);
        }
        if (self.pending + data.len()) as u64 > OUTPUT_LIMIT {
            self.over_limit = true;
            self.oversized_write = data.len() as u64 > OUTPUT_LIMIT;
            self.closed = true;
            return Err(OutputRefused);
        }
        let total = data.len();
        if let Some(last) = self.chunks.back_mut() {
            let n = data.len().min(last.capacity() - last.len());
            last.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        if !data.is_empty() {
            // Allocation failure must not abort the process (Rust's default): this connection
            // ends with ENOMEM instead, and the others go on.
            let cached = if data.len() <= OUT_CHUNK { cached_chunk() } else { None };
            let chunk = cached.or_else(|| {
                let mut chunk = Vec::new();
                chunk.try_reserve_exact(data.len().max(OUT_CHUNK)).ok().map(|()| chunk)
            });
            let Some(mut chunk) = chunk.filter(|_| self.chunks.try_reserve(1).is_ok()) else {
                self.pending += total - data.len();
                self.out_of_memory = true;
                self.closed = true;
                return Err(OutputRefused);
            };
            chunk.extend_from_slice(data);
            self.chunks.push_back(chunk);
        }
        self.pending += total;
        Ok(())
    }

    /// Bytes queued and not yet taken by the kernel.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// True while the queue is above the high-water mark (`OUTPUT_BUFFER`): the peer is not
    /// read, and a producer should stop and wait for `on_writable`.
    pub fn congested(&self) -> bool {
        self.pending >= OUTPUT_BUFFER
    }

{%- if !v.uses_io_uring %}
    /// Sends what the socket takes: Ok(true) when everything is sent, Ok(false) when full.
    fn send(&mut self, stream: &mut TcpStream) -> io::Result<bool> {
        while self.pending > 0 {
            let mut slices = [io::IoSlice::new(&[]); OUT_IOV];
            let mut count = 0;
            for (i, chunk) in self.chunks.iter().take(OUT_IOV).enumerate() {
                let start = if i == 0 { self.head } else { 0 };
                slices[count] = io::IoSlice::new(&chunk[start..]);
                count += 1;
            }
            let written = stream.write_vectored(&slices[..count]);
            op_log!(
                "{PROGRAM}: op=send fd={} bytes={} result={}",
                stream.as_raw_fd(),
                written.as_ref().map_or(-1, |n| *n as i64),
                op_result(&written)
            );
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.consume(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
{%- endif %}

    /// `sent` bytes of the queue left: whole chunks are retired, the first partly sent one
    /// only moves its start.
    fn consume(&mut self, mut sent: usize) {
        self.pending -= sent;
        while let Some(first) = self.chunks.front() {
            let queued = first.len() - self.head;
            if sent < queued {
                self.head += sent;
                break;
            }
            sent -= queued;
            self.head = 0;
            if let Some(done) = self.chunks.pop_front() {
                retire_chunk(done);
            }
        }
    }
{%- if v.uses_io_uring %}

    /// Points `iov` at up to `OUT_IOV` chunks of queued output; returns how many. The bytes do
    /// not move until `consume` drops them: writes only append within a chunk's capacity.
    fn gather(&self, iov: &mut [libc::iovec; OUT_IOV]) -> usize {
        let mut count = 0;
        for (i, chunk) in self.chunks.iter().take(OUT_IOV).enumerate() {
            let start = if i == 0 { self.head } else { 0 };
            if chunk.len() > start {
                iov[count] = libc::iovec { iov_base: chunk[start..].as_ptr() as *mut libc::c_void, iov_len: chunk.len() - start };
                count += 1;
            }
        }
        count
    }
{%- endif %}
}

impl io::Write for Out {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_bytes(data).map_err(io::Error::other)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Write for Out {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.write_bytes(text.as_bytes()).map_err(|_| std::fmt::Error)
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The handler is called.
    Open,
    /// Queued output is sent; input is read and dropped.
    Closing,
    /// Half-closed: input is dropped until the peer's FIN or `LINGER`.
    Linger,
    /// Closed next.
    Done,
}

/// What a callback may ask of the loop, besides output.
#[derive(Debug)]
struct Control {
    info: ConnInfo,
    phase: Phase,
    /// The peer's FIN was read: a close now is the peer's doing.
    read_closed: bool,
    reason: CloseReason,
    want_writable: bool,
    timer_at: Option<Instant>,
    reset_on_close: bool,
    /// The handler asked to see its unconsumed input again.
    resume_input: bool,
    /// The handler paused its input until it resumes it.
    input_paused: bool,
{%- if v.client %}
    /// [`Ctx::fail`] was called: the connection is not retried.
    failed: bool,
    /// Bytes came from the server: it was serving (the retry count starts over).
    heard: bool,
{%- endif %}
}

/// What a callback may do with its connection.
pub struct Ctx<'a, W> {
    /// Output for the peer, sent in order.
    pub out: &'a mut Out,
    /// The state every connection of this worker shares; callbacks of one worker never run
    /// at the same time (in the blocking model too), so it needs no lock.
    pub worker: &'a mut W,
    control: &'a mut Control,
}

impl<W> Ctx<'_, W> {
    /// Who is connected, and where.
    pub fn info(&self) -> &ConnInfo {
        &self.control.info
    }

    /// Queues bytes for the peer (the same as `self.out.write_bytes`).
    pub fn write(&mut self, data: &[u8]) -> Result<(), OutputRefused> {
        self.out.write_bytes(data)
    }
{%- if v.framed %}

    /// Writes one message framed the way input is framed ({{ v.framing }}).
    pub fn send_message(&mut self, msg: &[u8]) -> Result<(), OutputRefused> {
{%- if v.framing == FramingKind::Line %}
        self.out.write_bytes(msg)?;
        self.out.write_bytes(b"\n")
{%- else if v.framing == FramingKind::Delimiter %}
        self.out.write_bytes(msg)?;
        self.out.write_bytes(&DELIMITER)
{%- else %}
        let length = u64::try_from(msg.len()).map_err(|_| OutputRefused)?;
{%- if v.prefix_bytes < 8 %}
        if length >> (8 * {{ v.prefix_bytes }}) != 0 {
            return Err(OutputRefused);
        }
{%- endif %}
        let bytes = length.to_{% if v.prefix_big_endian %}be{% else %}le{% endif %}_bytes();
        self.out.write_bytes(&bytes[{% if v.prefix_big_endian %}8 - {{ v.prefix_bytes }}..{% else %}..{{ v.prefix_bytes }}{% endif %}])?;
        self.out.write_bytes(msg)
{%- endif %}
    }
{%- endif %}

    /// True while the output queue is above `OUTPUT_BUFFER`.
    pub fn congested(&self) -> bool {
        self.out.congested()
    }

    /// `true`: call `on_writable` whenever the queue is below half of `OUTPUT_BUFFER`, until
    /// a call queues nothing or this is turned off. Nothing is polled otherwise.
    /// Turning it off ends a reply produced on demand: input that waited behind it is
    /// presented again, as with `resume_input`.
    pub fn want_writable(&mut self, on: bool) {
        if !on && self.control.want_writable {
            self.control.resume_input = true;
        }
        self.control.want_writable = on;
    }

    /// Stops reading this peer until `resume_input`: for a handler that stops consuming for a
    /// reason of its own (a reply still streaming). What it left unconsumed waits, is not
    /// counted against `MAX_MESSAGE`, and is not presented again until it resumes; `on_eof`
    /// waits too.
    pub fn pause_input(&mut self) {
        self.control.input_paused = true;
    }

    /// Ends a `pause_input`, and presents the unconsumed input to `on_data` again once the
    /// output queue is below half of `OUTPUT_BUFFER`, without waiting for new bytes: for a
    /// handler that stopped consuming for a reason of its own and is ready for the next
    /// request.
    pub fn resume_input(&mut self) {
        self.control.input_paused = false;
        self.control.resume_input = true;
    }

    /// Arms the connection's one timer (re-arming replaces it): `on_timer` runs after `after`.
    pub fn set_timer(&mut self, after: Duration) {
        self.control.timer_at = Some(Instant::now() + after);
    }

    pub fn cancel_timer(&mut self) {
        self.control.timer_at = None;
    }

    /// Graceful close: send everything queued, half-close, read and drop the peer's input for
    /// up to `LINGER`, then close. No more callbacks but `on_close`.
    pub fn close(&mut self) {
        if self.control.phase == Phase::Open {
            self.control.phase = Phase::Closing;
            self.control.reason = if self.control.read_closed { CloseReason::Peer } else { CloseReason::Handler };
        }
    }

    /// Reset now: queued output is dropped and the peer sees ECONNRESET.
    pub fn abort(&mut self) {
        if self.control.phase != Phase::Done {
            self.control.phase = Phase::Done;
            self.control.reason = CloseReason::Abort;
            self.control.reset_on_close = true;
        }
    }
{%- if v.client %}

    /// The protocol failed: prints `PROGRAM: connection ID (PEER): message` on stderr, resets
    /// the connection and makes the program exit 1. A failed connection is not retried; the
    /// others carry on.
    pub fn fail(&mut self, message: impl std::fmt::Display) {
        log_line!("{PROGRAM}: connection {} ({}): {message}", self.control.info.id, self.control.info.peer);
        self.control.failed = true;
        CLIENT_FAILED.store(true, Ordering::Relaxed);
        self.abort();
    }

    /// The run as the command line set it.
    pub fn options(&self) -> &'static Options {
        options()
    }
{%- endif %}
}

/// The one place for your protocol: the loop calls these, and they must not block. The
/// contract is the same in every model and in the C output (README, "The handler contract").
pub trait Handler: Sized + Send + 'static {
    /// State shared by the connections of one worker (one event loop), made by `start_worker`
    /// on that worker. State shared by several workers belongs in a `static` (atomics, or a
    /// `Mutex` in a `OnceLock`).
    type Worker: Default + Send + 'static;

    /// A worker (an event loop) starts, before the program says it is ready: make the state
    /// its connections share (the default: `Default`). An error (a file that does not parse)
    /// stops the program before it is ready: it prints `PROGRAM: worker INDEX: ERROR` and
    /// exits 1.
    fn start_worker(index: usize) -> Result<Self::Worker, StartError> {
        let _ = index;
        Ok(Self::Worker::default())
    }

    /// A peer connected: make its handler. `ctx` may already write (a greeting), set a timer
    /// or ask for `on_writable`.
    fn open(ctx: &mut Ctx<'_, Self::Worker>) -> Self;
{%- if v.framed %}

    /// One whole message ({{ v.framing }} framing), without its framing bytes.
    fn on_message(&mut self, msg: &[u8], ctx: &mut Ctx<'_, Self::Worker>);
{%- else %}

    /// Input arrived: `input` holds every byte not consumed yet. Return how many you used;
    /// the rest comes again, with the next bytes, on the next call (at most `MAX_MESSAGE`
    /// may stay unconsumed). Stop early while `ctx.congested()` to pace a pipelining peer:
    /// the rest is presented again once the output drains.
    fn on_data(&mut self, input: &[u8], ctx: &mut Ctx<'_, Self::Worker>) -> usize;
{%- endif %}

    /// The output queue fell below half of `OUTPUT_BUFFER` after `ctx.want_writable(true)`.
    fn on_writable(&mut self, ctx: &mut Ctx<'_, Self::Worker>) {
        let _ = ctx;
    }

    /// The peer will send no more. You may still write; the default closes once everything
    /// queued is sent.
    fn on_eof(&mut self, ctx: &mut Ctx<'_, Self::Worker>) {
        ctx.close();
    }

    /// The timer from `ctx.set_timer` fired.
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self::Worker>) {
        let _ = ctx;
    }

    /// The connection is gone, and why.
    fn on_close(&mut self, reason: CloseReason, worker: &mut Self::Worker) {
        let _ = (reason, worker);
    }
{%- if v.client %}

    /// Every connection of the pool has ended for good: report from the worker's state (a
    /// failure no one connection owns goes to [`fail_run`]).
    fn on_worker_stop(worker: &mut Self::Worker) {
        let _ = worker;
    }
{%- endif %}
}

{{ v.runtime_close }}
{%- match v.handler %}
{%- when Handler::Echo %}

/// RFC 862 echo: every byte received is sent back, in order.
#[derive(Debug, Default)]
pub struct Echo {
    /// Bytes sent back so far.
    pub bytes_echoed: u64,
}

impl Handler for Echo {
    type Worker = ();

    fn open(_ctx: &mut Ctx<'_, ()>) -> Echo {
        Echo::default()
    }
{%- if v.framed %}

    /// Each message goes back framed as it came.
    fn on_message(&mut self, msg: &[u8], ctx: &mut Ctx<'_, ()>) {
        if ctx.send_message(msg).is_ok() {
            self.bytes_echoed += msg.len() as u64;
        }
    }
{%- else %}

    /// The loop stops reading while the queue is above `OUTPUT_BUFFER`, so echoing all of it
    /// never piles up more than one read past that.
    fn on_data(&mut self, input: &[u8], ctx: &mut Ctx<'_, ()>) -> usize {
        if ctx.write(input).is_ok() {
            self.bytes_echoed += input.len() as u64;
        }
        input.len()
    }
{%- endif %}
}
{%- when Handler::Discard %}

/// RFC 863 discard: everything received is thrown away; nothing is ever sent.
#[derive(Debug, Default)]
pub struct Discard {
    /// Bytes received and dropped so far.
    pub bytes_discarded: u64,
}

impl Handler for Discard {
    type Worker = ();

    fn open(_ctx: &mut Ctx<'_, ()>) -> Discard {
        Discard::default()
    }
{%- if v.framed %}

    fn on_message(&mut self, msg: &[u8], _ctx: &mut Ctx<'_, ()>) {
        self.bytes_discarded += msg.len() as u64;
    }
{%- else %}

    fn on_data(&mut self, input: &[u8], _ctx: &mut Ctx<'_, ()>) -> usize {
        self.bytes_discarded += input.len() as u64;
        input.len()
    }
{%- endif %}
}
{%- when Handler::Chargen %}

/// RFC 864 character generator: lines of 72 printable ASCII characters (32 to 126) ending in
/// CR LF, each line starting one character further along the 95-character cycle. Input is
/// ignored; output flows as fast as the peer reads it (`on_writable` refills the queue).
#[derive(Debug, Default)]
pub struct Chargen {
    line: usize,
    column: usize,
}

{% include "rust/chargen_pattern.rs" %}

impl Handler for Chargen {
    type Worker = ();

    /// Talks first: `on_writable` runs while the queue has room.
    fn open(ctx: &mut Ctx<'_, ()>) -> Chargen {
        ctx.want_writable(true);
        Chargen::default()
    }
{%- if v.framed %}

    fn on_message(&mut self, _msg: &[u8], _ctx: &mut Ctx<'_, ()>) {}
{%- else %}

    fn on_data(&mut self, input: &[u8], _ctx: &mut Ctx<'_, ()>) -> usize {
        input.len()
    }
{%- endif %}

    /// Tops the queue up to the high-water mark, a few kilobytes at a time.
    fn on_writable(&mut self, ctx: &mut Ctx<'_, ()>) {
        let mut chunk = [0u8; 4096];
        while !ctx.congested() {
            for byte in chunk.iter_mut() {
                *byte = self.next_byte();
            }
            if ctx.write(&chunk).is_err() {
                return;
            }
        }
    }
}
{%- when Handler::EchoCheck %}
{% include "rust/client_handlers.rs" %}
{%- when Handler::Load %}
{% include "rust/client_handlers.rs" %}
{%- when _ %}
{%- endmatch %}
{{ v.runtime_open }}
{%- else %}
/// What the handler may know about a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramInfo {
    /// Counts the datagrams this worker received, from 1.
    pub id: u64,
    /// Which event loop received it, from 0.
    pub worker: usize,
    /// The sender; the reply goes back to it.
    pub peer: SocketAddr,
}

/// A reply that does not fit in `OUTPUT_BUFFER`: nothing was appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputRefused;

impl std::fmt::Display for OutputRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the reply would not fit in one datagram of OUTPUT_BUFFER bytes")
    }
}

impl std::error::Error for OutputRefused {}

/// The reply datagram for the sender: write nothing to send no reply, or zero bytes to send
/// an empty datagram. Implements [`io::Write`] and [`std::fmt::Write`].
#[derive(Debug, Default)]
pub struct Reply {
    buf: Vec<u8>,
    has_reply: bool,
}

impl Reply {
    /// Appends to the reply, or appends nothing when it would not fit.
    pub fn write_bytes(&mut self, data: &[u8]) -> Result<(), OutputRefused> {
        if data.len() > OUTPUT_BUFFER - self.buf.len() {
            return Err(OutputRefused);
        }
        self.buf.extend_from_slice(data);
        self.has_reply = true;
        Ok(())
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.has_reply = false;
    }
}

impl io::Write for Reply {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_bytes(data).map_err(io::Error::other)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Write for Reply {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.write_bytes(text.as_bytes()).map_err(|_| std::fmt::Error)
    }
}

/// The datagram being answered.
pub struct Ctx<'a> {
    /// The reply, sent to `info().peer`.
    pub out: &'a mut Reply,
    info: DatagramInfo,
}

impl Ctx<'_> {
    pub fn info(&self) -> &DatagramInfo {
        &self.info
    }

    /// Appends to the reply (the same as `self.out.write_bytes`).
    pub fn write(&mut self, data: &[u8]) -> Result<(), OutputRefused> {
        self.out.write_bytes(data)
    }
}

/// The one place for your protocol: the loop calls these, and they must not block. Each
/// worker (event loop) makes its own handler with `Default`: its fields are that worker's
/// state. The contract is the same as the C output's (README, "The handler contract").
pub trait Handler: Default + Send + 'static {
    /// A worker (an event loop) starts, before the program says it is ready: make its handler
    /// (the default: `Default`). An error (a file that does not parse) stops the program
    /// before it is ready: it prints `PROGRAM: worker INDEX: ERROR` and exits 1.
    fn start_worker(index: usize) -> Result<Self, StartError> {
        let _ = index;
        Ok(Self::default())
    }

    /// One datagram arrived whole; `ctx.out` builds the reply to its sender.
    fn on_message(&mut self, msg: &[u8], ctx: &mut Ctx<'_>);

    /// The worker is stopping.
    fn on_stop(&mut self) {}
}

{{ v.runtime_close }}
{%- match v.handler %}
{%- when Handler::Echo %}

/// RFC 862 echo: every datagram is sent back whole to its sender.
#[derive(Debug, Default)]
pub struct Echo {
    /// Datagrams answered so far.
    pub datagrams: u64,
}

impl Handler for Echo {
    fn on_message(&mut self, msg: &[u8], ctx: &mut Ctx<'_>) {
        self.datagrams += 1;
        let _ = ctx.write(msg); // fits: OUTPUT_BUFFER >= BUFFER_SIZE
    }
}
{%- when Handler::Discard %}

/// RFC 863 discard: every datagram is dropped; nothing is ever sent.
#[derive(Debug, Default)]
pub struct Discard {
    /// Datagrams dropped so far.
    pub datagrams: u64,
}

impl Handler for Discard {
    fn on_message(&mut self, _msg: &[u8], _ctx: &mut Ctx<'_>) {
        self.datagrams += 1;
    }
}
{%- when Handler::Chargen %}

/// RFC 864 character generator: each datagram received is answered by one datagram of 0 to
/// 512 characters of the pattern (lines of 72 printable characters ending in CR LF, each line
/// starting one character further along the 95-character cycle), continuing where the last
/// reply stopped.
#[derive(Debug)]
pub struct Chargen {
    line: usize,
    column: usize,
    rng: u32,
}

impl Default for Chargen {
    fn default() -> Self {
        Chargen { line: 0, column: 0, rng: 2_463_534_242 }
    }
}

{% include "rust/chargen_pattern.rs" %}

impl Handler for Chargen {
    fn on_message(&mut self, _msg: &[u8], ctx: &mut Ctx<'_>) {
        // xorshift32: cheap, and good enough to vary reply lengths.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        let reply: Vec<u8> = (0..self.rng % 513).map(|_| self.next_byte()).collect();
        let _ = ctx.write(&reply);
    }
}
{%- when _ %}
{%- endmatch %}
{{ v.runtime_open }}
{%- endif %}
