//! The webhook that ends a wait early: a deploy system POSTs
//! `{"status":"ready"}` or `{"status":"failed","reason":"..."}`, signed.
//!
//! The scheme: `X-Sonde-Timestamp: <unix seconds>` and
//! `X-Sonde-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
//! A timestamp more than 300 s (`MAX_SKEW`) from our clock is stale; a
//! (timestamp, signature) pair seen before is a replay. [`Verifier`] is the
//! pure part (clock passed in); [`serve`] is the thin hyper server over it,
//! within [`listen`]'s bounded accept loop.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ring::hmac;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// The timestamp header.
pub(crate) const TIMESTAMP_HEADER: &str = "x-sonde-timestamp";
/// The signature header.
pub(crate) const SIGNATURE_HEADER: &str = "x-sonde-signature";
/// How far a timestamp may be from our clock, either way.
pub(crate) const MAX_SKEW: Duration = Duration::from_secs(300);
/// The largest body accepted.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// What a verified webhook says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// The deploy is ready.
    Ready,
    /// The deploy failed, with the sender's reason.
    Failed(String),
}

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A header is missing or unreadable.
    #[error("missing or unreadable {0} header")]
    MissingHeader(&'static str),
    /// The timestamp is not unix seconds.
    #[error("timestamp {0:?} is not unix seconds")]
    BadTimestamp(String),
    /// The timestamp is too far from our clock.
    #[error("stale timestamp ({skew_secs} s from our clock, {} s allowed)", MAX_SKEW.as_secs())]
    Stale {
        /// How far off it is.
        skew_secs: u64,
    },
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// This exact (timestamp, signature) was accepted before.
    #[error("replayed (timestamp, signature)")]
    Replayed,
    /// Signed correctly, but not a payload we understand.
    #[error("bad payload: {0}")]
    BadPayload(String),
    /// Not a POST, or too large.
    #[error("{0}")]
    BadRequest(String),
}

impl Rejection {
    /// The HTTP status answered: 401 for anything about authenticity.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::BadPayload(_) | Rejection::BadRequest(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum Payload {
    Ready,
    Failed {
        #[serde(default)]
        reason: Option<String>,
    },
}

/// The signature header value for `body` at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, &signed_bytes(timestamp, body));
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.as_ref() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn signed_bytes(timestamp: u64, body: &[u8]) -> Vec<u8> {
    let ts = timestamp.to_string();
    let mut msg = Vec::with_capacity(ts.len() + 1 + body.len());
    msg.extend_from_slice(ts.as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(body);
    msg
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// Checks signatures, timestamps and replays.
pub struct Verifier {
    key: hmac::Key,
    seen: VecDeque<(u64, Vec<u8>)>,
}

impl Verifier {
    /// A verifier for `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Verifier {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            seen: VecDeque::new(),
        }
    }

    /// Verifies one webhook received at `now`: the header values (if
    /// present) and the body.
    pub(crate) fn verify(
        &mut self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Signal, Rejection> {
        let ts_text = timestamp.ok_or(Rejection::MissingHeader(TIMESTAMP_HEADER))?;
        let sig_text = signature.ok_or(Rejection::MissingHeader(SIGNATURE_HEADER))?;
        let ts: u64 = ts_text
            .trim()
            .parse()
            .map_err(|_| Rejection::BadTimestamp(ts_text.to_owned()))?;
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let skew_secs = now_secs.abs_diff(ts);
        if skew_secs > MAX_SKEW.as_secs() {
            return Err(Rejection::Stale { skew_secs });
        }
        let tag = sig_text
            .trim()
            .strip_prefix("sha256=")
            .and_then(unhex)
            .ok_or(Rejection::BadSignature)?;
        hmac::verify(&self.key, &signed_bytes(ts, body), &tag)
            .map_err(|_| Rejection::BadSignature)?;
        // Only verified pairs are remembered, and only while they could
        // still pass the skew check.
        self.seen
            .retain(|(seen_ts, _)| now_secs.abs_diff(*seen_ts) <= MAX_SKEW.as_secs());
        if self.seen.iter().any(|(t, s)| *t == ts && *s == tag) {
            return Err(Rejection::Replayed);
        }
        self.seen.push_back((ts, tag));
        match serde_json::from_slice::<Payload>(body) {
            Ok(Payload::Ready) => Ok(Signal::Ready),
            Ok(Payload::Failed { reason }) => Ok(Signal::Failed(
                reason.unwrap_or_else(|| "failed (no reason given)".into()),
            )),
            Err(e) => Err(Rejection::BadPayload(e.to_string())),
        }
    }
}

/// What the server reports to the wait loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// A verified webhook.
    Accepted(Signal),
    /// A refused one, from `peer`, for the log.
    Rejected {
        /// Who sent it.
        peer: SocketAddr,
        /// Why it was refused.
        reason: Rejection,
    },
}

/// The webhook listener's bounds: a deploy system sends a handful of
/// requests, so a small cap (further clamped to the fd limit) keeps the
/// descriptors for the polls; idle connections are shed first, so a real
/// webhook still gets through.
pub(crate) const LIMITS: listen::Limits = listen::Limits::with_max_connections(64);

/// Serves webhooks on `listener` until the receiver of `events` is gone.
pub async fn serve(listener: TcpListener, verifier: Verifier, events: mpsc::Sender<WebhookEvent>) {
    let verifier = Arc::new(Mutex::new(verifier));
    let closed = {
        let events = events.clone();
        async move { events.closed().await }
    };
    listen::serve(
        listener,
        LIMITS,
        "webhook",
        closed,
        move |stream, peer, conn| {
            let verifier = verifier.clone();
            let events = events.clone();
            async move {
                let service = conn.track(hyper::service::service_fn(move |req| {
                    handle(req, peer, verifier.clone(), events.clone())
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

async fn handle(
    req: Request<listen::RequestBody<Incoming>>,
    peer: SocketAddr,
    verifier: Arc<Mutex<Verifier>>,
    events: mpsc::Sender<WebhookEvent>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let outcome = verify_request(req, &verifier).await;
    let (status, text) = match &outcome {
        Ok(_) => (StatusCode::OK, "accepted\n".to_owned()),
        Err(reason) => (reason.status(), format!("{reason}\n")),
    };
    let event = match outcome {
        Ok(signal) => WebhookEvent::Accepted(signal),
        Err(reason) => WebhookEvent::Rejected { peer, reason },
    };
    let _ = events.send(event).await;
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    Ok(response)
}

async fn verify_request(
    req: Request<listen::RequestBody<Incoming>>,
    verifier: &Mutex<Verifier>,
) -> Result<Signal, Rejection> {
    if req.method() != Method::POST {
        return Err(Rejection::BadRequest(format!(
            "{} (POST only)",
            req.method()
        )));
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let timestamp = header(TIMESTAMP_HEADER);
    let signature = header(SIGNATURE_HEADER);
    // Until it is whole the request may be shed at the cap (oldest first);
    // a body trickled in below the cap gets as long as the headers did.
    let limit = LIMITS.header_read_timeout;
    let body = tokio::time::timeout(
        limit,
        Limited::new(req.into_body(), MAX_BODY_BYTES).collect(),
    )
    .await
    .map_err(|_| Rejection::BadRequest(format!("body not received within {} s", limit.as_secs())))?
    .map_err(|e| Rejection::BadRequest(format!("body: {e}")))?
    .to_bytes();
    let mut verifier = verifier
        .lock()
        .map_err(|_| Rejection::BadRequest("internal error".into()))?;
    verifier.verify(
        timestamp.as_deref(),
        signature.as_deref(),
        &body,
        SystemTime::now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"s3cret";
    const T: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn check(
        v: &mut Verifier,
        ts: u64,
        sig: &str,
        body: &[u8],
        now: u64,
    ) -> Result<Signal, Rejection> {
        v.verify(Some(&ts.to_string()), Some(sig), body, at(now))
    }

    #[test]
    fn signature_is_hmac_over_timestamp_dot_body() {
        // Reference: printf '1700000000.{"status":"ready"}' | openssl dgst -sha256 -hmac s3cret
        let sig = sign(SECRET, T, br#"{"status":"ready"}"#);
        assert_eq!(
            sig,
            "sha256=20af103ff100ac11fbc9230498123f0006999d2fcc83171a5fae4e5baefa19c9"
        );
        assert_eq!(unhex(&sig[7..]).map(|t| t.len()), Some(32));
    }

    #[test]
    fn good_webhooks_say_ready_or_failed() {
        let mut v = Verifier::new(SECRET);
        let body = br#"{"status":"ready"}"#;
        assert_eq!(
            check(&mut v, T, &sign(SECRET, T, body), body, T + 10),
            Ok(Signal::Ready)
        );
        let body = br#"{"status":"failed","reason":"rollout aborted"}"#;
        assert_eq!(
            check(&mut v, T, &sign(SECRET, T, body), body, T),
            Ok(Signal::Failed("rollout aborted".into()))
        );
    }

    #[test]
    fn bad_signature_stale_and_replay_are_refused() {
        let mut v = Verifier::new(SECRET);
        let body = br#"{"status":"ready"}"#;
        let good = sign(SECRET, T, body);
        assert_eq!(
            check(&mut v, T, &sign(b"other", T, body), body, T),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            check(&mut v, T, "sha256=zz", body, T),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            check(&mut v, T, &good, br#"{"status":"failed"}"#, T),
            Err(Rejection::BadSignature)
        );
        // The timestamp is signed: moving it breaks the signature.
        assert_eq!(
            check(&mut v, T + 1, &good, body, T),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            check(&mut v, T, &good, body, T + 301),
            Err(Rejection::Stale { skew_secs: 301 })
        );
        assert!(check(&mut v, T, &good, body, T - 300).is_ok());
        assert_eq!(check(&mut v, T, &good, body, T), Err(Rejection::Replayed));
        assert_eq!(
            v.verify(None, Some(&good), body, at(T)),
            Err(Rejection::MissingHeader(TIMESTAMP_HEADER))
        );
        assert_eq!(Rejection::BadSignature.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn signed_garbage_is_a_bad_payload() {
        let mut v = Verifier::new(SECRET);
        let body = br#"{"status":"maybe"}"#;
        assert!(matches!(
            check(&mut v, T, &sign(SECRET, T, body), body, T),
            Err(Rejection::BadPayload(_))
        ));
    }
}
