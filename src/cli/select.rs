//! The run-selection flags `fstream order` and `fstream scores` share, and the warnings
//! about matching runs they leave out.

use std::path::PathBuf;

use clap::Args;
use fstream::data::DatasetKind;
use fstream::fidelity::Fidelity;
use fstream::query::Catalog;
use fstream::query::forgetting::{OrderOptions, SelectedRun, SkipReason, TieBreak};

/// Which runs are counted, and how ties are ordered.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Dataset root written by `fstream train`.
    #[arg(
        long,
        visible_alias = "root",
        alias = "input_dir",
        value_name = "DIR",
        default_value = "results"
    )]
    pub input_dir: PathBuf,
    /// Dataset whose runs are counted [default: the root's only dataset].
    #[arg(long, value_name = "NAME")]
    dataset: Option<DatasetKind>,
    /// SQL predicate over the runs table selecting the runs, e.g. "no_dropout AND seed <= 5".
    #[arg(long = "where", value_name = "PREDICATE")]
    where_sql: Option<String>,
    /// Use only the first N epochs of each run (needed to mix runs of different lengths).
    #[arg(long, value_name = "N")]
    epochs: Option<u32>,
    /// How equal values are ordered: by example id, or randomly with --seed.
    #[arg(long, value_enum, value_name = "HOW", default_value = "id")]
    tie_break: TieBreakArg,
    /// Seed of --tie-break random.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
    /// Also count runs that are running or failed (their committed epochs).
    #[arg(long)]
    include_incomplete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TieBreakArg {
    /// Ascending example id.
    Id,
    /// Seeded random shuffle.
    Random,
}

impl SelectArgs {
    /// The library's selection options over `catalog`'s root, with `fidelity`.
    ///
    /// # Errors
    /// Without `--dataset`, when the root holds runs of several datasets (the error lists them).
    pub fn options(&self, catalog: &Catalog, fidelity: Fidelity) -> fstream::Result<OrderOptions> {
        let dataset = match self.dataset {
            Some(dataset) => dataset.name().to_string(),
            None => catalog.only_dataset()?,
        };
        Ok(OrderOptions {
            dataset,
            where_sql: self.where_sql.clone(),
            include_incomplete: self.include_incomplete,
            epochs: self.epochs,
            fidelity,
            tie_break: match self.tie_break {
                TieBreakArg::Id => TieBreak::ById,
                TieBreakArg::Random => TieBreak::Random { seed: self.seed },
            },
        })
    }
}

/// Warns about each matching run that was not counted, saying why.
pub fn warn_skipped(skipped: &[(SelectedRun, SkipReason)]) {
    for (run, reason) in skipped {
        match reason {
            SkipReason::Incomplete => log::warn!(
                "skipped run {} (status {}); pass --include-incomplete to count it",
                run.run_id,
                run.status.name()
            ),
            SkipReason::NotRecorded => log::warn!(
                "skipped run {}: trained with --no-record, it has no presentations",
                run.run_id
            ),
        }
    }
}

/// Warns when examples that no counted run presented are ranked last.
pub fn warn_unpresented(presented: &[bool]) {
    let unpresented = presented.iter().filter(|&&p| !p).count();
    if unpresented > 0 {
        log::warn!(
            "{} no counted run presented (removed in every run) are ranked last, flagged presented = false",
            super::counted(unpresented, "example")
        );
    }
}
