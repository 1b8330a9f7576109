
/// The connection's I/O in a readiness model (blocking, poll, epoll): the loop says the socket
/// is ready, and the connection reads and writes until it would block.
impl<H: Handler> Conn<H> {
    /// Reads and drops input while closing, so the peer's writes cannot stall our last bytes.
    /// True when something happened.
    fn discard(&mut self, scratch: &mut [u8], now: Instant) -> bool {
        match self.stream.read(&mut scratch[..BUFFER_SIZE]) {
            Ok(0) => {
                self.read_closed = true;
                true
            }
            Ok(_) => {
                self.last_active = now;
                true
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => {
                self.fail(&e);
                true
            }
        }
    }

    /// Does all the work the socket allows: flush, produce, read and hand to the handler,
{%- if v.client %}
    /// flush again. A client reads on while its output waits: the replies are what it asked
    /// for, and a server that paces it would otherwise wait for it while it waits for the server.
{%- else %}
    /// flush again. Reading stops while the output is above its high-water mark, so a peer
    /// that sends without reading is throttled instead of growing our memory.
{%- endif %}
    fn service<A: WorkerAccess<H::Worker>>(&mut self, access: &mut A, scratch: &mut [u8], now: Instant) -> Status {
        let mut can_read = true;
        let mut round = 0;
        loop {
            if self.control.phase == Phase::Done {
                return Status::Done;
            }
            let before = self.out.pending;
            match self.out.send(&mut self.stream) {
                Ok(_) => {}
                Err(e) => {
                    self.fail(&e);
                    return Status::Done;
                }
            }
            if self.out.pending < before {
                self.last_active = now;
            }
            let mut progress = self.settle(access, now);
            if self.control.phase == Phase::Done {
                return Status::Done;
            }
            if round == CONN_BUDGET {
                return Status::More;
            }
            round += 1;
            progress |= self.produce(access);
            if !can_read || !self.wants_input() {
                // nothing to read now
            } else if self.control.phase != Phase::Open {
                if self.discard(scratch, now) {
                    progress = true;
                } else {
                    can_read = false;
                }
                if self.control.phase == Phase::Linger && self.read_closed {
                    return Status::Done; // the peer's FIN: it has everything
                }
            } else {
                let kept = self.input.len() - self.in_start;
                let received = if kept > 0 {
                    if self.in_start > 0 {
                        self.input.drain(..self.in_start);
                        self.in_start = 0;
                    }
                    let len = self.input.len();
                    if self.input.try_reserve(BUFFER_SIZE).is_err() {
                        self.end(CloseReason::Error(libc::ENOMEM));
                        return Status::Done;
                    }
                    self.input.resize(len + BUFFER_SIZE, 0);
                    let result = self.stream.read(&mut self.input[len..]);
                    self.input.truncate(len + *result.as_ref().unwrap_or(&0));
                    result
                } else {
                    self.stream.read(&mut scratch[..BUFFER_SIZE])
                };
                op_log!(
                    "{PROGRAM}: op=recv fd={} bytes={} result={}",
                    self.stream.as_raw_fd(),
                    received.as_ref().map_or(-1, |n| *n as i64),
                    if matches!(received, Ok(0)) { "EOF".to_string() } else { op_result(&received) }
                );
                match received {
                    Ok(0) => {
                        self.read_closed = true;
                        self.control.read_closed = true;
                        self.eof_pending = true;
                        progress = true;
                    }
                    Ok(n) => {
                        self.last_active = now;
{%- if v.client %}
                        self.control.heard = true;
{%- endif %}
                        if kept > 0 {
                            self.deliver(access, &[]);
                        } else {
                            self.deliver(access, &scratch[..n]);
                        }
                        if n < BUFFER_SIZE{% if v.uses_epoll %} && !self.read_to_eagain{% endif %} {
                            can_read = false; // a short read emptied the socket
                        }
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => can_read = false,
                    Err(e) => {
                        self.fail(&e);
                        return Status::Done;
                    }
                }
            }
            if !progress {
                return Status::Wait;
            }
        }
    }
{%- if v.uses_poll || v.thread_per_connection %}

    /// What this connection can use now: POLLOUT only while output waits.
    fn poll_events(&self) -> libc::c_short {
        let mut events = 0;
        if self.wants_input() {
            events |= libc::POLLIN;
        }
        if self.out.pending > 0 {
            events |= libc::POLLOUT;
        }
        events
    }
{%- endif %}
}
