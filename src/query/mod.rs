//! Reading a dataset root with polars: the four tables as lazy frames, registered for SQL, and
//! the forgetting computations of [`forgetting`]. Reads only what `store` wrote, by way of
//! `store::layout` and `store::schema`; never links tch.

pub mod forgetting;

use std::path::Path;

use polars::prelude::*;
use polars::sql::SQLContext;

use crate::error::{Error, Result};
use crate::store::layout::{Layout, Table};
use crate::store::schema::col;

/// A dataset root opened for reading.
#[derive(Debug, Clone)]
pub struct Catalog {
    layout: Layout,
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
        Ok(Catalog { layout })
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
        let args = ScanArgsParquet { hive_options, ..Default::default() };
        let glob = self.layout.table_glob(table);
        Ok(Some(LazyFrame::scan_parquet(PlRefPath::new(glob.as_str()), args)?))
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
                None => log::warn!(
                    "table {} has no files yet under {}",
                    table.name(),
                    self.layout.root().display()
                ),
            }
        }
        Ok(context)
    }

    /// Runs the SQL statement `sql` (read from `source`, named in errors).
    ///
    /// # Errors
    /// [`Error::Sql`] naming `source` when the statement is invalid or names unknown tables or
    /// columns; [`Error::Polars`] when reading the data fails.
    pub fn run_sql(&self, sql: &str, source: &Path) -> Result<DataFrame> {
        let sql_error =
            |source_error| Error::Sql { path: source.to_path_buf(), source: source_error };
        let mut context = self.sql_context()?;
        let frame = context.execute(sql.trim().trim_end_matches(';')).map_err(sql_error)?;
        frame.collect().map_err(|e| match e {
            PolarsError::ColumnNotFound(_)
            | PolarsError::SchemaFieldNotFound(_)
            | PolarsError::SchemaMismatch(_)
            | PolarsError::InvalidOperation(_)
            | PolarsError::SQLSyntax(_)
            | PolarsError::SQLInterface(_) => sql_error(e),
            other => Error::Polars(other),
        })
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
