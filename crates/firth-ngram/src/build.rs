//! The n-gram build from corpus to files: counting inside the memory budget, then Kneser-Ney
//! streamed through temporary files ([`crate::stream`]) or estimated in memory
//! ([`crate::kn`]), and the ARPA and binary files written.

use crate::count::{self, CountOptions};
use crate::kn::{build_owned, checked_setup, vocab_limit_mask, BuildOptions, Built, Smoothing};
use crate::stream::{Outputs, Summary};
use crate::{Corpus, CorpusOptions, Error, Result};
use std::path::{Path, PathBuf};

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

/// Progress of [`build_files`].
pub enum BuildEvent<'a> {
    /// Bytes of input read so far, of `total` (the sizes of the named files; standard input
    /// adds to `bytes` but not to `total`).
    Read { bytes: u64, total: u64 },
    /// The whole corpus is read; estimation starts.
    Corpus(&'a CorpusStats),
    /// A build stage starts ("counting", "writing ARPA", ...).
    Stage(&'a str),
}

/// The size of a corpus as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CorpusStats {
    pub sentences: u64,
    /// Word tokens, not counting `</s>`.
    pub word_tokens: u64,
    /// Distinct words, including `<unk>`, `<s>` and `</s>`.
    pub types: usize,
}

/// What [`build_files`] did.
#[derive(Clone, Debug)]
pub struct FileSummary {
    pub corpus: CorpusStats,
    pub build: Summary,
    /// Size of the binary model written, if one was.
    pub binary_bytes: Option<u64>,
}

/// `firth ngram build` as one call: reads `files` (none, or `-`, is standard input, as lmplz
/// reads it), builds the model inside `opts.memory` and writes it to `out`.
pub fn build_files(
    files: &[PathBuf],
    corpus_options: CorpusOptions,
    opts: &BuildOptions,
    out: &Outputs,
    on: &mut dyn FnMut(BuildEvent<'_>),
) -> Result<FileSummary> {
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    let total: u64 = files
        .iter()
        .filter(|p| p.as_path() != Path::new("-"))
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    on(BuildEvent::Read { bytes: 0, total });
    let corpus = Corpus::read(files, corpus_options, &mut |bytes| {
        on(BuildEvent::Read { bytes, total })
    })?;
    let stats = CorpusStats {
        sentences: corpus.sentences,
        word_tokens: corpus.word_tokens,
        types: corpus.vocab_size(),
    };
    on(BuildEvent::Corpus(&stats));
    let build = build_to(corpus, opts, out, &mut |stage| on(BuildEvent::Stage(stage)))?;
    let binary_bytes = out
        .binary
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len());
    Ok(FileSummary {
        corpus: stats,
        build,
        binary_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_files_reads_builds_writes_and_reports() {
        let dir = std::env::temp_dir().join(format!("firth-ngram-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = dir.join("a.txt");
        std::fs::write(&text, "the cat sat\nthe dog sat\nthe cat ran\n").unwrap();
        let (arpa, bin) = (dir.join("m.arpa"), dir.join("m.bin"));
        let out = Outputs {
            arpa: Some(&arpa),
            binary: Some(&bin),
            flags: 0,
        };
        let opts = BuildOptions {
            order: 2,
            discount_fallback: Some(crate::kn::Discount::FALLBACK),
            temp_dir: dir.clone(),
            ..BuildOptions::default()
        };
        let (mut read, mut stages, mut corpus) = (0, Vec::new(), None);
        let s = build_files(
            std::slice::from_ref(&text),
            CorpusOptions::default(),
            &opts,
            &out,
            &mut |ev| match ev {
                BuildEvent::Read { bytes, total } => {
                    assert_eq!(total, 36);
                    read = bytes;
                }
                BuildEvent::Corpus(c) => corpus = Some(*c),
                BuildEvent::Stage(st) => stages.push(st.to_string()),
            },
        )
        .unwrap();
        assert_eq!(read, 36);
        // the cat sat dog ran + <unk> <s> </s>.
        let want = CorpusStats {
            sentences: 3,
            word_tokens: 9,
            types: 8,
        };
        assert_eq!(corpus, Some(want));
        assert_eq!(s.corpus, want);
        assert!(stages.iter().any(|s| s == "counting"), "{stages:?}");
        // Unigrams: the words, <s>, </s>, <unk>.
        assert_eq!(s.build.counts[0], 8);
        assert_eq!(s.binary_bytes, Some(std::fs::metadata(&bin).unwrap().len()));
        let arpa = std::fs::read_to_string(&arpa).unwrap();
        assert!(arpa.contains("\\data\\\nngram 1=8\n"), "{arpa}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn smoothing_names_and_fallback_discounts() {
        use crate::kn::Discount;
        assert_eq!(
            Smoothing::from_name("kn", 1.0, 0.4),
            Ok(Smoothing::KneserNey)
        );
        assert_eq!(
            Smoothing::from_name("laplace", 0.5, 0.4),
            Ok(Smoothing::AddK(0.5))
        );
        assert_eq!(
            Smoothing::from_name("stupid-backoff", 1.0, 0.3),
            Ok(Smoothing::StupidBackoff(0.3))
        );
        assert!(Smoothing::from_name("witten-bell", 1.0, 0.4)
            .unwrap_err()
            .contains("use kn, add-k or stupid"));
        assert_eq!(Discount::fallback_with(&[]), Discount::FALLBACK);
        assert_eq!(
            Discount::fallback_with(&[0.7, 1.1]),
            Discount([0.0, 0.7, 1.1, 1.5])
        );
    }
}
