//! `sonde probe` and `sonde wait` with curl's flags, end to end: what the
//! loopback server saw (method, headers, body bytes, ALPN, the proxy's
//! request-target) and what sonde printed (-i, -v, -o, -w), against what
//! curl's documentation says and, where curl is installed, what curl does
//! with the same flags against the same server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::util::Sonde;
use testkit::http::{Alpn, HttpTarget, Response};
use testkit::pki::Ca;

/// One request as it arrived, bytes and all.
#[derive(Debug, Clone, Default)]
struct Seen {
    method: String,
    target: String,
    /// Names lowercased, in order.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A loopback HTTP/1.1 server that keeps every request whole (testkit's
/// targets keep headers only) and answers each with one fixed response,
/// then closes. Also stands in for a forward proxy: it answers an
/// absolute-form request itself, so the request-target shows the proxy
/// was used.
struct Capture {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Capture {
    fn start(response: &'static [u8]) -> Capture {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(request) = read_request(&stream) {
                    if let Ok(mut s) = kept.lock() {
                        s.push(request);
                    }
                }
                let mut stream = stream;
                let _ = stream.write_all(response);
                let _ = stream.flush();
            }
        });
        Capture { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn last(&self) -> Seen {
        self.requests().pop().unwrap_or_default()
    }
}

fn read_request(mut stream: &TcpStream) -> Option<Seen> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        method,
        target,
        headers,
        body,
    })
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Test: yes\r\n\
Content-Length: 5\r\nConnection: close\r\n\r\nhello";

/// curl, when installed (required under SONDE_REQUIRE_TOOLS=1): runs it
/// silently with `args` and returns its stdout and stderr.
fn curl(args: &[&str]) -> Option<(String, String)> {
    if !testkit::require_tool("curl") {
        return None;
    }
    let mut cmd = std::process::Command::new("curl");
    crate::util::process::clear_proxy_env(&mut cmd);
    let out = cmd
        .args(["-s", "-S"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running curl: {e}"));
    Some((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The request sonde sent for `flags`, and (with curl) the one curl sent.
fn sent_by_both(flags: &[&str]) -> (Seen, Option<Seen>) {
    let server = Capture::start(OK);
    let url = server.url("/form");
    let args: Vec<&str> = ["probe", url.as_str()]
        .into_iter()
        .chain(flags.iter().copied())
        .collect();
    Sonde::new(&args).run().expect_code(0);
    let sonde = server.last();
    let curl_args: Vec<&str> = [url.as_str(), "-o", "/dev/null"]
        .into_iter()
        .chain(flags.iter().copied())
        .collect();
    let by_curl = curl(&curl_args).map(|_| server.last());
    (sonde, by_curl)
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path.display().to_string()
}

#[test]
fn user_agent_replaces_sondes_own() {
    let (sonde, curl) = sent_by_both(&["-A", "probe-test/1.0"]);
    assert_eq!(sonde.header("user-agent"), Some("probe-test/1.0"));
    if let Some(curl) = curl {
        assert_eq!(sonde.header("user-agent"), curl.header("user-agent"));
    }
    Sonde::new(["probe", "http://127.0.0.1:9/", "-A", ""])
        .run()
        .expect_code(2)
        .expect_stderr_has("-A \"\"");
}

#[test]
fn user_sends_basic_authentication_split_on_the_first_colon() {
    let (sonde, curl) = sent_by_both(&["-u", "alice:pa:ss"]);
    // base64("alice:pa:ss")
    assert_eq!(
        sonde.header("authorization"),
        Some("Basic YWxpY2U6cGE6c3M=")
    );
    if let Some(curl) = curl {
        assert_eq!(sonde.header("authorization"), curl.header("authorization"));
    }
    let (empty, _) = sent_by_both(&["-u", "alice:"]);
    assert_eq!(empty.header("authorization"), Some("Basic YWxpY2U6"));
    // curl would prompt for the password; sonde refuses before sending.
    let server = Capture::start(OK);
    Sonde::new(["probe", &server.url("/"), "-u", "alice"])
        .run()
        .expect_code(2)
        .expect_stderr_has("-u \"alice\": no password");
    assert!(server.requests().is_empty());
}

#[test]
fn data_pieces_are_joined_with_ampersands_and_a_files_newlines_dropped() {
    let dir = temp_dir();
    let file = write(dir.path(), "form.txt", b"b=2\r\nc=3\n");
    let at = format!("@{file}");
    let (sonde, curl) = sent_by_both(&["-d", "a=1", "-d", &at]);
    assert_eq!(sonde.method, "POST");
    assert_eq!(sonde.body, b"a=1&b=2c=3");
    assert_eq!(
        sonde.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    if let Some(curl) = curl {
        assert_eq!((&sonde.method, &sonde.body), (&curl.method, &curl.body));
        assert_eq!(sonde.header("content-type"), curl.header("content-type"));
    }
}

#[test]
fn data_binary_sends_a_file_byte_exact() {
    let dir = temp_dir();
    let bytes: &[u8] = b"line 1\r\nline 2\n\x00\xff end";
    let file = write(dir.path(), "raw.bin", bytes);
    let at = format!("@{file}");
    let (sonde, curl) = sent_by_both(&["--data-binary", &at]);
    assert_eq!(sonde.method, "POST");
    assert_eq!(sonde.body, bytes);
    if let Some(curl) = curl {
        assert_eq!(sonde.body, curl.body);
        assert_eq!(sonde.header("content-type"), curl.header("content-type"));
    }
}

#[test]
fn json_posts_its_data_with_the_json_headers() {
    let (sonde, curl) = sent_by_both(&["--json", "{\"a\":", "--json", "1}"]);
    assert_eq!(sonde.method, "POST");
    assert_eq!(sonde.body, b"{\"a\":1}");
    assert_eq!(sonde.header("content-type"), Some("application/json"));
    assert_eq!(sonde.header("accept"), Some("application/json"));
    if let Some(curl) = curl {
        assert_eq!(sonde.body, curl.body);
        assert_eq!(sonde.header("content-type"), curl.header("content-type"));
        assert_eq!(sonde.header("accept"), curl.header("accept"));
    }
    // -H wins over what --json sets, as in curl.
    let (typed, _) = sent_by_both(&["--json", "{}", "-H", "Content-Type: application/vnd.x+json"]);
    assert_eq!(typed.header("content-type"), Some("application/vnd.x+json"));
}

#[test]
fn the_old_json_spelling_points_at_format_json() {
    let server = Capture::start(OK);
    Sonde::new(["probe", "--json", &server.url("/")])
        .run()
        .expect_code(2)
        .expect_stderr_has("--format json");
    assert!(server.requests().is_empty());
    let run = Sonde::new(["probe", "--format", "json", &server.url("/")])
        .run()
        .expect_code(0);
    assert_eq!(run.json()["sc"], 200);
}

#[test]
fn head_sends_head_and_shows_the_response_head() {
    let server = Capture::start(OK);
    Sonde::new(["probe", "-I", &server.url("/")])
        .run()
        .expect_code(0)
        .expect_stderr_has("HTTP/1.1 200 OK")
        .expect_stderr_has("x-test: yes");
    assert_eq!(server.last().method, "HEAD");
    Sonde::new(["probe", "-I", "-d", "x", &server.url("/")])
        .run()
        .expect_code(2);
}

#[test]
fn include_shows_the_response_head_on_stderr_and_keeps_stdout_for_the_waterfall() {
    let server = Capture::start(OK);
    let run = Sonde::new(["probe", "-i", &server.url("/")])
        .run()
        .expect_code(0)
        .expect_stderr_has("HTTP/1.1 200 OK\ncontent-type: text/plain\n");
    assert!(run.stdout().contains("200 up"), "{}", run.describe());
    assert!(!run.stdout().contains("x-test"), "{}", run.describe());
}

#[test]
fn verbose_shows_the_request_and_the_response_with_curls_prefixes() {
    let server = Capture::start(OK);
    let run = Sonde::new(["probe", "-v", "-A", "vv/1", &server.url("/p?q=1")])
        .run()
        .expect_code(0)
        .expect_stderr_has("> GET /p?q=1 HTTP/1.1\n")
        .expect_stderr_has("> user-agent: vv/1\n")
        .expect_stderr_has("< HTTP/1.1 200 OK\n")
        .expect_stderr_has("< x-test: yes\n")
        .expect_stderr_has(&format!(
            "* Connected to 127.0.0.1 (127.0.0.1) port {}",
            server.addr.port()
        ));
    assert!(!run.stdout().contains("> GET"), "{}", run.describe());
}

#[test]
fn output_writes_the_body_as_received_and_dash_is_stdout() {
    let dir = temp_dir();
    let target = HttpTarget::builder()
        .response(Response::ok("the served body\n"))
        .start();
    let file = dir.path().join("body.out");
    let path = file.display().to_string();
    Sonde::new(["probe", &target.url("/"), "-o", &path])
        .run()
        .expect_code(0);
    assert_eq!(
        std::fs::read(&file).ok().as_deref(),
        Some(&b"the served body\n"[..])
    );
    Sonde::new(["probe", &target.url("/"), "-o", "-"])
        .run()
        .expect_code(0)
        .expect("the body first on stdout, then the waterfall", |r| {
            r.stdout().starts_with("the served body\nhttp://") && r.stdout().contains("200 up")
        });
    // A file that cannot be created: an error naming it (exit 2).
    Sonde::new(["probe", &target.url("/"), "-o", "/nonexistent/dir/body"])
        .run()
        .expect_code(2)
        .expect_stderr_has("-o /nonexistent/dir/body");
    // No response, no file: as curl, which creates it when data arrives,
    // an existing file is left as it was.
    std::fs::write(&file, b"kept").unwrap_or_else(|e| panic!("{e}"));
    let refused = testkit::tcp::refused_addr();
    Sonde::new(["probe", &format!("http://{refused}/"), "-o", &path])
        .run()
        .expect_code(1);
    assert_eq!(std::fs::read(&file).ok().as_deref(), Some(&b"kept"[..]));
}

#[test]
fn compressed_asks_for_the_codings_and_decodes_for_output_and_body_checks() {
    let dir = temp_dir();
    let plain = b"compressed body text, compressed body text".to_vec();
    let target = HttpTarget::builder()
        .response(Response::gzip(&plain))
        .start();
    let decoded = dir.path().join("decoded");
    Sonde::new([
        "probe",
        &target.url("/"),
        "--compressed",
        "--body-contains",
        "body text",
        "-o",
        &decoded.display().to_string(),
    ])
    .run()
    .expect_code(0);
    let sent = target.last_request_headers().unwrap_or_default();
    assert_eq!(
        sent.get("accept-encoding").and_then(|v| v.to_str().ok()),
        Some("deflate, gzip, br")
    );
    assert_eq!(std::fs::read(&decoded).ok(), Some(plain.clone()));
    // Without --compressed the body is written as it arrived (gzip).
    let raw = dir.path().join("raw");
    Sonde::new(["probe", &target.url("/"), "-o", &raw.display().to_string()])
        .run()
        .expect_code(0);
    let raw = std::fs::read(&raw).unwrap_or_default();
    assert!(raw.starts_with(&[0x1f, 0x8b]), "{raw:?}");
    assert!(
        target
            .last_request_headers()
            .is_some_and(|h| !h.contains_key("accept-encoding"))
    );
    if let Some((out, _)) = curl(&[&target.url("/"), "--compressed", "-o", "-"]) {
        assert_eq!(out.as_bytes(), &plain[..], "curl decodes the same");
    }
}

/// `-w` over https: every time_* in curl's order, the values that
/// describe the exchange, and (with curl) the same from curl.
#[test]
fn write_out_times_are_cumulative_and_the_values_are_curls() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let target = HttpTarget::builder()
        .tls(&ca.leaf(&["localhost"]))
        .alpn(Alpn::H2AndHttp11)
        .first_byte_delay(Duration::from_millis(20))
        .response(Response::ok("twelve bytes").header("content-type", "text/x-test"))
        .start();
    let url = format!("https://localhost:{}/", target.port());
    let resolve = format!("localhost:{}:127.0.0.1", target.port());
    let cacert = pem.ca_cert.display().to_string();
    let format = "%{time_namelookup} %{time_connect} %{time_appconnect} %{time_pretransfer} \
                  %{time_starttransfer} %{time_total}\\n%{http_code} %{remote_ip} %{remote_port} \
                  %{size_download} %{num_redirects} %{http_version} %{content_type} %{url_effective}";
    let run = Sonde::new([
        "probe",
        &url,
        "--resolve",
        &resolve,
        "--cacert",
        &cacert,
        "-w",
        format,
    ])
    .run()
    .expect_code(0);
    let out = run.stdout();
    assert!(
        !out.contains("ttfb"),
        "-w alone replaces the waterfall: {out}"
    );
    let check = |who: &str, out: &str| -> Vec<String> {
        let mut lines = out.lines();
        let times: Vec<f64> = lines
            .next()
            .unwrap_or_default()
            .split(' ')
            .map(|t| t.parse().unwrap_or(-1.0))
            .collect();
        assert_eq!(times.len(), 6, "{who}: {out}");
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]) && times[0] >= 0.0,
            "{who}: namelookup <= connect <= appconnect <= pretransfer <= starttransfer <= total: {out}"
        );
        assert!(times[2] > 0.0, "{who}: a TLS handshake took time: {out}");
        assert!(
            times[4] >= 0.020,
            "{who}: the first byte came after the delay: {out}"
        );
        lines
            .next()
            .unwrap_or_default()
            .split(' ')
            .map(str::to_owned)
            .collect()
    };
    let values = check("sonde", &out);
    assert_eq!(
        values,
        [
            "200",
            "127.0.0.1",
            &target.port().to_string(),
            "12",
            "0",
            "2",
            "text/x-test",
            &url
        ]
    );
    if let Some((curl_out, _)) = curl(&[
        &url,
        "--resolve",
        &resolve,
        "--cacert",
        &cacert,
        "-o",
        "/dev/null",
        "-w",
        format,
    ]) {
        assert_eq!(check("curl", &curl_out), values, "curl and sonde agree");
    }
}

#[test]
fn write_out_counts_redirects_and_names_the_effective_url() {
    let target = HttpTarget::builder()
        .route("/old", Response::redirect(302, "/new"))
        .response(Response::ok("here"))
        .start();
    let format = "%{num_redirects} %{http_code} %{url_effective} [%{time_redirect}]";
    let run = Sonde::new(["probe", "-L", &target.url("/old"), "-w", format])
        .run()
        .expect_code(0);
    // time_redirect needs the last hop's start, which sonde does not keep: empty.
    assert_eq!(run.stdout(), format!("1 200 {} []", target.url("/new")));
    if let Some((out, _)) = curl(&[
        "-L",
        &target.url("/old"),
        "-o",
        "/dev/null",
        "-w",
        "%{num_redirects} %{http_code} %{url_effective}",
    ]) {
        assert_eq!(out, format!("1 200 {}", target.url("/new")));
    }
    let unfollowed = Sonde::new([
        "probe",
        &target.url("/old"),
        "-w",
        "%{num_redirects} %{http_code}",
    ])
    .run()
    .expect_code(0);
    assert_eq!(unfollowed.stdout(), "0 302");
}

#[test]
fn write_out_unknown_variables_warn_escapes_and_streams() {
    let server = Capture::start(OK);
    let run = Sonde::new([
        "probe",
        &server.url("/"),
        "-w",
        r"a%{nope}\tb%%%{stderr}to-err",
    ])
    .run()
    .expect_code(0);
    assert_eq!(run.stdout(), "a\tb%");
    assert!(
        run.stderr()
            .contains("unknown --write-out variable: 'nope'"),
        "{}",
        run.describe()
    );
    assert!(run.stderr().ends_with("to-err"), "{}", run.describe());
    if let Some((out, err)) = curl(&[
        &server.url("/"),
        "-o",
        "/dev/null",
        "-w",
        r"a%{nope}\tb%%%{stderr}to-err",
    ]) {
        assert_eq!(out, "a\tb%");
        assert!(
            err.contains("unknown --write-out variable: 'nope'"),
            "{err}"
        );
    }
}

#[test]
fn write_out_reads_its_format_from_a_file_or_stdin_and_json_parses() {
    let dir = temp_dir();
    let server = Capture::start(OK);
    let file = write(dir.path(), "format.txt", b"code %{http_code}\n\\n");
    Sonde::new(["probe", &server.url("/"), "-w", &format!("@{file}")])
        .run()
        .expect_code(0)
        .expect("the file's newline dropped, its \\n kept", |r| {
            r.stdout() == "code 200\n"
        });
    let run = Sonde::new(["probe", &server.url("/"), "-w", "@-"])
        .stdin(b"%{json}")
        .run()
        .expect_code(0);
    let v = run.json();
    assert_eq!(v["http_code"], 200, "{}", run.describe());
    assert_eq!(v["remote_ip"], "127.0.0.1");
    assert_eq!(v["sonde_status"], "up");
    assert!(v["time_total"].as_f64().is_some_and(|t| t > 0.0));
    assert_eq!(v["time_appconnect"].as_f64(), Some(0.0), "no TLS: curl's 0");
}

#[test]
fn write_out_with_format_follows_the_waterfall_or_the_json() {
    let server = Capture::start(OK);
    let run = Sonde::new([
        "probe",
        &server.url("/"),
        "--format",
        "json",
        "-w",
        "%{http_code}",
    ])
    .run()
    .expect_code(0);
    let out = run.stdout();
    let (json, written) = out.rsplit_once('\n').unwrap_or_default();
    assert_eq!(written, "200", "{}", run.describe());
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    assert_eq!(v["sc"], 200, "{}", run.describe());
    Sonde::new([
        "probe",
        &server.url("/"),
        "--format",
        "text",
        "-w",
        "%{http_code}",
    ])
    .run()
    .expect_code(0)
    .expect("the waterfall, then the write-out", |r| {
        r.stdout().contains("200 up") && r.stdout().ends_with(" ms\n200")
    });
}

#[test]
fn write_out_of_a_refused_connection() {
    let addr = testkit::tcp::refused_addr();
    let run = Sonde::new([
        "probe",
        &format!("http://{addr}/"),
        "-w",
        "%{http_code} %{exitcode} %{sonde_error} %{time_connect}%{onerror} failed",
    ])
    .run()
    .expect_code(1);
    assert_eq!(run.stdout(), "000 1 connect_refused 0.000000 failed");
}

#[test]
fn http_version_flags_choose_what_alpn_offers() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let target = HttpTarget::builder()
        .tls(&ca.leaf(&["localhost"]))
        .alpn(Alpn::H2AndHttp11)
        .start();
    let url = format!("https://localhost:{}/", target.port());
    let resolve = format!("localhost:{}:127.0.0.1", target.port());
    let cacert = pem.ca_cert.display().to_string();
    for (flag, alpn, version) in [
        ("--http1.1", &b"http/1.1"[..], "1.1"),
        ("--http2", b"h2", "2"),
    ] {
        Sonde::new([
            "probe",
            &url,
            "--resolve",
            &resolve,
            "--cacert",
            &cacert,
            flag,
            "-w",
            "%{http_version}",
        ])
        .run()
        .expect_code(0)
        .expect(&format!("{flag}: HTTP/{version}"), |r| {
            r.stdout() == version
        });
        assert_eq!(target.last_alpn().as_deref(), Some(alpn), "{flag}");
        if curl(&[
            &url,
            "--resolve",
            &resolve,
            "--cacert",
            &cacert,
            flag,
            "-o",
            "/dev/null",
        ])
        .is_some()
        {
            assert_eq!(target.last_alpn().as_deref(), Some(alpn), "curl {flag}");
        }
    }
    Sonde::new(["probe", &url, "--http1.1", "--http2"])
        .run()
        .expect_code(2);
}

#[test]
fn connect_timeout_limits_the_connection_only() {
    let hole = testkit::tcp::Blackhole::start();
    let run = Sonde::new([
        "probe",
        &format!("http://{}/", hole.addr()),
        "--connect-timeout",
        "200ms",
        "-m",
        "30",
        "--format",
        "json",
    ])
    .run()
    .expect_code(1);
    let v = run.json();
    assert_eq!(v["error"], "connect_timeout", "{}", run.describe());
    assert!(
        v["error_detail"]
            .as_str()
            .is_some_and(|d| d.contains("connect")),
        "{}",
        run.describe()
    );
    // A slow first byte is not the connection: --connect-timeout lets it be.
    let slow = HttpTarget::builder()
        .first_byte_delay(Duration::from_millis(400))
        .start();
    Sonde::new(["probe", &slow.url("/"), "--connect-timeout", "200ms"])
        .run()
        .expect_code(0);
}

#[test]
fn proxy_flag_and_environment_send_the_request_through_the_proxy() {
    let origin = Capture::start(OK);
    let proxy = Capture::start(OK);
    let url = origin.url("/via");
    let proxy_url = format!("http://{}", proxy.addr);
    // -x: absolute-form to the proxy.
    Sonde::new(["probe", &url, "-x", &proxy_url])
        .run()
        .expect_code(0);
    assert_eq!(proxy.last().target, url);
    // http_proxy from the environment, as curl reads it.
    Sonde::new(["probe", &url])
        .env("http_proxy", &proxy_url)
        .run()
        .expect_code(0);
    assert_eq!(proxy.requests().len(), 2);
    // --noproxy and no_proxy send it direct; -x "" turns the environment off.
    Sonde::new(["probe", &url, "-x", &proxy_url, "--noproxy", "127.0.0.1"])
        .run()
        .expect_code(0);
    Sonde::new(["probe", &url])
        .env("http_proxy", &proxy_url)
        .env("no_proxy", "127.0.0.0/8")
        .run()
        .expect_code(0);
    Sonde::new(["probe", &url, "-x", ""])
        .env("http_proxy", &proxy_url)
        .run()
        .expect_code(0);
    // HTTP_PROXY (uppercase) is not read for http://, as in curl.
    Sonde::new(["probe", &url])
        .env("HTTP_PROXY", &proxy_url)
        .run()
        .expect_code(0);
    assert_eq!(proxy.requests().len(), 2, "bypassed four times");
    assert_eq!(origin.requests().len(), 4);
    assert!(origin.requests().iter().all(|r| r.target == "/via"));
    if curl(&[&url, "-x", &proxy_url, "-o", "/dev/null"]).is_some() {
        assert_eq!(
            proxy.last().target,
            url,
            "curl sends the same request-target"
        );
    }
    Sonde::new(["probe", &url, "-x", "socks5://127.0.0.1:1"])
        .run()
        .expect_code(2)
        .expect_stderr_has("-x");
}

/// A CONNECT-only forward proxy on loopback: answers 200 and splices the
/// two connections; keeps each CONNECT's request-target.
struct Tunnel {
    addr: SocketAddr,
    targets: Arc<Mutex<Vec<String>>>,
}

impl Tunnel {
    fn start() -> Tunnel {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let targets = Arc::new(Mutex::new(Vec::new()));
        let kept = targets.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || {
                    let Some(request) = read_request(&client) else {
                        return;
                    };
                    if let Ok(mut t) = kept.lock() {
                        t.push(request.target.clone());
                    }
                    let Ok(upstream) = TcpStream::connect(&request.target) else {
                        return;
                    };
                    let mut client_w = client;
                    if client_w
                        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                    let (Ok(mut client_r), Ok(mut upstream_w)) =
                        (client_w.try_clone(), upstream.try_clone())
                    else {
                        return;
                    };
                    let mut upstream_r = upstream;
                    let up = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut client_r, &mut upstream_w);
                        let _ = upstream_w.shutdown(std::net::Shutdown::Write);
                    });
                    let _ = std::io::copy(&mut upstream_r, &mut client_w);
                    let _ = client_w.shutdown(std::net::Shutdown::Write);
                    let _ = up.join();
                });
            }
        });
        Tunnel { addr, targets }
    }
}

#[test]
fn https_through_a_proxy_shows_the_connect_exchange_as_its_own_phase() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let target = HttpTarget::builder().tls(&ca.leaf(&["127.0.0.1"])).start();
    let tunnel = Tunnel::start();
    let url = target.url("/");
    let proxy = format!("http://{}", tunnel.addr);
    let cacert = pem.ca_cert.display().to_string();
    let run = Sonde::new([
        "probe",
        &url,
        "-x",
        &proxy,
        "--cacert",
        &cacert,
        "--format",
        "text",
        "-w",
        "%{time_connect} %{sonde_proxy} %{time_appconnect}\n",
    ])
    .run()
    .expect_code(0);
    assert_eq!(
        tunnel.targets.lock().map(|t| t.clone()).unwrap_or_default(),
        vec![target.addr().to_string()]
    );
    let out = run.stdout();
    let proxy_row = out.lines().find(|l| l.trim_start().starts_with("proxy"));
    assert!(
        proxy_row.is_some_and(|l| l.contains(" ms |")),
        "{}",
        run.describe()
    );
    let last = out.lines().last().unwrap_or_default();
    let t: Vec<f64> = last.split(' ').map(|v| v.parse().unwrap_or(-1.0)).collect();
    // The CONNECT exchange lies between the TCP connect (to the proxy) and
    // the end of TLS with the target, as curl counts it.
    assert!(
        t.len() == 3 && t[1] > 0.0 && t[0] + t[1] <= t[2] + 1e-6,
        "{}",
        run.describe()
    );
}

#[test]
fn wait_shares_the_request_flags_and_writes_out_once() {
    let server = Capture::start(OK);
    let dir = temp_dir();
    let body = dir.path().join("body");
    let run = Sonde::new([
        "wait",
        &server.url("/ready"),
        "--json",
        "{\"deploy\":1}",
        "-u",
        "ci:token",
        "-i",
        "-o",
        &body.display().to_string(),
        "-w",
        "%{http_code} %{exitcode}\\n",
        "--timeout",
        "30s",
    ])
    .run()
    .expect_code(0)
    .expect_stderr_has("HTTP/1.1 200 OK");
    assert_eq!(run.stdout(), "200 0\n");
    let seen = server.last();
    assert_eq!(
        (seen.method.as_str(), &seen.body[..]),
        ("POST", &b"{\"deploy\":1}"[..])
    );
    assert_eq!(seen.header("authorization"), Some("Basic Y2k6dG9rZW4="));
    assert_eq!(std::fs::read(&body).ok().as_deref(), Some(&b"hello"[..]));
}

#[test]
fn wait_refuses_a_condition_given_to_json_and_takes_it_as_ready_when() {
    let server = Capture::start(OK);
    Sonde::new(["wait", &server.url("/"), "--json", ".status == \"ok\""])
        .run()
        .expect_code(2)
        .expect_stderr_has("--ready-when");
    assert!(server.requests().is_empty());
}
