//! The `fstream` binary: runs the CLI, prints errors as one line on stderr and maps them to the
//! documented exit codes (0 success, 1 runtime failure, 2 usage or input error).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // A file-size limit (`ulimit -f`) must fail the write that hits it, which the writer then
    // reports and records in the run's status, instead of killing the process.
    // SAFETY: setting a signal to SIG_IGN at start-up, before any thread exists.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let Err(error) = cli::run() else { return ExitCode::SUCCESS };
    let broken_pipe = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    let code = match error.chain().find_map(|cause| cause.downcast_ref::<fstream::Error>()) {
        Some(fstream::Error::Interrupted) => cli::interrupted_exit_code().unwrap_or(130),
        Some(error) => error.exit_code(),
        None => 1,
    };
    eprintln!("fstream: error: {}", one_line(&error));
    ExitCode::from(code)
}

/// The error and its causes on one line. Library errors already show their source, so a cause
/// whose text ends the message so far is not repeated.
fn one_line(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string().replace('\n', " ");
        if !message.ends_with(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    message
}
