//! Operating a root: resume that checks what it resumes, resuming a whole experiment,
//! failures that are states (divergence, SIGTERM, a full disk), and `runs`, `verify`, `rm`.

use std::path::Path;
use std::process::Command;

use crate::util::{
    Workspace, committed_data_csv, parquet_files, signal, train_command, train_crashing_at,
    wait_for_parquet_files,
};

/// The root's runs as `seed,status,epochs_completed,error` lines, by seed.
fn runs_csv(ws: &Workspace) -> String {
    let sql = ws.path().join("runs.sql");
    std::fs::write(
        &sql,
        "SELECT seed, status, epochs_completed, error FROM runs ORDER BY seed, started_at",
    )
    .unwrap();
    ws.query_csv(&sql)
}

/// The run id of the root's only run (its `runs` file name).
fn only_run_id(root: &Path) -> String {
    let runs = parquet_files(&root.join("runs"));
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].file_stem().unwrap().to_string_lossy().into_owned()
}

/// Writes the workspace's tiny MNIST into `other` with the training examples in reverse
/// order: the same images and labels, other data.
fn write_reversed_copy(ws: &Workspace, other: &Path) {
    let from = ws.data_dir().join("mnist");
    let to = other.join("mnist");
    std::fs::create_dir_all(&to).unwrap();
    for (name, header, record) in
        [("train-images-idx3-ubyte", 16, 784), ("train-labels-idx1-ubyte", 8, 1)]
    {
        let bytes = std::fs::read(from.join(name)).unwrap();
        let mut reversed = bytes[..header].to_vec();
        for chunk in bytes[header..].chunks(record).rev() {
            reversed.extend_from_slice(chunk);
        }
        std::fs::write(to.join(name), reversed).unwrap();
    }
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

#[test]
fn resume_checks_the_data_and_the_flags_and_extends_a_complete_run() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(100, 10);
    ws.train(&["--epochs", "1"]).assert_ok();
    let run_id = only_run_id(&ws.root());
    let root = ws.root().display().to_string();
    let resume = |extra: &[&str]| {
        let mut args = vec!["train", "--resume", &run_id, "--output-dir", &root, "--no-download"];
        args.extend_from_slice(extra);
        ws.fstream(&args)
    };
    resume(&[])
        .assert_exit_code(2)
        .assert_error_contains("the run is already complete (1 epochs; --epochs N extends it)");

    let other = ws.path().join("reversed");
    write_reversed_copy(&ws, &other);
    let recorded = std::fs::canonicalize(ws.data_dir()).unwrap().display().to_string();
    resume(&["--epochs", "2", "--data-dir", other.to_str().unwrap()])
        .assert_exit_code(2)
        .assert_error_contains(&format!(
            "--data-dir {}: not the data run {run_id} was trained on (recorded: {recorded} with sha256",
            other.display()
        ));
    resume(&["--epochs", "2", "--lr", "0.5"]).assert_exit_code(2).assert_error_contains(&format!(
        "--lr contradicts the recorded configuration of run {run_id}: lr = 0.05"
    ));
    resume(&["--epochs", "2", "--seed", "9"])
        .assert_exit_code(2)
        .assert_error_contains("--seed contradicts the recorded configuration");
    resume(&["--epochs", "2", "--dataset", "permuted_mnist"])
        .assert_exit_code(2)
        .assert_error_contains("--dataset contradicts the recorded configuration");
    assert_eq!(runs_csv(&ws), "seed,status,epochs_completed,error\n1,complete,1,\n");

    // Flags that agree with the record are accepted; --epochs extends the complete run, and
    // the result equals a run trained for two epochs straight.
    resume(&["--epochs", "2", "--lr", "0.05", "--batch-size", "16"]).assert_ok();
    assert_eq!(runs_csv(&ws), "seed,status,epochs_completed,error\n1,complete,2,\n");
    let straight = Workspace::new();
    straight.write_tiny_mnist(100, 10);
    straight.train(&["--epochs", "2"]).assert_ok();
    assert_eq!(
        committed_data_csv(&ws, &ws.root()),
        committed_data_csv(&straight, &straight.root())
    );
    resume(&["--epochs", "1"])
        .assert_exit_code(2)
        .assert_error_contains(&format!("--epochs 1: run {run_id} has already committed 2 epochs"));
}

#[test]
fn resume_without_an_id_continues_an_experiment() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(100, 10);
    let experiment = ["--epochs", "3", "--seeds", "1..3"];
    ws.train(&["--epochs", "3", "--seed", "1"]).assert_ok();
    // Seed 2 is killed after its first epoch; seed 3 never starts.
    let seed_2 = ["--dataset", "mnist", "--batch-size", "16", "--lr", "0.05", "--epochs", "3"];
    let seed_2 = [&seed_2[..], &["--seed", "2"]].concat();
    train_crashing_at(&ws, &ws.root(), &seed_2, "epoch-after-runs-row#1");
    let before: Vec<String> = parquet_files(&ws.root().join("runs"))
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(runs_csv(&ws), "seed,status,epochs_completed,error\n1,complete,3,\n2,running,1,\n");

    let mut args = experiment.to_vec();
    args.push("--resume");
    let run = ws.train(&args);
    run.assert_ok();
    let stdout = run.stdout();
    let trained: Vec<&str> = stdout.lines().collect();
    assert_eq!(trained.len(), 2, "seed 2 resumed and seed 3 started: {trained:?}");
    assert!(before.iter().any(|id| id == trained[0]), "seed 2 keeps its run: {trained:?}");
    assert!(run.stderr().contains("(seed 1) is already complete"), "{}", run.stderr());
    assert_eq!(
        runs_csv(&ws),
        "seed,status,epochs_completed,error\n1,complete,3,\n2,complete,3,\n3,complete,3,\n"
    );
    // Everything is complete now: nothing to do.
    let again = ws.train(&args);
    again.assert_ok();
    assert_eq!(again.stdout(), "");
}

#[test]
fn a_diverging_run_fails_naming_run_epoch_and_step() {
    for record in [true, false] {
        let ws = Workspace::new();
        ws.write_tiny_mnist(100, 10);
        let mut args = vec!["--epochs", "3", "--lr", "1e30"];
        if !record {
            args.push("--no-record");
        }
        let run = ws.train(&args);
        run.assert_exit_code(1).assert_error_contains("diverged: non-finite loss at epoch 1, step");
        let csv = runs_csv(&ws);
        assert!(csv.contains("\n1,failed,0,") && csv.contains("diverged"), "{record}: {csv}");
        assert!(parquet_files(&ws.root().join("presentations")).is_empty());
    }
}

#[test]
fn training_on_nothing_is_an_input_error_before_anything_is_written() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(40, 5);
    ws.train(&["--epochs", "1", "--remove-n", "40", "--keep-lowest-n", "-1"])
        .assert_exit_code(2)
        .assert_error_contains("no training examples left");
    let empty = Workspace::new();
    empty.write_tiny_mnist(0, 5);
    empty
        .train(&["--epochs", "1"])
        .assert_exit_code(2)
        .assert_error_contains("the training set of mnist has no examples");
    assert!(!ws.root().exists() && !empty.root().exists(), "nothing is written");
}

#[test]
fn sigterm_stops_the_run_resumably_and_the_printed_hint_works() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(400, 10);
    let log = ws.path().join("train.log");
    let mut child = train_command(&ws, &ws.root(), &log)
        .args(["--dataset", "mnist", "--epochs", "30", "--batch-size", "20"])
        .spawn()
        .unwrap();
    wait_for_parquet_files(&ws.root().join("presentations"), 1);
    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stderr.ends_with(": interrupted\n"), "{stderr}");
    let csv = runs_csv(&ws);
    assert!(csv.contains(",failed,") && csv.ends_with(",interrupted\n"), "{csv}");
    let hint = stderr
        .lines()
        .find_map(|l| l.split_once("continue it with: fstream ").map(|(_, rest)| rest.to_string()))
        .unwrap_or_else(|| panic!("no hint in {stderr}"));
    assert!(hint.contains("--data-dir"), "{hint}");
    // Run the hint as printed, from another directory.
    let resumed = Command::new("sh")
        .arg("-c")
        .arg(format!("'{}' {hint}", env!("CARGO_BIN_EXE_fstream")))
        .current_dir("/")
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(runs_csv(&ws), "seed,status,epochs_completed,error\n1,complete,30,\n");
    // Device and threads stayed as recorded (the hint names neither).
    let sql = ws.path().join("device.sql");
    std::fs::write(&sql, "SELECT device, intra_op_threads FROM runs").unwrap();
    assert_eq!(ws.query_csv(&sql), "device,intra_op_threads\ncpu,1\n");
}

#[test]
fn too_many_seeds_are_refused_before_anything_is_written() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(40, 5);
    ws.train(&["--seeds", "1..100000"])
        .assert_exit_code(2)
        .assert_error_contains("--seeds: 100000 runs exceed the limit of 64 concurrent runs");
    assert!(!ws.root().exists());
}

#[test]
fn a_full_disk_fails_the_run_names_the_file_and_leaves_no_temporary_file() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(200, 10);
    let mount = ws.path().join("small");
    let copy = ws.path().join("copy");
    std::fs::create_dir_all(&mount).unwrap();
    // A 400 KB filesystem, private to one shell (user and mount namespace): the root fits the
    // tables and one checkpoint, not the next.
    let script = format!(
        "mount -t tmpfs -o size=400k tmpfs '{mount}' || exit 77; \
         '{bin}' train --dataset mnist --epochs 20 --device cpu --threads 1 --no-download \
         --data-dir '{data}' --output-dir '{mount}/root' 2> '{log}'; echo $? > '{copy}.code'; \
         cp -a '{mount}/root' '{copy}'",
        mount = mount.display(),
        bin = env!("CARGO_BIN_EXE_fstream"),
        data = ws.data_dir().display(),
        log = ws.path().join("train.log").display(),
        copy = copy.display(),
    );
    let status = Command::new("unshare").args(["-rm", "sh", "-c", &script]).status();
    if !status.as_ref().is_ok_and(|s| s.success()) {
        eprintln!("skipped: no private tmpfs here (unshare -rm: {status:?})");
        return;
    }
    let stderr = std::fs::read_to_string(ws.path().join("train.log")).unwrap();
    let code = std::fs::read_to_string(ws.path().join("copy.code")).unwrap();
    assert_eq!(code.trim(), "1", "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("fstream: error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("No space left on device"), "{}", errors[0]);
    assert!(
        errors[0].contains(&format!("{}/root/", mount.display())),
        "names the file: {}",
        errors[0]
    );
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_fstream"))
        .args(["runs", "--root", copy.to_str().unwrap(), "--format", "csv"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&status.stdout);
    assert!(listing.lines().nth(1).is_some_and(|l| l.contains(",failed,")), "{listing}");
    let mut temporaries = Vec::new();
    for file in walk(&copy) {
        if file.to_string_lossy().ends_with(".tmp") {
            temporaries.push(file);
        }
    }
    assert!(temporaries.is_empty(), "temporary files left: {temporaries:?}");
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            files.extend(walk(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

#[test]
fn runs_verify_and_rm_operate_a_root() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(400, 10);
    ws.train(&["--epochs", "2", "--seed", "1"]).assert_ok();
    let root = ws.root().display().to_string();
    let log = ws.path().join("live.log");
    let mut live = train_command(&ws, &ws.root(), &log)
        .args(["--dataset", "mnist", "--epochs", "500", "--batch-size", "20", "--seed", "2"])
        .spawn()
        .unwrap();
    wait_for_parquet_files(&ws.root().join("presentations"), 3);
    let listing = ws.fstream(&["runs", "--root", &root, "--format", "csv"]);
    listing.assert_ok();
    let rows: Vec<Vec<String>> = listing
        .stdout()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{}", listing.stdout());
    assert_eq!(rows[0][2..4], ["1".to_string(), "complete".to_string()]);
    assert_eq!(rows[0][4..6], ["2".to_string(), "2".to_string()]);
    assert!(rows[0][6].parse::<f64>().is_ok(), "last test accuracy: {:?}", rows[0]);
    assert_eq!(rows[1][2..4], ["2".to_string(), "training".to_string()]);
    assert_eq!(rows[1][7], live.id().to_string(), "the live process");
    let live_id = rows[1][0].clone();
    let filtered = ws.fstream(&["runs", "--root", &root, "--where", "seed = 1", "--format", "csv"]);
    assert_eq!(filtered.stdout().lines().count(), 2, "{}", filtered.stdout());
    ws.fstream(&["rm", &live_id, "--root", &root])
        .assert_exit_code(2)
        .assert_error_contains(&format!("run {live_id} is being trained by another process"));

    live.kill().unwrap();
    live.wait().unwrap();
    let listing = ws.fstream(&["runs", "--root", &root, "--format", "csv"]).stdout();
    assert!(listing.contains(",stopped (resume it),"), "{listing}");

    // Damage: a truncated epoch file and a deleted checkpoint are found, exit 1.
    let done_id = rows[0][0].clone();
    let victim = ws
        .root()
        .join(format!("presentations/dataset=mnist/run_id={done_id}/epoch=2/part-0.parquet"));
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let verify = ws.fstream(&["verify", "--root", &root]);
    verify.assert_exit_code(1).assert_error_contains("1 damaged file (listed on stdout)");
    assert!(
        verify
            .stdout()
            .contains(&format!("damage\t{}\tnot a complete Parquet file", victim.display())),
        "{}",
        verify.stdout()
    );
    std::fs::write(&victim, &bytes).unwrap();
    ws.fstream(&["verify", "--root", &root]).assert_ok();

    // rm deletes the stopped run everywhere; the root then verifies clean.
    ws.fstream(&["rm", &live_id, "--root", &root]).assert_ok();
    let left: Vec<_> =
        walk(&ws.root()).into_iter().filter(|p| p.to_string_lossy().contains(&live_id)).collect();
    assert!(left.is_empty(), "{left:?}");
    let verify = ws.fstream(&["verify", "--root", &root]);
    verify.assert_ok();
    assert!(!verify.stdout().contains(&live_id), "{}", verify.stdout());
    // What is left is the killed process's disk reserve, which verify removes on request.
    ws.fstream(&["verify", "--root", &root, "--remove-orphans"]).assert_ok();
    assert_eq!(ws.fstream(&["verify", "--root", &root]).stdout(), "");
    assert_eq!(runs_csv(&ws), "seed,status,epochs_completed,error\n1,complete,2,\n");
    ws.fstream(&["rm", &live_id, "--root", &root])
        .assert_exit_code(2)
        .assert_error_contains(&format!("no run {live_id} under"));
}

#[test]
fn runs_lists_a_run_that_never_committed_an_epoch() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(100, 10);
    let args = ["--dataset", "mnist", "--epochs", "2"];
    train_crashing_at(&ws, &ws.root(), &args, "epoch-after-presentations#1");
    let root = ws.root().display().to_string();
    let listing = ws.fstream(&["runs", "--root", &root, "--format", "csv"]);
    listing.assert_ok();
    let row = listing.stdout().lines().nth(1).unwrap().to_string();
    let fields: Vec<&str> = row.split(',').collect();
    assert_eq!(fields[2..8], ["1", "stopped (resume it)", "0", "2", "", ""], "{row}");
}
