//! The nginx target starts as the current user and serves its file over
//! plain HTTP/1.1 and TLS 1.3 (h2 and http/1.1). Needs nginx installed.

use crate::util::{get, tls};
use hyper::Version;
use testkit::nginx::Nginx;

#[tokio::test]
async fn nginx_serves_plain_and_tls13() {
    if !testkit::require_tool("nginx") {
        return;
    }
    let nginx = Nginx::start().expect("nginx starts");
    let plain = get(nginx.plain_addr(), None, "/index.html")
        .await
        .expect("plain GET");
    assert_eq!(plain.status, 200);
    assert_eq!(&plain.body[..], Nginx::BODY.as_bytes());

    for (alpn, version) in [
        (&b"h2"[..], Version::HTTP_2),
        (&b"http/1.1"[..], Version::HTTP_11),
    ] {
        let out = get(nginx.tls_addr(), Some(tls(nginx.ca(), &[alpn])), "/")
            .await
            .expect("TLS GET");
        assert_eq!((out.status, out.version), (200, version));
        assert_eq!(&out.body[..], Nginx::BODY.as_bytes());
    }

    // TLS 1.3 only: a TLS 1.2-only client is refused.
    let config = rustls::ClientConfig::builder_with_provider(testkit::pki::provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("tls12")
        .with_root_certificates(nginx.ca().root_store())
        .with_no_client_auth();
    let tls12 = crate::util::Tls {
        config: std::sync::Arc::new(config),
        server_name: "localhost",
    };
    assert!(get(nginx.tls_addr(), Some(tls12), "/").await.is_err());

    let addr = nginx.plain_addr();
    drop(nginx);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "nginx still listens"
    );
}

/// With the echo module, the slow locations hold the whole response (head
/// included) or only the body's second half, over plain h1, TLS h1 and h2.
#[tokio::test]
async fn nginx_echo_locations_delay_first_byte_or_body() {
    if !testkit::require_tool("nginx") || !testkit::nginx::require_echo_module() {
        return;
    }
    let nginx = Nginx::start().expect("nginx starts");
    assert!(
        nginx.has_echo(),
        "the echo module is installed but not loaded"
    );
    let delay = Nginx::ECHO_DELAY;
    let slack = Nginx::ECHO_TIMER_SLACK;
    for alpn in [None, Some(&b"http/1.1"[..]), Some(&b"h2"[..])] {
        let (addr, client) = match alpn {
            None => (nginx.plain_addr(), None),
            Some(alpn) => (nginx.tls_addr(), Some(tls(nginx.ca(), &[alpn]))),
        };
        let out = get(addr, client, Nginx::SLOW_FIRST_BYTE)
            .await
            .expect("GET slow first byte");
        assert_eq!(out.status, 200);
        assert!(out.ttfb >= delay - slack, "{alpn:?}: {out:?}");
        assert!(out.body_time < delay / 2, "{alpn:?}: {out:?}");

        let client = alpn.map(|alpn| tls(nginx.ca(), &[alpn]));
        let out = get(addr, client, Nginx::SLOW_BODY)
            .await
            .expect("GET slow body");
        assert_eq!(out.status, 200);
        assert_eq!(&out.body[..], b"first\nrest\n");
        assert!(out.ttfb < delay / 2, "{alpn:?}: {out:?}");
        // This client stamps the head after parsing it, so part of the wait
        // may show before it; the two together hold all of it.
        assert!(
            out.ttfb + out.body_time >= delay - slack,
            "{alpn:?}: {out:?}"
        );
    }
}
