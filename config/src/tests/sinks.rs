//! `[sinks]`: the rule that one is on, and the gateways (names, ids,
//! tokens, URLs the sink can use, replicas' `urls`, CA files).

use super::*;

/// Appended where a test needs a valid plan: one check to run.
const ONE_CHECK: &str = "\n[[check]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\n";

#[test]
fn gateway_needs_an_agent_id_a_token_and_unique_names() {
    let text = r#"
[[sinks.gateway]]
url = "https://g1/"
token = { env = "API_TOKEN" }

[[sinks.gateway]]
url = "https://g2/"
"#;
    let e = err(text);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(
        lines[0].starts_with(
            "t.toml:2:1: sinks.gateway[0]: a gateway deduplicates records by agent id"
        ),
        "{e}"
    );
    assert_eq!(
        lines[1],
        "t.toml:6:1: sinks.gateway[1]: missing required key `token`"
    );
    assert!(
        lines[2].starts_with("t.toml:6:1: sinks.gateway[1].name: duplicate gateway name `default`"),
        "{e}"
    );
}

#[test]
fn gateway_ca_file_is_read_carried_and_rendered() {
    let text = r#"
[agent]
id = "eu-1"

[[sinks.gateway]]
name = "private"
url = "https://gw.internal:7700/"
token = { env = "API_TOKEN" }
ca_file = "/etc/sonde/ca.pem"

[[sinks.gateway]]
name = "public"
url = "https://gw.example/"
token = { env = "API_TOKEN" }
"#;
    let plan = ok(&format!("{text}{ONE_CHECK}"));
    let ca = plan.sinks.gateways[0].ca.as_ref().unwrap();
    assert_eq!(ca.path, Path::new("/etc/sonde/ca.pem"));
    assert_eq!(ca.certs[..], [pki().ca.cert_der().clone()]);
    assert_eq!(plan.sinks.gateways[1].ca, None);
    let rendered = plan.render();
    assert!(
        rendered.contains("url = \"https://gw.internal:7700/\"\ntoken = { env = \"API_TOKEN\" }\nspool_max_bytes = \"256MiB\"\nca_file = \"/etc/sonde/ca.pem\"\n"),
        "{rendered}"
    );
    assert!(
        rendered.contains("# ca_file: not set, the system roots only"),
        "{rendered}"
    );
}

#[test]
fn gateway_ca_file_must_be_readable_pem_and_needs_https() {
    let text = r#"[agent]
id = "eu-1"
[[sinks.gateway]]
name = "missing"
url = "https://g1/"
token = { env = "API_TOKEN" }
ca_file = "/x/y"
[[sinks.gateway]]
name = "notpem"
url = "https://g2/"
token = { env = "API_TOKEN" }
ca_file = "/etc/sonde/notpem"
[[sinks.gateway]]
name = "cleartext"
url = "http://127.0.0.1:7700/"
token = { env = "API_TOKEN" }
ca_file = "/etc/sonde/ca.pem"
[[sinks.gateway]]
name = "empty"
url = "https://g4/"
token = { env = "API_TOKEN" }
ca_file = ""
"#;
    let e = err(text);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 4, "{e}");
    assert_eq!(
        lines[0],
        "t.toml:7:11: sinks.gateway[0].ca_file: cannot read /x/y: No such file or directory"
    );
    assert_eq!(
        lines[1],
        "t.toml:12:11: sinks.gateway[1].ca_file: /etc/sonde/notpem holds no PEM CERTIFICATE \
         (valid: a PEM file with a -----BEGIN ...CERTIFICATE----- block)"
    );
    assert_eq!(
        lines[2],
        "t.toml:17:11: sinks.gateway[2].ca_file: a CA file is only used for https, \
         and the gateway url is http://127.0.0.1:7700/ (valid: an https:// url, or no ca_file)"
    );
    assert_eq!(
        lines[3],
        "t.toml:22:11: sinks.gateway[3].ca_file: empty path (valid: a path to a readable file)"
    );
}

#[test]
fn gateway_ca_file_beside_a_bad_url_reports_only_the_url() {
    let text = "[agent]\nid = \"eu-1\"\n[[sinks.gateway]]\nurl = \"ftp://g/\"\n\
                token = { env = \"API_TOKEN\" }\nca_file = \"/etc/sonde/ca.pem\"\n";
    let e = err(text);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.starts_with("t.toml:4:7: sinks.gateway[0].url: "), "{e}");
}

#[test]
fn no_sink_enabled_is_refused() {
    let text = "[sinks.file]\nenabled = false\n";
    assert_eq!(
        err(text),
        "t.toml:2:11: sinks.file.enabled: no sink is enabled, results would be discarded \
         (valid: enable sinks.file, sinks.stdout or add a [[sinks.gateway]])"
    );
}

#[test]
fn gateway_urls_are_refused_where_the_sink_could_not_use_them() {
    let gateway = |url: &str| {
        format!(
            "[agent]\nid = \"eu-1\"\n[[sinks.gateway]]\nurl = \"{url}\"\ntoken = {{ env = \"API_TOKEN\" }}\n"
        )
    };
    assert_eq!(
        err(&gateway("http://gateway.example:7700/")),
        "t.toml:4:7: sinks.gateway[0].url: bad URL `http://gateway.example:7700/`: cleartext \
         http is allowed only to a loopback address (127.0.0.0/8, ::1, localhost) \
         (valid: an https:// URL, or http:// to 127.0.0.1, [::1] or localhost)"
    );
    assert!(err(&gateway("http://10.0.0.1/")).contains("cleartext http"));
    assert!(err(&gateway("https://a_b!c/")).contains("cannot be checked against a certificate"));
    for fine in [
        "http://127.0.0.1:7700/",
        "http://[::1]:7700/",
        "http://localhost:7700/",
        "https://gateway.example/",
        "https://10.0.0.1/",
    ] {
        assert_eq!(
            ok(&format!("{}{ONE_CHECK}", gateway(fine))).sinks.gateways[0]
                .urls
                .iter()
                .map(url::Url::as_str)
                .collect::<Vec<_>>(),
            [fine]
        );
    }
}

#[test]
fn a_gateway_token_must_be_a_header_value() {
    let mut host = FakeHost::new();
    host.vars.insert("CRLF".into(), "abc\r\nX-Evil: 1".into());
    let text = "[agent]\nid = \"eu-1\"\n[[sinks.gateway]]\nurl = \"https://g/\"\ntoken = { env = \"CRLF\" }\n";
    let e = err_with(text, &host);
    assert_eq!(
        e,
        "t.toml:5:9: sinks.gateway[0].token: header value contains a control character \
         (such as a newline) (valid: printable text; tabs allowed)"
    );
}

#[test]
fn a_gateway_ca_file_replaces_the_system_roots_unless_system_roots_is_set() {
    let text = r#"
[agent]
id = "eu-1"

[[sinks.gateway]]
name = "pinned"
url = "https://gw.internal:7700/"
token = { env = "API_TOKEN" }
ca_file = "/etc/sonde/ca.pem"

[[sinks.gateway]]
name = "both"
url = "https://gw2.internal:7700/"
token = { env = "API_TOKEN" }
ca_file = "/etc/sonde/ca.pem"
system_roots = true

[[sinks.gateway]]
name = "public"
url = "https://gw.example/"
token = { env = "API_TOKEN" }
"#;
    let plan = ok(&format!("{text}{ONE_CHECK}"));
    let roots: Vec<bool> = plan.sinks.gateways.iter().map(|g| g.system_roots).collect();
    assert_eq!(roots, [false, true, true]);
    let notes = plan.notes();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(
        notes[0]
            .starts_with("gateway \"pinned\": ca_file /etc/sonde/ca.pem replaces the system roots"),
        "{notes:#?}"
    );
    let rendered = plan.render();
    assert!(
        rendered.contains("ca_file = \"/etc/sonde/ca.pem\"\nsystem_roots = true\n"),
        "{rendered}"
    );
    assert_eq!(ok(&rendered).sinks, plan.sinks);
}

/// A gateway section with `urls_line` for its URL key(s), at line 4.
fn replicas(urls_line: &str) -> String {
    format!(
        "[agent]\nid = \"eu-1\"\n[[sinks.gateway]]\n{urls_line}\ntoken = {{ env = \"API_TOKEN\" }}\n"
    )
}

#[test]
fn a_gateway_takes_one_url_or_a_list_of_replicas_and_keeps_one_list() {
    let urls = |text: &str| -> Vec<String> {
        ok(&format!("{text}{ONE_CHECK}")).sinks.gateways[0]
            .urls
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect()
    };
    assert_eq!(
        urls(&replicas("url = \"https://gw-a:7700/\"")),
        ["https://gw-a:7700/"]
    );
    assert_eq!(
        urls(&replicas(
            "urls = [\"https://gw-a:7700/\", \"https://gw-b:7700\", \"http://127.0.0.1:7701/\"]"
        )),
        [
            "https://gw-a:7700/",
            "https://gw-b:7700/",
            "http://127.0.0.1:7701/"
        ]
    );
    // One URL in a list is the same plan as `url`.
    assert_eq!(
        ok(&format!(
            "{}{ONE_CHECK}",
            replicas("urls = [\"https://gw-a:7700/\"]")
        ))
        .sinks,
        ok(&format!(
            "{}{ONE_CHECK}",
            replicas("url = \"https://gw-a:7700/\"")
        ))
        .sinks
    );
    // The most a list may hold.
    let sixteen: Vec<String> = (0..16)
        .map(|i| format!("\"https://gw-{i}:7700/\""))
        .collect();
    let text = replicas(&format!("urls = [{}]", sixteen.join(", ")));
    assert_eq!(urls(&text).len(), 16);
}

#[test]
fn replicas_render_as_urls_and_read_back() {
    let text = replicas("urls = [\"https://gw-a:7700/\", \"https://gw-b:7700/\"]");
    let plan = ok(&format!("{text}{ONE_CHECK}"));
    let rendered = plan.render();
    assert!(
        rendered.contains(
            "urls = [\"https://gw-a:7700/\", \"https://gw-b:7700/\"]\ntoken = { env = \"API_TOKEN\" }\n"
        ),
        "{rendered}"
    );
    assert!(!rendered.contains("\nurl = \"https://gw"), "{rendered}");
    assert_eq!(ok(&rendered), plan);
}

#[test]
fn gateway_urls_errors_point_at_the_entry_or_the_list() {
    // Exactly one of `url` and `urls`.
    assert_eq!(
        err(&replicas(
            "url = \"https://gw-a:7700/\"\nurls = [\"https://gw-b:7700/\"]"
        )),
        "t.toml:5:8: sinks.gateway[0].urls: `url` and `urls` are both set \
         (valid: one of them: `url` for one gateway, `urls` for replicas of one region)"
    );
    assert_eq!(
        err(&replicas("name = \"eu\"")),
        "t.toml:3:1: sinks.gateway[0]: missing required key `url` (or `urls`) \
         (valid: url = \"https://gateway.example:7700/\", or urls = [...] naming replicas of one region)"
    );
    // Not empty, not too long.
    assert_eq!(
        err(&replicas("urls = []")),
        "t.toml:4:8: sinks.gateway[0].urls: an empty list (valid: 1 to 16 gateway URLs)"
    );
    let seventeen: Vec<String> = (0..17)
        .map(|i| format!("\"https://gw-{i}:7700/\""))
        .collect();
    assert_eq!(
        err(&replicas(&format!("urls = [{}]", seventeen.join(", ")))),
        "t.toml:4:8: sinks.gateway[0].urls: 17 URLs (valid: 1 to 16 gateway URLs)"
    );
    // Each entry is checked as `url` is, with its own position; every bad
    // one is reported.
    let e = err(&replicas(
        "urls = [\"https://gw-a:7700/\", \"http://gw-b.example:7700/\", \"ftp://gw-c/\"]",
    ));
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert_eq!(
        lines[0],
        "t.toml:4:31: sinks.gateway[0].urls[1]: bad URL `http://gw-b.example:7700/`: cleartext \
         http is allowed only to a loopback address (127.0.0.0/8, ::1, localhost) \
         (valid: an https:// URL, or http:// to 127.0.0.1, [::1] or localhost)"
    );
    assert!(
        lines[1].starts_with("t.toml:4:60: sinks.gateway[0].urls[2]: bad URL `ftp://gw-c/`: "),
        "{e}"
    );
    // The same gateway twice, however it is written.
    assert_eq!(
        err(&replicas(
            "urls = [\"https://gw-a:7700/\", \"https://gw-b:7700/\", \"https://GW-A:7700\"]"
        )),
        "t.toml:4:53: sinks.gateway[0].urls[2]: duplicate URL `https://GW-A:7700`, \
         the same gateway as urls[0] (valid: each replica once)"
    );
    // Not a list of strings.
    let e = err(&replicas("urls = [\"https://gw-a:7700/\", 7]"));
    assert!(
        e.starts_with("t.toml:4:31: sinks.gateway[0].urls[1]: wrong type: integer `7`"),
        "{e}"
    );
    let e = err(&replicas("urls = \"https://gw-a:7700/\""));
    assert!(
        e.starts_with("t.toml:4:8: sinks.gateway[0].urls: wrong type: string"),
        "{e}"
    );
}

#[test]
fn a_ca_file_beside_replicas_needs_every_one_to_be_https() {
    let text = replicas(
        "urls = [\"https://gw-a:7700/\", \"http://127.0.0.1:7700/\"]\nca_file = \"/etc/sonde/ca.pem\"",
    );
    assert_eq!(
        err(&text),
        "t.toml:5:11: sinks.gateway[0].ca_file: a CA file is only used for https, \
         and the gateway url is http://127.0.0.1:7700/ (valid: an https:// url, or no ca_file)"
    );
    let text = replicas(
        "urls = [\"https://gw-a:7700/\", \"https://gw-b:7700/\"]\nca_file = \"/etc/sonde/ca.pem\"",
    );
    assert!(
        ok(&format!("{text}{ONE_CHECK}")).sinks.gateways[0]
            .ca
            .is_some()
    );
}
