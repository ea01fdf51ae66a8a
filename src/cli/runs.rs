//! `fstream runs`: the runs of a root, their status and progress, and whether a process is
//! training them now.

use std::path::PathBuf;

use clap::Args;
use fstream::Error;
use fstream::query::Catalog;
use fstream::store::lock::lock_holder;
use std::io::Write;

use polars::prelude::{AnyValue, Column, DataFrame, NamedFrom, Series};

use super::query::{Format, write_frame};

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Dataset root written by `fstream train`.
    #[arg(long, alias = "input-dir", value_name = "DIR", default_value = "results")]
    root: PathBuf,
    /// SQL predicate over the runs table, e.g. "status <> 'complete'" or "seed <= 5".
    #[arg(long = "where", value_name = "PREDICATE")]
    where_sql: Option<String>,
    /// Output format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "table")]
    format: Format,
}

pub fn run(args: RunsArgs) -> anyhow::Result<()> {
    if args.format == Format::Parquet {
        return Err(Error::Config("--format parquet: use `fstream query` for files".into()).into());
    }
    let catalog = Catalog::open(&args.root)?;
    let predicate = fstream::query::check_predicate(args.where_sql.as_deref().unwrap_or("TRUE"))?;
    let sql = format!(
        "WITH selected AS (SELECT * FROM runs WHERE {predicate}), \
         last_epoch AS (SELECT run_id, epoch, test_acc FROM epochs) \
         SELECT s.run_id, s.dataset, s.seed, s.status, s.epochs_completed, s.epochs, \
         l.test_acc AS last_test_acc, s.error \
         FROM selected s LEFT JOIN last_epoch l \
         ON l.run_id = s.run_id AND l.epoch = s.epochs_completed \
         ORDER BY s.started_at, s.run_id"
    );
    let mut frame =
        catalog.execute(&sql).map_err(|e| Error::Config(format!("--where {predicate:?}: {e}")))?;
    let layout = catalog.layout();
    let ids = frame.column("run_id")?.str()?;
    let holders: Vec<Option<u32>> =
        ids.iter().map(|id| id.and_then(|id| lock_holder(layout, id))).collect();
    let status = frame.column("status")?.str()?;
    let state: Vec<String> = status
        .iter()
        .zip(&holders)
        .map(|(status, holder)| match (status.unwrap_or_default(), holder.is_some()) {
            ("running", true) => "training".to_string(),
            ("running", false) => "stopped (resume it)".to_string(),
            (other, _) => other.to_string(),
        })
        .collect();
    frame.with_column(Column::from(Series::new("training_pid".into(), holders)))?;
    frame.with_column(Column::new("state".into(), state))?;
    let order = [
        "run_id",
        "dataset",
        "seed",
        "state",
        "epochs_completed",
        "epochs",
        "last_test_acc",
        "training_pid",
        "error",
    ];
    let mut frame = frame.select(order)?;
    match args.format {
        Format::Table => write_aligned(&frame, std::io::stdout().lock()),
        format => write_frame(&mut frame, format, std::io::stdout().lock()),
    }
}

/// The frame as plain aligned columns with a header, every value whole (polars' table format
/// elides columns and wraps long run ids); nulls are blank.
fn write_aligned(frame: &DataFrame, mut out: impl Write) -> anyhow::Result<()> {
    let mut rows: Vec<Vec<String>> =
        vec![frame.get_column_names().iter().map(|name| name.to_string()).collect()];
    for i in 0..frame.height() {
        let row = frame.columns().iter().map(|column| match column.get(i) {
            Ok(AnyValue::Null) | Err(_) => String::new(),
            Ok(AnyValue::String(text)) => text.to_string(),
            Ok(AnyValue::Float64(value)) => format!("{value:.4}"),
            Ok(value) => value.to_string(),
        });
        rows.push(row.collect());
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|row| row[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let cells: Vec<String> =
            row.iter().zip(&widths).map(|(cell, &width)| format!("{cell:width$}")).collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    out.flush()?;
    Ok(())
}
