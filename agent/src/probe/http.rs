//! HTTP over a connection the probe opened itself: hyper's client
//! connection API, HTTP/1.1 or HTTP/2 as ALPN chose, one request, the body
//! read to its end under a size cap.
//!
//! The connection is driven in the probe's own task (no spawn for HTTP/1),
//! so no scheduler hop sits between a byte arriving and the probe seeing it.

use std::future::Future;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use wire::ErrorClass;

use super::decode::{DecodeError, Decoder};
use super::failure::{self, ProbeFailure};
use super::phase::{Phase, PhaseClock};
use super::stream::{FirstByte, Informational, TimedStream};
use super::verdict::BodySearch;

/// What a response told the probe.
#[derive(Debug, Default)]
pub(crate) struct Exchange {
    /// The status code.
    pub(crate) status: Option<u16>,
    /// The Location header, for redirects.
    pub(crate) location: Option<String>,
    /// The response headers (moved out of the response, not copied).
    pub(crate) headers: hyper::HeaderMap,
    /// The HTTP version spoken.
    pub(crate) version: Option<hyper::Version>,
    /// Body bytes received.
    pub(crate) body_bytes: u64,
    /// Body bytes after content decoding (`body_bytes` without a decoder).
    pub(crate) decoded_body_bytes: u64,
    /// The body, kept only when the spec asks to keep the response.
    pub(crate) body: Vec<u8>,
    /// When the last body byte arrived.
    pub(crate) finished: Option<Instant>,
    /// The response's head ended its stream (an HTTP/2 HEADERS frame
    /// with END_STREAM: no body at all).
    pub(crate) head_ended_stream: bool,
    /// The body failed inside its gzip header: Go's `gzip.NewReader`
    /// failing, before blackbox_exporter's body regexes ever run.
    pub(crate) gzip_header_failed: bool,
}

/// Limits for reading the body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyPolicy {
    /// Keep the (decoded) body (for `keep_response`; assertions search as
    /// it streams).
    pub(crate) keep: bool,
    /// Fail with `body_too_large` past this many bytes, decoded ones when
    /// there is a decoder (blackbox_exporter's `body_size_limit` applies
    /// after decompression).
    pub(crate) max_bytes: u64,
    /// Redirects are followed: a redirect's body is not decoded (as in
    /// blackbox_exporter, only the final response is).
    pub(crate) follows_redirects: bool,
}

/// Counts the informational (1xx) responses hyper skips before `req`'s
/// final one (HTTP/1; over HTTP/2, where h2 drops them silently, the
/// stream counts HEADERS frames), for
/// [`TimedStream::bound_informational`]. Allocates: call it before the
/// probe's clock starts.
pub(crate) fn count_informational(req: &mut Request<Full<Bytes>>) -> Informational {
    let counter = Informational::default();
    let seen = counter.clone();
    hyper::ext::on_informational(req, move |_| {
        seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    counter
}

/// Sends `req` over `io` and reads the response to its end, feeding the
/// body to the readers as it arrives (decoded first, when the check asks
/// for a coding). The clock's ttfb and body phases are opened here; the first byte's instant is stamped by the stream, into
/// `first_byte`.
#[allow(
    clippy::too_many_arguments,
    reason = "the hop's parts, each borrowed apart"
)]
pub(crate) async fn exchange(
    io: TimedStream,
    h2: bool,
    req: Request<Full<Bytes>>,
    body: BodyPolicy,
    readers: BodyReaders<'_>,
    clock: &mut PhaseClock,
    first_byte: &FirstByte,
    out: &mut Exchange,
) -> Result<(), ProbeFailure> {
    let io = TokioIo::new(io);
    clock.begin(Phase::Ttfb);
    let phase_of = |fb: &FirstByte| {
        if fb.get().is_some() {
            Phase::Body
        } else {
            Phase::Ttfb
        }
    };
    if h2 {
        let (mut sender, conn) = http2::Builder::new(TokioExecutor::new())
            .handshake(io)
            .await
            .map_err(|e| failure::http(&e, phase_of(first_byte)))?;
        let work = async {
            let response = sender.send_request(req).await;
            read(response, body, readers, clock, first_byte, out).await
        };
        drive(conn, work).await
    } else {
        let (mut sender, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| failure::http(&e, phase_of(first_byte)))?;
        let work = async {
            let response = sender.send_request(req).await;
            read(response, body, readers, clock, first_byte, out).await
        };
        drive(conn, work).await
    }
}

/// What reads a body as it arrives: the content decoder and the body
/// assertions' search, each prepared before the clock started.
#[derive(Debug, Default)]
pub(crate) struct BodyReaders<'a> {
    pub(crate) decoder: Option<&'a mut Decoder>,
    pub(crate) search: Option<&'a mut BodySearch>,
}

impl From<DecodeError> for ProbeFailure {
    fn from(e: DecodeError) -> Self {
        ProbeFailure::new(ErrorClass::HttpProtocol, Phase::Body, e.to_string())
    }
}

async fn read(
    response: Result<Response<hyper::body::Incoming>, hyper::Error>,
    policy: BodyPolicy,
    readers: BodyReaders<'_>,
    clock: &mut PhaseClock,
    first_byte: &FirstByte,
    out: &mut Exchange,
) -> Result<(), ProbeFailure> {
    let response = response.map_err(|e| {
        let phase = if first_byte.get().is_some() {
            Phase::Body
        } else {
            Phase::Ttfb
        };
        failure::http(&e, phase)
    })?;
    clock.begin(Phase::Body);
    out.status = Some(response.status().as_u16());
    out.version = Some(response.version());
    out.location = response
        .headers()
        .get(hyper::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (parts, mut incoming) = response.into_parts();
    out.headers = parts.headers;
    out.head_ended_stream = hyper::body::Body::is_end_stream(&incoming);
    let BodyReaders {
        mut decoder,
        mut search,
    } = readers;
    let followed = policy.follows_redirects
        && out.location.is_some()
        && matches!(out.status, Some(301 | 302 | 303 | 307 | 308));
    // `auto` picks its coding by Content-Encoding now; nothing to decode
    // leaves the body as it came.
    if followed
        || decoder
            .as_deref_mut()
            .is_some_and(|d| !d.select(&out.headers))
    {
        decoder = None;
    }
    let decoding = decoder.is_some();
    // Each decoded piece (the raw chunk without a decoder) is counted,
    // capped, searched and kept here.
    let mut take = |out: &mut Exchange, piece: &[u8]| -> Result<(), ProbeFailure> {
        // Counted up to the cap, as Go's MaxBytesReader stops there.
        let room = policy.max_bytes.saturating_sub(out.decoded_body_bytes);
        out.decoded_body_bytes += (piece.len() as u64).min(room);
        if piece.len() as u64 > room {
            let what = if decoding { "decoded body" } else { "body" };
            return Err(ProbeFailure::new(
                ErrorClass::BodyTooLarge,
                Phase::Body,
                format!("{what} exceeds {} bytes", policy.max_bytes),
            ));
        }
        if let Some(search) = search.as_deref_mut() {
            search.feed(piece);
        }
        if policy.keep {
            out.body.extend_from_slice(piece);
        }
        Ok(())
    };
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| failure::http(&e, Phase::Body))?;
        if let Ok(data) = frame.into_data() {
            out.body_bytes += data.len() as u64;
            // Decoding runs as the body streams, inside the body phase, as
            // in blackbox_exporter (DESIGN.md, "Timing", says why).
            let fed = match decoder.as_deref_mut() {
                Some(d) => d.feed(&data, |piece| take(out, piece)),
                None => take(out, &data),
            };
            if fed.is_err() {
                out.gzip_header_failed = decoder.as_deref().is_some_and(Decoder::in_gzip_header);
            }
            fed?;
        }
    }
    if let Some(d) = decoder {
        let done = d.finish(|piece| take(out, piece));
        out.gzip_header_failed = done.is_err() && d.in_gzip_header();
        done?;
    }
    out.finished = Some(Instant::now());
    // The regexes run here, inside the deadline (after the last byte's
    // instant, so not in rt).
    if let Some(search) = search {
        search.finish();
    }
    Ok(())
}

/// Polls the connection beside the request until the request's work is done.
async fn drive<C, W>(conn: C, work: W) -> Result<(), ProbeFailure>
where
    C: Future<Output = Result<(), hyper::Error>>,
    W: Future<Output = Result<(), ProbeFailure>>,
{
    tokio::pin!(conn);
    tokio::pin!(work);
    let mut conn_done = false;
    loop {
        tokio::select! {
            biased;
            done = &mut work => return done,
            // A connection error also fails the request; the request's
            // error (which carries the cause) is the one reported.
            _ = &mut conn, if !conn_done => conn_done = true,
        }
    }
}
