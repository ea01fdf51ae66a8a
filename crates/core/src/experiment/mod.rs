//! An experiment: its runs planned by [`plan`] (or resumed by [`resume`], or imported from the
//! reference's files by [`import`]) as [`PlannedRun`]s, which `fstream-torch` trains.

pub mod import;
mod pickle_depth;
pub mod plan;
pub mod resume;

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::TrainConfig;
use crate::data::Splits;
use crate::record::{ExampleTable, RunInfo};

/// One run to train.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// Its configuration as stored in `runs`.
    pub info: RunInfo,
    /// Its `examples` table (labels trained on, membership).
    pub examples: ExampleTable,
    /// Its data (shared between runs unless a run adds pixel noise).
    pub data: Arc<Splits>,
    /// How to train it.
    pub config: TrainConfig,
    /// Example ids it trains on.
    pub train_ids: Vec<u32>,
    /// For a resumed run: epochs already committed, and the checkpoint after the last one.
    pub resume: Option<(u32, PathBuf)>,
}
