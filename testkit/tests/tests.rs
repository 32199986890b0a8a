//! testkit's own tests, one binary: each test server against a minimal
//! client; helpers in util.

mod util;

mod dns;
mod http;
mod nats;
mod nginx;
mod pki;
mod prometheus;
mod proxy;
mod tcp;
mod throughput;
