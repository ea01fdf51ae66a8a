//! `fstream query`: runs an SQL file over a dataset root and prints or writes the result.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::Args;
use fstream::Error;
use fstream::query::Catalog;
use polars::prelude::{CsvWriter, DataFrame, JsonFormat, JsonWriter, ParquetWriter, SerWriter};

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// SQL file (one statement) over the tables presentations, epochs, examples, runs.
    #[arg(value_name = "FILE")]
    sql_file: PathBuf,
    /// Dataset root written by `fstream train`.
    #[arg(long, alias = "input-dir", value_name = "DIR", default_value = "results")]
    root: PathBuf,
    /// Output format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "table")]
    format: Format,
    /// Write the result to this file instead of stdout (required for parquet).
    #[arg(long, short, value_name = "PATH")]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text table.
    Table,
    /// CSV with a header.
    Csv,
    /// JSON array of row objects.
    Json,
    /// Parquet (needs --output).
    Parquet,
}

pub fn run(args: QueryArgs) -> anyhow::Result<()> {
    if args.format == Format::Parquet && args.output.is_none() {
        return Err(Error::Config("--format parquet needs --output PATH".into()).into());
    }
    let sql = std::fs::read_to_string(&args.sql_file)
        .map_err(|source| Error::Input { path: args.sql_file.clone(), source })?;
    let catalog = Catalog::open(&args.root)?;
    let mut frame = catalog.run_sql(&sql, &args.sql_file)?;
    match &args.output {
        Some(path) => {
            let file = File::create(path).map_err(|e| Error::io(path, e))?;
            write_frame(&mut frame, args.format, BufWriter::new(file))
                .map_err(|e| anyhow::anyhow!(e).context(format!("writing {}", path.display())))
        }
        None => write_frame(&mut frame, args.format, std::io::stdout().lock()),
    }
}

pub fn write_frame(
    frame: &mut DataFrame,
    format: Format,
    mut out: impl Write,
) -> anyhow::Result<()> {
    match format {
        // polars shortens long tables (POLARS_FMT_MAX_ROWS sets how far); csv shows every row.
        Format::Table => writeln!(out, "{frame}")?,
        Format::Csv => CsvWriter::new(&mut out).include_header(true).finish(frame)?,
        Format::Json => {
            JsonWriter::new(&mut out).with_json_format(JsonFormat::Json).finish(frame)?
        }
        Format::Parquet => {
            ParquetWriter::new(&mut out).finish(frame)?;
        }
    }
    out.flush()?;
    Ok(())
}
