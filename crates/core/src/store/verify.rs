//! Checking a dataset root against its `runs` rows (`fstream verify`) and deleting a run
//! everywhere (`fstream rm`). Damage is what breaks a declared epoch or a resume: a missing or
//! unreadable file, a wrong row count, a missing checkpoint. Orphans are what a crash or an
//! interrupted command leaves behind that no reader sees: epochs after a run's
//! `epochs_completed`, files of runs without a `runs` row, superseded checkpoints, stray
//! temporary files; they can be removed. Runs that a live process holds locked are skipped.

use std::path::{Path, PathBuf};

use super::checksums::{CHECKSUMS_KEY, Checksums, check_file};
use super::dynamics::read_dynamics;
use super::layout::{Layout, Table, parse_epoch_dir};
use super::lock::{lock_holder, lock_run, process_alive};
use super::parquet_row_count;
use super::remove::{check_inside, remove_inside};
use super::runs::{StoredRun, read_epochs_prefix, read_run};
use super::schema::RunStatus;
use crate::error::{Error, IoContext, Result};
use crate::record::RunId;

/// One problem found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A file that a declared epoch or a resume needs is missing, unreadable or wrong.
    Damage {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file or directory no reader sees and nothing needs; safe to remove.
    Orphan {
        /// The file or directory.
        path: PathBuf,
        /// Why it is an orphan.
        reason: String,
        /// The run it belongs to, whose lock [`remove_orphans`] takes first.
        run_id: Option<String>,
    },
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Runs whose files were checked.
    pub runs_checked: usize,
    /// Runs skipped because a live process holds their lock.
    pub runs_live: usize,
    /// Files checked.
    pub files_checked: usize,
    /// Damage and orphans, in the order found.
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    /// Number of damaged files.
    pub fn damaged(&self) -> usize {
        self.findings.iter().filter(|f| matches!(f, Finding::Damage { .. })).count()
    }

    /// The orphans' paths.
    pub fn orphans(&self) -> impl Iterator<Item = &Path> {
        self.findings.iter().filter_map(|f| match f {
            Finding::Orphan { path, .. } => Some(path.as_path()),
            Finding::Damage { .. } => None,
        })
    }

    fn damage(&mut self, path: impl Into<PathBuf>, reason: impl Into<String>) {
        self.findings.push(Finding::Damage { path: path.into(), reason: reason.into() });
    }

    /// Adds an orphan of `run_id` (if it belongs to a run), once per path.
    fn orphan(
        &mut self,
        run_id: Option<&str>,
        path: impl Into<PathBuf>,
        reason: impl Into<String>,
    ) {
        let path = path.into();
        if !self.orphans().any(|known| known == path) {
            let run_id = run_id.map(String::from);
            self.findings.push(Finding::Orphan { path, reason: reason.into(), run_id });
        }
    }
}

/// How much [`verify`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Depth {
    /// Every file's structure (its Parquet footer and row count) and its content checksum.
    #[default]
    Full,
    /// Structure only: footers, row counts, sizes (no file read whole).
    Quick,
}

/// Checks every file of the root against the `runs` rows (and, at [`Depth::Full`], against
/// the checksums recorded when it was committed).
///
/// # Errors
/// [`Error::Io`] when a directory of the root cannot be listed.
pub fn verify(layout: &Layout, depth: Depth) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut known = Vec::new();
    for run_id in layout.run_ids_with_files() {
        let runs_file = layout.run_file(Table::Runs, &run_id);
        if !runs_file.is_file() {
            let paths = run_paths(layout, &run_id)?;
            if has_committed_epochs(layout, &run_id) {
                // A run whose `runs` file went missing: its files are what can restore it.
                report.damage(
                    &runs_file,
                    format!(
                        "missing, but run {run_id} has committed epochs ({} of its files are kept): restore this file from a backup, or delete the run with `fstream rm {run_id}`",
                        paths.len()
                    ),
                );
                known.push(run_id);
                continue;
            }
            for path in paths {
                report.orphan(Some(&run_id), path, format!("run {run_id} has no runs row"));
            }
            continue;
        }
        known.push(run_id.clone());
        if lock_holder(layout, &run_id).is_some() {
            report.runs_live += 1;
            continue;
        }
        report.files_checked += 1;
        match read_run(layout, &run_id) {
            Ok(run) => check_run(layout, &run, depth, &mut report)?,
            Err(e) => report.damage(&runs_file, first_reason(&e)),
        }
        report.runs_checked += 1;
    }
    find_stray_files(layout, &known, &mut report)?;
    Ok(report)
}

/// Whether run `run_id` has files of a committed epoch: an `epochs` file, a presentations
/// partition or a checkpoint (a start that crashed leaves at most its examples).
fn has_committed_epochs(layout: &Layout, run_id: &str) -> bool {
    let presentations = layout.table_dir(Table::Presentations);
    let partition = std::fs::read_dir(presentations).into_iter().flatten().flatten().any(|d| {
        let dir = d.path().join(format!("run_id={run_id}"));
        numbered_entries(&dir, parse_epoch_dir).is_ok_and(|epochs| !epochs.is_empty())
    });
    partition
        || layout.run_file(Table::Epochs, run_id).is_file()
        || layout.checkpoint_dir(run_id).is_dir()
}

/// Checks one run's examples, epochs, presentations and checkpoints.
fn check_run(
    layout: &Layout,
    run: &StoredRun,
    depth: Depth,
    report: &mut VerifyReport,
) -> Result<()> {
    let info = &run.info;
    let run_id = info.run_id.as_str();
    let completed = run.epochs_completed;
    let runs_file = layout.run_file(Table::Runs, run_id);
    let recorded = match Checksums::read(&runs_file) {
        Ok(Some(recorded)) => {
            for gap in recorded.gaps(completed, info.record_presentations) {
                report.damage(&runs_file, format!("footer '{CHECKSUMS_KEY}': {gap}"));
            }
            recorded
        }
        Ok(None) => Checksums::default(),
        Err(e) => {
            report.damage(&runs_file, first_reason(&e));
            Checksums::default()
        }
    };
    let content = |path: &Path, crc32: Option<u32>, report: &mut VerifyReport| {
        if depth == Depth::Full
            && path.is_file()
            && let Err(e) = check_file(path, crc32)
        {
            report.damage(path, first_reason(&e));
        }
    };
    let examples = layout.run_file(Table::Examples, run_id);
    report.files_checked += 1;
    if run.examples.labels.len() != info.dataset_examples as usize {
        report.damage(
            &examples,
            format!("{} rows, expected {}", run.examples.labels.len(), info.dataset_examples),
        );
    }
    content(&examples, recorded.examples, report);
    let epochs_file = layout.run_file(Table::Epochs, run_id);
    if completed > 0 {
        report.files_checked += 1;
        match read_epochs_prefix(&epochs_file, completed) {
            Ok(Some(batch)) if batch.num_rows() == completed as usize => {}
            Ok(rows) => report.damage(
                &epochs_file,
                format!(
                    "{} rows for epochs 1..={completed}, expected {completed}",
                    rows.map_or(0, |b| b.num_rows())
                ),
            ),
            Err(e) => report.damage(&epochs_file, e.to_string()),
        }
        content(&epochs_file, recorded.epochs, report);
    }
    let run_dir = layout.run_presentations_dir(info.dataset.name(), run_id);
    if info.record_presentations {
        for epoch in 1..=completed {
            let path = layout.presentations_file(info.dataset.name(), run_id, epoch);
            report.files_checked += 1;
            match parquet_row_count(&path) {
                Ok(rows) if rows == u64::from(info.train_examples) => {
                    content(&path, recorded.presentations.get(&epoch).copied(), report);
                }
                Ok(rows) => report.damage(
                    &path,
                    format!(
                        "{rows} rows, expected {} (the run's training set)",
                        info.train_examples
                    ),
                ),
                Err(reason) => report.damage(&path, reason),
            }
        }
    }
    if info.record_presentations && completed > 0 {
        report.files_checked += 1;
        if check_dynamics(layout, run, report) {
            content(&layout.run_file(Table::Dynamics, run_id), recorded.dynamics, report);
        }
    }
    for (epoch, dir) in numbered_entries(&run_dir, parse_epoch_dir)? {
        if epoch == 0 || epoch > completed {
            let reason = format!("epoch {epoch} of run {run_id} is not committed");
            report.orphan(Some(run_id), dir, reason);
        }
    }
    let checkpoint_dir = layout.checkpoint_dir(run_id);
    let needed = layout.checkpoint_file(run_id, completed);
    let resumable = run.status != RunStatus::Complete;
    if resumable && completed > 0 && !needed.is_file() {
        report.damage(&needed, "missing: the run cannot be resumed");
    }
    let checkpoint_epoch = |name: &str| layout.checkpoint_epoch(Path::new(name));
    for (epoch, path) in numbered_entries(&checkpoint_dir, checkpoint_epoch)? {
        if epoch != completed {
            let reason = format!("checkpoint of epoch {epoch} is superseded");
            report.orphan(Some(run_id), path, reason);
        }
    }
    Ok(())
}

/// Checks that a run's `dynamics` file covers its committed epochs and training set. A file
/// one epoch ahead of a run that is not complete is a crash between two commit steps: hidden
/// from readers, and rebuilt when the run resumes. Returns whether the file is the one the
/// `runs` row declares (whose checksum was recorded).
fn check_dynamics(layout: &Layout, run: &StoredRun, report: &mut VerifyReport) -> bool {
    let path = layout.run_file(Table::Dynamics, &run.info.run_id);
    let completed = run.epochs_completed;
    let rebuild = "`fstream rebuild` builds it from the presentations";
    match read_dynamics(layout, &run.info.run_id, run.info.dataset_examples as usize) {
        Ok(None) => report.damage(&path, format!("missing; {rebuild}")),
        Ok(Some(dynamics)) => {
            let ahead = run.status != RunStatus::Complete && dynamics.epochs() == completed + 1;
            let rows = dynamics.columns.presentations.iter().filter(|&&p| p > 0).count();
            if dynamics.epochs() != completed && !ahead {
                let covered = dynamics.epochs();
                report.damage(
                    &path,
                    format!("covers {covered} epochs, expected {completed}; {rebuild}"),
                );
            } else if rows != run.info.train_examples as usize {
                let expected = run.info.train_examples;
                report.damage(
                    &path,
                    format!("{rows} rows, expected {expected} (the run's training set); {rebuild}"),
                );
            } else {
                return !ahead;
            }
        }
        Err(e) => report.damage(&path, format!("{e}; {rebuild}")),
    }
    false
}

/// An error's message without the path it starts with (a finding names its file already).
fn first_reason(error: &Error) -> String {
    match error {
        Error::Format { reason, .. } | Error::Damaged { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// The entries of `dir` whose names `number` parses, with their numbers (none when `dir` is
/// missing).
fn numbered_entries(
    dir: &Path,
    number: impl Fn(&str) -> Option<u32>,
) -> Result<Vec<(u32, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.at(dir)?;
        if let Some(n) = entry.file_name().to_str().and_then(&number) {
            found.push((n, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Temporary files no live process is writing, lock files of runs that do not exist, `runs`
/// files whose names are not run ids (readers refuse a root that has one), and files of an
/// epoch partition other than its `part-0.parquet` (readers never see them).
fn find_stray_files(layout: &Layout, known: &[String], report: &mut VerifyReport) -> Result<()> {
    let runs_dir = layout.table_dir(Table::Runs);
    for entry in std::fs::read_dir(&runs_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".parquet")
            && crate::record::RunId::parse(stem).is_err()
        {
            report.damage(
                entry.path(),
                "not the runs file of a run (its name is not a run id): every reader refuses the root until it is moved out",
            );
        }
    }
    let presentations = layout.table_dir(Table::Presentations);
    for dataset in std::fs::read_dir(&presentations).into_iter().flatten().flatten() {
        for run in std::fs::read_dir(dataset.path()).into_iter().flatten().flatten() {
            for (_, epoch_dir) in numbered_entries(&run.path(), parse_epoch_dir)? {
                for file in std::fs::read_dir(&epoch_dir).into_iter().flatten().flatten() {
                    let name = file.file_name().to_string_lossy().into_owned();
                    if name != "part-0.parquet" && !name.starts_with('.') {
                        report.orphan(None, file.path(), "not the partition's part-0.parquet");
                    }
                }
            }
        }
    }
    let mut temporaries = Vec::new();
    collect_temporaries(layout.root(), &mut temporaries)?;
    for path in temporaries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let writer_alive = match writer_pid(name) {
            Some(pid) => process_alive(pid),
            // A trainer's checkpoint in progress: alive while its run is locked.
            None => path
                .parent()
                .and_then(|d| d.file_name())
                .and_then(|run| lock_holder(layout, &run.to_string_lossy()))
                .is_some(),
        };
        if !writer_alive {
            report.orphan(None, path, "temporary file of a process that is gone");
        }
    }
    let locks = layout.root().join("locks");
    for entry in std::fs::read_dir(&locks).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(run_id) = name.strip_suffix(".lock")
            && !known.iter().any(|k| k == run_id)
            && lock_holder(layout, run_id).is_none()
        {
            let reason = format!("lock of run {run_id}, which does not exist");
            report.orphan(Some(run_id), entry.path(), reason);
        }
    }
    Ok(())
}

/// Every `.*.tmp` file under `dir`.
fn collect_temporaries(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.at(dir)?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().at(&path)?.is_dir() {
            collect_temporaries(&path, out)?;
        } else if name.starts_with('.') && name.ends_with(".tmp") {
            out.push(path);
        }
    }
    Ok(())
}

/// The process id in a temporary file name `.NAME.PID.tmp` (writer commits, space reserve).
fn writer_pid(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(".tmp")?;
    stem.rsplit_once(['.', '-']).and_then(|(_, pid)| pid.parse().ok())
}

/// Every file and directory of `run_id` under the root, the `runs` row first.
fn run_paths(layout: &Layout, run_id: &str) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = Table::PER_RUN
        .into_iter()
        .map(|table| layout.run_file(table, run_id))
        .filter(|p| p.exists())
        .collect();
    let own_temp = super::temporary_prefix(&format!("{run_id}.parquet"));
    for table in Table::PER_RUN {
        let dir = layout.table_dir(table);
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&own_temp) && name.ends_with(".tmp") {
                paths.push(entry.path());
            }
        }
    }
    let presentations = layout.table_dir(Table::Presentations);
    for entry in std::fs::read_dir(&presentations).into_iter().flatten().flatten() {
        let dir = entry.path().join(format!("run_id={run_id}"));
        if dir.is_dir() {
            paths.push(dir);
        }
    }
    let checkpoint_dir = layout.checkpoint_dir(run_id);
    if checkpoint_dir.is_dir() {
        paths.push(checkpoint_dir);
    }
    Ok(paths)
}

/// Removes the orphans of `report`, each run's under its lock: orphans of a run that a
/// process has started meanwhile are kept (a run just starting has files before its `runs`
/// row). Returns how many were removed.
///
/// # Errors
/// [`Error::Io`] when a path cannot be removed.
pub fn remove_orphans(layout: &Layout, report: &VerifyReport) -> Result<usize> {
    let mut removed = 0;
    for finding in &report.findings {
        let Finding::Orphan { path, run_id, .. } = finding else { continue };
        let _lock = match run_id {
            Some(run_id) => match lock_run(layout, run_id) {
                Ok(lock) => Some(lock),
                Err(Error::Config(_)) => continue,
                Err(e) => return Err(e),
            },
            None => None,
        };
        remove_inside(layout, path)?;
        removed += 1;
        // A deleted run's lock file goes too (taking the lock may have created it).
        if let Some(run_id) = run_id
            && !layout.run_file(Table::Runs, run_id).exists()
        {
            remove_inside(layout, &layout.lock_file(run_id))?;
        }
    }
    Ok(removed)
}

/// Deletes every file of each run of `run_ids` (each run's `runs` row first, so that a crash
/// midway leaves only orphans that no reader sees), holding their locks meanwhile. Nothing is
/// removed unless every run exists, no process holds one, and every path is inside the root.
/// Returns each run (once, however often it was named) with what was removed.
///
/// # Errors
/// [`Error::Config`] when the root has no such run, a process holds its lock, or a path
/// resolves outside the root; [`Error::Io`] when a file cannot be removed.
pub fn remove_runs(layout: &Layout, run_ids: &[RunId]) -> Result<Vec<(RunId, Vec<PathBuf>)>> {
    let mut planned: Vec<(RunId, Vec<PathBuf>)> = Vec::new();
    for run_id in run_ids {
        if planned.iter().any(|(known, _)| known == run_id) {
            continue;
        }
        let paths = run_paths(layout, run_id)?;
        if paths.is_empty() {
            return Err(Error::Config(format!(
                "no run {run_id} under {}; nothing was removed",
                layout.root().display()
            )));
        }
        for path in paths.iter().chain([&layout.lock_file(run_id)]) {
            check_inside(layout, path)?;
        }
        planned.push((run_id.clone(), paths));
    }
    let _locks: Vec<_> =
        planned.iter().map(|(run_id, _)| lock_run(layout, run_id)).collect::<Result<_>>()?;
    for (run_id, paths) in &planned {
        for path in paths {
            remove_inside(layout, path)?;
        }
        remove_inside(layout, &layout.lock_file(run_id))?;
    }
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_give_their_writer_pid() {
        assert_eq!(writer_pid(".part-0.parquet.4242.tmp"), Some(4242));
        assert_eq!(writer_pid(".space-reserve-77.tmp"), Some(77));
        assert_eq!(writer_pid(".epoch-3.pt.tmp"), None);
    }
}
