{%- include "rust/common.rs" %}
{%- if v.tcp %}
{% include "rust/tcp_conn.rs" %}

/// The poll loop, level-triggered: slot 0 is the stop pipe, slot 1 the listener, and slot
/// `i + 2` belongs to `conns[i]`, asking only for what that connection can use now.
fn run_loop<H: Handler>(listener: TcpListener, stop: RawFd, handler: H) -> io::Result<()> {
    let mut fds = vec![pollfd(stop, libc::POLLIN), pollfd(listener.as_raw_fd(), libc::POLLIN)];
    let mut conns: Vec<Conn<H>> = Vec::new();
    let mut scratch = vec![0u8; BUFFER_SIZE];
    let mut spare = std::fs::File::open("/dev/null").ok();
    let mut shed = 0;
    let sweep_every = IDLE_TIMEOUT.map(|t| t / 4);
    let mut next_sweep = sweep_every.map(|every| Instant::now() + every);
    loop {
        fds[1].events = if conns.len() < MAX_CONNECTIONS { libc::POLLIN } else { 0 };
        let timeout = next_sweep.map_or(-1, |at| {
            at.saturating_duration_since(Instant::now()).as_millis().min(i32::MAX as u128) as i32
        });
        match sys_poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if fds[0].revents != 0 {
            break;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < conns.len() {
            if fds[i + 2].revents == 0 {
                i += 1;
                continue;
            }
            if conns[i].service(&mut scratch, now) == Status::Done {
                conns.swap_remove(i).close();
                fds.swap_remove(i + 2);
                continue;
            }
            fds[i + 2].events = poll_events(&conns[i]);
            fds[i + 2].revents = 0;
            i += 1;
        }
        if fds[1].revents != 0 {
            while conns.len() < MAX_CONNECTIONS {
                let Some(stream) = accept_connection(&listener, &mut spare, &mut shed) else { break };
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                let conn = Conn::open(stream, handler.clone(), now);
                fds.push(pollfd(conn.stream.as_raw_fd(), poll_events(&conn)));
                conns.push(conn);
            }
        }
        if let (Some(at), Some(every), Some(idle)) = (next_sweep, sweep_every, IDLE_TIMEOUT) {
            if now >= at {
                let mut i = 0;
                while i < conns.len() {
                    if now.duration_since(conns[i].last_active) >= idle {
                        conns.swap_remove(i).close();
                        fds.swap_remove(i + 2);
                    } else {
                        i += 1;
                    }
                }
                next_sweep = Some(now + every);
            }
        }
    }
    for conn in conns {
        conn.close();
    }
    Ok(())
}

/// What a connection can use now: no POLLIN while its output queue is full.
fn poll_events<H: Handler>(conn: &Conn<H>) -> libc::c_short {
    let mut events = 0;
    if !conn.read_closed && !conn.closing && conn.room() >= BUFFER_SIZE {
        events |= libc::POLLIN;
    }
    if conn.pending() > 0 || (H::PRODUCER && !conn.closing) {
        events |= libc::POLLOUT;
    }
    events
}
{%- else %}
{% include "rust/udp_dgram.rs" %}

/// The poll loop, level-triggered: the socket is watched for input, or for room to send while
/// a reply waits.
fn run_loop<H: Handler>(socket: UdpSocket, stop: RawFd, handler: H) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    let mut dgram = Dgram::open(socket, handler);
    let mut fds = [pollfd(stop, libc::POLLIN), pollfd(dgram.socket.as_raw_fd(), libc::POLLIN)];
    loop {
        fds[1].events = if dgram.pending.is_some() { libc::POLLOUT } else { libc::POLLIN };
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
