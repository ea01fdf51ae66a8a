//! Fetching a file over HTTP(S) and verifying its checksum before it becomes visible. A file is
//! streamed into a temporary name in the destination directory and renamed into place only
//! after the checksum matched, so an interrupted or corrupt download never leaves a file that a
//! reader would pick up.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use md5::Digest;

use crate::error::{Error, IoContext, Result};

/// The checksum a downloaded file must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum<'a> {
    /// Hex MD5, as published for the MNIST and CIFAR archives.
    Md5(&'a str),
    /// Hex SHA-256.
    Sha256(&'a str),
}

/// Downloads `url` to `dest`, verifying `checksum`. `on_progress(done, total)` is called as
/// bytes arrive (`total` is `None` when the server sends no length).
///
/// # Errors
/// [`Error::Download`] for network errors, HTTP errors and checksum mismatches (nothing is left
/// at `dest` then), [`Error::Io`] when the destination cannot be written.
pub fn download_verified(
    url: &str,
    dest: &Path,
    checksum: Checksum<'_>,
    on_progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<()> {
    let fail = |reason: String| Error::Download { url: url.to_string(), reason };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    let total = response.body().content_length();
    let mut body = response.into_body().into_reader();

    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).at(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".download-").tempfile_in(dir).at(dir)?;
    let mut hasher = Hasher::new(checksum);
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0u64;
    loop {
        let n = body.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).at(tmp.path())?;
        crate::crash::point("download-partial", Some(dest));
        done += n as u64;
        on_progress(done, total);
    }
    if let Some(total) = total.filter(|&t| t != done) {
        return Err(fail(format!("truncated: got {done} of {total} bytes")));
    }
    let (expected, actual) = hasher.finish(checksum);
    if !expected.eq_ignore_ascii_case(&actual) {
        return Err(fail(format!("checksum mismatch: expected {expected}, got {actual}")));
    }
    tmp.as_file().sync_all().at(tmp.path())?;
    tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Tries `fetch(url)` with `name` under each of `mirrors` in turn until one succeeds.
///
/// # Errors
/// [`Error::Download`] naming `name`, every mirror's failure, and `hint` (what to do without
/// internet) when all of them failed; any other error of `fetch` (a local I/O failure) at once.
pub fn from_mirrors(
    mirrors: &[String],
    name: &str,
    hint: &str,
    fetch: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<()> {
    let mut failures = Vec::new();
    for mirror in mirrors {
        match fetch(&format!("{}/{name}", mirror.trim_end_matches('/'))) {
            Ok(()) => return Ok(()),
            Err(Error::Download { url, reason }) => failures.push(format!("{url}: {reason}")),
            Err(other) => return Err(other),
        }
    }
    Err(Error::Download {
        url: name.to_string(),
        reason: format!("{}; {hint}", failures.join("; ")),
    })
}

/// Computes the checksum of a file already on disk, in lower-case hex.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read.
pub fn file_checksum(path: &Path, kind: Checksum<'_>) -> Result<String> {
    let mut file = File::open(path).at(path)?;
    let mut hasher = Hasher::new(kind);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).at(path)?;
        if n == 0 {
            return Ok(hasher.finish(kind).1);
        }
        hasher.update(&buf[..n]);
    }
}

enum Hasher {
    Md5(md5::Md5),
    Sha256(sha2::Sha256),
}

impl Hasher {
    fn new(kind: Checksum<'_>) -> Self {
        match kind {
            Checksum::Md5(_) => Hasher::Md5(md5::Md5::new()),
            Checksum::Sha256(_) => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
        }
    }

    /// Returns (expected, actual) as hex strings.
    fn finish<'a>(self, kind: Checksum<'a>) -> (&'a str, String) {
        let actual = match self {
            Hasher::Md5(h) => hex(&h.finalize()),
            Hasher::Sha256(h) => hex(&h.finalize()),
        };
        match kind {
            Checksum::Md5(expected) | Checksum::Sha256(expected) => (expected, actual),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    /// Serves `body` for every request on 127.0.0.1, `requests` times, declaring
    /// `declared_len` as Content-Length. Returns the base URL.
    pub(crate) fn serve(body: Vec<u8>, declared_len: usize, requests: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 2 {
                    line.clear();
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {declared_len}\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        url
    }

    const HELLO_MD5: &str = "5d41402abc4b2a76b9719d911017c592";

    #[test]
    fn downloads_and_verifies_md5() {
        let url = serve(b"hello".to_vec(), 5, 1);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/hello.txt");
        let mut seen = 0;
        download_verified(&url, &dest, Checksum::Md5(HELLO_MD5), &mut |done, _| seen = done)
            .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert_eq!(seen, 5);
        assert_eq!(file_checksum(&dest, Checksum::Md5("")).unwrap(), HELLO_MD5);
    }

    #[test]
    fn checksum_mismatch_leaves_nothing_behind() {
        let url = serve(b"hellO".to_vec(), 5, 1);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("hello.txt");
        let err = download_verified(&url, &dest, Checksum::Md5(HELLO_MD5), &mut |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("checksum mismatch: expected 5d41402a"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn truncated_body_is_an_error() {
        let url = serve(b"hel".to_vec(), 5, 1);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("hello.txt");
        let err = download_verified(&url, &dest, Checksum::Md5(HELLO_MD5), &mut |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("download of http://127.0.0.1"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
