//! The reference's noise experiments (docs/semantics.md, "Training"): label noise and pixel
//! noise, applied once before training to the examples a run trains on, seeded per run.
//! Pixel noise has a corrected default and the reference's buggy variant (docs/semantics.md, bug 3).

use rand::rngs::ChaCha8Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Normal};

use super::ImageSet;
use crate::error::{Error, Result};

/// Random streams of the noise experiments, apart from training's own.
const LABEL_NOISE_STREAM: u64 = 0x6c61_6265_6c73;
const PIXEL_NOISE_STREAM: u64 = 0x7069_7865_6c73;

/// How pixel noise is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PixelNoiseMode {
    /// Zero-mean Gaussian noise in pixel units, result clamped to 0..=255.
    #[default]
    Corrected,
    /// The reference: Gaussian noise of mean 120, added to the byte with wrap-around.
    Faithful,
}

impl PixelNoiseMode {
    /// Every mode, in the order `--help` lists them.
    pub const ALL: [PixelNoiseMode; 2] = [PixelNoiseMode::Corrected, PixelNoiseMode::Faithful];

    /// The name stored in the `runs` table.
    pub fn name(self) -> &'static str {
        match self {
            PixelNoiseMode::Corrected => "corrected",
            PixelNoiseMode::Faithful => "faithful",
        }
    }
}

/// Pixel noise settings of a run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PixelNoise {
    /// Percentage of each image's pixel positions that get noise.
    pub percent: f64,
    /// Standard deviation of the noise, in pixel units.
    pub std: f64,
    /// Corrected or faithful.
    pub mode: PixelNoiseMode,
}

crate::names::named_enum!(PixelNoiseMode, "pixel noise mode");

/// Checks that a percentage flag lies in 0..=100.
///
/// # Errors
/// [`Error::Config`] naming the flag.
pub fn check_percent(flag: &str, percent: f64) -> Result<()> {
    if (0.0..=100.0).contains(&percent) {
        Ok(())
    } else {
        Err(Error::Config(format!("{flag} must be between 0 and 100, got {percent}")))
    }
}

/// Gives `floor(percent * ids.len() / 100)` of the examples `ids` a label drawn uniformly from
/// the other classes, in `labels` (indexed by example id). Returns the relabelled ids, sorted.
pub fn flip_labels(
    labels: &mut [u16],
    ids: &[u32],
    percent: f64,
    num_classes: u16,
    seed: u64,
) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ LABEL_NOISE_STREAM);
    let count = (percent * ids.len() as f64 / 100.0).floor() as usize;
    let mut chosen: Vec<u32> = ids.sample(&mut rng, count).copied().collect();
    chosen.sort_unstable();
    for &id in &chosen {
        let old = labels[id as usize];
        let draw = rng.random_range(0..num_classes - 1);
        labels[id as usize] = if draw >= old { draw + 1 } else { draw };
    }
    chosen
}

/// Adds Gaussian noise to `percent`% of the pixel positions of each image in `ids` (one random
/// channel per position), with standard deviation `std` in pixel units (0..=255 scale).
pub fn add_pixel_noise(
    images: &mut ImageSet,
    ids: &[u32],
    noise: &PixelNoise,
    seed: u64,
) -> Result<()> {
    let PixelNoise { percent, std, mode } = *noise;
    let mean = match mode {
        PixelNoiseMode::Corrected => 0.0,
        PixelNoiseMode::Faithful => 120.0,
    };
    let normal = Normal::new(mean, std).map_err(|_| {
        Error::Config(format!("--noise-std-pixels must be a finite number >= 0, got {std}"))
    })?;
    let [channels, height, width] = images.image_shape;
    let positions: Vec<usize> = (0..height * width).collect();
    let per_image = (percent * positions.len() as f64 / 100.0).floor() as usize;
    let image_len = images.image_len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ PIXEL_NOISE_STREAM);
    for &id in ids {
        let image = &mut images.pixels[id as usize * image_len..][..image_len];
        let mut chosen = positions.clone();
        chosen.shuffle(&mut rng);
        for &position in &chosen[..per_image] {
            let channel = rng.random_range(0..channels);
            let pixel = &mut image[channel * height * width + position];
            let noise: f64 = normal.sample(&mut rng);
            *pixel = match mode {
                PixelNoiseMode::Corrected => {
                    (f64::from(*pixel) + noise).round().clamp(0.0, 255.0) as u8
                }
                PixelNoiseMode::Faithful => {
                    (i64::from(*pixel) + noise.round() as i64).rem_euclid(256) as u8
                }
            };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_exactly_floor_p_n_labels_never_to_the_same_class() {
        let original: Vec<u16> = (0..103).map(|i| (i % 10) as u16).collect();
        let mut labels = original.clone();
        let ids: Vec<u32> = (0..103).filter(|i| i % 5 != 0).collect(); // 82 training examples
        let flipped = flip_labels(&mut labels, &ids, 20.0, 10, 4);
        assert_eq!(flipped.len(), 16, "floor(0.2 * 82)");
        for id in 0..103u32 {
            let changed = labels[id as usize] != original[id as usize];
            assert_eq!(changed, flipped.contains(&id), "example {id}");
            assert!(labels[id as usize] < 10);
        }
        assert!(flipped.iter().all(|id| ids.contains(id)));
        let mut again = original.clone();
        assert_eq!(flip_labels(&mut again, &ids, 20.0, 10, 4), flipped);
        assert_eq!(again, labels);
    }

    fn image_set(value: u8, n: usize) -> ImageSet {
        ImageSet {
            pixels: vec![value; n * 3 * 4 * 4],
            labels: vec![0; n],
            coarse_labels: None,
            image_shape: [3, 4, 4],
        }
    }

    #[test]
    fn corrected_pixel_noise_changes_p_percent_of_positions_and_clamps() {
        let mut set = image_set(250, 3);
        let noise = PixelNoise { percent: 50.0, std: 40.0, mode: PixelNoiseMode::Corrected };
        add_pixel_noise(&mut set, &[0, 2], &noise, 1).unwrap();
        for (image, noisy) in [(0, true), (1, false), (2, true)] {
            let pixels = &set.pixels[image * 48..][..48];
            let changed = pixels.iter().filter(|&&p| p != 250).count();
            if noisy {
                assert!(
                    (1..=8).contains(&changed),
                    "at most 8 of 16 positions, one channel each: {changed}"
                );
            } else {
                assert_eq!(changed, 0);
            }
        }
        assert!(set.pixels.contains(&255), "values above 255 are clamped, not wrapped");
    }

    #[test]
    fn faithful_pixel_noise_has_mean_120_and_wraps() {
        let mut set = image_set(200, 1);
        let noise = PixelNoise { percent: 100.0, std: 0.0, mode: PixelNoiseMode::Faithful };
        add_pixel_noise(&mut set, &[0], &noise, 1).unwrap();
        let changed: Vec<u8> = set.pixels.iter().copied().filter(|&p| p != 200).collect();
        assert_eq!(changed, vec![64; 16], "200 + 120 wraps to 64, one channel per position");
    }

    #[test]
    fn percentages_outside_0_to_100_are_rejected() {
        assert!(check_percent("--noise-percent-labels", 100.0).is_ok());
        let err = check_percent("--noise-percent-labels", -1.0).unwrap_err().to_string();
        assert_eq!(err, "--noise-percent-labels must be between 0 and 100, got -1");
        assert!(check_percent("--noise-percent-pixels", 100.5).is_err());
    }
}
