//! Starting a generated server, learning its port from the ready line, and stopping it.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A server process under test. Dropping it kills the process, so no test leaves one behind.
pub struct RunningServer {
    child: Option<Child>,
    pub addr: SocketAddr,
    stderr: Option<thread::JoinHandle<String>>,
    stop_signal: StopSignal,
}

/// How a program is asked to stop: SIGTERM for Linux programs; SIGINT for Windows programs
/// under Wine, which delivers it as the console's Ctrl-C (SIGTERM would kill them outright).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Term,
    CtrlC,
}

impl StopSignal {
    /// What stops the program at `binary`.
    pub fn for_program(binary: &Path) -> StopSignal {
        if is_windows_program(binary) {
            StopSignal::CtrlC
        } else {
            StopSignal::Term
        }
    }

    pub fn number(self) -> libc::c_int {
        match self {
            StopSignal::Term => libc::SIGTERM,
            StopSignal::CtrlC => libc::SIGINT,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Term => "SIGTERM",
            StopSignal::CtrlC => "Ctrl-C",
        }
    }
}

/// When the harness presses Ctrl-C again for a Windows program that has not stopped.
const WINE_CTRL_C_REPEAT: Duration = Duration::from_secs(3);

/// The least time a Windows program gets to stop: the repeated Ctrl-C needs time of its own
/// on a busy machine, where Wine's thread start for it can take seconds.
const WINE_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How a start that printed nothing in its time is reported (and recognised for a retry).
const NO_READY_LINE: &str = "no ready line";

/// The least time a Windows program gets to print its ready line under Wine.
const WINE_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A Windows program (the harness runs it under Wine).
pub fn is_windows_program(binary: &Path) -> bool {
    binary
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("exe"))
}

/// The command that runs `binary`: itself, or `wine binary` for a Windows program.
pub fn program_command(binary: &Path) -> Result<Command, String> {
    if is_windows_program(binary) {
        Ok(super::toolchain::Wine::find()?.command(binary))
    } else {
        Ok(Command::new(binary))
    }
}

#[derive(Debug)]
pub struct StopOutcome {
    pub status: Option<ExitStatus>,
    pub elapsed: Duration,
    pub stderr: String,
    pub signal: StopSignal,
    /// The signal had to be sent twice (a Windows program under Wine: see `stop`).
    pub repeated: bool,
}

impl StopOutcome {
    /// Ok when the server exited by itself with status 0.
    pub fn check(&self) -> Result<String, String> {
        match self.status {
            Some(s) if s.success() => Ok(format!(
                "exit 0 after {} ms{}",
                self.elapsed.as_millis(),
                if self.repeated {
                    format!(
                        " (after a second {}: Wine lost the first)",
                        self.signal.name()
                    )
                } else {
                    String::new()
                }
            )),
            Some(s) => Err(format!("exited with {s}; stderr: {}", self.stderr.trim())),
            None => Err(format!(
                "still running {} ms after {} (killed); stderr: {}",
                self.elapsed.as_millis(),
                self.signal.name(),
                self.stderr.trim()
            )),
        }
    }
}

/// How to start a process under test.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Lower RLIMIT_NOFILE to this (to provoke EMFILE).
    pub max_fds: Option<u64>,
    /// Pin the process to this CPU, away from the load generator.
    pub cpu: Option<usize>,
    /// Lower RLIMIT_AS to this many bytes (to provoke failed allocations and thread starts).
    pub max_address_space: Option<u64>,
    /// Environment variables set for the program (SOCKGEN_IO_URING_SETUP, to run a ring
    /// setup this kernel would not choose).
    pub env: Vec<(String, String)>,
}

impl Launch {
    pub fn apply(&self, command: &mut Command) {
        use std::os::unix::process::CommandExt;
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let max_fds = self.max_fds;
        let cpu = self.cpu;
        let max_address_space = self.max_address_space;
        if max_fds.is_none() && cpu.is_none() && max_address_space.is_none() {
            return;
        }
        // SAFETY: the closure runs in the forked child before exec and only calls
        // async-signal-safe functions (setrlimit, sched_setaffinity) on its own stack data.
        unsafe {
            command.pre_exec(move || {
                if let Some(limit) = max_fds {
                    let rlimit = libc::rlimit {
                        rlim_cur: limit as libc::rlim_t,
                        rlim_max: limit as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(bytes) = max_address_space {
                    let rlimit = libc::rlimit {
                        rlim_cur: bytes as libc::rlim_t,
                        rlim_max: bytes as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_AS, &rlimit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(cpu) = cpu {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    libc::CPU_SET(cpu, &mut set);
                    if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
}

/// Pins the calling thread to one CPU (the load generator's).
pub fn pin_current_thread(cpu: usize) -> Result<(), String> {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity(0) affects only the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
    }
    Ok(())
}

/// A `Name:   123 kB` field of a /proc file's text (`/proc/PID/status`, `/proc/meminfo`), in
/// KiB.
pub fn kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A field of `/proc/PID/status` in KiB (`VmRSS:` is resident memory, every thread's).
pub fn process_status_kib(pid: u32, field: &str) -> Option<u64> {
    kib_field(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        field,
    )
}

/// CPU time a process has used, every thread included: the sum of each task's on-CPU
/// nanoseconds from /proc/PID/task/*/schedstat (finer than the 10 ms ticks of
/// /proc/PID/stat, which is the fallback). Threads that already exited are not counted,
/// which is fine for servers whose threads live as long as they do.
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        let mut total = 0u64;
        let mut seen = false;
        for task in tasks.flatten() {
            let text = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            if let Some(ns) = text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
            {
                total += ns;
                seen = true;
            }
        }
        if seen {
            return Some(Duration::from_nanos(total));
        }
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// Parses `listening on 127.0.0.1:PORT` or `listening on [::1]:PORT`.
pub fn parse_ready_line(line: &str) -> Option<SocketAddr> {
    line.trim().strip_prefix("listening on ")?.parse().ok()
}

impl RunningServer {
    pub fn start(
        binary: &Path,
        args: &[&str],
        ready_timeout: Duration,
    ) -> Result<RunningServer, String> {
        Self::launch(binary, args, ready_timeout, &Launch::default())
    }

    /// Like [`start`](Self::start), optionally with RLIMIT_NOFILE lowered to provoke EMFILE.
    pub fn start_with_fd_limit(
        binary: &Path,
        args: &[&str],
        ready_timeout: Duration,
        max_fds: Option<u64>,
    ) -> Result<RunningServer, String> {
        let launch = Launch {
            max_fds,
            ..Launch::default()
        };
        Self::launch(binary, args, ready_timeout, &launch)
    }

    /// Starts the program and waits for its ready line. A Windows program that shows nothing
    /// at all in its time is started once more: a full test run saw Wine stall one start for
    /// 30 s under load (the same program started at once in every other run). A program that
    /// never gets ready still fails, the second time.
    pub fn launch(
        binary: &Path,
        args: &[&str],
        ready_timeout: Duration,
        launch: &Launch,
    ) -> Result<RunningServer, String> {
        match Self::launch_once(binary, args, ready_timeout, launch) {
            Err(first) if is_windows_program(binary) && first.starts_with(NO_READY_LINE) => {
                eprintln!(
                    "note: {} under Wine: {first}; starting it once more",
                    binary.display()
                );
                Self::launch_once(binary, args, ready_timeout, launch)
                    .map_err(|second| format!("{second} (and before that: {first})"))
            }
            result => result,
        }
    }

    fn launch_once(
        binary: &Path,
        args: &[&str],
        ready_timeout: Duration,
        launch: &Launch,
    ) -> Result<RunningServer, String> {
        let mut command = program_command(binary)?;
        // A Windows program starts Wine first, which takes seconds on a busy machine.
        let ready_timeout = if is_windows_program(binary) {
            ready_timeout.max(WINE_READY_TIMEOUT)
        } else {
            ready_timeout
        };
        launch.apply(&mut command);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn_past_text_busy(&mut command)
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut stderr_pipe = child.stderr.take().ok_or("no stderr")?;
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            text
        });
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on a full stdout pipe.
            for _ in lines {}
        });
        let mut server = RunningServer {
            child: Some(child),
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            stderr: Some(stderr),
            stop_signal: StopSignal::for_program(binary),
        };
        match rx.recv_timeout(ready_timeout) {
            Ok(line) => match parse_ready_line(&line) {
                Some(addr) => {
                    server.addr = addr;
                    Ok(server)
                }
                None => Err(format!("unexpected first line from server: {line:?}")),
            },
            Err(_) => {
                let outcome = server.kill();
                Err(format!(
                    "{NO_READY_LINE} within {} ms; stderr: {}",
                    ready_timeout.as_millis(),
                    outcome.stderr.trim()
                ))
            }
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// CPU time (user + system) the server has used so far, all threads included.
    pub fn cpu_time(&self) -> Option<Duration> {
        process_cpu_time(self.pid()?)
    }

    /// CPU time the server spends over the next `window` (it sleeps that long): how a test
    /// tells an idle or paused server from one that spins.
    pub fn cpu_spent_over(&self, window: Duration) -> Option<Duration> {
        let before = self.cpu_time()?;
        std::thread::sleep(window);
        Some(self.cpu_time()?.saturating_sub(before))
    }

    /// Descriptors the server holds now (/proc/PID/fd).
    pub fn open_descriptors(&self) -> usize {
        self.proc_entries("fd")
    }

    /// What the server's descriptors are, counted by kind (`socket`, `pipe`, `anon_inode`) or
    /// file name: "/dev/null 2, pipe 4, socket 3", for messages about descriptors left open.
    pub fn descriptor_kinds(&self) -> String {
        let Some(pid) = self.pid() else {
            return String::new();
        };
        let mut kinds = std::collections::BTreeMap::<String, usize>::new();
        if let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for entry in entries.flatten() {
                let target = std::fs::read_link(entry.path())
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // Sockets and pipes by kind; files by name, since which file says why.
                let kind = match target.split_once(':') {
                    Some((kind, _)) if !target.starts_with('/') => kind.to_string(),
                    _ => target,
                };
                *kinds.entry(kind).or_default() += 1;
            }
        }
        kinds
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The fewest descriptors the server held in five looks 20 ms apart: one it keeps shows in
    /// every look, one opened for a moment (Wine's runtime does that while idle) does not.
    pub fn settled_descriptors(&self) -> usize {
        let mut fewest = self.open_descriptors();
        for _ in 0..4 {
            thread::sleep(Duration::from_millis(20));
            fewest = fewest.min(self.open_descriptors());
        }
        fewest
    }

    /// Threads the server runs now (/proc/PID/task).
    /// The program's own threads. io_uring's kernel workers (`iou-wrk-*`, `iou-sqp-*`) show up
    /// in /proc/PID/task too, but the kernel starts and keeps them as it sees fit (one io-wq
    /// worker stays for good once used), so they are not the program's to account for.
    pub fn threads(&self) -> usize {
        self.thread_ids().len()
    }

    /// The ids of the threads [`threads`](Self::threads) counts: a changing set means the
    /// program is still starting and ending threads.
    pub fn thread_ids(&self) -> std::collections::BTreeSet<u32> {
        let Some(pid) = self.pid() else {
            return Default::default();
        };
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return Default::default();
        };
        tasks
            .flatten()
            .filter(|task| {
                let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                !comm.starts_with("iou-wrk-") && !comm.starts_with("iou-sqp-")
            })
            .filter_map(|task| task.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// Each counted thread as `TID COMM (STATE, waiting in WCHAN)`, for a message that has to
    /// say which thread outlived a fault: one of the program's, or one its runtime started.
    pub fn thread_details(&self) -> String {
        let Some(pid) = self.pid() else {
            return String::new();
        };
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return String::new();
        };
        let read = |task: &Path, file: &str| {
            std::fs::read_to_string(task.join(file))
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let mut details: Vec<String> = tasks
            .flatten()
            .map(|task| task.path())
            .filter(|task| {
                let comm = read(task, "comm");
                !comm.starts_with("iou-wrk-") && !comm.starts_with("iou-sqp-")
            })
            .map(|task| {
                let tid = task
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                // `stat` is "TID (COMM) STATE ...": the state follows the last ')'.
                let stat = read(&task, "stat");
                let state = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    .unwrap_or("?")
                    .to_string();
                format!(
                    "{tid} {} ({state}, waiting in {})",
                    read(&task, "comm"),
                    read(&task, "wchan")
                )
            })
            .collect();
        details.sort();
        details.join("; ")
    }

    fn proc_entries(&self, dir: &str) -> usize {
        self.pid()
            .and_then(|pid| std::fs::read_dir(format!("/proc/{pid}/{dir}")).ok())
            .map_or(0, |d| d.count())
    }

    /// Resident memory in KiB (VmRSS of /proc/PID/status); 0 when it cannot be read.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The most resident memory the process ever had, in KiB (VmHWM); 0 when unreadable.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        self.pid()
            .and_then(|pid| process_status_kib(pid, field))
            .unwrap_or(0)
    }

    /// How this server is asked to stop.
    pub fn stop_signal(&self) -> StopSignal {
        self.stop_signal
    }

    /// Sends SIGTERM (Ctrl-C to a Windows program) and waits up to `timeout` for the process
    /// to exit (at least WINE_STOP_TIMEOUT for a Windows program); kills it after that.
    pub fn stop(mut self, timeout: Duration) -> StopOutcome {
        let started = Instant::now();
        let timeout = if self.stop_signal == StopSignal::CtrlC {
            timeout.max(WINE_STOP_TIMEOUT)
        } else {
            timeout
        };
        if let Some(child) = &self.child {
            // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
            unsafe {
                libc::kill(child.id() as libc::pid_t, self.stop_signal.number());
            }
        }
        let mut status = None;
        let mut repeated = false;
        if let Some(child) = self.child.as_mut() {
            while started.elapsed() < timeout {
                // Wine turns SIGINT into Ctrl-C by starting a thread from its signal handler,
                // which, rarely and on a busy machine, does not happen; a user presses Ctrl-C
                // again, and so does the harness (the report says so).
                if self.stop_signal == StopSignal::CtrlC
                    && !repeated
                    && started.elapsed() > WINE_CTRL_C_REPEAT
                {
                    repeated = true;
                    // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
                    unsafe {
                        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
                    }
                }
                match child.try_wait() {
                    Ok(Some(s)) => {
                        status = Some(s);
                        break;
                    }
                    Ok(None) => thread::sleep(Duration::from_millis(10)),
                    Err(_) => break,
                }
            }
        }
        let elapsed = started.elapsed();
        let mut outcome = self.kill();
        outcome.status = status;
        outcome.elapsed = elapsed;
        outcome.repeated = repeated;
        outcome
    }

    fn kill(&mut self) -> StopOutcome {
        let started = Instant::now();
        let mut status = None;
        if let Some(mut child) = self.child.take() {
            if let Ok(Some(s)) = child.try_wait() {
                status = Some(s);
            } else {
                let _ = child.kill();
                status = child.wait().ok();
            }
        }
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        StopOutcome {
            status,
            elapsed: started.elapsed(),
            stderr,
            signal: self.stop_signal,
            repeated: false,
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill();
        }
    }
}

/// Spawns `command`, retrying while the program file is "busy" (ETXTBSY). A program just
/// written (a build copied into place) stays busy while a child that another thread forked
/// still holds the writing descriptor between its fork and its exec; that lasts milliseconds.
fn spawn_past_text_busy(command: &mut Command) -> std::io::Result<Child> {
    const ETXTBSY: i32 = 26;
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && tries < 20 => {
                tries += 1;
                thread::sleep(Duration::from_millis(50));
            }
            result => return result,
        }
    }
}
