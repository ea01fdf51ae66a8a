"""Reads crashed fstream roots with pyarrow and DuckDB: every committed file must read without
error, and DuckDB's committed view (the one documented in docs/crash-safety.md) must hide what
the runs rows do not declare. Usage: committed_view.py ROOT...; prints one line per root."""
import glob
import sys

import duckdb
import pyarrow.dataset as ds

COMMITTED_VIEW = """
CREATE OR REPLACE VIEW presentations AS
SELECT p.* FROM read_parquet('{root}/presentations/**/*.parquet', hive_partitioning = true) p
JOIN read_parquet('{root}/runs/*.parquet') r USING (run_id)
WHERE p.epoch <= r.epochs_completed
"""

for root in sys.argv[1:]:
    if not glob.glob(f"{root}/presentations/**/*.parquet", recursive=True):
        print(f"{root}: no presentations committed 0")
        continue
    files = ds.dataset(f"{root}/presentations", format="parquet", partitioning="hive")
    raw = files.to_table().num_rows
    con = duckdb.connect()
    duck_raw = con.execute(
        f"SELECT COUNT(*) FROM read_parquet('{root}/presentations/**/*.parquet', hive_partitioning = true)"
    ).fetchone()[0]
    assert duck_raw == raw, (root, duck_raw, raw)
    con.execute(COMMITTED_VIEW.format(root=root))
    committed = con.execute("SELECT COUNT(*) FROM presentations").fetchone()[0]
    print(f"{root}: pyarrow {raw} duckdb {duck_raw} committed {committed}")
