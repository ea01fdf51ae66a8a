//! Which examples a run trains on: the reference's removal experiments (docs/semantics.md,
//! "Training"). Ids are always original dataset indices (`example_id`).

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;

use crate::error::{Error, Result};

/// How to remove examples from the training set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Removal {
    /// Train on every example.
    #[default]
    None,
    /// Remove `ordered[keep_lowest_n .. keep_lowest_n + remove_n]` of a sorting file's order.
    ByOrder {
        /// Example ids, least forgotten first.
        ordered: Vec<u32>,
        /// How many to remove.
        remove_n: usize,
        /// How many of the lowest-ranked examples to keep before removing.
        keep_lowest_n: usize,
    },
    /// Remove `remove_n` examples chosen uniformly at random (the reference's `--keep_lowest_n`
    /// below 0).
    Random {
        /// How many to remove.
        remove_n: usize,
    },
    /// Of the first `keep_lowest_n` ordered examples keep a random `keep_lowest_n - subsample`,
    /// plus all of `ordered[keep_lowest_n..]` (the reference's `--remove_subsample`).
    Subsample {
        /// Example ids, least forgotten first.
        ordered: Vec<u32>,
        /// Size of the lowest-ranked group that is subsampled.
        keep_lowest_n: usize,
        /// How many of that group to remove.
        subsample: usize,
    },
}

/// The result of applying a [`Removal`] to a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Example ids trained on, ascending.
    pub kept: Vec<u32>,
    /// Example ids removed, ascending.
    pub removed: Vec<u32>,
}

/// Applies `removal` to a dataset of `num_examples` examples; random choices come from `seed`.
///
/// # Errors
/// [`Error::Config`] naming the flag when a count is out of range.
pub fn select(num_examples: usize, removal: &Removal, seed: u64) -> Result<Selection> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let removed: Vec<u32> = match removal {
        Removal::None => Vec::new(),
        Removal::ByOrder { ordered, remove_n, keep_lowest_n } => {
            if *keep_lowest_n >= ordered.len() {
                return Err(Error::Config(format!(
                    "--keep-lowest-n {keep_lowest_n}: the sorting file orders only {} examples, so nothing would be removed",
                    ordered.len()
                )));
            }
            // A window past the end of the order is cut there, as the reference's slice
            // `ordered[k:k+r]` is (Figure 5 right slides its window to the end).
            let end = (keep_lowest_n + remove_n).min(ordered.len());
            if end < keep_lowest_n + remove_n {
                log::warn!(
                    "--keep-lowest-n {keep_lowest_n} plus --remove-n {remove_n} runs past the {} examples of the sorting file: removing the {} up to its end",
                    ordered.len(),
                    end - keep_lowest_n
                );
            }
            ordered[*keep_lowest_n..end].to_vec()
        }
        Removal::Random { remove_n } => {
            if *remove_n > num_examples {
                return Err(Error::Config(format!(
                    "--remove-n {remove_n} is larger than the training set ({num_examples} examples)"
                )));
            }
            let mut ids: Vec<u32> = (0..num_examples as u32).collect();
            ids.shuffle(&mut rng);
            ids.truncate(*remove_n);
            ids
        }
        Removal::Subsample { ordered, keep_lowest_n, subsample } => {
            if keep_lowest_n > &ordered.len() || subsample > keep_lowest_n {
                return Err(Error::Config(format!(
                    "--remove-subsample {subsample} needs --keep-lowest-n between {subsample} and the sorting file's {} examples, got {keep_lowest_n}",
                    ordered.len()
                )));
            }
            let mut lowest = ordered[..*keep_lowest_n].to_vec();
            lowest.shuffle(&mut rng);
            lowest.truncate(*subsample);
            lowest
        }
    };
    let mut is_removed = vec![false; num_examples];
    for &id in &removed {
        match is_removed.get_mut(id as usize) {
            Some(flag) => *flag = true,
            None => {
                return Err(Error::Config(format!(
                    "example id {id} is outside the dataset (0..{num_examples})"
                )));
            }
        }
    }
    let (removed, kept): (Vec<u32>, Vec<u32>) =
        (0..num_examples as u32).partition(|&id| is_removed[id as usize]);
    Ok(Selection { kept, removed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_order_removes_the_slice_after_the_kept_lowest() {
        let ordered = vec![5, 3, 9, 0, 1, 2, 4, 6, 7, 8];
        let removal = Removal::ByOrder { ordered, remove_n: 3, keep_lowest_n: 2 };
        let selection = select(10, &removal, 0).unwrap();
        assert_eq!(selection.removed, vec![0, 1, 9]);
        assert_eq!(selection.kept, vec![2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn by_order_windows_stop_at_the_end_of_the_order() {
        let removal = Removal::ByOrder { ordered: vec![2, 0, 1], remove_n: 2, keep_lowest_n: 2 };
        assert_eq!(select(3, &removal, 0).unwrap().removed, vec![1]);
        let removal = Removal::ByOrder { ordered: vec![0, 1, 2], remove_n: 2, keep_lowest_n: 3 };
        let err = select(3, &removal, 0).unwrap_err().to_string();
        assert!(
            err.contains("--keep-lowest-n 3: the sorting file orders only 3 examples"),
            "{err}"
        );
    }

    #[test]
    fn random_removal_is_seeded_and_removes_exactly_n() {
        let a = select(100, &Removal::Random { remove_n: 30 }, 7).unwrap();
        let b = select(100, &Removal::Random { remove_n: 30 }, 7).unwrap();
        let c = select(100, &Removal::Random { remove_n: 30 }, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.removed, c.removed);
        assert_eq!(a.removed.len(), 30);
        assert_eq!(a.kept.len(), 70);
        assert!(a.removed.iter().all(|id| !a.kept.contains(id)));
    }

    #[test]
    fn random_removal_larger_than_dataset_is_rejected() {
        let err = select(10, &Removal::Random { remove_n: 11 }, 0).unwrap_err().to_string();
        assert!(err.contains("--remove-n 11 is larger than the training set (10 examples)"));
    }

    #[test]
    fn subsample_removes_only_from_the_lowest_group() {
        let ordered: Vec<u32> = (0..20).rev().collect();
        let removal =
            Removal::Subsample { ordered: ordered.clone(), keep_lowest_n: 8, subsample: 5 };
        let selection = select(20, &removal, 3).unwrap();
        assert_eq!(selection.removed.len(), 5);
        assert!(selection.removed.iter().all(|id| ordered[..8].contains(id)));
        assert_eq!(selection.kept.len(), 15);
    }

    #[test]
    fn ids_outside_the_dataset_are_rejected() {
        let removal = Removal::ByOrder { ordered: vec![12], remove_n: 1, keep_lowest_n: 0 };
        let err = select(10, &removal, 0).unwrap_err().to_string();
        assert!(err.contains("example id 12 is outside the dataset (0..10)"), "{err}");
    }
}
