//! `sonde run` end to end, as a child process: SIGTERM loses nothing,
//! SIGKILL then restart keeps every record and truncates a torn tail,
//! SIGHUP with a broken configuration keeps the agent on the old one, bad
//! configurations are refused with their errors, and the metrics endpoint
//! answers. The embedded quickstart serves its live page (an in-process
//! gateway the agent streams into) and prints its URL.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::Sonde;
use crate::util::http;
use crate::util::process::{Process, wait_until};
use testkit::http::HttpTarget;
use wire::{ReadItem, Record, Status};

fn start_agent(config: &Path) -> Process {
    let config = config.display().to_string();
    Process::start(&["run", "--config", &config], &[])
}

/// Every record in the segments under `dir`, in file order, with its frame
/// sequence; panics on any damage when `strict`.
fn read_records(dir: &Path, strict: bool) -> Vec<(u64, String, Record)> {
    let mut out = Vec::new();
    for (file, item) in crate::util::wire_files::items(dir) {
        match item {
            ReadItem::Frame { frame, .. } => {
                for (check, record) in frame.records() {
                    out.push((frame.header.seq, check.to_owned(), *record));
                }
            }
            ReadItem::Skipped { offset, error, .. } => {
                assert!(!strict, "damage in {} at {offset}: {error}", file.display());
            }
        }
    }
    out
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("sonde.toml");
    std::fs::write(&path, body).unwrap_or_else(|e| panic!("writing config: {e}"));
    path
}

fn config(state: &Path, checks: &[(&str, String)], extra: &str) -> String {
    let mut s = format!(
        "[agent]\nid = \"e2e\"\nstate_dir = \"{}\"\n{extra}\n\
         [defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\n\
         [sinks.file]\nenabled = true\nfsync = \"always\"\n\
         [sinks.stdout]\nenabled = true\nformat = \"json\"\n",
        state.display()
    );
    for (name, url) in checks {
        s.push_str(&format!("[[check]]\nname = \"{name}\"\nurl = \"{url}\"\n"));
    }
    s
}

#[test]
fn sigterm_finishes_in_flight_probes_and_loses_nothing() {
    let target = HttpTarget::builder()
        .first_byte_delay(Duration::from_millis(300))
        .start();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let checks: Vec<_> = (0..4)
        .map(|i| (["a", "b", "c", "d"][i], target.url(&format!("/{i}"))))
        .collect();
    let path = write_config(tmp.path(), &config(tmp.path(), &checks, ""));
    let mut agent = start_agent(&path);
    wait_until(Duration::from_secs(20), "six probes", || {
        target.requests() >= 6
    });
    // Stop just after a request arrived: that probe is in flight for 300 ms.
    let seen = target.requests();
    wait_until(Duration::from_secs(5), "a new request", || {
        target.requests() > seen
    });
    agent.signal("TERM");
    let code = agent.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "exit status{}", agent.describe());
    let records = read_records(&tmp.path().join("records"), true);
    assert_eq!(
        records.len() as u64,
        target.requests(),
        "every probe that reached the target is in the file{}",
        agent.describe()
    );
    assert!(
        records.iter().all(|(_, _, r)| r.st == Status::Up),
        "{records:?}"
    );
    let json_lines = agent
        .stdout()
        .lines()
        .filter(|l| l.starts_with('{'))
        .count();
    assert_eq!(
        json_lines,
        records.len(),
        "stdout sink saw every result too"
    );
    assert!(
        agent.stderr().contains("every sink flushed and synced"),
        "{}",
        agent.describe()
    );
}

#[test]
fn sigkill_then_restart_keeps_records_and_truncates_the_torn_tail() {
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let checks = vec![("a", target.url("/a")), ("b", target.url("/b"))];
    let path = write_config(tmp.path(), &config(tmp.path(), &checks, ""));
    let records_dir = tmp.path().join("records");

    let mut first = start_agent(&path);
    wait_until(Duration::from_secs(20), "four probes", || {
        read_records(&records_dir, false).len() >= 4
    });
    first.signal("KILL");
    first.wait(Duration::from_secs(5));
    let before = read_records(&records_dir, true);
    assert!(before.len() >= 4);

    // Tear the tail as a crash mid-write would: half a frame.
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&records_dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    segments.sort();
    let newest = segments.last().cloned().unwrap_or_default();
    let len_before = std::fs::metadata(&newest).map(|m| m.len()).unwrap_or(0);
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&newest)
            .unwrap_or_else(|e| panic!("{e}"));
        f.write_all(&[0xc1, 0x53, 0x01, 0x00, 0x00, 0x40, 0x00, 0xde, 0xad])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(
        read_records(&records_dir, false).len() == before.len(),
        "the torn bytes hold no record"
    );

    let mut second = start_agent(&path);
    wait_until(Duration::from_secs(20), "two more probes", || {
        read_records(&records_dir, false).len() >= before.len() + 2
    });
    second.signal("TERM");
    assert_eq!(
        second.wait(Duration::from_secs(10)),
        0,
        "{}",
        second.describe()
    );
    let after = read_records(&records_dir, true);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "records before the kill are intact"
    );
    assert!(after.len() >= before.len() + 2);
    let seqs: Vec<u64> = after.iter().map(|(seq, _, _)| *seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] <= w[1]),
        "sequence continues: {seqs:?}"
    );
    let len_now = std::fs::metadata(&newest).map(|m| m.len()).unwrap_or(0);
    assert!(len_now >= len_before, "nothing good was cut");
    let log = second.stderr();
    assert!(
        log.contains("truncat"),
        "the truncation is reported{}",
        second.describe()
    );
}

#[test]
fn sighup_with_a_broken_config_keeps_the_running_one() {
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = config(tmp.path(), &[("a", target.url("/a"))], "");
    let path = write_config(tmp.path(), &good);
    let mut agent = start_agent(&path);
    wait_until(Duration::from_secs(20), "a probe", || {
        target.requests() >= 1
    });

    std::fs::write(&path, "[agent\nthis is not toml").unwrap_or_else(|e| panic!("{e}"));
    agent.signal("HUP");
    wait_until(Duration::from_secs(10), "the refusal logged", || {
        agent.stderr().contains("reload refused")
    });
    let seen = target.requests();
    wait_until(Duration::from_secs(10), "probing to go on", || {
        target.requests() >= seen + 2
    });
    assert!(agent.is_running(), "{}", agent.describe());

    // A valid new configuration is applied: a second check appears.
    let two = config(
        tmp.path(),
        &[("a", target.url("/a")), ("b", target.url("/b"))],
        "",
    );
    std::fs::write(&path, two).unwrap_or_else(|e| panic!("{e}"));
    agent.signal("HUP");
    wait_until(Duration::from_secs(10), "check b's first result", || {
        read_records(&tmp.path().join("records"), false)
            .iter()
            .any(|(_, check, _)| check == "b")
    });
    agent.signal("TERM");
    assert_eq!(
        agent.wait(Duration::from_secs(10)),
        0,
        "{}",
        agent.describe()
    );
    assert!(
        agent.stderr().contains("configuration reloaded"),
        "{}",
        agent.describe()
    );
}

#[test]
fn bad_configurations_are_refused_with_their_errors() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let state = tmp.path().display().to_string();
    let head =
        format!("[agent]\nid = \"x\"\nstate_dir = \"{state}\"\n[sinks.stdout]\nenabled = true\n");
    // Files that read but that the agent could not use.
    let file = |name: &str, contents: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("{e}"));
        path.display().to_string()
    };
    let token = file("token", "secret\r\nX-Evil: 1\n");
    let fake_ca = file(
        "fake-ca.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    );
    let ca = testkit::pki::Ca::new();
    let client_cert = file("client.pem", ca.client_cert("client").cert_pem());
    let other_key = file("other.key", ca.client_cert("other").key_pem());
    let start_up_rules = [
        (
            format!(
                "[[sinks.gateway]]\nurl = \"http://gateway.example:7700/\"\ntoken = {{ file = \"{token}\" }}\n"
            ),
            "7:7",
            "cleartext http is allowed only to a loopback address",
        ),
        (
            format!(
                "[[sinks.gateway]]\nurl = \"https://127.0.0.1:7700/\"\ntoken = {{ file = \"{token}\" }}\n"
            ),
            "8:9",
            "token: header value contains a control character",
        ),
        (
            format!(
                "[[check]]\nname = \"a\"\nurl = \"https://127.0.0.1/\"\ntls = {{ ca_file = \"{fake_ca}\" }}\n"
            ),
            "9:19",
            "cannot be a trust anchor",
        ),
        (
            format!(
                "[[check]]\nname = \"a\"\nurl = \"https://127.0.0.1/\"\ntls = {{ cert_file = \"{client_cert}\", key_file = \"{other_key}\" }}\n"
            ),
            "9:",
            "is not the key of the certificate",
        ),
    ];
    let cases = [
        (
            "[[check]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\ncolour = \"red\"\n",
            "9:1",
            "colour",
        ),
        (
            "[[check]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\ninterval = \"500ms\"\n",
            "9:12",
            "interval",
        ),
        (
            "[[check]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\ninterval = \"5s\"\ntimeout = \"5s\"\n",
            ":",
            "timeout",
        ),
        (
            "[[check]]\nname = \"a\"\nurl = \"gopher://127.0.0.1/\"\n",
            "8:7",
            "url",
        ),
        (
            "[[check]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\n[[check]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\n",
            ":",
            "name",
        ),
        (
            "[[check]]\nname = \"a\"\nurl = \"https://127.0.0.1/\"\ntls = { ca_file = \"/nonexistent/ca.pem\" }\n",
            ":",
            "/nonexistent/ca.pem",
        ),
    ];
    let cases = cases
        .iter()
        .map(|(body, position, needle)| (body.to_string(), *position, *needle))
        .chain(start_up_rules);
    for (i, (body, position, needle)) in cases.enumerate() {
        let path = tmp.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, format!("{head}{body}")).unwrap_or_else(|e| panic!("{e}"));
        let shown = path.display().to_string();
        Sonde::new(["run", "--config", &shown])
            .run()
            .expect_code(2)
            .expect("the file, position and key named", |r| {
                let err = r.stderr();
                err.contains(&format!("{shown}:")) && err.contains(position) && err.contains(needle)
            });
        Sonde::new(["check-config", &shown]).run().expect_code(1);
    }
}

#[test]
fn a_port_in_use_is_a_start_up_error() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = taken.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let checks = [("api", "http://127.0.0.1:1/".to_owned())];
    let body = config(
        tmp.path(),
        &checks,
        &format!("metrics_listen = \"{addr}\"\n"),
    );
    let path = write_config(tmp.path(), &body);
    let shown = path.display().to_string();
    Sonde::new(["check-config", &shown]).run().expect_code(0);
    Sonde::new(["run", "--config", &shown])
        .run()
        .expect_code(2)
        .expect("the address named", |r| {
            r.stderr()
                .contains(&format!("binding the metrics endpoint to {addr}"))
        });
    drop(taken);
}

#[test]
fn metrics_health_and_readiness_are_served() {
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let extra = format!("metrics_listen = \"{addr}\"");
    let path = write_config(
        tmp.path(),
        &config(tmp.path(), &[("api", target.url("/"))], &extra),
    );
    let mut agent = start_agent(&path);
    wait_until(Duration::from_secs(20), "a probe", || {
        target.requests() >= 2
    });
    let status = http::get(addr, "/healthz").status;
    assert_eq!(status, 200, "{}", agent.describe());
    let status = http::get(addr, "/readyz").status;
    assert_eq!(status, 200, "{}", agent.describe());
    let http::Answer { status, body, .. } = http::get(addr, "/metrics");
    assert_eq!(status, 200);
    for needle in [
        "probe_success{instance=\"",
        "probe_http_status_code{instance=\"",
        ",check=\"api\"",
        "sonde_probes_total{",
        "sonde_schedule_lateness_seconds_bucket",
        "sonde_sink_records_written_total{sink=\"file\"}",
    ] {
        assert!(body.contains(needle), "missing {needle} in:\n{body}");
    }
    agent.signal("TERM");
    assert_eq!(
        agent.wait(Duration::from_secs(10)),
        0,
        "{}",
        agent.describe()
    );
}

/// The `p`-th percentile (0..=100) of `values`, nearest rank.
fn percentile(values: &mut [u64], p: usize) -> u64 {
    values.sort_unstable();
    let rank = (values.len() * p).div_ceil(100).max(1);
    values[rank - 1]
}

#[test]
fn hostile_targets_end_by_their_deadline_and_leave_other_checks_alone() {
    use testkit::http::Misbehaviour;
    let hostile = [
        ("flood_1xx", Misbehaviour::InformationalFlood),
        (
            "trickle",
            Misbehaviour::Trickle {
                interval: Duration::from_millis(20),
                chunk: 1,
            },
        ),
        ("endless_headers", Misbehaviour::EndlessHeaders),
        ("endless_body", Misbehaviour::EndlessBody),
    ];
    let targets: Vec<_> = hostile
        .iter()
        .map(|(name, m)| (*name, HttpTarget::builder().misbehave(*m).start()))
        .collect();
    let normal = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut text = format!(
        "[agent]\nid = \"e2e\"\nstate_dir = \"{}\"\n\
         [defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\nmax_body_bytes = \"1GiB\"\n\
         [sinks.file]\nenabled = true\n",
        tmp.path().display()
    );
    for (name, target) in &targets {
        text.push_str(&format!(
            "[[check]]\nname = \"{name}\"\nurl = \"{}\"\n",
            target.url("/")
        ));
    }
    // Several normal checks, for enough samples in a few seconds.
    for i in 0..6 {
        text.push_str(&format!(
            "[[check]]\nname = \"normal{i}\"\nurl = \"{}\"\n",
            normal.url(&format!("/{i}"))
        ));
    }
    let path = write_config(tmp.path(), &text);
    let mut agent = start_agent(&path);
    wait_until(Duration::from_secs(30), "48 normal probes", || {
        normal.requests() >= 48
    });
    agent.stop();

    let records = read_records(&tmp.path().join("records"), true);
    let deadline_ms = 500;
    let (mut connect, mut first_byte) = (Vec::new(), Vec::new());
    for (_, check, r) in &records {
        if check.starts_with("normal") {
            assert_eq!(r.st, Status::Up, "{check}: {r:?}");
            connect.extend(r.cn_ms);
            first_byte.extend(r.ft_ms);
        } else {
            assert_eq!(r.st, Status::Down, "{check}: {r:?}");
            // The fault ran 300 to 800 ms past a 500 ms deadline.
            assert!(
                r.rt_ms <= deadline_ms + 300,
                "{check} ended {} ms after its start, deadline {deadline_ms} ms: {r:?}",
                r.rt_ms
            );
        }
    }
    for (name, _) in &hostile {
        assert!(
            records.iter().any(|(_, c, _)| c == name),
            "no record of {name}{}",
            agent.describe()
        );
    }
    assert!(connect.len() >= 40, "{} normal probes", connect.len());
    let (cn95, ft95) = (
        percentile(&mut connect, 95),
        percentile(&mut first_byte, 95),
    );
    eprintln!(
        "beside 4 hostile checks: normal connect p95 {cn95} ms, first byte p95 {ft95} ms, \
         max {} / {} ms, over {} probes",
        connect.last().copied().unwrap_or(0),
        first_byte.last().copied().unwrap_or(0),
        connect.len()
    );
    // Loopback connects take well under 1 ms; the fault was p95 312 ms.
    // The bound leaves room for a loaded 2-core CI machine.
    assert!(cn95 < 50, "connect p95 {cn95} ms");
    assert!(ft95 < 50, "first byte p95 {ft95} ms");
}

/// A check's `ca_file` replaces the system roots unless `system_roots =
/// true`; `check-config` notes each check it now pins. The "system store"
/// is `SSL_CERT_FILE` (rustls-native-certs reads it instead of the
/// machine's), since a test cannot add to the real one.
#[test]
fn a_ca_file_replaces_the_system_roots_unless_system_roots_is_set() {
    let system_ca = testkit::pki::Ca::new();
    let private_ca = testkit::pki::Ca::new();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = system_ca.pem_files();
    let private = private_ca.pem_files();
    let public_target = HttpTarget::builder()
        .tls(&system_ca.leaf(&["127.0.0.1"]))
        .start();
    let private_target = HttpTarget::builder()
        .tls(&private_ca.leaf(&["127.0.0.1"]))
        .start();
    let public = format!("https://127.0.0.1:{}/", public_target.port());
    let own = format!("https://127.0.0.1:{}/", private_target.port());
    let ca = private.ca_cert.display().to_string();
    let mut body = config(tmp.path(), &[], "");
    for (name, url, tls) in [
        ("system", &public, String::new()),
        (
            "pinned",
            &public,
            format!("tls = {{ ca_file = \"{ca}\" }}\n"),
        ),
        (
            "both",
            &public,
            format!("tls = {{ ca_file = \"{ca}\", system_roots = true }}\n"),
        ),
        ("private", &own, format!("tls = {{ ca_file = \"{ca}\" }}\n")),
    ] {
        body.push_str(&format!(
            "[[check]]\nname = \"{name}\"\nurl = \"{url}\"\n{tls}"
        ));
    }
    let path = write_config(tmp.path(), &body);
    let shown = path.display().to_string();
    Sonde::new(["check-config", &shown])
        .run()
        .expect_code(0)
        .expect(
            "a note for each check the CA now pins, and only those",
            |r| {
                let notes: Vec<String> = r
                    .stderr()
                    .lines()
                    .filter(|l| l.starts_with("note: "))
                    .map(str::to_owned)
                    .collect();
                notes.len() == 2
                    && notes[0].starts_with("note: check \"pinned\": tls.ca_file")
                    && notes[0].contains("set tls.system_roots = true to trust both")
                    && notes[1].starts_with("note: check \"private\":")
            },
        );
    let store_file = store.ca_cert.display().to_string();
    let mut agent = Process::start(
        &["run", "--config", &shown],
        &[
            ("SSL_CERT_FILE", &store_file),
            ("SSL_CERT_DIR", "/nonexistent"),
        ],
    );
    let seen = |agent: &Process| -> std::collections::BTreeMap<String, String> {
        agent
            .stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| {
                let st = v["st"].as_str()?.to_owned();
                let class = v["error"]
                    .as_str()
                    .map(|e| format!(" {e}"))
                    .unwrap_or_default();
                Some((v["check"].as_str()?.to_owned(), format!("{st}{class}")))
            })
            .collect()
    };
    wait_until(Duration::from_secs(20), "a result of every check", || {
        seen(&agent).len() == 4
    });
    agent.stop();
    let results = seen(&agent);
    let expected: std::collections::BTreeMap<String, String> = [
        ("both", "up"),
        ("pinned", "down tls_untrusted"),
        ("private", "up"),
        ("system", "up"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(results, expected, "{}", agent.describe());
}

/// What `sonde run` prints before the live page's URL.
#[cfg(feature = "gateway")]
const PAGE_LINE: &str = "sonde: watch the quickstart live at ";

#[cfg(feature = "gateway")]
#[test]
fn the_quickstart_serves_its_live_page_and_streams_into_it() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Port 0 for both listeners: the quickstart's fixed ports may be taken
    // (its "self" check then fails, which still makes records).
    let mut agent = Process::start_in(
        tmp.path(),
        &[
            "run",
            "--metrics-listen",
            "127.0.0.1:0",
            "--ui-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let url = || {
        let stderr = agent.stderr();
        let line = stderr.lines().find_map(|l| l.strip_prefix(PAGE_LINE))?;
        Some(line.trim().to_owned())
    };
    wait_until(Duration::from_secs(20), "the page's URL", || {
        url().is_some()
    });
    let url = url().unwrap_or_default();
    let (addr, token) = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once("/#token="))
        .unwrap_or_else(|| panic!("not a page URL: {url:?}{}", agent.describe()));
    let addr: std::net::SocketAddr = addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"));
    assert!(addr.ip().is_loopback(), "{url}");
    assert!(token.len() >= 32, "{url}");

    let page = http::get(addr, "/");
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text
            .to_ascii_lowercase()
            .contains("content-type: text/html"),
        "{}",
        page.text
    );
    let config = http::get(addr, "/ui/config.json");
    assert_eq!(config.status, 200, "{}", config.text);
    let config: serde_json::Value =
        serde_json::from_str(&config.body).unwrap_or_else(|e| panic!("{e}: {}", config.body));
    assert_eq!(config["gateway"], "quickstart", "{config}");
    // The reader API wants the printed token.
    assert_eq!(http::get(addr, "/v1/history").status, 401);
    let auth = format!("Bearer {token}");
    let self_records = || {
        let answer = http::exchange(
            addr,
            "GET",
            "/v1/history?check=self",
            &[("authorization", &auth)],
            b"",
        );
        assert_eq!(answer.status, 200, "{}", answer.text);
        let page: serde_json::Value =
            serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.body));
        page["records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["agent"] == "quickstart" && r["check"] == "self")
            .count()
    };
    wait_until(
        Duration::from_secs(20),
        "the self check's records in the page's gateway",
        || self_records() >= 2,
    );
    // A reload rereads the quickstart with the same sink and token.
    agent.signal("HUP");
    wait_until(Duration::from_secs(20), "the reload", || {
        agent.stderr().contains("configuration reloaded")
    });
    assert!(
        !agent.stderr().contains("take effect at the next restart"),
        "{}",
        agent.describe()
    );
    agent.stop();
    // The token is printed once, in the URL, and logged nowhere else.
    let (stdout, stderr) = (agent.stdout(), agent.stderr());
    assert_eq!(stderr.matches(token).count(), 1, "{}", agent.describe());
    assert!(!stdout.contains(token), "{}", agent.describe());
    assert!(stdout.contains("self "), "{}", agent.describe());
    assert!(
        stderr.contains("gateway stopped"),
        "the gateway stops after the agent{}",
        agent.describe()
    );
    for dir in ["sonde-data/records", "sonde-data/gateway"] {
        assert!(tmp.path().join(dir).is_dir(), "{dir} under the working dir");
    }
}

#[cfg(feature = "gateway")]
#[test]
fn the_quickstart_page_on_a_taken_or_wide_address_is_a_start_up_error() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = taken.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let run = |ui: &str| {
        Sonde::new(["run", "--metrics-listen", "127.0.0.1:0", "--ui-listen", ui])
            .current_dir(tmp.path())
            .run()
            .expect_code(2)
            .expect("no panic, no URL", |r| {
                !r.stderr().contains("panicked") && !r.stderr().contains(PAGE_LINE)
            })
    };
    run(&addr.to_string()).expect_stderr_has(&format!("binding the live page to {addr}: "));
    run("0.0.0.0:0").expect_stderr_has("only on a loopback address");
    drop(taken);
    // The page is the quickstart's: a configuration file runs no gateway.
    let path = write_config(
        tmp.path(),
        &config(tmp.path(), &[("api", "http://127.0.0.1:1/".to_owned())], ""),
    );
    let shown = path.display().to_string();
    Sonde::new(["run", "--config", &shown, "--ui-listen", "127.0.0.1:0"])
        .run()
        .expect_code(2)
        .expect_stderr_has("cannot be used with");
}

#[cfg(not(feature = "gateway"))]
#[test]
fn the_quickstart_without_the_gateway_runs_without_its_page() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut agent = Process::start_in(tmp.path(), &["run", "--metrics-listen", "127.0.0.1:0"], &[]);
    wait_until(
        Duration::from_secs(20),
        "a result of the self check",
        || agent.stdout().contains("self "),
    );
    agent.stop();
    let stderr = agent.stderr();
    assert!(
        stderr.contains("needs the `gateway` cargo feature") && !stderr.contains("live at"),
        "{}",
        agent.describe()
    );
    assert!(!tmp.path().join("sonde-data/gateway").exists());
}

/// The `sonde ...` command lines of examples/quickstart.toml's header
/// (its indented lines), as written there, trailing comments cut.
fn quickstart_header_commands() -> Vec<Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/quickstart.toml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map_while(|l| l.strip_prefix('#'))
        // The commands are the indented lines, as a code block.
        .filter_map(|l| l.strip_prefix("    ")?.trim().strip_prefix("sonde "))
        .map(|l| {
            let command = l.split(" #").next().unwrap_or(l);
            command.split_whitespace().map(str::to_owned).collect()
        })
        .collect()
}

/// Each command of the quickstart's header works as written, run from a
/// directory holding examples/quickstart.toml (the listeners moved to
/// free ports, as the quickstart's fixed ones may be taken here).
#[test]
fn the_quickstart_header_commands_work_as_written() {
    let commands = quickstart_header_commands();
    assert!(
        commands.len() >= 3,
        "the header shows check-config, run -c and run: {commands:?}"
    );
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(tmp.path().join("examples")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        tmp.path().join("examples/quickstart.toml"),
        include_str!("../../examples/quickstart.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for command in commands {
        let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
        if args.first() != Some(&"run") {
            Sonde::new(&args)
                .current_dir(tmp.path())
                .run()
                .expect_code(0);
            continue;
        }
        args.extend(["--metrics-listen", "127.0.0.1:0"]);
        #[cfg(feature = "gateway")]
        if !args.contains(&"-c") && !args.contains(&"--config") {
            args.extend(["--ui-listen", "127.0.0.1:0"]);
        }
        let mut agent = Process::start_in(tmp.path(), &args, &[]);
        wait_until(
            Duration::from_secs(20),
            "a result of the self check",
            || agent.stdout().contains("self ") || !agent.is_running(),
        );
        assert!(agent.is_running(), "sonde {args:?}{}", agent.describe());
        agent.stop();
    }
}

/// `sonde run` with stderr on a file and `JOURNAL_STREAM` set to `stream`
/// (`None`: that file's own device and inode), `--log-format` `format`,
/// until it probed; its stderr.
fn agent_stderr_under_journal_stream(stream: Option<&str>, format: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let target = HttpTarget::builder().start();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let body = config(tmp.path(), &[("api", target.url("/"))], "");
    let path = write_config(tmp.path(), &body);
    let log = tmp.path().join("stderr.log");
    let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}"));
    let meta = file.metadata().unwrap_or_else(|e| panic!("{e}"));
    let own = format!("{}:{}", meta.dev(), meta.ino());
    let stream = stream.unwrap_or(&own);
    let shown = format!(
        "JOURNAL_STREAM={stream} sonde run -c {} --log-format {format} 2>{}",
        path.display(),
        log.display()
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sonde"))
        .args(["run", "-c"])
        .arg(&path)
        .args(["--log-format", format])
        .env("JOURNAL_STREAM", stream)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("{shown}: {e}"));
    wait_until(Duration::from_secs(20), "two probes", || {
        target.requests() >= 2
    });
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    let status = child.wait().unwrap_or_else(|e| panic!("{shown}: {e}"));
    let stderr = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{e}"));
    assert!(killed && status.success(), "{shown}: {status}\n{stderr}");
    stderr
}

/// An RFC 3339 timestamp as tracing-subscriber writes it: `2026-12-04T`.
fn has_timestamp(line: &str) -> bool {
    let b = line.as_bytes();
    (0..b.len().saturating_sub(10)).any(|i| {
        b[i..i + 4].iter().all(u8::is_ascii_digit)
            && b[i + 4] == b'-'
            && b[i + 7] == b'-'
            && b[i + 10] == b'T'
    })
}

#[test]
fn under_journald_lines_carry_their_priority_and_no_timestamp() {
    let stderr = agent_stderr_under_journal_stream(None, "text");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>") && l.contains("stopping")),
        "{stderr}"
    );
    for line in &lines {
        assert!(
            ["<3>", "<4>", "<6>", "<7>"]
                .iter()
                .any(|p| line.starts_with(p)),
            "no priority: {line:?}\n{stderr}"
        );
        assert!(!has_timestamp(line), "a timestamp: {line:?}\n{stderr}");
    }
}

#[test]
fn a_journal_stream_that_is_not_stderr_changes_nothing() {
    let stderr = agent_stderr_under_journal_stream(Some("1:2"), "text");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.iter().any(|l| l.contains("stopping")), "{stderr}");
    for line in &lines {
        assert!(!line.starts_with('<'), "a priority: {line:?}\n{stderr}");
        assert!(has_timestamp(line), "no timestamp: {line:?}\n{stderr}");
    }
}

#[test]
fn under_journald_json_lines_keep_their_timestamp_behind_the_priority() {
    let stderr = agent_stderr_under_journal_stream(None, "json");
    let mut infos = 0;
    for line in stderr.lines() {
        let (priority, json) = line.split_at(3.min(line.len()));
        let value: serde_json::Value = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("not <N>JSON: {line:?}: {e}\n{stderr}"));
        let level = value["level"].as_str().unwrap_or_default();
        let want = match level {
            "ERROR" => "<3>",
            "WARN" => "<4>",
            "INFO" => "<6>",
            _ => "<7>",
        };
        assert_eq!(priority, want, "{line}");
        assert!(value["timestamp"].is_string(), "{line}");
        infos += usize::from(level == "INFO");
    }
    assert!(infos > 0, "{stderr}");
}
