//! TLS in the probe: the handshake's facts (version, cipher, ALPN, the
//! presented chain), taken inside the timed window as cheap copies and
//! parsed after the probe (expiries, the leaf's identity: `cert`). Client configurations are built by [`crate::tls`] (re-exported
//! here for the probe's callers).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;

use crate::tls::AnchorIndex;

pub(crate) use crate::tls::server_name;
pub use crate::tls::{ProbeTls, TlsConfigError, TlsOptions, client_config, probe_tls};

/// A presented certificate's facts the chain expiries need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainCert {
    pub(crate) not_after: i64,
    /// The issuer's name, raw DER.
    pub(crate) issuer: Vec<u8>,
}

/// The earliest notAfter over the presented chain and the last
/// presented certificate's trust anchor (blackbox_exporter's
/// `probe_ssl_last_chain_expiry_timestamp_seconds`, over the chain Go
/// verified: rustls does not expose that path, so the presented chain
/// stands for it). `None` without anchors (nothing was verified) or
/// without a parsable certificate.
pub(crate) fn chain_not_after(chain: &[ChainCert], anchors: Option<&AnchorIndex>) -> Option<i64> {
    let anchors = anchors?;
    let presented = chain.iter().map(|c| c.not_after).min()?;
    let root = chain
        .last()
        .and_then(|last| anchors.not_after_of(&last.issuer));
    Some(root.map_or(presented, |root| root.min(presented)))
}

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
    /// Which presented certificate expires first: 0 is the leaf.
    pub earliest_index: Option<usize>,
    /// The subject (Go's format) of the certificate that expires first.
    pub earliest_subject: Option<String>,
    /// The earliest notAfter over the chain as verified, the trust anchor
    /// included where sonde has its certificate (blackbox_exporter's
    /// `probe_ssl_last_chain_expiry_timestamp_seconds`); `None` when the
    /// chain was not verified (`insecure`, where blackbox_exporter, having
    /// no verified chain, reports Go's zero time, -62135596800).
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
            earliest_index: not_after.map(|_| 0),
            earliest_subject: None,
            chain_not_after: not_after,
            leaf: None,
        }
    }

    /// Whole days from `now` until the leaf certificate expires (negative
    /// once expired).
    pub fn days_left(&self, now: SystemTime) -> Option<i64> {
        days_until(self.not_after, now)
    }

    /// Whole days from `now` until the first presented certificate expires
    /// (negative once expired).
    pub fn earliest_days_left(&self, now: SystemTime) -> Option<i64> {
        days_until(self.earliest_not_after, now)
    }
}

fn days_until(at: Option<i64>, now: SystemTime) -> Option<i64> {
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let now = i64::try_from(now).ok()?;
    at.map(|t| (t - now).div_euclid(86_400))
}

/// The raw facts of a finished handshake, taken inside the timed window
/// (cheap copies only). Turned into [`TlsInfo`] after the probe.
pub(crate) struct Negotiated {
    version: Option<rustls::ProtocolVersion>,
    cipher: Option<rustls::CipherSuite>,
    alpn: Option<Vec<u8>>,
    /// The presented chain, leaf first.
    chain: Vec<CertificateDer<'static>>,
    /// What the configuration trusts (`None`: it verified nothing).
    anchors: Option<Arc<AnchorIndex>>,
}

impl Negotiated {
    /// Reads what `conn` negotiated; `anchors` are the configuration's.
    pub(crate) fn of(conn: &rustls::ClientConnection, anchors: Option<Arc<AnchorIndex>>) -> Self {
        Negotiated {
            version: conn.protocol_version(),
            cipher: conn.negotiated_cipher_suite().map(|s| s.suite()),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            chain: conn
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
            anchors,
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
        let parsed: Vec<_> = self
            .chain
            .iter()
            .map(|der| {
                x509_parser::parse_x509_certificate(der)
                    .ok()
                    .map(|(_, c)| c)
            })
            .collect();
        let not_after = parsed
            .first()
            .and_then(Option::as_ref)
            .map(|c| c.validity().not_after.timestamp());
        let earliest = parsed
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (c.validity().not_after.timestamp(), i)))
            .min();
        let earliest_subject = earliest
            .and_then(|(_, i)| parsed.get(i))
            .and_then(Option::as_ref)
            .map(super::cert::subject);
        let chain: Vec<ChainCert> = parsed
            .iter()
            .flatten()
            .map(|c| ChainCert {
                not_after: c.validity().not_after.timestamp(),
                issuer: c.issuer().as_raw().to_vec(),
            })
            .collect();
        let leaf = match (self.chain.first(), parsed.first()) {
            (Some(der), Some(Some(cert))) => Some(super::cert::summary(der, cert)),
            _ => None,
        };
        TlsInfo {
            version,
            cipher,
            alpn: self.alpn.map(|a| String::from_utf8_lossy(&a).into_owned()),
            not_after,
            earliest_not_after: earliest.map(|(at, _)| at),
            earliest_index: earliest.map(|(_, i)| i),
            earliest_subject,
            chain_not_after: chain_not_after(&chain, self.anchors.as_deref()),
            leaf,
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
            earliest_not_after: Some(5 * 86_400),
            earliest_index: Some(1),
            earliest_subject: None,
            chain_not_after: None,
            leaf: None,
        };
        let at = |s: u64| UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(info.days_left(at(0)), Some(10));
        assert_eq!(info.days_left(at(86_400 / 2)), Some(9));
        assert_eq!(info.days_left(at(11 * 86_400)), Some(-1));
        assert_eq!(info.earliest_days_left(at(0)), Some(5));
    }

    fn cert(not_after: i64, issuer: &[u8]) -> ChainCert {
        ChainCert {
            not_after,
            issuer: issuer.to_vec(),
        }
    }

    #[test]
    fn the_chain_expiry_needs_anchors_and_takes_the_earliest() {
        let chain = [cert(300, b"inter"), cert(100, b"root")];
        assert_eq!(chain_not_after(&chain, None), None, "insecure");
        let unknown = AnchorIndex::default();
        assert_eq!(chain_not_after(&chain, Some(&unknown)), Some(100));
        assert_eq!(chain_not_after(&[], Some(&unknown)), None);
        let anchors = AnchorIndex::for_tests(vec![(b"root".to_vec(), 50), (b"other".to_vec(), 10)]);
        assert_eq!(
            chain_not_after(&chain, Some(&anchors)),
            Some(50),
            "the root counts"
        );
        let later_root = AnchorIndex::for_tests(vec![(b"root".to_vec(), 500)]);
        assert_eq!(chain_not_after(&chain, Some(&later_root)), Some(100));
    }
}
