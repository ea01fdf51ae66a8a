//! Sorting and score files in the formats other tools read: the reference's sorting pickle
//! (`{'indices': [...], 'forgetting counts': [...]}`, which its `run_mnist.py` and
//! `run_cifar.py` load as `--sorting_file`), and a NumPy `.npy` vector with one value per
//! original example index (what data_diet and DeepCore users pass around).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::sorting::{Ranked, SortingFile};
use super::write_atomically;
use crate::error::{Error, IoContext, Result};

/// The reference's key for the ordered example indices.
const INDICES_KEY: &str = "indices";
/// The reference's key for the counts, in the same order.
const COUNTS_KEY: &str = "forgetting counts";

/// Writes `file` as the reference's sorting pickle: every example id by rank under
/// `'indices'`, and the values in the same order under `'forgetting counts'` (a score file's
/// under its score's name). Examples no counted run presented come last, as in `file`.
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write_reference_pickle(file: &SortingFile, path: &Path) -> Result<u64> {
    let indices: Vec<serde_pickle::Value> =
        file.example_ids.iter().map(|&id| serde_pickle::Value::I64(i64::from(id))).collect();
    let (key, values): (String, Vec<serde_pickle::Value>) = match &file.ranked {
        Ranked::ForgettingCounts(counts) => (
            COUNTS_KEY.into(),
            counts.iter().map(|&c| serde_pickle::Value::I64(i64::from(c))).collect(),
        ),
        Ranked::Score { name, values, .. } => {
            (name.clone(), values.iter().map(|&v| serde_pickle::Value::F64(v)).collect())
        }
    };
    let dict = BTreeMap::from([
        (
            serde_pickle::HashableValue::String(INDICES_KEY.into()),
            serde_pickle::Value::List(indices),
        ),
        (serde_pickle::HashableValue::String(key), serde_pickle::Value::List(values)),
    ]);
    write_atomically(path, |out| {
        serde_pickle::value_to_writer(
            out,
            &serde_pickle::Value::Dict(dict),
            serde_pickle::SerOptions::new(),
        )
        .map_err(|e| match e {
            serde_pickle::Error::Io(e) => Error::io(path, e),
            other => Error::format(path, other.to_string()),
        })
    })
    .map(|digest| digest.bytes)
}

/// Writes `file`'s values as a NumPy `.npy` float64 vector indexed by original example id
/// (NaN for examples no counted run presented).
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write_npy(file: &SortingFile, path: &Path) -> Result<u64> {
    let by_id: Vec<f64> = file.values_by_id().into_iter().map(|v| v.unwrap_or(f64::NAN)).collect();
    write_atomically(path, |out| {
        let bytes = npy_bytes(&by_id);
        out.write_all(&bytes).at(path)
    })
    .map(|digest| digest.bytes)
}

/// A `.npy` v1.0 file of a little-endian float64 vector: the magic, the version, the header
/// length and a header dict padded with spaces to a multiple of 64 bytes (newline last), then
/// the raw values.
fn npy_bytes(values: &[f64]) -> Vec<u8> {
    let mut header =
        format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({},), }}", values.len());
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for value in values {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorting() -> SortingFile {
        SortingFile {
            dataset: "mnist".into(),
            dataset_examples: 4,
            permutation_seed: None,
            data_sha256: None,
            runs: vec!["r".into()],
            example_ids: vec![2, 0, 3, 1],
            ranked: Ranked::ForgettingCounts(vec![0, 1, 4, 0]),
            presented: vec![true, true, true, false],
        }
    }

    #[test]
    fn the_pickle_is_the_references_dict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("order.pkl");
        write_reference_pickle(&sorting(), &path).unwrap();
        let value: serde_pickle::Value = serde_pickle::value_from_reader(
            std::fs::File::open(&path).unwrap(),
            serde_pickle::DeOptions::new(),
        )
        .unwrap();
        let serde_pickle::Value::Dict(dict) = value else { panic!("a dict") };
        let list = |key: &str| dict[&serde_pickle::HashableValue::String(key.into())].clone();
        let ints = |v: serde_pickle::Value| match v {
            serde_pickle::Value::List(items) => items
                .into_iter()
                .map(|i| match i {
                    serde_pickle::Value::I64(i) => i,
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(ints(list("indices")), vec![2, 0, 3, 1]);
        assert_eq!(ints(list("forgetting counts")), vec![0, 1, 4, 0]);
    }

    #[test]
    fn npy_holds_one_value_per_example_id() {
        let bytes = npy_bytes(&[1.5, f64::NAN]);
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"));
        assert!(header.ends_with('\n'));
        assert_eq!(f64::from_le_bytes(bytes[10 + header_len..][..8].try_into().unwrap()), 1.5);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counts.npy");
        write_npy(&sorting(), &path).unwrap();
        let written = std::fs::read(&path).unwrap();
        let data: Vec<f64> = written[written.len() - 32..]
            .chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        // By id: 0 has count 1, 1 was not presented, 2 has 0, 3 has 4.
        assert_eq!((data[0], data[2], data[3]), (1.0, 0.0, 4.0));
        assert!(data[1].is_nan());
    }
}
