//! Delivery of [`Event`](super::event::Event)s to receivers: one queue and
//! one task per receiver, so a slow or dead receiver never delays another.
//!
//! - `queue`: the pure part: the FIFO, what an answer means (delivered,
//!   retry, permanent), backoff with full jitter, `Retry-After`, max age.
//! - `webhook`: Standard Webhooks signing (`webhook-id`, `-timestamp`,
//!   `-signature`); `alertmanager`: events as Alertmanager alerts, and the
//!   alerts still firing, re-posted while they fire.
//! - `http`: the one-request-at-a-time HTTP/1.1 client both speak.
//! - `dead`: the dead-letter file (JSON Lines), its reader, and replay.
//! - `receiver`: the [`Receiver`] handle (enqueue, snapshot, restore,
//!   stats) and its delivery task ([`spawn`]).
//!
//! It does not decide what to notify (the rule engine does) nor write the
//! checkpoint (the caller does, from [`Receiver::snapshot`]).

use std::path::PathBuf;
use std::time::Duration;

pub mod alertmanager;
pub mod dead;
pub mod http;
pub mod queue;
pub mod receiver;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use dead::{DeadLetter, DeadLetterError, DeadLetters, LetterKey, Listing, Select};
pub use queue::{Pending, Policy};
pub use receiver::{
    Receiver, ReceiverError, ReceiverState, ReceiverStats, ReplayError, replay, spawn,
};
pub use webhook::{SecretError, check_secret};

/// How long one request may take, from connecting to the (bounded) answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// A notification not delivered within this long of being enqueued goes
/// to the dead letters.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// The ceiling of the first retry's delay (it doubles per attempt).
pub const DEFAULT_BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// No retry waits longer than this for backoff (`Retry-After` may ask
/// for more, up to [`queue::RETRY_AFTER_CAP`]).
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How often the alerts still firing are re-posted to Alertmanager.
pub const DEFAULT_RESEND: Duration = Duration::from_secs(60);

/// What kind of receiver, and what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverKind {
    /// A generic webhook, signed per the Standard Webhooks specification.
    /// `https` is expected; plain `http` is allowed to any host (a
    /// receiver inside the same host or cluster).
    Webhook {
        /// Where to POST.
        url: url::Url,
        /// `whsec_…` secrets; every one signs (several while rotating).
        /// At least one.
        secrets: Vec<config::Secret<String>>,
        /// Extra request headers, name and value (kept out of `Debug` on
        /// the wire side). The `webhook-*`, `content-type`, `host` and
        /// framing headers are sonde's and refused.
        headers: Vec<(String, String)>,
    },
    /// Prometheus Alertmanager: `POST {url}/api/v2/alerts`. Often plain
    /// `http` inside a cluster, which is allowed.
    Alertmanager {
        /// The base URL (`http://alertmanager:9093`, or with a route prefix).
        url: url::Url,
        /// How often the alerts still firing are re-posted; they end 4
        /// resends after the last post unless posted again.
        resend: Duration,
        /// Labels added to every alert (sonde's own labels win a clash).
        labels: Vec<(String, String)>,
    },
}

/// One receiver, as the configuration describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// Its name (metrics, logs, dead letters).
    pub name: String,
    /// What it is.
    pub kind: ReceiverKind,
    /// The whole request's deadline: connect, TLS, send, answer.
    pub timeout: Duration,
    /// How long a notification may wait before it is dead-lettered.
    pub max_age: Duration,
    /// The ceiling of the first retry's delay.
    pub backoff_first: Duration,
    /// The cap of the backoff.
    pub backoff_max: Duration,
    /// A CA file (PEM) to trust instead of the system roots, for a
    /// receiver with a private CA.
    pub ca_file: Option<PathBuf>,
}

impl ReceiverConfig {
    /// A receiver `name` of `kind` with the default timeout, max age and
    /// backoff, trusting the system roots.
    pub fn new(name: impl Into<String>, kind: ReceiverKind) -> ReceiverConfig {
        ReceiverConfig {
            name: name.into(),
            kind,
            timeout: DEFAULT_TIMEOUT,
            max_age: DEFAULT_MAX_AGE,
            backoff_first: DEFAULT_BACKOFF_FIRST,
            backoff_max: DEFAULT_BACKOFF_MAX,
            ca_file: None,
        }
    }

    /// The retry policy these settings make.
    pub fn policy(&self) -> Policy {
        Policy {
            backoff: crate::retry::Backoff {
                base: self.backoff_first,
                cap: self.backoff_max,
                floor: Duration::ZERO,
            },
            max_age: self.max_age,
            retry_after_cap: queue::RETRY_AFTER_CAP,
        }
    }
}
