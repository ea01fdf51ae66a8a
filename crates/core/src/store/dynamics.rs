//! The `dynamics` table on disk (`schemas/dynamics.md`): one file per run, one row per example
//! the run presented, replaced at each epoch commit. Its `epochs` column says how many epochs
//! the file covers. Also rebuilds a run's dynamics from its presentation files, for roots
//! written before the table existed and for a resume after a crash between two commit steps.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float32Array, Float64Array, RecordBatch, StringArray,
    UInt16Array, UInt32Array,
};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::checksums::{Checksums, check_file};
use super::layout::{Layout, Table};
use super::lock::lock_run;
use super::runs::{StoredRun, column, read_batch};
use super::schema::col;
use super::write_dynamics_file;
use crate::dynamics::{DynamicsColumns, RunDynamics};
use crate::error::{Error, IoContext, Result};
use crate::record::RunInfo;

/// The float sum columns, in table order.
pub const SUM_COLUMNS: [&str; 4] = ["loss_sum", "margin_sum", "p_label_sum", "p_label_sq_sum"];

/// The `dynamics` rows of a run: one per presented example, by example id. `labels` are the
/// labels trained on, by example id.
///
/// # Errors
/// [`crate::Error::Arrow`] on an internal schema error.
pub fn dynamics_batch(run_id: &str, dynamics: &RunDynamics, labels: &[u16]) -> Result<RecordBatch> {
    let c = &dynamics.columns;
    let rows: Vec<usize> = (0..c.len()).filter(|&i| c.presentations[i] > 0).collect();
    let n = rows.len();
    let u32s = |values: &[u32]| -> ArrayRef {
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|&i| values[i])))
    };
    // 0 means "no such epoch": stored as null.
    let epochs_or_null = |values: &[u32]| -> ArrayRef {
        Arc::new(rows.iter().map(|&i| Some(values[i]).filter(|&e| e > 0)).collect::<UInt32Array>())
    };
    let f64s = |values: &[f64]| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|&i| values[i])))
    };
    Ok(RecordBatch::try_from_iter_with_nullable([
        (col::RUN_ID, Arc::new(StringArray::from(vec![run_id; n])) as ArrayRef, false),
        (
            col::EXAMPLE_ID,
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|&i| i as u32))),
            false,
        ),
        (
            col::LABEL,
            Arc::new(UInt16Array::from_iter_values(rows.iter().map(|&i| labels[i]))),
            false,
        ),
        (col::EPOCHS, Arc::new(UInt32Array::from(vec![dynamics.epochs(); n])), false),
        (col::PRESENTATIONS, u32s(&c.presentations), false),
        (col::CORRECT_PRESENTATIONS, u32s(&c.correct_presentations), false),
        (col::FORGETTING_EVENTS, u32s(&c.forgetting_events), false),
        ("first_correct_epoch", epochs_or_null(&c.first_correct_epoch), true),
        ("last_incorrect_epoch", epochs_or_null(&c.last_incorrect_epoch), true),
        (
            "last_correct",
            Arc::new(rows.iter().map(|&i| Some(c.last_correct[i])).collect::<BooleanArray>()),
            false,
        ),
        (SUM_COLUMNS[0], f64s(&c.loss_sum), false),
        (SUM_COLUMNS[1], f64s(&c.margin_sum), false),
        (SUM_COLUMNS[2], f64s(&c.p_label_sum), false),
        (SUM_COLUMNS[3], f64s(&c.p_label_sq_sum), false),
    ])?)
}

/// Reads a run's committed dynamics file back, over a dataset of `num_examples` examples
/// (`None` when the run has none).
///
/// # Errors
/// [`Error::Damaged`] naming the file when it is not a dynamics file of that dataset.
pub fn read_dynamics(
    layout: &Layout,
    run_id: &str,
    num_examples: usize,
) -> Result<Option<RunDynamics>> {
    let path = layout.run_file(Table::Dynamics, run_id);
    if !path.is_file() {
        return Ok(None);
    }
    let batch = read_batch(&path)?;
    let u32s = |name| column::<UInt32Array>(&batch, name, &path);
    let f64s = |name| column::<Float64Array>(&batch, name, &path);
    let epochs = u32s(col::EPOCHS)?;
    let ids = u32s(col::EXAMPLE_ID)?;
    let mut c = DynamicsColumns::zeroed(num_examples);
    let (presentations, correct, events) = (
        u32s(col::PRESENTATIONS)?,
        u32s(col::CORRECT_PRESENTATIONS)?,
        u32s(col::FORGETTING_EVENTS)?,
    );
    let (first_correct, last_incorrect) =
        (u32s("first_correct_epoch")?, u32s("last_incorrect_epoch")?);
    let last_correct = column::<BooleanArray>(&batch, "last_correct", &path)?;
    let sums =
        [f64s("loss_sum")?, f64s("margin_sum")?, f64s("p_label_sum")?, f64s("p_label_sq_sum")?];
    for row in 0..batch.num_rows() {
        let i = ids.value(row) as usize;
        if i >= num_examples || epochs.value(row) != epochs.value(0) {
            return Err(Error::damaged(
                &path,
                format!(
                    "row {row}: example_id {i} or epochs {} does not fit a run of {num_examples} examples over {} epochs",
                    epochs.value(row),
                    epochs.value(0)
                ),
            ));
        }
        c.presentations[i] = presentations.value(row);
        c.correct_presentations[i] = correct.value(row);
        c.forgetting_events[i] = events.value(row);
        c.first_correct_epoch[i] =
            if first_correct.is_valid(row) { first_correct.value(row) } else { 0 };
        c.last_incorrect_epoch[i] =
            if last_incorrect.is_valid(row) { last_incorrect.value(row) } else { 0 };
        c.last_correct[i] = last_correct.value(row);
        c.loss_sum[i] = sums[0].value(row);
        c.margin_sum[i] = sums[1].value(row);
        c.p_label_sum[i] = sums[2].value(row);
        c.p_label_sq_sum[i] = sums[3].value(row);
    }
    Ok(Some(RunDynamics::from_columns(epochs.value(0), c)))
}

/// Which dynamics columns a reader needs built from the presentations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needed {
    /// Presentations, correctness, forgetting and epochs: two columns read per file.
    Correctness,
    /// Everything, the loss, margin and p(label) sums included: four columns per file.
    All,
}

/// Builds a run's dynamics over its first `epochs` epochs from its presentation files, in
/// the order the writer adds them, so the result equals the table the writer keeps (with
/// [`Needed::Correctness`], the sums stay 0).
///
/// # Errors
/// [`Error::Damaged`] naming a presentation file that is missing or damaged (unreadable, or
/// its content no longer the one whose checksum was recorded).
pub fn rebuild_dynamics(
    layout: &Layout,
    run: &RunInfo,
    epochs: u32,
    needed: Needed,
) -> Result<RunDynamics> {
    let mut dynamics = RunDynamics::new(run.dataset_examples as usize);
    let columns: &[&str] = match needed {
        Needed::Correctness => &[col::EXAMPLE_ID, col::CORRECT],
        Needed::All => &[col::EXAMPLE_ID, col::CORRECT, col::LOSS, col::MARGIN],
    };
    let recorded = Checksums::of_run(layout, &run.run_id)?;
    for epoch in 1..=epochs {
        let path = layout.presentations_file(run.dataset.name(), &run.run_id, epoch);
        if let Some(recorded) = recorded.as_ref().filter(|_| path.is_file()) {
            let crc32 = recorded.presentations.get(&epoch).copied().ok_or_else(|| {
                Error::damaged(
                    layout.run_file(Table::Runs, &run.run_id),
                    format!("its checksums footer has none of epoch {epoch}'s presentations; `fstream verify` lists the damage"),
                )
            })?;
            check_file(&path, Some(crc32))?;
        }
        dynamics.begin_epoch(epoch);
        for batch in read_presentation_columns(&path, columns)? {
            let ids = column::<UInt32Array>(&batch, col::EXAMPLE_ID, &path)?;
            let correct = column::<BooleanArray>(&batch, col::CORRECT, &path)?;
            let sums = match needed {
                Needed::Correctness => None,
                Needed::All => Some((
                    column::<Float32Array>(&batch, col::LOSS, &path)?,
                    column::<Float32Array>(&batch, col::MARGIN, &path)?,
                )),
            };
            let sums = sums.map(|(loss, margin)| (&loss.values()[..], &margin.values()[..]));
            dynamics
                .observe_columns(ids.values(), correct.values().iter(), sums)
                .map_err(|id| outside_dataset(&path, id, dynamics.num_examples()))?;
        }
    }
    Ok(dynamics)
}

/// What [`rebuild_run`] did with one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebuilt {
    /// The run's file now covers this many epochs, with one row per presented example.
    Written {
        /// Epochs covered.
        epochs: u32,
        /// Rows written.
        rows: usize,
    },
    /// Nothing to build: trained with `--no-record`, or no epoch committed yet.
    NothingRecorded,
    /// A live process trains the run (and keeps its dynamics itself).
    Live,
}

/// Rebuilds a run's `dynamics` file from its committed presentations and commits it, holding
/// the run's lock meanwhile.
///
/// # Errors
/// [`Error::Damaged`] naming a presentation file that is missing or damaged; [`Error::Io`]
/// when the file cannot be written.
pub fn rebuild_run(layout: &Layout, run: &StoredRun) -> Result<Rebuilt> {
    let info = &run.info;
    if !info.record_presentations || run.epochs_completed == 0 {
        return Ok(Rebuilt::NothingRecorded);
    }
    let _lock = match lock_run(layout, &info.run_id) {
        Ok(lock) => lock,
        Err(Error::Config(_)) => return Ok(Rebuilt::Live),
        Err(e) => return Err(e),
    };
    let dynamics = rebuild_dynamics(layout, info, run.epochs_completed, Needed::All)?;
    let batch = dynamics_batch(&info.run_id, &dynamics, &run.examples.labels)?;
    let digest = write_dynamics_file(&layout.run_file(Table::Dynamics, &info.run_id), &batch)?;
    Checksums::update_run(layout, &info.run_id, |c| c.dynamics = Some(digest.crc32))?;
    Ok(Rebuilt::Written { epochs: dynamics.epochs(), rows: batch.num_rows() })
}

/// The batches of a presentation file, with only the named columns.
///
/// # Errors
/// [`Error::Damaged`] naming the file when it is missing or not a presentations file.
pub fn read_presentation_columns(path: &Path, columns: &[&str]) -> Result<Vec<RecordBatch>> {
    let bad = |e: &dyn std::fmt::Display| Error::damaged(path, e.to_string());
    if !path.is_file() {
        return Err(Error::damaged(
            path,
            "missing: the run declares this epoch committed (`fstream verify` lists the damage)",
        ));
    }
    let file = File::open(path).at(path)?;
    super::catching_panics(path, false, || {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad(&e))?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
        let batches = builder.with_projection(mask).build().map_err(|e| bad(&e))?;
        batches.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| bad(&e))
    })
}

/// `id` as an index into a dataset of `num_examples` examples.
///
/// # Errors
/// [`Error::Damaged`] naming `path` when the id is outside the dataset.
pub fn checked_example(path: &Path, id: u32, num_examples: usize) -> Result<usize> {
    let example = id as usize;
    if example >= num_examples {
        return Err(outside_dataset(path, id, num_examples));
    }
    Ok(example)
}

/// The error of a presentation file naming an example the dataset does not have.
fn outside_dataset(path: &Path, id: u32, num_examples: usize) -> Error {
    Error::damaged(path, format!("example_id {id} outside the dataset's {num_examples} examples"))
}
