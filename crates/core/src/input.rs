//! Reading the files a user names (SQL, sweep specs, sorting files, the reference's pickles,
//! dataset files): each must be a regular file, so that `/dev/zero` or a FIFO is an error
//! instead of a read that never ends, and text inputs are bounded in size.

use std::fs::File;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// The largest text input read whole (an SQL file, a sweep spec).
pub const MAX_TEXT_BYTES: u64 = 16 << 20;

/// Opens `path`, a regular file (symlinks followed).
///
/// # Errors
/// [`Error::Input`] when it cannot be opened; [`Error::Format`] naming it when it is a
/// directory, a device, a FIFO or a socket.
pub fn open(path: &Path) -> Result<File> {
    let metadata = std::fs::metadata(path).input(path)?;
    if !metadata.is_file() {
        let kind = if metadata.is_dir() { "a directory" } else { "a device, FIFO or socket" };
        return Err(Error::format(path, format!("is {kind}, not a regular file")));
    }
    File::open(path).input(path)
}

/// The bytes of `path`, a regular file.
///
/// # Errors
/// As [`open`].
pub fn read(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut open(path)?, &mut bytes).input(path)?;
    Ok(bytes)
}

/// The text of `path`, a regular UTF-8 file of at most [`MAX_TEXT_BYTES`].
///
/// # Errors
/// As [`open`]; [`Error::Format`] when it is larger or not UTF-8.
pub fn read_text(path: &Path) -> Result<String> {
    let file = open(path)?;
    let size = file.metadata().input(path)?.len();
    if size > MAX_TEXT_BYTES {
        return Err(Error::format(
            path,
            format!("{size} bytes: expected a text file of at most {MAX_TEXT_BYTES} bytes"),
        ));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut { file }, &mut text).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => Error::format(path, "not UTF-8 text"),
        _ => Error::Input { path: path.to_path_buf(), source: e },
    })?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read() {
        let err = read(Path::new("/dev/zero")).unwrap_err().to_string();
        assert_eq!(err, "/dev/zero: is a device, FIFO or socket, not a regular file");
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read_text(dir.path())
                .unwrap_err()
                .to_string()
                .ends_with("is a directory, not a regular file")
        );
        let file = dir.path().join("q.sql");
        std::fs::write(&file, "SELECT 1").unwrap();
        assert_eq!(read_text(&file).unwrap(), "SELECT 1");
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        assert!(read_text(&file).unwrap_err().to_string().ends_with("not UTF-8 text"));
    }
}
