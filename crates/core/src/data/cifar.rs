//! CIFAR-10 and CIFAR-100 in their "binary version": reading the batch files, and fetching the
//! official tarball when they are missing (md5-checked, then extracted so that no reader ever
//! sees a half-extracted directory).
//!
//! Files are looked up where the tarballs unpack them: `<data-dir>/cifar-10-batches-bin/`
//! (`data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`; records of 1 label byte + 3,072
//! pixel bytes) and `<data-dir>/cifar-100-binary/` (`train.bin`, `test.bin`; records of a coarse
//! label byte, a fine label byte and 3,072 pixel bytes). Pixels are the R, G and B planes of a
//! 32x32 image, which is already the `[C, H, W]` order of [`ImageSet`]. CIFAR-100 trains on the
//! fine label and keeps the coarse one for the `examples` table.

use std::fs::File;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::download::{Checksum, download_verified, from_mirrors};
use super::{DatasetKind, ImageSet, Splits};
use crate::error::{Error, IoContext, Result};

/// The CIFAR page the official tarballs are fetched from.
pub const DEFAULT_MIRROR: &str = "https://www.cs.toronto.edu/~kriz/";

/// Height and width of a CIFAR image.
pub const SIDE: usize = 32;

/// Pixel bytes of one image (3 planes of 32x32).
pub const IMAGE_BYTES: usize = 3 * SIDE * SIDE;

/// Number of CIFAR-100 coarse classes (superclasses).
pub const COARSE_CLASSES: u16 = 20;

/// Where one CIFAR variant's files live and what they look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CifarFormat {
    /// The directory the tarball unpacks to, under the data directory.
    pub dir: &'static str,
    /// Training batch files, in example-id order.
    pub train_files: &'static [&'static str],
    /// The test batch file.
    pub test_file: &'static str,
    /// Label bytes before the pixels of each record (CIFAR-100: coarse, then fine).
    pub label_bytes: usize,
    /// Number of (fine) classes.
    pub num_classes: u16,
    /// The official tarball's name.
    pub archive: &'static str,
    /// The official tarball's md5 (the CIFAR page).
    pub archive_md5: &'static str,
}

impl CifarFormat {
    /// Bytes per record: labels plus pixels.
    pub fn record_bytes(&self) -> usize {
        self.label_bytes + IMAGE_BYTES
    }

    /// Every batch file, training files first.
    pub fn files(&self) -> impl Iterator<Item = &'static str> + use<> {
        self.train_files.iter().copied().chain([self.test_file])
    }
}

/// CIFAR-10: 50,000 training and 10,000 test images in 10 classes.
pub const CIFAR10: CifarFormat = CifarFormat {
    dir: "cifar-10-batches-bin",
    train_files: &[
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ],
    test_file: "test_batch.bin",
    label_bytes: 1,
    num_classes: 10,
    archive: "cifar-10-binary.tar.gz",
    archive_md5: "c32a1d4ab5d03f1284b67883e8d87530",
};

/// CIFAR-100: 50,000 training and 10,000 test images in 100 fine and 20 coarse classes.
pub const CIFAR100: CifarFormat = CifarFormat {
    dir: "cifar-100-binary",
    train_files: &["train.bin"],
    test_file: "test.bin",
    label_bytes: 2,
    num_classes: 100,
    archive: "cifar-100-binary.tar.gz",
    archive_md5: "03b5dce01913d631647c71ecec9e9cb8",
};

/// The format of a CIFAR dataset kind, `None` for the others.
pub fn format_of(kind: DatasetKind) -> Option<CifarFormat> {
    match kind {
        DatasetKind::Cifar10 => Some(CIFAR10),
        DatasetKind::Cifar100 => Some(CIFAR100),
        DatasetKind::Mnist | DatasetKind::PermutedMnist => None,
    }
}

/// Reads one batch file: every record's pixels and labels (and coarse labels for CIFAR-100).
///
/// # Errors
/// [`Error::Input`] when the file cannot be read; [`Error::Format`] naming the file when it is
/// empty, its size is not a whole number of records, or a label is out of range.
pub fn read_batch(path: &Path, format: &CifarFormat) -> Result<ImageSet> {
    let bytes = crate::input::read(path)?;
    let record = format.record_bytes();
    if bytes.is_empty() || bytes.len() % record != 0 {
        return Err(Error::format(
            path,
            format!(
                "size {} bytes is not a whole number of {record}-byte records (expected the CIFAR binary format of {})",
                bytes.len(),
                format.archive
            ),
        ));
    }
    let n = bytes.len() / record;
    let mut pixels = Vec::with_capacity(n * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    let mut coarse = Vec::with_capacity(if format.label_bytes == 2 { n } else { 0 });
    for (index, chunk) in bytes.chunks_exact(record).enumerate() {
        let label = u16::from(chunk[format.label_bytes - 1]);
        if label >= format.num_classes {
            return Err(label_error(path, index, "label", label, format.num_classes));
        }
        if format.label_bytes == 2 {
            let coarse_label = u16::from(chunk[0]);
            if coarse_label >= COARSE_CLASSES {
                return Err(label_error(path, index, "coarse label", coarse_label, COARSE_CLASSES));
            }
            coarse.push(coarse_label);
        }
        labels.push(label);
        pixels.extend_from_slice(&chunk[format.label_bytes..]);
    }
    Ok(ImageSet {
        pixels,
        labels,
        coarse_labels: (format.label_bytes == 2).then_some(coarse),
        image_shape: [3, SIDE, SIDE],
    })
}

fn label_error(path: &Path, index: usize, what: &str, label: u16, classes: u16) -> Error {
    Error::format(path, format!("record {index} has {what} {label}, expected one below {classes}"))
}

/// Concatenates image sets of the same image shape, in order.
fn concat(sets: Vec<ImageSet>) -> ImageSet {
    let mut sets = sets.into_iter();
    let mut all = sets.next().expect("a CIFAR format has at least one training file");
    for set in sets {
        all.pixels.extend(set.pixels);
        all.labels.extend(set.labels);
        if let (Some(a), Some(b)) = (&mut all.coarse_labels, set.coarse_labels) {
            a.extend(b);
        }
    }
    all
}

/// Loads CIFAR-10 or CIFAR-100 from `<data_dir>/<format.dir>`.
///
/// # Errors
/// [`Error::Format`] naming the directory when a file is missing, or naming the file when it
/// is not a valid batch file (see [`read_batch`]).
pub fn load(data_dir: &Path, kind: DatasetKind, format: &CifarFormat) -> Result<Splits> {
    let dir = cifar_dir(data_dir, format);
    let path_of = |name: &str| {
        let path = dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(Error::format(
                &dir,
                format!(
                    "missing {name}; let `fstream train` download {} or unpack it into {}",
                    format.archive,
                    data_dir.display()
                ),
            ))
        }
    };
    let train = format
        .train_files
        .iter()
        .map(|name| read_batch(&path_of(name)?, format))
        .collect::<Result<Vec<_>>>()?;
    let test = read_batch(&path_of(format.test_file)?, format)?;
    Ok(Splits { kind, train: concat(train), test, num_classes: usize::from(format.num_classes) })
}

/// Downloads `format.archive` from the first of `mirrors` that has it when the dataset
/// directory is missing, checks its md5 and unpacks it into `data_dir`. The archive is
/// extracted into a temporary directory first and the dataset directory is renamed into place
/// only when every batch file came out whole, so a truncated or corrupt archive leaves nothing
/// behind. `on_progress(done, total)` reports downloaded bytes.
///
/// # Errors
/// [`Error::Download`] when the download fails or its checksum differs; [`Error::Format`]
/// naming the archive when it cannot be unpacked or lacks a batch file, or naming the dataset
/// directory when it exists without every batch file (fstream never deletes it).
pub fn download_missing(
    data_dir: &Path,
    format: &CifarFormat,
    mirrors: &[String],
    on_progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<()> {
    let dest = cifar_dir(data_dir, format);
    if dest.exists() {
        return match format.files().find(|name| !dest.join(name).is_file()) {
            None => Ok(()),
            Some(name) => Err(Error::format(
                &dest,
                format!(
                    "has no {name}; remove the directory to download {} again, or copy the missing files",
                    format.archive
                ),
            )),
        };
    }
    std::fs::create_dir_all(data_dir).at(data_dir)?;
    let staging = tempfile::Builder::new().prefix(".cifar-").tempdir_in(data_dir).at(data_dir)?;
    let archive = staging.path().join(format.archive);
    let hint = format!(
        "without internet, download {} elsewhere and unpack it into {}",
        format.archive,
        data_dir.display()
    );
    from_mirrors(mirrors, format.archive, &hint, &mut |url| {
        download_verified(url, &archive, Checksum::Md5(format.archive_md5), on_progress)
    })?;
    let unpacked = staging.path().join("unpacked");
    unpack(&archive, &unpacked)?;
    let extracted_dir = unpacked.join(format.dir);
    if let Some(name) = format.files().find(|name| !extracted_dir.join(name).is_file()) {
        return Err(Error::format(&archive, format!("the archive has no {}/{name}", format.dir)));
    }
    std::fs::rename(&extracted_dir, &dest).at(&dest)?;
    File::open(data_dir).and_then(|d| d.sync_all()).at(data_dir)?;
    Ok(())
}

/// Unpacks a `.tar.gz` into `dest`, reading it to the end so that truncation is detected.
fn unpack(archive: &Path, dest: &Path) -> Result<()> {
    let bad = |e: std::io::Error| Error::format(archive, format!("cannot unpack: {e}"));
    let file = File::open(archive).at(archive)?;
    let mut decoder = GzDecoder::new(file);
    std::fs::create_dir_all(dest).at(dest)?;
    let mut tarball = tar::Archive::new(&mut decoder);
    for entry in tarball.entries().map_err(bad)? {
        entry.and_then(|mut entry| entry.unpack_in(dest)).map_err(bad)?;
        crate::crash::point("extract-partial", Some(archive));
    }
    // The tar end marker can come before the end of the gzip stream; a truncated stream
    // fails here at the latest.
    std::io::copy(&mut decoder, &mut std::io::sink()).map_err(bad)?;
    Ok(())
}

/// The directory holding a CIFAR variant's files under a data directory.
pub fn cifar_dir(data_dir: &Path, format: &CifarFormat) -> PathBuf {
    data_dir.join(format.dir)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A CIFAR record with the given labels and every pixel set to `pixel`.
    pub(crate) fn record(labels: &[u8], pixel: u8) -> Vec<u8> {
        let mut bytes = labels.to_vec();
        bytes.extend((0..IMAGE_BYTES).map(|i| pixel.wrapping_add((i % 7) as u8)));
        bytes
    }

    #[test]
    fn cifar10_records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data_batch_1.bin");
        std::fs::write(&path, [record(&[3], 10), record(&[9], 20)].concat()).unwrap();
        let set = read_batch(&path, &CIFAR10).unwrap();
        assert_eq!(set.labels, vec![3, 9]);
        assert_eq!(set.coarse_labels, None);
        assert_eq!(set.image_shape, [3, 32, 32]);
        assert_eq!(&set.pixels[..IMAGE_BYTES], &record(&[3], 10)[1..]);
        assert_eq!(&set.pixels[IMAGE_BYTES..], &record(&[9], 20)[1..]);
    }

    #[test]
    fn cifar100_trains_on_the_fine_label_and_keeps_the_coarse_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.bin");
        std::fs::write(&path, [record(&[4, 99], 0), record(&[19, 7], 1)].concat()).unwrap();
        let set = read_batch(&path, &CIFAR100).unwrap();
        assert_eq!(set.labels, vec![99, 7]);
        assert_eq!(set.coarse_labels, Some(vec![4, 19]));
        assert_eq!(&set.pixels[IMAGE_BYTES..], &record(&[19, 7], 1)[2..]);
    }

    #[test]
    fn bad_files_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test_batch.bin");
        let err = |bytes: Vec<u8>, format: &CifarFormat| {
            std::fs::write(&path, bytes).unwrap();
            read_batch(&path, format).unwrap_err().to_string()
        };
        let short = err(record(&[1], 0)[..3000].to_vec(), &CIFAR10);
        assert!(
            short.contains(
                "test_batch.bin: size 3000 bytes is not a whole number of 3073-byte records"
            ),
            "{short}"
        );
        // A CIFAR-10 file read as CIFAR-100 has the wrong record size.
        let wrong = err(record(&[1], 0), &CIFAR100);
        assert!(wrong.contains("3074-byte records"), "{wrong}");
        let label = err([record(&[1], 0), record(&[10], 0)].concat(), &CIFAR10);
        assert!(label.contains("record 1 has label 10, expected one below 10"), "{label}");
        let coarse = err(record(&[20, 5], 0), &CIFAR100);
        assert!(coarse.contains("record 0 has coarse label 20, expected one below 20"), "{coarse}");
        assert!(err(Vec::new(), &CIFAR10).contains("size 0 bytes"));
    }

    #[test]
    fn load_concatenates_training_batches_in_order() {
        let data = tempfile::tempdir().unwrap();
        let dir = cifar_dir(data.path(), &CIFAR10);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, name) in CIFAR10.files().enumerate() {
            std::fs::write(dir.join(name), record(&[i as u8], i as u8)).unwrap();
        }
        let splits = load(data.path(), DatasetKind::Cifar10, &CIFAR10).unwrap();
        assert_eq!(splits.train.labels, vec![0, 1, 2, 3, 4]);
        assert_eq!(splits.test.labels, vec![5]);
        assert_eq!(splits.num_classes, 10);
        std::fs::remove_file(dir.join("data_batch_3.bin")).unwrap();
        let err = load(data.path(), DatasetKind::Cifar10, &CIFAR10).unwrap_err().to_string();
        assert!(err.contains("missing data_batch_3.bin"), "{err}");
    }

    /// A gzipped tar of `format`'s directory holding one small batch file per name.
    fn archive(format: &CifarFormat) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (i, name) in format.files().enumerate() {
            let labels: Vec<u8> = (0..format.label_bytes as u8).map(|b| b + i as u8).collect();
            let bytes = [record(&labels, i as u8), record(&labels, 100)].concat();
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, format!("{}/{name}", format.dir), &bytes[..]).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn md5_hex(bytes: &[u8]) -> &'static str {
        use md5::Digest;
        let digest = md5::Md5::digest(bytes);
        Box::leak(digest.iter().map(|b| format!("{b:02x}")).collect::<String>().into_boxed_str())
    }

    fn serve(bytes: &[u8], declared_len: usize) -> Vec<String> {
        vec![crate::data::download::tests::serve(bytes.to_vec(), declared_len, 1)]
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Run in a child process by the test below: downloads the archive described by its
    /// environment, where a crash point is armed.
    #[test]
    #[ignore = "a child of crash_mid_download_or_extraction_leaves_no_dataset_behind"]
    fn download_child() {
        let (Ok(dir), Ok(url), Ok(md5)) = (
            std::env::var("CHILD_DATA_DIR"),
            std::env::var("CHILD_URL"),
            std::env::var("CHILD_MD5"),
        ) else {
            return;
        };
        let format = CifarFormat { archive_md5: Box::leak(md5.into_boxed_str()), ..CIFAR100 };
        download_missing(Path::new(&dir), &format, &[url], &mut |_, _| {}).unwrap();
        panic!("the crash point was not reached");
    }

    #[test]
    fn crash_mid_download_or_extraction_leaves_no_dataset_behind() {
        use std::os::unix::process::ExitStatusExt;
        let bytes = archive(&CIFAR100);
        let format = CifarFormat { archive_md5: md5_hex(&bytes), ..CIFAR100 };
        for point in ["download-partial", "extract-partial"] {
            let data = tempfile::tempdir().unwrap();
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "data::cifar::tests::download_child", "--ignored"])
                .env(crate::crash::ENV, point)
                .env("CHILD_DATA_DIR", data.path())
                .env("CHILD_URL", &serve(&bytes, bytes.len())[0])
                .env("CHILD_MD5", format.archive_md5)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert_eq!(status.signal(), Some(libc::SIGKILL), "{point}: {status:?}");
            let visible: Vec<String> =
                entries(data.path()).into_iter().filter(|n| !n.starts_with('.')).collect();
            assert!(visible.is_empty(), "{point}: {visible:?} visible after the crash");
            download_missing(data.path(), &format, &serve(&bytes, bytes.len()), &mut |_, _| {})
                .unwrap();
            let splits = load(data.path(), DatasetKind::Cifar100, &format).unwrap();
            assert_eq!(splits.train.len(), 2, "{point}: the rerun downloads the whole dataset");
        }
    }

    #[test]
    fn download_verifies_and_unpacks_the_archive() {
        let bytes = archive(&CIFAR100);
        let format = CifarFormat { archive_md5: md5_hex(&bytes), ..CIFAR100 };
        let data = tempfile::tempdir().unwrap();
        let mut seen = 0;
        download_missing(data.path(), &format, &serve(&bytes, bytes.len()), &mut |done, _| {
            seen = done
        })
        .unwrap();
        assert_eq!(seen, bytes.len() as u64);
        assert_eq!(entries(data.path()), vec!["cifar-100-binary"]);
        let splits = load(data.path(), DatasetKind::Cifar100, &format).unwrap();
        assert_eq!(
            (splits.train.labels.clone(), splits.test.labels.clone()),
            (vec![1, 1], vec![2, 2])
        );
        assert_eq!(splits.train.coarse_labels, Some(vec![0, 0]));
        // Present files are not fetched again (the server would refuse a second request).
        download_missing(data.path(), &format, &["http://127.0.0.1:9/".into()], &mut |_, _| {})
            .unwrap();
    }

    #[test]
    fn an_incomplete_dataset_directory_is_reported_not_replaced() {
        let data = tempfile::tempdir().unwrap();
        let dir = cifar_dir(data.path(), &CIFAR10);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data_batch_1.bin"), record(&[1], 0)).unwrap();
        let err = download_missing(
            data.path(),
            &CIFAR10,
            &["http://127.0.0.1:9/".into()],
            &mut |_, _| {},
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("cifar-10-batches-bin: has no data_batch_2.bin; remove the directory"),
            "{err}"
        );
        assert_eq!(entries(&dir), vec!["data_batch_1.bin"]);
    }

    #[test]
    fn wrong_checksum_leaves_nothing_behind() {
        let bytes = archive(&CIFAR10);
        let data = tempfile::tempdir().unwrap();
        let err =
            download_missing(data.path(), &CIFAR10, &serve(&bytes, bytes.len()), &mut |_, _| {})
                .unwrap_err()
                .to_string();
        assert!(err.contains("cifar-10-binary.tar.gz"), "{err}");
        assert!(
            err.contains("checksum mismatch: expected c32a1d4ab5d03f1284b67883e8d87530"),
            "{err}"
        );
        assert!(entries(data.path()).is_empty(), "{:?}", entries(data.path()));
    }

    #[test]
    fn truncated_archive_leaves_nothing_half_extracted() {
        let bytes = archive(&CIFAR10);
        let data = tempfile::tempdir().unwrap();
        // Cut off in transfer: the server declares the full length.
        let cut = &bytes[..bytes.len() / 2];
        let format = CifarFormat { archive_md5: md5_hex(&bytes), ..CIFAR10 };
        let err = download_missing(data.path(), &format, &serve(cut, bytes.len()), &mut |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("download of cifar-10-binary.tar.gz failed: http://127.0.0.1"),
            "{err}"
        );
        assert!(entries(data.path()).is_empty(), "{:?}", entries(data.path()));
        // Truncated at the source, so that its checksum matches: unpacking fails.
        let format = CifarFormat { archive_md5: md5_hex(cut), ..CIFAR10 };
        let err = download_missing(data.path(), &format, &serve(cut, cut.len()), &mut |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("cifar-10-binary.tar.gz: cannot unpack"), "{err}");
        assert!(entries(data.path()).is_empty(), "{:?}", entries(data.path()));
    }
}
