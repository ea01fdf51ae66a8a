//! `fstream import-reference`: the reference's statistics pickles (written here by a Python
//! script with numpy, in the reference's structure) become complete runs whose counts are the
//! reference's.

use std::process::Command;

use crate::util::{Workspace, read_order_csv, repo_file};

#[test]
fn reference_pickles_import_as_runs_that_count_as_the_reference_does() {
    let Some(python) = std::env::var_os("FSTREAM_PYTHON") else {
        eprintln!("skipped: set FSTREAM_PYTHON (numpy writes the reference's pickles)");
        return;
    };
    let ws = Workspace::new();
    ws.write_tiny_mnist(60, 10);
    let pickles = ws.path().join("reference");
    std::fs::create_dir_all(&pickles).unwrap();
    let output = Command::new(python)
        .arg(repo_file("tests/integration/reference_stats.py"))
        .args([pickles.to_str().unwrap(), "60", "5"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let expected: Vec<(u32, u32, f64)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect();
    assert_eq!(expected.len(), 60);

    let mut files: Vec<String> = std::fs::read_dir(&pickles)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    files.sort();
    let root = ws.root().display().to_string();
    let data = ws.data_dir().display().to_string();
    let args = ["import-reference", "--data-dir", &data, "--output-dir", &root];
    let run =
        ws.fstream(&[&args[..], &files.iter().map(String::as_str).collect::<Vec<_>>()].concat());
    run.assert_ok();
    assert_eq!(run.stdout().lines().count(), 2);

    ws.order("order", &["--where", "no_dropout AND remove_n = 0"]).assert_ok();
    let got: Vec<(u32, u32)> =
        read_order_csv(&ws.path().join("order.csv")).iter().map(|&(id, c, _)| (id, c)).collect();
    let want: Vec<(u32, u32)> = expected.iter().map(|&(id, c, _)| (id, c)).collect();
    assert_eq!(got, want, "fstream order over the imported runs = the reference's counts");

    let aum = ws.path().join("aum.parquet").display().to_string();
    let scores =
        ["scores", "--root", &root, "--dataset", "mnist", "--score", "aum", "--output", &aum];
    ws.fstream(&scores).assert_ok();
    let text = std::fs::read_to_string(ws.path().join("aum.csv")).unwrap();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (id, value): (u32, f64) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let reference = expected.iter().find(|e| e.0 == id).unwrap().2;
        assert!((value - reference).abs() < 1e-6, "example {id}: {value} vs {reference}");
    }
    let verify = ws.fstream(&["verify", "--root", &root]);
    verify.assert_ok();
    assert_eq!(verify.stdout(), "");
    let runs = ws.fstream(&["runs", "--root", &root]);
    runs.assert_ok();
    let complete = runs.stdout().lines().skip(1).filter(|l| l.contains(" complete ")).count();
    assert_eq!(complete, 2, "{}", runs.stdout());
}
