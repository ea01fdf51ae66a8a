//! ResNet18 in its CIFAR variant (He et al. 2016, <https://arxiv.org/abs/1512.03385>), as in
//! the Cutout repository the reference imports (uoguelph-mlrg/Cutout `model/resnet.py`, after
//! kuangliu/pytorch-cifar): a 3x3 stride-1 stem without max-pooling, four stages of two basic
//! blocks (64, 128, 256, 512 channels; stride 2 from the second stage on), global average
//! pooling and one linear layer. 11,173,962 parameters for 10 classes.

use tch::nn::{self, ModuleT};

use super::{batch_norm, conv2d, pytorch_default_init, pytorch_linear};

/// Options of [`resnet18`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResNetConfig {
    /// Number of output classes.
    pub num_classes: i64,
}

/// A convolution with PyTorch's default initialization, as the reference's ResNet has.
fn conv(p: nn::Path, c_in: i64, c_out: i64, kernel: i64, stride: i64) -> nn::Conv2D {
    conv2d(p, (c_in, c_out, kernel, stride), pytorch_default_init(c_in * kernel * kernel))
}

/// Two 3x3 convolutions with batch norm, plus a shortcut (a 1x1 convolution with batch norm
/// when the shape changes): `relu(body(x) + shortcut(x))`.
fn basic_block(p: nn::Path, c_in: i64, c_out: i64, stride: i64) -> impl ModuleT + use<> {
    let conv1 = conv(&p / "conv1", c_in, c_out, 3, stride);
    let bn1 = batch_norm(&p / "bn1", c_out);
    let conv2 = conv(&p / "conv2", c_out, c_out, 3, 1);
    let bn2 = batch_norm(&p / "bn2", c_out);
    let shortcut = (stride != 1 || c_in != c_out).then(|| {
        let p = &p / "shortcut";
        nn::seq_t().add(conv(&p / "0", c_in, c_out, 1, stride)).add(batch_norm(&p / "1", c_out))
    });
    nn::func_t(move |xs, train| {
        let body = xs.apply(&conv1).apply_t(&bn1, train).relu().apply(&conv2).apply_t(&bn2, train);
        let identity = match &shortcut {
            Some(shortcut) => xs.apply_t(shortcut, train),
            None => xs.shallow_clone(),
        };
        (body + identity).relu()
    })
}

/// A stage of two basic blocks; the first one changes channels and stride.
fn stage(p: nn::Path, c_in: i64, c_out: i64, stride: i64) -> nn::SequentialT {
    nn::seq_t().add(basic_block(&p / "0", c_in, c_out, stride)).add(basic_block(
        &p / "1",
        c_out,
        c_out,
        1,
    ))
}

/// Builds ResNet18-CIFAR. Input: `[N, 3, 32, 32]` float, normalized; output:
/// `[N, num_classes]` logits.
pub fn resnet18(p: &nn::Path, cfg: &ResNetConfig) -> impl ModuleT + use<> {
    let conv1 = conv(p / "conv1", 3, 64, 3, 1);
    let bn1 = batch_norm(p / "bn1", 64);
    let layers = nn::seq_t()
        .add(stage(p / "layer1", 64, 64, 1))
        .add(stage(p / "layer2", 64, 128, 2))
        .add(stage(p / "layer3", 128, 256, 2))
        .add(stage(p / "layer4", 256, 512, 2));
    let linear = pytorch_linear(p / "linear", 512, cfg.num_classes);
    nn::func_t(move |xs, train| {
        xs.apply(&conv1)
            .apply_t(&bn1, train)
            .relu()
            .apply_t(&layers, train)
            .adaptive_avg_pool2d([1, 1])
            .flat_view()
            .apply(&linear)
    })
}
