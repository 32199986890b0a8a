//! A hyper service wrapper that marks a request in flight on its
//! connection from the call until its response body is done (or dropped),
//! so a streaming response is work in progress, not an idle connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::{Body, Frame, SizeHint};
use hyper::service::Service;
use hyper::{Request, Response};
use tokio::time::Instant;

use crate::slots::ConnState;

/// `inner`, counting its requests on one connection.
#[derive(Debug, Clone)]
pub struct Tracked<S> {
    inner: S,
    conn: Arc<ConnState>,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, conn: Arc<ConnState>) -> Self {
        Tracked { inner, conn }
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

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqB, ResB> Service<Request<ReqB>> for Tracked<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResB: Body + Unpin + Send + 'static,
{
    type Response = Response<TrackedBody<ResB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn call(&self, req: Request<ReqB>) -> Self::Future {
        if !self.conn.begin_request(Instant::now()) {
            // Shed between the request head and this call: the accept
            // loop is closing the connection; the request never ran.
            return Box::pin(std::future::pending());
        }
        let in_flight = InFlight(Arc::clone(&self.conn));
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| TrackedBody {
                inner,
                _in_flight: in_flight,
            }))
        })
    }
}
