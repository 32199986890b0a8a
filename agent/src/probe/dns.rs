//! DNS: resolve a probe's host to addresses with hickory-resolver, the way a
//! fresh client would: the system configuration (/etc/resolv.conf) and
//! /etc/hosts, A and AAAA asked in parallel, no cache between probes.
//!
//! /etc/resolv.conf is read once per process; the resolver itself is built
//! per probe (so nothing is cached) before the DNS timer starts.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
    ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use wire::ErrorClass;

use super::IpVersion;
use super::failure::{self, ProbeFailure};
use super::phase::Phase;

/// The resolver configuration read from the system, once.
#[derive(Clone)]
pub(crate) struct SystemDns {
    system: Result<(ResolverConfig, ResolverOpts), String>,
}

impl SystemDns {
    /// Reads /etc/resolv.conf. A missing or broken file is not an error
    /// until a probe needs the system resolver.
    pub(crate) fn load() -> Self {
        SystemDns {
            system: hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| format!("reading /etc/resolv.conf: {e}")),
        }
    }

    /// A fresh resolver for one probe: the system's, or one asking only
    /// `server` (which then also skips /etc/hosts: the point of naming a
    /// server is to test that server).
    pub(crate) fn resolver(
        &self,
        server: Option<SocketAddr>,
        ip_version: IpVersion,
    ) -> Result<TokioResolver, ProbeFailure> {
        let (config, mut opts, hosts) = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                (
                    ResolverConfig::from_name_servers(vec![ns]),
                    ResolverOpts::default(),
                    ResolveHosts::Never,
                )
            }
            None => {
                let (config, opts) = self.system.clone().map_err(|detail| {
                    ProbeFailure::new(ErrorClass::DnsError, Phase::Dns, detail)
                })?;
                (config, opts, ResolveHosts::Always)
            }
        };
        opts.use_hosts_file = hosts;
        opts.cache_size = 0;
        opts.ip_strategy = match ip_version {
            IpVersion::Auto => LookupIpStrategy::Ipv6AndIpv4,
            IpVersion::V4 => LookupIpStrategy::Ipv4Only,
            IpVersion::V6 => LookupIpStrategy::Ipv6Only,
        };
        Resolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| failure::dns(&e))
    }
}

/// Resolves `host`; the addresses come back AAAA first, then A.
pub(crate) async fn lookup(
    resolver: &TokioResolver,
    host: &str,
) -> Result<Vec<IpAddr>, ProbeFailure> {
    match resolver.lookup_ip(host).await {
        Ok(found) => {
            let addrs: Vec<IpAddr> = found.iter().collect();
            if addrs.is_empty() {
                Err(ProbeFailure::new(
                    ErrorClass::DnsNoAddress,
                    Phase::Dns,
                    format!("{host} has no address"),
                ))
            } else {
                Ok(addrs)
            }
        }
        Err(e) => Err(failure::dns(&e)),
    }
}
