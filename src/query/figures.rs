//! The data behind each figure of `fstream plot`, as data frames: what is drawn, and what is
//! written as CSV beside the picture.

use polars::prelude::*;

use super::Catalog;
use super::forgetting::{OrderOptions, compute_order};
use super::scores::{NeverLearned, Score, ScoreOptions, compute_scores};
use crate::error::{Error, Result};
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
    let (mut names, mut counts, mut examples, mut fractions) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (name, group_options) in groups {
        let order = compute_order(catalog, &group_options)?;
        let Ranked::ForgettingCounts(values) = &order.sorting.ranked else {
            unreachable!("order ranks by forgetting counts")
        };
        let presented: Vec<u32> = values
            .iter()
            .zip(&order.sorting.presented)
            .filter(|(_, p)| **p)
            .map(|(&c, _)| c)
            .collect();
        let largest = presented.iter().copied().max().unwrap_or(0) as usize;
        let mut histogram = vec![0u64; largest + 1];
        for &c in &presented {
            histogram[c as usize] += 1;
        }
        for (count, &n) in histogram.iter().enumerate() {
            names.push(name.clone());
            counts.push(count as u32);
            examples.push(n);
            fractions.push(n as f64 / presented.len().max(1) as f64);
        }
    }
    Ok(DataFrame::new_infer_height(vec![
        Column::new("group".into(), names),
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
    if !column.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::Config(format!("--group-by {column:?}: expected a runs column name")));
    }
    let predicate = options.where_sql.as_deref().map_or(String::new(), |w| format!(" AND ({w})"));
    let sql = format!(
        "SELECT DISTINCT CAST({column} AS VARCHAR) AS value FROM runs WHERE dataset = '{}'{predicate} ORDER BY value",
        options.dataset.replace('\'', "''")
    );
    let frame = catalog.execute(&sql).map_err(|e| {
        Error::Config(format!("--group-by {column}: {}", crate::error::first_line(&e.to_string())))
    })?;
    let values = frame.column("value")?.str()?;
    Ok(values
        .iter()
        .flatten()
        .map(|value| {
            let own = format!("CAST({column} AS VARCHAR) = '{}'", value.replace('\'', "''"));
            let where_sql = match &options.where_sql {
                Some(w) => format!("({w}) AND {own}"),
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
    let predicate = match options.where_sql.as_deref() {
        Some(w) => format!(" AND ({})", super::check_predicate(w)?),
        None => String::new(),
    };
    let sql = format!(
        "SELECT e.run_id, e.epoch, e.train_acc, e.test_acc FROM epochs e JOIN runs r ON e.run_id = r.run_id \
         WHERE r.dataset = '{}'{predicate} ORDER BY e.run_id, e.epoch",
        options.dataset.replace('\'', "''")
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
/// forgotten, with their labels. Columns `row`, `example_id`, `label`, `forgetting_count`.
///
/// # Errors
/// As [`compute_order`].
pub fn extreme_examples(
    catalog: &Catalog,
    options: &OrderOptions,
    n: usize,
    labels: &[u16],
) -> Result<DataFrame> {
    let order = compute_order(catalog, options)?;
    let sorting = &order.sorting;
    let Ranked::ForgettingCounts(counts) = &sorting.ranked else {
        unreachable!("order ranks by forgetting counts")
    };
    let presented: Vec<usize> =
        (0..sorting.example_ids.len()).filter(|&r| sorting.presented[r]).collect();
    let unforgettable = presented.iter().copied().filter(|&r| counts[r] == 0).take(n);
    let most_forgotten = presented.iter().rev().copied().take(n);
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
    Ok(DataFrame::new_infer_height(vec![
        Column::new("row".into(), rows),
        Column::new("example_id".into(), ids),
        Column::new("label".into(), example_labels),
        Column::new("forgetting_count".into(), values),
    ])?)
}
