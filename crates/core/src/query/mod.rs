//! Reading a dataset root with polars: the tables as lazy frames, registered for SQL, and
//! the forgetting computations of [`forgetting`]. Reads only what `store` wrote, by way of
//! `store::layout` and `store::schema`; never links tch.

pub mod compare;
pub mod figures;
pub mod forgetting;
pub mod predicate;
pub mod scores;

use std::path::Path;

use polars::prelude::*;
use polars::sql::SQLContext;

use crate::error::{Error, Result};
use crate::store::layout::{Layout, Table, parse_epoch_dir};
use crate::store::parquet_row_count;
use crate::store::runs::{column, read_runs_row};
use crate::store::schema::{RunStatus, col, presentation_file_schema};
use arrow::array::{BooleanArray, StringArray, UInt32Array};

/// How polars runs a user's SQL ([`Catalog::run_sql`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryEngine {
    /// polars' streaming engine: scans, filters, joins and group-bys run morsel by morsel, so
    /// a query over every presentation need not hold them all. What it cannot stream (ordered
    /// window functions such as `LAG ... OVER`, `IN (subquery)`) runs in memory inside it.
    #[default]
    Streaming,
    /// polars' in-memory engine: each operation materializes its whole input.
    InMemory,
}

impl QueryEngine {
    fn polars(self) -> Engine {
        match self {
            QueryEngine::Streaming => Engine::Streaming,
            QueryEngine::InMemory => Engine::InMemory,
        }
    }
}

/// A dataset root opened for reading. Its tables show only what the `runs` rows declare
/// committed (the visibility rule, `docs/crash-safety.md`): epochs of a run after its
/// `epochs_completed`, which a crash between two commit steps can leave on disk until the run
/// is resumed, are hidden, and so are the files of run ids that have no `runs` row.
#[derive(Debug, Clone)]
pub struct Catalog {
    layout: Layout,
    hidden: Vec<Hidden>,
    /// The runs the `runs` rows declare, by id: the only ones whose per-run files are read.
    runs: Vec<String>,
}

/// A view that `fstream query` registers: SQL shipped in `queries/views/`, which users of
/// other engines create first.
#[derive(Debug, Clone, Copy)]
pub struct View {
    /// Its name in SQL.
    pub name: &'static str,
    /// The table it reads (it is registered when that table has files).
    pub reads: Table,
    /// Its defining statement.
    pub sql: &'static str,
}

/// The views registered for SQL.
pub const VIEWS: [View; 1] = [View {
    name: "forgetting_per_run",
    reads: Table::Dynamics,
    sql: include_str!("../../../../queries/views/forgetting_per_run.sql"),
}];

/// Files of one run that readers must not see.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hidden {
    run_id: String,
    /// Epochs after this one are hidden; `None`: the run has no `runs` row, all is hidden.
    after_epoch: Option<u32>,
}

impl Catalog {
    /// Opens the dataset root at `root`.
    ///
    /// # Errors
    /// [`Error::Config`] when `root` holds no runs (missing, empty, or not an fstream root).
    pub fn open(root: &Path) -> Result<Catalog> {
        let layout = Layout::new(root);
        if !has_files(&layout, Table::Runs) {
            return Err(Error::Config(format!(
                "{}: no fstream runs here (expected {}); pass the --output-dir of `fstream train`",
                root.display(),
                layout.table_glob(Table::Runs)
            )));
        }
        let (hidden, runs) = hidden_files(&layout)?;
        Ok(Catalog { layout, hidden, runs })
    }

    /// The root's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A lazy scan of `table`, or `None` when it has no files yet. Presentations get their
    /// hive columns `dataset`, `run_id`, `epoch` with pinned types (never guessed from paths).
    ///
    /// # Errors
    /// [`Error::Polars`] if the scan cannot be set up.
    pub fn scan(&self, table: Table) -> Result<Option<LazyFrame>> {
        if !has_files(&self.layout, table) {
            return Ok(None);
        }
        let hive_options = match table {
            Table::Presentations => HiveOptions {
                enabled: Some(true),
                hive_start_idx: 0,
                schema: Some(Arc::new(Schema::from_iter([
                    Field::new(col::DATASET.into(), DataType::String),
                    Field::new(col::RUN_ID.into(), DataType::String),
                    Field::new(col::EPOCH.into(), DataType::UInt32),
                ]))),
                try_parse_dates: false,
            },
            _ => HiveOptions::new_disabled(),
        };
        // Presentations files differ in their optional columns (`el2n`): read them all with
        // every column, null where a file lacks it.
        let (schema, allow_missing_columns) = match table {
            Table::Presentations => (Some(presentation_schema()?), true),
            _ => (None, false),
        };
        let args =
            ScanArgsParquet { hive_options, schema, allow_missing_columns, ..Default::default() };
        let frame = match table {
            Table::Presentations | Table::Runs => {
                let glob = self.layout.table_glob(table);
                LazyFrame::scan_parquet(PlRefPath::new(glob.as_str()), args)?
            }
            // Exactly the files of the declared runs: a stray copy under another name
            // (whose rows name a declared run) is never read.
            _ => {
                let files: Vec<PlRefPath> = self
                    .runs
                    .iter()
                    .map(|run_id| self.layout.run_file(table, run_id))
                    .filter(|path| path.is_file())
                    .map(|path| PlRefPath::new(path.display().to_string().as_str()))
                    .collect();
                if files.is_empty() {
                    return Ok(None);
                }
                let args = ScanArgsParquet { glob: false, ..args };
                LazyFrame::scan_parquet_files(files.into_iter().collect(), args)?
            }
        };
        Ok(Some(match self.uncommitted(table) {
            Some(uncommitted) => frame.filter(uncommitted.not()),
            None => frame,
        }))
    }

    /// The rows of `table` that the visibility rule hides, as a predicate (`None`: none, the
    /// usual case, which costs nothing). On hive columns, it prunes whole files.
    fn uncommitted(&self, table: Table) -> Option<Expr> {
        self.hidden
            .iter()
            .filter_map(|hidden| {
                let run = col(col::RUN_ID).eq(lit(hidden.run_id.as_str()));
                match (table, hidden.after_epoch) {
                    (Table::Runs, _) => None,
                    (_, None) => Some(run),
                    (Table::Examples, Some(_)) => None,
                    // A file one epoch ahead of the `runs` row: all of the run's rows.
                    (Table::Dynamics, Some(epoch)) => {
                        Some(run.and(col(col::EPOCHS).gt(lit(epoch))))
                    }
                    (_, Some(epoch)) => Some(run.and(col(col::EPOCH).gt(lit(epoch)))),
                }
            })
            .reduce(Expr::or)
    }

    /// An SQL context with every table that has files registered under its name.
    ///
    /// # Errors
    /// [`Error::Polars`] if a scan cannot be set up.
    pub fn sql_context(&self) -> Result<SQLContext> {
        let context = SQLContext::new();
        for table in Table::ALL {
            match self.scan(table)? {
                Some(frame) => context.register(table.name(), frame),
                // Not a warning: a query that reads the table fails saying so, and every other
                // command (`fstream runs` while the first epoch trains) has nothing to warn of.
                None => log::debug!(
                    "table {} has no files yet under {}",
                    table.name(),
                    self.layout.root().display()
                ),
            }
        }
        Ok(context)
    }

    /// Registers the [`VIEWS`] that `sql` names (and whose table has files) in `context`.
    /// Setting a view up reads its table's schema, so only the views a query uses are made.
    ///
    /// # Errors
    /// [`Error::Polars`] if a view cannot be set up.
    fn register_views(&self, context: &mut SQLContext, sql: &str) -> Result<()> {
        for view in VIEWS {
            if sql.contains(view.name) && has_files(&self.layout, view.reads) {
                let frame = context.execute(view.sql)?;
                context.register(view.name, frame);
            }
        }
        Ok(())
    }

    /// Runs one SQL statement of fstream's own (a command's query) over the tables.
    ///
    /// # Errors
    /// [`Error::Polars`] when it cannot be planned or run.
    pub fn execute(&self, sql: &str) -> Result<DataFrame> {
        Ok(self.sql_context()?.execute(sql)?.collect()?)
    }

    /// The dataset of the root's runs, when they are all of one (what `--dataset` defaults
    /// to).
    ///
    /// # Errors
    /// [`Error::Config`] listing the datasets when there are several.
    pub fn only_dataset(&self) -> Result<String> {
        let frame = self.execute(
            "SELECT DISTINCT dataset FROM runs WHERE dataset IS NOT NULL ORDER BY dataset",
        )?;
        let names: Vec<String> =
            frame.column(col::DATASET)?.str()?.iter().flatten().map(String::from).collect();
        match names.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(Error::Config(format!(
                "{} holds runs of {} datasets ({}): pass --dataset",
                self.layout.root().display(),
                names.len(),
                names.join(", ")
            ))),
        }
    }

    /// The columns of the `runs` table and their types (what `--where` may name).
    ///
    /// # Errors
    /// [`Error::Polars`] when the runs files cannot be read.
    pub fn runs_columns(&self) -> Result<Schema> {
        match self.scan(Table::Runs)? {
            Some(mut runs) => Ok(runs.collect_schema()?.as_ref().clone()),
            None => Ok(Schema::default()),
        }
    }

    /// Runs the SQL statement `sql` (read from `source`, named in errors) with `engine`.
    ///
    /// # Errors
    /// [`Error::Sql`] naming `source` when the statement is invalid or names unknown tables or
    /// columns; [`Error::Polars`] when reading the data fails.
    pub fn run_sql(&self, sql: &str, source: &Path, engine: QueryEngine) -> Result<DataFrame> {
        let keyword = first_keyword(sql);
        if !["SELECT", "WITH"].contains(&keyword.as_str()) {
            return Err(Error::format(
                source,
                format!(
                    "expected one SELECT or WITH statement, got {}",
                    if keyword.is_empty() { "nothing" } else { &keyword }
                ),
            ));
        }
        // Planning reads the files' schemas, so a damaged file can fail here already.
        let sql_error = |source_error: PolarsError| {
            if let Some(damaged) = self.unreadable_file() {
                return damaged;
            }
            match self.unregistered_table_in(&source_error.to_string()) {
                Some(table) => Error::Config(format!(
                    "{}: table {table} has no files yet (no epoch committed, or every run trained with --no-record)",
                    self.layout.root().display()
                )),
                None => Error::Sql { path: source.to_path_buf(), source: source_error },
            }
        };
        let mut context = self.sql_context()?;
        self.register_views(&mut context, sql).map_err(|e| match e {
            Error::Polars(e) => sql_error(e),
            other => other,
        })?;
        let frame = context.execute(sql.trim().trim_end_matches(';')).map_err(sql_error)?;
        let collected =
            frame.collect_with_engine(engine.polars()).map(|result| result.unwrap_single());
        collected.map_err(|e| match e {
            PolarsError::ColumnNotFound(_)
            | PolarsError::SchemaFieldNotFound(_)
            | PolarsError::SchemaMismatch(_)
            | PolarsError::InvalidOperation(_)
            | PolarsError::SQLSyntax(_)
            | PolarsError::SQLInterface(_) => sql_error(e),
            other => self.unreadable_file().unwrap_or(Error::Polars(other)),
        })
    }

    /// A table the engine's message says is missing (itself, or under a view) and that has no
    /// files under the root.
    fn unregistered_table_in(&self, message: &str) -> Option<&'static str> {
        let named = |name: &str| message.contains(&format!("'{name}'"));
        let views = VIEWS.iter().filter(|v| named(v.name)).map(|v| v.reads);
        Table::ALL
            .into_iter()
            .filter(|t| named(t.name()))
            .chain(views)
            .find(|t| !has_files(&self.layout, *t))
            .map(Table::name)
    }

    fn unreadable_file(&self) -> Option<Error> {
        first_unreadable_file(&self.layout)
    }
}

/// The columns of presentations files, as polars types.
///
/// # Errors
/// [`Error::Config`] for an Arrow type this mapping does not know (a bug caught by tests).
fn presentation_schema() -> Result<SchemaRef> {
    use arrow::datatypes::DataType as Arrow;
    let arrow_schema = presentation_file_schema();
    let fields = arrow_schema.fields().iter().map(|field| {
        let kind = match field.data_type() {
            Arrow::UInt16 => DataType::UInt16,
            Arrow::UInt32 => DataType::UInt32,
            Arrow::Float32 => DataType::Float32,
            Arrow::Boolean => DataType::Boolean,
            other => {
                return Err(Error::Config(format!("presentations column of type {other:?}")));
            }
        };
        Ok(Field::new(field.name().as_str().into(), kind))
    });
    Ok(Arc::new(fields.collect::<Result<Schema>>()?))
}

/// What the `runs` rows do not declare: epochs after `epochs_completed` of runs that are not
/// complete, and runs that have files but no `runs` row. A presentations file of a declared
/// epoch that is missing is an error: a query would silently leave its rows out. Each `runs`
/// file is read here first, with arrow (see [`read_runs_row`]), so that a damaged or foreign
/// one is named before an engine reads them all.
///
/// # Errors
/// [`Error::Damaged`] naming the first missing presentations file of a committed epoch, or a
/// `runs` file that is damaged, not one of fstream's, or holds another run's row.
fn hidden_files(layout: &Layout) -> Result<(Vec<Hidden>, Vec<String>)> {
    let mut files = Vec::new();
    collect_parquet_files(&layout.table_dir(Table::Runs), &mut files);
    files.sort();
    let mut hidden = Vec::new();
    let mut known = std::collections::HashSet::new();
    for path in files {
        let Some(run_id) = path.file_stem().and_then(|s| s.to_str()).map(String::from) else {
            continue;
        };
        let row = read_runs_row(&path, &run_id)?;
        let text = |name: &str| -> Result<String> {
            Ok(column::<StringArray>(&row, name, &path)?.value(0).to_string())
        };
        let completed = column::<UInt32Array>(&row, col::EPOCHS_COMPLETED, &path)?.value(0);
        if column::<BooleanArray>(&row, col::RECORD_PRESENTATIONS, &path)?.value(0) {
            let dataset = text(col::DATASET)?;
            for epoch in 1..=completed {
                let file = layout.presentations_file(&dataset, &run_id, epoch);
                if !file.is_file() {
                    return Err(Error::damaged(
                        &file,
                        format!(
                            "missing, but run {run_id} declares epoch {epoch} committed; `fstream verify` lists the damage"
                        ),
                    ));
                }
            }
        }
        // Epochs after the declared ones (a crash between two commit steps, or a stray copy)
        // are hidden, whatever the run's status.
        let dataset = text(col::DATASET)?;
        let run_dir = layout.run_presentations_dir(&dataset, &run_id);
        let later_epoch = std::fs::read_dir(&run_dir).into_iter().flatten().flatten().any(|e| {
            e.file_name().to_str().and_then(parse_epoch_dir).is_some_and(|e| e > completed)
        });
        if text(col::STATUS)? != RunStatus::Complete.name() || later_epoch {
            hidden.push(Hidden { run_id: run_id.clone(), after_epoch: Some(completed) });
        }
        known.insert(run_id);
    }
    // Partitions of runs without a `runs` row, whatever their names (`run_id=..` too).
    let presentations = layout.table_dir(Table::Presentations);
    for dataset_dir in std::fs::read_dir(&presentations).into_iter().flatten().flatten() {
        for entry in std::fs::read_dir(dataset_dir.path()).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(run_id) = name.strip_prefix("run_id=")
                && !known.contains(run_id)
                && !hidden.iter().any(|h| h.run_id == run_id)
            {
                hidden.push(Hidden { run_id: run_id.to_string(), after_epoch: None });
            }
        }
    }
    let mut runs: Vec<String> = known.into_iter().collect();
    runs.sort();
    Ok((hidden, runs))
}

/// The first committed file of the root that is not a complete Parquet file, as an error
/// naming it (what a failed read most often means: a file damaged after its commit).
fn first_unreadable_file(layout: &Layout) -> Option<Error> {
    let mut files = Vec::new();
    for table in Table::ALL {
        collect_parquet_files(&layout.table_dir(table), &mut files);
    }
    files.into_iter().find_map(|path| {
        parquet_row_count(&path).err().map(|reason| {
            Error::damaged(&path, format!("{reason}; `fstream verify` lists the damage"))
        })
    })
}

/// `text` as an SQL string literal (quotes doubled).
pub fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The first keyword of an SQL text, upper-cased, after comments and opening parentheses.
fn first_keyword(sql: &str) -> String {
    let mut rest = sql;
    loop {
        rest = rest.trim_start().trim_start_matches('(');
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(comment) = rest.strip_prefix("/*") {
            rest = comment.split_once("*/").map_or("", |(_, after)| after);
        } else {
            break;
        }
    }
    rest.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>().to_uppercase()
}

/// Every `*.parquet` file under `dir`.
fn collect_parquet_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_parquet_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
}

/// Whether `table` has at least one committed file.
fn has_files(layout: &Layout, table: Table) -> bool {
    fn any_parquet(dir: &Path, recursive: bool) -> bool {
        std::fs::read_dir(dir).into_iter().flatten().flatten().any(|entry| {
            let path = entry.path();
            if path.is_dir() {
                recursive && any_parquet(&path, true)
            } else {
                path.extension().is_some_and(|e| e == "parquet")
            }
        })
    }
    any_parquet(&layout.table_dir(table), table == Table::Presentations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_told_by_their_first_keyword() {
        assert_eq!(first_keyword("  -- a comment\n/* more */ (select 1)"), "SELECT");
        assert_eq!(first_keyword("with x as (select 1) select * from x"), "WITH");
        assert_eq!(first_keyword("COPY runs TO 'x.csv'"), "COPY");
        assert_eq!(first_keyword("-- only a comment"), "");
    }
}
