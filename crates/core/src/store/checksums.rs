//! Content checksums of a run's committed files. When the writer commits a file it takes the
//! CRC-32 of its bytes, and the run's `runs` file, committed last, records them in its Parquet
//! footer (key [`CHECKSUMS_KEY`], JSON): the `examples`, `epochs` and `dynamics` files and each
//! epoch's presentations file. `fstream verify` compares them with the files (so a byte flipped
//! inside a column, which Parquet itself may read without complaint, is damage), and rebuilding
//! the dynamics refuses presentations that no longer match. Roots written before checksums were
//! recorded have none; their files are checked by structure only.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use parquet::file::metadata::KeyValue;
use parquet::file::reader::{FileReader, SerializedFileReader};

use super::layout::{Layout, Table};
use crate::error::{Error, IoContext, Result};

/// The footer key of a `runs` file that holds its run's checksums.
pub const CHECKSUMS_KEY: &str = "fstream.checksums";

/// The footer key under which the Parquet writer stores the Arrow schema.
const ARROW_SCHEMA_KEY: &str = "ARROW:schema";

/// The CRC-32 of each committed file of one run (`None`: not recorded).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Checksums {
    /// The `examples` file.
    pub examples: Option<u32>,
    /// The `epochs` file.
    pub epochs: Option<u32>,
    /// The `dynamics` file.
    pub dynamics: Option<u32>,
    /// Each committed epoch's presentations file, by epoch.
    pub presentations: BTreeMap<u32, u32>,
}

impl Checksums {
    /// The checksums a `runs` file records (`None` for a file written before they were). Its
    /// footer holds the Arrow schema and the checksums and nothing else: another key (one
    /// changed by a flipped bit, which would read as "none recorded") is damage.
    ///
    /// # Errors
    /// [`Error::Damaged`] naming the file when its footer cannot be read, has another key, or
    /// its value is not what fstream writes.
    pub fn read(runs_file: &Path) -> Result<Option<Checksums>> {
        let file = std::fs::File::open(runs_file).at(runs_file)?;
        let reader = super::catching_panics(runs_file, false, || {
            SerializedFileReader::new(file)
                .map_err(|e| Error::damaged(runs_file, format!("not a complete Parquet file: {e}")))
        })?;
        let metadata = reader.metadata().file_metadata().key_value_metadata();
        if let Some(other) = metadata
            .into_iter()
            .flatten()
            .find(|kv| kv.key != CHECKSUMS_KEY && kv.key != ARROW_SCHEMA_KEY)
        {
            return Err(Error::damaged(
                runs_file,
                format!(
                    "its footer has the key '{}', which fstream does not write (a damaged '{CHECKSUMS_KEY}'?); `fstream verify` lists the damage",
                    other.key
                ),
            ));
        }
        let Some(value) = metadata
            .and_then(|kvs| kvs.iter().find(|kv| kv.key == CHECKSUMS_KEY))
            .and_then(|kv| kv.value.as_deref())
        else {
            return Ok(None);
        };
        serde_json::from_str(value)
            .map(Some)
            .map_err(|e| Error::damaged(runs_file, format!("footer '{CHECKSUMS_KEY}': {e}")))
    }

    /// The checksums recorded for run `run_id` of `layout` (`None`: its `runs` file records
    /// none, an older fstream's, or there is no such file).
    ///
    /// # Errors
    /// As [`Checksums::read`].
    pub fn of_run(layout: &Layout, run_id: &str) -> Result<Option<Checksums>> {
        let path = layout.run_file(Table::Runs, run_id);
        if !path.is_file() {
            return Ok(None);
        }
        Checksums::read(&path)
    }

    /// What is missing or extra for a run that committed `epochs` epochs (`recorded`: with
    /// presentations and a dynamics file), as the reasons a finding or an error gives: a
    /// footer that records checksums records one for every committed file and no other, so
    /// that a damaged footer cannot switch a check off.
    pub fn gaps(&self, epochs: u32, recorded: bool) -> Vec<String> {
        let mut gaps = Vec::new();
        let mut need = |name: &str, present: bool| {
            if !present {
                gaps.push(format!("no checksum of its {name} file"));
            }
        };
        need("examples", self.examples.is_some());
        need("epochs", epochs == 0 || self.epochs.is_some());
        need("dynamics", !recorded || epochs == 0 || self.dynamics.is_some());
        if recorded {
            let missing: Vec<String> = (1..=epochs)
                .filter(|e| !self.presentations.contains_key(e))
                .map(|e| e.to_string())
                .collect();
            if !missing.is_empty() {
                gaps.push(format!(
                    "no checksum of the presentations of epochs {}",
                    missing.join(", ")
                ));
            }
        }
        let extra: Vec<String> = self
            .presentations
            .keys()
            .filter(|&&e| !recorded || e == 0 || e > epochs)
            .map(|e| e.to_string())
            .collect();
        if !extra.is_empty() {
            gaps.push(format!(
                "checksums of presentations of uncommitted epochs {}",
                extra.join(", ")
            ));
        }
        gaps
    }

    /// [`Checksums::gaps`] as an error naming the `runs` file.
    ///
    /// # Errors
    /// [`Error::Damaged`] naming `runs_file` when anything is missing or extra.
    pub fn check_complete(&self, runs_file: &Path, epochs: u32, recorded: bool) -> Result<()> {
        let gaps = self.gaps(epochs, recorded);
        if gaps.is_empty() {
            return Ok(());
        }
        Err(Error::damaged(
            runs_file,
            format!(
                "footer '{CHECKSUMS_KEY}' is damaged ({}); `fstream verify` lists the damage",
                gaps.join("; ")
            ),
        ))
    }

    /// Applies `update` to the checksums of run `run_id` and commits its `runs` file again
    /// with the same row (after a tool rewrote one of its files, such as `fstream rebuild`);
    /// nothing for a run that records none.
    ///
    /// # Errors
    /// As [`Checksums::read`]; [`Error::Io`] when the file cannot be written.
    pub fn update_run(
        layout: &Layout,
        run_id: &str,
        update: impl FnOnce(&mut Checksums),
    ) -> Result<()> {
        let path = layout.run_file(Table::Runs, run_id);
        let row = super::runs::read_batch(&path)?;
        // A run of an older fstream records none: it stays so (a partial footer would read
        // as a damaged one).
        let Some(mut checksums) = Checksums::read(&path)? else { return Ok(()) };
        update(&mut checksums);
        super::write_parquet_atomically(&path, &row, checksums.metadata()).map(|_| ())
    }

    /// The footer entry that records these checksums.
    pub fn metadata(&self) -> Vec<KeyValue> {
        let json = serde_json::to_string(self).expect("checksums are plain data");
        vec![KeyValue::new(CHECKSUMS_KEY.into(), json)]
    }

    /// The checksums of the files run `run` committed over its first `epochs` epochs, taken
    /// from the files as they are: for a run of an older fstream that is resumed, so that its
    /// footer from then on covers every file.
    ///
    /// # Errors
    /// [`Error::Io`] naming a file that cannot be read.
    pub fn of_files(
        layout: &Layout,
        run: &crate::record::RunInfo,
        epochs: u32,
    ) -> Result<Checksums> {
        let crc = |path: std::path::PathBuf| -> Result<Option<u32>> {
            if path.is_file() { file_crc32(&path).map(Some) } else { Ok(None) }
        };
        let mut checksums = Checksums {
            examples: crc(layout.run_file(Table::Examples, &run.run_id))?,
            epochs: crc(layout.run_file(Table::Epochs, &run.run_id))?,
            dynamics: None,
            presentations: BTreeMap::new(),
        };
        if run.record_presentations {
            checksums.dynamics = crc(layout.run_file(Table::Dynamics, &run.run_id))?;
            for epoch in 1..=epochs {
                let path = layout.presentations_file(run.dataset.name(), &run.run_id, epoch);
                if let Some(crc32) = crc(path)? {
                    checksums.presentations.insert(epoch, crc32);
                }
            }
        }
        Ok(checksums)
    }

    /// Only what covers the first `epochs` epochs (a run resumed after them).
    pub fn up_to(mut self, epochs: u32) -> Checksums {
        self.presentations.retain(|&epoch, _| epoch <= epochs);
        self
    }
}

/// The CRC-32 (IEEE) of the file at `path`.
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be read.
pub fn file_crc32(path: &Path) -> Result<u32> {
    let mut file = std::fs::File::open(path).at(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file.read(&mut buffer).at(path)?;
        if read == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&buffer[..read]);
    }
}

/// Checks `path` against its recorded checksum (nothing when none is recorded).
///
/// # Errors
/// [`Error::Damaged`] naming the file when its content differs from what was committed.
pub fn check_file(path: &Path, recorded: Option<u32>) -> Result<()> {
    let Some(recorded) = recorded else { return Ok(()) };
    let found = file_crc32(path)?;
    if found != recorded {
        return Err(Error::damaged(
            path,
            format!(
                "content changed after its commit (CRC-32 {found:08x}, recorded {recorded:08x}); `fstream verify` lists the damage"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_byte_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        std::fs::write(&path, b"PAR1 some committed bytes PAR1").unwrap();
        let crc = file_crc32(&path).unwrap();
        assert_eq!(crc, crc32fast::hash(b"PAR1 some committed bytes PAR1"));
        check_file(&path, Some(crc)).unwrap();
        check_file(&path, None).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[10] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
        let err = check_file(&path, Some(crc)).unwrap_err().to_string();
        assert!(err.contains("f.parquet: content changed after its commit"), "{err}");
    }

    #[test]
    fn checksums_round_trip_through_the_footer_value_and_cut_at_an_epoch() {
        let checksums = Checksums {
            examples: Some(1),
            epochs: Some(2),
            dynamics: None,
            presentations: BTreeMap::from([(1, 10), (2, 20), (3, 30)]),
        };
        let value = checksums.metadata()[0].value.clone().unwrap();
        assert_eq!(serde_json::from_str::<Checksums>(&value).unwrap(), checksums);
        assert_eq!(checksums.up_to(2).presentations, BTreeMap::from([(1, 10), (2, 20)]));
    }
}
