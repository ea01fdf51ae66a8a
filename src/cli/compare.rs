//! `fstream compare`: how well two rankings agree (two sorting or score files), or how stable
//! each run's forgetting counts are against the other runs' (`--runs`).

use std::path::PathBuf;

use clap::Args;
use fstream::Error;
use fstream::data::DatasetKind;
use fstream::query::Catalog;
use fstream::query::compare::{Comparison, compare, compare_runs, paired_values};
use fstream::query::forgetting::OrderOptions;
use fstream::store::sorting::{SortingFile, warn_unfingerprinted};
use polars::prelude::{Column, DataFrame};

use super::query::{TextFormat, write_frame};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Two sorting or score files (`fstream order`, `fstream scores`).
    #[arg(value_name = "FILE", num_args = 2, required_unless_present = "runs")]
    files: Vec<PathBuf>,
    /// Compare each run's forgetting counts with the sum of the other runs' instead.
    #[arg(long, conflicts_with = "files")]
    runs: bool,
    /// --runs: the dataset root.
    #[arg(long, visible_alias = "root", value_name = "DIR", default_value = "results")]
    input_dir: PathBuf,
    /// --runs: the dataset whose runs are compared [default: the root's only dataset].
    #[arg(long, value_name = "NAME")]
    dataset: Option<DatasetKind>,
    /// --runs: SQL predicate over the runs table selecting the runs.
    #[arg(long = "where", value_name = "PREDICATE")]
    where_sql: Option<String>,
    /// --runs: use only the first N epochs of each run.
    #[arg(long, value_name = "N")]
    epochs: Option<u32>,
    /// How many lowest and highest examples the overlaps take.
    #[arg(long, value_name = "K", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    k: u64,
    /// Output format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "table")]
    format: TextFormat,
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let rows: Vec<(String, String, Comparison)> = match args.files.as_slice() {
        _ if args.runs => {
            let catalog = Catalog::open(&args.input_dir)?;
            let dataset = match args.dataset {
                Some(dataset) => dataset.name().to_string(),
                None => catalog.only_dataset()?,
            };
            let options = OrderOptions {
                dataset,
                where_sql: args.where_sql.clone(),
                epochs: args.epochs,
                ..OrderOptions::default()
            };
            compare_runs(&catalog, &options, args.k as usize)?
                .into_iter()
                .map(|(run, comparison)| (run, "the other runs".to_string(), comparison))
                .collect()
        }
        [a, b] => {
            let (fa, fb) = (SortingFile::read(a)?, SortingFile::read(b)?);
            for (file, path) in [(&fa, a), (&fb, b)] {
                if file.data_sha256.is_none() {
                    warn_unfingerprinted(path);
                }
            }
            let (va, vb) = paired_values(&fa, &fb)?;
            let name = |p: &PathBuf| p.display().to_string();
            vec![(name(a), name(b), compare(&va, &vb, args.k as usize))]
        }
        _ => {
            return Err(Error::Config("expected two files, or --runs (see --help)".into()).into());
        }
    };
    let float = |f: fn(&Comparison) -> f64| rows.iter().map(|r| f(&r.2)).collect::<Vec<f64>>();
    let mut frame = DataFrame::new_infer_height(vec![
        Column::new("a".into(), rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>()),
        Column::new("b".into(), rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>()),
        Column::new(
            "examples".into(),
            rows.iter().map(|r| r.2.examples as u64).collect::<Vec<_>>(),
        ),
        Column::new("pearson".into(), float(|c| c.pearson)),
        Column::new("spearman".into(), float(|c| c.spearman)),
        Column::new("k".into(), rows.iter().map(|r| r.2.k as u64).collect::<Vec<_>>()),
        Column::new("lowest_k_overlap".into(), float(|c| c.lowest_overlap)),
        Column::new("highest_k_overlap".into(), float(|c| c.highest_overlap)),
        Column::new("zero_jaccard".into(), float(|c| c.zero_jaccard)),
    ])?;
    write_frame(&mut frame, args.format.into(), std::io::stdout().lock())
}
