//! The delay proxy forwards every byte and holds only the upstream's first
//! reply: the TLS server's first flight, or a plain server's response.

use std::time::Duration;

use crate::util::{get, tls};
use testkit::http::HttpTarget;
use testkit::pki::Ca;
use testkit::proxy::DelayProxy;

const DELAY: Duration = Duration::from_millis(150);

#[tokio::test]
async fn tls_handshake_carries_the_delay_and_the_request_does_not() {
    let ca = Ca::new();
    let target = HttpTarget::tls(&ca.leaf(&["localhost"]));
    let proxy = DelayProxy::start(target.addr(), DELAY);
    assert!(proxy.addr().ip().is_loopback());
    for _ in 0..2 {
        // Every connection is delayed once, at its first reply.
        let out = get(proxy.addr(), Some(tls(&ca, &[b"http/1.1"])), "/")
            .await
            .expect("GET through the proxy");
        assert_eq!(out.status, 200);
        assert!(out.tls >= DELAY, "{out:?}");
        assert!(out.ttfb < DELAY / 2, "{out:?}");
        assert!(out.body_time < DELAY / 2, "{out:?}");
    }
}

#[tokio::test]
async fn plain_response_is_the_first_reply() {
    let target = HttpTarget::plain();
    let proxy = DelayProxy::start(target.addr(), DELAY);
    let out = get(proxy.addr(), None, "/").await.expect("GET");
    assert_eq!(out.status, 200);
    assert!(out.ttfb >= DELAY, "{out:?}");
}
