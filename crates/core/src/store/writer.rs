//! The writer thread: receives [`Record`]s from the trainers, buffers each run's current epoch,
//! and commits it as one Parquet partition (sorted by `example_id`) when the epoch ends. It also
//! keeps each run's `runs`, `epochs`, `examples` and `dynamics` files up to date: the run's
//! [`RunDynamics`] takes in each epoch as it is committed. All commits are atomic (see
//! [`super::write_parquet_atomically`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;

use super::checksums::Checksums;
use super::dynamics::{Needed, dynamics_batch, read_dynamics, rebuild_dynamics};
use super::layout::{Layout, Table};
use super::lock::process_alive;
use super::runs::read_epochs_prefix;
use super::schema::{self, PresentationColumns, RunProgress, RunStatus};
use super::{rename_durably, write_dynamics_file, write_parquet_atomically};
use crate::crash;
use crate::dynamics::RunDynamics;
use crate::error::{Error, IoContext, Result};
use crate::record::{BatchStats, EpochSummary, Record, RunId, RunInfo, RunStart};

/// What the writer did, returned when its channel closes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriterReport {
    /// Presentation rows committed.
    pub presentation_rows: u64,
    /// Bytes of committed presentation files.
    pub presentation_bytes: u64,
    /// Presentation files committed (one per run and epoch).
    pub presentation_files: u64,
    /// Seconds spent handling records (the rest of the time the writer waited for them).
    pub busy_seconds: f64,
    /// Of those, seconds spent keeping the `dynamics` table (adding epochs, committing files).
    pub dynamics_seconds: f64,
}

/// Starts the writer thread for a dataset root. It runs until every sender is dropped.
///
/// # Errors
/// The thread's result is the first storage error; it stops at once then, and the trainers'
/// next send fails.
///
/// # Errors
/// [`Error::Io`] when the root cannot be created or listed; [`Error::Thread`] when the OS
/// refuses a thread.
pub fn spawn_writer(
    root: PathBuf,
    records: Receiver<Record>,
) -> Result<JoinHandle<Result<WriterReport>>> {
    let layout = Layout::new(root);
    let reserve = SpaceReserve::create(&layout)?;
    std::thread::Builder::new()
        .name("fstream-writer".into())
        .spawn(move || Writer::new(layout, reserve).run(records))
        .map_err(|e| Error::Thread { thread: "writer".into(), reason: e.to_string() })
}

/// Bytes kept in reserve on the root's disk: far more than a `runs` row needs.
const RESERVE_BYTES: usize = 64 * 1024;

/// A file of [`RESERVE_BYTES`] the writer deletes when a write fails, so that the `runs` rows
/// that mark runs `failed` can still be written when the disk is full.
struct SpaceReserve {
    path: Option<PathBuf>,
}

impl SpaceReserve {
    /// Creates this process's reserve, and removes those of processes that are gone.
    fn create(layout: &Layout) -> Result<Self> {
        let path = layout.space_reserve_file();
        let dir = layout.root();
        std::fs::create_dir_all(dir).at(dir)?;
        for stale in layout.space_reserve_files()? {
            if !stale.1.is_some_and(process_alive) {
                std::fs::remove_file(&stale.0).at(&stale.0)?;
            }
        }
        let written = std::fs::write(&path, vec![0u8; RESERVE_BYTES])
            .and_then(|()| std::fs::File::open(&path)?.sync_all());
        if let Err(e) = written {
            // Best effort: without a reserve, a status write on a full disk may fail too.
            log::debug!("no space reserve ({}: {e})", path.display());
            let _ = std::fs::remove_file(&path);
            return Ok(SpaceReserve { path: None });
        }
        Ok(SpaceReserve { path: Some(path) })
    }

    /// Frees the reserved space; false when it was freed before.
    fn release(&mut self) -> bool {
        self.path.take().is_some_and(|path| std::fs::remove_file(path).is_ok())
    }
}

impl Drop for SpaceReserve {
    fn drop(&mut self) {
        self.release();
    }
}

struct RunState {
    info: RunInfo,
    progress: RunProgress,
    /// Epoch rows committed by an earlier process of a resumed run.
    earlier_epochs: Option<arrow::array::RecordBatch>,
    epochs: Vec<EpochSummary>,
    buffer: PresentationColumns,
    /// The committed epochs' dynamics (`None` for runs trained without recording).
    dynamics: Option<RunDynamics>,
    /// Labels trained on, by example id (the `dynamics` rows carry them).
    labels: Vec<u16>,
    /// The checksums of its committed files, recorded in its `runs` file.
    checksums: Checksums,
}

struct Writer {
    layout: Layout,
    runs: HashMap<RunId, RunState>,
    report: WriterReport,
    reserve: SpaceReserve,
}

impl Writer {
    fn new(layout: Layout, reserve: SpaceReserve) -> Self {
        Writer { layout, runs: HashMap::new(), report: WriterReport::default(), reserve }
    }

    fn run(mut self, records: Receiver<Record>) -> Result<WriterReport> {
        for record in records {
            let started = Instant::now();
            let result = self.handle(record);
            self.report.busy_seconds += started.elapsed().as_secs_f64();
            if let Err(error) = result {
                self.reserve.release();
                self.fail_open_runs(&format!("writer: {error}"));
                return Err(error);
            }
        }
        self.fail_open_runs("run ended without a status (trainer thread died)");
        Ok(self.report)
    }

    fn handle(&mut self, record: Record) -> Result<()> {
        match record {
            Record::RunStarted(start) => self.start_run(*start),
            Record::Batch(batch) => self.buffer_batch(batch),
            Record::EpochEnded { summary, checkpoint } => self.commit_epoch(summary, checkpoint),
            Record::RunEnded { run_id, error } => {
                let status = match error {
                    None => RunStatus::Complete,
                    Some(message) => RunStatus::Failed(message),
                };
                self.end_run(&run_id, status)
            }
        }
    }

    fn start_run(&mut self, start: RunStart) -> Result<()> {
        let RunStart { run, examples, resume_after } = start;
        let earlier_epochs =
            read_epochs_prefix(&self.layout.run_file(Table::Epochs, &run.run_id), resume_after)?;
        let mut checksums = Checksums::default();
        if resume_after == 0 {
            let path = self.layout.run_file(Table::Examples, &run.run_id);
            let batch = schema::examples_batch(&run.run_id, &examples)?;
            checksums.examples = Some(write_parquet_atomically(&path, &batch, vec![])?.crc32);
        } else {
            // The files an earlier process committed keep their checksums; a run of an older
            // fstream gets those of its files as they are.
            let runs_file = self.layout.run_file(Table::Runs, &run.run_id);
            checksums = match Checksums::read(&runs_file)? {
                Some(recorded) => {
                    let recorded = recorded.up_to(resume_after);
                    recorded.check_complete(&runs_file, resume_after, run.record_presentations)?;
                    recorded
                }
                None => Checksums::of_files(&self.layout, &run, resume_after)?,
            };
        }
        let dynamics = match run.record_presentations {
            true => Some(self.resumed_dynamics(&run, resume_after)?),
            false => None,
        };
        let state = RunState {
            dynamics,
            labels: examples.labels,
            checksums,
            progress: RunProgress {
                status: RunStatus::Running,
                epochs_completed: resume_after,
                finished_at_ms: None,
            },
            info: run,
            earlier_epochs,
            epochs: Vec::new(),
            buffer: PresentationColumns::default(),
        };
        let run_id = state.info.run_id.clone();
        self.runs.insert(run_id.clone(), state);
        self.write_run_row(&run_id)
    }

    /// The dynamics of a run's first `epochs` epochs: its committed file when that covers
    /// them, else rebuilt from its presentations (a crash between two commit steps, or a root
    /// written before the table existed).
    fn resumed_dynamics(&self, run: &RunInfo, epochs: u32) -> Result<RunDynamics> {
        let examples = run.dataset_examples as usize;
        if epochs == 0 {
            return Ok(RunDynamics::new(examples));
        }
        match read_dynamics(&self.layout, &run.run_id, examples) {
            Ok(Some(dynamics)) if dynamics.epochs() == epochs => Ok(dynamics),
            found => {
                let why = match found {
                    Ok(Some(d)) => format!("it covers {} epochs", d.epochs()),
                    Ok(None) => "it has none".to_string(),
                    Err(e) => e.to_string(),
                };
                log::info!(
                    "run {}: rebuilding its dynamics over {epochs} epochs from the presentations ({why})",
                    run.run_id
                );
                rebuild_dynamics(&self.layout, run, epochs, Needed::All)
            }
        }
    }

    fn state(&mut self, run_id: &str) -> Result<&mut RunState> {
        self.runs.get_mut(run_id).ok_or_else(|| Error::Thread {
            thread: "writer".into(),
            reason: format!("records for run {run_id}, which was never started"),
        })
    }

    fn buffer_batch(&mut self, batch: BatchStats) -> Result<()> {
        let buffer = &mut self.state(&batch.run_id)?.buffer;
        buffer.step.extend_from_slice(&batch.steps);
        buffer.example_id.extend_from_slice(&batch.example_ids);
        buffer.label.extend_from_slice(&batch.labels);
        buffer.loss.extend_from_slice(&batch.loss);
        buffer.correct.extend_from_slice(&batch.correct);
        buffer.margin.extend_from_slice(&batch.margin);
        buffer.el2n.extend_from_slice(&batch.el2n);
        Ok(())
    }

    /// Commits an epoch, in an order that keeps every crash point recoverable: presentations,
    /// then the checkpoint, then the epochs rows, and last the `runs` row that declares the
    /// epoch complete (what `--resume` trusts). Files of a later epoch that a crash left behind
    /// are overwritten when the epoch is trained again.
    fn commit_epoch(&mut self, summary: EpochSummary, checkpoint: Option<PathBuf>) -> Result<()> {
        let layout = self.layout.clone();
        let state = self.state(&summary.run_id)?;
        let buffer = std::mem::take(&mut state.buffer);
        let (run_id, epoch) = (state.info.run_id.clone(), summary.epoch);
        let presentation_file = (!buffer.is_empty())
            .then(|| layout.presentations_file(state.info.dataset.name(), &run_id, epoch));
        state.epochs.push(summary);
        state.progress.epochs_completed = epoch;
        let mut epochs = schema::epochs_batch(&state.epochs)?;
        if let Some(earlier) = &state.earlier_epochs {
            epochs = arrow::compute::concat_batches(&epochs.schema(), [earlier, &epochs])?;
        }
        let sorted = buffer.sorted_by_example_id();
        let dynamics_started = Instant::now();
        let dynamics_file = match &mut state.dynamics {
            Some(dynamics) if !sorted.is_empty() => {
                add_epoch(dynamics, epoch, &sorted)?;
                Some(dynamics_batch(&run_id, dynamics, &state.labels)?)
            }
            _ => None,
        };
        let mut dynamics_seconds = dynamics_started.elapsed().as_secs_f64();
        let (mut presentations_crc32, mut dynamics_crc32) = (None, None);
        if let Some(path) = presentation_file {
            let batch = sorted.to_batch()?;
            let digest = write_parquet_atomically(&path, &batch, vec![])?;
            presentations_crc32 = Some(digest.crc32);
            self.report.presentation_bytes += digest.bytes;
            self.report.presentation_rows += buffer.len() as u64;
            self.report.presentation_files += 1;
        }
        crash::point("epoch-after-presentations", None);
        if let Some(batch) = dynamics_file {
            let started = Instant::now();
            let digest = write_dynamics_file(&layout.run_file(Table::Dynamics, &run_id), &batch)?;
            dynamics_crc32 = Some(digest.crc32);
            dynamics_seconds += started.elapsed().as_secs_f64();
        }
        self.report.dynamics_seconds += dynamics_seconds;
        crash::point("epoch-after-dynamics", None);
        if let Some(temp) = checkpoint {
            rename_durably(&temp, &layout.checkpoint_file(&run_id, epoch))?;
        }
        crash::point("epoch-after-checkpoint", None);
        let digest =
            write_parquet_atomically(&layout.run_file(Table::Epochs, &run_id), &epochs, vec![])?;
        crash::point("epoch-after-epochs-rows", None);
        let checksums = &mut self.state(&run_id)?.checksums;
        checksums.epochs = Some(digest.crc32);
        if let Some(crc32) = presentations_crc32 {
            checksums.presentations.insert(epoch, crc32);
        }
        checksums.dynamics = dynamics_crc32.or(checksums.dynamics);
        self.write_run_row(&run_id)?;
        crash::point("epoch-after-runs-row", None);
        remove_superseded_checkpoints(&layout, &run_id, epoch)
    }

    fn end_run(&mut self, run_id: &str, status: RunStatus) -> Result<()> {
        let state = self.state(run_id)?;
        state.progress.status = status;
        state.progress.finished_at_ms = Some(now_ms());
        self.write_run_row(run_id)
    }

    /// Commits the run's `runs` row; when that fails (a full disk), once more after freeing
    /// the space reserve, so that a run's status can always be recorded.
    fn write_run_row(&mut self, run_id: &str) -> Result<()> {
        let state = &self.runs[run_id];
        let batch = schema::runs_batch(&state.info, &state.progress)?;
        let path = self.layout.run_file(Table::Runs, run_id);
        let checksums = state.checksums.metadata();
        let written = write_parquet_atomically(&path, &batch, checksums.clone());
        match written {
            Err(_) if self.reserve.release() => write_parquet_atomically(&path, &batch, checksums)?,
            other => other?,
        };
        Ok(())
    }

    /// Marks runs that are still running as failed, best effort: this runs on the way out of
    /// an error, so a second failure is not reported.
    fn fail_open_runs(&mut self, reason: &str) {
        let open: Vec<RunId> = self
            .runs
            .iter()
            .filter(|(_, s)| s.progress.status == RunStatus::Running)
            .map(|(id, _)| id.clone())
            .collect();
        for run_id in open {
            let _ = self.end_run(&run_id, RunStatus::Failed(reason.to_string()));
        }
    }
}

/// Adds one epoch's presentations to a run's dynamics.
///
/// # Errors
/// [`Error::Thread`] when the trainer sent an example id outside the dataset (a bug).
fn add_epoch(
    dynamics: &mut RunDynamics,
    epoch: u32,
    presentations: &PresentationColumns,
) -> Result<()> {
    dynamics.begin_epoch(epoch);
    let sums = Some((&presentations.loss[..], &presentations.margin[..]));
    let correct = presentations.correct.iter().copied();
    dynamics.observe_columns(&presentations.example_id, correct, sums).map_err(|id| Error::Thread {
        thread: "writer".into(),
        reason: format!(
            "example_id {id} outside the dataset's {} examples",
            dynamics.num_examples()
        ),
    })
}

/// Removes the run's checkpoints of epochs before `epoch` (normally the previous one; more
/// when a crash came between a commit and this clean-up).
fn remove_superseded_checkpoints(layout: &Layout, run_id: &str, epoch: u32) -> Result<()> {
    let dir = layout.checkpoint_dir(run_id);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let path = entry.at(&dir)?.path();
        if layout.checkpoint_epoch(&path).is_some_and(|e| e < epoch) {
            std::fs::remove_file(&path).at(&path)?;
        }
    }
    Ok(())
}

/// Removes the temporary files a crashed process left for `run`. The caller holds the run's
/// lock, so no live process writes any of them; call it before the run's trainer starts.
///
/// # Errors
/// [`Error::Io`] naming a file or directory that cannot be listed or removed.
pub fn remove_stale_temporaries(layout: &Layout, run: &RunInfo) -> Result<()> {
    let own_table_temp = super::temporary_prefix(&format!("{}.parquet", run.run_id));
    let mut dirs: Vec<(PathBuf, bool)> =
        Table::PER_RUN.into_iter().map(|table| (layout.table_dir(table), false)).collect();
    dirs.push((layout.run_presentations_dir(run.dataset.name(), &run.run_id), true));
    dirs.push((layout.checkpoint_dir(&run.run_id), true));
    while let Some((dir, whole)) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let entry = entry.at(&dir)?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if whole && entry.file_type().at(&path)?.is_dir() {
                dirs.push((path, true));
            } else if name.ends_with(".tmp") && (whole || name.starts_with(&own_table_temp)) {
                log::debug!("removing {}, left by a crashed process", path.display());
                std::fs::remove_file(&path).at(&path)?;
            }
        }
    }
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
