//! The probe engine against real loopback targets (testkit): a delay injected
//! in one place lands in its own phase and no other, and every error class
//! comes from a real failing target. Every report is checked for
//! contiguity: dn+cn+tl+ft ≤ rt, in the report and in the wire record.
//!
//! Assertions are lower bounds on the delayed phase and generous upper bounds
//! (half the delay) on the others, so a busy machine does not break them.

use std::net::IpAddr;
use std::time::Duration;

use sonde::probe::{
    BodyAssertion, Compression, FamilyOutcome, HeaderAssertion, IpVersion, Phase, ProbeReport,
    ProbeSpec, Prober, ResolveOverride, TlsExpectation, TlsOptions, tls,
};
use testkit::dns::{DnsBehaviour, DnsServer};
use testkit::http::{Alpn, HttpTarget, Misbehaviour, Response};
use testkit::pki::{Ca, Leaf, PemFiles, Validity};
use testkit::tcp::{Blackhole, refused_addr};
use url::Url;
use wire::{ErrorClass, Status};

/// The injected delay. Large against loopback round trips (tens of µs), small
/// enough to keep the suite fast.
const DELAY: Duration = Duration::from_millis(150);
/// What the undelayed phases must stay below.
const QUIET: Duration = Duration::from_millis(75);
/// How far a body delay may come up short. The test server starts its body
/// delay when hyper first polls the body, which can be a moment before the
/// head has reached the socket (h2 queues HEADERS for its connection task),
/// and sonde reads that head as soon as it is scheduled: on a loaded machine
/// the body wait it sees is the delay minus that lag (149.3 ms of 150 once
/// in CI). The body-vs-ttfb split is still proved: ft stays under QUIET.
const BODY_LAG: Duration = Duration::from_millis(25);

const HOST: &str = "target.test";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

/// A spec for `url` trusting only `pem` (or nothing: plain HTTP), with
/// `HOST` pinned to 127.0.0.1 so no system DNS is involved.
fn spec(url: &str, pem: Option<&PemFiles>, port: u16) -> ProbeSpec {
    let opts = TlsOptions {
        ca_file: pem.map(|p| p.ca_cert.clone()),
        insecure: pem.is_none(),
        ..TlsOptions::default()
    };
    let tls = tls::probe_tls(&opts).unwrap_or_else(|e| panic!("tls config: {e}"));
    let url = Url::parse(url).unwrap_or_else(|e| panic!("url {url}: {e}"));
    let mut spec = ProbeSpec::new(url, tls);
    spec.timeout = Duration::from_secs(5);
    spec.resolve.push(ResolveOverride {
        host: HOST.into(),
        port,
        addr: IpAddr::from([127, 0, 0, 1]),
    });
    spec
}

fn probe(spec: &ProbeSpec) -> ProbeReport {
    let report = runtime().block_on(Prober::new().probe(spec));
    assert_contiguous(&report);
    report
}

#[track_caller]
fn assert_contiguous(report: &ProbeReport) {
    let t = &report.timings;
    assert!(
        t.to_first_byte() <= t.total,
        "phases exceed rt: {report:#?}"
    );
    let r = sonde::result::wire_record(report);
    let sum: u64 = [r.dn_ms, r.cn_ms, r.tl_ms, r.ft_ms]
        .into_iter()
        .flatten()
        .sum();
    assert!(sum <= r.rt_ms, "record phases exceed rt: {r:?}");
    assert_eq!(r.st, report.status);
    assert_eq!(r.error, report.failure.as_ref().map(|f| f.class));
}

#[track_caller]
fn assert_class(report: &ProbeReport, class: ErrorClass) {
    assert_eq!(report.status, Status::Down, "{report:#?}");
    assert_eq!(
        report.failure.as_ref().map(|f| f.class),
        Some(class),
        "{report:#?}"
    );
}

fn body_time(report: &ProbeReport) -> Duration {
    report.timings.total - report.timings.to_first_byte()
}

fn https_target(
    ca: &Ca,
    delay: impl FnOnce(testkit::http::HttpTargetBuilder) -> testkit::http::HttpTargetBuilder,
) -> HttpTarget {
    let leaf = ca.leaf(&[HOST]);
    delay(HttpTarget::builder().tls(&leaf)).start()
}

// --- a delay lands in its own phase ---------------------------------------

#[test]
fn dns_delay_lands_in_dns() {
    let target = HttpTarget::plain();
    let dns = DnsServer::builder()
        .name(HOST, &[IpAddr::from([127, 0, 0, 1])])
        .answer_delay(DELAY)
        .start();
    let mut spec = spec(&format!("http://{HOST}:{}/", target.port()), None, 0);
    spec.resolve.clear();
    spec.dns_server = Some(dns.addr());
    let r = probe(&spec);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    let t = r.timings;
    assert!(t.dns.is_some_and(|d| d >= DELAY), "{t:?}");
    assert!(t.connect.is_some_and(|d| d < QUIET), "{t:?}");
    assert_eq!(t.tls, None);
    assert!(t.ttfb.is_some_and(|d| d < QUIET), "{t:?}");
    assert!(body_time(&r) < QUIET, "{t:?}");
    // A and AAAA were both asked, in parallel: one delay, not two.
    assert_eq!((dns.a_queries(), dns.aaaa_queries()), (1, 1));
    assert!(
        t.dns.is_some_and(|d| d < DELAY * 2 - QUIET / 2),
        "sequential lookups? {t:?}"
    );
}

#[test]
fn dns_is_asked_again_for_every_probe() {
    let target = HttpTarget::plain();
    let dns = DnsServer::builder()
        .name(HOST, &[IpAddr::from([127, 0, 0, 1])])
        .start();
    let mut spec = spec(&format!("http://{HOST}:{}/", target.port()), None, 0);
    spec.resolve.clear();
    spec.dns_server = Some(dns.addr());
    let rt = runtime();
    let prober = Prober::new();
    for _ in 0..2 {
        let r = rt.block_on(prober.probe(&spec));
        assert_eq!(r.status, Status::Up, "{r:#?}");
    }
    assert_eq!(
        (dns.a_queries(), dns.aaaa_queries()),
        (2, 2),
        "a cache answered"
    );
}

#[test]
fn tls_handshake_delay_lands_in_tls() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let target = https_target(&ca, |b| b.tls_handshake_delay(DELAY));
    let r = probe(&spec(
        &format!("https://{HOST}:{}/", target.port()),
        Some(&pem),
        target.port(),
    ));
    assert_eq!(r.status, Status::Up, "{r:#?}");
    let t = r.timings;
    assert_eq!(t.dns, None, "--resolve skips DNS");
    assert!(t.connect.is_some_and(|d| d < QUIET), "{t:?}");
    assert!(t.tls.is_some_and(|d| d >= DELAY), "{t:?}");
    assert!(t.ttfb.is_some_and(|d| d < QUIET), "{t:?}");
    assert!(body_time(&r) < QUIET, "{t:?}");
}

#[test]
fn first_byte_delay_lands_in_ttfb_over_http1() {
    let target = HttpTarget::builder().first_byte_delay(DELAY).start();
    let r = probe(&spec(&target.url("/"), None, 0));
    assert_eq!(r.status, Status::Up, "{r:#?}");
    let t = r.timings;
    assert_eq!(t.dns, None, "IP literal skips DNS");
    assert!(t.connect.is_some_and(|d| d < QUIET), "{t:?}");
    assert!(t.ttfb.is_some_and(|d| d >= DELAY), "{t:?}");
    assert!(body_time(&r) < QUIET, "{t:?}");
    assert_eq!(r.http_version, Some(hyper::Version::HTTP_11));
}

#[test]
fn first_byte_delay_lands_in_ttfb_over_h2() {
    // The h2 server sends SETTINGS at once; only the response's first frame
    // may stop the ttfb clock.
    let ca = Ca::new();
    let pem = ca.pem_files();
    let target = https_target(&ca, |b| b.alpn(Alpn::H2AndHttp11).first_byte_delay(DELAY));
    let r = probe(&spec(
        &format!("https://{HOST}:{}/", target.port()),
        Some(&pem),
        target.port(),
    ));
    assert_eq!(r.status, Status::Up, "{r:#?}");
    assert_eq!(r.http_version, Some(hyper::Version::HTTP_2));
    assert_eq!(r.tls.as_ref().and_then(|t| t.alpn.as_deref()), Some("h2"));
    let t = r.timings;
    assert!(t.tls.is_some_and(|d| d < QUIET), "{t:?}");
    assert!(t.ttfb.is_some_and(|d| d >= DELAY), "{t:?}");
    assert!(body_time(&r) < QUIET, "{t:?}");
}

#[test]
fn body_delay_lands_in_the_body() {
    for alpn in [Alpn::Http11, Alpn::H2] {
        let ca = Ca::new();
        let pem = ca.pem_files();
        let target = https_target(&ca, |b| b.alpn(alpn).body_delay(DELAY));
        let r = probe(&spec(
            &format!("https://{HOST}:{}/", target.port()),
            Some(&pem),
            target.port(),
        ));
        assert_eq!(r.status, Status::Up, "{alpn:?}: {r:#?}");
        let t = r.timings;
        assert!(t.ttfb.is_some_and(|d| d < QUIET), "{alpn:?}: {t:?}");
        assert!(t.tls.is_some_and(|d| d < QUIET), "{alpn:?}: {t:?}");
        assert!(body_time(&r) >= DELAY - BODY_LAG, "{alpn:?}: {t:?}");
    }
}

// --- what the handshake reports --------------------------------------------

#[test]
fn https_reports_version_cipher_alpn_and_days_left() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let leaf = ca.leaf_with(
        &[HOST],
        Validity::ExpiresIn(Duration::from_secs(30 * 86_400 + 3600)),
    );
    let target = HttpTarget::builder().tls(&leaf).alpn(Alpn::Http11).start();
    let r = probe(&spec(
        &format!("https://{HOST}:{}/", target.port()),
        Some(&pem),
        target.port(),
    ));
    assert_eq!(r.status, Status::Up, "{r:#?}");
    let info = r.tls.unwrap_or_else(|| panic!("no TLS info"));
    assert_eq!(info.version, "TLSv1.3");
    assert!(info.cipher.starts_with("TLS13_"), "{}", info.cipher);
    assert_eq!(info.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(info.days_left(std::time::SystemTime::now()), Some(30));
    assert_eq!(r.remote.map(|a| a.port()), Some(target.port()));
}

#[test]
fn client_certificate_is_presented_for_mtls() {
    let ca = Ca::new();
    let client = ca.client_cert("sonde");
    let pem = ca.pem_files_with_client(&client);
    let leaf = ca.leaf(&[HOST]);
    let target = HttpTarget::builder()
        .tls(&leaf)
        .require_client_cert(&ca)
        .start();
    let url = format!("https://{HOST}:{}/", target.port());
    let mut with_cert = spec(&url, Some(&pem), target.port());
    let cert = pem.client_cert.clone().unwrap_or_default();
    let key = pem.client_key.clone().unwrap_or_default();
    with_cert.tls = tls::client_config(&TlsOptions {
        ca_file: Some(pem.ca_cert.clone()),
        client_cert: Some((cert, key)),
        ..TlsOptions::default()
    })
    .map(Into::into)
    .unwrap_or_else(|e| panic!("{e}"));
    let r = probe(&with_cert);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    // Without the certificate the server refuses the session.
    let r = probe(&spec(&url, Some(&pem), target.port()));
    assert_eq!(r.status, Status::Down, "{r:#?}");
}

#[test]
fn insecure_accepts_an_untrusted_certificate() {
    let leaf = Leaf::self_signed(&[HOST], Validity::Valid);
    let target = HttpTarget::tls(&leaf);
    let r = probe(&spec(
        &format!("https://{HOST}:{}/", target.port()),
        None,
        target.port(),
    ));
    assert_eq!(r.status, Status::Up, "{r:#?}");
    assert!(r.timings.tls.is_some());
}

#[test]
fn server_name_overrides_sni_and_host() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let target = HttpTarget::builder().tls(&ca.leaf(&["named.test"])).start();
    // Connect to 127.0.0.1 but present and verify "named.test".
    let mut s = spec(&target.url("/"), Some(&pem), 0);
    s.server_name = Some("named.test".into());
    let r = probe(&s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
}

// --- redirects ------------------------------------------------------------

#[test]
fn redirects_are_followed_only_on_request() {
    let target = HttpTarget::builder()
        .route("/start", Response::redirect(302, "/final"))
        .route("/final", Response::ok("done"))
        .start();
    let mut s = spec(&target.url("/start"), None, 0);
    let r = probe(&s);
    assert_eq!((r.status_code, r.redirects), (Some(302), 0));
    // blackbox_exporter counts the refused redirect (probe_http_redirects 1).
    assert!(r.redirect_refused, "{r:#?}");
    s.max_redirects = 5;
    s.expect.body = vec![BodyAssertion::Contains("done".into())];
    let r = probe(&s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    assert_eq!((r.status_code, r.redirects), (Some(200), 1));
    assert!(!r.redirect_refused, "{r:#?}");
    assert_eq!(r.final_url.path(), "/final");
    assert_eq!(target.connections(), 3, "each hop opens its own connection");
}

/// Only the last response is judged: the 3xx hops on the way are neither
/// the status nor the body the check expects (a chain of two used to be
/// down at its second hop).
#[test]
fn a_chain_of_redirects_is_judged_at_its_end() {
    let target = HttpTarget::builder()
        .route("/a", Response::redirect(302, "/b"))
        .route("/b", Response::redirect(301, "/c"))
        .route("/c", Response::ok("done"))
        .start();
    let mut s = spec(&target.url("/a"), None, 0);
    s.max_redirects = 5;
    s.expect.statuses = vec![200..=200];
    s.expect.body = vec![BodyAssertion::Contains("done".into())];
    let r = probe(&s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    assert_eq!((r.status_code, r.redirects), (Some(200), 2));
    assert_eq!(r.final_url.path(), "/c");
}

#[test]
fn redirect_loop_is_too_many_redirects() {
    let target = HttpTarget::builder()
        .route("/loop", Response::redirect(302, "/loop"))
        .start();
    let mut s = spec(&target.url("/loop"), None, 0);
    s.max_redirects = 3;
    let r = probe(&s);
    assert_class(&r, ErrorClass::TooManyRedirects);
    assert_eq!(r.redirects, 3);
    // blackbox_exporter's count is one more: 11 with 10 allowed.
    assert!(r.redirect_refused, "{r:#?}");
}

/// The check's request headers for the credential tests: the three
/// authentication headers, a secret (marked sensitive, as config marks
/// `{ env = … }` values) and a plain header that may follow anywhere.
fn with_credentials(mut s: ProbeSpec) -> ProbeSpec {
    use hyper::header::{HeaderName, HeaderValue};
    for (name, value, secret) in [
        ("authorization", "Bearer top-secret", false),
        ("proxy-authorization", "Basic cHJveHk6c2VjcmV0", false),
        ("cookie", "session=abc", false),
        ("x-api-key", "key-123", true),
        ("x-trace", "trace-1", false),
    ] {
        let mut v = HeaderValue::from_static(value);
        v.set_sensitive(secret);
        s.headers.append(HeaderName::from_static(name), v);
    }
    s
}

const CREDENTIALS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

#[test]
fn credentials_follow_a_redirect_within_the_origin_only() {
    let other = HttpTarget::builder()
        .route("/landing", Response::ok("elsewhere"))
        .start();
    let target = HttpTarget::builder()
        .route("/same", Response::redirect(302, "/final"))
        .route("/final", Response::ok("done"))
        .route("/away", Response::redirect(302, &other.url("/landing")))
        .start();

    let mut s = with_credentials(spec(&target.url("/same"), None, 0));
    s.max_redirects = 1;
    let r = probe(&s);
    assert_eq!((r.status, r.redirects), (Status::Up, 1), "{r:#?}");
    let got = target
        .last_request_headers()
        .expect("the final hop arrived");
    for name in CREDENTIALS.iter().chain(&["x-trace"]) {
        assert!(got.contains_key(*name), "{name} stays within the origin");
    }

    // Another port of the same host is another origin: only x-trace follows.
    let mut s = with_credentials(spec(&target.url("/away"), None, 0));
    s.max_redirects = 1;
    let r = probe(&s);
    assert_eq!((r.status, r.redirects), (Status::Up, 1), "{r:#?}");
    let got = other
        .last_request_headers()
        .expect("the redirect was followed");
    for name in CREDENTIALS {
        assert!(!got.contains_key(name), "{name} followed to {got:?}");
    }
    assert_eq!(
        got.get("x-trace").map(|v| v.as_bytes()),
        Some(&b"trace-1"[..])
    );
}

#[test]
fn credentials_stay_behind_when_only_the_host_changes() {
    // Same server, scheme and port; another host name for it.
    let target = HttpTarget::builder()
        .route(
            "/start",
            Response::redirect(302, "http://alias.test:{port}/landing"),
        )
        .route("/landing", Response::ok("landed"))
        .start();
    let url = format!("http://{HOST}:{}/start", target.port());
    let mut s = with_credentials(spec(&url, None, target.port()));
    s.resolve.push(ResolveOverride {
        host: "alias.test".into(),
        port: target.port(),
        addr: IpAddr::from([127, 0, 0, 1]),
    });
    s.max_redirects = 1;
    let r = probe(&s);
    assert_eq!((r.status, r.redirects), (Status::Up, 1), "{r:#?}");
    assert_eq!(r.final_url.host_str(), Some("alias.test"));
    let got = target
        .last_request_headers()
        .expect("the redirect was followed");
    assert_eq!(
        got.get("host").map(|v| v.as_bytes()),
        Some(format!("alias.test:{}", target.port()).as_bytes())
    );
    for name in CREDENTIALS {
        assert!(!got.contains_key(name), "{name} followed to {got:?}");
    }
    assert!(got.contains_key("x-trace"), "{got:?}");
}

/// An https target that redirects to a cleartext one, and that cleartext
/// target (which counts what reaches it).
fn https_to_cleartext() -> (PemFiles, HttpTarget, HttpTarget) {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let plain = HttpTarget::builder()
        .route("/landing", Response::ok("cleartext"))
        .start();
    let tls = HttpTarget::builder()
        .tls(&ca.leaf(&[HOST]))
        .route("/start", Response::redirect(302, &plain.url("/landing")))
        .start();
    (pem, tls, plain)
}

#[test]
fn https_to_cleartext_is_refused_unless_allowed() {
    let (pem, tls, plain) = https_to_cleartext();
    let url = format!("https://{HOST}:{}/start", tls.port());
    let mut s = with_credentials(spec(&url, Some(&pem), tls.port()));
    s.max_redirects = 3;
    let r = probe(&s);
    assert_class(&r, ErrorClass::InsecureRedirect);
    assert_eq!((r.status_code, r.redirects), (Some(302), 0), "{r:#?}");
    assert_eq!(
        (plain.connections(), plain.requests()),
        (0, 0),
        "nothing reached the cleartext target"
    );
    assert_eq!(tls.requests(), 1);
}

#[test]
fn credentials_never_follow_https_to_cleartext_even_when_allowed() {
    let (pem, tls, plain) = https_to_cleartext();
    let url = format!("https://{HOST}:{}/start", tls.port());
    let mut s = with_credentials(spec(&url, Some(&pem), tls.port()));
    s.max_redirects = 1;
    s.allow_insecure_redirect = true;
    let r = probe(&s);
    assert_eq!((r.status, r.redirects), (Status::Up, 1), "{r:#?}");
    assert_eq!(r.final_url.scheme(), "http");
    let got = plain
        .last_request_headers()
        .expect("the redirect was followed");
    for name in CREDENTIALS {
        assert!(
            !got.contains_key(name),
            "{name} went out in cleartext: {got:?}"
        );
    }
    assert!(got.contains_key("x-trace"), "{got:?}");
    // The https hop had them all.
    let first = tls.last_request_headers().expect("the https hop arrived");
    for name in CREDENTIALS {
        assert!(first.contains_key(name), "{name} missing at its origin");
    }
}

#[test]
fn credentials_stay_behind_on_an_upgrade_to_https() {
    // http → https is always followed, but it is another origin.
    let ca = Ca::new();
    let pem = ca.pem_files();
    let tls = HttpTarget::builder()
        .tls(&ca.leaf(&[HOST]))
        .route("/landing", Response::ok("secure"))
        .start();
    let plain = HttpTarget::builder()
        .route(
            "/start",
            Response::redirect(301, &format!("https://{HOST}:{}/landing", tls.port())),
        )
        .start();
    let url = format!("http://{HOST}:{}/start", plain.port());
    let mut s = with_credentials(spec(&url, Some(&pem), plain.port()));
    s.resolve.push(ResolveOverride {
        host: HOST.into(),
        port: tls.port(),
        addr: IpAddr::from([127, 0, 0, 1]),
    });
    s.max_redirects = 1;
    let r = probe(&s);
    assert_eq!((r.status, r.redirects), (Status::Up, 1), "{r:#?}");
    let got = tls
        .last_request_headers()
        .expect("the redirect was followed");
    for name in CREDENTIALS {
        assert!(!got.contains_key(name), "{name} followed to {got:?}");
    }
    assert!(got.contains_key("x-trace"), "{got:?}");
}

// --- every error class from a real failing target ---------------------------

#[test]
fn refused_port_is_connect_refused() {
    let addr = refused_addr();
    let r = probe(&spec(&format!("http://{addr}/"), None, 0));
    assert_class(&r, ErrorClass::ConnectRefused);
    assert!(
        r.timings.connect.is_some() && r.timings.ttfb.is_none(),
        "{r:#?}"
    );
}

#[test]
fn full_backlog_is_connect_timeout_with_its_wait() {
    let hole = Blackhole::start();
    let mut s = spec(&format!("http://{}/", hole.addr()), None, 0);
    s.timeout = Duration::from_millis(400);
    let r = probe(&s);
    assert_class(&r, ErrorClass::ConnectTimeout);
    assert_eq!(r.failure.as_ref().map(|f| f.phase), Some(Phase::Connect));
    // The connect phase carries its wait until the deadline.
    assert!(
        r.timings
            .connect
            .is_some_and(|d| d >= Duration::from_millis(390)),
        "{r:#?}"
    );
    assert_eq!(r.timings.ttfb, None);
}

#[test]
fn certificate_failures_have_their_own_classes() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let cases = [
        (
            ca.leaf_with(&[HOST], Validity::Expired),
            ErrorClass::TlsExpired,
        ),
        (
            ca.leaf_with(&[HOST], Validity::NotYetValid),
            ErrorClass::TlsExpired,
        ),
        (
            Leaf::self_signed(&[HOST], Validity::Valid),
            ErrorClass::TlsUntrusted,
        ),
        (ca.leaf(&["other.test"]), ErrorClass::TlsHostname),
    ];
    for (leaf, class) in cases {
        let target = HttpTarget::tls(&leaf);
        let r = probe(&spec(
            &format!("https://{HOST}:{}/", target.port()),
            Some(&pem),
            target.port(),
        ));
        assert_class(&r, class);
        assert!(
            r.timings.tls.is_some() && r.timings.ttfb.is_none(),
            "{r:#?}"
        );
    }
}

#[test]
fn plain_server_on_https_is_a_tls_handshake_failure() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let target = HttpTarget::plain();
    let r = probe(&spec(
        &format!("https://{HOST}:{}/", target.port()),
        Some(&pem),
        target.port(),
    ));
    assert_class(&r, ErrorClass::TlsHandshake);
}

#[test]
fn dns_failures_have_their_own_classes() {
    let cases = [
        (DnsBehaviour::NxDomain, ErrorClass::DnsNxdomain),
        (DnsBehaviour::ServFail, ErrorClass::DnsServfail),
        (DnsBehaviour::Refused, ErrorClass::DnsServfail),
        (DnsBehaviour::Silent, ErrorClass::DnsTimeout),
    ];
    for (behaviour, class) in cases {
        let dns = DnsServer::builder().behaviour(behaviour).start();
        let mut s = spec(&format!("http://{HOST}:8080/"), None, 0);
        s.resolve.clear();
        s.dns_server = Some(dns.addr());
        s.timeout = Duration::from_millis(400);
        let r = probe(&s);
        assert_class(&r, class);
        assert_eq!(r.timings.connect, None, "{behaviour:?}: {r:#?}");
        assert!(r.timings.dns.is_some(), "{behaviour:?}: {r:#?}");
    }
}

#[test]
fn name_without_address_of_the_wanted_family_is_dns_no_address() {
    let dns = DnsServer::builder()
        .name(HOST, &["::1".parse().unwrap_or(IpAddr::from([0u8; 16]))])
        .start();
    let mut s = spec(&format!("http://{HOST}:8080/"), None, 0);
    s.resolve.clear();
    s.dns_server = Some(dns.addr());
    s.ip_version = IpVersion::V4;
    let r = probe(&s);
    assert_class(&r, ErrorClass::DnsNoAddress);
}

#[test]
fn garbage_and_truncation_are_http_protocol_errors() {
    for misbehaviour in [Misbehaviour::Garbage, Misbehaviour::CloseMidBody] {
        let target = HttpTarget::builder().misbehave(misbehaviour).start();
        let r = probe(&spec(&target.url("/"), None, 0));
        assert_class(&r, ErrorClass::HttpProtocol);
        assert!(
            r.timings.ttfb.is_some(),
            "{misbehaviour:?}: bytes arrived: {r:#?}"
        );
    }
}

#[test]
fn trickle_until_the_deadline_is_a_timeout_in_the_body() {
    let target = HttpTarget::builder()
        .misbehave(Misbehaviour::Trickle {
            interval: Duration::from_millis(20),
            chunk: 1,
        })
        .start();
    let mut s = spec(&target.url("/"), None, 0);
    s.timeout = Duration::from_millis(400);
    let r = probe(&s);
    assert_class(&r, ErrorClass::Timeout);
    assert_eq!(r.failure.as_ref().map(|f| f.phase), Some(Phase::Body));
    assert!(r.timings.total >= Duration::from_millis(390), "{r:#?}");
    assert!(r.body_bytes > 0, "{r:#?}");
}

#[test]
fn silent_server_is_a_timeout_waiting_for_the_first_byte() {
    let target = HttpTarget::builder()
        .misbehave(Misbehaviour::Silent)
        .start();
    let mut s = spec(&target.url("/"), None, 0);
    s.timeout = Duration::from_millis(300);
    let r = probe(&s);
    assert_class(&r, ErrorClass::Timeout);
    assert_eq!(r.failure.as_ref().map(|f| f.phase), Some(Phase::Ttfb));
    assert!(
        r.timings
            .ttfb
            .is_some_and(|d| d >= Duration::from_millis(250)),
        "{r:#?}"
    );
}

#[test]
fn unexpected_status_is_status() {
    let target = HttpTarget::builder().response(Response::new(503)).start();
    let r = probe(&spec(&target.url("/"), None, 0));
    assert_class(&r, ErrorClass::StatusCode);
    assert_eq!(r.status_code, Some(503));
}

#[test]
fn failed_body_assertion_is_assertion() {
    let target = HttpTarget::builder()
        .response(Response::ok("hello world"))
        .start();
    let mut s = spec(&target.url("/"), None, 0);
    s.expect.body = vec![BodyAssertion::Contains("goodbye".into())];
    assert_class(&probe(&s), ErrorClass::Assertion);
    s.expect.body = vec![BodyAssertion::Matches(
        regex::bytes::Regex::new("^hello").unwrap_or_else(|e| panic!("{e}")),
    )];
    assert_eq!(probe(&s).status, Status::Up);
}

#[test]
fn oversized_body_is_body_too_large() {
    let target = HttpTarget::builder()
        .misbehave(Misbehaviour::HugeBody(4 << 20))
        .start();
    let mut s = spec(&target.url("/"), None, 0);
    s.max_body_bytes = 1 << 20;
    let r = probe(&s);
    assert_class(&r, ErrorClass::BodyTooLarge);
    assert!(r.body_bytes > 1 << 20 && r.body_bytes < 4 << 20, "{r:#?}");
    assert!(!r.failed_due_to_regex, "no regex waited for the body");
    // With a body regex, a body that did not arrive whole is a regex
    // failure, as blackbox_exporter's failed regex read is.
    let re = regex::bytes::Regex::new("x").unwrap_or_else(|e| panic!("{e}"));
    s.expect.body = vec![BodyAssertion::Matches(re)];
    let r = probe(&s);
    assert_class(&r, ErrorClass::BodyTooLarge);
    assert!(r.failed_due_to_regex, "{r:#?}");
}

#[test]
fn happy_eyeballs_falls_back_to_the_family_that_answers() {
    // The name has both families; the target listens on IPv4 only.
    let target = HttpTarget::plain();
    let v6: IpAddr = "::1".parse().unwrap_or(IpAddr::from([0u8; 16]));
    let dns = DnsServer::builder()
        .name(HOST, &[v6, IpAddr::from([127, 0, 0, 1])])
        .start();
    let mut s = spec(&format!("http://{HOST}:{}/", target.port()), None, 0);
    s.resolve.clear();
    s.dns_server = Some(dns.addr());
    let r = probe(&s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    assert!(r.remote.is_some_and(|a| a.is_ipv4()), "{r:#?}");
}

// --- hostile targets end at the deadline -----------------------------------

#[test]
fn informational_responses_are_skipped_up_to_a_bound() {
    let target = HttpTarget::builder()
        .misbehave(Misbehaviour::InformationalThenOk(3))
        .start();
    let r = probe(&spec(&target.url("/"), None, 0));
    assert_eq!((r.status, r.status_code), (Status::Up, Some(200)), "{r:#?}");

    // Past the bound in one write (hyper parses them all from one read):
    // the bound holds however the bytes came.
    let many = HttpTarget::builder()
        .misbehave(Misbehaviour::InformationalThenOk(20))
        .start();
    let r = probe(&spec(&many.url("/"), None, 0));
    assert_class(&r, ErrorClass::HttpProtocol);

    // A flood never reaches a final response: it fails at the bound, long
    // before the deadline (it used to run 13 s past a 1 s deadline).
    let flood = HttpTarget::builder()
        .misbehave(Misbehaviour::InformationalFlood)
        .start();
    let mut s = spec(&flood.url("/"), None, 0);
    s.timeout = Duration::from_secs(5);
    let r = probe(&s);
    assert_class(&r, ErrorClass::HttpProtocol);
    let detail = r.failure.as_ref().map(|f| f.detail.as_str()).unwrap_or("");
    assert!(detail.contains("informational"), "{r:#?}");
    assert!(r.timings.total < Duration::from_secs(1), "{r:#?}");
}

/// Over HTTP/2, h2 drops informational HEADERS silently; the stream counts
/// them, so a flood fails at the bound instead of burning a core until
/// the deadline.
#[test]
fn an_h2_flood_of_informational_responses_fails_at_the_bound() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let target = https_target(&ca, |b| {
        b.alpn(Alpn::H2).misbehave(Misbehaviour::InformationalFlood)
    });
    let s = spec(
        &format!("https://{HOST}:{}/", target.port()),
        Some(&pem),
        target.port(),
    );
    let r = probe(&s);
    assert_eq!(r.http_version, None, "no final response: {r:#?}");
    assert_class(&r, ErrorClass::HttpProtocol);
    assert!(r.timings.total < Duration::from_secs(1), "{r:#?}");
}

#[test]
fn endless_headers_and_bodies_end_by_the_deadline() {
    for misbehaviour in [Misbehaviour::EndlessHeaders, Misbehaviour::EndlessBody] {
        let target = HttpTarget::builder().misbehave(misbehaviour).start();
        let mut s = spec(&target.url("/"), None, 0);
        s.timeout = Duration::from_millis(500);
        s.max_body_bytes = u64::MAX;
        let started = std::time::Instant::now();
        let r = probe(&s);
        let elapsed = started.elapsed();
        assert_eq!(r.status, Status::Down, "{misbehaviour:?}: {r:#?}");
        assert!(
            elapsed < s.timeout + Duration::from_millis(300),
            "{misbehaviour:?}: {elapsed:?} for a {:?} deadline",
            s.timeout
        );
    }
}

// --- blackbox parity: the chain, the last response, the expectations -------

fn unix(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// root → intermediate (10 days) → leaf (300 days), the leaf presenting
/// the intermediate after itself.
/// A root expiring in 5 days, an intermediate in 10, a leaf in 300; the
/// server presents the leaf and the intermediate.
fn chained_target() -> (PemFiles, Ca, Ca, Leaf, HttpTarget) {
    let root = Ca::with_validity(Validity::ExpiresIn(Duration::from_secs(5 * 86_400 + 3600)));
    let pem = root.pem_files();
    let intermediate = root.intermediate(
        "sonde test intermediate",
        Validity::ExpiresIn(Duration::from_secs(10 * 86_400 + 3600)),
    );
    let leaf = intermediate.leaf_with(
        &[HOST],
        Validity::ExpiresIn(Duration::from_secs(300 * 86_400 + 3600)),
    );
    let target = HttpTarget::builder().tls(&leaf).start();
    (pem, root, intermediate, leaf, target)
}

#[test]
fn the_earliest_expiry_is_over_the_presented_chain() {
    let (pem, root, intermediate, leaf, target) = chained_target();
    let url = format!("https://{HOST}:{}/", target.port());
    let r = probe(&spec(&url, Some(&pem), target.port()));
    assert_eq!(r.status, Status::Up, "{r:#?}");
    let info = r.tls.clone().unwrap_or_else(|| panic!("no TLS info"));
    assert_eq!(
        info.earliest_not_after,
        Some(unix(intermediate.not_after()))
    );
    assert_eq!(info.earliest_index, Some(1));
    assert_eq!(
        info.earliest_subject.as_deref(),
        Some("CN=sonde test intermediate")
    );
    // The trust anchor expires first, and is not presented: only the
    // anchor lookup can find it.
    assert_eq!(info.chain_not_after, Some(unix(root.not_after())));
    let now = std::time::SystemTime::now();
    assert_eq!(info.days_left(now), Some(300), "the leaf's own");
    assert_eq!(info.earliest_days_left(now), Some(10));
    let summary = info
        .leaf
        .clone()
        .unwrap_or_else(|| panic!("no leaf summary"));
    let digest = ring::digest::digest(&ring::digest::SHA256, leaf.cert_der());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(summary.fingerprint_sha256, hex);
    assert_eq!(summary.subject, format!("CN={HOST}"));
    assert_eq!(summary.issuer, "CN=sonde test intermediate");
    assert_eq!(summary.subject_alternative, HOST);
    assert!(!summary.serial.is_empty() && !summary.serial.starts_with('0'));
    // One hop: the last hop's TLS is the first's.
    assert_eq!(r.final_tls, Some(info));
}

#[test]
fn an_unverified_chain_has_no_chain_expiry() {
    let (_pem, _root, intermediate, _leaf, target) = chained_target();
    let url = format!("https://{HOST}:{}/", target.port());
    let r = probe(&spec(&url, None, target.port()));
    assert_eq!(r.status, Status::Up, "{r:#?}");
    let info = r.tls.unwrap_or_else(|| panic!("no TLS info"));
    assert_eq!(info.chain_not_after, None);
    assert_eq!(
        info.earliest_not_after,
        Some(unix(intermediate.not_after()))
    );
}

#[test]
fn an_https_to_http_redirect_ends_in_cleartext() {
    let (pem, tls, _plain) = https_to_cleartext();
    let url = format!("https://{HOST}:{}/start", tls.port());
    let mut s = spec(&url, Some(&pem), tls.port());
    s.max_redirects = 1;
    s.allow_insecure_redirect = true;
    let r = probe(&s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    assert!(r.tls.is_some(), "the first hop's handshake");
    assert_eq!(r.final_tls, None, "the last hop is cleartext");
    s.expect.tls = TlsExpectation::Required;
    let r = probe(&s);
    assert_class(&r, ErrorClass::Assertion);
    assert!(!r.failed_due_to_regex);
}

#[test]
fn content_length_and_last_modified_are_read() {
    let target = HttpTarget::builder()
        .response(Response::ok("12345").header("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"))
        .start();
    let r = probe(&spec(&target.url("/"), None, target.port()));
    assert_eq!(r.status, Status::Up, "{r:#?}");
    assert_eq!(r.content_length, Some(5));
    assert_eq!(r.last_modified, Some(784_111_777));
    assert_eq!(r.decoded_body_bytes, 5);
    // Go's client says 0 for a 204, whatever the headers.
    let empty = HttpTarget::builder().response(Response::new(204)).start();
    let r = probe(&spec(&empty.url("/"), None, empty.port()));
    assert_eq!(
        (r.status_code, r.content_length),
        (Some(204), Some(0)),
        "{r:#?}"
    );
}

#[test]
fn h2_content_length_is_go_h2_clients() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let leaf = ca.leaf(&[HOST]);
    let target = HttpTarget::builder()
        .tls(&leaf)
        .alpn(Alpn::H2)
        .route("/five", Response::ok("12345"))
        .route("/none", Response::new(204))
        .start();
    let url = |path: &str| format!("https://{HOST}:{}{path}", target.port());
    let r = probe(&spec(&url("/five"), Some(&pem), target.port()));
    assert_eq!(r.http_version, Some(hyper::Version::HTTP_2), "{r:#?}");
    assert_eq!(r.content_length, Some(5), "{r:#?}");
    // HEADERS ended the stream, no Content-Length: Go's h2 client says 0.
    let r = probe(&spec(&url("/none"), Some(&pem), target.port()));
    assert_eq!(
        (r.status_code, r.content_length),
        (Some(204), Some(0)),
        "{r:#?}"
    );
    // Not for HEAD: -1.
    let mut s = spec(&url("/none"), Some(&pem), target.port());
    s.method = hyper::Method::HEAD;
    let r = probe(&s);
    assert_eq!(
        (r.status_code, r.content_length),
        (Some(204), None),
        "{r:#?}"
    );
}

fn header_rule(name: &'static str, pattern: &str, must_match: bool) -> HeaderAssertion {
    HeaderAssertion {
        name: hyper::header::HeaderName::from_static(name),
        regex: regex::Regex::new(pattern).unwrap_or_else(|e| panic!("{e}")),
        must_match,
        allow_missing: false,
    }
}

#[test]
fn header_assertions_judge_the_last_response() {
    let target = HttpTarget::builder()
        .route("/", Response::ok("ok").header("x-cache", "MISS from edge"))
        .route(
            "/hop",
            Response::redirect(302, "/").header("x-cache", "HIT"),
        )
        .start();
    let mut s = spec(&target.url("/hop"), None, target.port());
    s.max_redirects = 1;
    s.expect.headers = vec![header_rule("x-cache", "^MISS", false)];
    let r = probe(&s);
    assert_eq!(r.redirects, 1, "{r:#?}");
    assert_class(&r, ErrorClass::Assertion);
    assert!(r.failed_due_to_regex, "{r:#?}");
    // The redirect's HIT is not what is judged.
    s.expect.headers = vec![header_rule("x-cache", "HIT", true)];
    let r = probe(&s);
    assert_class(&r, ErrorClass::Assertion);
    assert!(r.failed_due_to_regex);
    s.expect.headers = vec![header_rule("x-cache", "HIT", false)];
    let r = probe(&s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    s.expect.headers = vec![header_rule("x-cache", "edge$", true)];
    let r = probe(&s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    assert!(!r.failed_due_to_regex);
    // Missing and not allowed: fails either form.
    s.expect.headers = vec![header_rule("x-absent", ".", false)];
    assert_class(&probe(&s), ErrorClass::Assertion);
}

#[test]
fn a_broken_header_rule_is_a_regex_failure_when_the_body_then_fails() {
    // blackbox_exporter judges the headers before it reads the body.
    let target = HttpTarget::builder()
        .response(Response::ok("x".repeat(5000)).header("x-cache", "MISS"))
        .start();
    let mut s = spec(&target.url("/"), None, target.port());
    s.max_body_bytes = 100;
    s.expect.headers = vec![header_rule("x-cache", "MISS", false)];
    let r = probe(&s);
    assert_class(&r, ErrorClass::BodyTooLarge);
    assert!(r.failed_due_to_regex, "{r:#?}");
    assert_eq!(r.decoded_body_bytes, 100, "counted up to the cap");
    s.expect.headers = vec![header_rule("x-cache", "MISS", true)];
    let r = probe(&s);
    assert_class(&r, ErrorClass::BodyTooLarge);
    assert!(!r.failed_due_to_regex, "{r:#?}");
}

#[test]
fn not_matches_fails_on_a_match_and_every_body_assertion_counts() {
    let target = HttpTarget::builder()
        .response(Response::ok("status: degraded"))
        .start();
    let mut s = spec(&target.url("/"), None, target.port());
    let re = |p: &str| regex::bytes::Regex::new(p).unwrap_or_else(|e| panic!("{e}"));
    s.expect.body = vec![
        BodyAssertion::Contains("status".into()),
        BodyAssertion::NotMatches(re("degraded|down")),
    ];
    let r = probe(&s);
    assert_class(&r, ErrorClass::Assertion);
    assert!(r.failed_due_to_regex);
    s.expect.body = vec![
        BodyAssertion::NotMatches(re("down")),
        BodyAssertion::Contains("healthy".into()),
    ];
    let r = probe(&s);
    assert_class(&r, ErrorClass::Assertion);
    assert!(!r.failed_due_to_regex, "a substring is not a regex");
    s.expect.body = vec![
        BodyAssertion::NotMatches(re("down")),
        BodyAssertion::Matches(re("^status")),
    ];
    assert_eq!(probe(&s).status, Status::Up);
}

#[test]
fn gzip_and_deflate_bodies_are_decoded_for_the_assertions() {
    let re = |p: &str| regex::bytes::Regex::new(p).unwrap_or_else(|e| panic!("{e}"));
    let text = "compressed: ready ".repeat(100);
    let target = HttpTarget::builder()
        .route("/gzip", Response::gzip(text.as_bytes()))
        .route("/deflate", Response::deflate(text.as_bytes()))
        .route("/zlib", Response::zlib(text.as_bytes()))
        .route("/plain", Response::ok(text.clone()))
        .route("/moved", Response::redirect(302, "/gzip").body("moved"))
        .start();
    for (path, compression) in [
        ("/gzip", Compression::Gzip),
        ("/deflate", Compression::Deflate),
    ] {
        let mut s = spec(&target.url(path), None, target.port());
        s.compression = Some(compression);
        s.expect.body = vec![BodyAssertion::Contains("ready compressed".into())];
        let r = probe(&s);
        assert_eq!(r.status, Status::Up, "{path}: {r:#?}");
        assert_eq!(r.decoded_body_bytes, text.len() as u64, "{path}");
        assert!(r.body_bytes < r.decoded_body_bytes, "{path}: {r:#?}");
        // As in blackbox_exporter, nothing asks for the coding.
        let sent = target.last_request_headers().unwrap_or_default();
        assert_eq!(sent.get("accept-encoding"), None, "{path}");
        // The cap is on decoded bytes, counted up to the cap.
        s.max_body_bytes = r.body_bytes + 1;
        let r = probe(&s);
        assert_class(&r, ErrorClass::BodyTooLarge);
        assert_eq!(r.decoded_body_bytes, s.max_body_bytes, "{path}");
    }
    // deflate is raw DEFLATE, as Go's flate.NewReader reads it: a
    // zlib-wrapped body fails, as in blackbox_exporter.
    let mut s = spec(&target.url("/zlib"), None, target.port());
    s.compression = Some(Compression::Deflate);
    assert_class(&probe(&s), ErrorClass::HttpProtocol);
    // A redirect's body is not decoded: only the final response's is.
    let mut s = spec(&target.url("/moved"), None, target.port());
    s.compression = Some(Compression::Gzip);
    s.max_redirects = 1;
    let r = probe(&s);
    assert_eq!((r.status, r.redirects), (Status::Up, 1), "{r:#?}");
    // A body not in the coding asked for fails, as in blackbox_exporter;
    // a bad gzip header fails before the regexes (Go's gzip.NewReader), a
    // bad deflate stream in their read.
    let mut s = spec(&target.url("/plain"), None, target.port());
    s.compression = Some(Compression::Gzip);
    assert_class(&probe(&s), ErrorClass::HttpProtocol);
    s.expect.body = vec![BodyAssertion::Matches(re("ready"))];
    let r = probe(&s);
    assert_class(&r, ErrorClass::HttpProtocol);
    assert!(!r.failed_due_to_regex, "gzip header: {r:#?}");
    // (Whether this text fails as DEFLATE or decodes to garbage the regex
    // misses, the regex decided.)
    s.compression = Some(Compression::Deflate);
    let r = probe(&s);
    assert_eq!(r.status, Status::Down, "{r:#?}");
    assert!(r.failed_due_to_regex, "deflate: {r:#?}");
    s.expect.body.clear();
    s.compression = Some(Compression::Gzip);
    // A check's own Accept-Encoding is sent as it is.
    s.headers.insert(
        "accept-encoding",
        hyper::header::HeaderValue::from_static("br, gzip"),
    );
    let _ = probe(&s);
    let sent = target.last_request_headers().unwrap_or_default();
    assert_eq!(
        sent.get("accept-encoding").and_then(|v| v.to_str().ok()),
        Some("br, gzip")
    );
}

#[test]
fn http_versions_are_judged_on_h2_and_h1() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let leaf = ca.leaf(&[HOST]);
    let h2 = HttpTarget::builder().tls(&leaf).alpn(Alpn::H2).start();
    let h1 = HttpTarget::builder().tls(&leaf).alpn(Alpn::Http11).start();
    for (target, up) in [(&h2, true), (&h1, false)] {
        let mut s = spec(
            &format!("https://{HOST}:{}/", target.port()),
            Some(&pem),
            target.port(),
        );
        s.expect.http_versions = vec![hyper::Version::HTTP_2];
        let r = probe(&s);
        if up {
            assert_eq!(r.status, Status::Up, "{r:#?}");
        } else {
            assert_class(&r, ErrorClass::Assertion);
            assert!(!r.failed_due_to_regex);
        }
    }
}

#[test]
fn a_preferred_family_is_the_one_connected_to() {
    if !testkit::ipv6_available() {
        eprintln!("skipped: no IPv6 loopback");
        return;
    }
    let target = HttpTarget::builder().ipv6(true).start();
    let v6: IpAddr = "::1".parse().unwrap_or(IpAddr::from([0u8; 16]));
    let dns = DnsServer::builder()
        .name(HOST, &[v6, IpAddr::from([127, 0, 0, 1])])
        .start();
    for (version, want_v6) in [(IpVersion::Prefer4, false), (IpVersion::Prefer6, true)] {
        let mut s = spec(&format!("http://{HOST}:{}/", target.port()), None, 0);
        s.resolve.clear();
        s.dns_server = Some(dns.addr());
        s.ip_version = version;
        let r = probe(&s);
        assert_eq!(r.status, Status::Up, "{version:?}: {r:#?}");
        assert_eq!(
            r.remote.map(|a| a.is_ipv6()),
            Some(want_v6),
            "{version:?}: {r:#?}"
        );
    }
    // Only the other family has an address: it is used.
    // AAAA is slower than the resolution delay: without the preference it
    // would be left behind (late); with it, its NODATA is waited for.
    let v4_only = DnsServer::builder()
        .name(HOST, &[IpAddr::from([127, 0, 0, 1])])
        .aaaa_delay(DELAY)
        .start();
    let mut s = spec(&format!("http://{HOST}:{}/", target.port()), None, 0);
    s.resolve.clear();
    s.dns_server = Some(v4_only.addr());
    s.ip_version = IpVersion::Prefer6;
    let r = probe(&s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    assert!(r.remote.is_some_and(|a| a.is_ipv4()), "{r:#?}");
    assert_eq!(
        r.dns.as_ref().map(|d| d.aaaa.outcome),
        Some(FamilyOutcome::NoData),
        "{r:#?}"
    );
}
