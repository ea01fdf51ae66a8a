//! The data behind each figure of `fstream plot`, as data frames: what is drawn, and what is
//! written as CSV beside the picture.

use polars::prelude::*;

use super::compare::seed_pairs;
use super::forgetting::{
    OrderOptions, check_no_twins, check_same_data, compute_order, matching_runs, plan_epochs,
    run_dynamics, select_runs, short_fingerprint,
};
use super::predicate::RunsPredicate;
use super::scores::{NeverLearned, Score, ScoreOptions, compute_scores};
use super::{Catalog, sql_string};
use crate::data::{self, DatasetKind, ImageSet};
use crate::error::{Error, Result};
use crate::store::dynamics::Needed;
use crate::store::runs::read_run;
use crate::store::schema::RunStatus;
use crate::store::sorting::Ranked;

/// `forgetting-histogram`: per group of runs (the runs' values of `group_by`, or one group),
/// how many examples have each forgetting count summed over the group's runs. Columns
/// `group`, `forgetting_count`, `examples`, `fraction`.
///
/// # Errors
/// As [`compute_order`], per group; [`Error::Config`] when `group_by` is not a `runs` column.
pub fn forgetting_histogram(
    catalog: &Catalog,
    options: &OrderOptions,
    group_by: Option<&str>,
) -> Result<DataFrame> {
    let groups = match group_by {
        None => vec![(options.dataset.clone(), options.clone())],
        Some(column) => group_values(catalog, options, column)?,
    };
    let mut histograms = Vec::new();
    for (name, group_options) in groups {
        let order = compute_order(catalog, &group_options)?;
        let Ranked::ForgettingCounts(values) = &order.sorting.ranked else {
            unreachable!("order ranks by forgetting counts")
        };
        let mut histogram = Histogram::default();
        for (&count, &presented) in values.iter().zip(&order.sorting.presented) {
            if presented {
                histogram.add(count);
            }
        }
        histograms.push((name, histogram));
    }
    histogram_frame(histograms)
}

/// How many examples (or pairs) have each forgetting count: `self.0[c]` have count `c`.
#[derive(Debug, Clone, Default)]
struct Histogram(Vec<u64>);

impl Histogram {
    fn add(&mut self, count: u32) {
        let count = count as usize;
        if self.0.len() <= count {
            self.0.resize(count + 1, 0);
        }
        self.0[count] += 1;
    }
}

/// Named histograms as one frame: columns `group`, `forgetting_count`, `examples` and
/// `fraction` (of the group), one row per group and count from 0 to the group's largest.
fn histogram_frame(histograms: Vec<(String, Histogram)>) -> Result<DataFrame> {
    let (mut groups, mut counts, mut examples, mut fractions) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (name, Histogram(histogram)) in histograms {
        let total: u64 = histogram.iter().sum();
        for (count, &n) in histogram.iter().enumerate() {
            groups.push(name.clone());
            counts.push(count as u32);
            examples.push(n);
            fractions.push(n as f64 / total.max(1) as f64);
        }
    }
    Ok(DataFrame::new_infer_height(vec![
        Column::new("group".into(), groups),
        Column::new("forgetting_count".into(), counts),
        Column::new("examples".into(), examples),
        Column::new("fraction".into(), fractions),
    ])?)
}

/// The distinct values of a `runs` column among the runs `options` selects, each with the
/// options that select its runs.
fn group_values(
    catalog: &Catalog,
    options: &OrderOptions,
    column: &str,
) -> Result<Vec<(String, OrderOptions)>> {
    let columns = catalog.runs_columns()?;
    if columns.get(column).is_none() {
        let names: Vec<&str> = columns.iter_names().map(|n| n.as_str()).collect();
        return Err(Error::Config(format!(
            "--group-by {column:?}: expected a column of the runs table ({})",
            names.join(", ")
        )));
    }
    let sql = format!(
        "SELECT DISTINCT CAST({column} AS VARCHAR) AS value FROM runs WHERE {} ORDER BY value",
        options.runs_condition(catalog, "")?
    );
    let frame = catalog.execute(&sql).map_err(|e| {
        Error::Config(format!("--group-by {column}: {}", crate::error::first_line(&e.to_string())))
    })?;
    // Each group's condition joins the user's, as rendered from its parse (one expression).
    let user = match &options.where_sql {
        Some(w) => Some(RunsPredicate::parse(w, &catalog.runs_columns()?)?.to_sql("")),
        None => None,
    };
    let values = frame.column("value")?.str()?;
    Ok(values
        .iter()
        .flatten()
        .map(|value| {
            let own = format!("CAST({column} AS VARCHAR) = {}", sql_string(value));
            let where_sql = match &user {
                Some(user) => format!("{user} AND {own}"),
                None => own,
            };
            let name = format!("{column} = {value}");
            (name, OrderOptions { where_sql: Some(where_sql), ..options.clone() })
        })
        .collect())
}

/// `training-curves`: train and test accuracy per run and epoch (committed epochs of the
/// selected runs). Columns `run_id`, `epoch`, `train_acc`, `test_acc`.
///
/// # Errors
/// [`Error::Polars`] when the tables cannot be read; [`Error::Config`] for a bad predicate.
pub fn training_curves(catalog: &Catalog, options: &OrderOptions) -> Result<DataFrame> {
    let sql = format!(
        "SELECT e.run_id, e.epoch, e.train_acc, e.test_acc FROM epochs e JOIN runs r ON e.run_id = r.run_id \
         WHERE {} ORDER BY e.run_id, e.epoch",
        options.runs_condition(catalog, "r")?
    );
    catalog.execute(&sql).map_err(|e| {
        Error::Config(format!("training curves: {}", crate::error::first_line(&e.to_string())))
    })
}

/// `data-map`: per example, dataset cartography's confidence, variability and correctness
/// averaged over the selected runs. Columns `example_id`, `confidence`, `variability`,
/// `correctness` (presented examples, by id).
///
/// # Errors
/// As [`compute_scores`].
pub fn data_map(catalog: &Catalog, options: &OrderOptions) -> Result<DataFrame> {
    let by_id = |score: Score| -> Result<Vec<Option<f64>>> {
        let scores = ScoreOptions {
            selection: options.clone(),
            score,
            never_learned: NeverLearned::default(),
            descending: false,
            epoch: None,
        };
        Ok(compute_scores(catalog, &scores)?.sorting.values_by_id())
    };
    let [confidence, variability, correctness] =
        [Score::Confidence, Score::Variability, Score::Correctness].map(by_id);
    let (confidence, variability, correctness) = (confidence?, variability?, correctness?);
    let ids: Vec<u32> =
        (0..confidence.len() as u32).filter(|&i| confidence[i as usize].is_some()).collect();
    let pick = |values: &[Option<f64>]| -> Vec<f64> {
        ids.iter().map(|&i| values[i as usize].unwrap_or(f64::NAN)).collect()
    };
    Ok(DataFrame::new_infer_height(vec![
        Column::new("confidence".into(), pick(&confidence)),
        Column::new("variability".into(), pick(&variability)),
        Column::new("correctness".into(), pick(&correctness)),
        Column::new("example_id".into(), ids),
    ])?
    .select(["example_id", "confidence", "variability", "correctness"])?)
}

/// `examples`: the `n` unforgettable examples (count 0, lowest ids first) and the `n` most
/// forgotten, with their labels, and the training images to show them from, read from
/// `data_dir` (permuted MNIST unpermuted). Columns `row`, `example_id`, `label`,
/// `forgetting_count`.
///
/// # Errors
/// As [`compute_order`] and [`data::load`]; [`Error::Config`] when `data_dir` holds other data
/// than the runs trained on (its fingerprint differs from theirs), which would caption other
/// images with these counts.
pub fn extreme_examples(
    catalog: &Catalog,
    options: &OrderOptions,
    n: usize,
    data_dir: &std::path::Path,
) -> Result<(DataFrame, ImageSet)> {
    let order = compute_order(catalog, options)?;
    let sorting = &order.sorting;
    let kind: DatasetKind = sorting.dataset.parse().map_err(Error::Config)?;
    let trained = data::load(data_dir, kind, sorting.permutation_seed.unwrap_or(0))?;
    let fingerprint = trained.fingerprint();
    if let Some(runs_fingerprint) = sorting.data_sha256.as_deref().filter(|f| *f != fingerprint) {
        return Err(Error::Config(format!(
            "--data-dir {}: its {kind} files (data_sha256 {}) are not the data the runs trained on ({}); pass the --data-dir they were trained from",
            data_dir.display(),
            short_fingerprint(&fingerprint),
            short_fingerprint(runs_fingerprint)
        )));
    }
    // Permuted MNIST is shown unpermuted: the permutation only shuffles pixels.
    let images = match kind {
        DatasetKind::PermutedMnist => data::load(data_dir, DatasetKind::Mnist, 0)?.train,
        _ => trained.train,
    };
    let labels = &images.labels;
    let Ranked::ForgettingCounts(counts) = &sorting.ranked else {
        unreachable!("order ranks by forgetting counts")
    };
    let presented: Vec<usize> =
        (0..sorting.example_ids.len()).filter(|&r| sorting.presented[r]).collect();
    let unforgettable = presented.iter().copied().filter(|&r| counts[r] == 0).take(n);
    // Forgotten at least once: an unforgettable example is never shown as most forgotten.
    let most_forgotten = presented.iter().rev().copied().filter(|&r| counts[r] > 0).take(n);
    let (mut rows, mut ids, mut example_labels, mut values) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (name, ranks) in [
        ("unforgettable", unforgettable.collect::<Vec<_>>()),
        ("most forgotten", most_forgotten.collect()),
    ] {
        for rank in ranks {
            let id = sorting.example_ids[rank];
            rows.push(name);
            ids.push(id);
            example_labels.push(u32::from(labels.get(id as usize).copied().unwrap_or(0)));
            values.push(counts[rank]);
        }
    }
    let frame = DataFrame::new_infer_height(vec![
        Column::new("row".into(), rows),
        Column::new("example_id".into(), ids),
        Column::new("label".into(), example_labels),
        Column::new("forgetting_count".into(), values),
    ])?;
    Ok((frame, images))
}

/// `label-noise` (the paper's Figure 3): per-run forgetting counts of the examples trained
/// with a flipped label (`noisy`) and with their own (`clean`): columns `group`,
/// `forgetting_count`, `examples` ((run, example) pairs), `fraction` (of the group).
///
/// # Errors
/// As [`select_runs`] and [`plan_epochs`]; [`Error::Format`] for an unreadable examples file.
pub fn label_noise(catalog: &Catalog, options: &OrderOptions) -> Result<DataFrame> {
    let runs = select_runs(catalog, options)?.counted;
    let plan = plan_epochs(&runs, options)?;
    let mut histograms = [Histogram::default(), Histogram::default()];
    for (run, &epochs) in runs.iter().zip(&plan.epochs) {
        let dynamics = run_dynamics(catalog, run, epochs, plan.num_examples, Needed::Correctness)?;
        let examples = read_run(catalog.layout(), &run.run_id)?.examples;
        for i in 0..plan.num_examples {
            let Some(count) = dynamics.forgetting_count(i, plan.penalty) else { continue };
            let noisy = examples.labels[i] != examples.original_labels[i];
            histograms[usize::from(noisy)].add(count);
        }
    }
    let [clean, noisy] = histograms;
    histogram_frame(vec![("clean".into(), clean), ("noisy".into(), noisy)])
}

/// `seed-stability`: each run's forgetting count of each example against the sum over the
/// other runs: columns `run_id`, `example_id`, `own`, `others`.
///
/// # Errors
/// As [`seed_pairs`].
pub fn seed_stability(catalog: &Catalog, options: &OrderOptions) -> Result<DataFrame> {
    let (mut runs, mut ids, mut own, mut others) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (run, pairs) in seed_pairs(catalog, options)? {
        for (id, a, b) in pairs {
            runs.push(run.clone());
            ids.push(id);
            own.push(a);
            others.push(b);
        }
    }
    Ok(DataFrame::new_infer_height(vec![
        Column::new("run_id".into(), runs),
        Column::new("example_id".into(), ids),
        Column::new("own".into(), own),
        Column::new("others".into(), others),
    ])?)
}

/// `removal` (the paper's Figures 5 left and 6) or, with `window`, `removal-window` (Figure 5
/// right): final test accuracy of the complete runs against the examples removed (or the
/// window's first rank, `keep_lowest_n`, for selected removal), selected (`keep_lowest_n` ≥
/// 0) and random (< 0) removal apart, mean and standard deviation over the runs (seeds); runs
/// without removal start both curves. Columns `removal`, `x`, `runs`, `mean_test_acc`,
/// `std_test_acc` (0 for one run).
///
/// # Errors
/// [`Error::Config`] for a bad predicate or when the tables cannot be read.
pub fn removal(catalog: &Catalog, options: &OrderOptions, window: bool) -> Result<DataFrame> {
    let condition = options.runs_condition(catalog, "r")?;
    // The window figure has no random curve to start.
    let (x, only_selected, no_random_start) = match window {
        true => ("keep_lowest_n", " AND r.keep_lowest_n >= 0", " AND FALSE"),
        false => ("remove_n", "", ""),
    };
    // The means are over runs of one data set, each run once.
    let averaged: Vec<_> = matching_runs(catalog, &options.runs_condition(catalog, "")?)?
        .into_iter()
        .filter(|r| r.status == RunStatus::Complete && (!window || r.info.keep_lowest_n >= 0))
        .collect();
    check_same_data(&averaged)?;
    check_no_twins(&averaged)?;
    let sql = format!(
        "WITH final AS (\
           SELECT r.run_id, r.remove_n, r.keep_lowest_n, e.test_acc \
           FROM runs r JOIN epochs e ON e.run_id = r.run_id AND e.epoch = r.epochs_completed \
           WHERE r.status = 'complete' AND {condition}{only_selected}), \
         kinds AS (\
           SELECT CASE WHEN keep_lowest_n < 0 THEN 'random' ELSE 'selected' END AS removal, \
             CAST({x} AS DOUBLE) AS x, test_acc FROM final \
           UNION ALL SELECT 'random' AS removal, CAST({x} AS DOUBLE) AS x, test_acc FROM final \
             WHERE remove_n = 0{no_random_start}) \
         SELECT removal, x, COUNT(*) AS runs, AVG(test_acc) AS mean_test_acc, \
           COALESCE(STDDEV(test_acc), 0.0) AS std_test_acc \
         FROM kinds GROUP BY removal, x ORDER BY removal, x"
    );
    catalog.execute(&sql).map_err(|e| {
        Error::Config(format!("removal: {}", crate::error::first_line(&e.to_string())))
    })
}
