//! `[jetstream]`: the region's log is a NATS JetStream stream. Every
//! gateway replica of the region publishes what its agents send
//! ([`publish`]) and reads the whole stream back ([`follow`]) into its
//! hub, so any replica serves any reader with the same gseqs; history
//! reads the stream ([`history`]). [`layout`] is the pure part: subjects,
//! message ids, gseqs, the stream's settings. PROTOCOL.md 10 is the
//! contract.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use tokio::sync::watch;

use crate::config::{JetStream, NatsAuth};

pub mod follow;
pub mod history;
pub mod layout;
pub mod publish;

pub use layout::{RECORDS_PER_MESSAGE, gseq};

/// Why the gateway could not use its `[jetstream]`.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// `creds_file` could not be read.
    #[error("[jetstream] creds_file {}: {source}", path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The stream exists with settings gateway.toml does not ask for.
    #[error(
        "[jetstream] stream `{stream}` exists with other settings; change gateway.toml or the stream (nats stream edit {stream}):\n  {}",
        differences.join("\n  ")
    )]
    Mismatch {
        /// The stream.
        stream: String,
        /// One line per setting.
        differences: Vec<String>,
    },
    /// A JetStream request failed (kept trying at start; this is what a
    /// caller that gives up sees).
    #[error("[jetstream] {what}: {reason}")]
    Api {
        /// What was asked.
        what: String,
        /// What NATS said.
        reason: String,
    },
}

fn api(what: &str, e: impl std::fmt::Display) -> LogError {
    LogError::Api {
        what: what.into(),
        reason: e.to_string(),
    }
}

/// A replica's handle on the region's stream.
pub struct Log {
    pub(crate) js: jetstream::Context,
    pub(crate) stream: stream::Stream,
    pub(crate) settings: JetStream,
    pub(crate) region: String,
    /// The marks stream: each agent's mark, one message per agent (the
    /// newest), kept past the records' max_age.
    pub(crate) marks_stream: stream::Stream,
    pub(crate) marks: publish::Marks,
    /// The newest gseq the follower has put in the hub.
    head: watch::Sender<u64>,
}

/// How long a publish waits for JetStream's acknowledgement.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a start that cannot reach NATS tries again.
const OPEN_RETRY: Duration = Duration::from_secs(2);

impl Log {
    /// Connects, creates or checks the stream and the marks stream, and
    /// returns the handle; while NATS cannot be reached it keeps trying
    /// (logging each failure) until `stopping` resolves (then `None`). A
    /// stream with other settings is an error at once.
    pub async fn open(
        settings: &JetStream,
        region: &str,
        client_name: &str,
        stopping: impl Future<Output = ()>,
    ) -> Result<Option<Log>, LogError> {
        tokio::pin!(stopping);
        let client = connect(settings, client_name).await?;
        let js = jetstream::ContextBuilder::new()
            .timeout(PUBLISH_TIMEOUT)
            .build(client);
        loop {
            match Self::prepare(&js, settings, region).await {
                Ok((stream, marks_stream)) => {
                    let (head, _) = watch::channel(0);
                    return Ok(Some(Log {
                        js,
                        stream,
                        settings: settings.clone(),
                        region: region.to_owned(),
                        marks_stream,
                        marks: publish::Marks::default(),
                        head,
                    }));
                }
                Err(e @ LogError::Mismatch { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, servers = ?settings.servers, "jetstream: not ready, trying again");
                }
            }
            tokio::select! {
                () = &mut stopping => return Ok(None),
                () = tokio::time::sleep(OPEN_RETRY) => {}
            }
        }
    }

    async fn prepare(
        js: &jetstream::Context,
        settings: &JetStream,
        region: &str,
    ) -> Result<(stream::Stream, stream::Stream), LogError> {
        let want = layout::wanted(settings, region);
        let name = &settings.stream;
        let mut stream = match js.get_stream(name).await {
            Ok(s) => s,
            Err(e) if not_found(&e) => {
                let config = stream::Config {
                    name: name.clone(),
                    subjects: want.subjects.clone(),
                    num_replicas: want.replicas,
                    max_age: want.max_age,
                    max_bytes: want.max_bytes,
                    duplicate_window: want.duplicate_window,
                    storage: stream::StorageType::File,
                    retention: stream::RetentionPolicy::Limits,
                    discard: stream::DiscardPolicy::Old,
                    max_messages_per_subject: -1,
                    max_messages: -1,
                    description: Some(format!("sonde records of region {region}")),
                    ..Default::default()
                };
                match js.create_stream(config).await {
                    Ok(s) => {
                        tracing::info!(stream = %name, replicas = want.replicas, "jetstream: stream created");
                        s
                    }
                    // Another replica made it meanwhile: check that one.
                    Err(_) => js
                        .get_stream(name)
                        .await
                        .map_err(|e| api(&format!("creating stream {name}"), e))?,
                }
            }
            Err(e) => return Err(api(&format!("reading stream {name}"), e)),
        };
        let info = stream
            .info()
            .await
            .map_err(|e| api(&format!("reading stream {name}"), e))?;
        let c = &info.config;
        let have = layout::StreamShape {
            subjects: c.subjects.clone(),
            replicas: c.num_replicas,
            max_age: c.max_age,
            max_bytes: c.max_bytes,
            duplicate_window: c.duplicate_window,
            file_storage: c.storage == stream::StorageType::File,
            limits_retention: c.retention == stream::RetentionPolicy::Limits,
            max_messages_per_subject: c.max_messages_per_subject,
        };
        let differences = layout::differences(&have, &want);
        if !differences.is_empty() {
            return Err(LogError::Mismatch {
                stream: name.clone(),
                differences,
            });
        }
        let marks_name = format!("{name}-marks");
        let marks_subjects = layout::marks_subjects(&settings.subject_prefix, region);
        let marks = match js.get_stream(&marks_name).await {
            Ok(s) => s,
            Err(e) if not_found(&e) => {
                let config = stream::Config {
                    name: marks_name.clone(),
                    subjects: vec![marks_subjects],
                    num_replicas: want.replicas,
                    max_messages_per_subject: 1,
                    storage: stream::StorageType::File,
                    description: Some(format!("sonde agents' marks of stream {name}")),
                    ..Default::default()
                };
                match js.create_stream(config).await {
                    Ok(s) => s,
                    Err(_) => js
                        .get_stream(&marks_name)
                        .await
                        .map_err(|e| api(&format!("creating stream {marks_name}"), e))?,
                }
            }
            Err(e) => return Err(api(&format!("reading stream {marks_name}"), e)),
        };
        Ok((stream, marks))
    }

    /// The subject of `agent`'s messages.
    pub(crate) fn subject(&self, agent: &str) -> String {
        layout::subject(&self.settings.subject_prefix, &self.region, agent)
    }

    /// The frames of a message of the stream on `subject`, if a gateway
    /// could have published it ([`layout::message_frames`]).
    pub(crate) fn frames(
        &self,
        subject: &str,
        payload: &[u8],
    ) -> Result<Vec<wire::Frame>, layout::Foreign> {
        layout::message_frames(
            &self.settings.subject_prefix,
            &self.region,
            subject,
            payload,
        )
    }

    /// The subject of `agent`'s mark in the marks stream.
    pub(crate) fn marks_subject(&self, agent: &str) -> String {
        layout::marks_subject(&self.settings.subject_prefix, &self.region, agent)
    }

    /// The follower's progress: the newest gseq in the hub.
    pub(crate) fn advanced(&self, gseq: u64) {
        self.head.send_if_modified(|h| {
            let newer = gseq > *h;
            *h = (*h).max(gseq);
            newer
        });
    }

    /// Waits (at most `wait`) until the hub holds gseq `g`: a reader that
    /// comes from another replica with `since = g` may be ahead of this
    /// one's follower by a few messages. Whether it got there.
    pub(crate) async fn reached(&self, g: u64, wait: Duration) -> bool {
        let mut rx = self.head.subscribe();
        let reached = tokio::time::timeout(wait, rx.wait_for(|h| *h >= g)).await;
        matches!(reached, Ok(Ok(_)))
    }
}

fn not_found(e: &jetstream::context::GetStreamError) -> bool {
    use async_nats::jetstream::context::GetStreamErrorKind;
    matches!(e.kind(), GetStreamErrorKind::JetStream(j)
        if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

async fn connect(settings: &JetStream, name: &str) -> Result<async_nats::Client, LogError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("jetstream: connected to NATS"),
                async_nats::Event::Disconnected => {
                    tracing::warn!("jetstream: disconnected from NATS, reconnecting")
                }
                other => tracing::debug!(event = %other, "jetstream: NATS event"),
            }
        });
    options = match &settings.auth {
        NatsAuth::None => options,
        NatsAuth::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.expose().clone())
        }
        NatsAuth::Token(t) => options.token(t.expose().clone()),
        NatsAuth::NKey(seed) => options.nkey(seed.expose().trim().to_owned()),
        NatsAuth::CredsFile(path) => {
            options
                .credentials_file(path)
                .await
                .map_err(|source| LogError::Credentials {
                    path: path.clone(),
                    source,
                })?
        }
    };
    if let Some(ca) = &settings.ca_file {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some((cert, key)) = &settings.client_cert {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    let servers: Vec<async_nats::ServerAddr> = settings
        .servers
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    options
        .connect(servers.as_slice())
        .await
        .map_err(|e| api("connecting", e))
}
