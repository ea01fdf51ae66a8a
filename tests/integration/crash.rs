//! Deterministic crash points (`FSTREAM_CRASH_POINT`): a run SIGKILLed at each step of the
//! commit protocol leaves no partial file for any reader, shows only what its `runs` row
//! declares, and resumes to presentations and dynamics bit-identical to an uninterrupted run.

use std::path::{Path, PathBuf};

use crate::util::{Workspace, committed_data_csv, parquet_files, train_command, train_crashing_at};

const CONFIG: [&str; 8] =
    ["--dataset", "mnist", "--seed", "2", "--epochs", "3", "--batch-size", "25"];
const TRAIN_EXAMPLES: usize = 200;

/// The points, each with a path filter and hit number that place it inside an epoch's commit.
const CRASHES: [&str; 16] = [
    "write-partial@/presentations/#2",
    "write-renamed@/presentations/#1",
    "epoch-after-presentations#2",
    "write-partial@/dynamics/#2",
    "write-renamed@/dynamics/#2",
    "epoch-after-dynamics#2",
    "checkpoint-partial#2",
    "write-renamed@/checkpoints/#1",
    "epoch-after-checkpoint#1",
    "write-partial@/epochs/#2",
    "write-renamed@/epochs/#1",
    "epoch-after-epochs-rows#2",
    "write-partial@/runs/#2",
    "write-renamed@/runs/#3",
    "epoch-after-runs-row#1",
    "write-partial@/runs/#5",
];

/// Trains with `spec` armed; asserts the process died by SIGKILL and returns the run id.
fn crash(ws: &Workspace, root: &Path, spec: &str) -> String {
    train_crashing_at(ws, root, &CONFIG, spec);
    let runs = parquet_files(&root.join("runs"));
    assert_eq!(runs.len(), 1, "{spec}: one runs row");
    runs[0].file_stem().unwrap().to_string_lossy().into_owned()
}

/// (status, epochs_completed) of the root's one run, and its visible presentation count.
fn committed_view(ws: &Workspace, root: &Path) -> (String, usize, usize) {
    let sql = ws.path().join("view.sql");
    std::fs::write(
        &sql,
        "SELECT r.status, r.epochs_completed, c.rows FROM runs r \
         CROSS JOIN (SELECT COUNT(*) AS rows FROM presentations) c",
    )
    .unwrap();
    let run = ws.fstream(&[
        "query",
        sql.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    run.assert_ok();
    let line = run.stdout().lines().nth(1).unwrap().to_string();
    let fields: Vec<&str> = line.split(',').collect();
    (fields[0].to_string(), fields[1].parse().unwrap(), fields[2].parse().unwrap())
}

/// Visible `dynamics` rows that cover other epochs than the `runs` row declares (0 when the
/// root has no dynamics file yet).
fn visible_dynamics_ahead(ws: &Workspace, root: &Path) -> usize {
    if parquet_files(&root.join("dynamics")).is_empty() {
        return 0;
    }
    let sql = ws.path().join("dynamics_view.sql");
    std::fs::write(
        &sql,
        "SELECT COUNT(*) AS rows FROM dynamics d JOIN runs r ON d.run_id = r.run_id \
         WHERE d.epochs <> r.epochs_completed",
    )
    .unwrap();
    ws.query_csv_at(&sql, root).lines().nth(1).unwrap().parse().unwrap()
}

/// Every `*.parquet` file under `root` is a complete Parquet file (read independently).
fn assert_every_parquet_file_is_complete(root: &Path, spec: &str) {
    for file in parquet_files(root) {
        let reader = std::fs::File::open(&file).unwrap();
        let parsed = parquet::file::reader::SerializedFileReader::new(reader);
        assert!(parsed.is_ok(), "{spec}: {} is not a complete Parquet file", file.display());
    }
}

#[test]
fn every_crash_point_leaves_committed_epochs_only_and_resumes_bit_identically() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(TRAIN_EXAMPLES, 20);
    let straight = ws.path().join("straight");
    let log = ws.path().join("straight.log");
    assert!(train_command(&ws, &straight, &log).args(CONFIG).status().unwrap().success());
    let expected = committed_data_csv(&ws, &straight);

    let mut crashed_copies: Vec<PathBuf> = Vec::new();
    for (i, spec) in CRASHES.iter().enumerate() {
        let root = ws.path().join(format!("crash{i}"));
        let run_id = crash(&ws, &root, spec);
        assert_every_parquet_file_is_complete(&root, spec);
        let (status, completed, rows) = committed_view(&ws, &root);
        assert_eq!(status, "running", "{spec}");
        assert_eq!(rows, completed * TRAIN_EXAMPLES, "{spec}: only declared epochs are visible");
        assert_eq!(visible_dynamics_ahead(&ws, &root), 0, "{spec}: dynamics of undeclared epochs");
        let copy = ws.path().join(format!("copy{i}"));
        crate::util::copy_dir(&root, &copy);
        crashed_copies.push(copy);

        let resume = train_command(&ws, &root, &ws.path().join("resume.log"))
            .args(["--resume", &run_id])
            .status()
            .unwrap();
        let stderr = std::fs::read_to_string(ws.path().join("resume.log")).unwrap();
        assert!(resume.success(), "{spec}: resume failed\n{stderr}");
        assert_eq!(committed_view(&ws, &root), ("complete".into(), 3, 3 * TRAIN_EXAMPLES));
        assert_eq!(committed_data_csv(&ws, &root), expected, "{spec}: not bit-identical");
        let verify = ws.fstream(&["verify", "--root", root.to_str().unwrap()]);
        verify.assert_ok();
        assert_eq!(verify.stdout(), "", "{spec}: verify finds nothing after the resume");
        eprintln!("crash point {spec}: {completed} epochs committed, resumed bit-identically");
    }

    // Other engines read every crashed root without error, and the documented committed
    // view gives the same rows as fstream.
    let Some(python) = std::env::var_os("FSTREAM_PYTHON") else {
        eprintln!("FSTREAM_PYTHON not set: pyarrow and DuckDB checks skipped");
        return;
    };
    let script = crate::util::repo_file("tests/integration/committed_view.py");
    let output =
        std::process::Command::new(python).arg(script).args(&crashed_copies).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    for (copy, line) in crashed_copies.iter().zip(stdout.lines()) {
        let (_, _, rows) = committed_view(&ws, copy);
        assert!(line.ends_with(&format!("committed {rows}")), "{}: {line}", copy.display());
    }
}

#[test]
fn a_crash_before_the_first_runs_row_leaves_only_hidden_orphans() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(TRAIN_EXAMPLES, 20);
    let root = ws.root();
    let log = ws.path().join("crash.log");
    train_crashing_at(&ws, &root, &CONFIG, "write-partial@/runs/#1");
    assert!(parquet_files(&root.join("runs")).is_empty());
    let verify = ws.fstream(&["verify", "--root", root.to_str().unwrap()]);
    verify.assert_ok();
    let orphans: Vec<String> = verify.stdout().lines().map(String::from).collect();
    assert!(orphans.iter().all(|l| l.starts_with("orphan\t")), "{orphans:?}");
    assert!(orphans.iter().any(|l| l.contains("/examples/")), "{orphans:?}");
    assert!(orphans.iter().any(|l| l.contains("/runs/.")), "the runs temp: {orphans:?}");
    ws.fstream(&["verify", "--root", root.to_str().unwrap(), "--remove-orphans"]).assert_ok();
    assert_eq!(ws.fstream(&["verify", "--root", root.to_str().unwrap()]).stdout(), "");
    // The same command with --resume starts the seed, which never got a run.
    let mut resume = train_command(&ws, &root, &log);
    resume.args(CONFIG).arg("--resume");
    assert!(resume.status().unwrap().success(), "{}", std::fs::read_to_string(&log).unwrap());
    assert_eq!(committed_view(&ws, &root), ("complete".into(), 3, 3 * TRAIN_EXAMPLES));
}
