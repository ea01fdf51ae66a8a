//! `fstream order`: forgetting counts across runs, written as a sorting file (the reference's
//! `order_examples_by_forgetting.py`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use fstream::Error;
use fstream::query::Catalog;
use fstream::query::forgetting::compute_order;
use fstream::store::output::{Input, check_output};
use fstream::store::sorting::SortingFile;

use super::FidelityArg;
use super::select::{SelectArgs, warn_skipped, warn_unpresented};

#[derive(Debug, Args)]
pub struct OrderArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// Directory for the sorting file.
    #[arg(long, alias = "output_dir", value_name = "DIR", default_value = ".")]
    output_dir: PathBuf,
    /// Sorting file name: writes DIR/NAME.parquet and DIR/NAME.csv.
    #[arg(long, alias = "output_name", value_name = "NAME", default_value = "forgetting_order")]
    output_name: String,
    /// faithful: a never-learned example counts --epochs (default 200) instead of its number
    /// of presentations, as the reference did (docs/semantics.md, bug 4).
    #[arg(long, value_enum, value_name = "MODE", default_value = "corrected")]
    fidelity: FidelityArg,
}

pub fn run(args: OrderArgs) -> anyhow::Result<()> {
    if args.output_name.is_empty() || args.output_name.contains(['/', '\\']) {
        return Err(Error::Config(format!(
            "--output-name {:?}: expected a file name without directories",
            args.output_name
        ))
        .into());
    }
    for path in SortingFile::paths(&args.output_dir, &args.output_name) {
        check_output("--output-dir/--output-name", &path, &[Input::Root(&args.select.input_dir)])?;
    }
    let input_dir = &args.select.input_dir;
    let catalog = Catalog::open(input_dir)?;
    let options = args.select.options(&catalog, args.fidelity.into())?;
    let report = compute_order(&catalog, &options)
        .with_context(|| format!("counting forgetting events under {}", input_dir.display()))?;
    warn_skipped(&report.skipped);
    report.sorting.write(&args.output_dir, &args.output_name)?;
    warn_unpresented(&report.sorting.presented);
    let ordered = report.sorting.presented.iter().filter(|&&p| p).count();
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
