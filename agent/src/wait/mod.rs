//! `sonde wait`'s engine: poll a URL until its conditions hold, a
//! `--fail-when` holds, a permanent error shows, a signed webhook says so,
//! or the deadline passes.
//!
//! - `condition` and `path`: what ready means (pure).
//! - `policy`: one attempt's verdict and the delay before the next (pure,
//!   over [`crate::retry`]).
//! - `webhook`: the signature scheme (pure) and its small server.
//!
//! The loop here is generic over the probe (a closure), so its logic is
//! tested without sockets; it knows nothing of the terminal or of flags.

pub mod condition;
pub(crate) mod path;
pub mod policy;
pub mod webhook;

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::probe::ProbeReport;
use crate::retry::Jitter;
use condition::Conditions;
use policy::{Observed, Pacer, RetryOn, Verdict, WaitReason, classify};
use webhook::{Signal, WebhookEvent};

/// How one wait runs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What ready means.
    pub conditions: Conditions,
    /// What `--retry-on` made transient.
    pub retry_on: RetryOn,
    /// The overall deadline, from the start.
    pub timeout: Duration,
    /// The most one attempt may take.
    pub attempt_timeout: Duration,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ready, said by a poll or the webhook.
    Ready {
        /// Who said so.
        by: By,
    },
    /// Failed: a `--fail-when`, a permanent error, or the webhook.
    Failed {
        /// Who said so.
        by: By,
        /// Why.
        reason: String,
    },
    /// The deadline passed first.
    Deadline,
}

/// Who ended the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// An attempt's answer.
    Poll,
    /// A verified webhook.
    Webhook,
}

impl By {
    /// A short name for output.
    pub fn name(self) -> &'static str {
        match self {
            By::Poll => "poll",
            By::Webhook => "webhook",
        }
    }
}

/// One attempt, as reported to the observer.
#[derive(Debug)]
pub struct Attempt<'a> {
    /// 1-based.
    pub number: u32,
    /// Since the wait started, when the attempt finished.
    pub elapsed: Duration,
    /// The probe's report.
    pub report: &'a ProbeReport,
    /// Its verdict.
    pub verdict: &'a Verdict,
    /// The delay before the next attempt and why, when there is one.
    pub next: Option<(Duration, WaitReason)>,
}

/// What the loop tells its observer.
#[derive(Debug)]
pub enum Event<'a> {
    /// An attempt finished.
    Attempt(Attempt<'a>),
    /// A webhook was refused.
    WebhookRejected {
        /// Who sent it.
        peer: std::net::SocketAddr,
        /// Why.
        reason: &'a webhook::Rejection,
    },
}

/// The end of a wait.
#[derive(Debug)]
pub struct Summary {
    /// How it ended.
    pub outcome: Outcome,
    /// Attempts made.
    pub attempts: u32,
    /// From start to end.
    pub elapsed: Duration,
    /// The last attempt's report.
    pub last: Option<ProbeReport>,
    /// The last attempt's verdict.
    pub last_verdict: Option<Verdict>,
}

/// Waits. `probe(timeout)` runs one attempt; `webhooks` (if any) can end
/// the wait at any moment, mid-attempt included; `observe` sees every
/// attempt and refused webhook.
pub async fn wait<P, F, J>(
    plan: &Plan,
    mut probe: P,
    mut pacer: Pacer<J>,
    mut webhooks: Option<mpsc::Receiver<WebhookEvent>>,
    mut observe: impl FnMut(Event<'_>),
) -> Summary
where
    P: FnMut(Duration) -> F,
    F: Future<Output = ProbeReport>,
    J: Jitter,
{
    let start = Instant::now();
    let deadline = start + plan.timeout;
    let mut summary = Summary {
        outcome: Outcome::Deadline,
        attempts: 0,
        elapsed: Duration::ZERO,
        last: None,
        last_verdict: None,
    };
    let finish = |mut s: Summary, outcome| {
        s.outcome = outcome;
        s.elapsed = start.elapsed();
        s
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return finish(summary, Outcome::Deadline);
        }
        let attempt = probe(plan.attempt_timeout.min(left));
        let report = tokio::select! {
            report = attempt => report,
            signal = next_signal(&mut webhooks, &mut observe) => {
                return finish(summary, signalled(signal));
            }
        };
        summary.attempts += 1;
        let verdict = classify(
            &Observed::of(&report),
            &plan.conditions,
            &plan.retry_on,
            SystemTime::now(),
        );
        let now = Instant::now();
        let (next, outcome) = match &verdict {
            Verdict::Ready => (None, Some(Outcome::Ready { by: By::Poll })),
            Verdict::Failed(reason) => (
                None,
                Some(Outcome::Failed {
                    by: By::Poll,
                    reason: reason.clone(),
                }),
            ),
            Verdict::Retry {
                retry_after,
                unreachable,
                ..
            } => (
                Some(pacer.next(*retry_after, *unreachable, now, deadline)),
                None,
            ),
        };
        observe(Event::Attempt(Attempt {
            number: summary.attempts,
            elapsed: now.duration_since(start),
            report: &report,
            verdict: &verdict,
            next,
        }));
        summary.last = Some(report);
        summary.last_verdict = Some(verdict);
        if let Some(outcome) = outcome {
            return finish(summary, outcome);
        }
        let delay = next.map_or(Duration::ZERO, |(d, _)| d);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            signal = next_signal(&mut webhooks, &mut observe) => {
                return finish(summary, signalled(signal));
            }
        }
    }
}

fn signalled(signal: Signal) -> Outcome {
    match signal {
        Signal::Ready => Outcome::Ready { by: By::Webhook },
        Signal::Failed(reason) => Outcome::Failed {
            by: By::Webhook,
            reason,
        },
    }
}

/// The next accepted webhook; refusals go to the observer. Never returns
/// without a webhook server.
async fn next_signal(
    webhooks: &mut Option<mpsc::Receiver<WebhookEvent>>,
    observe: &mut impl FnMut(Event<'_>),
) -> Signal {
    loop {
        let event = match webhooks {
            Some(rx) => rx.recv().await,
            None => None,
        };
        match event {
            Some(WebhookEvent::Accepted(signal)) => return signal,
            Some(WebhookEvent::Rejected { peer, reason }) => {
                observe(Event::WebhookRejected {
                    peer,
                    reason: &reason,
                });
            }
            None => {
                *webhooks = None;
                std::future::pending::<()>().await;
            }
        }
    }
}
