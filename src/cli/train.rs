//! `fstream train`'s flags (with the reference's underscore spellings as aliases) and their
//! conversion into a checked [`ExperimentSpec`]: the reference's defaults per dataset, then
//! the flags on top, each checked on its own and against the others.

use std::path::PathBuf;

use clap::Args;
use fstream::Error;
use fstream::config::{
    Cutout, Device, LrSchedule, ModelKind, OptimizerConfig, OptimizerKind, TrainConfig,
};
use fstream::data::DatasetKind;
use fstream::data::corrupt::{PixelNoise, PixelNoiseMode, check_percent};
use fstream::experiment::plan::{
    ExperimentSpec, MAX_RUNS_PER_PROCESS, MAX_SEED, ReferenceDefaults, RemovalFlags,
};
use fstream::fidelity::Fidelity;
use fstream::record::RunId;

use super::FidelityArg;
use super::progress::ProgressMode;

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Dataset: mnist, permuted_mnist, cifar10 or cifar100.
    #[arg(long, value_name = "NAME", required_unless_present = "resume")]
    pub dataset: Option<DatasetKind>,
    /// Continue after the last committed epoch. `--resume RUN_ID`: that run of --output-dir,
    /// with its recorded configuration (flags that contradict it are refused; --epochs N
    /// extends it). `--resume` without an id, with the flags that started an experiment:
    /// continue each of its incomplete runs, start the seeds that never started, and leave
    /// complete runs alone.
    #[arg(long, value_name = "RUN_ID", num_args = 0..=1, value_parser = run_id_arg)]
    pub resume: Option<Option<String>>,
    /// Id of the new run instead of a generated one (one seed only). With --resume (no id):
    /// skip the run if it is complete, resume it if it is not, start it if it does not exist,
    /// which is how sweeps make every command safe to run again.
    #[arg(long, value_name = "ID", value_parser = run_id_arg)]
    pub run_id: Option<String>,
    /// Directory holding the dataset files (DIR/mnist/*-ubyte[.gz],
    /// DIR/cifar-10-batches-bin/*.bin, DIR/cifar-100-binary/*.bin) [default: data; with
    /// --resume: the run's recorded directory].
    #[arg(long, alias = "data_dir", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Dataset root the tables are written to.
    #[arg(long, alias = "output_dir", value_name = "DIR", default_value = "results")]
    pub output_dir: PathBuf,
    /// Epochs to train.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub epochs: u32,
    /// Training seed; repeat for several runs (default 1).
    #[arg(long, value_name = "N", conflicts_with = "seeds", allow_negative_numbers = true, value_parser = seed_arg)]
    pub seed: Vec<u64>,
    /// Several seeds, as an inclusive range A..B or a list A,B,C; the runs train concurrently.
    #[arg(long, value_name = "SEEDS", allow_hyphen_values = true)]
    pub seeds: Option<String>,
    /// Model: mnist_cnn (MNIST default), resnet18 (CIFAR default) or wideresnet (WRN-28-10).
    #[arg(long, value_name = "NAME")]
    pub model: Option<ModelKind>,
    /// Training batch size [default: 64 for MNIST, 128 for CIFAR].
    #[arg(long, alias = "batch_size", value_name = "N")]
    pub batch_size: Option<usize>,
    /// Optimizer: sgd or adam.
    #[arg(long, value_name = "NAME", default_value = "sgd")]
    pub optimizer: OptimizerKind,
    /// Base learning rate [default: 0.01 for MNIST, 0.1 for CIFAR, 0.001 with adam].
    #[arg(long, alias = "learning_rate", value_name = "LR", allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// SGD momentum [default: 0.5 for MNIST, 0.9 for CIFAR].
    #[arg(long, value_name = "M", allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Plain instead of Nesterov momentum for CIFAR's SGD.
    #[arg(long)]
    pub no_nesterov: bool,
    /// SGD weight decay [default: 0 for MNIST, 5e-4 for CIFAR].
    #[arg(long, value_name = "WD", allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Epochs after which the learning rate is multiplied by --lr-gamma, e.g. 60,120,160
    /// [default: 60,120,160 for CIFAR with sgd, none otherwise; "none" for a constant rate].
    #[arg(long, value_name = "EPOCHS")]
    pub lr_milestones: Option<String>,
    /// Learning-rate factor at each milestone.
    #[arg(long, value_name = "G", default_value_t = 0.2)]
    pub lr_gamma: f64,
    /// Random crop of the 4-pixel zero-padded image back to its size (32x32 for CIFAR), then a
    /// horizontal flip with probability 1/2.
    #[arg(long, alias = "data_augmentation")]
    pub data_augmentation: bool,
    /// Cut --n-holes squares of side --length out of every training image (after
    /// normalization).
    #[arg(long)]
    pub cutout: bool,
    /// Squares per image for --cutout.
    #[arg(long, alias = "n_holes", value_name = "N", default_value_t = 1)]
    pub n_holes: usize,
    /// Side of a --cutout square in pixels.
    #[arg(long, value_name = "PIXELS", default_value_t = 16)]
    pub length: u32,
    /// Turn the model's dropout off.
    #[arg(long, alias = "no_dropout")]
    pub no_dropout: bool,
    /// Seed of permuted MNIST's pixel permutation (one permutation for all training seeds).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub permutation_seed: u64,
    /// faithful: permuted MNIST draws its permutation from each training seed, and CIFAR's
    /// learning-rate drops come one epoch late, as in the reference (docs/semantics.md, bugs 2 and 5).
    #[arg(long, value_enum, value_name = "MODE", default_value = "corrected")]
    pub fidelity: FidelityArg,
    /// Sorting file written by `fstream order`, for removal experiments ("none": no file, as
    /// in the reference's scripts).
    #[arg(long, alias = "sorting_file", value_name = "FILE")]
    pub sorting_file: Option<PathBuf>,
    /// With --sorting-file: refuse it unless it was counted over exactly these runs
    /// (comma-separated ids). Sweeps pass their order stage's runs, so that a sorting file of
    /// an earlier version of the sweep is never used.
    #[arg(long, value_name = "IDS", value_delimiter = ',', requires = "sorting_file", value_parser = run_id_arg)]
    pub sorting_runs: Vec<String>,
    /// Directory of --sorting-file, as the reference's --input_dir: FILE is then looked up as
    /// DIR/FILE, with ".parquet" added when it has no extension.
    #[arg(long, alias = "input_dir", value_name = "DIR")]
    pub input_dir: Option<PathBuf>,
    /// Number of examples to remove.
    #[arg(long, alias = "remove_n", value_name = "N", default_value_t = 0)]
    pub remove_n: usize,
    /// Keep the N lowest-ranked examples, remove the next --remove-n; below 0: remove
    /// --remove-n random examples.
    #[arg(
        long,
        alias = "keep_lowest_n",
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub keep_lowest_n: i64,
    /// Of the first --keep-lowest-n ranked examples, remove a random N.
    #[arg(long, alias = "remove_subsample", value_name = "N", default_value_t = 0)]
    pub remove_subsample: usize,
    /// Give this percentage of the training examples a label drawn from the other classes.
    #[arg(
        long,
        alias = "noise_percent_labels",
        value_name = "P",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    pub noise_percent_labels: f64,
    /// Add Gaussian noise to this percentage of each training image's pixel positions.
    #[arg(
        long,
        alias = "noise_percent_pixels",
        value_name = "P",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    pub noise_percent_pixels: f64,
    /// Standard deviation of the pixel noise, in pixel units (0..255).
    #[arg(
        long,
        alias = "noise_std_pixels",
        value_name = "S",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    pub noise_std_pixels: f64,
    /// corrected: zero-mean noise clamped to 0..255; faithful: mean 120 with uint8 wrap-around,
    /// as the reference (docs/semantics.md, bug 3).
    #[arg(long, value_name = "MODE", default_value = "corrected")]
    pub pixel_noise_mode: PixelNoiseMode,
    /// Total libtorch threads, split between concurrent runs (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Device: cpu, cuda, or auto (cuda when available).
    #[arg(long, value_enum, value_name = "DEVICE", default_value = "auto")]
    pub device: DeviceArg,
    /// Same as --device cpu (the reference's spelling).
    #[arg(long, alias = "no_cuda")]
    pub no_cuda: bool,
    /// Do not record per-presentation statistics (epochs, examples and runs are still written).
    #[arg(long)]
    pub no_record: bool,
    /// Record extra per-presentation columns: el2n (‖softmax − onehot(label)‖₂, for
    /// `fstream scores --score el2n`).
    #[arg(long = "record", value_enum, value_name = "COLUMN", value_delimiter = ',')]
    pub record_columns: Vec<RecordColumn>,
    /// Mirror to download missing dataset files from (repeatable; default: the standard MNIST
    /// mirrors, or the CIFAR page).
    #[arg(long = "mirror", value_name = "URL")]
    pub mirrors: Vec<String>,
    /// Fail instead of downloading missing dataset files.
    #[arg(long)]
    pub no_download: bool,
    /// When to draw progress bars.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub progress: ProgressMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    /// CUDA if libtorch sees a GPU, else CPU.
    Auto,
    /// CPU.
    Cpu,
    /// The first CUDA GPU.
    Cuda,
}

/// Optional per-presentation columns (`--record`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordColumn {
    /// EL2N: the L2 norm of softmax minus the one-hot label (Paul et al. 2021).
    El2n,
}

impl TrainArgs {
    /// The experiment the flags describe, checked, its runs on `device` (what `--device`
    /// resolves to, which only the training binary can tell).
    ///
    /// # Errors
    /// [`Error::Config`] naming the flag that is wrong or contradicts another.
    pub fn experiment_spec(&self, device: Device) -> Result<ExperimentSpec, Error> {
        let dataset = self.dataset.ok_or_else(|| Error::Config("--dataset is required".into()))?;
        let seeds = match &self.seeds {
            Some(spec) => parse_seeds(spec)?,
            None if self.seed.is_empty() => vec![1],
            None => self.seed.clone(),
        };
        if let Some(seed) =
            seeds.iter().enumerate().find_map(|(i, s)| seeds[..i].contains(s).then_some(s))
        {
            return Err(Error::Config(format!("seed {seed} is given twice")));
        }
        if let Some(id) = &self.run_id
            && seeds.len() != 1
        {
            return Err(Error::Config(format!(
                "--run-id {id} names one run, but the seed flags give {}",
                seeds.len()
            )));
        }
        if seeds.len() > MAX_RUNS_PER_PROCESS {
            return Err(too_many_runs(seeds.len() as u128));
        }
        let defaults = ReferenceDefaults::new(dataset, self.optimizer);
        let model = model_for(dataset, self.model.unwrap_or(defaults.model))?;
        let batch_size = self.batch_size.unwrap_or(defaults.batch_size);
        for (flag, value) in [("--epochs", self.epochs as usize), ("--batch-size", batch_size)] {
            if value == 0 {
                return Err(Error::Config(format!("{flag} must be at least 1")));
            }
        }
        let fidelity: Fidelity = self.fidelity.into();
        let optimizer = optimizer_config(self, defaults.optimizer)?;
        let lr_schedule = lr_schedule(self, defaults.lr_milestones, fidelity)?;
        if self.no_record && !self.record_columns.is_empty() {
            return Err(Error::Config(
                "--record el2n adds a column to the presentations, which --no-record turns off"
                    .into(),
            ));
        }
        check_percent("--noise-percent-labels", self.noise_percent_labels)?;
        check_percent("--noise-percent-pixels", self.noise_percent_pixels)?;
        check_non_negative("--noise-std-pixels", self.noise_std_pixels)?;
        if self.cutout && (self.n_holes == 0 || self.length == 0) {
            return Err(Error::Config(
                "--cutout needs --n-holes and --length of at least 1".into(),
            ));
        }
        let sorting_file = sorting_file(self);
        let needs_sorting =
            self.remove_subsample > 0 || (self.remove_n > 0 && self.keep_lowest_n >= 0);
        if needs_sorting && sorting_file.is_none() {
            return Err(Error::Config(
                "--remove-n with --keep-lowest-n >= 0 (or --remove-subsample) needs --sorting-file FILE from `fstream order`; use --keep-lowest-n -1 for random removal".into(),
            ));
        }
        if self.remove_subsample > 0 && self.keep_lowest_n < 0 {
            return Err(Error::Config("--remove-subsample needs --keep-lowest-n >= 0".into()));
        }
        let total_threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if total_threads == 0 {
            return Err(Error::Config("--threads must be at least 1".into()));
        }
        Ok(ExperimentSpec {
            dataset,
            run_id: self.run_id.clone().map(RunId::from),
            base: TrainConfig {
                model,
                epochs: self.epochs,
                batch_size,
                optimizer,
                lr_schedule,
                dropout: !self.no_dropout,
                augment: self.data_augmentation,
                cutout: self
                    .cutout
                    .then_some(Cutout { holes: self.n_holes, length: i64::from(self.length) }),
                seed: seeds[0],
                device,
                intra_op_threads: (total_threads / seeds.len()).max(1),
                record: !self.no_record,
                record_el2n: self.record_columns.contains(&RecordColumn::El2n),
            },
            seeds,
            sorting_file,
            sorting_runs: (!self.sorting_runs.is_empty()).then(|| self.sorting_runs.clone()),
            removal_flags: RemovalFlags {
                remove_n: self.remove_n,
                keep_lowest_n: self.keep_lowest_n,
                remove_subsample: self.remove_subsample,
            },
            fidelity,
            permutation_seed: self.permutation_seed,
            noise_percent_labels: self.noise_percent_labels,
            pixel_noise: PixelNoise {
                percent: self.noise_percent_pixels,
                std: self.noise_std_pixels,
                mode: self.pixel_noise_mode,
            },
        })
    }
}

/// A run id flag's value, checked by [`RunId::parse`] (ids name files of the root).
fn run_id_arg(id: &str) -> Result<String, String> {
    RunId::parse(id).map(String::from)
}

/// `model`, refused when its input shape is not the dataset's.
fn model_for(dataset: DatasetKind, model: ModelKind) -> Result<ModelKind, Error> {
    let image_shape = dataset.image_shape();
    if model.input_shape() != image_shape {
        let shape = |[c, h, w]: [usize; 3]| format!("{c}x{h}x{w}");
        return Err(Error::Config(format!(
            "--model {model} takes {} images, but --dataset {dataset} has {}",
            shape(model.input_shape()),
            shape(image_shape)
        )));
    }
    Ok(model)
}

/// The optimizer: the reference's `defaults` for the dataset and `--optimizer`, with the
/// flags given on top.
fn optimizer_config(args: &TrainArgs, defaults: OptimizerConfig) -> Result<OptimizerConfig, Error> {
    if args.optimizer == OptimizerKind::Adam {
        let momentum_flag =
            args.momentum.map(|_| "--momentum").or(args.no_nesterov.then_some("--no-nesterov"));
        if let Some(flag) = momentum_flag {
            return Err(Error::Config(format!(
                "{flag} has no effect with --optimizer adam (its moments use betas 0.9 and 0.999)"
            )));
        }
    }
    let config = OptimizerConfig {
        lr: args.lr.unwrap_or(defaults.lr),
        momentum: args.momentum.unwrap_or(defaults.momentum),
        nesterov: defaults.nesterov && !args.no_nesterov,
        weight_decay: args.weight_decay.unwrap_or(defaults.weight_decay),
        ..defaults
    };
    check_positive("--lr", config.lr)?;
    if !(0.0..1.0).contains(&config.momentum) {
        return Err(Error::Config(format!(
            "--momentum must be in [0, 1), got {}",
            config.momentum
        )));
    }
    if config.nesterov && config.momentum == 0.0 {
        return Err(Error::Config(
            "Nesterov momentum needs --momentum > 0 (or --no-nesterov)".into(),
        ));
    }
    check_non_negative("--weight-decay", config.weight_decay)?;
    Ok(config)
}

/// The learning-rate schedule: `--lr-milestones`, or the reference's `default_milestones`;
/// drops come one epoch late with `--fidelity faithful`.
fn lr_schedule(
    args: &TrainArgs,
    default_milestones: Vec<u32>,
    fidelity: Fidelity,
) -> Result<LrSchedule, Error> {
    let delay = match fidelity {
        Fidelity::Corrected => 0,
        Fidelity::Faithful => 1,
    };
    let milestones = match args.lr_milestones.as_deref() {
        Some("none") => Vec::new(),
        Some(spec) => {
            spec.split(',').map(|m| m.trim().parse::<u32>()).collect::<Result<_, _>>().map_err(
                |_| {
                    Error::Config(format!(
                        "--lr-milestones {spec:?}: expected epochs like 60,120,160, or none"
                    ))
                },
            )?
        }
        None => default_milestones,
    };
    check_positive("--lr-gamma", args.lr_gamma)?;
    if milestones.is_empty() {
        return Ok(LrSchedule::constant());
    }
    Ok(LrSchedule { milestones, gamma: args.lr_gamma, delay })
}

fn check_positive(flag: &str, value: f64) -> Result<(), Error> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(Error::Config(format!("{flag} must be a positive number, got {value}")))
    }
}

fn check_non_negative(flag: &str, value: f64) -> Result<(), Error> {
    if value >= 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(Error::Config(format!("{flag} must be a number >= 0, got {value}")))
    }
}

/// `--sorting-file`, looked up in `--input-dir` as the reference did; "none" is no file.
fn sorting_file(args: &TrainArgs) -> Option<PathBuf> {
    let file = args.sorting_file.as_ref().filter(|f| f.as_os_str() != "none")?;
    match &args.input_dir {
        Some(dir) if file.is_relative() => {
            let path = dir.join(file);
            Some(if path.extension().is_none() { path.with_extension("parquet") } else { path })
        }
        _ => Some(file.clone()),
    }
}

/// A `--seed` value: a non-negative integer.
fn seed_arg(text: &str) -> Result<u64, String> {
    text.parse()
        .ok()
        .filter(|&seed| seed <= MAX_SEED)
        .ok_or_else(|| format!("expected an integer from 0 to {MAX_SEED}, not {text:?}"))
}

/// `count` seeds are more runs than one process trains.
fn too_many_runs(count: u128) -> Error {
    Error::Config(format!(
        "--seeds: {count} runs exceed the limit of {MAX_RUNS_PER_PROCESS} concurrent runs per process; split the seeds over several processes (they can share one --output-dir)"
    ))
}

/// Parses `A..B` (inclusive) or `A,B,C`.
fn parse_seeds(spec: &str) -> Result<Vec<u64>, Error> {
    let bad = || {
        Error::Config(format!(
            "--seeds {spec:?}: expected a range A..B (inclusive) or a list A,B,C"
        ))
    };
    let seeds: Vec<u64> = match spec.split_once("..") {
        Some((a, b)) => {
            let a = seed_arg(a.trim()).map_err(|_| bad())?;
            let b = seed_arg(b.trim().trim_start_matches('=')).map_err(|_| bad())?;
            if a > b {
                return Err(Error::Config(format!(
                    "--seeds {spec:?}: the range A..B needs A <= B (it includes both ends)"
                )));
            }
            // Counted before the list is built: a typo such as 1..999999999999 must not
            // allocate terabytes.
            let count = u128::from(b - a) + 1;
            if count > MAX_RUNS_PER_PROCESS as u128 {
                return Err(too_many_runs(count));
            }
            (a..=b).collect()
        }
        None => spec
            .split(',')
            .map(|s| seed_arg(s.trim()).map_err(|_| bad()))
            .collect::<Result<_, _>>()?,
    };
    if seeds.is_empty() { Err(bad()) } else { Ok(seeds) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn spec(args: &TrainArgs) -> Result<ExperimentSpec, Error> {
        args.experiment_spec(Device::Cpu)
    }

    fn parse(args: &[&str]) -> TrainArgs {
        let mut argv = vec!["fstream", "train"];
        argv.extend_from_slice(args);
        match crate::Cli::parse_from(argv).command {
            crate::Command::Train(args) => *args,
            other => panic!("not train: {other:?}"),
        }
    }

    #[test]
    fn seeds_accept_ranges_and_lists() {
        assert_eq!(parse_seeds("1..5").unwrap(), vec![1, 2, 3, 4, 5]);
        assert_eq!(parse_seeds("1..=3").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_seeds("4,2").unwrap(), vec![4, 2]);
        assert!(parse_seeds("x").unwrap_err().to_string().contains("--seeds \"x\""));
    }

    #[test]
    fn reference_spellings_are_aliases() {
        let args = parse(&[
            "--dataset",
            "mnist",
            "--output_dir",
            "o",
            "--no_dropout",
            "--sorting_file",
            "s.parquet",
            "--remove_n",
            "5",
            "--keep_lowest_n",
            "-1",
        ]);
        assert_eq!(args.output_dir, PathBuf::from("o"));
        assert!(args.no_dropout);
        assert_eq!((args.remove_n, args.keep_lowest_n), (5, -1));
    }

    #[test]
    fn threads_are_split_between_runs() {
        let args =
            parse(&["--dataset", "mnist", "--seeds", "1..4", "--threads", "8", "--device", "cpu"]);
        let plan = spec(&args).unwrap();
        assert_eq!(plan.seeds, vec![1, 2, 3, 4]);
        assert_eq!(plan.base.intra_op_threads, 2);
    }

    #[test]
    fn removal_by_order_needs_a_sorting_file() {
        let args = parse(&["--dataset", "mnist", "--remove-n", "10"]);
        let err = spec(&args).unwrap_err().to_string();
        assert!(err.contains("needs --sorting-file"), "{err}");
        assert!(
            spec(&parse(&["--dataset", "mnist", "--remove-n", "10", "--keep-lowest-n", "-1"]))
                .is_ok()
        );
    }

    #[test]
    fn cifar_defaults_follow_the_reference() {
        let plan = spec(&parse(&["--dataset", "cifar10", "--device", "cpu"])).unwrap();
        assert_eq!(plan.base.model, ModelKind::ResNet18);
        assert_eq!(plan.base.batch_size, 128);
        assert_eq!(plan.base.optimizer, OptimizerConfig::CIFAR);
        assert_eq!(plan.base.lr_schedule, LrSchedule::cifar(0));
        assert!(!plan.base.augment && plan.base.cutout.is_none());

        let args = parse(&[
            "--dataset",
            "cifar100",
            "--model",
            "wideresnet",
            "--data_augmentation",
            "--cutout",
            "--n_holes",
            "2",
            "--fidelity",
            "faithful",
        ]);
        let plan = spec(&args).unwrap();
        assert_eq!(plan.base.model, ModelKind::WideResNet);
        assert_eq!(plan.base.lr_schedule, LrSchedule::cifar(1), "bug 5: drops one epoch late");
        assert!(plan.base.augment);
        assert_eq!(plan.base.cutout, Some(Cutout { holes: 2, length: 16 }));

        let adam = spec(&parse(&["--dataset", "cifar10", "--optimizer", "adam"])).unwrap();
        assert_eq!(adam.base.optimizer, OptimizerConfig::ADAM);
        assert_eq!(adam.base.lr_schedule.milestones, Vec::<u32>::new());
        let mnist = spec(&parse(&["--dataset", "mnist"])).unwrap();
        assert_eq!((mnist.base.optimizer, mnist.base.batch_size), (OptimizerConfig::MNIST, 64));
        assert_eq!(mnist.base.lr_schedule, LrSchedule::constant());
    }

    #[test]
    fn schedule_and_optimizer_flags_are_checked() {
        let err = |args: &[&str]| spec(&parse(args)).unwrap_err().to_string();
        let custom =
            parse(&["--dataset", "cifar10", "--lr-milestones", "5, 9", "--lr-gamma", "0.5"]);
        let plan = spec(&custom).unwrap();
        assert_eq!(
            plan.base.lr_schedule,
            LrSchedule { milestones: vec![5, 9], gamma: 0.5, delay: 0 }
        );
        assert!(
            err(&["--dataset", "cifar10", "--lr-milestones", "6O"])
                .contains("--lr-milestones \"6O\"")
        );
        assert!(
            err(&["--dataset", "cifar10", "--momentum", "0"]).contains("Nesterov momentum needs")
        );
        assert!(
            err(&["--dataset", "cifar10", "--weight-decay", "-1"])
                .contains("--weight-decay must be")
        );
        assert!(
            err(&["--dataset", "cifar10", "--cutout", "--length", "0"]).contains("--cutout needs")
        );
        for flag in [&["--momentum", "0.9"][..], &["--no-nesterov"]] {
            let mut args = vec!["--dataset", "cifar10", "--optimizer", "adam"];
            args.extend_from_slice(flag);
            assert!(err(&args).contains("has no effect with --optimizer adam"), "{flag:?}");
        }
        let adam = parse(&["--dataset", "mnist", "--optimizer", "adam", "--weight-decay", "0.01"]);
        assert_eq!(spec(&adam).unwrap().base.optimizer.weight_decay, 0.01);
    }

    #[test]
    fn sorting_file_is_looked_up_in_the_input_dir_as_the_reference_did() {
        let with = |extra: &[&str]| {
            let mut args = vec!["--dataset", "cifar10", "--remove_n", "5", "--keep_lowest_n", "0"];
            args.extend_from_slice(extra);
            spec(&parse(&args)).map(|p| p.sorting_file)
        };
        let found = with(&["--sorting_file", "cifar10_sorted", "--input_dir", "res"]).unwrap();
        assert_eq!(found, Some(PathBuf::from("res/cifar10_sorted.parquet")));
        assert_eq!(
            with(&["--sorting_file", "/a/b.parquet", "--input_dir", "res"]).unwrap(),
            Some(PathBuf::from("/a/b.parquet"))
        );
        // "none" is the reference scripts' spelling of no sorting file.
        assert!(
            with(&["--sorting_file", "none"])
                .unwrap_err()
                .to_string()
                .contains("needs --sorting-file")
        );
    }
}
