//! fstream records *example forgetting* during neural network training (Toneva et al., ICLR
//! 2019, "An Empirical Study of Example Forgetting during Deep Neural Network Learning") and
//! analyses it with polars.
//!
//! This crate is everything but the training itself, and does not link libtorch: the pipeline,
//! one module per box (training, in `fstream-torch`, sends [`record`]s):
//!
//! ```text
//! data (MNIST IDX and CIFAR binary readers, download + verify, removal selection,
//!       label and pixel noise)
//!   → [fstream-torch: one thread per run, tch model + optimizer + LR schedule]
//!   → record (bounded crossbeam channel, send-wait metering)
//!   → store (writer thread: Arrow RecordBatch → zstd Parquet, hive partitions,
//!            atomic commit per epoch)
//!   → query (polars lazy + SQL: forgetting counts, orders, scores, user queries)
//! ```
//!
//! [`experiment`] plans runs into [`config`]urations and `runs` rows; [`sweep`] expands and
//! runs whole grids of experiments; [`plot`] draws figures from [`query`]'s data.
#![warn(missing_docs)]

pub mod config;
pub mod crash;
pub mod data;
pub mod dynamics;
pub mod error;
pub mod experiment;
pub mod fidelity;
pub mod input;
mod names;
pub mod plot;
pub mod query;
pub mod record;
pub mod store;
pub mod sweep;

pub use error::{Error, Result};
