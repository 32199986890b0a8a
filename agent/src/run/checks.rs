//! From the validated configuration to what the engine runs: each
//! `config::Check` becomes a `ProbeSpec`. TLS configurations are shared
//! between checks with the same TLS options (10 000 checks with the
//! defaults build one), and the system trust store is read once.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use hyper::Method;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use rustls::ClientConfig;

use crate::probe::tls::{self, PemTls, TlsConfigError};
use crate::probe::{BodyAssertion, Expectations, IpVersion, ProbeSpec};

/// Why a validated check still could not become a probe.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Its TLS material was rejected by rustls.
    #[error("check {check:?}: {source}")]
    Tls {
        /// The check.
        check: String,
        /// The error.
        source: TlsConfigError,
    },
    /// A method or header the HTTP layer refuses.
    #[error("check {check:?}: {what}")]
    Http {
        /// The check.
        check: String,
        /// What was wrong.
        what: String,
    },
}

/// Builds probe specs, sharing TLS configurations.
#[derive(Default)]
pub struct SpecBuilder {
    tls: HashMap<PemTls, Arc<ClientConfig>>,
}

impl SpecBuilder {
    /// The probe spec for `check`.
    pub fn spec(&mut self, check: &config::Check) -> Result<ProbeSpec, SpecError> {
        let name = || check.name.clone();
        let pem = PemTls {
            ca: check
                .tls
                .ca
                .as_ref()
                .map(|f| (f.path.clone(), f.pem.clone())),
            client: check.tls.client_cert.as_ref().map(|c| {
                (
                    (c.cert.path.clone(), c.cert.pem.clone()),
                    (c.cert.path.clone(), c.key.expose().clone()),
                )
            }),
            insecure: check.tls.insecure,
        };
        let tls = match self.tls.get(&pem) {
            Some(config) => config.clone(),
            None => {
                let config =
                    tls::client_config_from_pem(&pem).map_err(|source| SpecError::Tls {
                        check: name(),
                        source,
                    })?;
                self.tls.insert(pem, config.clone());
                config
            }
        };
        let mut spec = ProbeSpec::new(check.url.clone(), tls);
        spec.method = Method::from_bytes(check.method.as_bytes()).map_err(|e| SpecError::Http {
            check: name(),
            what: format!("method {:?}: {e}", check.method),
        })?;
        let mut headers = HeaderMap::with_capacity(check.headers.len());
        for h in &check.headers {
            let bad = |e: &dyn std::fmt::Display| SpecError::Http {
                check: name(),
                what: format!("header {:?}: {e}", h.name),
            };
            let header_name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|e| bad(&e))?;
            let mut value = HeaderValue::from_str(h.value.expose()).map_err(|e| bad(&e))?;
            if matches!(h.value, config::HeaderValue::Secret(_)) {
                value.set_sensitive(true);
            }
            headers.append(header_name, value);
        }
        spec.headers = headers;
        spec.body = check.body.clone().map(Bytes::from).unwrap_or_default();
        spec.timeout = check.timeout;
        spec.ip_version = match check.ip_version {
            config::IpVersion::Auto => IpVersion::Auto,
            config::IpVersion::V4 => IpVersion::V4,
            config::IpVersion::V6 => IpVersion::V6,
        };
        spec.dns_server = check.dns_server;
        spec.server_name = check.tls.server_name.clone();
        spec.expect = Expectations {
            statuses: check.expect_status.clone(),
            body: match (&check.body_contains, &check.body_matches) {
                (Some(text), _) => Some(BodyAssertion::Contains(text.clone())),
                (None, Some(pattern)) => Some(BodyAssertion::Matches(
                    regex::bytes::Regex::new(pattern.regex().as_str()).map_err(|e| {
                        SpecError::Http {
                            check: name(),
                            what: format!("body_matches: {e}"),
                        }
                    })?,
                )),
                (None, None) => None,
            },
        };
        spec.max_redirects = u32::from(check.follow_redirects);
        spec.max_body_bytes = check.max_body_bytes;
        Ok(spec)
    }

    /// How many distinct TLS configurations were built.
    pub fn tls_configs(&self) -> usize {
        self.tls.len()
    }
}
