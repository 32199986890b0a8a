//! TLS client configurations, built in one place for the probes and the
//! gateway sink: which roots are trusted (a named CA replaces the system
//! roots unless both are asked for, as in curl), a client identity for
//! mutual TLS, the `insecure` opt-in, the ALPN offered. Built once per set
//! of options, outside any timed window, and only when a TLS hop needs one
//! ([`ProbeTls`]); session resumption is off, so every probe pays for (and
//! measures) a full handshake, as a fresh client would.
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
/// A CA the user names (a check's `tls.ca_file`, a gateway's `ca_file`,
/// `--cacert`) replaces the system roots, as in curl and blackbox_exporter;
/// `system_roots = true` (`--system-roots`) trusts both.
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
    /// `ca` alone, or beside the system roots when `system_roots`; the
    /// system roots when no CA is named.
    pub(crate) fn of(ca: Option<Arc<[CertificateDer<'static>]>>, system_roots: bool) -> Roots {
        match (ca, system_roots) {
            (Some(ca), true) => Roots::SystemAnd(ca),
            (Some(ca), false) => Roots::Only(ca),
            (None, _) => Roots::System,
        }
    }

    /// Whether building a configuration reads the system trust store.
    fn reads_system_store(&self) -> bool {
        !matches!(self, Roots::Only(_))
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
    /// Offer TLS 1.3 only (blackbox_exporter's `min_version: TLS13`);
    /// otherwise 1.2 and 1.3, all rustls speaks.
    pub(crate) tls13_only: bool,
}

impl ClientTls {
    /// The TLS settings of a validated check.
    pub(crate) fn of_check(tls: &config::Tls) -> ClientTls {
        ClientTls {
            roots: Roots::of(tls.ca.as_ref().map(|ca| ca.certs.clone()), tls.system_roots),
            identity: tls.client_cert.clone(),
            insecure: tls.insecure,
            tls13_only: false,
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
    let builder = ClientConfig::builder_with_provider(provider.clone());
    let builder = if tls.tls13_only {
        builder.with_protocol_versions(&[&rustls::version::TLS13])?
    } else {
        builder.with_safe_default_protocol_versions()?
    };
    let builder = if tls.insecure {
        // No verification: no roots are read at all.
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
    } else {
        builder.with_root_certificates(root_store(&tls.roots)?)
    };
    let mut config = match &tls.identity {
        Some(id) => builder.with_client_auth_cert(id.cert.certs.to_vec(), id.key.expose().der())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// The trust store for `roots`: the system's certificates (read once per
/// process) only when `roots` includes them.
fn root_store(roots: &Roots) -> Result<RootCertStore, TlsConfigError> {
    let mut store = RootCertStore::empty();
    if roots.reads_system_store() {
        store.add_parsable_certificates(system_roots().iter().cloned());
    }
    let named = match roots {
        Roots::System => &[][..],
        Roots::SystemAnd(named) | Roots::Only(named) => named,
    };
    for cert in named.iter() {
        store.add(cert.clone())?;
    }
    if store.is_empty() {
        return Err(TlsConfigError::NoRoots);
    }
    Ok(store)
}

/// The trust anchors' subjects (raw DER) and notAfter, so the engine can
/// find the root a presented chain ends in (rustls does not say which path
/// it verified) without reading the store again. Indexed on the first
/// lookup, which comes after a probe, never inside its timed window nor
/// in the configuration's build; the system store's part once per process.
#[derive(Debug)]
pub struct AnchorIndex {
    roots: Roots,
    index: OnceLock<Index>,
}

#[derive(Debug)]
struct Index {
    system: Option<Arc<[Anchor]>>,
    named: Vec<Anchor>,
}

#[derive(Debug)]
struct Anchor {
    subject: Vec<u8>,
    not_after: i64,
}

impl Default for AnchorIndex {
    /// No anchor known.
    fn default() -> Self {
        AnchorIndex::of(Roots::Only(Arc::from([])))
    }
}

impl AnchorIndex {
    fn of(roots: Roots) -> AnchorIndex {
        AnchorIndex {
            roots,
            index: OnceLock::new(),
        }
    }

    /// An index of `(subject, notAfter)` pairs, for other modules' tests.
    #[cfg(test)]
    pub(crate) fn for_tests(entries: Vec<(Vec<u8>, i64)>) -> AnchorIndex {
        let index = AnchorIndex::default();
        let named = entries
            .into_iter()
            .map(|(subject, not_after)| Anchor { subject, not_after })
            .collect();
        let _ = index.index.set(Index {
            system: None,
            named,
        });
        index
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            let named = match &self.roots {
                Roots::System => &[][..],
                Roots::SystemAnd(named) | Roots::Only(named) => named,
            };
            Index {
                system: self.roots.reads_system_store().then(system_anchors),
                named: anchors(named),
            }
        })
    }

    /// The notAfter of a trusted certificate whose subject is `name`
    /// (compared as raw DER), if there is one; the earliest if several.
    pub(crate) fn not_after_of(&self, name: &[u8]) -> Option<i64> {
        let index = self.index();
        let system = index.system.as_deref().unwrap_or_default();
        system
            .iter()
            .chain(&index.named)
            .filter(|a| a.subject == name)
            .map(|a| a.not_after)
            .min()
    }
}

fn anchors(certs: &[CertificateDer<'_>]) -> Vec<Anchor> {
    certs
        .iter()
        .filter_map(|der| {
            let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
            Some(Anchor {
                subject: cert.subject().as_raw().to_vec(),
                not_after: cert.validity().not_after.timestamp(),
            })
        })
        .collect()
}

/// The system store's anchors, indexed once per process.
fn system_anchors() -> Arc<[Anchor]> {
    static ANCHORS: OnceLock<Arc<[Anchor]>> = OnceLock::new();
    ANCHORS
        .get_or_init(|| anchors(system_roots()).into())
        .clone()
}

/// A built probe configuration and, unless it verifies nothing, the index
/// of what it trusts.
struct Built {
    config: Arc<ClientConfig>,
    anchors: Option<Arc<AnchorIndex>>,
}

fn build_probe(options: &ClientTls) -> Result<Built, TlsConfigError> {
    let config = build(options, &PROBE_ALPN)?;
    let anchors = (!options.insecure).then(|| Arc::new(AnchorIndex::of(options.roots.clone())));
    Ok(Built { config, anchors })
}

/// A probe's TLS client configuration, built the first time a hop needs
/// it: `sonde probe http://…` never reads the system trust store, and a
/// redirect to https builds it then. Clones share one configuration.
#[derive(Clone)]
pub struct ProbeTls(Arc<LazyConfig>);

enum LazyConfig {
    Ready(Built),
    Lazy {
        options: ClientTls,
        built: OnceLock<Result<Built, TlsConfigError>>,
    },
}

impl ProbeTls {
    /// A configuration built already, trusting `anchors` (`None`: it
    /// verifies nothing, or what it trusts is not known, and its probes
    /// report no chain expiry; [`probe_tls`] knows the anchors).
    pub fn ready(config: Arc<ClientConfig>, anchors: Option<Arc<AnchorIndex>>) -> ProbeTls {
        ProbeTls(Arc::new(LazyConfig::Ready(Built { config, anchors })))
    }

    /// A probe configuration of `options`, built now (the scheduled
    /// checks': an empty trust store fails at startup, not in a probe),
    /// with the index of what it trusts.
    pub(crate) fn built(options: &ClientTls) -> Result<ProbeTls, TlsConfigError> {
        let built = build_probe(options)?;
        Ok(ProbeTls(Arc::new(LazyConfig::Ready(built))))
    }

    /// A probe configuration of `options`, built when first asked for.
    fn lazy(options: ClientTls) -> ProbeTls {
        ProbeTls(Arc::new(LazyConfig::Lazy {
            options,
            built: OnceLock::new(),
        }))
    }

    /// The configuration, built now if it was not yet (outside any timed
    /// window: the engine asks before a hop's clock starts).
    pub fn config(&self) -> Result<&Arc<ClientConfig>, &TlsConfigError> {
        self.get().map(|b| &b.config)
    }

    /// The index of the trust anchors (built with the configuration);
    /// `None` when the configuration verifies nothing (`insecure`) or
    /// could not be built.
    pub fn anchors(&self) -> Option<&Arc<AnchorIndex>> {
        self.get().ok().and_then(|b| b.anchors.as_ref())
    }

    fn get(&self) -> Result<&Built, &TlsConfigError> {
        match &*self.0 {
            LazyConfig::Ready(built) => Ok(built),
            LazyConfig::Lazy { options, built } => {
                built.get_or_init(|| build_probe(options)).as_ref()
            }
        }
    }

    /// Whether the configuration has been built (tests: what a probe loaded).
    pub fn is_built(&self) -> bool {
        match &*self.0 {
            LazyConfig::Ready(_) => true,
            LazyConfig::Lazy { built, .. } => built.get().is_some(),
        }
    }
}

impl From<Arc<ClientConfig>> for ProbeTls {
    /// What the configuration trusts is not known: no chain expiry.
    fn from(config: Arc<ClientConfig>) -> ProbeTls {
        ProbeTls::ready(config, None)
    }
}

impl std::fmt::Debug for ProbeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.is_built() {
            "built"
        } else {
            "not built yet"
        };
        f.debug_tuple("ProbeTls").field(&state).finish()
    }
}

/// The TLS files of the command line (`--cacert`, `--system-roots`,
/// `--cert`, `--key`) and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA certificates (PEM) to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// With `ca_file`, trust the system roots too; without it they are
    /// always trusted.
    pub system_roots: bool,
    /// Client certificate chain and private key (PEM), for mTLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Skip certificate verification (the handshake's signatures are still checked).
    pub insecure: bool,
}

/// Builds a probe's client configuration for `opts` now, reading its files.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsConfigError> {
    build(&client_tls(opts)?, &PROBE_ALPN)
}

/// A probe's client configuration for `opts`: the files are read and
/// checked now, the configuration (and with it the system trust store,
/// when it is used) is built when a TLS hop first needs it.
pub fn probe_tls(opts: &TlsOptions) -> Result<ProbeTls, TlsConfigError> {
    Ok(ProbeTls::lazy(client_tls(opts)?))
}

/// [`probe_tls`] offering TLS 1.3 only when `tls13_only`.
pub(crate) fn probe_tls_versions(
    opts: &TlsOptions,
    tls13_only: bool,
) -> Result<ProbeTls, TlsConfigError> {
    let mut tls = client_tls(opts)?;
    tls.tls13_only = tls13_only;
    Ok(ProbeTls::lazy(tls))
}

fn client_tls(opts: &TlsOptions) -> Result<ClientTls, TlsConfigError> {
    let ca = match &opts.ca_file {
        Some(path) => Some(read("CA file", path, config::pem::trust_anchors)?),
        None => None,
    };
    let identity = match &opts.client_cert {
        Some((cert, key)) => Some(identity(cert, key)?),
        None => None,
    };
    Ok(ClientTls {
        roots: Roots::of(ca.map(Into::into), opts.system_roots),
        identity,
        insecure: opts.insecure,
        tls13_only: false,
    })
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
    // Bounded and regular files only: `--cacert /dev/zero` is refused.
    let bytes = config::file::read_bounded(path).map_err(|e| TlsConfigError::Read {
        what,
        path: path.to_owned(),
        source: e.into(),
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

    fn ca_certs() -> Arc<[CertificateDer<'static>]> {
        Arc::from([testkit::pki::Ca::new().cert_der().clone()])
    }

    #[test]
    fn missing_ca_file_names_the_file() {
        let opts = TlsOptions {
            ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..TlsOptions::default()
        };
        let err = probe_tls(&opts)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("CA file /nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn a_named_ca_replaces_the_system_roots_unless_both_are_asked_for() {
        let ca = ca_certs();
        assert_eq!(Roots::of(Some(ca.clone()), false), Roots::Only(ca.clone()));
        assert_eq!(
            Roots::of(Some(ca.clone()), true),
            Roots::SystemAnd(ca.clone())
        );
        assert_eq!(Roots::of(None, false), Roots::System);
        assert_eq!(Roots::of(None, true), Roots::System);
    }

    /// The store holds exactly what the roots name: the CA alone, or the
    /// CA beside every parsable system root. (On a machine whose system
    /// store is empty the two counts coincide; the CLI test with
    /// SSL_CERT_FILE covers that case end to end.)
    #[test]
    fn the_root_store_holds_the_system_roots_only_when_asked() {
        let ca = ca_certs();
        let only = root_store(&Roots::Only(ca.clone())).map(|s| s.len()).ok();
        assert_eq!(only, Some(1));
        let system =
            RootCertStore::empty().add_parsable_certificates(system_roots().iter().cloned());
        let both = root_store(&Roots::SystemAnd(ca)).map(|s| s.len()).ok();
        assert_eq!(both, Some(1 + system.0));
    }

    #[test]
    fn the_anchor_index_finds_a_root_by_its_subject() {
        let root = testkit::pki::Ca::new();
        let other = testkit::pki::Ca::new();
        let inter = root.intermediate("idx", testkit::pki::Validity::Valid);
        let (_, parsed) =
            x509_parser::parse_x509_certificate(inter.cert_der()).unwrap_or_else(|e| panic!("{e}"));
        let issuer = parsed.issuer().as_raw();
        let index = AnchorIndex::of(Roots::Only(Arc::from([root.cert_der().clone()])));
        assert!(index.index.get().is_none(), "indexed on first lookup only");
        let expected = root
            .not_after()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .ok();
        assert_eq!(index.not_after_of(issuer), expected);
        // Every testkit CA has the same subject: by name, not by key.
        let by_name = AnchorIndex::of(Roots::Only(Arc::from([other.cert_der().clone()])));
        assert!(by_name.not_after_of(issuer).is_some());
        assert_eq!(AnchorIndex::default().not_after_of(issuer), None);
    }

    #[test]
    fn no_roots_is_an_error() {
        assert!(matches!(
            root_store(&Roots::Only(Arc::from([]))),
            Err(TlsConfigError::NoRoots)
        ));
    }

    #[test]
    fn a_lazy_config_is_built_on_first_use_only() {
        let tls = ClientTls {
            roots: Roots::Only(ca_certs()),
            identity: None,
            insecure: false,
            tls13_only: false,
        };
        let lazy = ProbeTls::lazy(tls);
        assert!(!lazy.is_built());
        assert!(lazy.clone().config().is_ok());
        assert!(lazy.is_built(), "clones share one configuration");
    }

    #[test]
    fn insecure_needs_no_roots_and_offers_alpn() {
        let opts = TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        };
        let config = client_config(&opts).ok();
        let alpn = config.map(|c| c.alpn_protocols.clone()).unwrap_or_default();
        assert_eq!(alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }
}
