//! `firth.ngram`: count language models, shaped like the `kenlm` module.

use std::path::PathBuf;
use std::time::Instant;

use firth_ngram::build::{build_files, BuildEvent};
use firth_ngram::kn::{BuildOptions, Discount, Smoothing};
use firth_ngram::model::Checksum;
use firth_ngram::CorpusOptions;
use firth_ngram::{AnyModel, Scorer};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::job::{self, ngram_error};
use crate::FirthError;

/// A loaded n-gram model (ARPA text, plain or gzip/xz/zstd, or firth's binary file in the
/// probing or the trie layout, quantized or not), scored as
/// KenLM's `kenlm.Model` scores: log10 probabilities, `<s>`/`</s>` added as asked.
#[pyclass(module = "firth.ngram", frozen)]
pub struct Model {
    m: AnyModel,
    #[pyo3(get)]
    path: String,
}

#[pymethods]
impl Model {
    /// Loads `path`. A binary model's checksum is verified unless `verify=False` (faster to
    /// open a large model for a few queries, but damage goes unnoticed).
    #[new]
    #[pyo3(signature = (path, *, verify = true))]
    fn new(py: Python<'_>, path: PathBuf, verify: bool) -> PyResult<Model> {
        let checksum = if verify {
            Checksum::Verify
        } else {
            Checksum::Skip
        };
        let m = py
            .detach(|| AnyModel::load_with(&path, checksum))
            .map_err(ngram_error)?;
        Ok(Model {
            m,
            path: path.display().to_string(),
        })
    }

    /// Order of the model (n).
    #[getter]
    fn order(&self) -> usize {
        self.m.order()
    }

    /// Number of words in the vocabulary, `<unk>`, `<s>` and `</s>` included.
    #[getter]
    fn vocab_size(&self) -> usize {
        self.m.vocab_size()
    }

    /// Number of n-grams of each order.
    #[getter]
    fn counts(&self) -> Vec<u64> {
        self.m.counts().to_vec()
    }

    /// Log10 probability of `sentence` (words separated by whitespace), from the `<s>`
    /// context when `bos` and with `</s>` scored at the end when `eos`.
    #[pyo3(signature = (sentence, bos = true, eos = true))]
    fn score(&self, sentence: &str, bos: bool, eos: bool) -> f32 {
        // Summed in float32, as the kenlm module sums.
        self.m
            .full_scores(sentence, bos, eos)
            .iter()
            .map(|s| s.log10_prob)
            .sum()
    }

    /// 10^(-score / tokens) of one sentence with `<s>` and `</s>`; tokens counts `</s>`.
    fn perplexity(&self, sentence: &str) -> f64 {
        let s = self.m.full_scores(sentence, true, true);
        let total: f32 = s.iter().map(|s| s.log10_prob).sum();
        10f64.powf(-(total as f64) / s.len() as f64)
    }

    /// An iterator of (log10 probability, n-gram length, oov) for each word, then `</s>`
    /// when `eos`.
    #[pyo3(signature = (sentence, bos = true, eos = true))]
    fn full_scores<'py>(
        &self,
        py: Python<'py>,
        sentence: &str,
        bos: bool,
        eos: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let items: Vec<(f32, usize, bool)> = self
            .m
            .full_scores(sentence, bos, eos)
            .into_iter()
            .map(|s| (s.log10_prob, s.ngram_len, s.oov))
            .collect();
        PyList::new(py, items)?.try_iter().map(|i| i.into_any())
    }

    /// Log10 probability, n-gram length and oov of every token of many sentences at once
    /// (one per string), with the GIL released: the fast path for scoring a corpus.
    #[pyo3(signature = (sentences, bos = true, eos = true))]
    fn score_many(&self, py: Python<'_>, sentences: Vec<String>, bos: bool, eos: bool) -> Vec<f32> {
        py.detach(|| {
            sentences
                .iter()
                .map(|s| {
                    self.m
                        .full_scores(s, bos, eos)
                        .iter()
                        .map(|s| s.log10_prob)
                        .sum()
                })
                .collect()
        })
    }

    /// Perplexity of a text file (one sentence per line) as `firth ngram ppl --json` reports
    /// it: a dict with perplexity, perplexity_excluding_oov, oov, tokens, sentences, log10_prob.
    fn perplexity_file<'py>(&self, py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyAny>> {
        let st = py.detach(|| -> PyResult<firth_ngram::PplStats> {
            let f = std::fs::File::open(&path).map_err(|e| {
                job::io_error(e.kind(), format!("cannot read {}: {e}", path.display()))
            })?;
            let mut r = std::io::BufReader::with_capacity(1 << 20, f);
            self.m.score_text(&mut r, &path, None).map_err(ngram_error)
        })?;
        if st.tokens == 0 {
            return Err(FirthError::new_err(format!(
                "{}: no sentences to score",
                path.display()
            )));
        }
        let d = pyo3::types::PyDict::new(py);
        d.set_item("perplexity", st.perplexity())?;
        d.set_item("perplexity_excluding_oov", st.perplexity_excluding_oov())?;
        d.set_item("oov", st.oov)?;
        d.set_item("tokens", st.tokens)?;
        d.set_item("sentences", st.sentences)?;
        d.set_item("log10_prob", st.log10_prob)?;
        Ok(d.into_any())
    }

    /// Samples `count` sentences (as `firth ngram generate`): temperature below 1 sharpens the
    /// distribution, above 1 flattens it.
    #[pyo3(signature = (count = 1, *, seed = 1, temperature = 1.0, max_len = 100))]
    fn generate(
        &self,
        py: Python<'_>,
        count: usize,
        seed: u64,
        temperature: f64,
        max_len: usize,
    ) -> PyResult<Vec<String>> {
        if !(temperature > 0.0 && temperature.is_finite()) {
            return Err(FirthError::new_err("temperature must be positive"));
        }
        Ok(py.detach(|| {
            let mut rng = firth_ngram::model::Rng::new(seed);
            (0..count)
                .map(|_| self.m.generate_text(&mut rng, temperature, max_len))
                .collect()
        }))
    }

    /// True when `word` is in the vocabulary (`<unk>` is not).
    fn __contains__(&self, word: &str) -> bool {
        self.m.word_id(word) != firth_ngram::UNK
    }

    fn __repr__(&self) -> String {
        format!(
            "<firth.ngram.Model from {} (order {}, {} words)>",
            self.path,
            self.m.order(),
            self.m.vocab_size()
        )
    }
}

/// `firth ngram build`: counts `files` and writes the model as ARPA and/or binary.
#[pyfunction]
#[pyo3(signature = (files, order, *, arpa = None, binary = None, memory = "1G".to_string(),
    temp_dir = None, in_memory = false, discount_fallback = None, prune = Vec::new(),
    vocab_limit = None, chars = false, skip_symbols = false, smoothing = "kn".to_string(),
    k = 1.0, alpha = 0.4, progress = true))]
#[allow(clippy::too_many_arguments)]
fn build<'py>(
    py: Python<'py>,
    files: Vec<PathBuf>,
    order: usize,
    arpa: Option<PathBuf>,
    binary: Option<PathBuf>,
    memory: String,
    temp_dir: Option<PathBuf>,
    in_memory: bool,
    discount_fallback: Option<Vec<f32>>,
    prune: Vec<u64>,
    vocab_limit: Option<usize>,
    chars: bool,
    skip_symbols: bool,
    smoothing: String,
    k: f32,
    alpha: f32,
    progress: bool,
) -> PyResult<Bound<'py, PyAny>> {
    if arpa.is_none() && binary.is_none() {
        return Err(FirthError::new_err(
            "give an output: arpa='OUT.arpa' and/or binary='OUT.bin'",
        ));
    }
    if files.is_empty() {
        return Err(FirthError::new_err(
            "give the text files to count, one sentence per line",
        ));
    }
    if order == 0 {
        return Err(FirthError::new_err("order must be at least 1"));
    }
    if vocab_limit == Some(0) {
        return Err(FirthError::new_err("vocab_limit must be at least 1"));
    }
    if let Some(d) = &discount_fallback {
        if d.len() > 3 || d.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
            return Err(FirthError::new_err(
                "discount_fallback takes up to three positive discounts",
            ));
        }
    }
    let smoothing = Smoothing::from_name(&smoothing, k, alpha).map_err(FirthError::new_err)?;
    let memory = firth_ngram::util::parse_size(&memory).map_err(FirthError::new_err)?;
    let opts = BuildOptions {
        order,
        smoothing,
        discount_fallback: discount_fallback.as_deref().map(Discount::fallback_with),
        prune,
        vocab_limit,
        limit_vocab_file: None,
        memory,
        temp_dir: temp_dir.unwrap_or_else(std::env::temp_dir),
        external: in_memory.then_some(false),
    };
    let t0 = Instant::now();
    let summary = py.detach(|| {
        let outputs = firth_ngram::stream::Outputs {
            arpa: arpa.as_deref(),
            binary: binary.as_deref(),
            flags: if chars {
                firth_ngram::model::FLAG_CHARS
            } else {
                0
            },
        };
        let bar = job::bar(
            1,
            progress,
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        );
        bar.set_message("reading");
        let r = build_files(
            &files,
            CorpusOptions {
                chars,
                skip_symbols,
            },
            &opts,
            &outputs,
            &mut |ev| match ev {
                BuildEvent::Read { bytes, total } => {
                    bar.set_length(total.max(1));
                    bar.set_position(bytes);
                }
                BuildEvent::Corpus(c) => {
                    bar.finish_and_clear();
                    if progress {
                        eprintln!(
                            "read {} sentences, {} words, {} types in {:.2}s",
                            c.sentences,
                            c.word_tokens,
                            c.types,
                            t0.elapsed().as_secs_f64()
                        );
                    }
                }
                BuildEvent::Stage(stage) => {
                    if progress {
                        eprintln!("{:>7.2}s {stage}", t0.elapsed().as_secs_f64());
                    }
                }
            },
        );
        bar.finish_and_clear();
        r
    });
    let s = summary.map_err(ngram_error)?;
    let d = pyo3::types::PyDict::new(py);
    d.set_item("order", order)?;
    d.set_item("sentences", s.corpus.sentences)?;
    d.set_item("words", s.corpus.word_tokens)?;
    d.set_item("types", s.corpus.types)?;
    d.set_item("counts", s.build.counts.clone())?;
    let discounts: Vec<[f32; 3]> = s
        .build
        .discounts
        .iter()
        .map(|d| [d.0[1], d.0[2], d.0[3]])
        .collect();
    d.set_item("discounts", discounts)?;
    d.set_item("binary_bytes", s.binary_bytes)?;
    d.set_item("seconds", t0.elapsed().as_secs_f64())?;
    d.set_item("arpa", arpa.map(|p| p.display().to_string()))?;
    d.set_item("binary", binary.map(|p| p.display().to_string()))?;
    Ok(d.into_any())
}

/// `firth ngram convert`: rewrites a model file as ARPA, the probing layout or the trie layout
/// (`q`/`b`: quantized trie). Returns the output's size in bytes.
#[pyfunction]
#[pyo3(signature = (input, output, to, *, q = None, b = None, chars = false))]
fn convert(
    py: Python<'_>,
    input: PathBuf,
    output: PathBuf,
    to: &str,
    q: Option<u8>,
    b: Option<u8>,
    chars: bool,
) -> PyResult<u64> {
    use firth_ngram::trie::{Quant, Target};
    let target = match (to, q, b) {
        ("trie", None, None) => Target::Trie(None),
        ("trie", None, Some(_)) => {
            return Err(FirthError::new_err(
                "b needs q (quantize probabilities too), e.g. q=8, b=8",
            ))
        }
        ("trie", Some(q), b) => {
            Target::Trie(Some(Quant::new(q, b.unwrap_or(q)).map_err(ngram_error)?))
        }
        (_, Some(_), _) | (_, _, Some(_)) => {
            return Err(FirthError::new_err(
                "q/b quantize the trie layout only: use to=\"trie\"",
            ))
        }
        ("arpa", ..) => Target::Arpa,
        ("probing", ..) => Target::Probing,
        (other, ..) => {
            return Err(FirthError::new_err(format!(
                "to={other:?}: use \"arpa\", \"probing\" or \"trie\""
            )))
        }
    };
    py.detach(|| firth_ngram::trie::convert(&input, &output, target, chars))
        .map_err(ngram_error)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(build, m)?)?;
    m.add_function(wrap_pyfunction!(convert, m)?)?;
    Ok(())
}
