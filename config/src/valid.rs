//! What a value may look like: the "(valid: ...)" texts and the character
//! classes that both stages use, so that `raw` and `validate` share them
//! without importing each other.
//!
//! Grammars with their own parser (durations, sizes, statuses) keep their
//! text beside the parser.

/// Valid values of `ip_version`.
pub const IP_VERSION: &str = "\"auto\", 4 or 6";
/// Valid values of `fsync`.
pub const FSYNC: &str = "\"always\", \"never\" or a duration such as \"1s\"";
/// Valid check, gateway, agent and region names.
pub const NAME: &str = "1 to 64 characters from A-Z a-z 0-9 _ . -";

/// Characters allowed in check, gateway, agent and region names.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}
