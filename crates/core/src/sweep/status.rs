//! Where each task of a sweep stands, read from the root: a run's `runs` row and lock, an
//! order stage's sorting file.

use serde::Serialize;

use super::plan::{Sweep, Task, TaskKind};
use crate::error::Result;
use crate::store::layout::{Layout, Table};
use crate::store::lock::lock_holder;
use crate::store::runs::read_run;
use crate::store::schema::RunStatus;
use crate::store::sorting::SortingFile;

/// The state of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TaskState {
    /// Nothing of it exists yet.
    NotStarted,
    /// A process holds its run's lock.
    Running {
        /// The process, where `/proc/locks` tells.
        pid: Option<u32>,
        /// Epochs committed so far.
        epochs_completed: u32,
    },
    /// Its run stopped before the end, with the error it recorded (or that its process is
    /// gone); running the sweep again resumes it.
    Failed {
        /// Why.
        error: String,
        /// Epochs committed.
        epochs_completed: u32,
    },
    /// Done.
    Complete,
}

impl TaskState {
    /// The state's name in tables and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            TaskState::NotStarted => "not_started",
            TaskState::Running { .. } => "running",
            TaskState::Failed { .. } => "failed",
            TaskState::Complete => "complete",
        }
    }
}

/// The state of `task` in the sweep's root.
///
/// # Errors
/// The errors of reading a run that exists but cannot be read.
pub fn task_state(sweep: &Sweep, task: &Task) -> Result<TaskState> {
    let layout = Layout::new(&sweep.root);
    if let TaskKind::Order { output, runs } = &task.kind {
        return Ok(order_state(&layout, output, runs));
    }
    let pid = lock_holder(&layout, &task.id);
    if !layout.run_file(Table::Runs, &task.id).is_file() {
        return Ok(match (pid, last_error(&sweep.log_file(task))) {
            (Some(pid), _) => TaskState::Running { pid: Some(pid), epochs_completed: 0 },
            // The command failed before its run started (bad flags or data): its log says why.
            (None, Some(error)) => TaskState::Failed { error, epochs_completed: 0 },
            (None, None) => TaskState::NotStarted,
        });
    }
    let run = read_run(&layout, &task.id)?;
    let epochs_completed = run.epochs_completed;
    Ok(match (run.status, pid) {
        (RunStatus::Complete, _) => TaskState::Complete,
        (_, Some(pid)) => TaskState::Running { pid: Some(pid), epochs_completed },
        (RunStatus::Failed(error), None) => TaskState::Failed { error, epochs_completed },
        (RunStatus::Running, None) => TaskState::Failed {
            error: "stopped: no process trains it (killed?)".into(),
            epochs_completed,
        },
    })
}

/// The last error a task's command printed to its log (`fstream: error: …`), if any.
pub(crate) fn last_error(log: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|line| line.strip_prefix("fstream: error: ")).map(String::from)
}

/// An order task is complete when its sorting file was counted over exactly `runs`, the
/// source stage's runs now, none of which has changed since (its `runs` file is not newer:
/// a run deleted and trained again under its id): a file of an earlier version of the spec or
/// of those runs is stale, and the stage runs again.
fn order_state(layout: &Layout, output: &std::path::Path, runs: &[String]) -> TaskState {
    let modified = |path: &std::path::Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let Some(written) = modified(output) else { return TaskState::NotStarted };
    let changed = runs.iter().find(|run| {
        modified(&layout.run_file(Table::Runs, run)).is_none_or(|changed| changed > written)
    });
    if let Some(run) = changed {
        return TaskState::Failed {
            error: format!(
                "stale: run {run} changed after {} was counted; it is recomputed",
                output.display()
            ),
            epochs_completed: 0,
        };
    }
    match SortingFile::read(output) {
        Ok(file) if file.counts_exactly(runs) => TaskState::Complete,
        Ok(_) => TaskState::Failed {
            error: format!(
                "stale: {} counts other runs than the stage's; it is recomputed",
                output.display()
            ),
            epochs_completed: 0,
        },
        Err(e) => TaskState::Failed { error: e.to_string(), epochs_completed: 0 },
    }
}

/// The counts of one stage's task states.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StageCounts {
    /// Tasks in the stage.
    pub total: usize,
    /// Complete tasks.
    pub complete: usize,
    /// Running tasks.
    pub running: usize,
    /// Failed or stopped tasks.
    pub failed: usize,
    /// Tasks not started.
    pub not_started: usize,
}

impl StageCounts {
    /// The counts of `states`.
    pub fn of<'a>(states: impl IntoIterator<Item = &'a TaskState>) -> Self {
        let mut counts = StageCounts::default();
        for state in states {
            counts.total += 1;
            match state {
                TaskState::NotStarted => counts.not_started += 1,
                TaskState::Running { .. } => counts.running += 1,
                TaskState::Failed { .. } => counts.failed += 1,
                TaskState::Complete => counts.complete += 1,
            }
        }
        counts
    }

    /// Whether every task is complete.
    pub fn is_complete(&self) -> bool {
        self.complete == self.total
    }
}

/// The state of every task, by stage (in the order of [`Sweep::stages`]).
///
/// # Errors
/// As [`task_state`].
pub fn sweep_states(sweep: &Sweep) -> Result<Vec<Vec<TaskState>>> {
    sweep
        .stages
        .iter()
        .map(|stage| stage.tasks.iter().map(|task| task_state(sweep, task)).collect())
        .collect()
}
