//! Sweeps: the paper's experiments as grids of runs described by a TOML spec ([`spec`]),
//! expanded into idempotent tasks with deterministic run ids ([`plan`]), whose progress is
//! read from the root ([`status`]), and run on this machine ([`local`]) or submitted to Slurm
//! ([`slurm`]), or printed for any other scheduler.

pub mod local;
pub mod plan;
pub mod slurm;
pub mod spec;
pub mod status;

pub use plan::{Sweep, Task, TaskKind};
pub use spec::SweepSpec;

/// `text` as one shell word: as is when it holds only safe characters, else single-quoted.
pub fn shell_quoted(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// A task's command line as a shell runs it, with `program` first.
pub fn command_line(program: &std::path::Path, task: &Task) -> String {
    std::iter::once(program.display().to_string())
        .chain(task.args.iter().cloned())
        .map(|a| shell_quoted(&a))
        .collect::<Vec<_>>()
        .join(" ")
}
