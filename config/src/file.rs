//! Reading a file the configuration consists of or points at (sonde.toml,
//! gateway.toml, secret and PEM files) with bounds: only a regular file,
//! at most [`MAX_FILE_BYTES`]. A FIFO, a device or a directory is refused
//! from its metadata before it is opened, so reading never blocks on a
//! FIFO nor runs on through `/dev/zero`.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The largest configuration (or secret, or PEM) file read: 16 MiB.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Why a file was refused before or while reading it.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Not a regular file (after following symlinks).
    #[error("is {kind}, not a regular file")]
    NotRegular {
        /// What it is: "a FIFO", "a character device", "a directory", ...
        kind: &'static str,
    },
    /// Larger than [`MAX_FILE_BYTES`].
    #[error("is larger than {} MiB, the limit for a configuration file", MAX_FILE_BYTES >> 20)]
    TooLarge,
    /// The operating system's error.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<FileError> for io::Error {
    fn from(e: FileError) -> Self {
        match e {
            FileError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidInput, other),
        }
    }
}

/// What kind of non-regular file `file_type` is.
fn kind_of(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Reads the whole regular file at `path`, at most [`MAX_FILE_BYTES`].
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, FileError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(FileError::NotRegular {
            kind: kind_of(meta.file_type()),
        });
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(FileError::TooLarge);
    }
    let file = File::open(path)?;
    // Swapped for something else between the two looks: check what was opened.
    let opened = file.metadata()?;
    if !opened.is_file() {
        return Err(FileError::NotRegular {
            kind: kind_of(opened.file_type()),
        });
    }
    let mut bytes = Vec::new();
    // One byte past the cap tells a file that grew (or a /proc file
    // whose size says 0) from one that fits.
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::TooLarge);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sonde.toml");
        std::fs::write(&path, "[agent]\n").unwrap();
        assert_eq!(read_bounded(&path).unwrap(), b"[agent]\n");
    }

    #[test]
    fn devices_directories_and_fifos_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let refused = |path: &Path| match read_bounded(path) {
            Err(FileError::NotRegular { kind }) => kind,
            other => panic!("{path:?}: {other:?}"),
        };
        assert_eq!(refused(Path::new("/dev/zero")), "a character device");
        assert_eq!(refused(dir.path()), "a directory");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            // Would block forever if opened for reading with no writer.
            assert_eq!(refused(&fifo), "a FIFO");
        } else {
            eprintln!("skipping the FIFO case: mkfifo is not available");
        }
    }

    #[test]
    fn a_file_over_the_cap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.toml");
        let file = File::create(&path).unwrap();
        file.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert!(matches!(read_bounded(&path), Err(FileError::TooLarge)));
        file.set_len(MAX_FILE_BYTES).unwrap();
        assert_eq!(read_bounded(&path).unwrap().len() as u64, MAX_FILE_BYTES);
        let message = io::Error::from(FileError::TooLarge).to_string();
        assert_eq!(
            message,
            "is larger than 16 MiB, the limit for a configuration file"
        );
    }
}
