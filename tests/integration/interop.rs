//! The Parquet files open as-is in pyarrow, pandas, DuckDB and polars-python, and the shipped
//! SQL gives the same counts in DuckDB. Needs FSTREAM_PYTHON (a python with those packages,
//! set up by scripts/setup-python.sh and set by scripts/test.sh); skipped with a message
//! otherwise.

use std::process::Command;

use crate::util::{Workspace, repo_file, tiny_removal_sweep};

#[test]
fn python_readers_see_the_same_data() {
    let Some(python) = std::env::var_os("FSTREAM_PYTHON") else {
        eprintln!(
            "skipped: set FSTREAM_PYTHON (scripts/test.sh does) to run the pyarrow/pandas/DuckDB/polars check"
        );
        return;
    };
    let ws = Workspace::new();
    ws.write_tiny_mnist(60, 10);
    ws.train(&["--seeds", "1..2", "--epochs", "3", "--threads", "2"]).assert_ok();
    ws.order("order", &[]).assert_ok();
    let curve = ws.query_csv(&repo_file("queries/removal_curve.sql"));
    std::fs::write(ws.path().join("curve.csv"), curve).unwrap();
    let output = Command::new(python)
        .arg(repo_file("tests/integration/interop.py"))
        .arg(ws.root())
        .arg(repo_file("queries"))
        .arg(ws.path().join("order.csv"))
        .arg(ws.path().join("curve.csv"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("pyarrow: 360 presentations"), "{stdout}");
    for name in ["forgetting_counts", "forgetting_counts_from_presentations"] {
        assert!(
            stdout.contains(&format!("duckdb: {name}.sql matches fstream order on 60 examples")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("duckdb: removal_curve.sql matches fstream query on 1 configurations"));
}

#[test]
fn the_references_idiom_reads_an_exported_pickle_and_numpy_reads_the_npy() {
    let Some(python) = std::env::var_os("FSTREAM_PYTHON") else {
        eprintln!("skipped: set FSTREAM_PYTHON to load the exported pickle and .npy in Python");
        return;
    };
    let ws = Workspace::new();
    ws.write_tiny_mnist(80, 10);
    ws.train(&["--seeds", "1..2", "--epochs", "2", "--threads", "2"]).assert_ok();
    ws.order("order", &[]).assert_ok();
    let order = ws.path().join("order.parquet").display().to_string();
    let pickle = ws.fstream(&["export", &order, "--to", "reference-pickle"]);
    pickle.assert_ok();
    assert_eq!(pickle.stdout().trim(), ws.path().join("order.pkl").display().to_string());
    ws.fstream(&["export", &order, "--to", "npy"]).assert_ok();
    let script = r#"
import pickle, sys
import numpy as np
pkl, npy, csv = sys.argv[1:]
rows = [line.split(",") for line in open(csv).read().splitlines()[1:]]
k, r = 10, 25
# The reference's run_mnist.py: np.array(pickle.load(f)['indices'])[keep_lowest_n:keep_lowest_n + remove_n]
with open(pkl, "rb") as f:
    removed = np.array(pickle.load(f)["indices"])[k:k + r]
assert [int(i) for i in removed] == [int(row[0]) for row in rows[k:k + r]], removed
counts = pickle.load(open(pkl, "rb"))["forgetting counts"]
assert [int(c) for c in counts] == [int(row[1]) for row in rows]
values = np.load(npy)
assert values.shape == (len(rows),) and values.dtype == np.float64
assert all(values[int(row[0])] == float(row[1]) for row in rows if row[3] == "true")
print(f"reference idiom removed {len(removed)}; npy holds {values.shape[0]} values")
"#;
    let output = Command::new(python)
        .args(["-c", script])
        .arg(ws.path().join("order.pkl"))
        .arg(ws.path().join("order.npy"))
        .arg(ws.path().join("order.csv"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout.trim(), "reference idiom removed 25; npy holds 80 values");
}

#[test]
fn the_shipped_sql_runs_unchanged_in_spark() {
    let (Some(python), Some(_)) =
        (std::env::var_os("FSTREAM_PYTHON"), std::env::var_os("FSTREAM_SPARK"))
    else {
        eprintln!(
            "skipped: set FSTREAM_PYTHON and FSTREAM_SPARK=1 (scripts/test.sh does, after scripts/setup-spark.sh) to run the Spark SQL check"
        );
        return;
    };
    let ws = Workspace::new();
    ws.write_tiny_mnist(60, 10);
    ws.train(&["--seeds", "1..2", "--epochs", "3", "--threads", "2"]).assert_ok();
    ws.order("order", &[]).assert_ok();
    // A second root with removal runs, written by a sweep, for removal_curve.sql.
    let spec = ws.path().join("sweep.toml");
    std::fs::write(&spec, tiny_removal_sweep("spark", &[1, 2], &[20])).unwrap();
    let sweep_root = ws.path().join("sweep-root");
    let (spec_arg, sweep_arg) = (spec.display().to_string(), sweep_root.display().to_string());
    let data = ws.data_dir().display().to_string();
    ws.fstream(&["sweep", "run", &spec_arg, "--root", &sweep_arg, "--data-dir", &data, "-j", "2"])
        .assert_ok();
    let curve = ws.query_csv_at(&repo_file("queries/removal_curve.sql"), &sweep_root);
    assert_eq!(curve.lines().count(), 4, "{curve}");
    std::fs::write(ws.path().join("curve.csv"), curve).unwrap();
    let output = Command::new(python)
        .arg(repo_file("tests/integration/spark_sql.py"))
        .arg(repo_file("queries"))
        .arg(ws.root())
        .arg(ws.path().join("order.csv"))
        .arg(&sweep_root)
        .arg(ws.path().join("curve.csv"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    for name in ["forgetting_counts", "forgetting_counts_from_presentations"] {
        let line = format!("spark: {name}.sql matches fstream order on 60 examples");
        assert!(stdout.contains(&line), "{stdout}");
    }
    let shipped = std::fs::read_dir(repo_file("queries"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
        .count();
    assert_eq!(stdout.matches(".sql runs (").count(), shipped, "{stdout}");
    assert!(stdout.contains("spark: removal_curve.sql matches fstream query on 3 configurations"));
}
