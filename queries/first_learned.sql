-- Per run and example: the first epoch it was classified correctly (NULL: never), and the
-- presentations needed to learn it for good (the epoch of its last misclassification; 0 if
-- it was never misclassified). These are the reference's `first_learned` and
-- `presentations_needed_to_learn`, with 1-based epochs. From the dynamics table.
SELECT run_id, example_id,
       first_correct_epoch AS first_learned_epoch,
       COALESCE(last_incorrect_epoch, 0) AS presentations_to_learn,
       presentations
FROM dynamics
ORDER BY run_id, example_id
