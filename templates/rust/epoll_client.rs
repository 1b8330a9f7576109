{%- include "rust/prelude.rs" %}
{{ v.runtime_open }}
{%- include "rust/common.rs" %}
{% include "rust/epoll_sys.rs" %}
{%- if v.tcp %}
{% include "rust/tcp_conn.rs" %}
{% include "rust/conn_readiness.rs" %}
{%- else %}
{% include "rust/udp_client_conn.rs" %}
{%- endif %}
{% include "rust/timers.rs" %}
{% include "rust/client_runtime.rs" %}
{{ v.runtime_close }}

/// Marks the stop pipe's events; member i of the pool uses token i.
const STOP_TOKEN: u64 = u64::MAX;

/// The epoll loop of a client. A connecting socket is watched for writability (the end of a
/// nonblocking connect, either way); once connected it is registered edge-triggered for both
/// directions like a server's connection, and `Conn::service` works until EAGAIN. Member i of
/// the pool owns slot i: its connection, timer and token.
struct Loop<H: Handler> {
    epoll: Epoll,
    worker: H::Worker,
    pool: Pool,
    slots: Vec<Option<Conn<H>>>,
    /// Connections that spent their budget with work left.
    ready: Vec<usize>,
    timers: Timers,
    scratch: Vec<u8>,
}

impl<H: Handler> Loop<H> {
    /// Watches a member's connecting socket for the end of its connect.
    fn watch(epoll: &Epoll) -> impl FnMut(usize, RawFd, SocketAddr) -> io::Result<()> + '_ {
        move |i, fd, _| epoll.control(libc::EPOLL_CTL_ADD, fd, libc::EPOLLOUT as u32, i as u64)
    }

    fn connect(&mut self, i: usize, now: Instant) {
        self.pool.connect(i, now, &mut Loop::<H>::watch(&self.epoll));
    }

    /// The connecting socket became writable: the connect finished, one way or the other.
    fn connected(&mut self, i: usize, now: Instant) {
        let member = &mut self.pool.members[i];
        let Some(fd) = member.connecting.take() else { return };
        let peer = member.target();
        let mut error = connect_result(&fd);
        op_log!("{PROGRAM}: op=connected fd={} result={}", fd.as_raw_fd(), if error == 0 { "ok" } else { errno_name(error).unwrap_or("error") });
        if error == 0 {
            let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLPRI | libc::EPOLLET) as u32;
            if let Err(e) = self.epoll.control(libc::EPOLL_CTL_MOD, fd.as_raw_fd(), events, i as u64) {
                error = e.raw_os_error().unwrap_or(libc::EIO);
            }
        }
        if error != 0 {
            drop(fd); // also out of the epoll set
            self.pool.connect_failed(i, error, now, &mut Loop::<H>::watch(&self.epoll));
            return;
        }
        member.state = MemberState::Open;
        let mut conn = Conn::new(Socket::from(fd), peer, 0, now);
        // Re-registering reports the socket writable, so output from `open` goes out then.
        conn.start(&mut Direct(&mut self.worker));
        self.timers.schedule(i, conn.deadline());
        self.slots[i] = Some(conn);
    }

    fn service(&mut self, slot: usize, now: Instant) {
        let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return };
        match conn.service(&mut Direct(&mut self.worker), &mut self.scratch, now) {
            Status::Done => return self.close(slot, now),
            Status::More if !conn.in_ready => {
                conn.in_ready = true;
                self.ready.push(slot);
            }
            _ => {}
        }
        self.timers.schedule(slot, conn.deadline());
    }

    /// Its connection is going: the socket leaves the epoll set when `release` closes it.
    fn closed(&mut self, _slot: usize) {}

    /// Handles every passed deadline: connections', then the pool's.
    fn expire(&mut self, now: Instant) {
        self.expire_connections(now);
        self.pool.expire(now, &mut Loop::<H>::watch(&self.epoll));
    }
}

{% include "rust/client_loop.rs" %}

/// Runs the pool on one epoll loop until every member is done or a stop comes; then every
/// connection ends with `CloseReason::Stopping` and `on_worker_stop` reports.
fn run_pool<H: Handler>(stop: RawFd) -> io::Result<()> {
    let epoll = Epoll::new()?;
    epoll.control(libc::EPOLL_CTL_ADD, stop, libc::EPOLLIN as u32, STOP_TOKEN)?;
    let pool = Pool::new();
    let members = pool.members.len();
    let mut lp: Loop<H> = Loop {
        epoll,
        worker: worker_started(0, H::start_worker(0))?,
        pool,
        slots: (0..members).map(|_| None).collect(),
        ready: Vec::new(),
        timers: Timers::default(),
        scratch: vec![0; BUFFER_SIZE],
    };
    let mut now = Instant::now();
    for i in 0..members {
        lp.connect(i, now);
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
    let mut result = Ok(());
    'run: while lp.pool.left > 0 {
        let timeout = lp.pool.timeout(if lp.ready.is_empty() { lp.timers.timeout(now) } else { 0 }, now);
        let n = match lp.epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        now = Instant::now();
        for event in &events[..n] {
            let (token, flags) = (event.u64, event.events);
            if token == STOP_TOKEN {
                break 'run;
            }
            let slot = token as usize;
            if lp.pool.members[slot].state == MemberState::Connecting {
                lp.connected(slot, now);
                continue;
            }
            let Some(conn) = lp.slots.get_mut(slot).and_then(Option::as_mut) else { continue };
            if flags & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLPRI) as u32 != 0 {
                conn.read_to_eagain = true;
            }
            if !conn.in_ready {
                lp.service(slot, now);
            }
        }
        for slot in std::mem::take(&mut lp.ready) {
            if let Some(conn) = lp.slots.get_mut(slot).and_then(Option::as_mut) {
                conn.in_ready = false;
                lp.service(slot, now);
            }
        }
        lp.expire(now);
    }
    for slot in 0..lp.slots.len() {
        if let Some(conn) = lp.slots[slot].as_mut() {
            conn.end(CloseReason::Stopping);
            lp.close(slot, Instant::now());
        }
    }
    H::on_worker_stop(&mut lp.worker);
    result
}
