//! Crash safety of the tables: a run killed mid-training leaves only complete files, and the
//! readers treat it as incomplete.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{
    Workspace, committed_data_csv, parquet_files, read_presentations, signal, train_command,
    wait_for_parquet_files,
};

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
    wait_for_parquet_files(&presentations, 2);
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

#[test]
fn killed_and_resumed_run_is_bit_identical_to_an_uninterrupted_one() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(800, 20);
    let config = ["--dataset", "mnist", "--seed", "5", "--epochs", "6", "--batch-size", "20"];
    assert_kills_and_resumes_bit_identically(&ws, &config);
}

#[test]
fn killed_and_resumed_cifar_run_with_augmentation_adam_and_schedule_is_bit_identical() {
    let ws = Workspace::new();
    ws.write_tiny_cifar(10, 25, 5);
    let config = [
        "--dataset",
        "cifar10",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--data-augmentation",
        "--cutout",
        "--optimizer",
        "adam",
        "--lr-milestones",
        "1,2",
    ];
    assert_kills_and_resumes_bit_identically(&ws, &config);
}

/// Polls until `root` holds more committed presentation files than `committed` or `child`
/// exits; returns the new count, or `None` when the child exited first.
fn wait_for_commit(child: &mut Child, root: &Path, committed: usize) -> Option<usize> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let now = parquet_files(&root.join("presentations")).len();
        if now > committed {
            return Some(now);
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        assert!(Instant::now() < deadline, "no epoch committed in 300 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Trains `config` once straight through, timing its epoch commits, and once killed and
/// resumed until complete; every presentation must be identical. Kills follow observed
/// progress, never a fixed clock: each process is killed at a pseudo-random moment within
/// one measured epoch time after it commits its first new epoch, so every process makes
/// progress and the first one (of a run of several epochs) is always interrupted, however
/// fast or slow the machine.
fn assert_kills_and_resumes_bit_identically(ws: &Workspace, config: &[&str]) {
    let straight = ws.path().join("straight");
    let log = ws.path().join("train.log");
    let mut child = train_command(ws, &straight, &log).args(config).spawn().unwrap();
    let mut commits = Vec::new();
    while let Some(count) = wait_for_commit(&mut child, &straight, commits.len()) {
        commits.resize(count, Instant::now());
    }
    assert!(child.wait().unwrap().success(), "{}", std::fs::read_to_string(&log).unwrap());
    let epochs = parquet_files(&straight.join("presentations")).len();
    assert!(epochs >= 3, "the test needs several epochs, got {epochs}");
    // The shortest gap between two observed commits: one epoch at this machine's speed.
    let epoch_time = commits.windows(2).map(|w| w[1] - w[0]).filter(|d| !d.is_zero()).min();
    let epoch_micros = epoch_time.map_or(1000, |d| d.as_micros().max(1) as u64);

    let killed = ws.path().join("killed");
    let mut child = train_command(ws, &killed, &log).args(config).spawn().unwrap();
    wait_for_parquet_files(&killed.join("runs"), 1);
    let run_file = parquet_files(&killed.join("runs")).remove(0);
    let run_id = run_file.file_stem().unwrap().to_str().unwrap().to_string();

    // While the first process trains, a second one may not resume the same run. The first is
    // stopped meanwhile (it keeps its lock), so that the check costs it no progress.
    let root = killed.display().to_string();
    signal(&child, libc::SIGSTOP);
    let second = ws.fstream(&[
        "train",
        "--resume",
        &run_id,
        "--output-dir",
        &root,
        "--no-download",
        "--device",
        "cpu",
    ]);
    signal(&child, libc::SIGCONT);
    second
        .assert_exit_code(2)
        .assert_error_contains(&format!("run {run_id} is being trained by another process"));

    // Kill at pseudo-random points (different every test run, printed for reproduction),
    // resume, repeat until the run completes.
    let mut state =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
            as u64;
    let mut kills = Vec::new();
    loop {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = Duration::from_micros((state >> 33) % epoch_micros);
        let committed = parquet_files(&killed.join("presentations")).len();
        let progressed = wait_for_commit(&mut child, &killed, committed).is_some();
        let started = Instant::now();
        let finished = !progressed
            || loop {
                if child.try_wait().unwrap().is_some() {
                    break true;
                }
                if started.elapsed() >= delay {
                    break false;
                }
                std::thread::sleep(Duration::from_micros(200));
            };
        if finished {
            let status = child.wait().unwrap();
            let stderr = std::fs::read_to_string(&log).unwrap();
            // A kill between the final commit and the exit leaves a complete run, whose
            // resume is refused.
            let already_complete = stderr.contains("the run is already complete");
            assert!(status.success() || already_complete, "after kills {kills:?}:\n{stderr}");
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills.push(format!("{} us after commit {}", delay.as_micros(), committed + 1));
        assert!(kills.len() <= epochs, "the run never completed");
        child = train_command(ws, &killed, &log).args(["--resume", &run_id]).spawn().unwrap();
    }
    eprintln!("killed {kills:?} (epoch time {epoch_micros} us), then resumed");
    assert!(!kills.is_empty(), "the run was never interrupted");
    assert_eq!(committed_data_csv(ws, &killed), committed_data_csv(ws, &straight));
}

#[test]
fn each_presentation_records_its_batch_across_gathered_messages() {
    // 5,000 examples in batches of 64: 78 full batches and one of 8 per epoch, sent to the
    // writer 4,096 presentations at a time (record::ROWS_PER_MESSAGE), so an epoch spans two
    // messages and a batch can straddle them.
    let ws = Workspace::new();
    ws.write_tiny_mnist(5000, 10);
    ws.train(&["--epochs", "2", "--batch-size", "64"]).assert_ok();
    let sql = ws.path().join("steps.sql");
    std::fs::write(
        &sql,
        "SELECT epoch, step, COUNT(*) AS n, COUNT(DISTINCT example_id) AS ids \
         FROM presentations GROUP BY epoch, step ORDER BY epoch, step",
    )
    .unwrap();
    let csv = ws.query_csv(&sql);
    let rows: Vec<(i64, u32, u32, u32)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(i64, u32, u32, u32)> = (0..2u32)
        .flat_map(|e| {
            (0..79u32).map(move |b| {
                let n = if b == 78 { 8 } else { 64 };
                (i64::from(e) + 1, e * 79 + b, n, n)
            })
        })
        .collect();
    assert_eq!(rows, expected);
}

#[test]
fn write_error_fails_the_run_with_a_clear_message_and_readable_tables() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(200, 10);
    let log = ws.path().join("train.log");
    // 100 KB per file: enough for the tables, too little for the 180 KB model checkpoint.
    let script = format!(
        "ulimit -f 100; exec '{}' train --dataset mnist --epochs 3 --device cpu --threads 1 --no-download --data-dir '{}' --output-dir '{}'",
        env!("CARGO_BIN_EXE_fstream"),
        ws.data_dir().display(),
        ws.root().display()
    );
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("fstream: error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("training into"), "{}", errors[0]);

    let sql = ws.path().join("status.sql");
    std::fs::write(
        &sql,
        "SELECT status, error IS NOT NULL AS has_error, epochs_completed FROM runs",
    )
    .unwrap();
    assert_eq!(ws.query_csv(&sql), "status,has_error,epochs_completed\nfailed,true,0\n");
    assert!(
        parquet_files(&ws.root().join("presentations")).is_empty(),
        "no partial epoch is visible"
    );
}

#[test]
fn two_processes_train_into_one_root_at_once() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(300, 10);
    let spawn = |seed: &str| {
        let log = ws.path().join(format!("seed{seed}.log"));
        train_command(&ws, &ws.root(), &log)
            .args(["--dataset", "mnist", "--epochs", "3", "--seed", seed])
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn("1"), spawn("2"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let sql = ws.path().join("runs.sql");
    std::fs::write(&sql, "SELECT seed, status, epochs_completed FROM runs ORDER BY seed").unwrap();
    assert_eq!(ws.query_csv(&sql), "seed,status,epochs_completed\n1,complete,3\n2,complete,3\n");
    let runs = read_presentations(&ws.root());
    assert_eq!(runs.len(), 2);
    assert!(runs.values().all(|p| p.len() == 3 * 300));
}

#[test]
fn ctrl_c_marks_the_run_failed_and_it_resumes_to_completion() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(800, 20);
    let log = ws.path().join("train.log");
    let config = ["--dataset", "mnist", "--seed", "3", "--epochs", "40", "--batch-size", "20"];
    let mut child = train_command(&ws, &ws.root(), &log).args(config).spawn().unwrap();
    wait_for_parquet_files(&ws.root().join("presentations"), 1);
    signal(&child, libc::SIGINT);
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("fstream: error: training into") && stderr.ends_with(": interrupted\n"),
        "{stderr}"
    );
    assert!(stderr.contains("continue it with: fstream train --resume"), "{stderr}");

    let sql = ws.path().join("status.sql");
    std::fs::write(&sql, "SELECT run_id, status, error, epochs_completed FROM runs").unwrap();
    let csv = ws.query_csv(&sql);
    let fields: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(&fields[1..3], ["failed", "interrupted"], "{csv}");
    let completed: u32 = fields[3].parse().unwrap();
    assert!((1..40).contains(&completed), "{csv}");

    let root = ws.root().display().to_string();
    ws.fstream(&[
        "train",
        "--resume",
        fields[0],
        "--output-dir",
        &root,
        "--device",
        "cpu",
        "--no-download",
        "--data-dir",
        ws.data_dir().to_str().unwrap(),
    ])
    .assert_ok();
    assert_eq!(ws.query_csv(&sql).lines().nth(1).unwrap(), format!("{},complete,,40", fields[0]));
    assert_eq!(read_presentations(&ws.root()).values().next().unwrap().len(), 40 * 800);
}
