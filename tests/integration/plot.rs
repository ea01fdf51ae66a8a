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
        .assert_error_contains("expected a .png or .svg file");
}
