//! The alerter's HTTP side, within [`listen`]'s bounded accept loop:
//! `GET /metrics` (negotiated as the agent's), `GET /healthz`, and the
//! admin API the `sonde alert silence` and `dead-letters` commands use:
//! `GET|POST /v1/silences`, `DELETE /v1/silences/{id}`,
//! `GET /v1/dead-letters`, `POST /v1/dead-letters/replay`. The admin API
//! wants the `admin_token` as a bearer token when one is configured, and
//! without one answers only on a loopback listener.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use exposition::{Exposition, Kind, label};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::sync::oneshot;

use super::event::now_ms;
use super::service::{Command, Handles, SilenceSpec};

const LIMITS: listen::Limits = listen::Limits::with_max_connections(64);
/// Admin requests are small JSON objects.
const MAX_BODY: usize = 64 << 10;
/// The main loop ticks every second; three missed ticks is unhealthy.
const STALE_TICK_MS: u64 = 5_000;

type Answer = Response<Full<Bytes>>;

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    handles: Arc<Handles>,
    token: Option<String>,
    loopback: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let token = Arc::new(token);
    listen::serve(
        listener,
        LIMITS,
        "alert",
        shutdown,
        move |stream, _peer, conn| {
            let handles = Arc::clone(&handles);
            let token = Arc::clone(&token);
            async move {
                let service = conn.track(hyper::service::service_fn(move |req| {
                    let handles = Arc::clone(&handles);
                    let token = Arc::clone(&token);
                    async move {
                        Ok::<_, Infallible>(route(req, &handles, token.as_deref(), loopback).await)
                    }
                }));
                let _ = conn
                    .http1()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        },
    )
    .await;
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Answer {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json(status: StatusCode, value: &serde_json::Value) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, message: &str) -> Answer {
    json(status, &serde_json::json!({ "error": message }))
}

async fn route(
    req: Request<listen::RequestBody<Incoming>>,
    handles: &Handles,
    token: Option<&str>,
    loopback: bool,
) -> Answer {
    let path = req.uri().path().to_owned();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/metrics") => metrics(&req, handles),
        (Method::GET, "/healthz") => health(handles),
        (_, p) if p.starts_with("/v1/") => {
            if let Some(refusal) = refuse(&req, token, loopback) {
                return refusal;
            }
            admin(req, handles).await
        }
        _ => error(StatusCode::NOT_FOUND, "no such path"),
    }
}

/// The answer to an admin request without the right token, if it has not.
fn refuse(
    req: &Request<listen::RequestBody<Incoming>>,
    token: Option<&str>,
    loopback: bool,
) -> Option<Answer> {
    match token {
        None if loopback => None,
        None => Some(error(
            StatusCode::FORBIDDEN,
            "the admin API needs admin_token in alert.toml on a listener that is not loopback",
        )),
        Some(want) => {
            let given = req
                .headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let ok = given.is_some_and(|g| {
                bool::from(subtle::ConstantTimeEq::ct_eq(g.as_bytes(), want.as_bytes()))
            });
            if ok {
                None
            } else {
                Some(error(
                    StatusCode::UNAUTHORIZED,
                    "a bearer admin_token is required",
                ))
            }
        }
    }
}

fn health(handles: &Handles) -> Answer {
    let s = &handles.shared;
    let now = now_ms();
    let last = s.last_tick_ms.load(Ordering::Relaxed);
    if last != 0 && now.saturating_sub(last) > STALE_TICK_MS {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the main loop is stalled\n",
        );
    }
    if s.checkpoint_failing.load(Ordering::Relaxed) {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the checkpoint cannot be written (see the log)\n",
        );
    }
    text(StatusCode::OK, "ok\n")
}

fn metrics(req: &Request<listen::RequestBody<Incoming>>, handles: &Handles) -> Answer {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let negotiated = exposition::negotiate(header(ACCEPT), header(ACCEPT_ENCODING));
    let mut e = Exposition::new(negotiated.format, 4096);
    render(&mut e, handles);
    let body = e.finish();
    let bytes = exposition::encode(body, negotiated.gzip);
    let encoding = negotiated.content_encoding();
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(negotiated.format.content_type()),
    );
    if let Some(enc) = encoding {
        r.headers_mut().insert(
            CONTENT_ENCODING,
            hyper::header::HeaderValue::from_static(enc),
        );
    }
    r
}

/// Writes the alerter's families (docs/METRICS.md, "sonde alert").
pub fn render(e: &mut Exposition, handles: &Handles) {
    let s = &handles.shared;
    e.family(
        "sonde_alert_notifications_total",
        Kind::Counter,
        "Notification attempts per receiver by outcome: sent (2xx), failed (an attempt that did not succeed), retried (a failed attempt scheduled again), dead_lettered.",
    );
    for r in &handles.receivers {
        let st = r.stats();
        let l = label("receiver", r.name());
        for (outcome, v) in [
            ("sent", st.sent),
            ("failed", st.failed),
            ("retried", st.retried),
            ("dead_lettered", st.dead_lettered),
        ] {
            e.sample(
                "sonde_alert_notifications_total",
                &l,
                &label("outcome", outcome),
                v,
            );
        }
    }
    e.family(
        "sonde_alert_pending",
        Kind::Gauge,
        "Notifications waiting in a receiver's queue.",
    );
    for r in &handles.receivers {
        e.sample(
            "sonde_alert_pending",
            &label("receiver", r.name()),
            "",
            r.stats().pending as u64,
        );
    }
    e.family(
        "sonde_alert_checks",
        Kind::Gauge,
        "Checks by state as the rules judge them, across regions.",
    );
    let sum = s.summary.lock().unwrap_or_else(PoisonError::into_inner);
    for (state, v) in [
        ("up", sum.checks_up),
        ("down", sum.checks_down),
        ("pending", sum.checks_pending),
        ("no_data", sum.checks_no_data),
        ("flapping", sum.checks_flapping),
    ] {
        e.sample("sonde_alert_checks", &label("state", state), "", v);
    }
    e.single(
        "sonde_alert_locations",
        Kind::Gauge,
        "Locations (region, agent, check) the rules track.",
        sum.locations,
    );
    e.family(
        "sonde_alert_events_total",
        Kind::Counter,
        "Events the rules decided, by type.",
    );
    for (kind, v) in s
        .events
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        e.sample("sonde_alert_events_total", &label("type", kind), "", *v);
    }
    e.single(
        "sonde_alert_records_total",
        Kind::Counter,
        "Records the rules evaluated.",
        s.records.load(Ordering::Relaxed),
    );
    e.single(
        "sonde_alert_evaluation_seconds_total",
        Kind::Counter,
        "Time spent evaluating records.",
        s.eval_nanos.load(Ordering::Relaxed) as f64 / 1e9,
    );
    let now = now_ms();
    e.family(
        "sonde_alert_stream_up",
        Kind::Gauge,
        "1 while the gateway's stream is connected.",
    );
    for (name, st) in &handles.sources {
        e.sample(
            "sonde_alert_stream_up",
            &label("gateway", name),
            "",
            u64::from(st.connected()),
        );
    }
    e.family(
        "sonde_alert_stream_lag_seconds",
        Kind::Gauge,
        "Now minus the end of the newest probe received from the gateway.",
    );
    for (name, st) in &handles.sources {
        let newest = st.newest_end_ms();
        if newest > 0 {
            e.sample(
                "sonde_alert_stream_lag_seconds",
                &label("gateway", name),
                "",
                now.saturating_sub(newest) as f64 / 1000.0,
            );
        }
    }
    e.family(
        "sonde_alert_stream_reconnects_total",
        Kind::Counter,
        "Connections to the gateway's stream after the first.",
    );
    for (name, st) in &handles.sources {
        e.sample(
            "sonde_alert_stream_reconnects_total",
            &label("gateway", name),
            "",
            st.reconnects(),
        );
    }
    e.single(
        "sonde_alert_gaps_total",
        Kind::Counter,
        "Ranges of records missed for good (notified as alerter.gap).",
        s.gaps.load(Ordering::Relaxed),
    );
    e.single(
        "sonde_alert_checkpoints_total",
        Kind::Counter,
        "Checkpoints written.",
        s.checkpoints.load(Ordering::Relaxed),
    );
    e.single(
        "sonde_alert_checkpoint_failures_total",
        Kind::Counter,
        "Checkpoint writes that failed (retried every second).",
        s.checkpoint_failures.load(Ordering::Relaxed),
    );
    e.single(
        "sonde_alert_checkpoint_bytes",
        Kind::Gauge,
        "Size of the last checkpoint written.",
        s.checkpoint_bytes.load(Ordering::Relaxed),
    );
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSilence {
    checks: Vec<String>,
    #[serde(default)]
    regions: Vec<String>,
    start_ms: Option<u64>,
    end_ms: u64,
    #[serde(default)]
    comment: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    #[serde(default)]
    ids: Vec<String>,
    receiver: Option<String>,
}

async fn body(req: Request<listen::RequestBody<Incoming>>) -> Result<Bytes, Answer> {
    match tokio::time::timeout(
        Duration::from_secs(10),
        Limited::new(req.into_body(), MAX_BODY).collect(),
    )
    .await
    {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) => Err(error(StatusCode::BAD_REQUEST, &format!("body: {e}"))),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "body not received within 10 s",
        )),
    }
}

async fn ask<T>(
    handles: &Handles,
    make: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T, Answer> {
    let (tx, rx) = oneshot::channel();
    if handles.commands.send(make(tx)).await.is_err() {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the alerter is stopping",
        ));
    }
    rx.await
        .map_err(|_| error(StatusCode::SERVICE_UNAVAILABLE, "the alerter is stopping"))
}

async fn admin(req: Request<listen::RequestBody<Incoming>>, handles: &Handles) -> Answer {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let result: Result<Answer, Answer> = async {
        match (method, path.as_str()) {
            (Method::GET, "/v1/silences") => {
                let list = ask(handles, Command::ListSilences).await?;
                Ok(json(StatusCode::OK, &serde_json::json!({ "silences": list })))
            }
            (Method::POST, "/v1/silences") => {
                let b = body(req).await?;
                let n: NewSilence = serde_json::from_slice(&b)
                    .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("silence: {e}")))?;
                let now = now_ms();
                let start_ms = n.start_ms.unwrap_or(now);
                if n.checks.is_empty() || n.checks.iter().any(|c| c.is_empty() || c.len() > 256) {
                    return Err(error(StatusCode::BAD_REQUEST, "checks: one to many globs of up to 256 bytes"));
                }
                if n.end_ms <= start_ms || n.end_ms <= now {
                    return Err(error(StatusCode::BAD_REQUEST, "end must be after start and in the future"));
                }
                let spec = SilenceSpec {
                    id: String::new(),
                    checks: n.checks,
                    regions: n.regions,
                    start_ms,
                    end_ms: n.end_ms,
                    comment: n.comment.chars().take(1024).collect(),
                };
                let id = ask(handles, |tx| Command::AddSilence(spec, tx))
                    .await?
                    .map_err(|m| error(StatusCode::CONFLICT, &m))?;
                Ok(json(StatusCode::CREATED, &serde_json::json!({ "id": id })))
            }
            (Method::DELETE, p) if p.starts_with("/v1/silences/") => {
                let id = p.trim_start_matches("/v1/silences/").to_owned();
                if ask(handles, |tx| Command::RemoveSilence(id.clone(), tx)).await? {
                    Ok(json(StatusCode::OK, &serde_json::json!({ "removed": id })))
                } else {
                    Err(error(StatusCode::NOT_FOUND, &format!("no runtime silence {id:?} (silences from alert.toml are removed there)")))
                }
            }
            (Method::GET, "/v1/dead-letters") => {
                let dl = Arc::clone(&handles.dead_letters);
                let listed = tokio::task::spawn_blocking(move || dl.list())
                    .await
                    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?
                    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
                let letters: Vec<&super::deliver::DeadLetter> = listed.letters().collect();
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({ "dead_letters": letters, "warnings": listed.warnings().collect::<Vec<_>>() }),
                ))
            }
            (Method::POST, "/v1/dead-letters/replay") => {
                let b = body(req).await?;
                let r: ReplayRequest = serde_json::from_slice(&b)
                    .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("replay: {e}")))?;
                let n = ask(handles, |tx| Command::Replay {
                    ids: r.ids,
                    receiver: r.receiver,
                    reply: tx,
                })
                .await?
                .map_err(|m| error(StatusCode::BAD_REQUEST, &m))?;
                Ok(json(StatusCode::OK, &serde_json::json!({ "replayed": n })))
            }
            _ => Err(error(StatusCode::NOT_FOUND, "no such admin path")),
        }
    }
    .await;
    result.unwrap_or_else(|a| a)
}
