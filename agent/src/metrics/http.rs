//! The HTTP side of the metrics: GET /metrics, /healthz and /readyz on the
//! `--metrics-listen` address, over hyper's HTTP/1.1 server connection, one
//! task per connection, within [`listen`]'s bounded accept loop.
//! `/metrics` in the format and encoding the scraper negotiates (see
//! [`exposition::negotiate`]), rendered and encoded on the blocking pool,
//! one render at a time, shared by the scrapes that come while it runs
//! ([`Renders`]). Deliberately nothing more: no TLS, no auth (put a proxy
//! in front for those).

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    ACCEPT, ACCEPT_ENCODING, ALLOW, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue, VARY,
};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::OnceCell;

use super::Metrics;
use crate::blackbox;

/// How long a stopping server waits for open connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The metrics listener's bounds: a scraper or two and a health check,
/// so a small cap; idle connections are shed first, so a scrape still
/// gets through while hundreds of idle connections knock.
const LIMITS: listen::Limits = listen::Limits::with_max_connections(64);

/// Serves GET /metrics, /healthz (200 "ok" while the process serves),
/// /readyz (200 or 503, see [`Metrics::readiness`]) and, with `probe`,
/// blackbox_exporter's /probe; anything else 404.
/// Runs until `shutdown` resolves, then stops accepting and gives open
/// connections a few seconds to finish.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    probe: Option<Arc<blackbox::Endpoint>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let graceful_ref = &graceful;
    listen::serve(
        listener,
        LIMITS,
        "metrics",
        shutdown,
        move |stream, _peer, conn| {
            let metrics = Arc::clone(&metrics);
            let probe = probe.clone();
            let service = conn.track(service_fn(move |req: Request<_>| {
                let metrics = Arc::clone(&metrics);
                let probe = probe.clone();
                async move {
                    let response = match (&probe, req.uri().path()) {
                        (Some(probe), "/probe") => {
                            probe.respond(req.uri().query(), req.headers()).await
                        }
                        _ => respond(&metrics, &req).await,
                    };
                    Ok::<_, Infallible>(response)
                }
            }));
            let watcher = graceful_ref.watcher();
            async move {
                let conn = conn.http1().serve_connection(TokioIo::new(stream), service);
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(error = %e, "metrics: connection ended with an error");
                }
            }
        },
    )
    .await;
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("metrics: connections still open at shutdown; dropped");
    }
    Ok(())
}

/// The response to one request.
async fn respond<B>(metrics: &Arc<Metrics>, req: &Request<B>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n".into(),
        );
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "method not allowed\n".into(),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        "/metrics" => {
            let n = negotiated(req.headers());
            match render_encoded(metrics, n).await {
                Some(body) => exposition_bytes(body, n),
                None => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    "render failed\n".into(),
                ),
            }
        }
        "/readyz" => match metrics.readiness() {
            Ok(()) => text(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "ready\n".into(),
            ),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                why,
            ),
        },
        _ => text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// What the scraper's Accept and Accept-Encoding headers ask for.
#[allow(dead_code, reason = "also for the blackbox part's /probe")]
pub(crate) fn negotiated(headers: &HeaderMap) -> exposition::Negotiated {
    let value = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    exposition::negotiate(value(ACCEPT), value(ACCEPT_ENCODING))
}

/// A 200 carrying `body`, already encoded as `n` says.
fn exposition_bytes(body: Bytes, n: exposition::Negotiated) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(n.format.content_type()),
    );
    if let Some(coding) = n.content_encoding() {
        h.insert(CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    h.insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
    r
}

/// The scrapes' renders. A render of a large agent takes a good part of a
/// second and its size in memory: it runs on the blocking pool (never on
/// the runtime the probes are timed on), one at a time, and a scrape that
/// comes while one of its format and encoding is in progress (or waits its
/// turn) takes that one's body instead of rendering again: 64 scrapes at
/// once cost one render per format asked for.
#[derive(Default)]
pub(super) struct Renders {
    /// Renders in progress or waiting, by what they write.
    inflight: Mutex<Vec<(exposition::Negotiated, Arc<Rendered>)>>,
    /// Held by the render running, through to its end on the blocking
    /// pool (even when the scrape that started it went away).
    one: Arc<tokio::sync::Mutex<()>>,
    /// Renders run, and the thread of the last (tests check they share and
    /// run off the runtime).
    #[cfg(test)]
    pub(super) seen: Mutex<(usize, Option<std::thread::ThreadId>)>,
}

/// One render's body, once done (`None`: it panicked).
type Rendered = OnceCell<Option<Bytes>>;

/// `/metrics` for `n`, rendered and encoded off the runtime, shared with
/// the scrapes of the same `n` that wait for it; `None` if the render
/// panicked.
pub(super) async fn render_encoded(
    metrics: &Arc<Metrics>,
    n: exposition::Negotiated,
) -> Option<Bytes> {
    let renders = &metrics.renders;
    let cell = {
        let mut inflight = renders
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match inflight.iter().find(|(k, _)| *k == n) {
            Some((_, cell)) => Arc::clone(cell),
            None => {
                let cell = Arc::new(OnceCell::new());
                inflight.push((n, Arc::clone(&cell)));
                cell
            }
        }
    };
    let body = cell
        .get_or_init(|| async {
            let turn = Arc::clone(&renders.one).lock_owned().await;
            let m = Arc::clone(metrics);
            let job = tokio::task::spawn_blocking(move || {
                let body = Bytes::from(exposition::encode(m.render(n.format), n.gzip));
                #[cfg(test)]
                {
                    let mut seen = m
                        .renders
                        .seen
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    *seen = (seen.0 + 1, Some(std::thread::current().id()));
                }
                drop(turn);
                body
            });
            let done = job.await;
            // From here the scrapes that come render afresh.
            renders
                .inflight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|(_, c)| !Arc::ptr_eq(c, &cell));
            match done {
                Ok(body) => Some(body),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: render failed");
                    None
                }
            }
        })
        .await;
    body.clone()
}
