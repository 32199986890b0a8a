//! From the validated configuration to what the engine runs: each
//! `config::Check` becomes a `ProbeSpec`. Nothing is parsed or read again
//! (the plan carries the method, headers, regex and certificates compiled);
//! TLS configurations are shared between checks with the same TLS options
//! (10 000 checks with the defaults build one), and the system trust store
//! is read once.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use rustls::ClientConfig;

use crate::probe::{BodyAssertion, Expectations, ProbeSpec};
use crate::tls::{self, ClientTls, TlsConfigError};

/// Why a validated check still could not become a probe: only what the
/// configuration cannot know, such as an empty system trust store.
#[derive(Debug, thiserror::Error)]
#[error("check {check:?}: {source}")]
pub struct SpecError {
    /// The check.
    pub(crate) check: String,
    /// Why its TLS configuration could not be built.
    pub(crate) source: TlsConfigError,
}

/// Builds probe specs, sharing TLS configurations.
#[derive(Default)]
pub(crate) struct SpecBuilder {
    tls: HashMap<ClientTls, Arc<ClientConfig>>,
}

impl SpecBuilder {
    /// The probe spec for `check`.
    pub(crate) fn spec(&mut self, check: &config::Check) -> Result<ProbeSpec, SpecError> {
        let options = ClientTls::of_check(&check.tls);
        let tls = match self.tls.get(&options) {
            Some(config) => config.clone(),
            None => {
                let config =
                    tls::build(&options, &tls::PROBE_ALPN).map_err(|source| SpecError {
                        check: check.name.clone(),
                        source,
                    })?;
                self.tls.insert(options, config.clone());
                config
            }
        };
        let mut spec = ProbeSpec::new(check.url.clone(), tls);
        spec.method = check.method.clone();
        spec.headers = check.header_map.clone();
        spec.body = check.body.clone().map(Bytes::from).unwrap_or_default();
        spec.timeout = check.timeout;
        spec.ip_version = check.ip_version;
        spec.dns_server = check.dns_server;
        spec.resolution_delay = check.resolution_delay;
        spec.server_name = check.tls.server_name.clone();
        spec.expect = Expectations {
            statuses: check.expect_status.clone(),
            body: match (&check.body_contains, &check.body_matches) {
                (Some(text), _) => vec![BodyAssertion::Contains(text.clone())],
                (None, Some(pattern)) => vec![BodyAssertion::Matches(pattern.regex().clone())],
                (None, None) => Vec::new(),
            },
            ..Expectations::default()
        };
        spec.max_redirects = u32::from(check.follow_redirects);
        spec.allow_insecure_redirect = check.allow_insecure_redirect;
        spec.max_body_bytes = check.max_body_bytes;
        Ok(spec)
    }

    /// How many distinct TLS configurations were built.
    pub(crate) fn tls_configs(&self) -> usize {
        self.tls.len()
    }
}
