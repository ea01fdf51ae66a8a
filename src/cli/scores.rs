//! `fstream scores`: a per-example score from the runs' dynamics, written in the sorting-file
//! format so that `fstream train --sorting-file` removes examples by it.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use fstream::Error;
use fstream::fidelity::Fidelity;
use fstream::query::Catalog;
use fstream::query::scores::{NeverLearned, Score, ScoreOptions, compute_scores};
use fstream::store::output::{Input, check_output};
use fstream::store::sorting::SortingFile;

use super::select::{SelectArgs, warn_skipped, warn_unpresented};

#[derive(Debug, Args)]
pub struct ScoresArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// The score: forgetting, first_learned, learned_at, aum, confidence, variability,
    /// correctness (formulas in schemas/dynamics.md), or el2n (runs trained with --record
    /// el2n; needs --epoch).
    #[arg(long, value_name = "SCORE")]
    score: Score,
    /// The epoch whose EL2N is scored, averaged over the runs (--score el2n).
    #[arg(long, value_name = "E")]
    epoch: Option<u32>,
    /// The value of an example never learned in a run (forgetting, first_learned,
    /// learned_at): presentations (the reference), epochs:N, zero, infinity, or a number.
    #[arg(long, value_name = "RULE", default_value = "presentations")]
    never_learned: NeverLearned,
    /// Rank the highest scores first (removal then takes them first).
    #[arg(long)]
    descending: bool,
    /// The score file (`.parquet`; a `.csv` with the same rows is written beside it).
    #[arg(long, value_name = "FILE.parquet")]
    output: PathBuf,
}

pub fn run(args: ScoresArgs) -> anyhow::Result<()> {
    let (Some(stem), Some(dir)) = (
        args.output.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".parquet")),
        args.output.parent(),
    ) else {
        return Err(Error::Config(format!(
            "--output {}: expected a file name ending in .parquet",
            args.output.display()
        ))
        .into());
    };
    let dir = if dir.as_os_str().is_empty() { std::path::Path::new(".") } else { dir };
    for path in SortingFile::paths(dir, stem) {
        check_output("--output", &path, &[Input::Root(&args.select.input_dir)])?;
    }
    if args.never_learned != NeverLearned::default() && !args.score.has_never_learned() {
        log::warn!("--never-learned does not change {}: it has no never-learned case", args.score);
    }
    let input_dir = &args.select.input_dir;
    let catalog = Catalog::open(input_dir)?;
    let options = ScoreOptions {
        selection: args.select.options(&catalog, Fidelity::Corrected)?,
        score: args.score,
        never_learned: args.never_learned,
        descending: args.descending,
        epoch: args.epoch,
    };
    let report = compute_scores(&catalog, &options)
        .with_context(|| format!("computing {} under {}", args.score, input_dir.display()))?;
    warn_skipped(&report.skipped);
    report.sorting.write(dir, stem)?;
    warn_unpresented(&report.sorting.presented);
    println!(
        "{} of {} examples over {}",
        args.score,
        report.sorting.presented.iter().filter(|&&p| p).count(),
        super::counted(report.sorting.runs.len(), "run")
    );
    log::info!("wrote {0}.parquet and {0}.csv", dir.join(stem).display());
    Ok(())
}
