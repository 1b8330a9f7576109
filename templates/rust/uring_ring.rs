{{ v.runtime_close }}

/// Provided buffers per worker: a power of two, about 4 MiB of them (so the spec's
/// `buffer_size` decides how many). A buffer is busy only from a receive's completion until the
/// handler has seen it, so this bounds one batch of completions, not connections.
const RING_BUFFERS: usize = {{ v.ring_buffers }};
{{ v.runtime_open }}
/// Submission queue entries; the completion queue is four times larger.
const RING_ENTRIES: u32 = 4096;
const BUFFER_GROUP: u16 = 0;
{%- if v.tcp %}
const RING_BUFFER_SIZE: usize = BUFFER_SIZE;
{%- else %}
/// A received datagram in a provided buffer: io_uring's header, the sender's address, then the
/// payload; one longer than `BUFFER_SIZE` is flagged truncated.
const RING_BUFFER_SIZE: usize = 16 + std::mem::size_of::<libc::sockaddr_storage>() + BUFFER_SIZE;
{%- endif %}

/// What a completion belongs to, in the low bits of its user data; the rest is a slot number.
const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;
const OP_CANCEL: u64 = 3;
const OP_STOP: u64 = 4;
{%- if v.client %}
/// A member's connect, and the timeout linked to it.
const OP_CONNECT: u64 = 5;
const OP_CONNECT_TIMEOUT: u64 = 6;
{%- else %}
const OP_ACCEPT: u64 = 5;
/// The cancel of the accept: its own completion says when the accept ended.
const OP_ACCEPT_CANCEL: u64 = 6;
{%- endif %}
const OP_BITS: u32 = 3;

fn tag(slot: usize, op: u64) -> u64 {
    ((slot as u64) << OP_BITS) | op
}

/// Why io_uring cannot be used here, as one line that says what to do instead.
fn unavailable(what: &str, error: io::Error) -> io::Error {
    let cause = match error.raw_os_error() {
        Some(libc::ENOSYS) => "this kernel has no io_uring",
        Some(libc::EPERM | libc::EACCES) => "io_uring is refused here (a seccomp profile, as in many containers, or the kernel.io_uring_disabled sysctl)",
        Some(libc::EINVAL) => "this kernel's io_uring lacks what this {% if v.client %}client{% else %}server{% endif %} uses (Linux 6.0 or later)",
        _ => "io_uring could not be set up",
    };
    io::Error::new(error.kind(), format!("{cause}: {what}: {error}; render the spec with --model epoll to run without it"))
}

/// One ring per worker, used only by that worker's thread: set up with the fastest flags the
/// kernel takes (SINGLE_ISSUER + DEFER_TASKRUN: completions are posted only when the loop asks,
/// in one batch; else COOP_TASKRUN; else none), its descriptor registered, and a ring of
/// provided buffers that multishot receives fill.
struct Ring {
    uring: IoUring,
    /// The buffer ring the kernel takes buffers from (mapped, page-aligned, never moved).
    provided: *mut types::BufRingEntry,
    /// `RING_BUFFERS` buffers of `RING_BUFFER_SIZE` bytes; never resized, so never moved.
    buffers: Vec<u8>,
    /// Our copy of the buffer ring's tail, and buffers given back since the kernel last saw it.
    tail: u16,
    returned: u16,
    /// Completions of the last wait: (user data, result, flags).
    completed: Vec<(u64, i32, u32)>,
    /// Requests whose last completion has not come yet.
    inflight: usize,
}

impl Ring {
    fn open() -> io::Result<Ring> {
        // SOCKGEN_IO_URING_SETUP=coop or =plain skips the faster setups, so the fallbacks a
        // kernel older than this one would take can be run (and proven) here.
        let first = match std::env::var("SOCKGEN_IO_URING_SETUP").as_deref() {
            Err(_) | Ok("" | "defer") => 0,
            Ok("coop") => 1,
            Ok("plain") => 2,
            Ok(_) => return Err(io::Error::new(io::ErrorKind::InvalidInput, "SOCKGEN_IO_URING_SETUP must be defer, coop or plain")),
        };
        let mut last = io::Error::from_raw_os_error(libc::EINVAL);
        let mut uring = None;
        for flags in first..3 {
            let mut builder = IoUring::builder();
            builder.setup_submit_all().setup_cqsize(4 * RING_ENTRIES);
            match flags {
                0 => builder.setup_single_issuer().setup_defer_taskrun(),
                1 => builder.setup_coop_taskrun(),
                _ => &mut builder,
            };
            let built = builder.build(RING_ENTRIES);
            op_log!("{PROGRAM}: op=io_uring_setup fd=-1 attempt={flags} result={}", op_result(&built));
            match built {
                Ok(ring) => {
                    uring = Some(ring);
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = e,
                Err(e) => return Err(unavailable("io_uring_setup", e)),
            }
        }
        let Some(uring) = uring else { return Err(unavailable("io_uring_setup", last)) };
        let _ = uring.submitter().register_ring_fd(); // an optimisation: fine without it
        let ring_bytes = RING_BUFFERS * std::mem::size_of::<types::BufRingEntry>();
        // SAFETY: a fresh private anonymous mapping, owned by this Ring until drop.
        let provided = unsafe {
            libc::mmap(std::ptr::null_mut(), ring_bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if provided == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut ring = Ring {
            uring,
            provided: provided.cast(),
            buffers: vec![0; RING_BUFFERS * RING_BUFFER_SIZE],
            tail: 0,
            returned: 0,
            completed: Vec::with_capacity(1024),
            inflight: 0,
        };
        // SAFETY: the mapping and the buffers live as long as the ring (dropped after it).
        unsafe {
            ring.uring
                .submitter()
                .register_buf_ring_with_flags(provided as u64, RING_BUFFERS as u16, BUFFER_GROUP, 0)
                .map_err(|e| unavailable("io_uring_register_buf_ring", e))?;
        }
        // The kernel cycles through every buffer within the first RING_BUFFERS receives: touch
        // them now, so their memory is resident from the start (no page faults while serving,
        // and a steady resident size) rather than growing in the first seconds of traffic.
        let base = ring.buffers.as_mut_ptr();
        for offset in (0..ring.buffers.len()).step_by(4096) {
            // SAFETY: offset < buffers.len().
            unsafe { std::ptr::write_volatile(base.add(offset), 0) };
        }
        for id in 0..RING_BUFFERS {
            ring.return_buffer(id as u16);
        }
        ring.give_back();
        ring.check_multishot()?;
        Ok(ring)
    }

    /// Queues a request; a full submission queue is submitted first.
    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every buffer a request points to outlives it (see the callers).
            if unsafe { self.uring.submission().push(&entry) }.is_ok() {
                self.inflight += 1;
                return Ok(());
            }
            self.give_back(); // receives submitted now must find the buffers given back
            self.uring.submit()?;
        }
    }

    fn return_buffer(&mut self, id: u16) {
        let index = (self.tail.wrapping_add(self.returned) as usize) & (RING_BUFFERS - 1);
        // SAFETY: index < RING_BUFFERS entries of the mapping; the kernel reads only up to the
        // tail, which `give_back` publishes after these writes.
        let entry = unsafe { &mut *self.provided.add(index) };
        entry.set_addr(self.buffers[id as usize * RING_BUFFER_SIZE..].as_ptr() as u64);
        entry.set_len(RING_BUFFER_SIZE as u32);
        entry.set_bid(id);
        self.returned += 1;
    }

    /// The kernel may take the buffers given back so far (one store, however many).
    fn give_back(&mut self) {
        if self.returned > 0 {
            self.tail = self.tail.wrapping_add(self.returned);
            self.returned = 0;
            // SAFETY: the tail field of the mapped ring, shared with the kernel.
            let tail = unsafe { &*(types::BufRingEntry::tail(self.provided) as *const std::sync::atomic::AtomicU16) };
            tail.store(self.tail, Ordering::Release);
        }
    }

    fn buffer(&self, id: u16, len: usize) -> &[u8] {
        let start = id as usize * RING_BUFFER_SIZE;
        &self.buffers[start..start + len.min(RING_BUFFER_SIZE)]
    }

    /// Submits what is queued and waits up to `timeout` (None: no limit) for completions,
    /// which it collects into `completed`.
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.give_back();
        let waited = match timeout {
            Some(t) => {
                let ts = types::Timespec::new().sec(t.as_secs()).nsec(t.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                self.uring.submitter().submit_with_args(1, &args)
            }
            None => self.uring.submit_and_wait(1),
        };
        match waited {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EAGAIN | libc::EBUSY)) => {}
            Err(e) => return Err(e),
        }
        self.completed.clear();
        self.completed.extend(self.uring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
        let ended = self.completed.iter().filter(|&&(_, _, flags)| !cqueue::more(flags)).count();
        self.inflight = self.inflight.saturating_sub(ended);
        Ok(())
    }

    /// Start-up check that multishot receive into provided buffers works (Linux 6.0), on a
    /// socket pair: one byte must arrive in a buffer with more to come, then EOF ends it.
    fn check_multishot(&mut self) -> io::Result<()> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        self.push(opcode::RecvMulti::new(types::Fd(ours.as_raw_fd()), BUFFER_GROUP).build().user_data(0))?;
        (&theirs).write_all(b"x")?;
        drop(theirs);
        let (mut got_byte, mut got_eof) = (false, false);
        while !got_eof {
            self.wait(None)?;
            for (_, result, flags) in std::mem::take(&mut self.completed) {
                if let Some(id) = cqueue::buffer_select(flags) {
                    self.return_buffer(id);
                }
                if result == 1 && cqueue::more(flags) {
                    got_byte = true;
                } else if result == 0 && got_byte {
                    got_eof = true;
                } else {
                    let error = if result < 0 { -result } else { libc::EINVAL };
                    return Err(unavailable("multishot receive", io::Error::from_raw_os_error(error)));
                }
            }
        }
        self.give_back();
        Ok(())
    }
}

impl Ring {
    /// Cancels every request and waits (a second at most) for their last completions. True
    /// when the kernel is done with every request, so the memory they used may be freed:
    /// closing the ring alone would leave their cancellation to run after close() returned.
    fn quiesce(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(1);
        let everything = types::CancelBuilder::any();
        if self.inflight > 0 && self.push(opcode::AsyncCancel2::new(everything).build().user_data(0)).is_ok() {
            while self.inflight > 0 && Instant::now() < deadline && self.wait(Some(Duration::from_millis(100))).is_ok() {}
        }
        self.inflight == 0
    }
}

impl Drop for Ring {
    /// Frees the buffers only once the kernel is done with them; requests that outlived the
    /// drain may still write into them, so then they are left to the process's exit.
    fn drop(&mut self) {
        if !self.quiesce() {
            std::mem::forget(std::mem::take(&mut self.buffers));
            return;
        }
        // SAFETY: the mapping made in `open`. The IoUring field is dropped after this body,
        // which closes the ring; nothing of ours is submitted after that.
        unsafe { libc::munmap(self.provided.cast(), RING_BUFFERS * std::mem::size_of::<types::BufRingEntry>()) };
    }
}
