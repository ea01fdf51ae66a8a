-- Label noise breakdown (the paper's Figure 3 data): per-run forgetting counts of examples
-- trained with a flipped label ("noisy") and with their true label ("clean"). One row per
-- group and forgetting count: how many (run, example) pairs have that count, their share of
-- the group, and the group's share of unforgettable pairs (count 0).
-- Forgetting count per run as in forgetting_counts.sql (never learned: its presentations).
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
counted AS (
    SELECT p.run_id, p.example_id,
           CASE WHEN e.label_noisy THEN 'noisy' ELSE 'clean' END AS labels,
           CASE WHEN p.ever_correct = 1 THEN p.forgetting_events ELSE p.presentations END AS forgetting_count
    FROM per_run p
    JOIN examples e ON p.run_id = e.run_id AND p.example_id = e.example_id
),
groups AS (
    SELECT labels,
           COUNT(*) AS group_size,
           SUM(CASE WHEN forgetting_count = 0 THEN 1 ELSE 0 END) AS group_unforgettable
    FROM counted
    GROUP BY labels
)
SELECT c.labels, c.forgetting_count, COUNT(*) AS examples,
       CAST(COUNT(*) AS DOUBLE) / MAX(g.group_size) AS share_of_group,
       CAST(MAX(g.group_unforgettable) AS DOUBLE) / MAX(g.group_size) AS group_unforgettable_fraction
FROM counted c
JOIN groups g ON c.labels = g.labels
GROUP BY c.labels, c.forgetting_count
ORDER BY c.labels, c.forgetting_count
