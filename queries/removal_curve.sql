-- Removal curves (the paper's Figures 5 and 6, and any sweep): per configuration of removal
-- and noise, the final and the best test accuracy of its complete runs, as mean and sample
-- standard deviation over seeds, and how many seeds are complete. `removal` is 'none',
-- 'selected' (keep_lowest_n >= 0: ranks keep_lowest_n .. keep_lowest_n + remove_n of the
-- sorting file removed) or 'random' (keep_lowest_n < 0). remove_n counts the examples the
-- runs actually removed; sorting_file is '' for runs without one. Runs in standard SQL: fstream, DuckDB and Spark give the same rows.
WITH per_run AS (
    SELECT
        r.run_id, r.dataset, r.model, r.epochs, r.data_augmentation, r.cutout_holes,
        COALESCE(r.sorting_file, '') AS sorting_file, r.remove_n, r.keep_lowest_n,
        r.remove_subsample, r.noise_percent_labels, r.noise_percent_pixels, r.noise_std_pixels,
        CASE
            WHEN r.remove_n = 0 THEN 'none'
            WHEN r.keep_lowest_n < 0 THEN 'random'
            ELSE 'selected'
        END AS removal,
        MAX(CASE WHEN e.epoch = r.epochs_completed THEN e.test_acc END) AS final_test_acc,
        MAX(e.test_acc) AS best_test_acc
    FROM runs r
    JOIN epochs e ON e.run_id = r.run_id
    WHERE r.status = 'complete'
    GROUP BY
        r.run_id, r.dataset, r.model, r.epochs, r.data_augmentation, r.cutout_holes,
        r.sorting_file, r.remove_n, r.keep_lowest_n, r.remove_subsample,
        r.noise_percent_labels, r.noise_percent_pixels, r.noise_std_pixels, r.epochs_completed
)
SELECT
    dataset, model, epochs, data_augmentation, cutout_holes, sorting_file, removal,
    remove_n, keep_lowest_n, remove_subsample,
    noise_percent_labels, noise_percent_pixels, noise_std_pixels,
    COUNT(*) AS seeds_complete,
    AVG(final_test_acc) AS final_test_acc_mean,
    STDDEV_SAMP(final_test_acc) AS final_test_acc_std,
    AVG(best_test_acc) AS best_test_acc_mean,
    STDDEV_SAMP(best_test_acc) AS best_test_acc_std
FROM per_run
GROUP BY
    dataset, model, epochs, data_augmentation, cutout_holes, sorting_file, removal,
    remove_n, keep_lowest_n, remove_subsample,
    noise_percent_labels, noise_percent_pixels, noise_std_pixels
ORDER BY
    dataset, model, epochs, data_augmentation, cutout_holes, sorting_file, removal,
    remove_n, keep_lowest_n, remove_subsample,
    noise_percent_labels, noise_percent_pixels, noise_std_pixels
