//! Datasets: reading the real files, downloading and verifying them, and choosing which
//! examples a run trains on. Images stay raw bytes (0..=255) until [`batch`] turns them into
//! normalized (and augmented) tensors for the trainer.

pub mod batch;
pub mod cifar;
pub mod corrupt;
pub mod download;
pub mod idx;
pub mod mnist;
pub mod selection;

use std::path::Path;

use crate::error::Result;

/// The datasets fstream can train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// MNIST digits, 60,000 train / 10,000 test images of 28x28.
    Mnist,
    /// MNIST with one fixed pixel permutation applied to every image (DESIGN.md §2, bug 2).
    PermutedMnist,
    /// CIFAR-10, 50,000 train / 10,000 test colour images of 32x32 in 10 classes.
    Cifar10,
    /// CIFAR-100, the same sizes in 100 fine (and 20 coarse) classes.
    Cifar100,
}

impl DatasetKind {
    /// Every dataset, in the order `--help` lists them.
    pub const ALL: [DatasetKind; 4] = [
        DatasetKind::Mnist,
        DatasetKind::PermutedMnist,
        DatasetKind::Cifar10,
        DatasetKind::Cifar100,
    ];

    /// The name used on the command line, in the `runs` table and in partition paths.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::PermutedMnist => "permuted_mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
        }
    }

    /// Whether this is one of the CIFAR datasets (the reference's `run_cifar.py`).
    pub fn is_cifar(self) -> bool {
        cifar::format_of(self).is_some()
    }

    /// The shape of one image, `[C, H, W]`.
    pub fn image_shape(self) -> [usize; 3] {
        match self {
            DatasetKind::Mnist | DatasetKind::PermutedMnist => [1, mnist::SIDE, mnist::SIDE],
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => [3, cifar::SIDE, cifar::SIDE],
        }
    }

    /// The per-channel input normalization of the reference (DESIGN.md §1).
    pub fn normalization(self) -> Normalization {
        match self {
            // torchvision's Normalize((0.1307,), (0.3081,)) in run_mnist.py.
            DatasetKind::Mnist | DatasetKind::PermutedMnist => {
                Normalization { mean: vec![0.1307], std: vec![0.3081] }
            }
            // run_cifar.py: mean [125.3, 123.0, 113.9] / 255, std [63.0, 62.1, 66.7] / 255.
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => Normalization {
                mean: [125.3, 123.0, 113.9].map(|v| v / 255.0).to_vec(),
                std: [63.0, 62.1, 66.7].map(|v| v / 255.0).to_vec(),
            },
        }
    }
}

/// Per-channel mean and standard deviation of pixel values scaled to 0..=1: the input is
/// `(pixel / 255 - mean) / std`.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalization {
    /// One mean per channel.
    pub mean: Vec<f64>,
    /// One standard deviation per channel.
    pub std: Vec<f64>,
}

/// Loads `kind` from `data_dir` (for permuted MNIST, with the permutation drawn from
/// `permutation_seed`).
///
/// # Errors
/// [`crate::Error::Format`] naming the missing or invalid file.
pub fn load(data_dir: &Path, kind: DatasetKind, permutation_seed: u64) -> Result<Splits> {
    match cifar::format_of(kind) {
        Some(format) => cifar::load(data_dir, kind, &format),
        None => mnist::load(data_dir, kind, permutation_seed),
    }
}

crate::names::named_enum!(DatasetKind, "dataset");

/// A set of same-sized images with their labels, as read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// Pixels in `[N, C, H, W]` order, values 0..=255.
    pub pixels: Vec<u8>,
    /// One label per image, each below the dataset's class count.
    pub labels: Vec<u16>,
    /// CIFAR-100's coarse (superclass) label per image; `None` for other datasets.
    pub coarse_labels: Option<Vec<u16>>,
    /// Channels, height, width of every image.
    pub image_shape: [usize; 3],
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set has no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image (`C * H * W`).
    pub fn image_len(&self) -> usize {
        self.image_shape.iter().product()
    }
}

/// A dataset's train and test splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splits {
    /// Which dataset this is.
    pub kind: DatasetKind,
    /// The training set; an example's index here is its `example_id`.
    pub train: ImageSet,
    /// The test set.
    pub test: ImageSet,
    /// Number of classes.
    pub num_classes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_round_trip() {
        for kind in DatasetKind::ALL {
            assert_eq!(kind.name().parse::<DatasetKind>().unwrap(), kind);
        }
        let err = "cifar7".parse::<DatasetKind>().unwrap_err();
        assert_eq!(
            err,
            "unknown dataset 'cifar7': expected one of mnist, permuted_mnist, cifar10, cifar100"
        );
    }
}
