//! A stream wrapper that holds back its first write: under TLS the server's
//! first write is its first handshake flight (ServerHello...), so the delay
//! lands between ClientHello and ServerHello, inside the client's TLS phase.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

enum State {
    Armed(Duration),
    Sleeping(Pin<Box<Sleep>>),
    Passthrough,
}

/// Delays the first `poll_write` by a fixed duration, counted from that call.
pub(crate) struct DelayFirstWrite<S> {
    inner: S,
    state: State,
}

impl<S> DelayFirstWrite<S> {
    /// Wraps `inner`; `None` makes the wrapper transparent.
    pub(crate) fn new(inner: S, delay: Option<Duration>) -> Self {
        let state = match delay {
            Some(d) if !d.is_zero() => State::Armed(d),
            _ => State::Passthrough,
        };
        DelayFirstWrite { inner, state }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DelayFirstWrite<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DelayFirstWrite<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            match &mut self.state {
                State::Passthrough => return Pin::new(&mut self.inner).poll_write(cx, buf),
                State::Armed(d) => {
                    let sleep = Box::pin(tokio::time::sleep(*d));
                    self.state = State::Sleeping(sleep);
                }
                State::Sleeping(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    self.state = State::Passthrough;
                }
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
