//! A hyper service wrapper that marks a request in flight on its
//! connection from the call until its response body is done (or dropped),
//! so a streaming response is work in progress, not an idle connection;
//! until its request body has arrived whole the request stays sheddable.
//! Each request carries a [`SlotHandle`] with which a handler keeps the
//! connection's slot for a long-lived stream (SSE, an upgraded socket).
//!
//! hyper drops a response body after its last frame, before that frame
//! is flushed; it polls for the end only once its write buffer has room,
//! so at most a buffer's worth (about 400 KiB) of a large reply to a slow
//! client may still be in flight on a connection counted idle. Such a
//! connection is the newest idle one, so the last shed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use hyper::body::{Body, Frame, SizeHint};
use hyper::service::Service;
use hyper::{Request, Response};
use tokio::time::Instant;

use crate::serve::Release;
use crate::slots::ConnState;

/// `inner`, counting its requests on one connection.
#[derive(Debug, Clone)]
pub struct Tracked<S> {
    inner: S,
    slot: SlotHandle,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, slot: SlotHandle) -> Self {
        Tracked { inner, slot }
    }
}

/// Ends the request on drop: after the body, or when hyper gives up.
#[derive(Debug)]
struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end_request(Instant::now());
    }
}

/// A response body that holds its request in flight until it is done.
#[derive(Debug)]
pub struct TrackedBody<B> {
    inner: B,
    _in_flight: InFlight,
    _stream: Option<StreamSlot>,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that tells its connection once it has arrived whole
/// (or is dropped unread): until then the request may be shed at the cap.
#[derive(Debug)]
pub struct RequestBody<B> {
    inner: B,
    receiving: Option<Arc<ConnState>>,
}

impl<B> RequestBody<B> {
    fn done(&mut self) {
        if let Some(conn) = self.receiving.take() {
            conn.body_done(Instant::now());
        }
    }
}

impl<B> Drop for RequestBody<B> {
    fn drop(&mut self) {
        self.done();
    }
}

impl<B: Body + Unpin> Body for RequestBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None | Some(Err(_))) => self.done(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.done(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The connection a request arrived on, as a request extension: a
/// handler that answers with a long-lived stream takes a [`StreamSlot`]
/// from it, so the connection's slot stays held (and counted as work)
/// for the stream's life, within the listener's stream cap.
#[derive(Debug, Clone)]
pub struct SlotHandle {
    conn: Arc<ConnState>,
    release: Arc<Release>,
    streams: Arc<StreamCount>,
}

impl SlotHandle {
    pub(crate) fn new(
        conn: Arc<ConnState>,
        release: Arc<Release>,
        streams: Arc<StreamCount>,
    ) -> Self {
        SlotHandle {
            conn,
            release,
            streams,
        }
    }

    /// A slot for a long-lived stream on this connection, or `None` at
    /// the listener's stream cap ([`crate::Limits::stream_cap`]): answer
    /// 503 then. Keep it for the stream's life: in an SSE response's
    /// extensions (the response body then holds it), or moved into an
    /// upgraded socket's task.
    pub fn stream(&self) -> Option<StreamSlot> {
        let streams = Arc::clone(&self.streams);
        streams
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < streams.cap).then_some(n + 1)
            })
            .ok()?;
        let counted = StreamCounted(Arc::clone(&streams));
        if !self.conn.begin_request(Instant::now(), true) {
            return None;
        }
        Some(StreamSlot(Arc::new(StreamHold {
            _in_flight: InFlight(Arc::clone(&self.conn)),
            _release: Arc::clone(&self.release),
            _counted: counted,
        })))
    }
}

/// The streams open on one listener, at most `cap`.
#[derive(Debug)]
pub(crate) struct StreamCount {
    cap: usize,
    open: AtomicUsize,
}

impl StreamCount {
    pub(crate) fn new(cap: usize) -> Self {
        StreamCount {
            cap,
            open: AtomicUsize::new(0),
        }
    }
}

#[derive(Debug)]
struct StreamCounted(Arc<StreamCount>);

impl Drop for StreamCounted {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Holds a connection's slot, in flight, while a stream lives; released
/// when the last clone drops (clones exist only because extensions must
/// be `Clone`).
#[derive(Debug, Clone)]
pub struct StreamSlot(#[allow(dead_code)] Arc<StreamHold>);

#[derive(Debug)]
struct StreamHold {
    // Field order is drop order: the request ends, then the slot goes.
    _in_flight: InFlight,
    _release: Arc<Release>,
    _counted: StreamCounted,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqB, ResB> Service<Request<ReqB>> for Tracked<S>
where
    S: Service<Request<RequestBody<ReqB>>, Response = Response<ResB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Body,
    ResB: Body + Unpin + Send + 'static,
{
    type Response = Response<TrackedBody<ResB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn call(&self, req: Request<ReqB>) -> Self::Future {
        let conn = &self.slot.conn;
        let body_complete = req.body().is_end_stream();
        if !conn.begin_request(Instant::now(), body_complete) {
            // Shed between the request head and this call: the accept
            // loop is closing the connection; the request never ran.
            return Box::pin(std::future::pending());
        }
        let in_flight = InFlight(Arc::clone(conn));
        let receiving = (!body_complete).then(|| Arc::clone(conn));
        let mut req = req.map(|inner| RequestBody { inner, receiving });
        req.extensions_mut().insert(self.slot.clone());
        let response = self.inner.call(req);
        Box::pin(async move {
            let mut response = response.await?;
            let stream = response.extensions_mut().remove::<StreamSlot>();
            Ok(response.map(|inner| TrackedBody {
                inner,
                _in_flight: in_flight,
                _stream: stream,
            }))
        })
    }
}
