//! The HTTP side: routes, handlers, and the accept loop that serves them
//! over cleartext (HTTP/1.1 and h2c) or TLS (ALPN h2, http/1.1).
//!
//! Handlers are thin: they authenticate, call the pure ingest checks and
//! the hub, and turn the outcome into an answer of PROTOCOL.md.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Extension, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::auth::{Principal, Reader, bearer};
use crate::config::{GatewayConfig, TlsFiles};
use crate::hub::{Ack, Hub, first_gseq};
use crate::ingest::{Reject, check_sequences, epoch_ms, shown_name, validate};
use crate::message::Format;
use crate::reader::{self, Feed};
use crate::recover::recover_until;
use crate::state::App;
use crate::write_deadline::{self, WriteDeadline};
use crate::writer::{Persist, Writer};

/// The media type of an ingest body.
pub const FRAMES_CONTENT_TYPE: &str = "application/vnd.sonde.frames";

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Cleartext was asked for on an address other than loopback.
    #[error("refusing cleartext HTTP on {0}: it is not a loopback address; configure [tls]")]
    Cleartext(std::net::SocketAddr),
    /// The listener's address could not be read.
    #[error("listener address: {0}")]
    Listener(#[source] std::io::Error),
    /// The certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// `[jetstream]` could not be used (a stream with other settings).
    #[error(transparent)]
    Log(#[from] crate::jetstream::LogError),
    /// The data directory or writer thread could not be set up.
    #[error("writer ({path}): {source}")]
    Writer {
        /// The data directory.
        path: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub(crate) fn reject_response(reject: &Reject) -> Response {
    let status = StatusCode::from_u16(reject.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = json_response(status, reject.body());
    if let Some(secs) = reject.retry_after_secs() {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

fn principal<'a>(
    app: &'a App,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Option<&'a Principal> {
    let token = match headers.get(header::AUTHORIZATION) {
        Some(v) => bearer(v.as_bytes())?,
        None => query_token?.as_bytes(),
    };
    app.tokens.authenticate(token)
}

async fn ingest(State(app): State<Arc<App>>, req: Request) -> Response {
    let result = accept(&app, req).await;
    app.metrics.request(result.as_ref().map(|_| ()));
    match result {
        Ok(ack) => {
            let body = serde_json::json!({
                "session": ack.session,
                "acked": ack.acked,
                "accepted": ack.accepted,
                "duplicates": ack.duplicates,
            });
            json_response(StatusCode::OK, body.to_string())
        }
        Err(reject) => reject_response(&reject),
    }
}

async fn accept(app: &App, req: Request) -> Result<Ack, Reject> {
    if req.method() != Method::POST {
        return Err(Reject::MethodNotAllowed);
    }
    let agent = match principal(app, req.headers(), None) {
        Some(Principal::Agent(id)) => id.clone(),
        _ => return Err(Reject::Unauthorized),
    };
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if media != Some(FRAMES_CONTENT_TYPE) {
        return Err(Reject::UnsupportedMediaType);
    }
    if app.is_stopping() {
        return Err(Reject::Overloaded);
    }
    let limits = app.cfg.ingest;
    let allowed = app.rate.lock().unwrap_or_else(|e| e.into_inner()).allow(
        &agent,
        limits.max_requests_per_second,
        Instant::now(),
    );
    if !allowed {
        return Err(Reject::RateLimited {
            per_second: limits.max_requests_per_second,
        });
    }
    let max = limits.max_request_bytes;
    let too_large = Reject::TooLarge { max };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large);
    }
    // A trickled body would hold its slot as work: it gets as long as
    // the headers did.
    let deadline = app.cfg.server.header_read_timeout;
    let collected = tokio::time::timeout(deadline, Limited::new(req.into_body(), max).collect())
        .await
        .map_err(|_| Reject::BodyTimeout {
            secs: deadline.as_secs(),
        })?;
    let body: Bytes = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large),
        Err(e) => {
            return Err(Reject::BadFrame {
                offset: 0,
                reason: format!("reading the body: {e}"),
            });
        }
    };
    let frames = validate(&body, &agent)?;
    let limits = app.cfg.agent_limits;
    check_sequences(
        &frames,
        epoch_ms(SystemTime::now()),
        limits.max_session_skew,
    )?;
    let max = app.cfg.writer.queue_frames;
    if frames.len() > max {
        return Err(Reject::TooManyFrames {
            count: frames.len(),
            max,
        });
    }
    if let Some(log) = &app.log {
        let over_cap = |plan: &crate::hub::Plan| {
            let hub = app.hub();
            match hub.check_over_cap(&agent, &frames, plan) {
                Some((offset, check)) => Err(Reject::TooManyChecks {
                    offset,
                    shown: shown_name(check),
                    max: limits.max_checks,
                }),
                None => Ok(()),
            }
        };
        let done = crate::jetstream::publish::accept(log, &agent, &body, &frames, over_cap).await?;
        count_accepted(app, &done.ack, &done.plan);
        return Ok(done.ack);
    }
    // The hub's lock is held for bookkeeping only, never across an await.
    let (ack, plan, ticket) = {
        let mut hub = app.hub();
        let plan = hub.classify(&agent, &frames);
        if let Some((offset, check)) = hub.check_over_cap(&agent, &frames, &plan) {
            return Err(Reject::TooManyChecks {
                offset,
                shown: shown_name(check),
                max: limits.max_checks,
            });
        }
        // The gseqs commit will give, so that the files can be named by them.
        let mut gseq = hub.head() + 1;
        let new_frames: Vec<Persist> = frames
            .iter()
            .zip(&plan.new)
            .filter(|(_, new)| **new)
            .map(|(f, _)| {
                let first = gseq;
                gseq += f.frame.record_count() as u64;
                Persist {
                    gseq: first,
                    bytes: body.slice(f.range.clone()),
                }
            })
            .collect();
        // Also for a request of duplicates only: its ticket covers every
        // frame offered before, so a duplicate is acknowledged only once
        // the frame it repeats is as safe as a new one.
        let Some(ticket) = app.writer.try_send(new_frames) else {
            return Err(Reject::Overloaded);
        };
        let (ack, _) = hub.commit(&agent, &frames, &plan, Instant::now());
        (ack, plan, ticket)
    };
    // Counted once committed: a request that then times out below still
    // accepted its frames (its resend counts as duplicates).
    count_accepted(app, &ack, &plan);
    if !app.writer.written(ticket, WRITE_WAIT).await {
        // Visible to readers already and still queued for the files: the
        // agent's resend is a duplicate, acknowledged once written.
        return Err(Reject::Overloaded);
    }
    Ok(ack)
}

fn count_accepted(app: &App, ack: &Ack, plan: &crate::hub::Plan) {
    let m = &app.metrics;
    m.frames_accepted
        .fetch_add(ack.accepted as u64, Ordering::Relaxed);
    m.records_accepted
        .fetch_add(ack.records as u64, Ordering::Relaxed);
    m.frames_duplicate
        .fetch_add(ack.duplicates as u64, Ordering::Relaxed);
    m.frames_gap.fetch_add(plan.gap_frames, Ordering::Relaxed);
}

/// Query parameters of the reader endpoints.
#[derive(Debug, Default, Deserialize)]
struct ReaderQuery {
    since: Option<String>,
    format: Option<String>,
    token: Option<String>,
}

pub(crate) fn bad_request(reason: &str) -> Response {
    let body = serde_json::json!({"error": "bad_request", "reason": reason, "offset": null});
    json_response(StatusCode::BAD_REQUEST, body.to_string())
}

/// Why a reader was turned away before its stream started.
pub(crate) enum Refusal {
    Unauthorized,
    /// A JWT that did not verify, and why.
    Token(crate::oidc::TokenError),
    BadSince,
    Busy,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unauthorized => reject_response(&Reject::Unauthorized),
            Refusal::Token(why) => {
                let reason = why.to_string();
                let body =
                    serde_json::json!({"error": "unauthorized", "reason": reason, "offset": null});
                let mut r = json_response(StatusCode::UNAUTHORIZED, body.to_string());
                // RFC 6750 3: what a client shows its user. Quotes and
                // backslashes cannot appear in a header's quoted string.
                let shown: String = reason.chars().filter(|c| *c != '"' && *c != '\\').collect();
                let challenge =
                    format!("Bearer error=\"invalid_token\", error_description=\"{shown}\"");
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                r
            }
            Refusal::BadSince => bad_request("since must be a gseq (an unsigned integer)"),
            Refusal::Busy => reject_response(&Reject::Overloaded),
        }
    }
}

/// The reader a request's credential (`Authorization: Bearer`, else the
/// `token` query parameter) belongs to: every reader endpoint's one door.
pub(crate) async fn authenticate_reader(
    app: &App,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Reader, Refusal> {
    let token = match headers.get(header::AUTHORIZATION) {
        Some(v) => bearer(v.as_bytes()).ok_or(Refusal::Unauthorized)?,
        None => query_token.ok_or(Refusal::Unauthorized)?.as_bytes(),
    };
    reader_of_token(app, token).await
}

/// The reader a presented token belongs to: a static `[[reader]]` token,
/// else a JWT of an `[[oidc]]` issuer.
pub(crate) async fn reader_of_token(app: &App, token: &[u8]) -> Result<Reader, Refusal> {
    match app.tokens.authenticate(token) {
        Some(Principal::Reader(scope)) => Ok(Reader {
            scope: scope.clone(),
            expires: None,
        }),
        Some(_) => Err(Refusal::Unauthorized),
        None if app.oidc.is_empty() || !crate::oidc::looks_like_jwt(token) => {
            Err(Refusal::Unauthorized)
        }
        None => {
            // A JWT's shape is ASCII.
            let text = std::str::from_utf8(token).map_err(|_| Refusal::Unauthorized)?;
            app.oidc.verify(text).await.map_err(|why| {
                tracing::debug!(%why, "reader token refused");
                app.metrics.oidc_refused.fetch_add(1, Ordering::Relaxed);
                Refusal::Token(why)
            })
        }
    }
}

/// Authenticates a reader and parses `since`.
async fn reader_start(
    app: &App,
    headers: &HeaderMap,
    q: &ReaderQuery,
    last_event_id: bool,
) -> Result<(Reader, Option<u64>), Refusal> {
    let reader = authenticate_reader(app, headers, q.token.as_deref()).await?;
    let since = reader_limits(app, headers, q, last_event_id)?;
    Ok((reader, since))
}

/// Parses `since` (or `Last-Event-ID`) and checks the reader cap.
fn reader_limits(
    app: &App,
    headers: &HeaderMap,
    q: &ReaderQuery,
    last_event_id: bool,
) -> Result<Option<u64>, Refusal> {
    let header_since = headers
        .get("last-event-id")
        .filter(|_| last_event_id)
        .and_then(|v| v.to_str().ok());
    let since = match header_since.or(q.since.as_deref()) {
        None | Some("") => None,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return Err(Refusal::BadSince),
        },
    };
    if app.metrics.readers.load(Ordering::Relaxed) >= app.cfg.readers.max_readers as u64 {
        return Err(Refusal::Busy);
    }
    Ok(since)
}

/// The listener's slot for a reader's stream, held for its life; `Busy`
/// at the stream cap, which keeps a quarter of the connections for
/// ingest ([`listen::Limits::stream_cap`]).
fn stream_slot(
    slot: Option<Extension<listen::SlotHandle>>,
) -> Result<Option<listen::StreamSlot>, Refusal> {
    match slot {
        None => Ok(None),
        Some(Extension(handle)) => handle.stream().map(Some).ok_or(Refusal::Busy),
    }
}

async fn stream(
    State(app): State<Arc<App>>,
    slot: Option<Extension<listen::SlotHandle>>,
    headers: HeaderMap,
    Query(q): Query<ReaderQuery>,
) -> Response {
    if q.format.as_deref().is_some_and(|f| f != "json") {
        return bad_request("Server-Sent Events are JSON only; use /v1/ws for MessagePack");
    }
    let started = reader_start(&app, &headers, &q, true)
        .await
        .and_then(|start| Ok((start, stream_slot(slot)?)));
    match started {
        Ok(((reader, since), slot)) => {
            app.catch_up_to(since).await;
            let mut response = reader::sse(Feed::open(app, reader, Format::Json, since));
            // The response body holds it (listen::Tracked moves it there).
            if let Some(slot) = slot {
                response.extensions_mut().insert(slot);
            }
            response
        }
        Err(r) => r.into_response(),
    }
}

async fn websocket(
    State(app): State<Arc<App>>,
    slot: Option<Extension<listen::SlotHandle>>,
    headers: HeaderMap,
    Query(q): Query<ReaderQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let format = match q.format.as_deref() {
        None | Some("msgpack") => Format::MsgPack,
        Some("json") => Format::Json,
        Some(_) => return bad_request("format must be json or msgpack"),
    };
    // A browser cannot set headers on a WebSocket: without a credential
    // in the request, the first message carries it (PROTOCOL.md 3.2).
    let sign_in_later = !headers.contains_key(header::AUTHORIZATION) && q.token.is_none();
    let started = match sign_in_later {
        true => reader_limits(&app, &headers, &q, false).map(|since| (None, since)),
        false => reader_start(&app, &headers, &q, false)
            .await
            .map(|(reader, since)| (Some(reader), since)),
    };
    let started = started.and_then(|start| Ok((start, stream_slot(slot)?)));
    match started {
        Ok(((reader, since), slot)) => {
            // Readers send nothing but control frames and one sign-in:
            // small buffers keep an idle reader cheap (tungstenite's
            // default read buffer is 128 KiB).
            ws.read_buffer_size(4096)
                .write_buffer_size(0)
                .max_message_size(64 << 10)
                .on_upgrade(move |mut socket| async move {
                    // The upgraded socket outlives its connection's task:
                    // its slot is held until the socket closes.
                    let _slot = slot;
                    let reader = match reader {
                        Some(reader) => reader,
                        None => match websocket_sign_in(&app, &mut socket).await {
                            Some(reader) => reader,
                            None => return,
                        },
                    };
                    app.catch_up_to(since).await;
                    let feed = Feed::open(app, reader, format, since);
                    reader::websocket(socket, feed).await;
                })
        }
        Err(r) => r.into_response(),
    }
}

/// A WebSocket reader's first message, `{"token": "…"}`, authenticated;
/// `None` (the socket closed with 4401 and the reason) when it does not
/// come within the header-read timeout or does not authenticate.
async fn websocket_sign_in(app: &App, socket: &mut axum::extract::ws::WebSocket) -> Option<Reader> {
    use axum::extract::ws::{CloseFrame, Message};
    #[derive(Deserialize)]
    struct SignIn {
        token: String,
    }
    let wait = app.cfg.server.header_read_timeout;
    let first = tokio::time::timeout(wait, async {
        loop {
            match socket.recv().await {
                Some(Ok(Message::Text(text))) => return Some(text.as_bytes().to_vec()),
                Some(Ok(Message::Binary(bytes))) => return Some(bytes.to_vec()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => return None,
            }
        }
    })
    .await;
    let outcome = match first {
        Err(_) => Err(format!("no sign-in message within {}s", wait.as_secs())),
        Ok(None) => return None,
        Ok(Some(bytes)) => match serde_json::from_slice::<SignIn>(&bytes) {
            Err(_) => Err("the first message must be {\"token\": \"...\"}".to_owned()),
            Ok(sign_in) => match reader_of_token(app, sign_in.token.as_bytes()).await {
                Ok(reader) => Ok(reader),
                Err(Refusal::Token(why)) => Err(why.to_string()),
                Err(_) => Err("unauthorized".to_owned()),
            },
        },
    };
    match outcome {
        Ok(reader) => Some(reader),
        Err(reason) => {
            // A close reason is at most 123 bytes.
            let mut reason = reason;
            while reason.len() > 123 {
                reason.pop();
            }
            let close = CloseFrame {
                code: 4401,
                reason: reason.into(),
            };
            let _ = socket.send(Message::Close(Some(close))).await;
            None
        }
    }
}

/// `GET /metrics`: text 0.0.4 or OpenMetrics, gzipped or not, as the
/// scraper's Accept and Accept-Encoding ask (see [`exposition::negotiate`]).
async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let value = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let n = exposition::negotiate(value(header::ACCEPT), value(header::ACCEPT_ENCODING));
    let body = exposition::encode(app.metrics.render(app.gauges(), n.format), n.gzip);
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(n.format.content_type()),
    );
    if let Some(coding) = n.content_encoding() {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    r
}

async fn not_found() -> Response {
    not_found_response()
}

/// `404 not_found`, as every unknown path gets it.
pub(crate) fn not_found_response() -> Response {
    let body =
        serde_json::json!({"error": "not_found", "reason": "no such endpoint", "offset": null});
    json_response(StatusCode::NOT_FOUND, body.to_string())
}

fn router(app: Arc<App>) -> Router {
    // The reader endpoints, the only ones pages of other origins may use.
    let readers = Router::new()
        .route("/v1/stream", get(stream))
        .route("/v1/ws", get(websocket))
        .route("/v1/checks", get(crate::poll::checks))
        .route("/v1/poll", get(crate::poll::poll))
        .route("/v1/history", get(crate::history::history))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::cors::layer,
        ));
    Router::new()
        .route("/v1/frames", any(ingest))
        .merge(readers)
        .route("/v1/admin/agents/{id}/reset", post(crate::admin::reset))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/", get(crate::ui::index))
        .route("/ui/config.json", get(crate::ui::config))
        .route("/ui/{*path}", get(crate::ui::asset))
        .fallback(not_found)
        .layer(DefaultBodyLimit::disable())
        .with_state(app)
}

fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ServeError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let what = |p: &std::path::Path, e: &dyn std::fmt::Display| {
        ServeError::Tls(format!("{}: {e}", p.display()))
    };
    // Bounded and regular files only: `/dev/zero` must not be read whole.
    let read = |p: &std::path::Path| config::file::read_bounded(p).map_err(|e| what(p, &e));
    let cert_pem = read(&files.cert_file)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| what(&files.cert_file, &e))?;
    let key_pem = read(&files.key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| what(&files.key_file, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// How long connections get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// Longest an ingest request waits for the writer (`ack = "durable"`)
/// before answering 503.
const WRITE_WAIT: Duration = Duration::from_secs(10);

/// Serves the gateway on `listener` until `shutdown` resolves, then stops
/// readers, drains connections (up to 5 s) and flushes the writer.
///
/// `config.listen` is not used: the caller binds. Without `config.tls`,
/// `listener` must be on a loopback address.
pub async fn serve<F>(
    listener: TcpListener,
    config: GatewayConfig,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send,
{
    let local = listener.local_addr().map_err(ServeError::Listener)?;
    let tls = match &config.tls {
        Some(files) => Some(tls_acceptor(files)?),
        None if local.ip().is_loopback() => None,
        None => return Err(ServeError::Cleartext(local)),
    };
    tokio::pin!(shutdown);
    if let Some(js) = config.jetstream.clone() {
        let region = config.identity.region.clone().unwrap_or_default();
        let log =
            crate::jetstream::Log::open(&js, &region, &config.identity.name, shutdown.as_mut())
                .await?;
        let Some(log) = log else { return Ok(()) };
        // gseqs come from the stream (jetstream::gseq): none given out yet.
        let hub = new_hub(&config, 1);
        return serve_with(listener, config, tls, Some(Arc::new(log)), hub, shutdown).await;
    }
    let hub = new_hub(&config, first_gseq(SystemTime::now()));
    let started = Instant::now();
    let max_age = config.ring.max_age;
    let found = recover_until(hub, &config.writer.data_dir, max_age, shutdown.as_mut());
    let Some((hub, recovered)) = found.await.map_err(|e| writer_error(&config, e))? else {
        return Ok(());
    };
    for problem in &recovered.problems {
        tracing::warn!(%problem, "gateway recovery: damaged wire file");
    }
    for problem in &recovered.reset_log {
        tracing::warn!(%problem, "gateway recovery: damaged line in the mark reset log, ignored");
    }
    for skipped in &recovered.skipped {
        tracing::warn!(%skipped, "gateway recovery: left out of the restored marks or state");
    }
    tracing::info!(
        files = recovered.files,
        frames = recovered.frames,
        records = recovered.records,
        ring_records = hub.ring_records(),
        damaged = recovered.damaged,
        ring_breaks = recovered.ring_breaks,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "gateway recovered its state from its wire files"
    );
    serve_with(listener, config, tls, None, hub, shutdown).await
}

/// An empty hub for `config` whose first gseq is `first`.
fn new_hub(config: &GatewayConfig, first: u64) -> Hub {
    let mut hub = Hub::new(config.ring, config.readers.queue_frames, first);
    hub.set_agent_limits(config.agent_limits);
    hub
}

fn writer_error(config: &GatewayConfig, source: std::io::Error) -> ServeError {
    ServeError::Writer {
        path: config.writer.data_dir.display().to_string(),
        source,
    }
}

/// Serves from a recovered `hub` (the wire files are the log) or, with
/// `log`, from an empty `hub` the stream fills before the listener opens.
async fn serve_with<F>(
    listener: TcpListener,
    config: GatewayConfig,
    tls: Option<TlsAcceptor>,
    log: Option<Arc<crate::jetstream::Log>>,
    hub: Hub,
    mut shutdown: std::pin::Pin<&mut F>,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send,
{
    let local = listener.local_addr().map_err(ServeError::Listener)?;
    let writer = Writer::start(config.writer.clone()).map_err(|e| writer_error(&config, e))?;
    let (stop_tx, stopping) = watch::channel(false);
    let app = Arc::new(App::new(config, hub, writer, log.clone(), stopping));
    let mut log_tasks = Vec::new();
    if let Some(log) = &log {
        let started = Instant::now();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        log_tasks.push(tokio::spawn(crate::jetstream::follow::follow(
            app.clone(),
            log.clone(),
            ready_tx,
        )));
        log_tasks.push(tokio::spawn(crate::jetstream::follow::save_marks(
            log.clone(),
        )));
        tokio::select! {
            _ = ready => {}
            () = shutdown.as_mut() => {
                for t in &log_tasks {
                    t.abort();
                }
                return Ok(());
            }
        }
        let hub = app.hub();
        tracing::info!(
            stream = %app.cfg.jetstream.as_ref().map_or("", |j| j.stream.as_str()),
            gseq = hub.head(),
            checks = hub.checks(),
            ring_records = hub.ring_records(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "gateway read its state from the JetStream stream"
        );
    }
    let routes = router(app.clone());
    let evictor = tokio::spawn({
        let app = app.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                app.hub().evict(Instant::now());
            }
        }
    });
    let keys = tokio::spawn({
        let app = app.clone();
        async move { app.oidc.refresh_forever().await }
    });
    // The history index is built now, off the runtime, rather than by the
    // first history query.
    let files_are_the_log = app.log.is_none();
    tokio::task::spawn_blocking({
        let app = app.clone();
        move || {
            if !files_are_the_log {
                return;
            }
            let started = std::time::Instant::now();
            let mut index = app
                .history_index()
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match index.refresh(&app.cfg.writer.data_dir) {
                Ok(()) => {
                    let size = index.size();
                    tracing::info!(
                        files = size.files,
                        records = size.records,
                        index_bytes = size.heap_bytes,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "history index built"
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "history index: reading the wire files (retried by the next query)")
                }
            }
        }
    });
    tracing::info!(%local, tls = tls.is_some(), "gateway listening");

    let limits = app.cfg.server;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_read_timeout))
        .keep_alive_timeout(limits.header_read_timeout);
    // What hyper holds per connection for a reader that is not reading
    // (PROTOCOL.md 3.4); the kernel's socket buffers come on top.
    builder.http1().max_buf_size(reader::SEND_BUFFER_BYTES);
    builder.http2().max_send_buf_size(reader::SEND_BUFFER_BYTES);
    let write_timeout = app.cfg.readers.write_timeout;
    let graceful = GracefulShutdown::new();
    let graceful_ref = &graceful;
    listen::serve(
        listener,
        limits,
        "gateway",
        shutdown,
        |stream, _peer, conn| {
            let _ = stream.set_nodelay(true);
            write_deadline::limit_unsent(&stream, reader::SEND_BUFFER_BYTES);
            let stream =
                WriteDeadline::new(stream, write_timeout, app.metrics.write_timeouts.clone());
            let service = conn.track(TowerToHyperService::new(routes.clone()));
            let builder = builder.clone();
            let watcher = graceful_ref.watcher();
            let tls = tls.clone();
            async move {
                match tls {
                    None => {
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        let _ = watcher.watch(conn.into_owned()).await;
                    }
                    Some(acceptor) => {
                        let Ok(Ok(stream)) = tokio::time::timeout(
                            limits.header_read_timeout,
                            acceptor.accept(stream),
                        )
                        .await
                        else {
                            return;
                        };
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        let _ = watcher.watch(conn.into_owned()).await;
                    }
                }
            }
        },
    )
    .await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
    evictor.abort();
    keys.abort();
    for t in &log_tasks {
        t.abort();
    }
    if let Some(log) = &log {
        // The marks this replica moved since the last pass (PROTOCOL.md 10.2).
        let last = crate::jetstream::publish::save_marks(log);
        let _ = tokio::time::timeout(Duration::from_secs(2), last).await;
    }
    let app_for_writer = app.clone();
    let _ = tokio::task::spawn_blocking(move || app_for_writer.writer.stop()).await;
    tracing::info!("gateway stopped");
    Ok(())
}
