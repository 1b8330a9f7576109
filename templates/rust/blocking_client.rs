{%- include "rust/prelude.rs" %}
{{ v.runtime_open }}
{%- include "rust/common.rs" %}
{%- if v.tcp %}
{% include "rust/tcp_conn.rs" %}
{% include "rust/conn_readiness.rs" %}
{%- else %}
{% include "rust/udp_client_conn.rs" %}
{%- endif %}
{% include "rust/blocking_conn.rs" %}
{% include "rust/client_runtime.rs" %}
{{ v.runtime_close }}

/// Stack of each connection's thread: buffers live on the heap, so a small one is enough.
const MEMBER_STACK_SIZE: usize = 256 * 1024;

/// Waits until a connecting socket is writable (Ok(true)), `deadline` passes (Ok(false)) or a
/// stop comes (Err(Interrupted)).
fn wait_connected(stop: RawFd, fd: RawFd, deadline: Instant) -> io::Result<bool> {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        let timeout = deadline.saturating_duration_since(now).as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let mut fds = [pollfd(stop, libc::POLLIN), pollfd(fd, libc::POLLOUT)];
        match sys_poll(&mut fds, timeout) {
            Ok(_) if fds[0].revents != 0 => return Err(io::ErrorKind::Interrupted.into()),
            Ok(_) if fds[1].revents != 0 => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// One attempt: resolve the host, then every address in turn, each connect bounded by
/// `CONNECT_TIMEOUT`. Ok(Some): connected; Ok(None): it failed (noted in the member); Err: a
/// stop came.
fn attempt(m: &mut Member, stop: RawFd) -> io::Result<Option<OwnedFd>> {
    m.address = 0;
    if !m.resolve() {
        return Ok(None);
    }
    while m.address < m.targets.len() {
        match m.connect(Instant::now()) {
            Err(e) => m.note_error("connect", e.raw_os_error().unwrap_or(libc::EIO)),
            Ok(()) => {
                let fd = m.connecting.take().expect("connect stores the socket");
                let deadline = m.deadline.unwrap_or_else(Instant::now);
                let error = match wait_connected(stop, fd.as_raw_fd(), deadline) {
                    Ok(true) => connect_result(&fd),
                    Ok(false) => libc::ETIMEDOUT,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
                    Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
                };
                op_log!("{PROGRAM}: op=connected fd={} result={}", fd.as_raw_fd(), if error == 0 { "ok" } else { errno_name(error).unwrap_or("error") });
                if error == 0 {
                    return Ok(Some(fd));
                }
                m.note_error("connect", error);
            }
        }
        m.address += 1;
    }
    Ok(None)
}

/// One member of the pool on its own thread, from its first attempt until it is done or the
/// client stops. Callbacks run under the worker's lock, as in the blocking server.
fn member_thread<H: Handler>(mut m: Member, stop: RawFd, worker: &std::sync::Mutex<H::Worker>) {
    let mut access = Locked(worker);
    let Some(mut scratch) = ReceiveBuffer::new() else {
        log_line!("{PROGRAM}: connection {} of {}: out of memory", m.index + 1, options().connections);
        CLIENT_FAILED.store(true, Ordering::Relaxed);
        return;
    };
    while m.state != MemberState::Done {
        if let (MemberState::Waiting, Some(at)) = (m.state, m.deadline) {
            let wait = at.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            if !matches!(wait_for_input_or_stop_until(stop, -1, wait), Ok(true)) {
                return; // stopped while backing off
            }
        }
        let fd = match attempt(&mut m, stop) {
            Ok(Some(fd)) => fd,
            Ok(None) => {
                m.attempt_failed(Instant::now());
                continue;
            }
            Err(_) => return, // stopped while connecting
        };
        m.state = MemberState::Open;
        let peer = m.target();
        let mut conn: Conn<H> = Conn::new(Socket::from(fd), peer, 0, Instant::now());
        run_connection(&mut conn, stop, &mut access, scratch.bytes());
        let (reason, failed, heard) = (conn.control.reason, conn.control.failed, conn.control.heard);
        conn.release(&mut access); // on_close runs here, under the worker's lock
        m.connection_ended(reason, failed, heard, &peer, Instant::now());
    }
}

/// Starts a thread per member of the pool, waits for them all, then `on_worker_stop` reports.
fn run_pool<H: Handler>(stop: RawFd) -> io::Result<()> {
    let worker = std::sync::Mutex::new(worker_started(0, H::start_worker(0))?);
    let seed = backoff_seed();
    let connections = options().connections;
    std::thread::scope(|scope| {
        for i in 0..connections {
            let member = Member::new(i, seed);
            let worker = &worker;
            let spawned = std::thread::Builder::new()
                .name(format!("connection {}", i + 1))
                .stack_size(MEMBER_STACK_SIZE)
                .spawn_scoped(scope, move || member_thread::<H>(member, stop, worker));
            if let Err(e) = spawned {
                log_line!("{PROGRAM}: cannot start a thread for connection {} of {connections}: {e}", i + 1);
                CLIENT_FAILED.store(true, Ordering::Relaxed);
                break;
            }
        }
    });
    H::on_worker_stop(&mut worker.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(())
}
