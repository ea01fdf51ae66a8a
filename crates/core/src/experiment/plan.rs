//! Planning an experiment: a checked specification (dataset, seeds, training configuration,
//! removal and noise) turned into runs ready to train, each with its data, examples table and
//! `runs` row. The reference's semantics of removal and noise are in docs/semantics.md.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::ModelKind;
use crate::config::TrainConfig;
use crate::config::{LrSchedule, OptimizerConfig, OptimizerKind};
use crate::data::corrupt::{PixelNoise, add_pixel_noise, flip_labels};
use crate::data::selection::{Removal, select};
use crate::data::{self, DatasetKind, Splits};
use crate::error::{Error, Result, or_none};
use crate::fidelity::Fidelity;
use crate::query::forgetting::short_fingerprint;
use crate::record::{ExampleTable, RunId, RunInfo};
use crate::store::sorting::{SortingFile, warn_unfingerprinted};
use crate::store::writer::now_ms;

use super::PlannedRun;

/// Runs one process trains at once, each on its own thread with its own model, lock file and
/// open files: far beyond what the cores of one machine keep busy, well within OS limits.
pub const MAX_RUNS_PER_PROCESS: usize = 64;

/// The largest training seed: libtorch's generators take a signed 64-bit seed, and SQL
/// engines compare 64-bit signed integers (`--where "seed = N"`).
pub const MAX_SEED: u64 = i64::MAX as u64;

/// The data directory of new runs when none is given.
pub const DEFAULT_DATA_DIR: &str = "data";

/// The reference's settings for a dataset and an optimizer (docs/semantics.md, "Training"):
/// what a run uses where no flag says otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceDefaults {
    /// The MNIST CNN for MNIST, ResNet18 for CIFAR.
    pub model: ModelKind,
    /// 64 for MNIST, 128 for CIFAR.
    pub batch_size: usize,
    /// SGD lr 0.01 momentum 0.5 (MNIST); SGD lr 0.1 Nesterov 0.9 weight decay 5e-4 (CIFAR);
    /// Adam lr 1e-3.
    pub optimizer: OptimizerConfig,
    /// Learning-rate drops after epochs 60, 120, 160 for SGD on CIFAR; none otherwise.
    pub lr_milestones: Vec<u32>,
}

impl ReferenceDefaults {
    /// The defaults of `dataset` trained with `optimizer`.
    pub fn new(dataset: DatasetKind, optimizer: OptimizerKind) -> Self {
        let cifar = dataset.is_cifar();
        let sgd_on_cifar = cifar && optimizer == OptimizerKind::Sgd;
        ReferenceDefaults {
            model: if cifar { ModelKind::ResNet18 } else { ModelKind::MnistCnn },
            batch_size: if cifar { 128 } else { 64 },
            optimizer: match (optimizer, cifar) {
                (OptimizerKind::Adam, _) => OptimizerConfig::ADAM,
                (OptimizerKind::Sgd, true) => OptimizerConfig::CIFAR,
                (OptimizerKind::Sgd, false) => OptimizerConfig::MNIST,
            },
            lr_milestones: if sgd_on_cifar { LrSchedule::cifar(0).milestones } else { Vec::new() },
        }
    }
}

/// A checked experiment: everything but the data-dependent checks, which
/// [`plan_new_runs`] makes.
#[derive(Debug, Clone)]
pub struct ExperimentSpec {
    /// The dataset.
    pub dataset: DatasetKind,
    /// The id of the (one) new run; generated when `None`.
    pub run_id: Option<RunId>,
    /// One run per seed.
    pub seeds: Vec<u64>,
    /// How to train; its `seed` is replaced by each run's.
    pub base: TrainConfig,
    /// Sorting file of a removal experiment.
    pub sorting_file: Option<PathBuf>,
    /// The runs the sorting file must have been counted over (a sweep's order stage), so that
    /// a stale file is refused.
    pub sorting_runs: Option<Vec<String>>,
    /// The reference's removal flags.
    pub removal_flags: RemovalFlags,
    /// Corrected or faithful semantics.
    pub fidelity: Fidelity,
    /// Permuted MNIST's permutation seed (corrected semantics: one for all seeds).
    pub permutation_seed: u64,
    /// Percentage of training examples given a wrong label.
    pub noise_percent_labels: f64,
    /// Pixel noise of the training images.
    pub pixel_noise: PixelNoise,
}

/// The reference's removal flags (`--remove_n`, `--keep_lowest_n`, `--remove_subsample`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RemovalFlags {
    /// Examples to remove.
    pub remove_n: usize,
    /// Keep the N lowest-ranked examples, remove the next `remove_n`; below 0: random removal.
    pub keep_lowest_n: i64,
    /// Of the first `keep_lowest_n` ranked examples, remove a random N.
    pub remove_subsample: usize,
}

/// A dataset loaded once per permutation seed, with its fingerprint.
pub struct DataCache {
    dir: PathBuf,
    dataset: DatasetKind,
    loaded: HashMap<u64, (Arc<Splits>, String)>,
}

impl DataCache {
    /// A cache over the dataset files in `dir` (loaded when first asked for).
    pub fn new(dir: PathBuf, dataset: DatasetKind) -> Self {
        DataCache { dir, dataset, loaded: HashMap::new() }
    }

    /// A cache holding data already in memory (generated data, benches) as permutation seed
    /// 0, under the name `dir` for the `runs` rows.
    pub fn preloaded(dir: PathBuf, data: Splits) -> Self {
        let fingerprint = data.fingerprint();
        let dataset = data.kind;
        let loaded = HashMap::from([(0, (Arc::new(data), fingerprint))]);
        DataCache { dir, dataset, loaded }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data (for permuted MNIST, with the permutation of `permutation_seed`) and its
    /// fingerprint.
    ///
    /// # Errors
    /// The loader's errors; [`Error::Format`] when a split has no examples.
    pub fn get(&mut self, permutation_seed: u64) -> Result<(Arc<Splits>, String), Error> {
        if let Entry::Vacant(entry) = self.loaded.entry(permutation_seed) {
            let data = data::load(&self.dir, self.dataset, permutation_seed)?;
            for (split, set) in [("training", &data.train), ("test", &data.test)] {
                if set.is_empty() {
                    return Err(Error::format(
                        &self.dir,
                        format!("the {split} set of {} has no examples", self.dataset),
                    ));
                }
            }
            let fingerprint = data.fingerprint();
            entry.insert((Arc::new(data), fingerprint));
        }
        let (data, fingerprint) = &self.loaded[&permutation_seed];
        Ok((Arc::clone(data), fingerprint.clone()))
    }

    /// The data directory as an absolute path, as recorded in `runs`.
    pub fn absolute_dir(&self) -> String {
        std::fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone()).display().to_string()
    }
}

impl ExperimentSpec {
    /// An experiment of one run per seed of `base` on `dataset`: no removal, no noise,
    /// corrected semantics, permutation seed 0.
    pub fn new(dataset: DatasetKind, seeds: Vec<u64>, base: TrainConfig) -> Self {
        ExperimentSpec {
            dataset,
            run_id: None,
            seeds,
            base,
            sorting_file: None,
            sorting_runs: None,
            removal_flags: RemovalFlags::default(),
            fidelity: Fidelity::Corrected,
            permutation_seed: 0,
            noise_percent_labels: 0.0,
            pixel_noise: PixelNoise::default(),
        }
    }

    /// The `runs` fields of the run with `seed`, as far as the specification fixes them; the
    /// data-dependent ones (id, sizes, fingerprint, removal count, times) are left default.
    pub fn configured_info(&self, seed: u64) -> RunInfo {
        let config = &self.base;
        RunInfo {
            dataset: self.dataset,
            model: config.model,
            seed,
            epochs: config.epochs,
            batch_size: config.batch_size as u32,
            optimizer: config.optimizer.kind,
            lr: config.optimizer.lr,
            momentum: config.optimizer.momentum,
            nesterov: config.optimizer.nesterov,
            weight_decay: config.optimizer.weight_decay,
            lr_milestones: config.lr_schedule.milestones.clone(),
            lr_gamma: config.lr_schedule.gamma,
            lr_schedule_delay: config.lr_schedule.delay,
            data_augmentation: config.augment,
            cutout_holes: config.cutout.map_or(0, |c| c.holes as u32),
            cutout_length: config.cutout.map_or(0, |c| c.length as u32),
            no_dropout: !config.dropout,
            permutation_seed: (self.dataset == DatasetKind::PermutedMnist)
                .then(|| self.permutation_seed(seed)),
            sorting_file: self.sorting_file.as_ref().map(|p| p.display().to_string()),
            remove_n: self.removal_flags.remove_n as u32,
            keep_lowest_n: self.removal_flags.keep_lowest_n,
            remove_subsample: self.removal_flags.remove_subsample as u32,
            noise_percent_labels: self.noise_percent_labels,
            noise_percent_pixels: self.pixel_noise.percent,
            noise_std_pixels: self.pixel_noise.std,
            pixel_noise_mode: self.pixel_noise.mode,
            record_presentations: config.record,
            record_el2n: config.record_el2n,
            device: config.device.name(),
            intra_op_threads: config.intra_op_threads as u32,
            fstream_version: env!("CARGO_PKG_VERSION").into(),
            ..RunInfo::default()
        }
    }

    /// The permutation seed of permuted MNIST for training seed `seed`: one for all seeds,
    /// or the reference's one per seed with `--fidelity faithful` (bug 2).
    pub fn permutation_seed(&self, seed: u64) -> u64 {
        match self.fidelity {
            Fidelity::Corrected => self.permutation_seed,
            Fidelity::Faithful => seed,
        }
    }
}

/// Plans one new run per seed of `plan`: selection, noise and the `runs` row.
///
/// # Errors
/// Bad input files, removal flags that do not fit the data, or no training example left.
pub fn plan_new_runs(plan: &ExperimentSpec, data_cache: &mut DataCache) -> Result<Vec<PlannedRun>> {
    let dataset = plan.dataset;
    let mut sorting_file: Option<SortingFile> = None;
    let mut runs = Vec::new();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    for &seed in &plan.seeds {
        let (data, fingerprint) = data_cache.get(plan.permutation_seed(seed))?;
        let permutation_seed =
            (dataset == DatasetKind::PermutedMnist).then(|| plan.permutation_seed(seed));
        if let (None, Some(path)) = (&sorting_file, &plan.sorting_file) {
            let sorting = read_sorting_file(path, &data, &fingerprint, permutation_seed)?;
            if let Some(expected) = &plan.sorting_runs {
                check_sorting_runs(path, &sorting, expected)?;
            }
            sorting_file = Some(sorting);
        }
        let selection =
            select(data.train.len(), &removal(plan.removal_flags, sorting_file.as_ref()), seed)?;
        if let Some(sorting) = &sorting_file {
            warn_unpresented_removed(sorting, &selection.removed);
        }
        if selection.kept.is_empty() {
            return Err(Error::Config(format!(
                "no training examples left: the removal flags remove all {} examples of --dataset {dataset}",
                data.train.len()
            )));
        }
        let mut in_training_set = vec![false; data.train.len()];
        for &id in &selection.kept {
            in_training_set[id as usize] = true;
        }
        let mut labels = data.train.labels.clone();
        let classes = data.num_classes as u16;
        flip_labels(&mut labels, &selection.kept, plan.noise_percent_labels, classes, seed);
        let (run_data, pixel_noisy) =
            with_pixel_noise(&data, &plan.pixel_noise, &selection.kept, seed)?;
        let info = RunInfo {
            run_id: plan.run_id.clone().unwrap_or_else(|| new_run_id(dataset, seed)),
            remove_n: selection.removed.len() as u32,
            data_dir: data_cache.absolute_dir(),
            data_sha256: fingerprint,
            dataset_examples: data.train.len() as u32,
            train_examples: selection.kept.len() as u32,
            command: command.clone(),
            started_at_ms: now_ms(),
            ..plan.configured_info(seed)
        };
        let examples = ExampleTable {
            original_labels: data.train.labels.clone(),
            labels,
            in_training_set,
            pixel_noisy,
            coarse_labels: data.train.coarse_labels.clone(),
        };
        let config = TrainConfig { seed, ..plan.base.clone() };
        let train_ids = selection.kept;
        runs.push(PlannedRun { info, examples, data: run_data, config, train_ids, resume: None });
    }
    Ok(runs)
}

/// The run's data with its pixel noise applied to the training images `ids` (the shared data
/// when there is no pixel noise), and which examples got noise.
pub fn with_pixel_noise(
    data: &Arc<Splits>,
    noise: &PixelNoise,
    ids: &[u32],
    seed: u64,
) -> Result<(Arc<Splits>, Vec<bool>), Error> {
    let mut pixel_noisy = vec![false; data.train.len()];
    if noise.percent == 0.0 {
        return Ok((Arc::clone(data), pixel_noisy));
    }
    let mut noisy = Splits::clone(data);
    add_pixel_noise(&mut noisy.train, ids, noise, seed)?;
    for &id in ids {
        pixel_noisy[id as usize] = true;
    }
    Ok((Arc::new(noisy), pixel_noisy))
}

/// The removal a run of `flags` makes, with the order of `sorting` (if any).
fn removal(flags: RemovalFlags, sorting: Option<&SortingFile>) -> Removal {
    let ordered = || sorting.map(|s| s.example_ids.clone()).unwrap_or_default();
    let keep_lowest_n = flags.keep_lowest_n.max(0) as usize;
    if flags.remove_subsample > 0 {
        Removal::Subsample { ordered: ordered(), keep_lowest_n, subsample: flags.remove_subsample }
    } else if flags.remove_n == 0 {
        Removal::None
    } else if flags.keep_lowest_n < 0 {
        Removal::Random { remove_n: flags.remove_n }
    } else {
        Removal::ByOrder { ordered: ordered(), remove_n: flags.remove_n, keep_lowest_n }
    }
}

/// Reads the sorting file and checks that it belongs to `data` (fingerprint `fingerprint`,
/// with pixel permutation `permutation_seed` for permuted MNIST).
fn read_sorting_file(
    path: &PathBuf,
    data: &Splits,
    fingerprint: &str,
    permutation_seed: Option<u64>,
) -> Result<SortingFile, Error> {
    let sorting = SortingFile::read(path)?;
    if sorting.dataset == data.kind.name() && sorting.permutation_seed != permutation_seed {
        return Err(Error::format(
            path,
            format!(
                "sorting file is for permutation_seed {}, but the run uses {} (--permutation-seed)",
                or_none(sorting.permutation_seed),
                or_none(permutation_seed)
            ),
        ));
    }
    if sorting.dataset != data.kind.name() || sorting.dataset_examples != data.train.len() {
        return Err(Error::format(
            path,
            format!(
                "sorting file is for dataset {} with {} examples, but --dataset {} has {}",
                sorting.dataset,
                sorting.dataset_examples,
                data.kind,
                data.train.len()
            ),
        ));
    }
    if sorting.data_sha256.is_none() {
        warn_unfingerprinted(path);
    }
    if let Some(ranked) = sorting.data_sha256.as_deref().filter(|f| *f != fingerprint) {
        return Err(Error::format(
            path,
            format!(
                "sorting file ranks other data (data_sha256 {}, from runs {}) than --data-dir holds ({}): removing by it would remove the wrong examples",
                short_fingerprint(ranked),
                sorting.runs.join(", "),
                short_fingerprint(fingerprint)
            ),
        ));
    }
    Ok(sorting)
}

/// Refuses a sorting file not counted over exactly the runs `expected` (`--sorting-runs`): a
/// file of an earlier version of a sweep, whose base runs have changed since.
fn check_sorting_runs(path: &Path, sorting: &SortingFile, expected: &[String]) -> Result<()> {
    if !sorting.counts_exactly(expected) {
        return Err(Error::format(
            path,
            format!(
                "sorting file was counted over runs {}, but --sorting-runs names {}: it is stale; run its order stage again (`fstream sweep run` does)",
                sorting.runs.join(","),
                expected.join(",")
            ),
        ));
    }
    Ok(())
}

/// Warns when the removal takes examples that no run behind the sorting file presented: their
/// count 0 says nothing about how forgettable they are.
fn warn_unpresented_removed(sorting: &SortingFile, removed: &[u32]) {
    let unpresented: std::collections::HashSet<u32> = sorting
        .example_ids
        .iter()
        .zip(&sorting.presented)
        .filter(|&(_, &presented)| !presented)
        .map(|(&id, _)| id)
        .collect();
    let taken = removed.iter().filter(|id| unpresented.contains(id)).count();
    if taken > 0 {
        log::warn!(
            "{taken} of the {} removed examples were never presented in the runs of the sorting file (ranked last, count 0)",
            removed.len()
        );
    }
}

/// A new run id: dataset, seed, UTC start time and a random suffix, e.g.
/// `mnist-s1-20261128T075400Z-3f2a`.
pub fn new_run_id(dataset: DatasetKind, seed: u64) -> RunId {
    let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let compact: String = time.chars().filter(|c| !matches!(c, '-' | ':')).collect();
    format!("{dataset}-s{seed}-{compact}-{:04x}", rand::random::<u16>()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_flags_map_to_the_reference_modes() {
        let flags = |remove_n, keep_lowest_n, remove_subsample| RemovalFlags {
            remove_n,
            keep_lowest_n,
            remove_subsample,
        };
        assert_eq!(removal(flags(0, 0, 0), None), Removal::None);
        assert_eq!(removal(flags(3, -1, 0), None), Removal::Random { remove_n: 3 });
        let sorting = SortingFile {
            dataset: "mnist".into(),
            dataset_examples: 3,
            permutation_seed: None,
            data_sha256: None,
            runs: vec![],
            example_ids: vec![2, 0, 1],
            ranked: crate::store::sorting::Ranked::ForgettingCounts(vec![0, 0, 1]),
            presented: vec![true; 3],
        };
        assert_eq!(
            removal(flags(1, 2, 0), Some(&sorting)),
            Removal::ByOrder { ordered: vec![2, 0, 1], remove_n: 1, keep_lowest_n: 2 }
        );
    }
}
