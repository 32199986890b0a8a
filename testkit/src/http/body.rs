//! The response body type: a fixed body, optionally after a delay that starts
//! once hyper has written the head (hyper flushes the head while the body is
//! pending), or a streamed huge (optionally holding a needle), endless,
//! trickling or truncated body.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

const FILL_LEN: usize = 64 * 1024;
static FILL: [u8; FILL_LEN] = [b'x'; FILL_LEN];

/// Declared and sent lengths for the truncated body.
pub(crate) const TRUNCATED_DECLARED: u64 = 1000;
pub(crate) const TRUNCATED_SENT: usize = 100;

enum Kind {
    Full(Option<Bytes>),
    Huge {
        remaining: u64,
    },
    /// `len` bytes of filler with `needle` at `at`, cut in two chunks.
    Needle {
        len: u64,
        sent: u64,
        needle: &'static [u8],
        at: u64,
    },
    Endless,
    Trickle {
        interval: Duration,
        chunk: usize,
        next: Option<Pin<Box<Sleep>>>,
    },
    Truncated {
        sent: bool,
    },
}

/// A response body; see the module doc.
pub(crate) struct ServerBody {
    delay: Option<Pin<Box<Sleep>>>,
    pending_delay: Option<Duration>,
    kind: Kind,
}

impl ServerBody {
    fn new(kind: Kind, delay: Option<Duration>) -> Self {
        ServerBody {
            delay: None,
            pending_delay: delay.filter(|d| !d.is_zero()),
            kind,
        }
    }

    pub(crate) fn full(body: Bytes, delay: Option<Duration>) -> Self {
        let body = if body.is_empty() { None } else { Some(body) };
        ServerBody::new(Kind::Full(body), delay)
    }

    pub(crate) fn huge(len: u64, delay: Option<Duration>) -> Self {
        ServerBody::new(Kind::Huge { remaining: len }, delay)
    }

    pub(crate) fn with_needle(
        len: u64,
        needle: &'static [u8],
        at: u64,
        delay: Option<Duration>,
    ) -> Self {
        let kind = Kind::Needle {
            len,
            sent: 0,
            needle,
            at,
        };
        ServerBody::new(kind, delay)
    }

    pub(crate) fn endless(delay: Option<Duration>) -> Self {
        ServerBody::new(Kind::Endless, delay)
    }

    pub(crate) fn trickle(interval: Duration, chunk: usize, delay: Option<Duration>) -> Self {
        let chunk = chunk.clamp(1, FILL_LEN);
        ServerBody::new(
            Kind::Trickle {
                interval,
                chunk,
                next: None,
            },
            delay,
        )
    }

    pub(crate) fn truncated(delay: Option<Duration>) -> Self {
        ServerBody::new(Kind::Truncated { sent: false }, delay)
    }
}

impl Body for ServerBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        // The delay clock starts at the first poll, i.e. once the head is out.
        if let Some(d) = this.pending_delay.take() {
            this.delay = Some(Box::pin(tokio::time::sleep(d)));
        }
        if let Some(delay) = this.delay.as_mut() {
            ready!(delay.as_mut().poll(cx));
            this.delay = None;
        }
        match &mut this.kind {
            Kind::Full(body) => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            Kind::Huge { remaining } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let n = (*remaining).min(FILL_LEN as u64) as usize;
                *remaining -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&FILL[..n])))))
            }
            Kind::Needle {
                len,
                sent,
                needle,
                at,
            } => {
                let Some(chunk) = needle_chunk(*len, *sent, needle, *at) else {
                    return Poll::Ready(None);
                };
                *sent += chunk.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Kind::Endless => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&FILL))))),
            Kind::Trickle {
                interval,
                chunk,
                next,
            } => {
                let sleep = next.get_or_insert_with(|| Box::pin(tokio::time::sleep(*interval)));
                ready!(sleep.as_mut().poll(cx));
                *next = None;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&FILL[..*chunk])))))
            }
            Kind::Truncated { sent } => {
                if *sent {
                    return Poll::Ready(Some(Err(io::Error::other("testkit: closing mid-body"))));
                }
                *sent = true;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                    &FILL[..TRUNCATED_SENT],
                )))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending_delay.is_none()
            && self.delay.is_none()
            && match &self.kind {
                Kind::Full(body) => body.is_none(),
                Kind::Huge { remaining } => *remaining == 0,
                Kind::Needle { len, sent, .. } => sent >= len,
                Kind::Endless | Kind::Trickle { .. } | Kind::Truncated { .. } => false,
            }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(body) => SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Huge { remaining } => SizeHint::with_exact(*remaining),
            // No length: chunked on HTTP/1.1, so every frame is one chunk.
            Kind::Needle { .. } | Kind::Endless | Kind::Trickle { .. } => SizeHint::default(),
            Kind::Truncated { .. } => SizeHint::with_exact(TRUNCATED_DECLARED),
        }
    }
}

/// The next chunk of a needle body after `sent` bytes: filler up to the
/// needle, the needle's first half, its second half, filler to the end.
fn needle_chunk(len: u64, sent: u64, needle: &'static [u8], at: u64) -> Option<Bytes> {
    if sent >= len {
        return None;
    }
    let split = at + needle.len() as u64 / 2;
    let end = at + needle.len() as u64;
    if sent == at {
        return Some(Bytes::from_static(&needle[..needle.len() / 2]));
    }
    if sent == split {
        return Some(Bytes::from_static(&needle[needle.len() / 2..]));
    }
    let stop = if sent < at { at } else { len.max(end) };
    let n = (stop - sent)
        .min(FILL_LEN as u64)
        .min(len.saturating_sub(sent)) as usize;
    Some(Bytes::from_static(&FILL[..n]))
}
