//! The messages training threads send to the writer thread, and the bounded channel that
//! carries them. Trainers only ever hold a [`RecordSender`]; they never see Arrow or Parquet.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::config::ModelKind;
use crate::config::OptimizerKind;
use crate::data::DatasetKind;
use crate::data::corrupt::PixelNoiseMode;

/// Identifies one training run, e.g. `mnist-s1-20261128T075400Z-3f2a`. Run ids name files and
/// directories of a root, so an id a user passes or a directory listing yields is checked
/// with [`RunId::parse`] (letters, digits, `.`, `_`, `-`; no leading dot) before any path is
/// built from it. Stored as a plain string.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    /// The longest run id, in bytes.
    pub const MAX_LEN: usize = 128;

    /// `id` checked as a run id: 1 to [`RunId::MAX_LEN`] letters, digits, `.`, `_` or `-`,
    /// not starting with `.` — so that no id is empty, `.`, `..`, a path, or a hidden or
    /// temporary file name.
    ///
    /// # Errors
    /// What was expected (the caller names the flag or file the id came from).
    pub fn parse(id: &str) -> Result<RunId, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        if id.is_empty()
            || id.len() > Self::MAX_LEN
            || id.starts_with('.')
            || !id.chars().all(allowed)
        {
            return Err(format!(
                "expected 1 to {} letters, digits, '.', '_' or '-', not starting with '.'",
                Self::MAX_LEN
            ));
        }
        Ok(RunId(id.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for RunId {
    type Err = String;

    fn from_str(id: &str) -> Result<RunId, String> {
        RunId::parse(id)
    }
}

impl std::ops::Deref for RunId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for RunId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Maps keyed by run id can be looked up with a `&str` (hash and equality are the string's).
impl std::borrow::Borrow<str> for RunId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for RunId {
    fn from(id: String) -> Self {
        RunId(id)
    }
}

impl From<RunId> for String {
    fn from(id: RunId) -> String {
        id.0
    }
}

impl From<&str> for RunId {
    fn from(id: &str) -> Self {
        RunId(id.to_string())
    }
}

/// One message from a trainer to the writer.
#[derive(Debug)]
pub enum Record {
    /// A run starts: its configuration and its per-example table.
    RunStarted(Box<RunStart>),
    /// Statistics of one training batch.
    Batch(BatchStats),
    /// An epoch ended: its presentations can be committed.
    EpochEnded {
        /// The epoch's summary.
        summary: EpochSummary,
        /// Checkpoint of the state after the epoch, written under a temporary name; the
        /// writer commits it together with the epoch.
        checkpoint: Option<PathBuf>,
    },
    /// A run ended, successfully or not.
    RunEnded {
        /// The run.
        run_id: RunId,
        /// `None` on success, else the error that stopped it.
        error: Option<String>,
    },
}

/// What the writer needs when a run starts.
#[derive(Debug, Clone)]
pub struct RunStart {
    /// The run's configuration, as stored in the `runs` table.
    pub run: RunInfo,
    /// The run's `examples` table: one entry per dataset example.
    pub examples: ExampleTable,
    /// Epochs already committed by an earlier process (0 for a new run).
    pub resume_after: u32,
}

/// A run's configuration: everything needed to tell runs apart and to reproduce one. Stored
/// as one row of the `runs` table (see `schemas/runs.md`), so queries select runs by
/// configuration instead of by file name (docs/semantics.md, bug 7).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RunInfo {
    /// The run's id.
    pub run_id: RunId,
    /// The dataset (stored by name: `mnist`, `permuted_mnist`, `cifar10`, `cifar100`).
    pub dataset: DatasetKind,
    /// The network (stored by name: `mnist_cnn`, `resnet18`, `wideresnet`).
    pub model: ModelKind,
    /// Training seed (model initialization, data order, random removal).
    pub seed: u64,
    /// Epochs the run was asked to train.
    pub epochs: u32,
    /// Training batch size.
    pub batch_size: u32,
    /// The update rule (stored by name: `sgd`, `adam`).
    pub optimizer: OptimizerKind,
    /// Base learning rate.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Whether SGD used Nesterov momentum.
    pub nesterov: bool,
    /// SGD weight decay.
    pub weight_decay: f64,
    /// Epochs after which the learning rate was multiplied by `lr_gamma`.
    pub lr_milestones: Vec<u32>,
    /// Learning-rate factor at each milestone.
    pub lr_gamma: f64,
    /// Epochs each drop came late (1: the reference's off-by-one, docs/semantics.md bug 5).
    pub lr_schedule_delay: u32,
    /// Whether training images were randomly cropped and flipped.
    pub data_augmentation: bool,
    /// Cutout squares per training image (0: no cutout).
    pub cutout_holes: u32,
    /// Side of a cutout square in pixels.
    pub cutout_length: u32,
    /// Whether dropout was off (the reference's `--no_dropout`).
    pub no_dropout: bool,
    /// Seed of permuted MNIST's pixel permutation, `None` for other datasets.
    pub permutation_seed: Option<u64>,
    /// Sorting file used for removal, if any.
    pub sorting_file: Option<String>,
    /// Examples removed by the removal flags.
    pub remove_n: u32,
    /// The reference's `--keep_lowest_n` (negative: random removal).
    pub keep_lowest_n: i64,
    /// The reference's `--remove_subsample`.
    pub remove_subsample: u32,
    /// Percentage of training examples given a wrong label.
    pub noise_percent_labels: f64,
    /// Percentage of each training image's pixel positions given Gaussian noise.
    pub noise_percent_pixels: f64,
    /// Standard deviation of the pixel noise, in pixel units.
    pub noise_std_pixels: f64,
    /// Corrected or faithful (the reference's mean-120, wrap-around noise).
    pub pixel_noise_mode: PixelNoiseMode,
    /// The data directory the run was trained from (absolute).
    pub data_dir: String,
    /// SHA-256 of the loaded train and test sets (see `Splits::fingerprint`); `--resume`
    /// refuses data that differ.
    pub data_sha256: String,
    /// Examples in the dataset's training split.
    pub dataset_examples: u32,
    /// Examples the run trained on.
    pub train_examples: u32,
    /// Whether per-presentation statistics were recorded.
    pub record_presentations: bool,
    /// Whether presentations have an `el2n` column (`--record el2n`).
    pub record_el2n: bool,
    /// Device (`cpu`, `cuda:0`).
    pub device: String,
    /// libtorch intra-op threads.
    pub intra_op_threads: u32,
    /// fstream version.
    pub fstream_version: String,
    /// libtorch version.
    pub libtorch_version: String,
    /// The command line that started the run.
    pub command: String,
    /// Start time, milliseconds since the Unix epoch (UTC).
    pub started_at_ms: i64,
}

impl RunInfo {
    /// Fields that say how and where a run was executed, not what it computes: two runs that
    /// differ only in these (or in `epochs`, which `--resume` may extend) are the same run of
    /// an experiment.
    const EXECUTION_FIELDS: [&str; 9] = [
        "run_id",
        "command",
        "started_at_ms",
        "device",
        "intra_op_threads",
        "fstream_version",
        "libtorch_version",
        "data_dir",
        "epochs",
    ];

    /// Whether `self` and `other` are the same run of an experiment: equal in every field but
    /// the execution fields (id, command line, start time, device, threads, versions, data
    /// directory) and the number of epochs asked for.
    pub fn same_experiment(&self, other: &RunInfo) -> bool {
        let key = |info: &RunInfo| {
            let mut value = serde_json::to_value(info).expect("RunInfo has only plain fields");
            if let Some(fields) = value.as_object_mut() {
                for field in Self::EXECUTION_FIELDS {
                    fields.remove(field);
                }
            }
            value
        };
        key(self) == key(other)
    }
}

/// Per-example facts of one run, indexed by `example_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExampleTable {
    /// Label in the dataset files.
    pub original_labels: Vec<u16>,
    /// Label trained on (differs from the original under label noise).
    pub labels: Vec<u16>,
    /// Whether the run trained on the example (false when removed).
    pub in_training_set: Vec<bool>,
    /// Whether the run added pixel noise to the example's image.
    pub pixel_noisy: Vec<bool>,
    /// CIFAR-100's coarse (superclass) labels; `None` for other datasets.
    pub coarse_labels: Option<Vec<u16>>,
}

/// Per-example statistics of consecutive batches of one epoch, from the forward pass used
/// for the update (train mode, before the optimizer step; docs/semantics.md). All vectors
/// have one entry per presentation. Trainers send up to [`ROWS_PER_MESSAGE`] rows at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchStats {
    /// The run.
    pub run_id: RunId,
    /// 1-based epoch.
    pub epoch: u32,
    /// Each presentation's batch: 0-based global batch index within the run.
    pub steps: Vec<u32>,
    /// Original dataset indices of the presented examples.
    pub example_ids: Vec<u32>,
    /// Labels trained on.
    pub labels: Vec<u16>,
    /// Cross-entropy loss.
    pub loss: Vec<f32>,
    /// Whether the argmax of the logits equals the label.
    pub correct: Vec<bool>,
    /// Target logit minus the largest other logit.
    pub margin: Vec<f32>,
    /// EL2N of each example; empty unless the run records it.
    pub el2n: Vec<f32>,
}

/// Summary of one finished epoch of one run (a row of the `epochs` table).
#[derive(Debug, Clone, PartialEq)]
pub struct EpochSummary {
    /// The run.
    pub run_id: RunId,
    /// 1-based epoch.
    pub epoch: u32,
    /// Fraction of training presentations classified correctly (train mode, before each step).
    pub train_acc: f64,
    /// Mean training loss over the epoch's presentations.
    pub train_loss: f64,
    /// Test-set accuracy after the epoch (eval mode).
    pub test_acc: f64,
    /// Mean test-set loss after the epoch.
    pub test_loss: f64,
    /// Learning rate used during the epoch.
    pub lr: f64,
    /// Wall-clock seconds of the epoch's training steps (test evaluation excluded).
    pub train_seconds: f64,
    /// Seconds the trainer was blocked sending records to the writer.
    pub channel_wait_seconds: f64,
    /// Training examples presented.
    pub examples: u64,
}

/// Presentations a trainer gathers into one [`BatchStats`] before sending it. A message per
/// batch woke the writer hundreds of times per epoch, and on a machine whose cores all run
/// libtorch's threads each wake-up stalled a parallel op: recording cost 4-8% of the training
/// speed instead of ~0.
pub const ROWS_PER_MESSAGE: usize = 4096;

/// Messages the channel holds before trainers block: up to 64 x [`ROWS_PER_MESSAGE`]
/// presentations (~5 MB), enough to absorb an epoch commit without stalling the trainers.
pub const CHANNEL_CAPACITY: usize = 64;

/// Creates the bounded channel between trainers and the writer.
pub fn channel() -> (RecordSender, Receiver<Record>) {
    let (tx, rx) = crossbeam_channel::bounded(CHANNEL_CAPACITY);
    (RecordSender { tx, waited: Duration::ZERO }, rx)
}

/// The sending side, which meters how long sends block on a full channel.
#[derive(Debug, Clone)]
pub struct RecordSender {
    tx: Sender<Record>,
    waited: Duration,
}

/// The writer has stopped (its receiver is gone); the writer's own error says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterGone;

impl RecordSender {
    /// Sends `record`, blocking while the channel is full.
    ///
    /// # Errors
    /// [`WriterGone`] when the writer thread has stopped.
    pub fn send(&mut self, record: Record) -> Result<(), WriterGone> {
        let record = match self.tx.try_send(record) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Disconnected(_)) => return Err(WriterGone),
            Err(TrySendError::Full(record)) => record,
        };
        let start = Instant::now();
        let result = self.tx.send(record);
        self.waited += start.elapsed();
        result.map_err(|_| WriterGone)
    }

    /// Total time sends have blocked so far.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_that_could_name_another_path_are_refused() {
        for bad in ["", ".", "..", "../x", "a/b", ".hidden", "a b", "x\0", &"a".repeat(129)] {
            assert!(RunId::parse(bad).is_err(), "{bad:?}");
        }
        for good in ["mnist-s1-20261128T075400Z-3f2a", "exp1_s1", "a.b", &"a".repeat(128)] {
            assert_eq!(RunId::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn same_experiment_ignores_only_execution_fields() {
        let run = RunInfo { run_id: "a".into(), seed: 3, lr: 0.1, epochs: 5, ..Default::default() };
        let elsewhere = RunInfo {
            run_id: "b".into(),
            device: "cuda(0)".into(),
            intra_op_threads: 8,
            epochs: 9,
            data_dir: "/other".into(),
            ..run.clone()
        };
        assert!(run.same_experiment(&elsewhere));
        assert!(!run.same_experiment(&RunInfo { seed: 4, ..run.clone() }));
        assert!(!run.same_experiment(&RunInfo { lr: 0.2, ..run.clone() }));
        assert!(!run.same_experiment(&RunInfo { data_sha256: "x".into(), ..run.clone() }));
    }

    #[test]
    fn send_fails_once_the_writer_is_gone() {
        let (mut tx, rx) = channel();
        drop(rx);
        let record = Record::RunEnded { run_id: "r".into(), error: None };
        assert_eq!(tx.send(record), Err(WriterGone));
    }

    #[test]
    fn blocked_sends_are_metered() {
        let (mut tx, rx) = channel();
        for _ in 0..CHANNEL_CAPACITY {
            tx.send(Record::RunEnded { run_id: "r".into(), error: None }).unwrap();
        }
        assert_eq!(tx.waited(), Duration::ZERO);
        let drain = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            rx.iter().count()
        });
        let before = Instant::now();
        tx.send(Record::RunEnded { run_id: "r".into(), error: None }).unwrap();
        let elapsed = before.elapsed();
        // The channel is full until the drain starts, so the send blocked for a while, and
        // the meter counts no more than the call took (no bound on how long: machines differ).
        assert!(tx.waited() > Duration::ZERO && tx.waited() <= elapsed, "{:?}", tx.waited());
        drop(tx);
        assert_eq!(drain.join().unwrap(), CHANNEL_CAPACITY + 1);
    }
}
