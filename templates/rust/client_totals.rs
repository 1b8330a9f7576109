
/// Byte `at` of message `message` on connection `id`: splitmix64 over (id, message, at / 8),
/// so sender and checker agree without sharing state (the C output draws the same bytes).
fn payload_byte(id: u64, message: u32, at: usize) -> u8 {
    let mut z = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (u64::from(message) << 40) ^ (at as u64 / 8);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> (8 * (at % 8))) as u8
}

/// Writes a summary line on stdout; a stdout nobody reads must not stop the client.
fn print_summary(line: std::fmt::Arguments<'_>) {
    let mut stdout = io::stdout();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}
{%- if v.handler == Handler::EchoCheck %}

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

impl EchoCheckTotals {
    /// The summary line on stdout; the run fails unless every connection checked every message.
    pub fn report(&self) {
        let o = options();
        let mut line = format!(
            "echo-check: {} of {} connections, {} of {} messages, {} bytes echoed byte-exact in {} ms",
            self.connections_done,
            o.connections,
            self.messages_checked,
            o.connections as u64 * u64::from(o.messages),
            self.bytes_checked,
            self.start.elapsed().as_millis()
        );
        if self.connections_cut > 0 {
            line += &format!(
                "; connection attempts that ended early: {}, with {} messages checked",
                self.connections_cut, self.messages_cut
            );
        }
        print_summary(format_args!("{line}"));
        // Also when a stop came while a connection was backing off: it never checked its messages.
        if self.connections_done < o.connections {
            fail_run(format_args!(
                "echo-check failed: {} of {} connections did not check every message",
                o.connections - self.connections_done,
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

    /// The summary line on stdout.
    pub fn report(&self) {
        let seconds = self.start.elapsed().as_secs_f64();
        let per_second = |n: u64| if seconds > 0.0 { n as f64 / seconds } else { 0.0 };
        print_summary(format_args!(
            "load: {} connections, {}-byte messages, {} round trips in {seconds:.2} s: {:.0} msgs/s, {:.1} MB/s; latency p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, max {:.0} us",
            options().connections,
            SIZES[0],
            self.messages,
            per_second(self.messages),
            per_second(self.bytes) / 1e6,
            self.percentile_us(0.50),
            self.percentile_us(0.90),
            self.percentile_us(0.99),
            self.latency_max_ns as f64 / 1000.0
        ));
    }
}
{%- endif %}
