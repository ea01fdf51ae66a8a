//! Model construction: [`ModelKind`] names a network and [`build`] constructs it under a
//! var-store path. Adding a model touches this file and one new file.

mod dropout;
mod mnist_cnn;

use std::fmt;
use std::str::FromStr;

use tch::nn;

pub use dropout::DropoutRng;
pub use mnist_cnn::{MnistCnnConfig, mnist_cnn};

/// The networks fstream can train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// The reference's small MNIST CNN ([`mnist_cnn`]).
    MnistCnn,
}

impl ModelKind {
    /// Every model, in the order `--help` lists them.
    pub const ALL: [ModelKind; 1] = [ModelKind::MnistCnn];

    /// The name used on the command line and in the `runs` table.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::MnistCnn => "mnist_cnn",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::names::parse_name(s, &ModelKind::ALL, ModelKind::name, "model")
    }
}

/// Builds `kind` with `num_classes` outputs under `p`; `dropout` switches the model's dropout
/// layers on or off, and their masks come from `rng`.
pub fn build(
    p: &nn::Path,
    kind: ModelKind,
    num_classes: i64,
    dropout: bool,
    rng: DropoutRng,
) -> impl nn::ModuleT + use<> {
    match kind {
        ModelKind::MnistCnn => mnist_cnn(p, &MnistCnnConfig { num_classes, dropout }, rng),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::ModuleT;

    #[test]
    fn mnist_cnn_has_the_reference_parameter_count_and_output_shape() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let model = build(&vs.root(), ModelKind::MnistCnn, 10, true, DropoutRng::new(0));
        let params: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        // conv1 10*1*25+10, conv2 20*10*25+20, fc1 320*50+50, fc2 50*10+10 (PyTorch: 21,840).
        assert_eq!(params, 260 + 5020 + 16050 + 510);
        let out = model.forward_t(&tch::Tensor::zeros([3, 1, 28, 28], tch::kind::FLOAT_CPU), false);
        assert_eq!(out.size(), vec![3, 10]);
    }
}
