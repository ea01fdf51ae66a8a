//! How well two rankings of the same examples agree: Pearson and Spearman correlation of
//! their values, the overlap of their k lowest and k highest examples, and the Jaccard index
//! of their zero sets (for forgetting counts: the unforgettable examples). The paper reports
//! Pearson 0.89 between single seeds' forgetting counts and 0.976 between two sums of five.

use super::Catalog;
use super::forgetting::{OrderOptions, plan_epochs, run_dynamics, select_runs, short_fingerprint};
use crate::error::{Error, Result, or_none};
use crate::store::dynamics::Needed;
use crate::store::sorting::SortingFile;

/// The agreement of two per-example value vectors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Examples compared (presented in both).
    pub examples: usize,
    /// Pearson correlation of the values (over the pairs where both are finite).
    pub pearson: f64,
    /// Spearman correlation: Pearson of the ranks, ties given their average rank.
    pub spearman: f64,
    /// The `k` the overlaps use (at most the examples compared).
    pub k: usize,
    /// Fraction of A's k lowest that are among B's k lowest.
    pub lowest_overlap: f64,
    /// Fraction of A's k highest that are among B's k highest.
    pub highest_overlap: f64,
    /// |A = 0 ∩ B = 0| / |A = 0 ∪ B = 0| (1 when neither has a zero).
    pub zero_jaccard: f64,
}

/// Compares the values `a[i]` and `b[i]` of the same examples; ties within the k lowest or
/// highest are broken by position (example order).
pub fn compare(a: &[f64], b: &[f64], k: usize) -> Comparison {
    assert_eq!(a.len(), b.len(), "values of the same examples");
    let n = a.len();
    let k = k.min(n);
    let finite: Vec<(f64, f64)> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(&x, &y)| (x, y))
        .collect();
    let (fa, fb): (Vec<f64>, Vec<f64>) = finite.into_iter().unzip();
    let overlap = |descending: bool| {
        let extreme = |values: &[f64]| -> std::collections::HashSet<usize> {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&i, &j| {
                let by = values[i].total_cmp(&values[j]);
                if descending { by.reverse() } else { by }
            });
            order.into_iter().take(k).collect()
        };
        let (ea, eb) = (extreme(a), extreme(b));
        if k == 0 { 1.0 } else { ea.intersection(&eb).count() as f64 / k as f64 }
    };
    let zeros = |values: &[f64]| -> Vec<bool> { values.iter().map(|&v| v == 0.0).collect() };
    let (za, zb) = (zeros(a), zeros(b));
    let both = za.iter().zip(&zb).filter(|(x, y)| **x && **y).count();
    let either = za.iter().zip(&zb).filter(|(x, y)| **x || **y).count();
    Comparison {
        examples: n,
        pearson: pearson(&fa, &fb),
        spearman: pearson(&average_ranks(a), &average_ranks(b)),
        k,
        lowest_overlap: overlap(false),
        highest_overlap: overlap(true),
        zero_jaccard: if either == 0 { 1.0 } else { both as f64 / either as f64 },
    }
}

/// Pearson correlation (NaN when either side is constant or empty).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        cov += (x - ma) * (y - mb);
        va += (x - ma) * (x - ma);
        vb += (y - mb) * (y - mb);
    }
    cov / (va * vb).sqrt()
}

/// 1-based ranks of `values`, equal values sharing their average rank.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && values[order[end + 1]] == values[order[start]] {
            end += 1;
        }
        let average = (start + end) as f64 / 2.0 + 1.0;
        for &i in &order[start..=end] {
            ranks[i] = average;
        }
        start = end + 1;
    }
    ranks
}

/// Each selected run's forgetting counts against the sum of the other runs' counts (see
/// [`seed_pairs`]): how stable one seed's ranking is.
///
/// # Errors
/// As [`select_runs`] and [`plan_epochs`]; [`Error::Config`] with fewer than two runs.
pub fn compare_runs(
    catalog: &Catalog,
    options: &OrderOptions,
    k: usize,
) -> Result<Vec<(String, Comparison)>> {
    Ok(seed_pairs(catalog, options)?
        .into_iter()
        .map(|(run, pairs)| {
            let (own, others): (Vec<f64>, Vec<f64>) = pairs.iter().map(|p| (p.1, p.2)).unzip();
            (run, compare(&own, &others, k))
        })
        .collect())
}

/// One run's forgetting counts against the other runs': the run id, and per example every
/// run presented, (example id, count in the run, sum over the other runs).
pub type SeedPairs = (String, Vec<(u32, f64, f64)>);

/// Per selected run, each example's forgetting count in that run and summed over the other
/// runs, over the examples every run presented.
///
/// # Errors
/// As [`select_runs`] and [`plan_epochs`]; [`Error::Config`] with fewer than two runs.
pub fn seed_pairs(catalog: &Catalog, options: &OrderOptions) -> Result<Vec<SeedPairs>> {
    let runs = select_runs(catalog, options)?.counted;
    if runs.len() < 2 {
        return Err(Error::Config(format!(
            "comparing each run with the others needs at least two complete runs of dataset '{}', but {} matches (see --where)",
            options.dataset,
            runs.len()
        )));
    }
    let plan = plan_epochs(&runs, options)?;
    let counts: Vec<Vec<Option<u32>>> = runs
        .iter()
        .zip(&plan.epochs)
        .map(|(run, &epochs)| {
            let dynamics =
                run_dynamics(catalog, run, epochs, plan.num_examples, Needed::Correctness)?;
            Ok((0..plan.num_examples).map(|i| dynamics.forgetting_count(i, plan.penalty)).collect())
        })
        .collect::<Result<_>>()?;
    let everywhere: Vec<usize> =
        (0..plan.num_examples).filter(|&i| counts.iter().all(|c| c[i].is_some())).collect();
    let count = |run: usize, i: usize| f64::from(counts[run][i].unwrap_or(0));
    Ok((0..runs.len())
        .map(|r| {
            let others = |i: usize| (0..runs.len()).filter(|&o| o != r).map(|o| count(o, i)).sum();
            let pairs = everywhere.iter().map(|&i| (i as u32, count(r, i), others(i))).collect();
            (runs[r].run_id.clone(), pairs)
        })
        .collect())
}

/// The values of two sorting or score files, by example id, over the examples both present.
///
/// # Errors
/// [`Error::Config`] when the files rank different datasets or permutations.
pub fn paired_values(a: &SortingFile, b: &SortingFile) -> Result<(Vec<f64>, Vec<f64>)> {
    if (&a.dataset, a.dataset_examples, a.permutation_seed)
        != (&b.dataset, b.dataset_examples, b.permutation_seed)
    {
        return Err(Error::Config(format!(
            "the files rank different data: {} ({} examples, permutation_seed {}) and {} ({} examples, permutation_seed {})",
            a.dataset,
            a.dataset_examples,
            or_none(a.permutation_seed),
            b.dataset,
            b.dataset_examples,
            or_none(b.permutation_seed)
        )));
    }
    if let (Some(fa), Some(fb)) = (&a.data_sha256, &b.data_sha256)
        && fa != fb
    {
        return Err(Error::Config(format!(
            "the files rank different data of {}: data_sha256 {} (runs {}) and {} (runs {}); the same example id is another image in each",
            a.dataset,
            short_fingerprint(fa),
            a.runs.join(", "),
            short_fingerprint(fb),
            b.runs.join(", ")
        )));
    }
    let (va, vb) = (a.values_by_id(), b.values_by_id());
    Ok(va.into_iter().zip(vb).filter_map(|(x, y)| Some((x?, y?))).unzip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_their_average_rank() {
        assert_eq!(average_ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn identical_values_agree_and_reversed_ones_disagree() {
        let a = [0.0, 0.0, 1.0, 2.0, 5.0, 9.0];
        let same = compare(&a, &a, 2);
        assert_eq!((same.pearson, same.spearman), (1.0, 1.0));
        assert_eq!((same.lowest_overlap, same.highest_overlap, same.zero_jaccard), (1.0, 1.0, 1.0));
        let reversed: Vec<f64> = a.iter().map(|x| 9.0 - x).collect();
        let opposite = compare(&a, &reversed, 2);
        assert!((opposite.pearson + 1.0).abs() < 1e-12 && (opposite.spearman + 1.0).abs() < 1e-12);
        assert_eq!((opposite.lowest_overlap, opposite.zero_jaccard), (0.0, 0.0));
    }

    #[test]
    fn spearman_is_pearson_of_ranks_and_pearson_matches_a_hand_computation() {
        let (a, b) = ([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 10.0]);
        let c = compare(&a, &b, 1);
        let (ma, mb) = (2.5, 4.0);
        let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma) * (x - ma)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb) * (y - mb)).sum();
        assert!((c.pearson - cov / (va * vb).sqrt()).abs() < 1e-12);
        assert!((c.spearman - 0.8).abs() < 1e-12, "ranks 1234 vs 1324: 1 - 6*2/(4*15)");
        assert_eq!((c.lowest_overlap, c.highest_overlap), (1.0, 1.0));
    }

    #[test]
    fn zero_sets_are_compared_by_jaccard() {
        let c = compare(&[0.0, 0.0, 1.0, 0.0], &[0.0, 2.0, 0.0, 0.0], 1);
        assert_eq!(c.zero_jaccard, 0.5, "2 shared of 4 zero in either");
    }
}
