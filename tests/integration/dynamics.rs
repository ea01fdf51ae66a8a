//! The `dynamics` table: what the writer keeps per run and example equals what the
//! presentations add up to, computed here independently from the presentation files.

use std::collections::BTreeMap;

use arrow::array::{BooleanArray, Float64Array, UInt16Array, UInt32Array};

use crate::util::{Presentation, Workspace, read_parquet, read_presentations, typed_column};

/// One dynamics row as this test computes it from the presentations.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    presentations: u32,
    correct_presentations: u32,
    forgetting_events: u32,
    first_correct_epoch: Option<u32>,
    last_incorrect_epoch: Option<u32>,
    last_correct: bool,
    sums: [f64; 4],
}

/// Folds one example's presentations, in epoch order.
fn expected(presentations: &[Presentation]) -> Expected {
    let mut e = Expected {
        presentations: 0,
        correct_presentations: 0,
        forgetting_events: 0,
        first_correct_epoch: None,
        last_incorrect_epoch: None,
        last_correct: false,
        sums: [0.0; 4],
    };
    for (i, p) in presentations.iter().enumerate() {
        if i > 0 && presentations[i - 1].correct && !p.correct {
            e.forgetting_events += 1;
        }
        e.presentations += 1;
        if p.correct {
            e.correct_presentations += 1;
            e.first_correct_epoch.get_or_insert(p.epoch);
        } else {
            e.last_incorrect_epoch = Some(p.epoch);
        }
        e.last_correct = p.correct;
        let loss = f64::from(p.loss);
        let p_label = (-loss).exp();
        e.sums[0] += loss;
        e.sums[1] += f64::from(p.margin);
        e.sums[2] += p_label;
        e.sums[3] += p_label * p_label;
    }
    e
}

#[test]
fn the_dynamics_table_equals_a_computation_from_the_presentations() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(150, 30);
    let args =
        ["--seeds", "1..2", "--epochs", "4", "--threads", "2", "--noise-percent-labels", "30"];
    ws.train(&args).assert_ok();
    let runs = read_presentations(&ws.root());
    assert_eq!(runs.len(), 2);
    let (mut events, mut never_correct) = (0, 0);
    for (run_id, presentations) in runs {
        let mut by_example: BTreeMap<u32, Vec<Presentation>> = BTreeMap::new();
        for p in presentations {
            by_example.entry(p.example_id).or_default().push(p);
        }
        let batch = read_parquet(&ws.root().join(format!("dynamics/{run_id}.parquet")));
        let examples = read_parquet(&ws.root().join(format!("examples/{run_id}.parquet")));
        let trained_labels = typed_column::<UInt16Array>(&examples, "label");
        assert_eq!(batch.num_rows(), 150, "one row per presented example");
        let u32s = |name| typed_column::<UInt32Array>(&batch, name);
        let optional = |name, row| {
            let column = u32s(name);
            arrow::array::Array::is_valid(column, row).then(|| column.value(row))
        };
        let sums = ["loss_sum", "margin_sum", "p_label_sum", "p_label_sq_sum"]
            .map(|name| typed_column::<Float64Array>(&batch, name));
        for row in 0..batch.num_rows() {
            let id = u32s("example_id").value(row);
            let mut sequence = by_example[&id].clone();
            sequence.sort_by_key(|p| p.epoch);
            let want = expected(&sequence);
            let got = Expected {
                presentations: u32s("presentations").value(row),
                correct_presentations: u32s("correct_presentations").value(row),
                forgetting_events: u32s("forgetting_events").value(row),
                first_correct_epoch: optional("first_correct_epoch", row),
                last_incorrect_epoch: optional("last_incorrect_epoch", row),
                last_correct: typed_column::<BooleanArray>(&batch, "last_correct").value(row),
                sums: sums.map(|column| column.value(row)),
            };
            // Sums are added in the same order in f64, so they agree to the bit.
            assert_eq!(got, want, "run {run_id}, example {id}");
            assert_eq!(u32s("epochs").value(row), 4);
            let label = typed_column::<UInt16Array>(&batch, "label").value(row);
            assert_eq!(label, trained_labels.value(id as usize), "the label trained on");
            events += want.forgetting_events;
            never_correct += u32::from(want.correct_presentations == 0);
        }
    }
    assert!(
        events > 0 && never_correct > 0,
        "the runs forget ({events}) and miss ({never_correct})"
    );
}

#[test]
fn rebuild_writes_the_table_the_writer_kept() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(100, 20);
    ws.train(&["--seeds", "1..2", "--epochs", "3", "--threads", "2"]).assert_ok();
    let root = ws.root().display().to_string();
    let files = crate::util::parquet_files(&ws.root().join("dynamics"));
    assert_eq!(files.len(), 2);
    let kept: Vec<_> = files.iter().map(|f| read_parquet(f)).collect();
    ws.order("with", &[]).assert_ok();

    // A root written before the table: verify names the missing files, order still counts.
    for file in &files {
        std::fs::remove_file(file).unwrap();
    }
    let verify = ws.fstream(&["verify", "--root", &root]);
    verify.assert_exit_code(1);
    assert_eq!(
        verify.stdout().matches("`fstream rebuild` builds it").count(),
        2,
        "{}",
        verify.stdout()
    );
    ws.order("without", &[]).assert_ok();
    let csv = |name: &str| std::fs::read_to_string(ws.path().join(format!("{name}.csv"))).unwrap();
    assert_eq!(csv("without"), csv("with"), "order from presentations = order from dynamics");

    let rebuild = ws.fstream(&["rebuild", "--root", &root]);
    rebuild.assert_ok();
    assert_eq!(rebuild.stdout().lines().count(), 2, "{}", rebuild.stdout());
    let rebuilt: Vec<_> = files.iter().map(|f| read_parquet(f)).collect();
    assert_eq!(rebuilt, kept, "rebuilt from the presentations, bit for bit");
    let verify = ws.fstream(&["verify", "--root", &root]);
    verify.assert_ok();
    assert_eq!(verify.stdout(), "");
}
