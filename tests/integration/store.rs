//! Crash safety of the tables: a run killed mid-training leaves only complete files, and the
//! readers treat it as incomplete.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Workspace, parquet_files, read_presentations};

#[test]
fn killed_run_leaves_only_complete_epochs_visible() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(2000, 10);
    let mut child = Command::new(env!("CARGO_BIN_EXE_fstream"))
        .args(["train", "--dataset", "mnist", "--device", "cpu", "--threads", "1", "--no-download"])
        .args(["--epochs", "50", "--batch-size", "8"])
        .arg("--data-dir")
        .arg(ws.data_dir())
        .arg("--output-dir")
        .arg(ws.root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let presentations = ws.root().join("presentations");
    let deadline = Instant::now() + Duration::from_secs(120);
    while parquet_files(&presentations).len() < 2 {
        assert!(Instant::now() < deadline, "training produced no epochs in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let runs = read_presentations(&ws.root());
    let presentations = runs.values().next().unwrap();
    let epochs = presentations.iter().map(|p| p.epoch).max().unwrap();
    assert!((2..50).contains(&epochs), "killed after {epochs} epochs");
    assert_eq!(presentations.len(), epochs as usize * 2000, "every visible epoch is complete");

    let root = ws.root().display().to_string();
    let sql = ws.path().join("status.sql");
    std::fs::write(&sql, "SELECT status, epochs_completed FROM runs").unwrap();
    let status = ws.query_csv(&sql);
    let (state, completed) = status.lines().nth(1).unwrap().split_once(',').unwrap();
    assert_eq!(state, "running");
    let completed: u32 = completed.parse().unwrap();
    assert!(completed == epochs || completed + 1 == epochs, "{completed} vs {epochs}");

    ws.order("o", &[])
        .assert_exit_code(2)
        .assert_error_contains("incomplete runs exist: see --include-incomplete");
    let run = ws.fstream(&[
        "order",
        "--input-dir",
        &root,
        "--dataset",
        "mnist",
        "--include-incomplete",
        "--epochs",
        &completed.to_string(),
        "--output-dir",
        ws.path().to_str().unwrap(),
        "--output-name",
        "partial",
    ]);
    run.assert_ok();
    assert!(ws.path().join("partial.parquet").is_file());
}
