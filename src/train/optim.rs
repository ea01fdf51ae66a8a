//! SGD with momentum (PyTorch's update rule, no dampening or weight decay), written over the
//! var store's tensors so that its whole state — the momentum buffers — can be checkpointed.
//! tch's own optimizers keep that state inside libtorch, where a checkpoint cannot reach it.

use std::collections::BTreeMap;

use tch::Tensor;
use tch::nn::VarStore;

use crate::error::Result;

/// Name prefixes of the two kinds of tensors in [`Sgd::state`].
const PARAM_PREFIX: &str = "param.";
const MOMENTUM_PREFIX: &str = "momentum.";

/// SGD with momentum: `buf = momentum * buf + grad` (`buf = grad` at the first step), then
/// `param -= lr * buf`.
#[derive(Debug)]
pub struct Sgd {
    lr: f64,
    momentum: f64,
    /// Every variable of the var store by name (trainable or not: all belong in a checkpoint).
    variables: BTreeMap<String, Tensor>,
    /// Momentum buffers of the trainable variables, by name.
    buffers: BTreeMap<String, Tensor>,
}

impl Sgd {
    /// An optimizer over every trainable variable of `vs`.
    pub fn new(vs: &VarStore, lr: f64, momentum: f64) -> Self {
        Sgd {
            lr,
            momentum,
            variables: vs.variables().into_iter().collect(),
            buffers: BTreeMap::new(),
        }
    }

    /// Zeroes the gradients, back-propagates `loss` and applies one update.
    ///
    /// # Errors
    /// [`crate::Error::Torch`] if a tensor operation fails.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        for variable in self.variables.values_mut() {
            if variable.requires_grad() {
                variable.zero_grad();
            }
        }
        loss.f_backward()?;
        let _no_grad = tch::no_grad_guard();
        for (name, variable) in self.variables.iter_mut().filter(|(_, v)| v.requires_grad()) {
            let grad = variable.grad();
            if !grad.defined() {
                continue;
            }
            let buffer = match self.buffers.get_mut(name) {
                Some(buffer) => {
                    let _ = buffer.f_mul_scalar_(self.momentum)?.f_add_(&grad)?;
                    buffer
                }
                None => self.buffers.entry(name.clone()).or_insert(grad.detach().copy()),
            };
            let _ = variable.f_sub_(&buffer.f_mul_scalar(self.lr)?)?;
        }
        Ok(())
    }

    /// The model and optimizer state as named tensors, for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let params =
            self.variables.iter().map(|(n, t)| (format!("{PARAM_PREFIX}{n}"), t.shallow_clone()));
        let buffers =
            self.buffers.iter().map(|(n, t)| (format!("{MOMENTUM_PREFIX}{n}"), t.shallow_clone()));
        params.chain(buffers).collect()
    }

    /// Restores a state saved by [`Sgd::state`].
    ///
    /// # Errors
    /// [`crate::Error::Config`] when the state belongs to a different model.
    pub fn restore(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        let _no_grad = tch::no_grad_guard();
        let mut restored = 0;
        for (name, tensor) in state {
            // libtorch's archive format stores '.' in names as '|'.
            let name = name.replace('|', ".");
            if let Some(variable_name) = name.strip_prefix(PARAM_PREFIX) {
                let variable = self.variables.get_mut(variable_name).ok_or_else(|| {
                    crate::Error::Config(format!(
                        "checkpoint variable {variable_name} is not in the model"
                    ))
                })?;
                variable.f_copy_(&tensor)?;
                restored += 1;
            } else if let Some(variable_name) = name.strip_prefix(MOMENTUM_PREFIX) {
                let device =
                    self.variables.get(variable_name).map_or(tch::Device::Cpu, |v| v.device());
                self.buffers.insert(variable_name.to_string(), tensor.f_to_device(device)?.copy());
            }
        }
        if restored != self.variables.len() {
            return Err(crate::Error::Config(format!(
                "checkpoint holds {restored} of the model's {} variables",
                self.variables.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module};

    #[test]
    fn matches_the_momentum_update_rule() {
        let vs = VarStore::new(tch::Device::Cpu);
        let linear = nn::linear(vs.root() / "l", 2, 1, Default::default());
        let mut sgd = Sgd::new(&vs, 0.1, 0.5);
        let xs = Tensor::from_slice(&[1.0f32, 2.0]).view([1, 2]);
        let w0: Vec<f32> = Vec::try_from(&linear.ws.flatten(0, -1)).unwrap();
        // loss = w.x + b, so grad w = x every step; after two steps the buffer is 1.5 x.
        sgd.backward_step(&linear.forward(&xs).sum(tch::Kind::Float)).unwrap();
        sgd.backward_step(&linear.forward(&xs).sum(tch::Kind::Float)).unwrap();
        let w2: Vec<f32> = Vec::try_from(&linear.ws.flatten(0, -1)).unwrap();
        for (i, x) in [1.0f32, 2.0].iter().enumerate() {
            let expected = w0[i] - 0.1 * x - 0.1 * 1.5 * x;
            assert!((w2[i] - expected).abs() < 1e-6, "{} vs {expected}", w2[i]);
        }
    }

    #[test]
    fn state_round_trips_into_a_fresh_optimizer() {
        let make = || {
            let vs = VarStore::new(tch::Device::Cpu);
            let linear = nn::linear(vs.root() / "l", 3, 2, Default::default());
            (vs, linear)
        };
        let (vs_a, a) = make();
        let mut sgd_a = Sgd::new(&vs_a, 0.05, 0.9);
        let xs = Tensor::randn([4, 3], tch::kind::FLOAT_CPU);
        sgd_a.backward_step(&a.forward(&xs).square().sum(tch::Kind::Float)).unwrap();

        let (vs_b, b) = make();
        let mut sgd_b = Sgd::new(&vs_b, 0.05, 0.9);
        sgd_b.restore(sgd_a.state()).unwrap();
        for _ in 0..3 {
            sgd_a.backward_step(&a.forward(&xs).square().sum(tch::Kind::Float)).unwrap();
            sgd_b.backward_step(&b.forward(&xs).square().sum(tch::Kind::Float)).unwrap();
        }
        assert!(a.ws.equal(&b.ws) && a.bs.as_ref().unwrap().equal(b.bs.as_ref().unwrap()));
    }
}
