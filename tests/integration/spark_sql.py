"""Runs the shipped SQL unchanged in Spark SQL (PySpark, local mode) over fstream roots read as
hive-partitioned Parquet, with the committed views of docs/crash-safety.md. Checks that
forgetting_counts.sql and forgetting_counts_from_presentations.sql give `fstream order`'s
counts on ROOT, that every other shipped query runs, and that removal_curve.sql gives
`fstream query`'s rows on SWEEP_ROOT. Usage:
spark_sql.py QUERIES_DIR ROOT ORDER_CSV SWEEP_ROOT CURVE_CSV. Prints one line per check."""
import glob
import os
import sys

from pyspark.sql import SparkSession

from fstream_rows import assert_rows_match

queries, root, order_csv, sweep_root, curve_csv = sys.argv[1:]

spark = (
    SparkSession.builder.master("local[2]")
    .appName("fstream-interop")
    .config("spark.ui.enabled", "false")
    .config("spark.sql.shuffle.partitions", "4")
    .config("spark.driver.memory", "1g")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")


def register(root):
    """The tables of ROOT as the committed views: rows beyond a run's committed epochs hidden."""
    def table(name):
        return spark.read.option("mergeSchema", "true").parquet(f"{root}/{name}")

    runs = table("runs")
    runs.createOrReplaceTempView("runs")
    pres = f"{root}/presentations"
    spark.read.option("basePath", pres).option("mergeSchema", "true").parquet(pres) \
        .createOrReplaceTempView("all_presentations")
    table("epochs").createOrReplaceTempView("all_epochs")
    table("dynamics").createOrReplaceTempView("all_dynamics")
    table("examples").createOrReplaceTempView("examples")
    spark.sql("""CREATE OR REPLACE TEMP VIEW presentations AS
        SELECT p.* FROM all_presentations p JOIN runs r ON p.run_id = r.run_id
        WHERE p.epoch <= r.epochs_completed""")
    spark.sql("""CREATE OR REPLACE TEMP VIEW epochs AS
        SELECT e.* FROM all_epochs e JOIN runs r ON e.run_id = r.run_id
        WHERE e.epoch <= r.epochs_completed""")
    spark.sql("""CREATE OR REPLACE TEMP VIEW dynamics AS
        SELECT d.* FROM all_dynamics d JOIN runs r ON d.run_id = r.run_id
        WHERE d.epochs <= r.epochs_completed""")
    view = sql_text(f"{queries}/views/forgetting_per_run.sql")
    spark.sql(f"CREATE OR REPLACE TEMP VIEW forgetting_per_run AS {view}")


def sql_text(path):
    """A shipped SQL file without its comment lines (Spark's parser takes them, but a view
    body that starts with a comment is easier to read in errors without)."""
    return "\n".join(l for l in open(path).read().splitlines() if not l.lstrip().startswith("--"))


def run(name):
    return spark.sql(open(f"{queries}/{name}.sql").read()).collect()


register(root)
want = [tuple(int(v) for v in line.split(",")[:2]) for line in open(order_csv).read().splitlines()[1:]]
for name in ["forgetting_counts", "forgetting_counts_from_presentations"]:
    got = [(int(r[0]), int(r[1])) for r in run(name)]
    assert got == want, (name, got[:5], want[:5])
    print(f"spark: {name}.sql matches fstream order on {len(want)} examples")

shipped = sorted(os.path.basename(p)[:-4] for p in glob.glob(f"{queries}/*.sql"))
for name in shipped:
    rows = run(name)
    print(f"spark: {name}.sql runs ({len(rows)} rows)")

register(sweep_root)
curve = spark.sql(open(f"{queries}/removal_curve.sql").read())
matched = assert_rows_match(curve.columns, curve.collect(), curve_csv)
print(f"spark: removal_curve.sql matches fstream query on {matched} configurations")
spark.stop()
