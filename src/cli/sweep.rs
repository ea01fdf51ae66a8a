//! `fstream sweep run|status SPEC --root R`: a TOML sweep spec (docs/sweeps.md) run on this
//! machine, submitted to Slurm or printed as commands, and its progress per stage.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use fstream::Error;
use fstream::config::Device;
use fstream::sweep::local::{Event, LocalOptions, run_local};
use fstream::sweep::slurm::{SlurmOptions, submit};
use fstream::sweep::status::{StageCounts, TaskState, sweep_states};
use fstream::sweep::{Sweep, SweepSpec, Task, TaskKind, command_line};
use polars::prelude::{Column, DataFrame};

use super::query::write_aligned;
use super::{Cli, Command, counted, signals};

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(subcommand)]
    command: SweepCommand,
}

#[derive(Debug, Subcommand)]
enum SweepCommand {
    /// Run a sweep, or continue it: complete runs are skipped, incomplete ones resumed, the
    /// rest started, each stage once the stages it depends on are complete.
    Run(RunArgs),
    /// Per stage: tasks complete, running, failed (with the error) and not started.
    Status(StatusArgs),
}

/// The sweep and where it writes.
#[derive(Debug, Args)]
struct Target {
    /// The sweep spec (TOML; the paper's experiments are in sweeps/).
    #[arg(value_name = "SPEC")]
    spec: PathBuf,
    /// Dataset root every run of the sweep is written to.
    #[arg(long, value_name = "DIR", default_value = "results")]
    root: PathBuf,
    /// Data directory of the runs, instead of the spec's data_dir (not part of the run ids).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// local: run here; slurm: submit one job array per stage; print: print the commands
    /// that can run now, one per line (for GNU parallel or another scheduler).
    #[arg(long, value_enum, value_name = "EXECUTOR", default_value = "local")]
    executor: Executor,
    /// Tasks at a time: local processes, or the array throttle (%N) with slurm.
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    /// libtorch threads split between the local jobs (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Options for every sbatch, split at spaces (repeatable), e.g.
    /// "--partition=gpu --gres=gpu:1 --time=04:00:00".
    #[arg(long = "slurm-opt", value_name = "OPTIONS", allow_hyphen_values = true)]
    slurm_opts: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Executor {
    /// This machine.
    Local,
    /// A Slurm cluster (run on a login node; the root on the shared filesystem).
    Slurm,
    /// Print the commands.
    Print,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    target: Target,
    /// Output format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "table")]
    format: StatusFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StatusFormat {
    /// One line per stage, then the failures.
    Table,
    /// Every stage and task, for scripts.
    Json,
}

pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    match args.command {
        SweepCommand::Run(args) => run_sweep(args),
        SweepCommand::Status(args) => status(args),
    }
}

/// Reads the spec and expands it.
fn expand(target: &Target) -> anyhow::Result<Sweep> {
    let spec = SweepSpec::read(&target.spec)?;
    Ok(Sweep::plan(spec, &target.root, target.data_dir.as_deref())?)
}

/// [`expand`], checking every task's command as `fstream` would parse it (before anything
/// runs; `sweep status` reads what exists and skips this).
fn plan(target: &Target) -> anyhow::Result<Sweep> {
    let sweep = expand(target)?;
    sweep.tasks().try_for_each(|(_, task)| {
        check_command(task)
            .map_err(|e| Error::format(&target.spec, format!("task {}: {e}", task.id)))
    })?;
    Ok(sweep)
}

/// Parses a task's arguments as the command line, and a train task's into its experiment.
/// The device is checked when the task starts: only the training binary loads libtorch, and a
/// Slurm task runs on another node anyway.
fn check_command(task: &Task) -> anyhow::Result<()> {
    let argv = std::iter::once("fstream".to_string()).chain(task.args.iter().cloned());
    let cli = Cli::try_parse_from(argv).map_err(|e| super::usage_error(&e))?;
    if let Command::Train(args) = &cli.command {
        args.experiment_spec(Device::Cpu)?;
    }
    Ok(())
}

fn run_sweep(args: RunArgs) -> anyhow::Result<()> {
    let sweep = plan(&args.target)?;
    let program = std::env::current_exe().map_err(|e| Error::io("/proc/self/exe", e))?;
    if args.jobs == Some(0) {
        return Err(Error::Config("--jobs must be at least 1".into()).into());
    }
    match args.executor {
        Executor::Local => run_here(&sweep, &args, program),
        Executor::Slurm => {
            let options = SlurmOptions {
                program,
                throttle: args.jobs,
                sbatch_options: args
                    .slurm_opts
                    .iter()
                    .flat_map(|o| o.split_whitespace().map(String::from))
                    .collect(),
            };
            let states = sweep_states(&sweep)?;
            let submitted = submit(&sweep, &states, &options)?;
            if submitted.is_empty() {
                log::info!("sweep {}: every task is complete", sweep.spec.name);
            }
            for job in &submitted {
                println!("{} {} {}", job.job_id, job.stage, counted(job.indices.len(), "task"));
                log::info!("stage {}: job {} ({})", job.stage, job.job_id, job.script.display());
            }
            Ok(())
        }
        Executor::Print => print_ready(&sweep, &program),
    }
}

/// The local executor, with a line per task started and finished.
fn run_here(sweep: &Sweep, args: &RunArgs, program: PathBuf) -> anyhow::Result<()> {
    signals::install_stop_handlers();
    let jobs = args.jobs.unwrap_or(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.threads.unwrap_or(cores);
    if threads == 0 {
        return Err(Error::Config("--threads must be at least 1".into()).into());
    }
    let options = LocalOptions { program, jobs, threads_per_job: (threads / jobs).max(1) };
    let total = sweep.tasks().count();
    let mut started: std::collections::HashMap<String, Instant> = Default::default();
    let mut finished = 0;
    let mut on_event = |event: Event<'_>| match event {
        Event::Complete(_) => finished += 1,
        Event::RunningElsewhere(task, pid) => log::warn!(
            "{} is being run by another process{}: left alone",
            task.id,
            pid.map_or(String::new(), |p| format!(" (pid {p})"))
        ),
        Event::Started(task) => {
            started.insert(task.id.clone(), Instant::now());
            log::info!("start {} {}", task.id, describe(task));
        }
        Event::Finished(task, outcome) => {
            finished += 1;
            let seconds = started.get(&task.id).map_or(0.0, |t| t.elapsed().as_secs_f64());
            match outcome {
                Ok(()) => log::info!("[{finished}/{total}] complete {} ({seconds:.1} s)", task.id),
                Err(why) => log::error!("[{finished}/{total}] failed {}: {why}", task.id),
            }
        }
    };
    let report = run_local(sweep, &options, &signals::interrupted, &mut on_event)?;
    println!(
        "sweep {}: {} complete ({} before), {} failed",
        sweep.spec.name,
        report.already_complete + report.completed,
        report.already_complete,
        report.failed.len()
    );
    if report.failed.is_empty() && report.blocked.is_empty() {
        return Ok(());
    }
    let mut problems = Vec::new();
    if !report.failed.is_empty() {
        problems.push(format!("{} failed", counted(report.failed.len(), "task")));
    }
    if !report.blocked.is_empty() {
        problems.push(format!("stages not run: {}", report.blocked.join(", ")));
    }
    Err(anyhow::anyhow!(
        "sweep {}: {} (see `fstream sweep status`; running the sweep again resumes)",
        sweep.spec.name,
        problems.join("; ")
    ))
}

/// The flags that vary within the task's stage, e.g. "(seed 1, remove_n 1000)".
fn describe(task: &Task) -> String {
    if task.varying.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = task.varying.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!("({})", parts.join(", "))
}

/// Prints the command of every incomplete task whose stage can run now.
fn print_ready(sweep: &Sweep, program: &std::path::Path) -> anyhow::Result<()> {
    let states = sweep_states(sweep)?;
    let complete: Vec<bool> = states.iter().map(|s| StageCounts::of(s).is_complete()).collect();
    let mut out = std::io::stdout().lock();
    for (s, stage) in sweep.stages.iter().enumerate() {
        let waiting: Vec<&str> = stage
            .depends_on
            .iter()
            .filter(|&&d| !complete[d])
            .map(|&d| sweep.stages[d].name.as_str())
            .collect();
        let incomplete = states[s].iter().any(|state| *state != TaskState::Complete);
        if !waiting.is_empty() && incomplete {
            log::info!(
                "stage {} waits for {}: print again when they are complete",
                stage.name,
                waiting.join(", ")
            );
            continue;
        }
        for (task, state) in stage.tasks.iter().zip(&states[s]) {
            if *state != TaskState::Complete {
                use std::io::Write as _;
                writeln!(out, "{}", command_line(program, task))?;
            }
        }
    }
    Ok(())
}

fn status(args: StatusArgs) -> anyhow::Result<()> {
    let sweep = expand(&args.target)?;
    let states = sweep_states(&sweep)?;
    match args.format {
        StatusFormat::Json => {
            let stages: Vec<serde_json::Value> = sweep
                .stages
                .iter()
                .zip(&states)
                .map(|(stage, states)| {
                    let tasks: Vec<serde_json::Value> = stage
                        .tasks
                        .iter()
                        .zip(states)
                        .map(|(task, state)| {
                            let mut value = serde_json::to_value(state).expect("plain fields");
                            value["id"] = task.id.clone().into();
                            let varying: serde_json::Map<String, serde_json::Value> = task
                                .varying
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone().into()))
                                .collect();
                            value["varying"] = varying.into();
                            value
                        })
                        .collect();
                    let kind = match stage.tasks.first().map(|t| &t.kind) {
                        Some(TaskKind::Order { .. }) => "order",
                        _ => "train",
                    };
                    serde_json::json!({
                        "stage": stage.name,
                        "kind": kind,
                        "counts": StageCounts::of(states),
                        "tasks": tasks,
                    })
                })
                .collect();
            let document = serde_json::json!({
                "sweep": sweep.spec.name,
                "root": sweep.root.display().to_string(),
                "stages": stages,
            });
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
        StatusFormat::Table => {
            let counts: Vec<StageCounts> = states.iter().map(StageCounts::of).collect();
            let column = |name: &str, value: fn(&StageCounts) -> usize| {
                Column::new(name.into(), counts.iter().map(|c| value(c) as u64).collect::<Vec<_>>())
            };
            let names: Vec<&str> = sweep.stages.iter().map(|s| s.name.as_str()).collect();
            let frame = DataFrame::new_infer_height(vec![
                Column::new("stage".into(), names),
                column("tasks", |c| c.total),
                column("complete", |c| c.complete),
                column("running", |c| c.running),
                column("failed", |c| c.failed),
                column("not_started", |c| c.not_started),
            ])?;
            let mut out = std::io::stdout().lock();
            write_aligned(&frame, usize::MAX, &mut out)?;
            use std::io::Write as _;
            for (stage, states) in sweep.stages.iter().zip(&states) {
                for (task, state) in stage.tasks.iter().zip(states) {
                    match state {
                        TaskState::Failed { error, epochs_completed } => writeln!(
                            out,
                            "failed {} after {}: {error}",
                            task.id,
                            counted(*epochs_completed as usize, "epoch")
                        )?,
                        TaskState::Running { pid, epochs_completed } => writeln!(
                            out,
                            "running {} ({} done{})",
                            task.id,
                            counted(*epochs_completed as usize, "epoch"),
                            pid.map_or(String::new(), |p| format!(", pid {p}"))
                        )?,
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(())
}
