//! Readers signed in with their organisation's identity provider: a JWT
//! bearer token verified against its issuer's JWKS, its scope read from
//! its claims (PROTOCOL.md 3.11).
//!
//! - `claims`: the scope a verified token's claims grant (pure).
//! - `keys`: an issuer's usable keys, parsed from a JWKS document (pure).
//! - `fetch`: the one GET that brings a JWKS document.
//!
//! Keys are refreshed in the background every `jwks_refresh`; a token
//! signed by a key not yet known (a rotation) triggers one fetch, at most
//! every [`MIN_REFETCH`] per issuer, so made-up `kid`s cannot make the
//! gateway hammer the provider. A token is never logged.

pub mod claims;
pub mod fetch;
pub mod keys;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use crate::auth::Reader;
use crate::config::{JwksSource, OidcIssuer};
use claims::ScopeError;
use keys::KeySet;

/// The least time between two fetches of one issuer's keys for an
/// unknown `kid`.
pub const MIN_REFETCH: Duration = Duration::from_secs(30);

/// The first wait after a failed background fetch; it doubles up to the
/// issuer's `jwks_refresh`.
const RETRY_FIRST: Duration = Duration::from_secs(5);

/// Why a bearer token that looks like a JWT was refused. The texts go to
/// the client (never the token itself) and to debug logs.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts, or a header or claims that are not JSON.
    #[error("not a well-formed JWT")]
    Malformed,
    /// `iss` names no `[[oidc]]` issuer.
    #[error("issuer {0:?} is not configured")]
    UnknownIssuer(String),
    /// The header's `alg` is not one the issuer allows.
    #[error("algorithm {0:?} is not allowed for this issuer")]
    Algorithm(Algorithm),
    /// The issuer's keys have not been loaded yet.
    #[error("the issuer's keys are not loaded yet ({0})")]
    NoKeys(String),
    /// No key of the issuer has this `kid` (after a refetch).
    #[error("no key of the issuer has kid {0:?}")]
    UnknownKey(String),
    /// The signature, `exp`, `nbf`, `iss` or `aud` did not hold.
    #[error("{0}")]
    Invalid(&'static str),
    /// Valid, but it grants nothing.
    #[error(transparent)]
    Scope(#[from] ScopeError),
}

/// A claim value from an unverified token, cut short for messages.
fn shown(text: &str) -> String {
    text.chars().take(100).collect()
}

/// One `[[oidc]]` issuer and the keys fetched for it.
struct Issuer {
    cfg: OidcIssuer,
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Why the last load failed, while no keys are held.
    last_error: RwLock<String>,
    /// When keys were last loaded for an unknown `kid` (serialises them).
    refetched: tokio::sync::Mutex<Option<Instant>>,
    tls: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

impl Issuer {
    async fn load(&self) -> Result<KeySet, String> {
        let bytes = match &self.cfg.keys {
            JwksSource::File(path) => {
                config::file::read_bounded(path).map_err(|e| format!("{}: {e}", path.display()))?
            }
            JwksSource::Url(url) => {
                let uri = fetch::check_url(url).map_err(|e| e.to_string())?;
                let tls = self
                    .tls
                    .get_or_init(|| {
                        fetch::tls_client(self.cfg.ca_file.as_deref()).map_err(|e| e.to_string())
                    })
                    .clone()?;
                fetch::get(&uri, &tls)
                    .await
                    .map_err(|e| format!("{url}: {e}"))?
            }
        };
        KeySet::parse(&bytes).map_err(|e| format!("{}: {e}", self.cfg.keys))
    }

    /// Loads the keys and keeps them; a failure keeps the keys held.
    async fn refresh(&self) -> Result<usize, String> {
        match self.load().await {
            Ok(set) => {
                let n = set.len();
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(set));
                Ok(n)
            }
            Err(why) => {
                *self.last_error.write().unwrap_or_else(|e| e.into_inner()) = why.clone();
                Err(why)
            }
        }
    }

    fn held(&self) -> Option<Arc<KeySet>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The key for `kid`/`alg`, refetching once (rate-limited) when the
    /// held keys lack it.
    async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<(Arc<KeySet>, usize), TokenError> {
        let position = |set: &KeySet| set.position(kid, alg);
        if let Some(set) = self.held()
            && let Some(i) = position(&set)
        {
            return Ok((set, i));
        }
        {
            let mut last = self.refetched.lock().await;
            // Another request may have refetched while this one waited.
            let fresh = self.held().and_then(|s| position(&s).map(|i| (s, i)));
            if let Some(found) = fresh {
                return Ok(found);
            }
            if last.is_none_or(|t| t.elapsed() >= MIN_REFETCH) {
                // A first load that succeeds (a token that came before
                // the start-up load finished) leaves the budget to the
                // first rotation; a failed one or a refetch spends it.
                let had_keys = self.held().is_some();
                let loaded = self.refresh().await;
                if had_keys || loaded.is_err() {
                    *last = Some(Instant::now());
                }
                if let Err(why) = loaded {
                    tracing::warn!(issuer = %self.cfg.issuer, %why, "oidc: loading the issuer's keys failed");
                }
            }
        }
        match self.held() {
            None => Err(TokenError::NoKeys(
                self.last_error
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            )),
            Some(set) => match position(&set) {
                Some(i) => Ok((set, i)),
                None => Err(TokenError::UnknownKey(shown(kid.unwrap_or("")))),
            },
        }
    }
}

/// Every configured issuer.
pub struct Verifier {
    issuers: Vec<Arc<Issuer>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.issuers.iter().map(|i| &i.cfg.issuer).collect();
        f.debug_struct("Verifier").field("issuers", &names).finish()
    }
}

/// Whether a token has a JWT's shape: three base64url parts (the first
/// two non-empty).
pub fn looks_like_jwt(token: &[u8]) -> bool {
    let mut parts = token.split(|&b| b == b'.');
    let b64 = |p: &[u8]| {
        p.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    };
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(c), Some(s), None) => {
            !h.is_empty() && !c.is_empty() && b64(h) && b64(c) && b64(s)
        }
        _ => false,
    }
}

fn invalid(kind: &JwtErrorKind) -> TokenError {
    TokenError::Invalid(match kind {
        JwtErrorKind::ExpiredSignature => "the token has expired",
        JwtErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
        JwtErrorKind::InvalidAudience => "the token's audience (aud) is not this gateway's",
        JwtErrorKind::InvalidIssuer => "the token's issuer (iss) does not match",
        JwtErrorKind::InvalidSignature => "the token's signature does not verify",
        JwtErrorKind::MissingRequiredClaim(c) if c == "exp" => "the token has no exp",
        JwtErrorKind::MissingRequiredClaim(c) if c == "aud" => "the token has no aud",
        JwtErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
        JwtErrorKind::InvalidAlgorithm => "the token's algorithm does not fit its key",
        _ => "the token could not be verified",
    })
}

impl Verifier {
    /// A verifier of `issuers`; no keys are loaded until [`Verifier::refresh_forever`] runs.
    pub fn new(issuers: &[OidcIssuer]) -> Verifier {
        Verifier {
            issuers: issuers
                .iter()
                .map(|cfg| {
                    Arc::new(Issuer {
                        cfg: cfg.clone(),
                        keys: RwLock::new(None),
                        last_error: RwLock::new("not fetched yet".into()),
                        refetched: tokio::sync::Mutex::new(None),
                        tls: std::sync::OnceLock::new(),
                    })
                })
                .collect(),
        }
    }

    /// Whether any issuer is configured.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Loads every issuer's keys now, then every `jwks_refresh`; a failed
    /// load is retried sooner (5 s, doubling up to `jwks_refresh`) and
    /// keeps the keys held. Runs until dropped.
    pub async fn refresh_forever(&self) {
        let tasks = self.issuers.iter().map(|issuer| async move {
            let mut retry = RETRY_FIRST;
            loop {
                let wait = match issuer.refresh().await {
                    Ok(n) => {
                        tracing::debug!(issuer = %issuer.cfg.issuer, keys = n, "oidc: keys loaded");
                        retry = RETRY_FIRST;
                        issuer.cfg.refresh
                    }
                    Err(why) => {
                        tracing::warn!(issuer = %issuer.cfg.issuer, %why, "oidc: loading the issuer's keys failed; retrying");
                        let wait = retry.min(issuer.cfg.refresh);
                        retry = (retry * 2).min(issuer.cfg.refresh);
                        wait
                    }
                };
                tokio::time::sleep(wait).await;
            }
        });
        futures_util::future::join_all(tasks).await;
    }

    /// The reader a JWT belongs to, verified as of the system clock.
    pub async fn verify(&self, token: &str) -> Result<Reader, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        // Which issuer's keys to try: routing only, the claims are
        // verified below with that issuer's keys.
        let unverified: Value = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| TokenError::Malformed)?;
        let iss = unverified.get("iss").and_then(Value::as_str).unwrap_or("");
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.cfg.issuer == iss)
            .ok_or_else(|| TokenError::UnknownIssuer(shown(iss)))?;
        let cfg = &issuer.cfg;
        if !cfg.algorithms.contains(&header.alg) {
            return Err(TokenError::Algorithm(header.alg));
        }
        let (set, at) = issuer.key_for(header.kid.as_deref(), header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = cfg.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_audience(&cfg.audiences);
        validation.required_spec_claims = ["exp", "iss", "aud"].map(String::from).into();
        let data = jsonwebtoken::decode::<Value>(token, set.key(at), &validation)
            .map_err(|e| invalid(e.kind()))?;
        let scope = cfg.rules.scope(&data.claims)?;
        // `exp` is required and was checked: a number of seconds.
        let expires = data
            .claims
            .get("exp")
            .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64)))
            .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)));
        Ok(Reader {
            scope: Arc::new(scope),
            expires,
        })
    }
}

/// How long until `expires`, from `now` (zero once past).
pub fn until(expires: SystemTime, now: SystemTime) -> Duration {
    expires.duration_since(now).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_three_base64url_parts_look_like_a_jwt() {
        assert!(looks_like_jwt(b"eyJh.eyJz.c2ln"));
        assert!(looks_like_jwt(b"eyJh.eyJz."));
        assert!(!looks_like_jwt(b"s3cret-reader-token"));
        assert!(!looks_like_jwt(b"a.b"));
        assert!(!looks_like_jwt(b"a.b.c.d"));
        assert!(!looks_like_jwt(b".b.c"));
        assert!(!looks_like_jwt(b"a+/.b.c"));
    }

    #[test]
    fn expiry_is_never_negative() {
        let now = UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(
            until(UNIX_EPOCH + Duration::from_secs(160), now),
            Duration::from_secs(60)
        );
        assert_eq!(until(UNIX_EPOCH, now), Duration::ZERO);
    }
}
