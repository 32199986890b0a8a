//! alert.toml: the raw TOML shape (serde, unknown keys refused) and the
//! validated [`AlertConfig`] the alerter runs from. Secrets are read
//! through [`config::Host`], so parsing is testable without the
//! environment; nothing here opens a socket.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use config::{ConfigError, ConfigErrors, ErrorKind, Host, Secret, SecretRef};
use serde::Deserialize;

use super::deliver::{ReceiverConfig, ReceiverKind};
use super::rules::{Glob, Quorum, Rule, RuleConfig, Silence};

/// Where the alerter listens for /metrics, /healthz and its admin API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9466";
/// At most this many gateways, receivers, overrides or silences each.
const MAX_ENTRIES: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: PathBuf,
    listen: Option<String>,
    admin_token: Option<SecretRef>,
    page_url: Option<String>,
    #[serde(default)]
    gateway: Vec<RawGateway>,
    #[serde(default)]
    rules: RawRules,
    #[serde(default)]
    silence: Vec<RawSilence>,
    #[serde(default)]
    receiver: Vec<RawReceiver>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    name: Option<String>,
    url: String,
    token: SecretRef,
    ca_file: Option<PathBuf>,
    page_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    down_after: Option<u32>,
    recover_after: Option<u32>,
    quorum: Option<RawQuorum>,
    no_data_after: Option<u32>,
    no_data_min: Option<String>,
    flap_window: Option<String>,
    flap_threshold: Option<u32>,
    receivers: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawQuorum {
    Count(i64),
    Word(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(flatten)]
    default: RawRule,
    forget_after: Option<String>,
    #[serde(default, rename = "override")]
    overrides: Vec<RawOverride>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    checks: Vec<String>,
    #[serde(flatten)]
    rule: RawRule,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSilence {
    checks: Vec<String>,
    #[serde(default)]
    regions: Vec<String>,
    start: String,
    end: String,
    #[serde(default)]
    comment: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceiver {
    name: String,
    webhook: Option<RawWebhook>,
    alertmanager: Option<RawAlertmanager>,
    timeout: Option<String>,
    max_age: Option<String>,
    backoff_first: Option<String>,
    backoff_max: Option<String>,
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
    secrets: Vec<SecretRef>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertmanager {
    url: String,
    resend: Option<String>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
}

/// One gateway the alerter reads.
#[derive(Debug, Clone)]
pub struct GatewaySpec {
    /// Its name in metrics and logs (default: the URL's host:port).
    pub name: String,
    /// Its base URL.
    pub url: url::Url,
    /// The reader token.
    pub token: Secret<String>,
    /// A CA bundle for a gateway with a private CA.
    pub ca_file: Option<PathBuf>,
    /// The live page a notification links to for this gateway's region.
    pub page_url: Option<String>,
}

/// The validated alert.toml.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// Cursors, rule state, outboxes, dead letters.
    pub state_dir: PathBuf,
    /// /metrics, /healthz and the admin API.
    pub listen: SocketAddr,
    /// Bearer token for the admin API (silences, dead letters); without
    /// one the admin API is served only on a loopback listener.
    pub admin_token: Option<Secret<String>>,
    /// The gateways, in file order.
    pub gateways: Vec<GatewaySpec>,
    /// The rules.
    pub rules: RuleConfig,
    /// Receivers a check notifies: `None` all, else by index into
    /// `receivers`; the same order as `rules.overrides`, default last.
    pub routes: Routes,
    /// Silences and maintenance windows from the file.
    pub silences: Vec<Silence>,
    /// The receivers.
    pub receivers: Vec<ReceiverConfig>,
}

/// Which receivers a check's notifications go to.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// Per override of `rules.overrides` (same index): its receivers, if it names them.
    pub overrides: Vec<Option<Vec<usize>>>,
    /// `[rules] receivers`, if given.
    pub default: Option<Vec<usize>>,
}

impl Routes {
    /// The receivers (indexes) for a check whose rule is override `rule`
    /// (`None`: the default rule), given `all` receivers.
    pub fn receivers(&self, rule: Option<usize>, all: usize) -> Vec<usize> {
        let named = rule
            .and_then(|i| self.overrides.get(i).cloned().flatten())
            .or_else(|| self.default.clone());
        named.unwrap_or_else(|| (0..all).collect())
    }
}

type Invalid = Box<dyn Fn(String, String) -> ConfigErrors>;

impl AlertConfig {
    /// Parses and validates alert.toml text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str, host: &dyn Host) -> Result<AlertConfig, ConfigErrors> {
        let raw: RawConfig = config::from_toml(text, origin)?;
        let o = origin.to_owned();
        let invalid: Invalid = Box::new(move |key, message| {
            ConfigErrors::from(ConfigError::at_key(
                &o,
                key,
                ErrorKind::Unusable { message },
            ))
        });
        let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            invalid(
                "listen".into(),
                format!("`{listen_text}` is not an address such as \"{DEFAULT_LISTEN}\""),
            )
        })?;
        let admin_token = match &raw.admin_token {
            Some(t) => Some(
                t.resolve(host)
                    .map_err(|m| invalid("admin_token".into(), m))?,
            ),
            None => None,
        };
        for (what, n) in [
            ("gateway", raw.gateway.len()),
            ("receiver", raw.receiver.len()),
            ("silence", raw.silence.len()),
            ("rules.override", raw.rules.overrides.len()),
        ] {
            if n > MAX_ENTRIES {
                return Err(invalid(
                    what.into(),
                    format!("{n} entries; at most {MAX_ENTRIES}"),
                ));
            }
        }
        if raw.gateway.is_empty() {
            return Err(invalid(
                "gateway".into(),
                "no [[gateway]]: the alerter needs at least one gateway to read".into(),
            ));
        }
        let page_url = raw
            .page_url
            .as_deref()
            .map(|u| page(u, "page_url", &invalid))
            .transpose()?;
        let mut gateways: Vec<GatewaySpec> = Vec::new();
        for (i, g) in raw.gateway.iter().enumerate() {
            let key = |k: &str| format!("gateway[{i}].{k}");
            let url = target(&g.url, &key("url"), "https://gw.example:7700", &invalid)?;
            let name = match &g.name {
                Some(n) if config::is_name(n) => n.clone(),
                Some(n) => {
                    return Err(invalid(
                        key("name"),
                        format!("{n:?} is not a name (1 to 64 of A-Z a-z 0-9 _ . -)"),
                    ));
                }
                None => match (url.host_str(), url.port_or_known_default()) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    _ => g.url.clone(),
                },
            };
            if let Some(first) = gateways.iter().position(|x| x.name == name) {
                return Err(invalid(
                    key("name"),
                    format!("{name:?} is also gateway[{first}]'s name: give each gateway its own"),
                ));
            }
            let token = g
                .token
                .resolve(host)
                .map_err(|m| invalid(key("token"), m))?;
            let page_url = match &g.page_url {
                Some(u) => Some(page(u, &key("page_url"), &invalid)?),
                None => page_url.clone(),
            };
            gateways.push(GatewaySpec {
                name,
                url,
                token,
                ca_file: g.ca_file.clone(),
                page_url,
            });
        }

        let mut receivers: Vec<ReceiverConfig> = Vec::new();
        for (i, r) in raw.receiver.iter().enumerate() {
            let key = |k: &str| format!("receiver[{i}].{k}");
            if !config::is_name(&r.name) {
                return Err(invalid(
                    key("name"),
                    format!("{:?} is not a name (1 to 64 of A-Z a-z 0-9 _ . -)", r.name),
                ));
            }
            if receivers.iter().any(|x| x.name == r.name) {
                return Err(invalid(
                    key("name"),
                    format!("{:?} names two receivers", r.name),
                ));
            }
            let kind = match (&r.webhook, &r.alertmanager) {
                (Some(w), None) => {
                    let url = target(
                        &w.url,
                        &key("webhook.url"),
                        "https://hooks.example.com/sonde",
                        &invalid,
                    )?;
                    if w.secrets.is_empty() {
                        return Err(invalid(
                            key("webhook.secrets"),
                            "at least one secret (`whsec_...`) to sign with".into(),
                        ));
                    }
                    let mut secrets = Vec::new();
                    for (j, s) in w.secrets.iter().enumerate() {
                        let k = key(&format!("webhook.secrets[{j}]"));
                        let secret = s.resolve(host).map_err(|m| invalid(k.clone(), m))?;
                        super::deliver::check_secret(secret.expose())
                            .map_err(|e| invalid(k.clone(), e.to_string()))?;
                        secrets.push(secret);
                    }
                    let mut headers = Vec::new();
                    for (name, value) in &w.headers {
                        let ok = hyper::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                            && hyper::header::HeaderValue::from_str(value).is_ok();
                        if !ok {
                            return Err(invalid(
                                key(&format!("webhook.headers.{name}")),
                                "not a valid HTTP header name and value".into(),
                            ));
                        }
                        headers.push((name.clone(), value.clone()));
                    }
                    ReceiverKind::Webhook {
                        url,
                        secrets,
                        headers,
                    }
                }
                (None, Some(a)) => {
                    let url = target(
                        &a.url,
                        &key("alertmanager.url"),
                        "http://127.0.0.1:9093",
                        &invalid,
                    )?;
                    let resend = duration(
                        a.resend.as_deref(),
                        "1m",
                        &key("alertmanager.resend"),
                        &invalid,
                    )?;
                    if resend < Duration::from_secs(1) {
                        return Err(invalid(key("alertmanager.resend"), "at least 1s".into()));
                    }
                    let mut labels = Vec::new();
                    for (name, value) in &a.labels {
                        if !super::deliver::alertmanager::is_label_name(name)
                            || RESERVED_LABELS.iter().any(|r| r == name)
                        {
                            return Err(invalid(
                                key(&format!("alertmanager.labels.{name}")),
                                format!(
                                    "not a label name of your own ([a-zA-Z_][a-zA-Z0-9_]*, \
                                     not one of {})",
                                    RESERVED_LABELS.join(", ")
                                ),
                            ));
                        }
                        labels.push((name.clone(), value.clone()));
                    }
                    ReceiverKind::Alertmanager {
                        url,
                        resend,
                        labels,
                    }
                }
                _ => {
                    return Err(invalid(
                        key("webhook"),
                        "give exactly one of `webhook = { ... }` or `alertmanager = { ... }`"
                            .into(),
                    ));
                }
            };
            let backoff_first = duration(
                r.backoff_first.as_deref(),
                "1s",
                &key("backoff_first"),
                &invalid,
            )?;
            let backoff_max = duration(
                r.backoff_max.as_deref(),
                "5m",
                &key("backoff_max"),
                &invalid,
            )?;
            if backoff_first.is_zero() || backoff_max < backoff_first {
                return Err(invalid(
                    key("backoff_max"),
                    "backoff_first above zero and backoff_max at least backoff_first".into(),
                ));
            }
            receivers.push(ReceiverConfig {
                name: r.name.clone(),
                kind,
                timeout: duration(r.timeout.as_deref(), "10s", &key("timeout"), &invalid)?,
                max_age: duration(r.max_age.as_deref(), "24h", &key("max_age"), &invalid)?,
                backoff_first,
                backoff_max,
                ca_file: r.ca_file.clone(),
            });
        }

        let names: Vec<&str> = receivers.iter().map(|r| r.name.as_str()).collect();
        let route = |list: &Option<Vec<String>>,
                     key: String|
         -> Result<Option<Vec<usize>>, ConfigErrors> {
            let Some(list) = list else { return Ok(None) };
            list.iter()
                .map(|n| {
                    names.iter().position(|x| x == n).ok_or_else(|| {
                        invalid(
                            key.clone(),
                            format!("no [[receiver]] named {n:?} (valid: {})", names.join(", ")),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        };
        let forget_after = duration(
            raw.rules.forget_after.as_deref(),
            "24h",
            "rules.forget_after",
            &invalid,
        )?;
        let base = rule(&raw.rules.default, &Rule::default(), "rules", &invalid)?;
        let mut routes = Routes {
            overrides: Vec::new(),
            default: route(&raw.rules.default.receivers, "rules.receivers".into())?,
        };
        let mut overrides = Vec::new();
        for (i, o) in raw.rules.overrides.iter().enumerate() {
            let key = format!("rules.override[{i}]");
            let globs = globs(&o.checks, &format!("{key}.checks"), &invalid)?;
            overrides.push((globs, rule(&o.rule, &base, &key, &invalid)?));
            routes
                .overrides
                .push(route(&o.rule.receivers, format!("{key}.receivers"))?);
        }
        let mut silences = Vec::new();
        for (i, s) in raw.silence.iter().enumerate() {
            let key = |k: &str| format!("silence[{i}].{k}");
            let start = instant(&s.start, &key("start"), &invalid)?;
            let end = instant(&s.end, &key("end"), &invalid)?;
            if end <= start {
                return Err(invalid(key("end"), "must be after start".into()));
            }
            silences.push(Silence {
                id: format!("config-{i}"),
                checks: globs(&s.checks, &key("checks"), &invalid)?,
                regions: s.regions.iter().map(Glob::new).collect(),
                start_ms: start,
                end_ms: end,
                comment: s.comment.clone(),
            });
        }
        Ok(AlertConfig {
            state_dir: raw.state_dir,
            listen,
            admin_token,
            gateways,
            rules: RuleConfig {
                default: base,
                overrides,
                forget_after_ms: forget_after.as_millis() as u64,
            },
            routes,
            silences,
            receivers,
        })
    }

    /// Reads (through `host`: a regular file, bounded) and parses alert.toml at `path`.
    pub fn load(path: &std::path::Path, host: &dyn Host) -> Result<AlertConfig, ConfigErrors> {
        let (origin, text) = config::read_text(path, host)?;
        AlertConfig::parse(&text, &origin, host)
    }
}

/// Labels the alerter sets on Alertmanager alerts itself.
pub const RESERVED_LABELS: [&str; 6] =
    ["alertname", "check", "region", "agent", "class", "gateway"];

fn rule(raw: &RawRule, base: &Rule, key: &str, invalid: &Invalid) -> Result<Rule, ConfigErrors> {
    let mut r = base.clone();
    let at_least_one = |v: Option<u32>, k: &str, into: &mut u32| -> Result<(), ConfigErrors> {
        match v {
            Some(0) => Err(invalid(format!("{key}.{k}"), "at least 1".into())),
            Some(n) if n > 1000 => Err(invalid(format!("{key}.{k}"), "at most 1000".into())),
            Some(n) => {
                *into = n;
                Ok(())
            }
            None => Ok(()),
        }
    };
    at_least_one(raw.down_after, "down_after", &mut r.down_after)?;
    at_least_one(raw.recover_after, "recover_after", &mut r.recover_after)?;
    at_least_one(raw.no_data_after, "no_data_after", &mut r.no_data_after)?;
    at_least_one(raw.flap_threshold, "flap_threshold", &mut r.flap_threshold)?;
    if let Some(q) = &raw.quorum {
        r.quorum = match q {
            RawQuorum::Word(w) if w == "majority" => Quorum::Majority,
            RawQuorum::Count(n) if (1..=1000).contains(n) => Quorum::AtLeast(*n as u32),
            _ => {
                return Err(invalid(
                    format!("{key}.quorum"),
                    "\"majority\" or a number of regions from 1".into(),
                ));
            }
        };
    }
    if let Some(d) = &raw.no_data_min {
        r.no_data_min_ms =
            duration(Some(d), "", &format!("{key}.no_data_min"), invalid)?.as_millis() as u64;
    }
    if let Some(d) = &raw.flap_window {
        let w = duration(Some(d), "", &format!("{key}.flap_window"), invalid)?;
        if w < Duration::from_secs(1) {
            return Err(invalid(format!("{key}.flap_window"), "at least 1s".into()));
        }
        r.flap_window_ms = w.as_millis() as u64;
    }
    Ok(r)
}

fn globs(list: &[String], key: &str, invalid: &Invalid) -> Result<Vec<Glob>, ConfigErrors> {
    if list.is_empty() {
        return Err(invalid(
            key.into(),
            "at least one glob such as \"api-*\"".into(),
        ));
    }
    Ok(list.iter().map(Glob::new).collect())
}

fn duration(
    text: Option<&str>,
    default: &str,
    key: &str,
    invalid: &Invalid,
) -> Result<Duration, ConfigErrors> {
    let t = text.unwrap_or(default);
    config::duration::parse(t).map_err(|e| invalid(key.into(), format!("`{t}`: {e}")))
}

fn instant(text: &str, key: &str, invalid: &Invalid) -> Result<u64, ConfigErrors> {
    store::Utc::parse_rfc3339(text).ok_or_else(|| {
        invalid(
            key.into(),
            format!("`{text}` is not an RFC 3339 time such as \"2026-12-01T22:00:00Z\""),
        )
    })
}

/// An http(s) URL with a host; refused with an `example` of one.
fn target(
    text: &str,
    key: &str,
    example: &str,
    invalid: &Invalid,
) -> Result<url::Url, ConfigErrors> {
    url::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            invalid(
                key.into(),
                format!("`{text}` is not an http(s) URL such as \"{example}\""),
            )
        })
}

/// The live page's URL, without a fragment (the link adds its own).
fn page(text: &str, key: &str, invalid: &Invalid) -> Result<String, ConfigErrors> {
    let mut u = target(text, key, "https://status.example.com/", invalid)?;
    u.set_fragment(None);
    Ok(u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Environment variables from a list; no files.
    struct Env(Vec<(&'static str, String)>);

    impl Host for Env {
        fn read_file(&self, path: &std::path::Path) -> std::io::Result<Vec<u8>> {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                path.display().to_string(),
            ))
        }
        fn var(&self, name: &str) -> Result<String, std::env::VarError> {
            self.0
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .ok_or(std::env::VarError::NotPresent)
        }
    }

    fn env() -> Env {
        Env(vec![
            ("SONDE_EU_READER_TOKEN", "eu".into()),
            ("SONDE_US_READER_TOKEN", "us".into()),
            (
                "SONDE_WEBHOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            ),
        ])
    }

    #[test]
    fn the_example_parses_with_its_defaults() {
        let text = include_str!("../../../examples/alert.toml");
        let cfg = AlertConfig::parse(text, "alert.toml", &env()).unwrap();
        assert_eq!(cfg.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(cfg.gateways.len(), 2);
        assert_eq!(cfg.gateways[0].name, "eu-west");
        assert_eq!(cfg.receivers.len(), 2);
        assert_eq!(
            cfg.rules.default,
            Rule::default(),
            "the example shows the defaults"
        );
        assert_eq!(cfg.rules.overrides.len(), 1);
        assert_eq!(cfg.rules.overrides[0].1.quorum, Quorum::AtLeast(1));
        assert_eq!(cfg.rules.overrides[0].1.down_after, 1);
        assert_eq!(cfg.rules.rule_index("payments-eu"), Some(0));
        assert_eq!(cfg.rules.rule_index("api"), None);
        assert_eq!(cfg.routes.receivers(Some(0), 2), vec![0, 1]);
        assert_eq!(cfg.routes.receivers(None, 2), vec![0, 1]);
        assert_eq!(cfg.silences.len(), 1);
        assert_eq!(
            cfg.silences[0].end_ms - cfg.silences[0].start_ms,
            4 * 3600 * 1000
        );
        match &cfg.receivers[1].kind {
            ReceiverKind::Alertmanager { resend, labels, .. } => {
                assert_eq!(*resend, Duration::from_secs(60));
                assert_eq!(labels, &vec![("team".to_string(), "sre".to_string())]);
            }
            other => panic!("{other:?}"),
        }
    }

    fn refused(text: &str) -> String {
        let full = format!(
            "state_dir = \"/s\"\n[[gateway]]\nurl = \"http://127.0.0.1:7700\"\n\
             token = {{ env = \"SONDE_EU_READER_TOKEN\" }}\n{text}"
        );
        AlertConfig::parse(&full, "alert.toml", &env())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn mistakes_are_named_with_their_key() {
        for (text, want) in [
            ("[rules]\ndown_after = 0\n", "rules.down_after: at least 1"),
            ("[rules]\nquorum = \"most\"\n", "rules.quorum"),
            ("[rules]\nflap_window = \"soon\"\n", "rules.flap_window"),
            (
                "[rules]\nreceivers = [\"pager\"]\n",
                "no [[receiver]] named \"pager\"",
            ),
            (
                "[[rules.override]]\nchecks = []\n",
                "rules.override[0].checks",
            ),
            ("[rules]\nbogus = 1\n", "unknown field `bogus`"),
            (
                "[[receiver]]\nname = \"x\"\nwebhook = { url = \"https://h\", secrets = [{ env = \"SONDE_EU_READER_TOKEN\" }] }\n",
                "receiver[0].webhook.secrets[0]",
            ),
            (
                "[[receiver]]\nname = \"x\"\nwebhook = { url = \"ftp://h\", secrets = [] }\n",
                "receiver[0].webhook.url",
            ),
            ("[[receiver]]\nname = \"x\"\n", "exactly one of"),
            (
                "[[receiver]]\nname = \"am\"\nalertmanager = { url = \"http://h\", labels = { check = \"x\" } }\n",
                "receiver[0].alertmanager.labels.check",
            ),
            (
                "[[silence]]\nchecks = [\"a\"]\nstart = \"2026-12-02T00:00:00Z\"\nend = \"2026-12-01T00:00:00Z\"\n",
                "silence[0].end: must be after start",
            ),
            (
                "[[silence]]\nchecks = [\"a\"]\nstart = \"tomorrow\"\nend = \"2026-12-01T00:00:00Z\"\n",
                "silence[0].start",
            ),
            (
                "[[gateway]]\nurl = \"http://127.0.0.1:7700\"\ntoken = { env = \"NOPE\" }\n",
                "gateway[1].name: \"127.0.0.1:7700\" is also gateway[0]'s name",
            ),
        ] {
            let e = refused(text);
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let e = AlertConfig::parse("state_dir = \"/s\"\n", "alert.toml", &env())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no [[gateway]]"), "{e}");
        let e = AlertConfig::parse("state_dir = \n", "alert.toml", &env())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("alert.toml:1:"),
            "syntax errors have a position: {e}"
        );
    }
}
