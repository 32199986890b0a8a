//! The refused port refuses, and the blackhole's connects really hang.

use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn refused_addr_refuses() {
    let addr = testkit::tcp::refused_addr();
    assert!(addr.ip().is_loopback());
    let err = TcpStream::connect(addr).expect_err("nothing listens");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn blackhole_connect_does_not_complete() {
    let hole = testkit::tcp::Blackhole::start();
    assert!(hole.addr().ip().is_loopback());
    let start = Instant::now();
    let res = TcpStream::connect_timeout(&hole.addr(), Duration::from_millis(500));
    let err = res.expect_err("a blackhole connect completed");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(start.elapsed() >= Duration::from_millis(500));
}

#[tokio::test]
async fn blackhole_hangs_tokio_connect_too() {
    let hole = testkit::tcp::Blackhole::start();
    let res = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(hole.addr()),
    )
    .await;
    assert!(res.is_err(), "connect finished: {res:?}");
}
