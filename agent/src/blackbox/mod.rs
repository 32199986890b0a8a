//! blackbox_exporter's `/probe?target=&module=` on the agent's metrics
//! listener, driven by the modules of a blackbox_exporter configuration
//! file: one probe per request, its gauges rendered as blackbox_exporter's
//! http prober names them.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

/// The `/probe` endpoint: the loaded modules and the prober that runs them.
#[derive(Debug, Default)]
pub struct Endpoint {}

impl Endpoint {
    /// The response to `GET /probe?{query}` with the request's `headers`
    /// (the scrape timeout header among them).
    pub(crate) async fn respond(
        &self,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Response<Full<Bytes>> {
        // STUB (blackbox part): no modules are loaded yet.
        let _ = (query, headers);
        let mut r = Response::new(Full::new(Bytes::from_static(
            b"no blackbox configuration loaded\n",
        )));
        *r.status_mut() = StatusCode::NOT_FOUND;
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }
}
