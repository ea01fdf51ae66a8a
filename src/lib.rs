//! fstream records *example forgetting* during neural network training (Toneva et al., ICLR
//! 2019, "An Empirical Study of Example Forgetting during Deep Neural Network Learning") and
//! analyses it with polars.
//!
//! The pipeline, one module per box:
//!
//! ```text
//! data (MNIST IDX and CIFAR binary readers, download + verify, removal selection,
//!       label and pixel noise, batches with augmentation and cutout on tensors)
//!   → train (one thread per run: tch model + optimizer + LR schedule; per-batch stats as
//!            tensor ops, one host copy per batch)
//!   → record (bounded crossbeam channel, send-wait metering)
//!   → store (writer thread: Arrow RecordBatch → zstd Parquet, hive partitions,
//!            atomic commit per epoch)
//!   → query (polars lazy + SQL: forgetting counts, orders, user queries)
//! ```
//!
//! [`experiment`] wires training threads to the writer; the `fstream` binary only parses
//! flags and dispatches.
#![warn(missing_docs)]

mod crash;
pub mod data;
pub mod dynamics;
pub mod error;
pub mod experiment;
pub mod fidelity;
pub mod model;
mod names;
pub mod plot;
pub mod query;
pub mod record;
pub mod store;
pub mod sweep;
pub mod train;

pub use error::{Error, Result};

/// The libtorch version fstream was built against (or `unknown`).
pub const LIBTORCH_VERSION: &str = env!("FSTREAM_LIBTORCH_VERSION");
