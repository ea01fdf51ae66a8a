//! `fstream train --resume`: continuing one run by id, or every run of an experiment given by
//! its flags. A resumed run keeps its recorded configuration: flags that contradict it are
//! refused, its data must have the recorded fingerprint, and device and threads stay as
//! recorded unless given (then `runs` records what was used).

use std::path::PathBuf;

use fstream::Error;
use fstream::experiment::PlannedRun;
use fstream::experiment::plan::{DEFAULT_DATA_DIR, plan_new_runs};
use fstream::experiment::resume::{Matched, ResumeOverrides, match_stored, resumed};
use fstream::record::RunInfo;
use fstream::store::layout::Layout;
use fstream::store::runs::{read_all_runs, read_run};
use fstream::store::schema::RunStatus;

use fstream::config::Device;
use fstream_cli::train::TrainArgs;

use crate::train::{data_cache, device, new_runs_data_dir};

/// Flags that say where things are and how to run, not what is trained: a resumed run may
/// get other values for these.
const EXECUTION_FLAGS: [&str; 14] = [
    "resume",
    "sorting_runs",
    "run_id",
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
const CONFIG_FLAGS: [(&str, &[&str]); 30] = [
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
    ("record_columns", &["record_el2n"]),
];

/// `--resume RUN_ID`: the stored run, ready to continue after its last committed epoch.
pub fn resume_run(
    args: &TrainArgs,
    explicit: &[String],
    run_id: &str,
    quiet: bool,
) -> anyhow::Result<PlannedRun> {
    let layout = Layout::new(&args.output_dir);
    let stored = read_run(&layout, run_id)?;
    check_flags_against(args, explicit, &stored.info)?;
    let dataset = stored.info.dataset;
    let recorded_dir = Some(&stored.info.data_dir).filter(|d| !d.is_empty());
    let dir = args
        .data_dir
        .clone()
        .or_else(|| recorded_dir.map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let mut data = data_cache(args, dir, dataset, quiet)?;
    let overrides = ResumeOverrides {
        epochs: given(explicit, "epochs").then_some(args.epochs),
        threads: if given(explicit, "threads") { args.threads } else { None },
        device: device_override(args, explicit)?,
    };
    Ok(resumed(&args.output_dir, stored, &mut data, overrides)?)
}

/// `--resume` without an id: the runs that the flags describe, each resumed when the root
/// holds an incomplete run of the same experiment, skipped when it holds a complete one, and
/// new otherwise.
pub fn resume_experiment(
    args: &TrainArgs,
    explicit: &[String],
    quiet: bool,
) -> anyhow::Result<Vec<PlannedRun>> {
    let plan = args.experiment_spec(device(args)?)?;
    let mut data = data_cache(args, new_runs_data_dir(args), plan.dataset, quiet)?;
    let planned = plan_new_runs(&plan, &mut data)?;
    let stored = read_all_runs(&Layout::new(&args.output_dir))?;
    let mut runs = Vec::new();
    for run in planned {
        match match_stored(&run.info, &stored) {
            Matched::Complete(done) => {
                log::info!(
                    "run {} (seed {}) is already complete",
                    done.info.run_id,
                    done.info.seed
                );
            }
            Matched::Resume(earlier) => {
                let overrides = ResumeOverrides {
                    epochs: Some(run.info.epochs),
                    threads: given(explicit, "threads").then_some(plan.base.intra_op_threads),
                    device: device_override(args, explicit)?,
                };
                runs.push(resumed(&args.output_dir, earlier, &mut data, overrides)?);
            }
            Matched::New => {
                log::info!("seed {} has no run yet: starting {}", run.info.seed, run.info.run_id);
                runs.push(run);
            }
        }
    }
    Ok(runs)
}

/// `--resume --run-id ID` of a run the root holds: nothing when it is complete (and not
/// extended by --epochs), the run resumed otherwise.
pub fn resume_unless_complete(
    args: &TrainArgs,
    explicit: &[String],
    run_id: &str,
    quiet: bool,
) -> anyhow::Result<Vec<PlannedRun>> {
    let stored = read_run(&Layout::new(&args.output_dir), run_id)?;
    let wanted = if given(explicit, "epochs") { args.epochs } else { stored.info.epochs };
    if stored.status == RunStatus::Complete && stored.info.epochs >= wanted {
        check_flags_against(args, explicit, &stored.info)?;
        log::info!("run {run_id} is already complete");
        return Ok(Vec::new());
    }
    Ok(vec![resume_run(args, explicit, run_id, quiet)?])
}

/// The device the flags ask for, when --device or --no-cuda is given.
fn device_override(args: &TrainArgs, explicit: &[String]) -> Result<Option<Device>, Error> {
    let given = given(explicit, "device") || given(explicit, "no_cuda");
    given.then(|| device(args)).transpose()
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
        args.dataset = Some(recorded.dataset);
    }
    if args.seed.is_empty() && args.seeds.is_none() {
        args.seed = vec![recorded.seed];
    }
    let plan = args.experiment_spec(device(&args)?)?;
    if plan.seeds.len() != 1 {
        return Err(Error::Config(format!(
            "--resume {} continues one run, but the seed flags name {}",
            recorded.run_id,
            plan.seeds.len()
        )));
    }
    let planned = serde_json::to_value(plan.configured_info(plan.seeds[0]))
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_train_flag_is_an_execution_or_a_configuration_flag() {
        let command = fstream_cli::Cli::command();
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
