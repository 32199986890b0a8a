//! The targets the parity tests probe, and the one blackbox_exporter
//! module file both exporters load: a plain 200, TLS whose chain is root →
//! intermediate (10 days left) → leaf (300 days), a 302 to the 200, a body
//! a `fail_if_body_not_matches_regexp` refuses, and a 404.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use testkit::http::{HttpTarget, Response};
use testkit::pki::{Ca, Validity};

use super::Check;

const DAY: Duration = Duration::from_secs(86_400);

/// The body of `/ok` on both targets.
pub const BODY: &str = "sonde parity target\n";

/// The module of plain 2xx probes (the test CA trusted).
pub const HTTP_2XX: &str = "http_2xx";
/// The module whose body regexp `/ok` does not match.
pub const HTTP_REGEX: &str = "http_body_regex";

/// One probe to run on both exporters.
#[derive(Debug, Clone)]
pub struct Case {
    /// What it shows, for messages.
    pub name: &'static str,
    pub url: String,
    pub module: &'static str,
}

/// The running targets, the CA and the module file.
pub struct Targets {
    pub plain: HttpTarget,
    pub tls: HttpTarget,
    /// A loopback port nothing listens on: a refused connect.
    pub refused: std::net::SocketAddr,
    /// The intermediate's notAfter, Unix seconds: the chain's earliest.
    pub intermediate_expiry: f64,
    /// The leaf's notAfter, Unix seconds.
    pub leaf_expiry: f64,
    /// The root CA, PEM (tls_config.ca_file, and sonde's `tls.ca_file`).
    pub ca_file: PathBuf,
    /// The blackbox_exporter configuration both exporters load.
    pub modules_file: PathBuf,
    pub modules_yaml: String,
    _dir: tempfile::TempDir,
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Targets {
    pub fn start() -> Targets {
        let root = Ca::new();
        let intermediate =
            root.intermediate("sonde parity intermediate", Validity::ExpiresIn(10 * DAY));
        let leaf =
            intermediate.leaf_with(&["127.0.0.1", "localhost"], Validity::ExpiresIn(300 * DAY));
        assert!(intermediate.not_after() < leaf.not_after());
        let routes = |b: testkit::http::HttpTargetBuilder| {
            b.response(Response::new(404).body("not here\n"))
                .route("/ok", Response::ok(BODY))
                .route("/redirect", Response::redirect(302, "/ok"))
        };
        let plain = routes(HttpTarget::builder()).start();
        let tls = routes(HttpTarget::builder().tls(&leaf)).start();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, root.cert_pem()).unwrap_or_else(|e| panic!("{e}"));
        let modules_yaml = modules(&ca_file);
        let modules_file = dir.path().join("blackbox.yml");
        std::fs::write(&modules_file, &modules_yaml).unwrap_or_else(|e| panic!("{e}"));
        Targets {
            plain,
            tls,
            refused: testkit::tcp::refused_addr(),
            intermediate_expiry: unix(intermediate.not_after()),
            leaf_expiry: unix(leaf.not_after()),
            ca_file,
            modules_file,
            modules_yaml,
            _dir: dir,
        }
    }

    /// The scheduled checks of an agent probing the targets (the TLS one
    /// trusting the test CA): plain, tls, redirect, not_found.
    pub fn checks(&self) -> Vec<Check<'_>> {
        let ca = Some(self.ca_file.as_path());
        vec![
            Check {
                name: "plain",
                url: self.plain.url("/ok"),
                ca_file: None,
            },
            Check {
                name: "tls",
                url: self.tls.url("/ok"),
                ca_file: ca,
            },
            Check {
                name: "redirect",
                url: self.plain.url("/redirect"),
                ca_file: None,
            },
            Check {
                name: "not_found",
                url: self.plain.url("/missing"),
                ca_file: None,
            },
        ]
    }

    /// The side-by-side cases: every target with the module it is for.
    pub fn cases(&self) -> Vec<Case> {
        vec![
            Case {
                name: "plain 200",
                url: self.plain.url("/ok"),
                module: HTTP_2XX,
            },
            Case {
                name: "TLS, intermediate expiring first",
                url: self.tls.url("/ok"),
                module: HTTP_2XX,
            },
            Case {
                name: "redirect 302 to 200",
                url: self.plain.url("/redirect"),
                module: HTTP_2XX,
            },
            Case {
                name: "body failing fail_if_body_not_matches_regexp",
                url: self.plain.url("/ok"),
                module: HTTP_REGEX,
            },
            Case {
                name: "404",
                url: self.plain.url("/missing"),
                module: HTTP_2XX,
            },
            Case {
                // blackbox sets the address hash and protocol before it
                // connects: 3668918509 and 4 for 127.0.0.1.
                name: "connect refused",
                url: format!("http://{}/ok", self.refused),
                module: HTTP_2XX,
            },
        ]
    }
}

/// The module file: loopback targets are IPv4 literals, so both probe
/// over IPv4 (blackbox's default prefers IPv6 first).
fn modules(ca_file: &std::path::Path) -> String {
    let ca = ca_file.display();
    format!(
        "modules:
  {HTTP_2XX}:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: {ca}
  {HTTP_REGEX}:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_body_not_matches_regexp:
        - \"this text is not in the body\"
      tls_config:
        ca_file: {ca}
"
    )
}
