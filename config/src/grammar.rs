//! What some values may look like, in the words error messages use, and
//! the alphabet of names: shared by the raw stage (which reports a wrong
//! type) and validation (which reports a wrong value), so that neither
//! imports the other. Durations and sizes keep theirs beside their parsers.

/// Valid values of `ip_version`.
pub const IP_VERSION_VALID: &str = "\"auto\", 4 or 6";
/// Valid entries of `expect_status`.
pub const STATUS_VALID: &str =
    "a status code 100-599 such as 200, a class such as \"2xx\", or a range such as \"200-399\"";
/// Valid values of `fsync`.
pub const FSYNC_VALID: &str = "\"always\", \"never\" or a duration such as \"1s\"";

/// Characters allowed in check, gateway, agent and region names.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}
