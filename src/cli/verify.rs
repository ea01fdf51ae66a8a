//! `fstream verify` (check a root against its `runs` rows) and `fstream rm` (delete runs).

use std::path::PathBuf;

use clap::Args;
use fstream::Error;
use fstream::record::RunId;
use fstream::store::layout::Layout;
use fstream::store::verify::{Depth, Finding, remove_orphans, remove_runs, verify};

use super::counted;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Dataset root written by `fstream train`.
    #[arg(long, alias = "input-dir", value_name = "DIR", default_value = "results")]
    root: PathBuf,
    /// Delete the orphans found (files no reader sees and nothing needs).
    #[arg(long)]
    remove_orphans: bool,
    /// Check structure only (footers, row counts), not each file's content checksum.
    #[arg(long)]
    quick: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Runs to delete.
    #[arg(value_name = "RUN_ID", required = true, value_parser = RunId::parse)]
    run_ids: Vec<RunId>,
    /// Dataset root written by `fstream train`.
    #[arg(long, alias = "input-dir", value_name = "DIR", default_value = "results")]
    root: PathBuf,
}

/// Prints one line per finding on stdout and a summary on stderr; fails when there is damage.
pub fn run_verify(args: VerifyArgs) -> anyhow::Result<()> {
    let layout = Layout::new(&args.root);
    if !layout.table_dir(fstream::store::layout::Table::Runs).is_dir() {
        return Err(Error::Config(format!(
            "{}: no fstream runs here; pass the --output-dir of `fstream train`",
            args.root.display()
        ))
        .into());
    }
    let depth = if args.quick { Depth::Quick } else { Depth::Full };
    let report = verify(&layout, depth)?;
    for finding in &report.findings {
        let (kind, path, reason) = match finding {
            Finding::Damage { path, reason } => ("damage", path, reason),
            Finding::Orphan { path, reason, .. } => ("orphan", path, reason),
        };
        println!("{kind}\t{}\t{reason}", path.display());
    }
    let orphans: Vec<_> = report.orphans().collect();
    if args.remove_orphans {
        let removed = remove_orphans(&layout, &report)?;
        if removed < orphans.len() {
            log::warn!(
                "{} orphans kept: their runs were started meanwhile",
                orphans.len() - removed
            );
        }
    }
    log::info!(
        "{} and {} checked ({} skipped: a process is training them); {} damaged, {}{}",
        counted(report.runs_checked, "run"),
        counted(report.files_checked, "file"),
        counted(report.runs_live, "run"),
        report.damaged(),
        counted(orphans.len(), "orphan"),
        match (orphans.is_empty(), args.remove_orphans) {
            (true, _) => "",
            (false, true) => " (removed)",
            (false, false) => " (--remove-orphans removes them)",
        }
    );
    if report.damaged() > 0 {
        return Err(anyhow::anyhow!(
            "{}: {} (listed on stdout)",
            args.root.display(),
            counted(report.damaged(), "damaged file")
        ));
    }
    Ok(())
}

/// Deletes each run, refusing runs a process holds.
pub fn run_rm(args: RmArgs) -> anyhow::Result<()> {
    let layout = Layout::new(&args.root);
    for (run_id, removed) in remove_runs(&layout, &args.run_ids)? {
        log::info!("removed run {run_id} ({} files and directories)", removed.len());
        println!("{run_id}");
    }
    Ok(())
}
