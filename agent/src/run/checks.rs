//! From the validated configuration to what the engine runs: each
//! `config::Check` becomes a `ProbeSpec`. Nothing is parsed or read again
//! (the plan carries the method, headers, regex and certificates compiled);
//! TLS configurations are shared between checks with the same TLS options
//! (10 000 checks with the defaults build one), each with the index of what
//! it trusts (for the chain expiry; none for `insecure`), and the system
//! trust store is read once.

use std::collections::HashMap;

use bytes::Bytes;

use crate::probe::{BodyAssertion, Compression, Expectations, ProbeSpec, ProbeTls};
use crate::tls::{ClientTls, TlsConfigError};

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
    tls: HashMap<ClientTls, ProbeTls>,
}

impl SpecBuilder {
    /// The probe spec for `check`.
    pub(crate) fn spec(&mut self, check: &config::Check) -> Result<ProbeSpec, SpecError> {
        let options = ClientTls::of_check(&check.tls);
        let tls = match self.tls.get(&options) {
            Some(config) => config.clone(),
            None => {
                let config = ProbeTls::built(&options).map_err(|source| SpecError {
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
        spec.compression = compression(check.compression);
        Ok(spec)
    }

    /// How many distinct TLS configurations were built.
    pub(crate) fn tls_configs(&self) -> usize {
        self.tls.len()
    }
}

/// A check's `compression` as the engine takes it (`identity`: nothing to
/// decode).
fn compression(c: config::Compression) -> Option<Compression> {
    match c {
        config::Compression::Auto => Some(Compression::Auto),
        config::Compression::Gzip => Some(Compression::Gzip),
        config::Compression::Brotli => Some(Compression::Brotli),
        config::Compression::Deflate => Some(Compression::Deflate),
        config::Compression::Identity => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checks_compression_reaches_its_spec() {
        let mut specs = SpecBuilder::default();
        let spec = specs
            .spec(&check("insecure = true"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.compression, Some(Compression::Auto), "the default");
        assert_eq!(spec.proxy, None, "agents never use a proxy");
        assert_eq!(compression(config::Compression::Identity), None);
        assert_eq!(
            compression(config::Compression::Brotli),
            Some(Compression::Brotli)
        );
    }

    fn check(tls: &str) -> config::Check {
        let text = format!(
            "[agent]\nid = \"t\"\n[[check]]\nname = \"c\"\nurl = \"https://a.test/\"\n\
             interval = \"1m\"\ntls = {{ {tls} }}\n"
        );
        let plan = config::parse(&text, "t.toml", &config::SystemHost)
            .unwrap_or_else(|e| panic!("plan: {e}\n{text}"));
        plan.checks
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no check"))
    }

    #[test]
    fn scheduled_checks_know_their_anchors() {
        let ca = testkit::pki::Ca::new();
        let pem = ca.pem_files();
        let mut specs = SpecBuilder::default();
        let ca_file = format!("ca_file = {:?}", pem.ca_cert.display().to_string());
        let spec = specs
            .spec(&check(&ca_file))
            .unwrap_or_else(|e| panic!("{e}"));
        let anchors = spec.tls.anchors().unwrap_or_else(|| panic!("no anchors"));
        let (_, cert) =
            x509_parser::parse_x509_certificate(ca.cert_der()).unwrap_or_else(|e| panic!("{e}"));
        let not_after = ca
            .not_after()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .ok();
        assert_eq!(anchors.not_after_of(cert.subject().as_raw()), not_after);
        // The same options share one configuration.
        let again = specs
            .spec(&check(&ca_file))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(again.tls.anchors().is_some());
        assert_eq!(specs.tls_configs(), 1);
        // insecure verifies nothing: no anchors, so no chain expiry.
        let insecure = specs
            .spec(&check("insecure = true"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(insecure.tls.anchors().is_none());
        assert_eq!(specs.tls_configs(), 2);
    }
}
