//! Runs of the reference's Python code, imported: its `*_stats_dict.pkl` files hold, per
//! training example (a numpy int64 key, the index in the original dataset), the lists
//! `[losses, accuracies, margins]` of every presentation, plus `'train'` and `'test'` lists of
//! per-epoch accuracies in percent; the configuration is in the file name
//! (`dataset_mnist__no_dropout_True__seed_1__...__stats_dict.pkl`). Each file becomes one
//! complete run of a root, written through the writer like a trained run, so that every
//! table, the dynamics included, and every command work on it.
//!
//! What the pickles do not hold is recorded as such: `step` is 0 (batches are unknown), the
//! labels are the dataset's (the reference's noisy labels are not saved), test losses are NaN,
//! and the optimizer settings are the reference's defaults for the dataset.

use std::collections::BTreeMap;
use std::path::Path;

use serde_pickle::{HashableValue, Value};

use super::pickle_depth::check_depth;
use super::plan::{ReferenceDefaults, new_run_id};
use crate::config::OptimizerKind;
use crate::data::{DatasetKind, Splits};
use crate::error::{Error, Result};
use crate::record::{
    self, BatchStats, EpochSummary, ExampleTable, Record, RunId, RunInfo, RunStart,
};
use crate::store::writer::{now_ms, spawn_writer};

/// One reference statistics file, read.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceStats {
    /// Per original example index: each presentation's (loss, correct, margin), in order.
    pub examples: BTreeMap<u32, Vec<(f32, bool, f32)>>,
    /// Training accuracy per epoch, as a fraction.
    pub train_acc: Vec<f64>,
    /// Test accuracy per epoch, as a fraction.
    pub test_acc: Vec<f64>,
    /// The flags in the file name (`dataset`, `seed`, `no_dropout`, …) and their values.
    pub flags: BTreeMap<String, String>,
}

/// The reference's flags that appear in its file names, longest first so that `remove_n`
/// is not read as `remove` and so on.
const REFERENCE_FLAGS: [&str; 14] = [
    "noise_percent_pixels",
    "noise_percent_labels",
    "noise_std_pixels",
    "data_augmentation",
    "remove_subsample",
    "keep_lowest_n",
    "sorting_file",
    "no_dropout",
    "optimizer",
    "remove_n",
    "dataset",
    "cutout",
    "model",
    "seed",
];

/// The flags of a reference file name: `NAME_VALUE` parts joined by `__`, ending in
/// `__stats_dict.pkl`. Parts that name no known flag are left out.
pub fn flags_from_file_name(name: &str) -> BTreeMap<String, String> {
    let stem = name.strip_suffix(".pkl").unwrap_or(name);
    let stem = stem
        .strip_suffix("__stats_dict")
        .or_else(|| stem.strip_suffix("_stats_dict"))
        .unwrap_or(stem);
    stem.split("__")
        .filter_map(|part| {
            let flag = REFERENCE_FLAGS.iter().find(|f| part.starts_with(&format!("{f}_")))?;
            Some((flag.to_string(), part[flag.len() + 1..].to_string()))
        })
        .collect()
}

/// Reads a reference statistics pickle.
///
/// # Errors
/// [`Error::Format`] naming the file when it is not a pickle of the reference's structure.
pub fn read_reference_stats(path: &Path) -> Result<ReferenceStats> {
    let bad = |reason: String| Error::format(path, reason);
    let bytes = crate::input::read(path)?;
    check_depth(&bytes).map_err(|e| bad(format!("not the reference's statistics: {e}")))?;
    // numpy int64 keys unpickle as (dtype state, 8 little-endian bytes).
    let options = serde_pickle::DeOptions::new().keep_restore_state().replace_unresolved_globals();
    let value = serde_pickle::value_from_slice(&bytes, options)
        .map_err(|e| bad(format!("not a readable pickle: {e}")))?;
    let Value::Dict(dict) = value else {
        return Err(bad("expected a dict (the reference's example_stats)".into()));
    };
    let mut stats = ReferenceStats {
        examples: BTreeMap::new(),
        train_acc: Vec::new(),
        test_acc: Vec::new(),
        flags: flags_from_file_name(
            &path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        ),
    };
    for (key, value) in dict {
        match &key {
            HashableValue::String(split) if split == "train" || split == "test" => {
                let accuracies = accuracy_list(&value)
                    .ok_or_else(|| bad(format!("'{split}': expected [[], [accuracies in %]]")))?;
                *(if split == "train" { &mut stats.train_acc } else { &mut stats.test_acc }) =
                    accuracies;
            }
            _ => {
                let index = example_index(&key).map_err(bad)?;
                let presentations = presentation_lists(&value)
                    .map_err(|reason| bad(format!("example {index}: {reason}")))?;
                stats.examples.insert(index, presentations);
            }
        }
    }
    let Some((&first, first_presentations)) = stats.examples.iter().next() else {
        return Err(bad("no example statistics".into()));
    };
    // The reference records every example once per epoch: ragged lists are not its files.
    let epochs = first_presentations.len();
    if let Some((index, other)) = stats.examples.iter().find(|(_, p)| p.len() != epochs) {
        return Err(bad(format!(
            "example {index} has {} presentations but example {first} has {epochs}; the reference records every example once per epoch",
            other.len()
        )));
    }
    for (split, accuracies) in [("train", &stats.train_acc), ("test", &stats.test_acc)] {
        if let Some(a) = accuracies.iter().find(|a| !(0.0..=1.0).contains(*a)) {
            return Err(bad(format!("'{split}': accuracy {}%, expected 0 to 100", a * 100.0)));
        }
    }
    Ok(stats)
}

/// A pickle key as an error message names it: its value when it is short text or a number,
/// else its kind.
fn key_text(key: &HashableValue) -> String {
    match key {
        HashableValue::String(s) if s.chars().count() <= 40 => format!("'{s}'"),
        HashableValue::String(_) => "a long string".into(),
        HashableValue::F64(x) => format!("the float {x}"),
        HashableValue::Bool(b) => format!("the bool {b}"),
        HashableValue::Int(i) => format!("the integer {i}"),
        HashableValue::None => "None".into(),
        HashableValue::Bytes(_) => "bytes".into(),
        HashableValue::Tuple(_) => "a tuple".into(),
        HashableValue::FrozenSet(_) => "a frozenset".into(),
        HashableValue::I64(i) => i.to_string(),
    }
}

/// An example key: a Python int, or a numpy int64 (its restore state ends in its 8 bytes).
///
/// # Errors
/// What the key is, when it is not an example index.
fn example_index(key: &HashableValue) -> std::result::Result<u32, String> {
    let integer = match key {
        HashableValue::I64(i) => Some(*i),
        HashableValue::Tuple(parts) => match parts.last() {
            Some(HashableValue::Bytes(bytes)) => {
                bytes.as_slice().try_into().ok().map(i64::from_le_bytes)
            }
            _ => None,
        },
        _ => None,
    };
    match integer {
        Some(i) => u32::try_from(i)
            .map_err(|_| format!("key {i}: not an example index (expected 0 to {})", u32::MAX)),
        None => Err(format!(
            "key {}: not an example index (expected int or numpy int64 keys, and 'train', 'test')",
            key_text(key)
        )),
    }
}

/// A number of a pickle (int, float or bool).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::F64(x) => Some(*x),
        Value::I64(i) => Some(*i as f64),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

fn numbers(value: &Value) -> Option<Vec<f64>> {
    match value {
        Value::List(items) | Value::Tuple(items) => items.iter().map(number).collect(),
        _ => None,
    }
}

/// `[[], [accuracies in %]]` as fractions.
fn accuracy_list(value: &Value) -> Option<Vec<f64>> {
    let Value::List(parts) = value else { return None };
    Some(numbers(parts.get(1)?)?.into_iter().map(|a| a / 100.0).collect())
}

/// `[losses, accuracies, margins]` as one (loss, correct, margin) per presentation: finite
/// losses and margins, accuracies 0 or 1, as the reference writes them.
fn presentation_lists(value: &Value) -> std::result::Result<Vec<(f32, bool, f32)>, String> {
    let shape = || "expected [losses, accuracies, margins] of numbers, of equal length".to_string();
    let Value::List(parts) = value else { return Err(shape()) };
    let [Some(losses), Some(accuracies), Some(margins)] =
        [parts.first(), parts.get(1), parts.get(2)].map(|part| part.and_then(numbers))
    else {
        return Err(shape());
    };
    if losses.len() != accuracies.len() || losses.len() != margins.len() {
        return Err(shape());
    }
    let mut presentations = Vec::with_capacity(losses.len());
    for (p, ((&loss, &accuracy), &margin)) in
        losses.iter().zip(&accuracies).zip(&margins).enumerate()
    {
        let at = format!("presentation {}", p + 1);
        if !loss.is_finite() || loss < 0.0 {
            return Err(format!("{at}: loss {loss}, expected a finite number at least 0"));
        }
        if !margin.is_finite() {
            return Err(format!("{at}: margin {margin}, expected a finite number"));
        }
        if accuracy != 0.0 && accuracy != 1.0 {
            return Err(format!("{at}: accuracy {accuracy}, expected 0 or 1"));
        }
        presentations.push((loss as f32, accuracy == 1.0, margin as f32));
    }
    Ok(presentations)
}

/// Writes `stats` into the root at `root` as one complete run of `dataset`, whose data
/// (`data`, loaded from `data_dir`) give the labels and the dataset's size. Returns its id.
///
/// # Errors
/// [`Error::Config`] when the file names another dataset or indexes examples outside it;
/// the writer's errors.
pub fn import_run(
    root: &Path,
    source: &Path,
    stats: &ReferenceStats,
    data: &Splits,
    data_dir: &str,
) -> Result<RunId> {
    let dataset = data.kind;
    if let Some(named) = stats.flags.get("dataset").filter(|d| d.as_str() != dataset.name()) {
        return Err(Error::Config(format!(
            "{}: a run of dataset {named}, not {dataset}",
            source.display()
        )));
    }
    let n = data.train.len();
    if let Some(&outside) = stats.examples.keys().find(|&&i| i as usize >= n) {
        return Err(Error::format(
            source,
            format!("example {outside} is outside {dataset}'s {n} training examples"),
        ));
    }
    let info = imported_info(source, stats, dataset, n, data, data_dir)?;
    if info.remove_n == 0 && info.sorting_file.is_none() && stats.examples.len() != n {
        return Err(Error::format(
            source,
            format!(
                "holds {} of {dataset}'s {n} training examples, but its name says no removal (remove_n 0): the reference presents every example",
                stats.examples.len()
            ),
        ));
    }
    let examples = ExampleTable {
        original_labels: data.train.labels.clone(),
        labels: data.train.labels.clone(),
        in_training_set: (0..n as u32).map(|i| stats.examples.contains_key(&i)).collect(),
        pixel_noisy: vec![false; n],
        coarse_labels: data.train.coarse_labels.clone(),
    };
    let run_id = info.run_id.clone();
    let epochs = info.epochs;
    let (mut sender, records) = record::channel();
    let writer = spawn_writer(root.to_path_buf(), records)?;
    let sent = (|| -> std::result::Result<(), record::WriterGone> {
        sender.send(Record::RunStarted(Box::new(RunStart {
            run: info,
            examples,
            resume_after: 0,
        })))?;
        for epoch in 1..=epochs {
            let mut batch = BatchStats { run_id: run_id.clone(), epoch, ..BatchStats::default() };
            for (&id, presentations) in &stats.examples {
                let Some(&(loss, correct, margin)) = presentations.get(epoch as usize - 1) else {
                    continue;
                };
                batch.steps.push(0);
                batch.example_ids.push(id);
                batch.labels.push(data.train.labels[id as usize]);
                batch.loss.push(loss);
                batch.correct.push(correct);
                batch.margin.push(margin);
            }
            let train_loss = batch.loss.iter().map(|&l| f64::from(l)).sum::<f64>()
                / batch.loss.len().max(1) as f64;
            let summary = EpochSummary {
                run_id: run_id.clone(),
                epoch,
                train_acc: stats.train_acc.get(epoch as usize - 1).copied().unwrap_or(f64::NAN),
                train_loss,
                test_acc: stats.test_acc.get(epoch as usize - 1).copied().unwrap_or(f64::NAN),
                test_loss: f64::NAN,
                lr: f64::NAN,
                train_seconds: 0.0,
                channel_wait_seconds: 0.0,
                examples: batch.example_ids.len() as u64,
            };
            sender.send(Record::Batch(batch))?;
            sender.send(Record::EpochEnded { summary, checkpoint: None })?;
        }
        sender.send(Record::RunEnded { run_id: run_id.clone(), error: None })
    })();
    drop(sender);
    let written = writer
        .join()
        .map_err(|_| Error::Thread { thread: "writer".into(), reason: "panicked".into() })?;
    written?;
    sent.map_err(|_| Error::Thread { thread: "writer".into(), reason: "stopped early".into() })?;
    Ok(run_id)
}

/// The `runs` row of an imported run: the file name's flags over the reference's defaults.
///
/// # Errors
/// [`Error::Format`] naming the file when a flag's value in its name is not what the
/// reference writes (`seed_banana`).
fn imported_info(
    source: &Path,
    stats: &ReferenceStats,
    dataset: DatasetKind,
    n: usize,
    data: &Splits,
    data_dir: &str,
) -> Result<RunInfo> {
    let flag = |name: &str| stats.flags.get(name).map(String::as_str);
    let bad_flag = |name: &str, expected: &str| {
        Error::format(
            source,
            format!("file name: {name}_{}: expected {expected}", flag(name).unwrap_or_default()),
        )
    };
    let integer = |name: &str| -> Result<Option<i64>> {
        flag(name).map(|v| v.parse::<i64>().map_err(|_| bad_flag(name, "an integer"))).transpose()
    };
    let count = |name: &str| -> Result<u32> {
        let value = integer(name)?.unwrap_or(0);
        u32::try_from(value).map_err(|_| bad_flag(name, "an integer at least 0"))
    };
    let percent = |name: &str| -> Result<f64> {
        let value = flag(name).map(|v| v.parse::<f64>());
        match value {
            None => Ok(0.0),
            Some(Ok(v)) if v.is_finite() && v >= 0.0 => Ok(v),
            Some(_) => Err(bad_flag(name, "a number at least 0")),
        }
    };
    let yes = |name: &str| match flag(name) {
        None | Some("False") => Ok(false),
        Some("True") => Ok(true),
        Some(_) => Err(bad_flag(name, "True or False")),
    };
    let seed = integer("seed")?.unwrap_or(0);
    let seed = u64::try_from(seed).map_err(|_| bad_flag("seed", "an integer at least 0"))?;
    let optimizer =
        if flag("optimizer") == Some("adam") { OptimizerKind::Adam } else { OptimizerKind::Sgd };
    let defaults = ReferenceDefaults::new(dataset, optimizer);
    let epochs = stats.examples.values().map(Vec::len).max().unwrap_or(0) as u32;
    Ok(RunInfo {
        run_id: new_run_id(dataset, seed),
        dataset,
        model: defaults.model,
        seed,
        epochs,
        batch_size: defaults.batch_size as u32,
        optimizer,
        lr: defaults.optimizer.lr,
        momentum: defaults.optimizer.momentum,
        nesterov: defaults.optimizer.nesterov,
        weight_decay: defaults.optimizer.weight_decay,
        lr_milestones: defaults.lr_milestones,
        lr_gamma: 0.2,
        data_augmentation: yes("data_augmentation")?,
        no_dropout: yes("no_dropout")?,
        sorting_file: flag("sorting_file").filter(|f| *f != "none").map(String::from),
        remove_n: count("remove_n")?,
        keep_lowest_n: integer("keep_lowest_n")?.unwrap_or(0),
        remove_subsample: count("remove_subsample")?,
        noise_percent_labels: percent("noise_percent_labels")?,
        noise_percent_pixels: percent("noise_percent_pixels")?,
        noise_std_pixels: percent("noise_std_pixels")?,
        data_dir: data_dir.into(),
        data_sha256: data.fingerprint(),
        dataset_examples: n as u32,
        train_examples: stats.examples.len() as u32,
        record_presentations: true,
        device: "reference".into(),
        fstream_version: env!("CARGO_PKG_VERSION").into(),
        command: format!("fstream import-reference {}", source.display()),
        started_at_ms: now_ms(),
        ..RunInfo::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_the_reference_flags() {
        let flags = flags_from_file_name(
            "dataset_mnist__no_dropout_True__seed_3__sorting_file_none__remove_n_1000__keep_lowest_n_-1__stats_dict.pkl",
        );
        let expected = [
            ("dataset", "mnist"),
            ("no_dropout", "True"),
            ("seed", "3"),
            ("sorting_file", "none"),
            ("remove_n", "1000"),
            ("keep_lowest_n", "-1"),
        ];
        assert_eq!(flags, expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    }

    #[test]
    fn numpy_and_python_int_keys_are_example_indices() {
        let numpy = HashableValue::Tuple(vec![
            HashableValue::Tuple(vec![HashableValue::String("i8".into())]),
            HashableValue::Bytes(7i64.to_le_bytes().to_vec()),
        ]);
        assert_eq!(example_index(&numpy), Ok(7));
        assert_eq!(example_index(&HashableValue::I64(12)), Ok(12));
        assert!(example_index(&HashableValue::String("x".into())).is_err());
        let huge =
            HashableValue::Tuple(vec![HashableValue::Bytes((1i64 << 40).to_le_bytes().to_vec())]);
        assert_eq!(
            example_index(&huge),
            Err("key 1099511627776: not an example index (expected 0 to 4294967295)".into())
        );
        assert!(example_index(&HashableValue::I64(-5)).unwrap_err().starts_with("key -5:"));
    }
}
