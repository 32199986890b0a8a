//! What a value may look like: the "(valid: ...)" texts and the character
//! classes that both stages use, so that `raw` and `validate` share them
//! without importing each other.
//!
//! Grammars with their own parser (durations, sizes, statuses) keep their
//! text beside the parser.

/// Valid values of `ip_version`.
pub const IP_VERSION: &str = "\"auto\", \"prefer4\", \"prefer6\", 4 or 6";
/// Valid values of `compression`.
pub const COMPRESSION: &str = "\"auto\", \"gzip\", \"br\", \"deflate\" or \"identity\"";
/// Valid values of `fsync`.
pub const FSYNC: &str = "\"always\", \"never\" or a duration such as \"1s\"";
/// Valid check, gateway, agent and region names.
pub const NAME: &str = "1 to 64 characters from A-Z a-z 0-9 _ . -";

/// The longest check, gateway, agent or region name, in characters.
pub const NAME_MAX_LEN: usize = 64;

/// Characters allowed in check, gateway, agent and region names.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Whether `s` is a valid check, gateway, agent or region name ([`NAME`]).
/// The one rule: the configuration and the gateway's ingest both use it.
pub fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= NAME_MAX_LEN && s.chars().all(is_name_char)
}
