//! The system's resolver configuration, read as glibc reads it: resolv.conf
//! (`nameserver`, `search`/`domain`, `options ndots: timeout: attempts:`)
//! and /etc/hosts, and the list of names a lookup tries (ndots and the
//! search list). Pure: text in, settings out; reading the files is the
//! caller's (and so is naming interfaces: a scoped IPv6 server such as
//! `fe80::1%eth0` needs the interface's index, [`system_ifindex`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use super::race::MAX_SERVERS;

/// glibc's defaults and caps (resolv.conf(5)).
const DEFAULT_TIMEOUT_S: u64 = 5;
const MAX_TIMEOUT_S: u64 = 30;
const DEFAULT_ATTEMPTS: u8 = 2;
const MAX_ATTEMPTS: u8 = 5;
const MAX_NDOTS: u8 = 15;

/// What resolv.conf says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvConf {
    /// Up to three servers, port 53 unless written `[addr]:port`.
    pub(crate) servers: Vec<SocketAddr>,
    /// The search list (the last `search` or `domain` line).
    pub(crate) search: Vec<String>,
    /// Names with at least this many dots are tried as written first.
    pub(crate) ndots: u8,
    /// How long one try waits for a server.
    pub(crate) timeout: Duration,
    /// Rounds over the server list.
    pub(crate) attempts: u8,
}

impl ResolvConf {
    /// Parses resolv.conf's text, naming interfaces with this host's
    /// indexes ([`ResolvConf::parse_with`]).
    pub(crate) fn parse(text: &str) -> ResolvConf {
        ResolvConf::parse_with(text, &system_ifindex)
    }

    /// Parses resolv.conf's text. Unknown keywords and options are ignored
    /// and bad values skipped, as glibc does; no server at all means the
    /// local host (127.0.0.1:53), as in glibc. A scoped IPv6 server
    /// (`fe80::1%eth0`, as NetworkManager writes it, or `%2`) gets the
    /// zone's index from `ifindex` (a number as written); an unknown zone
    /// leaves the scope 0, as glibc does (the server is then unreachable and
    /// skipped).
    pub(crate) fn parse_with(text: &str, ifindex: &dyn Fn(&str) -> Option<u32>) -> ResolvConf {
        let mut conf = ResolvConf {
            servers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_S),
            attempts: DEFAULT_ATTEMPTS,
        };
        for line in text.lines() {
            let line = line.trim_start();
            if line.starts_with(['#', ';']) {
                continue;
            }
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(addr) = words.next().and_then(|w| server_addr(w, ifindex))
                        && conf.servers.len() < MAX_SERVERS
                    {
                        conf.servers.push(addr);
                    }
                }
                Some("domain") => {
                    conf.search = words.next().map(normalise).into_iter().collect();
                }
                Some("search") => conf.search = words.map(normalise).collect(),
                Some("options") => {
                    for option in words {
                        conf.option(option);
                    }
                }
                _ => {}
            }
        }
        conf.search.retain(|d| !d.is_empty());
        if conf.servers.is_empty() {
            conf.servers
                .push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
        }
        conf
    }

    /// The defaults, as glibc uses them when resolv.conf is missing.
    pub(crate) fn missing() -> ResolvConf {
        ResolvConf::parse("")
    }

    fn option(&mut self, option: &str) {
        let Some((name, value)) = option.split_once(':') else {
            return;
        };
        let Ok(n) = value.parse::<u64>() else {
            return;
        };
        match name {
            "ndots" => self.ndots = u8::try_from(n.min(u64::from(MAX_NDOTS))).unwrap_or(MAX_NDOTS),
            "timeout" => self.timeout = Duration::from_secs(n.clamp(1, MAX_TIMEOUT_S)),
            "attempts" => {
                self.attempts =
                    u8::try_from(n.clamp(1, u64::from(MAX_ATTEMPTS))).unwrap_or(MAX_ATTEMPTS);
            }
            _ => {}
        }
    }
}

/// A server: an address (port 53), or `[address]:port` as OpenBSD's
/// resolv.conf allows (what a test server on an unprivileged port needs);
/// an IPv6 address may carry a zone (`%eth0`, `%2`).
fn server_addr(word: &str, ifindex: &dyn Fn(&str) -> Option<u32>) -> Option<SocketAddr> {
    let Some(bracketed) = word.strip_prefix('[') else {
        return scoped_ip(word, ifindex, 53);
    };
    let (ip, rest) = bracketed.split_once(']')?;
    let port = match rest.strip_prefix(':') {
        Some(port) => port.parse().ok()?,
        None if rest.is_empty() => 53,
        None => return None,
    };
    scoped_ip(ip, ifindex, port)
}

/// `ip` (IPv6 with an optional `%zone`) at `port`.
fn scoped_ip(ip: &str, ifindex: &dyn Fn(&str) -> Option<u32>, port: u16) -> Option<SocketAddr> {
    let Some((v6, zone)) = ip.split_once('%') else {
        return ip
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, port));
    };
    let v6 = v6.parse::<Ipv6Addr>().ok()?;
    let scope = zone
        .parse::<u32>()
        .ok()
        .or_else(|| ifindex(zone))
        .unwrap_or(0);
    Some(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)))
}

/// This host's index of interface `name` (Linux: sysfs; std has no
/// if_nametoindex). `None` if there is no such interface.
pub(crate) fn system_ifindex(name: &str) -> Option<u32> {
    if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
        return None;
    }
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")).ok()?;
    text.trim().parse().ok()
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// /etc/hosts: names to addresses, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Hosts {
    by_name: HashMap<String, Vec<IpAddr>>,
}

impl Hosts {
    /// Parses the hosts file's text: `address name [alias...]`, `#` comments.
    pub(crate) fn parse(text: &str) -> Hosts {
        let mut by_name: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut words = line.split_whitespace();
            let Some(Ok(addr)) = words.next().map(str::parse::<IpAddr>) else {
                continue;
            };
            for name in words {
                let entry = by_name.entry(normalise(name)).or_default();
                if !entry.contains(&addr) {
                    entry.push(addr);
                }
            }
        }
        Hosts { by_name }
    }

    /// The addresses of `name` (case-insensitive, trailing dot optional).
    pub(crate) fn lookup(&self, name: &str) -> Option<&[IpAddr]> {
        let name = name.trim_end_matches('.');
        match self.by_name.get(name) {
            Some(found) => Some(found),
            None if name.bytes().any(|b| b.is_ascii_uppercase()) => self
                .by_name
                .get(&name.to_ascii_lowercase())
                .map(Vec::as_slice),
            None => None,
        }
    }
}

/// The names a lookup of `host` tries, in order, as glibc's res_search: a
/// name with a trailing dot only as written; one with at least `ndots`
/// dots as written first, then with each search domain; a shorter one with
/// the search domains first, then as written. Every name ends with a dot.
pub(crate) fn candidates(host: &str, ndots: u8, search: &[String]) -> Vec<String> {
    if host.ends_with('.') {
        return vec![host.to_owned()];
    }
    let absolute = format!("{host}.");
    let dots = host.bytes().filter(|b| *b == b'.').count();
    let as_written_first = dots >= usize::from(ndots);
    let mut out = Vec::with_capacity(search.len() + 1);
    if as_written_first {
        out.push(absolute.clone());
    }
    out.extend(search.iter().map(|domain| format!("{host}.{domain}.")));
    if !as_written_first {
        out.push(absolute);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_as_glibc_reads_it() {
        let conf = ResolvConf::parse(
            "# comment\n; also\nnameserver 10.0.0.1\nnameserver ::1\n\
             nameserver [127.0.0.1]:5353\nnameserver 10.0.0.4\n\
             domain corp.example\nsearch A.example b.example.\n\
             options ndots:2 timeout:1 attempts:9 rotate\n",
        );
        let addrs: Vec<String> = conf.servers.iter().map(ToString::to_string).collect();
        assert_eq!(addrs, ["10.0.0.1:53", "[::1]:53", "127.0.0.1:5353"]);
        assert_eq!(conf.search, ["a.example", "b.example"]);
        assert_eq!(conf.ndots, 2);
        assert_eq!(conf.timeout, Duration::from_secs(1));
        assert_eq!(conf.attempts, 5, "capped as glibc caps it");
    }

    #[test]
    fn scoped_ipv6_servers_get_their_interfaces_index() {
        let ifindex = |name: &str| (name == "eth0").then_some(2);
        let conf = ResolvConf::parse_with(
            "nameserver fe80::1%eth0\nnameserver fe80::2%7\n\
             nameserver [fe80::3%eth0]:5353\n",
            &ifindex,
        );
        let scoped = |ip: &str, port, scope| {
            SocketAddr::V6(SocketAddrV6::new(ip.parse().unwrap(), port, 0, scope))
        };
        assert_eq!(
            conf.servers,
            [
                scoped("fe80::1", 53, 2),
                scoped("fe80::2", 53, 7),
                scoped("fe80::3", 5353, 2)
            ]
        );
        // An unknown zone: scope 0, as glibc leaves it (then unreachable).
        let conf = ResolvConf::parse_with("nameserver fe80::1%nope\n", &ifindex);
        assert_eq!(conf.servers, [scoped("fe80::1", 53, 0)]);
        // A zone on an IPv4 address is not an address.
        let conf = ResolvConf::parse_with("nameserver 10.0.0.1%eth0\n", &ifindex);
        assert_eq!(conf.servers, [SocketAddr::from(([127, 0, 0, 1], 53))]);
        // This host's loopback has an index.
        assert!(system_ifindex("lo").is_some() || !std::path::Path::new("/sys/class/net").exists());
        assert_eq!(system_ifindex("../lo"), None);
    }

    #[test]
    fn resolv_conf_defaults_are_glibcs() {
        let conf = ResolvConf::missing();
        assert_eq!(conf.servers, [SocketAddr::from(([127, 0, 0, 1], 53))]);
        assert_eq!(
            (conf.ndots, conf.timeout, conf.attempts),
            (1, Duration::from_secs(5), 2)
        );
        let conf = ResolvConf::parse("nameserver nonsense\noptions timeout:0 ndots:x\n");
        assert_eq!(conf.servers.len(), 1);
        assert_eq!(conf.timeout, Duration::from_secs(1));
        assert_eq!(conf.ndots, 1);
    }

    #[test]
    fn hosts_names_and_aliases() {
        let hosts = Hosts::parse(
            "127.0.0.1 localhost\n::1 localhost ip6-localhost # v6\n\
             10.1.2.3 Api.Test api # alias\nnot-an-ip name\n",
        );
        assert_eq!(
            hosts.lookup("localhost"),
            Some(&["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()][..])
        );
        assert_eq!(
            hosts.lookup("API.test."),
            Some(&["10.1.2.3".parse().unwrap()][..])
        );
        assert_eq!(hosts.lookup("name"), None);
    }

    #[test]
    fn candidates_follow_ndots_and_the_search_list() {
        let search = ["corp.example".to_owned(), "example".to_owned()];
        assert_eq!(
            candidates("api", 1, &search),
            ["api.corp.example.", "api.example.", "api."]
        );
        assert_eq!(
            candidates("api.test", 1, &search),
            ["api.test.", "api.test.corp.example.", "api.test.example."]
        );
        assert_eq!(
            candidates("api.test", 2, &search),
            ["api.test.corp.example.", "api.test.example.", "api.test."]
        );
        assert_eq!(candidates("api.test.", 1, &search), ["api.test."]);
        assert_eq!(candidates("api.test", 1, &[]), ["api.test."]);
    }
}
