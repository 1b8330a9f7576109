{% include "rust/conn_common.rs" %}

/// One TCP connection: the handler contract's machinery, shared by every model.
///
/// Input is read into a per-loop scratch buffer; only what the handler leaves unconsumed is
/// copied into the connection's own buffer. A connection moves through [`Phase`]s: `Open`
/// (the handler is called), `Closing` (queued output is sent, input dropped), `Linger`
/// (half-closed, input dropped until the peer's FIN or `LINGER`, so unread input cannot turn
/// the close into a reset that destroys the reply) and `Done`.
struct Conn<H: Handler> {
    stream: TcpStream,
    /// None until `Handler::open` ran (and if it panicked).
    handler: Option<H>,
    out: Out,
    control: Control,
    /// Unconsumed input: `input[in_start..]`.
    input: Vec<u8>,
    in_start: usize,
    /// The peer's FIN was read.
    read_closed: bool,
    /// ...and `on_eof` is still owed.
    eof_pending: bool,
    /// Input waits for the handler (left while congested, or behind a reply it produced on
    /// demand): present it again once the output drains.
    input_held: bool,
{%- if v.framing == FramingKind::Line || v.framing == FramingKind::Delimiter %}
    /// Leading unconsumed bytes known to hold no delimiter.
    frame_scanned: usize,
{%- endif %}
    /// Output above the high-water mark: do not read.
    read_paused: bool,
    last_active: Instant,
    linger_until: Option<Instant>,
{%- if v.uses_epoll %}
    /// A short read may not mean empty: the peer hung up (the FIN can sit behind the data) or
    /// sent urgent data (a read stops at its mark). Read on to EAGAIN.
    read_to_eagain: bool,
    /// On the loop's list of connections with work left.
    in_ready: bool,
{%- endif %}
{%- if v.uses_io_uring %}
    /// Requests in the ring for this connection. It is released only when none is left, since
    /// the kernel may still write to its buffers or read its output queue until then.
    recv_armed: bool,
    recv_cancelling: bool,
    /// At most one send at a time, so bytes never overtake each other.
    send_inflight: bool,
    cancels_inflight: u32,
    /// The sendmsg in flight's header and iovec: empty, or one. A Vec rather than a Box, so
    /// running out of memory ends this connection instead of aborting the process.
    send_io: Vec<SendIo>,
{%- endif %}
}

impl<H: Handler> Conn<H> {
    fn new(stream: TcpStream, peer: SocketAddr, worker: usize, now: Instant) -> Conn<H> {
        let local = stream.local_addr().unwrap_or(peer);
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        Conn {
            stream,
            handler: None,
            out: Out::default(),
            control: Control {
                info: ConnInfo { id, worker, peer, local },
                phase: Phase::Open,
                read_closed: false,
                reason: CloseReason::Peer,
                want_writable: false,
                timer_at: None,
                reset_on_close: false,
                resume_input: false,
                input_paused: false,
{%- if v.client %}
                failed: false,
                heard: false,
{%- endif %}
            },
            input: Vec::new(),
            in_start: 0,
            read_closed: false,
            eof_pending: false,
            input_held: false,
{%- if v.framing == FramingKind::Line || v.framing == FramingKind::Delimiter %}
            frame_scanned: 0,
{%- endif %}
            read_paused: false,
            last_active: now,
            linger_until: None,
{%- if v.uses_epoll %}
            read_to_eagain: false,
            in_ready: false,
{%- endif %}
{%- if v.uses_io_uring %}
            recv_armed: false,
            recv_cancelling: false,
            send_inflight: false,
            cancels_inflight: 0,
            send_io: Vec::new(),
{%- endif %}
        }
    }

    /// Its socket, for the loop's waits.
    fn raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Ends the connection at once for a reason the loop found. A graceful close already
    /// under way keeps the reason it began with, unless an error cuts it short.
    fn end(&mut self, reason: CloseReason) {
        let is_error = matches!(reason, CloseReason::Reset(_) | CloseReason::Error(_));
        if self.control.phase == Phase::Open || (self.control.phase != Phase::Done && is_error) {
            self.control.reason = reason;
        }
        self.control.phase = Phase::Done;
    }

    /// A failed send or receive: resets are the peer's doing, anything else is an error.
    fn fail(&mut self, error: &io::Error) {
        let errno = error.raw_os_error().unwrap_or(libc::EIO);
        let reset = matches!(errno, libc::ECONNRESET | libc::EPIPE | libc::ECONNABORTED | libc::ETIMEDOUT);
        self.end(if reset { CloseReason::Reset(errno) } else { CloseReason::Error(errno) });
    }

    /// Runs a callback with a context, catching a panic: the panic is logged and counted and
    /// ends only this connection.
    fn call<A: WorkerAccess<H::Worker>>(&mut self, access: &mut A, f: impl FnOnce(&mut H, &mut Ctx<'_, H::Worker>)) {
        let Some(handler) = self.handler.as_mut() else { return };
        let (out, control) = (&mut self.out, &mut self.control);
        let result = access.with(|worker| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut ctx = Ctx { out, worker, control };
                f(handler, &mut ctx);
            }))
        });
        self.after_callback(result.is_err());
    }

    /// Input the handler has not consumed.
    fn unconsumed(&self) -> usize {
        self.input.len() - self.in_start
    }

    fn after_callback(&mut self, panicked: bool) {
        if std::mem::take(&mut self.control.resume_input) {
            self.input_held = self.unconsumed() > 0;
        }
        if panicked {
            let count = HANDLER_PANICS.fetch_add(1, Ordering::Relaxed) + 1;
            log_line!("{PROGRAM}: a handler panicked; connection {} closed ({count} so far)", self.control.info.id);
            self.end(CloseReason::Panic);
        } else if self.out.out_of_memory {
            self.end(CloseReason::Error(libc::ENOMEM));
        } else if self.out.over_limit {
            let mut count = OUTPUT_LIMIT_CLOSES.fetch_add(1, Ordering::Relaxed);
            log_occurrence(
                if self.out.oversized_write {
                    "closed a connection: the handler made one write larger than io.output_limit"
                } else {
                    "closed a connection past io.output_limit (the peer does not read as fast as the handler writes)"
                },
                &mut count,
            );
            self.end(CloseReason::OutputLimit);
        }
        if self.control.phase == Phase::Done {
            self.out.closed = true;
        }
    }

    /// Makes the handler with `Handler::open` once the loop has filed the connection.
    fn start<A: WorkerAccess<H::Worker>>(&mut self, access: &mut A) {
        let (out, control) = (&mut self.out, &mut self.control);
        let result = access.with(|worker| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut ctx = Ctx { out, worker, control };
                H::open(&mut ctx)
            }))
        });
        let panicked = result.is_err();
        self.handler = result.ok();
        self.after_callback(panicked);
    }

    /// Calls `on_close` with the reason decided earlier, then drops the socket.
    fn release<A: WorkerAccess<H::Worker>>(mut self, access: &mut A) {
        self.control.phase = Phase::Done;
        let reason = self.control.reason;
        if let Some(handler) = self.handler.as_mut() {
            let result = access.with(|worker| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.on_close(reason, worker)))
            });
            if result.is_err() {
                HANDLER_PANICS.fetch_add(1, Ordering::Relaxed);
                log_line!("{PROGRAM}: a handler panicked in on_close of connection {}", self.control.info.id);
            }
        }
        if self.control.reset_on_close {
            let _ = set_linger(self.stream.as_raw_fd(), 0);
        }
        op_log!("{PROGRAM}: op=close fd={} reason={}", self.stream.as_raw_fd(), self.control.reason);
    }

    /// The earliest moment the loop must look at this connection without socket events.
    fn deadline(&self) -> Option<Instant> {
        if self.control.phase == Phase::Linger {
            return self.linger_until;
        }
        let timer = if self.control.phase == Phase::Open { self.control.timer_at } else { None };
        let idle = IDLE_TIMEOUT.map(|t| self.last_active + t);
        match (timer, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A deadline passed: the handler's timer, the idle timeout or the linger.
    fn expire<A: WorkerAccess<H::Worker>>(&mut self, access: &mut A, now: Instant) {
        if self.control.phase == Phase::Linger && self.linger_until.is_some_and(|at| now >= at) {
            self.control.phase = Phase::Done;
            return;
        }
        if IDLE_TIMEOUT.is_some_and(|t| now >= self.last_active + t) {
            self.end(CloseReason::Idle);
            return;
        }
        if self.control.phase == Phase::Open && self.control.timer_at.is_some_and(|at| now >= at) {
            self.control.timer_at = None;
            self.call(access, |h, ctx| h.on_timer(ctx));
        }
    }

    /// Hands input to the handler, window by window while it takes some.
    fn deliver<A: WorkerAccess<H::Worker>>(&mut self, access: &mut A, fresh: &[u8]) {
        let mut fresh = fresh;
        while self.deliver_window(access, fresh) {
            fresh = &[]; // what lies beyond the window is kept input, presented next
        }
    }

    /// Hands one window of input to the handler: `fresh` bytes (in the scratch buffer) after
    /// whatever the connection kept. Unconsumed bytes are kept for next time, up to
    /// `MAX_MESSAGE`. True when input beyond the window waits and the handler can take it.
    fn deliver_window<A: WorkerAccess<H::Worker>>(&mut self, access: &mut A, fresh: &[u8]) -> bool {
        let kept = std::mem::take(&mut self.input);
        let from_kept = kept.len() > self.in_start;
        let data: &[u8] = if from_kept { &kept[self.in_start..] } else { fresh };
        let data = &data[..data.len().min(PRESENT_MAX)];
        let presented = data.len();
        if data.is_empty() {
            self.input = kept;
            return false;
        }
        let mut used = 0;
        let Some(handler) = self.handler.as_mut() else {
            self.input = kept;
            return false;
        };
        let (out, control) = (&mut self.out, &mut self.control);
{%- if v.framing == FramingKind::Line || v.framing == FramingKind::Delimiter %}
        let scanned = &mut self.frame_scanned;
{%- endif %}
        let result = access.with(|worker| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut ctx = Ctx { out, worker, control };
{%- if v.framing == FramingKind::Line || v.framing == FramingKind::Delimiter %}
                used = frame(data, scanned, &mut ctx, |msg, ctx| handler.on_message(msg, ctx));
{%- else if v.framed %}
                used = frame(data, &mut ctx, |msg, ctx| handler.on_message(msg, ctx));
{%- else %}
                used = handler.on_data(data, &mut ctx).min(data.len());
{%- endif %}
            }))
        });
        if from_kept {
            self.input = kept;
            self.in_start += used;
            if self.in_start == self.input.len() {
                self.input.clear();
                self.in_start = 0;
                if self.input.capacity() > 4 * BUFFER_SIZE {
                    self.input = Vec::new(); // a large message is over: do not keep its buffer
                }
            }
        } else {
            let rest = &fresh[used..];
            self.input = kept;
            if !rest.is_empty() && self.control.phase == Phase::Open {
                self.input.clear();
                self.in_start = 0;
                if self.input.try_reserve(rest.len()).is_err() {
                    self.end(CloseReason::Error(libc::ENOMEM));
                } else {
                    self.input.extend_from_slice(rest);
                }
            }
        }
        let left_in_window = presented - used;
        self.after_callback(result.is_err());
        let unconsumed = self.unconsumed();
        self.input_held = unconsumed > 0 && (self.out.congested() || self.control.input_paused);
{%- if v.client %}
        // A client reads on while its output waits, so what it leaves unconsumed is bounded
        // here unless its handler paused its input.
        if unconsumed > 0 && self.control.input_paused {
            return false;
        } else if left_in_window > INPUT_LIMIT {
{%- else %}
        if self.input_held {
            // Paced, not refused: reading stops, and what is held may be several messages,
            // so the input limit does not apply to it.
            self.read_paused = true;
            return false;
        } else if left_in_window > INPUT_LIMIT {
{%- endif %}
            reject_input(&mut self.control);
            return false;
        }
        used > 0 && unconsumed > left_in_window && self.control.phase == Phase::Open
    }

    /// The contract's steps that need no socket call: input held back while congested is
    /// presented again once output drains below the low-water mark, `on_eof` is delivered once
    /// the handler has taken what came before it, and a close whose output is all sent becomes
    /// a lingering close (or ends at once). True when something happened.
    fn settle<A: WorkerAccess<H::Worker>>(&mut self, access: &mut A, now: Instant) -> bool {
        let mut progress = false;
        if self.out.pending <= OUTPUT_BUFFER / 2 {
            self.read_paused = false;
            if self.input_held && !self.control.input_paused && self.control.phase == Phase::Open {
                self.deliver(access, &[]); // the handler held input back while congested
                progress = true;
            }
        }
        // The FIN is behind every byte: it is taken only when reading would have reached it
        // (not while paused; a completion model may have received it early) and once no input
        // waits for the handler, held or behind a reply it is producing.
        let waiting_behind_reply = self.control.want_writable && self.unconsumed() > 0;
        if self.eof_pending && !self.input_held && !self.read_paused && !self.control.input_paused && !waiting_behind_reply && self.control.phase == Phase::Open {
            self.eof_pending = false;
            self.call(access, |h, ctx| h.on_eof(ctx));
            progress = true;
        }
        if self.control.phase == Phase::Closing && self.out.pending == 0 {
            if self.read_closed {
                self.control.phase = Phase::Done; // the peer already finished: nothing to linger for
                return true;
            }
            op_log!("{PROGRAM}: op=shutdown fd={} how=write", self.stream.as_raw_fd());
            if self.stream.shutdown(std::net::Shutdown::Write).is_err() || LINGER.is_zero() {
                self.control.phase = Phase::Done;
                return true;
            }
            self.control.phase = Phase::Linger;
            self.out.closed = true;
            self.linger_until = Some(now + LINGER);
            progress = true;
        }
        progress
    }

{%- if v.client %}
    /// Asks a handler that wants to produce (`want_writable`) for more while output is below
    /// the low-water mark. True when it produced.
{%- else %}
    /// Asks a handler that wants to produce (`want_writable`) for more while output is below
    /// the low-water mark, and stops reading above the high-water mark. True when it produced.
{%- endif %}
    fn produce<A: WorkerAccess<H::Worker>>(&mut self, access: &mut A) -> bool {
        let mut progress = false;
        if self.control.phase == Phase::Open && self.control.want_writable && self.out.pending <= OUTPUT_BUFFER / 2 {
            let before = self.out.pending;
            self.call(access, |h, ctx| h.on_writable(ctx));
            if self.out.pending == before {
                // Nothing to say: wait until asked again. Input that waited behind the reply
                // is presented again.
                self.control.want_writable = false;
                self.input_held = self.unconsumed() > 0;
                progress = self.input_held; // ...and that input is presented now
            } else {
                progress = true;
            }
        }
{%- if v.client %}
        // A client reads on while its output waits: what comes back is what it asked for, and
        // a server that stops reading until its replies are read would otherwise wait on us as
        // we wait on it. Its output is bounded by OUTPUT_LIMIT, its input by what it consumes.
{%- else %}
        if self.out.congested() {
            self.read_paused = true;
        }
{%- endif %}
        progress
    }

    /// Whether the connection takes input now: while open, unless paused by back-pressure{% if v.client %}
    /// (never, for a client){% endif %} or waiting for the handler to take EOF; while closing, to read
    /// and drop what still comes.
    fn wants_input(&self) -> bool {
        !self.read_closed && (self.control.phase != Phase::Open || (!self.read_paused && !self.control.input_paused && !self.eof_pending))
    }
}

/// Input past `MAX_MESSAGE`: what was queued is still delivered, then a lingering close.
fn reject_input(control: &mut Control) {
    if control.phase == Phase::Open {
        let mut count = INPUT_LIMIT_CLOSES.fetch_add(1, Ordering::Relaxed);
        log_occurrence("closed a connection whose input is longer than io.max_message", &mut count);
        control.phase = Phase::Closing;
        control.reason = CloseReason::InputLimit;
    }
}

/// Closes counted for `log_occurrence`, shared by every worker.
static OUTPUT_LIMIT_CLOSES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static INPUT_LIMIT_CLOSES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
{%- if v.framed %}

/// Built-in framing ({{ v.framing }}): hands every whole message to `deliver` and returns the
{%- if v.client %}
/// bytes consumed. A client takes every message while its output waits: the replies are what
/// it asked for.
{%- else %}
/// bytes consumed. Stops while the output is congested, so a pipelining peer is paced by what
/// it reads.
{%- endif %}
{%- if v.framing == FramingKind::Line || v.framing == FramingKind::Delimiter %}
/// A message arriving in many pieces is searched once, not once per piece: `scanned` leading
/// bytes are known to hold no delimiter, and the search resumes after them.
fn frame<W>(data: &[u8], scanned: &mut usize, ctx: &mut Ctx<'_, W>, mut deliver: impl FnMut(&[u8], &mut Ctx<'_, W>)) -> usize {
    let mut skip = if *scanned < data.len() { *scanned } else { 0 };
    *scanned = 0;
{%- else %}
fn frame<W>(data: &[u8], ctx: &mut Ctx<'_, W>, mut deliver: impl FnMut(&[u8], &mut Ctx<'_, W>)) -> usize {
{%- endif %}
    let mut used = 0;
    while ctx.control.phase == Phase::Open && used < data.len(){% if !v.client %} && !ctx.out.congested(){% endif %} {
        let rest = &data[used..];
{%- if v.framing == FramingKind::Line %}
        let Some(end) = rest[skip..].iter().position(|&b| b == b'\n').map(|at| skip + at) else {
            *scanned = rest.len();
            break;
        };
        skip = 0;
        let msg = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
        if msg.len() > MAX_MESSAGE {
            reject_input(ctx.control);
            break;
        }
        used += end + 1;
        deliver(msg, ctx);
{%- else if v.framing == FramingKind::Delimiter %}
        let Some(end) = rest[skip..].windows(DELIMITER.len()).position(|w| w == DELIMITER).map(|at| skip + at) else {
            // A delimiter may begin in the last DELIMITER.len() - 1 bytes.
            *scanned = rest.len().saturating_sub(DELIMITER.len() - 1);
            break;
        };
        skip = 0;
        if end > MAX_MESSAGE {
            reject_input(ctx.control);
            break;
        }
        used += end + DELIMITER.len();
        deliver(&rest[..end], ctx);
{%- else %}
        const PREFIX: usize = {{ v.prefix_bytes }};
        if rest.len() < PREFIX {
            break;
        }
        let mut bytes = [0u8; 8];
{%- if v.prefix_big_endian %}
        bytes[8 - PREFIX..].copy_from_slice(&rest[..PREFIX]);
        let length = u64::from_be_bytes(bytes);
{%- else %}
        bytes[..PREFIX].copy_from_slice(&rest[..PREFIX]);
        let length = u64::from_le_bytes(bytes);
{%- endif %}
        if length > MAX_MESSAGE as u64 {
            reject_input(ctx.control);
            break;
        }
        let length = length as usize;
        if rest.len() - PREFIX < length {
            break;
        }
        used += PREFIX + length;
        deliver(&rest[PREFIX..PREFIX + length], ctx);
{%- endif %}
    }
    used
}
{%- endif %}
