//! The tables' columns: names (the one source of truth, used by queries too), types, and the
//! functions that turn records into Arrow batches. `schemas/*.md` documents each column.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt16Array, UInt32Array, UInt64Array,
};

use crate::error::Result;
use crate::record::{EpochSummary, ExampleTable, RunInfo};

/// Column names shared by the writer and the queries.
pub mod col {
    /// Hive partition column of `presentations`; a column of `runs`.
    pub const DATASET: &str = "dataset";
    /// Run identifier (hive partition column of `presentations`).
    pub const RUN_ID: &str = "run_id";
    /// 1-based epoch (hive partition column of `presentations`).
    pub const EPOCH: &str = "epoch";
    /// 0-based global batch index within a run.
    pub const STEP: &str = "step";
    /// Original dataset index of an example.
    pub const EXAMPLE_ID: &str = "example_id";
    /// Label trained on.
    pub const LABEL: &str = "label";
    /// Per-example cross-entropy loss.
    pub const LOSS: &str = "loss";
    /// Whether the prediction was correct.
    pub const CORRECT: &str = "correct";
    /// Target logit minus the largest other logit.
    pub const MARGIN: &str = "margin";
    /// `‖softmax − onehot(label)‖₂` of a presentation (`--record el2n`).
    pub const EL2N: &str = "el2n";
    /// Status of a run: running, complete or failed.
    pub const STATUS: &str = "status";
    /// Epochs a run has committed.
    pub const EPOCHS_COMPLETED: &str = "epochs_completed";
    /// Examples in a dataset's training split.
    pub const DATASET_EXAMPLES: &str = "dataset_examples";
    /// The whole run configuration as JSON (what `--resume` reads back).
    pub const CONFIG: &str = "config";
    /// `runs`: whether per-presentation statistics were recorded.
    pub const RECORD_PRESENTATIONS: &str = "record_presentations";
    /// Whether a run trained on an example (`examples`).
    pub const IN_TRAINING_SET: &str = "in_training_set";
    /// Whether a run added pixel noise to an example (`examples`).
    pub const PIXEL_NOISY: &str = "pixel_noisy";
    /// Label in the dataset files (`examples`).
    pub const ORIGINAL_LABEL: &str = "original_label";
    /// CIFAR-100's coarse label, null for other datasets (`examples`).
    pub const COARSE_LABEL: &str = "coarse_label";
    /// Forgetting count of a sorting file.
    pub const FORGETTING_COUNT: &str = "forgetting_count";
    /// A sorting file's per-example score (`fstream scores`).
    pub const SCORE: &str = "score";
    /// 0-based position in a sorting file's order.
    pub const RANK: &str = "rank";
    /// Sorting files: whether any counted run presented the example.
    pub const PRESENTED: &str = "presented";
    /// `dynamics`: committed epochs a run's rows cover.
    pub const EPOCHS: &str = "epochs";
    /// `dynamics`: presentations of an example in a run.
    pub const PRESENTATIONS: &str = "presentations";
    /// `dynamics`: presentations classified correctly.
    pub const CORRECT_PRESENTATIONS: &str = "correct_presentations";
    /// `dynamics`: correct → incorrect transitions.
    pub const FORGETTING_EVENTS: &str = "forgetting_events";
}

/// A run's lifecycle state, stored in `runs.status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    /// Training; `epochs_completed` epochs are committed so far.
    Running,
    /// Every epoch was committed.
    Complete,
    /// Stopped by an error.
    Failed(String),
}

impl RunStatus {
    /// The value stored in `runs.status`.
    pub fn name(&self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Failed(_) => "failed",
        }
    }

    /// The status of a stored `status` and `error` pair.
    ///
    /// # Errors
    /// The unknown status name.
    pub fn from_stored(status: &str, error: Option<&str>) -> std::result::Result<Self, String> {
        match status {
            "running" => Ok(RunStatus::Running),
            "complete" => Ok(RunStatus::Complete),
            "failed" => Ok(RunStatus::Failed(error.unwrap_or_default().to_string())),
            other => Err(format!("unknown run status '{other}'")),
        }
    }
}

/// Mutable part of a `runs` row, kept by the writer.
#[derive(Debug, Clone, PartialEq)]
pub struct RunProgress {
    /// Current status.
    pub status: RunStatus,
    /// Epochs committed.
    pub epochs_completed: u32,
    /// End time in ms since the Unix epoch, once ended.
    pub finished_at_ms: Option<i64>,
}

/// One epoch's presentations of one run, columns of equal length (the partition columns
/// dataset, run_id and epoch live in the path).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PresentationColumns {
    /// Global batch index.
    pub step: Vec<u32>,
    /// Original dataset index.
    pub example_id: Vec<u32>,
    /// Label trained on.
    pub label: Vec<u16>,
    /// Loss.
    pub loss: Vec<f32>,
    /// Correctness.
    pub correct: Vec<bool>,
    /// Margin.
    pub margin: Vec<f32>,
    /// EL2N; empty when the run does not record it (the file then has no `el2n` column).
    pub el2n: Vec<f32>,
}

impl PresentationColumns {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.example_id.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.example_id.is_empty()
    }

    /// The rows reordered by example id, the layout the forgetting pass relies on.
    pub fn sorted_by_example_id(&self) -> PresentationColumns {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_unstable_by_key(|&i| self.example_id[i]);
        fn gather<T: Copy>(values: &[T], order: &[usize]) -> Vec<T> {
            order.iter().map(|&i| values[i]).collect()
        }
        PresentationColumns {
            step: gather(&self.step, &order),
            example_id: gather(&self.example_id, &order),
            label: gather(&self.label, &order),
            loss: gather(&self.loss, &order),
            correct: gather(&self.correct, &order),
            margin: gather(&self.margin, &order),
            el2n: if self.el2n.is_empty() { Vec::new() } else { gather(&self.el2n, &order) },
        }
    }

    /// The Arrow batch of these rows.
    ///
    /// # Errors
    /// [`crate::Error::Arrow`] if the columns differ in length.
    pub fn to_batch(&self) -> Result<RecordBatch> {
        let mut columns = vec![
            (col::STEP, Arc::new(UInt32Array::from(self.step.clone())) as ArrayRef, false),
            (col::EXAMPLE_ID, Arc::new(UInt32Array::from(self.example_id.clone())), false),
            (col::LABEL, Arc::new(UInt16Array::from(self.label.clone())), false),
            (col::LOSS, Arc::new(Float32Array::from(self.loss.clone())), false),
            (col::CORRECT, Arc::new(BooleanArray::from(self.correct.clone())), false),
            (col::MARGIN, Arc::new(Float32Array::from(self.margin.clone())), false),
        ];
        if !self.el2n.is_empty() {
            columns.push((col::EL2N, Arc::new(Float32Array::from(self.el2n.clone())), false));
        }
        Ok(RecordBatch::try_from_iter_with_nullable(columns)?)
    }
}

/// Every column a presentations file can have (the optional `el2n` included), in file order.
pub fn presentation_file_schema() -> arrow::datatypes::SchemaRef {
    let one_row = PresentationColumns {
        step: vec![0],
        example_id: vec![0],
        label: vec![0],
        loss: vec![0.0],
        correct: vec![false],
        margin: vec![0.0],
        el2n: vec![0.0],
    };
    one_row.to_batch().expect("one row of each column").schema()
}

/// The `runs` row of a run.
///
/// # Errors
/// [`crate::Error::Arrow`] on an internal schema error.
pub fn runs_batch(run: &RunInfo, progress: &RunProgress) -> Result<RecordBatch> {
    fn text(value: &str) -> ArrayRef {
        Arc::new(StringArray::from(vec![value]))
    }
    fn opt_text(value: Option<&str>) -> ArrayRef {
        Arc::new(StringArray::from(vec![value]))
    }
    fn u32s(value: u32) -> ArrayRef {
        Arc::new(UInt32Array::from(vec![value]))
    }
    fn f64s(value: f64) -> ArrayRef {
        Arc::new(Float64Array::from(vec![value]))
    }
    fn ms(value: Option<i64>) -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from(vec![value]).with_timezone("UTC"))
    }
    fn join(values: &[u32]) -> String {
        values.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
    }
    let error = match &progress.status {
        RunStatus::Failed(message) => Some(message.as_str()),
        _ => None,
    };
    Ok(RecordBatch::try_from_iter_with_nullable([
        (col::RUN_ID, text(&run.run_id), false),
        (col::DATASET, text(run.dataset.name()), false),
        ("model", text(run.model.name()), false),
        ("seed", Arc::new(UInt64Array::from(vec![run.seed])), false),
        ("epochs", u32s(run.epochs), false),
        ("batch_size", u32s(run.batch_size), false),
        ("optimizer", text(run.optimizer.name()), false),
        ("lr", f64s(run.lr), false),
        ("momentum", f64s(run.momentum), false),
        ("nesterov", Arc::new(BooleanArray::from(vec![run.nesterov])), false),
        ("weight_decay", f64s(run.weight_decay), false),
        ("lr_milestones", text(&join(&run.lr_milestones)), false),
        ("lr_gamma", f64s(run.lr_gamma), false),
        ("lr_schedule_delay", u32s(run.lr_schedule_delay), false),
        ("data_augmentation", Arc::new(BooleanArray::from(vec![run.data_augmentation])), false),
        ("cutout_holes", u32s(run.cutout_holes), false),
        ("cutout_length", u32s(run.cutout_length), false),
        ("no_dropout", Arc::new(BooleanArray::from(vec![run.no_dropout])), false),
        ("permutation_seed", Arc::new(UInt64Array::from(vec![run.permutation_seed])), true),
        ("sorting_file", opt_text(run.sorting_file.as_deref()), true),
        ("remove_n", u32s(run.remove_n), false),
        ("keep_lowest_n", Arc::new(Int64Array::from(vec![run.keep_lowest_n])), false),
        ("remove_subsample", u32s(run.remove_subsample), false),
        ("noise_percent_labels", f64s(run.noise_percent_labels), false),
        ("noise_percent_pixels", f64s(run.noise_percent_pixels), false),
        ("noise_std_pixels", f64s(run.noise_std_pixels), false),
        ("pixel_noise_mode", text(run.pixel_noise_mode.name()), false),
        ("data_dir", text(&run.data_dir), false),
        ("data_sha256", text(&run.data_sha256), false),
        (col::DATASET_EXAMPLES, u32s(run.dataset_examples), false),
        ("train_examples", u32s(run.train_examples), false),
        (
            col::RECORD_PRESENTATIONS,
            Arc::new(BooleanArray::from(vec![run.record_presentations])),
            false,
        ),
        ("record_el2n", Arc::new(BooleanArray::from(vec![run.record_el2n])), false),
        ("device", text(&run.device), false),
        ("intra_op_threads", u32s(run.intra_op_threads), false),
        ("fstream_version", text(&run.fstream_version), false),
        ("libtorch_version", text(&run.libtorch_version), false),
        ("command", text(&run.command), false),
        (
            col::CONFIG,
            text(&serde_json::to_string(run).expect("RunInfo has only plain fields")),
            false,
        ),
        ("started_at", ms(Some(run.started_at_ms)), false),
        (col::STATUS, text(progress.status.name()), false),
        ("error", opt_text(error), true),
        (col::EPOCHS_COMPLETED, u32s(progress.epochs_completed), false),
        ("finished_at", ms(progress.finished_at_ms), true),
    ])?)
}

/// The `epochs` rows of a run.
///
/// # Errors
/// [`crate::Error::Arrow`] on an internal schema error.
pub fn epochs_batch(epochs: &[EpochSummary]) -> Result<RecordBatch> {
    let f64s = |f: fn(&EpochSummary) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(epochs.iter().map(f)))
    };
    Ok(RecordBatch::try_from_iter_with_nullable([
        (
            col::RUN_ID,
            Arc::new(StringArray::from_iter_values(epochs.iter().map(|e| e.run_id.as_str())))
                as ArrayRef,
            false,
        ),
        (
            col::EPOCH,
            Arc::new(UInt32Array::from_iter_values(epochs.iter().map(|e| e.epoch))),
            false,
        ),
        ("train_acc", f64s(|e| e.train_acc), false),
        ("train_loss", f64s(|e| e.train_loss), false),
        ("test_acc", f64s(|e| e.test_acc), false),
        ("test_loss", f64s(|e| e.test_loss), false),
        ("lr", f64s(|e| e.lr), false),
        ("train_seconds", f64s(|e| e.train_seconds), false),
        ("channel_wait_seconds", f64s(|e| e.channel_wait_seconds), false),
        (
            "examples",
            Arc::new(UInt64Array::from_iter_values(epochs.iter().map(|e| e.examples))),
            false,
        ),
    ])?)
}

/// The `examples` rows of a run.
///
/// # Errors
/// [`crate::Error::Arrow`] if the table's vectors differ in length.
pub fn examples_batch(run_id: &str, examples: &ExampleTable) -> Result<RecordBatch> {
    let n = examples.labels.len();
    let noisy: Vec<bool> =
        examples.labels.iter().zip(&examples.original_labels).map(|(a, b)| a != b).collect();
    Ok(RecordBatch::try_from_iter_with_nullable([
        (col::RUN_ID, Arc::new(StringArray::from(vec![run_id; n])) as ArrayRef, false),
        (col::EXAMPLE_ID, Arc::new(UInt32Array::from_iter_values(0..n as u32)), false),
        (col::ORIGINAL_LABEL, Arc::new(UInt16Array::from(examples.original_labels.clone())), false),
        (col::LABEL, Arc::new(UInt16Array::from(examples.labels.clone())), false),
        ("label_noisy", Arc::new(BooleanArray::from(noisy)), false),
        (col::PIXEL_NOISY, Arc::new(BooleanArray::from(examples.pixel_noisy.clone())), false),
        (
            col::IN_TRAINING_SET,
            Arc::new(BooleanArray::from(examples.in_training_set.clone())),
            false,
        ),
        (
            col::COARSE_LABEL,
            Arc::new(match &examples.coarse_labels {
                Some(coarse) => UInt16Array::from(coarse.clone()),
                None => UInt16Array::new_null(n),
            }),
            true,
        ),
    ])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presentations_sort_by_example_id_keeping_rows_together() {
        let columns = PresentationColumns {
            step: vec![0, 0, 1],
            example_id: vec![9, 2, 5],
            label: vec![1, 2, 3],
            loss: vec![0.1, 0.2, 0.3],
            correct: vec![true, false, true],
            margin: vec![1.0, -1.0, 2.0],
            el2n: vec![0.1, 1.2, 0.3],
        };
        let sorted = columns.sorted_by_example_id();
        assert_eq!(sorted.example_id, vec![2, 5, 9]);
        assert_eq!(sorted.label, vec![2, 3, 1]);
        assert_eq!(sorted.el2n, vec![1.2, 0.3, 0.1]);
        assert_eq!(sorted.loss, vec![0.2, 0.3, 0.1]);
        assert_eq!(sorted.correct, vec![false, true, true]);
        assert_eq!(sorted.margin, vec![-1.0, 2.0, 1.0]);
        assert_eq!(sorted.step, vec![0, 1, 0]);
        let batch = sorted.to_batch().unwrap();
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(batch.schema().field(1).name(), col::EXAMPLE_ID);
    }

    /// (column, type) rows of a schema document's first table (the columns; later tables
    /// document other things), partition columns left out.
    fn documented(markdown: &str) -> Vec<(String, String)> {
        markdown
            .lines()
            .skip_while(|line| !line.starts_with('|'))
            .take_while(|line| line.starts_with('|'))
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                let kind = *cells.get(2)?;
                (!kind.contains("(partition)")).then(|| (name.to_string(), kind.to_string()))
            })
            .collect()
    }

    /// How the schema documents write an Arrow field's type.
    fn written(field: &arrow::datatypes::Field) -> String {
        use arrow::datatypes::DataType;
        let kind = match field.data_type() {
            DataType::Utf8 => "string".to_string(),
            DataType::Boolean => "bool".to_string(),
            DataType::UInt16 => "uint16".to_string(),
            DataType::UInt32 => "uint32".to_string(),
            DataType::UInt64 => "uint64".to_string(),
            DataType::Int64 => "int64".to_string(),
            DataType::Float32 => "float32".to_string(),
            DataType::Float64 => "float64".to_string(),
            DataType::Timestamp(_, Some(tz)) => format!("timestamp(ms, {tz})"),
            other => format!("{other:?}"),
        };
        if field.is_nullable() { format!("{kind}, nullable") } else { kind }
    }

    use crate::dynamics::RunDynamics;

    #[test]
    fn every_table_matches_its_schema_document() {
        let progress =
            RunProgress { status: RunStatus::Running, epochs_completed: 0, finished_at_ms: None };
        let summary = EpochSummary {
            run_id: "r".into(),
            epoch: 1,
            train_acc: 0.0,
            train_loss: 0.0,
            test_acc: 0.0,
            test_loss: 0.0,
            lr: 0.1,
            train_seconds: 0.0,
            channel_wait_seconds: 0.0,
            examples: 1,
        };
        let examples = ExampleTable {
            original_labels: vec![1],
            labels: vec![1],
            in_training_set: vec![true],
            pixel_noisy: vec![false],
            coarse_labels: None,
        };
        let tables = [
            (
                include_str!("../../../../schemas/runs.md"),
                runs_batch(&RunInfo::default(), &progress),
            ),
            (include_str!("../../../../schemas/epochs.md"), epochs_batch(&[summary])),
            (include_str!("../../../../schemas/examples.md"), examples_batch("r", &examples)),
            (
                include_str!("../../../../schemas/presentations.md"),
                PresentationColumns::default().to_batch(),
            ),
            (
                include_str!("../../../../schemas/dynamics.md"),
                super::super::dynamics::dynamics_batch("r", &RunDynamics::new(1), &[0]),
            ),
        ];
        for (markdown, batch) in tables {
            let schema = batch.unwrap().schema();
            let actual: Vec<(String, String)> =
                schema.fields().iter().map(|f| (f.name().clone(), written(f))).collect();
            assert_eq!(documented(markdown), actual, "{}", markdown.lines().next().unwrap());
        }
    }

    /// The `runs` columns are listed once, in [`runs_batch`]; this keeps that list and
    /// [`RunInfo`] together: every field is a column of the same name holding the same value
    /// (times as millisecond timestamps, milestones comma-joined).
    #[test]
    fn every_run_info_field_is_a_runs_column_with_its_value() {
        let run = RunInfo {
            run_id: "r1".into(),
            seed: 7,
            lr_milestones: vec![60, 120],
            sorting_file: Some("order.parquet".into()),
            keep_lowest_n: -1,
            started_at_ms: 1_700_000_000_000,
            ..RunInfo::default()
        };
        let progress =
            RunProgress { status: RunStatus::Running, epochs_completed: 0, finished_at_ms: None };
        let batch = runs_batch(&run, &progress).unwrap();
        let serde_json::Value::Object(fields) = serde_json::to_value(&run).unwrap() else {
            panic!("RunInfo serializes as an object")
        };
        for (name, value) in fields {
            let column = match name.as_str() {
                "started_at_ms" => "started_at",
                other => other,
            };
            let array =
                batch.column_by_name(column).unwrap_or_else(|| panic!("no column {column}"));
            let stored = match array.as_any().downcast_ref::<TimestampMillisecondArray>() {
                Some(times) => times.value(0).to_string(),
                None => arrow::util::display::array_value_to_string(array, 0).unwrap(),
            };
            let expected = match &value {
                serde_json::Value::Array(items) => {
                    items.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",")
                }
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            assert_eq!(stored, expected, "column {column}");
        }
    }

    #[test]
    fn run_times_are_stored_in_utc() {
        let progress =
            RunProgress { status: RunStatus::Running, epochs_completed: 0, finished_at_ms: None };
        let batch = runs_batch(&RunInfo::default(), &progress).unwrap();
        for name in ["started_at", "finished_at"] {
            let utc = arrow::datatypes::DataType::Timestamp(
                arrow::datatypes::TimeUnit::Millisecond,
                Some("UTC".into()),
            );
            assert_eq!(batch.schema().field_with_name(name).unwrap().data_type(), &utc);
        }
    }

    #[test]
    fn examples_flag_noisy_labels() {
        let table = ExampleTable {
            original_labels: vec![1, 2],
            labels: vec![1, 3],
            in_training_set: vec![true, false],
            pixel_noisy: vec![false, true],
            coarse_labels: None,
        };
        let batch = examples_batch("r", &table).unwrap();
        let noisy = batch.column_by_name("label_noisy").unwrap();
        let noisy = noisy.as_any().downcast_ref::<BooleanArray>().unwrap();
        assert_eq!(noisy.iter().collect::<Vec<_>>(), vec![Some(false), Some(true)]);
    }
}
