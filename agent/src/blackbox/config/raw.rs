//! The file as serde reads it: blackbox_exporter's keys and their YAML
//! types, nothing checked beyond that (unknown keys were refused by name
//! before, `deny_unknown_fields` is a backstop).

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) modules: BTreeMap<String, RawModule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModule {
    #[serde(default)]
    pub(super) prober: String,
    #[serde(default)]
    pub(super) timeout: Option<Scalar>,
    #[serde(default)]
    pub(super) http: RawHttp,
}

/// A YAML scalar Go would take as a number or text.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum Scalar {
    Int(u64),
    Text(String),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawHttp {
    pub(super) valid_status_codes: Vec<u16>,
    pub(super) valid_http_versions: Vec<String>,
    pub(super) preferred_ip_protocol: String,
    pub(super) ip_protocol_fallback: Option<bool>,
    pub(super) no_follow_redirects: Option<bool>,
    pub(super) follow_redirects: Option<bool>,
    pub(super) fail_if_ssl: bool,
    pub(super) fail_if_not_ssl: bool,
    pub(super) method: String,
    pub(super) headers: BTreeMap<String, String>,
    pub(super) fail_if_body_matches_regexp: Vec<String>,
    pub(super) fail_if_body_not_matches_regexp: Vec<String>,
    pub(super) fail_if_header_matches: Vec<RawHeaderMatch>,
    pub(super) fail_if_header_not_matches: Vec<RawHeaderMatch>,
    pub(super) body: String,
    pub(super) compression: String,
    pub(super) body_size_limit: Option<Scalar>,
    pub(super) tls_config: RawTls,
    pub(super) basic_auth: Option<RawBasicAuth>,
    pub(super) authorization: Option<RawAuthorization>,
    pub(super) bearer_token: Option<String>,
    pub(super) bearer_token_file: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawHeaderMatch {
    pub(super) header: String,
    pub(super) regexp: String,
    pub(super) allow_missing: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawTls {
    pub(super) ca_file: String,
    pub(super) cert_file: String,
    pub(super) key_file: String,
    pub(super) server_name: String,
    pub(super) insecure_skip_verify: bool,
    pub(super) min_version: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawBasicAuth {
    pub(super) username: String,
    pub(super) password: Option<String>,
    pub(super) password_file: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAuthorization {
    #[serde(rename = "type")]
    pub(super) scheme: Option<String>,
    pub(super) credentials: Option<String>,
    pub(super) credentials_file: Option<String>,
}
