//! The TCP retry of a truncated reply (RFC 7766): one connection to the
//! server that truncated, the query with its 2-byte length, the reply read
//! by its length (at most 64 KiB, the most the prefix can say). How long it
//! may take is the lookup's business: the try's timeout and the probe's
//! deadline drop this future.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A TCP exchange under way.
pub(super) type Exchange = Pin<Box<dyn Future<Output = io::Result<Vec<u8>>> + Send>>;

/// Starts the exchange of `query` (a whole DNS message) with `server`.
/// Allocates, but only on this rare path (a reply that did not fit).
pub(super) fn exchange(server: SocketAddr, query: &[u8]) -> Exchange {
    let framed = u16::try_from(query.len())
        .map(|len| [&len.to_be_bytes()[..], query].concat())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "query too long for TCP"));
    Box::pin(async move {
        let framed = framed?;
        let mut stream = TcpStream::connect(server).await?;
        stream.set_nodelay(true)?;
        stream.write_all(&framed).await?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut reply).await?;
        Ok(reply)
    })
}
