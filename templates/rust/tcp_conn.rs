
/// What `Conn::service` leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Nothing more to do until the socket is ready again.
    Wait,
    /// Budget spent with work left: service again soon.
    More,
    /// Finished or failed: close it.
    Done,
}

/// Receive calls per connection per wakeup, so one busy peer cannot starve the others.
const CONN_BUDGET: usize = 16;

/// One TCP connection: read, hand bytes to the handler, send what it queued.
struct Conn<H: Handler> {
    stream: TcpStream,
    handler: H,
    /// Queued output; `out[out_sent..]` is still to be sent.
    out: Vec<u8>,
    out_sent: usize,
    has_reply: bool,
    /// The peer shut down its sending side.
    read_closed: bool,
    /// The handler asked to close once output is sent.
    closing: bool,
    last_active: Instant,
{%- if v.model == "epoll" %}
    /// EPOLLRDHUP seen: a short read may hide the FIN behind it, so read on to EOF.
    peer_hup: bool,
    /// On the loop's list of connections with work left.
    in_ready: bool,
{%- endif %}
}

impl<H: Handler> Conn<H> {
    fn open(stream: TcpStream, mut handler: H, now: Instant) -> Conn<H> {
        let closing = handler.on_open() == Flow::Close;
        Conn {
            stream,
            handler,
            out: Vec::new(),
            out_sent: 0,
            has_reply: false,
            read_closed: false,
            closing,
            last_active: now,
{%- if v.model == "epoll" %}
            peer_hup: false,
            in_ready: false,
{%- endif %}
        }
    }

    fn pending(&self) -> usize {
        self.out.len() - self.out_sent
    }

    /// Room the handler would have once sent bytes are dropped from the queue.
    fn room(&self) -> usize {
        OUTPUT_BUFFER - self.pending()
    }

    /// Sends queued output: Ok(true) when all is sent, Ok(false) when the socket is full.
    fn flush(&mut self, now: Instant) -> io::Result<bool> {
        while self.out_sent < self.out.len() {
            match self.stream.write(&self.out[self.out_sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out_sent += n;
                    self.last_active = now;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_sent = 0;
        self.has_reply = false;
        Ok(true)
    }

    /// Does all the work the socket allows: flush, produce, read and hand to the handler,
    /// flush again. Reading stops while the output queue cannot take one more full read, so a
    /// peer that sends without reading is throttled instead of growing our memory. A peer
    /// that half-closes still gets everything queued before we close.
    fn service(&mut self, scratch: &mut [u8], now: Instant) -> Status {
        let mut can_read = true;
        let mut round = 0;
        loop {
            let flushed = match self.flush(now) {
                Ok(flushed) => flushed,
                Err(_) => return Status::Done,
            };
            if self.closing || self.read_closed {
                return if flushed { Status::Done } else { Status::Wait };
            }
            if !flushed && self.room() < BUFFER_SIZE {
                return Status::Wait;
            }
            if round == CONN_BUDGET {
                return Status::More;
            }
            round += 1;
            if self.out_sent > 0 {
                self.out.drain(..self.out_sent);
                self.out_sent = 0;
            }
            let mut progress = false;
            if H::PRODUCER && flushed {
                let mut out = Out { buf: &mut self.out, cap: OUTPUT_BUFFER, has_reply: &mut self.has_reply };
                if self.handler.on_writable(&mut out) == Flow::Close {
                    self.closing = true;
                }
                progress = !self.out.is_empty() || self.closing;
            }
            if can_read && self.room() >= BUFFER_SIZE {
                match self.stream.read(&mut scratch[..BUFFER_SIZE]) {
                    Ok(0) => {
                        self.read_closed = true;
                        progress = true;
                    }
                    Ok(n) => {
                        self.last_active = now;
                        let mut out = Out { buf: &mut self.out, cap: OUTPUT_BUFFER, has_reply: &mut self.has_reply };
                        if self.handler.on_data(&scratch[..n], &mut out) == Flow::Close {
                            self.closing = true;
                        }
                        if n < BUFFER_SIZE{% if v.model == "epoll" %} && !self.peer_hup{% endif %} {
                            can_read = false;
                        }
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => can_read = false,
                    Err(_) => return Status::Done,
                }
            }
            if !progress {
                return Status::Wait;
            }
        }
    }

    fn close(mut self) {
        self.handler.on_close();
    }
}
