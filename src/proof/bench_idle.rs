//! The idle-connections case of `sockgen bench`: what a server keeps for each connection that
//! is open and quiet, the state of a keep-alive server with many clients. Every connection
//! echoes one 64-byte message (so the server has been through its read and write paths for
//! it, as a real client's first request would take it) and then stays open, silent; the
//! server's resident memory is read before and after, and the difference divided by the
//! number of connections.
//!
//! The load generator's connections come from many loopback source addresses (see
//! [`connect_spread`]), so a run of thousands of connections after another never waits for
//! ports left in TIME_WAIT.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

use super::bench::{cpu_plan, BenchConfig, Contender, Server};
use super::harness::{kib_field, pin_current_thread, process_status_kib};

/// Connections warmed up (opened, echoed, closed) before the first reading, so memory a server
/// makes once (its first chunk cache, a worker's lazily made buffers) is not counted per
/// connection.
const WARMUP_CONNECTIONS: usize = 64;
/// The message each connection echoes once.
const MESSAGE: usize = 64;
/// Loopback source addresses the load generator's connections are spread over: 127.0.0.1
/// to 127.0.0.64. One address's ephemeral ports (about 28,000) would run out after a couple
/// of 19,000-connection runs while the last run's ports sit in TIME_WAIT.
const SOURCE_ADDRESSES: u32 = 64;

/// What one server keeps for idle connections.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IdleResult {
    pub server: String,
    pub connections: usize,
    /// The server's resident memory (VmRSS, every thread) gained per connection.
    pub rss_bytes_per_conn: f64,
    /// The kernel's slab memory gained per connection (/proc/meminfo `Slab`), both ends'
    /// sockets together: machine-wide, so other activity shows in it. None where unreadable.
    pub kernel_bytes_per_conn: Option<f64>,
    /// Mean time to connect and have the first message echoed, one connection after another.
    pub setup_us_per_conn: f64,
}

/// A connection to `addr` from the `index`-th source address (for an IPv4 loopback target;
/// any other target is connected to from where the system chooses). The source port is
/// chosen at connect time (IP_BIND_ADDRESS_NO_PORT), so each source address has the whole
/// ephemeral range for each destination.
pub fn connect_spread(
    addr: SocketAddr,
    index: usize,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let source = match addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => {
            Ipv4Addr::from(u32::from(Ipv4Addr::LOCALHOST) + index as u32 % SOURCE_ADDRESSES)
        }
        _ => return TcpStream::connect_timeout(&addr, timeout),
    };
    // SAFETY: socket(2) with constant arguments; the descriptor is owned by the TcpStream
    // made from it below, which closes it on every path.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2) and nothing else owns it.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: the option value is a live c_int and its exact size is passed. Failing only
    // means the port is chosen at bind, from a smaller space: not an error.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    // connect(2) honours the send timeout, which makes the connect below bounded.
    stream.set_write_timeout(Some(timeout))?;
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let local = sockaddr(source, 0);
    // SAFETY: bind gets a live, initialised sockaddr_in and its exact size.
    if unsafe { libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let IpAddr::V4(target) = addr.ip() else {
        unreachable!("only IPv4 targets get here")
    };
    let remote = sockaddr(target, addr.port());
    loop {
        // SAFETY: connect gets a live, initialised sockaddr_in and its exact size.
        if unsafe { libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len) } == 0 {
            break;
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EINPROGRESS | libc::EAGAIN) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connect timed out after {} ms", timeout.as_millis()),
                ))
            }
            _ => return Err(error),
        }
    }
    stream.set_write_timeout(None)?;
    Ok(stream)
}

/// Raises this process's descriptor limit to its hard limit and returns it: the connections
/// a run may hold, less a few for everything else.
pub fn raise_descriptor_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a live rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads a live, initialised rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_cur;
        }
    }
    limit.rlim_cur
}

/// Resident memory of a process in bytes (VmRSS: every thread shares it).
pub fn resident_bytes(pid: u32) -> Option<u64> {
    process_status_kib(pid, "VmRSS:").map(|kib| kib * 1024)
}

/// The kernel's slab memory in bytes.
fn kernel_slab_bytes() -> Option<u64> {
    kib_field(&std::fs::read_to_string("/proc/meminfo").ok()?, "Slab:").map(|kib| kib * 1024)
}

/// Connects, has one message echoed and checked; the connection stays open.
fn open_and_echo(addr: SocketAddr, index: usize) -> Result<TcpStream, String> {
    let mut stream = connect_spread(addr, index, Duration::from_secs(5))
        .map_err(|e| format!("connect #{index} to {addr}: {e}"))?;
    let message: Vec<u8> = (0..MESSAGE).map(|i| (index + i) as u8).collect();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&message)
        .map_err(|e| format!("write on connection #{index}: {e}"))?;
    let mut echoed = vec![0u8; MESSAGE];
    stream.read_exact(&mut echoed).map_err(|e| {
        format!("connection #{index}: no echo ({e}); does the server take this many connections (server.max_connections, its descriptor limit)?")
    })?;
    if echoed != message {
        return Err(format!(
            "connection #{index}: the echo differs from the message"
        ));
    }
    Ok(stream)
}

/// One server, fresh: warm-up, a reading, `connections` idle connections, a second reading.
pub fn run_idle(target: &Contender, connections: usize) -> Result<IdleResult, String> {
    let (server_cpu, client_cpu) = cpu_plan();
    let server = Server::start(target, server_cpu, false)?;
    let label = server.label.clone();
    let addr = server.addr;
    let pid = server.pid();
    let measured = std::thread::scope(|s| {
        s.spawn(|| -> Result<IdleResult, String> {
            if let Some(cpu) = client_cpu {
                let _ = pin_current_thread(cpu);
            }
            for i in 0..WARMUP_CONNECTIONS {
                drop(open_and_echo(addr, i)?);
            }
            // The server closes the warm-up connections when it reads their FIN.
            std::thread::sleep(Duration::from_millis(200));
            let before = resident_bytes(pid).ok_or("cannot read the server's memory")?;
            let slab_before = kernel_slab_bytes();
            let started = Instant::now();
            let mut open = Vec::with_capacity(connections);
            for i in 0..connections {
                open.push(open_and_echo(addr, i)?);
            }
            let setup = started.elapsed();
            // Whatever the server does after the echo (freeing a chunk, re-arming a receive)
            // is done well within this.
            std::thread::sleep(Duration::from_millis(300));
            let after = resident_bytes(pid).ok_or("cannot read the server's memory")?;
            let slab_after = kernel_slab_bytes();
            drop(open);
            let per = |a: u64, b: u64| (a as f64 - b as f64) / connections as f64;
            Ok(IdleResult {
                server: String::new(),
                connections,
                rss_bytes_per_conn: per(after, before),
                kernel_bytes_per_conn: slab_before.zip(slab_after).map(|(b, a)| per(a, b)),
                setup_us_per_conn: setup.as_secs_f64() * 1e6 / connections as f64,
            })
        })
        .join()
        .unwrap_or_else(|_| Err("load generator panicked".into()))
    });
    server.stop();
    let mut result = measured.map_err(|e| format!("{label} idle {connections}: {e}"))?;
    result.server = label;
    Ok(result)
}

/// Every count against every server, `config.repeats` times, servers interleaved; the
/// median run by memory per connection.
pub fn bench_idle(
    targets: &[Contender],
    counts: &[usize],
    config: &BenchConfig,
) -> Result<Vec<IdleResult>, String> {
    let mut results = Vec::new();
    let total = counts.len() * targets.len() * config.repeats.max(1);
    let mut done = 0;
    for &count in counts {
        let mut runs: Vec<Vec<IdleResult>> = targets.iter().map(|_| Vec::new()).collect();
        for _ in 0..config.repeats.max(1) {
            for (i, target) in targets.iter().enumerate() {
                let run = run_idle(target, count)?;
                done += 1;
                let what = format!(
                    "{} {count} idle connections: {:.0} B each",
                    run.server, run.rss_bytes_per_conn
                );
                config.progress.report(done, total, &what);
                runs[i].push(run);
            }
        }
        for mut server_runs in runs {
            server_runs.sort_by(|a, b| a.rss_bytes_per_conn.total_cmp(&b.rss_bytes_per_conn));
            results.push(server_runs.swap_remove(server_runs.len() / 2));
        }
    }
    Ok(results)
}

/// The idle case's table; memory ratios against `baseline` (a server label) when given.
pub fn table(results: &[IdleResult], baseline: Option<&str>) -> String {
    let mut out = String::from(
        "idle connections (each echoed 64 B once, then quiet): what the server keeps for each\n",
    );
    out.push_str(&format!(
        "{:<16} {:>6} {:>12} {:>17} {:>13}",
        "server", "conns", "RSS B/conn", "kernel B/conn*", "setup us/conn"
    ));
    if let Some(b) = baseline {
        out.push_str(&format!(" {:>13}", format!("RSS÷{b}")));
    }
    out.push('\n');
    for r in results {
        out.push_str(&format!(
            "{:<16} {:>6} {:>12.0} {:>17} {:>13.1}",
            r.server,
            r.connections,
            r.rss_bytes_per_conn,
            r.kernel_bytes_per_conn
                .map_or("-".to_string(), |v| format!("{v:.0}")),
            r.setup_us_per_conn,
        ));
        if let Some(b) = baseline {
            let base = results
                .iter()
                .find(|x| x.server == b && x.connections == r.connections)
                .map(|x| x.rss_bytes_per_conn);
            out.push_str(&format!(
                " {:>13}",
                match base {
                    Some(base) if base > 0.0 => format!("{:.2}", r.rss_bytes_per_conn / base),
                    _ => "-".to_string(),
                }
            ));
        }
        out.push('\n');
    }
    out.push_str(
        "* the machine's slab memory: both ends' sockets, and whatever else ran meanwhile\n",
    );
    out
}
