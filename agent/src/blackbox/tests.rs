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
    let e = load("modules:\n  a:\n    prober: http\n    http:\n      bearer_token_file: missing\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bb.yml") && e.contains("`a`") && e.contains("missing"),
        "{e}"
    );
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
        ("http:\n      compression: br", "http.compression"),
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
    assert_eq!(base2_bytes("1024"), Ok(1024));
    assert_eq!(base2_bytes("512KB"), Ok(512 << 10));
    assert_eq!(base2_bytes("10MiB"), Ok(10 << 20));
    assert!(base2_bytes("10 MB").is_err() && base2_bytes("1mb").is_err());
}

fn endpoint() -> Endpoint {
    let modules = parse(
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n",
        path(),
    )
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
