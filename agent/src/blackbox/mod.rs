//! blackbox_exporter's `/probe?target=&module=` on the agent's metrics
//! listener, driven by the modules of a blackbox_exporter configuration
//! file: one probe per request, its gauges rendered as blackbox_exporter's
//! http prober names them (by [`crate::metrics::probe_exposition`]).
//!
//! - `config`: the YAML file → validated modules (pure).
//! - `module`: a module → a template probe, its files read, at load.
//! - `request`: the query, the timeout header, debug output (pure).
//!
//! Only the http prober; the answers (errors included) are
//! blackbox_exporter's handler's.

pub mod config;
pub mod module;
mod request;

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::sync::Semaphore;

pub use config::{BlackboxError, ErrorKind};
pub use module::Modules;
use request::{ProbeLog, Query};

use crate::probe::{IpVersion, Phase, ProbeFailure, ProbeReport, Prober, Timings};
use crate::result::CheckResult;

/// How many /probe requests run a probe at once; a request past it is
/// answered 503 at once (Prometheus records the scrape as failed, `up`
/// 0) rather than queued behind probes that may each take the module's
/// whole timeout. The listener holds at most 64 connections.
pub const MAX_CONCURRENT_PROBES: usize = 32;

/// blackbox_exporter's `--timeout-offset` default: what is kept from the
/// scrape's timeout for the answer to travel back.
pub const DEFAULT_TIMEOUT_OFFSET: Duration = Duration::from_millis(500);

/// The `/probe` endpoint: the loaded modules and the prober that runs them.
pub struct Endpoint {
    modules: RwLock<Arc<Modules>>,
    prober: Prober,
    timeout_offset: Duration,
    permits: Semaphore,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("timeout_offset", &self.timeout_offset)
            .finish_non_exhaustive()
    }
}

impl Default for Endpoint {
    /// No module: every request is an unknown module (the stub's interface).
    fn default() -> Self {
        Endpoint::new(
            Modules::default(),
            Prober::default(),
            DEFAULT_TIMEOUT_OFFSET,
        )
    }
}

impl Endpoint {
    /// An endpoint serving `modules`, probing with `prober`.
    pub fn new(modules: Modules, prober: Prober, timeout_offset: Duration) -> Endpoint {
        Endpoint {
            modules: RwLock::new(Arc::new(modules)),
            prober,
            timeout_offset,
            permits: Semaphore::new(MAX_CONCURRENT_PROBES),
        }
    }

    /// Serves `modules` from now on (a reload); probes in flight finish
    /// with the modules they started with.
    pub fn replace(&self, modules: Modules) {
        if let Ok(mut slot) = self.modules.write() {
            *slot = Arc::new(modules);
        }
    }

    fn modules(&self) -> Option<Arc<Modules>> {
        self.modules.read().ok().map(|m| Arc::clone(&m))
    }

    /// The response to `GET /probe?{query}` with the request's `headers`
    /// (the scrape timeout header among them).
    pub(crate) async fn respond(
        &self,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Response<Full<Bytes>> {
        let q = Query::parse(query.unwrap_or(""));
        let Some(modules) = self.modules() else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "modules unavailable");
        };
        let Some(module) = modules.by_name.get(&q.module).cloned() else {
            tracing::debug!(module = %q.module, "/probe: unknown module");
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Unknown module {}", request::go_quote(&q.module)),
            );
        };
        let header = headers
            .get("X-Prometheus-Scrape-Timeout-Seconds")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let timeout = match request::timeout(header.as_deref(), module.timeout, self.timeout_offset)
        {
            Ok(t) => t,
            Err(why) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("Failed to parse timeout from Prometheus header: {why}"),
                );
            }
        };
        let Some(target) = q.target.as_deref().filter(|t| !t.is_empty()) else {
            return error(StatusCode::BAD_REQUEST, "Target parameter is missing");
        };
        let mut spec = module.template.clone();
        if let Some(hostname) = q.hostname.as_deref().filter(|h| !h.is_empty()) {
            if let Some(set) = spec
                .headers
                .get(HOST)
                .filter(|v| v.as_bytes() != hostname.as_bytes())
            {
                let set = String::from_utf8_lossy(set.as_bytes()).into_owned();
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "host header defined both in module configuration ({set}) and with URL-parameter 'hostname' ({hostname})"
                    ),
                );
            }
            match HeaderValue::from_str(hostname) {
                Ok(v) => {
                    spec.headers.insert(HOST, v);
                    // The TLS name follows the Host header unless tls_config names one.
                    if !module.tls_server_name {
                        spec.server_name = Some(hostname.to_owned());
                    }
                }
                Err(_) => return error(StatusCode::BAD_REQUEST, "invalid hostname"),
            }
        }
        let Ok(_permit) = self.permits.try_acquire() else {
            tracing::debug!(module = %module.name, "/probe: too many probes in flight, 503");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("too many probes in flight (at most {MAX_CONCURRENT_PROBES} at once)"),
            );
        };
        let url = request::target_url(target);
        let shown_target = url
            .as_ref()
            .map(|u| crate::metrics::redact_url(u.as_str()))
            .unwrap_or_else(|_| "<unparsable>".into());
        let mut log = ProbeLog::new(&module.name, &shown_target);
        log.line(
            "info",
            "Beginning probe",
            &[
                ("probe", "http".into()),
                ("timeout_seconds", timeout.as_secs_f64().to_string()),
            ],
        );
        // Whether the failure's error is logged already.
        let mut logged = false;
        let report = match (url, module.broken.as_deref()) {
            (Ok(_), Some(why)) => {
                log.line(
                    "error",
                    "Error generating HTTP client",
                    &[("err", why.to_owned())],
                );
                logged = true;
                failed_before(
                    &spec,
                    wire::ErrorClass::LocalResource,
                    Phase::Connect,
                    why.to_owned(),
                )
            }
            (Ok(url), None) => {
                // tls_config.server_name is for TLS only: Host stays the target's.
                if module.tls_server_name
                    && !spec.headers.contains_key(HOST)
                    && let Some(host) = url.host_str()
                {
                    let authority = match url.port() {
                        Some(p) => format!("{host}:{p}"),
                        None => host.to_owned(),
                    };
                    if let Ok(v) = HeaderValue::from_str(&authority) {
                        spec.headers.insert(HOST, v);
                    }
                }
                // Go's client sends the URL's user info as basic auth
                // when the request has no Authorization of its own.
                if !spec.headers.contains_key(AUTHORIZATION)
                    && let Some(pair) = crate::probe::basic::userinfo(&url)
                    && let Ok(v) = crate::probe::basic::header(&pair)
                {
                    spec.headers.insert(AUTHORIZATION, v);
                }
                let host = url.host_str().unwrap_or("").to_owned();
                let family = match spec.ip_version {
                    IpVersion::V4 | IpVersion::Prefer4 => "ip4",
                    _ => "ip6",
                };
                log.line(
                    "info",
                    "Resolving target address",
                    &[("target", host.clone()), ("ip_protocol", family.into())],
                );
                let authority = spec
                    .headers
                    .get(HOST)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .unwrap_or_else(|| match url.port() {
                        Some(p) => format!("{host}:{p}"),
                        None => host.clone(),
                    });
                spec.url = url;
                spec.timeout = timeout;
                let report = self.prober.probe(&spec).await;
                // Written after the probe, from its report: nothing but
                // the I/O runs inside its timed window.
                if let Some(remote) = report.remote {
                    log.line(
                        "info",
                        "Resolved target address",
                        &[("target", host), ("ip", remote.ip().to_string())],
                    );
                }
                log.line(
                    "info",
                    "Making HTTP request",
                    &[("url", shown_target.clone()), ("host", authority)],
                );
                report
            }
            (Err(why), _) => {
                logged = true;
                log.line(
                    "error",
                    "Could not parse target URL",
                    &[("err", why.clone())],
                );
                failed_before(
                    &spec,
                    wire::ErrorClass::DnsError,
                    Phase::Dns,
                    format!("Could not parse target URL: {why}"),
                )
            }
        };
        if let Some(code) = report.status_code {
            log.line(
                "info",
                "Received HTTP response",
                &[("status_code", code.to_string())],
            );
        }
        // An unparsable target's error is logged once, as blackbox_exporter does.
        if let Some(f) = report.failure.as_ref().filter(|_| !logged) {
            log.line(
                "error",
                "Error for HTTP request",
                &[("err", f.detail.clone())],
            );
        }
        let duration = report.timings.total.as_secs_f64().to_string();
        let up = report.failure.is_none();
        if up {
            log.line("info", "Probe succeeded", &[("duration_seconds", duration)]);
        } else {
            log.line("error", "Probe failed", &[("duration_seconds", duration)]);
        }
        tracing::debug!(
            module = %module.name,
            target = %shown_target,
            success = up,
            status = ?report.status_code,
            seconds = report.timings.total.as_secs_f64(),
            "/probe"
        );
        let result = CheckResult::new(Arc::from(module.name.as_str()), &report);
        let format = exposition::Format::Text;
        let metrics = crate::metrics::probe_exposition(&result, format);
        if q.debug {
            let body = request::debug_output(&log.finish(), &metrics, &module.shown);
            return text(StatusCode::OK, "text/plain", body);
        }
        text(StatusCode::OK, format.content_type(), metrics)
    }
}

/// A report for a probe that fails before it starts (a target that is
/// not a URL, a module loaded broken), as blackbox_exporter's does.
fn failed_before(
    spec: &crate::probe::ProbeSpec,
    class: wire::ErrorClass,
    phase: Phase,
    why: String,
) -> ProbeReport {
    ProbeReport {
        started_at: SystemTime::now(),
        timings: Timings::default(),
        status_code: None,
        status: wire::Status::Down,
        failure: Some(ProbeFailure::new(class, phase, why)),
        dns: None,
        remote: None,
        chosen: None,
        http_version: None,
        tls: None,
        body_bytes: 0,
        redirects: 0,
        redirect_refused: false,
        final_url: spec.url.clone(),
        headers: None,
        body: None,
        content_length: None,
        decoded_body_bytes: 0,
        last_modified: None,
        failed_due_to_regex: false,
        final_tls: None,
        request: None,
    }
}

/// As Go's `http.Error`: the text and a newline, plain text, nosniff.
fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut r = text(status, "text/plain; charset=utf-8", format!("{message}\n"));
    r.headers_mut().insert(
        "X-Content-Type-Options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
mod tests;
