//! Reading a run back from its `runs` and `examples` files, for `--resume`, and reading the
//! committed prefix of its `epochs` file.

use std::fs::File;
use std::path::Path;

use arrow::array::{Array, BooleanArray, RecordBatch, StringArray, UInt16Array, UInt32Array};
use arrow::compute::{concat_batches, filter_record_batch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::layout::{Layout, Table};
use super::schema::{RunStatus, col};
use crate::error::{Error, IoContext, Result};
use crate::record::{ExampleTable, RunInfo};

/// A run as stored: its configuration, how far it got, and its examples.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    /// The configuration it was started with.
    pub info: RunInfo,
    /// Running, complete or failed (with its error).
    pub status: RunStatus,
    /// Epochs committed.
    pub epochs_completed: u32,
    /// Its examples table.
    pub examples: ExampleTable,
}

/// Reads run `run_id` from the dataset root.
///
/// # Errors
/// [`Error::Config`] when the root has no such run; [`Error::Damaged`] when its files are not
/// what fstream writes.
pub fn read_run(layout: &Layout, run_id: &str) -> Result<StoredRun> {
    let runs_path = layout.run_file(Table::Runs, run_id);
    if !runs_path.is_file() {
        return Err(Error::Config(format!(
            "no run {run_id} under {} (expected {})",
            layout.root().display(),
            runs_path.display()
        )));
    }
    let runs = read_runs_row(&runs_path, run_id)?;
    let config = column::<StringArray>(&runs, col::CONFIG, &runs_path)?.value(0).to_string();
    let info: RunInfo = serde_json::from_str(&config)
        .map_err(|e| Error::damaged(&runs_path, format!("invalid config column: {e}")))?;
    if info.run_id.as_str() != run_id {
        return Err(Error::damaged(
            &runs_path,
            format!("its config column is run {}'s, not {run_id}'s", info.run_id),
        ));
    }
    let status = column::<StringArray>(&runs, col::STATUS, &runs_path)?.value(0);
    let error = runs
        .column_by_name("error")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .filter(|c| c.is_valid(0))
        .map(|c| c.value(0));
    let status =
        RunStatus::from_stored(status, error).map_err(|e| Error::damaged(&runs_path, e))?;
    let epochs_completed =
        column::<UInt32Array>(&runs, col::EPOCHS_COMPLETED, &runs_path)?.value(0);

    let examples_path = layout.run_file(Table::Examples, run_id);
    let examples = read_batch(&examples_path)?;
    let labels = |name| -> Result<Vec<u16>> {
        Ok(column::<UInt16Array>(&examples, name, &examples_path)?.values().to_vec())
    };
    let flags = |name| -> Result<Vec<bool>> {
        let column = column::<BooleanArray>(&examples, name, &examples_path)?;
        Ok(column.iter().map(|v| v == Some(true)).collect())
    };
    let examples = ExampleTable {
        original_labels: labels(col::ORIGINAL_LABEL)?,
        labels: labels(col::LABEL)?,
        in_training_set: flags(col::IN_TRAINING_SET)?,
        pixel_noisy: flags(col::PIXEL_NOISY)?,
        coarse_labels: examples
            .column_by_name(col::COARSE_LABEL)
            .and_then(|c| c.as_any().downcast_ref::<UInt16Array>())
            .filter(|c| c.null_count() == 0)
            .map(|c| c.values().to_vec()),
    };
    Ok(StoredRun { info, status, epochs_completed, examples })
}

/// The one row of the `runs` file `path`, which must be run `run_id`'s (the file's name): a
/// copy under another name would count its run twice.
///
/// # Errors
/// [`Error::Damaged`] naming the file when it is not a runs file of fstream's, or holds
/// another run's row or more than one.
pub(crate) fn read_runs_row(path: &Path, run_id: &str) -> Result<RecordBatch> {
    let row = read_batch(path)?;
    let stored = column::<StringArray>(&row, col::RUN_ID, path)?;
    if row.num_rows() != 1 || stored.value(0) != run_id {
        return Err(Error::damaged(
            path,
            format!(
                "holds {} row(s), of run {}: a runs file holds the one row of the run it is named after (a copy under another name would count that run twice); `fstream verify` lists the damage",
                row.num_rows(),
                stored.value(0)
            ),
        ));
    }
    Ok(row)
}

/// Every run of the dataset root, by run id (none when the root has no `runs` directory).
///
/// # Errors
/// As [`read_run`], for the first run that cannot be read.
pub fn read_all_runs(layout: &Layout) -> Result<Vec<StoredRun>> {
    let dir = layout.table_dir(Table::Runs);
    let mut ids: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".parquet").filter(|id| !id.starts_with('.')).map(String::from)
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(dir, e)),
    };
    ids.sort();
    ids.iter().map(|id| read_run(layout, id)).collect()
}

/// The rows of a run's `epochs` file up to epoch `last` (`None` when there are none).
///
/// # Errors
/// [`Error::Damaged`] when the file is not a valid epochs file.
pub fn read_epochs_prefix(path: &Path, last: u32) -> Result<Option<RecordBatch>> {
    if last == 0 || !path.is_file() {
        return Ok(None);
    }
    let batch = read_batch(path)?;
    let keep: BooleanArray = column::<UInt32Array>(&batch, col::EPOCH, path)?
        .iter()
        .map(|e| e.map(|e| e <= last))
        .collect();
    Ok(Some(filter_record_batch(&batch, &keep)?))
}

/// The whole file as one batch.
pub(crate) fn read_batch(path: &Path) -> Result<RecordBatch> {
    let bad = |e: &dyn std::fmt::Display| Error::damaged(path, e.to_string());
    let file = File::open(path).at(path)?;
    super::catching_panics(path, false, || {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad(&e))?;
        let schema = builder.schema().clone();
        let batches: Vec<RecordBatch> =
            builder.build().map_err(|e| bad(&e))?.collect::<Result<_, _>>().map_err(|e| bad(&e))?;
        Ok(concat_batches(&schema, &batches)?)
    })
}

/// Column `name` of `batch` as `T`, or an error naming `path`.
pub(crate) fn column<'a, T: Array + 'static>(
    batch: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::damaged(path, format!("missing or mistyped column '{name}'")))
}
