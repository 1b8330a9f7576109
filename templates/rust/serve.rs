
/// Binds every worker's socket (the first gets the port, the others share it through
/// SO_REUSEPORT), starts the workers, prints `listening on ADDRESS:PORT` once all of them run,
/// and serves until SIGINT or SIGTERM.
pub fn serve<H: Handler>(config: &Options) -> io::Result<()> {
    // What `options()` tells the handler; the first options a process serves with stay.
    let _ = OPTIONS.set({% if v.options_copy %}*config{% else %}config.clone(){% endif %});
    open_standard_descriptors()?;
    let stop = install_stop_signal()?;
{%- if v.tcp %}
    raise_descriptor_limit();
{%- endif %}
    let mut addr = SocketAddr::new(config.address, config.port);
    let mut sockets = Vec::with_capacity(WORKERS);
    for _ in 0..WORKERS {
        let socket = {{ v.socket_type }}::from(open_socket(addr, {{ v.listener_nonblocking }})?);
        addr = socket.local_addr()?;
        sockets.push(socket);
    }
    let stop_fd = stop.as_raw_fd();
    let startup = Startup::new(addr);
    let results: Vec<io::Result<()>> = std::thread::scope(|scope| {
        let startup = &startup;
        let mut sockets = sockets.into_iter();
        let first = sockets.next();
        let mut workers = Vec::new();
        let mut results = Vec::new();
        for (i, socket) in sockets.enumerate() {
            let spawned = std::thread::Builder::new()
                .name(format!("worker {}", i + 1))
                .spawn_scoped(scope, move || run_worker::<H>(socket, stop_fd, i + 1, startup));
            match spawned {
                Ok(worker) => workers.push(worker),
                Err(e) => {
                    // Not every worker runs: the missing ones check in as failed, so no ready line.
                    for index in i + 1..WORKERS {
                        startup.leave(index);
                    }
                    results.push(Err(io::Error::new(e.kind(), format!("cannot start worker {}: {e}", i + 1))));
                    break;
                }
            }
        }
        results.extend(first.map(|s| run_worker::<H>(s, stop_fd, 0, startup)));
        for worker in workers {
            results.push(worker.join().unwrap_or_else(|_| Err(io::Error::other("a worker panicked"))));
        }
        results
    });
    results.into_iter().collect()
}

/// Start-up: every worker sets up its loop (descriptors, memory) and then waits for the others,
/// so nobody accepts while a worker is still starting (a flood could otherwise take the
/// descriptors it needs). The ready line is printed once all are set up, never when one failed.
struct Startup {
    /// Which workers have checked in, and whether one failed.
    state: std::sync::Mutex<(Vec<bool>, bool)>,
    all_in: std::sync::Condvar,
    addr: SocketAddr,
}

impl Startup {
    fn new(addr: SocketAddr) -> Startup {
        Startup { state: std::sync::Mutex::new((vec![false; WORKERS], false)), all_in: std::sync::Condvar::new(), addr }
    }

    /// Checks worker `index` in and waits for the rest; true when every one is set up.
    fn ready(&self, index: usize, ok: bool) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.arrive(&mut state, index, ok);
        while state.0.contains(&false) {
            state = self.all_in.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        !state.1
    }

    /// A worker that ended without checking in (its setup failed, or it never started) checks
    /// in as failed, so the others do not wait for it.
    fn leave(&self, index: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !state.0[index] {
            self.arrive(&mut state, index, false);
        }
    }

    fn arrive(&self, state: &mut (Vec<bool>, bool), index: usize, ok: bool) {
        state.0[index] = true;
        state.1 |= !ok;
        if !state.0.contains(&false) {
            if !state.1 {
                // The ready line scripts wait for. A stdout nobody reads (closed, or a pipe
                // whose reader left) must not stop the server: it keeps serving.
                let mut stdout = io::stdout();
                let _ = writeln!(stdout, "listening on {}", self.addr).and_then(|()| stdout.flush());
            }
            self.all_in.notify_all();
        }
    }
}

/// One worker's loop; a failure stops the whole server rather than leaving it half up.
fn run_worker<H: Handler>(socket: {{ v.socket_type }}, stop: RawFd, index: usize, startup: &Startup) -> io::Result<()> {
    let result = run_loop::<H>(socket, stop, index, startup);
    startup.leave(index);
    if result.is_err() {
        request_stop();
    }
    result
}

/// A complete `main`: parses the command line (`-h` lists it), serves, and maps the outcome to an exit
/// status (0 after SIGINT/SIGTERM, 1 on errors, 2 on bad arguments).
pub fn main_with<H: Handler>() -> std::process::ExitCode {
    let config = match utf8_args().and_then(Options::from_args) {
        Ok(config) => config,
        Err(message) if message.starts_with("usage") => {
            let _ = writeln!(io::stdout(), "{message}");
            return std::process::ExitCode::SUCCESS;
        }
        Err(message) => {
            log_line!("{PROGRAM}: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    match serve::<H>(&config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            log_line!("{PROGRAM}: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
