{%- include "rust/prelude.rs" %}
{{ v.runtime_open }}
{%- include "rust/common.rs" %}
{%- if v.tcp %}
{% include "rust/tcp_conn.rs" %}
{% include "rust/conn_readiness.rs" %}
{%- else %}
{% include "rust/udp_client_conn.rs" %}
{%- endif %}
{% include "rust/timers.rs" %}
{% include "rust/client_runtime.rs" %}
{{ v.runtime_close }}

/// The poll loop of a client, level-triggered. The pollfd array is the stop pipe, then one
/// entry per member of the pool: its connecting socket (watched for POLLOUT, the end of the
/// connect), its connection (asking only for what it can use now), or -1 (ignored by poll)
/// while it backs off or is done. Member i owns slot i: its connection and timer.
struct Loop<H: Handler> {
    worker: H::Worker,
    pool: Pool,
    slots: Vec<Option<Conn<H>>>,
    /// Connections that spent their budget with work left: serviced without waiting.
    more: Vec<bool>,
    timers: Timers,
    scratch: Vec<u8>,
}

/// poll watches whatever the pollfd array names on each turn: nothing to register.
fn watch(_member: usize, _fd: RawFd, _target: SocketAddr) -> io::Result<()> {
    Ok(())
}

impl<H: Handler> Loop<H> {
    /// What member i's entry of the pollfd array watches now.
    fn entry(&self, i: usize) -> libc::pollfd {
        let member = &self.pool.members[i];
        match (member.state, &self.slots[i]) {
            (MemberState::Connecting, _) => pollfd(member.connecting.as_ref().map_or(-1, |fd| fd.as_raw_fd()), libc::POLLOUT),
            (MemberState::Open, Some(conn)) => pollfd(conn.raw_fd(), conn.poll_events()),
            _ => pollfd(-1, 0),
        }
    }

    /// The connecting socket became writable (or failed): the connect finished, one way or
    /// the other.
    fn connected(&mut self, i: usize, now: Instant) {
        let member = &mut self.pool.members[i];
        let Some(fd) = member.connecting.take() else { return };
        let peer = member.target();
        let error = connect_result(&fd);
        op_log!("{PROGRAM}: op=connected fd={} result={}", fd.as_raw_fd(), if error == 0 { "ok" } else { errno_name(error).unwrap_or("error") });
        if error != 0 {
            drop(fd);
            self.pool.connect_failed(i, error, now, &mut watch);
            return;
        }
        member.state = MemberState::Open;
        let mut conn = Conn::new(Socket::from(fd), peer, 0, now);
        conn.start(&mut Direct(&mut self.worker));
        self.slots[i] = Some(conn);
        self.service(i, now); // sends what `open` queued
    }

    fn service(&mut self, slot: usize, now: Instant) {
        let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return };
        match conn.service(&mut Direct(&mut self.worker), &mut self.scratch, now) {
            Status::Done => self.close(slot, now),
            status => {
                self.more[slot] = status == Status::More;
                self.timers.schedule(slot, conn.deadline());
            }
        }
    }

    /// Its connection is gone: nothing left to service.
    fn closed(&mut self, slot: usize) {
        self.more[slot] = false;
    }

    /// Handles every passed deadline: connections', then the pool's.
    fn expire(&mut self, now: Instant) {
        self.expire_connections(now);
        self.pool.expire(now, &mut watch);
    }
}

{% include "rust/client_loop.rs" %}

/// Runs the pool on one poll loop until every member is done or a stop comes; then every
/// connection ends with `CloseReason::Stopping` and `on_worker_stop` reports.
fn run_pool<H: Handler>(stop: RawFd) -> io::Result<()> {
    let pool = Pool::new();
    let members = pool.members.len();
    let mut lp: Loop<H> = Loop {
        worker: worker_started(0, H::start_worker(0))?,
        pool,
        slots: (0..members).map(|_| None).collect(),
        more: vec![false; members],
        timers: Timers::default(),
        scratch: vec![0; BUFFER_SIZE],
    };
    let mut now = Instant::now();
    for i in 0..members {
        lp.pool.connect(i, now, &mut watch);
    }
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(members + 1);
    let mut result = Ok(());
    while lp.pool.left > 0 {
        fds.clear();
        fds.push(pollfd(stop, libc::POLLIN));
        fds.extend((0..members).map(|i| lp.entry(i)));
        let busy = lp.more.contains(&true);
        let timeout = lp.pool.timeout(if busy { 0 } else { lp.timers.timeout(now) }, now);
        match sys_poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                result = Err(e);
                break;
            }
        }
        now = Instant::now();
        if fds[0].revents != 0 {
            break;
        }
        for i in 0..members {
            let polled = fds[i + 1];
            // An entry speaks for the socket it named: one closed and replaced on this turn
            // waits for the next.
            if polled.fd < 0 || polled.fd != lp.entry(i).fd {
                continue;
            }
            if lp.pool.members[i].state == MemberState::Connecting {
                if polled.revents != 0 {
                    lp.connected(i, now);
                }
            } else if polled.revents != 0 || lp.more[i] {
                lp.service(i, now);
            }
        }
        lp.expire(now);
    }
    for slot in 0..members {
        if let Some(conn) = lp.slots[slot].as_mut() {
            conn.end(CloseReason::Stopping);
            lp.close(slot, Instant::now());
        }
    }
    H::on_worker_stop(&mut lp.worker);
    result
}
