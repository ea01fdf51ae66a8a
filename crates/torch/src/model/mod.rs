//! Model construction: [`ModelKind`] names a network and [`build`] constructs it under a
//! var-store path. Adding a model touches this file and one new file.

mod dropout;
mod mnist_cnn;
mod resnet;
mod wide_resnet;

use fstream::config::ModelKind;
use tch::nn;

pub use dropout::{DropoutRng, seeded};
pub use mnist_cnn::{MnistCnnConfig, mnist_cnn};
pub use resnet::{ResNetConfig, resnet18};
pub use wide_resnet::{WideResNetConfig, wide_resnet};

/// Builds `kind` with `num_classes` outputs under `p`; `dropout` switches the model's dropout
/// layers on or off (ResNet18 has none), and their masks come from `rng`.
pub fn build(
    p: &nn::Path,
    kind: ModelKind,
    num_classes: i64,
    dropout: bool,
    rng: DropoutRng,
) -> Box<dyn nn::ModuleT> {
    let model: Box<dyn nn::ModuleT> = match kind {
        ModelKind::MnistCnn => {
            Box::new(mnist_cnn(p, &MnistCnnConfig { num_classes, dropout }, rng))
        }
        ModelKind::ResNet18 => Box::new(resnet18(p, &ResNetConfig { num_classes })),
        ModelKind::WideResNet => {
            let config = WideResNetConfig {
                dropout: if dropout { 0.3 } else { 0.0 },
                ..WideResNetConfig::wrn_28_10(num_classes)
            };
            Box::new(wide_resnet(p, &config, rng))
        }
    };
    model
}

/// A bias-free convolution of `kernel` x `kernel` with padding `kernel / 2`, for
/// `(c_in, c_out, kernel, stride)`.
pub(crate) fn conv2d(
    p: nn::Path,
    (c_in, c_out, kernel, stride): (i64, i64, i64, i64),
    ws_init: nn::Init,
) -> nn::Conv2D {
    let config =
        nn::ConvConfig { stride, padding: kernel / 2, bias: false, ws_init, ..Default::default() };
    nn::conv2d(p, c_in, c_out, kernel, config)
}

/// PyTorch's default initialization of convolution and linear weights,
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
pub(crate) fn pytorch_default_init(fan_in: i64) -> nn::Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    nn::Init::Uniform { lo: -bound, up: bound }
}

/// A linear layer initialized as PyTorch's `nn.Linear`: weight and bias uniform in
/// ±1/sqrt(`c_in`).
pub(crate) fn pytorch_linear(p: nn::Path, c_in: i64, c_out: i64) -> nn::Linear {
    let init = pytorch_default_init(c_in);
    nn::linear(p, c_in, c_out, nn::LinearConfig { ws_init: init, bs_init: Some(init), bias: true })
}

/// 2-d batch norm initialized as in current PyTorch (weight 1, bias 0; tch draws the weight
/// from U(0, 1), as PyTorch 0.4 did).
pub(crate) fn batch_norm(p: nn::Path, channels: i64) -> nn::BatchNorm {
    let config = nn::BatchNormConfig { ws_init: nn::Init::Const(1.0), ..Default::default() };
    nn::batch_norm2d(p, channels, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::ModuleT;

    #[test]
    fn mnist_cnn_has_the_reference_parameter_count_and_output_shape() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let model =
            seeded(0, || build(&vs.root(), ModelKind::MnistCnn, 10, true, DropoutRng::new(0)));
        let params: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        // conv1 10*1*25+10, conv2 20*10*25+20, fc1 320*50+50, fc2 50*10+10 (PyTorch: 21,840).
        assert_eq!(params, 260 + 5020 + 16050 + 510);
        let out = model.forward_t(&tch::Tensor::zeros([3, 1, 28, 28], tch::kind::FLOAT_CPU), false);
        assert_eq!(out.size(), vec![3, 10]);
    }

    fn parameters(kind: ModelKind, classes: i64) -> (i64, nn::VarStore, Box<dyn ModuleT>) {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let model = seeded(0, || build(&vs.root(), kind, classes, true, DropoutRng::new(0)));
        let params = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        (params, vs, model)
    }

    /// The largest absolute value of each named parameter.
    fn largest_values(vs: &nn::VarStore) -> std::collections::BTreeMap<String, f64> {
        vs.variables()
            .into_iter()
            .map(|(name, t)| (name, t.abs().max().double_value(&[])))
            .collect()
    }

    #[test]
    fn mnist_cnn_starts_as_pytorch_uniform_in_one_over_root_fan_in() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _ = seeded(0, || build(&vs.root(), ModelKind::MnistCnn, 10, false, DropoutRng::new(0)));
        let fan_in = [("conv1", 25.0), ("conv2", 250.0), ("fc1", 320.0), ("fc2", 50.0)];
        let largest = largest_values(&vs);
        for (layer, fan_in) in fan_in {
            let bound = 1.0 / f64::sqrt(fan_in);
            for kind in ["weight", "bias"] {
                let value = largest[&format!("{layer}.{kind}")];
                // Within the bound, and (these tensors have ≥ 10 draws) near it.
                assert!(
                    value <= bound && value > 0.5 * bound,
                    "{layer}.{kind}: {value} vs {bound}"
                );
            }
        }
        let weights = largest["conv2.weight"];
        assert!(weights > 0.95 / f64::sqrt(250.0), "5,000 draws reach the bound: {weights}");
    }

    #[test]
    fn wide_resnet_linear_starts_as_pytorch_with_zero_bias() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _ =
            seeded(0, || build(&vs.root(), ModelKind::WideResNet, 10, true, DropoutRng::new(0)));
        let largest = largest_values(&vs);
        let bound = 1.0 / f64::sqrt(640.0);
        assert!(largest["fc.weight"] <= bound && largest["fc.weight"] > 0.95 * bound);
        assert_eq!(largest["fc.bias"], 0.0);
    }

    #[test]
    fn resnet18_has_the_reference_parameter_count() {
        // kuangliu/pytorch-cifar's ResNet18 (the Cutout repository's): 11,173,962 for 10 classes.
        let (params, _, model) = parameters(ModelKind::ResNet18, 10);
        assert_eq!(params, 11_173_962);
        let out = model.forward_t(&tch::Tensor::zeros([2, 3, 32, 32], tch::kind::FLOAT_CPU), true);
        assert_eq!(out.size(), vec![2, 10]);
        // 100 classes only change the last layer: 512 * 90 more weights and 90 more biases.
        assert_eq!(parameters(ModelKind::ResNet18, 100).0, 11_173_962 + 90 * 513);
    }

    #[test]
    fn wide_resnet_28_10_has_the_reference_parameter_count() {
        // xternalz's WRN-28-10 (the Cutout repository's): stem 432; group 1 (16→160):
        // 256,352 + 3 × 461,440; group 2 (160→320): 1,434,560 + 3 × 1,844,480; group 3
        // (320→640): 5,736,320 + 3 × 7,375,360; final batch norm 1,280; linear 6,410.
        let (params, vs, _) = parameters(ModelKind::WideResNet, 10);
        assert_eq!(params, 36_479_194);
        let names: Vec<String> = vs.variables().into_keys().collect();
        assert!(names.contains(&"block2.layer.0.convShortcut.weight".to_string()), "{names:?}");
    }
}
