//! Cross-origin readers (`[cors]`, PROTOCOL.md 3.8): which headers a
//! reader endpoint's answer gets for a page of another origin, and the
//! preflight. Off by default; ingest and admin endpoints never get them.
//!
//! [`headers`] is the pure decision; [`layer`] applies it to a request.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::Cors;
use crate::state::App;

/// The request headers a reader's page may send.
pub const ALLOW_HEADERS: &str = "Authorization, Last-Event-ID, Content-Type, If-None-Match";
/// The response headers its script may read.
pub const EXPOSE_HEADERS: &str = "ETag";
/// How long a browser may keep a preflight's answer, seconds.
pub const MAX_AGE: &str = "600";

/// The CORS headers for a request from `origin` (`preflight`: an
/// `OPTIONS` with `Access-Control-Request-Method`); empty when the origin
/// is not allowed, or CORS is off, so that the browser refuses the page.
pub fn headers(cors: &Cors, origin: &str, preflight: bool) -> Vec<(HeaderName, HeaderValue)> {
    let any = cors.allow_origins.iter().any(|o| o == "*");
    let exact = cors.allow_origins.iter().any(|o| o == origin);
    if !any && !exact {
        return Vec::new();
    }
    let Ok(origin_value) = HeaderValue::from_str(origin) else {
        return Vec::new();
    };
    let mut out = vec![(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        if exact {
            origin_value
        } else {
            HeaderValue::from_static("*")
        },
    )];
    // Credentials only ever with the exact origin echoed (config refuses
    // them with `*`).
    if cors.allow_credentials && exact {
        out.push((
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        ));
    }
    if preflight {
        out.extend([
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, OPTIONS"),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            ),
            (
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(MAX_AGE),
            ),
        ]);
    } else {
        out.push((
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        ));
    }
    out
}

fn vary_origin(h: &mut HeaderMap) {
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// The middleware of the reader routes: answers a preflight itself (204,
/// or 403 for an origin not allowed) and adds the headers to the rest.
pub(crate) async fn layer(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let cors = &app.cfg.cors;
    if cors.allow_origins.is_empty() {
        return next.run(req).await;
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let found = origin
            .as_deref()
            .map(|o| headers(cors, o, true))
            .unwrap_or_default();
        let status = if found.is_empty() {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::NO_CONTENT
        };
        let mut r = (status, Body::empty()).into_response();
        let h = r.headers_mut();
        h.extend(found);
        vary_origin(h);
        return r;
    }
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    if let Some(o) = origin.as_deref() {
        h.extend(headers(cors, o, false));
    }
    vary_origin(h);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], credentials: bool) -> Cors {
        Cors {
            allow_origins: origins.iter().map(|o| o.to_string()).collect(),
            allow_credentials: credentials,
        }
    }

    fn get<'a>(h: &'a [(HeaderName, HeaderValue)], name: &HeaderName) -> Option<&'a str> {
        h.iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.to_str().ok())
    }

    #[test]
    fn an_exact_origin_is_echoed_with_credentials_if_allowed() {
        let c = cors(&["https://status.example.com"], true);
        let h = headers(&c, "https://status.example.com", false);
        let origin = &header::ACCESS_CONTROL_ALLOW_ORIGIN;
        assert_eq!(get(&h, origin), Some("https://status.example.com"));
        let credentials = &header::ACCESS_CONTROL_ALLOW_CREDENTIALS;
        assert_eq!(get(&h, credentials), Some("true"));
        assert_eq!(
            get(&h, &header::ACCESS_CONTROL_EXPOSE_HEADERS),
            Some("ETag")
        );
        assert!(headers(&c, "https://evil.example.com", false).is_empty());
        assert!(headers(&c, "https://status.example.com:444", false).is_empty());
    }

    #[test]
    fn a_star_allows_any_origin_without_credentials() {
        let c = cors(&["*"], false);
        let h = headers(&c, "http://127.0.0.1:9999", true);
        assert_eq!(get(&h, &header::ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
        let credentials = &header::ACCESS_CONTROL_ALLOW_CREDENTIALS;
        assert_eq!(get(&h, credentials), None);
        let allow = get(&h, &header::ACCESS_CONTROL_ALLOW_HEADERS).unwrap_or("");
        assert!(allow.contains("Authorization") && allow.contains("Last-Event-ID"));
        assert_eq!(get(&h, &header::ACCESS_CONTROL_MAX_AGE), Some("600"));
    }

    #[test]
    fn off_gives_nothing() {
        assert!(headers(&Cors::default(), "https://a.example", true).is_empty());
    }
}
