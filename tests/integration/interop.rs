//! The Parquet files open as-is in pyarrow, pandas, DuckDB and polars-python, and the shipped
//! SQL gives the same counts in DuckDB. Needs FSTREAM_PYTHON (a python with those packages,
//! set up by scripts/setup-python.sh and set by scripts/test.sh); skipped with a message
//! otherwise.

use std::process::Command;

use crate::util::{Workspace, repo_file};

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
    let output = Command::new(python)
        .arg(repo_file("tests/integration/interop.py"))
        .arg(ws.root())
        .arg(repo_file("queries"))
        .arg(ws.path().join("order.csv"))
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
}
