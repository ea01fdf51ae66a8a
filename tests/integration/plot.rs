//! `fstream plot`: each figure's CSV equals an independent computation from the tables, the
//! PNG decodes at the requested size and is not blank, the SVG parses.

use std::collections::BTreeMap;
use std::path::Path;

use crate::util::{Workspace, expected_counts, read_presentations};

/// Rows of a CSV file, header first.
fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

/// Asserts that `png` is `size` pixels and that more than 1% of them are not white.
fn assert_drawn_png(png: &Path, size: (u32, u32)) {
    let image = image::open(png).unwrap().to_rgb8();
    assert_eq!(image.dimensions(), size, "{}", png.display());
    let inked = image.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    assert!(inked * 100 > (size.0 * size.1) as usize, "{}: blank ({inked} pixels)", png.display());
}

#[test]
fn every_figure_draws_its_independently_checked_data() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(150, 30);
    ws.train(&["--seeds", "1..2", "--epochs", "3", "--threads", "2"]).assert_ok();
    let root = ws.root().display().to_string();
    let data = ws.data_dir().display().to_string();
    let plot = |figure: &str, file: &str| {
        let output = ws.path().join(file);
        let args = ["plot", figure, "--root", &root, "--dataset", "mnist", "--data-dir", &data];
        let run = ws.fstream(
            &[&args[..], &["--size", "900x600", "--output", output.to_str().unwrap()]].concat(),
        );
        run.assert_ok();
        assert_eq!(run.stdout().trim(), output.display().to_string());
        csv_rows(&output.with_extension("csv"))
    };
    let presentations = read_presentations(&ws.root());
    let counts = expected_counts(&presentations, None);

    // Figure 1: the fraction of examples per summed forgetting count.
    let rows = plot("forgetting-histogram", "histogram.png");
    assert_eq!(rows[0], ["group", "forgetting_count", "examples", "fraction"]);
    let mut by_count: BTreeMap<u32, u64> = BTreeMap::new();
    for &c in counts.values() {
        *by_count.entry(c).or_default() += 1;
    }
    let largest = *by_count.keys().max().unwrap();
    assert_eq!(rows.len() - 1, largest as usize + 1, "one row per count 0..=max");
    for row in &rows[1..] {
        let count: u32 = row[1].parse().unwrap();
        let expected = by_count.get(&count).copied().unwrap_or(0);
        assert_eq!(row[2].parse::<u64>().unwrap(), expected, "count {count}");
        assert!((row[3].parse::<f64>().unwrap() - expected as f64 / 150.0).abs() < 1e-12);
    }
    assert_drawn_png(&ws.path().join("histogram.png"), (900, 600));

    // Training curves: the epochs table's accuracies, 2 runs x 3 epochs.
    let rows = plot("training-curves", "curves.svg");
    assert_eq!(rows[0], ["run_id", "epoch", "train_acc", "test_acc"]);
    assert_eq!(rows.len() - 1, 6);
    for row in &rows[1..] {
        let file = ws.root().join(format!("epochs/{}.parquet", row[0]));
        let epochs = crate::util::read_parquet(&file);
        let epoch: u32 = row[1].parse().unwrap();
        let i = (epoch - 1) as usize;
        let test = crate::util::typed_column::<arrow::array::Float64Array>(&epochs, "test_acc");
        assert_eq!(row[3].parse::<f64>().unwrap(), test.value(i), "{row:?}");
    }
    let svg = std::fs::read_to_string(ws.path().join("curves.svg")).unwrap();
    let document = roxmltree::Document::parse(&svg).expect("the SVG parses");
    let texts = document.descendants().filter(|n| n.has_tag_name("text")).count();
    assert!(texts > 10, "axis labels and legend are text: {texts}");

    // Data map: each example's mean p(label) over presentations, averaged over the runs.
    let rows = plot("data-map", "map.png");
    assert_eq!(rows[0], ["example_id", "confidence", "variability", "correctness"]);
    assert_eq!(rows.len() - 1, 150);
    let mut confidence: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for run in presentations.values() {
        let mut per_run: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
        for p in run {
            per_run.entry(p.example_id).or_default().push((-f64::from(p.loss)).exp());
        }
        for (id, p) in per_run {
            confidence.entry(id).or_default().push(p.iter().sum::<f64>() / p.len() as f64);
        }
    }
    for row in &rows[1..] {
        let id: u32 = row[0].parse().unwrap();
        let runs = &confidence[&id];
        let expected = runs.iter().sum::<f64>() / runs.len() as f64;
        assert!((row[1].parse::<f64>().unwrap() - expected).abs() < 1e-12, "{row:?}");
        let correctness: f64 = row[3].parse().unwrap();
        assert!((0.0..=1.0).contains(&correctness));
    }
    assert_drawn_png(&ws.path().join("map.png"), (900, 600));

    // Figure 2: the unforgettable examples (lowest ids) and the most forgotten.
    let rows = plot("examples", "examples.png");
    assert_eq!(rows[0], ["row", "example_id", "label", "forgetting_count"]);
    let unforgettable: Vec<u32> =
        counts.iter().filter(|(_, c)| **c == 0).map(|(&id, _)| id).take(10).collect();
    let shown: Vec<u32> = rows[1..]
        .iter()
        .filter(|r| r[0] == "unforgettable")
        .map(|r| r[1].parse().unwrap())
        .collect();
    assert_eq!(shown, unforgettable);
    let most: Vec<u32> = rows[1..]
        .iter()
        .filter(|r| r[0] == "most forgotten")
        .map(|r| r[3].parse().unwrap())
        .collect();
    assert_eq!(most.len(), 10);
    assert_eq!(most[0], *counts.values().max().unwrap());
    assert!(most.windows(2).all(|w| w[0] >= w[1]), "most forgotten first: {most:?}");
    assert_drawn_png(&ws.path().join("examples.png"), (900, 600));

    ws.fstream(&["plot", "data-map", "--root", &root, "--dataset", "mnist", "--output", "x.jpg"])
        .assert_exit_code(2)
        .assert_error_contains("x.jpg: expected a file name ending in .png or .svg");
}

/// (remove_n, keep_lowest_n, final test accuracy) of every complete run, read with the
/// parquet crate.
fn final_accuracies(root: &Path) -> Vec<(u32, i64, f64)> {
    use arrow::array::{Float64Array, Int64Array, StringArray, UInt32Array};
    crate::util::parquet_files(&root.join("runs"))
        .iter()
        .filter_map(|file| {
            let run = crate::util::read_parquet(file);
            let status = crate::util::typed_column::<StringArray>(&run, "status").value(0);
            if status != "complete" {
                return None;
            }
            let id = crate::util::typed_column::<StringArray>(&run, "run_id").value(0);
            let remove_n = crate::util::typed_column::<UInt32Array>(&run, "remove_n").value(0);
            let keep = crate::util::typed_column::<Int64Array>(&run, "keep_lowest_n").value(0);
            let labels = crate::util::typed_column::<arrow::array::Float64Array>(
                &run,
                "noise_percent_labels",
            )
            .value(0);
            let pixels =
                crate::util::typed_column::<arrow::array::Float64Array>(&run, "noise_std_pixels")
                    .value(0);
            if labels > 0.0 || pixels > 0.0 {
                return None;
            }
            let epochs = crate::util::read_parquet(&root.join(format!("epochs/{id}.parquet")));
            let test = crate::util::typed_column::<Float64Array>(&epochs, "test_acc");
            Some((remove_n, keep, test.value(test.len() - 1)))
        })
        .collect()
}

#[test]
fn removal_noise_and_seed_figures_draw_their_experiments() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(120, 30);
    let epochs = ["--epochs", "2", "--threads", "2"];
    ws.train(&[&["--seeds", "1..2"][..], &epochs].concat()).assert_ok();
    ws.order("base", &[]).assert_ok();
    let sorting = ws.path().join("base.parquet").display().to_string();
    for (remove, keep) in [("20", "0"), ("40", "0"), ("20", "-1"), ("40", "-1"), ("20", "20")] {
        let removal = [
            "--seeds",
            "1..2",
            "--sorting-file",
            &sorting,
            "--remove-n",
            remove,
            "--keep-lowest-n",
            keep,
        ];
        ws.train(&[&removal[..], &epochs].concat()).assert_ok();
    }
    let root = ws.root().display().to_string();
    let plot = |figure: &str, extra: &[&str]| {
        let output = ws.path().join(format!("{figure}.png"));
        let args = [
            "plot",
            figure,
            "--root",
            &root,
            "--dataset",
            "mnist",
            "--size",
            "800x500",
            "--output",
        ];
        ws.fstream(&[&args[..], &[output.to_str().unwrap()], extra].concat()).assert_ok();
        assert_drawn_png(&output, (800, 500));
        csv_rows(&output.with_extension("csv"))
    };

    // Removal: per kind and size, the mean and sd over the two seeds of the final accuracy.
    let finals = final_accuracies(&ws.root());
    let expected = |x: f64, selected: bool, window: bool| {
        let accuracies: Vec<f64> = finals
            .iter()
            // Runs without removal start both curves.
            .filter(|(r, k, _)| {
                let kind = (*k >= 0) == selected || (*r == 0 && !window);
                kind && f64::from(if window { *k as u32 } else { *r }) == x
            })
            .filter(|(_, k, _)| !window || *k >= 0)
            .map(|f| f.2)
            .collect();
        let mean = accuracies.iter().sum::<f64>() / accuracies.len() as f64;
        let variance = accuracies.iter().map(|a| (a - mean).powi(2)).sum::<f64>()
            / (accuracies.len() as f64 - 1.0);
        (accuracies.len(), mean, variance.sqrt())
    };
    for (figure, window) in [("removal", false), ("removal-window", true)] {
        let rows = plot(figure, &[]);
        assert_eq!(rows[0], ["removal", "x", "runs", "mean_test_acc", "std_test_acc"]);
        let (runs, mean, sd) = (2, 3, 4);
        for row in &rows[1..] {
            let x: f64 = row[1].parse().unwrap();
            let (n, want_mean, want_sd) = expected(x, row[0] == "selected", window);
            assert_eq!(row[runs].parse::<usize>().unwrap(), n, "{figure} {row:?}");
            assert!(
                (row[mean].parse::<f64>().unwrap() - want_mean).abs() < 1e-12,
                "{figure} {row:?}"
            );
            assert!((row[sd].parse::<f64>().unwrap() - want_sd).abs() < 1e-9, "{figure} {row:?}");
        }
        let kinds: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
        let expected_rows = if window { 2 } else { 6 };
        assert_eq!(kinds.len(), expected_rows, "{figure}: {rows:?}");
    }

    // Seed stability over the two base runs: each run's counts against the other's.
    let rows = plot("seed-stability", &["--where", "remove_n = 0"]);
    assert_eq!(rows[0], ["run_id", "example_id", "own", "others"]);
    assert_eq!(rows.len() - 1, 2 * 120);
    let mut by_run: BTreeMap<String, BTreeMap<String, (String, String)>> = BTreeMap::new();
    for row in &rows[1..] {
        by_run
            .entry(row[0].clone())
            .or_default()
            .insert(row[1].clone(), (row[2].clone(), row[3].clone()));
    }
    let runs: Vec<&BTreeMap<String, (String, String)>> = by_run.values().collect();
    for (id, (own, others)) in runs[0] {
        assert_eq!(&runs[1][id].1, own, "example {id}: run 1's count is run 2's other");
        assert_eq!(&runs[1][id].0, others);
    }

    // Label noise: 30% of 120 examples flipped in one run; pixel noise at two strengths.
    ws.train(&[&["--seed", "3", "--noise-percent-labels", "30"][..], &epochs].concat()).assert_ok();
    let rows = plot("label-noise", &["--where", "noise_percent_labels = 30"]);
    let total = |group: &str| -> u64 {
        rows[1..].iter().filter(|r| r[0] == group).map(|r| r[2].parse::<u64>().unwrap()).sum()
    };
    assert_eq!((total("noisy"), total("clean")), (36, 84));
    for std in ["2", "10"] {
        let pixels = ["--seed", "4", "--noise-percent-pixels", "50", "--noise-std-pixels", std];
        ws.train(&[&pixels[..], &epochs].concat()).assert_ok();
    }
    let rows = plot("pixel-noise", &["--where", "noise_percent_pixels = 50"]);
    let groups: std::collections::BTreeSet<&str> =
        rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        groups.into_iter().collect::<Vec<_>>(),
        ["noise_std_pixels = 10.0", "noise_std_pixels = 2.0"]
    );
}

#[test]
fn the_report_shows_every_figure_that_applies_in_a_headless_browser() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(100, 20);
    ws.train(&["--seeds", "1..2", "--epochs", "2", "--threads", "2"]).assert_ok();
    ws.train(&["--seed", "3", "--epochs", "2", "--noise-percent-labels", "20"]).assert_ok();
    let out = ws.path().join("report");
    let (root, data) = (ws.root().display().to_string(), ws.data_dir().display().to_string());
    let run = ws.fstream(&[
        "report",
        "--root",
        &root,
        "--data-dir",
        &data,
        "--output",
        out.to_str().unwrap(),
    ]);
    run.assert_ok();
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    let images: Vec<&str> =
        html.split("<img src=\"").skip(1).map(|s| s.split('"').next().unwrap()).collect();
    let stems: Vec<&str> =
        images.iter().map(|i| i.trim_start_matches("mnist-").trim_end_matches(".png")).collect();
    assert_eq!(
        stems,
        [
            "forgetting-histogram",
            "examples",
            "training-curves",
            "data-map",
            "seed-stability",
            "label-noise"
        ],
        "the figures that apply, and no removal or pixel-noise figure"
    );
    for image in &images {
        assert_drawn_png(&out.join(image), (1200, 800));
        let csv = image.replace(".png", ".csv");
        assert!(html.contains(&format!("href=\"{csv}\"")) && out.join(&csv).is_file(), "{csv}");
    }
    assert!(html.contains("Unforgettable examples: <b>"), "counts per dataset");
    assert_eq!(html.matches("<tr>").count(), 1 + 3, "a header and one row per run");

    let Some(chromium) = std::env::var_os("FSTREAM_CHROMIUM") else {
        eprintln!(
            "skipped: set FSTREAM_CHROMIUM (scripts/test.sh does) to load the report in headless Chromium"
        );
        return;
    };
    let url = format!("file://{}", out.join("index.html").display());
    let headless = |extra: &str| {
        std::process::Command::new(&chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu"])
            .arg(format!("--user-data-dir={}", ws.path().join("chromium-profile").display()))
            .args([extra, &url])
            .output()
            .unwrap()
    };
    let dom = headless("--dump-dom");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains(&format!("data-images-loaded=\"{0}/{0}\"", images.len())),
        "every image loaded: {}",
        dom.lines().find(|l| l.contains("<body")).unwrap_or("")
    );
    let shot = ws.path().join("shot.png");
    let screenshot = headless(&format!("--screenshot={}", shot.display()));
    assert!(screenshot.status.success(), "{}", String::from_utf8_lossy(&screenshot.stderr));
    let size = image::image_dimensions(&shot).unwrap();
    assert_drawn_png(&shot, size);
}

/// Issue 23, items 5 and 6: a status command prints no warnings about tables a query would
/// need, and `--dataset` defaults to the root's only dataset (with several, the error lists
/// them).
#[test]
fn status_says_only_the_status_and_the_only_dataset_is_the_default() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(40, 5);
    // --no-record: the root has no presentations and no dynamics tables.
    ws.train(&["--epochs", "1", "--no-record", "--seed", "2"]).assert_ok();
    let root = ws.root().display().to_string();
    let runs = ws.fstream(&["runs", "--root", &root]);
    runs.assert_ok();
    assert_eq!(runs.stderr(), "", "runs printed warnings");
    ws.train(&["--epochs", "1"]).assert_ok();
    let curves = ws.path().join("curves.png").display().to_string();
    ws.fstream(&["plot", "training-curves", "--root", &root, "--output", &curves]).assert_ok();
    let scores = ws.path().join("aum.parquet").display().to_string();
    let aum = ["scores", "--root", &root, "--score", "aum", "--output", &scores];
    ws.fstream(&aum).assert_ok();
    ws.fstream(&["order", "--root", &root, "--output-dir", ws.path().to_str().unwrap()])
        .assert_ok();
    ws.fstream(&["compare", "--runs", "--root", &root])
        .assert_exit_code(2)
        .assert_error_contains("needs at least two complete runs of dataset 'mnist'");
    ws.train(&["--epochs", "1", "--dataset", "permuted_mnist"]).assert_ok();
    ws.fstream(&aum)
        .assert_exit_code(2)
        .assert_error_contains("holds runs of 2 datasets (mnist, permuted_mnist): pass --dataset");
}
