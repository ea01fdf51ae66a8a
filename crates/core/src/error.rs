//! The crate's error type. Variants carry the context a user needs to fix the problem (the file,
//! the flag, the run); [`Error::exit_code`] maps them onto the documented exit codes.

use std::path::PathBuf;

/// Everything that can go wrong in fstream's library code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An input file named by the user (data, sorting file, SQL) cannot be read.
    #[error("{}: {source}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An input file exists but its content is not what was expected.
    #[error("{}: {reason}", path.display())]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What was expected and what was found.
        reason: String,
    },
    /// A file of a dataset root is damaged: unreadable, changed after its commit (its
    /// checksum), missing while its run declares it, or not what fstream wrote there. A
    /// runtime failure (exit 1), as `fstream verify` reports damage.
    #[error("{}: {reason}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A flag, or a combination of flags, is invalid.
    #[error("{0}")]
    Config(String),
    /// A download failed or did not match its checksum.
    #[error("download of {url} failed: {reason}")]
    Download {
        /// The address that was tried.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// A user's SQL could not be planned or run.
    #[error("{}: {}", path.display(), first_line(&source.to_string()))]
    Sql {
        /// The SQL file.
        path: PathBuf,
        /// The engine's message.
        #[source]
        source: polars::error::PolarsError,
    },
    /// libtorch reported an error (`fstream-torch` turns tch's errors into this).
    #[error("libtorch: {0}")]
    Torch(String),
    /// Writing Parquet failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Building Arrow data failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A polars query failed.
    #[error("polars: {}", first_line(&.0.to_string()))]
    Polars(#[from] polars::error::PolarsError),
    /// A run's loss became NaN or infinite; the run is marked failed, its earlier epochs stay.
    #[error(
        "run {run_id} diverged: non-finite loss at epoch {epoch}, step {step} (try a smaller --lr)"
    )]
    Diverged {
        /// The run.
        run_id: String,
        /// The epoch of the batch.
        epoch: u32,
        /// The global batch index.
        step: u32,
    },
    /// The user stopped training (Ctrl-C); the run is marked failed and can be resumed.
    #[error("interrupted")]
    Interrupted,
    /// A worker thread (trainer or writer) failed or panicked.
    #[error("{thread} thread: {reason}")]
    Thread {
        /// Which thread.
        thread: String,
        /// What happened.
        reason: String,
    },
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// A damaged file of a root.
    pub fn damaged(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Damaged { path: path.into(), reason: reason.into() }
    }

    /// A format error for `path`.
    pub fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Format { path: path.into(), reason: reason.into() }
    }

    /// Names `path` in an I/O failure that the Parquet or Arrow writer reports without a
    /// file (disk full, file-size limit); other errors are returned unchanged.
    pub(crate) fn with_io_path(self, path: &std::path::Path) -> Self {
        let io = match self {
            Error::Parquet(parquet::errors::ParquetError::External(e)) => {
                e.downcast::<std::io::Error>()
            }
            Error::Arrow(arrow::error::ArrowError::IoError(_, e)) => Ok(Box::new(e)),
            other => return other,
        };
        match io {
            Ok(io) => Error::io(path, *io),
            Err(e) => Error::Parquet(parquet::errors::ParquetError::External(e)),
        }
    }

    /// The process exit code for this error: 2 for bad usage or bad input (flags, input files,
    /// SQL), 130 for an interruption (as a shell reports SIGINT), 1 for failures at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Interrupted => 130,
            Error::Input { .. } | Error::Format { .. } | Error::Config(_) | Error::Sql { .. } => 2,
            _ => 1,
        }
    }
}

/// An optional value as an error message shows it: the value, or `none`.
pub(crate) fn or_none<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "none".to_string(), |v| v.to_string())
}

/// The first line of an engine message; polars appends multi-line plan dumps that do not belong
/// in a one-line error.
pub(crate) fn first_line(message: &str) -> &str {
    message.lines().find(|line| !line.trim().is_empty()).unwrap_or(message).trim()
}

/// Adds the path to I/O errors: `fs::write(p, b).at(p)?`, or `fs::read(p).input(p)?` for a
/// file the user named as input.
pub trait IoContext<T> {
    /// An [`Error::Io`] (runtime failure).
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
    /// An [`Error::Input`] (bad input: exit code 2).
    fn input(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::io(path, source))
    }

    fn input(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Input { path: path.into(), source })
    }
}
