//! Fresh-connection throughput of the HTTP target, for benchmark headroom.
//! Ignored by default (timing-dependent); run with
//! `cargo test --release -p sonde-testkit --test tests -- throughput:: --ignored --nocapture`.

use std::time::Instant;

use crate::util::{get, tls};
use testkit::http::HttpTarget;
use testkit::pki::Ca;

#[tokio::test]
#[ignore = "timing report, run by hand in release"]
async fn fresh_connection_rates() {
    let ca = Ca::new();
    let plain = HttpTarget::plain();
    let secure = HttpTarget::tls(&ca.leaf(&["localhost"]));
    let config = tls(&ca, &[b"http/1.1"]).config;
    for (name, target, n) in [("plain h1", &plain, 5000u32), ("tls h1", &secure, 2000)] {
        let start = Instant::now();
        for _ in 0..n {
            let t = target.is_tls().then(|| crate::util::Tls {
                config: config.clone(),
                server_name: "localhost",
            });
            let out = get(target.addr(), t, "/").await.expect("GET");
            assert_eq!(out.status, 200);
        }
        let rate = f64::from(n) / start.elapsed().as_secs_f64();
        eprintln!("{name}: {rate:.0} probes/s (fresh connection each, one client task)");
        assert!(rate > 500.0, "{name}: {rate:.0} probes/s");
    }
    // The same client against nginx, for reference.
    if let Ok(nginx) = testkit::nginx::Nginx::start() {
        let config = tls(nginx.ca(), &[b"http/1.1"]).config;
        let n = 2000u32;
        let start = Instant::now();
        for _ in 0..n {
            let t = crate::util::Tls {
                config: config.clone(),
                server_name: "localhost",
            };
            get(nginx.tls_addr(), Some(t), "/").await.expect("GET");
        }
        let rate = f64::from(n) / start.elapsed().as_secs_f64();
        eprintln!("nginx tls h1: {rate:.0} probes/s");
    }
}
