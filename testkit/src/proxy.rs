//! TCP proxies on loopback that put a known fault between a client and a
//! server we do not control (nginx, a `sonde gateway` child), byte for
//! byte; they parse nothing. The kernel has no netem here, so these stand
//! in for the network's delays and outages.
//!
//! - [`DelayProxy`] holds each connection's first upstream reply for a set
//!   time. For TLS that reply is the server's first flight
//!   (ServerHello...Finished), so the delay lands in the client's TLS
//!   handshake, not in its connect (the kernel completes that before any
//!   byte moves) nor in its first byte.
//! - [`OutageProxy`] can be switched off: then it drops every open
//!   connection and closes new ones at once, so the server behind it is
//!   unreachable while it keeps running.

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::thread::ServerThread;

/// A running delaying proxy; stops (dropping every connection) when dropped.
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    _thread: ServerThread,
}

impl DelayProxy {
    /// Starts a proxy on 127.0.0.1:0 to `upstream` that holds each
    /// connection's first upstream reply for `first_reply_delay`; panics
    /// with the reason if it cannot.
    pub fn start(upstream: SocketAddr, first_reply_delay: Duration) -> DelayProxy {
        DelayProxy::try_start(upstream, first_reply_delay)
            .unwrap_or_else(|e| panic!("testkit: starting the delay proxy: {e}"))
    }

    /// Starts a proxy on 127.0.0.1:0 to `upstream` that holds each
    /// connection's first upstream reply for `first_reply_delay`.
    pub fn try_start(
        upstream: SocketAddr,
        first_reply_delay: Duration,
    ) -> std::io::Result<DelayProxy> {
        let listener = StdTcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let thread = ServerThread::spawn("proxy", move || {
            let listener = TcpListener::from_std(listener)?;
            Ok(serve(listener, upstream, first_reply_delay))
        })?;
        Ok(DelayProxy {
            addr,
            _thread: thread,
        })
    }

    /// The address clients connect to (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// A running outage proxy; stops (dropping every connection) when dropped.
#[derive(Debug)]
pub struct OutageProxy {
    addr: SocketAddr,
    down: watch::Sender<bool>,
    _thread: ServerThread,
}

impl OutageProxy {
    /// Starts a proxy on 127.0.0.1:0 to `upstream`, up; panics with the
    /// reason if it cannot.
    pub fn start(upstream: SocketAddr) -> OutageProxy {
        OutageProxy::try_start(upstream)
            .unwrap_or_else(|e| panic!("testkit: starting the outage proxy: {e}"))
    }

    /// Starts a proxy on 127.0.0.1:0 to `upstream`, up.
    pub fn try_start(upstream: SocketAddr) -> std::io::Result<OutageProxy> {
        let listener = StdTcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (down, is_down) = watch::channel(false);
        let thread = ServerThread::spawn("outage-proxy", move || {
            let listener = TcpListener::from_std(listener)?;
            Ok(serve_outage(listener, upstream, is_down))
        })?;
        Ok(OutageProxy {
            addr,
            down,
            _thread: thread,
        })
    }

    /// The address clients connect to (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts (`true`) or ends an outage. Starting one drops every open
    /// connection; while it lasts, new connections are closed at once.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
}

async fn serve_outage(listener: TcpListener, upstream: SocketAddr, down: watch::Receiver<bool>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if *down.borrow() {
            drop(client);
            continue;
        }
        let mut cut = down.clone();
        tokio::spawn(async move {
            // Ending the copy drops (closes) both sockets.
            tokio::select! {
                _ = forward(client, upstream, Duration::ZERO) => {}
                _ = cut.wait_for(|down| *down) => {}
            }
        });
    }
}

async fn serve(listener: TcpListener, upstream: SocketAddr, delay: Duration) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            // A failed connection is the client's to notice (it sees EOF).
            let _ = forward(client, upstream, delay).await;
        });
    }
}

/// Copies both ways until both sides are done, holding the first reply.
async fn forward(client: TcpStream, upstream: SocketAddr, delay: Duration) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let up = async {
        tokio::io::copy(&mut client_rx, &mut server_tx).await?;
        server_tx.shutdown().await
    };
    let down = async {
        hold_first_reply(&mut server_rx, &mut client_tx, delay).await?;
        tokio::io::copy(&mut server_rx, &mut client_tx).await?;
        client_tx.shutdown().await
    };
    let (up, down) = tokio::join!(up, down);
    up.and(down)
}

/// Reads the first bytes from `from`, waits `delay`, then writes them to
/// `to`; with no delay, leaves them to the copy that follows.
async fn hold_first_reply<R, W>(from: &mut R, to: &mut W, delay: Duration) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if delay.is_zero() {
        return Ok(());
    }
    let mut buf = vec![0u8; 64 * 1024];
    let n = from.read(&mut buf).await?;
    if n == 0 {
        return Ok(());
    }
    tokio::time::sleep(delay).await;
    to.write_all(&buf[..n]).await
}
