//! MNIST and permuted MNIST: where the four IDX files live, how to fetch missing ones, and the
//! fixed pixel permutation of permuted MNIST.
//!
//! Files are looked up in `<data-dir>/mnist/`, raw (`train-images-idx3-ubyte`) or gzipped
//! (`train-images-idx3-ubyte.gz`). Missing files are downloaded from the mirrors as `.gz` and
//! checked against the published MD5 sums.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;

use super::download::{Checksum, download_verified, from_mirrors};
use super::idx::read_idx;
use super::{DatasetKind, ImageSet, Splits};
use crate::error::{Error, Result};

/// The standard MNIST mirrors, tried in order (the same ones torchvision uses).
pub const DEFAULT_MIRRORS: [&str; 2] =
    ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"];

/// Height and width of an MNIST image.
pub const SIDE: usize = 28;

/// Number of MNIST classes.
pub const NUM_CLASSES: usize = 10;

/// One of the four MNIST files.
#[derive(Debug, Clone, Copy)]
pub struct MnistFile {
    /// File name without `.gz`.
    pub name: &'static str,
    /// MD5 of the `.gz` file on the mirrors.
    pub gz_md5: &'static str,
}

/// The four files: train images, train labels, test images, test labels.
pub const FILES: [MnistFile; 4] = [
    MnistFile { name: "train-images-idx3-ubyte", gz_md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873" },
    MnistFile { name: "train-labels-idx1-ubyte", gz_md5: "d53e105ee54ea40749a09fcbcd1e9432" },
    MnistFile { name: "t10k-images-idx3-ubyte", gz_md5: "9fb629c4189551a2d022fa330f9573f3" },
    MnistFile { name: "t10k-labels-idx1-ubyte", gz_md5: "ec29112dd5afa0611ce80d1b7f02629c" },
];

/// The directory holding the MNIST files under a data directory.
pub fn mnist_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("mnist")
}

/// The existing path of `file` in `dir`, raw preferred over `.gz` (anything there, so that a
/// device or FIFO is reported as not a regular file when it is read, not as missing).
fn existing(dir: &Path, file: &MnistFile) -> Option<PathBuf> {
    let raw = dir.join(file.name);
    let gz = dir.join(format!("{}.gz", file.name));
    [raw, gz].into_iter().find(|p| p.exists())
}

/// Downloads whichever of the four files are missing from `<data_dir>/mnist`, trying `mirrors`
/// in order. `on_progress(file, done, total)` reports bytes as they arrive.
///
/// # Errors
/// [`Error::Download`] naming every mirror tried when a file could not be fetched or did not
/// match its checksum.
pub fn download_missing(
    data_dir: &Path,
    mirrors: &[String],
    on_progress: &mut dyn FnMut(&str, u64, Option<u64>),
) -> Result<()> {
    let dir = mnist_dir(data_dir);
    let hint = format!(
        "without internet, run scripts/fetch-mnist.sh to install the files into {}",
        dir.display()
    );
    for file in FILES.iter().filter(|f| existing(&dir, f).is_none()) {
        let gz_name = format!("{}.gz", file.name);
        let dest = dir.join(&gz_name);
        from_mirrors(mirrors, &gz_name, &hint, &mut |url| {
            let mut progress = |done, total| on_progress(&gz_name, done, total);
            download_verified(url, &dest, Checksum::Md5(file.gz_md5), &mut progress)
        })?;
    }
    Ok(())
}

/// Loads MNIST (or permuted MNIST, with the permutation drawn from `permutation_seed`) from
/// `<data_dir>/mnist`.
///
/// # Errors
/// [`Error::Format`] naming the directory when a file is missing, or naming the file when it is
/// not a valid MNIST IDX file (wrong magic, size, image size, label range, or image and label
/// counts that differ).
pub fn load(data_dir: &Path, kind: DatasetKind, permutation_seed: u64) -> Result<Splits> {
    let dir = mnist_dir(data_dir);
    let path_of = |file: &MnistFile| {
        existing(&dir, file).ok_or_else(|| {
            Error::format(
                &dir,
                format!(
                    "missing {0} (or {0}.gz); run scripts/fetch-mnist.sh or let `fstream train` download it",
                    file.name
                ),
            )
        })
    };
    let paths = FILES.iter().map(path_of).collect::<Result<Vec<_>>>()?;
    let mut train = read_split(&paths[0], &paths[1])?;
    let mut test = read_split(&paths[2], &paths[3])?;
    if kind == DatasetKind::PermutedMnist {
        let permutation = pixel_permutation(permutation_seed);
        permute_pixels(&mut train, &permutation);
        permute_pixels(&mut test, &permutation);
    }
    Ok(Splits { kind, train, test, num_classes: NUM_CLASSES })
}

fn read_split(images_path: &Path, labels_path: &Path) -> Result<ImageSet> {
    let images = read_idx(images_path, 3)?;
    let labels = read_idx(labels_path, 1)?;
    if images.dims[1..] != [SIDE, SIDE] {
        return Err(Error::format(
            images_path,
            format!("images are {}x{}, expected {SIDE}x{SIDE}", images.dims[1], images.dims[2]),
        ));
    }
    if images.dims[0] != labels.dims[0] {
        return Err(Error::format(
            labels_path,
            format!(
                "{} labels for {} images in {}",
                labels.dims[0],
                images.dims[0],
                images_path.display()
            ),
        ));
    }
    if let Some(bad) = labels.data.iter().find(|&&l| usize::from(l) >= NUM_CLASSES) {
        return Err(Error::format(
            labels_path,
            format!("label {bad} out of range: expected 0 to {}", NUM_CLASSES - 1),
        ));
    }
    Ok(ImageSet {
        pixels: images.data,
        labels: labels.data.into_iter().map(u16::from).collect(),
        coarse_labels: None,
        image_shape: [1, SIDE, SIDE],
    })
}

/// The pixel permutation of permuted MNIST: `permuted[i] = original[permutation[i]]`. One
/// permutation per dataset, drawn from `seed` (docs/semantics.md, bug 2: the reference drew a new one
/// per training seed).
pub fn pixel_permutation(seed: u64) -> Vec<usize> {
    let mut permutation: Vec<usize> = (0..SIDE * SIDE).collect();
    permutation.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    permutation
}

fn permute_pixels(set: &mut ImageSet, permutation: &[usize]) {
    for image in set.pixels.chunks_exact_mut(permutation.len()) {
        let original = image.to_vec();
        for (pixel, &from) in image.iter_mut().zip(permutation) {
            *pixel = original[from];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::encode_idx;

    fn write_files(dir: &Path, n_train: usize, train_labels: Vec<u8>) {
        let mnist = mnist_dir(dir);
        std::fs::create_dir_all(&mnist).unwrap();
        let images: Vec<u8> = (0..n_train * SIDE * SIDE).map(|i| (i % 251) as u8).collect();
        std::fs::write(mnist.join(FILES[0].name), encode_idx(&[n_train, SIDE, SIDE], &images))
            .unwrap();
        std::fs::write(mnist.join(FILES[1].name), encode_idx(&[train_labels.len()], &train_labels))
            .unwrap();
        std::fs::write(mnist.join(FILES[2].name), encode_idx(&[1, SIDE, SIDE], &[3; SIDE * SIDE]))
            .unwrap();
        std::fs::write(mnist.join(FILES[3].name), encode_idx(&[1], &[9])).unwrap();
    }

    #[test]
    fn loads_the_four_files() {
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), 2, vec![4, 7]);
        let splits = load(dir.path(), DatasetKind::Mnist, 0).unwrap();
        assert_eq!(splits.train.labels, vec![4, 7]);
        assert_eq!(splits.train.pixels[SIDE * SIDE + 1], ((SIDE * SIDE + 1) % 251) as u8);
        assert_eq!(splits.test.labels, vec![9]);
    }

    #[test]
    fn permuted_mnist_applies_one_permutation_to_every_image() {
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), 2, vec![4, 7]);
        let plain = load(dir.path(), DatasetKind::Mnist, 0).unwrap();
        let permuted = load(dir.path(), DatasetKind::PermutedMnist, 5).unwrap();
        let permutation = pixel_permutation(5);
        for image in 0..2 {
            let base = image * SIDE * SIDE;
            for (i, &from) in permutation.iter().enumerate() {
                assert_eq!(permuted.train.pixels[base + i], plain.train.pixels[base + from]);
            }
        }
        assert_ne!(permuted.train.pixels, plain.train.pixels);
    }

    #[test]
    fn ref_bug_2_permutation_depends_only_on_the_permutation_seed() {
        assert_eq!(pixel_permutation(0), pixel_permutation(0));
        assert_ne!(pixel_permutation(0), pixel_permutation(1));
        let mut sorted = pixel_permutation(3);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..SIDE * SIDE).collect::<Vec<_>>());
    }

    #[test]
    fn mismatched_counts_name_the_labels_file() {
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), 2, vec![4, 7, 1]);
        let err = load(dir.path(), DatasetKind::Mnist, 0).unwrap_err().to_string();
        assert!(err.contains("train-labels-idx1-ubyte: 3 labels for 2 images"), "{err}");
    }

    #[test]
    fn out_of_range_label_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), 2, vec![4, 10]);
        let err = load(dir.path(), DatasetKind::Mnist, 0).unwrap_err().to_string();
        assert!(err.contains("label 10 out of range"), "{err}");
    }

    #[test]
    fn missing_files_name_the_directory_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path(), DatasetKind::Mnist, 0).unwrap_err().to_string();
        assert!(err.contains("mnist: missing train-images-idx3-ubyte"), "{err}");
        assert!(err.contains("scripts/fetch-mnist.sh"), "{err}");
    }

    #[test]
    fn download_checks_the_published_md5() {
        let body = b"not the real file".to_vec();
        let url = crate::data::download::tests::serve(body.clone(), body.len(), 1);
        let dir = tempfile::tempdir().unwrap();
        let err = download_missing(dir.path(), &[url], &mut |_, _, _| {}).unwrap_err().to_string();
        assert!(err.contains("train-images-idx3-ubyte.gz"), "{err}");
        assert!(
            err.contains("checksum mismatch: expected f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(mnist_dir(dir.path())).unwrap().count(), 0);
    }
}
