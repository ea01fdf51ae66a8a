//! Sorting files: the order `fstream order` (or `fstream scores`) computes and `fstream train
//! --sorting-file` reads. A Parquet file with columns `example_id, forgetting_count, rank,
//! presented` (or `score` in place of `forgetting_count`), one row per dataset example, by
//! rank (examples no counted run presented come last, flagged), and key-value metadata naming
//! the dataset, its size and its pixel permutation, so a sorting file cannot be applied to the
//! wrong data. A CSV twin is written for humans.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, UInt32Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;

use super::schema::col;
use super::{StagedFiles, stage_parquet};
use crate::error::{Error, IoContext, Result};

const DATASET_KEY: &str = "fstream.dataset";
const DATASET_EXAMPLES_KEY: &str = "fstream.dataset_examples";
const RUNS_KEY: &str = "fstream.runs";
const PERMUTATION_SEED_KEY: &str = "fstream.permutation_seed";
const DATA_SHA256_KEY: &str = "fstream.data_sha256";
const SCORE_KEY: &str = "fstream.score";
const DIRECTION_KEY: &str = "fstream.direction";

/// What a sorting file ranks the examples by.
#[derive(Debug, Clone, PartialEq)]
pub enum Ranked {
    /// Forgetting counts, ascending (`fstream order`): column `forgetting_count`.
    ForgettingCounts(Vec<u32>),
    /// A per-example score (`fstream scores`): column `score`.
    Score {
        /// The score's name (`aum`, `confidence`, …).
        name: String,
        /// Highest first instead of lowest first.
        descending: bool,
        /// The score of each ranked example.
        values: Vec<f64>,
    },
}

impl Ranked {
    /// The value column's name.
    fn column(&self) -> &'static str {
        match self {
            Ranked::ForgettingCounts(_) => col::FORGETTING_COUNT,
            Ranked::Score { .. } => col::SCORE,
        }
    }

    /// The value of the example at `rank`, as the CSV writes it.
    fn text(&self, rank: usize) -> String {
        match self {
            Ranked::ForgettingCounts(counts) => counts[rank].to_string(),
            Ranked::Score { values, .. } => values[rank].to_string(),
        }
    }
}

/// An ordering of a dataset's examples: least forgotten first, or by a score.
#[derive(Debug, Clone, PartialEq)]
pub struct SortingFile {
    /// Dataset name.
    pub dataset: String,
    /// Examples in the dataset's training split.
    pub dataset_examples: usize,
    /// Permuted MNIST's pixel permutation seed (`None` for other datasets).
    pub permutation_seed: Option<u64>,
    /// The `data_sha256` fingerprint of the data its runs trained on (`None`: a file of an
    /// fstream before fingerprints were recorded in sorting files).
    pub data_sha256: Option<String>,
    /// Run ids the counts were summed over.
    pub runs: Vec<String>,
    /// Example ids by rank.
    pub example_ids: Vec<u32>,
    /// The value each ranked example is ranked by.
    pub ranked: Ranked,
    /// Whether any counted run presented each ranked example (false: removed in every run;
    /// its count is 0 and it is ranked last).
    pub presented: Vec<bool>,
}

impl SortingFile {
    /// Whether the file was counted over exactly the runs `runs` (in any order).
    pub fn counts_exactly(&self, runs: &[String]) -> bool {
        let sorted = |ids: &[String]| {
            let mut ids = ids.to_vec();
            ids.sort();
            ids
        };
        sorted(&self.runs) == sorted(runs)
    }

    /// Each example's value by example id (`None`: no counted run presented it).
    pub fn values_by_id(&self) -> Vec<Option<f64>> {
        let mut values = vec![None; self.dataset_examples];
        for (rank, (&id, &presented)) in self.example_ids.iter().zip(&self.presented).enumerate() {
            if presented {
                values[id as usize] = Some(match &self.ranked {
                    Ranked::ForgettingCounts(counts) => f64::from(counts[rank]),
                    Ranked::Score { values, .. } => values[rank],
                });
            }
        }
        values
    }

    /// The two files [`SortingFile::write`] writes: `<stem>.parquet` and `<stem>.csv`.
    pub fn paths(out_dir: &Path, stem: &str) -> [PathBuf; 2] {
        [out_dir.join(format!("{stem}.parquet")), out_dir.join(format!("{stem}.csv"))]
    }

    /// Writes `<stem>.parquet` and `<stem>.csv` as a pair: both are staged before either is
    /// renamed into place, so a failure (a full disk) leaves the previous pair or none.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Parquet`] when a file cannot be written.
    pub fn write(&self, out_dir: &Path, stem: &str) -> Result<()> {
        let ranks: Vec<u32> = (0..self.example_ids.len() as u32).collect();
        let values: ArrayRef = match &self.ranked {
            Ranked::ForgettingCounts(counts) => Arc::new(UInt32Array::from(counts.clone())),
            Ranked::Score { values, .. } => Arc::new(Float64Array::from(values.clone())),
        };
        let batch = RecordBatch::try_from_iter_with_nullable([
            (
                col::EXAMPLE_ID,
                Arc::new(UInt32Array::from(self.example_ids.clone())) as ArrayRef,
                false,
            ),
            (self.ranked.column(), values, false),
            (col::RANK, Arc::new(UInt32Array::from(ranks)), false),
            (col::PRESENTED, Arc::new(BooleanArray::from(self.presented.clone())), false),
        ])?;
        let mut metadata = vec![
            KeyValue::new(DATASET_KEY.into(), self.dataset.clone()),
            KeyValue::new(DATASET_EXAMPLES_KEY.into(), self.dataset_examples.to_string()),
            KeyValue::new(RUNS_KEY.into(), self.runs.join(",")),
        ];
        if let Some(seed) = self.permutation_seed {
            metadata.push(KeyValue::new(PERMUTATION_SEED_KEY.into(), seed.to_string()));
        }
        if let Some(fingerprint) = &self.data_sha256 {
            metadata.push(KeyValue::new(DATA_SHA256_KEY.into(), fingerprint.clone()));
        }
        if let Ranked::Score { name, descending, .. } = &self.ranked {
            let direction = if *descending { "descending" } else { "ascending" };
            metadata.push(KeyValue::new(SCORE_KEY.into(), name.clone()));
            metadata.push(KeyValue::new(DIRECTION_KEY.into(), direction.to_string()));
        }
        let [parquet_path, csv_path] = Self::paths(out_dir, stem);
        let mut files = StagedFiles::default();
        stage_parquet(&mut files, &parquet_path, &batch, metadata)?;
        files.stage(&csv_path, |file| {
            let write_rows = || -> std::io::Result<()> {
                let mut out = BufWriter::new(file);
                let header = [col::EXAMPLE_ID, self.ranked.column(), col::RANK, col::PRESENTED];
                writeln!(out, "{}", header.join(","))?;
                for (rank, (id, presented)) in
                    self.example_ids.iter().zip(&self.presented).enumerate()
                {
                    writeln!(out, "{id},{},{rank},{presented}", self.ranked.text(rank))?;
                }
                out.flush()
            };
            write_rows().at(&csv_path)
        })?;
        files.commit()
    }

    /// Reads a sorting file written by [`SortingFile::write`].
    ///
    /// # Errors
    /// [`Error::Format`] naming the file when it is not a valid fstream sorting file.
    pub fn read(path: &Path) -> Result<SortingFile> {
        super::catching_panics(path, true, || Self::read_file(path))
    }

    /// [`SortingFile::read`], where the Parquet reader may panic on a damaged file.
    fn read_file(path: &Path) -> Result<SortingFile> {
        let bad = |reason: String| Error::format(path, reason);
        let file = crate::input::open(path)?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| bad(format!("not a Parquet sorting file: {e}")))?;
        let metadata: Vec<KeyValue> =
            builder.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
        let value = |key: &str| {
            metadata.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()).ok_or_else(
                || {
                    bad(format!(
                        "missing metadata '{key}': not a sorting file written by fstream order"
                    ))
                },
            )
        };
        let dataset = value(DATASET_KEY)?;
        let dataset_examples = value(DATASET_EXAMPLES_KEY)?
            .parse()
            .map_err(|_| bad(format!("metadata '{DATASET_EXAMPLES_KEY}' is not a number")))?;
        let runs =
            value(RUNS_KEY)?.split(',').filter(|s| !s.is_empty()).map(String::from).collect();
        let permutation_seed =
            match value(PERMUTATION_SEED_KEY) {
                Ok(seed) => Some(seed.parse().map_err(|_| {
                    bad(format!("metadata '{PERMUTATION_SEED_KEY}' is not a number"))
                })?),
                Err(_) => None,
            };
        let data_sha256 = value(DATA_SHA256_KEY).ok();
        let score = value(SCORE_KEY).ok();
        let descending = value(DIRECTION_KEY).is_ok_and(|d| d == "descending");
        let reader = builder.build().map_err(|e| bad(e.to_string()))?;
        let (mut example_ids, mut forgetting_counts, mut scores, mut presented) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for batch in reader {
            let batch = batch.map_err(|e| bad(e.to_string()))?;
            // Files of earlier versions list presented examples only.
            match batch.column_by_name(col::PRESENTED) {
                Some(column) => {
                    let column = column
                        .as_any()
                        .downcast_ref::<BooleanArray>()
                        .ok_or_else(|| bad(format!("column '{}' is not bool", col::PRESENTED)))?;
                    presented.extend(column.iter().map(|p| p == Some(true)));
                }
                None => presented.extend(std::iter::repeat_n(true, batch.num_rows())),
            }
            example_ids
                .extend_from_slice(typed::<UInt32Array>(&batch, col::EXAMPLE_ID, path)?.values());
            match score {
                None => forgetting_counts.extend_from_slice(
                    typed::<UInt32Array>(&batch, col::FORGETTING_COUNT, path)?.values(),
                ),
                Some(_) => scores
                    .extend_from_slice(typed::<Float64Array>(&batch, col::SCORE, path)?.values()),
            }
        }
        let mut seen = vec![false; dataset_examples];
        for &id in &example_ids {
            match seen.get_mut(id as usize) {
                Some(s) if !*s => *s = true,
                Some(_) => return Err(bad(format!("example {id} appears twice"))),
                None => {
                    return Err(bad(format!(
                        "example {id} is outside the dataset's {dataset_examples} examples"
                    )));
                }
            }
        }
        let ranked = match score {
            None => Ranked::ForgettingCounts(forgetting_counts),
            Some(name) => Ranked::Score { name, descending, values: scores },
        };
        Ok(SortingFile {
            dataset,
            dataset_examples,
            permutation_seed,
            data_sha256,
            runs,
            example_ids,
            ranked,
            presented,
        })
    }
}

/// Warns that the sorting file `path` records no data fingerprint, so nothing can check that
/// it ranks the data it is used with.
pub fn warn_unfingerprinted(path: &Path) {
    log::warn!(
        "{}: records no data fingerprint (written by an older fstream or another tool): nothing checks that it ranks this data",
        path.display()
    );
}

/// Column `name` of a sorting file's batch as `T` ([`super::runs::column`]), without nulls.
fn typed<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a T> {
    let column = super::runs::column::<T>(batch, name, path)?;
    if column.null_count() > 0 {
        return Err(Error::format(path, format!("column '{name}' has nulls")));
    }
    Ok(column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_files_round_trip_with_csv() {
        let dir = tempfile::tempdir().unwrap();
        let sorting = SortingFile {
            dataset: "permuted_mnist".into(),
            dataset_examples: 4,
            permutation_seed: Some(7),
            data_sha256: Some("ab12".into()),
            runs: vec!["a".into(), "b".into()],
            example_ids: vec![2, 0, 3, 1],
            ranked: Ranked::ForgettingCounts(vec![0, 1, 4, 0]),
            presented: vec![true, true, true, false],
        };
        sorting.write(dir.path(), "order").unwrap();
        assert_eq!(SortingFile::read(&dir.path().join("order.parquet")).unwrap(), sorting);
        let csv = std::fs::read_to_string(dir.path().join("order.csv")).unwrap();
        assert_eq!(
            csv,
            "example_id,forgetting_count,rank,presented\n2,0,0,true\n0,1,1,true\n3,4,2,true\n1,0,3,false\n"
        );
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let sorting = SortingFile {
            dataset: "mnist".into(),
            dataset_examples: 4,
            permutation_seed: None,
            data_sha256: None,
            runs: vec![],
            example_ids: vec![1, 1],
            ranked: Ranked::ForgettingCounts(vec![0, 0]),
            presented: vec![true, true],
        };
        sorting.write(dir.path(), "order").unwrap();
        let err = SortingFile::read(&dir.path().join("order.parquet")).unwrap_err().to_string();
        assert!(err.contains("order.parquet: example 1 appears twice"), "{err}");
    }

    #[test]
    fn a_parquet_file_without_metadata_is_not_a_sorting_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.parquet");
        let batch =
            RecordBatch::try_from_iter([("x", Arc::new(UInt32Array::from(vec![1])) as ArrayRef)])
                .unwrap();
        crate::store::write_parquet_atomically(&path, &batch, vec![]).unwrap();
        let err = SortingFile::read(&path).unwrap_err().to_string();
        assert!(err.contains("missing metadata 'fstream.dataset'"), "{err}");
    }
}
