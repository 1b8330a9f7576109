{%- include "rust/common.rs" %}

/// Blocks until `fd` is readable (true) or a stop is requested (false). Watching the stop pipe
/// in the same poll means no signal is lost between two calls.
fn wait_for_input_or_stop(stop: RawFd, fd: RawFd) -> io::Result<bool> {
    let mut fds = [pollfd(stop, libc::POLLIN), pollfd(fd, libc::POLLIN)];
    loop {
        match sys_poll(&mut fds, -1) {
            Ok(_) if fds[0].revents != 0 => return Ok(false),
            Ok(_) if fds[1].revents != 0 => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
{%- if v.tcp %}

/// Counts connection threads; a finishing thread wakes the accept loop through `wake`.
struct Slots {
    active: std::sync::Mutex<usize>,
    wake: std::os::unix::net::UnixStream,
}

impl Slots {
    fn active(&self) -> usize {
        *self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, delta: isize) {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        *active = active.saturating_add_signed(delta);
    }
}

/// One connection on its own thread with blocking calls. The idle timeout is the socket's
/// read and write timeouts: a peer quiet (or not reading) for that long is dropped.
fn connection_thread<H: Handler>(mut stream: TcpStream, mut handler: H, slots: std::sync::Arc<Slots>) {
    let mut out = Vec::with_capacity(OUTPUT_BUFFER);
    let mut has_reply = false;
    let mut buf = vec![0u8; BUFFER_SIZE];
    let mut keep = handler.on_open() == Flow::Keep;
    while keep {
        out.clear();
        if H::PRODUCER {
            keep = handler.on_writable(&mut Out { buf: &mut out, cap: OUTPUT_BUFFER, has_reply: &mut has_reply }) == Flow::Keep;
        } else {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    keep = handler.on_data(&buf[..n], &mut Out { buf: &mut out, cap: OUTPUT_BUFFER, has_reply: &mut has_reply }) == Flow::Keep;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        if stream.write_all(&out).is_err() {
            break;
        }
    }
    handler.on_close();
    drop(stream);
    slots.add(-1);
    let _ = (&slots.wake).write(b"x");
}

/// Thread per connection. The accept loop waits on the listener and the stop pipe together;
/// at `MAX_CONNECTIONS` it waits for a thread to finish instead, and peers wait in the backlog.
fn run_loop<H: Handler>(listener: TcpListener, stop: RawFd, handler: H) -> io::Result<()> {
    let (wake_read, wake) = std::os::unix::net::UnixStream::pair()?;
    wake_read.set_nonblocking(true)?;
    wake.set_nonblocking(true)?;
    let slots = std::sync::Arc::new(Slots { active: std::sync::Mutex::new(0), wake });
    let mut spare = std::fs::File::open("/dev/null").ok();
    let mut shed = 0;
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
        let Some(stream) = accept_connection(&listener, &mut spare, &mut shed) else { continue };
        if stream.set_nonblocking(false).is_err()
            || stream.set_read_timeout(IDLE_TIMEOUT).is_err()
            || stream.set_write_timeout(IDLE_TIMEOUT).is_err()
        {
            continue;
        }
        slots.add(1);
        let (handler, thread_slots) = (handler.clone(), std::sync::Arc::clone(&slots));
        let spawned = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || connection_thread(stream, handler, thread_slots));
        if let Err(e) = spawned {
            eprintln!("{PROGRAM}: cannot start a connection thread: {e}");
            slots.add(-1);
        }
    }
    // Connection threads are detached: they end with the process, which exits next.
    Ok(())
}
{%- else %}

/// One thread answers every datagram with blocking sends. It waits on the socket and the stop
/// pipe together, so a signal is never lost between two receives. The receive buffer is one
/// byte longer than `BUFFER_SIZE`: a datagram that fills it was too long, and is dropped
/// rather than handled cut short.
fn run_loop<H: Handler>(socket: UdpSocket, stop: RawFd, mut handler: H) -> io::Result<()> {
    let mut scratch = vec![0u8; BUFFER_SIZE + 1];
    let mut reply = Vec::with_capacity(OUTPUT_BUFFER);
    let (mut truncated, mut send_errors, mut recv_errors) = (0, 0, 0);
    let _ = handler.on_open();
    loop {
        if !wait_for_input_or_stop(stop, socket.as_raw_fd())? {
            break;
        }
        let (n, peer) = match socket.recv_from(&mut scratch) {
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
        let mut has_reply = false;
        let _ = handler.on_data(&scratch[..n], &mut Out { buf: &mut reply, cap: OUTPUT_BUFFER, has_reply: &mut has_reply });
        if has_reply {
            while let Err(e) = socket.send_to(&reply, peer) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log_occurrence("sendto failed; reply dropped", &mut send_errors);
                    break;
                }
            }
        }
    }
    handler.on_close();
    Ok(())
}
{%- endif %}
{% include "rust/serve.rs" %}
