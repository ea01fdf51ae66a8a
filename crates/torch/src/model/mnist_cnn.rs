//! The reference's MNIST network (the PyTorch MNIST example's `Net`, as used by
//! mtoneva/example_forgetting `run_mnist.py`): two 5x5 convolutions (1→10→20 channels) with
//! max-pooling, then 320→50→classes fully connected, with `Dropout2d` after the second
//! convolution and dropout before the last layer unless dropout is off.
//!
//! It returns raw logits; the reference returned `log_softmax`, which gives the same loss and
//! the same margin (docs/semantics.md).

use tch::nn::{self, ModuleT};

use super::{DropoutRng, pytorch_default_init, pytorch_linear};

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
///
/// Every weight and bias starts as in PyTorch (which the reference used), uniform in
/// ±1/sqrt(fan_in), not tch's Kaiming-uniform default.
pub fn mnist_cnn(p: &nn::Path, cfg: &MnistCnnConfig, rng: DropoutRng) -> impl ModuleT + use<> {
    let conv = |name: &str, c_in: i64, c_out: i64| {
        let init = pytorch_default_init(c_in * 5 * 5);
        let config = nn::ConvConfig { ws_init: init, bs_init: init, ..Default::default() };
        nn::conv2d(p / name, c_in, c_out, 5, config)
    };
    let conv1 = conv("conv1", 1, 10);
    let conv2 = conv("conv2", 10, 20);
    let fc1 = pytorch_linear(p / "fc1", 320, 50);
    let fc2 = pytorch_linear(p / "fc2", 50, cfg.num_classes);
    let dropout = if cfg.dropout { 0.5 } else { 0.0 };
    nn::func_t(move |xs, train| {
        let xs = xs.apply(&conv1).max_pool2d_default(2).relu();
        let xs = rng.apply(&xs.apply(&conv2), dropout, train, true).max_pool2d_default(2).relu();
        rng.apply(&xs.flat_view().apply(&fc1).relu(), dropout, train, false).apply(&fc2)
    })
}
