{%- include "rust/common.rs" %}

use io_uring::{cqueue, opcode, squeue, types, IoUring};

/// Provided buffers per worker: a power of two, about 4 MiB of them. A buffer is busy only
/// from a receive's completion until the handler has seen it, so this bounds one batch of
/// completions, not connections.
const RING_BUFFERS: usize = {{ v.ring_buffers }};
/// Submission queue entries; the completion queue is four times larger.
const RING_ENTRIES: u32 = 4096;
const BUFFER_GROUP: u16 = 0;
{%- if v.tcp %}
const RING_BUFFER_SIZE: usize = BUFFER_SIZE;
{%- else %}
/// A received datagram in a provided buffer: io_uring's header, the sender's address, then the
/// payload; one longer than `BUFFER_SIZE` is flagged truncated.
const RING_BUFFER_SIZE: usize = 16 + std::mem::size_of::<libc::sockaddr_storage>() + BUFFER_SIZE;
{%- endif %}

/// What a completion belongs to, in the low bits of its user data; the rest is a slot number.
const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;
const OP_CANCEL: u64 = 3;
const OP_ACCEPT: u64 = 4;
const OP_STOP: u64 = 5;
/// The cancel of the accept: its own completion says when the accept ended.
const OP_ACCEPT_CANCEL: u64 = 6;
const OP_BITS: u32 = 3;

fn tag(slot: usize, op: u64) -> u64 {
    ((slot as u64) << OP_BITS) | op
}

/// Why io_uring cannot be used here, as one line that says what to do instead.
fn unavailable(what: &str, error: io::Error) -> io::Error {
    let cause = match error.raw_os_error() {
        Some(libc::ENOSYS) => "this kernel has no io_uring",
        Some(libc::EPERM | libc::EACCES) => "io_uring is refused here (a seccomp profile, as in many containers, or the kernel.io_uring_disabled sysctl)",
        Some(libc::EINVAL) => "this kernel's io_uring lacks what this server uses (Linux 6.0 or later)",
        _ => "io_uring could not be set up",
    };
    io::Error::new(error.kind(), format!("{cause}: {what}: {error}; render the spec with --model epoll to run without it"))
}

/// One ring per worker, used only by that worker's thread: set up with the fastest flags the
/// kernel takes (SINGLE_ISSUER + DEFER_TASKRUN: completions are posted only when the loop asks,
/// in one batch; else COOP_TASKRUN; else none), its descriptor registered, and a ring of
/// provided buffers that multishot receives fill.
struct Ring {
    uring: IoUring,
    /// The buffer ring the kernel takes buffers from (mapped, page-aligned, never moved).
    provided: *mut types::BufRingEntry,
    /// `RING_BUFFERS` buffers of `RING_BUFFER_SIZE` bytes; never resized, so never moved.
    buffers: Vec<u8>,
    /// Our copy of the buffer ring's tail, and buffers given back since the kernel last saw it.
    tail: u16,
    returned: u16,
    /// Completions of the last wait: (user data, result, flags).
    completed: Vec<(u64, i32, u32)>,
    /// Requests whose last completion has not come yet.
    inflight: usize,
}

impl Ring {
    fn open() -> io::Result<Ring> {
        let mut last = io::Error::from_raw_os_error(libc::EINVAL);
        let mut uring = None;
        for flags in 0..3 {
            let mut builder = IoUring::builder();
            builder.setup_submit_all().setup_cqsize(4 * RING_ENTRIES);
            match flags {
                0 => builder.setup_single_issuer().setup_defer_taskrun(),
                1 => builder.setup_coop_taskrun(),
                _ => &mut builder,
            };
            let built = builder.build(RING_ENTRIES);
            op_log!("{PROGRAM}: op=io_uring_setup fd=-1 attempt={flags} result={}", op_result(&built));
            match built {
                Ok(ring) => {
                    uring = Some(ring);
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = e,
                Err(e) => return Err(unavailable("io_uring_setup", e)),
            }
        }
        let Some(uring) = uring else { return Err(unavailable("io_uring_setup", last)) };
        let _ = uring.submitter().register_ring_fd(); // an optimisation: fine without it
        let ring_bytes = RING_BUFFERS * std::mem::size_of::<types::BufRingEntry>();
        // SAFETY: a fresh private anonymous mapping, owned by this Ring until drop.
        let provided = unsafe {
            libc::mmap(std::ptr::null_mut(), ring_bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if provided == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut ring = Ring {
            uring,
            provided: provided.cast(),
            buffers: vec![0; RING_BUFFERS * RING_BUFFER_SIZE],
            tail: 0,
            returned: 0,
            completed: Vec::with_capacity(1024),
            inflight: 0,
        };
        // SAFETY: the mapping and the buffers live as long as the ring (dropped after it).
        unsafe {
            ring.uring
                .submitter()
                .register_buf_ring_with_flags(provided as u64, RING_BUFFERS as u16, BUFFER_GROUP, 0)
                .map_err(|e| unavailable("io_uring_register_buf_ring", e))?;
        }
        // The kernel cycles through every buffer within the first RING_BUFFERS receives: touch
        // them now, so their memory is resident from the start (no page faults while serving,
        // and a steady resident size) rather than growing in the first seconds of traffic.
        let base = ring.buffers.as_mut_ptr();
        for offset in (0..ring.buffers.len()).step_by(4096) {
            // SAFETY: offset < buffers.len().
            unsafe { std::ptr::write_volatile(base.add(offset), 0) };
        }
        for id in 0..RING_BUFFERS {
            ring.return_buffer(id as u16);
        }
        ring.give_back();
        ring.check_multishot()?;
        Ok(ring)
    }

    /// Queues a request; a full submission queue is submitted first.
    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every buffer a request points to outlives it (see the callers).
            if unsafe { self.uring.submission().push(&entry) }.is_ok() {
                self.inflight += 1;
                return Ok(());
            }
            self.give_back(); // receives submitted now must find the buffers given back
            self.uring.submit()?;
        }
    }

    fn return_buffer(&mut self, id: u16) {
        let index = (self.tail.wrapping_add(self.returned) as usize) & (RING_BUFFERS - 1);
        // SAFETY: index < RING_BUFFERS entries of the mapping; the kernel reads only up to the
        // tail, which `give_back` publishes after these writes.
        let entry = unsafe { &mut *self.provided.add(index) };
        entry.set_addr(self.buffers[id as usize * RING_BUFFER_SIZE..].as_ptr() as u64);
        entry.set_len(RING_BUFFER_SIZE as u32);
        entry.set_bid(id);
        self.returned += 1;
    }

    /// The kernel may take the buffers given back so far (one store, however many).
    fn give_back(&mut self) {
        if self.returned > 0 {
            self.tail = self.tail.wrapping_add(self.returned);
            self.returned = 0;
            // SAFETY: the tail field of the mapped ring, shared with the kernel.
            let tail = unsafe { &*(types::BufRingEntry::tail(self.provided) as *const std::sync::atomic::AtomicU16) };
            tail.store(self.tail, Ordering::Release);
        }
    }

    fn buffer(&self, id: u16, len: usize) -> &[u8] {
        let start = id as usize * RING_BUFFER_SIZE;
        &self.buffers[start..start + len.min(RING_BUFFER_SIZE)]
    }

    /// Submits what is queued and waits up to `timeout` (None: no limit) for completions,
    /// which it collects into `completed`.
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.give_back();
        let waited = match timeout {
            Some(t) => {
                let ts = types::Timespec::new().sec(t.as_secs()).nsec(t.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                self.uring.submitter().submit_with_args(1, &args)
            }
            None => self.uring.submit_and_wait(1),
        };
        match waited {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EAGAIN | libc::EBUSY)) => {}
            Err(e) => return Err(e),
        }
        self.completed.clear();
        self.completed.extend(self.uring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
        let ended = self.completed.iter().filter(|&&(_, _, flags)| !cqueue::more(flags)).count();
        self.inflight = self.inflight.saturating_sub(ended);
        Ok(())
    }

    /// Start-up check that multishot receive into provided buffers works (Linux 6.0), on a
    /// socket pair: one byte must arrive in a buffer with more to come, then EOF ends it.
    fn check_multishot(&mut self) -> io::Result<()> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        self.push(opcode::RecvMulti::new(types::Fd(ours.as_raw_fd()), BUFFER_GROUP).build().user_data(0))?;
        (&theirs).write_all(b"x")?;
        drop(theirs);
        let (mut got_byte, mut got_eof) = (false, false);
        while !got_eof {
            self.wait(None)?;
            for (_, result, flags) in std::mem::take(&mut self.completed) {
                if let Some(id) = cqueue::buffer_select(flags) {
                    self.return_buffer(id);
                }
                if result == 1 && cqueue::more(flags) {
                    got_byte = true;
                } else if result == 0 && got_byte {
                    got_eof = true;
                } else {
                    let error = if result < 0 { -result } else { libc::EINVAL };
                    return Err(unavailable("multishot receive", io::Error::from_raw_os_error(error)));
                }
            }
        }
        self.give_back();
        Ok(())
    }
}

impl Drop for Ring {
    /// Cancels every request and waits (a second at most) for their last completions, so the
    /// kernel is done with the buffers before they are freed: closing the ring alone would
    /// leave their cancellation to run after close() has returned.
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        let everything = types::CancelBuilder::any();
        if self.inflight > 0 && self.push(opcode::AsyncCancel2::new(everything).build().user_data(0)).is_ok() {
            while self.inflight > 0 && Instant::now() < deadline && self.wait(Some(Duration::from_millis(100))).is_ok() {}
        }
        // SAFETY: the mapping made in `open`. The IoUring field is dropped after this body,
        // which closes the ring; nothing of ours is submitted after that.
        unsafe { libc::munmap(self.provided.cast(), RING_BUFFERS * std::mem::size_of::<types::BufRingEntry>()) };
    }
}
{%- if v.tcp %}
{% include "rust/tcp_conn.rs" %}
{% include "rust/timers.rs" %}

/// A send's msghdr and iovec, boxed so they stay put while the kernel may read them.
struct SendIo {
    msg: libc::msghdr,
    iov: [libc::iovec; OUT_IOV],
}

impl Default for SendIo {
    fn default() -> SendIo {
        // SAFETY: all-zero msghdr and iovecs are valid (empty) values.
        unsafe { std::mem::zeroed() }
    }
}

/// The io_uring loop. The listener has one multishot accept; each connection has one
/// multishot receive into the provided buffers and at most one send, so bytes never overtake
/// each other. Completions are handled in batches, and everything they cause is submitted
/// with the next wait, in one system call. The connection machinery is the one every model
/// shares: only what starts I/O differs.
struct Loop<H: Handler> {
    ring: Ring,
    listener: TcpListener,
    index: usize,
    worker: H::Worker,
    slots: Vec<Option<Conn<H>>>,
    free: Vec<usize>,
    timers: Timers,
    active: usize,
    accept_armed: bool,
    accept_cancelling: bool,
    /// After running out of descriptors: accept again from then.
    accept_resume: Option<Instant>,
    /// Connections the multishot accept took past `MAX_CONNECTIONS` before its cancel landed:
    /// they wait, unread, as they would have in the backlog.
    parked: std::collections::VecDeque<TcpStream>,
    spare: Option<std::fs::File>,
}

impl<H: Handler> Loop<H> {
    fn arm_accept(&mut self) -> io::Result<()> {
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        self.ring.push(opcode::AcceptMulti::new(types::Fd(self.listener.as_raw_fd())).flags(flags).build().user_data(tag(0, OP_ACCEPT)))?;
        self.accept_armed = true;
        Ok(())
    }

    fn cancel_accept(&mut self) -> io::Result<()> {
        if self.accept_armed && !self.accept_cancelling {
            self.ring.push(opcode::AsyncCancel::new(tag(0, OP_ACCEPT)).build().user_data(tag(0, OP_ACCEPT_CANCEL)))?;
            self.accept_cancelling = true;
        }
        Ok(())
    }

    /// Keeps the accept armed while there is room, and cancels it at `MAX_CONNECTIONS`, so
    /// new peers wait in the backlog.
    fn manage_accept(&mut self, now: Instant) -> io::Result<()> {
        if self.accept_resume.is_some_and(|at| now >= at) {
            self.accept_resume = None;
        }
        let room = self.active + self.parked.len() < MAX_CONNECTIONS;
        if room && !self.accept_armed && self.accept_resume.is_none() {
            self.arm_accept()
        } else if !room {
            self.cancel_accept()
        } else {
            Ok(())
        }
    }

    fn open(&mut self, stream: TcpStream, now: Instant) -> io::Result<()> {
        if configure_connection(&stream).is_err() {
            return Ok(());
        }
        let Ok(peer) = stream.peer_addr() else { return Ok(()) };
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let mut conn = Conn::new(stream, peer, self.index, now);
        conn.start(&mut Direct(&mut self.worker));
        self.slots[slot] = Some(conn);
        self.active += 1;
        self.advance(slot, now)
    }

    fn on_accept(&mut self, result: i32, flags: u32, now: Instant) -> io::Result<()> {
        if !cqueue::more(flags) {
            self.accept_armed = false;
            self.accept_cancelling = false;
        }
        op_log!("{PROGRAM}: op=accept fd={} conn={result} result={}", self.listener.as_raw_fd(), if result >= 0 { "ok".to_string() } else { op_result::<()>(&Err(io::Error::from_raw_os_error(-result))) });
        if matches!(-result, libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) {
            // Shed the waiting peer with the spare descriptor, then pause (see accept_connection).
            match accept_connection(&self.listener, &mut self.spare) {
                Accepted::Conn(stream, _) => return self.open(stream, now),
                Accepted::None => return Ok(()),
                Accepted::Exhausted => {
                    self.accept_resume = Some(now + ACCEPT_PAUSE);
                    return self.cancel_accept();
                }
            }
        }
        if result < 0 {
            if !matches!(-result, libc::ECANCELED | libc::ECONNABORTED | libc::EINTR | libc::EAGAIN) {
                log_line!("{PROGRAM}: accept: {}", io::Error::from_raw_os_error(-result));
            }
            return Ok(());
        }
        // SAFETY: the kernel just made this descriptor for us; the stream owns it from here.
        let stream = unsafe { TcpStream::from_raw_fd(result) };
        if self.active >= MAX_CONNECTIONS {
            self.parked.push_back(stream);
            return Ok(());
        }
        self.open(stream, now)
    }

    /// After the connection's handler ran: settle the contract's steps, then start the I/O
    /// they call for (a send, a receive, or cancelling the receive while input is not wanted).
    fn advance(&mut self, slot: usize, now: Instant) -> io::Result<()> {
        let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return Ok(()) };
        let mut access = Direct(&mut self.worker);
        for _ in 0..CONN_BUDGET {
            if conn.control.phase == Phase::Done {
                break;
            }
            let progress = conn.settle(&mut access, now);
            if conn.control.phase == Phase::Done || !(progress | conn.produce(&mut access)) {
                break;
            }
        }
        let fd = types::Fd(conn.stream.as_raw_fd());
        if conn.control.phase != Phase::Done {
            if conn.out.pending > 0 && !conn.send_inflight {
                let io = &mut *conn.send_io;
                let count = conn.out.gather(&mut io.iov);
                let entry = if count == 1 {
                    opcode::Send::new(fd, io.iov[0].iov_base as *const u8, io.iov[0].iov_len as u32).flags(libc::MSG_NOSIGNAL).build()
                } else {
                    // SAFETY: an all-zero msghdr is valid; it points at iov in the same box,
                    // which stays put until the send completes.
                    io.msg = unsafe { std::mem::zeroed() };
                    io.msg.msg_iov = io.iov.as_mut_ptr();
                    io.msg.msg_iovlen = count;
                    opcode::SendMsg::new(fd, &io.msg).flags(libc::MSG_NOSIGNAL as u32).build()
                };
                self.ring.push(entry.user_data(tag(slot, OP_SEND)))?;
                conn.send_inflight = true;
            }
            if conn.wants_input() {
                if !conn.recv_armed {
                    self.ring.push(opcode::RecvMulti::new(fd, BUFFER_GROUP).build().user_data(tag(slot, OP_RECV)))?;
                    conn.recv_armed = true;
                }
            } else if conn.recv_armed && !conn.recv_cancelling {
                // Back-pressure: data already received still arrives and is kept.
                self.ring.push(opcode::AsyncCancel::new(tag(slot, OP_RECV)).build().user_data(tag(slot, OP_CANCEL)))?;
                conn.recv_cancelling = true;
                conn.cancels_inflight += 1;
            }
        }
        if conn.control.phase == Phase::Done {
            return self.finish(slot);
        }
        self.timers.schedule(slot, conn.deadline());
        Ok(())
    }

    /// The connection is done: cancel what it has in the ring, and close it when nothing of it
    /// is left there, since the kernel may use its buffers until then.
    fn finish(&mut self, slot: usize) -> io::Result<()> {
        let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return Ok(()) };
        self.timers.remove(slot);
        if conn.recv_armed || conn.send_inflight {
            if conn.cancels_inflight == 0 {
                let everything = types::CancelBuilder::fd(types::Fd(conn.stream.as_raw_fd())).all();
                self.ring.push(opcode::AsyncCancel2::new(everything).build().user_data(tag(slot, OP_CANCEL)))?;
                conn.cancels_inflight += 1;
            }
            return Ok(());
        }
        if conn.cancels_inflight > 0 {
            return Ok(());
        }
        if let Some(conn) = self.slots[slot].take() {
            conn.release(&mut Direct(&mut self.worker));
            self.free.push(slot);
            self.active -= 1;
        }
        Ok(())
    }

    /// Handles one completion of a connection.
    fn complete(&mut self, slot: usize, op: u64, result: i32, flags: u32, now: Instant) -> io::Result<()> {
        let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return Ok(()) };
        match op {
            OP_RECV => {
                if !cqueue::more(flags) {
                    conn.recv_armed = false;
                    conn.recv_cancelling = false;
                }
                op_log!("{PROGRAM}: op=recv fd={} bytes={result} result={}", conn.stream.as_raw_fd(), match result { 0 => "EOF".to_string(), r if r > 0 => "ok".to_string(), r => op_result::<()>(&Err(io::Error::from_raw_os_error(-r))) });
                if let Some(id) = cqueue::buffer_select(flags) {
                    if result > 0 && conn.control.phase != Phase::Done {
                        conn.receive(&mut Direct(&mut self.worker), self.ring.buffer(id, result as usize), now);
                    }
                    self.ring.return_buffer(id);
                } else if result == 0 {
                    conn.read_eof();
                } else if result < 0 && !matches!(-result, libc::ENOBUFS | libc::ECANCELED | libc::EINTR | libc::EAGAIN) {
                    // ENOBUFS: every buffer was in use; nothing was lost, the receive is armed again.
                    conn.fail(&io::Error::from_raw_os_error(-result));
                }
            }
            OP_SEND => {
                conn.send_inflight = false;
                op_log!("{PROGRAM}: op=send fd={} bytes={result} result={}", conn.stream.as_raw_fd(), if result >= 0 { "ok".to_string() } else { op_result::<()>(&Err(io::Error::from_raw_os_error(-result))) });
                if result >= 0 {
                    if conn.control.phase != Phase::Done {
                        conn.last_active = now;
                        conn.out.consume(result as usize);
                    }
                } else if !matches!(-result, libc::EINTR | libc::EAGAIN | libc::ECANCELED) {
                    conn.fail(&io::Error::from_raw_os_error(-result));
                }
            }
            _ => conn.cancels_inflight -= 1,
        }
        if conn.control.phase == Phase::Done {
            self.finish(slot)
        } else {
            self.advance(slot, now)
        }
    }

    /// Handles every passed deadline; each connection at most once per turn.
    fn expire(&mut self, now: Instant) -> io::Result<()> {
        for _ in 0..self.timers.heap.len() {
            let slots = &self.slots;
            let deadline = |slot: usize| slots.get(slot).and_then(Option::as_ref).and_then(Conn::deadline);
            let Some(slot) = self.timers.next_due(now, deadline) else { break };
            if let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) {
                conn.expire(&mut Direct(&mut self.worker), now);
            }
            self.advance(slot, now)?;
        }
        Ok(())
    }
}

fn run_loop<H: Handler>(listener: TcpListener, stop: RawFd, index: usize, startup: &Startup) -> io::Result<()> {
    let mut lp: Loop<H> = Loop {
        ring: Ring::open()?,
        listener,
        index,
        worker: H::Worker::default(),
        slots: Vec::new(),
        free: Vec::new(),
        timers: Timers::default(),
        active: 0,
        accept_armed: false,
        accept_cancelling: false,
        accept_resume: None,
        parked: std::collections::VecDeque::new(),
        spare: std::fs::File::open("/dev/null").ok(),
    };
    lp.ring.push(opcode::PollAdd::new(types::Fd(stop), libc::POLLIN as u32).build().user_data(tag(0, OP_STOP)))?;
    lp.arm_accept()?;
    if !startup.ready(index, true) {
        return Ok(());
    }
    let mut now = Instant::now();
    'run: loop {
        let mut timeout = lp.timers.timeout(now);
        if let Some(at) = lp.accept_resume {
            let until = at.saturating_duration_since(now).as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            timeout = if timeout < 0 { until } else { timeout.min(until) };
        }
        lp.ring.wait((timeout >= 0).then(|| Duration::from_millis(timeout as u64)))?;
        now = Instant::now();
        for (user_data, result, flags) in std::mem::take(&mut lp.ring.completed) {
            let (slot, op) = ((user_data >> OP_BITS) as usize, user_data & ((1 << OP_BITS) - 1));
            match op {
                OP_STOP => break 'run,
                OP_ACCEPT => lp.on_accept(result, flags, now)?,
                OP_ACCEPT_CANCEL => {}
                _ => lp.complete(slot, op, result, flags, now)?,
            }
        }
        lp.expire(now)?;
        while lp.active < MAX_CONNECTIONS {
            let Some(stream) = lp.parked.pop_front() else { break };
            lp.open(stream, now)?;
        }
        lp.manage_accept(now)?;
    }
    // on_close for every connection. The kernel may still read a connection's send queue and
    // msghdr until the ring is gone, so those are kept until it is dropped.
    let mut kept = Vec::new();
    for slot in 0..lp.slots.len() {
        if let Some(mut conn) = lp.slots[slot].take() {
            conn.end(CloseReason::Stopping);
            kept.push((std::mem::take(&mut conn.out), std::mem::take(&mut conn.send_io)));
            conn.release(&mut Direct(&mut lp.worker));
        }
    }
    drop(lp.ring);
    drop(kept);
    Ok(())
}
{%- else %}

/// A reply in flight: its bytes, address and msghdr must live until the kernel is done.
struct ReplySlot {
    msg: libc::msghdr,
    iov: libc::iovec,
    peer: libc::sockaddr_storage,
    reply: Reply,
}

/// The io_uring loop for UDP: one multishot recvmsg fills provided buffers with datagrams and
/// their senders; each reply is sent from a slot of its own, so many replies are in flight at
/// once and one system call submits a batch of them. When every slot is in flight a reply is
/// dropped, counted and logged: the handler never waits, and nothing is lost silently.
fn run_loop<H: Handler>(socket: UdpSocket, stop: RawFd, index: usize, startup: &Startup) -> io::Result<()> {
    let mut ring = Ring::open()?;
    let mut handler = H::default();
    // SAFETY: an all-zero msghdr and sockaddr_storage are valid.
    let mut recv_msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
    recv_msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let mut slots: Vec<Box<ReplySlot>> = (0..RING_BUFFERS)
        .map(|_| {
            Box::new(ReplySlot {
                msg: unsafe { std::mem::zeroed() },
                iov: libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 },
                peer: unsafe { std::mem::zeroed() },
                reply: Reply { buf: Vec::with_capacity(OUTPUT_BUFFER), has_reply: false },
            })
        })
        .collect();
    let mut free: Vec<usize> = (0..slots.len()).collect();
    let mut overflow = Reply { buf: Vec::with_capacity(OUTPUT_BUFFER), has_reply: false };
    let (mut truncated, mut send_errors, mut recv_errors, mut dropped, mut panics, mut received) = (0, 0, 0, 0, 0, 0u64);
    let fd = types::Fd(socket.as_raw_fd());
    ring.push(opcode::PollAdd::new(types::Fd(stop), libc::POLLIN as u32).build().user_data(tag(0, OP_STOP)))?;
    let mut recv_armed = false;
    if !startup.ready(index, true) {
        return Ok(());
    }
    'run: loop {
        if !recv_armed {
            ring.push(opcode::RecvMsgMulti::new(fd, &*recv_msg, BUFFER_GROUP).flags(libc::MSG_TRUNC as u32).build().user_data(tag(0, OP_RECV)))?;
            recv_armed = true;
        }
        ring.wait(None)?;
        for (user_data, result, flags) in std::mem::take(&mut ring.completed) {
            let (slot, op) = ((user_data >> OP_BITS) as usize, user_data & ((1 << OP_BITS) - 1));
            match op {
                OP_STOP => break 'run,
                OP_SEND => {
                    op_log!("{PROGRAM}: op=sendto fd={} bytes={result} result={}", socket.as_raw_fd(), if result >= 0 { "ok".to_string() } else { op_result::<()>(&Err(io::Error::from_raw_os_error(-result))) });
                    if result < 0 {
                        log_occurrence("sendto failed; reply dropped", &mut send_errors);
                    }
                    free.push(slot);
                }
                _ => {
                    if !cqueue::more(flags) {
                        recv_armed = false; // ENOBUFS or an error ended it: armed again before the next wait
                    }
                    let Some(id) = cqueue::buffer_select(flags) else {
                        if result < 0 && !matches!(-result, libc::ENOBUFS | libc::EINTR | libc::EAGAIN) {
                            // ICMP errors from earlier replies (ECONNREFUSED...) must not stop the server.
                            log_occurrence("recvmsg failed", &mut recv_errors);
                        }
                        continue;
                    };
                    // The datagram is handled in its buffer, which goes back to the ring after.
                    let handled = match types::RecvMsgOut::parse(ring.buffer(id, result.max(0) as usize), &recv_msg) {
                        Err(()) => {
                            log_occurrence("malformed receive completion", &mut recv_errors);
                            None
                        }
                        Ok(out) if out.is_payload_truncated() => {
                            log_occurrence("datagram longer than io.buffer_size dropped", &mut truncated);
                            None
                        }
                        Ok(out) => {
                            // SAFETY: the name bytes are a sockaddr the kernel wrote, at most a storage's size.
                            let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
                            let name = out.name_data();
                            let name_len = name.len().min(std::mem::size_of::<libc::sockaddr_storage>());
                            unsafe { std::ptr::copy_nonoverlapping(name.as_ptr(), (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(), name_len) };
                            let msg = out.payload_data();
                            op_log!("{PROGRAM}: op=recvfrom fd={} bytes={} result=ok", socket.as_raw_fd(), msg.len());
                            socket_addr_from(&storage).map(|peer| {
                                received += 1;
                                let slot = free.pop();
                                let reply = match slot {
                                    Some(s) => &mut slots[s].reply,
                                    None => &mut overflow,
                                };
                                reply.clear();
                                let mut ctx = Ctx { out: reply, info: DatagramInfo { id: received, worker: index, peer } };
                                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.on_message(msg, &mut ctx)));
                                if outcome.is_err() {
                                    log_occurrence("a handler panicked; its datagram got no reply", &mut panics);
                                }
                                (slot, outcome.is_ok() && ctx.out.has_reply, storage, name_len)
                            })
                        }
                    };
                    ring.return_buffer(id);
                    let Some((slot, has_reply, storage, name_len)) = handled else { continue };
                    match slot {
                        Some(s) if has_reply => {
                            let entry = &mut *slots[s];
                            entry.peer = storage;
                            entry.iov = libc::iovec { iov_base: entry.reply.buf.as_mut_ptr().cast(), iov_len: entry.reply.buf.len() };
                            entry.msg = unsafe { std::mem::zeroed() };
                            entry.msg.msg_name = (&mut entry.peer as *mut libc::sockaddr_storage).cast();
                            entry.msg.msg_namelen = name_len as libc::socklen_t;
                            entry.msg.msg_iov = &mut entry.iov;
                            entry.msg.msg_iovlen = 1;
                            ring.push(opcode::SendMsg::new(fd, &entry.msg).flags(libc::MSG_NOSIGNAL as u32).build().user_data(tag(s, OP_SEND)))?;
                        }
                        Some(s) => free.push(s),
                        None if has_reply => log_occurrence("every reply slot is in flight; reply dropped", &mut dropped),
                        None => {}
                    }
                }
            }
        }
    }
    handler.on_stop();
    // The kernel may read the reply slots until the ring is gone.
    drop(ring);
    drop(slots);
    Ok(())
}
{%- endif %}
{% include "rust/serve.rs" %}
