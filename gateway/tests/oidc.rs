//! Readers signed in with an identity provider: tokens minted by PyJWT
//! (tests/idp.py, its JWKS served on loopback) — valid, expired, early,
//! wrong audience or issuer, HMAC, unknown or rotated kid, no scope — and
//! a scope claim narrowing every way of reading.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use gateway::config::{DEFAULT_LEEWAY, JwksSource, OidcIssuer};
use gateway::oidc::claims::{Grant, Grantee, ScopeRules};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::util::*;

const ISSUER: &str = "https://idp.test";

/// tests/idp.py, running.
struct Idp {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl Idp {
    fn start() -> Option<Idp> {
        if !testkit::require_python(&["jwt", "cryptography"]) {
            return None;
        }
        let mut child = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/idp.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line.trim().parse().expect("idp.py prints its port");
        Some(Idp {
            child,
            stdin,
            stdout,
            port,
        })
    }

    fn ask(&mut self, cmd: Value) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_owned()
    }

    fn mint(&mut self, kid: &str, claims: Value) -> String {
        self.ask(json!({"op": "mint", "kid": kid, "claims": claims}))
    }

    fn publish(&mut self, kids: &[&str]) {
        assert_eq!(self.ask(json!({"op": "publish", "kids": kids})), "ok");
    }

    fn fetches(&mut self) -> u64 {
        self.ask(json!({"op": "fetches"})).parse().unwrap()
    }

    fn issuer(&self) -> OidcIssuer {
        OidcIssuer {
            issuer: ISSUER.into(),
            audiences: vec!["sonde".into()],
            keys: JwksSource::Url(format!("http://127.0.0.1:{}/jwks", self.port)),
            ca_file: None,
            refresh: Duration::from_secs(600),
            leeway: DEFAULT_LEEWAY,
            algorithms: vec![
                jsonwebtoken::Algorithm::RS256,
                jsonwebtoken::Algorithm::ES256,
                jsonwebtoken::Algorithm::EdDSA,
            ],
            rules: ScopeRules {
                scope_claim: Some("sonde".into()),
                groups_claim: "groups".into(),
                grants: vec![Grant {
                    grantee: Grantee::Group("sre".into()),
                    checks: vec![],
                    agents: vec!["b".into()],
                }],
            },
        }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims of a token valid for a minute, seeing `api-*` only.
fn api_claims() -> Value {
    json!({
        "iss": ISSUER, "aud": "sonde", "sub": "alice",
        "iat": now(), "exp": now() + 60,
        "sonde": {"checks": ["api-*"]},
    })
}

async fn get_as(gw: &Gateway, token: &str, path: &str) -> (u16, hyper::HeaderMap, Value) {
    let auth = format!("Bearer {token}");
    let (status, head, body) = get_with(gw.addr, path, &[("authorization", &auth)]).await;
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, head, json)
}

/// The checks of every record or state in an answer.
fn checks_in(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .iter()
        .map(|r| r["check"].as_str().unwrap().to_owned())
        .collect()
}

/// A refusal's status and reason.
async fn refused(gw: &Gateway, token: &str) -> (u16, String) {
    let (status, head, body) = get_as(gw, token, "/v1/checks").await;
    if status == 401 {
        let challenge = head["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{challenge}"
        );
    }
    (status, body["reason"].as_str().unwrap_or("").to_owned())
}

#[tokio::test]
async fn tokens_are_verified_against_the_providers_keys() {
    let Some(mut idp) = Idp::start() else { return };
    let issuer = idp.issuer();
    let gw = Gateway::start(|c| c.oidc = vec![issuer]).await;
    post(gw.addr, AGENT_A, frame("a", 1, 0, &["api-x", "web-y"], 2)).await;
    post(gw.addr, AGENT_B, frame("b", 1, 0, &["web-z"], 1)).await;

    // Each key type, and the scope claim narrowing the state.
    for kid in ["rsa-1", "ec-1", "ed-1"] {
        let token = idp.mint(kid, api_claims());
        let (status, _, body) = get_as(&gw, &token, "/v1/checks").await;
        assert_eq!(status, 200, "{kid}: {body}");
        assert_eq!(checks_in(&body, "states"), ["api-x"], "{kid}");
    }
    // A group's grant when the token has no scope claim.
    let sre = json!({"iss": ISSUER, "aud": ["other", "sonde"], "sub": "bob", "exp": now() + 60, "groups": ["dev", "sre"]});
    let (status, _, body) = get_as(&gw, &idp.mint("rsa-1", sre), "/v1/checks").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(checks_in(&body, "states"), ["web-z"]);

    let with = |patch: Value| {
        let mut c = api_claims();
        for (k, v) in patch.as_object().unwrap() {
            match v {
                Value::Null => c.as_object_mut().unwrap().remove(k),
                v => c.as_object_mut().unwrap().insert(k.clone(), v.clone()),
            };
        }
        c
    };
    let cases: [(&str, Value, &str); 9] = [
        ("rsa-1", json!({"exp": now() - 120}), "expired"),
        ("rsa-1", json!({"exp": null}), "no exp"),
        ("rsa-1", json!({"nbf": now() + 120}), "not valid yet"),
        ("rsa-1", json!({"aud": "someone-else"}), "audience"),
        ("rsa-1", json!({"aud": null}), "no aud"),
        (
            "rsa-1",
            json!({"iss": "https://evil.test"}),
            "not configured",
        ),
        ("hs-1", json!({}), "algorithm"),
        ("ec-1", json!({"sonde": "api-*"}), "not an object"),
        (
            "rsa-1",
            json!({"sonde": null, "sub": "mallory"}),
            "no scope",
        ),
    ];
    for (kid, patch, why) in cases {
        let token = idp.mint(kid, with(patch.clone()));
        let (status, reason) = refused(&gw, &token).await;
        assert_eq!(status, 401, "{patch}: {reason}");
        assert!(
            reason.contains(why),
            "{patch}: {reason:?} should say {why:?}"
        );
    }
    // Within the leeway, a token just expired still passes.
    let (status, _) = refused(&gw, &idp.mint("rsa-1", with(json!({"exp": now() - 5})))).await;
    assert_eq!(status, 200);
    // A signature from another key under a known kid.
    let forged = idp.mint("rsa-other", api_claims());
    let real = idp.mint("rsa-1", api_claims());
    let header = real.split('.').next().unwrap();
    let rest: Vec<_> = forged.split('.').skip(1).collect();
    let (status, reason) = refused(&gw, &format!("{header}.{}", rest.join("."))).await;
    assert_eq!(status, 401);
    assert!(reason.contains("signature"), "{reason}");
    assert_eq!(refused(&gw, "eyJh.eyJz.c2ln").await.0, 401);

    // Rotation: a key published after the gateway loaded the set is
    // fetched once, when a token first names it...
    let before = idp.fetches();
    idp.publish(&["rsa-2", "ec-1", "ed-1"]);
    let rotated = idp.mint("rsa-2", api_claims());
    assert_eq!(refused(&gw, &rotated).await.0, 200);
    assert_eq!(idp.fetches(), before + 1);
    // ...the retired key stops working once the set is reloaded...
    // (the set held now is the new one: rsa-1 is gone)
    let (status, reason) = refused(&gw, &idp.mint("rsa-1", api_claims())).await;
    assert_eq!(status, 401);
    assert!(reason.contains("no key"), "{reason}");
    // ...and made-up kids cannot make the gateway hammer the provider.
    for i in 0..20 {
        let (status, _) = refused(&gw, &idp.mint(&format!("rsa-x{i}"), api_claims())).await;
        assert_eq!(status, 401);
    }
    assert_eq!(idp.fetches(), before + 1, "no refetch within 30 s");
    assert_eq!(
        gw.metric("sonde_gateway_reader_tokens_refused_total").await,
        9 + 2 + 1 + 20
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_scope_claim_narrows_every_way_of_reading() {
    let Some(mut idp) = Idp::start() else { return };
    let issuer = idp.issuer();
    let gw = Gateway::start(|c| c.oidc = vec![issuer]).await;
    post(gw.addr, AGENT_A, frame("a", 1, 0, &["api-x", "web-y"], 2)).await;
    let token = idp.mint("ec-1", api_claims());
    let only_api = |checks: Vec<String>| {
        assert!(!checks.is_empty());
        assert!(checks.iter().all(|c| c == "api-x"), "{checks:?}");
    };
    let (_, _, history) = get_as(&gw, &token, "/v1/history?from_gseq=0").await;
    only_api(checks_in(&history, "records"));
    // Since just before the first record: all of it is in the ring.
    let since = history["records"][0]["gseq"].as_u64().unwrap() - 1;
    let (_, _, poll) = get_as(&gw, &token, &format!("/v1/poll?since={since}")).await;
    only_api(checks_in(&poll, "records"));
    // The stream, with the token as the query parameter a browser's
    // EventSource uses: snapshot, replay and live.
    let mut sse = Sse::open(gw.addr, "", &format!("?since={since}&token={token}")).await;
    assert_eq!(sse.status, 200);
    let snapshot = sse.next().await.unwrap();
    assert_eq!(snapshot.event, "snapshot");
    only_api(checks_in(&snapshot.data, "states"));
    let replay = sse.next().await.unwrap();
    only_api(checks_in(&replay.data, "records"));
    post(gw.addr, AGENT_A, frame("a", 1, 1, &["web-y"], 1)).await;
    post(gw.addr, AGENT_A, frame("a", 1, 2, &["api-x", "web-y"], 1)).await;
    let live = sse.next().await.unwrap();
    assert_eq!(live.event, "records");
    assert_eq!(checks_in(&live.data, "records"), ["api-x"]);
    gw.stop().await;
}

async fn ws_connect(gw: &Gateway) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let req = format!("ws://{}/v1/ws?format=json", gw.addr)
        .into_client_request()
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    tokio_tungstenite::client_async(req, tcp).await.unwrap().0
}

async fn ws_message(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Message {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("the socket is open")
            .unwrap();
        if !matches!(m, Message::Ping(_) | Message::Pong(_)) {
            return m;
        }
    }
}

fn close_code(m: &Message) -> (u16, String) {
    match m {
        Message::Close(Some(f)) => (u16::from(f.code), f.reason.to_string()),
        other => panic!("not a close: {other:?}"),
    }
}

#[tokio::test]
async fn a_websocket_signs_in_with_its_first_message() {
    let Some(mut idp) = Idp::start() else { return };
    let issuer = idp.issuer();
    let gw = Gateway::start(|c| c.oidc = vec![issuer]).await;
    post(gw.addr, AGENT_A, frame("a", 1, 0, &["api-x", "web-y"], 1)).await;
    let mut ws = ws_connect(&gw).await;
    let token = idp.mint("ed-1", api_claims());
    ws.send(Message::text(json!({"token": token}).to_string()))
        .await
        .unwrap();
    let hello: Value = serde_json::from_str(ws_message(&mut ws).await.to_text().unwrap()).unwrap();
    assert_eq!(hello["type"], "hello");
    let snapshot: Value =
        serde_json::from_str(ws_message(&mut ws).await.to_text().unwrap()).unwrap();
    assert_eq!(checks_in(&snapshot, "states"), ["api-x"]);
    // A static reader token signs in the same way.
    let mut ws = ws_connect(&gw).await;
    ws.send(Message::text(json!({"token": READER_ALL}).to_string()))
        .await
        .unwrap();
    assert!(
        ws_message(&mut ws)
            .await
            .to_text()
            .unwrap()
            .contains("hello")
    );
    // An expired token, garbage, a static agent token: closed with why.
    let expired = idp.mint(
        "ed-1",
        json!({"iss": ISSUER, "aud": "sonde", "exp": now() - 600, "sonde": {}}),
    );
    for (first, why) in [
        (json!({"token": expired}).to_string(), "expired"),
        ("hello".to_owned(), "first message"),
        (json!({"token": AGENT_A}).to_string(), "unauthorized"),
    ] {
        let mut ws = ws_connect(&gw).await;
        ws.send(Message::text(first)).await.unwrap();
        let (code, reason) = close_code(&ws_message(&mut ws).await);
        assert_eq!(code, 4401);
        assert!(reason.contains(why), "{reason:?} should say {why:?}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires() {
    let Some(mut idp) = Idp::start() else { return };
    let issuer = idp.issuer();
    let gw = Gateway::start(|c| c.oidc = vec![issuer]).await;
    post(gw.addr, AGENT_A, frame("a", 1, 0, &["api-x"], 1)).await;
    let soon = |idp: &mut Idp| {
        let mut c = api_claims();
        c["exp"] = json!(now() + 2);
        idp.mint("rsa-1", c)
    };
    let mut sse = Sse::open(gw.addr, &soon(&mut idp), "").await;
    assert_eq!(sse.next().await.unwrap().event, "snapshot");
    let last = sse.next().await.unwrap();
    assert_eq!(last.event, "expired", "{:?}", last.data);
    assert_eq!(last.data["type"], "expired");
    assert!(sse.next().await.is_none(), "nothing after expired");

    let mut req = format!("ws://{}/v1/ws?format=json", gw.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", soon(&mut idp)).parse().unwrap(),
    );
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut ws = tokio_tungstenite::client_async(req, tcp).await.unwrap().0;
    let mut last = ws_message(&mut ws).await;
    while !matches!(last, Message::Close(_)) {
        last = ws_message(&mut ws).await;
    }
    assert_eq!(close_code(&last), (4001, "token expired".to_owned()));
    assert_eq!(gw.metric("sonde_gateway_readers_expired_total").await, 2);
    gw.stop().await;
}
