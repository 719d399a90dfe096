//! Whole runs from a corpus file to a vector file, as `firth vectors word2vec` and `firth
//! vectors glove` do them, so that the command line, scripts and tests all train the same way:
//! count the vocabulary, train, refuse vectors that training blew up, save, and report.
//!
//! Progress arrives through a callback, so callers decide how (or whether) to show it.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use crate::formats::{self, Format};
use crate::tokens::{CountStats, CountedVocab};
use crate::{glove, word2vec, Embeddings, VecError};

/// What a training run reports while it goes.
pub enum Event<'a, P> {
    /// The vocabulary is counted; training starts next.
    Counted(&'a Counted),
    /// Training progress: [`word2vec::Progress`] or [`glove::Progress`].
    Training(&'a P),
}

/// The counted vocabulary, as a run reports it before training.
#[derive(Debug, Clone)]
pub struct Counted {
    pub stats: CountStats,
    pub vocab_size: usize,
    /// Corpus words that are in the vocabulary: one epoch of word2vec's work.
    pub train_words: u64,
    /// Seconds spent counting.
    pub seconds: f64,
}

impl Counted {
    /// Tokens that are not UTF-8 are skipped rather than fatal (a corpus scraped from the web
    /// has some), but silently dropping text would hide a wrongly encoded file.
    pub fn utf8_warning(&self, input: &Path) -> Option<String> {
        (self.stats.invalid_utf8 > 0).then(|| {
            format!(
                "{}: skipped {} tokens that are not valid UTF-8 (first on line {})",
                input.display(),
                self.stats.invalid_utf8,
                self.stats.first_invalid_line.unwrap_or(0)
            )
        })
    }

    /// Pruning during counting drops rare words early (as word2vec C does), which can change
    /// the vocabulary near `min_count`; worth a note, not a warning.
    pub fn prune_note(&self) -> Option<String> {
        (self.stats.prunes > 0).then(|| {
            format!(
                "vocabulary pruned {} times during counting (min_reduce {})",
                self.stats.prunes, self.stats.min_reduce
            )
        })
    }
}

/// The figures of a word2vec run; its JSON is what `firth vectors word2vec --json` prints
/// and `bench/vectors/bench.py` reads.
#[derive(Debug, Clone, Serialize)]
pub struct Word2vecSummary {
    pub words_per_second: f64,
    pub wall_seconds: f64,
    pub train_seconds: f64,
    pub vocab_size: usize,
    pub words_processed: u64,
    pub peak_memory_bytes: u64,
    pub final_loss: f64,
    pub invalid_utf8_tokens: u64,
    pub output: String,
}

/// The figures of a GloVe run, one per stage; its JSON is what `firth vectors glove --json`
/// prints and `bench/vectors/bench.py` reads.
#[derive(Debug, Clone, Serialize)]
pub struct GloveSummary {
    /// Corpus tokens (before min-count) over wall time, the figure GloVe C's tools compare by.
    pub words_per_second: f64,
    /// Corpus tokens read, before min-count.
    pub tokens: u64,
    pub wall_seconds: f64,
    pub vocab_seconds: f64,
    pub cooccur_seconds: f64,
    pub shuffle_seconds: f64,
    pub train_seconds: f64,
    pub nonzeros: usize,
    pub spilled_runs: usize,
    pub shuffle_chunks: usize,
    pub vocab_size: usize,
    pub peak_memory_bytes: u64,
    pub final_cost: f64,
    pub epoch_costs: Vec<f64>,
    pub invalid_utf8_tokens: u64,
    pub output: String,
}

/// Stops before writing vectors that training blew up, naming the setting to change: a file
/// of NaNs would load fine and only fail, confusingly, in whatever uses it.
fn ensure_finite(vectors: &[f32], hint: &str) -> Result<(), VecError> {
    let bad = vectors.iter().filter(|x| !x.is_finite()).count();
    if bad > 0 {
        return Err(VecError::Invalid(format!(
            "training diverged: {bad} of {} vector values are NaN or infinite; nothing was written; {hint}",
            vectors.len()
        )));
    }
    Ok(())
}

/// Counts `input`'s vocabulary and tells `on`.
fn count<P>(
    input: &Path,
    min_count: u64,
    max_vocab: usize,
    prune_at: usize,
    t0: Instant,
    on: &mut dyn FnMut(Event<'_, P>),
) -> Result<(CountedVocab, Counted), VecError> {
    let (vocab, stats) = CountedVocab::count_file(input, min_count, max_vocab, prune_at)?;
    let counted = Counted {
        stats,
        vocab_size: vocab.len(),
        train_words: vocab.total(),
        seconds: t0.elapsed().as_secs_f64(),
    };
    on(Event::Counted(&counted));
    Ok((vocab, counted))
}

/// Trains word2vec vectors on `input` and saves them to `output` in `format`.
pub fn train_word2vec_file(
    input: &Path,
    output: &Path,
    format: Format,
    cfg: &word2vec::Config,
    on: &mut dyn FnMut(Event<'_, word2vec::Progress>),
) -> Result<Word2vecSummary, VecError> {
    let t0 = Instant::now();
    let (e, mut summary) = train_word2vec(input, cfg, &AtomicBool::new(false), on)?;
    formats::save(output, format, &e.words, e.dim, e.matrix())?;
    summary.wall_seconds = t0.elapsed().as_secs_f64();
    summary.output = output.display().to_string();
    Ok(summary)
}

/// Trains word2vec vectors on `input` and keeps them in memory (what Python's
/// `firth.vectors.Word2Vec` holds): counting, training and the check for diverged vectors are
/// those of [`train_word2vec_file`]. Setting `stop` ends the run with [`VecError::Stopped`].
/// The summary's `output` is empty.
pub fn train_word2vec(
    input: &Path,
    cfg: &word2vec::Config,
    stop: &AtomicBool,
    on: &mut dyn FnMut(Event<'_, word2vec::Progress>),
) -> Result<(Embeddings, Word2vecSummary), VecError> {
    let t0 = Instant::now();
    let (vocab, counted) = count(
        input,
        cfg.min_count,
        cfg.max_vocab,
        cfg.prune_at,
        t0,
        &mut *on,
    )?;
    let tr = word2vec::train_until(input, cfg, vocab, stop, &mut |p| on(Event::Training(p)))?;
    ensure_finite(&tr.vectors, "lower --alpha")?;
    let summary = Word2vecSummary {
        words_per_second: tr.words_processed as f64 / tr.train_seconds.max(1e-9),
        wall_seconds: t0.elapsed().as_secs_f64(),
        train_seconds: tr.train_seconds,
        vocab_size: counted.vocab_size,
        words_processed: tr.words_processed,
        peak_memory_bytes: firth_text::peak_rss_bytes(),
        final_loss: tr.final_loss,
        invalid_utf8_tokens: counted.stats.invalid_utf8,
        output: String::new(),
    };
    Ok((Embeddings::new(tr.vocab.words, tr.dim, tr.vectors), summary))
}

/// Prunes GloVe's counting table at word2vec C's default size: GloVe C's `vocab_count` has no
/// pruning, and this bound only matters for corpora with tens of millions of types.
const GLOVE_PRUNE_AT: usize = 21_000_000;

/// Trains GloVe on `input` and saves the `which` vectors to `output` in `format`.
pub fn train_glove_file(
    input: &Path,
    output: &Path,
    format: Format,
    cfg: &glove::Config,
    which: glove::Vectors,
    on: &mut dyn FnMut(Event<'_, glove::Progress>),
) -> Result<GloveSummary, VecError> {
    let t0 = Instant::now();
    let (e, mut summary) = train_glove(input, cfg, which, &AtomicBool::new(false), on)?;
    formats::save(output, format, &e.words, e.dim, e.matrix())?;
    // The rate GloVe C's tools are compared by covers the whole run, writing included.
    summary.wall_seconds = t0.elapsed().as_secs_f64();
    summary.words_per_second = summary.tokens as f64 / summary.wall_seconds.max(1e-9);
    summary.output = output.display().to_string();
    Ok(summary)
}

/// Trains GloVe on `input` and keeps the `which` vectors in memory, as [`train_glove_file`]
/// does before it saves them. Setting `stop` ends the run with [`VecError::Stopped`]. The
/// summary's `output` is empty.
pub fn train_glove(
    input: &Path,
    cfg: &glove::Config,
    which: glove::Vectors,
    stop: &AtomicBool,
    on: &mut dyn FnMut(Event<'_, glove::Progress>),
) -> Result<(Embeddings, GloveSummary), VecError> {
    let t0 = Instant::now();
    let (vocab, counted) = count(
        input,
        cfg.min_count,
        cfg.max_vocab,
        GLOVE_PRUNE_AT,
        t0,
        &mut *on,
    )?;
    let tr = glove::train_until(input, cfg, vocab, stop, &mut |p| on(Event::Training(p)))?;
    let out = tr.vectors(which);
    ensure_finite(&out, "lower --eta")?;
    let wall = t0.elapsed().as_secs_f64();
    let summary = GloveSummary {
        words_per_second: counted.stats.tokens as f64 / wall.max(1e-9),
        tokens: counted.stats.tokens,
        wall_seconds: wall,
        vocab_seconds: counted.seconds,
        cooccur_seconds: tr.cooccur_seconds,
        shuffle_seconds: tr.shuffle_seconds,
        train_seconds: tr.train_seconds,
        nonzeros: tr.nonzeros,
        spilled_runs: tr.spilled_runs,
        shuffle_chunks: tr.shuffle_chunks,
        vocab_size: tr.vocab.len(),
        peak_memory_bytes: firth_text::peak_rss_bytes(),
        final_cost: tr.final_cost,
        epoch_costs: tr.epoch_costs,
        invalid_utf8_tokens: counted.stats.invalid_utf8,
        output: String::new(),
    };
    Ok((Embeddings::new(tr.vocab.words, tr.dim, out), summary))
}

/// Labelled points for a 2-D map of some words, and the map's title.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingMap {
    /// (word, first principal component, second principal component).
    pub points: Vec<(String, f64, f64)>,
    pub title: String,
}

/// Projects the words' vectors onto their own first two principal components (not the whole
/// vocabulary's), so the map spreads out exactly the differences among the words asked about.
/// A word missing from the file is an error rather than a gap, since a map silently lacking a
/// word reads as a claim about it.
pub fn embedding_map(vectors: &Path, words: &[String]) -> anyhow::Result<EmbeddingMap> {
    use anyhow::Context;
    let e = formats::load(vectors)
        .with_context(|| format!("cannot read word vectors from {}", vectors.display()))?;
    map_words(
        &e,
        words,
        &vectors.display().to_string(),
        &firth_text::file_label(vectors),
    )
}

/// [`embedding_map`] over loaded vectors (what `firth serve` calls, where the file stays
/// loaded): `what` names them in errors, `label` in the title.
pub fn map_words(
    e: &crate::embeddings::Embeddings,
    words: &[String],
    what: &str,
    label: &str,
) -> anyhow::Result<EmbeddingMap> {
    use anyhow::Context;
    let mut rows = Vec::new();
    for w in words {
        let v = e
            .get(w)
            .with_context(|| format!("'{w}' is not in {what}; choose words from its vocabulary"))?;
        rows.extend_from_slice(v);
    }
    let pts = crate::embeddings::pca2(&rows, e.dim);
    let points = words
        .iter()
        .zip(&pts)
        .map(|(w, &(x, y))| (w.clone(), x as f64, y as f64))
        .collect();
    let title = format!("Word vectors, 2-D PCA ({label})");
    Ok(EmbeddingMap { points, title })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("firth-pipeline-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// 300 lines of "a b c d" plus one "e": with min-count 2, four words of 1200 tokens.
    fn corpus(d: &Path) -> PathBuf {
        let p = d.join("corpus.txt");
        std::fs::write(&p, "a b c d\n".repeat(300) + "e\n").unwrap();
        p
    }

    #[test]
    fn ensure_finite_counts_the_bad_values_and_names_the_fix() {
        assert!(ensure_finite(&[0.0, -1.5, 3.0], "lower --eta").is_ok());
        let e = ensure_finite(&[0.0, f32::NAN, f32::INFINITY, 1.0], "lower --eta").unwrap_err();
        assert_eq!(
            e.to_string(),
            "training diverged: 2 of 4 vector values are NaN or infinite; nothing was written; lower --eta"
        );
    }

    #[test]
    fn word2vec_file_counts_trains_saves_and_reports() {
        let d = dir("w2v");
        let input = corpus(&d);
        let output = d.join("v.txt");
        let cfg = word2vec::Config {
            model: word2vec::Model::Cbow,
            dim: 8,
            window: 2,
            min_count: 2,
            epochs: 3,
            alpha: word2vec::Model::Cbow.default_alpha(),
            ..Default::default()
        };
        let (mut counted, mut last) = (None, 0);
        let s = train_word2vec_file(
            &input,
            &output,
            Format::Word2VecText,
            &cfg,
            &mut |ev| match ev {
                Event::Counted(c) => counted = Some(c.clone()),
                Event::Training(p) => last = p.words_done,
            },
        )
        .unwrap();
        let c = counted.expect("counting is reported");
        assert_eq!(
            (c.vocab_size, c.train_words, c.stats.tokens),
            (4, 1200, 1201)
        );
        assert_eq!(c.utf8_warning(&input), None);
        assert_eq!(c.prune_note(), None);
        assert!(last > 0);
        assert_eq!(s.vocab_size, 4);
        assert_eq!(s.words_processed, 3 * 1200);
        assert_eq!(s.invalid_utf8_tokens, 0);
        assert!(s.final_loss.is_finite() && s.final_loss > 0.0);
        assert_eq!(s.output, output.display().to_string());
        let e = formats::load(&output).unwrap();
        assert_eq!((e.len(), e.dim), (4, 8));
        // The JSON keys are the ones the bench script reads.
        let j = serde_json::to_value(&s).unwrap();
        for k in [
            "words_per_second",
            "wall_seconds",
            "words_processed",
            "final_loss",
        ] {
            assert!(j.get(k).is_some(), "{k}");
        }
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn a_stop_flag_ends_training_with_nothing_to_keep() {
        let d = dir("stop");
        let input = corpus(&d);
        let cfg = word2vec::Config {
            dim: 4,
            window: 2,
            min_count: 2,
            epochs: 1000,
            ..Default::default()
        };
        // Set from the progress callback, as the Python layer does on Ctrl-C.
        let stop = AtomicBool::new(false);
        let t = Instant::now();
        let r = train_word2vec(&input, &cfg, &stop, &mut |ev| {
            if let Event::Training(_) = ev {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        });
        assert!(matches!(r, Err(VecError::Stopped)), "{:?}", r.err());
        assert!(t.elapsed().as_secs_f64() < 30.0);
        let gcfg = glove::Config {
            dim: 4,
            window: 2,
            epochs: 1000,
            min_count: 2,
            threads: 1,
            ..Default::default()
        };
        let stop = AtomicBool::new(true);
        let r = train_glove(&input, &gcfg, glove::Vectors::Sum, &stop, &mut |_| {});
        assert!(matches!(r, Err(VecError::Stopped)), "{:?}", r.err());
        // Unstopped, the in-memory run is the file run's vectors.
        let cfg = word2vec::Config { epochs: 2, ..cfg };
        let (e, s) = train_word2vec(&input, &cfg, &AtomicBool::new(false), &mut |_| {}).unwrap();
        assert_eq!((e.len(), e.dim, s.vocab_size), (4, 4, 4));
        assert!(s.output.is_empty());
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn glove_file_writes_the_chosen_matrix() {
        let d = dir("glove");
        let input = corpus(&d);
        let cfg = glove::Config {
            dim: 4,
            window: 2,
            epochs: 2,
            min_count: 2,
            threads: 1,
            ..Default::default()
        };
        let mut stages = 0;
        let mut run = |which, name: &str| {
            let output = d.join(name);
            let s = train_glove_file(&input, &output, Format::GloveText, &cfg, which, &mut |ev| {
                if let Event::Training(_) = ev {
                    stages += 1;
                }
            })
            .unwrap();
            (s, formats::load(&output).unwrap())
        };
        let (s, sum) = run(glove::Vectors::Sum, "sum.txt");
        let (_, word) = run(glove::Vectors::Word, "word.txt");
        let (_, context) = run(glove::Vectors::Context, "context.txt");
        assert!(stages > 0);
        assert_eq!(s.vocab_size, 4);
        // Four words make at most 4 x 4 co-occurring pairs.
        assert!(s.nonzeros > 0 && s.nonzeros <= 16, "{}", s.nonzeros);
        assert_eq!(s.epoch_costs.len(), 2);
        assert_eq!(s.final_cost, s.epoch_costs[1]);
        // Same seed, same training: the sum file is the word file plus the context file
        // (to the 6 decimals GloVe text keeps).
        for w in ["a", "b", "c", "d"] {
            let (x, y, z) = (
                sum.get(w).unwrap(),
                word.get(w).unwrap(),
                context.get(w).unwrap(),
            );
            for i in 0..4 {
                assert!((x[i] - (y[i] + z[i])).abs() < 1e-5, "{w}[{i}]");
            }
        }
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn embedding_map_projects_the_words_and_names_the_file() {
        let d = dir("map");
        let p = d.join("toy.txt");
        // Three words on a line through the origin in 3-D: the first component is that line,
        // so the points are the distances along it from the mean, and the second is zero.
        std::fs::write(&p, "3 3\nx 1 2 2\ny 2 4 4\nz 3 6 6\n").unwrap();
        let words: Vec<String> = ["x", "y", "z"].map(String::from).to_vec();
        let m = embedding_map(&p, &words).unwrap();
        assert_eq!(m.title, "Word vectors, 2-D PCA (toy)");
        let xs: Vec<f64> = m.points.iter().map(|p| p.1).collect();
        // |(1,2,2)| = 3: the points are -3, 0, 3 along the line (up to the component's sign).
        let sign = xs[0].signum();
        for (x, want) in xs.iter().zip([-3.0, 0.0, 3.0]) {
            assert!((x * -sign - want).abs() < 1e-4, "{xs:?}");
        }
        for p in &m.points {
            assert!(p.2.abs() < 1e-4, "{p:?}");
        }
        let e = embedding_map(&p, &["x".into(), "nope".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("'nope' is not in"), "{e:#}");
        std::fs::remove_dir_all(&d).ok();
    }
}
