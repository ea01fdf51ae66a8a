//! An experiment's runs trained concurrently, one thread each, all feeding one writer thread
//! through the bounded record channel. A failing run is marked failed in the `runs` table
//! without stopping the others; a failing writer stops everything, and its error is the one
//! reported.

use std::ops::ControlFlow;
use std::path::Path;

use fstream::experiment::PlannedRun;
use fstream::record::{self, Record, RecordSender, RunStart};
use fstream::store::layout::Layout;
use fstream::store::writer::{WriterReport, remove_stale_temporaries, spawn_writer};
use fstream::{Error, Result};

use crate::train::{Checkpoints, Progress, TrainSet, train_run};

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
        let mut info = run.info.clone();
        if run.resume.is_none() {
            // The planner does not link libtorch; a new run records the one it trains with.
            info.libtorch_version = crate::LIBTORCH_VERSION.into();
        }
        let start = RunStart {
            run: info,
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
    Ok(result?)
}
