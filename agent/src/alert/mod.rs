//! The alerter (`sonde alert`): a reader of regional gateways that turns
//! the stream of records into notifications when a check changes state.
//!
//! - `source`: one gateway's stream (SSE with `since`), a `reset` healed
//!   from `/v1/history`, reconnects; what it sees as [`source::SourceEvent`].
//! - `rules`: the pure rule engine (consecutive counts, quorum across
//!   regions, no data, flapping, silences); records and clock ticks in,
//!   [`event::Event`]s out.
//! - `event`: what a notification says, its stable id and its JSON payload.
//! - `deliver`: one queue per receiver (Standard Webhooks, Alertmanager),
//!   retries with backoff and `Retry-After`, dead letters.
//! - `checkpoint`: cursors, rule state and outboxes on disk, atomically.
//! - `config`: alert.toml; `service`: the process that ties them together.

pub mod api;
pub mod checkpoint;
pub mod config;
pub mod deliver;
pub mod event;
pub mod rules;
pub mod service;
pub mod source;
