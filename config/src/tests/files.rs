//! TLS files and secrets: read through the host, decoded, checked as
//! rustls will use them, never printed.

use super::*;

#[test]
fn unreadable_and_non_pem_tls_files_are_refused() {
    let text = "[defaults]\ntls = { ca_file = \"/x/y\" }\n[[check]]\nname = \"a\"\nurl = \"https://a/\"\n\
                tls = { cert_file = \"/etc/sonde/notpem\", key_file = \"/etc/sonde/client.key\" }\n";
    let e = err(text);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines[0],
        "t.toml:2:19: defaults.tls.ca_file: cannot read /x/y: No such file or directory"
    );
    assert_eq!(
        lines[1],
        "t.toml:6:21: check[\"a\"].tls.cert_file: /etc/sonde/notpem holds no PEM CERTIFICATE \
         (valid: a PEM file with a -----BEGIN ...CERTIFICATE----- block)"
    );
}

#[test]
fn client_cert_needs_both_halves() {
    let text = "[[check]]\nname = \"a\"\nurl = \"https://a/\"\ntls = { cert_file = \"/etc/sonde/client.pem\" }\n";
    assert_eq!(
        err(text),
        "t.toml:4:21: check[\"a\"].tls.cert_file: tls.cert_file is set without tls.key_file \
         (valid: both cert_file and key_file, or neither)"
    );
    let text = "[defaults]\ntls = { key_file = \"/etc/sonde/client.key\" }\n\
                [[check]]\nname = \"a\"\nurl = \"https://a/\"\ntls = { cert_file = \"/etc/sonde/client.pem\" }\n";
    let plan = ok(text);
    let cc = plan.checks[0].tls.client_cert.as_ref().unwrap();
    assert_eq!(
        cc.key.expose().der().secret_der(),
        pki().client.private_key().secret_der()
    );
}

#[test]
fn secrets_resolve_but_never_print() {
    let text = r#"
[agent]
id = "eu-1"

[[check]]
name = "a"
url = "https://a/"
headers = { authorization = { env = "API_TOKEN" }, x-key = { file = "/etc/sonde/token" } }
tls = { cert_file = "/etc/sonde/client.pem", key_file = "/etc/sonde/client.key" }

[[sinks.gateway]]
url = "https://gw.example/ingest"
token = { file = "/etc/sonde/token" }
"#;
    let plan = ok(text);
    let c = &plan.checks[0];
    assert_eq!(
        c.headers[1].value.expose(),
        "file-token-value",
        "one trailing newline trimmed"
    );
    assert_eq!(plan.sinks.gateways[0].token.expose(), "file-token-value");
    assert_eq!(
        plan.sinks.gateways[0].spool_dir,
        Path::new("/var/lib/sonde/spool/default")
    );
    for shown in [format!("{plan:?}"), format!("{plan:#?}"), plan.render()] {
        assert!(!shown.contains("env-token-value"), "{shown}");
        assert!(!shown.contains("file-token-value"), "{shown}");
        assert!(!shown.contains(key_line()), "{shown}");
    }
    let rendered = plan.render();
    assert!(
        rendered.contains("authorization = { env = \"API_TOKEN\" }"),
        "{rendered}"
    );
    assert!(
        rendered.contains("token = { file = \"/etc/sonde/token\" }"),
        "{rendered}"
    );
}

#[test]
fn missing_and_empty_secrets_are_reported_without_values() {
    let text = r#"[[check]]
name = "a"
url = "https://a/"
headers = { a = { env = "NOPE" }, b = { env = "EMPTY" }, c = { file = "/etc/sonde/empty" }, d = { env = "X", file = "/y" } }
"#;
    let e = err(text);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 4, "{e}");
    assert!(
        lines[0].ends_with(
            "check[\"a\"].headers.a: environment variable NOPE is not set \
         (valid: set it in the agent's environment, or use { file = \"/path\" })"
        ),
        "{e}"
    );
    assert!(
        lines[1].contains("check[\"a\"].headers.b: environment variable EMPTY is empty"),
        "{e}"
    );
    assert!(
        lines[2].contains("check[\"a\"].headers.c: /etc/sonde/empty is empty"),
        "{e}"
    );
    assert!(
        lines[3].contains("check[\"a\"].headers.d: a secret needs exactly one of `env` and `file`"),
        "{e}"
    );
}

#[test]
fn tls_files_are_decoded_and_checked_as_rustls_will_use_them() {
    let mut host = FakeHost::new();
    host.files.insert(
        "/etc/sonde/fake.pem".into(),
        b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_vec(),
    );
    host.files.insert(
        "/etc/sonde/fake.key".into(),
        b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n".to_vec(),
    );
    let text = r#"[[check]]
name = "garbled"
url = "https://a/"
tls = { ca_file = "/etc/sonde/garbled.pem" }
[[check]]
name = "not-a-certificate"
url = "https://a/"
tls = { ca_file = "/etc/sonde/fake.pem" }
[[check]]
name = "not-a-key"
url = "https://a/"
tls = { cert_file = "/etc/sonde/client.pem", key_file = "/etc/sonde/fake.key" }
[[check]]
name = "wrong-key"
url = "https://a/"
tls = { cert_file = "/etc/sonde/client.pem", key_file = "/etc/sonde/other.key" }
"#;
    let e = err_with(text, &host);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 4, "{e}");
    assert!(
        lines[0].starts_with(
            "t.toml:4:19: check[\"garbled\"].tls.ca_file: /etc/sonde/garbled.pem holds a \
             certificate that does not decode: "
        ),
        "{e}"
    );
    assert!(
        lines[1].starts_with(
            "t.toml:8:19: check[\"not-a-certificate\"].tls.ca_file: /etc/sonde/fake.pem holds a \
             certificate that cannot be a trust anchor: "
        ),
        "{e}"
    );
    assert!(
        lines[2].starts_with(
            "t.toml:12:57: check[\"not-a-key\"].tls.key_file: /etc/sonde/fake.key holds a key \
             that cannot sign: "
        ),
        "{e}"
    );
    assert!(
        lines[3].starts_with(
            "t.toml:16:57: check[\"wrong-key\"].tls.key_file: the key in file \
             /etc/sonde/other.key is not the key of the certificate in /etc/sonde/client.pem: "
        ),
        "{e}"
    );
    assert!(!e.contains(key_line()), "{e}");
}

#[test]
fn inline_credential_headers_are_refused_without_their_value() {
    let text = r#"[[check]]
name = "a"
url = "https://a/"
headers = { Authorization = "Bearer hunter2", cookie = "s=hunter2", x-api-key = "hunter2", accept = "*/*" }
"#;
    let e = err(text);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert_eq!(
        lines[0],
        "t.toml:4:29: check[\"a\"].headers.Authorization: header Authorization carries a \
         credential; its value may not be written inline \
         (valid: { env = \"NAME\" } or { file = \"/path\" })"
    );
    assert!(
        lines[1].contains("headers.cookie: header cookie carries a credential"),
        "{e}"
    );
    assert!(
        lines[2].contains("headers.x-api-key: header x-api-key carries"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn an_empty_file_or_no_enabled_check_is_refused() {
    for text in [
        "",
        "[agent]\nid = \"a\"\n",
        "[[check]]\nname = \"a\"\nurl = \"https://a/\"\nenabled = false\n",
    ] {
        let e = err(text);
        assert_eq!(
            e,
            "t.toml:1:1: check: no enabled check, nothing would be probed \
             (valid: at least one [[check]] with a name and url, not enabled = false)",
            "{text:?}"
        );
    }
}

#[test]
fn no_enabled_check_is_allowed_when_checks_are_not_required() {
    let options = crate::Options {
        require_checks: false,
    };
    for text in [
        "",
        "[[check]]\nname = \"a\"\nurl = \"https://a/\"\nenabled = false\n",
    ] {
        let plan = crate::parse_with_options(text, "t.toml", &FakeHost::new(), options);
        assert!(plan.is_ok(), "{text:?}: {plan:?}");
    }
    // Other errors are still errors.
    let bad = crate::parse_with_options("[agent]\nnope = 1\n", "t.toml", &FakeHost::new(), options);
    assert!(bad.is_err());
}

#[test]
fn a_blackbox_config_in_the_file_allows_no_check() {
    let text = "[prometheus]\nblackbox_config = \"/etc/prometheus/blackbox.yml\"\n";
    let plan = crate::parse(text, "t.toml", &FakeHost::new());
    let plan = plan.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        plan.prometheus.blackbox_config.as_deref(),
        Some(std::path::Path::new("/etc/prometheus/blackbox.yml"))
    );
}
