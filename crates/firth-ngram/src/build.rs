//! The n-gram build from corpus to files: counting inside the memory budget, then Kneser-Ney
//! streamed through temporary files ([`crate::stream`]) or estimated in memory
//! ([`crate::kn`]), and the ARPA and binary files written.

use crate::count::{self, CountOptions, Packing, Runs};
use crate::extsort::TempFile;
use crate::input::Stdin;
use crate::kn::{self, checked_setup, BuildOptions, Built, Smoothing};
use crate::stream::{Outputs, Summary};
use crate::{Corpus, CorpusOptions, Error, Result};
use std::path::{Path, PathBuf};

/// Counts `corpus` (its token stream, from [`Corpus::read`] or [`Corpus::from_text`]),
/// estimates the model and writes it to `out`, inside `opts.memory`. [`build_files`] does the
/// same from files without holding the token stream.
pub fn build_to(
    mut corpus: Corpus,
    opts: &BuildOptions,
    out: &Outputs,
    progress: &mut dyn FnMut(&str),
) -> Result<Summary> {
    let (_, pack) = checked_setup(&corpus, opts)?;
    check_temp_dir(opts)?;
    let tokens_bytes = corpus.tokens.len() as u64 * 4;
    let count_opts = count_options(&corpus, opts, tokens_bytes);
    progress("counting");
    let runs = count::count_runs(&corpus.tokens, &pack, &count_opts)?;
    corpus.tokens = Vec::new();
    estimate_counted(&corpus, runs, &pack, opts, out, progress)
}

/// Memory kept for the vocabulary (strings, the id hash map and the per-word arrays: about 100
/// bytes a word) and for what else is small and alive through the build.
fn fixed_bytes(vocab: &Corpus) -> u64 {
    let slack = 16 << 20;
    vocab
        .words
        .iter()
        .map(|w| w.len() as u64 + 100)
        .sum::<u64>()
        + slack
}

/// The counting buffer gets what the budget leaves after the vocabulary and `other` bytes.
pub(crate) fn count_options(vocab: &Corpus, opts: &BuildOptions, other: u64) -> CountOptions {
    CountOptions {
        memory: opts.memory.saturating_sub(fixed_bytes(vocab) + other),
        temp_dir: opts.temp_dir.clone(),
    }
}

pub(crate) fn check_temp_dir(opts: &BuildOptions) -> Result<()> {
    if !opts.temp_dir.is_dir() {
        return Err(Error::File {
            path: opts.temp_dir.clone(),
            msg: "the directory for temporary files does not exist or is not a directory; create it or give another with --temp-dir / -T".into(),
        });
    }
    Ok(())
}

/// Estimates the model of the counted `runs` (N-grams packed by `pack` over `vocab`'s ids) and
/// writes it to `out`: Kneser-Ney streams through sorted temporary files ([`crate::stream`]);
/// with `opts.external == Some(false)`, and for add-k and stupid backoff, the counts are
/// merged into memory and the model is estimated there (byte-identical files; on PTB and gut8
/// it was no faster and took 2-4x the memory, so it is not the default). The single build,
/// [`build_to`], and the merge of shard counts ([`crate::shard`]) all end here.
pub(crate) fn estimate_counted(
    vocab: &Corpus,
    runs: Runs,
    pack: &Packing,
    opts: &BuildOptions,
    out: &Outputs,
    progress: &mut dyn FnMut(&str),
) -> Result<Summary> {
    let (thresholds, _) = checked_setup(vocab, opts)?;
    let pruned_words = kn::pruned_words(vocab, opts)?;
    let kn = matches!(opts.smoothing, Smoothing::KneserNey);
    let memory = opts.memory.saturating_sub(fixed_bytes(vocab));
    if !kn || opts.external == Some(false) {
        let count_runs = runs.spilled();
        let raw = runs.collect(&opts.temp_dir, memory)?;
        let counted = kn::adjust_stage(raw, *pack, thresholds, pruned_words, opts, progress);
        progress("estimating");
        let built = kn::estimate(vocab, counted, opts)?;
        return write_built(built, out, count_runs, progress);
    }
    crate::stream::estimate(
        &vocab.words,
        runs,
        pack,
        &thresholds,
        pruned_words.as_deref(),
        opts,
        memory,
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
///
/// The input is read twice: once for the vocabulary ([`Corpus::scan`]; the packed keys need
/// its size), then again to count the N-grams straight from the text
/// ([`count::count_files`]), so no token stream is held and memory does not grow with the
/// corpus. Standard input is copied to a spool file in `opts.temp_dir` during the first pass.
pub fn build_files(
    files: &[PathBuf],
    corpus_options: CorpusOptions,
    opts: &BuildOptions,
    out: &Outputs,
    on: &mut dyn FnMut(BuildEvent<'_>),
) -> Result<FileSummary> {
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    check_temp_dir(opts)?;
    let total: u64 = files
        .iter()
        .filter(|p| p.as_path() != Path::new("-"))
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    // Removed when the build ends, however it ends.
    let spool = files
        .iter()
        .any(|p| p.as_path() == Path::new("-"))
        .then(|| TempFile::named(&opts.temp_dir, "stdin"));
    on(BuildEvent::Read { bytes: 0, total });
    let first = match &spool {
        Some(f) => Stdin::Spool(f.path.clone()),
        None => Stdin::Direct,
    };
    let vocab = Corpus::scan(files, corpus_options, &first, &mut |bytes| {
        on(BuildEvent::Read { bytes, total })
    })?;
    let stats = CorpusStats {
        sentences: vocab.sentences,
        word_tokens: vocab.word_tokens,
        types: vocab.vocab_size(),
    };
    on(BuildEvent::Corpus(&stats));
    let (_, pack) = checked_setup(&vocab, opts)?;
    on(BuildEvent::Stage("counting"));
    let second = match &spool {
        Some(f) => Stdin::From(f.path.clone()),
        None => Stdin::Direct,
    };
    let runs = count::count_files(
        files,
        corpus_options,
        &second,
        &vocab,
        &pack,
        &count_options(&vocab, opts, 0),
        &mut |_| {},
    )?;
    drop(spool);
    let build = estimate_counted(&vocab, runs, &pack, opts, out, &mut |stage| {
        on(BuildEvent::Stage(stage))
    })?;
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
