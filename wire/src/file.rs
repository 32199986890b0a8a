//! The file header: eight bytes that say "this is a sonde wire file, of
//! this version". Frames follow it back to back; there is no index and no
//! footer, so a file can be appended to and read while it grows.

use crate::error::FileError;

/// The first seven bytes of a wire file: `\x89SONDE\n`. The high first byte
/// and the newline catch a file mangled by a text-mode transfer.
pub const FILE_MAGIC: [u8; 7] = *b"\x89SONDE\n";

/// The file version this crate writes and reads.
pub const FILE_VERSION: u8 = 1;

/// Length of the file header: the magic and the version byte.
pub const FILE_HEADER_LEN: usize = 8;

/// The header a writer puts at the start of a new file.
pub fn file_header() -> [u8; FILE_HEADER_LEN] {
    let mut header = [0u8; FILE_HEADER_LEN];
    header[..FILE_MAGIC.len()].copy_from_slice(&FILE_MAGIC);
    header[FILE_MAGIC.len()] = FILE_VERSION;
    header
}

/// Checks the header at the start of `bytes`; frames start at
/// [`FILE_HEADER_LEN`].
pub fn check_file_header(bytes: &[u8]) -> Result<(), FileError> {
    let magic_len = bytes.len().min(FILE_MAGIC.len());
    if bytes[..magic_len] != FILE_MAGIC[..magic_len] {
        return Err(FileError::BadMagic);
    }
    match bytes.get(FILE_MAGIC.len()) {
        None => Err(FileError::Incomplete { have: bytes.len() }),
        Some(&FILE_VERSION) => Ok(()),
        Some(&version) => Err(FileError::UnsupportedVersion { version }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        assert_eq!(check_file_header(&file_header()), Ok(()));
    }

    #[test]
    fn short_header_is_incomplete_and_wrong_one_is_bad() {
        assert_eq!(
            check_file_header(&file_header()[..3]),
            Err(FileError::Incomplete { have: 3 })
        );
        assert_eq!(
            check_file_header(b"PK\x03\x04...."),
            Err(FileError::BadMagic)
        );
        let mut v2 = file_header();
        v2[7] = 2;
        assert_eq!(
            check_file_header(&v2),
            Err(FileError::UnsupportedVersion { version: 2 })
        );
    }
}
