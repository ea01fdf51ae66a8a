//! The training crate's error: libtorch's, or fstream's. Callers outside this crate get
//! `fstream::Error` (a libtorch error becomes [`fstream::Error::Torch`]), which carries the
//! exit code.

/// A libtorch error, or one of fstream's.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// Anything else (the writer stopped, bad input, an interrupt).
    #[error(transparent)]
    Fstream(#[from] fstream::Error),
}

/// The training crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for fstream::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Torch(error) => fstream::Error::Torch(error.to_string()),
            Error::Fstream(error) => error,
        }
    }
}
