//! The `fstream` binary: runs the CLI, prints errors as one line on stderr and maps them to the
//! documented exit codes (0 success, 1 runtime failure, 2 usage or input error).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let Err(error) = cli::run() else { return ExitCode::SUCCESS };
    let broken_pipe = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    let code = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<fstream::Error>())
        .map_or(1, fstream::Error::exit_code);
    let message = format!("{error:#}").replace('\n', " ");
    eprintln!("fstream: error: {message}");
    ExitCode::from(code)
}
