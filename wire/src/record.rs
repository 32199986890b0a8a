//! The probe record: one probe's result, in integer milliseconds.
//!
//! Field meanings follow docs/DESIGN.md: phases are contiguous durations, an
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

/// Building records: a status with t and rt, then the fields a probe has.
/// `Record::up(t_ms, 250).with_sc(200).with_phases(12, 20, 25, 80)` is the
/// typical HTTPS probe of WIRE.md 1.1; a field never set stays absent.
impl Record {
    /// An up record: no status code, no phases, no error class yet.
    pub const fn up(t_ms: u64, rt_ms: u64) -> Record {
        Record {
            t_ms,
            rt_ms,
            sc: None,
            st: Status::Up,
            dn_ms: None,
            cn_ms: None,
            tl_ms: None,
            ft_ms: None,
            error: None,
        }
    }

    /// A down record that says why.
    pub const fn down(t_ms: u64, rt_ms: u64, error: ErrorClass) -> Record {
        Record {
            st: Status::Down,
            error: Some(error),
            ..Record::up(t_ms, rt_ms)
        }
    }

    /// An unknown record (the agent could not tell) that says why.
    pub const fn unknown(t_ms: u64, rt_ms: u64, error: ErrorClass) -> Record {
        Record {
            st: Status::Unknown,
            error: Some(error),
            ..Record::up(t_ms, rt_ms)
        }
    }

    /// With an HTTP status code.
    pub const fn with_sc(self, sc: u16) -> Record {
        Record {
            sc: Some(sc),
            ..self
        }
    }

    /// With all four phases, ms: DNS, connect, TLS, first byte.
    pub const fn with_phases(self, dn_ms: u64, cn_ms: u64, tl_ms: u64, ft_ms: u64) -> Record {
        Record {
            dn_ms: Some(dn_ms),
            cn_ms: Some(cn_ms),
            tl_ms: Some(tl_ms),
            ft_ms: Some(ft_ms),
            ..self
        }
    }

    /// With a DNS resolution time, ms.
    pub const fn with_dn(self, dn_ms: u64) -> Record {
        Record {
            dn_ms: Some(dn_ms),
            ..self
        }
    }

    /// With a TCP connect time, ms.
    pub const fn with_cn(self, cn_ms: u64) -> Record {
        Record {
            cn_ms: Some(cn_ms),
            ..self
        }
    }

    /// With a TLS handshake time, ms.
    pub const fn with_tl(self, tl_ms: u64) -> Record {
        Record {
            tl_ms: Some(tl_ms),
            ..self
        }
    }

    /// With a time to first byte, ms.
    pub const fn with_ft(self, ft_ms: u64) -> Record {
        Record {
            ft_ms: Some(ft_ms),
            ..self
        }
    }
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
    InsecureRedirect = 22, "insecure_redirect", "A redirect from https to http, which the check does not allow.";
}

/// How the first element of a record array is read: an absolute t
/// (standalone records) or a signed delta from the previous t (in frames).
#[derive(Clone, Copy)]
pub(crate) enum TimeBase {
    Absolute,
    DeltaFrom(u64),
}

/// Elements every record array has; the error class is the optional ninth.
const MIN_ELEMENTS: usize = 8;

impl Record {
    /// Appends the standalone encoding (WIRE.md, "Standalone record"):
    /// `[t, rt, sc, st, dn, cn, tl, ft]` plus the error class when there is
    /// one, each integer in its smallest encoding, nil for absent fields.
    /// `rmp_serde::to_vec(&record)` produces the same bytes.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        self.encode_with_t(out, None);
    }

    /// The standalone encoding in a new `Vec`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        self.encode_into(&mut out);
        out
    }

    /// Writes the record array; `delta` replaces t inside frames.
    #[inline]
    pub(crate) fn encode_with_t(&self, out: &mut Vec<u8>, delta: Option<i64>) {
        use crate::msgpack::{write_array_len, write_opt_uint, write_sint, write_uint};
        write_array_len(out, if self.error.is_some() { 9 } else { 8 });
        match delta {
            Some(d) => write_sint(out, d),
            None => write_uint(out, self.t_ms),
        }
        write_uint(out, self.rt_ms);
        write_opt_uint(out, self.sc.map(u64::from));
        write_uint(out, u64::from(self.st.code()));
        write_opt_uint(out, self.dn_ms);
        write_opt_uint(out, self.cn_ms);
        write_opt_uint(out, self.tl_ms);
        write_opt_uint(out, self.ft_ms);
        if let Some(class) = self.error {
            write_uint(out, u64::from(class.code()));
        }
    }

    /// Decodes one standalone record that fills `bytes` exactly. Unknown
    /// trailing elements inside the array are skipped; bytes after the
    /// array are an error.
    pub fn decode(bytes: &[u8]) -> Result<Record, crate::DecodeError> {
        let (record, used) = Record::decode_prefix(bytes)?;
        if used != bytes.len() {
            return Err(crate::DecodeError::TrailingBytes {
                offset: used,
                len: bytes.len() - used,
            });
        }
        Ok(record)
    }

    /// Decodes the standalone record at the start of `bytes` and returns it
    /// with the number of bytes it took, for records laid end to end.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Record, usize), crate::DecodeError> {
        let mut cursor = crate::msgpack::Cursor::new(bytes, 0);
        let record = Record::read(&mut cursor, TimeBase::Absolute)?;
        Ok((record, cursor.pos()))
    }

    /// Reads one record array at the cursor.
    #[inline]
    pub(crate) fn read(
        c: &mut crate::msgpack::Cursor<'_>,
        base: TimeBase,
    ) -> Result<Record, crate::DecodeError> {
        let at = c.offset();
        let len = c.array_len("a record")?;
        if len < MIN_ELEMENTS {
            return Err(crate::DecodeError::TooShort {
                offset: at,
                what: "a record",
                len,
                min: MIN_ELEMENTS,
            });
        }
        let t_ms = match base {
            TimeBase::Absolute => c.uint("t", u64::MAX)?,
            TimeBase::DeltaFrom(previous) => {
                let at = c.offset();
                let delta = c.sint("t delta")?;
                previous
                    .checked_add_signed(delta)
                    .ok_or(crate::DecodeError::TimeOutOfRange {
                        offset: at,
                        previous,
                        delta,
                    })?
            }
        };
        let rt_ms = c.uint("rt", u64::MAX)?;
        let sc = c.opt_uint("sc", u64::from(u16::MAX))?.map(|v| v as u16);
        let st_at = c.offset();
        let code = c.uint("st", u64::MAX)?;
        let st = u8::try_from(code).ok().and_then(Status::from_code).ok_or(
            crate::DecodeError::UnknownStatus {
                offset: st_at,
                code,
            },
        )?;
        let dn_ms = c.opt_uint("dn", u64::MAX)?;
        let cn_ms = c.opt_uint("cn", u64::MAX)?;
        let tl_ms = c.opt_uint("tl", u64::MAX)?;
        let ft_ms = c.opt_uint("ft", u64::MAX)?;
        let mut error = None;
        if len > MIN_ELEMENTS {
            // A code this reader does not know (from a newer agent) decodes
            // as no class: the record itself stays readable (WIRE.md).
            error = c
                .opt_uint("the error class", u64::MAX)?
                .and_then(|code| u8::try_from(code).ok())
                .and_then(ErrorClass::from_code);
            c.skip_values(len - MIN_ELEMENTS - 1)?;
        }
        Ok(Record {
            t_ms,
            rt_ms,
            sc,
            st,
            dn_ms,
            cn_ms,
            tl_ms,
            ft_ms,
            error,
        })
    }
}
