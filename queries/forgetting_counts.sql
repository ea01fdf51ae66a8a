-- Forgetting count of every example, summed over the complete runs in the root (Toneva et al.
-- 2019; the same numbers as `fstream order`, ties by example_id). The per-run rule is the view
-- forgetting_per_run (queries/views/forgetting_per_run.sql).
-- To restrict runs, add a condition on the runs table below, e.g. `AND dataset = 'mnist'`.
-- Runs in polars SQL (`fstream query`) and in DuckDB (create the views first).
SELECT example_id, SUM(forgetting_count) AS forgetting_count
FROM forgetting_per_run
WHERE run_id IN (SELECT run_id FROM runs WHERE status = 'complete')
GROUP BY example_id
ORDER BY forgetting_count, example_id
