//! A test PKI from rcgen: a CA, intermediate CAs (with their own validity
//! window), server leaves with a chosen validity window,
//! an untrusted self-signed leaf, client certificates for mTLS, and PEM files
//! on disk for `--cacert` / `--cert` / `--key`.
//!
//! Keys are ECDSA P-256 (fast to generate, accepted by rustls and nginx).
//! Crypto comes from rustls' ring provider, named explicitly so the process
//! default provider never matters. Nothing here touches the network.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

const DAY: Duration = Duration::from_secs(86_400);

/// The crypto provider testkit uses everywhere (rustls' ring provider).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From one day ago to 90 days from now.
    Valid,
    /// From 30 days ago to one day ago.
    Expired,
    /// From one day from now to 30 days from now.
    NotYetValid,
    /// From one day ago until `now + duration`, for "days left" checks.
    ExpiresIn(Duration),
    /// An explicit window (truncated to whole seconds, as X.509 stores it).
    Window {
        /// First instant of validity.
        not_before: SystemTime,
        /// Last instant of validity.
        not_after: SystemTime,
    },
}

impl Validity {
    /// The window as (not_before, not_after), whole seconds.
    fn window(self, now: SystemTime) -> (SystemTime, SystemTime) {
        let (nb, na) = match self {
            Validity::Valid => (now - DAY, now + 90 * DAY),
            Validity::Expired => (now - 30 * DAY, now - DAY),
            Validity::NotYetValid => (now + DAY, now + 30 * DAY),
            Validity::ExpiresIn(d) => (now - DAY, now + d),
            Validity::Window {
                not_before,
                not_after,
            } => (not_before, not_after),
        };
        (whole_seconds(nb), whole_seconds(na))
    }
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A certificate authority for tests. Leaves it issues chain to [`Ca::cert_der`].
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    /// For an intermediate: its own certificate and those of the
    /// intermediates above it (not the root), as a server presents them
    /// after the leaf; empty for a root.
    chain: Vec<(CertificateDer<'static>, String)>,
    not_after: SystemTime,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Default for Ca {
    fn default() -> Self {
        Ca::new()
    }
}

impl Ca {
    /// A fresh CA ("sonde test CA"), valid from a day ago for ten years.
    pub fn new() -> Ca {
        Ca::with_validity(Validity::ExpiresIn(3650 * DAY))
    }

    /// A fresh root CA ("sonde test CA") valid over `validity` (a trust
    /// anchor's own dates are not checked in verification, so one that
    /// expires first still verifies).
    pub fn with_validity(validity: Validity) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "sonde test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let (not_before, not_after) = validity.window(SystemTime::now());
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let key = KeyPair::generate().expect("testkit: generating the CA key");
        let cert = params
            .self_signed(&key)
            .expect("testkit: self-signing the CA certificate");
        let not_after = params.not_after.into();
        Ca {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
            chain: Vec::new(),
            not_after,
        }
    }

    /// An intermediate CA (CN = `name`) issued by this one, valid over
    /// `validity`. Leaves it issues present it (and the intermediates
    /// above it) after themselves; the root stays the trust anchor.
    pub fn intermediate(&self, name: &str, validity: Validity) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.use_authority_key_identifier_extension = true;
        let (not_before, not_after) = validity.window(SystemTime::now());
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let key = KeyPair::generate().expect("testkit: generating an intermediate CA key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("testkit: signing an intermediate CA certificate");
        let mut chain = vec![(cert.der().clone(), cert.pem())];
        chain.extend(self.chain.iter().cloned());
        Ca {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
            chain,
            not_after,
        }
    }

    /// The last instant the CA certificate is valid (whole seconds).
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A root store holding only this CA.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.cert_der.clone())
            .expect("testkit: adding the CA to a root store");
        roots
    }

    /// A server leaf for `names` (DNS names or IP literals), valid now.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_with(names, Validity::Valid)
    }

    /// A server leaf for `names` with the given validity window.
    pub fn leaf_with(&self, names: &[&str], validity: Validity) -> Leaf {
        let params = leaf_params(names, validity, ExtendedKeyUsagePurpose::ServerAuth);
        let mut leaf = Leaf::issue(params, Some(&self.issuer));
        leaf.intermediates = self.chain.clone();
        leaf
    }

    /// A client certificate (CN = `name`) for mTLS, valid now.
    pub fn client_cert(&self, name: &str) -> Leaf {
        let mut params = leaf_params(&[], Validity::Valid, ExtendedKeyUsagePurpose::ClientAuth);
        params.distinguished_name.push(DnType::CommonName, name);
        Leaf::issue(params, Some(&self.issuer))
    }

    /// Writes the CA certificate (`ca.pem`) into a fresh temp dir.
    pub fn pem_files(&self) -> PemFiles {
        let dir = tempfile::tempdir().expect("testkit: creating a temp dir for PEM files");
        let ca_cert = write(dir.path(), "ca.pem", &self.cert_pem);
        PemFiles {
            dir,
            ca_cert,
            client_cert: None,
            client_key: None,
        }
    }

    /// Writes `ca.pem`, `client.pem` and `client-key.pem` into a fresh temp dir.
    pub fn pem_files_with_client(&self, client: &Leaf) -> PemFiles {
        let mut files = self.pem_files();
        let (cert, key) = client.write_pem(files.dir.path(), "client");
        files.client_cert = Some(cert);
        files.client_key = Some(key);
        files
    }

    /// A rustls client config trusting only this CA, offering `alpn`
    /// (e.g. `&[b"h2", b"http/1.1"]`), for tests that drive a target directly.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("testkit: ring supports the default TLS versions")
            .with_root_certificates(self.root_store())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// Like [`Ca::client_config`], presenting `client` for mTLS.
    pub fn client_config_with_cert(&self, alpn: &[&[u8]], client: &Leaf) -> Arc<ClientConfig> {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("testkit: ring supports the default TLS versions")
            .with_root_certificates(self.root_store())
            .with_client_auth_cert(client.cert_chain(), client.private_key())
            .expect("testkit: building a client config with a client certificate");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

fn leaf_params(
    names: &[&str],
    validity: Validity,
    eku: ExtendedKeyUsagePurpose,
) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names.clone())
        .unwrap_or_else(|e| panic!("testkit: invalid certificate names {names:?}: {e}"));
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    let (not_before, not_after) = validity.window(SystemTime::now());
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    params
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents)
        .unwrap_or_else(|e| panic!("testkit: writing {}: {e}", path.display()));
    path
}

/// A certificate with its private key: a server leaf or a client certificate.
#[derive(Clone)]
pub struct Leaf {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    key_der: Vec<u8>,
    key_pem: String,
    not_after: SystemTime,
    not_before: SystemTime,
    /// The intermediates presented after the leaf (DER, PEM), nearest first.
    intermediates: Vec<(CertificateDer<'static>, String)>,
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Leaf {
    /// A self-signed server leaf issued by no CA: clients must reject it as untrusted.
    pub fn self_signed(names: &[&str], validity: Validity) -> Leaf {
        let params = leaf_params(names, validity, ExtendedKeyUsagePurpose::ServerAuth);
        Leaf::issue(params, None)
    }

    fn issue(params: CertificateParams, issuer: Option<&Issuer<'static, KeyPair>>) -> Leaf {
        let key = KeyPair::generate().expect("testkit: generating a leaf key");
        let cert = match issuer {
            Some(issuer) => params.signed_by(&key, issuer),
            None => params.self_signed(&key),
        }
        .expect("testkit: signing a leaf certificate");
        Leaf {
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
            not_before: params.not_before.into(),
            not_after: params.not_after.into(),
            intermediates: Vec::new(),
        }
    }

    /// The last instant the certificate is valid (whole seconds), for "days left".
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The first instant the certificate is valid (whole seconds).
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The chain to present: the leaf, then the intermediates of the CA
    /// that issued it, if any (the root is the trust anchor).
    pub fn cert_chain(&self) -> Vec<CertificateDer<'static>> {
        let mut chain = vec![self.cert_der.clone()];
        chain.extend(self.intermediates.iter().map(|(der, _)| der.clone()));
        chain
    }

    /// The chain to present, PEM: the leaf, then the intermediates.
    pub fn chain_pem(&self) -> String {
        let mut pem = self.cert_pem.clone();
        for (_, p) in &self.intermediates {
            pem.push_str(p);
        }
        pem
    }

    /// The private key (PKCS#8 DER).
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PEM (PKCS#8 "PRIVATE KEY").
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The chain and key as a rustls `CertifiedKey` (ring provider).
    pub fn certified_key(&self) -> Arc<rustls::sign::CertifiedKey> {
        let key = rustls::sign::CertifiedKey::from_der(
            self.cert_chain(),
            self.private_key(),
            &provider(),
        )
        .expect("testkit: loading the leaf key into rustls");
        Arc::new(key)
    }

    /// A rustls server config presenting this leaf and offering `alpn`; if
    /// `client_ca` is given, clients must present a certificate it issued.
    pub fn server_config(&self, alpn: &[&[u8]], client_ca: Option<&Ca>) -> Arc<ServerConfig> {
        server_config(self, alpn, client_ca.map(Ca::root_store))
    }

    /// Writes `{stem}.pem` (the chain to present: the certificate, then
    /// any intermediates) and `{stem}-key.pem` into `dir`; returns
    /// (certificate path, key path).
    pub fn write_pem(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        (
            write(dir, &format!("{stem}.pem"), &self.chain_pem()),
            write(dir, &format!("{stem}-key.pem"), &self.key_pem),
        )
    }
}

/// PEM files in a temp dir (removed on drop) for `--cacert` / `--cert` / `--key`.
#[derive(Debug)]
pub struct PemFiles {
    /// The directory holding the files; dropped with this value.
    pub dir: tempfile::TempDir,
    /// The CA certificate (`ca.pem`).
    pub ca_cert: PathBuf,
    /// The client certificate (`client.pem`), if one was written.
    pub client_cert: Option<PathBuf>,
    /// The client key (`client-key.pem`), if one was written.
    pub client_key: Option<PathBuf>,
}

/// A server config presenting `leaf`, offering `alpn`, requiring client
/// certificates that chain to `client_roots` if given.
pub(crate) fn server_config(
    leaf: &Leaf,
    alpn: &[&[u8]],
    client_roots: Option<RootCertStore>,
) -> Arc<ServerConfig> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("testkit: ring supports the default TLS versions");
    let builder = match client_roots {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .expect("testkit: building the client certificate verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(leaf.cert_chain(), leaf.private_key())
        .expect("testkit: configuring the server certificate");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}
