{% include "rust/client_totals.rs" %}

/// Sends datagram `message` of `size` random bytes.
fn send_datagram<W>(ctx: &mut Ctx<'_, W>, message: u32, size: usize) {
    let id = ctx.info().id;
    let datagram: Vec<u8> = (0..size).map(|at| payload_byte(id, message, at)).collect();
    let _ = ctx.write(&datagram);
}

/// Whether a datagram is exactly datagram `message` of `size` bytes; fails the socket if not.
fn check_datagram<W>(ctx: &mut Ctx<'_, W>, message: u32, size: usize, data: &[u8]) -> bool {
    if data.len() != size {
        ctx.fail(format_args!("datagram {}: sent {size} bytes, got back {}", message + 1, data.len()));
        return false;
    }
    let id = ctx.info().id;
    for (at, &got) in data.iter().enumerate() {
        let want = payload_byte(id, message, at);
        if got != want {
            ctx.fail(format_args!("datagram {} (size {size}), byte {at}: sent {want:#04x}, got back {got:#04x}", message + 1));
            return false;
        }
    }
    true
}
{%- if v.handler == Handler::EchoCheck %}

/// echo-check over UDP: each socket sends `Options::messages` datagrams of random bytes
/// (sizes from `SIZES` in turn), one at a time, and checks that each comes back whole and
/// unaltered before sending the next. A lost datagram shows as the idle timeout: the socket
/// starts over. One summary line on stdout.
#[derive(Debug)]
pub struct EchoCheck {
    /// The datagram in flight, from 0.
    message: u32,
    bytes_checked: u64,
    complete: bool,
    info: ConnInfo,
}

impl EchoCheck {
    fn size_of(message: u32) -> usize {
        SIZES[message as usize % SIZES.len()]
    }
}

impl Handler for EchoCheck {
    type Worker = EchoCheckTotals;

    fn open(ctx: &mut Ctx<'_, EchoCheckTotals>) -> EchoCheck {
        send_datagram(ctx, 0, EchoCheck::size_of(0));
        EchoCheck { message: 0, bytes_checked: 0, complete: false, info: *ctx.info() }
    }

    fn on_message(&mut self, msg: &[u8], ctx: &mut Ctx<'_, EchoCheckTotals>) {
        if self.complete || !check_datagram(ctx, self.message, EchoCheck::size_of(self.message), msg) {
            return;
        }
        self.bytes_checked += msg.len() as u64;
        self.message += 1;
        if self.message == ctx.options().messages {
            self.complete = true;
            ctx.worker.connections_done += 1;
            ctx.worker.messages_checked += u64::from(self.message);
            ctx.worker.bytes_checked += self.bytes_checked;
            ctx.close();
            return;
        }
        send_datagram(ctx, self.message, EchoCheck::size_of(self.message));
    }

    fn on_close(&mut self, reason: CloseReason, worker: &mut EchoCheckTotals) {
        if self.complete {
            return;
        }
        worker.connections_cut += 1;
        worker.messages_cut += u64::from(self.message);
        // Refusals, errors and idle timeouts are retried by the runtime; a stop ends the run.
        if reason == CloseReason::Stopping {
            fail_connection(&self.info, format_args!("stopping during datagram {} of {}", self.message + 1, options().messages));
        }
    }

    fn on_worker_stop(worker: &mut EchoCheckTotals) {
        worker.report();
    }
}
{%- else %}

/// load over UDP: closed loop. Each socket sends a datagram of `SIZES[0]` random bytes, waits
/// for it to come back (checked), and sends the next, until `Options::duration` has passed.
/// Then one line: round trips per second and latency percentiles. A lost datagram shows as
/// the idle timeout: the socket starts over.
#[derive(Debug)]
pub struct Load {
    message: u32,
    /// When the datagram in flight was sent.
    sent_at: Instant,
}

impl Load {
    /// Sends the next datagram, or closes once the run's time is up.
    fn next(&mut self, ctx: &mut Ctx<'_, LoadTotals>) {
        if ctx.worker.start.elapsed() >= ctx.options().duration {
            ctx.close();
            return;
        }
        self.sent_at = Instant::now();
        send_datagram(ctx, self.message, SIZES[0]);
    }
}

impl Handler for Load {
    type Worker = LoadTotals;

    fn open(ctx: &mut Ctx<'_, LoadTotals>) -> Load {
        let mut load = Load { message: 0, sent_at: Instant::now() };
        load.next(ctx);
        load
    }

    fn on_message(&mut self, msg: &[u8], ctx: &mut Ctx<'_, LoadTotals>) {
        let ns = u64::try_from(self.sent_at.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if !check_datagram(ctx, self.message, SIZES[0], msg) {
            return;
        }
        ctx.worker.record(ns, msg.len());
        self.message += 1;
        self.next(ctx);
    }

    fn on_worker_stop(worker: &mut LoadTotals) {
        worker.report();
    }
}
{%- endif %}
