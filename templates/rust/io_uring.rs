{%- include "rust/prelude.rs" %}
{{ v.runtime_open }}
{%- include "rust/common.rs" %}

{% include "rust/uring_ring.rs" %}
{%- if v.tcp %}
{% include "rust/tcp_conn.rs" %}
{% include "rust/conn_completion.rs" %}
{% include "rust/timers.rs" %}
{%- endif %}
{{ v.runtime_close }}
{%- if v.tcp %}

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

    /// `on_close`, and the slot is free again: once the ring holds no request of it.
    fn closed(&mut self, slot: usize) {
        if let Some(conn) = self.slots[slot].take() {
            conn.release(&mut Direct(&mut self.worker));
            self.free.push(slot);
            self.active -= 1;
        }
    }

    fn open(&mut self, stream: TcpStream, now: Instant) -> io::Result<()> {
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
                Accepted::Conn(stream, _) => return self.take(stream, now),
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
        self.take(stream, now)
    }

    /// An accepted connection: opened, or parked while `max_connections` are open (the
    /// timers and slots are sized for that many).
    fn take(&mut self, stream: TcpStream, now: Instant) -> io::Result<()> {
        if self.active >= MAX_CONNECTIONS {
            self.parked.push_back(stream);
            return Ok(());
        }
        self.open(stream, now)
    }

}

{% include "rust/uring_conn.rs" %}

fn run_loop<H: Handler>(listener: TcpListener, stop: RawFd, index: usize, startup: &Startup) -> io::Result<()> {
    let mut lp: Loop<H> = Loop {
        ring: Ring::open()?,
        listener,
        index,
        worker: worker_started(index, H::start_worker(index))?,
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
    let served = run_until_stopped(&mut lp, stop, index, startup);
    // on_close for every connection, whether the loop stopped or failed. The kernel may still
    // read a connection's send queue and msghdr until the ring is gone, so those are kept until
    // it is dropped.
    let mut kept = Vec::new();
    for slot in 0..lp.slots.len() {
        if let Some(mut conn) = lp.slots[slot].take() {
            conn.end(CloseReason::Stopping);
            kept.push((std::mem::take(&mut conn.out), std::mem::take(&mut conn.send_io)));
            conn.release(&mut Direct(&mut lp.worker));
        }
    }
    if !lp.ring.quiesce() {
        std::mem::forget(kept); // requests outlived the drain: the kernel may still read them
    }
    drop(lp.ring);
    served
}

/// Runs the loop until the stop pipe is readable (Ok) or the ring fails (Err).
fn run_until_stopped<H: Handler>(lp: &mut Loop<H>, stop: RawFd, index: usize, startup: &Startup) -> io::Result<()> {
    lp.ring.push(opcode::PollAdd::new(types::Fd(stop), libc::POLLIN as u32).build().user_data(tag(0, OP_STOP)))?;
    lp.arm_accept()?;
    if !startup.ready(index, true) {
        return Ok(());
    }
    let mut now = Instant::now();
    loop {
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
                OP_STOP => return Ok(()),
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
    let mut handler = worker_started(index, H::start_worker(index))?;
    // SAFETY: an all-zero msghdr and sockaddr_storage are valid.
    let mut recv_msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
    recv_msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let mut slots: Vec<Box<ReplySlot>> = (0..RING_BUFFERS)
        .map(|_| {
            // SAFETY: an all-zero msghdr and sockaddr_storage are valid (empty) values.
            let (msg, peer) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
            Box::new(ReplySlot {
                msg,
                iov: libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 },
                peer,
                reply: Reply { buf: Vec::with_capacity(OUTPUT_BUFFER), has_reply: false },
            })
        })
        .collect();
    let mut free: Vec<usize> = (0..slots.len()).collect();
    let mut overflow = Reply { buf: Vec::with_capacity(OUTPUT_BUFFER), has_reply: false };
    let (mut truncated, mut send_errors, mut recv_errors, mut dropped, mut panics, mut received) = (0, 0, 0, 0, 0, 0u64);
    let fd = types::Fd(socket.as_raw_fd());
    // The loop, until the stop pipe is readable (Ok) or the ring fails (Err); either way the
    // reply slots outlive the requests that read them (below).
    let served = (|| -> io::Result<()> {
    ring.push(opcode::PollAdd::new(types::Fd(stop), libc::POLLIN as u32).build().user_data(tag(0, OP_STOP)))?;
    let mut recv_armed = false;
    if !startup.ready(index, true) {
        return Ok(());
    }
    loop {
        if !recv_armed {
            ring.push(opcode::RecvMsgMulti::new(fd, &*recv_msg, BUFFER_GROUP).flags(libc::MSG_TRUNC as u32).build().user_data(tag(0, OP_RECV)))?;
            recv_armed = true;
        }
        ring.wait(None)?;
        for (user_data, result, flags) in std::mem::take(&mut ring.completed) {
            let (slot, op) = ((user_data >> OP_BITS) as usize, user_data & ((1 << OP_BITS) - 1));
            match op {
                OP_STOP => return Ok(()),
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
                            // SAFETY: name_len is at most the size of `storage`, and the two do not overlap.
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
                            // SAFETY: an all-zero msghdr is valid; the fields set below point into this slot,
                            // which stays put until the send completes.
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
    })();
    handler.on_stop();
    // The kernel may read the reply slots until its requests are over.
    if !ring.quiesce() {
        std::mem::forget(slots);
    }
    drop(ring);
    served
}
{%- endif %}
{% include "rust/serve.rs" %}
