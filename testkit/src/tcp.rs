//! TCP failure targets: a port that refuses connections, and a blackhole
//! whose connects never complete (the connect phase times out).
//!
//! The blackhole relies on Linux dropping SYNs to a listener whose accept
//! queue is full: it listens with a backlog of 0, never accepts, and holds
//! filler connections that keep the queue full for as long as it lives.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// A loopback address with nothing listening: connects are refused (RST).
///
/// Binds 127.0.0.1:0, notes the port and closes it. Another process could
/// take the port meanwhile; on a test machine that is very unlikely.
pub fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("testkit: binding 127.0.0.1:0: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("testkit: reading the bound address: {e}"))
}

/// How long a filler connect may take before we call the queue full.
const FILL_TIMEOUT: Duration = Duration::from_millis(50);
/// More fillers than this means the kernel is not honouring the backlog.
const MAX_FILLERS: usize = 8;

/// A loopback listener whose connects hang (SYNs dropped) while it lives.
#[derive(Debug)]
pub struct Blackhole {
    addr: SocketAddr,
    _listener: Socket,
    _fillers: Vec<TcpStream>,
}

impl Blackhole {
    /// Starts a blackhole on 127.0.0.1; panics if connects to it still complete.
    ///
    /// Takes about 50 ms: it proves the queue is full by watching one
    /// connect attempt time out.
    pub fn start() -> Blackhole {
        Blackhole::try_start().unwrap_or_else(|e| panic!("testkit: starting the blackhole: {e}"))
    }

    /// Starts a blackhole on 127.0.0.1.
    pub fn try_start() -> std::io::Result<Blackhole> {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        let bind: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        listener.bind(&bind.into())?;
        listener.listen(0)?;
        let addr = listener
            .local_addr()?
            .as_socket()
            .ok_or_else(|| std::io::Error::other("listener has no IP address"))?;
        let mut fillers = Vec::new();
        loop {
            match TcpStream::connect_timeout(&addr, FILL_TIMEOUT) {
                Ok(stream) => fillers.push(stream),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
                Err(e) => return Err(e),
            }
            if fillers.len() > MAX_FILLERS {
                return Err(std::io::Error::other(format!(
                    "{} connects to a backlog-0 listener completed; \
                     this kernel does not drop SYNs on a full accept queue",
                    fillers.len()
                )));
            }
        }
        Ok(Blackhole {
            addr,
            _listener: listener,
            _fillers: fillers,
        })
    }

    /// The address whose connects hang.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
