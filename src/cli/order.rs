//! `fstream order`: forgetting counts across runs, written as a sorting file (the reference's
//! `order_examples_by_forgetting.py`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use fstream::Error;
use fstream::data::DatasetKind;
use fstream::query::Catalog;
use fstream::query::forgetting::{OrderOptions, SkipReason, TieBreak, compute_order};

use super::FidelityArg;

#[derive(Debug, Args)]
pub struct OrderArgs {
    /// Dataset root written by `fstream train`.
    #[arg(long, alias = "input_dir", value_name = "DIR", default_value = "results")]
    input_dir: PathBuf,
    /// Dataset whose runs are counted.
    #[arg(long, value_name = "NAME")]
    dataset: DatasetKind,
    /// SQL predicate over the runs table selecting the runs, e.g. "no_dropout AND seed <= 5".
    #[arg(long = "where", value_name = "PREDICATE")]
    where_sql: Option<String>,
    /// Directory for the sorting file.
    #[arg(long, alias = "output_dir", value_name = "DIR", default_value = ".")]
    output_dir: PathBuf,
    /// Sorting file name: writes DIR/NAME.parquet and DIR/NAME.csv.
    #[arg(long, alias = "output_name", value_name = "NAME", default_value = "forgetting_order")]
    output_name: String,
    /// Use only the first N epochs of each run (needed to mix runs of different lengths).
    #[arg(long, value_name = "N")]
    epochs: Option<u32>,
    /// faithful: a never-learned example counts --epochs (default 200) instead of its number
    /// of presentations, as the reference did (docs/semantics.md, bug 4).
    #[arg(long, value_enum, value_name = "MODE", default_value = "corrected")]
    fidelity: FidelityArg,
    /// How equal counts are ordered: by example id, or randomly with --seed.
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

pub fn run(args: OrderArgs) -> anyhow::Result<()> {
    if args.output_name.is_empty() || args.output_name.contains(['/', '\\']) {
        return Err(Error::Config(format!(
            "--output-name {:?}: expected a file name without directories",
            args.output_name
        ))
        .into());
    }
    let options = OrderOptions {
        dataset: args.dataset.name().into(),
        where_sql: args.where_sql.clone(),
        include_incomplete: args.include_incomplete,
        epochs: args.epochs,
        fidelity: args.fidelity.into(),
        tie_break: match args.tie_break {
            TieBreakArg::Id => TieBreak::ById,
            TieBreakArg::Random => TieBreak::Random { seed: args.seed },
        },
    };
    let catalog = Catalog::open(&args.input_dir)?;
    let report = compute_order(&catalog, &options).with_context(|| {
        format!("counting forgetting events under {}", args.input_dir.display())
    })?;
    for (run, reason) in &report.skipped {
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
    std::fs::create_dir_all(&args.output_dir).map_err(|e| Error::io(&args.output_dir, e))?;
    report.sorting.write(&args.output_dir, &args.output_name)?;
    let ordered = report.sorting.presented.iter().filter(|&&p| p).count();
    let unpresented = report.sorting.example_ids.len() - ordered;
    if unpresented > 0 {
        log::warn!(
            "{} no counted run presented (removed in every run) are ranked last, flagged presented = false",
            super::counted(unpresented, "example")
        );
    }
    println!(
        "unforgettable examples: {} of {ordered} ({:.1}%) across {}",
        report.unforgettable,
        100.0 * report.unforgettable as f64 / ordered.max(1) as f64,
        super::counted(report.sorting.runs.len(), "run")
    );
    let stem = args.output_dir.join(&args.output_name);
    log::info!("wrote {0}.parquet and {0}.csv", stem.display());
    Ok(())
}
