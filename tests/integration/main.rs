//! fstream's integration tests, one binary (each test binary links all of polars).
//! Tests write tiny MNIST- and CIFAR-format datasets, train for real with one libtorch thread per run,
//! and check the tables against independent computations.

mod cifar;
mod cli;
mod crash;
mod dynamics;
mod import;
mod interop;
mod operate;
mod plot;
mod query;
mod safety;
mod scores;
mod slurm;
mod store;
mod sweep;
mod train;
mod util;
