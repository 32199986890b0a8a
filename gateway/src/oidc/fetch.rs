//! Fetching a JWKS document: one HTTP/1.1 GET over a connection opened
//! here (TLS with the system's roots and an optional extra CA, or
//! cleartext to loopback only), bounded in time and size.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use super::keys::MAX_JWKS_BYTES;

/// The longest one fetch may take, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a JWKS document could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not `https://host[:port]/path` (or `http://` to loopback).
    #[error("{0}")]
    Url(String),
    /// The extra CA file could not be used.
    #[error("ca_file {path}: {why}")]
    Ca {
        /// The file.
        path: String,
        /// What was wrong.
        why: String,
    },
    /// Resolving, connecting, TLS or HTTP failed.
    #[error("{0}")]
    Io(String),
    /// The provider answered other than 200.
    #[error("answered {0}")]
    Status(StatusCode),
    /// The document is larger than [`MAX_JWKS_BYTES`].
    #[error("the document is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// Nothing within [`FETCH_TIMEOUT`].
    #[error("no answer within {}s", FETCH_TIMEOUT.as_secs())]
    Timeout,
}

/// Whether `host` (as a URI holds it) names this machine's loopback.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A JWKS URL's parts, checked: `https`, or `http` to loopback only.
pub fn check_url(url: &str) -> Result<Uri, FetchError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| FetchError::Url(format!("`{url}` is not a URL: {e}")))?;
    let host = uri
        .host()
        .ok_or_else(|| FetchError::Url(format!("`{url}` has no host")))?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") => Err(FetchError::Url(format!(
            "`{url}`: keys are fetched over https (http only to loopback)"
        ))),
        _ => Err(FetchError::Url(format!("`{url}` is not an http(s) URL"))),
    }
}

/// The TLS client a fetch uses: the system's roots and `ca_file`'s.
pub fn tls_client(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, FetchError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let ca = |why: String| FetchError::Ca {
            path: path.display().to_string(),
            why,
        };
        let pem = config::file::read_bounded(path).map_err(|e| ca(e.to_string()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ca(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca("no certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ca(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Io(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// GETs `uri` (checked by [`check_url`]) and returns its body.
pub async fn get(uri: &Uri, tls: &Arc<rustls::ClientConfig>) -> Result<Vec<u8>, FetchError> {
    tokio::time::timeout(FETCH_TIMEOUT, get_now(uri, tls))
        .await
        .map_err(|_| FetchError::Timeout)?
}

async fn get_now(uri: &Uri, tls: &Arc<rustls::ClientConfig>) -> Result<Vec<u8>, FetchError> {
    let io = |e: &dyn std::fmt::Display| FetchError::Io(e.to_string());
    let host = uri.host().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = TcpStream::connect((bare, port)).await.map_err(|e| io(&e))?;
    let _ = tcp.set_nodelay(true);
    let authority = uri.authority().map_or(host, |a| a.as_str());
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::get(path)
        .header(header::HOST, authority)
        .header(header::ACCEPT, "application/jwk-set+json, application/json")
        .header(
            header::USER_AGENT,
            concat!("sonde-gateway/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| io(&e))?;
    if https {
        let name = ServerName::try_from(bare.to_owned()).map_err(|e| io(&e))?;
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| io(&e))?;
        exchange(TokioIo::new(stream), request).await
    } else {
        exchange(TokioIo::new(tcp), request).await
    }
}

async fn exchange<T>(io: T, request: Request<Empty<bytes::Bytes>>) -> Result<Vec<u8>, FetchError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let err = |e: &dyn std::fmt::Display| FetchError::Io(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| err(&e))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let response = sender.send_request(request).await.map_err(|e| err(&e));
    let result = match response {
        Ok(r) if r.status() != StatusCode::OK => Err(FetchError::Status(r.status())),
        Ok(r) => match Limited::new(r.into_body(), MAX_JWKS_BYTES).collect().await {
            Ok(body) => Ok(body.to_bytes().to_vec()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(FetchError::TooLarge),
            Err(e) => Err(FetchError::Io(e.to_string())),
        },
        Err(e) => Err(e),
    };
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_over_https_or_from_loopback() {
        assert!(check_url("https://idp.example.com/jwks").is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url("http://[::1]:8080/jwks").is_ok());
        assert!(check_url("http://localhost/jwks").is_ok());
        assert!(check_url("http://idp.example.com/jwks").is_err());
        assert!(check_url("ftp://idp.example.com/jwks").is_err());
        assert!(check_url("/jwks").is_err());
        assert!(check_url("not a url").is_err());
    }
}
