-- View forgetting_per_run: the forgetting rule, written once. One row per run and presented
-- example: its presentations, forgetting events (correct going from true to false between
-- consecutive presentations), whether it was ever correct, and its forgetting count in the
-- run (the events, or its number of presentations when it was never correct: the reference's
-- rule). Reads the dynamics table (schemas/dynamics.md), one row per run and example; the same
-- numbers from the presentations themselves: forgetting_counts_from_presentations.sql.
-- `fstream query` registers it; in another engine create it first, e.g. in DuckDB:
-- CREATE VIEW forgetting_per_run AS <this statement>;
SELECT run_id, example_id, presentations, forgetting_events,
       CASE WHEN correct_presentations > 0 THEN 1 ELSE 0 END AS ever_correct,
       CASE WHEN correct_presentations > 0 THEN forgetting_events ELSE presentations END
           AS forgetting_count
FROM dynamics
