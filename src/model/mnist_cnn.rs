//! The reference's MNIST network (the PyTorch MNIST example's `Net`, as used by
//! mtoneva/example_forgetting `run_mnist.py`): two 5x5 convolutions (1→10→20 channels) with
//! max-pooling, then 320→50→classes fully connected, with `Dropout2d` after the second
//! convolution and dropout before the last layer unless dropout is off.
//!
//! It returns raw logits; the reference returned `log_softmax`, which gives the same loss and
//! the same margin (DESIGN.md §1).

use tch::nn::{self, ModuleT};

use super::DropoutRng;

/// Options of [`mnist_cnn`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MnistCnnConfig {
    /// Number of output classes.
    pub num_classes: i64,
    /// Whether the two dropout layers are active in training mode (`--no-dropout` turns them off).
    pub dropout: bool,
}

/// Builds the network, drawing dropout masks from `rng`. Input: `[N, 1, 28, 28]` float, normalized; output: `[N, num_classes]`
/// logits.
pub fn mnist_cnn(p: &nn::Path, cfg: &MnistCnnConfig, rng: DropoutRng) -> impl ModuleT + use<> {
    let conv1 = nn::conv2d(p / "conv1", 1, 10, 5, Default::default());
    let conv2 = nn::conv2d(p / "conv2", 10, 20, 5, Default::default());
    let fc1 = nn::linear(p / "fc1", 320, 50, Default::default());
    let fc2 = nn::linear(p / "fc2", 50, cfg.num_classes, Default::default());
    let dropout = if cfg.dropout { 0.5 } else { 0.0 };
    nn::func_t(move |xs, train| {
        let xs = xs.apply(&conv1).max_pool2d_default(2).relu();
        let xs = rng.apply(&xs.apply(&conv2), dropout, train, true).max_pool2d_default(2).relu();
        rng.apply(&xs.flat_view().apply(&fc1).relu(), dropout, train, false).apply(&fc2)
    })
}
