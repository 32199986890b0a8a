//! TLS client configurations, built in one place for the probes and the
//! gateway sink: which roots are trusted, a client identity for mutual
//! TLS, the `insecure` opt-in, the ALPN offered. Built once per set of
//! options, outside any timed window; session resumption is off, so every
//! probe pays for (and measures) a full handshake, as a fresh client would.
//!
//! It decodes nothing itself: PEM goes through `config::pem`, from the
//! validated plan or (for the CLI's flags) from files read here.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// The protocols a probe offers in ALPN, in order of preference.
pub const PROBE_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];
/// The gateway sink speaks HTTP/2 only.
pub(crate) const GATEWAY_ALPN: [&[u8]; 1] = [b"h2"];

/// Which certificates a client trusts.
///
/// Every user today names a CA *in addition to* the system roots (a
/// check's `tls.ca_file`, a gateway's `ca_file`, `--cacert`), as README
/// documents; [`Roots::Only`] is the "the named CA replaces the system
/// roots" choice, used by tests so that they never depend on the machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Roots {
    /// The system trust store.
    System,
    /// The system trust store and these certificates.
    SystemAnd(Arc<[CertificateDer<'static>]>),
    /// These certificates only.
    Only(Arc<[CertificateDer<'static>]>),
}

impl Roots {
    /// The system roots, plus `ca` when one is named.
    pub(crate) fn with_ca(ca: Option<&config::Certificates>) -> Roots {
        match ca {
            Some(ca) => Roots::SystemAnd(ca.certs.clone()),
            None => Roots::System,
        }
    }
}

/// What a client configuration is built from: material already decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientTls {
    /// Whom to trust (unused with `insecure`).
    pub(crate) roots: Roots,
    /// Certificate chain and key for mutual TLS, known to match.
    pub(crate) identity: Option<config::ClientCert>,
    /// Skip certificate verification (the handshake's signatures are still checked).
    pub(crate) insecure: bool,
}

impl ClientTls {
    /// The TLS settings of a validated check.
    pub(crate) fn of_check(tls: &config::Tls) -> ClientTls {
        ClientTls {
            roots: Roots::with_ca(tls.ca.as_ref()),
            identity: tls.client_cert.clone(),
            insecure: tls.insecure,
        }
    }
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A PEM file named on the command line could not be read.
    #[error("{what} {path}: {source}")]
    Read {
        /// Which file this is ("CA file", "client certificate", ...).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A PEM file does not hold what it should.
    #[error("{what} {path} {source}")]
    Pem {
        /// Which file this is.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What is wrong with it.
        source: config::pem::PemError,
    },
    /// A client key that is not the key of its certificate.
    #[error("client key {key}: not the key of the certificate in {cert}: {reason}")]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
        /// rustls' reason.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// No trust anchor at all: no system roots found and no CA given.
    #[error("no trusted roots: the system store is empty and no CA file was given")]
    NoRoots,
}

/// Builds a client configuration offering `alpn`.
pub(crate) fn build(tls: &ClientTls, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if tls.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
    } else {
        let mut roots = RootCertStore::empty();
        let extra = match &tls.roots {
            Roots::System => &[][..],
            Roots::SystemAnd(extra) => extra,
            Roots::Only(only) => only,
        };
        if !matches!(tls.roots, Roots::Only(_)) {
            roots.add_parsable_certificates(system_roots().iter().cloned());
        }
        for cert in extra.iter() {
            roots.add(cert.clone())?;
        }
        if roots.is_empty() {
            return Err(TlsConfigError::NoRoots);
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match &tls.identity {
        Some(id) => builder.with_client_auth_cert(id.cert.certs.to_vec(), id.key.expose().der())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// The TLS files of the command line (`--cacert`, `--cert`, `--key`) and tests.
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

/// Builds a probe's client configuration for `opts`, reading its files.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let ca = match &opts.ca_file {
        Some(path) => Some(read("CA file", path, config::pem::trust_anchors)?),
        None => None,
    };
    let roots = match (ca, opts.no_system_roots) {
        (Some(ca), false) => Roots::SystemAnd(ca.into()),
        (Some(ca), true) => Roots::Only(ca.into()),
        (None, false) => Roots::System,
        (None, true) => Roots::Only(Arc::from([])),
    };
    let identity = match &opts.client_cert {
        Some((cert, key)) => Some(identity(cert, key)?),
        None => None,
    };
    let tls = ClientTls {
        roots,
        identity,
        insecure: opts.insecure,
    };
    build(&tls, &PROBE_ALPN)
}

fn identity(cert: &Path, key: &Path) -> Result<config::ClientCert, TlsConfigError> {
    let chain = read("client certificate", cert, config::pem::certificates)?;
    let der = read("client key", key, config::pem::private_key)?;
    config::pem::check_pair(&chain, &der).map_err(|reason| TlsConfigError::KeyMismatch {
        key: key.to_owned(),
        cert: cert.to_owned(),
        reason,
    })?;
    Ok(config::ClientCert {
        cert: config::Certificates {
            path: cert.to_owned(),
            certs: chain.into(),
        },
        key: config::Secret::new(
            config::SecretSource::File(key.to_owned()),
            config::PrivateKey::new(der),
        ),
    })
}

fn read<T>(
    what: &'static str,
    path: &Path,
    decode: impl FnOnce(&[u8]) -> Result<T, config::pem::PemError>,
) -> Result<T, TlsConfigError> {
    let bytes = std::fs::read(path).map_err(|source| TlsConfigError::Read {
        what,
        path: path.to_owned(),
        source,
    })?;
    decode(&bytes).map_err(|source| TlsConfigError::Pem {
        what,
        path: path.to_owned(),
        source,
    })
}

/// The system trust store, read once per process. Unreadable entries are
/// skipped, as curl does; an empty store is reported by the caller if
/// nothing else is trusted.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// The name to present in SNI and to verify the certificate against.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned())
        .map_err(|e| format!("invalid TLS server name {host:?}: {e}"))
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
