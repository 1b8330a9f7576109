{%- include "rust/prelude.rs" %}
{{ v.runtime_open }}
{%- include "rust/common.rs" %}
{% include "rust/uring_ring.rs" %}
{%- if v.tcp %}
{% include "rust/tcp_conn.rs" %}
{% include "rust/conn_completion.rs" %}
{%- else %}
{% include "rust/udp_client_conn.rs" %}
{%- endif %}
{% include "rust/timers.rs" %}
{% include "rust/client_runtime.rs" %}
{{ v.runtime_close }}

/// The io_uring loop of a client. Each connect is an IORING_OP_CONNECT with a timeout linked
/// to it, so the kernel itself ends an attempt at `CONNECT_TIMEOUT` (the connect completes
/// with ECANCELED, taken as ETIMEDOUT). The pool's retries and backoff are the other models'.
{%- if v.tcp %}
/// Once connected, a connection's I/O is the server's: one multishot receive into the
/// provided buffers and at most one send. Member i of the pool owns slot i.
{%- else %}
/// Once connected, a socket's datagrams are read when a readiness poll in the ring says they
/// are there (one connected socket carries one message in flight, so there is nothing to
/// batch); a write is sent at once, as in every model. Member i of the pool owns slot i.
{%- endif %}
struct Loop<H: Handler> {
    ring: Ring,
    worker: H::Worker,
    pool: Pool,
    slots: Vec<Option<Conn<H>>>,
    timers: Timers,
    /// Each member's connect address as a sockaddr, which the kernel reads when the connect
    /// is submitted; written when it is queued.
    addresses: Vec<(libc::sockaddr_storage, libc::socklen_t)>,
    /// What a connect's linked timeout waits, read when it is submitted.
    connect_timeout: Box<types::Timespec>,
{%- if !v.tcp %}
    scratch: Vec<u8>,
{%- endif %}
}

/// Queues member `i`'s connect to `target` (kept in `addresses[i]`) with its timeout linked,
/// both in one submission (a link cannot span two).
fn push_connect(ring: &mut Ring, addresses: &mut [(libc::sockaddr_storage, libc::socklen_t)], timeout: &types::Timespec, i: usize, fd: RawFd, target: SocketAddr) -> io::Result<()> {
    addresses[i] = raw_address(&target);
    let (address, len) = &addresses[i];
    let connect = opcode::Connect::new(types::Fd(fd), (address as *const libc::sockaddr_storage).cast(), *len).build().flags(squeue::Flags::IO_LINK).user_data(tag(i, OP_CONNECT));
    let timeout = opcode::LinkTimeout::new(timeout).build().user_data(tag(i, OP_CONNECT_TIMEOUT));
    loop {
        // SAFETY: the sockaddr and the timespec belong to the loop and outlive the submission.
        if unsafe { ring.uring.submission().push_multiple(&[connect.clone(), timeout.clone()]) }.is_ok() {
            ring.inflight += 2;
            return Ok(());
        }
        ring.give_back();
        ring.uring.submit()?;
    }
}

impl<H: Handler> Loop<H> {
    /// Starts member `i`'s next attempt (the pool moves through the addresses and backs off).
    fn connect(&mut self, i: usize, now: Instant) {
        let (ring, addresses, timeout) = (&mut self.ring, &mut self.addresses, &*self.connect_timeout);
        self.pool.connect(i, now, &mut |m, fd, target| push_connect(ring, addresses, timeout, m, fd, target));
    }

    /// A connect completed: connected, refused, failed, or ended by its timeout.
    fn on_connect(&mut self, i: usize, result: i32, now: Instant) -> io::Result<()> {
        let member = &mut self.pool.members[i];
        if member.state != MemberState::Connecting {
            return Ok(());
        }
        let error = if result == -libc::ECANCELED { libc::ETIMEDOUT } else { -result };
        op_log!("{PROGRAM}: op=connect fd={} result={}", member.connecting.as_ref().map_or(-1, |fd| fd.as_raw_fd()), if result == 0 { "ok" } else { errno_name(error).unwrap_or("error") });
        let fd = match member.connecting.take() {
            Some(fd) if result == 0 => fd,
            _ => {
                let (ring, addresses, timeout) = (&mut self.ring, &mut self.addresses, &*self.connect_timeout);
                self.pool.connect_failed(i, error, now, &mut |m, fd, target| push_connect(ring, addresses, timeout, m, fd, target));
                return Ok(());
            }
        };
        member.state = MemberState::Open;
        let peer = member.target();
        let mut conn: Conn<H> = Conn::new(Socket::from(fd), peer, 0, now);
        conn.start(&mut Direct(&mut self.worker));
        self.slots[i] = Some(conn);
        self.advance(i, now)
    }

    /// `on_close`, then the member's next step: once the ring holds no request of it.
    fn closed(&mut self, slot: usize) {
        if let Some(conn) = self.slots[slot].take() {
            let (reason, failed, heard, peer) = (conn.control.reason, conn.control.failed, conn.control.heard, conn.control.info.peer);
            conn.release(&mut Direct(&mut self.worker));
            self.pool.ended(slot, reason, failed, heard, &peer, Instant::now());
        }
    }

    /// Backoffs that ended start their next attempt.
    fn members_due(&mut self, now: Instant) {
        let (ring, addresses, timeout) = (&mut self.ring, &mut self.addresses, &*self.connect_timeout);
        self.pool.expire(now, &mut |m, fd, target| push_connect(ring, addresses, timeout, m, fd, target));
    }
{%- if !v.tcp %}

    /// After the handler ran: a readiness poll stays armed while the socket is open; a closed
    /// one has its poll cancelled and is released once the ring holds nothing of it.
    fn advance(&mut self, slot: usize, now: Instant) -> io::Result<()> {
        let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return Ok(()) };
        if conn.control.open {
            if !conn.poll_armed {
                self.ring.push(opcode::PollAdd::new(types::Fd(conn.raw_fd()), libc::POLLIN as u32).build().user_data(tag(slot, OP_RECV)))?;
                conn.poll_armed = true;
            }
            self.timers.schedule(slot, conn.deadline());
            return Ok(());
        }
        self.timers.remove(slot);
        if conn.poll_armed {
            if !conn.cancel_inflight {
                self.ring.push(opcode::AsyncCancel::new(tag(slot, OP_RECV)).build().user_data(tag(slot, OP_CANCEL)))?;
                conn.cancel_inflight = true;
            }
            return Ok(());
        }
        if !conn.cancel_inflight {
            self.closed(slot);
        }
        let _ = now;
        Ok(())
    }

    /// Handles one completion of a socket: readiness (read what is there) or its cancel.
    fn complete(&mut self, slot: usize, op: u64, result: i32, now: Instant) -> io::Result<()> {
        let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return Ok(()) };
        if op == OP_CANCEL {
            conn.cancel_inflight = false;
        } else {
            conn.poll_armed = false;
            if result >= 0 && conn.control.open {
                // A socket that spent its budget is polled again at once: the poll reports
                // what is still queued.
                conn.service(&mut Direct(&mut self.worker), &mut self.scratch, now);
            }
        }
        self.advance(slot, now)
    }

    /// Handles every passed deadline; each socket at most once per turn.
    fn expire(&mut self, now: Instant) -> io::Result<()> {
        for _ in 0..self.timers.heap.len() {
            let worker = &mut self.worker;
            let expire = |conn: &mut Conn<H>| conn.expire(&mut Direct(worker), now);
            let Some(slot) = self.timers.next_expired(now, &mut self.slots, Conn::deadline, expire) else { break };
            self.advance(slot, now)?;
        }
        Ok(())
    }
{%- endif %}
}
{%- if v.tcp %}

{% include "rust/uring_conn.rs" %}
{%- endif %}

/// Runs the pool on one ring until every member is done or a stop comes; then every
/// connection ends with `CloseReason::Stopping` and `on_worker_stop` reports.
fn run_pool<H: Handler>(stop: RawFd) -> io::Result<()> {
    let pool = Pool::new();
    let members = pool.members.len();
    let mut lp: Loop<H> = Loop {
        ring: Ring::open()?,
        worker: worker_started(0, H::start_worker(0))?,
        addresses: vec![raw_address(&SocketAddr::from(([0, 0, 0, 0], 0))); pool.members.len()],
        pool,
        slots: (0..members).map(|_| None).collect(),
        timers: Timers::default(),
        connect_timeout: Box::new(types::Timespec::new().sec(CONNECT_TIMEOUT.as_secs()).nsec(CONNECT_TIMEOUT.subsec_nanos())),
{%- if !v.tcp %}
        scratch: vec![0; BUFFER_SIZE],
{%- endif %}
    };
    lp.ring.push(opcode::PollAdd::new(types::Fd(stop), libc::POLLIN as u32).build().user_data(tag(0, OP_STOP)))?;
    let mut now = Instant::now();
    for i in 0..members {
        lp.connect(i, now);
    }
    let mut result = Ok(());
    'run: while lp.pool.left > 0 {
        let timeout = lp.pool.timeout(lp.timers.timeout(now), now);
        if let Err(e) = lp.ring.wait((timeout >= 0).then(|| Duration::from_millis(timeout as u64))) {
            result = Err(e);
            break;
        }
        now = Instant::now();
        for (user_data, res, _flags) in std::mem::take(&mut lp.ring.completed) {
            let (slot, op) = ((user_data >> OP_BITS) as usize, user_data & ((1 << OP_BITS) - 1));
            let handled = match op {
                OP_STOP => break 'run,
                OP_CONNECT_TIMEOUT => Ok(()), // its connect's own completion says how it ended
                OP_CONNECT => lp.on_connect(slot, res, now),
                _ => lp.complete(slot, op, res, {% if v.tcp %}_flags, {% endif %}now),
            };
            if let Err(e) = handled {
                result = Err(e);
                break 'run;
            }
        }
        if let Err(e) = lp.expire(now) {
            result = Err(e);
            break;
        }
        lp.members_due(now);
    }
    // on_close for every connection. The kernel may still read a connection's buffers until
    // the ring is gone, so those are kept until it is dropped; connects still under way are
    // cancelled with it.
{%- if v.tcp %}
    let mut kept = Vec::new();
{%- endif %}
    for slot in 0..members {
        if let Some(mut conn) = lp.slots[slot].take() {
            conn.end(CloseReason::Stopping);
{%- if v.tcp %}
            kept.push((std::mem::take(&mut conn.out), std::mem::take(&mut conn.send_io)));
{%- endif %}
            conn.release(&mut Direct(&mut lp.worker));
        }
    }
    H::on_worker_stop(&mut lp.worker);
{%- if v.tcp %}
    if !lp.ring.quiesce() {
        std::mem::forget(kept); // requests outlived the drain: the kernel may still read them
    }
{%- endif %}
    drop(lp.ring);
    result
}
