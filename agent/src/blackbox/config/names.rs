//! The first pass over a parsed file: every key blackbox_exporter knows
//! that sonde does not implement is refused by name, every key nobody
//! knows as unknown; and where such a key is, found in the text.

use serde_yaml_ng::Value;

use super::{ErrorKind, Location};

/// Module keys blackbox_exporter knows but sonde does not implement.
const REFUSED_MODULE: &[&str] = &["tcp", "icmp", "dns", "grpc", "unix"];
const MODULE_KEYS: &[&str] = &["prober", "timeout", "http"];
const HTTP_KEYS: &[&str] = &[
    "valid_status_codes",
    "valid_http_versions",
    "preferred_ip_protocol",
    "ip_protocol_fallback",
    "no_follow_redirects",
    "follow_redirects",
    "fail_if_ssl",
    "fail_if_not_ssl",
    "method",
    "headers",
    "fail_if_body_matches_regexp",
    "fail_if_body_not_matches_regexp",
    "fail_if_header_matches",
    "fail_if_header_not_matches",
    "body",
    "compression",
    "body_size_limit",
    "tls_config",
    "basic_auth",
    "authorization",
    "bearer_token",
    "bearer_token_file",
];
/// blackbox_exporter's (v0.23 to v0.28) and prometheus/common's HTTP
/// client options that sonde refuses.
const REFUSED_HTTP: &[&str] = &[
    "skip_resolve_phase_with_proxy",
    "fail_if_body_json_matches_cel",
    "fail_if_body_json_not_matches_cel",
    "body_file",
    "enable_http3",
    "enable_http2",
    "oauth2",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "http_headers",
];
const TLS_KEYS: &[&str] = &[
    "ca_file",
    "cert_file",
    "key_file",
    "server_name",
    "insecure_skip_verify",
    "min_version",
];
const REFUSED_TLS: &[&str] = &[
    "ca",
    "cert",
    "key",
    "max_version",
    "ca_ref",
    "cert_ref",
    "key_ref",
];
const BASIC_KEYS: &[&str] = &["username", "password", "password_file"];
const REFUSED_BASIC: &[&str] = &["username_file", "username_ref", "password_ref"];
const AUTHORIZATION_KEYS: &[&str] = &["type", "credentials", "credentials_file"];
const REFUSED_AUTHORIZATION: &[&str] = &["credentials_ref"];
const HEADER_MATCH_KEYS: &[&str] = &["header", "regexp", "allow_missing"];

pub(super) type NameError = (Option<String>, Option<String>, ErrorKind);

/// Refuses, by name, what sonde does not implement and what nobody knows.
pub(super) fn check_names(value: &Value) -> Result<(), NameError> {
    let Some(top) = value.as_mapping() else {
        return Ok(()); // An empty file; a non-mapping is the typed pass's error.
    };
    for key in top.keys() {
        let key = key_text(key);
        if key != "modules" {
            return Err((None, None, ErrorKind::UnknownTop(key)));
        }
    }
    let Some(modules) = top.get("modules").and_then(Value::as_mapping) else {
        return Ok(());
    };
    let empty = serde_yaml_ng::Mapping::new();
    for (name, module) in modules {
        let name = key_text(name);
        // `m:` alone is a module without `prober`.
        let module = module.as_mapping().unwrap_or(&empty);
        let prober = module.get("prober").and_then(Value::as_str).unwrap_or("");
        if prober.is_empty() {
            // blackbox_exporter loads it and answers each probe 400
            // `Unknown prober ""`; refused here, where it is a typo.
            let kind = ErrorKind::Invalid {
                module: name.clone(),
                option: "prober".into(),
                problem: "missing (valid: http)".into(),
            };
            return Err((Some(name), None, kind));
        }
        if prober != "http" {
            let kind = ErrorKind::Prober {
                module: name.clone(),
                prober: prober.to_owned(),
            };
            return Err((Some(name), Some("prober".into()), kind));
        }
        keys(&name, "", module, MODULE_KEYS, REFUSED_MODULE)?;
        let Some(http) = module.get("http").and_then(Value::as_mapping) else {
            continue;
        };
        keys(&name, "http.", http, HTTP_KEYS, REFUSED_HTTP)?;
        let nested: [(&str, &[&str], &[&str]); 3] = [
            ("tls_config", TLS_KEYS, REFUSED_TLS),
            ("basic_auth", BASIC_KEYS, REFUSED_BASIC),
            ("authorization", AUTHORIZATION_KEYS, REFUSED_AUTHORIZATION),
        ];
        for (section, known, refused) in nested {
            if let Some(map) = http.get(section).and_then(Value::as_mapping) {
                keys(&name, &format!("http.{section}."), map, known, refused)?;
            }
        }
        for section in ["fail_if_header_matches", "fail_if_header_not_matches"] {
            let items = http.get(section).and_then(Value::as_sequence);
            for item in items.into_iter().flatten().filter_map(Value::as_mapping) {
                keys(
                    &name,
                    &format!("http.{section}[]."),
                    item,
                    HEADER_MATCH_KEYS,
                    &[],
                )?;
            }
        }
    }
    Ok(())
}

fn keys(
    module: &str,
    prefix: &str,
    map: &serde_yaml_ng::Mapping,
    known: &[&str],
    refused: &[&str],
) -> Result<(), NameError> {
    for key in map.keys() {
        let key = key_text(key);
        if known.contains(&key.as_str()) {
            continue;
        }
        let option = format!("{prefix}{key}");
        let kind = if refused.contains(&key.as_str()) {
            ErrorKind::Unsupported {
                module: module.to_owned(),
                option: option.clone(),
            }
        } else {
            ErrorKind::Unknown {
                module: module.to_owned(),
                option: option.clone(),
            }
        };
        return Err((Some(module.to_owned()), Some(option), kind));
    }
    Ok(())
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
    }
}

/// Best effort, for block-style YAML: the line of `option`'s last key
/// after the line that opens `module` (or that line itself).
pub(super) fn locate(text: &str, module: &str, option: Option<&str>) -> Option<Location> {
    let opens = |line: &str, key: &str| {
        let t = line.trim_start();
        let t = t.strip_prefix("- ").unwrap_or(t);
        [key.to_owned(), format!("\"{key}\""), format!("'{key}'")]
            .iter()
            .any(|k| {
                t.strip_prefix(k.as_str())
                    .is_some_and(|r| r.starts_with(':'))
            })
    };
    let column = |line: &str| {
        let t = line.trim_start();
        line.len() - t.len() + 1 + usize::from(t.starts_with("- ")) * 2
    };
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| opens(l, module))?;
    let Some(option) = option else {
        return Some(Location {
            line: start + 1,
            column: column(lines[start]),
        });
    };
    let last = option
        .rsplit('.')
        .next()
        .unwrap_or(option)
        .trim_end_matches("[]");
    let indent = lines[start].len() - lines[start].trim_start().len();
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        let t = line.trim_start();
        if !t.is_empty() && !t.starts_with('#') && line.len() - t.len() <= indent {
            break; // The next module.
        }
        if opens(line, last) {
            return Some(Location {
                line: i + 1,
                column: column(line),
            });
        }
    }
    Some(Location {
        line: start + 1,
        column: column(lines[start]),
    })
}
