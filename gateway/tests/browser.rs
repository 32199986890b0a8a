//! CORS with a real browser: headless Chromium (driven by selenium through
//! ChromeDriver) opens a reader's page served from another origin than the
//! gateway's; its EventSource on /v1/stream and its fetch of /v1/history
//! (with an Authorization header, so after a preflight) get records when
//! `[cors] allow_origins` names the page's origin, and are refused by the
//! browser when it does not.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::util::*;

const PAGE: &str = include_str!("browser/cors.html");
const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/drive.py");

/// Serves the page on 127.0.0.1 (its own origin: another port than the
/// gateway's) until dropped.
struct PageServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl PageServer {
    async fn start() -> PageServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let (status, body) = if head.starts_with(b"GET /page") {
                        ("200 OK", PAGE)
                    } else {
                        ("404 Not Found", "")
                    };
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                });
            }
        });
        PageServer { addr, task }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the page saw, as JSON, after Chromium ran it.
async fn open_in_chromium(url: String) -> serde_json::Value {
    let run = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([DRIVER, &url, "30"])
            .output()
            .expect("python3 runs")
    });
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("chromium finishes in 90 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "drive.py {}: {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn browser_available() -> bool {
    testkit::require_tool("chromium")
        && testkit::require_tool("chromedriver")
        && testkit::require_python(&["selenium"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_an_allowed_origin_streams_and_reads_history_others_are_refused() {
    if !browser_available() {
        return;
    }
    let allowed = PageServer::start().await;
    let other = PageServer::start().await;
    let origin = allowed.origin();
    let gw = Gateway::start(|c| c.cors.allow_origins = vec![origin.clone()]).await;
    let answer = post(gw.addr, AGENT_A, frame("a", 1, 1, &["api-1", "web-1"], 2)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let stored = history_pages(gw.addr, READER_ALL, "").await;
    assert_eq!(stored.len(), 4);
    let since = stored[0].0 - 1;
    let url = |page: &PageServer| {
        format!(
            "http://{}/page?gw=http://{}&token={READER_ALL}&since={since}",
            page.addr, gw.addr
        )
    };

    let seen = open_in_chromium(url(&allowed)).await;
    assert_eq!(seen["origin"], origin.as_str());
    assert!(seen["stream_error"].is_null(), "{seen}");
    let streamed: Vec<(u64, String, u64)> = triples(&seen["stream"]);
    assert_eq!(streamed, stored, "the stream replayed what history holds");
    assert!(seen["history_error"].is_null(), "{seen}");
    assert_eq!(seen["history"]["status"], 200);
    assert_eq!(triples(&seen["history"]), stored);

    // The same page from an origin the gateway does not name: the
    // browser refuses both, and the script learns nothing but an error.
    let refused = open_in_chromium(url(&other)).await;
    assert_eq!(refused["origin"], other.origin().as_str());
    assert!(refused["stream"].is_null(), "{refused}");
    assert!(refused["stream_error"].is_string(), "{refused}");
    assert!(refused["history"].is_null(), "{refused}");
    assert!(
        refused["history_error"]
            .as_str()
            .is_some_and(|e| e.contains("Failed to fetch")),
        "{refused}"
    );
    gw.stop().await;
}
