//! PEM certificates and private keys: decoded, and checked the way rustls
//! will use them (trust anchors, a key it can sign with, a key that belongs
//! to its certificate). Pure functions over bytes; reading the files is
//! the caller's (validation through [`crate::Host`], the CLI directly).
//!
//! Uses rustls' ring provider, the one the agent builds its clients with.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a PEM file cannot be used. Messages never quote the file's contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    /// No `-----BEGIN ...LABEL-----` line at all.
    #[error("holds no PEM {label}")]
    NoBlock {
        /// `CERTIFICATE` or `PRIVATE KEY`.
        label: &'static str,
    },
    /// A block that is not valid base64 DER.
    #[error("holds a {what} that does not decode: {reason}")]
    Decode {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The decoder's reason.
        reason: String,
    },
    /// A certificate rustls refuses as a trust anchor.
    #[error("holds a certificate that cannot be a trust anchor: {0}")]
    NotAnchor(String),
    /// A key of a type or form rustls cannot sign with.
    #[error("holds a key that cannot sign: {0}")]
    CannotSign(String),
}

impl PemError {
    /// What the file should hold, for "(valid: ...)".
    pub fn valid(&self) -> String {
        match self {
            PemError::NoBlock { label } => {
                format!("a PEM file with a -----BEGIN ...{label}----- block")
            }
            PemError::Decode { what, .. } => {
                format!("PEM (base64 DER between the BEGIN and END lines of a {what})")
            }
            PemError::NotAnchor(_) => "X.509 CA certificates in PEM".into(),
            PemError::CannotSign(_) => {
                "an RSA, ECDSA or Ed25519 private key in PEM (PKCS#8, PKCS#1 or SEC1)".into()
            }
        }
    }
}

fn has_block(bytes: &[u8], label: &'static str) -> Result<(), PemError> {
    let text = String::from_utf8_lossy(bytes);
    let found = text
        .lines()
        .any(|l| l.starts_with("-----BEGIN ") && l.trim_end().ends_with(&format!("{label}-----")));
    if found {
        Ok(())
    } else {
        Err(PemError::NoBlock { label })
    }
}

/// Every certificate in `bytes`, in order (at least one).
pub fn certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemError> {
    has_block(bytes, "CERTIFICATE")?;
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemError::Decode {
            what: "certificate",
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(PemError::NoBlock {
            label: "CERTIFICATE",
        });
    }
    Ok(certs)
}

/// The certificates in `bytes`, each accepted by rustls as a trust anchor.
pub fn trust_anchors(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = certificates(bytes)?;
    let mut store = rustls::RootCertStore::empty();
    for cert in &certs {
        store
            .add(cert.clone())
            .map_err(|e| PemError::NotAnchor(e.to_string()))?;
    }
    Ok(certs)
}

/// The first private key in `bytes`, one rustls can sign with.
pub fn private_key(bytes: &[u8]) -> Result<PrivateKeyDer<'static>, PemError> {
    has_block(bytes, "PRIVATE KEY")?;
    let key = PrivateKeyDer::from_pem_slice(bytes).map_err(|e| PemError::Decode {
        what: "private key",
        reason: e.to_string(),
    })?;
    rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| PemError::CannotSign(e.to_string()))?;
    Ok(key)
}

/// Whether `key` is the key of `chain`'s leaf, as rustls checks when it
/// takes the pair; the error is rustls' reason.
pub fn check_pair(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<(), String> {
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain.to_vec(), key.clone_key(), &provider)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
