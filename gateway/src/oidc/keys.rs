//! An issuer's signing keys, parsed from a JWKS document (pure): asymmetric
//! keys only, at most [`MAX_KEYS`], each with the algorithms it may verify.

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize;

/// The most keys kept of one JWKS document; providers publish two or three.
pub const MAX_KEYS: usize = 32;

/// The largest JWKS document read.
pub const MAX_JWKS_BYTES: usize = 256 << 10;

/// One usable key.
pub struct Key {
    /// Its `kid`, if the document gave one.
    pub kid: Option<String>,
    /// The algorithm the document pins it to, if any.
    pub alg: Option<Algorithm>,
    /// The key.
    pub key: DecodingKey,
}

/// The usable keys of one JWKS document.
#[derive(Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self.keys.iter().map(|k| k.kid.as_deref()).collect();
        f.debug_struct("KeySet").field("kids", &kids).finish()
    }
}

/// Why a JWKS document gave no keys.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// Not a JSON object with a `keys` array.
    #[error("not a JWKS document (a JSON object with a `keys` array): {0}")]
    NotJwks(String),
    /// Larger than [`MAX_JWKS_BYTES`].
    #[error("larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// Every key was symmetric, for encryption or unreadable.
    #[error("no usable signing key among its {0} keys (RSA, EC P-256/P-384 or Ed25519)")]
    NoUsableKey(usize),
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

/// The algorithms a key of `family` may verify (never HMAC: a public key
/// used as a shared secret is the classic JWT forgery).
fn family_allows(family: AlgorithmFamily, alg: Algorithm) -> bool {
    family != AlgorithmFamily::Hmac && alg.family() == family
}

fn pinned(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

impl KeySet {
    /// The usable keys of a JWKS document; keys it cannot use are skipped
    /// (and counted in the error when none is left).
    pub fn parse(bytes: &[u8]) -> Result<KeySet, JwksError> {
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        let doc: Document =
            serde_json::from_slice(bytes).map_err(|e| JwksError::NotJwks(e.to_string()))?;
        let total = doc.keys.len();
        let keys: Vec<Key> = doc
            .keys
            .into_iter()
            .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
            .filter(|jwk| jwk.common.public_key_use != Some(PublicKeyUse::Encryption))
            .filter(|jwk| {
                !matches!(
                    jwk.algorithm,
                    AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_)
                )
            })
            .filter_map(|jwk| {
                let alg = match jwk.common.key_algorithm {
                    None => None,
                    // Pinned to something not for signatures: not ours.
                    Some(a) => Some(pinned(a)?),
                };
                let key = DecodingKey::from_jwk(&jwk).ok()?;
                if alg.is_some_and(|a| !family_allows(key.family(), a)) {
                    return None;
                }
                Some(Key {
                    kid: jwk.common.key_id.clone(),
                    alg,
                    key,
                })
            })
            .take(MAX_KEYS)
            .collect();
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey(total));
        }
        Ok(KeySet { keys })
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key at `at` (from [`KeySet::position`]).
    pub fn key(&self, at: usize) -> &DecodingKey {
        &self.keys[at].key
    }

    /// The key that verifies a token signed with `alg` under `kid`: the
    /// one with that kid (a token without a kid: the only key that fits),
    /// if its type and pinned algorithm allow `alg`.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&DecodingKey> {
        self.position(kid, alg).map(|at| self.key(at))
    }

    /// Where [`KeySet::find`]'s key is.
    pub fn position(&self, kid: Option<&str>, alg: Algorithm) -> Option<usize> {
        let fits = |k: &&Key| {
            family_allows(k.key.family(), alg) && k.alg.is_none_or(|pinned| pinned == alg)
        };
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .position(|k| k.kid.as_deref() == Some(kid) && fits(&k)),
            None => {
                let mut fitting = self.keys.iter().enumerate().filter(|(_, k)| fits(k));
                let (one, _) = fitting.next()?;
                fitting.next().is_none().then_some(one)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An Ed25519 public key (RFC 8037's example) and a P-256 one (RFC 7517 A.1).
    const ED: &str = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"ed"}"#;
    const EC: &str = r#"{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","use":"sig","kid":"ec","alg":"ES256"}"#;

    fn set(keys: &[&str]) -> Result<KeySet, JwksError> {
        KeySet::parse(format!(r#"{{"keys":[{}]}}"#, keys.join(",")).as_bytes())
    }

    #[test]
    fn keys_are_found_by_kid_and_algorithm() {
        let s = set(&[ED, EC]).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.find(Some("ed"), Algorithm::EdDSA).is_some());
        assert!(s.find(Some("ec"), Algorithm::ES256).is_some());
        // The wrong family, a pinned algorithm, an unknown kid.
        assert!(s.find(Some("ed"), Algorithm::ES256).is_none());
        assert!(s.find(Some("ec"), Algorithm::ES384).is_none());
        assert!(s.find(Some("nope"), Algorithm::EdDSA).is_none());
        // No kid: the one key that fits, never a guess between two.
        assert!(s.find(None, Algorithm::EdDSA).is_some());
        let two = set(&[ED, &ED.replace("\"ed\"", "\"ed2\"")]).unwrap();
        assert!(two.find(None, Algorithm::EdDSA).is_none());
    }

    #[test]
    fn symmetric_and_encryption_keys_are_never_used() {
        let hmac = r#"{"kty":"oct","k":"c2VjcmV0","kid":"h"}"#;
        let enc = EC.replace("\"sig\"", "\"enc\"");
        assert!(matches!(set(&[hmac, &enc]), Err(JwksError::NoUsableKey(2))));
        let s = set(&[hmac, ED]).unwrap();
        assert!(s.find(Some("h"), Algorithm::HS256).is_none());
        assert!(s.find(None, Algorithm::HS256).is_none());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"[]",
            b"{\"keys\": 3}",
            b"\xff\xfe",
            b"{\"keys\":[{\"kty\":\"RSA\"}]}",
        ] {
            assert!(
                KeySet::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(
            KeySet::parse(&vec![b' '; MAX_JWKS_BYTES + 1]),
            Err(JwksError::TooLarge)
        ));
    }
}
