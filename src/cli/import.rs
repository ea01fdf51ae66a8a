//! `fstream import-reference`: the reference's `*_stats_dict.pkl` files as runs of a root.

use std::path::PathBuf;

use clap::Args;
use fstream::Error;
use fstream::data::DatasetKind;
use fstream::experiment::import::{import_run, read_reference_stats};
use fstream::experiment::plan::{DEFAULT_DATA_DIR, DataCache};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The reference's statistics pickles (`..._stats_dict.pkl`), one run each.
    #[arg(value_name = "PKL", required = true)]
    files: Vec<PathBuf>,
    /// Their dataset (default: the `dataset_...` part of the file names).
    #[arg(long, value_name = "NAME")]
    dataset: Option<DatasetKind>,
    /// Where the dataset's files are (for the labels and the dataset's size).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// The root to write the runs into.
    #[arg(long, alias = "output_dir", value_name = "DIR", default_value = "results")]
    output_dir: PathBuf,
}

/// Imports each file as one complete run; prints the new run ids.
pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let mut caches: Vec<(DatasetKind, DataCache)> = Vec::new();
    for file in &args.files {
        let stats = read_reference_stats(file)?;
        let named = stats.flags.get("dataset").map(|d| d.parse::<DatasetKind>());
        let dataset = match (args.dataset, named) {
            (Some(dataset), _) => dataset,
            (None, Some(Ok(dataset))) => dataset,
            (None, Some(Err(e))) => return Err(Error::format(file, e).into()),
            (None, None) => {
                return Err(Error::Config(format!(
                    "{}: no dataset_... in the file name; pass --dataset",
                    file.display()
                ))
                .into());
            }
        };
        if !caches.iter().any(|(d, _)| *d == dataset) {
            caches.push((dataset, DataCache::new(args.data_dir.clone(), dataset)));
        }
        let cache = &mut caches.iter_mut().find(|(d, _)| *d == dataset).expect("just added").1;
        let (data, _) = cache.get(0)?;
        let run_id = import_run(&args.output_dir, file, &stats, &data, &cache.absolute_dir())?;
        log::info!(
            "{}: run {run_id}, {} examples over {} epochs",
            file.display(),
            stats.examples.len(),
            stats.examples.values().map(Vec::len).max().unwrap_or(0)
        );
        println!("{run_id}");
    }
    Ok(())
}
