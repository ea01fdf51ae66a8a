//! The typed configuration of a training run: the network, the optimizer and its schedule,
//! the input pipeline's switches and the device. Plain values, shared by the planner (which
//! stores them in `runs` and reads them back) and the training crate `fstream-torch` (which
//! builds models, optimizers and tensors from them).

/// The networks fstream can train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelKind {
    /// The reference's small MNIST CNN (`fstream_torch::model::mnist_cnn`).
    #[default]
    MnistCnn,
    /// ResNet18, CIFAR variant (`fstream_torch::model::resnet18`).
    ResNet18,
    /// WideResNet-28-10 with dropout 0.3 (`fstream_torch::model::wide_resnet`).
    WideResNet,
}

impl ModelKind {
    /// Every model, in the order `--help` lists them.
    pub const ALL: [ModelKind; 3] =
        [ModelKind::MnistCnn, ModelKind::ResNet18, ModelKind::WideResNet];

    /// The name used on the command line and in the `runs` table.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::MnistCnn => "mnist_cnn",
            ModelKind::ResNet18 => "resnet18",
            ModelKind::WideResNet => "wideresnet",
        }
    }

    /// The input images the model takes, `[C, H, W]`.
    pub fn input_shape(self) -> [usize; 3] {
        match self {
            ModelKind::MnistCnn => [1, 28, 28],
            ModelKind::ResNet18 | ModelKind::WideResNet => [3, 32, 32],
        }
    }
}

crate::names::named_enum!(ModelKind, "model");

/// The update rules fstream offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OptimizerKind {
    /// Stochastic gradient descent with momentum (optionally Nesterov) and weight decay.
    #[default]
    Sgd,
    /// Adam (Kingma & Ba 2015) with betas (0.9, 0.999) and eps 1e-8.
    Adam,
}

impl OptimizerKind {
    /// Every optimizer, in the order `--help` lists them.
    pub const ALL: [OptimizerKind; 2] = [OptimizerKind::Sgd, OptimizerKind::Adam];

    /// The name used on the command line and in the `runs` table.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
        }
    }
}

crate::names::named_enum!(OptimizerKind, "optimizer");

/// An optimizer's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerConfig {
    /// The update rule.
    pub kind: OptimizerKind,
    /// Base learning rate (the schedule scales it per epoch).
    pub lr: f64,
    /// SGD momentum (0 with Adam, which `fstream train` refuses momentum flags for).
    pub momentum: f64,
    /// Nesterov momentum (SGD only).
    pub nesterov: bool,
    /// L2 weight decay added to the gradients, by SGD and Adam alike (as PyTorch's).
    pub weight_decay: f64,
}

impl OptimizerConfig {
    /// The reference's MNIST optimizer: SGD, lr 0.01, momentum 0.5.
    pub const MNIST: OptimizerConfig = OptimizerConfig {
        kind: OptimizerKind::Sgd,
        lr: 0.01,
        momentum: 0.5,
        nesterov: false,
        weight_decay: 0.0,
    };

    /// The reference's CIFAR optimizer: SGD, lr 0.1, Nesterov momentum 0.9, weight decay 5e-4.
    pub const CIFAR: OptimizerConfig = OptimizerConfig {
        kind: OptimizerKind::Sgd,
        lr: 0.1,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 5e-4,
    };

    /// The reference's `--optimizer adam`: lr 1e-3.
    pub const ADAM: OptimizerConfig = OptimizerConfig {
        kind: OptimizerKind::Adam,
        lr: 1e-3,
        momentum: 0.0,
        nesterov: false,
        weight_decay: 0.0,
    };
}

/// A step learning-rate schedule: the base rate times `gamma` for every milestone passed
/// (PyTorch's `MultiStepLR` stepped once per epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    /// Epochs after which the rate drops (1-based: with milestone 60, epoch 61 is the first at
    /// the lower rate).
    pub milestones: Vec<u32>,
    /// Factor applied at each milestone.
    pub gamma: f64,
    /// Extra epochs before each drop takes effect: 0 is the standard schedule; 1 reproduces
    /// the reference's `scheduler.step(epoch)`, which drops one epoch late
    /// (docs/semantics.md, bug 5).
    pub delay: u32,
}

impl LrSchedule {
    /// A constant learning rate.
    pub fn constant() -> Self {
        LrSchedule { milestones: Vec::new(), gamma: 1.0, delay: 0 }
    }

    /// The reference's CIFAR schedule: ×0.2 after epochs 60, 120 and 160.
    pub fn cifar(delay: u32) -> Self {
        LrSchedule { milestones: vec![60, 120, 160], gamma: 0.2, delay }
    }

    /// The learning rate of 1-based `epoch` for base rate `lr`.
    pub fn lr_at(&self, lr: f64, epoch: u32) -> f64 {
        let passed = self.milestones.iter().filter(|&&m| epoch > m + self.delay).count();
        lr * self.gamma.powi(passed as i32)
    }
}

/// How to train one run. Defaults are the reference's MNIST settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// The network.
    pub model: ModelKind,
    /// Number of epochs (passes over the training set).
    pub epochs: u32,
    /// Training batch size.
    pub batch_size: usize,
    /// Optimizer and base learning rate.
    pub optimizer: OptimizerConfig,
    /// Learning rate per epoch.
    pub lr_schedule: LrSchedule,
    /// Whether the model's dropout layers are on.
    pub dropout: bool,
    /// Random crop and horizontal flip of training images.
    pub augment: bool,
    /// Cutout of training images.
    pub cutout: Option<Cutout>,
    /// Seed of model initialization, data order, augmentation and dropout.
    pub seed: u64,
    /// Where tensors live.
    pub device: Device,
    /// libtorch intra-op threads for this run.
    pub intra_op_threads: usize,
    /// Whether per-presentation statistics are computed and sent (off: only epoch summaries).
    pub record: bool,
    /// Whether each presentation's EL2N is recorded too (needs `record`).
    pub record_el2n: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            model: ModelKind::MnistCnn,
            epochs: 200,
            batch_size: 64,
            optimizer: OptimizerConfig::MNIST,
            lr_schedule: LrSchedule::constant(),
            dropout: true,
            augment: false,
            cutout: None,
            seed: 1,
            device: Device::Cpu,
            intra_op_threads: 1,
            record: true,
            record_el2n: false,
        }
    }
}

/// Cutout settings (DeVries & Taylor 2017, <https://arxiv.org/abs/1708.04552>): `holes`
/// squares of side `length` pixels, centred on random pixels and clipped at the borders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutout {
    /// Squares per image (the reference's `--n_holes`).
    pub holes: usize,
    /// Side of a square in pixels (the reference's `--length`).
    pub length: i64,
}

/// Where a run's tensors live. The training crate turns it into libtorch's device and checks
/// that it exists; `runs` records it as [`Device::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// The CPU.
    #[default]
    Cpu,
    /// The CUDA GPU of this index.
    Cuda(usize),
}

impl Device {
    /// How `runs` records the device: `cpu`, `cuda(0)`.
    pub fn name(self) -> String {
        match self {
            Device::Cpu => "cpu".into(),
            Device::Cuda(index) => format!("cuda({index})"),
        }
    }

    /// The device of a recorded name ([`Device::name`]), or `None` for an unknown one.
    pub fn from_name(name: &str) -> Option<Device> {
        match name {
            "cpu" => Some(Device::Cpu),
            _ => name
                .strip_prefix("cuda(")
                .and_then(|d| d.strip_suffix(')'))
                .and_then(|d| d.parse().ok())
                .map(Device::Cuda),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_round_trip() {
        for device in [Device::Cpu, Device::Cuda(0), Device::Cuda(3)] {
            assert_eq!(Device::from_name(&device.name()), Some(device));
        }
        assert_eq!(Device::Cuda(1).name(), "cuda(1)");
        assert_eq!(Device::from_name("mps"), None);
        assert_eq!(Device::from_name("cuda(x)"), None);
    }

    #[test]
    fn cifar_schedule_drops_after_the_milestones() {
        let standard = LrSchedule::cifar(0);
        let lrs: Vec<f64> =
            [1, 60, 61, 120, 121, 160, 161, 200].map(|e| standard.lr_at(0.1, e)).to_vec();
        let expected = [0.1, 0.1, 0.02, 0.02, 0.004, 0.004, 0.0008, 0.0008];
        assert!(lrs.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-12), "{lrs:?}");
        // The reference's off-by-one: each drop one epoch later.
        let faithful = LrSchedule::cifar(1);
        assert_eq!([faithful.lr_at(0.1, 61), faithful.lr_at(0.1, 62)], [0.1, 0.1 * 0.2]);
        assert_eq!(LrSchedule::constant().lr_at(0.01, 500), 0.01);
    }
}
