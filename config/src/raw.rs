//! Stage one: TOML text → raw structs that mirror the file, every value
//! with its byte span. Nothing is checked here beyond TOML syntax, known keys
//! and value types; meaning is checked by the next stage, `validate`,
//! which imports this one (never the reverse).
//!
//! Each top-level section and each `[[check]]` is deserialised on its own so
//! that one typo does not hide the errors in the other sections.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::error::{Collector, ErrorKind};

/// Top-level keys, for "unknown key" messages.
const TOP_KEYS: &str = "`agent`, `defaults`, `check`, `sinks`, `prometheus`";

/// A TOML integer or string, for values that accept either (`ip_version = 4`,
/// `expect_status = [200, "3xx"]`, `max_body_bytes = "1MiB"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    /// A TOML integer.
    Int(i64),
    /// A TOML string.
    Str(String),
}

struct ScalarVisitor {
    expecting: &'static str,
    allow_int: bool,
}

impl Visitor<'_> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        if self.allow_int {
            Ok(Scalar::Int(v))
        } else {
            Err(E::invalid_type(de::Unexpected::Signed(v), &self))
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_owned()))
    }
}

/// Declares a newtype over [`Scalar`] whose type errors say what is valid.
macro_rules! scalar_type {
    ($(#[$doc:meta])* $name:ident, $expecting:expr, allow_int = $allow:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub Scalar);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(ScalarVisitor { expecting: $expecting, allow_int: $allow }).map($name)
            }
        }
    };
}

scalar_type!(
    /// A duration string such as `"15s"`.
    DurationText, crate::duration::VALID, allow_int = false
);
scalar_type!(
    /// A byte count or a size string such as `"64MiB"`.
    SizeValue, crate::size::VALID, allow_int = true
);
scalar_type!(
    /// `"auto"`, `4` or `6`.
    IpVersionValue, crate::valid::IP_VERSION, allow_int = true
);
scalar_type!(
    /// One `expect_status` entry: `200`, `"2xx"` or `"200-399"`.
    StatusItem, crate::status::VALID, allow_int = true
);
scalar_type!(
    /// `"always"`, `"never"` or a duration.
    FsyncValue, crate::valid::FSYNC, allow_int = false
);

/// `{ env = "NAME" }` or `{ file = "/path" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "{ env = \"NAME\" } or { file = \"/path\" }"
)]
pub struct SecretRef {
    /// Environment variable name.
    pub env: Option<String>,
    /// File path.
    pub file: Option<String>,
}

/// A header value: inline text, or a secret reference.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    untagged,
    // serde prints this alone when no variant fits; ", expected" splits it
    // into message and valid values like every other error.
    expecting = "bad header value, expected a string, { env = \"NAME\" } or { file = \"/path\" }"
)]
pub enum HeaderValue {
    /// Written in the file.
    Plain(String),
    /// Read from the environment or a file.
    Secret(SecretRef),
}

/// `tls = { ... }` in `[defaults]` or a check; each field overrides separately.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub ca_file: Option<Spanned<String>>,
    pub system_roots: Option<Spanned<bool>>,
    pub cert_file: Option<Spanned<String>>,
    pub key_file: Option<Spanned<String>>,
    pub insecure: Option<Spanned<bool>>,
    pub server_name: Option<Spanned<String>>,
}

/// The settings `[defaults]` and `[[check]]` share: a check's value wins,
/// then the default's, then the built-in one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layer {
    pub interval: Option<Spanned<DurationText>>,
    pub timeout: Option<Spanned<DurationText>>,
    pub method: Option<Spanned<String>>,
    pub headers: Option<BTreeMap<Spanned<String>, Spanned<HeaderValue>>>,
    pub expect_status: Option<Spanned<Vec<Spanned<StatusItem>>>>,
    pub ip_version: Option<Spanned<IpVersionValue>>,
    pub dns_server: Option<Spanned<String>>,
    pub resolution_delay: Option<Spanned<DurationText>>,
    pub follow_redirects: Option<Spanned<i64>>,
    pub allow_insecure_redirect: Option<Spanned<bool>>,
    pub max_body_bytes: Option<Spanned<SizeValue>>,
    pub compression: Option<Spanned<String>>,
    pub tls: Option<Spanned<RawTls>>,
    pub labels: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
}

/// Declares a struct holding the [`Layer`] fields plus its own, so the list of
/// shared keys is written once.
macro_rules! with_layer {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
            pub interval: Option<Spanned<DurationText>>,
            pub timeout: Option<Spanned<DurationText>>,
            pub method: Option<Spanned<String>>,
            pub headers: Option<BTreeMap<Spanned<String>, Spanned<HeaderValue>>>,
            pub expect_status: Option<Spanned<Vec<Spanned<StatusItem>>>>,
            pub ip_version: Option<Spanned<IpVersionValue>>,
            pub dns_server: Option<Spanned<String>>,
            pub resolution_delay: Option<Spanned<DurationText>>,
            pub follow_redirects: Option<Spanned<i64>>,
            pub allow_insecure_redirect: Option<Spanned<bool>>,
            pub max_body_bytes: Option<Spanned<SizeValue>>,
            pub compression: Option<Spanned<String>>,
            pub tls: Option<Spanned<RawTls>>,
            pub labels: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
        }

        impl $name {
            /// The shared settings of this section.
            pub fn layer(&self) -> Layer {
                Layer {
                    interval: self.interval.clone(),
                    timeout: self.timeout.clone(),
                    method: self.method.clone(),
                    headers: self.headers.clone(),
                    expect_status: self.expect_status.clone(),
                    ip_version: self.ip_version.clone(),
                    dns_server: self.dns_server.clone(),
                    resolution_delay: self.resolution_delay.clone(),
                    follow_redirects: self.follow_redirects.clone(),
                    allow_insecure_redirect: self.allow_insecure_redirect.clone(),
                    max_body_bytes: self.max_body_bytes.clone(),
                    compression: self.compression.clone(),
                    tls: self.tls.clone(),
                    labels: self.labels.clone(),
                }
            }
        }
    };
}

with_layer! {
    /// `[defaults]`.
    pub struct RawDefaults {}
}

with_layer! {
    /// One `[[check]]`.
    pub struct RawCheck {
        pub name: Option<Spanned<String>>,
        pub url: Option<Spanned<String>>,
        pub body: Option<Spanned<String>>,
        pub body_contains: Option<Spanned<String>>,
        pub body_matches: Option<Spanned<String>>,
        pub enabled: Option<Spanned<bool>>,
    }
}

/// `[agent]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub id: Option<Spanned<String>>,
    pub region: Option<Spanned<String>>,
    pub concurrency: Option<Spanned<i64>>,
    pub state_dir: Option<Spanned<String>>,
    pub metrics_listen: Option<Spanned<String>>,
}

/// `[prometheus]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrometheus {
    pub histograms: Option<Spanned<bool>>,
    pub phase_buckets: Option<Spanned<Vec<Spanned<f64>>>>,
    pub blackbox_config: Option<Spanned<String>>,
}

/// `[sinks.file]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFileSink {
    pub enabled: Option<Spanned<bool>>,
    pub dir: Option<Spanned<String>>,
    pub segment_max_bytes: Option<Spanned<SizeValue>>,
    pub segment_max_age: Option<Spanned<DurationText>>,
    pub retention_max_bytes: Option<Spanned<SizeValue>>,
    pub retention_max_age: Option<Spanned<DurationText>>,
    pub fsync: Option<Spanned<FsyncValue>>,
}

/// `[sinks.stdout]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStdoutSink {
    pub enabled: Option<Spanned<bool>>,
    pub format: Option<Spanned<String>>,
}

/// One `[[sinks.gateway]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    pub name: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    /// Replicas of one region, instead of `url`.
    pub urls: Option<Spanned<Vec<Spanned<String>>>>,
    pub token: Option<Spanned<SecretRef>>,
    pub spool_max_bytes: Option<Spanned<SizeValue>>,
    pub ca_file: Option<Spanned<String>>,
    pub system_roots: Option<Spanned<bool>>,
}

/// `[sinks]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSinks {
    pub file: Option<Spanned<RawFileSink>>,
    pub stdout: Option<Spanned<RawStdoutSink>>,
    pub gateway: Option<Vec<Spanned<RawGateway>>>,
}

/// The whole file, as written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawConfig {
    pub agent: Option<Spanned<RawAgent>>,
    pub prometheus: Option<Spanned<RawPrometheus>>,
    pub defaults: Option<Spanned<RawDefaults>>,
    /// Each check with the key path prefix used in its errors.
    pub checks: Vec<(String, Spanned<RawCheck>)>,
    pub sinks: Option<Spanned<RawSinks>>,
    /// Sections that failed to read (their errors are reported); validation
    /// skips what depends on them instead of guessing.
    pub failed: Failed,
}

/// Which sections had errors in stage one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failed {
    pub agent: bool,
    pub prometheus: bool,
    pub defaults: bool,
    pub sinks: bool,
}

/// Parses `text` into raw structs, pushing unknown keys and wrong types.
/// Returns `None` only on a TOML syntax error; a section or check with an
/// error is left out and marked in [`RawConfig::failed`], so that stage two
/// can still report the errors of the others.
pub fn read(text: &str, errors: &mut Collector) -> Option<RawConfig> {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            let kind = ErrorKind::Syntax {
                message: one_line(e.message()),
            };
            errors.push(e.span().unwrap_or(0..0), "", kind);
        }
        return None;
    }
    let mut raw = RawConfig::default();
    for (key, value) in doc.into_inner() {
        match key.get_ref().as_ref() {
            "agent" => {
                raw.agent = section(value, "agent", errors);
                raw.failed.agent = raw.agent.is_none();
            }
            "prometheus" => {
                raw.prometheus = section(value, "prometheus", errors);
                raw.failed.prometheus = raw.prometheus.is_none();
            }
            "defaults" => {
                raw.defaults = section(value, "defaults", errors);
                raw.failed.defaults = raw.defaults.is_none();
            }
            "sinks" => {
                raw.sinks = section(value, "sinks", errors);
                raw.failed.sinks = raw.sinks.is_none();
            }
            "check" => read_checks(value, errors, &mut raw.checks),
            other => errors.push(
                key.span(),
                "",
                ErrorKind::UnknownKey {
                    key: other.to_owned(),
                    valid: TOP_KEYS.to_owned(),
                },
            ),
        }
    }
    Some(raw)
}

fn read_checks(
    value: Spanned<DeValue<'_>>,
    errors: &mut Collector,
    out: &mut Vec<(String, Spanned<RawCheck>)>,
) {
    let span = value.span();
    let DeValue::Array(items) = value.into_inner() else {
        errors.push(
            span,
            "check",
            ErrorKind::Invalid {
                message: "`check` must be an array of tables".into(),
                valid: "one [[check]] section per check".into(),
            },
        );
        return;
    };
    let name_of = |item: &Spanned<DeValue<'_>>| {
        item.get_ref()
            .get("name")
            .and_then(|n| n.get_ref().as_str())
            .map(str::to_owned)
    };
    let names: Vec<Option<String>> = items.iter().map(name_of).collect();
    for (i, (item, name)) in items.into_iter().zip(&names).enumerate() {
        // A name used twice would make `check["x"]` ambiguous: use the index.
        let name = name
            .as_deref()
            .filter(|n| names.iter().filter(|m| m.as_deref() == Some(n)).count() == 1);
        let prefix = check_prefix(i, name);
        if let Some(check) = section(item, &prefix, errors) {
            out.push((prefix, check));
        }
    }
}

/// The key path prefix of the `index`-th check: `check["api"]` when it has a
/// usable name, `check[2]` (0-based) otherwise.
pub fn check_prefix(index: usize, name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() && n.chars().all(crate::valid::is_name_char) => {
            format!("check[\"{n}\"]")
        }
        _ => format!("check[{index}]"),
    }
}

/// Deserialises one section; on failure pushes the error with its key path.
///
/// serde stops at the first error, so after each one the offending key is
/// dropped and the section read again, until it reads or an error cannot be
/// tied to a key: one run reports every key that is wrong. A section with
/// any error is returned as `None`.
fn section<T>(
    mut value: Spanned<DeValue<'_>>,
    prefix: &str,
    errors: &mut Collector,
) -> Option<Spanned<T>>
where
    T: for<'de> Deserialize<'de>,
{
    let mut dropped: Vec<String> = Vec::new();
    loop {
        let e = match Spanned::<T>::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) if dropped.is_empty() => return Some(v),
            Ok(_) => return None,
            Err(e) => e,
        };
        let span = e.span().unwrap_or_else(|| value.span());
        let kind = kind_from_serde(e.message());
        // A required key we dropped ourselves is not missing from the file.
        if let ErrorKind::MissingKey { key } = &kind {
            if dropped.contains(key) {
                return None;
            }
        }
        let found = find_path(&value, span.start);
        let mut path = prefix.to_owned();
        if let Some(found) = &found {
            join_path(&mut path, found);
        }
        if let ErrorKind::UnknownKey { key, .. } = &kind {
            // The span is the unknown key itself; name its table.
            if let Some(parent) = path.strip_suffix(&format!(".{key}")) {
                path = parent.to_owned();
            }
        }
        errors.push(span, path, kind);
        // Drop the section's key that holds the error, then read again.
        let top = found
            .as_deref()
            .map(|f| f.split(['.', '[']).next().unwrap_or(f).to_owned());
        let removed = match (top, value.get_mut()) {
            (Some(top), DeValue::Table(table)) => table.remove(top.as_str()).map(|_| top),
            _ => None,
        };
        match removed {
            Some(top) => dropped.push(top),
            None => return None,
        }
    }
}

fn join_path(path: &mut String, found: &str) {
    if !path.is_empty() && !found.starts_with('[') {
        path.push('.');
    }
    path.push_str(found);
}

/// The path of the innermost key whose key or value covers `offset`.
/// Tables opened by a `[header]` do not span their body, so every child is
/// searched rather than only those whose span covers the offset.
fn find_path(value: &Spanned<DeValue<'_>>, offset: usize) -> Option<String> {
    let covers = |r: Range<usize>| r.start <= offset && offset < r.end.max(r.start + 1);
    match value.get_ref() {
        DeValue::Table(table) => table.iter().find_map(|(k, v)| {
            let key = k.get_ref();
            match find_path(v, offset) {
                Some(sub) if sub.starts_with('[') => Some(format!("{key}{sub}")),
                Some(sub) => Some(format!("{key}.{sub}")),
                None => (covers(k.span()) || covers(v.span())).then(|| key.to_string()),
            }
        }),
        DeValue::Array(items) => {
            items
                .iter()
                .enumerate()
                .find_map(|(i, v)| match find_path(v, offset) {
                    Some(sub) if sub.starts_with('[') => Some(format!("[{i}]{sub}")),
                    Some(sub) => Some(format!("[{i}].{sub}")),
                    None => covers(v.span()).then(|| format!("[{i}]")),
                })
        }
        _ => None,
    }
}

/// Turns serde's messages ("unknown field `x`, expected one of `a`, `b`")
/// into an [`ErrorKind`] that keeps the list of what is valid.
fn kind_from_serde(message: &str) -> ErrorKind {
    let message = one_line(message);
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((key, tail)) = rest.split_once('`') {
            let valid = tail
                .trim_start_matches(", expected one of ")
                .trim_start_matches(", expected ")
                .trim_start_matches(", there are no fields");
            let valid = if valid.is_empty() {
                "no keys here"
            } else {
                valid
            };
            return ErrorKind::UnknownKey {
                key: key.to_owned(),
                valid: valid.to_owned(),
            };
        }
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        return ErrorKind::MissingKey {
            key: rest.trim_end_matches('`').to_owned(),
        };
    }
    if let Some((what, valid)) = message.rsplit_once(", expected ") {
        let what = what
            .replace("invalid type: ", "wrong type: ")
            .replace("unknown variant ", "unknown value ");
        let valid = valid.trim_start_matches("one of ");
        return ErrorKind::Invalid {
            message: what,
            valid: valid.to_owned(),
        };
    }
    ErrorKind::Invalid {
        message,
        valid: "see examples/sonde.toml for every key".into(),
    }
}

/// Error messages go on one line each.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_ok(text: &str) -> RawConfig {
        let mut c = Collector::default();
        let raw = read(text, &mut c);
        assert!(c.is_empty(), "{}", c.finish(text, "t.toml"));
        raw.unwrap()
    }

    fn read_err(text: &str) -> String {
        let mut c = Collector::default();
        let _ = read(text, &mut c);
        assert!(!c.is_empty());
        c.finish(text, "t.toml").to_string()
    }

    #[test]
    fn reads_sections_and_checks_with_spans() {
        let text = "[agent]\nid = \"a1\"\n\n[[check]]\nname = \"api\"\nurl = \"http://x/\"\ninterval = \"5s\"\n";
        let raw = read_ok(text);
        let agent = raw.agent.unwrap().into_inner();
        assert_eq!(agent.id.unwrap().into_inner(), "a1");
        assert_eq!(raw.checks.len(), 1);
        let (prefix, check) = &raw.checks[0];
        assert_eq!(prefix, "check[\"api\"]");
        let interval = check.get_ref().interval.clone().unwrap();
        assert_eq!(&text[interval.span()], "\"5s\"");
    }

    #[test]
    fn unknown_keys_name_the_table_position_and_valid_keys() {
        let text = "[[check]]\nname = \"api\"\nurl = \"http://x/\"\nintervall = \"5s\"\n";
        let msg = read_err(text);
        assert!(
            msg.starts_with(
                "t.toml:4:1: check[\"api\"]: unknown key `intervall` (valid: `name`, `url`, `body`,"
            ),
            "{msg}"
        );
        assert!(msg.contains("`interval`"), "{msg}");
    }

    #[test]
    fn unknown_top_level_and_nested_keys_are_all_reported() {
        let text =
            "[agnet]\nid = 1\n\n[agent]\nid = \"x\"\nport = 3\n\n[sinks.file]\nfsink = \"1s\"\n";
        let msg = read_err(text);
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines.len(), 3, "{msg}");
        assert_eq!(
            lines[0],
            "t.toml:1:2: unknown key `agnet` (valid: `agent`, `defaults`, `check`, `sinks`, `prometheus`)"
        );
        assert_eq!(
            lines[1],
            "t.toml:6:1: agent: unknown key `port` (valid: `id`, `region`, `concurrency`, `state_dir`, `metrics_listen`)"
        );
        assert!(
            lines[2].starts_with(
                "t.toml:9:1: sinks.file: unknown key `fsink` (valid: `enabled`, `dir`,"
            ),
            "{msg}"
        );
    }

    #[test]
    fn wrong_types_say_what_is_valid() {
        let text = "[defaults]\ninterval = 30\n";
        assert_eq!(
            read_err(text),
            "t.toml:2:12: defaults.interval: wrong type: integer `30` (valid: a duration such as \"500ms\", \"15s\", \"1m30s\", \"2h\" or \"7d\")"
        );
        let text = "[[check]]\nname = \"a\"\nurl = \"http://x/\"\nenabled = \"yes\"\n";
        assert_eq!(
            read_err(text),
            "t.toml:4:11: check[\"a\"].enabled: wrong type: string \"yes\" (valid: a boolean)"
        );
    }

    #[test]
    fn inline_tokens_are_refused() {
        let text = "[[sinks.gateway]]\nurl = \"https://g/\"\ntoken = \"abc\"\n";
        let msg = read_err(text);
        assert!(msg.starts_with("t.toml:3:9: sinks.gateway[0].token: wrong type: string \"abc\" (valid: { env = \"NAME\" } or { file = \"/path\" })"), "{msg}");
    }

    #[test]
    fn errors_in_several_checks_are_all_reported() {
        let text = "[[check]]\nname = \"a\"\nurl = 1\n[[check]]\nname = \"b\"\nmethd = \"GET\"\n";
        let msg = read_err(text);
        assert_eq!(msg.lines().count(), 2, "{msg}");
        assert!(
            msg.lines()
                .next()
                .unwrap()
                .starts_with("t.toml:3:7: check[\"a\"].url: wrong type"),
            "{msg}"
        );
        assert!(
            msg.lines()
                .nth(1)
                .unwrap()
                .starts_with("t.toml:6:1: check[\"b\"]: unknown key `methd`"),
            "{msg}"
        );
    }

    #[test]
    fn check_as_plain_table_is_refused() {
        let msg = read_err("[check]\nname = \"a\"\n");
        assert!(
            msg.contains(
                "check: `check` must be an array of tables (valid: one [[check]] section per check)"
            ),
            "{msg}"
        );
    }

    #[test]
    fn syntax_errors_carry_positions() {
        let msg = read_err("[agent]\nid = \"unterminated\n");
        assert!(msg.starts_with("t.toml:2:"), "{msg}");
    }

    #[test]
    fn header_values_may_be_plain_or_secret_refs() {
        let text =
            "[defaults]\nheaders = { accept = \"*/*\", authorization = { env = \"TOKEN\" } }\n";
        let raw = read_ok(text);
        let headers = raw.defaults.unwrap().into_inner().headers.unwrap();
        let values: Vec<HeaderValue> = headers.values().map(|v| v.get_ref().clone()).collect();
        assert_eq!(values[0], HeaderValue::Plain("*/*".into()));
        assert_eq!(
            values[1],
            HeaderValue::Secret(SecretRef {
                env: Some("TOKEN".into()),
                file: None
            })
        );
    }
}
