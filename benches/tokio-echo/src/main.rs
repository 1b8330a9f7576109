//! A conventional tokio echo server: one task per connection, read into a buffer, write_all;
//! with `--udp`, one task answering each datagram with send_to. Single-threaded runtime, to
//! compare like with like against a one-worker generated server.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

async fn serve_tcp(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (mut socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16384];
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if socket.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

async fn serve_udp(port: u16) -> std::io::Result<()> {
    let socket = UdpSocket::bind(("127.0.0.1", port)).await?;
    let mut buf = vec![0u8; 65536];
    loop {
        // An ICMP error from an earlier reply surfaces here as ECONNREFUSED: keep serving.
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let _ = socket.send_to(&buf[..n], peer).await;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut port = 7000u16;
    let mut udp = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).expect("--port PORT"),
            "--udp" => udp = true,
            other => panic!("unknown argument {other}"),
        }
    }
    let serve = async {
        if udp {
            serve_udp(port).await
        } else {
            serve_tcp(port).await
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = serve => r,
        _ = term.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
