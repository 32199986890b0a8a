//! What `sonde probe` and `sonde wait` show beside their own output, as
//! curl's flags show it: `-i` the response head and `-v` the request and
//! response heads on stderr, `-o` the body to a file, `-w` the write-out.
//! All of it is written after the probe, never inside its timed window;
//! the rendering is pure, the writing is [`Prepared`]'s.

use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use hyper::header::HeaderMap;

use super::request::read_data_source;
use super::writeout::{Completed, CurlTimes, Phases, Stream, Template, Values};
use sonde::probe::{Phase, ProbeReport, SentRequest};

/// The output flags `sonde probe` and `sonde wait` share.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Write the body to FILE instead of nowhere ("-": stdout, before the
    /// waterfall); decoded with --compressed; up to --max-body-size
    /// (sonde wait: the last attempt's).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Show the response head (status line and headers) on stderr
    /// (sonde wait: every attempt's).
    #[arg(short = 'i', long)]
    pub include: bool,
    /// Show the request ("> ") and response ("< ") heads and the connection
    /// ("* ") on stderr, after the probe (sonde wait: every attempt's).
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// After the probe, write FORMAT with curl's variables: %{http_code},
    /// %{time_total} (and every time_* curl has), %{remote_ip}, %{json}...,
    /// sonde's phases as %{sonde_dns} %{sonde_connect} %{sonde_proxy}
    /// %{sonde_tls} %{sonde_ttfb} %{sonde_body} (seconds), %{stderr};
    /// @FILE or @- reads FORMAT. Replaces the waterfall unless --format is
    /// given (sonde wait: once, for the last attempt). README: sonde probe.
    #[arg(short = 'w', long, value_name = "FORMAT")]
    pub write_out: Option<String>,
}

/// The output flags, checked and ready before the probe: the -w format
/// read and parsed. The -o file is created only once a response came, as
/// curl creates it when data arrives: a probe that got no answer leaves an
/// existing file as it was.
pub struct Prepared {
    /// The parsed -w format.
    pub template: Option<Template>,
    body: Option<BodyOut>,
    /// -i (or -I): the response head.
    pub include: bool,
    /// -v: the request and response heads and the connection.
    pub verbose: bool,
}

enum BodyOut {
    Stdout,
    File(PathBuf),
}

impl Prepared {
    /// Reads `-w @FILE` (CR and LF removed, as curl reads it) and checks
    /// the `-o` name.
    pub fn new(args: &OutputArgs, head: bool) -> anyhow::Result<Prepared> {
        let template = match args.write_out.as_deref() {
            None => None,
            Some(format) => Some(Template::parse(&match format.strip_prefix('@') {
                Some(path) => {
                    let raw = read_data_source(path)
                        .with_context(|| format!("-w @{path}: reading the format"))?;
                    let text = String::from_utf8(raw)
                        .map_err(|_| anyhow::anyhow!("-w @{path}: the format is not UTF-8"))?;
                    text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect()
                }
                None => format.to_owned(),
            })),
        };
        let body = match args.output.as_deref() {
            None => None,
            Some(path) if path.as_os_str() == "-" => Some(BodyOut::Stdout),
            Some(path) => {
                if path.as_os_str().is_empty() {
                    bail!("-o \"\": no file name");
                }
                Some(BodyOut::File(path.to_owned()))
            }
        };
        Ok(Prepared {
            template,
            body,
            include: args.include || head,
            verbose: args.verbose,
        })
    }

    /// Whether the probe must keep the response (headers and body).
    pub fn keeps_response(&self) -> bool {
        self.body.is_some()
            || self.include
            || self.verbose
            || self.template.as_ref().is_some_and(Template::needs_headers)
    }

    /// -i/-v for one report, on stderr.
    pub fn heads(&self, report: &ProbeReport) -> String {
        if self.verbose {
            verbose(report)
        } else if self.include {
            response_head(report, "")
        } else {
            String::new()
        }
    }

    /// Writes the kept body to -o's file or stdout (a failed probe's body
    /// up to the failure, as curl keeps what it received). Without a
    /// response nothing is written, and no file is created or truncated.
    pub fn write_body(&mut self, report: &ProbeReport) -> anyhow::Result<()> {
        if report.status_code.is_none() {
            return Ok(());
        }
        let body = report.body.as_deref().unwrap_or_default();
        match &mut self.body {
            None => Ok(()),
            Some(BodyOut::Stdout) => {
                let mut out = std::io::stdout().lock();
                out.write_all(body)
                    .and_then(|()| out.flush())
                    .context("-o -: writing the body to stdout")
            }
            Some(BodyOut::File(path)) => File::create(&*path)
                .and_then(|mut file| file.write_all(body).and_then(|()| file.flush()))
                .with_context(|| format!("-o {}: writing the body", path.display())),
        }
    }

    /// Writes -w for `values` to stdout and stderr.
    pub fn write_out(&self, values: &Values) {
        let Some(template) = &self.template else {
            return;
        };
        for (stream, text) in template.render(values) {
            // As curl: a write-out that cannot be written changes no exit status.
            let _ = match stream {
                Stream::Stdout => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(text.as_bytes()).and_then(|()| out.flush())
                }
                Stream::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
            };
        }
    }
}

/// The version as curl's `%{http_version}` writes it: "1.1", "2".
fn curl_version(v: hyper::Version) -> Option<&'static str> {
    match v {
        hyper::Version::HTTP_10 => Some("1"),
        hyper::Version::HTTP_11 => Some("1.1"),
        hyper::Version::HTTP_2 => Some("2"),
        hyper::Version::HTTP_3 => Some("3"),
        _ => None,
    }
}

fn header_lines(out: &mut String, prefix: &str, headers: &HeaderMap) {
    for (name, value) in headers {
        out.push_str(prefix);
        out.push_str(name.as_str());
        out.push_str(": ");
        out.push_str(&String::from_utf8_lossy(value.as_bytes()));
        out.push('\n');
    }
}

/// The last response's status line and headers, then a blank line, each
/// line after `prefix` (curl's -i; hyper gives header names in lowercase
/// and no reason phrase, so the status line has the code's canonical one).
pub fn response_head(report: &ProbeReport, prefix: &str) -> String {
    let Some(code) = report.status_code else {
        return String::new();
    };
    let version = report
        .http_version
        .map_or("HTTP/?", super::probe::version_name);
    let mut out = format!("{prefix}{version} {code}");
    let reason = hyper::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason());
    if let (Some(reason), false) = (reason, report.http_version == Some(hyper::Version::HTTP_2)) {
        out.push(' ');
        out.push_str(reason);
    }
    out.push('\n');
    if let Some(headers) = &report.headers {
        header_lines(&mut out, prefix, headers);
    }
    out.push_str(prefix);
    out.push('\n');
    out
}

fn request_head(request: &SentRequest) -> String {
    let mut out = format!(
        "> {} {} {}\n",
        request.method,
        request.target,
        super::probe::version_name(request.version)
    );
    header_lines(&mut out, "> ", &request.headers);
    out.push_str("> \n");
    out
}

/// curl's -v, after the fact: the connection (`* `), the last request as
/// sent (`> `) and the last response's head (`< `).
pub fn verbose(report: &ProbeReport) -> String {
    let mut out = String::new();
    if let Some(remote) = report.remote {
        let host = report.final_url.host_str().unwrap_or("?");
        out.push_str(&format!(
            "* Connected to {host} ({}) port {}\n",
            remote.ip(),
            remote.port()
        ));
    }
    if let Some(tls) = report.final_tls.as_ref().or(report.tls.as_ref()) {
        out.push_str(&format!(
            "* TLS connection using {} / {}\n",
            tls.version, tls.cipher
        ));
        if let Some(alpn) = &tls.alpn {
            out.push_str(&format!("* ALPN: server accepted {alpn}\n"));
        }
    }
    if report.redirects > 0 {
        out.push_str(&format!(
            "* {} redirect(s) followed; the last request and response:\n",
            report.redirects
        ));
    }
    if let Some(request) = &report.request {
        out.push_str(&request_head(request));
    }
    out.push_str(&response_head(report, "< "));
    if let Some(f) = &report.failure {
        out.push_str(&format!(
            "* {} in {}: {}\n",
            f.class.name(),
            f.phase.name(),
            f.detail
        ));
    }
    out
}

/// The write-out values of one probe. `exitcode` is what sonde exits
/// with for it.
pub fn values(report: &ProbeReport, url: &url::Url, method: &str, exitcode: u8) -> Values {
    let t = &report.timings;
    let failed_in = report.failure.as_ref().map(|f| f.phase);
    let done = |phase: Phase, measured: Option<std::time::Duration>| {
        measured.is_some() && failed_in != Some(phase)
    };
    let body = (t.ttfb.is_some() && report.status_code.is_some())
        .then(|| t.total.saturating_sub(t.to_first_byte()));
    let phases = Phases {
        dns: t.dns,
        connect: t.connect,
        proxy: t.proxy,
        tls: t.tls,
        ttfb: t.ttfb,
        body,
        total: t.total,
    };
    let completed = Completed {
        // No lookup (an IP literal, --resolve) is a lookup done.
        dns: failed_in != Some(Phase::Dns),
        connect: done(Phase::Connect, t.connect),
        proxy: done(Phase::Proxy, t.proxy),
        tls: done(Phase::Tls, t.tls),
        ttfb: t.ttfb.is_some() && (report.status_code.is_some() || failed_in != Some(Phase::Ttfb)),
    };
    let first_hop_only = report.redirects == 0;
    let headers = report
        .headers
        .iter()
        .flat_map(|h| h.iter())
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).trim().to_owned(),
            )
        })
        .collect();
    Values {
        times: CurlTimes::of(&phases, completed, report.redirects),
        phases,
        http_code: report.status_code,
        http_version: report.http_version.and_then(curl_version),
        method: first_hop_only.then(|| method.to_owned()),
        url: url.to_string(),
        url_effective: report.final_url.to_string(),
        scheme: report.final_url.scheme().to_owned(),
        remote_ip: report
            .remote
            .filter(|_| first_hop_only)
            .map(|a| a.ip().to_string()),
        remote_port: report.remote.filter(|_| first_hop_only).map(|a| a.port()),
        size_download: report.body_bytes,
        num_redirects: report.redirects,
        headers,
        exitcode,
        errormsg: report
            .failure
            .as_ref()
            .map(|f| format!("{}: {}", f.class.name(), f.detail)),
        status: report.status.name(),
        error: report.failure.as_ref().map(|f| f.class.name()),
    }
}
