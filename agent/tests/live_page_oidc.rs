//! Signing in to the live page at an identity provider (`[ui.oidc]`,
//! PROTOCOL.md 3.12), in headless Chromium: tests/idp_login.py, a minimal
//! OpenID provider on loopback, a real `sonde gateway` verifying its ID
//! tokens (`[[oidc]]`, keys from the provider's JWKS) and `sonde run`
//! streaming two checks into it.
//!
//! - With `[ui.oidc]` the sign-in screen is a button naming the provider;
//!   a refusal there (`#error=access_denied`) is shown on it.
//! - The button goes to the provider and back (code flow, PKCE S256,
//!   `response_mode=fragment`); the overview shows the one check the ID
//!   token's scope claim allows, not the other.
//! - Neither a code nor an ID token is in any URL the page requested,
//!   the address bar, or the gateway's log.
//! - An expired ID token signs in again by itself, once: when the next
//!   token is refused, the button shows, and no further attempt is made.
//! - "Use a reader token instead" still signs in with a static token.
//! - The provider checks PKCE: a wrong `code_verifier` is `invalid_grant`.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::browser::{self, Browser};

use crate::gateway_e2e::READER_TOKEN;
use crate::live_page::{DelayingTarget, LONG, Region, overview_rows};
use crate::util::http::exchange;
use crate::util::process::{free_addr, wait_until};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/idp_login.py");
/// The page's client id at the provider.
const CLIENT: &str = "sonde-page";
/// RFC 7636 appendix B: a code_verifier and its S256 code_challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// tests/idp_login.py, running; killed when dropped.
struct Provider {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
}

impl Provider {
    /// A provider whose one client is the page at origin `page`.
    fn start(page: &str) -> Option<Provider> {
        if !testkit::require_python(&["jwt", "cryptography"]) {
            return None;
        }
        let client = json!({
            "client_id": CLIENT,
            "redirect_uris": [format!("{page}/")],
            "origins": [page],
        });
        let mut child = Command::new("python3")
            .args([SCRIPT, &client.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("python3 {SCRIPT}: {e}"));
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            panic!("python3 {SCRIPT}: no pipes");
        };
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("{e}"));
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("idp_login.py said {line:?}: {e}"));
        Some(Provider {
            child,
            stdin,
            stdout,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn ask(&mut self, cmd: Value) -> String {
        writeln!(self.stdin, "{cmd}").unwrap_or_else(|e| panic!("{e}"));
        self.stdin.flush().unwrap_or_else(|e| panic!("{e}"));
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("{e}"));
        line.trim().to_owned()
    }

    /// Who `/authorize` approves next: `sub`, the claims their ID token
    /// adds, its lifetime.
    fn approve(&mut self, sub: &str, claims: Value, ttl: u64) {
        let said = self.ask(json!({"op": "user", "sub": sub, "claims": claims, "ttl": ttl}));
        assert_eq!(said, "ok");
    }

    /// `/authorize` refuses (access_denied) from now on.
    fn deny(&mut self) {
        assert_eq!(self.ask(json!({"op": "user", "deny": true})), "ok");
    }

    /// {authorizations, codes, tokens, exchanges} so far.
    fn log(&mut self) -> Value {
        let line = self.ask(json!({"op": "log"}));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    fn authorizations(&mut self) -> usize {
        self.log()["authorizations"].as_array().map_or(0, Vec::len)
    }

    /// A code from `/authorize`, asked for directly with [`CHALLENGE`].
    fn code(&self, redirect_uri: &str) -> String {
        let redirect = redirect_uri.replace(':', "%3A").replace('/', "%2F");
        let path = format!(
            "/authorize?response_type=code&client_id={CLIENT}&redirect_uri={redirect}\
             &scope=openid&state=st&nonce=no&code_challenge={CHALLENGE}\
             &code_challenge_method=S256&response_mode=fragment"
        );
        let a = exchange(self.addr, "GET", &path, &[], b"");
        assert_eq!(a.status, 302, "{}", a.text);
        let location = a
            .text
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no Location: {}", a.text));
        let fragment = location
            .strip_prefix(&format!("{redirect_uri}#"))
            .unwrap_or_else(|| panic!("not in the fragment: {location}"));
        fragment
            .split('&')
            .find_map(|p| p.strip_prefix("code="))
            .unwrap_or_else(|| panic!("no code: {location}"))
            .to_owned()
    }

    /// `POST /token` for `code` with `verifier`: (status, answer).
    fn redeem(&self, code: &str, redirect_uri: &str, verifier: &str) -> (u16, Value) {
        let redirect = redirect_uri.replace(':', "%3A").replace('/', "%2F");
        let body = format!(
            "grant_type=authorization_code&code={code}&redirect_uri={redirect}\
             &client_id={CLIENT}&code_verifier={verifier}"
        );
        let a = exchange(
            self.addr,
            "POST",
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        );
        let answer = serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("{e}: {}", a.text));
        (a.status, answer)
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// [`Browser::wait_for`] across navigations: while the page is away at the
/// provider or loading, a failing script is tried again.
fn wait_across(b: &mut Browser, limit: Duration, what: &str, script: &str) -> Value {
    let start = Instant::now();
    loop {
        let v = b.call(json!({"op": "js", "script": script}));
        let truthy = match &v {
            Ok(Value::Null | Value::Bool(false)) | Err(_) => false,
            Ok(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Ok(Value::String(s)) => !s.is_empty(),
            Ok(_) => true,
        };
        if truthy && let Ok(v) = v {
            return v;
        }
        if start.elapsed() > limit {
            let logs = b.console();
            panic!(
                "browser: waited {limit:?} for {what}: last {v:?}\nconsole:\n{}",
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the provider has seen `n` authorization requests; on
/// timeout, says what the page shows.
fn wait_authorizations(b: &mut Browser, idp: &mut Provider, n: usize, what: &str) {
    let start = Instant::now();
    while idp.authorizations() != n {
        if start.elapsed() > LONG {
            let page = b.call(json!({"op": "js", "script": PAGE_STATE}));
            let logs = b.console();
            panic!(
                "waited {LONG:?} for {what} (authorization {n}): provider {}\npage {page:?}\nconsole:\n{}",
                idp.log(),
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the page shows and holds, for failure messages.
const PAGE_STATE: &str = "return {href: location.href, text: document.querySelector('#app').innerText.slice(0, 400),
    storage: Object.keys(sessionStorage), chips: [...document.querySelectorAll('.region-chip')].map(c => c.dataset.mode),
    feeds: [...sonde.state.feeds.values()].map(f => ({mode: f.mode, failures: f.failures, lastError: f.lastError}))}";

const ROWS: &str = "return document.querySelectorAll('#overview .row[data-key]').length";
const SIGNIN_ERROR: &str =
    "const e = document.querySelector('#signin-error'); return e && e.textContent";

/// Waits for the overview, then for its rows to settle: the checks shown.
fn settled_rows(b: &mut Browser) -> Vec<(String, String)> {
    wait_across(b, LONG, "the overview's rows", ROWS);
    std::thread::sleep(Duration::from_millis(2500));
    overview_rows(b)
}

/// The overview shows `api` up, and nothing else.
fn assert_api_only(b: &mut Browser, when: &str) {
    let rows = settled_rows(b);
    if rows != [("api".to_owned(), "up".to_owned())] {
        let page = b.call(json!({"op": "js", "script": PAGE_STATE}));
        panic!(
            "{when}: rows {rows:?}\npage {page:?}\nconsole:\n{}",
            b.console().join("\n")
        );
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_page_signs_in_at_the_provider_and_reads_what_the_id_token_allows() {
    if !browser::available() {
        return;
    }
    let addr = free_addr();
    let page = format!("http://{addr}");
    let redirect_uri = format!("{page}/");
    let Some(mut idp) = Provider::start(&page) else {
        return;
    };
    let issuer = idp.issuer();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let target = DelayingTarget::start(0);
    let checks = vec![("api", target.url("/api")), ("web", target.url("/web"))];
    let extra = format!(
        "[ui.oidc]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT}\"\n\n\
         [[oidc]]\nissuer = \"{issuer}\"\naudience = \"{CLIENT}\"\n\
         jwks_url = \"{issuer}/jwks\"\nscope_claim = \"sonde\"\n"
    );
    let region = Region::start_at(tmp.path(), addr, "eu-west", &extra, &checks);
    wait_until(LONG, "history holds both checks", || {
        let held: std::collections::BTreeSet<String> = region
            .history("")
            .iter()
            .map(|i| i["check"].as_str().unwrap_or_default().to_owned())
            .collect();
        held.len() == 2
    });
    let api_only = json!({"checks": ["api"]});
    let mut b = Browser::start(1400, 900);

    // The sign-in screen: the provider's button, no token form.
    b.open(&page);
    let button = b.wait_for(
        LONG,
        "the sign-in button",
        "const e = document.querySelector('#oidc-signin'); return e && e.textContent",
    );
    assert_eq!(button, json!(format!("Sign in with {}", idp.addr)));
    assert_eq!(
        b.eval("return document.querySelector('#token')"),
        Value::Null
    );

    // The provider refuses: its error shows on the sign-in screen.
    idp.deny();
    b.click("#oidc-signin");
    let error = wait_across(&mut b, LONG, "the provider's refusal", SIGNIN_ERROR);
    assert!(
        error
            .as_str()
            .is_some_and(|t| t.contains("access_denied") && t.contains("the user said no")),
        "{error}"
    );
    assert_eq!(b.eval("return location.href"), json!(redirect_uri));

    // Signed in: the check the scope claim allows, not the other. Its
    // tokens live 20 s, time for what is checked with each.
    idp.approve("alice", json!({"sonde": api_only}), 20);
    b.click("#oidc-signin");
    assert_api_only(&mut b, "signed in");
    let log = idp.log();
    let asked = &log["authorizations"][1];
    for (key, want) in [
        ("response_type", "code"),
        ("client_id", CLIENT),
        ("redirect_uri", redirect_uri.as_str()),
        ("scope", "openid"),
        ("code_challenge_method", "S256"),
        ("response_mode", "fragment"),
    ] {
        assert_eq!(asked[key], json!(want), "{key}: {asked}");
    }
    for key in ["state", "nonce", "code_challenge"] {
        assert!(
            asked[key].as_str().is_some_and(|v| v.len() >= 20),
            "{key}: {asked}"
        );
    }
    let tokens = strings(&log["tokens"]);
    assert_eq!(tokens.len(), 1, "{log}");
    let held = b.eval("return sessionStorage.getItem('sonde.token')");
    assert_eq!(held, json!(tokens[0]), "the ID token is the bearer");
    assert_eq!(
        b.eval("return location.href"),
        json!(redirect_uri),
        "the code left the address bar"
    );
    b.screenshot("live-page-oidc");

    // The ID token expires: the page goes to the provider by itself and
    // reads on with the next one. The one after that gives no scope.
    wait_authorizations(&mut b, &mut idp, 3, "an automatic sign-in");
    idp.approve("mallory", json!({}), 3600);
    assert_api_only(&mut b, "after the automatic sign-in");
    let tokens = strings(&idp.log()["tokens"]);
    assert_eq!(tokens.len(), 2);
    let held = wait_across(
        &mut b,
        LONG,
        "the new token",
        "return sessionStorage.getItem('sonde.token')",
    );
    assert_eq!(held, json!(tokens[1]));

    // It expires again, and the provider's next token is refused: the
    // button shows, and no second automatic attempt follows.
    wait_authorizations(&mut b, &mut idp, 4, "a second automatic sign-in");
    let error = wait_across(&mut b, LONG, "the refusal", SIGNIN_ERROR);
    assert!(
        error
            .as_str()
            .is_some_and(|t| t.starts_with("eu-west: ") && t.contains("no scope")),
        "{error}"
    );
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(idp.authorizations(), 4, "at most one automatic attempt");
    assert!(b.eval("return document.querySelector('#oidc-signin') !== null") == json!(true));
    b.screenshot("live-page-oidc-refused");

    // A click signs in again.
    idp.approve("alice", json!({"sonde": api_only}), 3600);
    b.click("#oidc-signin");
    assert_api_only(&mut b, "signed in");

    // Neither a code nor an ID token was in any URL the page requested,
    // nor in the gateway's log.
    let log = idp.log();
    let (codes, tokens) = (strings(&log["codes"]), strings(&log["tokens"]));
    assert_eq!((codes.len(), tokens.len()), (4, 4), "{log}");
    let requested =
        strings(&b.eval("return performance.getEntriesByType('resource').map(e => e.name)"));
    assert!(
        requested.iter().any(|u| u.ends_with("/ui/config.json")),
        "{requested:?}"
    );
    let stderr = region.gateway_stderr();
    for secret in codes.iter().chain(&tokens) {
        assert!(
            !requested.iter().any(|u| u.contains(secret.as_str())),
            "{requested:?}"
        );
        assert!(!stderr.contains(secret.as_str()), "the gateway logged it");
    }

    // "Use a reader token instead": a static token sees both checks.
    b.eval("sessionStorage.clear(); location.reload(); return 1");
    wait_across(
        &mut b,
        LONG,
        "the sign-in button",
        "return document.querySelector('#use-token') !== null",
    );
    b.click("#use-token");
    b.keys("#token", &format!("{READER_TOKEN}\n"));
    b.wait_for(LONG, "both rows", &format!("{ROWS} === 2"));

    // The provider checks PKCE: the wrong verifier is refused, the right
    // one exchanged; each code once.
    let code = idp.code(&redirect_uri);
    let wrong = "x".repeat(43);
    let (status, answer) = idp.redeem(&code, &redirect_uri, &wrong);
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "invalid_grant", "{answer}");
    assert_eq!(answer["error_description"], "PKCE verification failed");
    let (status, answer) = idp.redeem(&code, &redirect_uri, VERIFIER);
    assert_eq!(
        (status, &answer["error"]),
        (400, &json!("invalid_grant")),
        "a code is good once"
    );
    let code = idp.code(&redirect_uri);
    let (status, answer) = idp.redeem(&code, &redirect_uri, VERIFIER);
    assert_eq!(status, 200, "{answer}");
    assert!(answer["id_token"].as_str().is_some_and(|t| t.len() > 100));
    drop(region);
}
