//! The test PKI: validity windows are what was asked (for "days left"),
//! keys load into rustls, PEM files land on disk.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use testkit::pki::{Ca, Leaf, Validity};

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn validity_windows() {
    let ca = Ca::new();
    let now = SystemTime::now();
    let valid = ca.leaf(&["localhost"]);
    assert!(valid.not_before() < now && valid.not_after() > now + 89 * DAY);
    let expired = ca.leaf_with(&["localhost"], Validity::Expired);
    assert!(expired.not_after() < now);
    let future = ca.leaf_with(&["localhost"], Validity::NotYetValid);
    assert!(future.not_before() > now);

    let soon = ca.leaf_with(&["localhost"], Validity::ExpiresIn(10 * DAY));
    let left = soon.not_after().duration_since(now).expect("in the future");
    assert!(left > 9 * DAY && left <= 10 * DAY, "{left:?}");

    let exact = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
    let window = ca.leaf_with(
        &["127.0.0.1"],
        Validity::Window {
            not_before: UNIX_EPOCH + Duration::from_secs(1_000_000_000),
            not_after: exact + Duration::from_millis(999),
        },
    );
    assert_eq!(
        window.not_after(),
        exact,
        "whole seconds, as X.509 stores it"
    );
}

#[test]
fn an_intermediate_is_presented_after_the_leaf_and_verifies_to_the_root() {
    let root = Ca::new();
    let intermediate = root.intermediate("sonde test intermediate", Validity::ExpiresIn(10 * DAY));
    let leaf = intermediate.leaf_with(&["localhost"], Validity::ExpiresIn(300 * DAY));
    let chain = leaf.cert_chain();
    assert_eq!(chain.len(), 2);
    assert_eq!(&chain[1], intermediate.cert_der());
    assert!(intermediate.not_after() < leaf.not_after());
    assert!(leaf.chain_pem().ends_with(intermediate.cert_pem()));

    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        std::sync::Arc::new(root.root_store()),
        testkit::pki::provider(),
    )
    .build()
    .expect("a verifier");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let now = rustls::pki_types::UnixTime::now();
    use rustls::client::danger::ServerCertVerifier as _;
    verifier
        .verify_server_cert(&chain[0], &chain[1..], &name, &[], now)
        .expect("leaf → intermediate → root verifies");
    assert!(
        verifier
            .verify_server_cert(&chain[0], &[], &name, &[], now)
            .is_err(),
        "without the intermediate the leaf does not verify"
    );
}

#[test]
fn keys_load_into_rustls() {
    let ca = Ca::new();
    let leaf = ca.leaf(&["localhost", "::1", "127.0.0.1"]);
    let key = leaf.certified_key();
    assert!(key.keys_match().is_ok());
    let _server = leaf.server_config(&[b"h2"], Some(&ca));
    let _client = ca.client_config_with_cert(&[b"h2"], &ca.client_cert("probe"));
    let untrusted = Leaf::self_signed(&["localhost"], Validity::Valid);
    assert_ne!(untrusted.cert_der(), leaf.cert_der());
}

#[test]
fn pem_files_for_cacert_cert_key() {
    let ca = Ca::new();
    let client = ca.client_cert("probe");
    let files = ca.pem_files_with_client(&client);
    let read = |p: &std::path::Path| std::fs::read_to_string(p).expect("readable");
    assert_eq!(read(&files.ca_cert), ca.cert_pem());
    let cert = read(files.client_cert.as_deref().expect("client cert"));
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    let key = read(files.client_key.as_deref().expect("client key"));
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(files.ca_cert.starts_with(files.dir.path()));

    let only_ca = ca.pem_files();
    assert!(only_ca.client_cert.is_none() && only_ca.ca_cert.exists());
}

#[test]
fn require_tool_finds_installed_tools() {
    assert!(testkit::find_tool("sh").is_some());
    assert!(testkit::find_tool("no-such-tool-sonde").is_none());
    assert!(testkit::require_tool("sh"));
}
