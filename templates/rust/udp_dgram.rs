
/// What `Dgram::service` leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Nothing to read, or no room to send the replies waiting.
    Wait,
    /// Budget spent with datagrams possibly left.
    More,
}

/// Datagrams taken by one recvmmsg, and replies sent by one sendmmsg.
const DGRAM_BATCH: usize = 32;
/// Batches per wakeup before the loop checks for shutdown again.
const DGRAM_BUDGET: usize = 4;

/// The UDP socket: one recvmmsg takes up to `DGRAM_BATCH` datagrams with their senders; the
/// handler answers each into a reply of its own, and one sendmmsg sends the replies, each to
/// its own sender. Replies the socket has no room for wait (the loop then asks for write
/// readiness) and nothing is read until they are out, so no reply is dropped for lack of
/// room: excess datagrams wait in the kernel's receive buffer instead.
struct Dgram<H: Handler> {
    socket: UdpSocket,
    handler: H,
    /// `DGRAM_BATCH` receive buffers, each one byte longer than `BUFFER_SIZE`: a datagram
    /// that fills one was longer than the buffer, and is dropped rather than handled cut short.
    inbox: Vec<u8>,
    /// Who sent each datagram of the last batch, and how long it was.
    batch: Vec<Received>,
    /// Replies queued: `outbox[sent..queued]` wait for room.
    outbox: Vec<Outgoing>,
    queued: usize,
    sent: usize,
    index: usize,
    /// Datagrams handed to the handler so far: the next one's id.
    handled: u64,
    truncated: u64,
    send_errors: u64,
    recv_errors: u64,
    panics: u64,
}

/// A datagram of the last batch: its sender and its length.
#[derive(Clone, Copy)]
struct Received {
    sender: libc::sockaddr_storage,
    sender_len: libc::socklen_t,
    len: usize,
}

/// A reply and the address it goes to.
struct Outgoing {
    reply: Reply,
    peer: libc::sockaddr_storage,
    peer_len: libc::socklen_t,
}

impl<H: Handler> Dgram<H> {
    fn open(socket: UdpSocket, index: usize) -> io::Result<Dgram<H>> {
        // SAFETY: an all-zero sockaddr_storage is a valid (unspecified) address.
        let empty: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        Ok(Dgram {
            socket,
            handler: worker_started(index, H::start_worker(index))?,
            inbox: vec![0; DGRAM_BATCH * (BUFFER_SIZE + 1)],
            batch: vec![Received { sender: empty, sender_len: 0, len: 0 }; DGRAM_BATCH],
            outbox: (0..DGRAM_BATCH)
                .map(|_| Outgoing { reply: Reply { buf: Vec::with_capacity(OUTPUT_BUFFER), has_reply: false }, peer: empty, peer_len: 0 })
                .collect(),
            queued: 0,
            sent: 0,
            index,
            handled: 0,
            truncated: 0,
            send_errors: 0,
            recv_errors: 0,
            panics: 0,
        })
    }

    fn replies_waiting(&self) -> bool {
        self.sent < self.queued
    }

    /// Sends the queued replies: false when the socket is full and the rest wait. A reply the
    /// kernel refuses for a reason of its own is dropped with a log line.
    fn flush(&mut self) -> bool {
        while self.sent < self.queued {
            let pending = self.queued - self.sent;
            let mut iov: [libc::iovec; DGRAM_BATCH] = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; DGRAM_BATCH];
            // SAFETY: an all-zero mmsghdr is valid; the pointers set below outlive the call.
            let mut msgs: [libc::mmsghdr; DGRAM_BATCH] = unsafe { std::mem::zeroed() };
            for (i, out) in self.outbox[self.sent..self.queued].iter_mut().enumerate() {
                iov[i] = libc::iovec { iov_base: out.reply.buf.as_mut_ptr().cast(), iov_len: out.reply.buf.len() };
                msgs[i].msg_hdr.msg_name = (&mut out.peer as *mut libc::sockaddr_storage).cast();
                msgs[i].msg_hdr.msg_namelen = out.peer_len;
                msgs[i].msg_hdr.msg_iov = &mut iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: `msgs[..pending]` point into buffers owned by self for the whole call.
            let n = unsafe { libc::sendmmsg(self.socket.as_raw_fd(), msgs.as_mut_ptr(), pending as libc::c_uint, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
            let result = if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) };
            op_log!("{PROGRAM}: op=sendmmsg fd={} replies={} result={}", self.socket.as_raw_fd(), n, op_result(&result));
            match result {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS) => return false,
                Err(_) => {
                    // The first reply failed alone (EMSGSIZE, an ICMP error for its sender...).
                    log_occurrence("sendto failed; reply dropped", &mut self.send_errors);
                    self.sent += 1;
                }
            }
        }
        self.queued = 0;
        self.sent = 0;
        true
    }

    /// Takes up to `DGRAM_BATCH` datagrams; returns how many, or the error.
    fn receive(&mut self) -> io::Result<usize> {
        let mut iov: [libc::iovec; DGRAM_BATCH] = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; DGRAM_BATCH];
        // SAFETY: an all-zero mmsghdr is valid; the pointers set below outlive the call.
        let mut msgs: [libc::mmsghdr; DGRAM_BATCH] = unsafe { std::mem::zeroed() };
        for (i, (buffer, received)) in self.inbox.chunks_mut(BUFFER_SIZE + 1).zip(self.batch.iter_mut()).enumerate() {
            iov[i] = libc::iovec { iov_base: buffer.as_mut_ptr().cast(), iov_len: buffer.len() };
            msgs[i].msg_hdr.msg_name = (&mut received.sender as *mut libc::sockaddr_storage).cast();
            msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            msgs[i].msg_hdr.msg_iov = &mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every message points into buffers owned by self for the whole call.
        let n = unsafe {
            libc::recvmmsg(self.socket.as_raw_fd(), msgs.as_mut_ptr(), DGRAM_BATCH as libc::c_uint, libc::MSG_DONTWAIT, std::ptr::null_mut())
        };
        let result = if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) };
        op_log!("{PROGRAM}: op=recvmmsg fd={} datagrams={} result={}", self.socket.as_raw_fd(), n, op_result(&result));
        let n = result?;
        for (received, msg) in self.batch.iter_mut().zip(&msgs[..n]) {
            received.len = msg.msg_len as usize;
            received.sender_len = msg.msg_hdr.msg_namelen;
        }
        Ok(n)
    }

    /// Hands datagram `i` of the last batch to the handler; queues the reply it built.
    fn answer(&mut self, i: usize) {
        let received = self.batch[i];
        if received.len > BUFFER_SIZE {
            log_occurrence("datagram longer than io.buffer_size dropped", &mut self.truncated);
            return;
        }
        let Some(peer) = socket_addr_from(&received.sender) else { return };
        let out = &mut self.outbox[self.queued];
        out.reply.clear();
        self.handled += 1;
        let info = DatagramInfo { id: self.handled, worker: self.index, peer };
        let mut ctx = Ctx { out: &mut out.reply, info };
        let start = i * (BUFFER_SIZE + 1);
        let (handler, msg) = (&mut self.handler, &self.inbox[start..start + received.len]);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.on_message(msg, &mut ctx)));
        if outcome.is_err() {
            log_occurrence("a handler panicked; its datagram got no reply", &mut self.panics);
        } else if out.reply.has_reply {
            out.peer = received.sender;
            out.peer_len = received.sender_len;
            self.queued += 1;
        }
    }

    fn service(&mut self) -> Status {
        for _ in 0..DGRAM_BUDGET {
            if self.replies_waiting() && !self.flush() {
                return Status::Wait; // read nothing until these replies are out
            }
            let n = match self.receive() {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Status::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    // ICMP errors from earlier replies (ECONNREFUSED...) must not stop the server.
                    log_occurrence("recvmmsg failed", &mut self.recv_errors);
                    continue;
                }
            };
            for i in 0..n {
                self.answer(i);
            }
            if !self.flush() || n < DGRAM_BATCH {
                return Status::Wait; // no room for replies, or a short batch emptied the socket
            }
        }
        Status::More
    }

    fn close(mut self) {
        self.handler.on_stop();
    }
}
