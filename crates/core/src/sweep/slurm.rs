//! The Slurm executor: one `sbatch` job array per stage with incomplete tasks, array task `i`
//! running task `i` of the stage, `--dependency=afterok` on the arrays of the stages it waits
//! for. Every task's command skips a complete run and resumes an interrupted one, so a task
//! that hits its time limit, is preempted or requeued continues where it stopped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::plan::{PlannedStage, Sweep, TaskKind};
use super::status::TaskState;
use super::{command_line, shell_quoted};
use crate::error::{Error, IoContext, Result};
use crate::store::write_bytes_atomically;

/// How stages are submitted.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    /// The `fstream` program the tasks run (on the cluster's shared filesystem).
    pub program: PathBuf,
    /// Array tasks of one stage running at a time (`--array=...%N`).
    pub throttle: Option<usize>,
    /// Options passed to every `sbatch` (`--partition=gpu`, `--time=04:00:00`, ...).
    pub sbatch_options: Vec<String>,
}

/// One submitted job array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The stage.
    pub stage: String,
    /// Slurm's job id of the array.
    pub job_id: String,
    /// The array indices submitted (the stage's incomplete tasks).
    pub indices: Vec<usize>,
    /// The batch script.
    pub script: PathBuf,
}

/// Submits the incomplete tasks of `sweep` (`states` from [`super::status::sweep_states`]).
///
/// # Errors
/// [`Error::Config`] when jobs of this sweep are still queued or a task is running; the
/// errors of `sbatch`, `squeue` and of writing the scripts.
pub fn submit(
    sweep: &Sweep,
    states: &[Vec<TaskState>],
    options: &SlurmOptions,
) -> Result<Vec<Submission>> {
    check_queue(sweep)?;
    if let Some((task, state)) = sweep
        .stages
        .iter()
        .zip(states)
        .flat_map(|(stage, states)| stage.tasks.iter().zip(states))
        .find(|(_, state)| matches!(state, TaskState::Running { .. }))
    {
        return Err(Error::Config(format!(
            "task {} is running{}; wait for it before submitting the sweep",
            task.id,
            match state {
                TaskState::Running { pid: Some(pid), .. } => format!(" (process {pid})"),
                _ => String::new(),
            }
        )));
    }
    // Slurm fails a job whose output directory does not exist.
    let logs = sweep.dir().join("logs");
    std::fs::create_dir_all(&logs).at(&logs)?;
    let mut job_ids: Vec<Option<String>> = vec![None; sweep.stages.len()];
    let mut submissions = Vec::new();
    for (s, stage) in sweep.stages.iter().enumerate() {
        let indices: Vec<usize> = states[s]
            .iter()
            .enumerate()
            .filter(|(_, state)| !matches!(state, TaskState::Complete))
            .map(|(i, _)| i)
            .collect();
        if indices.is_empty() {
            continue;
        }
        let script = sweep.dir().join("slurm").join(format!("{}.sbatch", stage.name));
        let text = batch_script(sweep, stage, &options.program);
        write_bytes_atomically(&script, text.as_bytes())?;
        let after: Vec<&str> =
            stage.depends_on.iter().filter_map(|&d| job_ids[d].as_deref()).collect();
        let job_id = sbatch(&script, &array_spec(&indices, options.throttle), &after, options)?;
        job_ids[s] = Some(job_id.clone());
        submissions.push(Submission { stage: stage.name.clone(), job_id, indices, script });
    }
    Ok(submissions)
}

/// The job name of a stage's array.
pub fn job_name(sweep: &Sweep, stage: &PlannedStage) -> String {
    format!("fstream-{}-{}", sweep.spec.name, stage.name)
}

/// The batch script of a stage: `#SBATCH` lines for what every submission shares, then one
/// `case` branch per task that appends its output to the task's log and runs its command.
fn batch_script(sweep: &Sweep, stage: &PlannedStage, program: &Path) -> String {
    let logs = sweep.dir().join("logs");
    let mut text = format!(
        "#!/bin/bash\n\
         # fstream sweep {sweep}, stage {stage}: written by `fstream sweep run --executor slurm`.\n\
         # Array task I runs task I of the stage; each command skips a complete run and\n\
         # resumes an interrupted one, so a requeued or resubmitted task continues.\n\
         #SBATCH --job-name={name}\n\
         #SBATCH --output={out}\n\
         #SBATCH --open-mode=append\n\
         #SBATCH --requeue\n\
         #SBATCH --kill-on-invalid-dep=yes\n\
         set -u\n\
         threads=${{SLURM_CPUS_PER_TASK:-1}}\n\
         case \"${{SLURM_ARRAY_TASK_ID:?run this script as a Slurm array task}}\" in\n",
        sweep = sweep.spec.name,
        stage = stage.name,
        name = job_name(sweep, stage),
        out = logs.join("slurm-%A_%a.out").display(),
    );
    for (i, task) in stage.tasks.iter().enumerate() {
        let threads = if task.kind == TaskKind::Train { " --threads \"$threads\"" } else { "" };
        let log = shell_quoted(&sweep.log_file(task).display().to_string());
        let _ = writeln!(
            text,
            "  {i}) exec >>{log} 2>&1; exec {}{threads} ;;",
            command_line(program, task)
        );
    }
    text.push_str(
        "  *) echo \"no task $SLURM_ARRAY_TASK_ID in this stage\" >&2; exit 2 ;;\nesac\n",
    );
    text
}

/// `--array` of `indices` as ranges (`0-3,7`), with the throttle (`%N`).
fn array_spec(indices: &[usize], throttle: Option<usize>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        while i + 1 < indices.len() && indices[i + 1] == indices[i] + 1 {
            i += 1;
        }
        parts.push(if indices[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", indices[i])
        });
        i += 1;
    }
    let mut spec = parts.join(",");
    if let Some(n) = throttle {
        spec.push_str(&format!("%{n}"));
    }
    spec
}

/// Runs `sbatch --parsable` and returns the job id.
fn sbatch(script: &Path, array: &str, after: &[&str], options: &SlurmOptions) -> Result<String> {
    let mut command = Command::new("sbatch");
    command.arg("--parsable").arg(format!("--array={array}"));
    if !after.is_empty() {
        command.arg(format!("--dependency=afterok:{}", after.join(":")));
    }
    command.args(&options.sbatch_options).arg(script);
    let stdout = run_tool(&mut command, "sbatch")?;
    // `--parsable` prints "JOBID" or "JOBID;CLUSTER".
    let job_id = stdout.trim().split(';').next().unwrap_or_default().to_string();
    if job_id.is_empty() || !job_id.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::Config(format!("sbatch printed no job id: {stdout:?}")));
    }
    Ok(job_id)
}

/// Refuses to submit while jobs of this sweep are in the queue (they would race the new ones
/// for the same runs).
fn check_queue(sweep: &Sweep) -> Result<()> {
    let names: Vec<String> = sweep.stages.iter().map(|s| job_name(sweep, s)).collect();
    let mut command = Command::new("squeue");
    command.args(["--me", "--noheader", "--format=%i %j %T", "--name"]).arg(names.join(","));
    let queued = run_tool(&mut command, "squeue")?;
    let jobs: Vec<&str> = queued.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if jobs.is_empty() {
        return Ok(());
    }
    Err(Error::Config(format!(
        "sweep {} still has jobs in the Slurm queue ({}); wait for them (`fstream sweep status`) or cancel them (scancel --name NAME)",
        sweep.spec.name,
        jobs.join("; ")
    )))
}

/// Runs a Slurm client tool and returns its stdout; its stderr's first line on failure.
fn run_tool(command: &mut Command, tool: &str) -> Result<String> {
    let output = command.output().map_err(|e| {
        Error::Config(format!("cannot run {tool} ({e}): is this a Slurm login node?"))
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
        return Err(Error::Config(format!("{tool} failed ({}): {first}", output.status)));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_specs_compress_runs_of_indices() {
        assert_eq!(array_spec(&[0, 1, 2, 3, 7, 9, 10], Some(2)), "0-3,7,9-10%2");
        assert_eq!(array_spec(&[4], None), "4");
    }
}
