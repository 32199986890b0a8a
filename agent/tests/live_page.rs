//! The live page (gateway/ui) in a real browser: headless Chromium over
//! WebDriver (testkit::browser) against real `sonde gateway` and `sonde
//! run` processes on loopback. Each test saves screenshots under
//! `target/screenshots/`.
//!
//! - The overview lists every check the reader may see and none outside
//!   its scope, failing first; a check's chart holds exactly what history
//!   holds for it and grows live; selection works both ways; a drag zooms
//!   and the brush pans; the CSV and JSON exports of the window equal
//!   history for it, phases included.
//! - A gateway stopped for 20 s: the indicator holds through the 8 s
//!   debounce, then names the region; after the restart the chart holds
//!   every probe exactly once, as history does.
//! - Two regions, one stopped: the other keeps streaming.
//! - Probes slowed by a delaying target are amber (≥ 2× the window's
//!   median) and red (≥ 3×), in the table's tints and on the canvas.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use testkit::browser::{self, Browser};

use crate::gateway_e2e::{
    AGENT_TOKEN, API_READER_TOKEN, READER_TOKEN, agent_config, gateway_config, start_agent,
    start_gateway,
};
use crate::util::process::{Process, free_addr, wait_until};

pub(crate) const LONG: Duration = Duration::from_secs(30);

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// An HTTP target whose answers wait `delay` ms before the first byte,
/// changeable while it runs (slow probes on demand).
pub(crate) struct DelayingTarget {
    addr: SocketAddr,
    delay_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl DelayingTarget {
    pub(crate) fn start(delay_ms: u64) -> DelayingTarget {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let delay = Arc::new(AtomicU64::new(delay_ms));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (delay.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let wait = Duration::from_millis(d.load(Ordering::Relaxed));
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    std::thread::sleep(wait);
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    );
                });
            }
        });
        DelayingTarget {
            addr,
            delay_ms: delay,
            stop,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn set_delay(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::Relaxed);
    }
}

impl Drop for DelayingTarget {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// One regional gateway (`sonde gateway`) and the agent (`sonde run`)
/// streaming into it.
pub(crate) struct Region {
    addr: SocketAddr,
    config: PathBuf,
    gateway: Option<Process>,
    agent: Process,
}

impl Region {
    /// A gateway named `name` in `dir` (with `extra` gateway.toml lines),
    /// and an agent running `checks` every second into it.
    pub(crate) fn start(dir: &Path, name: &str, extra: &str, checks: &[(&str, String)]) -> Region {
        Region::start_at(dir, free_addr(), name, extra, checks)
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the gateway wrote to stderr so far (its log).
    pub(crate) fn gateway_stderr(&self) -> String {
        self.gateway
            .as_ref()
            .map(Process::stderr)
            .unwrap_or_default()
    }

    pub(crate) fn stop_gateway(&mut self) {
        if let Some(mut gw) = self.gateway.take() {
            gw.stop();
        }
    }

    pub(crate) fn restart_gateway(&mut self) {
        self.gateway = Some(start_gateway(&self.config, self.addr));
    }

    /// Every item `/v1/history?{query}` holds ({gseq, agent, check, record}).
    pub(crate) fn history(&self, query: &str) -> Vec<Value> {
        let auth = format!("Bearer {READER_TOKEN}");
        let mut out = Vec::new();
        let mut cursor = String::new();
        for _ in 0..1000 {
            let path = format!("/v1/history?limit=1000&{query}{cursor}");
            let answer = crate::util::http::exchange(
                self.addr,
                "GET",
                &path,
                &[("authorization", &auth)],
                b"",
            );
            assert_eq!(answer.status, 200, "{path}: {}", answer.text);
            let mut page: Value = serde_json::from_str(&answer.body)
                .unwrap_or_else(|e| panic!("{e}: {}", answer.body));
            if let Some(items) = page["records"].as_array_mut() {
                out.append(items);
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => return out,
            }
        }
        panic!("history never ended its pages");
    }

    /// (t, rt) of every record of `check` with `t` in from..=to.
    pub(crate) fn probes(&self, check: &str, from: u64, to: u64) -> Vec<(u64, u64)> {
        self.history(&format!("check={check}&from={from}&to={to}"))
            .iter()
            .map(|i| (u(&i["record"]["t"]), u(&i["record"]["rt"])))
            .collect()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        self.agent.signal("TERM");
        let _ = self.agent.wait(Duration::from_secs(20));
        if let Some(gw) = &mut self.gateway {
            gw.signal("TERM");
            let _ = gw.wait(Duration::from_secs(20));
        }
    }
}

pub(crate) fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not a whole number: {v}"))
}

/// Opens the page at `url` and signs in with `token`, as a person does.
pub(crate) fn sign_in(b: &mut Browser, url: &str, token: &str) {
    b.open(url);
    b.eval("sessionStorage.clear(); location.reload(); return 1");
    b.wait_for(
        LONG,
        "the sign-in form",
        "return document.querySelector('#token') !== null",
    );
    b.keys("#token", &format!("{token}\n"));
    b.wait_for(
        LONG,
        "the overview",
        "return document.querySelector('#overview') !== null",
    );
}

/// The checks the overview's rows show, in their order.
pub(crate) fn overview_rows(b: &mut Browser) -> Vec<(String, String)> {
    let v = b.eval(
        "return [...document.querySelectorAll('#overview .row[data-key]')]
           .sort((a, b) => new DOMMatrix(getComputedStyle(a).transform).m42 - new DOMMatrix(getComputedStyle(b).transform).m42)
           .map(r => [r.dataset.check, r.dataset.st])",
    );
    v.as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p[0].as_str().unwrap_or_default().to_owned(),
                p[1].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

pub(crate) fn region_mode(b: &mut Browser, region: &str) -> String {
    b.eval_with(
        "const c = document.querySelector(`.region-chip[data-region=\"${arguments[0]}\"]`);
         return c ? c.dataset.mode : null",
        json!([region]),
    )
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// Opens `check` from the overview (a click on its row) and waits for
/// its history to be loaded.
pub(crate) fn open_check(b: &mut Browser, check: &str) {
    b.click(&format!("#overview .row[data-check=\"{check}\"]"));
    b.wait_for(
        LONG,
        "the check's history",
        "return document.querySelector('#check').dataset.loaded === 'true'",
    );
}

/// (t, rt) of every probe the open check's series holds.
pub(crate) fn chart_probes(b: &mut Browser) -> Vec<(u64, u64)> {
    let v = b.eval(
        "const s = sonde.view.series; const out = [];
         for (let i = 0; i < s.length; i++) out.push([s.t[i], s.rt[i]]);
         return out",
    );
    v.as_array()
        .into_iter()
        .flatten()
        .map(|p| (u(&p[0]), u(&p[1])))
        .collect()
}

fn within(probes: &[(u64, u64)], from: u64, to: u64) -> Vec<(u64, u64)> {
    probes
        .iter()
        .copied()
        .filter(|(t, _)| (from..=to).contains(t))
        .collect()
}

/// The chart's visible window (its x scale), in ms.
fn chart_window(b: &mut Browser) -> (f64, f64) {
    let v = b.eval("const x = sonde.view.chart.scales.x; return [x.min, x.max]");
    (
        v[0].as_f64().unwrap_or(f64::NAN),
        v[1].as_f64().unwrap_or(f64::NAN),
    )
}

/// Parses the page's CSV export back into history's item shape.
fn csv_items(text: &str) -> Vec<Value> {
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    assert_eq!(
        head,
        [
            "region", "agent", "check", "gseq", "t", "rt", "sc", "st", "dn", "cn", "tl", "ft",
            "error"
        ]
    );
    lines
        .map(|line| {
            let c: Vec<&str> = line.split(',').collect();
            assert_eq!(c.len(), head.len(), "{line}");
            let num = |s: &str| -> Value {
                if s.is_empty() {
                    Value::Null
                } else {
                    json!(s.parse::<u64>().unwrap_or_else(|e| panic!("{s}: {e}")))
                }
            };
            let text = |s: &str| -> Value { if s.is_empty() { Value::Null } else { json!(s) } };
            json!({
                "region": c[0], "agent": c[1], "check": c[2], "gseq": num(c[3]),
                "record": {
                    "t": num(c[4]), "rt": num(c[5]), "sc": num(c[6]), "st": c[7],
                    "dn": num(c[8]), "cn": num(c[9]), "tl": num(c[10]), "ft": num(c[11]),
                    "error": text(c[12]),
                }
            })
        })
        .collect()
}

#[test]
fn the_overview_and_a_check_show_what_history_holds_live() {
    if !browser::available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let target = DelayingTarget::start(12);
    let refused = free_addr();
    let checks = vec![
        ("api", target.url("/api")),
        ("web", target.url("/web")),
        ("db", target.url("/db")),
        ("payments", format!("http://{refused}/")),
    ];
    let region = Region::start(tmp.path(), "eu-west", "", &checks);
    wait_until(LONG, "history holds every check", || {
        let held: BTreeSet<String> = region
            .history("")
            .iter()
            .map(|i| i["check"].as_str().unwrap_or_default().to_owned())
            .collect();
        held.len() == 4
    });
    let mut b = Browser::start(1400, 900);

    // A reader scoped to "api" sees that check alone.
    sign_in(&mut b, &region.url(), API_READER_TOKEN);
    b.wait_for(
        LONG,
        "a row",
        "return document.querySelectorAll('#overview .row[data-key]').length",
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(overview_rows(&mut b), [("api".to_owned(), "up".to_owned())]);

    // The whole fleet: every check, the failing one first.
    sign_in(&mut b, &region.url(), READER_TOKEN);
    b.wait_for(
        LONG,
        "four rows",
        "return document.querySelectorAll('#overview .row[data-key]').length === 4",
    );
    let rows = overview_rows(&mut b);
    let names: BTreeSet<&str> = rows.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["api", "db", "payments", "web"]));
    assert_eq!(
        rows[0],
        ("payments".to_owned(), "down".to_owned()),
        "{rows:?}"
    );
    assert_eq!(region_mode(&mut b, "eu-west"), "live");
    std::thread::sleep(Duration::from_secs(3));
    b.screenshot("live-page-overview");

    // A check: history first, then points live.
    open_check(&mut b, "api");
    let opened = chart_probes(&mut b).len();
    b.wait_for(
        LONG,
        "three live probes",
        &format!("return sonde.view.series.length >= {}", opened + 3),
    );
    // Probes that arrive within one frame are painted together: wait for
    // three paints rather than count them at the third probe.
    b.wait_for(
        LONG,
        "three live paints",
        "return sonde.stats.paint.length >= 3",
    );
    let held = chart_probes(&mut b);
    let (first, cutoff) = (held[0].0, now_ms() - 3000);
    assert_eq!(
        within(&held, first, cutoff),
        region.probes("api", first, cutoff),
        "the chart holds what history holds for api, each probe once"
    );

    // Chart → table: a click on a point selects its row and shows it.
    let point = b.eval(
        "const v = sonde.view, s = v.series, i = s.length - 4;
         return [i, s.t[i], v.chart.valToPos(s.t[i], 'x'), v.chart.valToPos(s.rt[i], 'y')]",
    );
    let (i, t) = (u(&point[0]), u(&point[1]));
    let at = (
        point[2].as_f64().unwrap_or(0.0),
        point[3].as_f64().unwrap_or(0.0),
    );
    b.click_at("#chart .u-over", at);
    let selected = b.eval(
        "const v = sonde.view, row = document.querySelector('#probes .probe.selected');
         if (!row) return null;
         const r = row.getBoundingClientRect(), box = document.querySelector('#probes').getBoundingClientRect();
         return [v.selected, Number(row.dataset.t), r.top >= box.top && r.bottom <= box.bottom]",
    );
    assert_eq!(
        selected,
        json!([i, t, true]),
        "the clicked point's row is selected and in view"
    );

    // Table → chart: a click on another row selects its point.
    let other = u(&b.eval(
        "const box = document.querySelector('#probes').getBoundingClientRect();
         const shown = [...document.querySelectorAll('#probes .probe:not(.selected)')].filter((r) => {
           const b = r.getBoundingClientRect(); return b.top >= box.top && b.bottom <= box.bottom; });
         return Number(shown[2].dataset.t)",
    ));
    b.click(&format!("#probes .probe[data-t=\"{other}\"]"));
    let chosen = b.eval(
        "const v = sonde.view; return [v.series.t[v.selected], v.selected >= v.lo && v.selected < v.hi]",
    );
    assert_eq!(
        chosen,
        json!([other, true]),
        "the clicked row's point is selected"
    );

    // Drag to zoom: the window becomes what was dragged over.
    let width = b
        .eval("return sonde.view.chart.over.clientWidth")
        .as_f64()
        .unwrap_or(0.0);
    let (x0, x1) = (width * 0.2, width * 0.7);
    let expect = b.eval_with(
        "const c = sonde.view.chart; return [c.posToVal(arguments[0], 'x'), c.posToVal(arguments[1], 'x')]",
        json!([x0, x1]),
    );
    b.drag("#chart .u-over", (x0, 100.0), (x1, 100.0));
    let (min, max) = chart_window(&mut b);
    let follow = b.eval("return sonde.view.follow");
    assert_eq!(follow, json!(false), "a zoomed chart stops following");
    // The live chart moved on by a few ms between reading and dragging.
    let slack = 2_000.0;
    let (e0, e1) = (
        expect[0].as_f64().unwrap_or(0.0),
        expect[1].as_f64().unwrap_or(0.0),
    );
    assert!(
        (min - e0).abs() < slack && (max - e1).abs() < slack,
        "zoomed to {min}..{max}, dragged {e0}..{e1}"
    );
    b.screenshot("live-page-zoomed");

    // The brush: a drag on the navigator moves the window there.
    let nav = b.eval("const n = sonde.view.nav; return [n.over.clientWidth, n.posToVal(n.over.clientWidth * 0.05, 'x'), n.posToVal(n.over.clientWidth * 0.5, 'x')]");
    let nav_width = nav[0].as_f64().unwrap_or(0.0);
    b.drag(
        "#navigator .u-over",
        (nav_width * 0.05, 20.0),
        (nav_width * 0.5, 20.0),
    );
    let (bmin, bmax) = chart_window(&mut b);
    // A probe arriving between the measure and the drag widens the
    // navigator's scale: the drag covered what the positions meant at
    // some moment between this measure and the one after it.
    let after = b.eval("const n = sonde.view.nav; return [n.over.clientWidth, n.posToVal(n.over.clientWidth * 0.05, 'x'), n.posToVal(n.over.clientWidth * 0.5, 'x')]");
    let at = |v: &Value, i: usize| v[i].as_f64().unwrap_or(0.0);
    let (n0, n1) = (at(&nav, 1), at(&nav, 2));
    let (a0, a1) = (at(&after, 1), at(&after, 2));
    let nav_slack = (n1 - n0) * 0.05;
    let between = |x: f64, p: f64, q: f64| x > p.min(q) - nav_slack && x < p.max(q) + nav_slack;
    assert!(
        between(bmin, n0, a0) && between(bmax, n1, a1),
        "brushed to {bmin}..{bmax}, dragged {n0}..{n1} (after the drag the same positions were {a0}..{a1})"
    );
    assert!((bmin, bmax) != (min, max), "the brush changed the window");

    // Export of the window: what history holds for it, phases included.
    let (from, to) = (bmin.ceil() as u64, bmax.floor() as u64);
    let mut expected = region.history(&format!("check=api&from={from}&to={to}"));
    for item in &mut expected {
        item["region"] = json!("eu-west");
    }
    assert!(
        expected.len() >= 3,
        "the window holds probes: {}",
        expected.len()
    );
    let csv = b.eval("return sonde.view.export('csv', true)");
    assert_eq!(
        csv_items(csv.as_str().unwrap_or_default()),
        expected,
        "CSV export = history"
    );
    let exported = b.eval("return sonde.view.export('json', true)");
    let exported: Value = serde_json::from_str(exported.as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {exported}"));
    assert_eq!(exported, Value::Array(expected), "JSON export = history");

    // Phase mode, back at the live tip; its key shows only there.
    let keys = "return getComputedStyle(document.querySelector('.phase-keys')).display";
    assert_eq!(b.eval(keys), json!("none"));
    b.click("#live");
    b.click("#mode");
    b.wait_for(
        LONG,
        "phase mode",
        "return document.querySelector('#check').dataset.mode === 'phases'",
    );
    assert_ne!(b.eval(keys), json!("none"));
    std::thread::sleep(Duration::from_millis(500));
    b.screenshot("live-page-check-phases");

    // Dark mode follows the system's scheme, the chart's colours too.
    let bg = "return getComputedStyle(document.body).backgroundColor";
    assert_eq!(b.eval(bg), json!("rgb(251, 251, 250)"));
    b.cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    );
    assert_eq!(b.eval(bg), json!("rgb(17, 20, 23)"));
    let grid = "const c = sonde.view.chart; return c.axes[0].grid.stroke(c, 0)";
    assert_eq!(
        b.eval(grid),
        json!("#2a3036"),
        "the chart's grid follows the scheme"
    );
    std::thread::sleep(Duration::from_millis(500));
    b.screenshot("live-page-check-phases-dark");
}

#[test]
fn a_gateway_stopped_20s_shows_after_the_debounce_and_the_chart_heals() {
    if !browser::available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let target = DelayingTarget::start(0);
    let checks = vec![("api", target.url("/api")), ("web", target.url("/web"))];
    let mut region = Region::start(tmp.path(), "eu-west", "", &checks);
    wait_until(LONG, "history holds api", || {
        !region.history("check=api").is_empty()
    });
    let mut b = Browser::start(1400, 900);
    sign_in(&mut b, &region.url(), READER_TOKEN);
    b.wait_for(
        LONG,
        "two rows",
        "return document.querySelectorAll('#overview .row[data-key]').length === 2",
    );
    open_check(&mut b, "api");
    b.wait_for(
        LONG,
        "live",
        "return document.querySelector('.region-chip').dataset.mode === 'live'",
    );

    region.stop_gateway();
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        region_mode(&mut b, "eu-west"),
        "live",
        "a drop shorter than 8 s does not show"
    );
    b.wait_for(
        LONG,
        "the indicator",
        "return document.querySelector('.region-chip').dataset.mode !== 'live'",
    );
    let shown = stopped.elapsed();
    assert!(
        shown >= Duration::from_millis(7500) && shown < Duration::from_secs(15),
        "shown after {shown:?}"
    );
    let banner = b.eval(
        "const e = document.querySelector('#banner'); return e.hidden ? null : e.textContent",
    );
    assert!(
        banner.as_str().is_some_and(|t| t.contains("eu-west")),
        "the banner names the region: {banner}"
    );
    b.screenshot("live-page-region-down");
    let sleep = Duration::from_secs(20).saturating_sub(stopped.elapsed());
    std::thread::sleep(sleep);

    region.restart_gateway();
    let restarted = now_ms();
    b.wait_for(
        LONG,
        "live again",
        "return document.querySelector('.region-chip').dataset.mode === 'live'",
    );
    let banner = b.eval("return document.querySelector('#banner').hidden");
    assert_eq!(banner, json!(true), "the banner is gone");
    b.wait_for(
        LONG,
        "probes after the restart",
        &format!(
            "const s = sonde.view.series; return s.length && s.t[s.length - 1] > {}",
            restarted + 3000
        ),
    );
    let held = chart_probes(&mut b);
    let (first, cutoff) = (held[0].0, now_ms() - 3000);
    let history = region.probes("api", first, cutoff);
    let outage = within(&history, restarted - 20_000, restarted);
    assert!(
        outage.len() >= 15,
        "the agent's spool covered the outage: {}",
        outage.len()
    );
    assert_eq!(
        within(&held, first, cutoff),
        history,
        "every probe exactly once"
    );
    b.screenshot("live-page-healed");
}

#[test]
fn with_two_regions_one_stopped_the_other_keeps_streaming() {
    if !browser::available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let target = DelayingTarget::start(0);
    let (a_addr, b_addr) = (free_addr(), free_addr());
    let regions = format!(
        "[ui]\nregions = [{{ name = \"eu-west\", url = \"http://{a_addr}\" }}, \
         {{ name = \"us-east\", url = \"http://{b_addr}\" }}]\n"
    );
    // Region A serves the page; B lets A's origin read it.
    let mut east = Region::start_at(
        &tmp.path().join("b"),
        b_addr,
        "us-east",
        &format!("[cors]\nallow_origins = [\"http://{a_addr}\"]\n"),
        &[("orders", target.url("/orders"))],
    );
    let west = Region::start_at(
        &tmp.path().join("a"),
        a_addr,
        "eu-west",
        &regions,
        &[("api", target.url("/api"))],
    );
    let mut b = Browser::start(1400, 900);
    sign_in(&mut b, &west.url(), READER_TOKEN);
    b.wait_for(
        LONG,
        "both regions' rows",
        "return document.querySelectorAll('#overview .row[data-key]').length === 2",
    );
    let rows: BTreeSet<(String, String)> = overview_rows(&mut b).into_iter().collect();
    assert_eq!(
        rows,
        BTreeSet::from([("api".into(), "up".into()), ("orders".into(), "up".into())])
    );
    assert_eq!(region_mode(&mut b, "eu-west"), "live");
    assert_eq!(region_mode(&mut b, "us-east"), "live");

    east.stop_gateway();
    b.wait_for(LONG, "us-east degraded", "return document.querySelector('.region-chip[data-region=\"us-east\"]').dataset.mode !== 'live'");
    let last_t = |b: &mut Browser, region: &str| {
        u(&b.eval_with(
            "for (const r of sonde.state.overview.rows.values()) if (r.region === arguments[0]) return r.t; return 0",
            json!([region]),
        ))
    };
    let before = last_t(&mut b, "eu-west");
    std::thread::sleep(Duration::from_secs(4));
    let after = last_t(&mut b, "eu-west");
    assert!(
        after >= before + 2000,
        "eu-west kept streaming: {before} → {after}"
    );
    assert_eq!(region_mode(&mut b, "eu-west"), "live");
    let banner = b.eval("return document.querySelector('#banner').textContent");
    let banner = banner.as_str().unwrap_or_default();
    assert!(
        banner.contains("us-east") && !banner.contains("eu-west"),
        "{banner}"
    );
    b.screenshot("live-page-one-region-down");
    drop(west);
}

impl Region {
    /// [`Region::start`] on a chosen address.
    pub(crate) fn start_at(
        dir: &Path,
        addr: SocketAddr,
        name: &str,
        extra: &str,
        checks: &[(&str, String)],
    ) -> Region {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        let config = gateway_config(dir, addr, &format!("region = \"{name}\"\n{extra}"));
        let gateway = start_gateway(&config, addr);
        let agent_dir = dir.join("agent");
        std::fs::create_dir_all(&agent_dir).unwrap_or_else(|e| panic!("{e}"));
        let agent = start_agent(&agent_config(&agent_dir, addr, checks), AGENT_TOKEN);
        Region {
            addr,
            config,
            gateway: Some(gateway),
            agent,
        }
    }
}

#[test]
fn slow_probes_are_amber_and_red_against_the_window_median() {
    if !browser::available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // 50 ms normally: loopback's jitter is small beside it.
    let target = DelayingTarget::start(50);
    let region = Region::start(tmp.path(), "eu-west", "", &[("api", target.url("/api"))]);
    let mut b = Browser::start(1400, 900);
    sign_in(&mut b, &region.url(), READER_TOKEN);
    b.wait_for(
        LONG,
        "the row",
        "return document.querySelectorAll('#overview .row[data-key]').length === 1",
    );
    open_check(&mut b, "api");
    b.wait_for(LONG, "six probes", "return sonde.view.series.length >= 6");
    // One probe at 2.5× the median (amber), then one at 4× (red), then
    // normal again. The delays allow for this machine's overhead on top
    // of the target's 50 ms (the median less 50), which load can raise.
    let m = b
        .eval("return sonde.view.median")
        .as_f64()
        .unwrap_or(f64::NAN);
    assert!((45.0..200.0).contains(&m), "median {m}");
    let delay_for = |rt: f64| (rt - (m - 50.0)).round() as u64;
    let last_rt_at_least = |rt: f64| {
        format!(
            "const s = sonde.view.series; return s.length && s.rt[s.length - 1] >= {}",
            rt.floor()
        )
    };
    target.set_delay(delay_for(2.5 * m));
    b.wait_for(LONG, "a slow probe", &last_rt_at_least(2.2 * m));
    target.set_delay(delay_for(4.0 * m));
    b.wait_for(LONG, "a slower probe", &last_rt_at_least(3.5 * m));
    target.set_delay(50);
    b.wait_for(
        LONG,
        "a normal probe",
        &format!(
            "const s = sonde.view.series; return s.length && s.rt[s.length - 1] < {}",
            1.5 * m
        ),
    );
    std::thread::sleep(Duration::from_millis(300));
    // Every probe's class, its table row's tint and the canvas pixel at its marker.
    let seen = b.eval(
        "const v = sonde.view, s = v.series, u = v.chart, out = [];
         v.goLive(); u.redraw(false, false);
         const ctx = u.ctx, ratio = devicePixelRatio;
         for (let i = v.lo; i < v.hi; i++) {
           const row = document.querySelector(`#probes .probe[data-t=\"${s.t[i]}\"]`);
           const x = Math.round(u.valToPos(s.t[i], 'x', true)), y = Math.round(u.valToPos(s.rt[i], 'y', true));
           const px = ctx.getImageData(x, y, 1, 1).data;
           out.push({rt: s.rt[i], cls: v.cls[i], row: row ? row.className : null, px: [px[0], px[1], px[2]]});
         }
         const css = (n) => getComputedStyle(document.documentElement).getPropertyValue(n).trim();
         return {median: v.median, probes: out, amber: css('--amber'), red: css('--red'), ok: css('--ok')}",
    );
    let median = seen["median"].as_f64().unwrap_or(f64::NAN);
    assert!((45.0..200.0).contains(&median), "median {median}: {seen}");
    let rgb = |name: &str| -> [u64; 3] {
        let hex = seen[name]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('#');
        let c = |k: usize| u64::from_str_radix(hex.get(k..k + 2).unwrap_or("00"), 16).unwrap_or(0);
        [c(0), c(2), c(4)]
    };
    let (mut amber, mut red) = (0, 0);
    for p in seen["probes"].as_array().into_iter().flatten() {
        let rt = p["rt"].as_f64().unwrap_or(f64::NAN);
        let (class, name) = if rt >= 3.0 * median {
            red += 1;
            (2, "red")
        } else if rt >= 2.0 * median {
            amber += 1;
            (1, "amber")
        } else {
            (0, "ok")
        };
        assert_eq!(u(&p["cls"]), class, "{p} against median {median}");
        if let Some(row) = p["row"].as_str() {
            assert!(row.contains(&format!("cls-{name}")), "{p}");
        }
        if class > 0 {
            let px: Vec<u64> = p["px"].as_array().into_iter().flatten().map(u).collect();
            let want = rgb(name);
            let close = px.iter().zip(want).all(|(a, b)| a.abs_diff(b) <= 24);
            assert!(close, "marker pixel {px:?} is {name} {want:?}: {p}");
        }
    }
    assert!(amber >= 1 && red >= 1, "amber {amber}, red {red}: {seen}");
    b.screenshot("live-page-slow-probes");
}
