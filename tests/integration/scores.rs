//! `fstream scores`: every score equals an independent computation from the presentation
//! files, and a score file drives removal like a sorting file.

use std::collections::BTreeMap;

use fstream::query::scores::Score;

use crate::util::{Presentation, Workspace, read_order_csv, read_presentations};

/// One run's value of `score` for one example's presentations (in epoch order), with the
/// reference's never-learned rule (the run's presentations).
fn per_run(score: &str, p: &[Presentation]) -> f64 {
    let n = p.len() as f64;
    let never = n;
    let correct: Vec<bool> = p.iter().map(|p| p.correct).collect();
    let p_label: Vec<f64> = p.iter().map(|p| (-f64::from(p.loss)).exp()).collect();
    let mean = |values: &[f64]| values.iter().sum::<f64>() / n;
    match score {
        "forgetting" if !correct.contains(&true) => never,
        "forgetting" => correct.windows(2).filter(|w| w[0] && !w[1]).count() as f64,
        "first_learned" => p.iter().find(|p| p.correct).map_or(never, |p| f64::from(p.epoch)),
        "learned_at" if !correct[correct.len() - 1] => never,
        "learned_at" => p.iter().rev().find(|p| !p.correct).map_or(0, |p| p.epoch) as f64 + 1.0,
        "aum" => mean(&p.iter().map(|p| f64::from(p.margin)).collect::<Vec<_>>()),
        "confidence" => mean(&p_label),
        "variability" => {
            let m = mean(&p_label);
            mean(&p_label.iter().map(|x| (x - m) * (x - m)).collect::<Vec<_>>()).sqrt()
        }
        "correctness" => correct.iter().filter(|&&c| c).count() as f64 / n,
        other => panic!("no score {other}"),
    }
}

/// Reads a score CSV: example id → score, in rank order.
fn read_scores(path: &std::path::Path) -> Vec<(u32, f64)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("example_id,score,rank,presented"));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap())
        })
        .collect()
}

#[test]
fn every_score_equals_an_independent_computation_from_the_presentations() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(150, 30);
    let train =
        ["--seeds", "1..2", "--epochs", "4", "--threads", "2", "--noise-percent-labels", "30"];
    ws.train(&train).assert_ok();
    let mut by_example: BTreeMap<u32, Vec<Vec<Presentation>>> = BTreeMap::new();
    for presentations in read_presentations(&ws.root()).into_values() {
        let mut runs: BTreeMap<u32, Vec<Presentation>> = BTreeMap::new();
        for p in presentations {
            runs.entry(p.example_id).or_default().push(p);
        }
        for (id, mut sequence) in runs {
            sequence.sort_by_key(|p| p.epoch);
            by_example.entry(id).or_default().push(sequence);
        }
    }
    let root = ws.root().display().to_string();
    let dynamics_scores = Score::ALL.into_iter().filter(|&s| s != Score::El2n).map(Score::name);
    for score in dynamics_scores {
        let output = ws.path().join(format!("{score}.parquet"));
        let args = ["scores", "--root", &root, "--dataset", "mnist", "--score", score, "--output"];
        let run = ws.fstream(&[&args[..], &[output.to_str().unwrap()]].concat());
        run.assert_ok();
        assert!(
            run.stdout().starts_with(&format!("{score} of 150 examples over 2 runs")),
            "{}",
            run.stdout()
        );
        let got = read_scores(&ws.path().join(format!("{score}.csv")));
        let mut expected: Vec<(u32, f64)> = by_example
            .iter()
            .map(|(&id, runs)| {
                let values: Vec<f64> = runs.iter().map(|p| per_run(score, p)).collect();
                let total: f64 = values.iter().sum();
                (id, if score == "forgetting" { total } else { total / values.len() as f64 })
            })
            .collect();
        expected.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        assert_eq!(got.len(), expected.len(), "{score}");
        for (rank, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!(
                (g.1 - e.1).abs() <= 1e-12 * e.1.abs().max(1.0),
                "{score} rank {rank}: {g:?} vs {e:?}"
            );
        }
        // The ranking itself: ascending values; equal values by example id.
        let ids = |rows: &[(u32, f64)]| rows.iter().map(|r| r.0).collect::<Vec<_>>();
        if !matches!(score, "confidence" | "variability") {
            assert_eq!(ids(&got), ids(&expected), "{score}");
        }
        let distinct: std::collections::BTreeSet<u64> = got.iter().map(|r| r.1.to_bits()).collect();
        assert!(distinct.len() > 1, "{score}: the fixture gives several values");
    }

    // Forgetting scores are the counts of `fstream order`.
    ws.order("order", &[]).assert_ok();
    let order: Vec<(u32, f64)> = read_order_csv(&ws.path().join("order.csv"))
        .iter()
        .map(|&(id, count, _)| (id, f64::from(count)))
        .collect();
    assert_eq!(read_scores(&ws.path().join("forgetting.csv")), order);
}

#[test]
fn score_files_rank_both_ways_and_drive_removal() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(120, 30);
    ws.train(&[
        "--seeds",
        "1..2",
        "--epochs",
        "3",
        "--threads",
        "2",
        "--noise-percent-labels",
        "40",
    ])
    .assert_ok();
    let root = ws.root().display().to_string();
    let score_file = |name: &str, extra: &[&str]| {
        let output = ws.path().join(format!("{name}.parquet")).display().to_string();
        let args = ["scores", "--root", &root, "--dataset", "mnist", "--output", &output];
        ws.fstream(&[&args[..], extra].concat()).assert_ok();
        read_scores(&ws.path().join(format!("{name}.csv")))
    };
    let up = score_file("aum_up", &["--score", "aum"]);
    let down = score_file("aum_down", &["--score", "aum", "--descending"]);
    assert_eq!(down.iter().rev().cloned().collect::<Vec<_>>(), up, "distinct AUMs: reversed");
    // One run: an example never learned there is inf under one rule and 0 under the other.
    let one_run = ["--where", "seed = 1", "--score", "first_learned", "--never-learned"];
    let infinite = score_file("never", &[&one_run[..], &["infinity"]].concat());
    assert!(infinite.last().unwrap().1.is_infinite(), "never-learned examples rank last as inf");
    let zero = score_file("zero", &[&one_run[..], &["zero"]].concat());
    let never_learned = infinite.iter().filter(|r| r.1.is_infinite()).count();
    assert!(never_learned > 0);
    assert_eq!(zero.iter().filter(|r| r.1 == 0.0).count(), never_learned);

    // Remove the 10 lowest-AUM examples (likely mislabeled) and train on the rest.
    let removed: Vec<u32> = up[..10].iter().map(|r| r.0).collect();
    let sorting = ws.path().join("aum_up.parquet").display().to_string();
    let removal = [
        "--seed",
        "5",
        "--epochs",
        "1",
        "--sorting-file",
        &sorting,
        "--remove-n",
        "10",
        "--keep-lowest-n",
        "0",
    ];
    let run = ws.train(&removal);
    run.assert_ok();
    let run_id = run.stdout().lines().last().unwrap().to_string();
    let examples = crate::util::read_parquet(&ws.root().join(format!("examples/{run_id}.parquet")));
    let in_training =
        crate::util::typed_column::<arrow::array::BooleanArray>(&examples, "in_training_set");
    let dropped: Vec<u32> = (0..120).filter(|&i| !in_training.value(i as usize)).collect();
    let mut removed_sorted = removed.clone();
    removed_sorted.sort();
    assert_eq!(dropped, removed_sorted);
}

#[test]
fn el2n_is_recorded_on_request_and_scored_at_one_epoch() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(100, 20);
    ws.train(&["--seeds", "1..2", "--epochs", "3", "--threads", "2", "--record", "el2n"])
        .assert_ok();
    // Per presentation, EL2N is bounded by the label's probability: with p = exp(-loss),
    // (1 - p) <= EL2N <= sqrt(2) (1 - p).
    let mut at_epoch_2: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for file in crate::util::parquet_files(&ws.root().join("presentations")) {
        let batch = crate::util::read_parquet(&file);
        let column = |name| crate::util::typed_column::<arrow::array::Float32Array>(&batch, name);
        let ids = crate::util::typed_column::<arrow::array::UInt32Array>(&batch, "example_id");
        for row in 0..batch.num_rows() {
            let (el2n, loss) = (f64::from(column("el2n").value(row)), column("loss").value(row));
            let miss = 1.0 - (-f64::from(loss)).exp();
            assert!(el2n >= miss - 1e-5 && el2n <= 2f64.sqrt() * miss + 1e-5, "{el2n} vs {miss}");
            if file.to_string_lossy().contains("epoch=2/") {
                at_epoch_2.entry(ids.value(row)).or_default().push(el2n);
            }
        }
    }
    let root = ws.root().display().to_string();
    let output = ws.path().join("el2n.parquet").display().to_string();
    let scores = ["scores", "--root", &root, "--dataset", "mnist", "--score", "el2n"];
    ws.fstream(&[&scores[..], &["--epoch", "2", "--output", &output]].concat()).assert_ok();
    let mut expected: Vec<(u32, f64)> = at_epoch_2
        .iter()
        .map(|(&id, values)| (id, values.iter().sum::<f64>() / values.len() as f64))
        .collect();
    expected.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let got = read_scores(&ws.path().join("el2n.csv"));
    assert_eq!(got.len(), 100);
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g.0, e.0);
        assert!((g.1 - e.1).abs() < 1e-12, "{g:?} vs {e:?}");
    }

    ws.fstream(&[&scores[..], &["--output", &output]].concat())
        .assert_exit_code(2)
        .assert_error_contains("--score el2n needs --epoch E");
    ws.fstream(&[&scores[..], &["--epoch", "4", "--output", &output]].concat())
        .assert_exit_code(2)
        .assert_error_contains("--epoch 4: run mnist-s1-");
    ws.train(&["--seed", "3", "--epochs", "3"]).assert_ok();
    ws.fstream(&[&scores[..], &["--epoch", "2", "--output", &output]].concat())
        .assert_exit_code(2)
        .assert_error_contains("was trained without --record el2n");
    ws.train(&["--seed", "4", "--epochs", "1", "--record", "el2n", "--no-record"])
        .assert_exit_code(2)
        .assert_error_contains("--record el2n adds a column to the presentations");
}

/// Pearson correlation, written out for the test.
fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let sa: f64 = a.iter().map(|x| (x - ma).powi(2)).sum::<f64>().sqrt();
    let sb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum::<f64>().sqrt();
    cov / (sa * sb)
}

#[test]
fn compare_reports_how_well_two_seeds_agree() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(150, 30);
    ws.train(&["--seeds", "1..2", "--epochs", "4", "--threads", "2"]).assert_ok();
    let per_seed: Vec<Vec<f64>> = read_presentations(&ws.root())
        .into_iter()
        .map(|(run, presentations)| {
            let one = BTreeMap::from([(run, presentations)]);
            crate::util::expected_counts(&one, None).values().map(|&c| f64::from(c)).collect()
        })
        .collect();
    let expected = pearson(&per_seed[0], &per_seed[1]);
    let zeros = |v: &[f64]| v.iter().map(|&x| x == 0.0).collect::<Vec<_>>();
    let (za, zb) = (zeros(&per_seed[0]), zeros(&per_seed[1]));
    let both = za.iter().zip(&zb).filter(|(a, b)| **a && **b).count() as f64;
    let either = za.iter().zip(&zb).filter(|(a, b)| **a || **b).count() as f64;

    let root = ws.root().display().to_string();
    let mut files = Vec::new();
    for seed in [1, 2] {
        let output = ws.path().join(format!("seed{seed}.parquet")).display().to_string();
        let select = format!("seed = {seed}");
        let args = ["scores", "--root", &root, "--dataset", "mnist", "--score", "forgetting"];
        ws.fstream(&[&args[..], &["--where", &select, "--output", &output]].concat()).assert_ok();
        files.push(output);
    }
    let run = ws.fstream(&["compare", &files[0], &files[1], "--k", "20", "--format", "csv"]);
    run.assert_ok();
    let out = run.stdout();
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("a,b,examples,pearson,spearman,k,lowest_k_overlap,highest_k_overlap,zero_jaccard")
    );
    let fields: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let number = |i: usize| fields[i].parse::<f64>().unwrap();
    assert_eq!(number(2), 150.0);
    assert!((number(3) - expected).abs() < 1e-12, "pearson {} vs {expected}", fields[3]);
    assert!((-1.0..=1.0).contains(&number(4)));
    assert_eq!(number(5), 20.0);
    assert!((number(8) - both / either).abs() < 1e-12, "zero jaccard");

    // --runs: with two runs, each is compared with the other.
    let runs = ws.fstream(&[
        "compare",
        "--runs",
        "--root",
        &root,
        "--dataset",
        "mnist",
        "--format",
        "csv",
    ]);
    runs.assert_ok();
    for line in runs.stdout().lines().skip(1) {
        let pearson_runs: f64 = line.split(',').nth(3).unwrap().parse().unwrap();
        assert!((pearson_runs - expected).abs() < 1e-12, "{line}");
    }
    assert_eq!(runs.stdout().lines().count(), 3);
}
