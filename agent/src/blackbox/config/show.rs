//! A module as blackbox_exporter's debug page prints its configuration.

use std::time::Duration;

use serde_yaml_ng::Value;

use super::go::go_format;
use super::raw::{RawModule, Scalar};

/// The module as blackbox_exporter's debug output prints it (yaml.v2 of
/// its Go struct): non-empty options in its field order, secrets as
/// `<secret>`, the http prober's defaults filled in.
pub(super) fn show(raw: &RawModule, timeout: Option<Duration>) -> String {
    use serde_yaml_ng::Mapping;
    fn put(m: &mut Mapping, key: &str, value: Value) {
        let empty = match &value {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::String(s) => s.is_empty(),
            Value::Sequence(s) => s.is_empty(),
            Value::Mapping(m) => m.is_empty(),
            _ => false,
        };
        if !empty {
            m.insert(Value::String(key.into()), value);
        }
    }
    let s = |t: &str| Value::String(t.to_owned());
    let secret = |v: &Option<String>| {
        v.as_deref()
            .filter(|t| !t.is_empty())
            .map_or(Value::Null, |_| s("<secret>"))
    };
    let opt = |v: &Option<String>| v.as_deref().map_or(Value::Null, s);
    let list = |v: &[String]| Value::Sequence(v.iter().map(|t| s(t)).collect());
    let h = &raw.http;
    let mut http = Mapping::new();
    put(
        &mut http,
        "valid_status_codes",
        Value::Sequence(
            h.valid_status_codes
                .iter()
                .map(|&c| Value::Number(c.into()))
                .collect(),
        ),
    );
    put(
        &mut http,
        "valid_http_versions",
        list(&h.valid_http_versions),
    );
    put(
        &mut http,
        "preferred_ip_protocol",
        s(&h.preferred_ip_protocol),
    );
    put(
        &mut http,
        "ip_protocol_fallback",
        Value::Bool(h.ip_protocol_fallback.unwrap_or(true)),
    );
    put(&mut http, "fail_if_ssl", Value::Bool(h.fail_if_ssl));
    put(&mut http, "fail_if_not_ssl", Value::Bool(h.fail_if_not_ssl));
    put(&mut http, "method", s(&h.method));
    let mut headers = Mapping::new();
    for (k, v) in &h.headers {
        headers.insert(s(k), s(v));
    }
    put(&mut http, "headers", Value::Mapping(headers));
    put(
        &mut http,
        "fail_if_body_matches_regexp",
        list(&h.fail_if_body_matches_regexp),
    );
    put(
        &mut http,
        "fail_if_body_not_matches_regexp",
        list(&h.fail_if_body_not_matches_regexp),
    );
    for (key, matches) in [
        ("fail_if_header_matches", &h.fail_if_header_matches),
        ("fail_if_header_not_matches", &h.fail_if_header_not_matches),
    ] {
        let items = matches
            .iter()
            .map(|m| {
                let mut item = Mapping::new();
                put(&mut item, "header", s(&m.header));
                put(&mut item, "regexp", s(&m.regexp));
                put(&mut item, "allow_missing", Value::Bool(m.allow_missing));
                Value::Mapping(item)
            })
            .collect();
        put(&mut http, key, Value::Sequence(items));
    }
    put(&mut http, "body", s(&h.body));
    if let Some(b) = &h.basic_auth {
        let mut m = Mapping::new();
        put(&mut m, "username", s(&b.username));
        put(&mut m, "password", secret(&b.password));
        put(&mut m, "password_file", opt(&b.password_file));
        put(&mut http, "basic_auth", Value::Mapping(m));
    }
    if let Some(a) = &h.authorization {
        let mut m = Mapping::new();
        put(&mut m, "type", opt(&a.scheme));
        put(&mut m, "credentials", secret(&a.credentials));
        put(&mut m, "credentials_file", opt(&a.credentials_file));
        put(&mut http, "authorization", Value::Mapping(m));
    }
    put(&mut http, "bearer_token", secret(&h.bearer_token));
    put(&mut http, "bearer_token_file", opt(&h.bearer_token_file));
    let t = &h.tls_config;
    let mut tls = Mapping::new();
    put(&mut tls, "ca_file", s(&t.ca_file));
    put(&mut tls, "cert_file", s(&t.cert_file));
    put(&mut tls, "key_file", s(&t.key_file));
    put(&mut tls, "server_name", s(&t.server_name));
    put(
        &mut tls,
        "insecure_skip_verify",
        Value::Bool(t.insecure_skip_verify),
    );
    put(&mut tls, "min_version", s(&t.min_version));
    put(&mut http, "tls_config", Value::Mapping(tls));
    let follow = match h.no_follow_redirects {
        Some(no) => !no,
        None => h.follow_redirects.unwrap_or(true),
    };
    put(&mut http, "follow_redirects", Value::Bool(follow));
    put(&mut http, "enable_http2", Value::Bool(true));
    put(&mut http, "compression", s(&h.compression));
    if let Some(limit) = &h.body_size_limit {
        let v = match limit {
            Scalar::Int(n) => Value::Number((*n).into()),
            Scalar::Text(t) => s(t),
        };
        put(&mut http, "body_size_limit", v);
    }
    let mut module = Mapping::new();
    put(&mut module, "prober", s(&raw.prober));
    if let Some(t) = timeout {
        put(&mut module, "timeout", s(&go_format(t)));
    }
    put(&mut module, "http", Value::Mapping(http));
    let mut out = serde_yaml_ng::to_string(&Value::Mapping(module)).unwrap_or_default();
    // The other probers' defaults, which blackbox_exporter v0.23 prints
    // for every module.
    out.push_str(OTHER_PROBERS);
    out
}

const OTHER_PROBERS: &str = "\
tcp:
  ip_protocol_fallback: true
icmp:
  ip_protocol_fallback: true
  ttl: 64
dns:
  ip_protocol_fallback: true
  recursion_desired: true
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_prints_as_blackbox_exporter_0_23_prints_it() {
        // What prometheus-blackbox-exporter 0.23.0 shows for this module.
        let raw: RawModule = serde_yaml_ng::from_str(
            "prober: http\ntimeout: 5s\nhttp:\n  basic_auth:\n    username: u\n    password: pw\n",
        )
        .unwrap();
        assert_eq!(
            show(&raw, Some(Duration::from_secs(5))),
            "prober: http\ntimeout: 5s\nhttp:\n  ip_protocol_fallback: true\n  basic_auth:\n    \
             username: u\n    password: <secret>\n  follow_redirects: true\n  enable_http2: true\n\
             tcp:\n  ip_protocol_fallback: true\nicmp:\n  ip_protocol_fallback: true\n  ttl: 64\n\
             dns:\n  ip_protocol_fallback: true\n  recursion_desired: true\n"
        );
    }
}
