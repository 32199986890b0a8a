//! The HTTP target does what it says: h1 and h2, routes, each delay in its
//! own phase (lower bounds only), misbehaviours, mTLS, counters.

use std::time::Duration;

use crate::util::{Tls, get, tls};
use hyper::Version;
use testkit::http::{Alpn, HttpTarget, Misbehaviour, Response};
use testkit::pki::{Ca, Leaf, Validity};

const DELAY: Duration = Duration::from_millis(200);

fn ca_and_leaf() -> (Ca, Leaf) {
    let ca = Ca::new();
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    (ca, leaf)
}

#[tokio::test]
async fn plain_serves_http11_and_counts() {
    let target = HttpTarget::plain();
    assert!(target.url("/x").starts_with("http://127.0.0.1:"));
    let out = get(target.addr(), None, "/").await.expect("GET");
    assert_eq!(out.status, 200);
    assert_eq!(out.version, Version::HTTP_11);
    assert_eq!(&out.body[..], b"ok\n");
    assert_eq!(target.connections(), 1);
    assert_eq!(target.requests(), 1);
}

#[tokio::test]
async fn a_status_set_at_run_time_replaces_the_configured_one_until_cleared() {
    let target = HttpTarget::builder()
        .route("/health", Response::ok("fine"))
        .start();
    assert_eq!(
        get(target.addr(), None, "/health")
            .await
            .expect("GET")
            .status,
        200
    );
    target.set_status(Some(503));
    let down = get(target.addr(), None, "/health").await.expect("GET");
    assert_eq!(down.status, 503);
    assert_eq!(&down.body[..], b"fine", "only the status changes");
    target.set_status(None);
    assert_eq!(
        get(target.addr(), None, "/health")
            .await
            .expect("GET")
            .status,
        200
    );
}

#[tokio::test]
async fn tls_negotiates_h2_or_http11_by_alpn() {
    let (ca, leaf) = ca_and_leaf();
    let target = HttpTarget::tls(&leaf);
    let h2 = get(target.addr(), Some(tls(&ca, &[b"h2", b"http/1.1"])), "/")
        .await
        .expect("h2 GET");
    assert_eq!(h2.version, Version::HTTP_2);
    assert_eq!(h2.status, 200);
    assert_eq!(&h2.body[..], b"ok\n");
    assert_eq!(target.last_alpn().as_deref(), Some(&b"h2"[..]));
    assert_eq!(h2.alpn.as_deref(), Some(&b"h2"[..]), "the client's view");

    let h1 = get(target.addr(), Some(tls(&ca, &[b"http/1.1"])), "/")
        .await
        .expect("h1 GET");
    assert_eq!(h1.version, Version::HTTP_11);
    assert_eq!(target.last_alpn().as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(
        h1.alpn.as_deref(),
        Some(&b"http/1.1"[..]),
        "the client's view"
    );
    assert_eq!(target.connections(), 2);
    assert_eq!(target.requests(), 2);
}

#[tokio::test]
async fn alpn_h2_only_rejects_http11_only_client() {
    let (ca, leaf) = ca_and_leaf();
    let target = HttpTarget::builder().tls(&leaf).alpn(Alpn::H2).start();
    assert!(
        get(target.addr(), Some(tls(&ca, &[b"http/1.1"])), "/")
            .await
            .is_err()
    );
    let out = get(target.addr(), Some(tls(&ca, &[b"h2"])), "/")
        .await
        .expect("h2");
    assert_eq!(out.version, Version::HTTP_2);
}

#[tokio::test]
async fn routes_and_configured_response() {
    let target = HttpTarget::builder()
        .response(Response::new(503).header("x-test", "yes").body("down"))
        .route("/redirect", Response::redirect(302, "/final"))
        .route("/final", Response::ok("final"))
        .start();
    let r = get(target.addr(), None, "/redirect").await.expect("GET");
    assert_eq!(r.status, 302);
    assert_eq!(r.headers["location"], "/final");
    let f = get(target.addr(), None, "/final").await.expect("GET");
    assert_eq!((f.status, &f.body[..]), (200, &b"final"[..]));
    let d = get(target.addr(), None, "/other").await.expect("GET");
    assert_eq!((d.status, &d.body[..]), (503, &b"down"[..]));
    assert_eq!(d.headers["x-test"], "yes");
}

#[tokio::test]
async fn tls_handshake_delay_lands_in_handshake() {
    let (ca, leaf) = ca_and_leaf();
    let target = HttpTarget::builder()
        .tls(&leaf)
        .tls_handshake_delay(DELAY)
        .start();
    for alpn in [&b"h2"[..], &b"http/1.1"[..]] {
        let out = get(target.addr(), Some(tls(&ca, &[alpn])), "/")
            .await
            .expect("GET");
        assert!(out.tls >= DELAY, "handshake {:?} < {DELAY:?}", out.tls);
        assert!(
            out.ttfb < DELAY,
            "ttfb {:?} got the handshake delay",
            out.ttfb
        );
    }
}

#[tokio::test]
async fn first_byte_delay_lands_in_ttfb() {
    let (ca, leaf) = ca_and_leaf();
    let plain = HttpTarget::builder().first_byte_delay(DELAY).start();
    let out = get(plain.addr(), None, "/").await.expect("GET");
    assert!(out.ttfb >= DELAY, "ttfb {:?}", out.ttfb);
    assert!(
        out.body_time < DELAY,
        "body {:?} got the ttfb delay",
        out.body_time
    );

    let tls_target = HttpTarget::builder()
        .tls(&leaf)
        .first_byte_delay(DELAY)
        .start();
    let out = get(tls_target.addr(), Some(tls(&ca, &[b"h2"])), "/")
        .await
        .expect("GET");
    assert!(out.ttfb >= DELAY, "h2 ttfb {:?}", out.ttfb);
    assert!(
        out.tls < DELAY,
        "handshake {:?} got the ttfb delay",
        out.tls
    );
}

#[tokio::test]
async fn body_delay_lands_after_the_head() {
    let (ca, leaf) = ca_and_leaf();
    let target = HttpTarget::builder().tls(&leaf).body_delay(DELAY).start();
    for alpn in [&b"h2"[..], &b"http/1.1"[..]] {
        let out = get(target.addr(), Some(tls(&ca, &[alpn])), "/")
            .await
            .expect("GET");
        // The head came before the delay ran out, the body after it. (body_time
        // alone may be shorter than DELAY if this client was slow to read the head.)
        assert!(out.ttfb < DELAY, "ttfb {:?} got the body delay", out.ttfb);
        let total = out.ttfb + out.body_time;
        assert!(
            total >= DELAY,
            "head {:?} + body {:?}",
            out.ttfb,
            out.body_time
        );
        assert_eq!(&out.body[..], b"ok\n");
    }
}

#[tokio::test]
async fn garbage_is_not_http() {
    let target = HttpTarget::builder()
        .misbehave(Misbehaviour::Garbage)
        .start();
    assert!(get(target.addr(), None, "/").await.is_err());
    assert_eq!(target.requests(), 1);
}

#[tokio::test]
async fn close_mid_body_truncates() {
    let (ca, leaf) = ca_and_leaf();
    let target = HttpTarget::builder()
        .tls(&leaf)
        .misbehave(Misbehaviour::CloseMidBody)
        .start();
    for alpn in [&b"h2"[..], &b"http/1.1"[..]] {
        let err = get(target.addr(), Some(tls(&ca, &[alpn])), "/").await;
        assert!(
            err.is_err(),
            "{alpn:?}: a truncated body must fail: {err:?}"
        );
    }
    let plain = HttpTarget::builder()
        .misbehave(Misbehaviour::CloseMidBody)
        .start();
    assert!(get(plain.addr(), None, "/").await.is_err());
}

#[tokio::test]
async fn trickle_sends_a_head_then_bytes_slowly() {
    use http_body_util::BodyExt;
    let target = HttpTarget::builder()
        .misbehave(Misbehaviour::Trickle {
            interval: Duration::from_millis(50),
            chunk: 1,
        })
        .start();
    let tcp = tokio::net::TcpStream::connect(target.addr())
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let req = hyper::Request::get("/")
        .header("host", "localhost")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("head");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let start = std::time::Instant::now();
    let mut got = 0;
    while got < 3 {
        let frame = body.frame().await.expect("frame").expect("data");
        got += frame.into_data().map(|d| d.len()).unwrap_or(0);
    }
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn silent_never_answers() {
    let (ca, leaf) = ca_and_leaf();
    let target = HttpTarget::builder()
        .tls(&leaf)
        .misbehave(Misbehaviour::Silent)
        .start();
    let res = tokio::time::timeout(
        Duration::from_millis(300),
        get(target.addr(), Some(tls(&ca, &[b"http/1.1"])), "/"),
    )
    .await;
    assert!(res.is_err(), "a silent target answered: {res:?}");
    assert_eq!(target.requests(), 1, "the request was read");
}

#[tokio::test]
async fn huge_body_streams_all_bytes() {
    let n = 5 * 1024 * 1024 + 7;
    let target = HttpTarget::builder()
        .misbehave(Misbehaviour::HugeBody(n))
        .start();
    let out = get(target.addr(), None, "/").await.expect("GET");
    assert_eq!(out.body.len() as u64, n);
    assert_eq!(out.headers["content-length"], n.to_string().as_str());
}

#[tokio::test]
async fn mtls_requires_a_client_cert_from_the_ca() {
    let (ca, leaf) = ca_and_leaf();
    let target = HttpTarget::builder()
        .tls(&leaf)
        .require_client_cert(&ca)
        .start();
    assert!(
        get(target.addr(), Some(tls(&ca, &[b"http/1.1"])), "/")
            .await
            .is_err()
    );
    let other_ca = Ca::new();
    for (issuer, ok) in [(&ca, true), (&other_ca, false)] {
        let client = issuer.client_cert("probe");
        let config = ca.client_config_with_cert(&[b"http/1.1"], &client);
        let res = get(
            target.addr(),
            Some(Tls {
                config,
                server_name: "localhost",
            }),
            "/",
        )
        .await;
        assert_eq!(res.is_ok(), ok, "{res:?}");
    }
}

#[tokio::test]
async fn bad_leaves_are_rejected_by_clients() {
    let ca = Ca::new();
    for leaf in [
        ca.leaf_with(&["localhost"], Validity::Expired),
        ca.leaf_with(&["localhost"], Validity::NotYetValid),
        ca.leaf(&["other.example"]),
        Leaf::self_signed(&["localhost"], Validity::Valid),
    ] {
        let target = HttpTarget::tls(&leaf);
        let res = get(target.addr(), Some(tls(&ca, &[b"h2"])), "/").await;
        let err = res.expect_err("a bad certificate must fail the handshake");
        assert!(err.to_string().contains("certificate"), "{err}");
    }
}

#[tokio::test]
async fn ipv6_listener_when_available() {
    if !testkit::ipv6_available() {
        eprintln!("*** SKIPPED: no IPv6 loopback on this host ***");
        return;
    }
    let target = HttpTarget::builder().ipv6(true).start();
    let v6 = target.addr_v6().expect("v6 address");
    assert!(v6.ip().is_loopback() && v6.is_ipv6());
    let out = get(v6, None, "/").await.expect("GET over ::1");
    assert_eq!(out.status, 200);
}

#[tokio::test]
async fn dropping_the_target_stops_it() {
    let target = HttpTarget::plain();
    let addr = target.addr();
    drop(target);
    let err = tokio::net::TcpStream::connect(addr)
        .await
        .expect_err("stopped");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}
