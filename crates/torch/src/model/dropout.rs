//! Dropout with a random generator owned by one run. libtorch's dropout draws from one global
//! generator, so runs training concurrently in one process would interleave their draws and
//! no run would be reproducible. Masks here come from the run's own seeded generator, which
//! the trainer reseeds every epoch (so an epoch's masks depend only on seed and epoch).
//!
//! Each mask is drawn on the tensor's device by libtorch's generator, seeded for that one draw
//! from the run's generator through [`seeded`]: masks cost one kernel whatever their size
//! (WideResNet's are millions of elements per batch), and stay reproducible.

use std::sync::{Arc, Mutex};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use tch::{Kind, Tensor};

/// Held while libtorch's global generator is seeded and drawn from.
static LIBTORCH_RNG: Mutex<()> = Mutex::new(());

/// Runs `draw` with libtorch's one global random generator seeded with `seed`, holding a lock
/// so that concurrent runs (or tests) never interleave their draws. Every use of that
/// generator in fstream — model initialization, dropout masks — goes through here.
pub fn seeded<T>(seed: i64, draw: impl FnOnce() -> T) -> T {
    let _lock = LIBTORCH_RNG.lock().unwrap_or_else(|p| p.into_inner());
    tch::manual_seed(seed);
    draw()
}

/// A run's dropout generator; clones share the same state.
#[derive(Debug, Clone)]
pub struct DropoutRng(Arc<Mutex<ChaCha8Rng>>);

impl DropoutRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        DropoutRng(Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed))))
    }

    /// Restarts the generator from `seed`.
    pub fn reseed(&self, seed: u64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = ChaCha8Rng::seed_from_u64(seed);
    }

    /// Inverted dropout: in training mode, zeroes each element (`channel_wise`: each channel of
    /// each sample of a `[N, C, ...]` input, as `Dropout2d`) with probability `p` and scales
    /// the rest by `1 / (1 - p)`. Identity when `!train` or `p == 0`. Same shape, kind and
    /// device as `xs`.
    pub fn apply(&self, xs: &Tensor, p: f64, train: bool, channel_wise: bool) -> Tensor {
        if !train || p == 0.0 {
            return xs.shallow_clone();
        }
        let size = xs.size();
        let mask_shape: Vec<i64> = if channel_wise {
            size.iter().enumerate().map(|(i, &d)| if i < 2 { d } else { 1 }).collect()
        } else {
            size
        };
        let seed = self.0.lock().unwrap_or_else(|p| p.into_inner()).random::<i64>();
        let uniform =
            seeded(seed, || Tensor::rand(mask_shape.as_slice(), (Kind::Float, xs.device())));
        let mask = uniform.ge(p).to_kind(xs.kind()) * (1.0 / (1.0 - p));
        xs * mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn same_seed_same_mask_and_inverted_scaling() {
        let xs = Tensor::ones([50, 40], tch::kind::FLOAT_CPU);
        let a = DropoutRng::new(3).apply(&xs, 0.5, true, false);
        let b = DropoutRng::new(3).apply(&xs, 0.5, true, false);
        assert!(a.equal(&b));
        assert!(!a.equal(&DropoutRng::new(4).apply(&xs, 0.5, true, false)));
        let values: Vec<f32> = Vec::try_from(&a.flatten(0, -1)).unwrap();
        assert!(values.iter().all(|&v| v == 0.0 || v == 2.0));
        let kept = values.iter().filter(|&&v| v == 2.0).count();
        assert!((800..1200).contains(&kept), "{kept} of 2000 kept at p = 0.5");
        let sparse = DropoutRng::new(3).apply(&xs, 0.3, true, false);
        let kept = Vec::<f32>::try_from(&sparse.flatten(0, -1)).unwrap();
        let kept = kept.iter().filter(|&&v| v > 0.0).count();
        assert!((1300..1500).contains(&kept), "{kept} of 2000 kept at p = 0.3");
    }

    #[test]
    fn channel_wise_dropout_zeroes_whole_channels() {
        let xs = Tensor::ones([8, 6, 3, 3], tch::kind::FLOAT_CPU);
        let out = DropoutRng::new(1).apply(&xs, 0.5, true, true);
        let per_channel = out.sum_dim_intlist([2, 3].as_slice(), false, Kind::Float);
        let values: Vec<f32> = Vec::try_from(&per_channel.flatten(0, -1)).unwrap();
        assert!(values.iter().all(|&v| v == 0.0 || v == 18.0), "{values:?}");
    }

    #[test]
    fn eval_mode_is_the_identity() {
        let xs = seeded(0, || Tensor::randn([4, 5], tch::kind::FLOAT_CPU));
        assert!(DropoutRng::new(0).apply(&xs, 0.5, false, false).equal(&xs));
    }
}
