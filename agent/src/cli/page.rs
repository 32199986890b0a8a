//! The quickstart's live page: `sonde run` with no `--config` also starts
//! a single-region gateway (the `gateway` crate) in the same process and
//! runtime, on loopback, from the embedded examples/quickstart-gateway.toml,
//! and gives the quickstart agent a `[[sinks.gateway]]` pointing at it. A
//! newcomer opens the one URL printed and watches the checks live.
//!
//! The agent's and the reader's tokens are made at each start and reach
//! both configurations through a [`config::Host`] of their own
//! ([`TokenHost`]): nothing is written to disk or set in the process's
//! environment. The reader token travels in the URL's fragment, which a
//! browser never sends, so it never reaches a request log.
//!
//! Order: the gateway's listener is bound before the agent's plan is
//! loaded (the sink's URL names its port); the agent stops first, its
//! gateway sink sending what it still holds, then the gateway.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use config::{Secret, SecretSource};
use sonde::run::Supervisor;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The page's gateway configuration, built in.
pub const QUICKSTART_GATEWAY: &str = include_str!("../../../examples/quickstart-gateway.toml");
const ORIGIN: &str = "<embedded examples/quickstart-gateway.toml>";

/// The variable the embedded configurations name for the agent's token.
pub const AGENT_TOKEN_VAR: &str = "SONDE_QUICKSTART_AGENT_TOKEN";
/// The variable the embedded gateway configuration names for the page's.
pub const READER_TOKEN_VAR: &str = "SONDE_QUICKSTART_READER_TOKEN";

/// Random bytes in each token (256 bits).
const TOKEN_BYTES: usize = 32;

/// Why the page could not start; `sonde run` then exits 2.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The system's random source failed.
    #[error("making the live page's tokens: the system's random source failed")]
    Random,
    /// The embedded gateway configuration was refused (a build defect).
    #[error("the live page's gateway configuration: {0}")]
    Config(#[from] gateway::ConfigErrors),
    /// `--ui-listen` named an address other than loopback.
    #[error(
        "--ui-listen {0}: the live page is served without TLS, so only on a loopback \
         address (127.0.0.1, [::1])"
    )]
    NotLoopback(SocketAddr),
    /// The address is in use or not this machine's.
    #[error(
        "binding the live page to {addr}: {source} (choose another address with \
         --ui-listen, or run `sonde run -c examples/quickstart.toml` for the quickstart \
         without the page)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// The two variables the embedded configurations name, answered with the
/// tokens made at start; any other variable, and every file, is the
/// system's.
pub struct TokenHost {
    agent: Secret<String>,
    reader: Secret<String>,
}

impl TokenHost {
    /// Two fresh random tokens.
    fn generate() -> Result<TokenHost, PageError> {
        let secret = |var: &str| -> Result<Secret<String>, PageError> {
            let mut bytes = [0u8; TOKEN_BYTES];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .map_err(|_| PageError::Random)?;
            let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            Ok(Secret::new(SecretSource::Env(var.to_owned()), text))
        };
        Ok(TokenHost {
            agent: secret(AGENT_TOKEN_VAR)?,
            reader: secret(READER_TOKEN_VAR)?,
        })
    }
}

impl config::Host for TokenHost {
    fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        config::SystemHost.read_file(path)
    }

    fn var(&self, name: &str) -> Result<String, std::env::VarError> {
        match name {
            AGENT_TOKEN_VAR => Ok(self.agent.expose().clone()),
            READER_TOKEN_VAR => Ok(self.reader.expose().clone()),
            _ => config::SystemHost.var(name),
        }
    }
}

/// The page's gateway, its listener bound, not yet serving.
pub struct Page {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    cfg: gateway::GatewayConfig,
    host: Arc<TokenHost>,
}

impl Page {
    /// Makes the tokens, reads the embedded configuration and binds its
    /// `listen`, or `listen` when given (port 0: any free port).
    pub async fn bind(listen: Option<SocketAddr>) -> Result<Page, PageError> {
        let host = Arc::new(TokenHost::generate()?);
        let mut cfg = gateway::GatewayConfig::parse(QUICKSTART_GATEWAY, ORIGIN, &*host)?;
        if let Some(addr) = listen {
            if !addr.ip().is_loopback() {
                return Err(PageError::NotLoopback(addr));
            }
            cfg.listen = addr;
        }
        let bind_error = |source| PageError::Bind {
            addr: cfg.listen,
            source,
        };
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok(Page {
            listener,
            addr,
            cfg,
            host,
        })
    }

    /// Resolves the quickstart's secrets: the agent's token for its sink.
    pub fn host(&self) -> Arc<dyn config::Host + Send + Sync> {
        self.host.clone()
    }

    /// The `[[sinks.gateway]]` the quickstart gains, appended to its text.
    pub fn sink_toml(&self) -> String {
        format!(
            "\n# Added by `sonde run`: the live page's in-process gateway.\n\
             [[sinks.gateway]]\nname = \"page\"\nurl = \"http://{}/\"\n\
             token = {{ env = \"{AGENT_TOKEN_VAR}\" }}\n",
            self.addr
        )
    }

    /// The URL to open, the reader token in its fragment.
    pub fn url(&self) -> String {
        format!("http://{}/#token={}", self.addr, self.host.reader.expose())
    }

    /// Starts serving on the current runtime.
    pub fn start(self) -> Running {
        let Page { listener, cfg, .. } = self;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            // Reported when it happens: the agent goes on probing without it.
            let served = gateway::serve(listener, cfg, shutdown).await;
            if let Err(e) = &served {
                tracing::error!("the live page's gateway stopped: {e}");
            }
            served.is_ok()
        });
        Running { stop, task }
    }
}

/// The page's gateway, serving.
pub struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<bool>,
}

impl Running {
    /// Stops it (readers, then connections drained up to 5 s, the writer
    /// flushed); whether it ran and stopped without error (an error was
    /// logged when it happened).
    pub async fn stop(self) -> bool {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(clean) => clean,
            Err(e) => {
                tracing::error!("the live page's gateway task: {e}");
                false
            }
        }
    }
}

/// A supervisor that prints the page's URL once the agent is probing, then
/// tells `inner`.
pub struct Announce {
    /// The supervisor it stands in front of.
    pub inner: Arc<dyn Supervisor>,
    /// The page's URL.
    pub url: String,
    /// Log lines are JSON: the URL goes out as one more of them.
    pub json: bool,
}

impl Supervisor for Announce {
    fn ready(&self) {
        if self.json {
            tracing::info!(url = %self.url, "watch the quickstart live");
        } else {
            eprintln!("sonde: watch the quickstart live at {}", self.url);
        }
        self.inner.ready();
    }

    fn reloading(&self, done: bool) {
        self.inner.reloading(done);
    }

    fn stopping(&self) {
        self.inner.stopping();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_gateway_takes_the_quickstart_agent_and_serves_the_page() {
        let host = TokenHost::generate().unwrap();
        assert_ne!(host.agent.expose(), host.reader.expose());
        assert_eq!(host.agent.expose().len(), 43);
        let cfg = gateway::GatewayConfig::parse(QUICKSTART_GATEWAY, ORIGIN, &host).unwrap();
        assert!(cfg.listen.ip().is_loopback());
        assert!(cfg.ui.enabled);
        assert_eq!(cfg.tls, None);
        let quickstart = config::parse(super::super::run::QUICKSTART, "quickstart", &host).unwrap();
        assert_eq!(cfg.agents.len(), 1);
        assert_eq!(cfg.agents[0].id, quickstart.agent.id);
        assert_eq!(cfg.agents[0].token.expose(), host.agent.expose());
        assert_eq!(cfg.reader_tokens.len(), 1);
        assert_eq!(cfg.reader_tokens[0].token.expose(), host.reader.expose());
        assert!(cfg.reader_tokens[0].checks.is_empty());
        assert!(cfg.writer.data_dir.starts_with(&quickstart.agent.state_dir));
    }

    #[tokio::test]
    async fn the_quickstart_with_its_sink_streams_to_the_page_with_the_agent_token() {
        let page = Page::bind(Some(SocketAddr::from(([127, 0, 0, 1], 0))))
            .await
            .unwrap();
        assert_ne!(page.addr.port(), 0);
        let text = format!("{}{}", super::super::run::QUICKSTART, page.sink_toml());
        let plan = config::parse(&text, "quickstart + page", &*page.host()).unwrap();
        let [sink] = plan.sinks.gateways.as_slice() else {
            panic!("one gateway sink: {:?}", plan.sinks.gateways);
        };
        assert_eq!(
            sink.urls,
            [url::Url::parse(&format!("http://{}/", page.addr)).unwrap()]
        );
        assert_eq!(sink.token.expose(), page.host.agent.expose());
        let url = page.url();
        let fragment = format!("/#token={}", page.host.reader.expose());
        assert!(url.ends_with(&fragment), "{url}");
    }

    #[tokio::test]
    async fn the_page_listens_on_loopback_only_and_names_a_taken_address() {
        let wide = SocketAddr::from(([0, 0, 0, 0], 0));
        assert!(matches!(
            Page::bind(Some(wide)).await,
            Err(PageError::NotLoopback(a)) if a == wide
        ));
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        match Page::bind(Some(addr)).await {
            Err(e @ PageError::Bind { .. }) => {
                assert!(
                    e.to_string()
                        .starts_with(&format!("binding the live page to {addr}: ")),
                    "{e}"
                );
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("bound a taken address"),
        }
    }
}
