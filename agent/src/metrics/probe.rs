//! blackbox_exporter's http prober gauges for one probe: what they show of
//! a [`CheckResult`] ([`ProbeGauges`]), and the one function that writes
//! them ([`write_gauges`]), used by `/probe` (one probe, no labels) and by
//! `/metrics` (each check's last probe, with its labels). Names, HELP
//! texts, label names and when each family is present follow blackbox
//! v0.23.0 (plus v0.28.0's `probe_tls_cipher_info` and `serialnumber`).
//! It does not keep or count anything.

use std::net::IpAddr;
use std::sync::Arc;

use exposition::{Exposition, Format, Kind, Value, escape};
use wire::Status;

use crate::probe::TlsInfo;
use crate::result::CheckResult;

/// blackbox_exporter's phase names, in the order the phases happen.
pub(super) const PHASES: [&str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];

/// [`PHASES`] as rendered `phase` labels, in the same order.
const PHASE_LABELS: [&str; 5] = [
    "phase=\"resolve\"",
    "phase=\"connect\"",
    "phase=\"tls\"",
    "phase=\"processing\"",
    "phase=\"transfer\"",
];

/// Go's zero `time.Time` as Unix seconds: what blackbox_exporter reports
/// for a chain expiry it has no certificate for (no verified chain).
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// What blackbox_exporter's gauges show of one probe, taken from its
/// result once (numbers; the TLS facts shared, not copied).
#[derive(Debug, Clone)]
pub(crate) struct ProbeGauges {
    success: bool,
    duration_s: f64,
    /// The probe's wall-clock start, Unix seconds.
    pub(super) started_at_s: f64,
    /// The name resolved (blackbox_exporter stops before the other phases
    /// when it does not).
    resolved: bool,
    dns_s: f64,
    /// Indexed like [`PHASES`]; 0 for a phase that did not happen.
    pub(super) phases_s: [f64; 5],
    /// The first address tried (else the one connected to): what
    /// `probe_ip_addr_hash` and `probe_ip_protocol` show.
    ip: Option<IpAddr>,
    /// A response was received (else blackbox_exporter shows an empty one).
    responded: bool,
    status_code: u16,
    content_length: Option<u64>,
    body_bytes: u64,
    http_version: f64,
    redirects: u32,
    ssl: bool,
    last_modified: Option<i64>,
    failed_due_to_regex: bool,
    tls: Option<Arc<TlsInfo>>,
}

impl ProbeGauges {
    /// The gauges of `result`.
    pub(crate) fn of(result: &CheckResult) -> ProbeGauges {
        let record = &result.record;
        let facts = &result.facts;
        let t = &result.timings;
        let dns_failed = record.error.is_some_and(|c| c.name().starts_with("dns_"));
        let secs = |d: Option<std::time::Duration>| d.map_or(0.0, |d| d.as_secs_f64());
        let first_byte: std::time::Duration = [t.dns, t.connect, t.tls, t.ttfb]
            .into_iter()
            .flatten()
            .sum();
        let transfer = t.ttfb.map(|_| t.total.saturating_sub(first_byte));
        // A failed lookup's time is the probe's so far, as blackbox_exporter
        // times it.
        let dns_s = match t.dns {
            Some(d) => d.as_secs_f64(),
            None if dns_failed => t.total.as_secs_f64(),
            None => 0.0,
        };
        let responded = record.sc.is_some();
        ProbeGauges {
            success: record.st == Status::Up,
            duration_s: t.total.as_secs_f64(),
            started_at_s: record.t_ms as f64 / 1000.0,
            resolved: !dns_failed,
            dns_s,
            // blackbox_exporter adds connect and tls only once it has a
            // connection: a failed connect or handshake shows 0 for both.
            phases_s: [
                dns_s,
                if facts.no_connection {
                    0.0
                } else {
                    secs(t.connect)
                },
                if facts.no_connection {
                    0.0
                } else {
                    secs(t.tls)
                },
                secs(t.ttfb),
                secs(transfer),
            ],
            ip: facts.chosen.or(facts.remote),
            responded,
            status_code: record.sc.unwrap_or(0),
            content_length: facts.content_length,
            body_bytes: facts.decoded_body_bytes,
            http_version: facts.http_version.map_or(0.0, version_number),
            redirects: facts.redirects,
            ssl: responded && facts.ssl,
            last_modified: facts.last_modified.filter(|_| responded),
            failed_due_to_regex: facts.failed_due_to_regex,
            tls: facts.tls.clone().filter(|_| responded),
        }
    }
}

/// One gauge family: its name, HELP text and how it writes one probe's
/// samples (none, when blackbox_exporter would not show it).
struct Family {
    name: &'static str,
    help: &'static str,
    /// Writes the family's samples under the name it is given (`name`).
    write: fn(&mut Exposition, &'static str, &str, &ProbeGauges),
}

fn one(o: &mut Exposition, name: &str, labels: &str, v: impl Into<Value>) {
    o.sample(name, labels, "", v);
}

/// blackbox_exporter's families, in the order its registry writes them
/// (by name).
const FAMILIES: [Family; 19] = [
    Family {
        name: "probe_dns_lookup_time_seconds",
        help: "Returns the time taken for probe dns lookup in seconds",
        write: |o, n, l, p| one(o, n, l, p.dns_s),
    },
    Family {
        name: "probe_duration_seconds",
        help: "Returns how long the probe took to complete in seconds",
        write: |o, n, l, p| one(o, n, l, p.duration_s),
    },
    Family {
        name: "probe_failed_due_to_regex",
        help: "Indicates if probe failed due to regex",
        write: |o, n, l, p| one(o, n, l, p.failed_due_to_regex),
    },
    Family {
        name: "probe_http_content_length",
        help: "Length of http content response",
        write: |o, n, l, p| {
            // Go's ContentLength: -1 unknown; 0 for the empty response
            // blackbox_exporter substitutes when none came.
            let len = match (p.responded, p.content_length) {
                (false, _) => 0,
                (true, None) => -1,
                (true, Some(n)) => i64::try_from(n).unwrap_or(i64::MAX),
            };
            one(o, n, l, len);
        },
    },
    Family {
        name: "probe_http_duration_seconds",
        help: "Duration of http request by phase, summed over all redirects",
        write: |o, n, l, p| {
            let phases = if p.resolved { 5 } else { 1 };
            for (phase, s) in PHASE_LABELS.iter().zip(p.phases_s).take(phases) {
                o.sample(n, l, phase, s);
            }
        },
    },
    Family {
        name: "probe_http_last_modified_timestamp_seconds",
        help: "Returns the Last-Modified HTTP response header in unixtime",
        write: |o, n, l, p| {
            if let Some(t) = p.last_modified {
                one(o, n, l, t);
            }
        },
    },
    Family {
        name: "probe_http_redirects",
        help: "The number of redirects",
        write: |o, n, l, p| one(o, n, l, p.redirects),
    },
    Family {
        name: "probe_http_ssl",
        help: "Indicates if SSL was used for the final redirect",
        write: |o, n, l, p| one(o, n, l, p.ssl),
    },
    Family {
        name: "probe_http_status_code",
        help: "Response HTTP status code",
        write: |o, n, l, p| one(o, n, l, p.status_code),
    },
    Family {
        name: "probe_http_uncompressed_body_length",
        help: "Length of uncompressed response body",
        write: |o, n, l, p| {
            let len = if p.responded { p.body_bytes } else { 0 };
            one(o, n, l, len);
        },
    },
    Family {
        name: "probe_http_version",
        help: "Returns the version of HTTP of the probe response",
        write: |o, n, l, p| one(o, n, l, p.http_version),
    },
    Family {
        name: "probe_ip_addr_hash",
        help: "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
        write: |o, n, l, p| {
            let h = p.ip.filter(|_| p.resolved).map_or(0, ip_hash);
            one(o, n, l, h);
        },
    },
    Family {
        name: "probe_ip_protocol",
        help: "Specifies whether probe ip protocol is IP4 or IP6",
        write: |o, n, l, p| {
            let v = p.ip.filter(|_| p.resolved).map_or(0u8, ip_protocol);
            one(o, n, l, v);
        },
    },
    Family {
        name: "probe_ssl_earliest_cert_expiry",
        help: "Returns last SSL chain expiry in unixtime",
        write: |o, n, l, p| {
            if let Some(tls) = &p.tls {
                let t = tls.earliest_not_after.unwrap_or(GO_ZERO_TIME);
                one(o, n, l, t);
            }
        },
    },
    Family {
        name: "probe_ssl_last_chain_expiry_timestamp_seconds",
        help: "Returns last SSL chain expiry in timestamp",
        write: |o, n, l, p| {
            if let Some(tls) = &p.tls {
                let t = tls.chain_not_after.unwrap_or(GO_ZERO_TIME);
                one(o, n, l, t);
            }
        },
    },
    Family {
        name: "probe_ssl_last_chain_info",
        help: "Contains SSL leaf certificate information",
        write: |o, n, l, p| {
            if let Some(leaf) = p.tls.as_ref().and_then(|t| t.leaf.as_ref()) {
                let extra = format!(
                    "fingerprint_sha256=\"{}\",issuer=\"{}\",serialnumber=\"{}\",subject=\"{}\",subjectalternative=\"{}\"",
                    escape(&leaf.fingerprint_sha256),
                    escape(&leaf.issuer),
                    escape(&leaf.serial),
                    escape(&leaf.subject),
                    escape(&leaf.subject_alternative),
                );
                o.sample(n, l, &extra, 1u8);
            }
        },
    },
    Family {
        name: "probe_success",
        help: "Displays whether or not the probe was a success",
        write: |o, n, l, p| one(o, n, l, p.success),
    },
    Family {
        name: "probe_tls_cipher_info",
        help: "Returns the TLS cipher negotiated during handshake",
        write: |o, n, l, p| {
            if let Some(tls) = &p.tls {
                let extra = format!("cipher=\"{}\"", escape(go_cipher_name(&tls.cipher)));
                o.sample(n, l, &extra, 1u8);
            }
        },
    },
    Family {
        name: "probe_tls_version_info",
        help: "Returns the TLS version used or NaN when unknown",
        write: |o, n, l, p| {
            if let Some(tls) = &p.tls {
                let extra = format!("version=\"{}\"", go_tls_version(tls.version));
                o.sample(n, l, &extra, 1u8);
            }
        },
    },
];

/// Writes every blackbox_exporter family for `probes`, each probe's
/// samples labelled with its rendered label list (empty for `/probe`).
/// A family no probe shows is left out.
pub(super) fn write_gauges(o: &mut Exposition, probes: &[(&str, &ProbeGauges)]) {
    for f in &FAMILIES {
        o.family(f.name, Kind::Gauge, f.help);
        for (labels, p) in probes {
            (f.write)(o, f.name, labels, p);
        }
    }
}

/// What `/probe` answers for one probe: blackbox_exporter's families for
/// it, without labels, in `format` (the text format, as blackbox_exporter
/// answers).
pub(crate) fn probe_exposition(result: &CheckResult, format: Format) -> String {
    let mut o = Exposition::new(format, 2048);
    write_gauges(&mut o, &[("", &ProbeGauges::of(result))]);
    o.finish()
}

/// The number blackbox_exporter parses from `resp.Proto` ("HTTP/1.1" → 1.1).
fn version_number(v: hyper::Version) -> f64 {
    match v {
        hyper::Version::HTTP_09 => 0.9,
        hyper::Version::HTTP_10 => 1.0,
        hyper::Version::HTTP_11 => 1.1,
        hyper::Version::HTTP_2 => 2.0,
        hyper::Version::HTTP_3 => 3.0,
        _ => 0.0,
    }
}

/// Go's FNV-32a over the address as `net.IP.To4()` gives it for IPv4
/// (four bytes, IPv4-mapped IPv6 included), else the 16 bytes.
pub(super) fn ip_hash(ip: IpAddr) -> u32 {
    let v4 = match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => a.to_ipv4_mapped(),
    };
    let bytes: Vec<u8> = match (v4, ip) {
        (Some(a), _) => a.octets().to_vec(),
        (None, IpAddr::V6(a)) => a.octets().to_vec(),
        (None, IpAddr::V4(a)) => a.octets().to_vec(),
    };
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

fn ip_protocol(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V6(a) if a.to_ipv4_mapped().is_none() => 6,
        _ => 4,
    }
}

/// Go's `tls.ConnectionState` version names.
fn go_tls_version(rustls_name: &str) -> &'static str {
    match rustls_name {
        "TLSv1.3" => "TLS 1.3",
        "TLSv1.2" => "TLS 1.2",
        "TLSv1.1" => "TLS 1.1",
        "TLSv1.0" => "TLS 1.0",
        _ => "unknown",
    }
}

/// Go's `tls.CipherSuiteName` for a rustls suite name: the TLS 1.3 suites
/// lose rustls' `TLS13_` for the RFC's `TLS_`; the TLS 1.2 suites rustls
/// offers are named alike.
fn go_cipher_name(rustls_name: &str) -> &str {
    match rustls_name {
        "TLS13_AES_128_GCM_SHA256" => "TLS_AES_128_GCM_SHA256",
        "TLS13_AES_256_GCM_SHA384" => "TLS_AES_256_GCM_SHA384",
        "TLS13_CHACHA20_POLY1305_SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_hash_is_go_fnv32a_over_the_four_or_sixteen_bytes() {
        // FNV-1a's published test vector pins the function: "a" → 0xe40c292c.
        assert_eq!(fnv(b"a"), 0xe40c_292c);
        // 127.0.0.1 as Go's To4() holds it (4 bytes), not its 16-byte form.
        assert_eq!(ip_hash("127.0.0.1".parse().unwrap()), 3_668_918_509);
        assert_eq!(ip_hash("::ffff:127.0.0.1".parse().unwrap()), 3_668_918_509);
        let v6: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(ip_hash(IpAddr::V6(v6)), fnv(&v6.octets()));
    }

    fn fnv(bytes: &[u8]) -> u32 {
        let mut h = 0x811c_9dc5u32;
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
        h
    }

    #[test]
    fn go_names_for_tls_versions_and_ciphers() {
        assert_eq!(go_tls_version("TLSv1.3"), "TLS 1.3");
        assert_eq!(go_tls_version("TLSv1.2"), "TLS 1.2");
        assert_eq!(go_tls_version("SSLv3"), "unknown");
        assert_eq!(
            go_cipher_name("TLS13_AES_128_GCM_SHA256"),
            "TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(
            go_cipher_name("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        );
    }
}
