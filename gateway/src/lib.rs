//! sonde's reference regional gateway: agents stream wire frames in, live
//! readers follow the results out, and every accepted frame is persisted.
//! The protocol is `PROTOCOL.md` beside this crate; frames and records are
//! `wire/WIRE.md`'s.
//!
//! - [`config`]: gateway.toml, raw and validated.
//! - [`cors`]: which other origins' pages may read.
//! - [`auth`]: bearer tokens (constant-time), reader scopes (globs).
//! - [`oidc`]: readers' JWTs verified against their issuer's JWKS.
//! - [`ingest`]: the pure checks of a request body, all or nothing; rate limit.
//! - [`hub`]: dedupe by (agent, session, seq), gseq, replay ring, current
//!   state, live fan-out; synchronous, behind one short lock.
//! - [`message`]: reader messages in JSON and MessagePack.
//! - [`reader`]: a reader's feed and its SSE and WebSocket transports.
//! - [`history`]: the wire files read back, through an index in memory.
//! - [`poll`]: readers that ask: the current state (ETag) and long polling.
//! - [`writer`]: append-only wire files on their own thread.
//! - [`write_deadline`]: closes a connection whose writes stop progressing.
//! - [`recover`]: a restarted gateway rebuilds the hub from those files.
//! - [`jetstream`]: `[jetstream]`, the region's log in a NATS JetStream
//!   stream that every replica publishes to and reads.
//! - [`admin`]: operator endpoints (an agent's mark reset) and their log.
//! - [`metrics`]: Prometheus exposition.
//! - [`ui`]: the live page's embedded assets (gateway/ui/) and its config.
//! - `state`: what handlers and readers share (config, hub, writer, counters).
//! - [`server`]: routes and the accept loop; [`serve`] is the entry point.
//!
//! HTTP is axum 0.8 over hyper-util's auto connection builder: axum gives
//! routing, WebSocket upgrade and SSE framing that would otherwise be
//! written by hand; driving connections ourselves (rather than
//! `axum::serve`) lets one loop serve HTTP/1.1, h2c and TLS with ALPN, and
//! drain gracefully. The gateway does not fan out to other gateways and
//! keeps no state across restarts besides its wire files, from which it
//! recovers its high-water marks, gseqs, current state and replay ring,
//! and the log of operators' mark resets beside them.
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod config;
pub mod cors;
pub mod history;
pub mod hub;
pub mod ingest;
pub mod jetstream;
pub mod message;
pub mod metrics;
pub mod oidc;
pub mod poll;
pub mod reader;
pub mod recover;
pub mod server;
mod state;
pub mod ui;
pub mod write_deadline;
pub mod writer;

pub use config::{ConfigError, ConfigErrors, GatewayConfig};
pub use server::{FRAMES_CONTENT_TYPE, ServeError, serve};
