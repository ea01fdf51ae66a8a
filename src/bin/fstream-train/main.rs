//! The `fstream-train` binary: fstream's command line with training in this process. `fstream`
//! hands `train` over to it (with the same arguments), so that only training loads libtorch.

mod resume;
mod train;

fn main() -> std::process::ExitCode {
    fstream_cli::main(fstream_cli::Training::InProcess {
        train: train::run,
        libtorch_version: fstream_torch::LIBTORCH_VERSION,
    })
}
