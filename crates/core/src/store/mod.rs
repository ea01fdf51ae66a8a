//! Storage: the dataset root's layout, the tables' schemas, the writer thread, and sorting
//! files. Every file is committed atomically: written under a name that does not end in
//! `.parquet`, fsynced, renamed into place, and the directory fsynced — so readers see whole
//! files or nothing, even after a crash.

pub mod checksums;
pub mod dynamics;
pub mod export;
pub mod layout;
pub mod lock;
pub mod output;
pub mod remove;
pub mod runs;
pub mod schema;
pub mod sorting;
pub mod verify;
pub mod writer;

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::{Error, IoContext, Result};
use schema::col;

/// A committed file's size and the CRC-32 of its content ([`checksums`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileDigest {
    /// Size in bytes.
    pub bytes: u64,
    /// CRC-32 of the bytes.
    pub crc32: u32,
}

/// Writes `batch` to `path` atomically and returns the file's size and checksum.
///
/// # Errors
/// [`Error::Io`] or [`Error::Parquet`] when writing fails; the previous file at `path`, if any,
/// is left untouched then.
pub fn write_parquet_atomically(
    path: &Path,
    batch: &RecordBatch,
    metadata: Vec<KeyValue>,
) -> Result<FileDigest> {
    write_atomically(path, parquet_contents(path, batch, writer_properties(metadata)))
}

/// What fills a Parquet file: `batch` with these settings.
fn parquet_contents<'a>(
    path: &'a Path,
    batch: &'a RecordBatch,
    props: WriterProperties,
) -> impl FnOnce(&mut StagedFile) -> Result<()> + 'a {
    move |file| {
        let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props))?;
        writer.write(batch)?;
        writer.flush()?;
        crate::crash::point("write-partial", Some(path));
        writer.close()?;
        Ok(())
    }
}

/// Renames `from` to `to` and fsyncs the directory of `to`, so that the rename survives a
/// power cut. Every commit of a file goes through here.
///
/// # Errors
/// [`Error::Io`] naming `to` (rename) or its directory (fsync).
pub(crate) fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).at(to)?;
    crate::crash::point("write-renamed", Some(to));
    let dir = match to.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        Some(_) => Path::new("."),
        None => return Err(Error::format(to, "no parent directory")),
    };
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// The commit protocol of every file fstream writes: `write` fills a temporary file (named so
/// that no `*.parquet` glob matches it), which is fsynced, renamed to `path`, and the directory
/// fsynced. On error the temporary file is removed and `path` is untouched. Returns the size
/// and checksum.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut StagedFile) -> Result<()>,
) -> Result<FileDigest> {
    let mut files = StagedFiles::default();
    let bytes = files.stage(path, write)?;
    files.commit()?;
    Ok(bytes)
}

/// Files committed together with the store's protocol: [`StagedFiles::stage`] writes each
/// under a temporary name and fsyncs it, [`StagedFiles::commit`] renames them all into place.
/// The writing is what fails on a full disk or a bad value, so a failure leaves every file as
/// it was (a sorting file and its CSV stay a pair); dropping a set that was not committed
/// removes its temporary files.
#[derive(Debug, Default)]
pub struct StagedFiles {
    /// (temporary, final) paths, in staging order.
    staged: Vec<(PathBuf, PathBuf)>,
}

impl StagedFiles {
    /// Writes `path`'s contents with `write` into a temporary file beside it (creating the
    /// directory), fsynced; returns its size and checksum (of the bytes written).
    ///
    /// # Errors
    /// [`Error::Io`] naming `path` (or its directory), or what `write` fails with.
    pub fn stage(
        &mut self,
        path: &Path,
        write: impl FnOnce(&mut StagedFile) -> Result<()>,
    ) -> Result<FileDigest> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotADirectory => {
                Error::Config(format!(
                    "{}: not a directory (a file is in the way); write {} elsewhere",
                    dir.display(),
                    path.display()
                ))
            }
            _ => Error::io(dir, e),
        })?;
        let file_name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        let tmp = dir.join(format!("{}{}.tmp", temporary_prefix(&file_name), std::process::id()));
        let file = File::create(&tmp).at(&tmp)?;
        self.staged.push((tmp, path.to_path_buf()));
        let mut staged = StagedFile { file, crc32: crc32fast::Hasher::new(), bytes: 0 };
        write(&mut staged).map_err(|e| e.with_io_path(path))?;
        staged.file.sync_all().at(path)?;
        Ok(FileDigest { bytes: staged.bytes, crc32: staged.crc32.finalize() })
    }

    /// [`StagedFiles::stage`] of `bytes`.
    ///
    /// # Errors
    /// [`Error::Io`] naming `path`.
    pub fn stage_bytes(&mut self, path: &Path, bytes: &[u8]) -> Result<FileDigest> {
        self.stage(path, |file| file.write_all(bytes).at(path))
    }

    /// Renames every staged file into place, in staging order, each durably.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file whose rename failed (the ones before it are committed).
    pub fn commit(mut self) -> Result<()> {
        // What would make a rename fail is checked before the first: no file of the set is
        // committed unless all can be.
        if let Some((_, dir)) = self.staged.iter().find(|(_, path)| path.is_dir()) {
            return Err(Error::io(dir, std::io::Error::from(std::io::ErrorKind::IsADirectory)));
        }
        let staged = std::mem::take(&mut self.staged);
        for (i, (tmp, path)) in staged.iter().enumerate() {
            if let Err(e) = rename_durably(tmp, path) {
                for (left, _) in &staged[i..] {
                    let _ = std::fs::remove_file(left);
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

/// A file being staged: what is written goes to the file and into its size and checksum.
#[derive(Debug)]
pub struct StagedFile {
    file: File,
    crc32: crc32fast::Hasher,
    bytes: u64,
}

impl std::io::Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(buf)?;
        self.crc32.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for StagedFiles {
    fn drop(&mut self) {
        for (tmp, _) in &self.staged {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Writes `bytes` to `path` with the commit protocol of [`write_parquet_atomically`]: a
/// reader sees the old file or the whole new one, never a part.
///
/// # Errors
/// [`Error::Io`] naming the file or its directory.
pub fn write_bytes_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically(path, |file| file.write_all(bytes).at(path)).map(|_| ())
}

/// The row count from a Parquet file's footer, or why the file is not complete Parquet.
pub(crate) fn parquet_row_count(path: &Path) -> std::result::Result<u64, String> {
    let file = File::open(path).map_err(|e| format!("missing or unreadable: {e}"))?;
    let read = || {
        let reader = parquet::file::reader::SerializedFileReader::new(file)
            .map_err(|e| Error::format(path, format!("not a complete Parquet file: {e}")))?;
        let rows = parquet::file::reader::FileReader::metadata(&reader).file_metadata().num_rows();
        Ok(rows.max(0) as u64)
    };
    catching_panics(path, false, read).map_err(|e| match e {
        Error::Format { reason, .. } | Error::Damaged { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// Runs `read`, a read of the Parquet file `path`, turning a panic of the Parquet reader
/// (some damaged footers make it panic instead of failing) into an error naming the file:
/// [`Error::Damaged`] (a root's file), or [`Error::Format`] with `input` (a file the user
/// named).
///
/// # Errors
/// What `read` returns, or the error above when it panicked.
pub(crate) fn catching_panics<T>(
    path: &Path,
    input: bool,
    read: impl FnOnce() -> Result<T>,
) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("the reader failed");
        let reason = format!("damaged Parquet file ({message}); `fstream verify` lists the damage");
        Err(if input { Error::format(path, reason) } else { Error::damaged(path, reason) })
    })
}

/// How the names of `file_name`'s temporary files begin (then the writer's process id and
/// `.tmp`): hidden, and never ending in `.parquet`.
pub(crate) fn temporary_prefix(file_name: &str) -> String {
    format!(".{file_name}.")
}

/// Parquet settings. zstd level 1 keeps the writer far ahead of training. For presentations,
/// each epoch file is sorted by `example_id`, so DELTA_BINARY_PACKED stores the ids in almost
/// nothing; the float columns are byte-stream-split (no dictionary: values rarely repeat, and
/// trying one costs more than the rest of the encoding), which lets zstd compress the exponent
/// bytes. One row group per file: files are one epoch.
fn writer_properties(metadata: Vec<KeyValue>) -> WriterProperties {
    let mut builder = base_properties()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_key_value_metadata((!metadata.is_empty()).then_some(metadata))
        .set_column_dictionary_enabled(ColumnPath::from(col::EXAMPLE_ID), false)
        .set_column_encoding(ColumnPath::from(col::EXAMPLE_ID), Encoding::DELTA_BINARY_PACKED);
    for float_column in [col::LOSS, col::MARGIN] {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(float_column), false)
            .set_column_encoding(ColumnPath::from(float_column), Encoding::BYTE_STREAM_SPLIT);
    }
    builder.build()
}

/// Parquet settings of a dynamics file, which the writer rewrites whole at every epoch commit:
/// the cheapest to encode (uncompressed, no dictionaries but the constant `run_id`'s, min/max
/// statistics only for `run_id` and `example_id`, which readers prune by). For 60,000 examples
/// that is ~2 ms instead of ~11 ms with the other tables' settings, for 3.8 MB instead of 1.5 MB
/// per run: a few percent of what the run's presentations take.
fn dynamics_properties() -> WriterProperties {
    let mut builder = base_properties()
        .set_compression(Compression::UNCOMPRESSED)
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from(col::RUN_ID), true)
        .set_statistics_enabled(EnabledStatistics::None);
    for pruned in [col::RUN_ID, col::EXAMPLE_ID] {
        builder = builder
            .set_column_statistics_enabled(ColumnPath::from(pruned), EnabledStatistics::Chunk);
    }
    builder.build()
}

/// What every file shares: one row group, and fstream as its writer.
fn base_properties() -> parquet::file::properties::WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_max_row_group_row_count(Some(1 << 24))
        .set_created_by(format!("fstream {}", env!("CARGO_PKG_VERSION")))
}

/// Commits a run's dynamics file (`batch` from [`dynamics::dynamics_batch`]) with
/// [`write_parquet_atomically`]'s protocol and the dynamics settings.
///
/// # Errors
/// [`Error::Io`] or [`Error::Parquet`] when writing fails; the previous file stays then.
pub fn write_dynamics_file(path: &Path, batch: &RecordBatch) -> Result<FileDigest> {
    write_atomically(path, parquet_contents(path, batch, dynamics_properties()))
}

/// Stages `batch` as the Parquet file `path` in `files`, with the settings and key-value
/// `metadata` of [`write_parquet_atomically`].
///
/// # Errors
/// [`Error::Io`] or [`Error::Parquet`] when writing fails.
pub fn stage_parquet(
    files: &mut StagedFiles,
    path: &Path,
    batch: &RecordBatch,
    metadata: Vec<KeyValue>,
) -> Result<FileDigest> {
    files.stage(path, parquet_contents(path, batch, writer_properties(metadata)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use schema::PresentationColumns;

    #[test]
    fn a_set_of_files_is_committed_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (dir.path().join("order.parquet"), dir.path().join("order.csv"));
        std::fs::write(&first, "old").unwrap();
        std::fs::create_dir(&second).unwrap();
        let mut files = StagedFiles::default();
        files.stage_bytes(&first, b"new").unwrap();
        files.stage_bytes(&second, b"new").unwrap();
        let err = files.commit().unwrap_err().to_string();
        assert!(err.contains("order.csv"), "{err}");
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "old");
        // A failure while staging leaves nothing either.
        let mut files = StagedFiles::default();
        files.stage_bytes(&first, b"new").unwrap();
        let failed = files.stage(&dir.path().join("b.csv"), |_| Err(Error::Config("no".into())));
        assert!(failed.is_err());
        drop(files);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "temporaries left: {names:?}");
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "old");
    }

    #[test]
    fn atomic_write_round_trips_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/part-0.parquet");
        let columns = PresentationColumns {
            step: vec![3, 4],
            example_id: vec![0, 1],
            label: vec![7, 1],
            loss: vec![0.5, 2.25],
            correct: vec![true, false],
            margin: vec![0.75, -1.5],
            el2n: Vec::new(),
        };
        let batch = columns.to_batch().unwrap();
        let digest = write_parquet_atomically(&path, &batch, vec![]).unwrap();
        assert_eq!(digest.bytes, std::fs::metadata(&path).unwrap().len());
        assert_eq!(digest.crc32, crc32fast::hash(&std::fs::read(&path).unwrap()));
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["part-0.parquet"]);
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let read: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(read, vec![batch]);
    }
}
