/// Blocks until `fd` is readable (true) or a stop is requested (false). Watching the stop pipe
/// in the same poll means no signal is lost between two calls.
fn wait_for_input_or_stop(stop: RawFd, fd: RawFd) -> io::Result<bool> {
    wait_for_input_or_stop_until(stop, fd, -1)
}

/// The same, but true also when `timeout_ms` pass (`fd` -1: wait for the stop or the time only).
fn wait_for_input_or_stop_until(stop: RawFd, fd: RawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut fds = [pollfd(stop, libc::POLLIN), pollfd(fd, libc::POLLIN)];
    loop {
        match sys_poll(&mut fds, timeout_ms) {
            Ok(0) => return Ok(true),
            Ok(_) if fds[0].revents != 0 => return Ok(false),
            Ok(_) if fds[1].revents != 0 => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
{%- if v.tcp || v.client %}

/// A connection thread reaches its worker's state through the worker's lock, taken only
/// while a callback runs.
struct Locked<'a, W>(&'a std::sync::Mutex<W>);

impl<W> WorkerAccess<W> for Locked<'_, W> {
    fn with<R>(&mut self, f: impl FnOnce(&mut W) -> R) -> R {
        let mut worker = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut worker)
    }
}

/// A connection thread's receive buffer, mapped fresh from the kernel: its pages read as zero
/// without being written, so a connection that receives little touches one page of it rather
/// than all `BUFFER_SIZE` bytes (a Vec filled with zeros, or calloc from a thread's malloc
/// arena, writes every byte, and a thread per connection would keep them all).
struct ReceiveBuffer(std::ptr::NonNull<u8>);

impl ReceiveBuffer {
    /// None when out of memory, so the connection is shed rather than the process aborted.
    fn new() -> Option<ReceiveBuffer> {
        // SAFETY: an anonymous private mapping of BUFFER_SIZE bytes (above zero: the spec's
        // validation) at an address the kernel chooses; no existing memory is affected.
        let bytes = unsafe {
            libc::mmap(std::ptr::null_mut(), BUFFER_SIZE, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if bytes == libc::MAP_FAILED {
            return None;
        }
        std::ptr::NonNull::new(bytes.cast()).map(ReceiveBuffer)
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is BUFFER_SIZE initialised (zero-filled) bytes, owned by self
        // until drop, and borrowed mutably through self alone.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_ptr(), BUFFER_SIZE) }
    }
}

impl Drop for ReceiveBuffer {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made, which nothing borrows any more.
        unsafe {
            libc::munmap(self.0.as_ptr().cast(), BUFFER_SIZE);
        }
    }
}

/// Runs one connection on the calling thread until it is done or a stop comes; the caller
/// releases it. It sleeps in poll() on its socket, the stop pipe and its next deadline, and
/// runs the same connection machinery as the event loops, so the handler contract
/// (back-pressure, EOF, lingering close, timers) is the same here.
fn run_connection<H: Handler>(conn: &mut Conn<H>, stop: RawFd, access: &mut Locked<'_, H::Worker>, scratch: &mut [u8]) {
    conn.start(access);
    loop {
        let now = Instant::now();
        let status = conn.service(access, scratch, now);
        if status == Status::Done {
            break;
        }
        let timeout = match conn.deadline() {
            _ if status == Status::More => 0,
            None => -1,
            Some(at) => at.saturating_duration_since(now).as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
        };
        let mut fds = [pollfd(stop, libc::POLLIN), pollfd(conn.raw_fd(), conn.poll_events())];
        match sys_poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                conn.fail(&e);
                break;
            }
        }
        if fds[0].revents != 0 {
            conn.end(CloseReason::Stopping);
            break;
        }
        let now = Instant::now();
        if conn.deadline().is_some_and(|at| at <= now) {
            conn.expire(access, now);
        }
    }
}
{%- endif %}
