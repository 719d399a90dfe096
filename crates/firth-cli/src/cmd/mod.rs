pub mod classify;
pub mod insight;
pub mod lm;
pub mod ngram;
pub mod quickstart;
pub mod tag;
pub mod translate;
pub mod vectors;

use anyhow::Result;
use clap::Args as ClapArgs;

/// Flags every training command takes (`firth lm train`, `tag train`, `classify train`).
#[derive(ClapArgs, Clone, Debug)]
pub struct RunFlags {
    /// Random seed for initialisation, shuffling, dropout and sampling. Runs are bit-for-bit
    /// reproducible with --threads 1. With T > 1 threads each batch is split over T workers
    /// (data parallelism): sums then run in another order and dropout masks depend on T.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = crate::validate::at_least_1)]
    pub threads: Option<usize>,
    /// Print one JSON summary on stdout at the end.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// Sets the size of the global thread pool used by the matrix products (an error if this
/// process already sized it differently; see [`firth_nn::par::set_global_threads`]).
pub fn set_threads(threads: Option<usize>) -> Result<()> {
    let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    firth_nn::par::set_global_threads(n)
}
