//! The chain as operators run it, for the benches that measure through
//! it (gateway_latency, live_page): a `sonde gateway` with one agent and
//! one reader, and a `sonde run` probing loopback targets into it, both
//! child processes. Needs the bench's `mod process` (tests/util/process.rs).

use std::net::SocketAddr;
use std::path::Path;

use testkit::http::HttpTarget;

use crate::process::{Process, free_addr};

/// The reader's token.
pub const READER: &str = "bench-reader";
/// The agent's token.
pub const AGENT: &str = "bench-agent";

/// A `sonde gateway` in `dir` with agent "bench" and one reader, and
/// `extra` top-level gateway.toml lines; running and listening.
pub fn gateway(dir: &Path, extra: &str) -> (Process, SocketAddr) {
    let addr = free_addr();
    std::fs::write(dir.join("reader.token"), READER).unwrap_or_else(|e| panic!("{e}"));
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"{}\"\n{extra}\
             [[agent]]\nid = \"bench\"\ntoken = {{ env = \"BENCH_AGENT_TOKEN\" }}\n\
             [[reader]]\nname = \"bench\"\ntoken = {{ file = \"{}\" }}\n",
            dir.join("data").display(),
            dir.join("reader.token").display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let shown = config.display().to_string();
    let mut gw = Process::start(
        &["gateway", "--config", &shown],
        &[("BENCH_AGENT_TOKEN", AGENT)],
    );
    gw.wait_listening(addr);
    (gw, addr)
}

/// `sonde run` (state in `dir/agent`, logging warnings only) probing
/// `checks` URLs spread over `targets` every `interval`, streaming to
/// the gateway at `gateway`.
pub fn agent(
    dir: &Path,
    gateway: SocketAddr,
    targets: &[HttpTarget],
    checks: usize,
    interval: &str,
) -> Process {
    let mut config = format!(
        "[agent]\nid = \"bench\"\nstate_dir = \"{}\"\n\
         [defaults]\ninterval = \"{interval}\"\ntimeout = \"900ms\"\n\
         [[sinks.gateway]]\nurl = \"http://{gateway}\"\ntoken = {{ env = \"BENCH_GATEWAY_TOKEN\" }}\n",
        dir.join("agent").display()
    );
    for i in 0..checks {
        let target = &targets[i % targets.len()];
        config.push_str(&format!(
            "[[check]]\nname = \"c{i}\"\nurl = \"{}\"\n",
            target.url(&format!("/{i}"))
        ));
    }
    let path = dir.join("sonde.toml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("{e}"));
    let shown = path.display().to_string();
    Process::start(
        &["run", "--config", &shown],
        &[("BENCH_GATEWAY_TOKEN", AGENT), ("RUST_LOG", "warn")],
    )
}
