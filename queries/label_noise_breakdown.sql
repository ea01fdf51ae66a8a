-- Label noise breakdown (the paper's Figure 3 data): per-run forgetting counts of examples
-- trained with a flipped label ("noisy") and with their true label ("clean"). One row per
-- group and forgetting count: how many (run, example) pairs have that count, their share of
-- the group, and the group's share of unforgettable pairs (count 0).
-- Forgetting count per run: the view forgetting_per_run (never learned: its presentations).
WITH complete AS (
    SELECT run_id FROM runs WHERE status = 'complete'
),
counted AS (
    SELECT p.run_id, p.example_id,
           CASE WHEN e.label_noisy THEN 'noisy' ELSE 'clean' END AS labels,
           p.forgetting_count
    FROM forgetting_per_run p
    JOIN complete c ON p.run_id = c.run_id
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
