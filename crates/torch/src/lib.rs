//! fstream's training with libtorch (through `tch`): the reference's models ([`model`]), the
//! training loop with per-example statistics from the forward pass ([`train`]), batches with
//! augmentation and cutout as tensor ops ([`batch`]), and an experiment's trainer threads
//! wired to `fstream`'s writer ([`experiment`]). Everything else (planning, storage, queries)
//! is the `fstream` library, which does not link libtorch.
#![warn(missing_docs)]

pub mod batch;
pub mod device;
pub mod error;
pub mod experiment;
pub mod model;
pub mod train;

pub use error::{Error, Result};

/// The libtorch version this crate was built against (or `unknown`).
pub const LIBTORCH_VERSION: &str = env!("FSTREAM_LIBTORCH_VERSION");
