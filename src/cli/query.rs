//! `fstream query`: runs an SQL file over a dataset root and prints or writes the result.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::Args;
use fstream::Error;
use fstream::query::{Catalog, QueryEngine};
use fstream::store::StagedFiles;
use fstream::store::output::{Input, check_output};
use polars::prelude::{
    AnyValue, CsvWriter, DataFrame, JsonFormat, JsonWriter, ParquetWriter, SerWriter,
};

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
    /// polars engine: streaming (scans, joins and group-bys morsel by morsel; what cannot
    /// stream, such as LAG ... OVER, runs in memory inside it) or in-memory.
    #[arg(long, value_enum, value_name = "ENGINE", default_value = "streaming")]
    engine: EngineArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EngineArg {
    /// polars' streaming engine.
    Streaming,
    /// polars' in-memory engine.
    InMemory,
}

impl From<EngineArg> for QueryEngine {
    fn from(arg: EngineArg) -> Self {
        match arg {
            EngineArg::Streaming => QueryEngine::Streaming,
            EngineArg::InMemory => QueryEngine::InMemory,
        }
    }
}

/// The formats of commands that print (no file output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TextFormat {
    /// Aligned text table.
    Table,
    /// CSV with a header.
    Csv,
    /// JSON array of row objects.
    Json,
}

impl From<TextFormat> for Format {
    fn from(format: TextFormat) -> Self {
        match format {
            TextFormat::Table => Format::Table,
            TextFormat::Csv => Format::Csv,
            TextFormat::Json => Format::Json,
        }
    }
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
    if let Some(path) = &args.output {
        check_output("--output", path, &[Input::File(&args.sql_file), Input::Root(&args.root)])?;
    }
    let sql = fstream::input::read_text(&args.sql_file)?;
    let catalog = Catalog::open(&args.root)?;
    let mut frame = catalog.run_sql(&sql, &args.sql_file, args.engine.into()).map_err(|e| {
        // An engine failure that names no file: say which query failed.
        let named = !matches!(e, Error::Polars(_));
        let error = anyhow::Error::new(e);
        if named { error } else { error.context(args.sql_file.display().to_string()) }
    })?;
    match &args.output {
        Some(path) => {
            let mut files = StagedFiles::default();
            files.stage(path, |file| {
                write_frame(&mut frame, args.format, BufWriter::new(file))
                    .map_err(|e| super::output_error(path, &e))
            })?;
            Ok(files.commit()?)
        }
        None => write_frame(&mut frame, args.format, std::io::stdout().lock()),
    }
}

/// Rows the table format shows; the others are counted in a last line.
const TABLE_ROWS: usize = 100;

pub fn write_frame(
    frame: &mut DataFrame,
    format: Format,
    mut out: impl Write,
) -> anyhow::Result<()> {
    match format {
        Format::Table => write_aligned(frame, TABLE_ROWS, &mut out)?,
        Format::Csv => CsvWriter::new(&mut out).include_header(true).finish(frame)?,
        Format::Json => {
            JsonWriter::new(&mut out).with_json_format(JsonFormat::Json).finish(frame)?;
            writeln!(out)?;
        }
        Format::Parquet => {
            ParquetWriter::new(&mut out).finish(frame)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The frame as plain aligned columns with a header, every column and value whole (polars'
/// table format elides columns and wraps long values); nulls are blank. At most `max_rows`
/// rows, then a line that says how many were left out.
pub fn write_aligned(
    frame: &DataFrame,
    max_rows: usize,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let mut rows: Vec<Vec<String>> =
        vec![frame.get_column_names().iter().map(|name| name.to_string()).collect()];
    for i in 0..frame.height().min(max_rows) {
        let row = frame.columns().iter().map(|column| match column.get(i) {
            Ok(AnyValue::Null) | Err(_) => String::new(),
            Ok(AnyValue::Float64(value)) => short_float(value),
            Ok(AnyValue::Float32(value)) => short_float(f64::from(value)),
            Ok(value) => value.get_str().map_or_else(|| value.to_string(), String::from),
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
    if frame.height() > max_rows {
        let more = super::counted(frame.height() - max_rows, "more row");
        writeln!(out, "… {more} (--format csv or json shows every row)")?;
    }
    out.flush()?;
    Ok(())
}

/// Four decimals, or four significant digits in scientific notation for tiny and huge values
/// (a learning rate of 1e-5 must not print as 0.0000).
fn short_float(value: f64) -> String {
    if value == 0.0 || (1e-3..1e6).contains(&value.abs()) || !value.is_finite() {
        format!("{value:.4}")
    } else {
        format!("{value:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::Column;

    #[test]
    fn floats_stay_readable_at_every_scale() {
        assert_eq!(short_float(0.86491), "0.8649");
        assert_eq!(short_float(1e-5), "1.000e-5");
        assert_eq!(short_float(0.0), "0.0000");
        assert_eq!(short_float(2.5e7), "2.500e7");
    }

    #[test]
    fn tables_show_every_column_and_say_how_many_rows_were_left_out() {
        let mut frame =
            polars::df!("run_id" => ["a-long-run-id", "b"], "lr" => [0.1, 1e-5]).unwrap();
        // A one-value (scalar) column gives owned strings: no quotes either.
        let x = polars::prelude::Scalar::from(polars::prelude::PlSmallStr::from("x"));
        frame.with_column(Column::new_scalar("one".into(), x, 2)).unwrap();
        let mut out = Vec::new();
        write_aligned(&frame, 1, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "run_id         lr      one\na-long-run-id  0.1000  x\n… 1 more row (--format csv or json shows every row)\n"
        );
    }
}
