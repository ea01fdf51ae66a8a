-- Forgetting count of every example, summed over the complete runs in the root (Toneva et al.
-- 2019; the same numbers as `fstream order`, ties by example_id).
-- A forgetting event is `correct` going from true to false between consecutive presentations.
-- An example never correct in a run counts that run's number of presentations of it.
-- To restrict runs, add e.g. `AND dataset = 'mnist'` or a condition on the runs table below.
-- Runs in polars SQL (`fstream query`) and in DuckDB (register the four tables as views).
WITH seq AS (
    SELECT run_id, example_id, epoch, correct,
           LAG(correct) OVER (PARTITION BY run_id, example_id ORDER BY epoch) AS prev_correct
    FROM presentations
    WHERE run_id IN (SELECT run_id FROM runs WHERE status = 'complete')
),
per_run AS (
    SELECT run_id, example_id,
           SUM(CASE WHEN prev_correct AND NOT correct THEN 1 ELSE 0 END) AS forgetting_events,
           MAX(CASE WHEN correct THEN 1 ELSE 0 END) AS ever_correct,
           COUNT(*) AS presentations
    FROM seq
    GROUP BY run_id, example_id
)
SELECT example_id,
       SUM(CASE WHEN ever_correct = 1 THEN forgetting_events ELSE presentations END) AS forgetting_count
FROM per_run
GROUP BY example_id
ORDER BY forgetting_count, example_id
