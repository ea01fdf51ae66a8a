//! Datasets: reading the real files, downloading and verifying them, and choosing which
//! examples a run trains on. Images stay raw bytes (0..=255) until `fstream_torch::batch` turns them into
//! normalized (and augmented) tensors for the trainer.

pub mod cifar;
pub mod corrupt;
pub mod download;
pub mod idx;
pub mod mnist;
pub mod selection;

use std::path::Path;

use crate::error::Result;

/// The datasets fstream can train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DatasetKind {
    /// MNIST digits, 60,000 train / 10,000 test images of 28x28.
    #[default]
    Mnist,
    /// MNIST with one fixed pixel permutation applied to every image (docs/semantics.md, bug 2).
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

    /// The per-channel input normalization of the reference (docs/semantics.md).
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

/// Whether `dir` holds the files of a dataset fstream reads (any MNIST IDX file, raw or
/// `.gz`, or any CIFAR batch file): no output may be written there.
pub fn holds_dataset_files(dir: &Path) -> bool {
    let mnist = mnist::FILES.iter().flat_map(|f| [f.name.to_string(), format!("{}.gz", f.name)]);
    let cifar = [cifar::CIFAR10, cifar::CIFAR100]
        .into_iter()
        .flat_map(|format| format.files().map(String::from).collect::<Vec<_>>());
    mnist.chain(cifar).any(|name| dir.join(name).is_file())
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

impl Splits {
    /// Hex SHA-256 of the dataset as loaded: its name, then each split's image shape, pixels
    /// and labels (and coarse labels). Two loads agree exactly when a run would train and be
    /// tested on the same data.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(self.kind.name().as_bytes());
        for set in [&self.train, &self.test] {
            for dim in set.image_shape {
                hasher.update((dim as u64).to_le_bytes());
            }
            hasher.update((set.len() as u64).to_le_bytes());
            hasher.update(&set.pixels);
            for labels in std::iter::once(&set.labels).chain(&set.coarse_labels) {
                for label in labels {
                    hasher.update(label.to_le_bytes());
                }
            }
        }
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(labels: Vec<u16>) -> Splits {
        let set = |labels: Vec<u16>| ImageSet {
            pixels: (0..labels.len() as u8 * 4).collect(),
            labels,
            coarse_labels: None,
            image_shape: [1, 2, 2],
        };
        Splits { kind: DatasetKind::Mnist, train: set(labels), test: set(vec![1]), num_classes: 10 }
    }

    #[test]
    fn fingerprint_changes_with_any_pixel_label_or_order() {
        let base = tiny(vec![3, 4]);
        assert_eq!(base.fingerprint(), tiny(vec![3, 4]).fingerprint());
        assert_eq!(base.fingerprint().len(), 64);
        assert_ne!(base.fingerprint(), tiny(vec![4, 3]).fingerprint());
        let mut pixel = tiny(vec![3, 4]);
        pixel.train.pixels[7] ^= 1;
        assert_ne!(base.fingerprint(), pixel.fingerprint());
        let mut kind = tiny(vec![3, 4]);
        kind.kind = DatasetKind::PermutedMnist;
        assert_ne!(base.fingerprint(), kind.fingerprint());
    }

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
