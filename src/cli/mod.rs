//! The command line: clap definitions of the subcommands, each in its own file, converted into
//! library configurations and dispatched. Library code never sees a clap type.

mod compare;
mod export;
mod import;
mod logger;
mod order;
mod plot;
mod progress;
mod query;
mod rebuild;
mod report;
mod runs;
mod scores;
mod select;
mod signals;
mod sweep;
mod train;
mod verify;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use fstream::fidelity::Fidelity;

/// Exit codes, shown at the end of `--help`.
const EXIT_CODES: &str = "Exit codes: 0 success; 1 runtime failure (I/O, corrupt data, training or \
query failure); 2 usage or input error (bad flags, bad input files, bad SQL); 130 interrupted \
by Ctrl-C, 143 by SIGTERM (the run can be resumed).";

/// Record and analyse example forgetting during neural network training.
#[derive(Debug, Parser)]
#[command(name = "fstream", version, help_expected = true, max_term_width = 100, args_override_self = true, after_help = EXIT_CODES)]
pub struct Cli {
    /// More log output on stderr (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only warnings and errors on stderr, no progress bars.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train one or more runs, recording every presentation of every example.
    Train(Box<train::TrainArgs>),
    /// Count forgetting events across runs and write the sorting file.
    Order(order::OrderArgs),
    /// Score every example (forgetting, AUM, cartography, first learned) into a sorting file.
    Scores(scores::ScoresArgs),
    /// Compare two rankings, or each run's counts with the other runs' (correlations, overlaps).
    Compare(compare::CompareArgs),
    /// Write a sorting or score file as the reference's pickle or a NumPy .npy vector.
    Export(export::ExportArgs),
    /// Import the reference's *_stats_dict.pkl files as complete runs of a root.
    ImportReference(import::ImportArgs),
    /// Draw a figure (forgetting histogram, examples, training curves, data map) as PNG or SVG.
    Plot(plot::PlotArgs),
    /// Write a static HTML report of a root: every figure that applies, the runs, the CSVs.
    Report(report::ReportArgs),
    /// Run an SQL file over the tables presentations, dynamics, epochs, examples and runs.
    Query(query::QueryArgs),
    /// List the runs of a root: status, progress, last test accuracy, live process.
    Runs(runs::RunsArgs),
    /// Check every file of a root against its runs rows; exit 1 on damage.
    Verify(verify::VerifyArgs),
    /// Delete runs and all their files (refused while a process trains them).
    Rm(verify::RmArgs),
    /// Build the dynamics table of runs from their presentations (older roots).
    Rebuild(rebuild::RebuildArgs),
    /// Run the paper's experiments from a TOML spec, here or on Slurm, and follow them.
    Sweep(sweep::SweepArgs),
}

/// Corrected or faithful semantics where the reference has a bug (docs/semantics.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FidelityArg {
    /// fstream's corrected behaviour (default).
    Corrected,
    /// Reproduce the reference's behaviour, bugs included.
    Faithful,
}

impl From<FidelityArg> for Fidelity {
    fn from(arg: FidelityArg) -> Self {
        match arg {
            FidelityArg::Corrected => Fidelity::Corrected,
            FidelityArg::Faithful => Fidelity::Faithful,
        }
    }
}

/// clap's message as one line (its first paragraph, without the `error: ` prefix and the usage
/// block), exit code 2.
fn usage_error(error: &clap::Error) -> fstream::Error {
    let rendered = error.to_string();
    let paragraph: Vec<&str> =
        rendered.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
    let message = paragraph.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    fstream::Error::Config(format!("{message} (see --help)"))
}

/// The ids of the flags of `subcommand` given on the command line (not defaults, and not the
/// argument groups clap's derive adds).
fn given_flags(matches: &ArgMatches, subcommand: &str) -> Vec<String> {
    let (Some(matches), Some(command)) = (
        matches.subcommand_matches(subcommand),
        Cli::command().find_subcommand(subcommand).cloned(),
    ) else {
        return Vec::new();
    };
    command
        .get_arguments()
        .map(|arg| arg.get_id().as_str())
        .filter(|id| matches.value_source(id) == Some(ValueSource::CommandLine))
        .map(String::from)
        .collect()
}

/// The exit code of a training run stopped by a signal (128 + the signal, as a shell
/// reports it), if one was.
pub fn interrupted_exit_code() -> Option<u8> {
    signals::stop_signal().and_then(|signal| u8::try_from(128 + signal).ok())
}

/// `fstream --version`: fstream's version, the libtorch it was built against, and the
/// directory of the libtorch this process loaded (read from `/proc/self/maps`).
fn version_text() -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let loaded = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.ends_with("/libtorch_cpu.so"))
        .and_then(|path| std::path::Path::new(path).parent())
        .map_or("an unknown directory".to_string(), |dir| dir.display().to_string());
    format!("{} (libtorch {} from {loaded})", env!("CARGO_PKG_VERSION"), fstream::LIBTORCH_VERSION)
}

/// `n` and `noun`, plural unless `n` is 1 ("1 epoch", "3 epochs").
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// Parses the command line and runs the chosen subcommand.
///
/// # Errors
/// Whatever the subcommand fails with; `main` prints it and picks the exit code.
pub fn run() -> anyhow::Result<()> {
    // clap takes a &'static str; the text is built once per process.
    let version: &'static str = Box::leak(version_text().into_boxed_str());
    let parsed = Cli::command()
        .version(version)
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        // --help and --version print and exit 0 as usual.
        Err(error) if !error.use_stderr() => error.exit(),
        Err(error) => return Err(usage_error(&error).into()),
    };
    logger::init(cli.verbose, cli.quiet);
    match cli.command {
        Command::Train(args) => {
            let explicit = given_flags(&matches, "train");
            train::run(*args, &explicit, cli.quiet)
        }
        Command::Order(args) => order::run(args),
        Command::Scores(args) => scores::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Export(args) => export::run(args),
        Command::ImportReference(args) => import::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Report(args) => report::run(args),
        Command::Query(args) => query::run(args),
        Command::Runs(args) => runs::run(args),
        Command::Verify(args) => verify::run_verify(args),
        Command::Rm(args) => verify::run_rm(args),
        Command::Rebuild(args) => rebuild::run(args),
        Command::Sweep(args) => sweep::run(args),
    }
}
