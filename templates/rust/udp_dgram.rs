
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
    reply: Vec<u8>,
    has_reply: bool,
    /// The sender of the reply waiting for room in the send buffer.
    pending: Option<SocketAddr>,
    truncated: u64,
    send_errors: u64,
    recv_errors: u64,
}

impl<H: Handler> Dgram<H> {
    fn open(socket: UdpSocket, mut handler: H) -> Dgram<H> {
        let _ = handler.on_open();
        Dgram {
            socket,
            handler,
            scratch: vec![0; BUFFER_SIZE + 1],
            reply: Vec::with_capacity(OUTPUT_BUFFER),
            has_reply: false,
            pending: None,
            truncated: 0,
            send_errors: 0,
            recv_errors: 0,
        }
    }

    /// Sends the waiting reply: false when the socket has no room yet.
    fn send_pending(&mut self) -> bool {
        while let Some(peer) = self.pending {
            match self.socket.send_to(&self.reply, peer) {
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
            let (n, peer) = match self.socket.recv_from(&mut self.scratch) {
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
            self.has_reply = false;
            let mut out = Out { buf: &mut self.reply, cap: OUTPUT_BUFFER, has_reply: &mut self.has_reply };
            let _ = self.handler.on_data(&self.scratch[..n], &mut out);
            if self.has_reply {
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
        self.handler.on_close();
    }
}
