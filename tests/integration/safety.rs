//! Nothing lost, nothing mixed (issue 18): no command deletes or writes outside the root or
//! output it was given, no output replaces a root's tables or the command's own inputs, every
//! output is committed atomically, and no number mixes runs of different data.

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::Workspace;

/// Every file under `dir` with its bytes: what must not change.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, &mut files);
    files
}

/// `fstream scores --root ROOT --dataset mnist ARGS`.
fn scores(ws: &Workspace, root: &str, args: &[&str]) -> crate::util::Run {
    ws.fstream(&[&["scores", "--root", root, "--dataset", "mnist"][..], args].concat())
}

/// A workspace with a root of one complete run (40 examples, 2 epochs) and its sorting file.
fn trained() -> (Workspace, String) {
    let ws = Workspace::new();
    ws.write_tiny_mnist(40, 5);
    ws.train(&["--epochs", "2"]).assert_ok();
    ws.order("order", &[]).assert_ok();
    let run_id = crate::util::first_run_id(&ws.root());
    (ws, run_id)
}

#[test]
fn run_ids_that_are_paths_delete_nothing() {
    let (ws, run_id) = trained();
    let root = ws.root().display().to_string();
    // Something beside the root that `rm '..'` reached before.
    std::fs::write(ws.path().join("beside.txt"), "keep").unwrap();
    let before = snapshot(ws.path());
    for id in ["..", "../..", "", ".", "../results", "a/b", ".hidden", "x\ny"] {
        eprintln!("rm {id:?}");
        ws.fstream(&["rm", id, "--root", &root])
            .assert_exit_code(2)
            .assert_error_contains("expected 1 to 128 letters, digits, '.', '_' or '-'");
        ws.fstream(&["rebuild", "--run", id, "--root", &root]).assert_exit_code(2);
        ws.fstream(&["train", "--resume", id, "--output-dir", &root]).assert_exit_code(2);
    }
    // Valid ids that name a table or nothing: no such run.
    for id in ["nope", "runs", "checkpoints", "locks"] {
        ws.fstream(&["rm", id, "--root", &root])
            .assert_exit_code(2)
            .assert_error_contains(&format!("no run {id} under"));
    }
    assert_eq!(snapshot(ws.path()), before, "a file changed");
    // A directory listing that yields such a name is never turned into a path either: a
    // partition named `run_id=..` (a hand-made or hostile one) is not a run of the root.
    let hostile = ws.root().join("presentations/dataset=mnist/run_id=..");
    std::fs::create_dir_all(&hostile).unwrap();
    ws.fstream(&["verify", "--root", &root, "--remove-orphans"]).assert_ok();
    ws.fstream(&["rm", &run_id, "--root", &root]).assert_ok();
    assert!(hostile.is_dir() && ws.path().join("beside.txt").is_file());
    assert!(ws.root().join("runs").is_dir(), "rm removes a run's files, not the tables");
}

#[test]
fn outputs_never_replace_a_roots_tables_or_their_own_inputs() {
    let (ws, run_id) = trained();
    let root = ws.root().display().to_string();
    let data = ws.data_dir().display().to_string();
    let sql = ws.path().join("runs.sql");
    std::fs::write(&sql, "SELECT run_id, seed FROM runs").unwrap();
    let sql = sql.display().to_string();
    let order = ws.path().join("order.parquet").display().to_string();
    let in_table = |table: &str, name: &str| format!("{root}/{table}/{name}");
    let before = snapshot(ws.path());
    let table_dir = "a table directory of the dataset root";
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "query".into(),
                sql.clone(),
                "--root".into(),
                root.clone(),
                "-o".into(),
                in_table("runs", &format!("{run_id}.parquet")),
                "--format".into(),
                "parquet".into(),
            ],
            table_dir,
        ),
        (
            vec![
                "order".into(),
                "--root".into(),
                root.clone(),
                "--dataset".into(),
                "mnist".into(),
                "--output-dir".into(),
                in_table("runs", ""),
                "--output-name".into(),
                run_id.clone(),
            ],
            table_dir,
        ),
        (
            vec![
                "scores".into(),
                "--root".into(),
                root.clone(),
                "--dataset".into(),
                "mnist".into(),
                "--score".into(),
                "aum".into(),
                "--output".into(),
                in_table("dynamics", &format!("{run_id}.parquet")),
            ],
            table_dir,
        ),
        (
            vec![
                "plot".into(),
                "training-curves".into(),
                "--root".into(),
                root.clone(),
                "--dataset".into(),
                "mnist".into(),
                "--output".into(),
                in_table("epochs", &format!("{run_id}.png")),
            ],
            table_dir,
        ),
        (
            vec![
                "report".into(),
                "--root".into(),
                root.clone(),
                "--output".into(),
                in_table("checkpoints", ""),
            ],
            table_dir,
        ),
        (
            vec![
                "export".into(),
                order.clone(),
                "--to".into(),
                "npy".into(),
                "--output".into(),
                order.clone(),
            ],
            "is the input",
        ),
        (
            vec![
                "query".into(),
                sql.clone(),
                "--root".into(),
                root.clone(),
                "-o".into(),
                sql.clone(),
                "--format".into(),
                "csv".into(),
            ],
            "is the input",
        ),
        (
            vec![
                "plot".into(),
                "examples".into(),
                "--root".into(),
                root.clone(),
                "--dataset".into(),
                "mnist".into(),
                "--data-dir".into(),
                data.clone(),
                "--output".into(),
                format!("{data}/mnist/train-images-idx3-ubyte.png"),
            ],
            "which holds a dataset's files",
        ),
    ];
    for (args, expected) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        eprintln!("{args:?}");
        ws.fstream(&args).assert_exit_code(2).assert_error_contains(expected);
    }
    assert_eq!(snapshot(ws.path()), before, "a refused output changed a file");
    ws.fstream(&["verify", "--root", &root]).assert_ok();
    ws.order("again", &[]).assert_ok();
}

#[test]
fn a_failed_output_leaves_the_previous_file_whole() {
    let (ws, _) = trained();
    let root = ws.root().display().to_string();
    let sql = ws.path().join("all.sql");
    std::fs::write(&sql, "SELECT * FROM presentations").unwrap();
    let out = ws.path().join("q.csv");
    let small = ws.path().join("small.sql");
    std::fs::write(&small, "SELECT run_id FROM runs").unwrap();
    let query = |sql: &Path, limit_blocks: Option<u32>| {
        let command = format!(
            "{}exec '{}' query '{}' --root '{root}' --format csv -o '{}'",
            limit_blocks.map_or(String::new(), |b| format!("ulimit -f {b}; ")),
            env!("CARGO_BIN_EXE_fstream"),
            sql.display(),
            out.display()
        );
        Command::new("sh").args(["-c", &command]).output().unwrap()
    };
    assert!(query(&small, None).status.success());
    let good = std::fs::read(&out).unwrap();
    // 80 presentations of CSV are several KB: one 512-byte block is too little.
    let failed = query(&sql, Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("{}: File too large", out.display())), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), good, "the previous result was replaced");
    // A sorting file and its CSV are a pair: a failed write leaves the previous pair.
    let pair = |ws: &Workspace| {
        ["order.parquet", "order.csv"].map(|name| std::fs::read(ws.path().join(name)).unwrap())
    };
    let before = pair(&ws);
    let command = format!(
        "ulimit -f 1; exec '{}' order --root '{root}' --dataset mnist --output-dir '{}' --output-name order --tie-break random",
        env!("CARGO_BIN_EXE_fstream"),
        ws.path().display()
    );
    let failed = Command::new("sh").args(["-c", &command]).output().unwrap();
    assert_eq!(failed.status.code(), Some(1), "{}", String::from_utf8_lossy(&failed.stderr));
    assert_eq!(pair(&ws), before);
    let left: Vec<_> = std::fs::read_dir(ws.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn numbers_never_mix_runs_of_different_data() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(40, 5);
    ws.train(&["--epochs", "1", "--seed", "1"]).assert_ok();
    ws.order("a", &[]).assert_ok();
    // The same size and format, other labels: other data.
    let other = Workspace::new();
    other.write_tiny_mnist(40, 5);
    let relabelled: Vec<u8> = (0..40).map(|i| ((i * 7 + 3) % 10) as u8).collect();
    let labels = other.data_dir().join("mnist/train-labels-idx1-ubyte");
    std::fs::write(&labels, fstream::data::idx::encode_idx(&[40], &relabelled)).unwrap();
    let other_data = other.data_dir().display().to_string();
    ws.train(&["--epochs", "1", "--seed", "2", "--data-dir", &other_data]).assert_ok();
    let root = ws.root().display().to_string();
    let mixed = "were trained on different data";
    ws.order("mixed", &[]).assert_exit_code(2).assert_error_contains(mixed);
    let aum = ws.path().join("aum.parquet").display().to_string();
    scores(&ws, &root, &["--score", "aum", "--output", &aum])
        .assert_exit_code(2)
        .assert_error_contains(mixed);
    ws.fstream(&["compare", "--runs", "--root", &root, "--dataset", "mnist"])
        .assert_exit_code(2)
        .assert_error_contains(mixed);
    // Sorting files carry their data's fingerprint.
    ws.order("b", &["--where", "seed = 2"]).assert_ok();
    let (a, b) = (ws.path().join("a.parquet"), ws.path().join("b.parquet"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    ws.fstream(&["compare", a, b])
        .assert_exit_code(2)
        .assert_error_contains("the files rank different data of mnist");
    ws.train(&[
        "--epochs",
        "1",
        "--seed",
        "3",
        "--data-dir",
        &other_data,
        "--sorting-file",
        a,
        "--remove-n",
        "5",
    ])
    .assert_exit_code(2)
    .assert_error_contains("sorting file ranks other data");
    let picture = ws.path().join("examples.png").display().to_string();
    let examples = |data: &str, seed: &str| {
        let predicate = format!("seed = {seed}");
        ws.fstream(&[
            "plot",
            "examples",
            "--root",
            &root,
            "--dataset",
            "mnist",
            "--where",
            &predicate,
            "--data-dir",
            data,
            "--output",
            &picture,
            "--count",
            "2",
        ])
    };
    examples(&other_data, "1")
        .assert_exit_code(2)
        .assert_error_contains("are not the data the runs trained on");
    examples(&ws.data_dir().display().to_string(), "1").assert_ok();
    // A stale sorting file: counted over other runs than a sweep says.
    ws.train(&[
        "--epochs",
        "1",
        "--seed",
        "4",
        "--sorting-file",
        a,
        "--remove-n",
        "5",
        "--sorting-runs",
        "other-run",
    ])
    .assert_exit_code(2)
    .assert_error_contains("but --sorting-runs names other-run: it is stale");
}

#[test]
fn where_is_one_condition_over_the_runs_columns() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(40, 5);
    ws.train(&["--epochs", "1"]).assert_ok();
    ws.train(&["--epochs", "1", "--dataset", "permuted_mnist"]).assert_ok();
    let root = ws.root().display().to_string();
    let curves = ws.path().join("curves.png").display().to_string();
    let plot = |predicate: &str| {
        ws.fstream(&[
            "plot",
            "training-curves",
            "--root",
            &root,
            "--dataset",
            "mnist",
            "--where",
            predicate,
            "--output",
            &curves,
        ])
    };
    for (predicate, expected) in [
        ("1=1) OR (1=1", "expected one condition, but ) follows"),
        ("TRUE) OR (TRUE", "expected one condition"),
        ("", "expected a condition over the runs table"),
        ("sed < 3", "unknown column 'sed' of the runs table"),
        ("seed IN (SELECT seed FROM runs)", "`seed IN (SELECT seed FROM runs)` is not supported"),
    ] {
        plot(predicate)
            .assert_exit_code(2)
            .assert_error_contains(&format!("--where {predicate:?}: {expected}"));
        ws.fstream(&["runs", "--root", &root, "--where", predicate]).assert_exit_code(2);
    }
    plot("seed >= 1 OR dataset = 'permuted_mnist'").assert_ok();
    let csv = std::fs::read_to_string(ws.path().join("curves.csv")).unwrap();
    let runs: std::collections::BTreeSet<&str> =
        csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(runs.len(), 1, "only the mnist run, whatever the predicate says: {csv}");
    assert!(runs.iter().all(|r| r.starts_with("mnist-")), "{csv}");
}

#[test]
fn damage_inside_a_committed_file_is_found_and_never_counted() {
    let (ws, run_id) = trained();
    let root = ws.root().display().to_string();
    let epoch = |e: u32| {
        ws.root()
            .join(format!("presentations/dataset=mnist/run_id={run_id}/epoch={e}/part-0.parquet"))
    };
    ws.fstream(&["verify", "--root", &root]).assert_ok();
    // A few bytes inside the data, far from the footer: Parquet's own structure is intact.
    let mut bytes = std::fs::read(epoch(1)).unwrap();
    let at = bytes.len() / 3;
    for byte in &mut bytes[at..at + 3] {
        *byte ^= 0x5a;
    }
    std::fs::write(epoch(1), bytes).unwrap();
    let verify = ws.fstream(&["verify", "--root", &root]);
    verify.assert_exit_code(1);
    let damage = format!("damage\t{}\tcontent changed after its commit", epoch(1).display());
    assert!(verify.stdout().contains(&damage), "{}", verify.stdout());
    ws.fstream(&["verify", "--root", &root, "--quick"]).assert_ok();
    ws.fstream(&["rebuild", "--root", &root]).assert_exit_code(1).assert_error_contains(&format!(
        "{}: content changed after its commit",
        epoch(1).display()
    ));
    // The dynamics file is intact: order counts from it, as before.
    ws.order("again", &[]).assert_ok();
    assert_eq!(
        std::fs::read(ws.path().join("again.csv")).unwrap(),
        std::fs::read(ws.path().join("order.csv")).unwrap()
    );
    // A damaged dynamics file is not counted: order counts the presentations instead, and
    // refuses the damaged ones.
    let dynamics = ws.root().join(format!("dynamics/{run_id}.parquet"));
    let mut bytes = std::fs::read(&dynamics).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x01;
    std::fs::write(&dynamics, bytes).unwrap();
    ws.order("damaged", &[])
        .assert_exit_code(1)
        .assert_error_contains(&epoch(1).display().to_string());
    // A committed epoch whose file is gone is an error of every query, naming the file.
    std::fs::remove_file(epoch(2)).unwrap();
    let sql = ws.path().join("count.sql");
    std::fs::write(&sql, "SELECT COUNT(*) AS n FROM presentations").unwrap();
    ws.fstream(&["query", sql.to_str().unwrap(), "--root", &root])
        .assert_exit_code(1)
        .assert_error_contains(&format!(
            "{}: missing, but run {run_id} declares epoch 2 committed",
            epoch(2).display()
        ));
}

/// One example's statistics in a reference pickle: id, losses, accuracies, margins.
type ExampleStats<'a> = (u8, &'a [f64], &'a [f64], &'a [f64]);

/// A protocol-2 pickle of the reference's statistics: `{id: [losses, accuracies, margins]}`.
fn stats_pickle(examples: &[ExampleStats<'_>]) -> Vec<u8> {
    let mut bytes = b"\x80\x02}(".to_vec();
    for (id, losses, accuracies, margins) in examples {
        bytes.extend([b'K', *id]);
        bytes.extend(b"](");
        for list in [losses, accuracies, margins] {
            bytes.extend(b"](");
            for value in list.iter() {
                bytes.push(b'G');
                bytes.extend(value.to_be_bytes());
            }
            bytes.push(b'e');
        }
        bytes.push(b'e');
    }
    bytes.extend(b"u.");
    bytes
}

#[test]
fn import_reference_refuses_what_the_reference_never_writes() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(20, 5);
    let good: &[f64] = &[0.5, 0.25];
    let mut deep = b"\x80\x02".to_vec();
    deep.extend(std::iter::repeat_n(b']', 100_000));
    deep.extend(std::iter::repeat_n(b'a', 99_999));
    deep.push(b'.');
    let name = "dataset_mnist__seed_1__stats_dict.pkl";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            name,
            stats_pickle(&[
                (0, good, &[1.0, 0.0], good),
                (1, &[0.5, 0.2, 0.1], &[1.0, 1.0, 1.0], &[1.0, 1.0, 1.0]),
            ]),
            "example 1 has 3 presentations but example 0 has 2",
        ),
        (
            name,
            stats_pickle(&[(0, &[f64::NAN, 0.5], &[1.0, 0.0], good)]),
            "example 0: presentation 1: loss NaN",
        ),
        (
            name,
            stats_pickle(&[(0, good, &[1.0, 0.0], &[0.5, f64::INFINITY])]),
            "example 0: presentation 2: margin inf",
        ),
        (
            name,
            stats_pickle(&[(0, good, &[5.0, 0.0], good)]),
            "example 0: presentation 1: accuracy 5, expected 0 or 1",
        ),
        (
            name,
            stats_pickle(&[(0, good, &[1.0, -3.0], good)]),
            "example 0: presentation 2: accuracy -3, expected 0 or 1",
        ),
        (
            "dataset_mnist__seed_banana__stats_dict.pkl",
            stats_pickle(&[(0, good, &[1.0, 0.0], good)]),
            "file name: seed_banana: expected an integer",
        ),
        (name, deep, "not the reference's statistics: containers nested 33 deep"),
    ];
    let root = ws.root().display().to_string();
    let data = ws.data_dir().display().to_string();
    for (file_name, bytes, expected) in &cases {
        let path = ws.path().join("bad").join(file_name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let path = path.display().to_string();
        eprintln!("{expected}");
        ws.fstream(&["import-reference", "--data-dir", &data, "--output-dir", &root, &path])
            .assert_exit_code(2)
            .assert_error_contains(&format!("{path}: {expected}"));
        assert!(!ws.root().join("runs").exists(), "a refused file wrote a run");
    }
    // Every example of the 20, as the reference writes them: 0 forgotten once, 3 learned at
    // epoch 2, the others learned at once.
    let path = ws.path().join(name);
    let accuracies = |id: u8| -> &'static [f64] {
        match id {
            0 => &[1.0, 0.0],
            3 => &[0.0, 1.0],
            _ => &[1.0, 1.0],
        }
    };
    let examples: Vec<ExampleStats<'_>> =
        (0..20).map(|id| (id, good, accuracies(id), good)).collect();
    std::fs::write(&path, stats_pickle(&examples)).unwrap();
    ws.fstream(&[
        "import-reference",
        "--data-dir",
        &data,
        "--output-dir",
        &root,
        path.to_str().unwrap(),
    ])
    .assert_ok();
    ws.order("imported", &[]).assert_ok();
    let rows = crate::util::read_order_csv(&ws.path().join("imported.csv"));
    let count = |id: u32| rows.iter().find(|r| r.0 == id).unwrap().1;
    assert_eq!((count(0), count(3)), (1, 0), "0 is forgotten once; 3 is learned at epoch 2");
}

#[test]
fn huge_ranges_and_bad_numbers_are_clear_errors_not_hangs() {
    let ws = Workspace::new();
    ws.write_tiny_mnist(20, 5);
    ws.train(&["--seeds", "1..999999999999"])
        .assert_exit_code(2)
        .assert_error_contains("--seeds: 999999999999 runs exceed the limit of 64");
    ws.train(&["--seeds", "5..1"]).assert_exit_code(2).assert_error_contains("needs A <= B");
    ws.train(&["--seed", "-1"])
        .assert_exit_code(2)
        .assert_error_contains("expected an integer from 0 to 9223372036854775807, not \"-1\"");
    let spec = |grid: &str| {
        let path = ws.path().join("huge.toml");
        std::fs::write(
            &path,
            format!("name = \"huge\"\n[train]\ndataset = \"mnist\"\n\n[[stage]]\nname = \"base\"\n{grid}\n"),
        )
        .unwrap();
        path.display().to_string()
    };
    let root = ws.root().display().to_string();
    for (grid, expected) in [
        (
            "[stage.grid]\nremove_n = { range = [0, 1000000000, 1] }",
            "range give 1000000000 tasks, more than the 10000",
        ),
        ("seeds = \"1..999999999\"", "the seeds give 999999999 tasks"),
        (
            "seeds = \"1..100\"\n[stage.grid]\nremove_n = { range = [0, 1000, 1] }",
            "the grid's points times the seeds give 100000 tasks",
        ),
    ] {
        let spec = spec(grid);
        let status = ["sweep", "status", &spec, "--root", &root];
        let print = ["sweep", "run", &spec, "--root", &root, "--executor", "print"];
        for args in [&status[..], &print[..]] {
            ws.fstream(args).assert_exit_code(2).assert_error_contains(expected);
        }
    }
    let root_scores = ws.path().join("s.parquet").display().to_string();
    scores(
        &ws,
        &root,
        &["--score", "forgetting", "--never-learned", "epochs:-3", "--output", &root_scores],
    )
    .assert_exit_code(2)
    .assert_error_contains("each at least 0");
    ws.fstream(&["compare", "a.parquet", "b.parquet", "--k", "0"])
        .assert_exit_code(2)
        .assert_error_contains("--k");
}

#[test]
fn errors_are_one_line_that_names_the_file_or_flag() {
    let (ws, run_id) = trained();
    let root = ws.root().display().to_string();
    // An output directory that is a file.
    let file = ws.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    ws.fstream(&[
        "order",
        "--root",
        &root,
        "--dataset",
        "mnist",
        "--output-dir",
        file.to_str().unwrap(),
    ])
    .assert_exit_code(2)
    .assert_error_contains(&format!("{}: not a directory (a file is in the way)", file.display()));
    // A label outside the classes, in the real IDX format.
    let bad = Workspace::new();
    bad.write_tiny_mnist(20, 5);
    let labels: Vec<u8> = (0..20).map(|i| if i == 7 { 10 } else { (i % 10) as u8 }).collect();
    let path = bad.data_dir().join("mnist/train-labels-idx1-ubyte");
    std::fs::write(&path, fstream::data::idx::encode_idx(&[20], &labels)).unwrap();
    bad.train(&["--epochs", "1"])
        .assert_exit_code(2)
        .assert_error_contains("train-labels-idx1-ubyte: label 10 out of range: expected 0 to 9");
    // Formats a command refuses are not offered.
    let help = ws.fstream(&["compare", "--help"]);
    help.assert_ok();
    assert!(!help.stdout().contains("parquet"), "{}", help.stdout());
    ws.fstream(&["runs", "--root", &root, "--format", "parquet"]).assert_exit_code(2);
    // A runs file deleted from an intact run: damage that says how to restore it, and
    // --remove-orphans keeps the run's files.
    let runs_file = ws.root().join(format!("runs/{run_id}.parquet"));
    let saved = std::fs::read(&runs_file).unwrap();
    std::fs::remove_file(&runs_file).unwrap();
    let other = Workspace::new();
    crate::util::copy_dir(&ws.root(), &other.root());
    let verify = ws.fstream(&["verify", "--root", &root, "--remove-orphans"]);
    verify.assert_exit_code(1);
    assert!(
        verify.stdout().contains(&format!(
            "damage\t{}\tmissing, but run {run_id} has committed epochs",
            runs_file.display()
        )),
        "{}",
        verify.stdout()
    );
    assert!(verify.stdout().contains(&format!("fstream rm {run_id}")), "{}", verify.stdout());
    assert!(ws.root().join(format!("dynamics/{run_id}.parquet")).is_file(), "the run's files stay");
    std::fs::write(&runs_file, saved).unwrap();
    ws.fstream(&["verify", "--root", &root]).assert_ok();
    // A runs file that is not one of fstream's, named.
    let alien = other.root().join("runs/alien.parquet");
    std::fs::copy(ws.path().join("order.parquet"), &alien).unwrap();
    let sql = ws.path().join("q.sql");
    std::fs::write(&sql, "SELECT 1 AS one").unwrap();
    ws.fstream(&["query", sql.to_str().unwrap(), "--root", other.root().to_str().unwrap()])
        .assert_exit_code(1)
        .assert_error_contains(&format!(
            "{}: missing or mistyped column 'run_id'",
            alien.display()
        ));
}

/// Rewrites the Parquet file `from` as `to` with `compression` and the key-value metadata
/// entries `edit` returns (what another tool, an older fstream or a flipped bit writes).
fn rewrite_parquet(
    from: &Path,
    to: &Path,
    compression: parquet::basic::Compression,
    edit: impl Fn(parquet::file::metadata::KeyValue) -> Option<parquet::file::metadata::KeyValue>,
) {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(from).unwrap()).unwrap();
    let metadata: Vec<parquet::file::metadata::KeyValue> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter_map(edit)
        .collect();
    let schema = builder.schema().clone();
    let batches: Vec<_> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(compression)
        .set_key_value_metadata(Some(metadata))
        .build();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(to).unwrap(), schema, Some(props)).unwrap();
    for batch in &batches {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
}

/// [`trained`], with the root's path and an SQL file listing its runs.
fn trained_with_query() -> (Workspace, String, String, String) {
    let (ws, run_id) = trained();
    let root = ws.root().display().to_string();
    let sql = ws.path().join("q.sql");
    std::fs::write(&sql, "SELECT run_id FROM runs").unwrap();
    let sql = sql.display().to_string();
    (ws, run_id, root, sql)
}

/// The second hostile pass: each of its findings, as it was reproduced.
#[test]
fn the_second_hostile_passs_findings_stay_fixed() {
    let (ws, run_id, root, sql) = trained_with_query();
    // No output among a dataset's files, whatever command writes it, nor onto a directory.
    let labels = ws.data_dir().join("mnist/train-labels-idx1-ubyte");
    let before = std::fs::read(&labels).unwrap();
    ws.fstream(&["query", &sql, "--root", &root, "-o", labels.to_str().unwrap()])
        .assert_exit_code(2)
        .assert_error_contains("which holds a dataset's files");
    let order = ws.path().join("order.parquet").display().to_string();
    ws.fstream(&["export", &order, "--to", "npy", "--output", labels.to_str().unwrap()])
        .assert_exit_code(2);
    assert_eq!(std::fs::read(&labels).unwrap(), before);
    ws.fstream(&["query", &sql, "--root", &root, "-o", &root])
        .assert_exit_code(2)
        .assert_error_contains(&format!("--output {root}: is a directory"));
    // A full disk fails `report` (exit 1) and keeps the previous page.
    let out = ws.path().join("report");
    let report = |limit: &str| {
        let command = format!(
            "{limit}exec '{}' report --root '{root}' --data-dir '{}' --output '{}'",
            env!("CARGO_BIN_EXE_fstream"),
            ws.data_dir().display(),
            out.display()
        );
        Command::new("sh").args(["-c", &command]).output().unwrap()
    };
    assert!(report("").status.success());
    let page = std::fs::read(out.join("index.html")).unwrap();
    let failed = report("ulimit -f 8; ");
    assert_eq!(failed.status.code(), Some(1), "{}", String::from_utf8_lossy(&failed.stderr));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("File too large"));
    assert_eq!(std::fs::read(out.join("index.html")).unwrap(), page);
    // An export that hits the limit is a runtime failure, as every other output.
    let command = format!(
        "ulimit -f 0; exec '{}' export '{order}' --to reference-pickle --output '{}'",
        env!("CARGO_BIN_EXE_fstream"),
        ws.path().join("big.pkl").display()
    );
    let failed = Command::new("sh").args(["-c", &command]).output().unwrap();
    assert_eq!(failed.status.code(), Some(1), "{}", String::from_utf8_lossy(&failed.stderr));
    // A runs file copied under another name is not a second run.
    let copy = ws.root().join("runs/dup.parquet");
    std::fs::copy(ws.root().join(format!("runs/{run_id}.parquet")), &copy).unwrap();
    let named = format!("{}: holds 1 row(s), of run {run_id}", copy.display());
    ws.fstream(&["query", &sql, "--root", &root]).assert_exit_code(1).assert_error_contains(&named);
    let verify = ws.fstream(&["verify", "--root", &root]);
    verify.assert_exit_code(1);
    assert!(verify.stdout().contains(&format!("damage\t{}\tholds 1 row(s)", copy.display())));
    std::fs::remove_file(&copy).unwrap();
    // A damaged footer of a runs file is an error naming it, never a panic.
    let runs_file = ws.root().join(format!("runs/{run_id}.parquet"));
    let good = std::fs::read(&runs_file).unwrap();
    for at in (good.len().saturating_sub(9000)..good.len() - 8).step_by(23) {
        let mut bytes = good.clone();
        bytes[at] ^= 0x01;
        std::fs::write(&runs_file, &bytes).unwrap();
        for command in [["runs", "--root", &root], ["verify", "--root", &root]] {
            let run = ws.fstream(&command);
            let stderr = run.stderr();
            let code = run.output.status.code();
            assert!(matches!(code, Some(0..=2)), "byte {at}, {command:?}: {code:?} {stderr}");
            assert!(!stderr.contains("panicked"), "byte {at}, {command:?}: {stderr}");
            assert!(stderr.lines().filter(|l| l.starts_with("fstream: error:")).count() <= 1);
        }
    }
    std::fs::write(&runs_file, &good).unwrap();
    // rm checks every id and every path before it removes anything.
    let root_files = snapshot(&ws.root());
    ws.fstream(&["rm", &run_id, "nosuch", "--root", &root])
        .assert_exit_code(2)
        .assert_error_contains("no run nosuch under");
    let elsewhere = ws.path().join("checkpoints-elsewhere");
    std::fs::rename(ws.root().join("checkpoints"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, ws.root().join("checkpoints")).unwrap();
    ws.fstream(&["rm", &run_id, "--root", &root])
        .assert_exit_code(2)
        .assert_error_contains("nothing was removed");
    std::fs::remove_file(ws.root().join("checkpoints")).unwrap();
    std::fs::rename(&elsewhere, ws.root().join("checkpoints")).unwrap();
    assert_eq!(snapshot(&ws.root()), root_files);
    // A sorting file without a fingerprint (another tool's, snappy-compressed) is read, with a
    // warning that nothing checks its data.
    let legacy = ws.path().join("legacy.parquet");
    rewrite_parquet(
        &ws.path().join("order.parquet"),
        &legacy,
        parquet::basic::Compression::SNAPPY,
        |kv| (kv.key != "fstream.data_sha256").then_some(kv),
    );
    let compare = ws.fstream(&["compare", &order, legacy.to_str().unwrap()]);
    compare.assert_ok();
    assert!(compare.stderr().contains("legacy.parquet: records no data fingerprint"));
    // Grid values equal once parsed are one run, refused as such.
    let spec = ws.path().join("dup.toml");
    std::fs::write(
        &spec,
        "name = \"dup\"\n[train]\ndataset = \"mnist\"\n\n[[stage]]\nname = \"base\"\n[stage.grid]\nweight_decay = [0, 0.0, 0e0]\n",
    )
    .unwrap();
    ws.fstream(&["sweep", "status", spec.to_str().unwrap(), "--root", &root])
        .assert_exit_code(2)
        .assert_error_contains("are the same run");
    // A query's engine failure names the query.
    let csv = ws.path().join("bad.csv");
    std::fs::write(&csv, "a,b\n1,2,3\n").unwrap();
    let read = ws.path().join("read.sql");
    std::fs::write(&read, format!("SELECT * FROM read_csv('{}')", csv.display())).unwrap();
    let run = ws.fstream(&["query", read.to_str().unwrap(), "--root", &root]);
    assert_ne!(run.output.status.code(), Some(0));
    run.assert_error_contains(&format!("{}: ", read.display()));
}

/// The third hostile pass: each of its findings, as it was reproduced.
#[test]
fn the_third_hostile_passs_findings_stay_fixed() {
    let (ws, run_id, root, sql) = trained_with_query();
    // Outputs never replace a FIFO or a symlink (nor, as root, a device: `-o /dev/null`).
    let fifo = ws.path().join("fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
    let target = ws.path().join("target.txt");
    std::fs::write(&target, "keep").unwrap();
    let link = ws.path().join("link.csv");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for output in [&fifo, &link] {
        ws.fstream(&["query", &sql, "--root", &root, "-o", output.to_str().unwrap()])
            .assert_exit_code(2)
            .assert_error_contains("exists and is not a regular file");
    }
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    // Inputs that are not regular files are errors, not endless reads.
    let data = ws.data_dir().display().to_string();
    for args in [
        vec!["query", "/dev/zero", "--root", &root],
        vec!["import-reference", "--data-dir", &data, "--output-dir", &root, "/dev/zero"],
        vec!["sweep", "status", "/dev/zero", "--root", &root],
    ] {
        ws.fstream(&args).assert_exit_code(2).assert_error_contains("/dev/zero: is a device");
    }
    // A footer whose checksums lost an entry (one flipped bit in a key) is damage, not a
    // footer that checks less.
    let runs_file = ws.root().join(format!("runs/{run_id}.parquet"));
    let good = std::fs::read(&runs_file).unwrap();
    let edited = ws.path().join("edited.parquet");
    for (from, to, expected) in [
        ("\"dynamics\"", "\"dynamicr\"", "unknown field `dynamicr`"),
        ("\"2\":", "\"9\":", "no checksum of the presentations of epochs 2"),
    ] {
        rewrite_parquet(
            &runs_file,
            &edited,
            parquet::basic::Compression::ZSTD(Default::default()),
            |mut kv| {
                kv.value = kv.value.map(|v| v.replace(from, to));
                Some(kv)
            },
        );
        std::fs::copy(&edited, &runs_file).unwrap();
        let verify = ws.fstream(&["verify", "--root", &root]);
        verify.assert_exit_code(1);
        assert!(verify.stdout().contains(expected), "{}", verify.stdout());
        ws.fstream(&["train", "--resume", &run_id, "--output-dir", &root, "--epochs", "3"])
            .assert_exit_code(1)
            .assert_error_contains("fstream.checksums");
        std::fs::write(&runs_file, &good).unwrap();
    }
    ws.fstream(&["verify", "--root", &root]).assert_ok();
    // A reference pickle without removal in its name presents every example.
    let good_stats: &[f64] = &[0.5, 0.25];
    let pickle = ws.path().join("dataset_mnist__remove_n_0__seed_7__stats_dict.pkl");
    std::fs::write(&pickle, stats_pickle(&[(0, good_stats, &[1.0, 0.0], good_stats)])).unwrap();
    ws.fstream(&[
        "import-reference",
        "--data-dir",
        &data,
        "--output-dir",
        &root,
        pickle.to_str().unwrap(),
    ])
    .assert_exit_code(2)
    .assert_error_contains("holds 1 of mnist's 40 training examples, but its name says no removal");
    // plot removal averages each run once, as every other command counts it.
    ws.train(&["--epochs", "2"]).assert_ok();
    let removal = ws.path().join("removal.png").display().to_string();
    ws.fstream(&["plot", "removal", "--root", &root, "--output", &removal])
        .assert_exit_code(2)
        .assert_error_contains("are the same run (configuration and seed 1)");
    // plot examples: at least one of each; the most forgotten were forgotten.
    let examples = ws.path().join("examples.png").display().to_string();
    let plot_examples = |count: &str| {
        let predicate = format!("run_id = '{run_id}'");
        ws.fstream(&[
            "plot",
            "examples",
            "--root",
            &root,
            "--where",
            &predicate,
            "--data-dir",
            &data,
            "--count",
            count,
            "--output",
            &examples,
        ])
    };
    plot_examples("0").assert_exit_code(2).assert_error_contains("--count");
    plot_examples("1000").assert_ok();
    let csv = std::fs::read_to_string(ws.path().join("examples.csv")).unwrap();
    let forgotten: Vec<&str> = csv.lines().filter(|l| l.starts_with("most forgotten")).collect();
    assert!(!forgotten.is_empty() && forgotten.iter().all(|l| !l.ends_with(",0")), "{csv}");
    // report --output onto a file; a seed no engine can compare.
    let file = ws.path().join("order.csv").display().to_string();
    ws.fstream(&["report", "--root", &root, "--output", &file])
        .assert_exit_code(2)
        .assert_error_contains(&format!("--output {file}: exists and is not a directory"));
    ws.train(&["--seed", "9223372036854775808"])
        .assert_exit_code(2)
        .assert_error_contains("expected an integer from 0 to 9223372036854775807");
}

/// The fourth hostile pass: each of its findings, as it was reproduced.
#[test]
fn the_fourth_hostile_passs_findings_stay_fixed() {
    let (ws, run_id, root, sql) = trained_with_query();
    let before = snapshot(ws.path());
    // A root's table directory on another disk (a symlink) is still the root's.
    let elsewhere = ws.path().join("runs-disk");
    std::fs::rename(ws.root().join("runs"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, ws.root().join("runs")).unwrap();
    let into = elsewhere.display().to_string();
    ws.fstream(&["order", "--root", &root, "--output-dir", &into, "--output-name", &run_id])
        .assert_exit_code(2)
        .assert_error_contains("a table directory of the root");
    ws.fstream(&["query", &sql, "--root", &root, "-o", &format!("{into}/zz.parquet")])
        .assert_exit_code(2)
        .assert_error_contains("a table directory of the root");
    std::fs::remove_file(ws.root().join("runs")).unwrap();
    std::fs::rename(&elsewhere, ws.root().join("runs")).unwrap();
    assert_eq!(snapshot(ws.path()), before);
    // report checks every file it may write before it writes one.
    let out = ws.path().join("rep");
    std::fs::create_dir_all(out.join("mnist-data-map.png")).unwrap();
    ws.fstream(&["report", "--root", &root, "--output", out.to_str().unwrap()])
        .assert_exit_code(2)
        .assert_error_contains("mnist-data-map.png: is a directory");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1, "nothing else was written");
    // A footer key changed by a flipped bit is damage, not a run without checksums.
    let runs_file = ws.root().join(format!("runs/{run_id}.parquet"));
    let good = std::fs::read(&runs_file).unwrap();
    let edited = ws.path().join("edited.parquet");
    rewrite_parquet(
        &runs_file,
        &edited,
        parquet::basic::Compression::ZSTD(Default::default()),
        |mut kv| {
            kv.key = kv.key.replace("fstream.checksums", "fstream.checksumz");
            Some(kv)
        },
    );
    std::fs::copy(&edited, &runs_file).unwrap();
    let verify = ws.fstream(&["verify", "--root", &root]);
    verify.assert_exit_code(1);
    assert!(verify.stdout().contains("the key 'fstream.checksumz'"), "{}", verify.stdout());
    ws.order("flipped", &[]).assert_exit_code(1).assert_error_contains("fstream.checksumz");
    std::fs::write(&runs_file, &good).unwrap();
    // A bare output name is written beside the command, figure and CSV.
    let plot = ws.fstream(&["plot", "training-curves", "--root", &root, "--output", "bare.png"]);
    plot.assert_ok();
    assert!(ws.path().join("bare.png").is_file() && ws.path().join("bare.csv").is_file());
    // A dataset file that is a device is named as such, not as missing.
    let data = Workspace::new();
    data.write_tiny_mnist(20, 5);
    let images = data.data_dir().join("mnist/train-images-idx3-ubyte");
    std::fs::remove_file(&images).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &images).unwrap();
    data.train(&["--epochs", "1"])
        .assert_exit_code(2)
        .assert_error_contains("train-images-idx3-ubyte: is a device, FIFO or socket");
    // An engine failure is one line, without the engine's plan.
    let cast = ws.path().join("cast.sql");
    std::fs::write(&cast, "SELECT CAST('x' AS INT) AS n FROM runs").unwrap();
    let run = ws.fstream(&["query", cast.to_str().unwrap(), "--root", &root]);
    assert_ne!(run.output.status.code(), Some(0));
    run.assert_error_contains("cast.sql");
    assert!(!run.stderr().contains("Resolved plan"), "{}", run.stderr());
}

/// The fifth hostile pass: stray files in a root's table directories are never counted, and
/// `verify` reports what readers refuse.
#[test]
fn the_fifth_hostile_passs_findings_stay_fixed() {
    let (ws, run_id, root, _) = trained_with_query();
    let count = |table: &str| {
        let sql = ws.path().join(format!("{table}.sql"));
        std::fs::write(&sql, format!("SELECT COUNT(*) AS n FROM {table}")).unwrap();
        ws.query_csv(&sql)
    };
    let clean: Vec<String> =
        ["presentations", "examples", "dynamics", "epochs"].iter().map(|t| count(t)).collect();
    let partitions = ws.root().join("presentations/dataset=mnist");
    let epoch_1 = partitions.join(format!("run_id={run_id}/epoch=1"));
    for stray in [".x", ".."] {
        let dir = partitions.join(format!("run_id={stray}"));
        std::fs::create_dir_all(&dir).unwrap();
        crate::util::copy_dir(&epoch_1, &dir.join("epoch=1"));
    }
    crate::util::copy_dir(&epoch_1, &partitions.join(format!("run_id={run_id}/epoch=7")));
    std::fs::copy(epoch_1.join("part-0.parquet"), epoch_1.join("part-1.parquet")).unwrap();
    for table in ["examples", "dynamics", "epochs"] {
        let file = ws.root().join(format!("{table}/{run_id}.parquet"));
        for stray in ["x.parquet", ".x.parquet", "..parquet"] {
            std::fs::copy(&file, ws.root().join(table).join(stray)).unwrap();
        }
    }
    let counted: Vec<String> =
        ["presentations", "examples", "dynamics", "epochs"].iter().map(|t| count(t)).collect();
    assert_eq!(counted, clean, "stray files were counted");
    let verify = ws.fstream(&["verify", "--root", &root]);
    assert!(verify.stdout().contains("not the partition's part-0.parquet"), "{}", verify.stdout());
    // A runs file whose name is not a run id: every reader refuses the root, and so does verify.
    let runs = ws.root().join("runs");
    std::fs::copy(runs.join(format!("{run_id}.parquet")), runs.join("..parquet")).unwrap();
    let verify = ws.fstream(&["verify", "--root", &root]);
    verify.assert_exit_code(1);
    assert!(verify.stdout().contains("its name is not a run id"), "{}", verify.stdout());
    ws.order("refused", &[]).assert_exit_code(1);
}
