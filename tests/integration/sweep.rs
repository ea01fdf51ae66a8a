//! Sweeps: the paper's specs expand to the runs the reference's README implies, a small
//! removal sweep runs to completion with the local executor (removal runs train on exactly
//! N − r examples), running it again trains nothing, a killed sweep finishes when run again,
//! and `queries/removal_curve.sql` agrees with the epochs it summarises.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::{Workspace, repo_file, signal, tiny_removal_sweep};

/// `fstream sweep status SPEC --root ROOT --format json`, parsed.
fn status(ws: &Workspace, spec: &Path, root: &Path) -> serde_json::Value {
    let run = ws.fstream(&[
        "sweep",
        "status",
        spec.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--format",
        "json",
    ]);
    run.assert_ok();
    serde_json::from_str(&run.stdout()).unwrap()
}

/// The one sorting file a sweep's order stage wrote: `ROOT/sweeps/SWEEP/order-HASH.parquet`
/// (the newest, when an edited spec wrote another).
fn sorting_file(root: &Path, sweep: &str) -> std::path::PathBuf {
    let dir = root.join("sweeps").join(sweep);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("order-") && name.ends_with(".parquet")
        })
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    files.pop().unwrap_or_else(|| panic!("no sorting file in {}", dir.display()))
}

/// Per stage: (tasks, complete).
fn stage_counts(status: &serde_json::Value) -> BTreeMap<String, (u64, u64)> {
    status["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let counts = &s["counts"];
            let name = s["stage"].as_str().unwrap().to_string();
            (name, (counts["total"].as_u64().unwrap(), counts["complete"].as_u64().unwrap()))
        })
        .collect()
}

#[test]
fn every_paper_spec_expands_to_the_runs_the_readme_implies() {
    let ws = Workspace::new();
    let root = ws.root();
    // (spec, tasks per stage): 5 base runs, one order step, then the grid × 5 seeds.
    let expected: [(&str, &[(&str, u64)]); 7] = [
        ("fig6-mnist-removal", &[("base", 5), ("order", 1), ("removal", 600)]),
        ("fig6-permuted-mnist-removal", &[("base", 5), ("order", 1), ("removal", 600)]),
        ("fig5-left-cifar10-removal", &[("base", 5), ("order", 1), ("removal", 500)]),
        ("fig5-right-cifar10-window", &[("base", 5), ("order", 1), ("window", 250), ("random", 5)]),
        ("fig3-cifar10-label-noise", &[("noisy", 1)]),
        ("fig11-cifar10-pixel-noise", &[("pixel-noise", 4)]),
        ("small-mnist-removal", &[("base", 2), ("order", 1), ("removal", 16)]),
    ];
    for (name, stages) in expected {
        let spec = repo_file(&format!("sweeps/{name}.toml"));
        let status = status(&ws, &spec, &root);
        let counts = stage_counts(&status);
        let want: BTreeMap<String, (u64, u64)> =
            stages.iter().map(|&(s, n)| (s.to_string(), (n, 0))).collect();
        assert_eq!(counts, want, "{name}");
        let ids: Vec<&str> = status["stages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["tasks"].as_array().unwrap())
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "{name}: run ids repeat");
        assert!(ids.iter().all(|id| id.starts_with(&format!("{name}-"))), "{name}");
    }
    // Figure 6's grid is the README's: remove_n in range(0, 60000, 1000), k in {0, -1}.
    let fig6 = status(&ws, &repo_file("sweeps/fig6-mnist-removal.toml"), &root);
    let removal = &fig6["stages"][2]["tasks"];
    let levels: BTreeSet<i64> = removal
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["varying"]["remove_n"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(levels, (0..60000).step_by(1000).collect::<BTreeSet<i64>>());
    assert!(!root.exists(), "status writes nothing");
}

/// The workspace's spec file with `text`.
fn write_spec(ws: &Workspace, text: &str) -> std::path::PathBuf {
    let path = ws.path().join("sweep.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `fstream sweep run SPEC` over the workspace's data and root, with `extra` flags.
fn sweep_run(ws: &Workspace, spec: &Path, extra: &[&str]) -> crate::util::Run {
    let data = ws.data_dir().display().to_string();
    let root = ws.root().display().to_string();
    let mut args =
        vec!["sweep", "run", spec.to_str().unwrap(), "--root", &root, "--data-dir", &data];
    args.extend_from_slice(extra);
    ws.fstream(&args)
}

/// Modification times of every file under `dir`, by path.
fn mtimes(dir: &Path) -> BTreeMap<String, std::time::SystemTime> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(mtimes(&path));
        } else {
            out.insert(path.display().to_string(), entry.metadata().unwrap().modified().unwrap());
        }
    }
    out
}

/// Rows of a CSV (header dropped), split at commas.
fn csv_rows(csv: &str) -> Vec<Vec<String>> {
    csv.lines().skip(1).map(|l| l.split(',').map(String::from).collect()).collect()
}

#[test]
fn a_small_removal_sweep_runs_locally_and_running_it_again_trains_nothing() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(120, 20);
    let spec = write_spec(&ws, &tiny_removal_sweep("tiny", &[1, 2], &[0, 30, 60]));
    let root = ws.root();
    let run = sweep_run(&ws, &spec, &["--jobs", "2", "--threads", "2"]);
    run.assert_ok();
    assert!(
        run.stdout().contains("sweep tiny: 15 complete (0 before), 0 failed"),
        "{}",
        run.stdout()
    );
    let counts = stage_counts(&status(&ws, &spec, &root));
    let want = [("base", (2, 2)), ("order", (1, 1)), ("removal", (12, 12))];
    assert_eq!(counts, want.map(|(s, c)| (s.to_string(), c)).into_iter().collect());

    // Each removal run trained on exactly N − r examples, every epoch; selected removal took
    // ranks 0..r of the sorting file.
    let sql = ws.path().join("sizes.sql");
    std::fs::write(
        &sql,
        "SELECT r.run_id, r.remove_n, r.keep_lowest_n, r.train_examples, \
         SUM(CASE WHEN p.epoch = 1 THEN 1 ELSE 0 END) AS epoch_1, \
         SUM(CASE WHEN p.epoch = 2 THEN 1 ELSE 0 END) AS epoch_2 FROM runs r JOIN presentations p \
         ON p.run_id = r.run_id WHERE r.run_id LIKE 'tiny-removal-%' \
         GROUP BY r.run_id, r.remove_n, r.keep_lowest_n, r.train_examples ORDER BY r.run_id",
    )
    .unwrap();
    let rows = csv_rows(&ws.query_csv(&sql));
    assert_eq!(rows.len(), 12);
    let levels: BTreeSet<(u32, i64)> =
        rows.iter().map(|r| (r[1].parse().unwrap(), r[2].parse().unwrap())).collect();
    let grid: BTreeSet<(u32, i64)> = [0, 30, 60].iter().flat_map(|&n| [(n, 0), (n, -1)]).collect();
    assert_eq!(levels, grid);
    for row in &rows {
        let removed: u32 = row[1].parse().unwrap();
        assert_eq!(row[3], (120 - removed).to_string(), "{row:?}");
        assert_eq!(row[4], (120 - removed).to_string(), "{row:?}");
        assert_eq!(row[5], (120 - removed).to_string(), "{row:?}");
    }
    let order = crate::util::read_order_csv(&sorting_file(&root, "tiny").with_extension("csv"));
    let lowest: BTreeSet<u32> = order.iter().take(60).map(|row| row.0).collect();
    let sql = ws.path().join("removed.sql");
    std::fs::write(
        &sql,
        "SELECT e.example_id FROM examples e JOIN runs r ON e.run_id = r.run_id \
         WHERE r.remove_n = 60 AND r.keep_lowest_n = 0 AND r.seed = 1 AND NOT e.in_training_set \
         ORDER BY e.example_id",
    )
    .unwrap();
    let removed: BTreeSet<u32> =
        csv_rows(&ws.query_csv(&sql)).iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(removed, lowest);

    // Running it again starts no process and touches no file of the root.
    let before = mtimes(&root);
    let again = sweep_run(&ws, &spec, &["--jobs", "2"]);
    again.assert_ok();
    assert!(again.stdout().contains("sweep tiny: 15 complete (15 before), 0 failed"));
    assert!(!again.stderr().contains("start "), "{}", again.stderr());
    assert_eq!(mtimes(&root), before);

    assert_removal_curve_matches_the_epochs(&ws);
}

#[test]
fn a_task_that_fails_before_its_run_starts_shows_as_failed_with_its_error() {
    // No data: the train command fails while loading it, before any run exists.
    let ws = Workspace::new();
    let spec = write_spec(
        &ws,
        "name = \"bad\"\n[train]\ndataset = \"mnist\"\nepochs = 1\ndevice = \"cpu\"\nno_download = true\n\n[[stage]]\nname = \"base\"\n",
    );
    let run = sweep_run(&ws, &spec, &["--jobs", "1"]);
    assert_ne!(run.output.status.code(), Some(0), "{}", run.stderr());
    let status = status(&ws, &spec, &ws.root());
    let task = &status["stages"][0]["tasks"][0];
    assert_eq!(task["state"], "failed", "{status}");
    let error = task["error"].as_str().unwrap_or_default();
    assert!(error.contains("missing train-images-idx3-ubyte"), "{status}");
}

#[test]
fn an_edited_base_stage_recomputes_its_order_and_trains_new_removal_runs() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(60, 10);
    let text = tiny_removal_sweep("edit", &[1], &[10]);
    let spec = write_spec(&ws, &text);
    sweep_run(&ws, &spec, &["--jobs", "1"]).assert_ok();
    let counted = || {
        let file = std::fs::File::open(sorting_file(&ws.root(), "edit")).unwrap();
        let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
        let metadata = parquet::file::reader::FileReader::metadata(&reader).file_metadata();
        let runs =
            metadata.key_value_metadata().unwrap().iter().find(|kv| kv.key == "fstream.runs");
        let mut runs: Vec<String> =
            runs.unwrap().value.clone().unwrap().split(',').map(String::from).collect();
        runs.sort();
        runs
    };
    let first = counted();
    // Another learning rate: other base runs, so the old sorting file is stale.
    let spec = write_spec(&ws, &text.replace("lr = 0.05", "lr = 0.04"));
    let counts = stage_counts(&status(&ws, &spec, &ws.root()));
    let want = [("base", (2, 0)), ("order", (1, 0)), ("removal", (2, 0))];
    assert_eq!(counts, want.map(|(s, c)| (s.to_string(), c)).into_iter().collect());
    sweep_run(&ws, &spec, &["--jobs", "1"]).assert_ok();
    let second = counted();
    assert_ne!(first, second);
    let sql = ws.path().join("runs.sql");
    std::fs::write(
        &sql,
        "SELECT run_id, lr FROM runs WHERE run_id LIKE 'edit-base-%' ORDER BY run_id",
    )
    .unwrap();
    let new_base: Vec<String> = csv_rows(&ws.query_csv(&sql))
        .into_iter()
        .filter(|row| row[1] == "0.04")
        .map(|row| row[0].clone())
        .collect();
    assert_eq!(second, new_base, "the new order counts the new base runs");
    std::fs::write(&sql, "SELECT COUNT(*) AS n FROM runs WHERE run_id LIKE 'edit-removal-%'")
        .unwrap();
    assert_eq!(ws.query_csv(&sql), "n\n4\n", "new removal runs beside the old ones");
}

/// `queries/removal_curve.sql` against means and standard deviations computed here from the
/// final epochs of the runs.
fn assert_removal_curve_matches_the_epochs(ws: &Workspace) {
    let sql = ws.path().join("finals.sql");
    std::fs::write(
        &sql,
        "SELECT r.remove_n, r.keep_lowest_n, r.sorting_file IS NULL AS base, e.test_acc \
         FROM runs r JOIN epochs e ON e.run_id = r.run_id AND e.epoch = r.epochs",
    )
    .unwrap();
    let mut groups: BTreeMap<(u32, i64, bool), Vec<f64>> = BTreeMap::new();
    for row in csv_rows(&ws.query_csv(&sql)) {
        let key = (row[0].parse().unwrap(), row[1].parse().unwrap(), row[2] == "true");
        groups.entry(key).or_default().push(row[3].parse().unwrap());
    }
    let curve = ws.query_csv(&repo_file("queries/removal_curve.sql"));
    let header: Vec<&str> = curve.lines().next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows = csv_rows(&curve);
    assert_eq!(rows.len(), groups.len(), "{curve}");
    for row in rows {
        let key = (
            row[at("remove_n")].parse().unwrap(),
            row[at("keep_lowest_n")].parse().unwrap(),
            row[at("sorting_file")].is_empty(),
        );
        let accs = &groups[&key];
        let n = accs.len() as f64;
        let mean = accs.iter().sum::<f64>() / n;
        let sd = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert_eq!(row[at("seeds_complete")], "2", "{row:?}");
        let got_mean: f64 = row[at("final_test_acc_mean")].parse().unwrap();
        let got_sd: f64 = row[at("final_test_acc_std")].parse().unwrap();
        assert!((got_mean - mean).abs() < 1e-9 && (got_sd - sd).abs() < 1e-9, "{row:?} {accs:?}");
        let removal = &row[at("removal")];
        let want = match key {
            (0, _, _) => "none",
            (_, k, _) if k < 0 => "random",
            _ => "selected",
        };
        assert_eq!(removal, want);
    }
}

#[test]
fn a_killed_sweep_finishes_when_run_again_without_retraining_complete_runs() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(200, 20);
    let spec = write_spec(
        &ws,
        "name = \"killed\"\n[train]\ndataset = \"mnist\"\nepochs = 40\nbatch_size = 20\n\
         device = \"cpu\"\nno_download = true\n[[stage]]\nname = \"base\"\nseeds = [1, 2]\n",
    );
    let root = ws.root();
    let log = ws.path().join("sweep.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fstream"))
        .args(["sweep", "run", spec.to_str().unwrap(), "--jobs", "1", "--threads", "1"])
        .arg("--root")
        .arg(&root)
        .arg("--data-dir")
        .arg(ws.data_dir())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Wait for observed progress: with one job at a time, a second `epochs` file means the
    // first run is complete and the second has committed an epoch.
    crate::util::wait_for_parquet_files(&root.join("epochs"), 2);
    signal(&child, libc::SIGTERM);
    let exit = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(exit.code(), Some(143), "{stderr}");
    let stopped = status(&ws, &spec, &root);
    let tasks = stopped["stages"][0]["tasks"].as_array().unwrap();
    assert_eq!(tasks[0]["state"], "complete");
    assert_eq!(tasks[1]["state"], "failed", "{stopped}");
    assert_eq!(tasks[1]["error"], "interrupted", "{stopped}");
    let first_runs_file =
        root.join("runs").join(format!("{}.parquet", tasks[0]["id"].as_str().unwrap()));
    let first_mtime = std::fs::metadata(&first_runs_file).unwrap().modified().unwrap();

    let again = sweep_run(&ws, &spec, &["--threads", "1"]);
    again.assert_ok();
    assert!(
        again.stdout().contains("sweep killed: 2 complete (1 before), 0 failed"),
        "{}",
        again.stdout()
    );
    assert_eq!(stage_counts(&status(&ws, &spec, &root))["base"], (2, 2));
    assert_eq!(std::fs::metadata(&first_runs_file).unwrap().modified().unwrap(), first_mtime);
    let log = std::fs::read_to_string(
        root.join(format!("sweeps/killed/logs/{}.log", tasks[1]["id"].as_str().unwrap())),
    )
    .unwrap();
    assert!(log.contains("resuming run") && log.contains("after epoch"), "{log}");
}

#[test]
fn train_run_id_names_one_run_that_resume_starts_resumes_or_skips() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(40, 10);
    let with_id = |extra: &[&str]| {
        let args = [&["--run-id", "my-run", "--epochs", "1"][..], extra].concat();
        ws.train(&args)
    };
    with_id(&["--seeds", "1..2"])
        .assert_exit_code(2)
        .assert_error_contains("--run-id my-run names one run, but the seed flags give 2");
    ws.train(&["--run-id", ".hidden"])
        .assert_exit_code(2)
        .assert_error_contains("invalid value '.hidden' for '--run-id <ID>': expected 1 to 128");
    with_id(&["--resume"]).assert_ok();
    assert!(ws.root().join("runs/my-run.parquet").is_file());
    with_id(&[]).assert_exit_code(2).assert_error_contains("run my-run already exists under");
    let again = with_id(&["--resume"]);
    again.assert_ok();
    assert!(again.stderr().contains("run my-run is already complete"), "{}", again.stderr());
    let longer = ws.train(&["--run-id", "my-run", "--epochs", "2", "--resume"]);
    longer.assert_ok();
    assert!(
        longer.stderr().contains("resuming run my-run after epoch 1 of 2"),
        "{}",
        longer.stderr()
    );
}
