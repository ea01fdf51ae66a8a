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

#[test]
fn download_with_a_wrong_checksum_fails_and_leaves_nothing() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mnist", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut stream = listener.incoming().next().unwrap().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 2 {
            line.clear();
        }
        let body = b"not mnist";
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
    });
    let ws = Workspace::new();
    let data = ws.data_dir().display().to_string();
    let run = ws.fstream(&[
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        &data,
        "--mirror",
        &url,
        "--epochs",
        "1",
    ]);
    run.assert_exit_code(1)
        .assert_error_contains("checksum mismatch: expected f68b3c2dcbeaaa9fbdd348bbdeb94873");
    let left: Vec<_> = std::fs::read_dir(ws.data_dir().join("mnist")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
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
    let clap_error = ws.fstream(&["train", "--dataset", "svhn"]);
    clap_error.assert_exit_code(2);
    assert!(clap_error.stderr().contains("unknown dataset 'svhn'"), "{}", clap_error.stderr());
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
