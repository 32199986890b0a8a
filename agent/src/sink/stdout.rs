//! The stdout sink: one line per result, for people (`human`) or for pipes
//! (`json`, JSON Lines). Formatting is pure ([`human_line`], [`json_line`]);
//! the sink formats a batch into one buffer and writes it in a blocking
//! task, flushed per batch. A write that fails partway (ENOSPC on a
//! redirected stdout) is resumed where it stopped on the retry, so no line
//! is torn or printed twice. A closed stdout (EPIPE) stops this sink for
//! good (it never heals), never a panic; probing and the other sinks go on.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use config::StdoutFormat;
use serde::Serialize;
use wire::JsonRecord;

use super::{Sink, SinkError};
use crate::result::CheckResult;
use store::Utc;

/// Prints results to standard output (or any writer, for tests).
pub(crate) struct StdoutSink {
    format: StdoutFormat,
    /// `None` only while a blocking write holds it.
    out: Option<Box<dyn Write + Send>>,
    buf: Vec<u8>,
    /// Bytes of `buf` already written by a write that then failed: the
    /// driver retries the same batch, which resumes from here.
    written: usize,
}

impl StdoutSink {
    /// A sink printing to the process's standard output.
    pub(crate) fn new(format: StdoutFormat) -> StdoutSink {
        StdoutSink::with_writer(format, std::io::stdout())
    }

    /// A sink printing to `out`.
    pub(crate) fn with_writer(
        format: StdoutFormat,
        out: impl Write + Send + 'static,
    ) -> StdoutSink {
        StdoutSink {
            format,
            out: Some(Box::new(out)),
            buf: Vec::new(),
            written: 0,
        }
    }

    /// Writes the rest of `buf` (from `written`) to the writer and flushes
    /// it, in a blocking task; on failure `written` says how far it got.
    async fn flush_buf(&mut self) -> Result<(), SinkError> {
        let mut out = self
            .out
            .take()
            .ok_or_else(|| SinkError::Unusable { sink: "stdout" })?;
        let buf = std::mem::take(&mut self.buf);
        let from = self.written;
        let (out, buf, written, result) = tokio::task::spawn_blocking(move || {
            let (written, result) = write_from(&mut out, &buf, from);
            let result = result.and_then(|()| out.flush());
            (out, buf, written, result)
        })
        .await
        .map_err(|source| SinkError::Task {
            sink: "stdout",
            source,
        })?;
        self.out = Some(out);
        self.buf = buf;
        self.written = if result.is_ok() { 0 } else { written };
        result.map_err(|e| SinkError::io("writing to stdout", e))
    }
}

/// Writes `buf[from..]` to `out`, returning how much of `buf` is written
/// (a short write is continued; an error stops it there).
#[allow(
    clippy::disallowed_methods,
    reason = "counts what a short write took, to resume after an error"
)]
fn write_from(out: &mut dyn Write, buf: &[u8], from: usize) -> (usize, std::io::Result<()>) {
    let mut at = from.min(buf.len());
    while at < buf.len() {
        match out.write(&buf[at..]) {
            Ok(0) => return (at, Err(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (at, Err(e)),
        }
    }
    (at, Ok(()))
}

impl Sink for StdoutSink {
    fn name(&self) -> &'static str {
        "stdout"
    }

    async fn write(&mut self, batch: &[Arc<CheckResult>]) -> Result<u64, SinkError> {
        if batch.is_empty() {
            return Ok(0);
        }
        if self.written > 0 {
            // The retry of a batch whose write failed partway (the driver
            // hands the same batch again): finish it, nothing twice.
            let len = self.buf.len() as u64;
            self.flush_buf().await?;
            return Ok(len);
        }
        let mut text = String::new();
        for result in batch {
            match self.format {
                StdoutFormat::Human => text.push_str(&human_line(result)),
                StdoutFormat::Json => text.push_str(&json_line(result)),
            }
            text.push('\n');
        }
        self.buf.clear();
        self.buf.extend_from_slice(text.as_bytes());
        let len = self.buf.len() as u64;
        self.flush_buf().await?;
        Ok(len)
    }

    async fn tick(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    async fn close(mut self) -> Result<(), SinkError> {
        if self.written == 0 {
            self.buf.clear();
        }
        self.flush_buf().await
    }
}

/// Tenths of a millisecond, as `12.3`.
fn tenths(v: u64) -> String {
    format!("{}.{}", v / 10, v % 10)
}

/// One line for people, without the newline:
/// `2026-11-23T10:31:02.123Z api-health up 200 rt=12.3ms dns=1.2 connect=0.4 tls=3.1 ttfb=7.0`,
/// or for a failure
/// `2026-11-23T10:31:02.123Z api-health down connect_refused rt=0.7ms connect=0.6 (Connection refused)`.
/// Phases that did not run are left out; times are to 0.1 ms, rounded on
/// the phase boundaries so they still add up.
pub(crate) fn human_line(result: &CheckResult) -> String {
    let r = &result.record;
    let q = result.timings.quantized(Duration::from_micros(100));
    let mut line = format!(
        "{} {} {}",
        Utc::from_epoch_ms(r.t_ms).rfc3339(),
        result.check,
        r.st.name()
    );
    if let Some(error) = r.error {
        let _ = write!(line, " {}", error.name());
    }
    if let Some(sc) = r.sc {
        let _ = write!(line, " {sc}");
    }
    let _ = write!(line, " rt={}ms", tenths(q.total));
    for (name, phase) in [
        ("dns", q.dns),
        ("connect", q.connect),
        ("tls", q.tls),
        ("ttfb", q.ttfb),
    ] {
        if let Some(v) = phase {
            let _ = write!(line, " {name}={}", tenths(v));
        }
    }
    if let Some(detail) = result.detail.as_deref().filter(|d| !d.is_empty()) {
        let _ = write!(line, " ({})", detail.replace(['\n', '\r'], " "));
    }
    line
}

/// A JSON Lines object: the check, the record's fields (WIRE.md, "JSON":
/// the same shape as `sonde decode` and the gateway's readers get), and
/// why it failed for people.
#[derive(Serialize)]
struct JsonLine<'a> {
    check: &'a str,
    #[serde(flatten)]
    record: JsonRecord<'a>,
    detail: Option<&'a str>,
}

/// One JSON object, without the newline:
/// `{"check":"api-health","t":1795429862123,"rt":12,"sc":200,"st":"up","dn":1,...,"detail":null}`.
pub(crate) fn json_line(result: &CheckResult) -> String {
    let line = JsonLine {
        check: &result.check,
        record: JsonRecord(&result.record),
        detail: result.detail.as_deref(),
    };
    // Serializing this struct (strings and integers) cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Timings;
    use std::sync::Mutex;
    use wire::{ErrorClass, Record};

    fn us(v: u64) -> Duration {
        Duration::from_micros(v)
    }

    fn up() -> CheckResult {
        let timings = Timings {
            dns: Some(us(1_234)),
            connect: Some(us(400)),
            proxy: None,
            tls: Some(us(3_100)),
            ttfb: Some(us(7_011)),
            total: us(12_345),
        };
        CheckResult {
            check: Arc::from("api-health"),
            record: Record::up(1_795_429_862_123, 12)
                .with_sc(200)
                .with_phases(1, 0, 3, 7),
            timings,
            detail: None,
            facts: Default::default(),
            dns: None,
        }
    }

    fn refused() -> CheckResult {
        CheckResult {
            check: Arc::from("api-health"),
            record: Record::down(1_795_429_862_123, 1, ErrorClass::ConnectRefused).with_cn(1),
            timings: Timings {
                dns: None,
                connect: Some(us(650)),
                proxy: None,
                tls: None,
                ttfb: None,
                total: us(700),
            },
            detail: Some("Connection refused\n(os error 111)".to_owned()),
            facts: Default::default(),
            dns: None,
        }
    }

    #[test]
    fn human_up_and_down() {
        assert_eq!(
            human_line(&up()),
            "2026-11-23T10:31:02.123Z api-health up 200 rt=12.3ms dns=1.2 connect=0.4 tls=3.1 ttfb=7.0"
        );
        assert_eq!(
            human_line(&refused()),
            "2026-11-23T10:31:02.123Z api-health down connect_refused rt=0.7ms connect=0.7 (Connection refused (os error 111))"
        );
    }

    #[test]
    fn json_is_the_record_shape_with_check_and_detail() {
        let v: serde_json::Value = serde_json::from_str(&json_line(&up())).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "t": 1_795_429_862_123u64, "check": "api-health", "st": "up", "sc": 200,
                "rt": 12, "dn": 1, "cn": 0, "tl": 3, "ft": 7,
                "error": null, "detail": null,
            })
        );
        let line = json_line(&refused());
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["error"], "connect_refused");
        assert_eq!(v["dn"], serde_json::Value::Null);
        assert_eq!(v["cn"], 1);
        assert_eq!(v["rt"], 1);
        assert_eq!(v["detail"], "Connection refused\n(os error 111)");
        assert!(line.starts_with(
            r#"{"check":"api-health","t":1795429862123,"rt":1,"sc":null,"st":"down""#
        ));
    }

    /// A writer that appends to shared memory, or fails like a closed pipe.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>, bool);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.1 {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Takes `room` bytes, then fails once with ENOSPC (a redirected
    /// stdout on a full disk), then takes everything.
    struct FillsUp {
        out: Arc<Mutex<Vec<u8>>>,
        room: usize,
        failed: bool,
    }

    impl Write for FillsUp {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let mut out = self.out.lock().unwrap();
            if !self.failed && out.len() >= self.room {
                self.failed = true;
                return Err(std::io::ErrorKind::StorageFull.into());
            }
            let n = if self.failed {
                b.len()
            } else {
                b.len().min(self.room - out.len())
            };
            out.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A write that fails partway is an error (the driver retries the
    /// batch) and the retry resumes where it stopped: every line once,
    /// none torn.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_failing_partway_resumes_without_repeating() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let writer = FillsUp {
            out: out.clone(),
            room: 30,
            failed: false,
        };
        let mut sink = StdoutSink::with_writer(StdoutFormat::Human, writer);
        let batch = [Arc::new(up()), Arc::new(refused())];
        assert!(sink.write(&batch).await.is_err());
        sink.write(&batch).await.unwrap();
        sink.write(&batch[..1]).await.unwrap();
        sink.close().await.unwrap();
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let expected = format!(
            "{}\n{}\n{}\n",
            human_line(&up()),
            human_line(&refused()),
            human_line(&up())
        );
        assert_eq!(text, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_one_line_per_result_and_stops_on_a_closed_pipe() {
        let out = Shared::default();
        let mut sink = StdoutSink::with_writer(StdoutFormat::Json, out.clone());
        let batch = [Arc::new(up()), Arc::new(refused())];
        let n = sink.write(&batch).await.unwrap();
        sink.close().await.unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(n as usize, text.len());
        assert_eq!(text.lines().count(), 2);

        let mut sink = StdoutSink::with_writer(StdoutFormat::Human, Shared(Arc::default(), true));
        let err = sink.write(&batch).await.unwrap_err();
        assert!(
            matches!(err, SinkError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
        );
    }
}
