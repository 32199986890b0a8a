//! The normalised plan as TOML, for `sonde check-config`: every default
//! written out, every check complete, secrets shown by source
//! (`{ env = "NAME" }`), never by value.
//!
//! The output is itself a valid configuration that loads into the same plan.

use std::fmt::Write as _;
use std::ops::RangeInclusive;

use crate::plan::{Check, Fsync, HeaderValue, IpVersion, Plan, StdoutFormat};
use crate::secret::{Secret, SecretSource};
use crate::{duration, size};

impl Plan {
    /// Renders the plan as commented TOML. Secret values never appear.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let enabled = self.enabled_checks().count();
        let _ = writeln!(
            out,
            "# sonde plan: {} check(s), {enabled} enabled; every default written out.",
            self.checks.len()
        );
        agent(&mut out, self);
        prometheus(&mut out, self);
        sinks(&mut out, self);
        for check in &self.checks {
            render_check(&mut out, check);
        }
        out
    }
}

fn agent(out: &mut String, plan: &Plan) {
    let a = &plan.agent;
    let _ = writeln!(out, "\n[agent]");
    let _ = writeln!(out, "id = {}", quote(&a.id));
    if let Some(r) = &a.region {
        let _ = writeln!(out, "region = {}", quote(r));
    }
    let _ = writeln!(out, "concurrency = {}", a.concurrency);
    let _ = writeln!(out, "state_dir = {}", quote(&a.state_dir.to_string_lossy()));
    match &a.metrics_listen {
        Some(m) => {
            let _ = writeln!(out, "metrics_listen = {}", quote(&m.to_string()));
        }
        None => out.push_str("# metrics_listen: not set, no metrics endpoint\n"),
    }
}

fn prometheus(out: &mut String, plan: &Plan) {
    let p = &plan.prometheus;
    let _ = writeln!(out, "\n[prometheus]");
    let _ = writeln!(out, "histograms = {}", p.histograms);
    let bounds: Vec<String> = p.phase_buckets.iter().map(|b| format!("{b:?}")).collect();
    let _ = writeln!(out, "phase_buckets = [{}]", bounds.join(", "));
    match &p.blackbox_config {
        Some(path) => {
            let _ = writeln!(out, "blackbox_config = {}", quote(&path.to_string_lossy()));
        }
        None => out.push_str("# blackbox_config: not set, no /probe modules\n"),
    }
}

fn sinks(out: &mut String, plan: &Plan) {
    let s = &plan.sinks;
    out.push_str("\n[sinks.file]\n");
    match &s.file {
        None => out.push_str("enabled = false\n"),
        Some(f) => {
            out.push_str("enabled = true\n");
            let _ = writeln!(out, "dir = {}", quote(&f.dir.to_string_lossy()));
            let _ = writeln!(
                out,
                "segment_max_bytes = {}",
                quote(&size::format(f.segment_max_bytes))
            );
            let _ = writeln!(
                out,
                "segment_max_age = {}",
                quote(&duration::format(f.segment_max_age))
            );
            let _ = writeln!(
                out,
                "retention_max_bytes = {}",
                quote(&size::format(f.retention_max_bytes))
            );
            let _ = writeln!(
                out,
                "retention_max_age = {}",
                quote(&duration::format(f.retention_max_age))
            );
            let fsync = match f.fsync {
                Fsync::Always => "always".to_owned(),
                Fsync::Never => "never".to_owned(),
                Fsync::Every(d) => duration::format(d),
            };
            let _ = writeln!(out, "fsync = {}", quote(&fsync));
        }
    }
    out.push_str("\n[sinks.stdout]\n");
    match &s.stdout {
        None => out.push_str("enabled = false\n"),
        Some(st) => {
            let format = match st.format {
                StdoutFormat::Human => "human",
                StdoutFormat::Json => "json",
            };
            let _ = writeln!(out, "enabled = true\nformat = {}", quote(format));
        }
    }
    for g in &s.gateways {
        out.push_str("\n[[sinks.gateway]]\n");
        let _ = writeln!(out, "name = {}", quote(&g.name));
        match g.urls.as_slice() {
            [url] => {
                let _ = writeln!(out, "url = {}", quote(url.as_str()));
            }
            urls => {
                let list: Vec<String> = urls.iter().map(|u| quote(u.as_str())).collect();
                let _ = writeln!(out, "urls = [{}]", list.join(", "));
            }
        }
        let _ = writeln!(out, "token = {}", secret_ref(&g.token));
        let _ = writeln!(
            out,
            "spool_max_bytes = {}",
            quote(&size::format(g.spool_max_bytes))
        );
        match &g.ca {
            Some(ca) => {
                let _ = writeln!(out, "ca_file = {}", quote(&ca.path.to_string_lossy()));
                let _ = writeln!(out, "system_roots = {}", g.system_roots);
            }
            None if g.urls.iter().any(|u| u.scheme() == "https") => {
                out.push_str("# ca_file: not set, the system roots only\n");
            }
            None => {}
        }
        let _ = writeln!(out, "# spool directory: {}", g.spool_dir.to_string_lossy());
    }
}

fn render_check(out: &mut String, c: &Check) {
    out.push_str("\n[[check]]\n");
    let _ = writeln!(out, "name = {}", quote(&c.name));
    let _ = writeln!(out, "url = {}", quote(c.url.as_str()));
    let _ = writeln!(out, "enabled = {}", c.enabled);
    let _ = writeln!(out, "method = {}", quote(c.method.as_str()));
    let _ = writeln!(out, "interval = {}", quote(&duration::format(c.interval)));
    let _ = writeln!(out, "timeout = {}", quote(&duration::format(c.timeout)));
    let statuses: Vec<String> = c.expect_status.iter().map(status).collect();
    let _ = writeln!(out, "expect_status = [{}]", statuses.join(", "));
    let ip = match c.ip_version {
        IpVersion::Auto => "\"auto\"",
        IpVersion::V4 => "4",
        IpVersion::V6 => "6",
        IpVersion::Prefer4 => "\"prefer4\"",
        IpVersion::Prefer6 => "\"prefer6\"",
    };
    let _ = writeln!(out, "ip_version = {ip}");
    let dns = c
        .dns_server
        .map_or_else(|| "system".to_owned(), |d| d.to_string());
    let _ = writeln!(out, "dns_server = {}", quote(&dns));
    let _ = writeln!(
        out,
        "resolution_delay = {}",
        quote(&duration::format(c.resolution_delay))
    );
    let _ = writeln!(out, "follow_redirects = {}", c.follow_redirects);
    let _ = writeln!(
        out,
        "allow_insecure_redirect = {}",
        c.allow_insecure_redirect
    );
    let _ = writeln!(
        out,
        "max_body_bytes = {}",
        quote(&size::format(c.max_body_bytes))
    );
    let _ = writeln!(out, "compression = {}", quote(c.compression.as_str()));
    if let Some(b) = &c.body {
        let _ = writeln!(out, "body = {}", quote(b));
    }
    if let Some(b) = &c.body_contains {
        let _ = writeln!(out, "body_contains = {}", quote(b));
    }
    if let Some(p) = &c.body_matches {
        let _ = writeln!(out, "body_matches = {}", quote(p.as_str()));
    }
    let headers: Vec<String> = c
        .headers
        .iter()
        .map(|h| {
            let value = match &h.value {
                HeaderValue::Plain(v) => quote(v),
                HeaderValue::Secret(s) => secret_ref(s),
            };
            format!("{} = {value}", key(&h.name))
        })
        .collect();
    let _ = writeln!(out, "headers = {}", inline_table(&headers));
    let labels: Vec<String> = c
        .labels
        .iter()
        .map(|(k, v)| format!("{} = {}", key(k), quote(v)))
        .collect();
    let _ = writeln!(out, "labels = {}", inline_table(&labels));
    let mut tls = vec![format!("insecure = {}", c.tls.insecure)];
    if let Some(ca) = &c.tls.ca {
        tls.push(format!("ca_file = {}", quote(&ca.path.to_string_lossy())));
        tls.push(format!("system_roots = {}", c.tls.system_roots));
    }
    if let Some(cc) = &c.tls.client_cert {
        tls.push(format!(
            "cert_file = {}",
            quote(&cc.cert.path.to_string_lossy())
        ));
        if let SecretSource::File(p) = cc.key.source() {
            tls.push(format!("key_file = {}", quote(&p.to_string_lossy())));
        }
    }
    if let Some(sn) = &c.tls.server_name {
        tls.push(format!("server_name = {}", quote(sn)));
    }
    let _ = writeln!(out, "tls = {}", inline_table(&tls));
}

fn inline_table(items: &[String]) -> String {
    if items.is_empty() {
        "{}".to_owned()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}

fn status(r: &RangeInclusive<u16>) -> String {
    if r.start() == r.end() {
        r.start().to_string()
    } else {
        format!("\"{}-{}\"", r.start(), r.end())
    }
}

/// Where a secret comes from, as the configuration would say it.
fn secret_ref<T>(s: &Secret<T>) -> String {
    match s.source() {
        SecretSource::Env(name) => format!("{{ env = {} }}", quote(name)),
        SecretSource::File(path) => format!("{{ file = {} }}", quote(&path.to_string_lossy())),
        SecretSource::Inline => quote("<redacted>"),
    }
}

/// A bare key when TOML allows one, else a quoted key.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_owned()
    } else {
        quote(k)
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_what_toml_needs() {
        assert_eq!(quote("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
        assert_eq!(key("X-Probe"), "X-Probe");
        assert_eq!(key("x.y"), "\"x.y\"");
    }
}
