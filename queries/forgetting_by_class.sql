-- Forgetting by class: for every class (and CIFAR-100 coarse class), how many examples it has,
-- how many are unforgettable, and the mean and largest forgetting count, with counts summed
-- over the complete runs exactly as in forgetting_counts.sql (and `fstream order`), from the
-- view forgetting_per_run.
-- Classes are the labels in the dataset files (`original_label`), so label noise does not move
-- an example to another class. `coarse_class` is null except for CIFAR-100.
-- Keep one dataset per root (or add a condition on `runs` below): example ids of different
-- datasets would mix. Runs in polars SQL (`fstream query`) and in DuckDB.
WITH complete AS (
    SELECT run_id FROM runs WHERE status = 'complete'
),
counts AS (
    SELECT example_id, SUM(forgetting_count) AS forgetting_count
    FROM forgetting_per_run
    WHERE run_id IN (SELECT run_id FROM complete)
    GROUP BY example_id
),
classes AS (
    SELECT DISTINCT example_id, original_label, coarse_label
    FROM examples
    WHERE run_id IN (SELECT run_id FROM complete)
)
SELECT k.original_label AS class, k.coarse_label AS coarse_class,
       COUNT(*) AS examples,
       SUM(CASE WHEN c.forgetting_count = 0 THEN 1 ELSE 0 END) AS unforgettable,
       AVG(c.forgetting_count) AS mean_forgetting_count,
       MAX(c.forgetting_count) AS max_forgetting_count
FROM counts c
JOIN classes k ON c.example_id = k.example_id
GROUP BY k.original_label, k.coarse_label
ORDER BY class
