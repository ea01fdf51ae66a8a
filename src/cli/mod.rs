//! fstream's command line as a library for its two binaries: clap definitions of the
//! subcommands, each in its own file, converted into library configurations and dispatched.
//! Library code never sees a clap type.
//!
//! `fstream` runs every command but `train` without linking libtorch, so that it starts in
//! milliseconds; it hands `train` (and `--version`, which names the libtorch) over to
//! `fstream-train` beside it, which is the same command line with training
//! ([`Training::InProcess`]).

mod compare;
mod export;
mod import;
mod logger;
mod order;
mod plot;
pub mod progress;
mod query;
mod rebuild;
mod report;
mod runs;
mod scores;
mod select;
pub mod signals;
mod sweep;
pub mod train;
mod verify;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use fstream::Error;
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
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
pub enum FidelityArg {
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

/// A failure while writing the output file `path` as a library error naming the file: the
/// I/O error in `error`'s chain (a full disk, a file-size limit), or its message.
fn output_error(path: &std::path::Path, error: &anyhow::Error) -> Error {
    let io = error.chain().find_map(|cause| {
        cause.downcast_ref::<std::io::Error>().map(|e| (e.kind(), e.to_string())).or_else(|| {
            match cause.downcast_ref::<polars::error::PolarsError>() {
                Some(polars::error::PolarsError::IO { error, .. }) => {
                    Some((error.kind(), error.to_string()))
                }
                _ => None,
            }
        })
    });
    let (kind, message) = io.unwrap_or((std::io::ErrorKind::Other, one_line(error)));
    Error::io(path, std::io::Error::new(kind, message))
}

/// The exit code of a training run stopped by a signal (128 + the signal, as a shell
/// reports it), if one was.
pub fn interrupted_exit_code() -> Option<u8> {
    signals::stop_signal().and_then(|signal| u8::try_from(128 + signal).ok())
}

/// `fstream-train --version`: fstream's version, the libtorch it was built against
/// (`libtorch_version`), and the directory of the libtorch this process loaded (read from
/// `/proc/self/maps`).
fn version_text(libtorch_version: &str) -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let loaded = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.ends_with("/libtorch_cpu.so"))
        .and_then(|path| std::path::Path::new(path).parent())
        .map_or("an unknown directory".to_string(), |dir| dir.display().to_string());
    format!("{} (libtorch {libtorch_version} from {loaded})", env!("CARGO_PKG_VERSION"))
}

/// `n` and `noun`, plural unless `n` is 1 ("1 epoch", "3 epochs").
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// How a binary trains.
#[derive(Debug, Clone, Copy)]
pub enum Training {
    /// Hand `train` and `--version` over to the `fstream-train` binary beside this one (the
    /// `fstream` binary, which does not link libtorch).
    HandOver,
    /// Train in this process (`fstream-train`).
    InProcess {
        /// `fstream train` with its flags, the ids of the flags given on the command line,
        /// and `--quiet`.
        train: fn(train::TrainArgs, &[String], bool) -> anyhow::Result<()>,
        /// The libtorch version the binary was built against.
        libtorch_version: &'static str,
    },
}

/// polars' setting of the streaming group-by's hot table (groups per thread).
const POLARS_HOT_TABLE_SIZE: &str = "POLARS_HOT_TABLE_SIZE";

/// The hot table's size for `threads` threads. Its slots are allocated per thread and group-by
/// up front (16 threads x 524,288 doubled a small query's memory, to 178 MB, and its time),
/// and a table needs several times the groups one file holds (60,000 examples) to keep evictions
/// rare: 524,288 slots up to 8 threads, then 4M slots shared out, at least 65,536 each. polars
/// wants a power of two.
fn hot_table_size(threads: usize) -> usize {
    let share = (1usize << 22) / threads.max(1);
    (1usize << share.ilog2()).clamp(1 << 16, 1 << 19)
}

/// A binary's `main`: runs the command line, prints errors as one line on stderr and maps
/// them to the documented exit codes (0 success, 1 runtime failure, 2 usage or input error,
/// 128 + the signal when a run was stopped).
pub fn main(training: Training) -> ExitCode {
    // A file-size limit (`ulimit -f`) must fail the write that hits it, which the writer then
    // reports and records in the run's status, instead of killing the process.
    // SAFETY: setting a signal to SIG_IGN at start-up, before any thread exists.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    // polars' streaming group-by keeps a "hot" table of groups per thread and holds every row
    // of the other groups until the end: with its default of 4096, grouping 60M presentations
    // by (run_id, example_id) held all of them (2.3 GB; 0.25 GB with [`hot_table_size`]). A
    // value the user sets wins.
    if std::env::var_os(POLARS_HOT_TABLE_SIZE).is_none() {
        let size = hot_table_size(std::thread::available_parallelism().map_or(1, |n| n.get()));
        // SAFETY: at start-up, before any thread exists that could read the environment.
        unsafe { std::env::set_var(POLARS_HOT_TABLE_SIZE, size.to_string()) };
    }
    install_panic_hook();
    let error = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(training))) {
        Ok(Ok(())) => return ExitCode::SUCCESS,
        Ok(Err(error)) => error,
        Err(_) => {
            let panic = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).take();
            eprintln!(
                "fstream: error: internal error: {} (a bug: please report it; `fstream verify` checks a root for damaged files)",
                panic.unwrap_or_else(|| "unknown".into())
            );
            return ExitCode::from(1);
        }
    };
    let broken_pipe = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    let code = match error.chain().find_map(|cause| cause.downcast_ref::<Error>()) {
        Some(Error::Interrupted) => interrupted_exit_code().unwrap_or(130),
        Some(error) => error.exit_code(),
        None => 1,
    };
    eprintln!("fstream: error: {}", one_line(&error));
    ExitCode::from(code)
}

/// The last panic's message and place, kept by the hook of [`install_panic_hook`].
static LAST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Keeps panics off stderr, so that every failure is one line: a panic the library catches
/// (the Parquet reader on some damaged files) becomes an error naming the file, and one
/// nothing catches becomes `main`'s `internal error` line. With `FSTREAM_DEBUG_PANICS` set,
/// panics are reported as usual (with `RUST_BACKTRACE`, a backtrace), for debugging.
fn install_panic_hook() {
    if std::env::var_os("FSTREAM_DEBUG_PANICS").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line()));
        let text = format!("{message}{}", place.unwrap_or_default()).replace('\n', " ");
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
    }));
}

/// The error and its causes on one line. Library errors already show their source, so a cause
/// whose text ends the message so far is not repeated.
fn one_line(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string().replace('\n', " ");
        if !message.ends_with(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
        // A library error's text is complete; its sources (an engine's plan dumps) are not
        // for the user.
        if cause.downcast_ref::<Error>().is_some() {
            break;
        }
    }
    message
}

/// The training binary, installed beside this one.
const TRAINING_BINARY: &str = "fstream-train";

/// Replaces this process with `fstream-train` and the same arguments.
fn hand_over_to_training() -> anyhow::Result<()> {
    let program = std::env::current_exe()
        .map(|exe| exe.with_file_name(TRAINING_BINARY))
        .unwrap_or_else(|_| PathBuf::from(TRAINING_BINARY));
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let error = std::process::Command::new(&program).args(args).exec();
    Err(anyhow::Error::new(Error::io(&program, error)).context(format!(
        "`fstream train` runs {TRAINING_BINARY}, installed beside fstream (scripts/install.sh installs both)"
    )))
}

/// Parses the command line and runs the chosen subcommand.
///
/// # Errors
/// Whatever the subcommand fails with; `main` prints it and picks the exit code.
fn run(training: Training) -> anyhow::Result<()> {
    let version = match training {
        Training::HandOver => env!("CARGO_PKG_VERSION"),
        // clap takes a &'static str; the text is built once per process.
        Training::InProcess { libtorch_version, .. } => {
            Box::leak(version_text(libtorch_version).into_boxed_str())
        }
    };
    let parsed = Cli::command()
        .version(version)
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(error)
            if error.kind() == clap::error::ErrorKind::DisplayVersion
                && matches!(training, Training::HandOver) =>
        {
            return hand_over_to_training();
        }
        // --help and --version print and exit 0 as usual.
        Err(error) if !error.use_stderr() => error.exit(),
        Err(error) => return Err(usage_error(&error).into()),
    };
    logger::init(cli.verbose, cli.quiet);
    match cli.command {
        Command::Train(args) => match training {
            Training::HandOver => hand_over_to_training(),
            Training::InProcess { train, .. } => {
                let explicit = given_flags(&matches, "train");
                train(*args, &explicit, cli.quiet)
            }
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hot_table_is_a_power_of_two_shared_out_over_many_threads() {
        let sizes: Vec<usize> = [1, 2, 8, 12, 16, 64, 1000].map(hot_table_size).to_vec();
        assert_eq!(sizes, [524_288, 524_288, 524_288, 262_144, 262_144, 65_536, 65_536]);
    }
}
