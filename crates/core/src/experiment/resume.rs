//! Resuming runs: a stored run turned back into a run ready to train after its last committed
//! epoch, and the runs of a planned experiment matched with those the root already holds.

use std::path::Path;

use crate::config::Cutout;
use crate::config::TrainConfig;
use crate::config::{Device, LrSchedule, OptimizerConfig};
use crate::data::corrupt::PixelNoise;
use crate::error::{Error, Result};
use crate::record::RunInfo;
use crate::store::layout::Layout;
use crate::store::runs::StoredRun;
use crate::store::schema::RunStatus;

use super::PlannedRun;
use super::plan::{DataCache, with_pixel_noise};

/// What a resume may change: the length (`epochs`, to extend a run), and where it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResumeOverrides {
    /// Train to this many epochs instead of the recorded number.
    pub epochs: Option<u32>,
    /// libtorch threads instead of the recorded number.
    pub threads: Option<usize>,
    /// Device instead of the recorded one.
    pub device: Option<Device>,
}

/// What to do with one planned run of an experiment, given the runs the root holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Matched {
    /// A complete run of the same experiment exists: nothing to do.
    Complete(StoredRun),
    /// An incomplete run of the same experiment exists: resume it (the most advanced one).
    Resume(StoredRun),
    /// No run of it exists: start the planned run.
    New,
}

/// Matches a planned run with the stored runs of the same experiment
/// ([`RunInfo::same_experiment`]).
pub fn match_stored(planned: &RunInfo, stored: &[StoredRun]) -> Matched {
    let same: Vec<&StoredRun> = stored.iter().filter(|s| s.info.same_experiment(planned)).collect();
    if let Some(done) =
        same.iter().find(|s| s.status == RunStatus::Complete && s.info.epochs >= planned.epochs)
    {
        return Matched::Complete((*done).clone());
    }
    match same.into_iter().max_by_key(|s| s.epochs_completed) {
        Some(earlier) => Matched::Resume(earlier.clone()),
        None => Matched::New,
    }
}

/// A stored run ready to continue: data checked against the recorded fingerprint, the
/// checkpoint found, device and threads as recorded unless `overrides` say otherwise (then
/// `runs` records what is used), and `overrides.epochs` as the new length.
///
/// # Errors
/// [`Error::Config`] when the run is complete (and not extended), `epochs` is below the
/// committed epochs, the data differ from the recorded fingerprint, or the recorded device is
/// missing; [`Error::Format`] when its checkpoint is missing.
pub fn resumed(
    root: &Path,
    stored: StoredRun,
    data_cache: &mut DataCache,
    overrides: ResumeOverrides,
) -> Result<PlannedRun> {
    let ResumeOverrides { epochs, threads, device } = overrides;
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
            data_cache.dir().display(),
            info.data_dir,
            info.data_sha256
        )));
    }
    let layout = Layout::new(root);
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
    let device = match device {
        Some(device) => device,
        None => recorded_device(&info)?,
    };
    info.epochs = wanted_epochs;
    info.device = device.name();
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
        mode: info.pixel_noise_mode,
    };
    let (data, _) = with_pixel_noise(&data, &pixel_noise, &train_ids, info.seed)?;
    log::info!("resuming run {run_id} after epoch {epochs_completed} of {wanted_epochs}");
    Ok(PlannedRun { info, examples, data, config, train_ids, resume })
}

/// The device a run was recorded with (`cpu`, `cuda(N)`; whether it exists here is checked
/// when training starts).
fn recorded_device(info: &RunInfo) -> Result<Device, Error> {
    Device::from_name(&info.device).ok_or_else(|| {
        Error::Config(format!(
            "run {}: unknown recorded device {:?}; pass --device",
            info.run_id, info.device
        ))
    })
}

/// The training configuration a stored run was started with: the inverse of
/// [`super::plan::ExperimentSpec::configured_info`] (tested), on `device` with `threads`
/// (default: as recorded).
fn stored_config(
    info: &RunInfo,
    device: Device,
    threads: Option<usize>,
) -> Result<TrainConfig, Error> {
    Ok(TrainConfig {
        model: info.model,
        epochs: info.epochs,
        batch_size: info.batch_size as usize,
        optimizer: OptimizerConfig {
            kind: info.optimizer,
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
        record_el2n: info.record_el2n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelKind;
    use crate::data::DatasetKind;
    use crate::data::corrupt::PixelNoiseMode;
    use crate::experiment::plan::{ExperimentSpec, RemovalFlags};
    use crate::fidelity::Fidelity;

    #[test]
    fn the_stored_row_gives_back_the_training_configuration() {
        let base = TrainConfig {
            model: ModelKind::ResNet18,
            epochs: 7,
            batch_size: 32,
            optimizer: OptimizerConfig { lr: 0.05, ..OptimizerConfig::CIFAR },
            lr_schedule: LrSchedule { milestones: vec![2, 5], gamma: 0.5, delay: 1 },
            dropout: false,
            augment: true,
            cutout: Some(Cutout { holes: 2, length: 8 }),
            seed: 0,
            device: Device::Cpu,
            intra_op_threads: 3,
            record: true,
            record_el2n: true,
        };
        let spec = ExperimentSpec {
            dataset: DatasetKind::Cifar10,
            run_id: None,
            seeds: vec![9],
            base: base.clone(),
            sorting_file: None,
            sorting_runs: None,
            removal_flags: RemovalFlags::default(),
            fidelity: Fidelity::Faithful,
            permutation_seed: 0,
            noise_percent_labels: 0.0,
            pixel_noise: PixelNoise { percent: 0.0, std: 0.0, mode: PixelNoiseMode::default() },
        };
        let info = spec.configured_info(9);
        let back = stored_config(&info, Device::Cpu, None).unwrap();
        assert_eq!(back, TrainConfig { seed: 9, ..base });
        // Through the JSON of the runs row, too.
        let json = serde_json::to_string(&info).unwrap();
        let stored: RunInfo = serde_json::from_str(&json).unwrap();
        assert_eq!(stored_config(&stored, Device::Cpu, Some(1)).unwrap().intra_op_threads, 1);
        assert_eq!(stored, info);
    }
}
