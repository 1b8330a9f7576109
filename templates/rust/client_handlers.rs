{% include "rust/client_totals.rs" %}

/// A message of random bytes in flight: how much of it is queued, how much came back.
#[derive(Debug, Default)]
struct Payload {
    /// From 0.
    message: u32,
    size: usize,
    sent: usize,
    checked: usize,
}

impl Payload {
    fn start<W>(&mut self, size: usize, ctx: &mut Ctx<'_, W>) {
        self.size = size;
        self.sent = 0;
        self.checked = 0;
        self.send_more(ctx);
    }

    /// Queues the rest of the message while the queue has room; asks for `on_writable` for
    /// what is left.
    fn send_more<W>(&mut self, ctx: &mut Ctx<'_, W>) {
        let id = ctx.info().id;
        let mut chunk = [0u8; 4096];
        while self.sent < self.size && !ctx.congested() {
            let n = (self.size - self.sent).min(chunk.len());
            for (i, byte) in chunk[..n].iter_mut().enumerate() {
                *byte = payload_byte(id, self.message, self.sent + i);
            }
            if ctx.write(&chunk[..n]).is_err() {
                return;
            }
            self.sent += n;
        }
        ctx.want_writable(self.sent < self.size);
    }

    /// Compares echoed bytes with what was sent; false after failing the connection.
    fn check<W>(&mut self, data: &[u8], ctx: &mut Ctx<'_, W>) -> bool {
        if self.checked + data.len() > self.sent {
            let extra = self.checked + data.len() - self.sent;
            ctx.fail(format_args!("the server sent {extra} bytes more than message {} had so far", self.message + 1));
            return false;
        }
        let id = ctx.info().id;
        for (i, &got) in data.iter().enumerate() {
            let want = payload_byte(id, self.message, self.checked + i);
            if got != want {
                ctx.fail(format_args!(
                    "message {} (size {}), byte {}: sent {want:#04x}, got back {got:#04x}",
                    self.message + 1,
                    self.size,
                    self.checked + i
                ));
                return false;
            }
        }
        self.checked += data.len();
        true
    }
}

{%- if v.handler == Handler::EchoCheck %}

/// echo-check: each connection sends `Options::messages` messages of random bytes (sizes from
/// `SIZES` in turn), one at a time, and checks every byte that comes back before sending the
/// next. One summary line on stdout; any difference fails the run.
#[derive(Debug)]
pub struct EchoCheck {
    out: Payload,
    /// Of the messages before `out`.
    bytes_checked: u64,
    /// Every message came back intact.
    complete: bool,
    info: ConnInfo,
}

impl Handler for EchoCheck {
    type Worker = EchoCheckTotals;

    fn open(ctx: &mut Ctx<'_, EchoCheckTotals>) -> EchoCheck {
        let mut check = EchoCheck { out: Payload::default(), bytes_checked: 0, complete: false, info: *ctx.info() };
        check.out.start(SIZES[0], ctx);
        check
    }

    fn on_data(&mut self, input: &[u8], ctx: &mut Ctx<'_, EchoCheckTotals>) -> usize {
        let mut used = 0;
        while used < input.len() && !self.complete {
            let take = (input.len() - used).min(self.out.size - self.out.checked);
            if !self.out.check(&input[used..used + take], ctx) {
                return input.len();
            }
            used += take;
            if self.out.checked == self.out.size {
                self.bytes_checked += self.out.size as u64;
                self.out.message += 1;
                if self.out.message == ctx.options().messages {
                    self.complete = true;
                    ctx.worker.connections_done += 1;
                    ctx.worker.messages_checked += u64::from(self.out.message);
                    ctx.worker.bytes_checked += self.bytes_checked;
                    ctx.close();
                } else {
                    let size = SIZES[self.out.message as usize % SIZES.len()];
                    self.out.start(size, ctx);
                }
            }
        }
        if used < input.len() {
            ctx.fail(format_args!("the server sent {} bytes after the last message", input.len() - used));
        }
        input.len()
    }

    fn on_writable(&mut self, ctx: &mut Ctx<'_, EchoCheckTotals>) {
        self.out.send_more(ctx);
    }

    fn on_eof(&mut self, ctx: &mut Ctx<'_, EchoCheckTotals>) {
        if self.complete {
            ctx.close();
        } else {
            ctx.fail(format_args!(
                "the server closed the connection during message {} of {} ({} of {} bytes back)",
                self.out.message + 1,
                ctx.options().messages,
                self.out.checked,
                self.out.size
            ));
        }
    }

    fn on_close(&mut self, reason: CloseReason, worker: &mut EchoCheckTotals) {
        if self.complete {
            return;
        }
        worker.connections_cut += 1;
        worker.messages_cut += u64::from(self.out.message);
        // Resets, errors and idle timeouts are retried by the runtime; these end the run.
        if matches!(reason, CloseReason::Stopping | CloseReason::OutputLimit | CloseReason::InputLimit) {
            fail_connection(
                &self.info,
                format_args!("{} during message {} of {}", reason.name(), self.out.message + 1, options().messages),
            );
        }
    }

    fn on_worker_stop(worker: &mut EchoCheckTotals) {
        worker.report();
    }
}
{%- else %}

/// load: closed loop. Each connection sends a message of `SIZES[0]` random bytes, waits until
/// all of it has come back (checked byte for byte) and sends the next, until
/// `Options::duration` has passed. Then one line: messages per second and round-trip latency
/// percentiles.
#[derive(Debug)]
pub struct Load {
    out: Payload,
    /// When the message in flight was queued.
    sent_at: Instant,
    info: ConnInfo,
}

impl Load {
    /// Sends the next message, or closes once the run's time is up.
    fn next(&mut self, ctx: &mut Ctx<'_, LoadTotals>) {
        if ctx.worker.start.elapsed() >= ctx.options().duration {
            ctx.close();
            return;
        }
        self.sent_at = Instant::now();
        self.out.start(SIZES[0], ctx);
    }
}

impl Handler for Load {
    type Worker = LoadTotals;

    fn open(ctx: &mut Ctx<'_, LoadTotals>) -> Load {
        let mut load = Load { out: Payload::default(), sent_at: Instant::now(), info: *ctx.info() };
        load.next(ctx);
        load
    }

    fn on_data(&mut self, input: &[u8], ctx: &mut Ctx<'_, LoadTotals>) -> usize {
        if !self.out.check(input, ctx) {
            return input.len();
        }
        if self.out.checked == self.out.size {
            let ns = u64::try_from(self.sent_at.elapsed().as_nanos()).unwrap_or(u64::MAX);
            ctx.worker.record(ns, self.out.size);
            self.out.message += 1;
            self.next(ctx);
        }
        input.len()
    }

    fn on_writable(&mut self, ctx: &mut Ctx<'_, LoadTotals>) {
        self.out.send_more(ctx);
    }

    fn on_eof(&mut self, ctx: &mut Ctx<'_, LoadTotals>) {
        if self.out.checked < self.out.size {
            ctx.fail(format_args!(
                "the server closed the connection with {} of {} bytes of a message still out",
                self.out.size - self.out.checked,
                self.out.size
            ));
        } else {
            ctx.close();
        }
    }

    fn on_close(&mut self, reason: CloseReason, _worker: &mut LoadTotals) {
        if matches!(reason, CloseReason::OutputLimit | CloseReason::InputLimit) {
            fail_connection(&self.info, reason.name());
        }
    }

    fn on_worker_stop(worker: &mut LoadTotals) {
        worker.report();
    }
}
{%- endif %}
