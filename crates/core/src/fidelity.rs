//! Corrected or faithful semantics, where the reference has a bug (docs/semantics.md): one
//! switch that training and counting both read, so it lives beside neither.

/// Which semantics to follow where the reference has a bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fidelity {
    /// fstream's corrected behaviour: one permutation for all seeds, the standard learning-rate
    /// schedule, a never-learned example counting its actual presentations.
    #[default]
    Corrected,
    /// The reference's behaviour: a permutation per seed (bug 2), learning-rate drops one
    /// epoch late (bug 5), and a never-learned penalty of `--epochs` (default 200) whatever
    /// the runs trained (bug 4).
    Faithful,
}
