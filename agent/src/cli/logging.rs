//! Logging for the long-running subcommands (`run`, `gateway`, `alert`):
//! stderr, text or JSON lines, filtered by `RUST_LOG` (default info). When
//! stderr is the journal's stream (systemd's `$JOURNAL_STREAM` names its
//! device and inode), text lines leave the timestamp to journald and every
//! line starts with its syslog priority (`<3>`..`<7>`), which journald strips
//! and files the line under. It does not write to journald's native socket.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Log line format (`--log-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (with its own timestamp, also under journald).
    Json,
}

/// Sets up logging to stderr in `format` for the rest of the process (a
/// second call changes nothing).
pub fn init(format: LogFormat) {
    let journald = journald(std::env::var("JOURNAL_STREAM").ok().as_deref(), stderr_id());
    install(format, journald, std::io::stderr);
}

/// Installs the subscriber: `journald` as [`journald`] decided it.
fn install<W>(format: LogFormat, journald: bool, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false);
    let _ = match (format, journald) {
        (LogFormat::Json, false) => builder.json().try_init(),
        // JSON keeps its timestamp field: consumers of JSON logs read it
        // from the object; journald strips the prefix, the object stays whole.
        (LogFormat::Json, true) => builder.json().map_event_format(Prioritised).try_init(),
        (LogFormat::Text, true) => builder
            .without_time()
            .map_event_format(Prioritised)
            .try_init(),
        (LogFormat::Text, false) => builder.try_init(),
    };
}

/// Whether stderr is the journal's stream: `stream_var` is
/// `$JOURNAL_STREAM`, `device:inode` in decimal (systemd.exec(5)), and
/// `stderr` the device and inode of fd 2. A variable that is merely set
/// (inherited by a child whose stderr was redirected, say) is not enough.
fn journald(stream_var: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let named = stream_var.and_then(|v| {
        let (dev, ino) = v.split_once(':')?;
        Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?))
    });
    named.is_some() && named == stderr
}

/// The device and inode of stderr, as fstat(2) gives them (through a
/// duplicate of fd 2, so without `unsafe`).
fn stderr_id() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The syslog priority prefix journald reads for `level` (sd-daemon(3):
/// SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG).
fn priority(level: Level) -> &'static str {
    match level {
        Level::ERROR => "<3>",
        Level::WARN => "<4>",
        Level::INFO => "<6>",
        Level::DEBUG | Level::TRACE => "<7>",
    }
}

/// `text` with `prefix` before each of its lines: journald takes every
/// line as a record of its own, so a continuation line needs it too.
fn prefix_lines(prefix: &str, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + prefix.len());
    for line in text.split_inclusive('\n') {
        out.push_str(prefix);
        out.push_str(line);
    }
    out
}

/// An event format that writes `E`'s lines with the event's priority prefix.
struct Prioritised<E>(E);

impl<S, N, E> FormatEvent<S, N> for Prioritised<E>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    E: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut text = String::new();
        self.0.format_event(ctx, Writer::new(&mut text), event)?;
        let prefix = priority(*event.metadata().level());
        writer.write_str(&prefix_lines(prefix, &text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journald_only_when_the_variable_names_stderr() {
        assert!(journald(Some("2049:131074"), Some((2049, 131_074))));
        // Inherited by a process whose stderr went elsewhere.
        assert!(!journald(Some("2049:131074"), Some((2049, 131_075))));
        assert!(!journald(Some("2049:131074"), Some((2050, 131_074))));
        assert!(!journald(Some("2049:131074"), None));
        assert!(!journald(None, Some((2049, 131_074))));
        assert!(!journald(None, None));
    }

    #[test]
    fn a_garbled_journal_stream_is_not_journald() {
        for garbage in [
            "",
            ":",
            "2049",
            "2049:",
            ":131074",
            "a:b",
            "2049:131074:1",
            " 2049:131074",
            "-1:5",
            "99999999999999999999:1",
        ] {
            assert!(
                !journald(Some(garbage), Some((2049, 131_074))),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(priority(Level::ERROR), "<3>");
        assert_eq!(priority(Level::WARN), "<4>");
        assert_eq!(priority(Level::INFO), "<6>");
        assert_eq!(priority(Level::DEBUG), "<7>");
        assert_eq!(priority(Level::TRACE), "<7>");
    }

    #[test]
    fn every_line_gets_the_prefix() {
        assert_eq!(prefix_lines("<4>", "one\n"), "<4>one\n");
        assert_eq!(prefix_lines("<3>", "one\ntwo\n"), "<3>one\n<3>two\n");
        assert_eq!(prefix_lines("<6>", "no newline"), "<6>no newline");
        assert_eq!(prefix_lines("<6>", ""), "");
    }

    /// A writer into a shared buffer, for a subscriber under test.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(buf);
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;

        fn make_writer(&'w self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn journald_text_lines_are_prefixed_and_carry_no_timestamp() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buffer.clone())
            .with_ansi(false)
            .without_time()
            .map_event_format(Prioritised)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(sink = "file", "failing");
            tracing::error!("gone");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("<4> WARN "), "{text}");
        assert!(lines[0].ends_with("failing sink=\"file\""), "{text}");
        assert!(lines[1].starts_with("<3>ERROR "), "{text}");
    }
}
