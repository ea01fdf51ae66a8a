-- View forgetting_per_run: the forgetting rule, written once. One row per run and presented
-- example: its presentations, forgetting events (correct going from true to false between
-- consecutive presentations), whether it was ever correct, and its forgetting count in the
-- run (the events, or its number of presentations when it was never correct).
-- `fstream query` registers it; in another engine create it first, e.g. in DuckDB:
-- CREATE VIEW forgetting_per_run AS <this statement>;
WITH seq AS (
    SELECT run_id, example_id, epoch, correct,
           LAG(correct) OVER (PARTITION BY run_id, example_id ORDER BY epoch) AS prev_correct
    FROM presentations
),
per_run AS (
    SELECT run_id, example_id,
           COUNT(*) AS presentations,
           SUM(CASE WHEN prev_correct AND NOT correct THEN 1 ELSE 0 END) AS forgetting_events,
           MAX(CASE WHEN correct THEN 1 ELSE 0 END) AS ever_correct
    FROM seq
    GROUP BY run_id, example_id
)
SELECT run_id, example_id, presentations, forgetting_events, ever_correct,
       CASE WHEN ever_correct = 1 THEN forgetting_events ELSE presentations END AS forgetting_count
FROM per_run
