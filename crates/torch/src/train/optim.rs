//! Optimizers and learning-rate schedules. SGD (momentum, Nesterov, weight decay) and Adam
//! follow PyTorch's update rules, written over the var store's tensors so that their whole
//! state — momentum buffers, Adam's moments and step count — can be checkpointed. tch's own
//! optimizers keep that state inside libtorch, where a checkpoint cannot reach it.

use std::collections::BTreeMap;

use tch::Tensor;
use tch::nn::VarStore;

use fstream::config::{OptimizerConfig, OptimizerKind};

use crate::error::Result;

/// Name prefix of the model's variables in [`Optimizer::state`]; every other entry is
/// optimizer state named `<slot>.<variable>`, or the step count.
const PARAM_PREFIX: &str = "param.";
const STEPS_KEY: &str = "steps";
const MOMENTUM_SLOT: &str = "momentum";
const EXP_AVG_SLOT: &str = "exp_avg";
const EXP_AVG_SQ_SLOT: &str = "exp_avg_sq";

/// Adam's fixed hyper-parameters (PyTorch's defaults, which the reference used).
const ADAM_BETAS: (f64, f64) = (0.9, 0.999);
const ADAM_EPS: f64 = 1e-8;

/// One trainable variable and its optimizer state.
#[derive(Debug)]
struct Trainable {
    name: String,
    tensor: Tensor,
    /// The update rule's state, one tensor per [`slots`] entry, made at the
    /// first step (SGD without momentum has none).
    slots: Vec<Tensor>,
}

/// An optimizer over every trainable variable of a var store, with checkpointable state.
///
/// Gradients come from `autograd.grad` over the trainable variables rather than from
/// `backward` into `.grad`, so no step zeroes or accumulates gradients; with the update
/// written in the fewest tensor ops this runs as many kernels per variable as libtorch's own
/// SGD (bench/README.md has the figures).
#[derive(Debug)]
pub struct Optimizer {
    config: OptimizerConfig,
    lr: f64,
    /// `-lr` as a 0-dim float tensor on the variables' device, for fused `p += -lr * d`.
    negative_lr: Tensor,
    steps: i64,
    /// Every variable of the var store by name (trainable or not: all belong in a checkpoint).
    variables: BTreeMap<String, Tensor>,
    trainable: Vec<Trainable>,
    /// The trainable variables again, in the same order, as `autograd.grad`'s inputs.
    inputs: Vec<Tensor>,
}

/// Names of the per-variable state tensors of the update rule, as checkpoints store them.
fn slots(config: &OptimizerConfig) -> &'static [&'static str] {
    match config.kind {
        OptimizerKind::Sgd if config.momentum == 0.0 => &[],
        OptimizerKind::Sgd => &[MOMENTUM_SLOT],
        OptimizerKind::Adam => &[EXP_AVG_SLOT, EXP_AVG_SQ_SLOT],
    }
}

impl Optimizer {
    /// An optimizer over every trainable variable of `vs`, at the config's base rate.
    pub fn new(vs: &VarStore, config: OptimizerConfig) -> Self {
        let variables: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
        let trainable: Vec<Trainable> = variables
            .iter()
            .filter(|(_, tensor)| tensor.requires_grad())
            .map(|(name, tensor)| Trainable {
                name: name.clone(),
                tensor: tensor.shallow_clone(),
                slots: Vec::new(),
            })
            .collect();
        let inputs = trainable.iter().map(|t| t.tensor.shallow_clone()).collect();
        Optimizer {
            config,
            lr: config.lr,
            negative_lr: scalar_tensor(-config.lr, vs.device()),
            steps: 0,
            variables,
            trainable,
            inputs,
        }
    }

    /// Sets the learning rate of the next steps.
    pub fn set_lr(&mut self, lr: f64) {
        if lr != self.lr {
            self.lr = lr;
            self.negative_lr = scalar_tensor(-lr, self.negative_lr.device());
        }
    }

    /// Back-propagates `loss` to the trainable variables and applies one update.
    ///
    /// # Errors
    /// [`crate::Error::Torch`] if a tensor operation fails.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = Tensor::f_run_backward(&[loss], &self.inputs, false, false)?;
        let _no_grad = tch::no_grad_guard();
        self.steps += 1;
        for (trainable, grad) in self.trainable.iter_mut().zip(grads) {
            // A variable the loss does not depend on gets no gradient and no update.
            if !grad.defined() {
                continue;
            }
            match self.config.kind {
                OptimizerKind::Sgd => sgd_update(&self.config, &self.negative_lr, trainable, grad)?,
                OptimizerKind::Adam => {
                    adam_update(&self.config, self.lr, self.steps, trainable, grad)?
                }
            }
        }
        Ok(())
    }

    /// The model and optimizer state as named tensors, for a checkpoint: the variables as
    /// `param.<variable>`, the update rule's state as `<slot>.<variable>`, and the step count.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let params =
            self.variables.iter().map(|(n, t)| (format!("{PARAM_PREFIX}{n}"), t.shallow_clone()));
        let slot_names = slots(&self.config);
        let slots = self.trainable.iter().flat_map(|t| {
            slot_names
                .iter()
                .zip(&t.slots)
                .map(|(slot, tensor)| (format!("{slot}.{}", t.name), tensor.shallow_clone()))
        });
        let steps = (STEPS_KEY.to_string(), Tensor::from(self.steps));
        params.chain(slots).chain([steps]).collect()
    }

    /// Restores a state saved by [`Optimizer::state`].
    ///
    /// # Errors
    /// [`fstream::Error::Config`] when the state belongs to a different model or optimizer.
    pub fn restore(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        let _no_grad = tch::no_grad_guard();
        let slot_names = slots(&self.config);
        let mut restored = 0;
        let mut slots: BTreeMap<(String, usize), Tensor> = BTreeMap::new();
        for (name, tensor) in state {
            // libtorch's archive format stores '.' in names as '|'.
            let name = name.replace('|', ".");
            if let Some(variable_name) = name.strip_prefix(PARAM_PREFIX) {
                let variable = self.variables.get_mut(variable_name).ok_or_else(|| {
                    fstream::Error::Config(format!(
                        "checkpoint variable {variable_name} is not in the model"
                    ))
                })?;
                variable.f_copy_(&tensor)?;
                restored += 1;
            } else if name == STEPS_KEY {
                self.steps = i64::try_from(&tensor)?;
            } else {
                let (slot, variable_name) = name.split_once('.').unwrap_or((&name, ""));
                let index = slot_names.iter().position(|s| *s == slot).ok_or_else(|| {
                    fstream::Error::Config(format!(
                        "checkpoint state {name} does not belong to {} with these settings",
                        self.config.kind.name()
                    ))
                })?;
                slots.insert((variable_name.to_string(), index), tensor);
            }
        }
        if restored != self.variables.len() {
            return Err(fstream::Error::Config(format!(
                "checkpoint holds {restored} of the model's {} variables",
                self.variables.len()
            ))
            .into());
        }
        for trainable in &mut self.trainable {
            let device = trainable.tensor.device();
            trainable.slots = (0..slot_names.len())
                .map_while(|index| slots.remove(&(trainable.name.clone(), index)))
                .map(|tensor| tensor.f_to_device(device).map(|t| t.copy()))
                .collect::<std::result::Result<_, _>>()?;
        }
        Ok(())
    }
}

/// A 0-dim float tensor holding `value` on `device`.
fn scalar_tensor(value: f64, device: tch::Device) -> Tensor {
    Tensor::from(value as f32).to_device(device)
}

/// PyTorch's SGD: `d = grad + wd * p`; `buf = momentum * buf + d` (`buf = d` at first);
/// `d = d + momentum * buf` (Nesterov) or `d = buf`; `p -= lr * d`.
fn sgd_update(
    config: &OptimizerConfig,
    negative_lr: &Tensor,
    trainable: &mut Trainable,
    grad: Tensor,
) -> Result<()> {
    let OptimizerConfig { momentum, nesterov, .. } = *config;
    let mut step = with_weight_decay(config, &trainable.tensor, grad)?;
    if momentum != 0.0 {
        let buffer = match trainable.slots.first_mut() {
            Some(buffer) => {
                let _ = buffer.f_mul_scalar_(momentum)?.f_add_(&step)?;
                buffer.shallow_clone()
            }
            None => {
                // The gradient is this step's own tensor, so it can become the buffer.
                trainable.slots.push(step.shallow_clone());
                step.shallow_clone()
            }
        };
        step = if nesterov { step.f_add(&buffer.f_mul_scalar(momentum)?)? } else { buffer };
    }
    let _ = trainable.tensor.f_addcmul_(&step, negative_lr)?;
    Ok(())
}

/// The gradient with L2 weight decay added, `grad + wd * p`, as PyTorch's SGD and Adam
/// (not AdamW) apply it.
fn with_weight_decay(config: &OptimizerConfig, variable: &Tensor, grad: Tensor) -> Result<Tensor> {
    Ok(match config.weight_decay {
        0.0 => grad,
        weight_decay => grad.f_add(&variable.f_mul_scalar(weight_decay)?)?,
    })
}

/// PyTorch's Adam at 1-based step `t`: `g = grad + wd * p`, `m = b1 m + (1 - b1) g`,
/// `v = b2 v + (1 - b2) g²`, `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
fn adam_update(
    config: &OptimizerConfig,
    lr: f64,
    t: i64,
    trainable: &mut Trainable,
    grad: Tensor,
) -> Result<()> {
    let grad = with_weight_decay(config, &trainable.tensor, grad)?;
    if trainable.slots.is_empty() {
        trainable.slots = vec![grad.f_zeros_like()?, grad.f_zeros_like()?];
    }
    let (beta1, beta2) = ADAM_BETAS;
    let [exp_avg, exp_avg_sq] = &mut trainable.slots[..] else {
        unreachable!("Adam keeps two moments per variable")
    };
    let _ = exp_avg.f_mul_scalar_(beta1)?.f_add_(&grad.f_mul_scalar(1.0 - beta1)?)?;
    let _ =
        exp_avg_sq.f_mul_scalar_(beta2)?.f_add_(&grad.f_square()?.f_mul_scalar(1.0 - beta2)?)?;
    let t = t as i32;
    let bias_correction1 = 1.0 - beta1.powi(t);
    let bias_correction2 = 1.0 - beta2.powi(t);
    let denom =
        exp_avg_sq.f_sqrt()?.f_div_scalar(bias_correction2.sqrt())?.f_add_scalar(ADAM_EPS)?;
    let update = exp_avg.f_div(&denom)?.f_mul_scalar(lr / bias_correction1)?;
    let _ = trainable.tensor.f_sub_(&update)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::seeded;
    use tch::nn::{self, Module};

    /// A 2-input linear layer with weights (w0, w1) and bias b, and x = (1, 2).
    fn setup() -> (VarStore, nn::Linear, Tensor) {
        let vs = VarStore::new(tch::Device::Cpu);
        let linear = seeded(0, || nn::linear(vs.root() / "l", 2, 1, Default::default()));
        (vs, linear, Tensor::from_slice(&[1.0f32, 2.0]).view([1, 2]))
    }

    fn weights(linear: &nn::Linear) -> Vec<f64> {
        Vec::<f32>::try_from(&linear.ws.flatten(0, -1))
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect()
    }

    fn assert_close(actual: &[f64], expected: &[f64]) {
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-5, "{actual:?} vs {expected:?}");
        }
    }

    #[test]
    fn sgd_matches_the_momentum_update_rule() {
        let (vs, linear, xs) = setup();
        let mut sgd = Optimizer::new(
            &vs,
            OptimizerConfig { lr: 0.1, momentum: 0.5, ..OptimizerConfig::MNIST },
        );
        let w0 = weights(&linear);
        // loss = w.x + b, so grad w = x every step; after two steps the buffer is 1.5 x.
        sgd.backward_step(&linear.forward(&xs).sum(tch::Kind::Float)).unwrap();
        sgd.backward_step(&linear.forward(&xs).sum(tch::Kind::Float)).unwrap();
        let expected: Vec<f64> =
            [1.0, 2.0].iter().enumerate().map(|(i, x)| w0[i] - 0.1 * x - 0.1 * 1.5 * x).collect();
        assert_close(&weights(&linear), &expected);
    }

    #[test]
    fn sgd_with_nesterov_and_weight_decay_matches_pytorch() {
        let (vs, linear, xs) = setup();
        let config = OptimizerConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.01,
            kind: OptimizerKind::Sgd,
        };
        let mut sgd = Optimizer::new(&vs, config);
        let mut w = weights(&linear);
        let mut buf = [0.0; 2];
        for step in 0..3 {
            sgd.backward_step(&linear.forward(&xs).sum(tch::Kind::Float)).unwrap();
            for (i, x) in [1.0, 2.0].iter().enumerate() {
                let d = x + 0.01 * w[i];
                buf[i] = if step == 0 { d } else { 0.9 * buf[i] + d };
                w[i] -= 0.1 * (d + 0.9 * buf[i]);
            }
            assert_close(&weights(&linear), &w);
        }
    }

    #[test]
    fn adam_with_and_without_weight_decay_matches_pytorch() {
        for weight_decay in [0.0, 0.1] {
            adam_matches_pytorch(weight_decay);
        }
    }

    fn adam_matches_pytorch(weight_decay: f64) {
        let (vs, linear, xs) = setup();
        let mut adam =
            Optimizer::new(&vs, OptimizerConfig { weight_decay, ..OptimizerConfig::ADAM });
        let mut w = weights(&linear);
        let (mut m, mut v) = ([0.0; 2], [0.0; 2]);
        for t in 1..=3 {
            // loss = (w.x + b)², so grad w = 2 (w.x + b) x, plus wd * w.
            let out = f64::try_from(&linear.forward(&xs).sum(tch::Kind::Double)).unwrap();
            adam.backward_step(&linear.forward(&xs).square().sum(tch::Kind::Float)).unwrap();
            for (i, x) in [1.0, 2.0].iter().enumerate() {
                let g = 2.0 * out * x + weight_decay * w[i];
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                let denom = (v[i] / (1.0 - 0.999f64.powi(t))).sqrt() + 1e-8;
                w[i] -= 1e-3 / (1.0 - 0.9f64.powi(t)) * m[i] / denom;
            }
            assert_close(&weights(&linear), &w);
        }
    }

    #[test]
    fn state_round_trips_into_a_fresh_optimizer() {
        for config in [OptimizerConfig::CIFAR, OptimizerConfig::ADAM] {
            let make = || {
                let vs = VarStore::new(tch::Device::Cpu);
                let linear = seeded(0, || nn::linear(vs.root() / "l", 3, 2, Default::default()));
                (vs, linear)
            };
            let (vs_a, a) = make();
            let mut opt_a = Optimizer::new(&vs_a, config);
            let xs = seeded(1, || Tensor::randn([4, 3], tch::kind::FLOAT_CPU));
            opt_a.backward_step(&a.forward(&xs).square().sum(tch::Kind::Float)).unwrap();

            let (vs_b, b) = make();
            let mut opt_b = Optimizer::new(&vs_b, config);
            // Through the checkpoint format, which renames '.' to '|'.
            let mut bytes = Vec::new();
            Tensor::save_multi_to_stream(&opt_a.state(), &mut bytes).unwrap();
            opt_b
                .restore(Tensor::load_multi_from_stream(std::io::Cursor::new(bytes)).unwrap())
                .unwrap();
            for _ in 0..3 {
                opt_a.backward_step(&a.forward(&xs).square().sum(tch::Kind::Float)).unwrap();
                opt_b.backward_step(&b.forward(&xs).square().sum(tch::Kind::Float)).unwrap();
            }
            assert!(
                a.ws.equal(&b.ws) && a.bs.as_ref().unwrap().equal(b.bs.as_ref().unwrap()),
                "{config:?}"
            );
        }
    }
}
