//! End-to-end tests of `parse`: text in, plan or errors out, with an
//! in-memory [`Host`] standing in for files and environment variables.
//! Checks and defaults here; TLS files and secrets in `files`, sinks and
//! gateways in `sinks`.

mod files;
mod sinks;

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use crate::*;

/// Real PEM files, made once: a CA, and a client certificate with its key.
struct Pki {
    ca: testkit::pki::Ca,
    client: testkit::pki::Leaf,
    other: testkit::pki::Leaf,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = testkit::pki::Ca::new();
        let client = ca.client_cert("client");
        let other = ca.client_cert("other");
        Pki { ca, client, other }
    })
}

/// A line from inside the client key's PEM, which must never be shown.
fn key_line() -> &'static str {
    pki().client.key_pem().lines().nth(1).unwrap_or("-")
}

#[derive(Default)]
struct FakeHost {
    files: HashMap<String, Vec<u8>>,
    vars: HashMap<String, String>,
}

impl FakeHost {
    fn new() -> Self {
        let mut h = FakeHost::default();
        let pki = pki();
        h.files
            .insert("/etc/sonde/ca.pem".into(), pki.ca.cert_pem().into());
        h.files
            .insert("/etc/sonde/client.pem".into(), pki.client.cert_pem().into());
        h.files
            .insert("/etc/sonde/client.key".into(), pki.client.key_pem().into());
        h.files
            .insert("/etc/sonde/other.key".into(), pki.other.key_pem().into());
        h.files.insert(
            "/etc/sonde/garbled.pem".into(),
            b"-----BEGIN CERTIFICATE-----\nMIIB!!\n-----END CERTIFICATE-----\n".to_vec(),
        );
        h.files
            .insert("/etc/sonde/token".into(), b"file-token-value\n".to_vec());
        h.files.insert("/etc/sonde/empty".into(), Vec::new());
        h.files
            .insert("/etc/sonde/notpem".into(), b"hello".to_vec());
        h.vars
            .insert("API_TOKEN".into(), "Bearer env-token-value".into());
        h.vars.insert("EMPTY".into(), String::new());
        h
    }
}

impl Host for FakeHost {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let key = path.to_string_lossy().into_owned();
        self.files
            .get(&key)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
    }

    fn var(&self, name: &str) -> Result<String, std::env::VarError> {
        self.vars
            .get(name)
            .cloned()
            .ok_or(std::env::VarError::NotPresent)
    }
}

fn ok(text: &str) -> Plan {
    match parse(text, "t.toml", &FakeHost::new()) {
        Ok(p) => p,
        Err(e) => panic!("expected a plan, got:\n{e}"),
    }
}

fn err(text: &str) -> String {
    err_with(text, &FakeHost::new())
}

fn err_with(text: &str, host: &FakeHost) -> String {
    match parse(text, "t.toml", host) {
        Ok(p) => panic!("expected errors, got a plan:\n{}", p.render()),
        Err(e) => e.to_string(),
    }
}

const MINIMAL: &str = "[[check]]\nname = \"api\"\nurl = \"https://example.com/health\"\n";

#[test]
fn minimal_check_gets_every_default() {
    let plan = ok(MINIMAL);
    assert_eq!(plan.agent.id, "sonde");
    assert_eq!(plan.agent.concurrency, 256);
    assert_eq!(plan.agent.state_dir, Path::new("/var/lib/sonde"));
    assert_eq!(plan.agent.metrics_listen, None);
    let c = &plan.checks[0];
    assert_eq!(c.name, "api");
    assert_eq!(c.url.as_str(), "https://example.com/health");
    assert_eq!(c.method, "GET");
    assert_eq!(c.interval, Duration::from_secs(30));
    assert_eq!(c.timeout, Duration::from_secs(10));
    assert_eq!(c.expect_status, vec![200..=399]);
    assert_eq!(c.ip_version, IpVersion::Auto);
    assert_eq!(c.dns_server, None);
    assert_eq!(c.follow_redirects, 0);
    assert!(!c.allow_insecure_redirect);
    assert_eq!(c.max_body_bytes, 1 << 20);
    assert_eq!(c.tls, Tls::default());
    assert!(c.enabled && c.headers.is_empty() && c.labels.is_empty() && c.body.is_none());
    let file = plan.sinks.file.as_ref().unwrap();
    assert_eq!(file.dir, Path::new("/var/lib/sonde/records"));
    assert_eq!(file.fsync, Fsync::Every(Duration::from_secs(1)));
    assert_eq!(plan.sinks.stdout, None);
    assert!(plan.sinks.gateways.is_empty());
}

#[test]
fn checks_override_defaults_field_by_field() {
    let text = r#"
[defaults]
interval = "1m"
timeout = "5s"
method = "head"
expect_status = ["2xx"]
ip_version = 4
dns_server = "9.9.9.9"
follow_redirects = 3
allow_insecure_redirect = true
max_body_bytes = "64KiB"
headers = { Accept = "*/*", user-agent = "sonde" }
labels = { team = "core", tier = "1" }
tls = { ca_file = "/etc/sonde/ca.pem", server_name = "internal.example" }

[[check]]
name = "a"
url = "https://a.example/"

[[check]]
name = "b"
url = "http://b.example/"
interval = "10s"
method = "POST"
body = '{"x":1}'
expect_status = [201, "200-204"]
ip_version = "6"
dns_server = "system"
follow_redirects = 0
allow_insecure_redirect = false
headers = { accept = "application/json", authorization = { env = "API_TOKEN" } }
labels = { tier = "2" }
tls = { insecure = true }
enabled = false
"#;
    let plan = ok(text);
    let (a, b) = (&plan.checks[0], &plan.checks[1]);
    assert_eq!(a.interval, Duration::from_secs(60));
    assert_eq!(a.timeout, Duration::from_secs(5));
    assert_eq!(a.method, "HEAD");
    assert_eq!(a.expect_status, vec![200..=299]);
    assert_eq!(a.ip_version, IpVersion::V4);
    assert_eq!(a.dns_server, Some("9.9.9.9:53".parse().unwrap()));
    assert_eq!(a.follow_redirects, 3);
    assert!(a.allow_insecure_redirect, "from [defaults]");
    assert_eq!(a.max_body_bytes, 64 << 10);
    assert_eq!(
        a.tls.ca.as_ref().unwrap().certs[..],
        [pki().ca.cert_der().clone()]
    );
    assert_eq!(a.tls.server_name.as_deref(), Some("internal.example"));
    assert!(!a.tls.insecure);

    assert_eq!(b.interval, Duration::from_secs(10));
    assert_eq!(
        b.timeout,
        Duration::from_secs(5),
        "timeout comes from [defaults]"
    );
    assert_eq!(b.method, "POST");
    assert_eq!(b.body.as_deref(), Some("{\"x\":1}"));
    assert_eq!(b.expect_status, vec![201..=201, 200..=204]);
    assert_eq!(b.ip_version, IpVersion::V6);
    assert_eq!(b.dns_server, None, "\"system\" undoes the default server");
    assert_eq!(b.follow_redirects, 0);
    assert!(!b.allow_insecure_redirect, "overridden");
    assert!(b.tls.insecure, "insecure overridden");
    assert!(b.tls.ca.is_some(), "ca_file still inherited");
    assert!(!b.enabled);
    assert_eq!(plan.enabled_checks().count(), 1);

    let headers: Vec<(&str, &str)> = b
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.expose()))
        .collect();
    assert_eq!(
        headers,
        vec![
            ("accept", "application/json"),
            ("authorization", "Bearer env-token-value"),
            ("user-agent", "sonde"),
        ]
    );
    let labels: Vec<(&str, &str)> = b
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(labels, vec![("team", "core"), ("tier", "2")]);
}

#[test]
fn default_timeout_is_half_a_short_interval() {
    let plan = ok("[[check]]\nname = \"a\"\nurl = \"http://a/\"\ninterval = \"3s\"\n");
    assert_eq!(plan.checks[0].timeout, Duration::from_millis(1500));
}

#[test]
fn compression_defaults_to_auto_and_layers_like_the_other_keys() {
    assert_eq!(ok(MINIMAL).checks[0].compression, Compression::Auto);
    let text = r#"
[defaults]
compression = "identity"

[[check]]
name = "a"
url = "http://a/"

[[check]]
name = "b"
url = "http://b/"
compression = "br"
"#;
    let plan = ok(text);
    assert_eq!(
        plan.checks[0].compression,
        Compression::Identity,
        "from [defaults]"
    );
    assert_eq!(plan.checks[1].compression, Compression::Brotli);
    // The rendered plan reads back the same.
    assert_eq!(
        ok(&plan.render()).checks[1].compression,
        Compression::Brotli
    );
    let bad = "[[check]]\nname = \"a\"\nurl = \"http://a/\"\ncompression = \"zstd\"\n";
    assert_eq!(
        err(bad),
        "t.toml:4:15: check[\"a\"].compression: bad compression \"zstd\" \
         (valid: \"auto\", \"gzip\", \"br\", \"deflate\" or \"identity\")"
    );
}

#[test]
fn interval_under_one_second_is_refused() {
    let text = "[[check]]\nname = \"a\"\nurl = \"http://a/\"\ninterval = \"900ms\"\n";
    assert_eq!(
        err(text),
        "t.toml:4:12: check[\"a\"].interval: interval 900ms is too short (valid: 1s or more)"
    );
}

#[test]
fn timeout_not_below_interval_is_refused_where_it_is_written() {
    // Both in the check.
    let text =
        "[[check]]\nname = \"a\"\nurl = \"http://a/\"\ninterval = \"5s\"\ntimeout = \"5s\"\n";
    assert_eq!(
        err(text),
        "t.toml:5:11: check[\"a\"].timeout: timeout 5s is not below the interval 5s \
         (valid: a timeout shorter than the interval)"
    );
    // Interval from [defaults], timeout in the check.
    let text = "[defaults]\ninterval = \"5s\"\n[[check]]\nname = \"a\"\nurl = \"http://a/\"\ntimeout = \"6s\"\n";
    assert_eq!(
        err(text),
        "t.toml:6:11: check[\"a\"].timeout: timeout 6s is not below the interval 5s \
         (interval set in [defaults] on line 2) (valid: a timeout shorter than the interval)"
    );
    // Timeout from [defaults], the check shortens the interval.
    let text = "[defaults]\ntimeout = \"10s\"\n[[check]]\nname = \"a\"\nurl = \"http://a/\"\ninterval = \"2s\"\n";
    assert_eq!(
        err(text),
        "t.toml:6:12: check[\"a\"].interval: timeout 10s is not below the interval 2s \
         (timeout set in [defaults] on line 2) (valid: a timeout shorter than the interval)"
    );
    // Both in [defaults]: reported once, at [defaults], however many checks.
    let text = "[defaults]\ninterval = \"2s\"\ntimeout = \"2s\"\n\
                [[check]]\nname = \"a\"\nurl = \"http://a/\"\n[[check]]\nname = \"b\"\nurl = \"http://b/\"\n";
    assert_eq!(
        err(text),
        "t.toml:3:11: defaults.timeout: timeout 2s is not below the interval 2s \
         (valid: a timeout shorter than the interval)"
    );
    // [defaults] timeout against the built-in interval, two checks: once.
    let text = "[defaults]\ntimeout = \"40s\"\n[[check]]\nname = \"a\"\nurl = \"http://a/\"\n[[check]]\nname = \"b\"\nurl = \"http://b/\"\n";
    assert_eq!(
        err(text),
        "t.toml:2:11: defaults.timeout: timeout 40s is not below the interval 30s \
         (the default interval) (valid: a timeout shorter than the interval)"
    );
}

#[test]
fn duplicate_names_point_at_the_second_and_name_the_first() {
    let text = "[[check]]\nname = \"a\"\nurl = \"http://a/\"\n\n[[check]]\nname = \"a\"\nurl = \"http://b/\"\n";
    assert_eq!(
        err(text),
        "t.toml:6:8: check[1].name: duplicate check name `a`, first used on line 2 \
         (valid: a name not used before)"
    );
}

#[test]
fn missing_name_and_url_are_reported() {
    let text = "[[check]]\ninterval = \"5s\"\n";
    let e = err(text);
    assert!(e.contains("check[0]: missing required key `name`"), "{e}");
    assert!(e.contains("check[0]: missing required key `url`"), "{e}");
}

#[test]
fn bad_url_method_regex_and_name_are_all_reported_sorted() {
    let text = r#"[[check]]
name = "bad name"
url = "ftp://example.com/"
method = "GE T"
body_matches = "a("
"#;
    let e = err(text);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 4, "{e}");
    assert_eq!(
        lines[0],
        "t.toml:2:8: check[0].name: bad name \"bad name\" (valid: 1 to 64 characters from A-Z a-z 0-9 _ . -)"
    );
    assert_eq!(
        lines[1],
        "t.toml:3:7: check[0].url: bad URL `ftp://example.com/`: scheme `ftp` is not supported \
         (valid: an absolute http:// or https:// URL with a host, such as \"https://example.com/health\")"
    );
    assert_eq!(
        lines[2],
        "t.toml:4:10: check[0].method: bad method `GE T` \
         (valid: an HTTP method such as GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH)"
    );
    assert!(
        lines[3].starts_with(
            "t.toml:5:16: check[0].body_matches: bad regular expression: regex parse error:"
        ),
        "{e}"
    );
    assert!(lines[3].ends_with("(valid: regex crate syntax)"), "{e}");
}

#[test]
fn body_assertions_need_a_body() {
    let text =
        "[[check]]\nname = \"a\"\nurl = \"http://a/\"\nmethod = \"HEAD\"\nbody_contains = \"ok\"\n";
    assert!(err(text).contains("check[\"a\"]: a HEAD response has no body to search"));
    let text = "[defaults]\nmax_body_bytes = 0\n[[check]]\nname = \"a\"\nurl = \"http://a/\"\nbody_matches = \"ok\"\n";
    assert_eq!(
        err(text),
        "t.toml:2:18: defaults.max_body_bytes: max_body_bytes is 0 but check[\"a\"] searches the body \
         (valid: a size above 0, such as \"1MiB\")"
    );
}

#[test]
fn invalid_values_across_sections_are_all_reported() {
    let text = r#"
[agent]
concurrency = 0
metrics_listen = "localhost:9464"

[defaults]
expect_status = []
ip_version = 5
dns_server = "dns.google"
follow_redirects = 99
labels = { check = "x" }
headers = { "bad header" = "x" }

[sinks.file]
fsync = "sometimes"
segment_max_bytes = "2GiB"
retention_max_bytes = "1GiB"

[sinks.stdout]
enabled = true
format = "xml"
"#;
    let e = err(text);
    let keys: Vec<&str> = e
        .lines()
        .map(|l| l.split(": ").nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        keys,
        vec![
            "agent.concurrency",
            "agent.metrics_listen",
            "defaults.expect_status",
            "defaults.ip_version",
            "defaults.dns_server",
            "defaults.follow_redirects",
            "defaults.labels.check",
            "defaults.headers.bad header",
            "sinks.file.fsync",
            "sinks.file.retention_max_bytes",
            "sinks.stdout.format",
        ],
        "{e}"
    );
}

#[test]
fn render_reads_back_into_the_same_plan() {
    let text = r#"
[agent]
id = "eu-1"
region = "eu-west"
metrics_listen = "127.0.0.1:9464"
state_dir = "./data"

[defaults]
headers = { "x.odd" = "a \"quoted\" value", authorization = { env = "API_TOKEN" } }
labels = { team = "core" }

[[check]]
name = "a"
url = "https://a.example/p?q=1"
interval = "1m30s"
body = "line1\nline2"
body_contains = "ok"
body_matches = '^\d+$'
expect_status = [204, "3xx"]
ip_version = 6
dns_server = "[::1]:5353"
tls = { ca_file = "/etc/sonde/ca.pem", cert_file = "/etc/sonde/client.pem", key_file = "/etc/sonde/client.key", server_name = "a.example" }

[[check]]
name = "b"
url = "http://b/"
enabled = false

[[check]]
name = "c"
url = "http://c/"
ip_version = "prefer4"

[[check]]
name = "d"
url = "http://d/"
ip_version = "prefer6"

[sinks.file]
fsync = "always"

[sinks.stdout]
enabled = true
format = "json"

[[sinks.gateway]]
name = "gw"
url = "https://gw/"
token = { env = "API_TOKEN" }
ca_file = "/etc/sonde/ca.pem"

[[sinks.gateway]]
name = "local"
url = "http://127.0.0.1:7700/"
token = { env = "API_TOKEN" }

[[sinks.gateway]]
name = "replicas"
urls = ["https://gw-a:7700/", "https://gw-b:7700/"]
token = { env = "API_TOKEN" }
"#;
    let plan = ok(text);
    let rendered = plan.render();
    let again = match parse(&rendered, "rendered", &FakeHost::new()) {
        Ok(p) => p,
        Err(e) => panic!("{e}\n{rendered}"),
    };
    assert_eq!(plan, again, "{rendered}");
    assert_eq!(again.render(), rendered);
    let versions: Vec<IpVersion> = again.checks.iter().map(|c| c.ip_version).collect();
    assert_eq!(
        versions[2..],
        [IpVersion::Prefer4, IpVersion::Prefer6],
        "{rendered}"
    );
}

#[test]
fn load_names_the_file_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sonde.toml");
    std::fs::write(&path, "[agent]\nid = 7\n").unwrap();
    let e = load(&path).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}:2:6: agent.id: wrong type: integer `7` (valid: a string)",
            path.display()
        )
    );
    let missing = dir.path().join("nope.toml");
    let e = load(&missing).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{0}:1:1: cannot read {0}: No such file or directory",
            missing.display()
        )
    );
}

#[test]
fn errors_after_an_unknown_key_are_still_reported() {
    let text = "[[check]]\nname = \"a\"\nurl = \"http://a/\"\nretries = 3\n\
                [[check]]\nname = \"b\"\nurl = \"http://b/\"\ninterval = \"10ms\"\n\
                [sinks.stdout]\nformat = \"xml\"\n";
    let e = err(text);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(
        lines[0].starts_with("t.toml:4:1: check[\"a\"]: unknown key `retries`"),
        "{e}"
    );
    assert!(
        lines[1].starts_with("t.toml:8:12: check[\"b\"].interval: interval 10ms is too short"),
        "{e}"
    );
    assert!(
        lines[2].starts_with("t.toml:10:10: sinks.stdout.format: unknown format \"xml\""),
        "{e}"
    );
}

#[test]
fn checks_are_not_judged_against_defaults_that_failed_to_read() {
    // With [defaults] unreadable, the check's 5s timeout must not be compared
    // with a guessed interval.
    let text = "[defaults]\nintervl = \"10s\"\n[[check]]\nname = \"a\"\nurl = \"http://a/\"\ntimeout = \"5s\"\n";
    let e = err(text);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.starts_with("t.toml:2:1: defaults: unknown key `intervl`"),
        "{e}"
    );
}

#[test]
fn every_wrong_key_of_one_check_is_reported() {
    let text = r#"[[check]]
name = "api"
url = "https://api/"
tls = { cafile = "/x" }
headers = { authorization = { evn = "X" } }
expect_status = [200, true]
"#;
    let e = err(text);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(
        lines[0]
            .starts_with("t.toml:4:9: check[\"api\"].tls: unknown key `cafile` (valid: `ca_file`,"),
        "{e}"
    );
    assert_eq!(
        lines[1],
        "t.toml:5:29: check[\"api\"].headers.authorization: bad header value \
         (valid: a string, { env = \"NAME\" } or { file = \"/path\" })"
    );
    assert!(
        lines[2].starts_with(
            "t.toml:6:23: check[\"api\"].expect_status[1]: wrong type: boolean `true`"
        ),
        "{e}"
    );
}

#[test]
fn a_dropped_required_key_is_not_also_reported_missing() {
    let text = "[[check]]\nname = \"a\"\nurl = 5\n";
    let e = err(text);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.starts_with("t.toml:3:7: check[\"a\"].url: wrong type: integer `5`"),
        "{e}"
    );
}

#[test]
fn the_plan_carries_compiled_values() {
    let text = r#"[[check]]
name = "a"
url = "https://a/"
method = "post"
headers = { accept = "*/*", authorization = { env = "API_TOKEN" } }
body_matches = "^ok"
"#;
    let plan = ok(text);
    let c = &plan.checks[0];
    assert_eq!(c.method, http::Method::POST);
    assert_eq!(c.header_map.len(), 2);
    assert_eq!(
        c.header_map.get("accept").map(|v| v.as_bytes()),
        Some(&b"*/*"[..])
    );
    let auth = c.header_map.get("authorization");
    assert!(auth.is_some_and(|v| v.is_sensitive() && v.as_bytes() == b"Bearer env-token-value"));
    assert!(!c.header_map.get("accept").is_some_and(|v| v.is_sensitive()));
    let pattern = c
        .body_matches
        .as_ref()
        .map(|p| p.regex().is_match(b"ok\xff"));
    assert_eq!(
        pattern,
        Some(true),
        "a bytes regex, matched against raw bytes"
    );
}

#[test]
fn a_ca_file_replaces_the_system_roots_unless_system_roots_is_set() {
    let text = r#"
[defaults]
tls = { ca_file = "/etc/sonde/ca.pem" }

[[check]]
name = "pinned"
url = "https://a.example/"

[[check]]
name = "both"
url = "https://b.example/"
tls = { system_roots = true }

[[check]]
name = "public"
url = "https://c.example/"
tls = { ca_file = "/etc/sonde/ca.pem", system_roots = true }

[[check]]
name = "explicit"
url = "https://d.example/"
tls = { system_roots = false }
"#;
    let plan = ok(text);
    let roots: Vec<(bool, bool)> = plan
        .checks
        .iter()
        .map(|c| (c.tls.ca.is_some(), c.tls.system_roots))
        .collect();
    assert_eq!(
        roots,
        [(true, false), (true, true), (true, true), (true, false)]
    );
    // Every check that trusts the named CA alone gets a note, and only those.
    let notes = plan.notes();
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert!(
        notes[0].starts_with(
            "check \"pinned\": tls.ca_file /etc/sonde/ca.pem replaces the system roots"
        ),
        "{notes:#?}"
    );
    assert!(
        notes[0].ends_with("set tls.system_roots = true to trust both"),
        "{notes:#?}"
    );
    assert!(notes[1].starts_with("check \"explicit\":"), "{notes:#?}");
    // The plan renders what it means, and reads back the same.
    let rendered = plan.render();
    assert!(
        rendered.contains("ca_file = \"/etc/sonde/ca.pem\", system_roots = false"),
        "{rendered}"
    );
    assert_eq!(ok(&rendered).checks, plan.checks);
}

#[test]
fn without_a_ca_file_the_system_roots_are_trusted_and_nothing_is_noted() {
    let plan = ok(
        "[[check]]\nname = \"a\"\nurl = \"https://a.example/\"\ntls = { system_roots = false }\n",
    );
    assert!(plan.checks[0].tls.system_roots);
    assert!(plan.notes().is_empty());
}

#[test]
fn prometheus_section_defaults_and_reads() {
    assert_eq!(ok(MINIMAL).prometheus, Prometheus::default());
    let plan = ok(&format!(
        "[prometheus]\nhistograms = false\nphase_buckets = [0.01, 1, 2.5]\n\
         blackbox_config = \"/etc/prometheus/blackbox.yml\"\n{MINIMAL}"
    ));
    assert!(!plan.prometheus.histograms);
    assert_eq!(plan.prometheus.phase_buckets, vec![0.01, 1.0, 2.5]);
    assert_eq!(
        plan.prometheus.blackbox_config.as_deref(),
        Some(std::path::Path::new("/etc/prometheus/blackbox.yml"))
    );
    let again = ok(&plan.render());
    assert_eq!(again.prometheus, plan.prometheus);
}

#[test]
fn bad_phase_buckets_are_refused_where_written() {
    let e = err(&format!(
        "[prometheus]\nphase_buckets = [1, 0.5]\n{MINIMAL}"
    ));
    assert!(
        e.contains("t.toml:2:17: prometheus.phase_buckets: buckets not ascending: 1 then 0.5"),
        "{e}"
    );
    let e = err(&format!("[prometheus]\nphase_buckets = [0, 1]\n{MINIMAL}"));
    assert!(
        e.contains("bucket 0 is not a positive finite number"),
        "{e}"
    );
    let e = err(&format!("[prometheus]\nphase_buckets = []\n{MINIMAL}"));
    assert!(e.contains("no buckets"), "{e}");
    let e = err(&format!("[prometheus]\nhistogram = false\n{MINIMAL}"));
    assert!(e.contains("histogram"), "{e}");
    let e = err(&format!("[prometheus]\nblackbox_config = \"\"\n{MINIMAL}"));
    assert!(e.contains("prometheus.blackbox_config: empty path"), "{e}");
}
