//! TLS: the client configuration a check's probes share, the handshake,
//! and what the handshake negotiated (version, cipher, ALPN, leaf expiry).
//!
//! The configuration is built once per set of TLS options, outside any timed
//! window: system roots, an extra CA file, a client certificate, or an
//! explicit `insecure` opt-in. Session resumption is off, so every probe
//! pays for (and measures) a full handshake, as a fresh client would.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// The TLS options of a check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Extra CA certificates (PEM), trusted in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain and private key (PEM), for mTLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Skip certificate verification (the handshake's signatures are still checked).
    pub insecure: bool,
    /// Skip the system roots (only `ca_file` is trusted). Used by tests so a
    /// probe never depends on the machine's trust store.
    pub no_system_roots: bool,
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A PEM file could not be read or parsed.
    #[error("{what} {path}: {cause}")]
    Pem {
        /// Which file this is ("CA file", "client certificate", ...).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The reader's error (part of the message, not a separate source).
        cause: rustls_pki_types::pem::Error,
    },
    /// A PEM file held no certificate.
    #[error("{what} {path}: no certificate found")]
    Empty {
        /// Which file this is.
        what: &'static str,
        /// Its path.
        path: PathBuf,
    },
    /// rustls refused the configuration (bad key, mismatched certificate).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// No trust anchor at all: no system roots found and no CA file given.
    #[error("no trusted roots: the system store is empty and no CA file was given")]
    NoRoots,
}

/// The protocol the ALPN offers, in order of preference.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Builds the shared client configuration for `opts`, reading its files.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let extra_roots = match &opts.ca_file {
        Some(path) => read_certs("CA file", path, CertificateDer::pem_file_iter(path))?,
        None => Vec::new(),
    };
    let client = match &opts.client_cert {
        Some((cert, key)) => {
            let chain = read_certs(
                "client certificate",
                cert,
                CertificateDer::pem_file_iter(cert),
            )?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|cause| TlsConfigError::Pem {
                what: "client key",
                path: key.clone(),
                cause,
            })?;
            Some((chain, key))
        }
        None => None,
    };
    build(extra_roots, client, opts.insecure, opts.no_system_roots)
}

/// PEM bytes with the path they came from (for error messages).
pub type PemBytes = (PathBuf, Vec<u8>);

/// TLS material already read (by the configuration loader): PEM bytes,
/// with the paths they came from for error messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PemTls {
    /// Extra CA certificates: (origin, PEM).
    pub ca: Option<PemBytes>,
    /// Client certificate and key: ((origin, PEM), (origin, PEM)).
    pub client: Option<(PemBytes, PemBytes)>,
    /// Skip certificate verification.
    pub insecure: bool,
}

/// Builds the shared client configuration from material already in memory.
pub fn client_config_from_pem(pem: &PemTls) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let extra_roots = match &pem.ca {
        Some((path, bytes)) => {
            read_certs("CA file", path, Ok(CertificateDer::pem_slice_iter(bytes)))?
        }
        None => Vec::new(),
    };
    let client = match &pem.client {
        Some(((cert_path, cert), (key_path, key))) => {
            let chain = read_certs(
                "client certificate",
                cert_path,
                Ok(CertificateDer::pem_slice_iter(cert)),
            )?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|cause| TlsConfigError::Pem {
                what: "client key",
                path: key_path.clone(),
                cause,
            })?;
            Some((chain, key))
        }
        None => None,
    };
    build(extra_roots, client, pem.insecure, false)
}

type ClientIdentity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn build(
    extra_roots: Vec<CertificateDer<'static>>,
    client: Option<ClientIdentity>,
    insecure: bool,
    no_system_roots: bool,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
    } else {
        let mut roots = RootCertStore::empty();
        if !no_system_roots {
            roots.add_parsable_certificates(system_roots().iter().cloned());
        }
        for cert in extra_roots {
            roots.add(cert)?;
        }
        if roots.is_empty() {
            return Err(TlsConfigError::NoRoots);
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// The system trust store, read once per process. Unreadable entries are
/// skipped, as curl does; an empty store is reported by the caller if
/// nothing else is trusted.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

fn read_certs<'a>(
    what: &'static str,
    path: &Path,
    certs: Result<
        impl Iterator<Item = Result<CertificateDer<'a>, rustls_pki_types::pem::Error>>,
        rustls_pki_types::pem::Error,
    >,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let pem = |cause| TlsConfigError::Pem {
        what,
        path: path.to_owned(),
        cause,
    };
    let certs = certs
        .map_err(pem)?
        .map(|c| c.map(CertificateDer::into_owned))
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(TlsConfigError::Empty {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The name to present in SNI and to verify the certificate against.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned())
        .map_err(|e| format!("invalid TLS server name {host:?}: {e}"))
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
    pub not_after: Option<i64>,
}

impl TlsInfo {
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
pub struct Negotiated {
    version: Option<rustls::ProtocolVersion>,
    cipher: Option<rustls::CipherSuite>,
    alpn: Option<Vec<u8>>,
    leaf: Option<CertificateDer<'static>>,
}

impl Negotiated {
    /// Reads what `conn` negotiated.
    pub fn of(conn: &rustls::ClientConnection) -> Self {
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
    pub fn is_h2(&self) -> bool {
        self.alpn.as_deref() == Some(b"h2")
    }

    /// Parses the leaf and names the version and cipher.
    pub fn into_info(self) -> TlsInfo {
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
        }
    }
}

/// The `insecure` verifier: any certificate is accepted, but the handshake
/// signatures are still verified, so the session is at least with the
/// holder of the presented key.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
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
        };
        let at = |s: u64| UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(info.days_left(at(0)), Some(10));
        assert_eq!(info.days_left(at(86_400 / 2)), Some(9));
        assert_eq!(info.days_left(at(11 * 86_400)), Some(-1));
    }

    #[test]
    fn missing_ca_file_names_the_file() {
        let opts = TlsOptions {
            ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            no_system_roots: true,
            ..TlsOptions::default()
        };
        let err = client_config(&opts)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("CA file /nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn no_roots_is_an_error() {
        let opts = TlsOptions {
            no_system_roots: true,
            ..TlsOptions::default()
        };
        assert!(matches!(client_config(&opts), Err(TlsConfigError::NoRoots)));
    }

    #[test]
    fn insecure_needs_no_roots_and_offers_alpn() {
        let opts = TlsOptions {
            insecure: true,
            no_system_roots: true,
            ..TlsOptions::default()
        };
        let config = client_config(&opts).ok();
        let alpn = config.map(|c| c.alpn_protocols.clone()).unwrap_or_default();
        assert_eq!(alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }
}
