//! The local executor: runs a sweep's tasks as `fstream` child processes, at most `jobs` at a
//! time, each stage once the stages it depends on are complete. Complete tasks are skipped
//! without starting a process; each child appends its output to the task's log file.

use std::collections::{BTreeSet, HashMap};
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;

use super::plan::{Sweep, Task, TaskKind};
use super::status::{TaskState, last_error, sweep_states, task_state};
use crate::error::{Error, IoContext, Result};

/// How the local executor runs tasks.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The `fstream` program the children run.
    pub program: PathBuf,
    /// Tasks at a time.
    pub jobs: usize,
    /// libtorch threads each train task gets (`--threads`).
    pub threads_per_job: usize,
}

/// What the executor reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// A task was already complete.
    Complete(&'a Task),
    /// Another process is running the task's run: left alone.
    RunningElsewhere(&'a Task, Option<u32>),
    /// A child process started the task.
    Started(&'a Task),
    /// A task's process ended; `Err` holds why it failed.
    Finished(&'a Task, std::result::Result<(), String>),
}

/// What a local sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LocalReport {
    /// Tasks that were complete before.
    pub already_complete: usize,
    /// Tasks run to completion now.
    pub completed: usize,
    /// Tasks that failed: id and why.
    pub failed: Vec<(String, String)>,
    /// Stages left waiting on a stage that did not complete.
    pub blocked: Vec<String>,
}

/// Runs every incomplete task of `sweep`. `stop` is polled a few times a second: when it
/// returns true, every child gets SIGTERM (runs stop cleanly and stay resumable), and the
/// executor returns [`Error::Interrupted`] once they have ended.
///
/// # Errors
/// [`Error::Io`] when a log file or a child process cannot be created; the errors of reading
/// the root's runs; [`Error::Interrupted`].
pub fn run_local(
    sweep: &Sweep,
    options: &LocalOptions,
    stop: &dyn Fn() -> bool,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<LocalReport> {
    let mut report = LocalReport::default();
    let states = sweep_states(sweep)?;
    // Per stage: tasks left to do; a stage is complete when none are left and none failed.
    let mut todo: Vec<BTreeSet<usize>> = Vec::new();
    let mut stuck = vec![false; sweep.stages.len()];
    for (s, stage) in sweep.stages.iter().enumerate() {
        let mut left = BTreeSet::new();
        for (t, state) in states[s].iter().enumerate() {
            let task = &stage.tasks[t];
            match state {
                TaskState::Complete => {
                    report.already_complete += 1;
                    on_event(Event::Complete(task));
                }
                TaskState::Running { pid, .. } => {
                    stuck[s] = true;
                    on_event(Event::RunningElsewhere(task, *pid));
                }
                _ => {
                    left.insert(t);
                }
            }
        }
        todo.push(left);
    }
    let (finished_tx, finished) = crossbeam_channel::unbounded::<(usize, usize, ExitStatus)>();
    let mut running: HashMap<(usize, usize), u32> = HashMap::new();
    loop {
        if stop() {
            terminate(&running);
            for _ in 0..running.len() {
                let _ = finished.recv();
            }
            return Err(Error::Interrupted);
        }
        while running.len() < options.jobs.max(1) {
            let Some((s, t)) = next_ready(sweep, &todo, &stuck, &running) else { break };
            todo[s].remove(&t);
            let task = &sweep.stages[s].tasks[t];
            let mut child = spawn(sweep, task, options)?;
            on_event(Event::Started(task));
            running.insert((s, t), child.id());
            let finished_tx = finished_tx.clone();
            std::thread::spawn(move || {
                if let Ok(status) = child.wait() {
                    let _ = finished_tx.send((s, t, status));
                }
            });
        }
        if running.is_empty() {
            break;
        }
        let (s, t, status) = match finished.recv_timeout(Duration::from_millis(200)) {
            Ok(done) => done,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => unreachable!("the executor holds a sender"),
        };
        running.remove(&(s, t));
        let task = &sweep.stages[s].tasks[t];
        let outcome = outcome(sweep, task, status)?;
        match &outcome {
            Ok(()) => report.completed += 1,
            Err(why) => {
                stuck[s] = true;
                report.failed.push((task.id.clone(), why.clone()));
            }
        }
        on_event(Event::Finished(task, outcome));
    }
    report.blocked = sweep
        .stages
        .iter()
        .enumerate()
        .filter(|&(s, _)| !todo[s].is_empty())
        .map(|(_, stage)| stage.name.clone())
        .collect();
    Ok(report)
}

/// The first task whose stage's dependencies are all complete (nothing left, nothing failed,
/// nothing running).
fn next_ready(
    sweep: &Sweep,
    todo: &[BTreeSet<usize>],
    stuck: &[bool],
    running: &HashMap<(usize, usize), u32>,
) -> Option<(usize, usize)> {
    let stage_complete =
        |s: usize| todo[s].is_empty() && !stuck[s] && !running.keys().any(|&(rs, _)| rs == s);
    sweep.stages.iter().enumerate().find_map(|(s, stage)| {
        let ready = stage.depends_on.iter().all(|&d| stage_complete(d));
        ready.then(|| todo[s].first().map(|&t| (s, t))).flatten()
    })
}

/// Starts `task` as a child process in its own process group (so that a Ctrl-C at the
/// terminal reaches only the executor, which then stops each child once), appending its
/// output to the task's log. The child gets SIGTERM if the executor dies.
fn spawn(sweep: &Sweep, task: &Task, options: &LocalOptions) -> Result<std::process::Child> {
    let log_path = sweep.log_file(task);
    let dir = log_path.parent().expect("logs live in a directory");
    std::fs::create_dir_all(dir).at(dir)?;
    let log = OpenOptions::new().create(true).append(true).open(&log_path).at(&log_path)?;
    let mut command = Command::new(&options.program);
    command.args(&task.args);
    if task.kind == TaskKind::Train {
        command.args(["--threads", &options.threads_per_job.max(1).to_string()]);
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().at(&log_path)?)
        .stderr(log)
        .process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    command.spawn().map_err(|e| Error::io(&options.program, e))
}

/// Sends SIGTERM to every running child.
fn terminate(running: &HashMap<(usize, usize), u32>) {
    for &pid in running.values() {
        // SAFETY: kill has no memory effects; the pid is a child not yet reaped.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
}

/// Whether the task's process did its job: exit 0 and the task complete in the root.
fn outcome(
    sweep: &Sweep,
    task: &Task,
    status: ExitStatus,
) -> Result<std::result::Result<(), String>> {
    if status.success() {
        return Ok(match task_state(sweep, task)? {
            TaskState::Complete => Ok(()),
            other => Err(format!("exited 0 but is {}", other.name())),
        });
    }
    // The error line the command printed (a log shared with another attempt running at the
    // same time may end with that one's progress), else the log's last line.
    let log = sweep.log_file(task);
    let reason = last_error(&log).map(|e| format!("fstream: error: {e}")).or_else(|| {
        let text = std::fs::read_to_string(&log).ok()?;
        text.lines().rev().find(|l| !l.trim().is_empty()).map(String::from)
    });
    Ok(Err(format!("{status}: {} (log: {})", reason.unwrap_or_default(), log.display())))
}
