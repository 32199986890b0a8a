//! The probe record: one probe's result, in integer milliseconds.
//!
//! Field meanings follow DESIGN.md: phases are contiguous durations, an
//! absent phase never started, `error` says why a `Down` result is down.

/// One probe's result. Durations are whole milliseconds from the monotonic
/// clock; `t_ms` is the wall-clock start in Unix epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Wall-clock start of the probe, Unix epoch milliseconds.
    pub t_ms: u64,
    /// Probe start to the last body byte (or to the failure).
    pub rt_ms: u64,
    /// HTTP status code; `None` when no response was received.
    pub sc: Option<u16>,
    /// Up, down or unknown.
    pub st: Status,
    /// DNS resolution; `None` when the host is an IP literal.
    pub dn_ms: Option<u64>,
    /// TCP connect; `None` when no connection was attempted.
    pub cn_ms: Option<u64>,
    /// TLS handshake; `None` for plain HTTP or when no handshake started.
    pub tl_ms: Option<u64>,
    /// Connection ready to first response byte; `None` when no request was sent.
    pub ft_ms: Option<u64>,
    /// Why the probe is down (or unknown); `None` for up results.
    pub error: Option<ErrorClass>,
}

/// The verdict of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The check's expectations held.
    Up,
    /// The target failed.
    Down,
    /// The agent could not tell, through no fault of the target.
    Unknown,
}

impl Status {
    /// The small integer this status has on the wire.
    pub fn code(self) -> u8 {
        match self {
            Status::Up => 0,
            Status::Down => 1,
            Status::Unknown => 2,
        }
    }

    /// The status for a wire code, if the code is known.
    pub fn from_code(code: u8) -> Option<Status> {
        match code {
            0 => Some(Status::Up),
            1 => Some(Status::Down),
            2 => Some(Status::Unknown),
            _ => None,
        }
    }

    /// The lowercase name used in JSON, CSV and logs.
    pub fn name(self) -> &'static str {
        match self {
            Status::Up => "up",
            Status::Down => "down",
            Status::Unknown => "unknown",
        }
    }
}

macro_rules! error_classes {
    ($($variant:ident = $code:literal, $name:literal, $doc:literal;)*) => {
        /// Why a probe was down (or unknown): a stable, documented set of
        /// short names, each with a fixed wire code. Codes are never reused.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorClass {
            $(#[doc = $doc] $variant,)*
        }

        impl ErrorClass {
            /// Every class, in code order.
            pub const ALL: &'static [ErrorClass] = &[$(ErrorClass::$variant,)*];

            /// The small integer this class has on the wire.
            pub fn code(self) -> u8 {
                match self { $(ErrorClass::$variant => $code,)* }
            }

            /// The class for a wire code, if the code is known.
            pub fn from_code(code: u8) -> Option<ErrorClass> {
                match code { $($code => Some(ErrorClass::$variant),)* _ => None }
            }

            /// The short snake_case name used in JSON, CSV, metrics and logs.
            pub fn name(self) -> &'static str {
                match self { $(ErrorClass::$variant => $name,)* }
            }

            /// The class for a short name, if the name is known.
            pub fn from_name(name: &str) -> Option<ErrorClass> {
                match name { $($name => Some(ErrorClass::$variant),)* _ => None }
            }
        }
    };
}

error_classes! {
    DnsNxdomain = 1, "dns_nxdomain", "The name does not exist (NXDOMAIN).";
    DnsServfail = 2, "dns_servfail", "The DNS server failed or refused the query (SERVFAIL, REFUSED).";
    DnsTimeout = 3, "dns_timeout", "No DNS answer before the deadline.";
    DnsNoAddress = 4, "dns_no_address", "The name exists but has no address of the wanted family.";
    DnsError = 5, "dns_error", "Any other DNS failure (no usable server, malformed answer).";
    ConnectRefused = 6, "connect_refused", "The target refused the TCP connection (RST).";
    ConnectTimeout = 7, "connect_timeout", "The TCP connection did not complete before the deadline.";
    ConnectUnreachable = 8, "connect_unreachable", "The network or host is unreachable.";
    ConnectError = 9, "connect_error", "Any other TCP connect failure.";
    TlsHandshake = 10, "tls_handshake", "The TLS handshake failed (alert, protocol, reset).";
    TlsUntrusted = 11, "tls_untrusted", "The certificate chain does not lead to a trusted root.";
    TlsExpired = 12, "tls_expired", "The certificate has expired or is not yet valid.";
    TlsHostname = 13, "tls_hostname", "The certificate is not valid for the host name.";
    HttpProtocol = 14, "http_protocol", "The response broke HTTP: garbage, a connection closed mid-message.";
    Timeout = 15, "timeout", "The deadline expired after the connection was up (TLS, first byte, body).";
    StatusCode = 16, "status", "The status code was not one of the expected ones.";
    Assertion = 17, "assertion", "The body assertion did not hold.";
    BodyTooLarge = 18, "body_too_large", "The body exceeded the size cap.";
    TooManyRedirects = 19, "too_many_redirects", "Redirects went past the hop limit.";
    Cancelled = 20, "cancelled", "The probe was cancelled (agent shutdown); status unknown.";
    LocalResource = 21, "local_resource", "The agent ran out of a local resource (sockets, memory); status unknown.";
}
