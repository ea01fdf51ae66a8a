"""Reads an fstream dataset root with pyarrow, pandas, DuckDB and polars, and checks that each
sees the same presentations and that DuckDB runs the shipped forgetting_counts.sql with the same
result as `fstream order`, and removal_curve.sql the same rows as `fstream query`. Usage:
interop.py ROOT QUERIES_DIR ORDER_CSV CURVE_CSV. Prints one line per reader and exits non-zero
on any mismatch."""
import sys

import duckdb
import pandas as pd
import polars as pl
import pyarrow.dataset as ds

from fstream_rows import assert_rows_match

root, queries, order_csv, curve_csv = sys.argv[1:]
pres = f"{root}/presentations"

arrow_table = ds.dataset(pres, format="parquet", partitioning="hive").to_table()
n = arrow_table.num_rows
assert set(arrow_table.column_names) >= {"dataset", "run_id", "epoch", "step", "example_id", "label", "loss", "correct", "margin"}, arrow_table.column_names
print(f"pyarrow: {n} presentations")

frame = pd.read_parquet(pres)
assert len(frame) == n and frame["correct"].dtype == bool, frame.dtypes
runs = pd.read_parquet(f"{root}/runs")
assert (runs["status"] == "complete").all(), runs["status"]
print(f"pandas: {len(frame)} presentations, {len(runs)} runs")

lazy = pl.scan_parquet(f"{pres}/**/*.parquet", hive_partitioning=True)
assert lazy.select(pl.len()).collect().item() == n
print(f"polars: {n} presentations")

con = duckdb.connect()
# The committed views of docs/crash-safety.md.
con.execute(f"""CREATE VIEW presentations AS
SELECT p.* FROM read_parquet('{pres}/**/*.parquet', hive_partitioning = true) p
JOIN read_parquet('{root}/runs/*.parquet') r USING (run_id)
WHERE p.epoch <= r.epochs_completed""")
con.execute(f"""CREATE VIEW epochs AS
SELECT e.* FROM read_parquet('{root}/epochs/*.parquet') e
JOIN read_parquet('{root}/runs/*.parquet') r USING (run_id)
WHERE e.epoch <= r.epochs_completed""")
for table in ["runs", "examples"]:
    con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{root}/{table}/*.parquet')")
con.execute(f"""CREATE VIEW dynamics AS
SELECT d.* FROM read_parquet('{root}/dynamics/*.parquet') d
JOIN read_parquet('{root}/runs/*.parquet') r USING (run_id)
WHERE d.epochs <= r.epochs_completed""")
con.execute("CREATE VIEW forgetting_per_run AS " + open(f"{queries}/views/forgetting_per_run.sql").read())
want = [tuple(int(v) for v in line.split(",")[:2]) for line in open(order_csv).read().splitlines()[1:]]
for name in ["forgetting_counts", "forgetting_counts_from_presentations"]:
    got = con.execute(open(f"{queries}/{name}.sql").read()).fetchall()
    assert [(int(a), int(b)) for a, b in got] == want, (name, got[:5], want[:5])
    print(f"duckdb: {name}.sql matches fstream order on {len(want)} examples")

first_learned = con.execute(open(f"{queries}/first_learned.sql").read()).fetchall()
assert len(first_learned) == len(want) * len(runs), len(first_learned)
print(f"duckdb: first_learned.sql gives {len(first_learned)} rows")

breakdown = con.execute(open(f"{queries}/label_noise_breakdown.sql").read()).fetchall()
pairs = sum(row[2] for row in breakdown)
assert pairs == len(want) * len(runs), (pairs, len(want), len(runs))
print(f"duckdb: label_noise_breakdown.sql covers {pairs} (run, example) pairs")

by_class = con.execute(open(f"{queries}/forgetting_by_class.sql").read()).fetchall()
counts = dict(want)
assert sum(row[2] for row in by_class) == len(want), by_class
assert sum(row[3] for row in by_class) == sum(1 for c in counts.values() if c == 0), by_class
print(f"duckdb: forgetting_by_class.sql covers {len(by_class)} classes")

curve = con.execute(open(f"{queries}/removal_curve.sql").read())
columns = [d[0] for d in curve.description]
matched = assert_rows_match(columns, curve.fetchall(), curve_csv)
print(f"duckdb: removal_curve.sql matches fstream query on {matched} configurations")
