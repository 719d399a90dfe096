//! `firth.translate`: the attentional encoder-decoder of `firth translate` (train, run, eval,
//! attention), and corpus BLEU / chrF as `firth bleu` computes them (sacrebleu's figures).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use firth_eval::bleu::{
    corpus_bleu_with, corpus_chrf_with, BleuOptions, BleuTokenize, ChrfOptions, Smoothing,
};
use firth_models::translate::pipeline::{segmenter, translate_n_best, Segmenter};
use firth_models::translate::{
    attention_map, bleu_score, chrf_score, load, train_translator, translate_lines, SearchConfig,
    Subwords, TransVocab, TranslateData, TranslateOptions, TranslatePreset,
    Translator as TranslatorModel,
};
use firth_nn::ParamSet;
use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::job::{self, any_error};
use crate::models::{limits, state_dict, threads, train_detached, Opts};
use crate::FirthError;

/// The model with what it needs to read and write text.
struct Loaded {
    model: TranslatorModel<f32>,
    vocab: TransVocab,
    subwords: Subwords,
    seg: Segmenter,
}

/// A trained translator (`DIR/model.safetensors` of `firth translate train`).
#[pyclass(module = "firth.translate", frozen)]
pub struct Translator {
    /// The figures of the run that trained it (None when loaded from disk).
    #[pyo3(get)]
    summary: Option<Py<PyAny>>,
    inner: Mutex<Loaded>,
    #[pyo3(get)]
    path: String,
}

fn load_translator(path: &Path) -> PyResult<Translator> {
    let (model, vocab, subwords) = load(path).map_err(|e| any_error(e, None))?;
    let seg = segmenter(path, &subwords).map_err(|e| any_error(e, None))?;
    Ok(Translator {
        summary: None,
        inner: Mutex::new(Loaded {
            model,
            vocab,
            subwords,
            seg,
        }),
        path: path.display().to_string(),
    })
}

/// Source sentences: each a str (tokenised as the training text) or a list of tokens.
fn lines_of(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    if v.extract::<String>().is_ok() {
        return Err(PyTypeError::new_err(format!(
            "give {what} as a list (each a str or a list of tokens), not one str"
        )));
    }
    let mut out = vec![];
    for item in v.try_iter()? {
        let item = item?;
        out.push(match item.extract::<String>() {
            Ok(s) => s,
            Err(_) => item.extract::<Vec<String>>()?.join(" "),
        });
    }
    Ok(out)
}

fn search(beam: usize, alpha: f64) -> PyResult<SearchConfig> {
    if beam == 0 {
        return Err(FirthError::new_err("beam must be at least 1 (1 = greedy)"));
    }
    if !(alpha >= 0.0 && alpha.is_finite()) {
        return Err(FirthError::new_err("alpha must be a number >= 0"));
    }
    Ok(SearchConfig { beam, alpha })
}

#[pymethods]
impl Translator {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Translator> {
        py.detach(|| load_translator(&path))
    }

    /// Translations of `sentences`, as `firth translate run` writes them: greedy with
    /// `beam=1` (batched), else beam search with the GNMT length penalty `alpha`; with
    /// `replace_unk`, an output `<unk>` becomes the source word it attends to most. An
    /// empty sentence translates to an empty string.
    #[pyo3(signature = (sentences, *, beam = 1, alpha = 0.6, replace_unk = false))]
    fn translate(
        &self,
        py: Python<'_>,
        sentences: &Bound<'_, PyAny>,
        beam: usize,
        alpha: f64,
        replace_unk: bool,
    ) -> PyResult<Vec<String>> {
        let lines = lines_of(sentences, "the sentences")?;
        let cfg = search(beam, alpha)?;
        py.detach(|| {
            let mut g = job::lock(&self.inner)?;
            let l = &mut *g;
            Ok(translate_lines(
                &mut l.model,
                &l.vocab,
                &l.seg,
                &l.subwords,
                &lines,
                cfg,
                replace_unk,
            )
            .lines)
        })
    }

    /// The `n` best translations of each sentence by beam search (the beam widened to `n`
    /// if narrower), best first, each `(translation, score)` with score = log p over the
    /// GNMT length penalty (what the beam ranks by); `firth translate run --n-best`.
    #[pyo3(signature = (sentences, n = 5, *, beam = 5, alpha = 0.6))]
    fn translate_n_best(
        &self,
        py: Python<'_>,
        sentences: &Bound<'_, PyAny>,
        n: usize,
        beam: usize,
        alpha: f64,
    ) -> PyResult<Vec<Vec<(String, f64)>>> {
        let lines = lines_of(sentences, "the sentences")?;
        let cfg = search(beam, alpha)?;
        if n == 0 {
            return Err(FirthError::new_err("n must be at least 1"));
        }
        py.detach(|| {
            let mut g = job::lock(&self.inner)?;
            let l = &mut *g;
            Ok(translate_n_best(
                &mut l.model,
                &l.vocab,
                &l.seg,
                &l.subwords,
                &lines,
                cfg.beam,
                cfg.alpha,
                n,
            ))
        })
    }

    /// Translates `sources` and scores them against `references` (one each, tokenised as
    /// the training text): `firth translate eval --json` as a dict (bleu, chrf, sentences,
    /// beam, sentences_per_second).
    #[pyo3(signature = (sources, references, *, beam = 1, alpha = 0.6, replace_unk = false))]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        sources: &Bound<'py, PyAny>,
        references: &Bound<'py, PyAny>,
        beam: usize,
        alpha: f64,
        replace_unk: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let src = lines_of(sources, "the sources")?;
        let refs: Vec<String> = lines_of(references, "the references")?
            .iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if src.len() != refs.len() {
            return Err(FirthError::new_err(format!(
                "{} sources but {} references: give one reference per source",
                src.len(),
                refs.len()
            )));
        }
        let cfg = search(beam, alpha)?;
        let (bleu, chrf, sps) = py.detach(|| {
            let mut g = job::lock(&self.inner)?;
            let l = &mut *g;
            let t = translate_lines(
                &mut l.model,
                &l.vocab,
                &l.seg,
                &l.subwords,
                &src,
                cfg,
                replace_unk,
            );
            let bleu = bleu_score(&t.lines, &refs).map_err(|e| any_error(e, None))?;
            let chrf = chrf_score(&t.lines, &refs).map_err(|e| any_error(e, None))?;
            Ok::<_, PyErr>((bleu, chrf, t.sentences_per_second))
        })?;
        let d = PyDict::new(py);
        d.set_item("bleu", bleu)?;
        d.set_item("chrf", chrf)?;
        d.set_item("sentences", src.len())?;
        d.set_item("beam", beam)?;
        d.set_item("sentences_per_second", sps)?;
        Ok(d.into_any())
    }

    /// Translates one sentence and returns a `firth.translate.Attention` (translation,
    /// source, target, weights): the source tokens as the model read them (subwords for a BPE model), the output
    /// tokens then `</s>`, and the attention as a (target, source) float32 array whose row t
    /// is output step t's weights over the source (each row sums to 1);
    /// `firth translate attention` draws the same matrix.
    #[pyo3(signature = (sentence, *, beam = 1, alpha = 0.6))]
    fn attention<'py>(
        &self,
        py: Python<'py>,
        sentence: &Bound<'py, PyAny>,
        beam: usize,
        alpha: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let line = match sentence.extract::<String>() {
            Ok(s) => s,
            Err(_) => sentence
                .extract::<Vec<String>>()
                .map_err(|_| {
                    PyTypeError::new_err("give one sentence: a str or a list of tokens (str)")
                })?
                .join(" "),
        };
        let cfg = search(beam, alpha)?;
        let m = py.detach(|| {
            let mut g = job::lock(&self.inner)?;
            let l = &mut *g;
            attention_map(&mut l.model, &l.vocab, &l.seg, &l.subwords, &line, cfg)
                .map_err(|e| any_error(e, None))
        })?;
        let (t, s) = (m.target.len(), m.source.len());
        let w: Vec<f32> = m.weights.concat();
        let w = PyArray1::from_vec(py, w).reshape([t, s])?.into_any();
        py.import("firth.translate")?.getattr("Attention")?.call1((
            m.translation,
            m.source,
            m.target,
            w,
        ))
    }

    /// The model's configuration (cell, attention, sizes), as saved in its file.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        job::to_py(py, &job::lock(&self.inner)?.model.config)
    }

    /// The parameters as float32 arrays by name (copies).
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        state_dict(py, job::lock(&self.inner)?.model.params())
    }

    fn __repr__(&self) -> String {
        format!("<firth.translate.Translator from {}>", self.path)
    }
}

/// `firth translate train`: returns the translator (the best epoch's, loaded from `out`)
/// and the run's summary.
#[pyfunction]
#[pyo3(signature = (train_src, train_tgt, *, out, valid_src = None, valid_tgt = None,
    test_src = None, test_tgt = None, resume = false, max_steps = None, max_seconds = None,
    threads = None, progress = true, **options))]
#[allow(clippy::too_many_arguments)]
fn translate_train<'py>(
    py: Python<'py>,
    train_src: PathBuf,
    train_tgt: PathBuf,
    out: PathBuf,
    valid_src: Option<PathBuf>,
    valid_tgt: Option<PathBuf>,
    test_src: Option<PathBuf>,
    test_tgt: Option<PathBuf>,
    resume: bool,
    max_steps: Option<u64>,
    max_seconds: Option<f64>,
    threads: Option<usize>,
    progress: bool,
    options: Option<Bound<'py, PyDict>>,
) -> PyResult<Translator> {
    let o = Opts(options);
    let options = TranslateOptions {
        preset: o.choice::<TranslatePreset>("preset")?,
        cell: o.choice("cell")?,
        attention: o.choice("attention")?,
        layers: o.take("layers")?,
        enc_layers: o.take("enc_layers")?,
        dec_layers: o.take("dec_layers")?,
        emb: o.take("emb")?,
        hidden: o.take("hidden")?,
        dec_hidden: o.take("dec_hidden")?,
        input_feeding: o.flag("no_input_feeding")?.then_some(false),
        dropout: o.take("dropout")?,
        label_smoothing: o.take("label_smoothing")?,
        tied: o.flag("tied")?,
        init_range: o.take("init_range")?,
        epochs: o.take("epochs")?,
        lr: o.take("lr")?,
        warmup_steps: o.take("warmup_steps")?,
        plateau_decay: o.take("plateau_decay")?,
        patience: o.take("patience")?,
        clip: o.take("clip")?,
        batch_tokens: o.take("batch_tokens")?,
        batch_sentences: o.take("batch_sentences")?,
        min_count: o.take("min_count")?,
        bpe_merges: o.take("bpe_merges")?,
        max_len: o.take("max_len")?,
        beam: o.take("beam")?,
        alpha: o.take("alpha")?,
        no_valid_bleu: o.flag("no_valid_bleu")?,
        checkpoint_every: o.take("checkpoint_every")?,
        seed: o.take("seed")?.unwrap_or(1),
    };
    o.done()?;
    self::threads(threads)?;
    let data = TranslateData {
        train_src,
        train_tgt,
        valid_src,
        valid_tgt,
        test_src,
        test_tgt,
        out: out.clone(),
        resume,
        limits: limits(max_steps, max_seconds),
    };
    let summary = train_detached(py, progress, "tok", |obs| {
        train_translator(&data, &options, obs).map(|(s, _)| s)
    })?;
    let mut model = py.detach(|| load_translator(&out))?;
    model.summary = Some(job::to_py(py, &summary)?.unbind());
    Ok(model)
}

/// Hypotheses and reference streams (sacrebleu's shape: a list of streams, each as long as
/// the hypotheses).
fn streams(
    hypotheses: &Bound<'_, PyAny>,
    references: &Bound<'_, PyAny>,
) -> PyResult<(Vec<String>, Vec<Vec<String>>)> {
    let hyps = lines_of(hypotheses, "the hypotheses")?;
    if references.extract::<String>().is_ok() {
        return Err(PyTypeError::new_err(
            "give the references as a list of streams, [refs] for one reference per hypothesis",
        ));
    }
    let mut refs = Vec::new();
    for s in references.try_iter()? {
        let s = s?;
        let stream = s.extract::<Vec<String>>().map_err(|_| {
            PyTypeError::new_err(
                "each reference stream is a list of str: give [refs] for one reference per hypothesis",
            )
        })?;
        refs.push(stream);
    }
    Ok((hyps, refs))
}

/// Corpus BLEU as sacrebleu computes it (`firth bleu --json`'s figures, as a dict).
#[pyfunction]
#[pyo3(signature = (hypotheses, references, *, tokenize = "13a", lowercase = false,
    smooth_method = "exp"))]
fn corpus_bleu<'py>(
    py: Python<'py>,
    hypotheses: &Bound<'py, PyAny>,
    references: &Bound<'py, PyAny>,
    tokenize: &str,
    lowercase: bool,
    smooth_method: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let (hyps, refs) = streams(hypotheses, references)?;
    let tokenize = match tokenize {
        "13a" => BleuTokenize::Thirteen13a,
        "none" => BleuTokenize::None,
        t => {
            return Err(FirthError::new_err(format!(
                "tokenize='{t}': choose 13a or none"
            )))
        }
    };
    let smoothing = match smooth_method {
        "exp" => Smoothing::Exp,
        "none" => Smoothing::None,
        m => {
            return Err(FirthError::new_err(format!(
                "smooth_method='{m}': choose exp or none"
            )))
        }
    };
    let opts = BleuOptions {
        tokenize,
        lowercase,
        smoothing,
    };
    let b = py.detach(|| {
        let s: Vec<&[String]> = refs.iter().map(|r| r.as_slice()).collect();
        corpus_bleu_with(&hyps, &s, &opts).map_err(|e| any_error(e, None))
    })?;
    let d = job::to_py(py, &b)?;
    d.set_item("text", b.to_string())?;
    Ok(d)
}

/// Corpus chrF (chrF2, or chrF++ with `word_order=2`) as sacrebleu computes it.
#[pyfunction]
#[pyo3(signature = (hypotheses, references, *, word_order = 0, lowercase = false))]
fn corpus_chrf(
    py: Python<'_>,
    hypotheses: &Bound<'_, PyAny>,
    references: &Bound<'_, PyAny>,
    word_order: usize,
    lowercase: bool,
) -> PyResult<f64> {
    let (hyps, refs) = streams(hypotheses, references)?;
    let opts = ChrfOptions {
        word_order,
        lowercase,
        ..Default::default()
    };
    py.detach(|| {
        let s: Vec<&[String]> = refs.iter().map(|r| r.as_slice()).collect();
        corpus_chrf_with(&hyps, &s, &opts).map_err(|e| any_error(e, None))
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Translator>()?;
    m.add_function(wrap_pyfunction!(translate_train, m)?)?;
    m.add_function(wrap_pyfunction!(corpus_bleu, m)?)?;
    m.add_function(wrap_pyfunction!(corpus_chrf, m)?)?;
    Ok(())
}
