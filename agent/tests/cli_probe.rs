//! `sonde probe` end to end: the built binary against loopback targets
//! (in-process testkit servers and a real nginx), its output formats and
//! its exit statuses (0 up, 1 down, 2 usage).

use std::net::IpAddr;
use std::time::Duration;

use crate::util::Sonde;
use crate::util::process::Process;
use serde_json::Value;
use testkit::dns::DnsServer;
use testkit::http::{Alpn, HttpTarget, Misbehaviour, Response};
use testkit::nginx::Nginx;
use testkit::pki::Ca;
use testkit::proxy::DelayProxy;

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
    let run = Sonde::new(["probe", "--format", "json", &target.url("/")])
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
    let run = Sonde::new(["probe", "--format", "json", &target.url("/")])
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
        "--format",
        "json",
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
    let run = Sonde::new(["probe", "--format", "json", &url, "--resolve", &resolve])
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
        "--format",
        "json",
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
    assert_eq!(v["dns"]["a"]["outcome"], "answered", "{}", run.describe());
    assert_eq!(v["dns"]["a"]["addresses"], 1, "{}", run.describe());
    assert_eq!(v["dns"]["a"]["server"], dns.addr().to_string());
    assert_eq!(
        v["dns"]["aaaa"]["outcome"],
        "not_asked",
        "{}",
        run.describe()
    );
}

#[test]
fn a_refused_aaaa_is_shown_beside_the_a_answer() {
    let target = HttpTarget::plain();
    let dns = DnsServer::builder()
        .name("dns.test", &[IpAddr::from([127, 0, 0, 1])])
        .aaaa(testkit::dns::DnsBehaviour::Refused)
        .start();
    let url = format!("http://dns.test:{}/", target.port());
    let run = Sonde::new(["probe", &url, "--dns-server", &dns.addr().to_string()])
        .run()
        .expect_code(0);
    assert!(
        run.stdout().contains("dns       AAAA refused (") && run.stdout().contains("A 1 address ("),
        "{}",
        run.describe()
    );
    assert_eq!(dns.aaaa_queries(), 1, "not asked again");
}

#[test]
fn redirects_need_dash_l() {
    let target = HttpTarget::builder()
        .route("/old", Response::redirect(301, "/new"))
        .route("/new", Response::ok("moved"))
        .start();
    let url = target.url("/old");
    let run = Sonde::new(["probe", "--format", "json", &url])
        .run()
        .expect_code(0);
    assert_eq!(run.json()["sc"], 301);
    let run = Sonde::new(["probe", "--format", "json", "-L", &url])
        .run()
        .expect_code(0);
    let v = run.json();
    assert_eq!(
        (v["sc"].as_u64(), v["redirects"].as_u64()),
        (Some(200), Some(1))
    );
}

/// Starts nginx, or `None` (after the skip message) when it is not installed.
fn start_nginx() -> Option<Nginx> {
    if !testkit::require_tool("nginx") {
        return None;
    }
    Some(Nginx::start().unwrap_or_else(|e| panic!("starting nginx: {e:#}")))
}

/// Starts nginx with its slow locations, or `None` (after the skip message)
/// when nginx or its echo module is not installed.
fn start_nginx_with_echo() -> Option<Nginx> {
    if !testkit::require_tool("nginx") || !testkit::nginx::require_echo_module() {
        return None;
    }
    let nginx = start_nginx()?;
    assert!(
        nginx.has_echo(),
        "the echo module is installed but not loaded"
    );
    Some(nginx)
}

/// `sonde probe --json ARGS` that must come out up; its JSON.
fn probe_up(args: &[&str]) -> Value {
    let run = Sonde::new(["probe", "--format", "json"].iter().chain(args))
        .run()
        .expect_code(0);
    let v = run.json();
    assert_eq!(v["st"], "up", "{}", run.describe());
    v
}

/// The phases of `v` as (name, ms): dn, cn, tl, ft where present, then
/// body (rt minus their sum), so that together they make up rt.
fn phases(v: &Value) -> Vec<(&'static str, f64)> {
    let mut out: Vec<_> = ["dn", "cn", "tl", "ft"]
        .into_iter()
        .filter_map(|k| ms(v, k).map(|m| (k, m)))
        .collect();
    let to_first_byte: f64 = out.iter().map(|(_, m)| m).sum();
    out.push(("body", ms(v, "rt").unwrap_or(f64::NAN) - to_first_byte));
    out
}

/// A delay injected into one phase shows there and only there: `delayed`
/// took at least `at_least` ms, every other phase under `others_below` ms,
/// and the phases are contiguous.
#[track_caller]
fn assert_delay_in(v: &Value, delayed: &str, at_least: Duration, others_below: Duration) {
    let phases = phases(v);
    let shown: Vec<_> = phases.iter().map(|(k, m)| format!("{k}={m:.3}")).collect();
    eprintln!(
        "{delayed} >= {at_least:?}: {} rt={:.3} ms",
        shown.join(" "),
        ms(v, "rt").unwrap_or(f64::NAN)
    );
    let (at_least, others_below) = (
        at_least.as_secs_f64() * 1e3,
        others_below.as_secs_f64() * 1e3,
    );
    assert!(
        phases.iter().any(|&(k, _)| k == delayed),
        "no {delayed} phase: {v}"
    );
    for (k, m) in phases {
        if k == delayed {
            assert!(m >= at_least, "{k}={m} ms, want >= {at_least} ms: {v}");
        } else {
            assert!(
                m < others_below,
                "{k}={m} ms, want < {others_below} ms: {v}"
            );
        }
    }
    assert_contiguous(v);
}

#[test]
fn real_nginx_plain_and_tls() {
    let Some(nginx) = start_nginx() else {
        return;
    };
    let v = probe_up(&[&nginx.plain_url("/")]);
    assert_eq!(v["sc"], 200, "{v}");
    assert_eq!(v["protocol"], "HTTP/1.1", "{v}");
    assert!(ms(&v, "cn").is_some() && ms(&v, "ft").is_some(), "{v}");
    assert_eq!(v["dn"], Value::Null);
    assert_eq!(v["tl"], Value::Null);
    assert_contiguous(&v);

    let resolve = format!("localhost:{}:127.0.0.1", nginx.tls_addr().port());
    let pem = nginx.ca().pem_files();
    let cacert = pem.ca_cert.to_string_lossy().into_owned();
    let url = nginx.tls_url("/");
    let v = probe_up(&["--resolve", &resolve, "--cacert", &cacert, &url]);
    assert_eq!(v["tls_version"], "TLSv1.3", "{v}");
    assert_eq!(v["protocol"], "HTTP/2", "{v}");
    assert!(ms(&v, "tl").is_some() && ms(&v, "ft").is_some(), "{v}");
    assert_contiguous(&v);
}

/// nginx holding its whole response (echo_sleep before any output) shows
/// in ft alone, over plain HTTP/1.1 and over TLS with h2.
#[test]
fn real_nginx_slow_first_byte_lands_in_ft() {
    let Some(nginx) = start_nginx_with_echo() else {
        return;
    };
    let (delay, slack) = (Nginx::ECHO_DELAY, Nginx::ECHO_TIMER_SLACK);
    let v = probe_up(&[&nginx.plain_url(Nginx::SLOW_FIRST_BYTE)]);
    assert_eq!(v["protocol"], "HTTP/1.1", "{v}");
    assert_delay_in(&v, "ft", delay - slack, delay / 2);

    let resolve = format!("localhost:{}:127.0.0.1", nginx.tls_addr().port());
    let pem = nginx.ca().pem_files();
    let cacert = pem.ca_cert.to_string_lossy().into_owned();
    let url = nginx.tls_url(Nginx::SLOW_FIRST_BYTE);
    let v = probe_up(&["--resolve", &resolve, "--cacert", &cacert, &url]);
    assert_eq!(v["protocol"], "HTTP/2", "{v}");
    assert_delay_in(&v, "ft", delay - slack, delay / 2);
}

/// nginx sending its head and a first line at once and the rest later:
/// the wait is body transfer (rt minus dn+cn+tl+ft), not ft.
///
/// The body phase starts when sonde reads the first byte, nginx's wait when
/// it flushed it, so on a loaded machine the body looks shorter than the
/// wait by sonde's read lag (196.4 of 200 ms seen under load, with ft at
/// 5.4 ms). Hence a wider slack than the timer's; ft staying under half the
/// delay still shows the wait is not in ft.
#[test]
fn real_nginx_slow_body_lands_after_the_first_byte() {
    let Some(nginx) = start_nginx_with_echo() else {
        return;
    };
    let (delay, slack) = (Nginx::ECHO_DELAY, Duration::from_millis(25));
    let v = probe_up(&[&nginx.plain_url(Nginx::SLOW_BODY)]);
    assert_eq!(v["protocol"], "HTTP/1.1", "{v}");
    assert_delay_in(&v, "body", delay - slack, delay / 2);

    let resolve = format!("localhost:{}:127.0.0.1", nginx.tls_addr().port());
    let pem = nginx.ca().pem_files();
    let cacert = pem.ca_cert.to_string_lossy().into_owned();
    let url = nginx.tls_url(Nginx::SLOW_BODY);
    let v = probe_up(&["--resolve", &resolve, "--cacert", &cacert, &url]);
    assert_eq!(v["protocol"], "HTTP/2", "{v}");
    assert_delay_in(&v, "body", delay - slack, delay / 2);
}

/// A slow DNS answer for nginx's name shows in dn alone.
#[test]
fn real_nginx_slow_dns_lands_in_dn() {
    let Some(nginx) = start_nginx() else {
        return;
    };
    let delay = Duration::from_millis(150);
    let dns = DnsServer::builder()
        .name("nginx.test", &[IpAddr::from([127, 0, 0, 1])])
        .answer_delay(delay)
        .start();
    let dns_addr = dns.addr().to_string();
    let url = format!("http://nginx.test:{}/", nginx.plain_addr().port());
    let v = probe_up(&["--dns-server", &dns_addr, &url]);
    assert_eq!(v["protocol"], "HTTP/1.1", "{v}");
    assert_delay_in(&v, "dn", delay, delay / 2);

    // HTTPS: nginx's certificate is for localhost, which /etc/hosts would answer.
    let pem = nginx.ca().pem_files();
    let cacert = pem.ca_cert.to_string_lossy().into_owned();
    let url = format!("https://nginx.test:{}/", nginx.tls_addr().port());
    let v = probe_up(&[
        "--dns-server",
        &dns_addr,
        "--server-name",
        "localhost",
        "--cacert",
        &cacert,
        &url,
    ]);
    assert_eq!(v["protocol"], "HTTP/2", "{v}");
    assert_delay_in(&v, "dn", delay, delay / 2);
    assert!(dns.a_queries() >= 2, "the DNS server was asked");
}

/// nginx's first TLS flight held back on the way (a proxy in front of its
/// TLS port) shows in tl alone: not in cn, which completes before any byte
/// moves, nor in ft.
#[test]
fn real_nginx_slow_tls_handshake_lands_in_tl() {
    let Some(nginx) = start_nginx() else {
        return;
    };
    let delay = Duration::from_millis(150);
    let proxy = DelayProxy::start(nginx.tls_addr(), delay);
    let resolve = format!("localhost:{}:127.0.0.1", proxy.port());
    let pem = nginx.ca().pem_files();
    let cacert = pem.ca_cert.to_string_lossy().into_owned();
    let url = format!("https://localhost:{}/", proxy.port());
    let v = probe_up(&["--resolve", &resolve, "--cacert", &cacert, &url]);
    assert_eq!(v["protocol"], "HTTP/2", "{v}");
    assert_eq!(v["tls_version"], "TLSv1.3", "{v}");
    assert_delay_in(&v, "tl", delay, delay / 2);
}

#[test]
fn https_to_http_redirects_need_allow_insecure_redirect() {
    let plain = HttpTarget::builder()
        .route("/landing", Response::ok("cleartext"))
        .start();
    let ca = Ca::new();
    let tls = HttpTarget::builder()
        .tls(&ca.leaf(&["127.0.0.1"]))
        .route("/start", Response::redirect(302, &plain.url("/landing")))
        .start();
    let url = tls.url("/start");
    let run = Sonde::new(["probe", "--format", "json", "-k", "-L", &url])
        .run()
        .expect_code(1);
    assert_eq!(
        run.json()["error"],
        "insecure_redirect",
        "{}",
        run.describe()
    );
    assert_eq!(plain.requests(), 0);
    let run = Sonde::new([
        "probe",
        "--format",
        "json",
        "-k",
        "-L",
        "--allow-insecure-redirect",
        &url,
    ])
    .run()
    .expect_code(0);
    assert_eq!(run.json()["redirects"], 1, "{}", run.describe());
    assert_eq!(plain.requests(), 1);
}

/// A 200 MB body holding the needle across a chunk boundary, 1 KB before
/// its end.
fn needle_target() -> (HttpTarget, u64) {
    const LEN: u64 = 200_000_000;
    let target = HttpTarget::builder()
        .misbehave(Misbehaviour::HugeBodyWith {
            len: LEN,
            needle: "sonde-needle-7f3a",
            at: LEN - 1000,
        })
        .start();
    (target, LEN)
}

#[test]
fn body_contains_streams_a_large_body_in_little_memory() {
    let (target, len) = needle_target();
    let url = target.url("/");
    let size = (len + 1).to_string();
    let args = [
        "probe",
        "--format",
        "json",
        "--max-time",
        "60",
        "--max-body-size",
        &size,
        "--body-contains",
        "sonde-needle-7f3a",
        &url,
    ];
    let started = std::time::Instant::now();
    let mut child = Process::start(&args, &[]);
    let (code, peak_kib) = child.wait_with_peak_rss(Duration::from_secs(90));
    let wall = started.elapsed();
    let v: Value = serde_json::from_str(child.stdout().trim())
        .unwrap_or_else(|e| panic!("JSON: {e}{}", child.describe()));
    eprintln!(
        "200 MB body, --body-contains: peak RSS {:.1} MB, rt {} ms, wall {} ms",
        peak_kib as f64 / 1024.0,
        v["rt"],
        wall.as_millis()
    );
    assert_eq!(
        (code, &v["st"]),
        (0, &Value::from("up")),
        "{}",
        child.describe()
    );
    // Holding the body (as the search once did) would take over 200 MB.
    assert!(peak_kib < 100 * 1024, "peak RSS {peak_kib} KiB");
    // No search is left for after the last byte: the process ends soon
    // after it (a search over 200 MB held in memory took seconds).
    let rt = ms(&v, "rt").unwrap_or(f64::MAX);
    assert!(
        (wall.as_millis() as f64) < rt + 1000.0,
        "wall {wall:?}, rt {rt} ms"
    );

    // A needle that is not there is not found, with the same memory.
    let args = [
        "probe",
        "--format",
        "json",
        "--max-time",
        "60",
        "--max-body-size",
        &size,
        "--body-contains",
        "sonde-needle-7f3b",
        &url,
    ];
    let mut child = Process::start(&args, &[]);
    let (code, peak_kib) = child.wait_with_peak_rss(Duration::from_secs(90));
    let v: Value = serde_json::from_str(child.stdout().trim())
        .unwrap_or_else(|e| panic!("JSON: {e}{}", child.describe()));
    assert_eq!((code, &v["error"]), (1, &Value::from("assertion")), "{v}");
    assert!(peak_kib < 100 * 1024, "peak RSS {peak_kib} KiB");
}

#[test]
fn a_deadline_shorter_than_the_body_ends_the_search_at_the_deadline() {
    let (target, len) = needle_target();
    let size = (len + 1).to_string();
    let run = Sonde::new([
        "probe",
        "--format",
        "json",
        "--max-time",
        "300ms",
        "--max-body-size",
        &size,
        "--body-contains",
        "sonde-needle-7f3a",
        &target.url("/"),
    ])
    .run()
    .expect_code(1);
    let v = run.json();
    assert_eq!(v["error"], "timeout", "{}", run.describe());
    let rt = ms(&v, "rt").unwrap_or(f64::MAX);
    assert!(rt < 600.0, "rt {rt} ms for a 300 ms deadline");
}

/// `--cacert` replaces the system roots, as in curl. The "system store"
/// here is `SSL_CERT_FILE`, which rustls-native-certs reads instead of the
/// machine's store: a test cannot add to the real one.
#[test]
fn cacert_replaces_the_system_roots_unless_system_roots_is_given() {
    let system_ca = Ca::new();
    let system_pem = system_ca.pem_files();
    let private_pem = Ca::new().pem_files();
    let target = HttpTarget::builder()
        .tls(&system_ca.leaf(&["cli.test"]))
        .start();
    let url = format!("https://cli.test:{}/", target.port());
    let resolve = format!("cli.test:{}:127.0.0.1", target.port());
    let store = system_pem.ca_cert.to_string_lossy().into_owned();
    let private = private_pem.ca_cert.to_string_lossy().into_owned();
    let probe = |extra: &[&str], code: i32| {
        let args = ["probe", "--format", "json", &url, "--resolve", &resolve];
        Sonde::new(args.iter().chain(extra))
            .env("SSL_CERT_FILE", &store)
            .env("SSL_CERT_DIR", "/nonexistent")
            .run()
            .expect_code(code)
            .json()
    };
    // The stand-in store is what the system roots are: trusted without a CA.
    assert_eq!(probe(&[], 0)["st"], "up");
    // Another CA named: it alone is trusted.
    let v = probe(&["--cacert", &private], 1);
    assert_eq!(v["error"], "tls_untrusted", "{v}");
    // Both, when asked for.
    assert_eq!(
        probe(&["--cacert", &private, "--system-roots"], 0)["st"],
        "up"
    );
    // The named CA that issued the certificate is trusted alone.
    let own = system_pem.ca_cert.to_string_lossy().into_owned();
    let v = Sonde::new([
        "probe",
        "--format",
        "json",
        &url,
        "--resolve",
        &resolve,
        "--cacert",
        &own,
    ])
    .env("SSL_CERT_FILE", &private)
    .env("SSL_CERT_DIR", "/nonexistent")
    .run()
    .expect_code(0)
    .json();
    assert_eq!(v["st"], "up", "{v}");
}

#[test]
fn cert_days_left_is_the_earliest_over_the_chain_and_names_it() {
    let root = Ca::new();
    let pem = root.pem_files();
    let intermediate = root.intermediate(
        "cli intermediate",
        testkit::pki::Validity::ExpiresIn(Duration::from_secs(10 * 86_400 + 3600)),
    );
    let leaf = intermediate.leaf_with(
        &["chain.test"],
        testkit::pki::Validity::ExpiresIn(Duration::from_secs(300 * 86_400 + 3600)),
    );
    let target = HttpTarget::builder().tls(&leaf).start();
    let url = format!("https://chain.test:{}/", target.port());
    let resolve = format!("chain.test:{}:127.0.0.1", target.port());
    let cacert = pem.ca_cert.to_string_lossy().into_owned();
    let args = ["probe", &url, "--resolve", &resolve, "--cacert", &cacert];
    let run = Sonde::new(args.iter().copied().chain(["--format", "json"]))
        .run()
        .expect_code(0);
    let v = run.json();
    assert_eq!(v["cert_days_left"], 10, "{}", run.describe());
    assert_eq!(v["leaf_cert_days_left"], 300, "{v}");
    assert_eq!(v["cert_earliest_subject"], "CN=cli intermediate", "{v}");
    Sonde::new(args)
        .run()
        .expect_code(0)
        .expect("the earliest certificate named, the leaf's days beside", |r| {
            r.stdout().contains(
                "cert      10 days left: CN=cli intermediate (chain certificate 2), leaf 300 days left",
            )
        });
}
