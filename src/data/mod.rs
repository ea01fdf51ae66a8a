//! Datasets: reading the real files, downloading and verifying them, and choosing which
//! examples a run trains on. Nothing here touches tensors; images stay raw bytes (0..=255) until
//! the trainer turns them into batches.

pub mod corrupt;
pub mod download;
pub mod idx;
pub mod mnist;
pub mod selection;

use std::fmt;
use std::str::FromStr;

/// The datasets fstream can train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// MNIST digits, 60,000 train / 10,000 test images of 28x28.
    Mnist,
    /// MNIST with one fixed pixel permutation applied to every image (DESIGN.md §2, bug 2).
    PermutedMnist,
}

impl DatasetKind {
    /// Every dataset, in the order `--help` lists them.
    pub const ALL: [DatasetKind; 2] = [DatasetKind::Mnist, DatasetKind::PermutedMnist];

    /// The name used on the command line, in the `runs` table and in partition paths.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::PermutedMnist => "permuted_mnist",
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::names::parse_name(s, &DatasetKind::ALL, DatasetKind::name, "dataset")
    }
}

/// A set of same-sized images with their labels, as read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// Pixels in `[N, C, H, W]` order, values 0..=255.
    pub pixels: Vec<u8>,
    /// One label per image, each below the dataset's class count.
    pub labels: Vec<u16>,
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
        assert_eq!(err, "unknown dataset 'cifar7': expected one of mnist, permuted_mnist");
    }
}
