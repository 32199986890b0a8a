//! `/v1/history` with `[jetstream]`: the records of a gseq range read
//! back from the stream (an ordered consumer from the range's first
//! message), with the same filters and paging as the wire files'.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;

use super::{Log, layout};
use crate::auth::Scope;
use crate::history::{Filter, Page};

/// The most messages one page reads: past it the page ends with a
/// cursor, however few records matched.
const MAX_MESSAGES: usize = 100_000;

/// How long one message of the range may take to arrive.
const MESSAGE_WAIT: Duration = Duration::from_secs(5);

/// How long the first message may take before the read starts again: a
/// consumer is placed on one of the stream's servers, which may be one
/// that is down (nats-server 2.9 places it so), and then never delivers.
const FIRST_WAIT: Duration = Duration::from_secs(2);

/// Attempts at a consumer that delivers.
const ATTEMPTS: usize = 3;

/// An ordered consumer as `config` asks and its first message; `None`
/// when nothing is pending.
async fn open(
    log: &Log,
    config: pull::OrderedConfig,
) -> Result<Option<(pull::Ordered, async_nats::jetstream::Message)>, String> {
    let failed = |e: &dyn std::fmt::Display| format!("reading the stream: {e}");
    for _ in 0..ATTEMPTS {
        let mut consumer = log
            .stream
            .create_consumer(config.clone())
            .await
            .map_err(|e| failed(&e))?;
        if consumer.info().await.map_err(|e| failed(&e))?.num_pending == 0 {
            return Ok(None);
        }
        let mut messages = consumer.messages().await.map_err(|e| failed(&e))?;
        match tokio::time::timeout(FIRST_WAIT, messages.next()).await {
            Ok(Some(Ok(m))) => return Ok(Some((messages, m))),
            Ok(Some(Err(e))) => return Err(failed(&e)),
            Ok(None) => return Ok(None),
            Err(_) => tracing::debug!("history: a consumer delivered nothing; placing another"),
        }
    }
    Err(format!(
        "the stream did not deliver within {ATTEMPTS} attempts of {} s",
        FIRST_WAIT.as_secs()
    ))
}

/// The records with gseq in `from..=to` that `scope` sees and `filter`
/// selects, at most `limit`.
pub async fn page(
    log: &Log,
    from: u64,
    to: u64,
    limit: usize,
    scope: &Scope,
    filter: &Filter,
) -> Result<Page, String> {
    let mut out = Page::default();
    if from > to || limit == 0 {
        return Ok(out);
    }
    let first = layout::stream_seq(from).max(1);
    let last = layout::stream_seq(to);
    // One agent named exactly: read only its subject.
    let filter_subject = filter
        .agent
        .as_deref()
        .filter(|a| config::is_name(a))
        .map(|a| log.subject(a))
        .unwrap_or_default();
    let config = pull::OrderedConfig {
        deliver_policy: DeliverPolicy::ByStartSequence {
            start_sequence: first,
        },
        filter_subject,
        ..Default::default()
    };
    let Some((mut messages, head)) = open(log, config).await? else {
        return Ok(out);
    };
    let mut head = Some(head);
    let mut read = 0;
    loop {
        let m = match head.take() {
            Some(m) => m,
            None => match tokio::time::timeout(MESSAGE_WAIT, messages.next()).await {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(format!("reading the stream: {e}")),
                Ok(None) => return Ok(out),
                Err(_) => return Err("the stream did not answer within 5 s".into()),
            },
        };
        let Ok(info) = m.info() else { continue };
        let (seq, pending) = (info.stream_sequence, info.pending);
        if seq > last {
            return Ok(out);
        }
        read += 1;
        let mut g = layout::gseq(seq, 0);
        // What the follower skips is not history either.
        let frames = log
            .frames(&m.message.subject, &m.message.payload)
            .unwrap_or_default();
        for frame in &frames {
            let agent = frame.header.agent.as_str();
            for b in &frame.batches {
                for record in &b.records {
                    let this = g;
                    g += 1;
                    if this < from || this > to {
                        continue;
                    }
                    if !scope.allows(agent, &b.check) || !filter.allows(agent, &b.check, record) {
                        continue;
                    }
                    if out.records.len() == limit {
                        out.next = Some(this);
                        return Ok(out);
                    }
                    out.records
                        .push((this, agent.to_owned(), b.check.clone(), *record));
                }
            }
        }
        if pending == 0 || seq == last {
            return Ok(out);
        }
        if read == MAX_MESSAGES {
            out.next = Some(layout::gseq(seq + 1, 0));
            return Ok(out);
        }
    }
}
