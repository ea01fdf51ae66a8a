-- Forgetting count of every example, summed over the complete runs, computed from the
-- presentations themselves: the definition (Toneva et al. 2019) written out over one row per
-- presentation. It gives the same numbers as forgetting_counts.sql, which reads the dynamics
-- table instead and is far faster; this one reads every presentation, so it needs no view and
-- runs on any root with a presentations table.
-- Per run: a forgetting event is an example presented correctly at one epoch and incorrectly at
-- the next (a run presents its training set at every epoch, so consecutive presentations are
-- consecutive epochs); an example never correct in the run counts its presentations.
-- The events are a join of each incorrect presentation with a correct one an epoch earlier,
-- not `LAG(correct) OVER (PARTITION BY run_id, example_id ORDER BY epoch)`: engines stream a
-- join, while an ordered window holds every presentation in memory (6 GB for 60M in polars).
WITH complete AS (
    SELECT run_id FROM runs WHERE status = 'complete'
),
per_run AS (
    SELECT p.run_id, p.example_id,
           COUNT(*) AS presentations,
           MAX(CASE WHEN p.correct THEN 1 ELSE 0 END) AS ever_correct
    FROM presentations AS p
    JOIN complete AS c ON c.run_id = p.run_id
    GROUP BY p.run_id, p.example_id
),
forgetting_events AS (
    SELECT cur.run_id, cur.example_id, COUNT(*) AS events
    FROM (SELECT run_id, example_id, epoch FROM presentations WHERE NOT correct) AS cur
    JOIN (SELECT run_id, example_id, epoch + 1 AS next_epoch FROM presentations WHERE correct)
        AS prev
      ON prev.run_id = cur.run_id
     AND prev.example_id = cur.example_id
     AND prev.next_epoch = cur.epoch
    GROUP BY cur.run_id, cur.example_id
)
SELECT per_run.example_id,
       SUM(CASE WHEN per_run.ever_correct = 1 THEN COALESCE(forgetting_events.events, 0)
                ELSE per_run.presentations END) AS forgetting_count
FROM per_run
LEFT JOIN forgetting_events
  ON forgetting_events.run_id = per_run.run_id
 AND forgetting_events.example_id = per_run.example_id
GROUP BY per_run.example_id
ORDER BY forgetting_count, per_run.example_id
