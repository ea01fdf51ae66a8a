//! `fstream train --resume`: continuing one run by id, or every run of an experiment given by
//! its flags. A resumed run keeps its recorded configuration: flags that contradict it are
//! refused, its data must have the recorded fingerprint, and device and threads stay as
//! recorded unless given (then `runs` records what was used).

use std::path::PathBuf;

use fstream::Error;
use fstream::data::DatasetKind;
use fstream::data::batch::Cutout;
use fstream::data::corrupt::PixelNoise;
use fstream::experiment::PlannedRun;
use fstream::record::RunInfo;
use fstream::store::layout::Layout;
use fstream::store::runs::{StoredRun, read_all_runs, read_run};
use fstream::store::schema::RunStatus;
use fstream::train::TrainConfig;
use fstream::train::optim::{LrSchedule, OptimizerConfig};

use super::{
    DEFAULT_DATA_DIR, DataCache, TrainArgs, TrainPlan, configured_info, device, device_name,
    plan_new_runs, with_pixel_noise,
};

/// Flags that say where things are and how to run, not what is trained: a resumed run may
/// get other values for these.
const EXECUTION_FLAGS: [&str; 12] = [
    "resume",
    "output_dir",
    "data_dir",
    "device",
    "no_cuda",
    "threads",
    "progress",
    "mirrors",
    "no_download",
    "epochs",
    "verbose",
    "quiet",
];

/// Every flag that configures training, with the `runs` fields it sets: what `--resume
/// RUN_ID` compares when the flag is given.
const CONFIG_FLAGS: [(&str, &[&str]); 29] = [
    ("dataset", &["dataset"]),
    ("seed", &["seed"]),
    ("seeds", &["seed"]),
    ("model", &["model"]),
    ("batch_size", &["batch_size"]),
    ("optimizer", &["optimizer"]),
    ("lr", &["lr"]),
    ("momentum", &["momentum"]),
    ("no_nesterov", &["nesterov"]),
    ("weight_decay", &["weight_decay"]),
    ("lr_milestones", &["lr_milestones"]),
    ("lr_gamma", &["lr_gamma"]),
    ("fidelity", &["lr_schedule_delay", "permutation_seed"]),
    ("data_augmentation", &["data_augmentation"]),
    ("cutout", &["cutout_holes", "cutout_length"]),
    ("n_holes", &["cutout_holes"]),
    ("length", &["cutout_length"]),
    ("no_dropout", &["no_dropout"]),
    ("permutation_seed", &["permutation_seed"]),
    ("sorting_file", &["sorting_file"]),
    ("input_dir", &["sorting_file"]),
    ("remove_n", &["remove_n"]),
    ("keep_lowest_n", &["keep_lowest_n"]),
    ("remove_subsample", &["remove_subsample"]),
    ("noise_percent_labels", &["noise_percent_labels"]),
    ("noise_percent_pixels", &["noise_percent_pixels"]),
    ("noise_std_pixels", &["noise_std_pixels"]),
    ("pixel_noise_mode", &["pixel_noise_mode"]),
    ("no_record", &["record_presentations"]),
];

/// `--resume RUN_ID`: the stored run, ready to continue after its last committed epoch.
pub(super) fn resume_run(
    args: &TrainArgs,
    explicit: &[String],
    run_id: &str,
    quiet: bool,
) -> anyhow::Result<PlannedRun> {
    let layout = Layout::new(&args.output_dir);
    let stored = read_run(&layout, run_id)?;
    check_flags_against(args, explicit, &stored.info)?;
    let dataset: DatasetKind = stored.info.dataset.parse().map_err(Error::Config)?;
    let recorded_dir = Some(&stored.info.data_dir).filter(|d| !d.is_empty());
    let dir = args
        .data_dir
        .clone()
        .or_else(|| recorded_dir.map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let mut data = DataCache::new_in(args, dir, dataset, quiet)?;
    let epochs = given(explicit, "epochs").then_some(args.epochs);
    let threads = if given(explicit, "threads") { args.threads } else { None };
    Ok(resumed(args, explicit, stored, &mut data, epochs, threads)?)
}

/// `--resume` without an id: the runs that the flags describe, each resumed when the root
/// holds an incomplete run of the same experiment, skipped when it holds a complete one, and
/// new otherwise.
pub(super) fn resume_experiment(
    args: &TrainArgs,
    explicit: &[String],
    quiet: bool,
) -> anyhow::Result<Vec<PlannedRun>> {
    let plan = TrainPlan::try_from(args)?;
    let mut data = DataCache::new(args, plan.dataset, quiet)?;
    let planned = plan_new_runs(args, &plan, &mut data)?;
    let stored = read_all_runs(&Layout::new(&args.output_dir))?;
    let threads = given(explicit, "threads").then_some(plan.base.intra_op_threads);
    let mut runs = Vec::new();
    for run in planned {
        let same: Vec<&StoredRun> =
            stored.iter().filter(|s| s.info.same_experiment(&run.info)).collect();
        let complete =
            |s: &&&StoredRun| s.status == RunStatus::Complete && s.info.epochs >= run.info.epochs;
        if let Some(done) = same.iter().find(complete) {
            log::info!("run {} (seed {}) is already complete", done.info.run_id, done.info.seed);
            continue;
        }
        match same.iter().max_by_key(|s| s.epochs_completed) {
            Some(&earlier) => {
                let epochs = Some(run.info.epochs);
                let earlier = earlier.clone();
                runs.push(resumed(args, explicit, earlier, &mut data, epochs, threads)?);
            }
            None => {
                log::info!("seed {} has no run yet: starting {}", run.info.seed, run.info.run_id);
                runs.push(run);
            }
        }
    }
    Ok(runs)
}

fn given(explicit: &[String], id: &str) -> bool {
    explicit.iter().any(|e| e == id)
}

/// Refuses configuration flags that contradict `recorded`, naming the flag and the recorded
/// value; flags that agree with it are accepted.
fn check_flags_against(
    args: &TrainArgs,
    explicit: &[String],
    recorded: &RunInfo,
) -> Result<(), Error> {
    let config_flags: Vec<&String> =
        explicit.iter().filter(|id| !EXECUTION_FLAGS.contains(&id.as_str())).collect();
    if config_flags.is_empty() {
        return Ok(());
    }
    let mut args = args.clone();
    if args.dataset.is_none() {
        args.dataset = Some(recorded.dataset.parse().map_err(Error::Config)?);
    }
    if args.seed.is_empty() && args.seeds.is_none() {
        args.seed = vec![recorded.seed];
    }
    let plan = TrainPlan::try_from(&args)?;
    if plan.seeds.len() != 1 {
        return Err(Error::Config(format!(
            "--resume {} continues one run, but the seed flags name {}",
            recorded.run_id,
            plan.seeds.len()
        )));
    }
    let planned = serde_json::to_value(configured_info(&plan, &args, plan.seeds[0]))
        .expect("RunInfo has only plain fields");
    let recorded_json = serde_json::to_value(recorded).expect("RunInfo has only plain fields");
    for flag in config_flags {
        let (_, fields) = CONFIG_FLAGS
            .iter()
            .find(|(id, _)| id == flag)
            .expect("every train flag is an execution or a configuration flag (tested)");
        if let Some(field) = fields.iter().find(|f| planned[**f] != recorded_json[**f]) {
            return Err(Error::Config(format!(
                "--{} contradicts the recorded configuration of run {}: {field} = {}; a resumed run keeps its configuration (drop the flag)",
                flag.replace('_', "-"),
                recorded.run_id,
                recorded_json[*field]
            )));
        }
    }
    Ok(())
}

/// A stored run ready to continue: data checked against the recorded fingerprint, the
/// checkpoint found, device and threads as recorded unless `--device` / `threads` say
/// otherwise, and `epochs` (when given) as the new length.
fn resumed(
    args: &TrainArgs,
    explicit: &[String],
    stored: StoredRun,
    data_cache: &mut DataCache,
    epochs: Option<u32>,
    threads: Option<usize>,
) -> Result<PlannedRun, Error> {
    let StoredRun { mut info, status, epochs_completed, examples } = stored;
    let run_id = info.run_id.clone();
    let wanted_epochs = epochs.unwrap_or(info.epochs);
    if wanted_epochs < epochs_completed {
        return Err(Error::Config(format!(
            "--epochs {wanted_epochs}: run {run_id} has already committed {epochs_completed} epochs"
        )));
    }
    if status == RunStatus::Complete && wanted_epochs <= info.epochs {
        return Err(Error::Config(format!(
            "--resume {run_id}: the run is already complete ({epochs_completed} epochs; --epochs N extends it)"
        )));
    }
    let (data, fingerprint) = data_cache.get(info.permutation_seed.unwrap_or(0))?;
    if !info.data_sha256.is_empty() && info.data_sha256 != fingerprint {
        return Err(Error::Config(format!(
            "--data-dir {}: not the data run {run_id} was trained on (recorded: {} with sha256 {}; found sha256 {fingerprint})",
            data_cache.dir.display(),
            info.data_dir,
            info.data_sha256
        )));
    }
    let layout = Layout::new(&args.output_dir);
    let resume = match epochs_completed {
        0 => None,
        after => {
            let checkpoint = layout.checkpoint_file(&run_id, after);
            if !checkpoint.is_file() {
                return Err(Error::format(&checkpoint, "checkpoint missing: cannot resume"));
            }
            Some((after, checkpoint))
        }
    };
    let device = if given(explicit, "device") || given(explicit, "no_cuda") {
        device(args)?
    } else {
        recorded_device(&info)?
    };
    info.epochs = wanted_epochs;
    info.device = device_name(device);
    info.data_dir = data_cache.absolute_dir();
    if info.data_sha256.is_empty() {
        log::warn!("run {run_id} has no recorded data fingerprint: the data are not checked");
        info.data_sha256 = fingerprint;
    }
    let config = stored_config(&info, device, threads)?;
    info.intra_op_threads = config.intra_op_threads as u32;
    let train_ids: Vec<u32> = (0..examples.in_training_set.len() as u32)
        .filter(|&id| examples.in_training_set[id as usize])
        .collect();
    let pixel_noise = PixelNoise {
        percent: info.noise_percent_pixels,
        std: info.noise_std_pixels,
        mode: info.pixel_noise_mode.parse().unwrap_or_default(),
    };
    let (data, _) = with_pixel_noise(&data, &pixel_noise, &train_ids, info.seed)?;
    log::info!("resuming run {run_id} after epoch {epochs_completed} of {wanted_epochs}");
    Ok(PlannedRun { info, examples, data, config, train_ids, resume })
}

/// The device a run was recorded with (`cpu`, `cuda(N)`).
fn recorded_device(info: &RunInfo) -> Result<tch::Device, Error> {
    let cuda = info.device.strip_prefix("cuda(").and_then(|d| d.strip_suffix(')'));
    match (info.device.as_str(), cuda.map(str::parse::<usize>)) {
        ("cpu", _) => Ok(tch::Device::Cpu),
        (_, Some(Ok(index))) if tch::Cuda::device_count() > index as i64 => {
            Ok(tch::Device::Cuda(index))
        }
        (_, Some(Ok(_))) => Err(Error::Config(format!(
            "run {} was trained on {}, which libtorch does not see here; pass --device to continue elsewhere",
            info.run_id, info.device
        ))),
        _ => Err(Error::Config(format!(
            "run {}: unknown recorded device {:?}; pass --device",
            info.run_id, info.device
        ))),
    }
}
/// The training configuration a stored run was started with (for `--resume`).
fn stored_config(
    info: &RunInfo,
    device: tch::Device,
    threads: Option<usize>,
) -> Result<TrainConfig, Error> {
    Ok(TrainConfig {
        model: info.model.parse().map_err(Error::Config)?,
        epochs: info.epochs,
        batch_size: info.batch_size as usize,
        optimizer: OptimizerConfig {
            kind: info.optimizer.parse().map_err(Error::Config)?,
            lr: info.lr,
            momentum: info.momentum,
            nesterov: info.nesterov,
            weight_decay: info.weight_decay,
        },
        lr_schedule: LrSchedule {
            milestones: info.lr_milestones.clone(),
            gamma: info.lr_gamma,
            delay: info.lr_schedule_delay,
        },
        dropout: !info.no_dropout,
        augment: info.data_augmentation,
        cutout: (info.cutout_holes > 0).then_some(Cutout {
            holes: info.cutout_holes as usize,
            length: i64::from(info.cutout_length),
        }),
        seed: info.seed,
        device,
        intra_op_threads: threads.unwrap_or(info.intra_op_threads as usize).max(1),
        record: info.record_presentations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_train_flag_is_an_execution_or_a_configuration_flag() {
        let command = super::super::super::Cli::command();
        let train = command.find_subcommand("train").unwrap();
        for arg in train.get_arguments() {
            let id = arg.get_id().as_str();
            let known = EXECUTION_FLAGS.contains(&id) || CONFIG_FLAGS.iter().any(|(f, _)| *f == id);
            assert!(known || id == "help", "flag {id} is not classified for --resume");
        }
        let fields = serde_json::to_value(RunInfo::default()).unwrap();
        for (flag, names) in CONFIG_FLAGS {
            for name in names {
                assert!(fields.get(name).is_some(), "{flag}: no runs field {name}");
            }
        }
    }
}
