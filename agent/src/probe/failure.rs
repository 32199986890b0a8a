//! Why a probe failed: a stable error class (see `wire::ErrorClass`), the
//! phase it failed in, and a human detail for logs and `sonde probe`.
//!
//! Classification of the underlying library errors (io, rustls, hyper)
//! lives here, so the phases' code stays about timing; DNS outcomes are
//! classified by `dns` itself.

use std::io;

use wire::ErrorClass;

use super::phase::Phase;

/// A probe that did not get an acceptable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} in {}: {detail}", class.name(), phase.name())]
pub struct ProbeFailure {
    /// The stable class (`dns_nxdomain`, `connect_refused`, ...).
    pub class: ErrorClass,
    /// The phase the failure happened in.
    pub phase: Phase,
    /// What happened, for people.
    pub detail: String,
}

impl ProbeFailure {
    /// A failure of `class` in `phase`.
    pub(crate) fn new(class: ErrorClass, phase: Phase, detail: impl Into<String>) -> Self {
        ProbeFailure {
            class,
            phase,
            detail: detail.into(),
        }
    }

    /// The deadline expired while `phase` was open.
    pub(crate) fn deadline(phase: Phase) -> Self {
        let class = match phase {
            Phase::Dns => ErrorClass::DnsTimeout,
            // The tunnel is part of reaching the origin (the record's cn).
            Phase::Connect | Phase::Proxy => ErrorClass::ConnectTimeout,
            Phase::Tls | Phase::Ttfb | Phase::Body => ErrorClass::Timeout,
        };
        ProbeFailure::new(class, phase, "deadline expired")
    }

    /// True when the failure is the agent's, not the target's: the result
    /// is `unknown` rather than `down`.
    pub(crate) fn is_local(&self) -> bool {
        matches!(
            self.class,
            ErrorClass::Cancelled | ErrorClass::LocalResource
        )
    }
}

/// Classifies a failed TCP connect.
pub(crate) fn connect(err: &io::Error) -> ProbeFailure {
    let class = match err.kind() {
        io::ErrorKind::ConnectionRefused => ErrorClass::ConnectRefused,
        io::ErrorKind::TimedOut => ErrorClass::ConnectTimeout,
        io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable => {
            ErrorClass::ConnectUnreachable
        }
        _ if is_local_resource(err) => ErrorClass::LocalResource,
        _ => ErrorClass::ConnectError,
    };
    ProbeFailure::new(class, Phase::Connect, err.to_string())
}

/// Classifies a failed TLS handshake.
pub(crate) fn tls(err: &io::Error) -> ProbeFailure {
    use rustls::CertificateError as C;
    let class = match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(cert)) => match cert {
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => ErrorClass::TlsExpired,
            C::NotValidForName | C::NotValidForNameContext { .. } => ErrorClass::TlsHostname,
            C::UnknownIssuer
            | C::BadSignature
            | C::UnhandledCriticalExtension
            | C::InvalidPurpose
            | C::InvalidPurposeContext { .. }
            | C::ApplicationVerificationFailure => ErrorClass::TlsUntrusted,
            _ => ErrorClass::TlsHandshake,
        },
        _ => ErrorClass::TlsHandshake,
    };
    ProbeFailure::new(class, Phase::Tls, err.to_string())
}

/// Classifies a failed HTTP exchange, in `phase` (ttfb or body).
pub(crate) fn http(err: &hyper::Error, phase: Phase) -> ProbeFailure {
    // hyper wraps the io error; a reset or EOF before the response is as
    // much a protocol failure as garbage, from the user's side.
    let mut detail = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    ProbeFailure::new(ErrorClass::HttpProtocol, phase, detail)
}

pub(crate) fn is_local_resource(err: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL: the agent's own limits.
    matches!(err.raw_os_error(), Some(24 | 23 | 105 | 12 | 99))
        || err.kind() == io::ErrorKind::OutOfMemory
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_class_follows_the_open_phase() {
        assert_eq!(
            ProbeFailure::deadline(Phase::Dns).class,
            ErrorClass::DnsTimeout
        );
        assert_eq!(
            ProbeFailure::deadline(Phase::Connect).class,
            ErrorClass::ConnectTimeout
        );
        assert_eq!(
            ProbeFailure::deadline(Phase::Proxy).class,
            ErrorClass::ConnectTimeout
        );
        assert_eq!(
            ProbeFailure::deadline(Phase::Tls).class,
            ErrorClass::Timeout
        );
        assert_eq!(
            ProbeFailure::deadline(Phase::Body).class,
            ErrorClass::Timeout
        );
    }

    #[test]
    fn connect_errors_by_kind() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(connect(&refused).class, ErrorClass::ConnectRefused);
        let emfile = io::Error::from_raw_os_error(24);
        assert_eq!(connect(&emfile).class, ErrorClass::LocalResource);
        assert!(connect(&emfile).is_local());
    }

    #[test]
    fn tls_certificate_errors_by_cause() {
        let wrap = |e: rustls::CertificateError| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(e),
            )
        };
        assert_eq!(
            tls(&wrap(rustls::CertificateError::Expired)).class,
            ErrorClass::TlsExpired
        );
        assert_eq!(
            tls(&wrap(rustls::CertificateError::UnknownIssuer)).class,
            ErrorClass::TlsUntrusted
        );
        assert_eq!(
            tls(&wrap(rustls::CertificateError::NotValidForName)).class,
            ErrorClass::TlsHostname
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(tls(&reset).class, ErrorClass::TlsHandshake);
    }
}
