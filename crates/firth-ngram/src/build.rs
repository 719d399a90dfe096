//! The n-gram build from corpus to files: counting inside the memory budget, then Kneser-Ney
//! streamed through temporary files ([`crate::stream`]) or estimated in memory
//! ([`crate::kn`]), and the ARPA and binary files written.

use crate::count::{self, CountOptions};
use crate::kn::{build_owned, checked_setup, vocab_limit_mask, BuildOptions, Built, Smoothing};
use crate::stream::{Outputs, Summary};
use crate::{Corpus, Error, Result};

/// Counts `corpus`, estimates the model and writes it to `out`, inside `opts.memory`.
///
/// Counting fills a buffer sized from the budget (what the corpus's token stream leaves of it)
/// and spills sorted runs; the Kneser-Ney estimation then streams through sorted temporary
/// files ([`crate::stream`]) and writes the ARPA and binary files as it goes. With
/// `opts.external == Some(false)` the model is instead built in memory as by [`build_owned`]
/// (byte-identical files; on PTB and gut8 it was no faster and took 2-4x the memory, so it is
/// not the default). Add-k and stupid backoff are always built in memory.
pub fn build_to(
    mut corpus: Corpus,
    opts: &BuildOptions,
    out: &Outputs,
    progress: &mut dyn FnMut(&str),
) -> Result<Summary> {
    let kn = matches!(opts.smoothing, Smoothing::KneserNey);
    if !kn || opts.external == Some(false) {
        let built = build_owned(corpus, opts, progress)?;
        return write_built(built, out, 0, progress);
    }
    let (thresholds, pack) = checked_setup(&corpus, opts)?;
    if !opts.temp_dir.is_dir() {
        return Err(Error::File {
            path: opts.temp_dir.clone(),
            msg: "the directory for temporary files does not exist or is not a directory; create it or give another with --temp-dir / -T".into(),
        });
    }
    let pruned_words = vocab_limit_mask(&corpus, opts.vocab_limit);
    // What stays in memory besides the sort buffers: the vocabulary (strings, the id hash map
    // and the per-word arrays, about 100 bytes a word) and, while counting, the token stream.
    let vocab_bytes = corpus
        .words
        .iter()
        .map(|w| w.len() as u64 + 100)
        .sum::<u64>();
    let tokens_bytes = corpus.tokens.len() as u64 * 4;
    let slack = 16 << 20;
    let count_mem = opts
        .memory
        .saturating_sub(vocab_bytes + tokens_bytes + slack);
    progress("counting");
    let runs = count::count_runs(
        &corpus.tokens,
        &pack,
        &CountOptions {
            memory: count_mem,
            temp_dir: opts.temp_dir.clone(),
        },
    )?;
    corpus.tokens = Vec::new();
    crate::stream::estimate(
        &corpus.words,
        runs,
        &pack,
        &thresholds,
        pruned_words.as_deref(),
        opts,
        opts.memory.saturating_sub(vocab_bytes + slack),
        out,
        progress,
    )
}

fn write_built(
    built: Built,
    out: &Outputs,
    count_runs: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<Summary> {
    if let Some(p) = out.arpa {
        progress("writing ARPA");
        built.write_arpa(p)?;
    }
    let summary = Summary {
        counts: built.model.counts().to_vec(),
        discounts: built.discounts.clone(),
        stats: built.stats.clone(),
        external: false,
        count_runs,
    };
    if let Some(p) = out.binary {
        progress("writing binary");
        let chars = out.flags & crate::model::FLAG_CHARS != 0;
        built.model.with_chars(chars).write_binary(p)?;
    }
    Ok(summary)
}
