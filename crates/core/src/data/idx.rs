//! Reader for the IDX format of the MNIST files (raw or gzip-compressed). Validates the magic
//! number, the element type, the number of dimensions and the file size, and names the file in
//! every error. It knows nothing of what the arrays mean.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// The IDX element type code for unsigned bytes, the only one MNIST uses.
const UNSIGNED_BYTE: u8 = 0x08;

/// An n-dimensional array of bytes read from an IDX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Sizes of the dimensions, outermost first (`[N, 28, 28]` for MNIST images).
    pub dims: Vec<usize>,
    /// The elements in row-major order; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes with exactly `ndims` dimensions. Files whose content
/// starts with the gzip magic bytes are decompressed first.
///
/// # Errors
/// [`Error::Input`] when the file cannot be read, [`Error::Format`] (naming the file) for a wrong
/// magic number, element type or dimension count, or a size that does not match the header.
pub fn read_idx(path: &Path, ndims: usize) -> Result<IdxArray> {
    let raw = crate::input::read(path)?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| Error::format(path, format!("invalid gzip data: {e}")))?;
        out
    } else {
        raw
    };
    parse_idx(&bytes, ndims).map_err(|reason| Error::format(path, reason))
}

/// Parses IDX bytes; the error is a reason without the file name, added by [`read_idx`].
fn parse_idx(bytes: &[u8], ndims: usize) -> std::result::Result<IdxArray, String> {
    let header_len = 4 + 4 * ndims;
    if bytes.len() < 4 {
        return Err(format!("not an IDX file: only {} bytes", bytes.len()));
    }
    let (zeros, type_code, found_ndims) = (&bytes[..2], bytes[2], usize::from(bytes[3]));
    if zeros != [0, 0] || type_code != UNSIGNED_BYTE || found_ndims != ndims {
        let expected = 0x0800 + ndims;
        return Err(format!(
            "bad magic number 0x{:08x}: expected 0x{expected:08x} (unsigned bytes, {ndims} dimensions)",
            u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
        ));
    }
    if bytes.len() < header_len {
        return Err(format!("truncated header: {} bytes, expected {header_len}", bytes.len()));
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims.iter().product::<usize>();
    let data = &bytes[header_len..];
    if data.len() != expected {
        return Err(format!(
            "size mismatch: header says {dims:?} ({expected} bytes of data), file has {}",
            data.len()
        ));
    }
    Ok(IdxArray { dims, data: data.to_vec() })
}

/// Encodes an array as IDX bytes (unsigned byte elements). Used to write test fixtures and by
/// anyone who wants to hand fstream their own IDX data.
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, UNSIGNED_BYTE, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_images() {
        let data: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        let parsed = parse_idx(&encode_idx(&[2, 3, 4], &data), 3).unwrap();
        assert_eq!(parsed.dims, vec![2, 3, 4]);
        assert_eq!(parsed.data, data);
    }

    #[test]
    fn header_bytes_match_the_mnist_labels_magic() {
        let bytes = encode_idx(&[3], &[7, 2, 1]);
        assert_eq!(&bytes[..8], &[0, 0, 8, 1, 0, 0, 0, 3]);
    }

    #[test]
    fn rejects_wrong_magic() {
        let mut bytes = encode_idx(&[1], &[5]);
        bytes[2] = 0x0d;
        let err = parse_idx(&bytes, 1).unwrap_err();
        assert!(err.contains("bad magic number 0x00000d01: expected 0x00000801"), "{err}");
    }

    #[test]
    fn rejects_wrong_number_of_dimensions() {
        let err = parse_idx(&encode_idx(&[1], &[5]), 3).unwrap_err();
        assert!(err.contains("expected 0x00000803"), "{err}");
    }

    #[test]
    fn rejects_truncated_data() {
        let mut bytes = encode_idx(&[2, 2, 2], &[1; 8]);
        bytes.pop();
        let err = parse_idx(&bytes, 3).unwrap_err();
        assert!(err.contains("header says [2, 2, 2] (8 bytes of data), file has 7"), "{err}");
    }

    #[test]
    fn rejects_truncated_header() {
        let err = parse_idx(&[0, 0, 8, 3, 0, 0], 3).unwrap_err();
        assert!(err.contains("truncated header"), "{err}");
    }

    #[test]
    fn read_idx_decompresses_gzip_and_names_the_file_in_errors() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&encode_idx(&[2], &[4, 9])).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        assert_eq!(read_idx(&path, 1).unwrap().data, vec![4, 9]);

        let err = read_idx(&path, 3).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
    }
}
