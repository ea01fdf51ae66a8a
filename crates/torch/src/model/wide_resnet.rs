//! WideResNet-28-10 (Zagoruyko & Komodakis 2016, <https://arxiv.org/abs/1605.07146>), as in the
//! Cutout repository the reference imports (uoguelph-mlrg/Cutout `model/wide_resnet.py`, after
//! xternalz/WideResNet-pytorch): a 3x3 stem of 16 channels, three groups of pre-activation basic
//! blocks (160, 320, 640 channels for width 10; stride 2 from the second group on) with dropout
//! between the two convolutions, then batch norm, ReLU, global average pooling and one linear
//! layer. 36,479,194 parameters for depth 28, width 10 and 10 classes.

use tch::nn::{self, ModuleT};

use super::{DropoutRng, batch_norm, conv2d, pytorch_default_init};

/// xternalz's initialization of every convolution: Kaiming normal, fan out, ReLU gain.
const CONV_INIT: nn::Init = nn::Init::Kaiming {
    dist: nn::init::NormalOrUniform::Normal,
    fan: nn::init::FanInOut::FanOut,
    non_linearity: nn::init::NonLinearity::ReLU,
};

/// Options of [`wide_resnet`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WideResNetConfig {
    /// Number of output classes.
    pub num_classes: i64,
    /// Depth; `(depth - 4) / 6` blocks per group (28 in the reference).
    pub depth: i64,
    /// Width multiplier (10 in the reference).
    pub widen_factor: i64,
    /// Dropout probability between a block's convolutions (0.3 in the reference; 0 is off).
    pub dropout: f64,
}

impl WideResNetConfig {
    /// WRN-28-10 with dropout 0.3, the reference's `--model wideresnet`.
    pub fn wrn_28_10(num_classes: i64) -> Self {
        WideResNetConfig { num_classes, depth: 28, widen_factor: 10, dropout: 0.3 }
    }
}

/// A pre-activation block: `bn-relu-conv3x3-bn-relu-dropout-conv3x3`, added to the input, or,
/// when the shape changes, to a 1x1 convolution of the pre-activated input (as xternalz's
/// `BasicBlock`).
fn basic_block(
    p: nn::Path,
    (c_in, c_out, stride): (i64, i64, i64),
    dropout: f64,
    rng: DropoutRng,
) -> impl ModuleT + use<> {
    let bn1 = batch_norm(&p / "bn1", c_in);
    let conv1 = conv2d(&p / "conv1", (c_in, c_out, 3, stride), CONV_INIT);
    let bn2 = batch_norm(&p / "bn2", c_out);
    let conv2 = conv2d(&p / "conv2", (c_out, c_out, 3, 1), CONV_INIT);
    let shortcut =
        (c_in != c_out).then(|| conv2d(&p / "convShortcut", (c_in, c_out, 1, stride), CONV_INIT));
    nn::func_t(move |xs, train| {
        let activated = xs.apply_t(&bn1, train).relu();
        let out = activated.apply(&conv1).apply_t(&bn2, train).relu();
        let out = rng.apply(&out, dropout, train, false).apply(&conv2);
        match &shortcut {
            Some(shortcut) => activated.apply(shortcut) + out,
            None => xs + out,
        }
    })
}

/// A group of `blocks` blocks; the first one changes channels and stride.
fn group(
    p: nn::Path,
    blocks: i64,
    (c_in, c_out, stride): (i64, i64, i64),
    dropout: f64,
    rng: &DropoutRng,
) -> nn::SequentialT {
    let layer = &p / "layer";
    (0..blocks).fold(nn::seq_t(), |seq, i| {
        let shape = if i == 0 { (c_in, c_out, stride) } else { (c_out, c_out, 1) };
        seq.add(basic_block(&layer / i, shape, dropout, rng.clone()))
    })
}

/// Builds a WideResNet, drawing dropout masks from `rng`. Input: `[N, 3, 32, 32]` float,
/// normalized; output: `[N, num_classes]` logits.
pub fn wide_resnet(p: &nn::Path, cfg: &WideResNetConfig, rng: DropoutRng) -> impl ModuleT + use<> {
    let blocks = (cfg.depth - 4) / 6;
    let widths = [16, 16 * cfg.widen_factor, 32 * cfg.widen_factor, 64 * cfg.widen_factor];
    let conv1 = conv2d(p / "conv1", (3, widths[0], 3, 1), CONV_INIT);
    let groups = nn::seq_t()
        .add(group(p / "block1", blocks, (widths[0], widths[1], 1), cfg.dropout, &rng))
        .add(group(p / "block2", blocks, (widths[1], widths[2], 2), cfg.dropout, &rng))
        .add(group(p / "block3", blocks, (widths[2], widths[3], 2), cfg.dropout, &rng));
    let bn1 = batch_norm(p / "bn1", widths[3]);
    // The reference keeps PyTorch's default linear weight and zeroes the bias.
    let fc = nn::linear(
        p / "fc",
        widths[3],
        cfg.num_classes,
        nn::LinearConfig {
            ws_init: pytorch_default_init(widths[3]),
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        },
    );
    nn::func_t(move |xs, train| {
        xs.apply(&conv1)
            .apply_t(&groups, train)
            .apply_t(&bn1, train)
            .relu()
            .adaptive_avg_pool2d([1, 1])
            .flat_view()
            .apply(&fc)
    })
}
