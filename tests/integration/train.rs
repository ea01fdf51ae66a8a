//! Training end to end: what a run writes, removal, reproducibility.

use std::collections::BTreeSet;

use crate::util::{Workspace, parquet_files, read_order_csv, read_presentations};

#[test]
fn train_writes_every_presentation_of_every_epoch_once() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(120, 30);
    let run = ws.train(&["--seeds", "1..2", "--epochs", "3", "--threads", "2"]);
    run.assert_ok();
    let run_ids: Vec<String> = run.stdout().lines().map(String::from).collect();
    assert_eq!(run_ids.len(), 2);
    assert!(
        run_ids[0].starts_with("mnist-s1-") && run_ids[1].starts_with("mnist-s2-"),
        "{run_ids:?}"
    );

    let runs = read_presentations(&ws.root());
    assert_eq!(runs.keys().cloned().collect::<Vec<_>>(), run_ids);
    for presentations in runs.values() {
        assert_eq!(presentations.len(), 3 * 120);
        for epoch in 1..=3 {
            let ids: Vec<u32> =
                presentations.iter().filter(|p| p.epoch == epoch).map(|p| p.example_id).collect();
            assert_eq!(ids, (0..120).collect::<Vec<u32>>(), "epoch {epoch} sorted and complete");
        }
    }
    let files = parquet_files(&ws.root());
    assert_eq!(
        files.len(),
        2 * 3 + 2 * 4,
        "6 presentation files + runs, epochs, examples, dynamics per run"
    );
    assert!(run.stderr().contains("epoch 3/3 (lr 0.05): train acc"), "{}", run.stderr());
}

#[test]
fn seeded_runs_are_reproducible_on_cpu_alone_or_concurrently() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(80, 20);
    // Seed 7 once alone and once beside seed 8: dropout draws from each run's own generator.
    ws.train(&["--seed", "7", "--epochs", "2"]).assert_ok();
    ws.train(&["--seeds", "7,8", "--epochs", "2", "--threads", "2"]).assert_ok();
    let root = ws.root().display().to_string();
    let sql = ws.path().join("losses.sql");
    std::fs::write(
        &sql,
        "SELECT r.seed, p.epoch, p.example_id, p.loss, p.margin FROM presentations p \
         JOIN runs r ON p.run_id = r.run_id ORDER BY r.seed, r.run_id, p.epoch, p.example_id",
    )
    .unwrap();
    let run = ws.fstream(&["query", sql.to_str().unwrap(), "--root", &root, "--format", "csv"]);
    run.assert_ok();
    let csv = run.stdout();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 3 * 2 * 80);
    let strip_seed = |row: &&str| row.split_once(',').unwrap().1.to_string();
    let (first, second, other) = (&rows[..160], &rows[160..320], &rows[320..]);
    assert!(first.iter().all(|r| r.starts_with("7,")) && other.iter().all(|r| r.starts_with("8,")));
    assert_eq!(
        first.iter().map(strip_seed).collect::<Vec<_>>(),
        second.iter().map(strip_seed).collect::<Vec<_>>()
    );
    assert_ne!(
        first.iter().map(strip_seed).collect::<Vec<_>>(),
        other.iter().map(strip_seed).collect::<Vec<_>>()
    );
}

#[test]
fn removal_by_sorting_file_trains_on_exactly_the_rest() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(100, 20);
    ws.train(&["--seed", "1", "--epochs", "2"]).assert_ok();
    ws.order("order", &[]).assert_ok();
    let order = read_order_csv(&ws.path().join("order.csv"));
    let sorting = ws.path().join("order.parquet").display().to_string();
    let removed: BTreeSet<u32> = order[10..40].iter().map(|r| r.0).collect();

    let removal_root = ws.path().join("removal").display().to_string();
    let run = ws.train(&[
        "--seed",
        "2",
        "--epochs",
        "1",
        "--output_dir",
        &removal_root,
        "--sorting_file",
        &sorting,
        "--remove_n",
        "30",
        "--keep_lowest_n",
        "10",
    ]);
    run.assert_ok();
    let runs = read_presentations(&ws.path().join("removal"));
    let presented: BTreeSet<u32> =
        runs.values().next().unwrap().iter().map(|p| p.example_id).collect();
    let expected: BTreeSet<u32> = (0..100).filter(|id| !removed.contains(id)).collect();
    assert_eq!(presented, expected);

    let sql = ws.path().join("members.sql");
    std::fs::write(
        &sql,
        "SELECT example_id FROM examples WHERE NOT in_training_set ORDER BY example_id",
    )
    .unwrap();
    let run =
        ws.fstream(&["query", sql.to_str().unwrap(), "--root", &removal_root, "--format", "csv"]);
    run.assert_ok();
    let listed: BTreeSet<u32> = run.stdout().lines().skip(1).map(|l| l.parse().unwrap()).collect();
    assert_eq!(listed, removed);
}

#[test]
fn random_removal_removes_n_examples_seeded() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(60, 10);
    ws.train(&["--seeds", "3,4", "--epochs", "1", "--remove-n", "25", "--keep-lowest-n", "-1"])
        .assert_ok();
    let runs = read_presentations(&ws.root());
    let sets: Vec<BTreeSet<u32>> =
        runs.values().map(|ps| ps.iter().map(|p| p.example_id).collect()).collect();
    assert_eq!(sets.len(), 2);
    assert!(sets.iter().all(|s| s.len() == 35));
    assert_ne!(sets[0], sets[1], "different seeds remove different examples");
}

#[test]
fn sorting_file_of_another_dataset_is_rejected() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(40, 10);
    ws.train(&["--epochs", "1"]).assert_ok();
    ws.order("order", &[]).assert_ok();
    let sorting = ws.path().join("order.parquet").display().to_string();
    ws.train(&[
        "--dataset",
        "permuted_mnist",
        "--epochs",
        "1",
        "--sorting-file",
        &sorting,
        "--remove-n",
        "5",
    ])
    .assert_exit_code(2)
    .assert_error_contains(
        "sorting file is for dataset mnist with 40 examples, but --dataset permuted_mnist has 40",
    );
}

#[test]
fn label_noise_is_recorded_and_broken_down_by_the_shipped_query() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(90, 10);
    ws.train(&[
        "--seeds",
        "1,2",
        "--threads",
        "2",
        "--epochs",
        "3",
        "--noise_percent_labels",
        "20",
    ])
    .assert_ok();
    let sql = ws.path().join("noisy.sql");
    std::fs::write(
        &sql,
        "SELECT run_id, SUM(CASE WHEN label_noisy THEN 1 ELSE 0 END) AS noisy, \
         SUM(CASE WHEN label_noisy AND label = original_label THEN 1 ELSE 0 END) AS same \
         FROM examples GROUP BY run_id ORDER BY run_id",
    )
    .unwrap();
    let csv = ws.query_csv(&sql);
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|r| r.ends_with(",18,0")),
        "floor(0.2 * 90) = 18 flips, none to the same class: {csv}"
    );

    let csv = ws.query_csv(&crate::util::repo_file("queries/label_noise_breakdown.sql"));
    let mut totals = std::collections::BTreeMap::new();
    for row in csv.lines().skip(1) {
        let fields: Vec<&str> = row.split(',').collect();
        *totals.entry(fields[0].to_string()).or_insert(0u32) += fields[2].parse::<u32>().unwrap();
    }
    assert_eq!(totals.get("noisy"), Some(&(2 * 18)), "{csv}");
    assert_eq!(totals.get("clean"), Some(&(2 * 72)), "{csv}");
}

#[test]
fn pixel_noise_is_recorded_per_example_and_run() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(40, 10);
    let run = ws.train(&[
        "--epochs",
        "1",
        "--remove-n",
        "10",
        "--keep-lowest-n",
        "-1",
        "--noise-percent-pixels",
        "50",
        "--noise-std-pixels",
        "30",
        "--pixel-noise-mode",
        "faithful",
    ]);
    run.assert_ok();
    let sql = ws.path().join("pixels.sql");
    std::fs::write(
        &sql,
        "SELECT SUM(CASE WHEN pixel_noisy THEN 1 ELSE 0 END) AS noisy, \
         SUM(CASE WHEN pixel_noisy = in_training_set THEN 1 ELSE 0 END) AS agree FROM examples",
    )
    .unwrap();
    assert_eq!(ws.query_csv(&sql), "noisy,agree\n30,40\n");
    let sql = ws.path().join("runs.sql");
    std::fs::write(
        &sql,
        "SELECT noise_percent_pixels, noise_std_pixels, pixel_noise_mode FROM runs",
    )
    .unwrap();
    assert_eq!(
        ws.query_csv(&sql),
        "noise_percent_pixels,noise_std_pixels,pixel_noise_mode\n50.0,30.0,faithful\n"
    );
}
