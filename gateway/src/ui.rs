//! The live page (`[ui]`, PROTOCOL.md 3.12): static assets embedded in the
//! binary (gateway/ui/, uPlot vendored under ui/vendor/), served at `/`
//! and `/ui/...`, and `/ui/config.json`, which tells the page which
//! regional gateways to read and, with `[ui.oidc]`, which identity
//! provider to sign in with. The page reads the regions with the reader
//! endpoints like any other client; nothing here sees a record or a token.

use std::sync::{Arc, OnceLock};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::config::{Ui, UiOidc};
use crate::state::App;

/// An embedded file: its name under `/ui/`, media type, bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $media:expr) => {
        Asset {
            name: $name,
            media_type: $media,
            bytes: include_bytes!(concat!("../ui/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("main.js", JS),
    asset!("oidc.js", JS),
    asset!("feed.js", JS),
    asset!("series.js", JS),
    asset!("classify.js", JS),
    asset!("overview.js", JS),
    asset!("check.js", JS),
    asset!("export.js", JS),
    asset!("format.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("vendor/uplot/uPlot.esm.js", JS),
    asset!("vendor/uplot/uPlot.min.css", "text/css; charset=utf-8"),
    asset!("vendor/uplot/LICENSE", "text/plain; charset=utf-8"),
];

/// Each asset's strong ETag: a digest of its bytes, computed once.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let d = ring::digest::digest(&ring::digest::SHA256, a.bytes);
                let hex: String = d.as_ref()[..12]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

/// What `/ui/config.json` tells the page.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PageConfig<'a> {
    /// This gateway's name.
    pub gateway: &'a str,
    /// The regions to read: `url` empty for this gateway (the page's origin).
    pub regions: Vec<PageRegion<'a>>,
    /// The identity provider to sign in with; null: a reader token.
    pub oidc: Option<PageOidc<'a>>,
}

/// `[ui.oidc]` as the page needs it (no secret: the page is a public
/// client, PKCE stands in for a client secret).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PageOidc<'a> {
    /// The issuer; discovery is `{issuer}/.well-known/openid-configuration`.
    pub issuer: &'a str,
    /// The page's client id.
    pub client_id: &'a str,
    /// The scopes to ask for.
    pub scopes: &'a [String],
    /// Origins besides the issuer's the page may fetch from (its CSP
    /// allows them): where a token endpoint elsewhere must be.
    pub connect_origins: &'a [String],
}

impl<'a> From<&'a UiOidc> for PageOidc<'a> {
    fn from(o: &'a UiOidc) -> Self {
        PageOidc {
            issuer: &o.issuer,
            client_id: &o.client_id,
            scopes: &o.scopes,
            connect_origins: &o.connect_origins,
        }
    }
}

/// One region of [`PageConfig`].
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PageRegion<'a> {
    /// Shown in the page.
    pub name: &'a str,
    /// Its origin; empty: the page's own.
    pub url: &'a str,
}

/// The page's configuration: `[ui] regions`, or this gateway alone,
/// named by its region (else its name).
pub fn page_config<'a>(ui: &'a Ui, name: &'a str, region: Option<&'a str>) -> PageConfig<'a> {
    let regions = if ui.regions.is_empty() {
        vec![PageRegion {
            name: region.unwrap_or(name),
            url: "",
        }]
    } else {
        ui.regions
            .iter()
            .map(|r| PageRegion {
                name: &r.name,
                url: &r.url,
            })
            .collect()
    };
    PageConfig {
        gateway: name,
        regions,
        oidc: ui.oidc.as_ref().map(PageOidc::from),
    }
}

/// The Content-Security-Policy of the page: its own scripts and styles
/// only, and connections to its own origin, the configured regions and,
/// with `[ui.oidc]`, the issuer's origin (discovery and the token
/// endpoint) and `connect_origins`. Going to the authorization endpoint
/// is a navigation, which `connect-src` does not govern.
fn content_security_policy(ui: &Ui) -> String {
    let mut connect = String::from("'self'");
    let provider = ui
        .oidc
        .iter()
        .flat_map(|o| std::iter::once(&o.issuer_origin).chain(o.connect_origins.iter()));
    for origin in ui.regions.iter().map(|r| &r.url).chain(provider) {
        connect.push(' ');
        connect.push_str(origin);
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
         connect-src {connect}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

fn serve(app: &App, name: &str, headers: &HeaderMap) -> Response {
    if !app.cfg.ui.enabled {
        return crate::server::not_found_response();
    }
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return crate::server::not_found_response();
    };
    let asset = &ASSETS[i];
    let tag = &etags()[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|h| crate::poll::none_match(h, tag));
    let mut r = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, asset.bytes).into_response()
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.media_type),
    );
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    // Revalidated on every load: a new gateway version is picked up at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if asset.name == "index.html"
        && let Ok(v) = HeaderValue::from_str(&content_security_policy(&app.cfg.ui))
    {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

/// `GET /`: the page.
pub(crate) async fn index(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    serve(&app, "index.html", &headers)
}

/// `GET /ui/{*path}`: its scripts, styles and the vendored chart library.
pub(crate) async fn asset(
    State(app): State<Arc<App>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(&app, &path, &headers)
}

/// `GET /ui/config.json`.
pub(crate) async fn config(State(app): State<Arc<App>>) -> Response {
    if !app.cfg.ui.enabled {
        return crate::server::not_found_response();
    }
    let id = &app.cfg.identity;
    let body = serde_json::to_vec(&page_config(&app.cfg.ui, &id.name, id.region.as_deref()))
        .unwrap_or_default();
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Region;

    #[test]
    fn this_gateway_alone_unless_regions_are_listed() {
        let alone = Ui::default();
        let c = page_config(&alone, "gw-1", Some("eu-west"));
        assert_eq!(
            c.regions,
            [PageRegion {
                name: "eu-west",
                url: ""
            }]
        );
        assert_eq!(page_config(&alone, "gw-1", None).regions[0].name, "gw-1");
        let listed = Ui {
            enabled: true,
            regions: vec![Region {
                name: "us".into(),
                url: "https://gw-us.example".into(),
            }],
            oidc: None,
        };
        assert_eq!(
            page_config(&listed, "gw-1", None).regions[0].url,
            "https://gw-us.example"
        );
        let csp = content_security_policy(&listed);
        assert!(
            csp.contains("connect-src 'self' https://gw-us.example;"),
            "{csp}"
        );
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert_eq!(page_config(&listed, "gw-1", None).oidc, None);
    }

    #[test]
    fn with_ui_oidc_the_page_is_told_the_provider_and_may_fetch_from_it() {
        let ui = Ui {
            enabled: true,
            regions: vec![Region {
                name: "us".into(),
                url: "https://gw-us.example".into(),
            }],
            oidc: Some(UiOidc {
                issuer: "https://login.example/realms/ops".into(),
                issuer_origin: "https://login.example".into(),
                client_id: "sonde-page".into(),
                scopes: vec!["openid".into(), "groups".into()],
                connect_origins: vec!["https://token.example:8443".into()],
            }),
        };
        let json = serde_json::to_value(page_config(&ui, "gw-1", None)).unwrap();
        assert_eq!(
            json["oidc"],
            serde_json::json!({
                "issuer": "https://login.example/realms/ops",
                "client_id": "sonde-page",
                "scopes": ["openid", "groups"],
                "connect_origins": ["https://token.example:8443"],
            })
        );
        let csp = content_security_policy(&ui);
        assert!(
            csp.contains(
                "connect-src 'self' https://gw-us.example https://login.example \
                 https://token.example:8443;"
            ),
            "{csp}"
        );
        let alone = serde_json::to_value(page_config(&Ui::default(), "gw-1", None)).unwrap();
        assert_eq!(alone["oidc"], serde_json::Value::Null);
    }

    #[test]
    fn every_asset_has_a_distinct_name_and_a_tag() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(!a.bytes.is_empty(), "{}", a.name);
            assert!(ASSETS[..i].iter().all(|b| b.name != a.name), "{}", a.name);
        }
        assert_eq!(etags().len(), ASSETS.len());
    }
}
