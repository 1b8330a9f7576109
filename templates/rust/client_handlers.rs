
/// Byte `at` of message `message` on connection `id`: splitmix64 over (id, message, at / 8),
/// so sender and checker agree without sharing state (the C output draws the same bytes).
fn payload_byte(id: u64, message: u32, at: usize) -> u8 {
    let mut z = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (u64::from(message) << 40) ^ (at as u64 / 8);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> (8 * (at % 8))) as u8
}

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
                    "message {} ({} bytes), byte {}: sent {want:#04x}, got back {got:#04x}",
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

/// Writes a summary line on stdout; a stdout nobody reads must not stop the client.
fn print_summary(line: std::fmt::Arguments<'_>) {
    let mut stdout = io::stdout();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}
{%- if v.handler == "echo-check" %}

/// What the pool's connections found, for the summary (counts only connections that finished).
#[derive(Debug)]
pub struct EchoCheckTotals {
    start: Instant,
    pub messages_checked: u64,
    pub bytes_checked: u64,
    /// Connections that checked every message.
    pub connections_done: usize,
    /// Connections that ended early (reset and retried, failed, stopped).
    pub connections_cut: usize,
    /// Messages those had checked before they ended.
    pub messages_cut: u64,
}

impl Default for EchoCheckTotals {
    fn default() -> Self {
        EchoCheckTotals {
            start: Instant::now(),
            messages_checked: 0,
            bytes_checked: 0,
            connections_done: 0,
            connections_cut: 0,
            messages_cut: 0,
        }
    }
}

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
        let o = options();
        let mut line = format!(
            "echo-check: {} of {} connections, {} of {} messages, {} bytes echoed byte-exact in {} ms",
            worker.connections_done,
            o.connections,
            worker.messages_checked,
            o.connections as u64 * u64::from(o.messages),
            worker.bytes_checked,
            worker.start.elapsed().as_millis()
        );
        if worker.connections_cut > 0 {
            line += &format!(
                "; connections that ended early: {}, with {} messages checked",
                worker.connections_cut, worker.messages_cut
            );
        }
        print_summary(format_args!("{line}"));
        // Also when a stop came while a connection was backing off: it never checked its messages.
        if worker.connections_done < o.connections {
            fail_run(format_args!(
                "echo-check failed: {} of {} connections did not check every message",
                o.connections - worker.connections_done,
                o.connections
            ));
        }
    }
}
{%- else %}

/// Latency buckets per power of two: about 3% resolution.
const SUB_BUCKETS: usize = 32;

/// Round trips of the whole pool, for the summary.
#[derive(Debug)]
pub struct LoadTotals {
    start: Instant,
    pub messages: u64,
    pub bytes: u64,
    pub latency_max_ns: u64,
    /// Round trips by log-linear bucket of nanoseconds.
    histogram: Vec<u64>,
}

impl Default for LoadTotals {
    fn default() -> Self {
        LoadTotals { start: Instant::now(), messages: 0, bytes: 0, latency_max_ns: 0, histogram: vec![0; 64 * SUB_BUCKETS] }
    }
}

impl LoadTotals {
    /// Bucket of a value: its power of two, then the five bits below the top one.
    fn bucket(ns: u64) -> usize {
        if ns < SUB_BUCKETS as u64 {
            return ns as usize;
        }
        let top = 63 - ns.leading_zeros() as usize;
        (top - 4) * SUB_BUCKETS + ((ns >> (top - 5)) as usize & (SUB_BUCKETS - 1))
    }

    /// The largest value bucket `b` holds: percentiles are reported as upper bounds.
    fn bucket_top(b: usize) -> u64 {
        let (group, sub) = (b / SUB_BUCKETS, b % SUB_BUCKETS);
        if group == 0 {
            return sub as u64;
        }
        (((SUB_BUCKETS + sub + 1) as u64) << (group - 1)) - 1
    }

    fn record(&mut self, ns: u64, bytes: usize) {
        self.histogram[LoadTotals::bucket(ns)] += 1;
        self.latency_max_ns = self.latency_max_ns.max(ns);
        self.messages += 1;
        self.bytes += bytes as u64;
    }

    /// The round-trip time `fraction` of the messages stayed within, in microseconds.
    pub fn percentile_us(&self, fraction: f64) -> f64 {
        let want = (fraction * self.messages as f64).ceil() as u64;
        let mut seen = 0;
        for (b, count) in self.histogram.iter().enumerate() {
            seen += count;
            if seen >= want && seen > 0 {
                return LoadTotals::bucket_top(b).min(self.latency_max_ns) as f64 / 1000.0;
            }
        }
        self.latency_max_ns as f64 / 1000.0
    }
}

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
        let seconds = worker.start.elapsed().as_secs_f64();
        let per_second = |n: u64| if seconds > 0.0 { n as f64 / seconds } else { 0.0 };
        print_summary(format_args!(
            "load: {} connections, {}-byte messages, {} round trips in {seconds:.2} s: {:.0} msgs/s, {:.1} MB/s; latency p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, max {:.0} us",
            options().connections,
            SIZES[0],
            worker.messages,
            per_second(worker.messages),
            per_second(worker.bytes) / 1e6,
            worker.percentile_us(0.50),
            worker.percentile_us(0.90),
            worker.percentile_us(0.99),
            worker.latency_max_ns as f64 / 1000.0
        ));
    }
}
{%- endif %}
