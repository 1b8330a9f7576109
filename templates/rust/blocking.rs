{%- include "rust/prelude.rs" %}
{{ v.runtime_open }}
{%- include "rust/common.rs" %}
{%- if v.tcp %}
{% include "rust/tcp_conn.rs" %}
{% include "rust/conn_readiness.rs" %}
{%- endif %}
{% include "rust/blocking_conn.rs" %}
{{ v.runtime_close }}
{%- if v.tcp %}

/// Counts connection threads; a finishing thread wakes the accept loop through `wake`.
struct Slots {
    active: std::sync::Mutex<usize>,
    empty: std::sync::Condvar,
    wake: std::os::unix::net::UnixStream,
}

impl Slots {
    fn active(&self) -> usize {
        *self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self) {
        *self.active.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }

    fn finish(&self) {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        *active = active.saturating_sub(1);
        if *active == 0 {
            self.empty.notify_all();
        }
        drop(active);
        let _ = (&self.wake).write(b"x");
    }

    /// Waits until every connection thread has run `on_close`.
    fn wait_empty(&self) {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        while *active > 0 {
            active = self.empty.wait(active).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Room a connection thread may need beyond its stack for what Rust allocates infallibly
/// (thread bookkeeping, log lines, small handler state): std aborts the whole process when such
/// an allocation fails, so the server must refuse a connection before memory gets that tight.
const THREAD_HEADROOM: usize = 4 << 20;


/// Whether the address space still has room for one more thread's stack plus headroom, with
/// as much again to spare. Mapping without touching costs no memory, but counts against
/// RLIMIT_AS, which is the limit that turns a failed allocation into an abort.
fn address_space_for_a_thread() -> bool {
    let len = 2 * (STACK_SIZE + THREAD_HEADROOM);
    // SAFETY: a fresh private anonymous mapping, never touched, unmapped at once.
    unsafe {
        let probe = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if probe == libc::MAP_FAILED {
            return false;
        }
        libc::munmap(probe, len);
    }
    true
}

/// Whether the process runs under an address-space limit (RLIMIT_AS, `ulimit -v`). If so, every
/// thread is made to share glibc's main malloc arena: otherwise each new connection thread may
/// open an arena of its own, each reserving 64 MiB of address space that is never given back,
/// and two of them exhaust a 150 MiB limit, after which no connection thread fits even with
/// every connection gone. Without a limit nothing changes.
fn address_space_is_limited() -> bool {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit gets a live, initialised `rlimit`; mallopt takes plain integers.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_AS, &mut limit) != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
            return false;
        }
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    true
}

/// A connection thread's claim on a slot. Giving it back in `drop` means every way a thread can
/// end — its connection closed, a panic, or std failing to start it before the closure ran (the
/// closure is then dropped) — frees the slot, so the accept loop never waits for a thread that
/// will never finish.
struct SlotGuard<W> {
    slots: std::sync::Arc<Slots>,
    worker: Option<std::sync::Arc<std::sync::Mutex<W>>>,
}

impl<W> Drop for SlotGuard<W> {
    fn drop(&mut self) {
        // The worker reference goes first, so the last one drops in run_loop.
        self.worker = None;
        self.slots.finish();
    }
}

/// One connection on its own thread: the machinery of `run_connection`, then `on_close`.
fn connection_thread<H: Handler>(mut conn: Conn<H>, stop: RawFd, worker: &std::sync::Mutex<H::Worker>) {
    let mut access = Locked(worker);
    let Some(mut scratch) = ReceiveBuffer::new() else {
        // Out of memory: shed this connection rather than abort the process.
        conn.end(CloseReason::Error(libc::ENOMEM));
        conn.release(&mut access);
        return;
    };
    run_connection(&mut conn, stop, &mut access, scratch.bytes());
    conn.release(&mut access);
}

/// Thread per connection. The accept loop waits on the listener and the stop pipe together;
/// at `MAX_CONNECTIONS` it waits for a thread to finish instead, and peers wait in the backlog.
fn run_loop<H: Handler>(listener: TcpListener, stop: RawFd, index: usize, startup: &Startup) -> io::Result<()> {
    let (wake_read, wake) = std::os::unix::net::UnixStream::pair()?;
    wake_read.set_nonblocking(true)?;
    wake.set_nonblocking(true)?;
    let slots = std::sync::Arc::new(Slots { active: std::sync::Mutex::new(0), empty: std::sync::Condvar::new(), wake });
    let worker = std::sync::Arc::new(std::sync::Mutex::new(worker_started(index, H::start_worker(index))?));
    let mut spare = std::fs::File::open("/dev/null").ok();
    let mut spawn_failures = 0;
    let address_limited = address_space_is_limited();
    if !startup.ready(index, true) {
        return Ok(());
    }
    loop {
        let full = slots.active() >= MAX_CONNECTIONS;
        let watched = if full { wake_read.as_raw_fd() } else { listener.as_raw_fd() };
        if !wait_for_input_or_stop(stop, watched)? {
            break;
        }
        let mut drain = [0u8; 64];
        while (&wake_read).read(&mut drain).is_ok_and(|n| n > 0) {}
        if full {
            continue;
        }
        let (stream, peer) = match accept_connection(&listener, &mut spare) {
            Accepted::Conn(stream, peer) => (stream, peer),
            Accepted::None => continue,
            Accepted::Exhausted => {
                // Out of descriptors or memory: pause, or the readable listener would spin us.
                if !wait_for_input_or_stop_until(stop, -1, ACCEPT_PAUSE.as_millis() as i32)? {
                    break;
                }
                continue;
            }
        };
        if address_limited && !address_space_for_a_thread() {
            log_occurrence("cannot start a connection thread: address space nearly exhausted; connection refused", &mut spawn_failures);
            continue; // `stream` drops here: the connection is shed, the server keeps serving
        }
        let conn: Conn<H> = Conn::new(stream, peer, index, Instant::now());
        slots.add();
        let slot = SlotGuard { slots: std::sync::Arc::clone(&slots), worker: Some(std::sync::Arc::clone(&worker)) };
        let spawned = std::thread::Builder::new().stack_size(STACK_SIZE).spawn(move || {
            let slot = slot; // the whole guard moves in, not only the field read below
            if let Some(worker) = slot.worker.as_deref() {
                connection_thread(conn, stop, worker);
            }
        });
        if spawned.is_err() {
            // The closure, and with it the slot, was dropped: the slot is already given back.
            log_occurrence("cannot start a connection thread: connection refused", &mut spawn_failures);
        }
    }
    // Every connection thread sees the stop pipe too: wait until each has run `on_close`.
    slots.wait_empty();
    Ok(())
}
{%- else %}

/// One thread answers every datagram with blocking sends. It waits on the socket and the stop
/// pipe together, so a signal is never lost between two receives. The receive buffer is one
/// byte longer than `BUFFER_SIZE`: a datagram that fills it was too long, and is dropped
/// rather than handled cut short.
fn run_loop<H: Handler>(socket: UdpSocket, stop: RawFd, index: usize, startup: &Startup) -> io::Result<()> {
    let mut handler = worker_started(index, H::start_worker(index))?;
    let mut scratch = vec![0u8; BUFFER_SIZE + 1];
    let mut reply = Reply { buf: Vec::with_capacity(OUTPUT_BUFFER), has_reply: false };
    let (mut truncated, mut send_errors, mut recv_errors, mut panics, mut received) = (0, 0, 0, 0, 0);
    if !startup.ready(index, true) {
        return Ok(());
    }
    loop {
        if !wait_for_input_or_stop(stop, socket.as_raw_fd())? {
            break;
        }
        let incoming = socket.recv_from(&mut scratch);
        op_log!(
            "{PROGRAM}: op=recvfrom fd={} bytes={} result={}",
            socket.as_raw_fd(),
            incoming.as_ref().map_or(-1, |(n, _)| *n as i64),
            op_result(&incoming)
        );
        let (n, peer) = match incoming {
            Ok(received) => received,
            Err(e) if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => {
                log_occurrence("recvfrom failed", &mut recv_errors);
                continue;
            }
        };
        if n > BUFFER_SIZE {
            log_occurrence("datagram longer than io.buffer_size dropped", &mut truncated);
            continue;
        }
        reply.clear();
        received += 1;
        let mut ctx = Ctx { out: &mut reply, info: DatagramInfo { id: received, worker: index, peer } };
        let msg = &scratch[..n];
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.on_message(msg, &mut ctx))).is_err() {
            log_occurrence("a handler panicked; its datagram got no reply", &mut panics);
            continue;
        }
        if reply.has_reply {
            op_log!("{PROGRAM}: op=sendto fd={} peer={peer} bytes={}", socket.as_raw_fd(), reply.buf.len());
            while let Err(e) = socket.send_to(&reply.buf, peer) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log_occurrence("sendto failed; reply dropped", &mut send_errors);
                    break;
                }
            }
        }
    }
    handler.on_stop();
    Ok(())
}
{%- endif %}
{% include "rust/serve.rs" %}
