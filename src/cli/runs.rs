//! `fstream runs`: the runs of a root, their status and progress, and whether a process is
//! training them now.

use std::path::PathBuf;

use clap::Args;
use fstream::Error;
use fstream::query::Catalog;
use fstream::query::predicate::RunsPredicate;
use fstream::store::layout::Table;
use fstream::store::lock::lock_holder;
use polars::prelude::{Column, NamedFrom, Series};

use super::query::{TextFormat, write_aligned, write_frame};

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
    format: TextFormat,
}

pub fn run(args: RunsArgs) -> anyhow::Result<()> {
    let catalog = Catalog::open(&args.root)?;
    let predicate = match args.where_sql.as_deref() {
        Some(text) => RunsPredicate::parse(text, &catalog.runs_columns()?)?.to_sql(""),
        None => "TRUE".to_string(),
    };
    // Before any run commits an epoch there is no epochs table to join.
    let (test_acc, join) = match catalog.scan(Table::Epochs)? {
        Some(_) => (
            "l.test_acc",
            "LEFT JOIN (SELECT run_id, epoch, test_acc FROM epochs) l \
             ON l.run_id = s.run_id AND l.epoch = s.epochs_completed",
        ),
        None => ("CAST(NULL AS DOUBLE)", ""),
    };
    let sql = format!(
        "WITH selected AS (SELECT * FROM runs WHERE {predicate}) \
         SELECT s.run_id, s.dataset, s.seed, s.status, s.epochs_completed, s.epochs, \
         {test_acc} AS last_test_acc, s.error FROM selected s {join} \
         ORDER BY s.started_at, s.run_id"
    );
    let mut frame = catalog.execute(&sql).map_err(|e| {
        let text = args.where_sql.as_deref().unwrap_or_default();
        Error::Config(format!("--where {text:?}: {e}"))
    })?;
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
        TextFormat::Table => write_aligned(&frame, usize::MAX, std::io::stdout().lock()),
        format => write_frame(&mut frame, format.into(), std::io::stdout().lock()),
    }
}
