//! `sonde probe` end to end: the built binary against loopback targets
//! (in-process testkit servers and a real nginx), its output formats and
//! its exit statuses (0 up, 1 down, 2 usage).

mod util;

use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;
use testkit::dns::DnsServer;
use testkit::http::{Alpn, HttpTarget, Response};
use testkit::nginx::Nginx;
use testkit::pki::Ca;
use util::Sonde;

fn ms(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

#[track_caller]
fn assert_contiguous(v: &Value) {
    let sum: f64 = ["dn", "cn", "tl", "ft"]
        .iter()
        .filter_map(|k| ms(v, k))
        .sum();
    let rt = ms(v, "rt").unwrap_or(-1.0);
    assert!(sum <= rt + 1e-9, "dn+cn+tl+ft={sum} > rt={rt}: {v}");
}

#[test]
fn up_probe_prints_a_waterfall_and_exits_0() {
    let target = HttpTarget::plain();
    Sonde::new(["probe", &target.url("/")])
        .run()
        .expect_code(0)
        .expect("the phases with 0.01 ms precision", |r| {
            let out = r.stdout();
            out.contains("200 up")
                && out.contains("connect")
                && out.contains("ttfb")
                && out.contains(&format!("address   {}", target.addr()))
                && out
                    .lines()
                    .any(|l| l.trim_start().starts_with("connect") && l.contains(" ms |"))
        });
}

#[test]
fn json_has_the_record_fields_as_float_milliseconds() {
    let target = HttpTarget::builder()
        .first_byte_delay(Duration::from_millis(50))
        .start();
    let run = Sonde::new(["probe", "--json", &target.url("/")])
        .run()
        .expect_code(0);
    let v = run.json();
    assert_eq!(v["st"], "up", "{}", run.describe());
    assert_eq!(v["sc"], 200);
    assert_eq!(v["dn"], Value::Null, "IP literal: no DNS");
    assert_eq!(v["tl"], Value::Null, "plain HTTP: no TLS");
    assert!(ms(&v, "ft").is_some_and(|ft| ft >= 50.0), "{v}");
    assert!(ms(&v, "cn").is_some_and(|cn| cn < 25.0), "{v}");
    assert_eq!(v["protocol"], "HTTP/1.1");
    assert_eq!(v["address"], target.addr().to_string());
    assert!(
        v["t"].as_u64().is_some_and(|t| t > 1_600_000_000_000),
        "{v}"
    );
    assert_contiguous(&v);
}

#[test]
fn down_probe_exits_1_with_its_error_class() {
    let target = HttpTarget::builder().response(Response::new(500)).start();
    let run = Sonde::new(["probe", "--json", &target.url("/")])
        .run()
        .expect_code(1);
    let v = run.json();
    assert_eq!(
        (v["st"].as_str(), v["error"].as_str()),
        (Some("down"), Some("status"))
    );
    Sonde::new(["probe", &target.url("/"), "--expect-status", "5xx"])
        .run()
        .expect_code(0);
}

#[test]
fn usage_errors_exit_2_and_say_what_was_wrong() {
    Sonde::new(["probe"]).run().expect_code(2);
    Sonde::new(["probe", "http://127.0.0.1:9/", "-H", "no colon"])
        .run()
        .expect_code(2)
        .expect("the bad header named", |r| {
            r.stderr().contains("-H \"no colon\"")
        });
    Sonde::new([
        "probe",
        "https://127.0.0.1:9/",
        "--cacert",
        "/nonexistent/ca.pem",
    ])
    .run()
    .expect_code(2)
    .expect("the missing file named", |r| {
        r.stderr().contains("/nonexistent/ca.pem")
    });
    Sonde::new(["probe", "ftp://127.0.0.1/"])
        .run()
        .expect_code(2)
        .expect("the scheme refused", |r| {
            r.stderr().contains("only http and https")
        });
    Sonde::new(["probe", "http://127.0.0.1:9/", "--resolve", "nonsense"])
        .run()
        .expect_code(2)
        .expect("the --resolve format", |r| {
            r.stderr().contains("HOST:PORT:ADDR")
        });
}

#[test]
fn https_shows_tls_version_cipher_and_certificate_days() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let target = HttpTarget::builder()
        .tls(&ca.leaf(&["cli.test"]))
        .alpn(Alpn::H2AndHttp11)
        .start();
    let url = format!("https://cli.test:{}/", target.port());
    let resolve = format!("cli.test:{}:127.0.0.1", target.port());
    let cacert = pem.ca_cert.to_string_lossy().into_owned();
    let run = Sonde::new([
        "probe",
        "--json",
        &url,
        "--resolve",
        &resolve,
        "--cacert",
        &cacert,
    ])
    .run()
    .expect_code(0);
    let v = run.json();
    assert_eq!(v["tls_version"], "TLSv1.3", "{}", run.describe());
    assert_eq!(v["protocol"], "HTTP/2");
    assert_eq!(v["alpn"], "h2");
    assert!(
        v["cert_days_left"]
            .as_i64()
            .is_some_and(|d| (88..=90).contains(&d)),
        "{v}"
    );
    assert_contiguous(&v);
    Sonde::new(["probe", &url, "--resolve", &resolve, "--cacert", &cacert])
        .run()
        .expect_code(0)
        .expect("TLS details in the waterfall", |r| {
            let out = r.stdout();
            out.contains("TLSv1.3") && out.contains("days left") && out.contains("HTTP/2")
        });
    // Without the CA the certificate is untrusted: down, exit 1.
    let run = Sonde::new(["probe", "--json", &url, "--resolve", &resolve])
        .run()
        .expect_code(1);
    assert_eq!(run.json()["error"], "tls_untrusted", "{}", run.describe());
    // -k accepts it.
    Sonde::new(["probe", "-k", &url, "--resolve", &resolve])
        .run()
        .expect_code(0);
}

#[test]
fn dns_server_override_is_asked() {
    let target = HttpTarget::plain();
    let dns = DnsServer::builder()
        .name("dns.test", &[IpAddr::from([127, 0, 0, 1])])
        .start();
    let url = format!("http://dns.test:{}/", target.port());
    let run = Sonde::new([
        "probe",
        "--json",
        "-4",
        &url,
        "--dns-server",
        &dns.addr().to_string(),
    ])
    .run()
    .expect_code(0);
    let v = run.json();
    assert!(ms(&v, "dn").is_some(), "{}", run.describe());
    assert_eq!(dns.a_queries(), 1);
    assert_eq!(dns.aaaa_queries(), 0, "-4 asks for A only");
}

#[test]
fn redirects_need_dash_l() {
    let target = HttpTarget::builder()
        .route("/old", Response::redirect(301, "/new"))
        .route("/new", Response::ok("moved"))
        .start();
    let url = target.url("/old");
    let run = Sonde::new(["probe", "--json", &url]).run().expect_code(0);
    assert_eq!(run.json()["sc"], 301);
    let run = Sonde::new(["probe", "--json", "-L", &url])
        .run()
        .expect_code(0);
    let v = run.json();
    assert_eq!(
        (v["sc"].as_u64(), v["redirects"].as_u64()),
        (Some(200), Some(1))
    );
}

#[test]
fn real_nginx_plain_and_tls() {
    if !testkit::require_tool("nginx") {
        return;
    }
    let nginx = Nginx::start().unwrap_or_else(|e| panic!("starting nginx: {e:#}"));
    let run = Sonde::new(["probe", "--json", &nginx.plain_url("/")])
        .run()
        .expect_code(0);
    let v = run.json();
    assert_eq!(v["sc"], 200, "{}", run.describe());
    assert!(ms(&v, "cn").is_some() && ms(&v, "ft").is_some(), "{v}");
    assert_eq!(v["dn"], Value::Null);
    assert_contiguous(&v);

    let port = nginx.tls_addr().port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let pem = nginx.ca().pem_files();
    let cacert = pem.ca_cert.to_string_lossy().into_owned();
    let url = nginx.tls_url("/");
    let run = Sonde::new([
        "probe",
        "--json",
        "--resolve",
        &resolve,
        "--cacert",
        &cacert,
        &url,
    ])
    .run()
    .expect_code(0);
    let v = run.json();
    assert_eq!(v["tls_version"], "TLSv1.3", "{}", run.describe());
    assert_eq!(v["protocol"], "HTTP/2", "{}", run.describe());
    assert!(ms(&v, "tl").is_some() && ms(&v, "ft").is_some(), "{v}");
    assert_contiguous(&v);
}
