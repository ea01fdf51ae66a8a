//! `fstream order` and `fstream query` against independent computations.

use std::collections::BTreeMap;

use crate::util::{Workspace, expected_counts, read_order_csv, read_presentations, repo_file};

/// A workspace with two complete 4-epoch runs on the tiny dataset.
fn trained_workspace() -> Workspace {
    let ws = Workspace::new();
    ws.write_tiny_mnist(150, 30);
    ws.train(&["--seeds", "1..2", "--epochs", "4", "--threads", "2"]).assert_ok();
    ws
}

#[test]
fn order_equals_an_independent_count_with_ties_by_example_id() {
    let ws = trained_workspace();
    let run = ws.order("order", &[]);
    run.assert_ok();
    let expected = expected_counts(&read_presentations(&ws.root()), None);
    let mut hand_order: Vec<(u32, u32)> = expected.iter().map(|(&id, &c)| (c, id)).collect();
    hand_order.sort();
    let rows = read_order_csv(&ws.path().join("order.csv"));
    let got: Vec<(u32, u32)> = rows.iter().map(|&(id, count, _)| (count, id)).collect();
    assert_eq!(got, hand_order);
    assert!(rows.iter().enumerate().all(|(i, r)| r.2 == i as u32), "ranks are 0-based positions");
    let distinct: std::collections::BTreeSet<u32> = expected.values().copied().collect();
    assert!(
        distinct.len() > 1,
        "the fixture should produce several different counts: {distinct:?}"
    );

    let unforgettable = expected.values().filter(|&&c| c == 0).count();
    assert!(
        run.stdout().starts_with(&format!("unforgettable examples: {unforgettable} of 150 (")),
        "{}",
        run.stdout()
    );
}

/// Forgetting counts over the complete runs with `LAG` over each run's and example's
/// presentations in epoch order: the definition as most write it.
const LAG_WINDOW_FORGETTING_COUNTS: &str = "
WITH seq AS (
    SELECT run_id, example_id, correct,
           LAG(correct) OVER (PARTITION BY run_id, example_id ORDER BY epoch) AS prev_correct
    FROM presentations
    WHERE run_id IN (SELECT run_id FROM runs WHERE status = 'complete')
),
per_run AS (
    SELECT example_id, COUNT(*) AS presentations,
           SUM(CASE WHEN prev_correct AND NOT correct THEN 1 ELSE 0 END) AS forgetting_events,
           MAX(CASE WHEN correct THEN 1 ELSE 0 END) AS ever_correct
    FROM seq GROUP BY run_id, example_id
)
SELECT example_id,
       SUM(CASE WHEN ever_correct = 1 THEN forgetting_events ELSE presentations END)
           AS forgetting_count
FROM per_run GROUP BY example_id ORDER BY forgetting_count, example_id";

#[test]
fn shipped_sql_gives_the_same_numbers_as_order() {
    let ws = trained_workspace();
    ws.order("order", &[]).assert_ok();
    let order: Vec<String> = read_order_csv(&ws.path().join("order.csv"))
        .iter()
        .map(|(id, count, _)| format!("{id},{count}"))
        .collect();

    let counts = ws.query_csv(&repo_file("queries/forgetting_counts.sql"));
    let mut lines = counts.lines();
    assert_eq!(lines.next(), Some("example_id,forgetting_count"));
    assert_eq!(lines.map(String::from).collect::<Vec<_>>(), order);
    // The definition over every presentation gives the same counts as the dynamics table.
    let from_presentations =
        ws.query_csv(&repo_file("queries/forgetting_counts_from_presentations.sql"));
    assert_eq!(from_presentations, counts);
    // Its join of consecutive epochs is the textbook window over consecutive presentations,
    // and both engines agree.
    let window = ws.path().join("window.sql");
    std::fs::write(&window, LAG_WINDOW_FORGETTING_COUNTS).unwrap();
    for engine in ["streaming", "in-memory"] {
        let root = ws.root().display().to_string();
        for sql in [window.clone(), repo_file("queries/forgetting_counts_from_presentations.sql")] {
            let args = ["query", sql.to_str().unwrap(), "--root", &root, "--format", "csv"];
            let run = ws.fstream(&[&args[..], &["--engine", engine]].concat());
            run.assert_ok();
            assert_eq!(run.stdout(), counts, "{} with --engine {engine}", sql.display());
        }
    }

    let unforgettable = order.iter().filter(|l| l.ends_with(",0")).count();
    let csv = ws.query_csv(&repo_file("queries/unforgettable_count.sql"));
    assert_eq!(csv, format!("unforgettable,examples\n{unforgettable},150\n"));

    // Per class: the independent counts grouped by the labels of the examples table.
    let labels_sql = ws.path().join("labels.sql");
    std::fs::write(&labels_sql, "SELECT DISTINCT example_id, original_label FROM examples")
        .unwrap();
    let labels: BTreeMap<u32, u32> = ws
        .query_csv(&labels_sql)
        .lines()
        .skip(1)
        .map(|l| {
            let (id, label) = l.split_once(',').unwrap();
            (id.parse().unwrap(), label.parse().unwrap())
        })
        .collect();
    let counts = expected_counts(&read_presentations(&ws.root()), None);
    let mut by_class: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (id, count) in &counts {
        by_class.entry(labels[id]).or_default().push(*count);
    }
    let expected: Vec<String> = by_class
        .iter()
        .map(|(class, counts)| {
            let zero = counts.iter().filter(|&&c| c == 0).count();
            let mean = f64::from(counts.iter().sum::<u32>()) / counts.len() as f64;
            let max = counts.iter().max().unwrap();
            format!("{class},,{},{zero},{mean:.6},{max}", counts.len())
        })
        .collect();
    let csv = ws.query_csv(&repo_file("queries/forgetting_by_class.sql"));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "class,coarse_class,examples,unforgettable,mean_forgetting_count,max_forgetting_count"
        )
    );
    let got: Vec<String> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let mean: f64 = f[4].parse().unwrap();
            format!("{},{},{},{},{mean:.6},{}", f[0], f[1], f[2], f[3], f[5])
        })
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn first_learned_and_test_accuracy_queries_run_as_shipped() {
    let ws = trained_workspace();
    let runs = read_presentations(&ws.root());
    let csv = ws.query_csv(&repo_file("queries/first_learned.sql"));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("run_id,example_id,first_learned_epoch,presentations_to_learn,presentations")
    );
    let mut expected: BTreeMap<(String, u32), (Option<u32>, u32)> = BTreeMap::new();
    for (run_id, presentations) in &runs {
        for p in presentations {
            let entry = expected.entry((run_id.clone(), p.example_id)).or_insert((None, 0));
            if p.correct {
                entry.0 = Some(entry.0.map_or(p.epoch, |e| e.min(p.epoch)));
            } else {
                entry.1 = entry.1.max(p.epoch);
            }
        }
    }
    let got: Vec<String> = lines.map(String::from).collect();
    let want: Vec<String> = expected
        .iter()
        .map(|((run, id), (first, last_miss))| {
            let first = first.map_or(String::new(), |e| e.to_string());
            format!("{run},{id},{first},{last_miss},4")
        })
        .collect();
    assert_eq!(got, want);

    let csv = ws.query_csv(&repo_file("queries/test_accuracy.sql"));
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2 * 4);
    for row in rows {
        let test_acc: f64 = row.split(',').nth(4).unwrap().parse().unwrap();
        assert!((0.0..=1.0).contains(&test_acc), "{row}");
    }
}

#[test]
fn order_selects_runs_by_recorded_configuration() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(50, 10);
    ws.train(&["--seed", "1", "--epochs", "2"]).assert_ok();
    let run = ws.train(&["--seed", "2", "--epochs", "2", "--no_dropout"]);
    run.assert_ok();
    let no_dropout_run = run.stdout().trim().to_string();

    ws.order("nodrop", &["--where", "no_dropout"]).assert_ok();
    let sorting =
        fstream::store::sorting::SortingFile::read(&ws.path().join("nodrop.parquet")).unwrap();
    assert_eq!(sorting.runs, vec![no_dropout_run.clone()]);
    assert_eq!(sorting.dataset, "mnist");
    assert_eq!(sorting.dataset_examples, 50);

    let only = read_presentations(&ws.root())
        .into_iter()
        .filter(|(id, _)| *id == no_dropout_run)
        .collect();
    let expected = expected_counts(&only, None);
    let fstream::store::sorting::Ranked::ForgettingCounts(counts) = &sorting.ranked else {
        panic!("order ranks by forgetting counts")
    };
    let got: BTreeMap<u32, u32> =
        sorting.example_ids.iter().copied().zip(counts.iter().copied()).collect();
    assert_eq!(got, expected);

    ws.order("none", &["--where", "seed > 10"])
        .assert_exit_code(2)
        .assert_error_contains("no complete run of dataset 'mnist' matches --where \"seed > 10\"");
    ws.order("bad", &["--where", "no_such_column"])
        .assert_exit_code(2)
        .assert_error_contains("--where \"no_such_column\"");
}

#[test]
fn runs_of_different_lengths_are_not_mixed_silently() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(40, 10);
    ws.train(&["--seed", "1", "--epochs", "2"]).assert_ok();
    ws.train(&["--seed", "2", "--epochs", "3"]).assert_ok();
    ws.order("o", &[])
        .assert_exit_code(2)
        .assert_error_contains("runs have different epoch counts");
    ws.order("o", &["--epochs", "2"]).assert_ok();

    let all = read_presentations(&ws.root());
    let first_two = all
        .iter()
        .map(|(id, ps)| (id.clone(), ps.iter().copied().filter(|p| p.epoch <= 2).collect()))
        .collect();
    let as_map = |name: &str| -> BTreeMap<u32, u32> {
        read_order_csv(&ws.path().join(name)).into_iter().map(|(id, c, _)| (id, c)).collect()
    };
    assert_eq!(as_map("o.csv"), expected_counts(&first_two, None));

    // Faithful (reference bug 4): all epochs, and a never-learned example counts the
    // reference's --epochs default, 200, in each run whatever the run trained.
    ws.order("f", &["--fidelity", "faithful"]).assert_ok();
    assert_eq!(as_map("f.csv"), expected_counts(&all, Some(200)));
}

#[test]
fn bad_sql_exits_2_naming_the_file() {
    let ws = trained_workspace();
    let root = ws.root().display().to_string();
    for (name, sql, needle) in [
        ("syntax.sql", "SELEC example_id FROM presentations", "syntax.sql: "),
        ("table.sql", "SELECT * FROM no_such_table", "table.sql: "),
        ("column.sql", "SELECT no_such_column FROM presentations", "column.sql: "),
    ] {
        let path = ws.path().join(name);
        std::fs::write(&path, sql).unwrap();
        ws.fstream(&["query", path.to_str().unwrap(), "--root", &root])
            .assert_exit_code(2)
            .assert_error_contains(needle);
    }
}

#[test]
fn order_refuses_runs_that_must_not_be_summed() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(40, 10);
    // Permuted MNIST with two permutations.
    ws.train(&["--dataset", "permuted_mnist", "--seed", "1", "--epochs", "1"]).assert_ok();
    let second = ["--dataset", "permuted_mnist", "--seed", "2", "--epochs", "1"];
    ws.train(&[&second[..], &["--permutation-seed", "3"]].concat()).assert_ok();
    let root = ws.root().display().to_string();
    let out = ws.path().display().to_string();
    let order_permuted = |extra: &[&str]| {
        let mut args = vec!["order", "--dataset", "permuted_mnist", "--input-dir", &root];
        args.extend_from_slice(&["--output-dir", &out, "--output-name", "p"]);
        args.extend_from_slice(extra);
        ws.fstream(&args)
    };
    order_permuted(&[])
        .assert_exit_code(2)
        .assert_error_contains("were trained on different pixel permutations");
    order_permuted(&["--where", "permutation_seed = 3"]).assert_ok();
    let sorting = ws.path().join("p.parquet").display().to_string();
    let with_order = ["--dataset", "permuted_mnist", "--epochs", "1", "--sorting-file", &sorting];
    ws.train(&[&with_order[..], &["--remove-n", "3"]].concat())
        .assert_exit_code(2)
        .assert_error_contains("sorting file is for permutation_seed 3, but the run uses 0");
    ws.train(&[&with_order[..], &["--remove-n", "3", "--permutation-seed", "3"]].concat())
        .assert_ok();

    // The same run twice, and a removal run beside a full one.
    ws.train(&["--seed", "1", "--epochs", "1"]).assert_ok();
    ws.train(&["--seed", "1", "--epochs", "1"]).assert_ok();
    ws.order("o", &[]).assert_exit_code(2).assert_error_contains("are the same run");
    let first =
        ws.fstream(&["runs", "--root", &root, "--where", "dataset = 'mnist'", "--format", "csv"]);
    let duplicate = first.stdout().lines().nth(2).unwrap().split(',').next().unwrap().to_string();
    ws.fstream(&["rm", &duplicate, "--root", &root]).assert_ok();
    ws.order("o", &[]).assert_ok();
    ws.train(&["--seed", "2", "--epochs", "1", "--remove-n", "5", "--keep-lowest-n", "-1"])
        .assert_ok();
    ws.order("o", &[]).assert_exit_code(2).assert_error_contains("different training sets");
    ws.order("o", &["--where", "remove_n = 0"]).assert_ok();
    // An order of the removal run covers the whole dataset, the removed examples flagged last.
    ws.order("removal", &["--where", "remove_n = 5"]).assert_ok();
    let csv = std::fs::read_to_string(ws.path().join("removal.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 40);
    assert!(rows[..35].iter().all(|r| r.ends_with(",true")), "{csv}");
    for (rank, row) in rows.iter().enumerate().skip(35) {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields[1..], ["0", &rank.to_string(), "false"], "{csv}");
    }
    let removal = ws.path().join("removal.parquet").display().to_string();
    let warned = ws.train(&[
        "--seed",
        "4",
        "--epochs",
        "1",
        "--sorting-file",
        &removal,
        "--remove-n",
        "3",
        "--keep-lowest-n",
        "36",
    ]);
    warned.assert_ok();
    assert!(
        warned.stderr().contains("3 of the 3 removed examples were never presented"),
        "{}",
        warned.stderr()
    );

    // A --no-record run is skipped with a warning.
    ws.train(&["--seed", "3", "--epochs", "1", "--no-record"]).assert_ok();
    let run = ws.order("o", &["--where", "remove_n = 0"]);
    run.assert_ok();
    assert!(
        run.stderr().contains("trained with --no-record, it has no presentations"),
        "{}",
        run.stderr()
    );
    assert!(run.stdout().contains("across 1 run\n"), "{}", run.stdout());
}
