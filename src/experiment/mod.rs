//! An experiment: planned by [`plan`] (and resumed by [`resume`]), then one or more runs trained concurrently, one thread each, all feeding one
//! writer thread through the bounded record channel. A failing run is marked failed in the
//! `runs` table without stopping the others; a failing writer stops everything, and its error
//! is the one reported.

pub mod import;
pub mod plan;
pub mod resume;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::data::Splits;
use crate::error::{Error, Result};
use crate::record::{self, ExampleTable, Record, RecordSender, RunInfo, RunStart};
use crate::store::layout::Layout;
use crate::store::writer::{WriterReport, remove_stale_temporaries, spawn_writer};
use crate::train::{Checkpoints, Progress, TrainConfig, TrainSet, train_run};

/// One run to train.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// Its configuration as stored in `runs`.
    pub info: RunInfo,
    /// Its `examples` table (labels trained on, membership).
    pub examples: ExampleTable,
    /// Its data (shared between runs unless a run adds pixel noise).
    pub data: Arc<Splits>,
    /// How to train it.
    pub config: TrainConfig,
    /// Example ids it trains on.
    pub train_ids: Vec<u32>,
    /// For a resumed run: epochs already committed, and the checkpoint after the last one.
    pub resume: Option<(u32, PathBuf)>,
}

/// Trains `runs`, storing everything under `root`. `on_progress` reports progress and can stop
/// every run (see [`train_run`]).
///
/// # Errors
/// The writer's error if it failed (storage problems), else the first run's error.
pub fn run_experiment(
    root: &Path,
    runs: &[PlannedRun],
    on_progress: &(dyn Fn(Progress<'_>) -> ControlFlow<()> + Sync),
) -> Result<WriterReport> {
    for run in runs {
        remove_stale_temporaries(&Layout::new(root), &run.info)?;
    }
    let (mut sender, records) = record::channel();
    let writer = spawn_writer(root.to_path_buf(), records)?;
    let mut started = true;
    for run in runs {
        let start = RunStart {
            run: run.info.clone(),
            examples: run.examples.clone(),
            resume_after: run.resume.as_ref().map_or(0, |(after, _)| *after),
        };
        started &= sender.send(Record::RunStarted(Box::new(start))).is_ok();
    }
    let run_results: Vec<Result<()>> = if started {
        std::thread::scope(|scope| {
            let handles: Vec<_> = runs
                .iter()
                .map(|run| {
                    let mut sender = sender.clone();
                    std::thread::Builder::new()
                        .name(format!("train-{}", run.info.run_id))
                        .spawn_scoped(scope, move || {
                            train_and_report(root, run, &mut sender, on_progress)
                        })
                        .map_err(|e| format!("cannot start its thread: {e}"))
                })
                .collect();
            handles
                .into_iter()
                .zip(runs)
                .map(|(handle, run)| {
                    let failure = match handle {
                        Ok(handle) => match handle.join() {
                            Ok(result) => return result,
                            Err(_) => "panicked".to_string(),
                        },
                        Err(cannot_start) => cannot_start,
                    };
                    let run_id = run.info.run_id.clone();
                    let ended = Record::RunEnded { run_id, error: Some(failure.clone()) };
                    let _ = sender.clone().send(ended);
                    Err(Error::Thread {
                        thread: format!("train-{}", run.info.run_id),
                        reason: failure,
                    })
                })
                .collect()
        })
    } else {
        Vec::new()
    };
    drop(sender);
    let report = writer
        .join()
        .map_err(|_| Error::Thread { thread: "writer".into(), reason: "panicked".into() })??;
    run_results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(report)
}

fn train_and_report(
    root: &Path,
    run: &PlannedRun,
    sender: &mut RecordSender,
    on_progress: &(dyn Fn(Progress<'_>) -> ControlFlow<()> + Sync),
) -> Result<()> {
    let layout = Layout::new(root);
    let temp_path = |epoch| layout.checkpoint_temp_file(&run.info.run_id, epoch);
    let checkpoints = Checkpoints { temp_path: &temp_path, resume: run.resume.clone() };
    let result = train_run(
        &run.info.run_id,
        &run.config,
        &run.data,
        TrainSet { ids: &run.train_ids, labels: &run.examples.labels },
        &checkpoints,
        sender,
        on_progress,
    );
    let error = result.as_ref().err().map(ToString::to_string);
    let _ = sender.send(Record::RunEnded { run_id: run.info.run_id.clone(), error });
    result
}
