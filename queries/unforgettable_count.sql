-- Number of unforgettable examples (forgetting count 0 summed over the complete runs: learned
-- in every run and never forgotten once learned), out of all examples presented.
WITH totals AS (
    SELECT example_id, SUM(forgetting_count) AS forgetting_count
    FROM forgetting_per_run
    WHERE run_id IN (SELECT run_id FROM runs WHERE status = 'complete')
    GROUP BY example_id
)
SELECT SUM(CASE WHEN forgetting_count = 0 THEN 1 ELSE 0 END) AS unforgettable,
       COUNT(*) AS examples
FROM totals
