//! The live page's pure modules under Node's test runner: classification,
//! the typed-array series, export, the OIDC checks, the feed (against a
//! scripted gateway) and an overview row. gateway/tests/ui/*.test.mjs
//! import gateway/ui/*.js as the browser does, without a browser.

use std::process::Command;

#[test]
fn the_page_modules_pass_their_node_tests() {
    if !testkit::require_tool("node") {
        return;
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(Result::ok)
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".test.mjs"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let out = Command::new("node")
        .arg("--test")
        .args(&files)
        .output()
        .unwrap_or_else(|e| panic!("node: {e}"));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node --test: {}\n{report}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("# fail 0"), "{report}");
}
