//! `fstream train`: runs planned from the flags (`fstream_cli::train`) or resumed
//! ([`crate::resume`]), trained with progress bars and one log line per epoch, and stopped
//! cleanly by SIGINT or SIGTERM.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use fstream::Error;
use fstream::data::{DatasetKind, cifar, mnist};
use fstream::experiment::PlannedRun;
use fstream::experiment::plan::{DEFAULT_DATA_DIR, DataCache, plan_new_runs};
use fstream::record::RunId;
use fstream::store::layout::{Layout, Table};
use fstream::store::lock::{RunLock, lock_run};
use fstream::sweep::shell_quoted;
use fstream_cli::progress::Bars;
use fstream_cli::train::{DeviceArg, TrainArgs};
use fstream_cli::{counted, signals};
use fstream_torch::device::{DeviceRequest, resolve};
use fstream_torch::experiment::run_experiment;
use fstream_torch::train::Progress;
use indicatif::ProgressBar;

use crate::resume;

/// `fstream train`. `explicit` lists the ids of the flags given on the command line (a
/// resumed run checks them against its recorded configuration).
pub fn run(args: TrainArgs, explicit: &[String], quiet: bool) -> anyhow::Result<()> {
    signals::install_stop_handlers();
    let existing_run_id = args
        .run_id
        .as_deref()
        .filter(|id| Layout::new(&args.output_dir).run_file(Table::Runs, id).is_file());
    let runs = match (&args.resume, &args.run_id, existing_run_id) {
        (Some(Some(_)), Some(_), _) => {
            return Err(Error::Config(
                "--resume RUN_ID and --run-id: give the id once (--resume --run-id ID starts the run if it does not exist)".into(),
            )
            .into());
        }
        (Some(Some(run_id)), None, _) => vec![resume::resume_run(&args, explicit, run_id, quiet)?],
        (Some(None), None, _) => resume::resume_experiment(&args, explicit, quiet)?,
        (Some(None), Some(_), Some(run_id)) => {
            resume::resume_unless_complete(&args, explicit, run_id, quiet)?
        }
        (None, Some(_), Some(run_id)) => return Err(already_exists(&args, run_id)),
        (None, _, _) | (Some(None), Some(_), None) => {
            let plan = args.experiment_spec(device(&args)?)?;
            let mut data = data_cache(&args, new_runs_data_dir(&args), plan.dataset, quiet)?;
            plan_new_runs(&plan, &mut data)?
        }
    };
    if runs.is_empty() {
        log::info!("nothing to train: every run of this experiment is complete");
        return Ok(());
    }
    // A --run-id run that did not exist must still not exist once it is locked.
    let new_run_id = args.run_id.as_deref().filter(|_| existing_run_id.is_none());
    train_runs(&args, &runs, new_run_id, quiet)
}

/// The error for starting a run whose id the root already holds.
fn already_exists(args: &TrainArgs, run_id: &str) -> anyhow::Error {
    Error::Config(format!(
        "run {run_id} already exists under {}; continue it with --resume --run-id {run_id}",
        args.output_dir.display()
    ))
    .into()
}

fn train_runs(
    args: &TrainArgs,
    runs: &[PlannedRun],
    new_run_id: Option<&str>,
    quiet: bool,
) -> anyhow::Result<()> {
    if args.output_dir.exists() && !args.output_dir.is_dir() {
        return Err(Error::Config(format!(
            "--output-dir {}: exists and is not a directory",
            args.output_dir.display()
        ))
        .into());
    }
    let layout = Layout::new(&args.output_dir);
    let _locks: Vec<RunLock> =
        runs.iter().map(|r| lock_run(&layout, &r.info.run_id)).collect::<Result<_, _>>()?;
    // Checked under the lock: two processes given the same --run-id cannot both start it.
    if let Some(id) = new_run_id.filter(|id| layout.run_file(Table::Runs, id).exists()) {
        return Err(already_exists(args, id));
    }
    for run in runs {
        log::info!(
            "run {}: {} seed {}, {} of {} examples, {}, {} on {}",
            run.info.run_id,
            run.info.dataset,
            run.info.seed,
            run.info.train_examples,
            run.info.dataset_examples,
            counted(run.info.epochs as usize, "epoch"),
            counted(run.info.intra_op_threads as usize, "thread"),
            run.info.device
        );
    }
    let bars = Bars::new(args.progress, quiet);
    let run_bars: Mutex<HashMap<RunId, ProgressBar>> = Mutex::new(
        runs.iter()
            .map(|r| {
                let prefix = format!("seed {:>3}", r.info.seed);
                (r.info.run_id.clone(), bars.add(prefix, r.train_ids.len() as u64, "examples"))
            })
            .collect(),
    );
    let epochs = runs.iter().map(|r| r.config.epochs).max().unwrap_or_default();
    let on_progress = |progress: Progress<'_>| {
        let bars = run_bars.lock().unwrap_or_else(|p| p.into_inner());
        let flow =
            if signals::interrupted() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) };
        match progress {
            Progress::Batch { run_id, epoch, done, .. } => {
                if let Some(bar) = bars.get(run_id) {
                    bar.set_message(format!("epoch {epoch}/{epochs}"));
                    bar.set_position(done as u64);
                }
            }
            Progress::Epoch(summary) => log::info!(
                "run {} epoch {}/{epochs} (lr {}): train acc {:.4} loss {:.4}, test acc {:.4} loss {:.4}, {:.0} examples/s, {:.2} s waiting on the writer",
                summary.run_id,
                summary.epoch,
                summary.lr,
                summary.train_acc,
                summary.train_loss,
                summary.test_acc,
                summary.test_loss,
                summary.examples as f64 / summary.train_seconds.max(1e-9),
                summary.channel_wait_seconds
            ),
        }
        flow
    };
    let result = run_experiment(&args.output_dir, runs, &on_progress);
    if matches!(result, Err(Error::Interrupted)) {
        for run in runs {
            log::warn!(
                "run {0} stopped; continue it with: fstream train --resume {0} --output-dir {1} --data-dir {2}",
                run.info.run_id,
                shell_quoted(&args.output_dir.display().to_string()),
                shell_quoted(&run.info.data_dir),
            );
        }
    }
    let report = result.with_context(|| format!("training into {}", args.output_dir.display()))?;
    drop(bars);
    log::info!(
        "wrote {} ({:.2} bytes each) in {} under {}",
        counted(report.presentation_rows as usize, "presentation"),
        report.presentation_bytes as f64 / report.presentation_rows.max(1) as f64,
        counted(report.presentation_files as usize, "presentation file"),
        args.output_dir.display()
    );
    for run in runs {
        println!("{}", run.info.run_id);
    }
    Ok(())
}

/// The data directory of new runs: --data-dir or the default.
pub fn new_runs_data_dir(args: &TrainArgs) -> PathBuf {
    args.data_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

/// Downloads the dataset's missing files into `dir` (unless --no-download), then a cache that
/// loads them once per permutation.
pub fn data_cache(
    args: &TrainArgs,
    dir: PathBuf,
    dataset: DatasetKind,
    quiet: bool,
) -> anyhow::Result<DataCache> {
    download_missing(args, &dir, dataset, quiet)?;
    Ok(DataCache::new(dir, dataset))
}

/// Downloads `dataset`'s missing files (unless `--no-download`), with a progress bar.
fn download_missing(
    args: &TrainArgs,
    data_dir: &std::path::Path,
    dataset: DatasetKind,
    quiet: bool,
) -> anyhow::Result<()> {
    if args.no_download {
        return Ok(());
    }
    let format = cifar::format_of(dataset);
    let mirrors: Vec<String> = match (args.mirrors.is_empty(), &format) {
        (false, _) => args.mirrors.clone(),
        (true, Some(_)) => vec![cifar::DEFAULT_MIRROR.to_string()],
        (true, None) => mnist::DEFAULT_MIRRORS.iter().map(|m| m.to_string()).collect(),
    };
    let bars = Bars::new(args.progress, quiet);
    let mut current: Option<(String, ProgressBar)> = None;
    let mut on_progress = |file: &str, done, total: Option<u64>| {
        if current.as_ref().is_none_or(|(name, _)| name != file) {
            log::info!("downloading {file}");
            current =
                Some((file.to_string(), bars.add(file.to_string(), total.unwrap_or(0), "bytes")));
        }
        if let Some((_, bar)) = &current {
            bar.set_position(done);
        }
    };
    match format {
        Some(format) => {
            cifar::download_missing(data_dir, &format, &mirrors, &mut |done, total| {
                on_progress(format.archive, done, total)
            })?
        }
        None => mnist::download_missing(data_dir, &mirrors, &mut on_progress)?,
    }
    Ok(())
}

/// The device the flags ask for, as this libtorch resolves it.
pub fn device(args: &TrainArgs) -> Result<fstream::config::Device, Error> {
    resolve(match (args.no_cuda, args.device) {
        (true, _) | (false, DeviceArg::Cpu) => DeviceRequest::Cpu,
        (false, DeviceArg::Auto) => DeviceRequest::Auto,
        (false, DeviceArg::Cuda) => DeviceRequest::Cuda,
    })
}
