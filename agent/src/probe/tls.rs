//! TLS in the probe: the handshake's facts (version, cipher, ALPN, leaf
//! expiry), taken inside the timed window as cheap copies and parsed after
//! the probe. Client configurations are built by [`crate::tls`] (re-exported
//! here for the probe's callers).

use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;

pub(crate) use crate::tls::server_name;
pub use crate::tls::{ProbeTls, TlsConfigError, TlsOptions, client_config, probe_tls};

/// What a handshake negotiated. Collected right after the handshake, with
/// nothing but copies; the certificate is parsed after the probe ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// "TLSv1.3" or "TLSv1.2".
    pub version: &'static str,
    /// The IANA name of the cipher suite.
    pub cipher: String,
    /// The ALPN protocol the server chose, if any.
    pub alpn: Option<String>,
    /// The leaf certificate's notAfter, Unix seconds.
    pub(crate) not_after: Option<i64>,
    /// The earliest notAfter over every certificate the server presented,
    /// Unix seconds (blackbox_exporter's `probe_ssl_earliest_cert_expiry`).
    pub earliest_not_after: Option<i64>,
    /// The earliest notAfter over the chain as verified, the trust anchor
    /// included where sonde has its certificate (blackbox_exporter's
    /// `probe_ssl_last_chain_expiry_timestamp_seconds`); `None` when the
    /// chain was not verified.
    pub chain_not_after: Option<i64>,
    /// The leaf certificate's identity (`probe_ssl_last_chain_info`).
    pub leaf: Option<CertSummary>,
}

/// A certificate's identity, as blackbox_exporter labels it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertSummary {
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint_sha256: String,
    /// The subject, formatted as Go's `pkix.Name.String()` does.
    pub subject: String,
    /// The issuer, formatted likewise.
    pub issuer: String,
    /// The DNS subject alternative names, comma separated.
    pub subject_alternative: String,
    /// The serial number, lowercase hex.
    pub serial: String,
}

impl TlsInfo {
    /// A TLSv1.3 handshake whose presented chain's earliest (and leaf's)
    /// notAfter is `not_after`, for other modules' tests.
    #[cfg(test)]
    pub(crate) fn for_tests(not_after: Option<i64>) -> TlsInfo {
        TlsInfo {
            version: "TLSv1.3",
            cipher: "TLS13_AES_128_GCM_SHA256".into(),
            alpn: None,
            not_after,
            earliest_not_after: not_after,
            chain_not_after: not_after,
            leaf: None,
        }
    }

    /// Whole days from `now` until the leaf certificate expires (negative
    /// once expired).
    pub fn days_left(&self, now: SystemTime) -> Option<i64> {
        let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
        let now = i64::try_from(now).ok()?;
        self.not_after.map(|t| (t - now).div_euclid(86_400))
    }
}

/// The raw facts of a finished handshake, taken inside the timed window
/// (cheap copies only). Turned into [`TlsInfo`] after the probe.
pub(crate) struct Negotiated {
    version: Option<rustls::ProtocolVersion>,
    cipher: Option<rustls::CipherSuite>,
    alpn: Option<Vec<u8>>,
    leaf: Option<CertificateDer<'static>>,
}

impl Negotiated {
    /// Reads what `conn` negotiated.
    pub(crate) fn of(conn: &rustls::ClientConnection) -> Self {
        Negotiated {
            version: conn.protocol_version(),
            cipher: conn.negotiated_cipher_suite().map(|s| s.suite()),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            leaf: conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|c| c.clone().into_owned()),
        }
    }

    /// True when the server chose HTTP/2.
    pub(crate) fn is_h2(&self) -> bool {
        self.alpn.as_deref() == Some(b"h2")
    }

    /// Parses the leaf and names the version and cipher.
    pub(crate) fn into_info(self) -> TlsInfo {
        let version = match self.version {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "unknown",
        };
        let cipher = self
            .cipher
            .and_then(|c| c.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{:?}", self.cipher));
        let not_after = self.leaf.as_ref().and_then(|der| {
            x509_parser::parse_x509_certificate(der)
                .ok()
                .map(|(_, cert)| cert.validity().not_after.timestamp())
        });
        TlsInfo {
            version,
            cipher,
            alpn: self.alpn.map(|a| String::from_utf8_lossy(&a).into_owned()),
            not_after,
            // STUB (engine part): not measured yet.
            earliest_not_after: not_after,
            chain_not_after: None,
            leaf: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_rounds_down_and_goes_negative() {
        let info = TlsInfo {
            version: "TLSv1.3",
            cipher: String::new(),
            alpn: None,
            not_after: Some(10 * 86_400),
            earliest_not_after: Some(10 * 86_400),
            chain_not_after: None,
            leaf: None,
        };
        let at = |s: u64| UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(info.days_left(at(0)), Some(10));
        assert_eq!(info.days_left(at(86_400 / 2)), Some(9));
        assert_eq!(info.days_left(at(11 * 86_400)), Some(-1));
    }
}
