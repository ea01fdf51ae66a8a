//! Per-example statistics of a batch (loss, correctness, misclassification margin), computed as
//! batched tensor ops on the batch's device and copied to the host in one transfer
//! (docs/semantics.md for the definitions).

use tch::{Device, Kind, Tensor};

use crate::error::Result;

/// Per-example statistics of one batch, on the host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostStats {
    /// Cross-entropy loss.
    pub loss: Vec<f32>,
    /// Whether the argmax of the logits is the target (first maximum on ties, as torch).
    pub correct: Vec<bool>,
    /// Target logit minus the largest logit among the other classes.
    pub margin: Vec<f32>,
    /// EL2N, `‖softmax(logits) − onehot(target)‖₂` (Paul et al. 2021); empty unless asked for.
    pub el2n: Vec<f32>,
}

/// Computes the statistics of a batch.
///
/// `logits`: `[B, C]` float; `targets`: `[B]` int64 class indices; `loss`: `[B]` per-example
/// cross-entropy of those logits (the tensor the update's mean is taken from). All on one
/// device; nothing is differentiated through. With `el2n`, EL2N is computed too.
///
/// # Errors
/// [`crate::Error::Torch`] when the shapes do not fit together.
pub fn batch_stats(
    logits: &Tensor,
    targets: &Tensor,
    loss: &Tensor,
    el2n: bool,
) -> Result<HostStats> {
    let _no_grad = tch::no_grad_guard();
    let logits = logits.detach();
    let target_index = targets.f_unsqueeze(1)?;
    let target_logit = logits.f_gather(1, &target_index, false)?.f_squeeze_dim(1)?;
    let other_max =
        logits.f_scatter_value(1, &target_index, f64::NEG_INFINITY)?.f_amax(1, false)?;
    let margin = target_logit.f_sub(&other_max)?;
    let correct = logits.f_argmax(1, false)?.f_eq_tensor(targets)?;
    let mut rows =
        vec![loss.f_detach()?.f_to_kind(Kind::Float)?, margin, correct.f_to_kind(Kind::Float)?];
    if el2n {
        let error = logits.f_softmax(1, Kind::Float)?.f_scatter_add(
            1,
            &target_index,
            &Tensor::f_full([logits.size()[0], 1], -1.0, (Kind::Float, logits.device()))?,
        )?;
        rows.push(error.f_norm_scalaropt_dim(2.0, [1i64].as_slice(), false)?);
    }
    let packed = Tensor::f_stack(&rows, 0)?.f_to_device(Device::Cpu)?;
    let values: Vec<f32> = Vec::try_from(&packed.f_flatten(0, -1)?)?;
    let batch = values.len() / rows.len();
    let row = |i: usize| values[i * batch..(i + 1) * batch].to_vec();
    Ok(HostStats {
        loss: row(0),
        margin: row(1),
        correct: row(2).iter().map(|&c| c == 1.0).collect(),
        el2n: if el2n { row(3) } else { Vec::new() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Reduction;

    /// Loss, correctness and margin of one example, computed the slow way in f64.
    fn slow_stats(logits: &[f32], target: usize) -> (f64, bool, f64) {
        let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let log_sum_exp = max + logits.iter().map(|&l| (l as f64 - max).exp()).sum::<f64>().ln();
        let loss = log_sum_exp - logits[target] as f64;
        let argmax =
            (0..logits.len()).fold(0, |best, i| if logits[i] > logits[best] { i } else { best });
        let other_max = (0..logits.len())
            .filter(|&i| i != target)
            .map(|i| logits[i])
            .fold(f32::NEG_INFINITY, f32::max);
        (loss, argmax == target, logits[target] as f64 - other_max as f64)
    }

    /// EL2N of one example, the slow way in f64.
    fn slow_el2n(logits: &[f32], target: usize) -> f64 {
        let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let exp: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
        let total: f64 = exp.iter().sum();
        let squares = exp.iter().enumerate().map(|(i, e)| {
            let error = e / total - if i == target { 1.0 } else { 0.0 };
            error * error
        });
        squares.sum::<f64>().sqrt()
    }

    #[test]
    fn batch_stats_equal_a_per_example_computation() {
        let (batch, classes) = (37, 10);
        let (logits, targets) = crate::model::seeded(0, || {
            let logits = Tensor::randn([batch, classes], tch::kind::FLOAT_CPU) * 3.0;
            (logits, Tensor::randint(classes, [batch], tch::kind::INT64_CPU))
        });
        let loss = logits.cross_entropy_loss::<Tensor>(&targets, None, Reduction::None, -100, 0.0);
        let stats = batch_stats(&logits, &targets, &loss, true).unwrap();

        let rows: Vec<Vec<f32>> = Vec::try_from(&logits).unwrap();
        let targets: Vec<i64> = Vec::try_from(&targets).unwrap();
        let mut correct_count = 0;
        for (i, (row, &target)) in rows.iter().zip(&targets).enumerate() {
            let (loss, correct, margin) = slow_stats(row, target as usize);
            assert!((stats.loss[i] as f64 - loss).abs() < 1e-5, "loss {i}");
            assert_eq!(stats.correct[i], correct, "correct {i}");
            assert!((stats.margin[i] as f64 - margin).abs() < 1e-5, "margin {i}");
            assert_eq!(stats.correct[i], stats.margin[i] > 0.0, "margin sign {i}");
            assert!(
                (stats.el2n[i] as f64 - slow_el2n(row, target as usize)).abs() < 1e-5,
                "el2n {i}"
            );
            correct_count += usize::from(correct);
        }
        assert!(correct_count > 0 && correct_count < batch as usize);
    }

    #[test]
    fn hand_made_logits_give_the_expected_numbers() {
        let logits = Tensor::from_slice(&[2.0f32, 0.0, 1.0, 0.5, 3.0, 0.5]).view([2, 3]);
        let targets = Tensor::from_slice(&[0i64, 0]);
        let loss = logits.cross_entropy_loss::<Tensor>(&targets, None, Reduction::None, -100, 0.0);
        let stats = batch_stats(&logits, &targets, &loss, false).unwrap();
        assert_eq!(stats.correct, vec![true, false]);
        assert!(stats.el2n.is_empty());
        assert_eq!(stats.margin, vec![1.0, -2.5]);
        let expected0 = -(2f64.exp() / (2f64.exp() + 1.0 + 1f64.exp())).ln();
        assert!((stats.loss[0] as f64 - expected0).abs() < 1e-6);
    }
}
