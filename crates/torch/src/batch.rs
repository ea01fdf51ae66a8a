//! Training and test batches as tensors: gathering examples by id, the reference's
//! augmentation (random 32x32 crop of the 4-pixel zero-padded image, then a horizontal flip
//! with probability 1/2), normalization, and cutout (docs/semantics.md). Pixel work is done on whole
//! batches with tensor ops on the run's device; only the random draws (a few integers per
//! image) come from the run's host generator, so that a batch depends only on seed and epoch.
//!
//! Order, as in `run_cifar.py`: crop and flip on raw pixels, normalize, then cutout (which
//! therefore sets pixels to 0 in normalized units).

use rand::RngExt;
use rand::rngs::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use fstream::config::Cutout;
use fstream::data::{ImageSet, Normalization};

use crate::error::Result;

/// Zero padding of the random crop, in pixels (torchvision `RandomCrop(32, padding=4)`).
pub const CROP_PADDING: i64 = 4;

/// What happens to training images before they reach the model.
#[derive(Debug, Clone, PartialEq)]
pub struct InputConfig {
    /// Per-channel normalization.
    pub normalization: Normalization,
    /// Random crop with zero padding and horizontal flip (`--data-augmentation`).
    pub augment: bool,
    /// Cutout after normalization (`--cutout`).
    pub cutout: Option<Cutout>,
}

/// The random draws that augment one batch; [`Augmentation::draw`] makes them, tests set them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Augmentation {
    /// Per image: the crop's top-left corner in the padded image, each in `0..=2 * padding`.
    pub crop_offsets: Vec<(i64, i64)>,
    /// Per image: whether the crop is flipped left to right.
    pub flips: Vec<bool>,
    /// Per image, `holes` cutout centres `(row, column)`, image after image.
    pub hole_centers: Vec<(i64, i64)>,
}

impl Augmentation {
    /// Draws the augmentation of `n` images of `height` x `width` from `rng`: per image the crop
    /// offsets and flip (when `augment`), then the cutout centres.
    pub fn draw(
        rng: &mut ChaCha8Rng,
        n: usize,
        [height, width]: [i64; 2],
        config: &InputConfig,
    ) -> Self {
        let mut draws = Augmentation::default();
        for _ in 0..n {
            if config.augment {
                let max = 2 * CROP_PADDING;
                draws.crop_offsets.push((rng.random_range(0..=max), rng.random_range(0..=max)));
                draws.flips.push(rng.random_bool(0.5));
            }
            if let Some(cutout) = config.cutout {
                for _ in 0..cutout.holes {
                    draws
                        .hole_centers
                        .push((rng.random_range(0..height), rng.random_range(0..width)));
                }
            }
        }
        draws
    }
}

/// Turns example ids into model input: the training images live on the device as one uint8
/// tensor, and each batch is gathered, augmented and normalized there.
#[derive(Debug)]
pub struct BatchMaker {
    images: Tensor,
    labels: Tensor,
    mean: Tensor,
    std: Tensor,
    config: InputConfig,
}

impl BatchMaker {
    /// A maker over `set` (images as stored) with training labels `labels` (indexed by example
    /// id), on `device`.
    ///
    /// # Errors
    /// [`crate::Error::Torch`] when the tensors cannot be built or moved.
    pub fn new(
        set: &ImageSet,
        labels: &[u16],
        config: InputConfig,
        device: Device,
    ) -> Result<Self> {
        let channels = set.image_shape[0] as i64;
        let per_channel = |values: &[f64]| -> Result<Tensor> {
            Ok(Tensor::f_from_slice(values)?
                .f_to_kind(Kind::Float)?
                .f_view([1, channels, 1, 1])?
                .f_to_device(device)?)
        };
        Ok(BatchMaker {
            images: images_tensor(set, device)?,
            labels: int64_tensor(labels, device)?,
            mean: per_channel(&config.normalization.mean)?,
            std: per_channel(&config.normalization.std)?,
            config,
        })
    }

    /// A maker sharing this one's tensors, for another thread (tensors are `Send` but not
    /// `Sync`; both makers only read them).
    pub fn shallow_clone(&self) -> Self {
        BatchMaker {
            images: self.images.shallow_clone(),
            labels: self.labels.shallow_clone(),
            mean: self.mean.shallow_clone(),
            std: self.std.shallow_clone(),
            config: self.config.clone(),
        }
    }

    /// The images of `ids` as `[B, C, H, W]` float input and their labels as `[B]` int64, with
    /// this batch's augmentation drawn from `rng`.
    ///
    /// # Errors
    /// [`crate::Error::Torch`] on libtorch failures.
    pub fn make(&self, ids: &[u32], rng: &mut ChaCha8Rng) -> Result<(Tensor, Tensor)> {
        let device = self.images.device();
        let index = int64_tensor(ids, device)?;
        let size = self.images.size();
        let draws = Augmentation::draw(rng, ids.len(), [size[2], size[3]], &self.config);
        let images = self.images.f_index_select(0, &index)?;
        let input = self.augment(&images, &draws)?;
        Ok((input, self.labels.f_index_select(0, &index)?))
    }

    /// Crop and flip (when on), normalize, cutout (when on), with the given draws.
    ///
    /// # Errors
    /// [`crate::Error::Torch`] on libtorch failures.
    pub fn augment(&self, images: &Tensor, draws: &Augmentation) -> Result<Tensor> {
        let mut xs = images.f_to_kind(Kind::Float)?;
        if self.config.augment {
            xs = crop_and_flip(&xs, CROP_PADDING, &draws.crop_offsets, &draws.flips)?;
        }
        xs = self.normalize(&xs)?;
        if let Some(cutout) = self.config.cutout {
            xs = apply_cutout(&xs, &draws.hole_centers, cutout)?;
        }
        Ok(xs)
    }

    /// Pixel values (0..=255, any kind) to normalized float input.
    ///
    /// # Errors
    /// [`crate::Error::Torch`] on libtorch failures.
    pub fn normalize(&self, images: &Tensor) -> Result<Tensor> {
        Ok(images
            .f_to_kind(Kind::Float)?
            .f_div_scalar(255.0)?
            .f_sub(&self.mean)?
            .f_div(&self.std)?)
    }
}

/// A set's images as a `[N, C, H, W]` uint8 tensor (0..=255) on `device`.
///
/// # Errors
/// [`crate::Error::Torch`] when the pixel count does not match the shape.
pub fn images_tensor(set: &ImageSet, device: Device) -> Result<Tensor> {
    let [c, h, w] = set.image_shape.map(|d| d as i64);
    Ok(Tensor::f_from_slice(&set.pixels)?
        .f_view([set.len() as i64, c, h, w])?
        .f_to_device(device)?)
}

/// Labels or example ids as a `[N]` int64 tensor on `device` (what `index_select` and the
/// loss take).
///
/// # Errors
/// [`crate::Error::Torch`] when the tensor cannot be built or moved.
pub fn int64_tensor<T: Copy + Into<i64>>(values: &[T], device: Device) -> Result<Tensor> {
    let values: Vec<i64> = values.iter().map(|&v| v.into()).collect();
    Ok(Tensor::f_from_slice(&values)?.f_to_device(device)?)
}

/// Random crop and flip of `[B, C, H, W]` float images: each image is zero-padded by `padding`
/// on every side, the `H` x `W` window at `offsets[b]` (row, column) is cut out, and flipped
/// left to right where `flips[b]`. One gather over the whole batch.
///
/// # Errors
/// [`crate::Error::Torch`] when the draws do not match the batch.
pub fn crop_and_flip(
    images: &Tensor,
    padding: i64,
    offsets: &[(i64, i64)],
    flips: &[bool],
) -> Result<Tensor> {
    let device = images.device();
    let size = images.size();
    let (b, c, h, w) = (size[0], size[1], size[2], size[3]);
    let padded_w = w + 2 * padding;
    let padded = images.f_constant_pad_nd([padding, padding, padding, padding])?;
    let column = |f: fn(&(i64, i64)) -> i64| -> Result<Tensor> {
        let values: Vec<i64> = offsets.iter().map(f).collect();
        Ok(Tensor::f_from_slice(&values)?.f_view([b, 1, 1])?.f_to_device(device)?)
    };
    let rows = Tensor::f_arange(h, (Kind::Int64, device))?.f_view([1, h, 1])? + column(|o| o.0)?;
    let cols = Tensor::f_arange(w, (Kind::Int64, device))?.f_view([1, 1, w])?;
    let flip = Tensor::f_from_slice(flips)?.f_view([b, 1, 1])?.f_to_device(device)?;
    let cols =
        cols.f_where_self(&flip.f_logical_not()?, &(cols.f_neg()? + (w - 1)))? + column(|o| o.1)?;
    let index = (rows * padded_w + cols).f_view([b, 1, h * w])?.f_expand([b, c, h * w], false)?;
    Ok(padded.f_view([b, c, -1])?.f_gather(2, &index, false)?.f_view([b, c, h, w])?)
}

/// Cutout on `[B, C, H, W]` images: for each image, `cutout.holes` squares of side
/// `cutout.length` centred at `centers` (row, column; image after image) are set to 0 in every
/// channel, clipped at the borders as the reference's `Cutout` does
/// (`y1 = clip(y - length / 2, 0, H)`, `y2 = clip(y + length / 2, 0, H)`).
///
/// # Errors
/// [`crate::Error::Torch`] when the centres do not match the batch.
pub fn apply_cutout(images: &Tensor, centers: &[(i64, i64)], cutout: Cutout) -> Result<Tensor> {
    let device = images.device();
    let size = images.size();
    let (b, h, w) = (size[0], size[2], size[3]);
    let k = cutout.holes as i64;
    let half = cutout.length / 2;
    let bound = |f: fn(&(i64, i64)) -> i64, delta: i64, max: i64| -> Result<Tensor> {
        let values: Vec<i64> = centers.iter().map(|c| (f(c) + delta).clamp(0, max)).collect();
        Ok(Tensor::f_from_slice(&values)?.f_view([b, k, 1, 1])?.f_to_device(device)?)
    };
    let rows = Tensor::f_arange(h, (Kind::Int64, device))?.f_view([1, 1, h, 1])?;
    let cols = Tensor::f_arange(w, (Kind::Int64, device))?.f_view([1, 1, 1, w])?;
    let in_rows = rows
        .f_ge_tensor(&bound(|c| c.0, -half, h)?)?
        .f_logical_and(&rows.f_lt_tensor(&bound(|c| c.0, half, h)?)?)?;
    let in_cols = cols
        .f_ge_tensor(&bound(|c| c.1, -half, w)?)?
        .f_logical_and(&cols.f_lt_tensor(&bound(|c| c.1, half, w)?)?)?;
    let holes = in_rows.f_logical_and(&in_cols)?.f_any_dim(1, false)?;
    let keep = holes.f_logical_not()?.f_unsqueeze(1)?.f_to_kind(images.kind())?;
    Ok(images.f_mul(&keep)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A `[1, 1, 3, 3]` image with pixels 1..=9, row by row.
    fn three_by_three() -> Tensor {
        Tensor::from_slice(&[1.0f32, 2., 3., 4., 5., 6., 7., 8., 9.]).view([1, 1, 3, 3])
    }

    fn pixels(t: &Tensor) -> Vec<f32> {
        Vec::try_from(&t.flatten(0, -1)).unwrap()
    }

    #[test]
    fn crop_takes_the_window_of_the_zero_padded_image() {
        let image = three_by_three();
        // Offset (0, 0) of the 1-padded image: the window starts one pixel above and left.
        let crop = crop_and_flip(&image, 1, &[(0, 0)], &[false]).unwrap();
        assert_eq!(pixels(&crop), vec![0., 0., 0., 0., 1., 2., 0., 4., 5.]);
        // Offset (2, 1): two rows down, centred horizontally.
        let crop = crop_and_flip(&image, 1, &[(2, 1)], &[false]).unwrap();
        assert_eq!(pixels(&crop), vec![4., 5., 6., 7., 8., 9., 0., 0., 0.]);
        // The centred crop is the image itself, and flipping mirrors each row.
        let crop = crop_and_flip(&image, 1, &[(1, 1)], &[true]).unwrap();
        assert_eq!(pixels(&crop), vec![3., 2., 1., 6., 5., 4., 9., 8., 7.]);
        // Flip after an off-centre crop: mirror of the window, not a window of the mirror.
        let crop = crop_and_flip(&image, 1, &[(1, 2)], &[true]).unwrap();
        assert_eq!(pixels(&crop), vec![0., 3., 2., 0., 6., 5., 0., 9., 8.]);
    }

    #[test]
    fn crop_draws_differ_per_image_and_keep_channels_together() {
        let base = Tensor::arange(18, tch::kind::FLOAT_CPU).view([1, 2, 3, 3]) + 1;
        let batch = Tensor::cat(&[&base, &base], 0);
        let out = crop_and_flip(&batch, 1, &[(1, 1), (1, 1)], &[false, true]).unwrap();
        assert!(out.get(0).equal(&base.get(0)));
        assert!(out.get(1).equal(&base.get(0).flip([2])));
    }

    #[test]
    fn cutout_zeroes_a_square_clipped_at_the_borders() {
        let image = Tensor::ones([2, 2, 4, 4], tch::kind::FLOAT_CPU);
        let cutout = Cutout { holes: 1, length: 2 };
        // Centre (0, 3): rows 0..1 (clipped at the top), columns 2..4 (clipped at the right).
        // Centre (2, 1): rows 1..3, columns 0..2.
        let out = apply_cutout(&image, &[(0, 3), (2, 1)], cutout).unwrap();
        let first: Vec<f32> = pixels(&out.get(0).get(1));
        assert_eq!(first, vec![1., 1., 0., 0., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1.]);
        let second: Vec<f32> = pixels(&out.get(1).get(0));
        assert_eq!(second, vec![1., 1., 1., 1., 0., 0., 1., 1., 0., 0., 1., 1., 1., 1., 1., 1.]);
        assert!(out.get(0).get(0).equal(&out.get(0).get(1)), "every channel gets the same hole");
    }

    #[test]
    fn several_holes_add_up() {
        let image = Tensor::ones([1, 1, 4, 4], tch::kind::FLOAT_CPU);
        // Centre (0, 0): rows and columns 0..1; centre (3, 3): rows and columns 2..4.
        let out = apply_cutout(&image, &[(0, 0), (3, 3)], Cutout { holes: 2, length: 2 }).unwrap();
        assert_eq!(
            pixels(&out),
            vec![0., 1., 1., 1., 1., 1., 1., 1., 1., 1., 0., 0., 1., 1., 0., 0.]
        );
    }

    #[test]
    fn batches_are_normalized_after_augmentation_and_before_cutout() {
        let set = ImageSet {
            pixels: vec![255; 2 * 3 * 3],
            labels: vec![0, 1],
            coarse_labels: None,
            image_shape: [1, 3, 3],
        };
        let config = InputConfig {
            normalization: Normalization { mean: vec![0.5], std: vec![0.25] },
            augment: true,
            cutout: Some(Cutout { holes: 1, length: 2 }),
        };
        let maker = BatchMaker::new(&set, &[7, 3], config, Device::Cpu).unwrap();
        // With 4 pixels of padding, offset (3, 3) puts the image's top-left 2x2 pixels in the
        // window's bottom right; cutout centre (0, 0) takes the window's first pixel.
        let draws = Augmentation {
            crop_offsets: vec![(3, 3)],
            flips: vec![false],
            hole_centers: vec![(0, 0)],
        };
        let out = maker.augment(&maker.images.narrow(0, 1, 1), &draws).unwrap();
        // Padding (raw 0) normalizes to -2, image pixels (255) to 2; the hole is 0.
        assert_eq!(pixels(&out), vec![0., -2., -2., -2., 2., 2., -2., 2., 2.]);

        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (input, labels) = maker.make(&[1, 0], &mut rng).unwrap();
        assert_eq!(input.size(), vec![2, 1, 3, 3]);
        assert_eq!(Vec::<i64>::try_from(&labels).unwrap(), vec![3, 7]);
    }

    #[test]
    fn draws_are_in_range_and_reproducible() {
        let config = InputConfig {
            normalization: Normalization { mean: vec![0.0], std: vec![1.0] },
            augment: true,
            cutout: Some(Cutout { holes: 2, length: 16 }),
        };
        let draw =
            |seed| Augmentation::draw(&mut ChaCha8Rng::seed_from_u64(seed), 500, [32, 32], &config);
        let draws = draw(3);
        assert_eq!(draws, draw(3));
        assert_eq!((draws.crop_offsets.len(), draws.hole_centers.len()), (500, 1000));
        assert!(
            draws.crop_offsets.iter().all(|&(y, x)| (0..=8).contains(&y) && (0..=8).contains(&x))
        );
        assert!(draws.crop_offsets.contains(&(8, 8)));
        assert!(
            draws.hole_centers.iter().all(|&(y, x)| (0..32).contains(&y) && (0..32).contains(&x))
        );
        let flipped = draws.flips.iter().filter(|&&f| f).count();
        assert!((200..300).contains(&flipped), "{flipped} of 500 flipped");
    }
}
