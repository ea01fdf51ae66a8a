//! CIFAR end to end on tiny files in the real binary format: ResNet18 and WideResNet train on
//! CPU with augmentation, cutout and label noise, and the label-noise breakdown query runs.

use crate::util::{Workspace, read_presentations, repo_file};

fn query(ws: &Workspace, sql: &str) -> Vec<Vec<String>> {
    let file = ws.path().join("q.sql");
    std::fs::write(&file, sql).unwrap();
    let csv = ws.query_csv(&file);
    csv.lines().skip(1).map(|l| l.split(',').map(String::from).collect()).collect()
}

#[test]
fn cifar10_resnet18_trains_with_augmentation_cutout_and_label_noise() {
    let ws = Workspace::new();
    ws.write_tiny_cifar(10, 40, 10);
    // The reference's run_cifar.py spellings.
    let run = ws.train_any(&[
        "--dataset",
        "cifar10",
        "--epochs",
        "2",
        "--batch_size",
        "16",
        "--data_augmentation",
        "--cutout",
        "--length",
        "8",
        "--noise_percent_labels",
        "25",
        "--sorting_file",
        "none",
        "--lr-milestones",
        "1",
    ]);
    run.assert_ok();
    let presentations = read_presentations(&ws.root());
    let (run_id, rows) = presentations.iter().next().unwrap();
    assert!(run_id.starts_with("cifar10-s1-"), "{run_id}");
    assert_eq!(rows.len(), 2 * 40);

    let file = ws.path().join("config.sql");
    std::fs::write(
        &file,
        "SELECT model, optimizer, lr, momentum, nesterov, weight_decay, lr_gamma, \
         data_augmentation, cutout_holes, cutout_length, batch_size, lr_milestones FROM runs",
    )
    .unwrap();
    assert_eq!(
        ws.query_csv(&file).lines().nth(1).unwrap(),
        "resnet18,sgd,0.1,0.9,true,0.0005,0.2,true,1,8,16,1"
    );
    // --lr-milestones 1: epoch 2 trains at 0.1 * 0.2.
    let lrs: Vec<f64> = query(&ws, "SELECT lr FROM epochs ORDER BY epoch")
        .iter()
        .map(|row| row[0].parse().unwrap())
        .collect();
    assert!((lrs[0] - 0.1).abs() < 1e-12 && (lrs[1] - 0.02).abs() < 1e-12, "{lrs:?}");
    // floor(25 * 40 / 100) = 10 flipped labels, none to its own class.
    let noisy = query(
        &ws,
        "SELECT COUNT(*), SUM(CASE WHEN label = original_label THEN 1 ELSE 0 END) FROM examples \
         WHERE label_noisy",
    );
    assert_eq!(noisy[0], ["10", "0"]);

    let breakdown = repo_file("queries/label_noise_breakdown.sql");
    let csv = ws.query_csv(&breakdown);
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let group_total = |group: &str| -> u32 {
        rows.iter().filter(|r| r[0] == group).map(|r| r[2].parse::<u32>().unwrap()).sum()
    };
    assert_eq!((group_total("noisy"), group_total("clean")), (10, 30), "{csv}");
}

#[test]
fn cifar100_keeps_coarse_labels_and_wideresnet_trains() {
    let ws = Workspace::new();
    ws.write_tiny_cifar(100, 8, 4);
    ws.train_any(&[
        "--dataset",
        "cifar100",
        "--model",
        "wideresnet",
        "--epochs",
        "1",
        "--batch-size",
        "4",
    ])
    .assert_ok();
    let examples =
        query(&ws, "SELECT example_id, label, coarse_label FROM examples ORDER BY example_id");
    let expected: Vec<Vec<String>> =
        (0..8).map(|i| vec![i.to_string(), i.to_string(), (i % 20).to_string()]).collect();
    assert_eq!(examples, expected);
    let by_class = ws.query_csv(&repo_file("queries/forgetting_by_class.sql"));
    let classes: Vec<(&str, &str, &str)> = by_class
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0], f[1], f[2])
        })
        .collect();
    let ids: Vec<String> = (0..8).map(|i| i.to_string()).collect();
    assert_eq!(classes, ids.iter().map(|i| (i.as_str(), i.as_str(), "1")).collect::<Vec<_>>());
    let epochs =
        query(&ws, "SELECT r.model, e.epoch, e.examples FROM epochs e JOIN runs r USING (run_id)");
    assert_eq!(epochs, vec![vec!["wideresnet".to_string(), "1".into(), "8".into()]]);
}

#[test]
fn bad_cifar_input_is_one_clear_error() {
    let ws = Workspace::new();
    ws.write_tiny_cifar(10, 10, 2);
    let batch = ws.data_dir().join("cifar-10-batches-bin/data_batch_2.bin");
    std::fs::write(&batch, vec![0u8; 3000]).unwrap();
    ws.train_any(&["--dataset", "cifar10", "--epochs", "1"])
        .assert_exit_code(2)
        .assert_error_contains(
            "data_batch_2.bin: size 3000 bytes is not a whole number of 3073-byte records",
        );
    ws.train_any(&["--dataset", "cifar10", "--model", "mnist_cnn"])
        .assert_exit_code(2)
        .assert_error_contains(
            "--model mnist_cnn takes 1x28x28 images, but --dataset cifar10 has 3x32x32",
        );
    ws.train_any(&["--dataset", "cifar100", "--epochs", "1"])
        .assert_exit_code(2)
        .assert_error_contains("cifar-100-binary: missing train.bin");
}
