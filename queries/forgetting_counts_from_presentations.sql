-- Forgetting count of every example, summed over the complete runs, computed from the
-- presentations themselves: the definition (Toneva et al. 2019) written out over one row per
-- presentation. It gives the same numbers as forgetting_counts.sql, which reads the dynamics
-- table instead and is far faster; this one reads every presentation (a window over all of
-- them), so it needs no view and runs on any root with a presentations table.
-- Per run: a forgetting event is `correct` going from true to false between consecutive
-- presentations; an example never correct in the run counts its presentations.
WITH seq AS (
    SELECT run_id, example_id, epoch, correct,
           LAG(correct) OVER (PARTITION BY run_id, example_id ORDER BY epoch) AS prev_correct
    FROM presentations
    WHERE run_id IN (SELECT run_id FROM runs WHERE status = 'complete')
),
per_run AS (
    SELECT run_id, example_id,
           COUNT(*) AS presentations,
           SUM(CASE WHEN prev_correct AND NOT correct THEN 1 ELSE 0 END) AS forgetting_events,
           MAX(CASE WHEN correct THEN 1 ELSE 0 END) AS ever_correct
    FROM seq
    GROUP BY run_id, example_id
)
SELECT example_id,
       SUM(CASE WHEN ever_correct = 1 THEN forgetting_events ELSE presentations END)
           AS forgetting_count
FROM per_run
GROUP BY example_id
ORDER BY forgetting_count, example_id
