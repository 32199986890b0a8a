//! The nginx target starts as the current user and serves its file over
//! plain HTTP/1.1 and TLS 1.3 (h2 and http/1.1). Needs nginx installed.

mod common;

use common::{get, tls};
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
    let tls12 = common::Tls {
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
