{%- include "rust/prelude.rs" %}
{{ v.runtime_open }}
{%- include "rust/common.rs" %}
{%- if v.tcp %}
{% include "rust/tcp_conn.rs" %}
{% include "rust/conn_readiness.rs" %}
{% include "rust/timers.rs" %}
{%- else %}
{% include "rust/udp_dgram.rs" %}
{%- endif %}
{{ v.runtime_close }}
{%- if v.tcp %}

/// The poll loop, level-triggered: slot 0 of the pollfd array is the stop pipe, slot 1 the
/// listener, then one per connection, asking only for what that connection can use now.
struct Loop<H: Handler> {
    listener: TcpListener,
    index: usize,
    worker: H::Worker,
    slots: Vec<Option<Conn<H>>>,
    /// Connections that spent their budget with work left: serviced without waiting.
    more: Vec<bool>,
    free: Vec<usize>,
    timers: Timers,
    active: usize,
    spare: Option<std::fs::File>,
    /// After running out of descriptors: accept again from then.
    accept_resume: Option<Instant>,
    scratch: Vec<u8>,
}

impl<H: Handler> Loop<H> {
    fn accept(&mut self, now: Instant) {
        while self.active < MAX_CONNECTIONS {
            let (stream, peer) = match accept_connection(&self.listener, &mut self.spare) {
                Accepted::Conn(stream, peer) => (stream, peer),
                Accepted::None => break,
                Accepted::Exhausted => {
                    self.accept_resume = Some(now + ACCEPT_PAUSE);
                    break;
                }
            };
            let slot = self.free.pop().unwrap_or_else(|| {
                self.slots.push(None);
                self.more.push(false);
                self.slots.len() - 1
            });
            let mut conn = Conn::new(stream, peer, self.index, now);
            conn.start(&mut Direct(&mut self.worker));
            self.slots[slot] = Some(conn);
            self.active += 1;
            self.service(slot, now); // sends what `open` queued
        }
    }

    fn service(&mut self, slot: usize, now: Instant) {
        let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return };
        match conn.service(&mut Direct(&mut self.worker), &mut self.scratch, now) {
            Status::Done => self.close(slot),
            status => {
                self.more[slot] = status == Status::More;
                self.timers.schedule(slot, conn.deadline());
            }
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(conn) = self.slots[slot].take() {
            self.timers.remove(slot);
            conn.release(&mut Direct(&mut self.worker));
            self.more[slot] = false;
            self.free.push(slot);
            self.active -= 1;
        }
    }

    /// Handles every passed deadline; each connection at most once per turn.
    fn expire(&mut self, now: Instant) {
        for _ in 0..self.timers.heap.len() {
            let worker = &mut self.worker;
            let expire = |conn: &mut Conn<H>| conn.expire(&mut Direct(worker), now);
            let Some(slot) = self.timers.next_expired(now, &mut self.slots, Conn::deadline, expire) else { break };
            self.service(slot, now);
        }
    }
}

fn run_loop<H: Handler>(listener: TcpListener, stop: RawFd, index: usize, startup: &Startup) -> io::Result<()> {
    let listen_fd = listener.as_raw_fd();
    let mut lp: Loop<H> = Loop {
        listener,
        index,
        worker: worker_started(index, H::start_worker(index))?,
        slots: Vec::new(),
        more: Vec::new(),
        free: Vec::new(),
        timers: Timers::default(),
        active: 0,
        spare: std::fs::File::open("/dev/null").ok(),
        accept_resume: None,
        scratch: vec![0; BUFFER_SIZE],
    };
    if !startup.ready(index, true) {
        return Ok(());
    }
    let mut fds = Vec::new();
    let mut order = Vec::new();
    let mut now = Instant::now();
    loop {
        // fds[i + 2] belongs to slots[order[i]].
        fds.clear();
        order.clear();
        if lp.accept_resume.is_some_and(|at| now >= at) {
            lp.accept_resume = None;
        }
        // At the connection limit, or while out of descriptors, new peers wait in the backlog.
        let accepting = if lp.active < MAX_CONNECTIONS && lp.accept_resume.is_none() { libc::POLLIN } else { 0 };
        fds.push(pollfd(stop, libc::POLLIN));
        fds.push(pollfd(listen_fd, accepting));
        for (slot, conn) in lp.slots.iter().enumerate() {
            if let Some(conn) = conn {
                fds.push(pollfd(conn.stream.as_raw_fd(), conn.poll_events()));
                order.push(slot);
            }
        }
        let mut timeout = if lp.more.contains(&true) { 0 } else { lp.timers.timeout(now) };
        if let Some(at) = lp.accept_resume {
            let until = at.saturating_duration_since(now).as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            timeout = if timeout < 0 { until } else { timeout.min(until) };
        }
        match sys_poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if fds[0].revents != 0 {
            break;
        }
        now = Instant::now();
        for (i, &slot) in order.iter().enumerate() {
            if fds[i + 2].revents != 0 || lp.more[slot] {
                lp.service(slot, now);
            }
        }
        if fds[1].revents != 0 {
            lp.accept(now);
        }
        lp.expire(now);
    }
    for slot in 0..lp.slots.len() {
        if let Some(conn) = lp.slots[slot].as_mut() {
            conn.end(CloseReason::Stopping);
            lp.close(slot);
        }
    }
    Ok(())
}
{%- else %}

/// The poll loop, level-triggered: the socket is watched for input, or for room to send while
/// a reply waits.
fn run_loop<H: Handler>(socket: UdpSocket, stop: RawFd, index: usize, startup: &Startup) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    let mut dgram: Dgram<H> = Dgram::open(socket, index)?;
    if !startup.ready(index, true) {
        return Ok(());
    }
    let mut fds = [pollfd(stop, libc::POLLIN), pollfd(dgram.socket.as_raw_fd(), libc::POLLIN)];
    loop {
        fds[1].events = if dgram.replies_waiting() { libc::POLLOUT } else { libc::POLLIN };
        match sys_poll(&mut fds, -1) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if fds[0].revents != 0 {
            break;
        }
        if fds[1].revents != 0 {
            let _ = dgram.service();
        }
    }
    dgram.close();
    Ok(())
}
{%- endif %}
{% include "rust/serve.rs" %}
