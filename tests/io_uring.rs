//! What only the io_uring model has: start-up where io_uring is refused, and receives that find
//! every provided buffer in use. (The contract, verify, fault and focused loopback tests run it
//! like every other model: the matrix emits it, so `linux_targets()` has it.)

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sockgen::proof::RunningServer;

/// Runs a program with io_uring_setup failing with `errno`, as a container's seccomp profile
/// (EPERM) or a kernel without io_uring (ENOSYS) makes it fail.
const WITHOUT_IO_URING: &str = r#"
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = { sizeof filter / sizeof filter[0], filter };
    if (argc < 3) {
        return 125;
    }
    filter[2].k = SECCOMP_RET_ERRNO | ((unsigned)atoi(argv[1]) & SECCOMP_RET_DATA);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
        return 126;
    }
    execv(argv[2], argv + 2);
    return 127;
}
"#;

#[test]
fn refused_io_uring_is_one_clear_line_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let wrapper = compile_c(dir.path(), "without_io_uring", WITHOUT_IO_URING);
    for (lang, protocol, name) in [
        ("c", "tcp", "uring_tcp"),
        ("c", "udp", "uring_udp"),
        ("rust", "tcp", "uring_tcp"),
        ("rust", "udp", "uring_udp"),
    ] {
        let (_server_dir, server, _) = build(
            // max_connections keeps the descriptor limit from adding a line of its own.
            &format!(
                "name: {name}\nprotocol: {protocol}\nsocket: {{ reuseport: true }}\nserver: {{ workers: 2{} }}\n",
                if protocol == "tcp" { ", max_connections: 1000" } else { "" }
            ),
            lang,
            "io_uring",
        );
        for (errno, cause) in [
            (libc::EPERM, "io_uring is refused here"),
            (libc::ENOSYS, "this kernel has no io_uring"),
        ] {
            let started = Instant::now();
            let out = Command::new(&wrapper)
                .arg(errno.to_string())
                .arg(&server)
                .args(["-p", "0"])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{lang} {protocol} errno {errno}: {stderr}"
            );
            assert!(started.elapsed() < Duration::from_secs(5));
            assert!(!stdout.contains("listening"), "{lang} {protocol}: {stdout}");
            // One line, however many workers fail, naming the cause, the call and the way out.
            assert_eq!(stderr.lines().count(), 1, "{lang} {protocol}: {stderr}");
            assert!(stderr.contains(cause), "{lang} {protocol}: {stderr}");
            assert!(
                stderr.contains("io_uring_setup"),
                "{lang} {protocol}: {stderr}"
            );
            assert!(
                stderr.contains("--model epoll"),
                "{lang} {protocol}: {stderr}"
            );
        }
    }
}

/// With 1 MiB receive buffers a worker has only 16 provided buffers. 200 connections get
/// data while the server is stopped, so when it continues every receive completes at once:
/// most find no buffer (ENOBUFS) and must be armed again, and every byte must still come back
/// in order. `log: ops` shows that the path was taken.
#[test]
fn exhausted_provided_buffers_lose_nothing() {
    for lang in ["c", "rust"] {
        exhaust_provided_buffers(lang);
    }
}

fn exhaust_provided_buffers(lang: &str) {
    use std::io::{Read, Write};
    let (_dir, server, _) = build(
        "name: scarce\nio: { buffer_size: 1048576, output_buffer: 4194304 }\nserver: { max_connections: 1000 }\nlog: ops\n",
        lang,
        "io_uring",
    );
    let running = RunningServer::start(&server, &["-p", "0"], Duration::from_secs(10)).unwrap();
    let pid = running.pid().unwrap() as i32;
    let mut streams: Vec<std::net::TcpStream> = (0..200)
        .map(|_| {
            let s = std::net::TcpStream::connect(running.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    // Each receive is armed once a first byte has come back.
    for s in &mut streams {
        s.write_all(b"!").unwrap();
        let mut one = [0u8; 1];
        s.read_exact(&mut one).unwrap();
    }
    // SAFETY: signals to the server this test started; SIGCONT follows.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let payload = |i: usize| -> Vec<u8> { (0..4096).map(|j| (i * 7 + j) as u8).collect() };
    for (i, s) in streams.iter_mut().enumerate() {
        s.write_all(&payload(i)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    unsafe { libc::kill(pid, libc::SIGCONT) };
    for (i, s) in streams.iter_mut().enumerate() {
        let mut back = vec![0u8; 4096];
        s.read_exact(&mut back)
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        assert!(back == payload(i), "connection {i}: bytes differ");
    }
    drop(streams);
    let stop = running.stop(Duration::from_secs(10));
    stop.check().unwrap();
    assert!(
        stop.stderr.contains("op=recv") && stop.stderr.contains("result=ENOBUFS"),
        "{lang}: the test did not exhaust the buffers: {} bytes of log",
        stop.stderr.len()
    );
}
