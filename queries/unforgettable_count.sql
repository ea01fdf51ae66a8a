-- Number of unforgettable examples (forgetting count 0 summed over the complete runs: learned
-- in every run and never forgotten once learned), out of all examples presented.
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
),
totals AS (
    SELECT example_id,
           SUM(CASE WHEN ever_correct = 1 THEN forgetting_events ELSE presentations END) AS forgetting_count
    FROM per_run
    GROUP BY example_id
)
SELECT SUM(CASE WHEN forgetting_count = 0 THEN 1 ELSE 0 END) AS unforgettable,
       COUNT(*) AS examples
FROM totals
