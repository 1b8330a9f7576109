
/// The connection's I/O in a completion model (io_uring): the loop submits receives and sends,
/// and hands the connection what completed.
impl<H: Handler> Conn<H> {
    /// Bytes a completion delivered. While open they go to the handler after what it kept, as
    /// after a read; while closing they are dropped. A completion can come after reading
    /// paused (the receive's cancel had not landed): those bytes are kept, never counted
    /// against the input limit since the handler chose not to read them yet, and presented in
    /// windows once reading resumes, like what a readiness model finds in its socket.
    fn receive<A: WorkerAccess<H::Worker>>(&mut self, access: &mut A, data: &[u8], now: Instant) {
        let paused = self.read_paused || self.control.input_paused;
        self.last_active = now;
        if self.control.phase != Phase::Open {
            return;
        }
        if self.unconsumed() == 0 && !paused {
            self.deliver(access, data);
            return;
        }
        if self.in_start > 0 && self.input.capacity() - self.input.len() < data.len() {
            // Consumed bytes go before the buffer grows, so it holds what is unconsumed, not
            // everything the connection ever received.
            self.input.drain(..self.in_start);
            self.in_start = 0;
        }
        if self.input.try_reserve(data.len()).is_err() {
            self.end(CloseReason::Error(libc::ENOMEM));
            return;
        }
        self.input.extend_from_slice(data);
        if paused {
            self.input_held = true;
        } else {
            self.deliver(access, &[]);
        }
    }

    /// The peer's FIN arrived.
    fn read_eof(&mut self) {
        self.read_closed = true;
        self.control.read_closed = true;
        match self.control.phase {
            Phase::Open => self.eof_pending = true,
            Phase::Linger => self.control.phase = Phase::Done, // it has everything
            _ => {}
        }
    }
}
