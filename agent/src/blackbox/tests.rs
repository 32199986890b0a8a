use std::path::Path;
use std::time::Duration;

use hyper::header::{AUTHORIZATION, HOST, HeaderMap};
use serde_yaml_ng::Value;

use super::config::{ErrorKind, Location, base2_bytes, go_duration, parse};
use super::module::{Modules, Prepared, prepare};
use super::*;
use crate::probe::{BodyAssertion, Compression, IpVersion, TlsExpectation};

const EXAMPLE_HTTP: &str = include_str!("testdata/example_http.yml");
const EXAMPLE_OTHER: &str = include_str!("testdata/example_other.yml");

fn path() -> &'static Path {
    Path::new("/etc/bb/blackbox.yml")
}

fn kind(text: &str) -> (ErrorKind, Option<Location>) {
    match parse(text, path()) {
        Ok(m) => panic!("expected an error, got {} modules", m.len()),
        Err(e) => (e.kind, e.location),
    }
}

fn one(text: &str) -> Prepared {
    let mut modules = parse(text, path()).unwrap();
    assert_eq!(modules.len(), 1);
    prepare(modules.remove(0)).unwrap()
}

fn without(text: &str, module: &str) -> String {
    let mut v: Value = serde_yaml_ng::from_str(text).unwrap();
    v["modules"].as_mapping_mut().unwrap().remove(module);
    serde_yaml_ng::to_string(&v).unwrap()
}

#[test]
fn blackbox_exporters_example_http_modules_load_but_the_proxy_one() {
    let (k, at) = kind(EXAMPLE_HTTP);
    match k {
        ErrorKind::Unsupported { module, option } => {
            assert_eq!(
                (module.as_str(), option.as_str()),
                ("http_with_proxy", "http.proxy_url")
            );
        }
        other => panic!("{other:?}"),
    }
    let line = EXAMPLE_HTTP
        .lines()
        .position(|l| l.contains("proxy_url"))
        .map(|i| i + 1);
    assert_eq!(at.map(|l| l.line), line);
    let modules = parse(&without(EXAMPLE_HTTP, "http_with_proxy"), path()).unwrap();
    let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "http_2xx_example",
            "http_basic_auth_example",
            "http_custom_ca_example",
            "http_gzip",
            "http_gzip_with_accept_encoding",
            "http_post_2xx",
        ]
    );
}

#[test]
fn the_examples_other_probers_are_refused_by_name() {
    let all: Value = serde_yaml_ng::from_str(EXAMPLE_OTHER).unwrap();
    let modules = all["modules"].as_mapping().unwrap();
    assert!(modules.len() >= 8);
    for (name, module) in modules {
        let mut doc = serde_yaml_ng::Mapping::new();
        let mut m = serde_yaml_ng::Mapping::new();
        m.insert(name.clone(), module.clone());
        doc.insert("modules".into(), Value::Mapping(m));
        let text = serde_yaml_ng::to_string(&doc).unwrap();
        match kind(&text).0 {
            ErrorKind::Prober {
                module: got,
                prober,
            } => {
                assert_eq!(Some(got.as_str()), name.as_str());
                assert_eq!(Some(prober.as_str()), module["prober"].as_str());
            }
            other => panic!("{name:?}: {other:?}"),
        }
    }
}

#[test]
fn the_example_http_2xx_module_maps_onto_a_probe() {
    let text = without(EXAMPLE_HTTP, "http_with_proxy");
    let modules = parse(&text, path()).unwrap();
    let m = modules.into_iter().next().unwrap();
    let p = prepare(m).unwrap();
    let s = &p.template;
    assert_eq!(p.timeout, Some(Duration::from_secs(5)));
    assert_eq!(s.expect.statuses, vec![200..=299]);
    assert_eq!(
        s.expect.http_versions,
        vec![hyper::Version::HTTP_11, hyper::Version::HTTP_2]
    );
    assert_eq!(s.method, hyper::Method::GET);
    assert_eq!(s.headers.get(HOST).unwrap(), "vhost.example.com");
    assert_eq!(s.headers.get("accept-language").unwrap(), "en-US");
    // The Host header names the TLS server too, as in blackbox_exporter.
    assert_eq!(s.server_name.as_deref(), Some("vhost.example.com"));
    assert_eq!(s.max_redirects, 10);
    assert_eq!(s.expect.tls, TlsExpectation::Any);
    assert!(matches!(
        &s.expect.body[..],
        [BodyAssertion::NotMatches(a), BodyAssertion::Matches(b)]
            if a.as_str() == "Could not connect to database"
                && b.as_str() == "Download the latest version here"
    ));
    let h = &s.expect.headers;
    assert_eq!(h.len(), 2);
    assert!(!h[0].must_match && h[0].allow_missing && h[0].name == "set-cookie");
    assert!(h[1].must_match && !h[1].allow_missing && h[1].regex.as_str() == r"(\*|example\.com)");
    assert_eq!(s.ip_version, IpVersion::V4);
    assert_eq!(s.max_body_bytes, u64::MAX);
    assert!(s.compression.is_none());
}

#[test]
fn defaults_are_blackbox_exporters() {
    let p = one("modules:\n  http_2xx:\n    prober: http\n");
    let s = &p.template;
    assert_eq!(p.timeout, None);
    assert_eq!(s.expect.statuses, vec![200..=299]);
    assert_eq!(s.ip_version, IpVersion::Prefer6);
    assert_eq!(s.max_redirects, 10);
    assert!(s.allow_insecure_redirect);
    assert_eq!(s.max_body_bytes, u64::MAX);
    assert!(s.expect.http_versions.is_empty() && s.expect.body.is_empty());
    assert!(s.headers.is_empty());
    assert!(s.server_name.is_none() && !p.tls_server_name);
}

#[test]
fn each_supported_option_maps() {
    let p = one(r#"
modules:
  m:
    prober: http
    timeout: 1m30s
    http:
      valid_status_codes: [200, 418]
      method: POST
      body: '{"a":1}'
      body_size_limit: 1MB
      compression: gzip
      follow_redirects: false
      fail_if_not_ssl: true
      preferred_ip_protocol: ip4
      tls_config:
        server_name: api.internal
        insecure_skip_verify: true
        min_version: TLS13
      authorization:
        credentials: s3cret
"#);
    let s = &p.template;
    assert_eq!(p.timeout, Some(Duration::from_secs(90)));
    assert_eq!(s.expect.statuses, vec![200..=200, 418..=418]);
    assert_eq!(s.method, hyper::Method::POST);
    assert_eq!(&s.body[..], br#"{"a":1}"#);
    assert_eq!(s.max_body_bytes, 1 << 20);
    assert_eq!(s.compression, Some(Compression::Gzip));
    assert_eq!(s.max_redirects, 0);
    assert_eq!(s.expect.tls, TlsExpectation::Required);
    assert_eq!(s.ip_version, IpVersion::Prefer4);
    assert_eq!(s.server_name.as_deref(), Some("api.internal"));
    assert!(p.tls_server_name);
    let auth = s.headers.get(AUTHORIZATION).unwrap();
    assert_eq!(auth, "Bearer s3cret");
    assert!(auth.is_sensitive());
    assert!(!p.shown.contains("s3cret"), "{}", p.shown);
    assert!(p.shown.contains("credentials: <secret>"), "{}", p.shown);
}

#[test]
fn no_follow_redirects_and_ip6_without_fallback() {
    let p = one(
        "modules:\n  m:\n    prober: http\n    http:\n      no_follow_redirects: true\n      ip_protocol_fallback: false\n",
    );
    assert_eq!(p.template.max_redirects, 0);
    assert_eq!(p.template.ip_version, IpVersion::V6);
}

#[test]
fn brotli_compression_is_blackbox_exporters_br() {
    let p = one("modules:\n  m:\n    prober: http\n    http:\n      compression: br\n");
    assert_eq!(p.template.compression, Some(Compression::Brotli));
}

#[test]
fn basic_auth_and_token_files_are_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "hunter2\n").unwrap();
    std::fs::write(dir.path().join("token"), " tok \n").unwrap();
    let load = |text: &str| {
        let file = dir.path().join("bb.yml");
        std::fs::write(&file, text).unwrap();
        Modules::load(&file)
    };
    let m = load(
        "modules:\n  a:\n    prober: http\n    http:\n      basic_auth:\n        username: u\n        password_file: pw\n  b:\n    prober: http\n    http:\n      bearer_token_file: token\n",
    )
    .unwrap();
    // base64("u:hunter2")
    assert_eq!(
        m.by_name["a"].template.headers.get(AUTHORIZATION).unwrap(),
        "Basic dTpodW50ZXIy"
    );
    assert_eq!(
        m.by_name["b"].template.headers.get(AUTHORIZATION).unwrap(),
        "Bearer tok"
    );
    // A file that cannot be read: the module loads, its probes fail.
    let m = load("modules:\n  a:\n    prober: http\n    http:\n      bearer_token_file: missing\n")
        .unwrap();
    let e = m.by_name["a"].broken.clone().unwrap();
    assert!(
        e.contains("bb.yml") && e.contains("`a`") && e.contains("missing"),
        "{e}"
    );
}

#[test]
fn the_example_loads_as_sonde_run_loads_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    let text = without(EXAMPLE_HTTP, "http_with_proxy");
    std::fs::write(&file, &text).unwrap();
    // /certs/my_cert.crt does not exist: blackbox_exporter loads the
    // file and fails that module's probes; so does sonde.
    let m = Modules::load(&file).unwrap();
    assert_eq!(m.by_name.len(), 6);
    let broken = m.broken();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert_eq!(broken[0].0, "http_custom_ca_example");
    assert!(
        broken[0].1.contains("/certs/my_cert.crt"),
        "{}",
        broken[0].1
    );
    // With the file there, every module is ready.
    let ca = testkit::pki::Ca::new();
    std::fs::write(dir.path().join("my_cert.crt"), ca.cert_pem()).unwrap();
    std::fs::write(&file, text.replace("/certs/my_cert.crt", "my_cert.crt")).unwrap();
    let m = Modules::load(&file).unwrap();
    assert_eq!(m.broken(), []);
    assert!(
        m.by_name["http_custom_ca_example"]
            .template
            .tls
            .anchors()
            .is_some()
    );
}

#[tokio::test]
async fn a_broken_modules_probes_fail_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bb.yml");
    std::fs::write(
        &file,
        "modules:\n  m:\n    prober: http\n    http:\n      tls_config:\n        ca_file: nope.pem\n",
    )
    .unwrap();
    let e = Endpoint::new(
        Modules::load(&file).unwrap(),
        crate::probe::Prober::default(),
        DEFAULT_TIMEOUT_OFFSET,
    );
    let target = testkit::http::HttpTarget::plain();
    let q = format!("module=m&target={}&debug=true", target.url("/"));
    let (status, body) = answer(&e, &q, &HeaderMap::new()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("probe_success 0"), "{body}");
    assert!(
        body.contains("msg=\"Error generating HTTP client\"") && body.contains("nope.pem"),
        "{body}"
    );
    assert_eq!(target.requests(), 0);
}

#[test]
fn refused_and_unknown_options_name_the_module_and_the_option() {
    let (k, at) =
        kind("modules:\n  m:\n    prober: http\n    http:\n      tls_config:\n        ca: x\n");
    assert!(
        matches!(&k, ErrorKind::Unsupported { module, option } if module == "m" && option == "http.tls_config.ca"),
        "{k:?}"
    );
    assert_eq!(at, Some(Location { line: 6, column: 9 }));
    let (k, at) = kind("modules:\n  m:\n    prober: http\n    http:\n      methd: GET\n");
    assert!(
        matches!(&k, ErrorKind::Unknown { module, option } if module == "m" && option == "http.methd"),
        "{k:?}"
    );
    assert_eq!(at, Some(Location { line: 5, column: 7 }));
    let e = parse(
        "modules:\n  m:\n    prober: http\n    http:\n      enable_http2: true\n",
        path(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "/etc/bb/blackbox.yml:5:7: module `m`: `http.enable_http2` is not supported by sonde"
    );
    assert!(matches!(kind("modulez: {}\n").0, ErrorKind::UnknownTop(k) if k == "modulez"));
    assert!(matches!(
        kind("modules:\n  m:\n    timeout: 5s\n").0,
        ErrorKind::Invalid { option, .. } if option == "prober"
    ));
    assert!(matches!(
        kind("modules:\n  m:\n    prober: http\n    tcp: {}\n").0,
        ErrorKind::Unsupported { option, .. } if option == "tcp"
    ));
}

#[test]
fn bad_values_are_refused_with_where() {
    let e = parse(
        "modules:\n  m:\n    prober: http\n    http:\n      valid_status_codes: [x]\n",
        path(),
    )
    .unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Yaml(_)), "{e}");
    assert_eq!(e.location.map(|l| l.line), Some(5), "{e}");
    for (yaml, option) in [
        ("timeout: 5", "timeout"),
        (
            "http:\n      fail_if_body_matches_regexp: ['(']",
            "http.fail_if_body_matches_regexp",
        ),
        (
            "http:\n      preferred_ip_protocol: ip5",
            "http.preferred_ip_protocol",
        ),
        ("http:\n      compression: zstd", "http.compression"),
        (
            "http:\n      compression: gzip\n      headers:\n        Accept-Encoding: br",
            "http.headers",
        ),
        (
            "http:\n      valid_http_versions: [HTTP/3.0]",
            "http.valid_http_versions",
        ),
        (
            "http:\n      tls_config:\n        min_version: TLS14",
            "http.tls_config.min_version",
        ),
        (
            "http:\n      authorization:\n        type: Basic",
            "http.authorization.type",
        ),
        (
            "http:\n      bearer_token: a\n      basic_auth:\n        username: u",
            "http",
        ),
    ] {
        let text = format!("modules:\n  m:\n    prober: http\n    {yaml}\n");
        match kind(&text).0 {
            ErrorKind::Invalid {
                module,
                option: got,
                ..
            } => {
                assert_eq!((module.as_str(), got.as_str()), ("m", option), "{yaml}")
            }
            other => panic!("{yaml}: {other:?}"),
        }
    }
}

#[test]
fn go_durations_and_sizes() {
    assert_eq!(go_duration("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(go_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(go_duration("300ms"), Ok(Duration::from_millis(300)));
    assert_eq!(go_duration("0"), Ok(Duration::ZERO));
    assert!(go_duration("5").is_err() && go_duration("5d").is_err() && go_duration("").is_err());
    // As alecthomas/units' ParseBase2Bytes: a unit is needed (but for
    // 0), fractions and compounds are taken, KB is KiB.
    assert!(base2_bytes("1024").is_err());
    assert_eq!(base2_bytes("0"), Ok(0));
    assert_eq!(base2_bytes("1024B"), Ok(1024));
    assert_eq!(base2_bytes("512KB"), Ok(512 << 10));
    assert_eq!(base2_bytes("10MiB"), Ok(10 << 20));
    assert_eq!(base2_bytes("1.5MB"), Ok(3 << 19));
    assert_eq!(base2_bytes("1MB512KB"), Ok((1 << 20) + (512 << 10)));
    assert_eq!(base2_bytes("-1KB"), Ok(-1024));
    assert_eq!(base2_bytes("1EB"), Ok(1 << 60));
    assert_eq!(base2_bytes(".5KiB"), Ok(512));
    assert!(base2_bytes("10 MB").is_err() && base2_bytes("1mb").is_err());
    // One unit family per value; no digits; past i64.
    for bad in ["1MB512KiB", "KB", ".KB", "1..5KB", "16EB", "", "-"] {
        assert!(base2_bytes(bad).is_err(), "{bad}");
    }
}

#[test]
fn body_size_limit_is_blackbox_exporters() {
    let limit = |v: &str| {
        parse(
            &format!("modules:\n  m:\n    prober: http\n    http:\n      body_size_limit: {v}\n"),
            path(),
        )
        .map(|mut m| m.remove(0).http.body_size_limit)
    };
    assert_eq!(limit("1.5MB").unwrap(), 3 << 19);
    assert_eq!(limit("1MB512KB").unwrap(), (1 << 20) + (512 << 10));
    // Below zero or zero: no limit, as blackbox_exporter has it.
    assert_eq!(limit("-1KB").unwrap(), u64::MAX);
    assert_eq!(limit("0").unwrap(), u64::MAX);
    assert!(limit("1024").is_err());
}

#[test]
fn a_null_module_is_one_without_prober() {
    assert!(matches!(
        kind("modules:\n  m:\n").0,
        ErrorKind::Invalid { module, option, .. } if module == "m" && option == "prober"
    ));
}

#[test]
fn header_matchers_need_a_header_and_a_regexp() {
    for (m, problem) in [
        ("header: X-A", "regexp must be set for HTTP header matchers"),
        (
            "header: X-A\n          regexp: ''",
            "regexp must be set for HTTP header matchers",
        ),
        (
            "regexp: a",
            "header name must be set for HTTP header matchers",
        ),
    ] {
        let text = format!(
            "modules:\n  m:\n    prober: http\n    http:\n      fail_if_header_matches:\n        - {m}\n"
        );
        match kind(&text).0 {
            ErrorKind::Invalid { problem: got, .. } => assert_eq!(got, problem, "{m}"),
            other => panic!("{m}: {other:?}"),
        }
    }
}

#[test]
fn the_ref_options_are_refused_by_name() {
    for (section, key) in [
        ("tls_config", "ca_ref"),
        ("tls_config", "cert_ref"),
        ("tls_config", "key_ref"),
        ("basic_auth", "username_ref"),
        ("basic_auth", "password_ref"),
        ("authorization", "credentials_ref"),
    ] {
        let text = format!(
            "modules:\n  m:\n    prober: http\n    http:\n      {section}:\n        {key}: x\n"
        );
        let want = format!("http.{section}.{key}");
        match kind(&text).0 {
            ErrorKind::Unsupported { option, .. } => assert_eq!(option, want),
            other => panic!("{want}: {other:?}"),
        }
    }
}

fn endpoint() -> Endpoint {
    endpoint_of("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n")
}

fn endpoint_of(text: &str) -> Endpoint {
    let modules = parse(text, path())
        .unwrap()
        .into_iter()
        .map(|m| {
            let p = prepare(m).unwrap();
            (p.name.clone(), std::sync::Arc::new(p))
        })
        .collect();
    Endpoint::new(
        Modules {
            path: path().to_owned(),
            by_name: modules,
        },
        crate::probe::Prober::default(),
        DEFAULT_TIMEOUT_OFFSET,
    )
}

async fn answer(e: &Endpoint, query: &str, headers: &HeaderMap) -> (StatusCode, String) {
    use http_body_util::BodyExt;
    let r = e.respond(Some(query), headers).await;
    let status = r.status();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn errors_are_answered_as_blackbox_exporter_does() {
    let e = endpoint();
    let none = HeaderMap::new();
    assert_eq!(
        answer(&e, "module=nope&target=x", &none).await,
        (StatusCode::BAD_REQUEST, "Unknown module \"nope\"\n".into())
    );
    assert_eq!(
        answer(&e, "", &none).await,
        (
            StatusCode::BAD_REQUEST,
            "Target parameter is missing\n".into()
        )
    );
    let mut bad = HeaderMap::new();
    bad.insert(
        "X-Prometheus-Scrape-Timeout-Seconds",
        "soon".parse().unwrap(),
    );
    assert_eq!(
        answer(&e, "target=x", &bad).await,
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Failed to parse timeout from Prometheus header: strconv.ParseFloat: parsing \"soon\": invalid syntax\n".into()
        )
    );
}

#[tokio::test]
async fn past_the_bound_a_request_gets_503() {
    let e = endpoint();
    let held = e
        .permits
        .acquire_many(MAX_CONCURRENT_PROBES as u32)
        .await
        .unwrap();
    let (status, body) = answer(&e, "target=127.0.0.1:9", &HeaderMap::new()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    drop(held);
}

fn success(body: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix("probe_success "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no probe_success in {body}"))
}

#[tokio::test]
async fn a_timeout_header_past_what_a_duration_holds_fails_the_probe_at_once() {
    let target = testkit::http::HttpTarget::plain();
    let e = endpoint_of("modules:\n  m:\n    prober: http\n");
    let mut h = HeaderMap::new();
    h.insert(
        "X-Prometheus-Scrape-Timeout-Seconds",
        "1e19".parse().unwrap(),
    );
    let q = format!("module=m&target={}", target.url("/"));
    let (status, body) = answer(&e, &q, &h).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(success(&body), 0.0, "{body}");
}

#[test]
fn a_modules_own_authorization_header_wins_over_its_auth_options() {
    let p = one(
        "modules:\n  m:\n    prober: http\n    http:\n      headers:\n        Authorization: Custom mine\n      basic_auth:\n        username: u\n        password: p\n",
    );
    assert_eq!(
        p.template.headers.get(AUTHORIZATION).unwrap(),
        "Custom mine"
    );
    let p = one(
        "modules:\n  m:\n    prober: http\n    http:\n      headers:\n        authorization: Custom mine\n      bearer_token: tok\n",
    );
    let all: Vec<_> = p.template.headers.get_all(AUTHORIZATION).iter().collect();
    assert_eq!(all, ["Custom mine"]);
}

#[tokio::test]
async fn user_info_in_the_target_is_sent_as_basic_auth_unless_the_module_has_one() {
    let target = testkit::http::HttpTarget::plain();
    let e = endpoint_of(
        "modules:\n  m:\n    prober: http\n  own:\n    prober: http\n    http:\n      bearer_token: tok\n",
    );
    let auth = || {
        target
            .last_request_headers()
            .and_then(|h| h.get(AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned()))
    };
    let url = format!("http://u%20s:pw@127.0.0.1:{}/", target.port());
    let q = format!("module=m&target={}", urlencode(&url));
    let (_, body) = answer(&e, &q, &HeaderMap::new()).await;
    assert_eq!(success(&body), 1.0, "{body}");
    // base64("u s:pw")
    assert_eq!(auth().as_deref(), Some("Basic dSBzOnB3"));
    let q = format!("module=own&target={}", urlencode(&url));
    answer(&e, &q, &HeaderMap::new()).await;
    assert_eq!(auth().as_deref(), Some("Bearer tok"));
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_redirect_to_another_host_sends_that_hosts_name() {
    use testkit::http::{HttpTarget, Response};
    let target = HttpTarget::builder()
        .route(
            "/",
            Response::redirect(302, "http://localhost:{port}/final"),
        )
        .route("/final", Response::ok("ok"))
        .start();
    let e = endpoint_of(
        "modules:\n  vhost:\n    prober: http\n    http:\n      preferred_ip_protocol: ip4\n      headers:\n        Host: vhost.example\n  named:\n    prober: http\n    http:\n      preferred_ip_protocol: ip4\n      tls_config:\n        server_name: api.internal\n",
    );
    let host = || {
        target
            .last_request_headers()
            .and_then(|h| h.get(HOST).map(|v| v.to_str().unwrap().to_owned()))
    };
    let localhost = format!("localhost:{}", target.port());
    for module in ["vhost", "named"] {
        let q = format!("module={module}&target={}", target.url("/"));
        let (_, body) = answer(&e, &q, &HeaderMap::new()).await;
        assert_eq!(success(&body), 1.0, "{module}: {body}");
        assert_eq!(host().as_deref(), Some(localhost.as_str()), "{module}");
    }
}

#[tokio::test]
async fn an_unparsable_targets_error_is_logged_once() {
    let e = endpoint();
    let (status, body) = answer(
        &e,
        "target=http%3A%2F%2F%5B%3A%3A1&debug=true",
        &HeaderMap::new(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let line = body
        .lines()
        .find(|l| l.contains("Could not parse target URL"))
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(
        line.matches("Could not parse target URL").count(),
        1,
        "{line}"
    );
    assert!(!body.contains("Error for HTTP request"), "{body}");
    assert!(body.contains("Probe failed"), "{body}");
}

#[test]
fn a_modules_tls_knows_its_anchors_and_insecure_has_none() {
    let ca = testkit::pki::Ca::new();
    let pem = ca.pem_files();
    let with_ca = format!(
        "modules:\n  m:\n    prober: http\n    http:\n      tls_config:\n        ca_file: {}\n",
        pem.ca_cert.display()
    );
    let p = one(&with_ca);
    let anchors = p.template.tls.anchors().expect("anchors");
    let (_, cert) = x509_parser::parse_x509_certificate(ca.cert_der()).unwrap();
    assert!(anchors.not_after_of(cert.subject().as_raw()).is_some());
    let insecure = one(
        "modules:\n  m:\n    prober: http\n    http:\n      tls_config:\n        insecure_skip_verify: true\n",
    );
    assert!(insecure.template.tls.anchors().is_none());
}
