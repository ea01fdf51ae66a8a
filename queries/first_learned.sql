-- Per run and example: the first epoch it was classified correctly (NULL: never), and the
-- presentations needed to learn it for good (the epoch of its last misclassification; 0 if
-- it was never misclassified). These are the reference's `first_learned` and
-- `presentations_needed_to_learn`, with 1-based epochs.
SELECT run_id, example_id,
       MIN(CASE WHEN correct THEN epoch END) AS first_learned_epoch,
       MAX(CASE WHEN NOT correct THEN epoch ELSE 0 END) AS presentations_to_learn,
       COUNT(*) AS presentations
FROM presentations
GROUP BY run_id, example_id
ORDER BY run_id, example_id
