//! Accepting and serving connections: the accept loops, the TLS handshake
//! (with the optional ServerHello delay), the choice between hyper (normal
//! responses, HTTP/1.1 or h2 by ALPN) and raw misbehaviours.

use std::convert::Infallible;
use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::body::ServerBody;
use super::delay::DelayFirstWrite;
use super::{Config, Misbehaviour, Stats, raw};

/// Everything a connection task needs.
pub(crate) struct Shared {
    pub(crate) config: Arc<Config>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) tls: Option<TlsAcceptor>,
}

/// Registers the listeners with the runtime and returns the server future.
pub(crate) fn serve(
    v4: StdListener,
    v6: Option<StdListener>,
    shared: Arc<Shared>,
) -> std::io::Result<impl Future<Output = ()>> {
    let v4 = to_tokio(v4)?;
    let v6 = v6.map(to_tokio).transpose()?;
    Ok(async move {
        if let Some(v6) = v6 {
            tokio::spawn(accept_loop(v6, shared.clone()));
        }
        accept_loop(v4, shared).await;
    })
}

fn to_tokio(listener: StdListener) -> std::io::Result<TcpListener> {
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        shared.stats.connections.fetch_add(1, Ordering::Relaxed);
        // Small writes (TLS flights, heads) must leave at once, as from a real server.
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(stream, shared.clone()));
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    match &shared.tls {
        None => serve_stream(stream, false, shared).await,
        Some(acceptor) => {
            let delayed = DelayFirstWrite::new(stream, shared.config.tls_handshake_delay);
            let Ok(tls) = acceptor.accept(delayed).await else {
                return; // The client rejected us or we rejected it: that is the test.
            };
            let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            let h2 = alpn.as_deref() == Some(b"h2");
            if let Ok(mut last) = shared.stats.last_alpn.lock() {
                *last = alpn;
            }
            serve_stream(tls, h2, shared).await
        }
    }
}

async fn serve_stream<IO>(io: IO, h2: bool, shared: Arc<Shared>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match shared.config.misbehaviour {
        Some(Misbehaviour::Garbage) => return raw::garbage(io, &shared).await,
        Some(Misbehaviour::Silent) => return raw::silent(io, &shared).await,
        Some(Misbehaviour::CloseMidBody) if !h2 => return raw::close_mid_body(io, &shared).await,
        Some(Misbehaviour::InformationalFlood) if !h2 => {
            return raw::informational_flood(io, &shared).await;
        }
        Some(Misbehaviour::InformationalFlood) => {
            return raw::informational_flood_h2(io, &shared).await;
        }
        Some(Misbehaviour::InformationalThenOk(n)) if !h2 => {
            return raw::informational_then_ok(io, n, &shared).await;
        }
        Some(Misbehaviour::EndlessHeaders) if !h2 => {
            return raw::endless_headers(io, &shared).await;
        }
        _ => {}
    }
    let io = TokioIo::new(io);
    let service = service_fn(move |req| respond(req, shared.clone()));
    if h2 {
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(io, service)
            .await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .await;
    }
}

async fn respond(
    req: hyper::Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<hyper::Response<ServerBody>, Infallible> {
    let config = &shared.config;
    let response = config.response_for(req.uri().path());
    if let Ok(mut last) = shared.stats.last_request_headers.lock() {
        *last = Some(req.headers().clone());
    }
    // The first-byte delay starts once the request is fully read.
    let _ = req.into_body().collect().await;
    if let Some(delay) = config.first_byte_delay {
        tokio::time::sleep(delay).await;
    }
    let body_delay = config.body_delay;
    let body = match config.misbehaviour {
        Some(Misbehaviour::HugeBody(len)) => ServerBody::huge(len, body_delay),
        Some(Misbehaviour::Trickle { interval, chunk }) => {
            ServerBody::trickle(interval, chunk, body_delay)
        }
        Some(Misbehaviour::CloseMidBody) => ServerBody::truncated(body_delay),
        Some(Misbehaviour::HugeBodyWith { len, needle, at }) => {
            ServerBody::with_needle(len, needle.as_bytes(), at, body_delay)
        }
        Some(Misbehaviour::EndlessBody) => ServerBody::endless(body_delay),
        _ => ServerBody::full(response.body.clone(), body_delay),
    };
    let mut out = hyper::Response::new(body);
    *out.status_mut() = match (config.misbehaviour.as_ref(), shared.stats.status()) {
        (Some(_), _) => hyper::StatusCode::OK,
        (None, Some(status)) => status,
        (None, None) => response.status,
    };
    let headers = out.headers_mut();
    for (name, value) in &response.headers {
        headers.append(name.clone(), value.clone());
    }
    shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    Ok(out)
}
