//! Sweeps through a real single-node Slurm cluster (scripts/slurm-test-cluster.sh, started
//! per test): a small removal sweep end to end through sbatch, and an array task cancelled
//! mid-run with SIGTERM that resumes, when resubmitted, to a bit-identical result. Needs
//! root and the Debian Slurm packages; `scripts/test.sh` installs them and sets
//! FSTREAM_SLURM=1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::util::{
    Workspace, committed_data_csv, repo_file, tiny_removal_sweep, wait_for_parquet_files,
};

/// One cluster at a time: the daemons listen on fixed ports.
static CLUSTER: Mutex<()> = Mutex::new(());

/// A running cluster, stopped (its own daemons, by PID) when dropped.
struct Cluster {
    dir: PathBuf,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Cluster {
    /// Starts a cluster in `dir`, or `None` (test skipped) without FSTREAM_SLURM.
    fn start(dir: &Path) -> Option<Self> {
        if std::env::var_os("FSTREAM_SLURM").is_none_or(|v| v.is_empty()) {
            eprintln!("skipped: set FSTREAM_SLURM=1 (as root, with Slurm installed) to run it");
            return None;
        }
        let turn = CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
        let started = Command::new(repo_file("scripts/slurm-test-cluster.sh"))
            .arg("start")
            .arg(dir)
            .output()
            .unwrap();
        assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
        Some(Cluster { dir: dir.to_path_buf(), _turn: turn })
    }

    fn conf(&self) -> PathBuf {
        self.dir.join("slurm.conf")
    }

    /// A Slurm client or fstream command that talks to this cluster.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command.env("SLURM_CONF", self.conf()).env_remove("LIBTORCH");
        command
    }

    /// `fstream ARGS` against this cluster; asserts success and returns stdout.
    fn fstream(&self, args: &[&str]) -> String {
        let output = self.command(env!("CARGO_BIN_EXE_fstream")).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "fstream {args:?}: {stderr}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Polls `squeue` until the queue is empty (not `sbatch --wait`, which backs off to tens
    /// of seconds); fails after ten minutes.
    fn wait_for_empty_queue(&self) {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let output = self.command("squeue").args(["--noheader"]).output().unwrap();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            if output.stdout.iter().all(u8::is_ascii_whitespace) {
                return;
            }
            assert!(Instant::now() < deadline, "{}", String::from_utf8_lossy(&output.stdout));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo_file("scripts/slurm-test-cluster.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

/// `fstream sweep run SPEC --executor slurm` over the workspace; returns the job ids by stage.
fn submit(cluster: &Cluster, ws: &Workspace, spec: &Path) -> Vec<(String, String)> {
    let root = ws.root().display().to_string();
    let data = ws.data_dir().display().to_string();
    let spec = spec.display().to_string();
    let args = ["sweep", "run", &spec, "--root", &root, "--data-dir", &data, "--executor", "slurm"];
    let stdout = cluster.fstream(&[&args[..], &["--jobs", "2"]].concat());
    stdout
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields[1].to_string(), fields[0].to_string())
        })
        .collect()
}

/// `sweep status --format json`.
fn status(cluster: &Cluster, ws: &Workspace, spec: &Path) -> serde_json::Value {
    let root = ws.root().display().to_string();
    let spec = spec.display().to_string();
    let stdout = cluster.fstream(&["sweep", "status", &spec, "--root", &root, "--format", "json"]);
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn a_small_removal_sweep_runs_to_completion_through_sbatch() {
    let ws = Workspace::new();
    let Some(cluster) = Cluster::start(&ws.path().join("slurm")) else { return };
    ws.write_tiny_mnist(120, 20);
    let spec = ws.path().join("sweep.toml");
    std::fs::write(&spec, tiny_removal_sweep("cluster", &[1], &[0, 30, 60])).unwrap();
    let jobs = submit(&cluster, &ws, &spec);
    let stages: Vec<&str> = jobs.iter().map(|(stage, _)| stage.as_str()).collect();
    assert_eq!(stages, ["base", "order", "removal"]);
    let script =
        std::fs::read_to_string(ws.root().join("sweeps/cluster/slurm/order.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --job-name=fstream-cluster-order"), "{script}");
    cluster.wait_for_empty_queue();
    let status = status(&cluster, &ws, &spec);
    for stage in status["stages"].as_array().unwrap() {
        let counts = &stage["counts"];
        assert_eq!(counts["complete"], counts["total"], "{stage}");
    }
    assert_eq!(status["stages"][2]["counts"]["total"], 6);
    let sql = ws.path().join("sizes.sql");
    std::fs::write(
        &sql,
        "SELECT remove_n, train_examples, status FROM runs \
         WHERE run_id LIKE 'cluster-removal-%' ORDER BY remove_n, keep_lowest_n",
    )
    .unwrap();
    assert_eq!(
        ws.query_csv(&sql),
        "remove_n,train_examples,status\n0,120,complete\n0,120,complete\n\
         30,90,complete\n30,90,complete\n60,60,complete\n60,60,complete\n"
    );
    // Submitting again finds every task complete and submits nothing.
    assert_eq!(submit(&cluster, &ws, &spec), []);
}

#[test]
fn a_task_cancelled_with_sigterm_resumes_bit_identically_when_resubmitted() {
    let ws = Workspace::new();
    let Some(cluster) = Cluster::start(&ws.path().join("slurm")) else { return };
    ws.write_tiny_mnist(400, 10);
    let flags = ["--dataset", "mnist", "--epochs", "40", "--batch-size", "20", "--seed", "1"];
    let spec = ws.path().join("sweep.toml");
    std::fs::write(
        &spec,
        "name = \"cancel\"\n[train]\ndataset = \"mnist\"\nepochs = 40\nbatch_size = 20\n\
         device = \"cpu\"\nno_download = true\n[[stage]]\nname = \"base\"\nseeds = [1]\n",
    )
    .unwrap();
    let jobs = submit(&cluster, &ws, &spec);
    let job = &jobs[0].1;
    wait_for_parquet_files(&ws.root().join("epochs"), 1);
    let cancel = cluster
        .command("scancel")
        .args(["--full", "--signal=TERM", &format!("{job}_0")])
        .output()
        .unwrap();
    assert!(cancel.status.success(), "{}", String::from_utf8_lossy(&cancel.stderr));
    cluster.wait_for_empty_queue();
    let stopped = status(&cluster, &ws, &spec);
    let task = &stopped["stages"][0]["tasks"][0];
    assert_eq!(task["state"], "failed", "the run ended before the signal: {stopped}");
    assert_eq!(task["error"], "interrupted");
    let committed = task["epochs_completed"].as_u64().unwrap();
    assert!((1..40).contains(&committed), "{stopped}");

    let resubmitted = submit(&cluster, &ws, &spec);
    assert_eq!(resubmitted.len(), 1);
    cluster.wait_for_empty_queue();
    let done = status(&cluster, &ws, &spec);
    assert_eq!(done["stages"][0]["tasks"][0]["state"], "complete", "{done}");
    let id = task["id"].as_str().unwrap();
    let log =
        std::fs::read_to_string(ws.root().join(format!("sweeps/cancel/logs/{id}.log"))).unwrap();
    assert!(log.contains(&format!("resuming run {id} after epoch {committed} of 40")), "{log}");

    // The same run trained without interruption, outside Slurm.
    let uninterrupted = ws.path().join("uninterrupted");
    let root = uninterrupted.display().to_string();
    let data = ws.data_dir().display().to_string();
    let direct = ws.fstream(
        &[
            &["train", "--output-dir", &root, "--data-dir", &data, "--device", "cpu"][..],
            &["--threads", "1", "--no-download"],
            &flags,
        ]
        .concat(),
    );
    direct.assert_ok();
    assert_eq!(committed_data_csv(&ws, &ws.root()), committed_data_csv(&ws, &uninterrupted));
}
