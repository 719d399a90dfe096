//! Count n-gram language models: modified Kneser-Ney with KenLM's discount estimation, add-k and
//! stupid backoff; pruning; ARPA in and out; a binary format that loads by `mmap`; queries,
//! perplexity and sampling.
//!
//! The pipeline, and the data structure behind each step:
//!
//! 1. [`corpus`]: text becomes a stream of word ids. Every line is a sentence; `<unk>` is id 0,
//!    `<s>` id 1, `</s>` id 2, other words get ids in order of first appearance (as in KenLM).
//! 2. [`count`]: every N-gram of the padded sentence `<s>^(N-1) w1 .. wk </s>` is packed into one
//!    `u128` *in reverse word order* (last word in the highest bits). Sorting these integers puts
//!    the n-grams in *suffix order*, so all n-grams sharing a suffix are adjacent. Sorted runs are
//!    cut to fit a memory budget and spilled to disk when they do not fit; a k-way merge joins them.
//! 3. [`count::adjust`]: one pass over the suffix-sorted N-grams yields every lower order with its
//!    Kneser-Ney *adjusted count* (the number of distinct left extensions), exactly as KenLM does.
//! 4. [`kn`]: discounts by the closed form of Chen and Goodman (eq. 26), interpolation weights per
//!    context, and the interpolated probabilities, order by order, written straight into the query
//!    structure: one open-addressing hash table per order keyed by a 64-bit hash of the word ids
//!    (KenLM's "probing" layout).
//!    [`stream`] does the same estimation from sorted temporary files ([`extsort`]), order by
//!    order, so a whole build stays inside a memory budget; it is what [`build::build_to`] uses.
//! 5. [`model`]: that structure *is* the binary file: building, ARPA loading and `mmap` loading all
//!    end in the same bytes, so querying has one code path.
//! 6. [`trie`]: the smaller layout, KenLM's trie: bit-packed records per order sorted by reversed
//!    n-gram, compressed pointers, optionally [`quantize`]d values; made from ARPA text.
//!    [`lm`] is the one query interface over both layouts ([`Scorer`], [`AnyModel`]).

// Index loops over parallel arrays (keys, counts, marks) read better than zipped iterators.
#![allow(clippy::needless_range_loop)]
// Record readers and merges have a fallible `next() -> Result<Option<T>>`, which `Iterator`
// cannot express.
#![allow(clippy::should_implement_trait)]

pub mod arpa;
pub mod build;
pub mod corpus;
pub mod count;
pub mod extsort;
pub mod hash;
pub mod input;
pub mod kn;
pub mod lm;
pub mod model;
pub mod quantize;
pub mod shard;
pub mod stream;
pub mod trie;
pub mod util;

pub use corpus::{Corpus, CorpusOptions};
pub use kn::{BuildOptions, Discount, Smoothing};
pub use lm::{AnyModel, Scorer};
pub use model::{Model, PplStats, State};
pub use trie::TrieModel;

use std::path::PathBuf;

/// Everything that can go wrong, each with the file and, where there is one, the line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The I/O error is part of the message (not a `source`), so it is printed once.
    #[error("cannot read {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("cannot write {path}: {err}")]
    Write { path: PathBuf, err: std::io::Error },
    #[error("{path}:{line}: {msg}")]
    Format {
        path: PathBuf,
        line: u64,
        msg: String,
    },
    #[error("{path}: {msg}")]
    File { path: PathBuf, msg: String },
    #[error("{0}")]
    Config(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Id of `<unk>`: every word not in the vocabulary.
pub const UNK: u32 = 0;
/// Id of `<s>`: the start of a sentence; only ever a context, never predicted.
pub const BOS: u32 = 1;
/// Id of `</s>`: the end of a sentence; predicted like a word.
pub const EOS: u32 = 2;
