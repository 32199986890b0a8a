//! The gateway's integration tests, one binary: the gateway served in-process
//! on loopback; helpers in util.

mod util;

mod browser;
mod gap;
mod history;
mod ingest;
mod jetstream;
mod oidc;
mod poll;
mod readers;
mod ui_modules;
