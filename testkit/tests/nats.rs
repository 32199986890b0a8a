//! The nats-server harness against itself: a three-node cluster elects a
//! meta leader and takes a node back after a SIGKILL; a single node with a
//! token stops, restarts and asks clients for credentials. Each node's
//! client port is checked through the INFO line every NATS server sends
//! first. Needs nats-server installed.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use testkit::nats::{Auth, CLUSTER_NAME, NATS_SERVER, NatsCluster};

/// The JSON of the `INFO {...}` line the server at `url` greets a client with.
fn info(url: &str) -> serde_json::Value {
    let addr = url.strip_prefix("nats://").expect("a nats:// URL");
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("setting a read timeout");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("reading INFO from {url}: {e}"));
    let json = line
        .strip_prefix("INFO ")
        .unwrap_or_else(|| panic!("{url} greeted with {line:?}"));
    serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("INFO from {url}: {e}: {json}"))
}

#[test]
fn nats_cluster_of_three_elects_a_leader_and_takes_back_a_killed_node() {
    if !testkit::require_tool(NATS_SERVER) {
        return;
    }
    let began = Instant::now();
    let mut cluster = NatsCluster::start(3).unwrap_or_else(|e| panic!("{e:#}"));
    let urls = cluster.client_urls();
    assert_eq!(urls.len(), 3);
    for (i, url) in urls.iter().enumerate() {
        assert!(url.starts_with("nats://127.0.0.1:"), "{url}");
        assert_eq!(*url, cluster.client_url(i));
        assert!(cluster.is_running(i));
        let info = info(url);
        assert_eq!(info["server_name"], cluster.server_name(i), "{info}");
        assert_eq!(info["cluster"], CLUSTER_NAME, "{info}");
        assert_eq!(info["jetstream"], true, "{info}");
    }
    let first_leader = cluster.meta_leader().expect("ready without a leader");
    let started = began.elapsed();

    cluster.kill(0).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!cluster.is_running(0));
    assert!(
        TcpStream::connect(urls[0].trim_start_matches("nats://")).is_err(),
        "a killed node still listens"
    );
    let restarting = Instant::now();
    cluster.restart(0).unwrap_or_else(|e| panic!("{e:#}"));
    let restarted = restarting.elapsed();
    assert!(cluster.is_running(0));
    assert_eq!(cluster.client_urls(), urls, "a restart keeps the ports");
    assert_eq!(info(&urls[0])["server_name"], "n0");
    cluster.wait_current().unwrap_or_else(|e| panic!("{e:#}"));
    let leader = cluster.meta_leader().expect("a leader after the restart");
    eprintln!(
        "nats: 3 nodes ready in {started:?} (leader n{first_leader}); node 0 killed and \
         ready again in {restarted:?} (leader n{leader}); {:?} in all",
        began.elapsed()
    );
    // The log keeps both lives.
    assert_eq!(cluster.log(0).matches("Starting nats-server").count(), 2);
}

#[test]
fn nats_single_node_with_a_token_stops_and_restarts() {
    if !testkit::require_tool(NATS_SERVER) {
        return;
    }
    let mut node = NatsCluster::start_with(1, &Auth::Token("s3cr$t t0ken".into()))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let info = info(&node.client_url(0));
    assert_eq!(info["auth_required"], true, "{info}");
    assert_eq!(node.meta_leader(), None, "a single node has no meta group");
    assert!(node.dir(0).join("store").is_dir(), "no JetStream store");

    node.stop(0).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!node.is_running(0));
    assert!(node.log(0).contains("Server Exiting"), "{}", node.log(0));
    node.restart_all().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(node.is_running(0));
    assert!(node.restart(0).is_err(), "restarting a running node");
    node.kill_all().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!node.is_running(0));
}

#[test]
fn nats_cluster_size_is_one_or_three() {
    let two = NatsCluster::start(2).err().map(|e| format!("{e:#}"));
    assert!(two.is_some_and(|e| e.contains("1 or 3")));
}

#[test]
fn nats_cluster_of_three_comes_back_from_a_full_restart() {
    if !testkit::require_tool(NATS_SERVER) {
        return;
    }
    let mut cluster = NatsCluster::start(3).unwrap_or_else(|e| panic!("{e:#}"));
    let urls = cluster.client_urls();
    cluster.kill_all().unwrap_or_else(|e| panic!("{e:#}"));
    assert!((0..3).all(|i| !cluster.is_running(i)));
    let restarting = Instant::now();
    cluster.restart_all().unwrap_or_else(|e| panic!("{e:#}"));
    let restarted = restarting.elapsed();
    assert!((0..3).all(|i| cluster.is_running(i)));
    assert_eq!(cluster.client_urls(), urls, "a restart keeps the ports");
    let leader = cluster.meta_leader().expect("a leader after the restart");
    eprintln!("nats: 3 nodes killed and ready again in {restarted:?} (leader n{leader})");
}
