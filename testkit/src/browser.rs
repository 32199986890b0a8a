//! A real browser for the live page's tests: headless Chromium driven over
//! WebDriver (ChromeDriver, through Python's selenium: `browser/bridge.py`),
//! one session per [`Browser`], one request at a time as JSON lines.
//! Screenshots land under `target/screenshots/` for a reviewer to look at.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BRIDGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/browser/bridge.py");

/// Whether Chromium, ChromeDriver and selenium are here (with
/// `SONDE_REQUIRE_TOOLS=1`, a missing one fails the test instead).
pub fn available() -> bool {
    crate::require_tool("chromium")
        && crate::require_tool("chromedriver")
        && crate::require_python(&["selenium"])
}

/// One headless Chromium window; quit when dropped.
pub struct Browser {
    child: Child,
    to: ChildStdin,
    from: BufReader<ChildStdout>,
}

impl Browser {
    /// Starts Chromium with a window of `width` × `height` CSS pixels.
    pub fn start(width: u32, height: u32) -> Browser {
        let mut child = Command::new("python3")
            .args([BRIDGE, &width.to_string(), &height.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting python3 {BRIDGE}: {e}"));
        let (Some(to), Some(from)) = (child.stdin.take(), child.stdout.take()) else {
            panic!("python3 {BRIDGE}: no pipes");
        };
        let mut browser = Browser {
            child,
            to,
            from: BufReader::new(from),
        };
        if let Err(e) = browser.answer() {
            panic!("{e}");
        }
        browser
    }

    fn answer(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        match self.from.read_line(&mut line) {
            Ok(0) => return Err("the browser bridge exited".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading the browser bridge: {e}")),
        }
        let mut v: Value =
            serde_json::from_str(&line).map_err(|e| format!("bridge said {line:?}: {e}"))?;
        match v.get("error") {
            Some(e) => Err(e.as_str().unwrap_or_default().to_owned()),
            None => Ok(v.get_mut("ok").map(Value::take).unwrap_or(Value::Null)),
        }
    }

    /// Sends one request; the bridge's answer or its error.
    pub fn call(&mut self, request: Value) -> Result<Value, String> {
        writeln!(self.to, "{request}").map_err(|e| format!("writing to the bridge: {e}"))?;
        self.to
            .flush()
            .map_err(|e| format!("writing to the bridge: {e}"))?;
        self.answer()
    }

    fn must(&mut self, request: Value) -> Value {
        let shown = request.to_string();
        match self.call(request) {
            Ok(v) => v,
            Err(e) => {
                let logs = self.console();
                panic!("browser: {shown}: {e}\nconsole:\n{}", logs.join("\n"))
            }
        }
    }

    /// Loads `url` (returns once the document has loaded).
    pub fn open(&mut self, url: &str) {
        self.must(json!({"op": "get", "url": url}));
    }

    /// Runs `script` (a function body: `return …` gives the value) in the page.
    pub fn eval(&mut self, script: &str) -> Value {
        self.must(json!({"op": "js", "script": script}))
    }

    /// [`Browser::eval`] with arguments (`arguments[0]`, …).
    pub fn eval_with(&mut self, script: &str, args: Value) -> Value {
        self.must(json!({"op": "js", "script": script, "args": args}))
    }

    /// Polls `script` every 50 ms until it returns something other than
    /// null, false, 0 or ""; that value. Panics after `limit`, naming `what`.
    pub fn wait_for(&mut self, limit: Duration, what: &str, script: &str) -> Value {
        let start = Instant::now();
        loop {
            let v = self.eval(script);
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if start.elapsed() > limit {
                let logs = self.console();
                panic!(
                    "browser: waited {limit:?} for {what}: last {v}\nconsole:\n{}",
                    logs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A real click (WebDriver's pointer) on the element matching `css`.
    pub fn click(&mut self, css: &str) {
        self.must(json!({"op": "click", "css": css}));
    }

    /// A real click at `at` (CSS pixels from the top left corner of the
    /// element matching `css`).
    pub fn click_at(&mut self, css: &str, at: (f64, f64)) {
        self.must(json!({"op": "click_at", "css": css, "at": [at.0, at.1]}));
    }

    /// A pointer drag inside the element matching `css`, from `from` to
    /// `to` (CSS pixels from its top left corner).
    pub fn drag(&mut self, css: &str, from: (f64, f64), to: (f64, f64)) {
        self.must(json!({"op": "drag", "css": css, "from": [from.0, from.1], "to": [to.0, to.1]}));
    }

    /// Types `text` into the element matching `css` (or the focused one, for "").
    pub fn keys(&mut self, css: &str, text: &str) {
        self.must(json!({"op": "keys", "css": css, "text": text}));
    }

    /// A Chrome DevTools Protocol command's answer.
    pub fn cdp(&mut self, cmd: &str, params: Value) -> Value {
        self.must(json!({"op": "cdp", "cmd": cmd, "params": params}))
    }

    /// The page's JS heap in use after a full garbage collection, in bytes.
    pub fn heap_used(&mut self) -> f64 {
        self.cdp("HeapProfiler.collectGarbage", json!({}));
        let usage = self.cdp("Runtime.getHeapUsage", json!({}));
        usage["usedSize"].as_f64().unwrap_or(f64::NAN)
    }

    /// The console messages since the last call (for failure reports).
    pub fn console(&mut self) -> Vec<String> {
        match self.call(json!({"op": "logs"})) {
            Ok(Value::Array(lines)) => lines
                .into_iter()
                .map(|l| l.as_str().unwrap_or_default().to_owned())
                .collect(),
            Ok(other) => vec![other.to_string()],
            Err(e) => vec![format!("(no console: {e})")],
        }
    }

    /// Saves a PNG of the window as `target/screenshots/{name}.png`; its path.
    pub fn screenshot(&mut self, name: &str) -> PathBuf {
        let dir = screenshots_dir();
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("creating {}: {e}", dir.display());
        }
        let path = dir.join(format!("{name}.png"));
        self.must(json!({"op": "screenshot", "path": path.display().to_string()}));
        path
    }
}

/// `$CARGO_TARGET_DIR/screenshots`, or the workspace's `target/screenshots`.
pub fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("screenshots")
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.to, "{}", json!({"op": "quit"}));
        let _ = self.to.flush();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
