
/// What `Dgram::service` leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Nothing to read, or no room to send the waiting reply.
    Wait,
    /// Budget spent with datagrams possibly left.
    More,
}

/// Datagrams per wakeup before the loop checks for shutdown again.
const DGRAM_BUDGET: usize = 64;

/// The UDP socket: each datagram goes to the handler whole, and its reply goes back to the
/// sender.
struct Dgram<H: Handler> {
    socket: UdpSocket,
    handler: H,
    /// One byte longer than `BUFFER_SIZE`: a datagram that fills it was longer than the
    /// buffer, and is dropped rather than handled cut short.
    scratch: Vec<u8>,
    reply: Reply,
    index: usize,
    received: u64,
    /// The sender of the reply waiting for room in the send buffer.
    pending: Option<SocketAddr>,
    truncated: u64,
    send_errors: u64,
    recv_errors: u64,
    panics: u64,
}

impl<H: Handler> Dgram<H> {
    fn open(socket: UdpSocket, index: usize) -> Dgram<H> {
        Dgram {
            socket,
            handler: H::default(),
            scratch: vec![0; BUFFER_SIZE + 1],
            reply: Reply { buf: Vec::with_capacity(OUTPUT_BUFFER), has_reply: false },
            index,
            received: 0,
            pending: None,
            truncated: 0,
            send_errors: 0,
            recv_errors: 0,
            panics: 0,
        }
    }

    /// Sends the waiting reply: false when the socket has no room yet.
    fn send_pending(&mut self) -> bool {
        while let Some(peer) = self.pending {
            let sent = self.socket.send_to(&self.reply.buf, peer);
            op_log!("{PROGRAM}: op=sendto fd={} peer={peer} bytes={} result={}", self.socket.as_raw_fd(), self.reply.buf.len(), op_result(&sent));
            match sent {
                Ok(_) => self.pending = None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => {
                    log_occurrence("sendto failed; reply dropped", &mut self.send_errors);
                    self.pending = None;
                }
            }
        }
        true
    }

    fn service(&mut self) -> Status {
        for _ in 0..DGRAM_BUDGET {
            if !self.send_pending() {
                return Status::Wait;
            }
            let received = self.socket.recv_from(&mut self.scratch);
            op_log!(
                "{PROGRAM}: op=recvfrom fd={} bytes={} result={}",
                self.socket.as_raw_fd(),
                received.as_ref().map_or(-1, |(n, _)| *n as i64),
                op_result(&received)
            );
            let (n, peer) = match received {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Status::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    log_occurrence("recvfrom failed", &mut self.recv_errors);
                    continue;
                }
            };
            if n > BUFFER_SIZE {
                log_occurrence("datagram longer than io.buffer_size dropped", &mut self.truncated);
                continue;
            }
            self.reply.clear();
            self.received += 1;
            let info = DatagramInfo { id: self.received, worker: self.index, peer };
            let mut ctx = Ctx { out: &mut self.reply, info };
            let (handler, msg) = (&mut self.handler, &self.scratch[..n]);
            let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.on_message(msg, &mut ctx)));
            if handled.is_err() {
                log_occurrence("a handler panicked; its datagram got no reply", &mut self.panics);
            } else if self.reply.has_reply {
                self.pending = Some(peer);
            }
        }
        if self.send_pending() {
            Status::More
        } else {
            Status::Wait
        }
    }

    fn close(mut self) {
        self.handler.on_stop();
    }
}
