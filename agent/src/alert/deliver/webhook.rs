//! Standard Webhooks (<https://www.standardwebhooks.com/>) signing: the
//! `webhook-id` (the event's stable id), `webhook-timestamp` (this
//! attempt's Unix seconds) and `webhook-signature` headers, the signature
//! `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` once per
//! secret (several while rotating), space-separated.
//!
//! Pure: the timestamp is passed in; nothing here touches a socket.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use ring::hmac;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The id header.
pub const ID_HEADER: &str = "webhook-id";
/// The timestamp header.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The signature header.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// Headers sonde sets itself, which a receiver's configuration may not.
const RESERVED: [&str; 8] = [
    ID_HEADER,
    TIMESTAMP_HEADER,
    SIGNATURE_HEADER,
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
];

/// Standard base64, padded or not (the reference libraries accept both).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a webhook secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// It does not start with `whsec_`.
    #[error("a webhook secret must be \"whsec_\" followed by the base64 of the key")]
    Prefix,
    /// The part after `whsec_` is not base64.
    #[error("the part of the webhook secret after \"whsec_\" is not base64: {0}")]
    Base64(String),
    /// The key is empty.
    #[error("the webhook secret's key is empty")]
    Empty,
}

/// One decoded signing key. `Debug` does not show it.
#[derive(Clone)]
pub struct SigningKey(hmac::Key);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// The key of a `whsec_<base64>` secret.
    pub fn parse(secret: &str) -> Result<SigningKey, SecretError> {
        let encoded = secret
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::Prefix)?;
        let key = LENIENT
            .decode(encoded)
            .map_err(|e| SecretError::Base64(e.to_string()))?;
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(SigningKey(hmac::Key::new(hmac::HMAC_SHA256, &key)))
    }

    /// `v1,<base64 signature>` of `body` for message `id` at `timestamp`.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
    }
}

/// Whether `secret` is a usable `whsec_…` secret (for config validation).
pub fn check_secret(secret: &str) -> Result<(), SecretError> {
    SigningKey::parse(secret).map(|_| ())
}

/// The signature header value for `body` under `secret` (one secret).
pub fn sign(secret: &str, id: &str, timestamp: u64, body: &[u8]) -> Result<String, SecretError> {
    Ok(SigningKey::parse(secret)?.sign(id, timestamp, body))
}

/// Why a webhook receiver's settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No secret: receivers could not tell sonde's deliveries from anyone's.
    #[error("a webhook receiver needs at least one secret (whsec_…)")]
    NoSecret,
    /// The `index`-th secret (0-based) is not usable.
    #[error("webhook secret {}: {source}", index + 1)]
    Secret {
        /// Which one, 0-based.
        index: usize,
        /// What is wrong with it.
        source: SecretError,
    },
    /// A configured header is not a valid HTTP header.
    #[error("header {0:?}: not a valid HTTP header name or value")]
    Header(String),
    /// A configured header that sonde sets itself.
    #[error("header {0:?} is set by sonde and cannot be configured")]
    Reserved(String),
}

/// Signs deliveries with every configured secret and builds their headers.
#[derive(Debug, Clone)]
pub struct Signer {
    keys: Vec<SigningKey>,
    headers: HeaderMap,
}

impl Signer {
    /// A signer of `secrets`, sending `headers` too.
    pub fn new(
        secrets: &[config::Secret<String>],
        headers: &[(String, String)],
    ) -> Result<Signer, WebhookError> {
        if secrets.is_empty() {
            return Err(WebhookError::NoSecret);
        }
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(index, s)| {
                SigningKey::parse(s.expose())
                    .map_err(|source| WebhookError::Secret { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| WebhookError::Header(name.clone()))?;
            if RESERVED.contains(&header.as_str()) {
                return Err(WebhookError::Reserved(name.clone()));
            }
            let mut value =
                HeaderValue::from_str(value).map_err(|_| WebhookError::Header(name.clone()))?;
            // They may carry a token: kept out of `Debug`.
            value.set_sensitive(true);
            map.append(header, value);
        }
        Ok(Signer { keys, headers: map })
    }

    /// Every key's signature of `body`, space-separated.
    pub fn signature(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let sigs: Vec<String> = self
            .keys
            .iter()
            .map(|k| k.sign(id, timestamp, body))
            .collect();
        sigs.join(" ")
    }

    /// The headers of one attempt: the configured ones, then the Standard
    /// Webhooks ones, `Content-Type: application/json` and `User-Agent`
    /// (unless configured).
    pub fn headers(
        &self,
        id: &str,
        timestamp: u64,
        body: &[u8],
    ) -> Result<HeaderMap, WebhookError> {
        let mut map = self.headers.clone();
        let value = |name: &str, v: &str| {
            HeaderValue::from_str(v).map_err(|_| WebhookError::Header(name.to_owned()))
        };
        map.insert(ID_HEADER, value(ID_HEADER, id)?);
        map.insert(TIMESTAMP_HEADER, HeaderValue::from(timestamp));
        map.insert(
            SIGNATURE_HEADER,
            value(SIGNATURE_HEADER, &self.signature(id, timestamp, body))?,
        );
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if !map.contains_key(USER_AGENT) {
            map.insert(
                USER_AGENT,
                HeaderValue::from_static(crate::probe::USER_AGENT),
            );
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reference library's test vector (standardwebhooks, Python):
    // Webhook(SECRET).sign(ID, datetime.fromtimestamp(TS, utc), BODY).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: u64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    // base64("sonde-rotated-key"), signed the same way by the same library.
    const SECRET2: &str = "whsec_c29uZGUtcm90YXRlZC1rZXk=";
    const SIG2: &str = "v1,sG/6YRtEwhMw4eDokBm+6LXXiHKuJrlunfB/45du43s=";

    fn secret(s: &str) -> config::Secret<String> {
        config::Secret::new(config::SecretSource::Env("S".into()), s.to_owned())
    }

    #[test]
    fn signature_matches_the_reference_library() {
        assert_eq!(sign(SECRET, ID, TS, BODY).as_deref(), Ok(SIG));
        assert_eq!(sign(SECRET2, ID, TS, BODY).as_deref(), Ok(SIG2));
        // Unpadded base64 is the same key.
        assert_eq!(
            sign("whsec_c29uZGUtcm90YXRlZC1rZXk", ID, TS, BODY).as_deref(),
            Ok(SIG2)
        );
    }

    #[test]
    fn several_secrets_give_space_separated_signatures() {
        let signer = Signer::new(&[secret(SECRET), secret(SECRET2)], &[]).unwrap();
        assert_eq!(signer.signature(ID, TS, BODY), format!("{SIG} {SIG2}"));
        let headers = signer.headers(ID, TS, BODY).unwrap();
        assert_eq!(headers[ID_HEADER], ID);
        assert_eq!(headers[TIMESTAMP_HEADER], "1614265330");
        assert_eq!(headers[SIGNATURE_HEADER], format!("{SIG} {SIG2}").as_str());
        assert_eq!(headers[CONTENT_TYPE], "application/json");
        assert!(headers[USER_AGENT].to_str().unwrap().starts_with("sonde/"));
    }

    #[test]
    fn bad_secrets_are_typed_errors() {
        assert_eq!(
            SigningKey::parse("MfKQ9r8GKYqr").err(),
            Some(SecretError::Prefix)
        );
        assert!(matches!(
            SigningKey::parse("whsec_not base64!"),
            Err(SecretError::Base64(_))
        ));
        assert_eq!(SigningKey::parse("whsec_").err(), Some(SecretError::Empty));
        assert_eq!(check_secret(SECRET), Ok(()));
        assert!(matches!(
            check_secret("whsec_%%"),
            Err(SecretError::Base64(_))
        ));
        assert_eq!(Signer::new(&[], &[]).err(), Some(WebhookError::NoSecret));
        let err = Signer::new(&[secret(SECRET), secret("nope")], &[]).err();
        assert_eq!(
            err,
            Some(WebhookError::Secret {
                index: 1,
                source: SecretError::Prefix
            })
        );
        assert!(err.unwrap().to_string().starts_with("webhook secret 2: "));
    }

    #[test]
    fn configured_headers_are_sent_but_not_sondes_own() {
        let header = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        let signer =
            Signer::new(&[secret(SECRET)], &[header("Authorization", "Bearer t0k")]).unwrap();
        let headers = signer.headers(ID, TS, BODY).unwrap();
        assert_eq!(headers["authorization"], "Bearer t0k");
        assert!(headers["authorization"].is_sensitive());
        assert_eq!(
            Signer::new(&[secret(SECRET)], &[header("Webhook-Id", "x")]).err(),
            Some(WebhookError::Reserved("Webhook-Id".into()))
        );
        assert_eq!(
            Signer::new(&[secret(SECRET)], &[header("bad name", "x")]).err(),
            Some(WebhookError::Header("bad name".into()))
        );
    }
}
