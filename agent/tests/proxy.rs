//! The probe engine through an HTTP forward proxy (testkit's, on loopback)
//! and the curl-like settings beside it: absolute-form requests, CONNECT
//! tunnels and their own phase, refusals, the connect timeout, the ALPN
//! offer and decoding by Content-Encoding.
//!
//! Timing assertions are lower bounds by an injected delay, and phases are
//! compared with each other, never with machine-dependent thresholds.

use std::time::Duration;

use hyper::header::{HeaderValue, PROXY_AUTHORIZATION};
use sonde::probe::{
    BodyAssertion, Compression, HttpVersion, Phase, ProbeReport, ProbeSpec, Prober, Proxies, Proxy,
    TlsOptions, tls,
};
use testkit::forward_proxy::ForwardProxy;
use testkit::http::{Alpn, HttpTarget, Response};
use testkit::pki::{Ca, PemFiles};
use testkit::tcp::refused_addr;
use url::Url;
use wire::{ErrorClass, Status};

/// The delay the proxy holds its answer to CONNECT.
const DELAY: Duration = Duration::from_millis(150);

fn spec(url: &str, pem: Option<&PemFiles>) -> ProbeSpec {
    let opts = TlsOptions {
        ca_file: pem.map(|p| p.ca_cert.clone()),
        insecure: pem.is_none(),
        ..TlsOptions::default()
    };
    let tls = tls::probe_tls(&opts).unwrap_or_else(|e| panic!("tls config: {e}"));
    let url = Url::parse(url).unwrap_or_else(|e| panic!("url {url}: {e}"));
    let mut spec = ProbeSpec::new(url, tls);
    spec.timeout = Duration::from_secs(5);
    spec
}

fn via(proxy: &str) -> Option<Proxies> {
    Some(Proxies::from(
        Proxy::parse(proxy).unwrap_or_else(|e| panic!("{proxy}: {e}")),
    ))
}

fn probe(spec: &ProbeSpec) -> ProbeReport {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let report = rt.block_on(Prober::new().probe(spec));
    let r = sonde::result::wire_record(&report);
    let sum: u64 = [r.dn_ms, r.cn_ms, r.tl_ms, r.ft_ms]
        .into_iter()
        .flatten()
        .sum();
    assert!(sum <= r.rt_ms, "record phases exceed rt: {r:?}");
    assert!(report.timings.to_first_byte() <= report.timings.total);
    report
}

#[track_caller]
fn assert_failed(report: &ProbeReport, class: ErrorClass, phase: Phase) {
    assert_eq!(report.status, Status::Down, "{report:#?}");
    let failure = report.failure.as_ref();
    assert_eq!(
        failure.map(|f| (f.class, f.phase)),
        Some((class, phase)),
        "{report:#?}"
    );
}

/// An https target on 127.0.0.1 with a leaf for that address.
fn https_target(ca: &Ca, alpn: Alpn) -> HttpTarget {
    let leaf = ca.leaf(&["127.0.0.1"]);
    HttpTarget::builder()
        .tls(&leaf)
        .alpn(alpn)
        .response(Response::ok("through the tunnel"))
        .start()
}

#[test]
fn http_through_a_proxy_goes_in_absolute_form() {
    let target = HttpTarget::builder()
        .response(Response::ok("hello"))
        .start();
    let proxy = ForwardProxy::builder()
        .require_credentials("user", "pw")
        .start();
    let mut s = spec(&target.url("/path?q=1"), None);
    s.proxy = via(&format!("http://user:pw@{}", proxy.addr()));
    s.keep_request = true;
    let r = probe(&s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    let absolute = format!("http://127.0.0.1:{}/path?q=1", target.port());
    assert_eq!(
        proxy.request_lines(),
        vec![format!("GET {absolute} HTTP/1.1")]
    );
    assert_eq!(
        proxy.proxy_authorizations(),
        vec![Some("Basic dXNlcjpwdw==".to_owned())]
    );
    assert_eq!(target.requests(), 1, "the origin got the request");
    assert_eq!(r.remote, Some(proxy.addr()), "connected to the proxy");
    assert_eq!(r.timings.proxy, None, "no tunnel for cleartext");
    let sent = r.request.unwrap_or_else(|| panic!("no request kept"));
    assert_eq!(sent.target, absolute);
    assert_eq!(sent.version, hyper::Version::HTTP_11);
    assert!(sent.headers.contains_key(PROXY_AUTHORIZATION));
}

#[test]
fn https_through_connect_times_the_tunnel_in_its_own_phase() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let target = https_target(&ca, Alpn::H2AndHttp11);
    let proxy = ForwardProxy::builder()
        .require_credentials("user", "pw")
        .connect_delay(DELAY)
        .start();
    let mut s = spec(&format!("https://127.0.0.1:{}/", target.port()), Some(&pem));
    s.proxy = via(&format!("user:pw@{}", proxy.addr()));
    s.keep_request = true;
    // Meant for a proxy, never for the origin behind the tunnel.
    s.headers.insert(
        PROXY_AUTHORIZATION,
        HeaderValue::from_static("Basic origin"),
    );
    s.expect.body = vec![BodyAssertion::Contains("tunnel".into())];
    let r = probe(&s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    assert_eq!(
        proxy.connect_targets(),
        vec![format!("127.0.0.1:{}", target.port())]
    );
    assert_eq!(
        proxy.proxy_authorizations(),
        vec![Some("Basic dXNlcjpwdw==".to_owned())]
    );
    let at_origin = target.last_request_headers().unwrap_or_default();
    assert!(
        !at_origin.contains_key(PROXY_AUTHORIZATION),
        "{at_origin:?}"
    );
    // TLS was with the origin, verified against the test CA, through the tunnel.
    assert!(r.tls.is_some(), "{r:#?}");
    assert_eq!(target.last_alpn().as_deref(), Some(&b"h2"[..]));
    let t = r.timings;
    let tunnel = t.proxy.unwrap_or_default();
    assert!(tunnel >= DELAY, "{t:?}");
    assert!(t.tls.is_some_and(|tl| tl < tunnel), "{t:?}");
    assert!(t.connect.is_some_and(|cn| cn < tunnel), "{t:?}");
    // The record folds the tunnel into cn.
    let rec = sonde::result::wire_record(&r);
    let cn = rec.cn_ms.unwrap_or_default();
    assert!(cn >= DELAY.as_millis() as u64, "{rec:?}");
    let sent = r.request.unwrap_or_else(|| panic!("no request kept"));
    assert_eq!(sent.version, hyper::Version::HTTP_2);
    assert!(!sent.headers.contains_key(PROXY_AUTHORIZATION));
}

#[test]
fn a_proxy_that_wants_credentials_refuses_the_connect() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let target = https_target(&ca, Alpn::Http11);
    let proxy = ForwardProxy::builder()
        .require_credentials("user", "pw")
        .start();
    let mut s = spec(&format!("https://127.0.0.1:{}/", target.port()), Some(&pem));
    s.proxy = via(&proxy.url());
    let r = probe(&s);
    assert_failed(&r, ErrorClass::ConnectError, Phase::Proxy);
    let detail = r.failure.map(|f| f.detail).unwrap_or_default();
    assert_eq!(
        detail,
        "proxy refused CONNECT: 407 Proxy Authentication Required"
    );
    assert_eq!(target.connections(), 0, "nothing reached the origin");
    assert_eq!(r.timings.tls, None);
}

#[test]
fn a_proxy_that_is_down_fails_the_connect() {
    let target = HttpTarget::plain();
    let mut s = spec(&target.url("/"), None);
    s.proxy = via(&refused_addr().to_string());
    let r = probe(&s);
    assert_failed(&r, ErrorClass::ConnectRefused, Phase::Connect);
    let detail = r.failure.map(|f| f.detail).unwrap_or_default();
    assert!(detail.starts_with("proxy http://127.0.0.1:"), "{detail}");
    assert_eq!(target.requests(), 0);
}

#[test]
fn no_proxy_sends_a_hop_direct() {
    let target = HttpTarget::plain();
    let proxy = ForwardProxy::start();
    let mut s = spec(&target.url("/"), None);
    s.proxy = via(&proxy.url()).map(|p| p.bypassing("localhost, 127.0.0.1"));
    let r = probe(&s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    assert!(
        proxy.request_lines().is_empty(),
        "{:?}",
        proxy.request_lines()
    );
    assert_eq!(r.remote, Some(target.addr()));
}

/// curl picks the proxy per request: a redirect from a host `no_proxy`
/// names to one it does not goes through the proxy, and back direct.
#[test]
fn each_redirect_hop_picks_its_proxy_again() {
    let end = HttpTarget::plain();
    let start = HttpTarget::builder()
        .response(Response::redirect(302, &end.url("/end")))
        .start();
    let proxy = ForwardProxy::start();
    // The first hop is to localhost, which the list names: direct; the
    // second, to 127.0.0.1, through the proxy.
    let mut s = spec(&start.url_localhost("/"), None);
    s.max_redirects = 3;
    s.proxy = via(&proxy.url()).map(|p| p.bypassing("localhost"));
    let r = probe(&s);
    assert_eq!((r.status, r.redirects), (Status::Up, 1), "{r:#?}");
    assert_eq!(start.requests(), 1);
    assert_eq!(end.requests(), 1);
    assert_eq!(
        proxy.request_lines(),
        vec![format!("GET {} HTTP/1.1", end.url("/end"))],
        "only the second hop went through the proxy"
    );
}

#[test]
fn the_connect_timeout_fires_in_a_stalled_handshake() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let leaf = ca.leaf(&["127.0.0.1"]);
    let target = HttpTarget::builder()
        .tls(&leaf)
        .tls_handshake_delay(Duration::from_secs(3))
        .start();
    let mut s = spec(&format!("https://127.0.0.1:{}/", target.port()), Some(&pem));
    let limit = Duration::from_millis(200);
    s.connect_timeout = Some(limit);
    let r = probe(&s);
    // The whole-probe deadline (5 s) did not decide: the connect timeout did.
    assert_failed(&r, ErrorClass::Timeout, Phase::Tls);
    let detail = r
        .failure
        .as_ref()
        .map(|f| f.detail.clone())
        .unwrap_or_default();
    assert_eq!(detail, "connect timeout (200 ms) expired");
    assert!(
        r.timings
            .tls
            .is_some_and(|tl| tl + r.timings.connect.unwrap_or_default() >= limit)
    );
    assert_eq!(r.timings.ttfb, None);
}

#[test]
fn the_connect_timeout_covers_the_proxy_exchange() {
    let target = HttpTarget::plain();
    let proxy = ForwardProxy::builder()
        .connect_delay(Duration::from_secs(3))
        .start();
    // The tunnel never opens: the origin is never reached.
    let ca = Ca::new();
    let pem = ca.pem_files();
    let mut s = spec(&format!("https://127.0.0.1:{}/", target.port()), Some(&pem));
    s.proxy = via(&proxy.url());
    s.connect_timeout = Some(Duration::from_millis(200));
    let r = probe(&s);
    assert_failed(&r, ErrorClass::ConnectTimeout, Phase::Proxy);
    assert!(
        r.timings.proxy.is_some_and(
            |p| p + r.timings.connect.unwrap_or_default() >= Duration::from_millis(200)
        ),
        "{:?}",
        r.timings
    );
}

#[test]
fn http1_offers_only_http11_and_auto_offers_h2() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let target = https_target(&ca, Alpn::H2AndHttp11);
    let url = format!("https://127.0.0.1:{}/", target.port());
    let mut s = spec(&url, Some(&pem));
    s.http_version = HttpVersion::Http1;
    let r = probe(&s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    assert_eq!(target.last_alpn().as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(r.http_version, Some(hyper::Version::HTTP_11));
    for version in [HttpVersion::Auto, HttpVersion::Http2] {
        s.http_version = version;
        let r = probe(&s);
        assert_eq!(r.status, Status::Up, "{r:#?}");
        assert_eq!(
            target.last_alpn().as_deref(),
            Some(&b"h2"[..]),
            "{version:?}"
        );
    }
    // --http2 falls back to HTTP/1.1 where the server has no h2.
    let old = https_target(&ca, Alpn::Http11);
    let mut s = spec(&format!("https://127.0.0.1:{}/", old.port()), Some(&pem));
    s.http_version = HttpVersion::Http2;
    let r = probe(&s);
    assert_eq!(r.http_version, Some(hyper::Version::HTTP_11), "{r:#?}");
}

#[test]
fn auto_decodes_by_content_encoding_before_the_assertions() {
    let text = b"hello, compressed world";
    for response in [
        Response::gzip(text),
        Response::brotli(text),
        Response::zlib(text),
        Response::deflate(text),
        Response::ok(&text[..]),
    ] {
        let target = HttpTarget::builder().response(response).start();
        let mut s = spec(&target.url("/"), None);
        s.expect.body = vec![BodyAssertion::Contains("compressed world".into())];
        s.compression = Some(Compression::Auto);
        s.keep_response = true;
        let r = probe(&s);
        assert_eq!(r.status, Status::Up, "{r:#?}");
        assert_eq!(r.decoded_body_bytes, text.len() as u64);
        assert_eq!(r.body.as_deref(), Some(&text[..]));
    }
    // Without decoding the assertions see the compressed bytes.
    let target = HttpTarget::builder()
        .response(Response::brotli(text))
        .start();
    let mut s = spec(&target.url("/"), None);
    s.expect.body = vec![BodyAssertion::Contains("compressed world".into())];
    let r = probe(&s);
    assert_eq!(
        r.failure.map(|f| f.class),
        Some(ErrorClass::Assertion),
        "compressed bytes matched?"
    );
}

#[test]
fn a_decompression_bomb_stops_at_the_cap() {
    let zeros = vec![0u8; 10 << 20];
    for (response, fixed) in [
        (Response::gzip(&zeros), Compression::Gzip),
        (Response::brotli(&zeros), Compression::Brotli),
    ] {
        let target = HttpTarget::builder().response(response).start();
        for compression in [Compression::Auto, fixed] {
            let mut s = spec(&target.url("/"), None);
            s.compression = Some(compression);
            s.max_body_bytes = 1 << 20;
            let r = probe(&s);
            assert_failed(&r, ErrorClass::BodyTooLarge, Phase::Body);
            assert_eq!(r.decoded_body_bytes, 1 << 20, "{compression:?}");
            assert!(
                r.body_bytes < 64 << 10,
                "{compression:?}: {} raw",
                r.body_bytes
            );
        }
    }
}
