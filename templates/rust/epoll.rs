{%- include "rust/prelude.rs" %}
{{ v.runtime_open }}
{%- include "rust/common.rs" %}

{% include "rust/epoll_sys.rs" %}
{%- if v.tcp %}
{% include "rust/tcp_conn.rs" %}
{% include "rust/conn_readiness.rs" %}
{% include "rust/timers.rs" %}
{%- else %}
{% include "rust/udp_dgram.rs" %}
{%- endif %}
{{ v.runtime_close }}

/// Marks the stop pipe's events; connections use their slot numbers.
const STOP_TOKEN: u64 = u64::MAX;
{%- if v.tcp %}
/// Marks the listener's events.
const LISTENER_TOKEN: u64 = u64::MAX - 1;

/// The epoll loop. Connections are registered edge-triggered for both directions, so each
/// readiness change is reported once and `Conn::service` works until EAGAIN (or a short read);
/// connections that spend their budget go on a ready list, because no new edge will come for
/// work already reported. The listener and the stop pipe are level-triggered.
struct Loop<H: Handler> {
    epoll: Epoll,
    listener: TcpListener,
    index: usize,
    worker: H::Worker,
    slots: Vec<Option<Conn<H>>>,
    free: Vec<usize>,
    ready: Vec<usize>,
    timers: Timers,
    active: usize,
    /// The listener is out of the epoll set.
    accept_paused: bool,
    /// After running out of descriptors: accept again from then.
    accept_resume: Option<Instant>,
    spare: Option<std::fs::File>,
    scratch: Vec<u8>,
}

impl<H: Handler> Loop<H> {
    fn accept(&mut self, now: Instant) -> io::Result<()> {
        for _ in 0..64 {
            if self.active >= MAX_CONNECTIONS {
                // At the limit: leave new peers in the backlog until a connection closes.
                return self.pause_accept();
            }
            let (stream, peer) = match accept_connection(&self.listener, &mut self.spare) {
                Accepted::Conn(stream, peer) => (stream, peer),
                Accepted::None => return Ok(()),
                Accepted::Exhausted => {
                    self.accept_resume = Some(now + ACCEPT_PAUSE);
                    return self.pause_accept();
                }
            };
            let slot = self.free.pop().unwrap_or_else(|| {
                self.slots.push(None);
                self.slots.len() - 1
            });
            let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLPRI | libc::EPOLLET) as u32;
            if self.epoll.control(libc::EPOLL_CTL_ADD, stream.as_raw_fd(), events, slot as u64).is_err() {
                self.free.push(slot);
                continue;
            }
            let mut conn = Conn::new(stream, peer, self.index, now);
            // Registering reports the socket writable, so output from `open` goes out then.
            conn.start(&mut Direct(&mut self.worker));
            self.timers.schedule(slot, conn.deadline());
            self.slots[slot] = Some(conn);
            self.active += 1;
        }
        Ok(())
    }

    fn service(&mut self, slot: usize, now: Instant) -> io::Result<()> {
        let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return Ok(()) };
        match conn.service(&mut Direct(&mut self.worker), &mut self.scratch, now) {
            Status::Done => return self.close(slot),
            Status::More if !conn.in_ready => {
                conn.in_ready = true;
                self.ready.push(slot);
            }
            _ => {}
        }
        self.timers.schedule(slot, conn.deadline());
        Ok(())
    }

    /// Closing the socket also removes it from the epoll set.
    fn close(&mut self, slot: usize) -> io::Result<()> {
        if let Some(conn) = self.slots[slot].take() {
            self.timers.remove(slot);
            conn.release(&mut Direct(&mut self.worker));
            self.free.push(slot);
            self.active -= 1;
        }
        self.resume_accept()
    }

    /// Stops watching the listener: at `MAX_CONNECTIONS`, or for a while when out of
    /// descriptors.
    fn pause_accept(&mut self) -> io::Result<()> {
        if !self.accept_paused {
            self.epoll.control(libc::EPOLL_CTL_DEL, self.listener.as_raw_fd(), 0, 0)?;
            self.accept_paused = true;
        }
        Ok(())
    }

    /// Watches the listener again once there is room and no pause is running.
    fn resume_accept(&mut self) -> io::Result<()> {
        if self.accept_resume.is_none() && self.accept_paused && self.active < MAX_CONNECTIONS {
            self.epoll.control(libc::EPOLL_CTL_ADD, self.listener.as_raw_fd(), libc::EPOLLIN as u32, LISTENER_TOKEN)?;
            self.accept_paused = false;
        }
        Ok(())
    }

    /// Handles every passed deadline; each connection at most once per turn.
    fn expire(&mut self, now: Instant) -> io::Result<()> {
        for _ in 0..self.timers.heap.len() {
            let worker = &mut self.worker;
            let expire = |conn: &mut Conn<H>| conn.expire(&mut Direct(worker), now);
            let Some(slot) = self.timers.next_expired(now, &mut self.slots, Conn::deadline, expire) else { break };
            self.service(slot, now)?;
        }
        Ok(())
    }
}

fn run_loop<H: Handler>(listener: TcpListener, stop: RawFd, index: usize, startup: &Startup) -> io::Result<()> {
    let epoll = Epoll::new()?;
    epoll.control(libc::EPOLL_CTL_ADD, stop, libc::EPOLLIN as u32, STOP_TOKEN)?;
    epoll.control(libc::EPOLL_CTL_ADD, listener.as_raw_fd(), libc::EPOLLIN as u32, LISTENER_TOKEN)?;
    let mut lp: Loop<H> = Loop {
        epoll,
        listener,
        index,
        worker: worker_started(index, H::start_worker(index))?,
        slots: Vec::new(),
        free: Vec::new(),
        ready: Vec::new(),
        timers: Timers::default(),
        active: 0,
        accept_paused: false,
        accept_resume: None,
        spare: std::fs::File::open("/dev/null").ok(),
        scratch: vec![0; BUFFER_SIZE],
    };
    if !startup.ready(index, true) {
        return Ok(());
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
    let mut now = Instant::now();
    'run: loop {
        let mut timeout = if lp.ready.is_empty() { lp.timers.timeout(now) } else { 0 };
        if let Some(at) = lp.accept_resume {
            let until = at.saturating_duration_since(now).as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            timeout = if timeout < 0 { until } else { timeout.min(until) };
        }
        let n = match lp.epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        now = Instant::now();
        for event in &events[..n] {
            let (token, flags) = (event.u64, event.events);
            if token == STOP_TOKEN {
                break 'run;
            }
            if token == LISTENER_TOKEN {
                lp.accept(now)?;
                continue;
            }
            let slot = token as usize;
            let Some(conn) = lp.slots.get_mut(slot).and_then(Option::as_mut) else { continue };
            if flags & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLPRI) as u32 != 0 {
                conn.read_to_eagain = true;
            }
            if !conn.in_ready {
                lp.service(slot, now)?;
            }
        }
        for slot in std::mem::take(&mut lp.ready) {
            if let Some(conn) = lp.slots.get_mut(slot).and_then(Option::as_mut) {
                conn.in_ready = false;
                lp.service(slot, now)?;
            }
        }
        lp.expire(now)?;
        if lp.accept_resume.is_some_and(|at| now >= at) {
            lp.accept_resume = None;
            lp.resume_accept()?;
        }
    }
    for slot in 0..lp.slots.len() {
        if let Some(conn) = lp.slots[slot].as_mut() {
            conn.end(CloseReason::Stopping);
            lp.close(slot)?;
        }
    }
    Ok(())
}
{%- else %}
/// Marks the socket's events.
const SOCKET_TOKEN: u64 = 0;

/// The epoll loop: the socket is registered edge-triggered, so `Dgram::service` reads until
/// EAGAIN; when its budget runs out the loop polls again without sleeping. Write readiness is
/// asked for only while replies wait for room: otherwise every reply sent would wake the loop.
fn run_loop<H: Handler>(socket: UdpSocket, stop: RawFd, index: usize, startup: &Startup) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    let epoll = Epoll::new()?;
    epoll.control(libc::EPOLL_CTL_ADD, stop, libc::EPOLLIN as u32, STOP_TOKEN)?;
    let interest = |output: bool| (libc::EPOLLIN | libc::EPOLLET | if output { libc::EPOLLOUT } else { 0 }) as u32;
    let fd = socket.as_raw_fd();
    epoll.control(libc::EPOLL_CTL_ADD, fd, interest(false), SOCKET_TOKEN)?;
    let mut watching_output = false;
    let mut dgram: Dgram<H> = Dgram::open(socket, index)?;
    if !startup.ready(index, true) {
        return Ok(());
    }
    let mut ready = vec![libc::epoll_event { events: 0, u64: 0 }; 4];
    let mut more = true;
    'run: loop {
        let n = match epoll.wait(&mut ready, if more { 0 } else { -1 }) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for event in &ready[..n] {
            if event.u64 == STOP_TOKEN {
                break 'run;
            }
            more = true;
        }
        if more {
            more = dgram.service() == Status::More;
        }
        if dgram.replies_waiting() != watching_output {
            // Re-arming also reports the socket writable at once if it already is.
            watching_output = !watching_output;
            epoll.control(libc::EPOLL_CTL_MOD, fd, interest(watching_output), SOCKET_TOKEN)?;
        }
    }
    dgram.close();
    Ok(())
}
{%- endif %}
{% include "rust/serve.rs" %}
