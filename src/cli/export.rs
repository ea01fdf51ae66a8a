//! `fstream export`: a sorting or score file in another tool's format.

use std::path::PathBuf;

use clap::Args;
use fstream::store::export::{write_npy, write_reference_pickle};
use fstream::store::output::{Input, check_output};
use fstream::store::sorting::SortingFile;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A sorting file (`fstream order`) or score file (`fstream scores`).
    #[arg(value_name = "FILE.parquet")]
    file: PathBuf,
    /// reference-pickle: `{'indices': ..., 'forgetting counts': ...}` by rank, which the
    /// reference's run_mnist.py / run_cifar.py take as --sorting_file; npy: one float64 per
    /// original example index (NaN: not presented).
    #[arg(long, value_enum, value_name = "FORMAT")]
    to: ExportFormat,
    /// The file to write (default: FILE with the format's extension, .pkl or .npy).
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExportFormat {
    /// The reference's sorting pickle.
    ReferencePickle,
    /// A NumPy vector indexed by example id.
    Npy,
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let extension = match args.to {
        ExportFormat::ReferencePickle => "pkl",
        ExportFormat::Npy => "npy",
    };
    let output = args.output.unwrap_or_else(|| args.file.with_extension(extension));
    check_output("--output", &output, &[Input::File(&args.file)])?;
    let file = SortingFile::read(&args.file)?;
    let bytes = match args.to {
        ExportFormat::ReferencePickle => write_reference_pickle(&file, &output)?,
        ExportFormat::Npy => write_npy(&file, &output)?,
    };
    log::info!("wrote {} ({bytes} bytes)", output.display());
    println!("{}", output.display());
    Ok(())
}
