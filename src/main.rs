//! The `fstream` binary: every command, without linking libtorch; `train` is handed over to
//! `fstream-train`.

fn main() -> std::process::ExitCode {
    fstream_cli::main(fstream_cli::Training::HandOver)
}
