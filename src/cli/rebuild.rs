//! `fstream rebuild`: writes the `dynamics` table of runs from their presentations (roots
//! written before the table existed, or a file `fstream verify` reports damaged).

use std::path::PathBuf;

use clap::Args;
use fstream::record::RunId;
use fstream::store::dynamics::{Rebuilt, rebuild_run};
use fstream::store::layout::Layout;
use fstream::store::runs::{read_all_runs, read_run};

use super::counted;

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// Dataset root written by `fstream train`.
    #[arg(long, alias = "input-dir", value_name = "DIR", default_value = "results")]
    root: PathBuf,
    /// Only these runs (default: every run of the root).
    #[arg(long = "run", value_name = "RUN_ID", value_parser = RunId::parse)]
    runs: Vec<RunId>,
}

/// Rebuilds each run's dynamics file; prints the id of every run rebuilt.
pub fn run(args: RebuildArgs) -> anyhow::Result<()> {
    let layout = Layout::new(&args.root);
    let runs = match args.runs.is_empty() {
        true => read_all_runs(&layout)?,
        false => args.runs.iter().map(|id| read_run(&layout, id)).collect::<Result<_, _>>()?,
    };
    if runs.is_empty() {
        return Err(fstream::Error::Config(format!(
            "{}: no fstream runs here; pass the --output-dir of `fstream train`",
            args.root.display()
        ))
        .into());
    }
    let mut written = 0;
    for run in &runs {
        let run_id = &run.info.run_id;
        match rebuild_run(&layout, run)? {
            Rebuilt::Written { epochs, rows } => {
                written += 1;
                log::info!(
                    "run {run_id}: dynamics over {} ({} rows)",
                    counted(epochs as usize, "epoch"),
                    rows
                );
                println!("{run_id}");
            }
            Rebuilt::NothingRecorded => {
                log::info!("run {run_id}: skipped, no recorded epoch");
            }
            Rebuilt::Live => log::warn!("run {run_id}: skipped, a process is training it"),
        }
    }
    log::info!("rebuilt {} of {}", counted(written, "run"), runs.len());
    Ok(())
}
