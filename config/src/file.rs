//! Reading a file the configuration consists of or points at (sonde.toml,
//! gateway.toml, secret and PEM files) with bounds: only a regular file,
//! at most [`MAX_FILE_BYTES`]. A FIFO, a device or a directory is refused
//! from its metadata before it is opened, and again from the opened file
//! (opened non-blocking, so a FIFO swapped in between cannot block the
//! open), so reading never blocks on a FIFO nor runs on through `/dev/zero`.

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
    read_opened(path)
}

/// Opens `path` and reads it if what was opened is a regular file: the
/// path may have been swapped for something else since its metadata was
/// looked at. Opened non-blocking, so a FIFO swapped in does not block
/// the open (a regular file ignores the flag).
fn read_opened(path: &Path) -> Result<Vec<u8>, FileError> {
    let file = open_nonblocking(path)?;
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

/// Opens `path` for reading with `O_NONBLOCK` where there is one.
fn open_nonblocking(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_swapped_in_after_the_metadata_check_does_not_block_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipping: mkfifo is not available");
            return;
        }
        let (done, outcome) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(matches!(
                read_opened(&fifo),
                Err(FileError::NotRegular { kind: "a FIFO" })
            ));
        });
        // Without O_NONBLOCK the open waits for a writer forever.
        let refused = outcome.recv_timeout(std::time::Duration::from_secs(5));
        assert_eq!(refused, Ok(true));
    }

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
