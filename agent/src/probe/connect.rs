//! TCP connect: one socket per attempt, TCP_NODELAY set before connect(),
//! and under `auto` Happy Eyeballs (RFC 8305): the addresses interleaved by
//! family, attempts started 250 ms apart (or at once when one fails), the
//! first to connect wins and the others are dropped.
//!
//! The attempt order is a pure function (`attempt_order`), tested alone;
//! so is how late A addresses join the queue (`join_late`: interleaved).

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::net::{TcpSocket, TcpStream};

use super::IpVersion;

/// RFC 8305's recommended Connection Attempt Delay.
pub(crate) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// The order to try `addrs` in: filtered by `version`; under a preference
/// (`prefer4`, `prefer6`), the preferred family's addresses only, or the
/// other's when it has none (blackbox_exporter's `preferred_ip_protocol`
/// with `ip_protocol_fallback`); under `Auto`, the families interleaved
/// starting with the family of the first address (the resolver's
/// preference), as RFC 8305 section 4 describes.
pub(crate) fn attempt_order(addrs: &[IpAddr], version: IpVersion) -> Vec<IpAddr> {
    let of = |v6: bool| -> Vec<IpAddr> {
        addrs
            .iter()
            .copied()
            .filter(|ip| ip.is_ipv6() == v6)
            .collect()
    };
    let filtered: Vec<IpAddr> = match version {
        IpVersion::Auto => addrs.to_vec(),
        IpVersion::V4 => return of(false),
        IpVersion::V6 => return of(true),
        IpVersion::Prefer4 | IpVersion::Prefer6 => {
            let preferred = of(version == IpVersion::Prefer6);
            return if preferred.is_empty() {
                of(version == IpVersion::Prefer4)
            } else {
                preferred
            };
        }
    };
    let Some(first) = filtered.first() else {
        return filtered;
    };
    let first_v6 = first.is_ipv6();
    let (same, other): (Vec<IpAddr>, Vec<IpAddr>) = filtered
        .iter()
        .copied()
        .partition(|ip| ip.is_ipv6() == first_v6);
    interleave(same, other)
}

/// `first[0], second[0], first[1], second[1], …`, the longer one's rest
/// at the end.
fn interleave<T>(
    first: impl IntoIterator<Item = T>,
    second: impl IntoIterator<Item = T>,
) -> Vec<T> {
    let (mut first, mut second) = (first.into_iter(), second.into_iter());
    let mut out = Vec::new();
    loop {
        match (first.next(), second.next()) {
            (None, None) => break,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
    out
}

/// The attempts still to start once late addresses of the other family
/// came: interleaved with those queued, the first late one next (RFC 8305
/// section 4: the next attempt goes to the family not tried last).
fn join_late(queued: VecDeque<SocketAddr>, late: Vec<SocketAddr>) -> VecDeque<SocketAddr> {
    interleave(late, queued).into()
}

/// Connects to the first of `addrs` (already in attempt order) that
/// answers, racing them RFC 8305 style. Returns the stream and the address
/// that won, or the last attempt's error.
pub(crate) async fn connect(addrs: &[SocketAddr]) -> io::Result<(TcpStream, SocketAddr)> {
    match addrs {
        [] => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no address to connect to",
        )),
        // The common case: no racing machinery at all.
        [only] => attempt(*only).await.map(|s| (s, *only)),
        _ => race(addrs).await,
    }
}

async fn race(addrs: &[SocketAddr]) -> io::Result<(TcpStream, SocketAddr)> {
    let mut next = addrs.iter().copied();
    let mut running = FuturesUnordered::new();
    let mut last_error = None;
    if let Some(addr) = next.next() {
        running.push(tagged(addr));
    }
    let delay = tokio::time::sleep(ATTEMPT_DELAY);
    tokio::pin!(delay);
    loop {
        tokio::select! {
            finished = running.next(), if !running.is_empty() => {
                match finished {
                    Some((addr, Ok(stream))) => return Ok((stream, addr)),
                    Some((_, Err(e))) => {
                        last_error = Some(e);
                        // A failure starts the next attempt at once.
                        if let Some(addr) = next.next() {
                            running.push(tagged(addr));
                            delay.as_mut().reset(tokio::time::Instant::now() + ATTEMPT_DELAY);
                        } else if running.is_empty() {
                            break;
                        }
                    }
                    None => break,
                }
            }
            () = &mut delay, if next.len() > 0 => {
                if let Some(addr) = next.next() {
                    running.push(tagged(addr));
                }
                delay.as_mut().reset(tokio::time::Instant::now() + ATTEMPT_DELAY);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("every connection attempt failed")))
}

/// As [`connect`], while the lookup still waits for A after AAAA fixed the
/// list (RFC 8305 section 3): `late` gives A's addresses (already in
/// order) when they come, and they join the attempts — at once if every
/// attempt so far failed or the attempt delay has passed.
pub(crate) async fn connect_joining(
    addrs: &[SocketAddr],
    late: impl Future<Output = Vec<SocketAddr>>,
) -> io::Result<(TcpStream, SocketAddr)> {
    let mut late = pin!(late);
    let mut waiting_late = true;
    let mut queue: VecDeque<SocketAddr> = addrs.iter().copied().collect();
    let mut running = FuturesUnordered::new();
    let mut last_error = None;
    let mut start_next = true;
    let delay = tokio::time::sleep(ATTEMPT_DELAY);
    tokio::pin!(delay);
    loop {
        if start_next && let Some(addr) = queue.pop_front() {
            running.push(tagged(addr));
            delay
                .as_mut()
                .reset(tokio::time::Instant::now() + ATTEMPT_DELAY);
            start_next = false;
        }
        if running.is_empty() && queue.is_empty() && !waiting_late {
            break;
        }
        tokio::select! {
            finished = running.next(), if !running.is_empty() => {
                if let Some((addr, result)) = finished {
                    match result {
                        Ok(stream) => return Ok((stream, addr)),
                        // A failure starts the next attempt at once.
                        Err(e) => {
                            last_error = Some(e);
                            start_next = true;
                        }
                    }
                }
            }
            more = &mut late, if waiting_late => {
                waiting_late = false;
                queue = join_late(std::mem::take(&mut queue), more);
                start_next |= running.is_empty() || delay.is_elapsed();
            }
            () = &mut delay, if !queue.is_empty() => start_next = true,
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("every connection attempt failed")))
}

async fn tagged(addr: SocketAddr) -> (SocketAddr, io::Result<TcpStream>) {
    (addr, attempt(addr).await)
}

async fn attempt(addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_nodelay(true)?;
    socket.connect(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn interleaves_families_starting_with_the_first() {
        let addrs = [
            ip("::1"),
            ip("::2"),
            ip("10.0.0.1"),
            ip("10.0.0.2"),
            ip("10.0.0.3"),
        ];
        let order = attempt_order(&addrs, IpVersion::Auto);
        assert_eq!(
            order,
            vec![
                ip("::1"),
                ip("10.0.0.1"),
                ip("::2"),
                ip("10.0.0.2"),
                ip("10.0.0.3")
            ]
        );
    }

    #[test]
    fn late_addresses_are_interleaved_not_appended() {
        let sa = |s: &str| SocketAddr::new(ip(s), 80);
        // ::1 is being tried; ::2 and ::3 wait; A's two addresses come.
        let queued: VecDeque<SocketAddr> = [sa("::2"), sa("::3")].into();
        let joined = join_late(queued, vec![sa("10.0.0.1"), sa("10.0.0.2")]);
        assert_eq!(
            Vec::from(joined),
            vec![sa("10.0.0.1"), sa("::2"), sa("10.0.0.2"), sa("::3")]
        );
        // Nothing queued: the late ones in their order.
        let joined = join_late(VecDeque::new(), vec![sa("10.0.0.1")]);
        assert_eq!(Vec::from(joined), vec![sa("10.0.0.1")]);
    }

    #[test]
    fn version_preference_filters() {
        let addrs = [ip("::1"), ip("10.0.0.1")];
        assert_eq!(attempt_order(&addrs, IpVersion::V4), vec![ip("10.0.0.1")]);
        assert_eq!(attempt_order(&addrs, IpVersion::V6), vec![ip("::1")]);
        assert!(attempt_order(&[ip("::1")], IpVersion::V4).is_empty());
    }

    #[test]
    fn a_preference_narrows_to_its_family_and_falls_back_to_the_other() {
        let addrs = [ip("::1"), ip("10.0.0.1"), ip("::2"), ip("10.0.0.2")];
        assert_eq!(
            attempt_order(&addrs, IpVersion::Prefer4),
            vec![ip("10.0.0.1"), ip("10.0.0.2")]
        );
        assert_eq!(
            attempt_order(&addrs, IpVersion::Prefer6),
            vec![ip("::1"), ip("::2")]
        );
        let v6_only = [ip("::1"), ip("::2")];
        assert_eq!(
            attempt_order(&v6_only, IpVersion::Prefer4),
            v6_only.to_vec()
        );
        let v4_only = [ip("10.0.0.1")];
        assert_eq!(
            attempt_order(&v4_only, IpVersion::Prefer6),
            v4_only.to_vec()
        );
        assert!(attempt_order(&[], IpVersion::Prefer6).is_empty());
    }

    #[tokio::test]
    async fn second_family_wins_when_the_first_is_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await;
        let Ok(listener) = listener else { return };
        let good = listener.local_addr().ok();
        // A port on ::1 that nothing listens on (or ::1 absent): refused/unreachable.
        let bad: SocketAddr = "[::1]:1"
            .parse()
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 1)));
        let Some(good) = good else { return };
        let started = std::time::Instant::now();
        let (_, winner) = connect(&[bad, good])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(winner, good);
        // The failure started the second attempt at once, not after 250 ms.
        assert!(started.elapsed() < ATTEMPT_DELAY, "{:?}", started.elapsed());
    }
}
