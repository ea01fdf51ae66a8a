//! Bad input gets one clear error line, the documented exit code, and no panic.

use crate::util::Workspace;

#[test]
fn wrong_magic_idx_names_the_file() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(20, 5);
    let labels = ws.data_dir().join("mnist/train-labels-idx1-ubyte");
    let mut bytes = std::fs::read(&labels).unwrap();
    bytes[3] = 3;
    std::fs::write(&labels, bytes).unwrap();
    ws.train(&["--epochs", "1"]).assert_exit_code(2).assert_error_contains(
        "train-labels-idx1-ubyte: bad magic number 0x00000803: expected 0x00000801",
    );
}

#[test]
fn truncated_idx_names_the_file() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(20, 5);
    let images = ws.data_dir().join("mnist/t10k-images-idx3-ubyte");
    let bytes = std::fs::read(&images).unwrap();
    std::fs::write(&images, &bytes[..bytes.len() - 100]).unwrap();
    ws.train(&["--epochs", "1"])
        .assert_exit_code(2)
        .assert_error_contains("t10k-images-idx3-ubyte: size mismatch");
}

#[test]
fn missing_data_names_the_directory_and_the_fix() {
    let ws = Workspace::new();
    ws.train(&["--epochs", "1"])
        .assert_exit_code(2)
        .assert_error_contains("mnist: missing train-images-idx3-ubyte (or train-images-idx3-ubyte.gz); run scripts/fetch-mnist.sh");
}

/// Serves `body` once on 127.0.0.1 for any path; returns the base URL.
fn serve_once(body: &'static [u8]) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mirror", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut stream = listener.incoming().next().unwrap().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 2 {
            line.clear();
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
    });
    url
}

#[test]
fn download_with_a_wrong_checksum_fails_and_leaves_nothing() {
    for (dataset, expected_md5, files_dir) in [
        ("mnist", "f68b3c2dcbeaaa9fbdd348bbdeb94873", "mnist"),
        ("cifar10", "c32a1d4ab5d03f1284b67883e8d87530", ""),
        ("cifar100", "03b5dce01913d631647c71ecec9e9cb8", ""),
    ] {
        let ws = Workspace::new();
        let data = ws.data_dir().display().to_string();
        let url = serve_once(b"not the dataset");
        let run = ws.fstream(&[
            "train",
            "--dataset",
            dataset,
            "--data-dir",
            &data,
            "--mirror",
            &url,
            "--epochs",
            "1",
        ]);
        run.assert_exit_code(1)
            .assert_error_contains(&format!("checksum mismatch: expected {expected_md5}"));
        let left: Vec<_> = std::fs::read_dir(ws.data_dir().join(files_dir)).unwrap().collect();
        assert!(left.is_empty(), "{dataset}: {left:?}");
    }
}

#[test]
fn flag_errors_exit_2() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(20, 5);
    ws.train(&["--remove-n", "21", "--keep-lowest-n", "-1", "--epochs", "1"])
        .assert_exit_code(2)
        .assert_error_contains("--remove-n 21 is larger than the training set (20 examples)");
    ws.train(&["--epochs", "0"])
        .assert_exit_code(2)
        .assert_error_contains("--epochs must be at least 1");
    ws.train(&["--seeds", "1..x"]).assert_exit_code(2).assert_error_contains("--seeds \"1..x\"");
    ws.fstream(&["train", "--dataset", "svhn"]).assert_exit_code(2).assert_error_contains(
        "invalid value 'svhn' for '--dataset <NAME>': unknown dataset 'svhn'",
    );
    ws.fstream(&["train", "--epochs", "3"]).assert_exit_code(2).assert_error_contains("--dataset");
    let help = ws.fstream(&["train", "--help"]);
    help.assert_ok();
    assert!(help.stdout().contains("--keep-lowest-n"), "{}", help.stdout());
}

#[test]
fn query_and_order_need_a_dataset_root() {
    let ws = Workspace::new();
    let empty = ws.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let sql = ws.path().join("q.sql");
    std::fs::write(&sql, "SELECT 1").unwrap();
    ws.fstream(&["query", sql.to_str().unwrap(), "--root", empty.to_str().unwrap()])
        .assert_exit_code(2)
        .assert_error_contains("no fstream runs here");
    ws.fstream(&["order", "--dataset", "mnist", "--input-dir", "missing"])
        .assert_exit_code(2)
        .assert_error_contains("missing: no fstream runs here");
    ws.fstream(&["query", "nonexistent.sql", "--root", empty.to_str().unwrap()])
        .assert_exit_code(2)
        .assert_error_contains("nonexistent.sql: No such file");
}

/// More bad inputs, as a table: (what, arguments, exit code, text the error line must hold).
/// Every case must give one `fstream: error:` line and no panic. A damaged file of a root is a
/// runtime failure (exit 1), as `fstream verify` reports it; a bad input file is exit 2.
#[test]
fn bad_input_table() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(40, 5);
    ws.train(&["--epochs", "1"]).assert_ok();
    ws.order("order40", &[]).assert_ok();
    let run_id = crate::util::first_run_id(&ws.root());
    let root = ws.root().display().to_string();
    let data = ws.data_dir().display().to_string();

    // A second dataset of another size, and one whose label file disagrees with its images.
    let other = Workspace::new();
    other.write_tiny_mnist(50, 5);
    let other_data = other.data_dir().display().to_string();
    let mismatched = Workspace::new();
    mismatched.write_tiny_mnist(30, 5);
    let labels = mismatched.data_dir().join("mnist/train-labels-idx1-ubyte");
    std::fs::write(&labels, fstream::data::idx::encode_idx(&[29], &[1; 29])).unwrap();
    let mismatched_data = mismatched.data_dir().display().to_string();

    let not_parquet = ws.path().join("not.parquet");
    std::fs::write(&not_parquet, "example_id,forgetting_count\n1,0\n").unwrap();
    let corrupt_root = ws.path().join("corrupt");
    crate::util::copy_dir(&ws.root(), &corrupt_root);
    let victim = crate::util::parquet_files(&corrupt_root.join("presentations")).remove(0);
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    // Without a dynamics file (a root written before the table), order reads presentations.
    for file in crate::util::parquet_files(&corrupt_root.join("dynamics")) {
        std::fs::remove_file(file).unwrap();
    }
    let corrupt = corrupt_root.display().to_string();
    let corrupt_dynamics_root = ws.path().join("corrupt-dynamics");
    crate::util::copy_dir(&ws.root(), &corrupt_dynamics_root);
    let dynamics_victim =
        crate::util::parquet_files(&corrupt_dynamics_root.join("dynamics")).remove(0);
    std::fs::write(&dynamics_victim, b"PAR1 not really").unwrap();
    let corrupt_dynamics = corrupt_dynamics_root.display().to_string();
    let all_dynamics = ws.path().join("dynamics.sql");
    std::fs::write(&all_dynamics, "SELECT * FROM dynamics").unwrap();
    let all_dynamics = all_dynamics.display().to_string();
    let order40 = ws.path().join("order40.parquet").display().to_string();
    let not_parquet = not_parquet.display().to_string();
    let out = ws.path().display().to_string();

    let train = |data: &str, extra: &[&str]| {
        let mut args =
            vec!["train", "--dataset", "mnist", "--data-dir", data, "--output-dir", &root];
        args.extend_from_slice(&[
            "--device",
            "cpu",
            "--threads",
            "1",
            "--no-download",
            "--epochs",
            "1",
        ]);
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let strings = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let sql = |name: &str, text: &str| {
        let path = ws.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let all_presentations = sql("all.sql", "SELECT COUNT(*) FROM presentations");
    let copy = sql("copy.sql", "-- export\nCOPY runs TO 'x.csv'");
    let a_file = sql("afile", "");
    let unrecorded = Workspace::new();
    unrecorded.write_tiny_mnist(20, 5);
    unrecorded.train(&["--epochs", "1", "--no-record"]).assert_ok();
    let unrecorded_root = unrecorded.root().display().to_string();
    let order_of = |root: &str, extra: &[&str]| {
        let mut args = vec!["order", "--dataset", "mnist", "--input-dir", root];
        args.extend_from_slice(&["--output-dir", &out, "--output-name", "o"]);
        args.extend_from_slice(extra);
        strings(&args)
    };
    let cases: Vec<(&str, Vec<String>, i32, String)> = vec![
        (
            "image and label counts differ",
            train(&mismatched_data, &[]),
            2,
            "29 labels for 30 images".into(),
        ),
        (
            "sorting file of another size",
            train(&other_data, &["--sorting-file", &order40, "--remove-n", "5"]),
            2,
            "sorting file is for dataset mnist with 40 examples, but --dataset mnist has 50".into(),
        ),
        (
            "sorting file that is not Parquet",
            train(&data, &["--sorting-file", &not_parquet, "--remove-n", "5"]),
            2,
            "not.parquet: not a Parquet sorting file".into(),
        ),
        (
            "missing sorting file",
            train(&data, &["--sorting-file", "nope.parquet", "--remove-n", "1"]),
            2,
            "nope.parquet: No such file".into(),
        ),
        (
            "removal window starting past the end",
            train(
                &data,
                &["--sorting-file", &order40, "--remove-n", "30", "--keep-lowest-n", "40"],
            ),
            2,
            "--keep-lowest-n 40: the sorting file orders only 40 examples".into(),
        ),
        (
            "unknown model",
            train(&data, &["--model", "resnet1000"]),
            2,
            "unknown model 'resnet1000'".into(),
        ),
        (
            "negative learning rate",
            train(&data, &["--lr", "-1"]),
            2,
            "--lr must be a positive number".into(),
        ),
        ("seed given twice", train(&data, &["--seeds", "1,1"]), 2, "seed 1 is given twice".into()),
        (
            "resume of an unknown run",
            strings(&["train", "--resume", "nope", "--output-dir", &root, "--no-download"]),
            2,
            "no run nope under".into(),
        ),
        (
            "corrupt presentations file (order)",
            strings(&[
                "order",
                "--dataset",
                "mnist",
                "--input-dir",
                &corrupt,
                "--output-dir",
                &out,
                "--output-name",
                "c",
            ]),
            1,
            victim.display().to_string(),
        ),
        (
            "output name with a directory",
            strings(&["order", "--dataset", "mnist", "--input-dir", &root, "--output-name", "a/b"]),
            2,
            "--output-name \"a/b\"".into(),
        ),
        (
            "corrupt presentations file (query)",
            strings(&["query", &all_presentations, "--root", &corrupt]),
            1,
            victim.display().to_string(),
        ),
        (
            "corrupt dynamics file (query)",
            strings(&["query", &all_dynamics, "--root", &corrupt_dynamics]),
            1,
            dynamics_victim.display().to_string(),
        ),
        (
            "a statement other than SELECT",
            strings(&["query", &copy, "--root", &root]),
            2,
            "copy.sql: expected one SELECT or WITH statement, got COPY".into(),
        ),
        (
            "a --where predicate that ends the statement",
            order_of(&root, &["--where", "1=1; DROP TABLE runs"]),
            2,
            "--where \"1=1; DROP TABLE runs\": expected one condition, but ; follows".into(),
        ),
        (
            "an --output-dir that is a file",
            strings(&[
                "train",
                "--dataset",
                "mnist",
                "--data-dir",
                &data,
                "--output-dir",
                &a_file,
                "--device",
                "cpu",
                "--no-download",
                "--epochs",
                "1",
            ]),
            2,
            "--output-dir".to_string() + &format!(" {a_file}: exists and is not a directory"),
        ),
        (
            "a query over presentations of a root without any",
            strings(&["query", &all_presentations, "--root", &unrecorded_root]),
            2,
            "table presentations has no files yet".into(),
        ),
        (
            "order of runs trained with --no-record",
            order_of(&unrecorded_root, &[]),
            2,
            "the matching runs were trained with --no-record: they have no presentations to count"
                .into(),
        ),
        (
            "order --epochs 0",
            order_of(&root, &["--epochs", "0"]),
            2,
            "--epochs must be at least 1".into(),
        ),
        (
            "order --epochs beyond what the runs committed",
            order_of(&root, &["--epochs", "10"]),
            2,
            "--epochs 10: run mnist-s1-".into(),
        ),
        (
            "resume with a contradicting flag",
            strings(&[
                "train",
                "--resume",
                &run_id,
                "--output-dir",
                &root,
                "--epochs",
                "2",
                "--momentum",
                "0.9",
            ]),
            2,
            "--momentum contradicts the recorded configuration".into(),
        ),
        (
            "no training example left",
            train(&data, &["--remove-n", "40", "--keep-lowest-n", "-1"]),
            2,
            "no training examples left".into(),
        ),
        (
            "more seeds than one process trains",
            train(&data, &["--seeds", "1..65"]),
            2,
            "65 runs exceed the limit of 64".into(),
        ),
        (
            "parquet output without a path",
            strings(&["query", "x.sql", "--root", &root, "--format", "parquet"]),
            2,
            "--format parquet needs --output PATH".into(),
        ),
    ];
    for (what, args, code, needle) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        eprintln!("bad input: {what}");
        ws.fstream(&args).assert_exit_code(*code).assert_error_contains(needle);
    }
    eprintln!("{} bad-input cases checked", cases.len());
}

#[test]
fn an_installed_layout_loads_its_own_libtorch() {
    // What scripts/install.sh lays out: PREFIX/bin/{fstream,fstream-train} beside PREFIX/lib/
    // (hard links where possible, as the script does). `fstream --version` is answered by
    // fstream-train, the binary that loads libtorch.
    let ws = Workspace::new();
    let version = ws.fstream(&["--version"]);
    version.assert_ok();
    let text = version.stdout();
    let built_against = text.trim().rsplit_once(" from ").map(|(_, dir)| dir.trim_end_matches(')'));
    let built_against = std::path::PathBuf::from(built_against.expect("--version names a dir"));
    assert!(built_against.join("libtorch_cpu.so").is_file(), "{text}");
    let prefix = ws.path().join("prefix");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::create_dir_all(prefix.join("lib")).unwrap();
    let link = |from: &std::path::Path, to: &std::path::Path| {
        std::fs::hard_link(from, to).or_else(|_| std::fs::copy(from, to).map(|_| ())).unwrap()
    };
    link(std::path::Path::new(env!("CARGO_BIN_EXE_fstream")), &prefix.join("bin/fstream"));
    link(
        std::path::Path::new(env!("CARGO_BIN_EXE_fstream-train")),
        &prefix.join("bin/fstream-train"),
    );
    for entry in std::fs::read_dir(&built_against).unwrap() {
        let entry = entry.unwrap();
        link(&entry.path(), &prefix.join("lib").join(entry.file_name()));
    }
    let installed =
        std::process::Command::new(prefix.join("bin/fstream")).arg("--version").output().unwrap();
    let installed = String::from_utf8_lossy(&installed.stdout).into_owned();
    assert_eq!(
        installed.trim(),
        format!(
            "fstream {} (libtorch {} from {}/lib)",
            env!("CARGO_PKG_VERSION"),
            fstream_torch::LIBTORCH_VERSION,
            prefix.display()
        )
    );
}

/// The shared libraries `binary` loads, as the dynamic loader resolves them (`ldd`).
fn loaded_libraries(binary: &str) -> String {
    let output = std::process::Command::new("ldd").arg(binary).output().unwrap();
    assert!(output.status.success(), "ldd {binary}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn only_the_training_binary_loads_libtorch() {
    let analysis = loaded_libraries(env!("CARGO_BIN_EXE_fstream"));
    assert!(!analysis.contains("libtorch") && !analysis.contains("libc10"), "{analysis}");
    let training = loaded_libraries(env!("CARGO_BIN_EXE_fstream-train"));
    assert!(training.contains("libtorch_cpu.so"), "{training}");
    // `fstream train` hands over to fstream-train, which records the libtorch it trained with.
    let ws = Workspace::new();
    ws.write_tiny_mnist(20, 5);
    ws.train(&["--epochs", "1"]).assert_ok();
    let sql = ws.path().join("libtorch.sql");
    std::fs::write(&sql, "SELECT libtorch_version FROM runs").unwrap();
    let csv = ws.query_csv(&sql);
    assert_eq!(csv.trim(), format!("libtorch_version\n{}", fstream_torch::LIBTORCH_VERSION));
}

#[test]
fn fstream_without_its_training_binary_says_which_binary_is_missing() {
    let ws = Workspace::new();
    let alone = ws.path().join("alone/fstream");
    std::fs::create_dir_all(alone.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_fstream"), &alone).unwrap();
    let order = std::process::Command::new(&alone).args(["order", "--help"]).output().unwrap();
    assert!(order.status.success(), "analysis commands need no fstream-train");
    let train = std::process::Command::new(&alone).args(["train", "--dataset", "mnist"]).output();
    let train = train.unwrap();
    let stderr = String::from_utf8_lossy(&train.stderr);
    assert_eq!(train.status.code(), Some(1), "{stderr}");
    let missing = alone.with_file_name("fstream-train");
    assert!(stderr.contains(&format!("{}: No such file", missing.display())), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn device_cuda_without_a_gpu_is_one_clear_error() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(20, 5);
    let run = ws.train(&["--epochs", "1", "--device", "cuda"]);
    if run.output.status.success() {
        eprintln!("skipped: libtorch sees a GPU here");
        return;
    }
    run.assert_exit_code(2).assert_error_contains("--device cuda: this libtorch ");
}
