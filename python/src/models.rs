//! `firth.lm`, `firth.tag`, `firth.classify`: the recurrent models' pipelines, as `firth lm`,
//! `firth tag` and `firth classify` run them (same presets, same options, same files).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use clap::ValueEnum;
use firth_models::classifier::{
    cross_validate, evaluate as classifier_scores, sentence_vectors, train_classifier, Bundle,
    ClassifierOptions, ClassifyData, ClassifyPreset,
};
use firth_models::lm::LanguageModel as Lm;
use firth_models::lm_text::{continue_text, hidden_states, score_text, GenerateOptions};
use firth_models::lm_train::{train_lm, LmData, LmOptions, LmPreset};
use firth_models::tagger::pipeline::strip_tags;
use firth_models::tagger::{
    encode, hidden_states as tagger_hidden_states, predict_all, train_tagger, TagData, TagPreset,
    TagVocab, Tagger as TaggerModel, TaggerOptions,
};
use firth_models::trainer::{EpochRecord, Limits, Observer, StepReport};
use firth_nn::{Param, ParamSet};
use firth_text::conll::{Columns, Scheme, Sentence};
use firth_text::Vocab;
use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::{PyIndexError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::job::{self, any_error, Job};
use crate::FirthError;

/// Options given as Python keyword arguments, taken one by one; what is left over is an error
/// naming it, as an unknown flag is on the command line.
pub(crate) struct Opts<'py>(pub(crate) Option<Bound<'py, PyDict>>);

impl<'py> Opts<'py> {
    pub(crate) fn take<T>(&self, key: &str) -> PyResult<Option<T>>
    where
        T: for<'a> FromPyObject<'a, 'py>,
        for<'a> <T as FromPyObject<'a, 'py>>::Error: Into<PyErr>,
    {
        let Some(d) = &self.0 else { return Ok(None) };
        match d.get_item(key)? {
            Some(v) => {
                d.del_item(key)?;
                if v.is_none() {
                    return Ok(None);
                }
                v.extract::<T>()
                    .map(Some)
                    .map_err(|e| PyTypeError::new_err(format!("{key}: {}", e.into())))
            }
            None => Ok(None),
        }
    }

    pub(crate) fn flag(&self, key: &str) -> PyResult<bool> {
        Ok(self.take::<bool>(key)?.unwrap_or(false))
    }

    /// A value of one of the library's enums, by the command line's name for it.
    pub(crate) fn choice<E: ValueEnum>(&self, key: &str) -> PyResult<Option<E>> {
        match self.take::<String>(key)? {
            None => Ok(None),
            Some(s) => E::from_str(&s, true).map(Some).map_err(|_| {
                let names: Vec<String> = E::value_variants()
                    .iter()
                    .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
                    .collect();
                FirthError::new_err(format!("{key}='{s}': choose one of {}", names.join(", ")))
            }),
        }
    }

    pub(crate) fn done(self) -> PyResult<()> {
        if let Some(d) = &self.0 {
            if !d.is_empty() {
                let keys: Vec<String> = d.keys().iter().map(|k| k.to_string()).collect();
                return Err(PyTypeError::new_err(format!(
                    "unknown option(s): {}",
                    keys.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// The command line's training display on stderr (when `progress`), and the Ctrl-C check
/// before every step.
struct Display<'a> {
    job: &'a Job,
    progress: bool,
    bar: Option<indicatif::ProgressBar>,
    unit: &'static str,
}

impl Observer for Display<'_> {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize, done: usize) {
        let bar = job::bar(
            steps as u64,
            self.progress,
            "epoch {prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}",
        );
        bar.set_prefix(format!("{epoch}/{epochs}"));
        bar.set_position(done as u64);
        self.bar = Some(bar);
    }

    fn step(&mut self, r: &StepReport) {
        if let Some(bar) = &self.bar {
            bar.set_position(r.step as u64);
            if r.step % 10 == 0 || r.step == r.steps {
                bar.set_message(format!(
                    "loss {:.3} lr {:.3e} |g| {:.2} {:.0} {}/s",
                    r.loss, r.lr, r.grad_norm, r.items_per_second, self.unit
                ));
            }
        }
    }

    fn epoch_end(&mut self, r: &EpochRecord, best: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if !self.progress {
            return;
        }
        let opt =
            |name: &str, v: Option<f64>| v.map_or(String::new(), |v| format!("  {name} {v:.2}"));
        eprintln!(
            "epoch {:>3}  lr {:.2e}  train loss {:.4}{}{}{}{}{}{}  {:.0} {}/s  {:.1}s",
            r.epoch,
            r.lr,
            r.train_loss,
            opt("train ppl", r.train_perplexity),
            opt("valid loss", r.valid_loss),
            opt("valid ppl", r.valid_perplexity),
            opt("valid acc", r.valid_accuracy),
            opt("valid F1", r.valid_f1),
            if best { " (best)" } else { "" },
            r.items_per_second,
            self.unit,
            r.seconds,
        );
    }

    fn note(&mut self, msg: &str) {
        if !self.progress {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    fn should_stop(&mut self) -> bool {
        self.job.poll()
    }
}

impl Drop for Display<'_> {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Sizes the process's thread pool as `--threads` does (once per process).
pub(crate) fn threads(n: Option<usize>) -> PyResult<()> {
    match n {
        Some(n) => firth_nn::par::set_global_threads(n).map_err(|e| any_error(e, None)),
        None => Ok(()),
    }
}

pub(crate) fn limits(max_steps: Option<u64>, max_seconds: Option<f64>) -> Limits {
    Limits {
        max_steps,
        max_seconds,
    }
}

/// Runs a training pipeline as the CLI does, with the GIL released, the CLI's display (when
/// `progress`) and the Ctrl-C check; a run that Ctrl-C ended raises once its checkpoint is
/// safe.
pub(crate) fn train_detached<S: Send>(
    py: Python<'_>,
    progress: bool,
    unit: &'static str,
    run: impl FnOnce(&mut dyn Observer) -> anyhow::Result<S> + Send,
) -> PyResult<S> {
    let job = Job::new();
    let summary = py.detach(|| {
        let mut obs = Display {
            job: &job,
            progress,
            bar: None,
            unit,
        };
        run(&mut obs).map_err(|e| any_error(e, Some(&job)))
    })?;
    if job.stop.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(job.stopped());
    }
    Ok(summary)
}

/// A model's parameters as a dict of float32 arrays (copies) by firth's names, in the shapes
/// the model file stores.
pub(crate) fn state_dict<'py>(
    py: Python<'py>,
    params: Vec<&Param<f32>>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for p in params {
        d.set_item(
            &p.name,
            PyArray1::from_slice(py, &p.value).reshape(p.shape.clone())?,
        )?;
    }
    Ok(d)
}

/// One sentence: a str (split on whitespace) or a list of tokens; not empty.
fn one_sentence(v: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let toks: Vec<String> = match v.extract::<String>() {
        Ok(s) => s.split_whitespace().map(str::to_string).collect(),
        Err(_) => v.extract().map_err(|_| {
            PyTypeError::new_err("give one sentence: a str or a list of tokens (str)")
        })?,
    };
    if toks.is_empty() {
        return Err(FirthError::new_err("the sentence is empty"));
    }
    Ok(toks)
}

// ---------------------------------------------------------------------------------------------
// Language models

/// A trained recurrent language model (`DIR/model.safetensors` of `firth lm train`).
#[pyclass(module = "firth.lm", frozen)]
pub struct LanguageModel {
    /// The figures of the run that trained it (None when loaded from disk).
    #[pyo3(get)]
    summary: Option<Py<PyAny>>,
    inner: Mutex<(Lm<f32>, Vocab)>,
    #[pyo3(get)]
    path: String,
}

fn load_lm(path: &Path) -> PyResult<LanguageModel> {
    let (m, v) = Lm::load(path).map_err(|e| any_error(e, None))?;
    Ok(LanguageModel {
        summary: None,
        inner: Mutex::new((m, v)),
        path: path.display().to_string(),
    })
}

#[pymethods]
impl LanguageModel {
    /// Loads a model directory (or its `model.safetensors`).
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<LanguageModel> {
        py.detach(|| load_lm(&path))
    }

    /// Mean loss (nats per token), perplexity, tokens and, for a character model, bits per
    /// character of `text` (lines joined as a file's lines are), as `firth lm eval` reports.
    #[pyo3(signature = (text, *, batch = 1, bptt = 35))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyAny>,
        batch: usize,
        bptt: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let text = text_of(text)?;
        if batch == 0 || bptt == 0 {
            return Err(FirthError::new_err("batch and bptt must be at least 1"));
        }
        let s = py.detach(|| {
            let mut g = job::lock(&self.inner)?;
            let (m, v) = &mut *g;
            score_text(m, v, &text, "text", batch, bptt).map_err(|e| any_error(e, None))
        })?;
        job::to_py(py, &s)
    }

    /// Perplexity of `text` (a string, or a list of lines).
    fn perplexity(&self, py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<f64> {
        self.score(py, text, 1, 35)?
            .get_item("perplexity")?
            .extract()
    }

    /// The prompt continued by the model, as `firth lm generate` does it: sampling (with
    /// `temperature`, `top_k`, `top_p`), `greedy`, or beam search with `beam` hypotheses.
    #[pyo3(signature = (prompt = "", *, max_tokens = 50, greedy = false, temperature = 1.0,
        top_k = 0, top_p = 1.0, beam = None, seed = 1))]
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &self,
        py: Python<'_>,
        prompt: &str,
        max_tokens: usize,
        greedy: bool,
        temperature: f64,
        top_k: usize,
        top_p: f64,
        beam: Option<usize>,
        seed: u64,
    ) -> PyResult<String> {
        let o = GenerateOptions {
            prompt: prompt.to_string(),
            greedy,
            temperature,
            top_k,
            top_p,
            beam,
            max_tokens,
            seed,
        };
        py.detach(|| {
            let mut g = job::lock(&self.inner)?;
            let (m, v) = &mut *g;
            continue_text(m, v, &o).map_err(|e| any_error(e, None))
        })
    }

    /// What the model's layers compute over `text` (a string, or a list of lines), read as
    /// one stream from the start, as `score` reads it: a (tokens, hidden) float32 array of
    /// layer `layer` (-1, the default, is the top layer, which the output layer reads), or
    /// with `layer=None` a (layers, tokens, hidden) array of them all. Row t is the state
    /// after reading token t (see `tokenize`), from which the model predicts token t + 1.
    #[pyo3(signature = (text, *, layer = Some(-1)))]
    fn hidden_states<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyAny>,
        layer: Option<isize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let text = text_of(text)?;
        let hs = py.detach(|| {
            let mut g = job::lock(&self.inner)?;
            let (m, v) = &mut *g;
            hidden_states(m, v, &text, "text").map_err(|e| any_error(e, None))
        })?;
        let (n, w, l_n) = (hs.ids.len(), hs.width, hs.layers.len());
        match layer {
            None => {
                let all: Vec<f32> = hs.layers.concat();
                Ok(PyArray1::from_vec(py, all).reshape([l_n, n, w])?.into_any())
            }
            Some(l) => {
                let k = if l < 0 { l + l_n as isize } else { l };
                if !(0..l_n as isize).contains(&k) {
                    return Err(PyIndexError::new_err(format!(
                        "layer {l}: the model has {l_n} layer(s)"
                    )));
                }
                let mut layers = hs.layers;
                let one = layers.swap_remove(k as usize);
                Ok(PyArray1::from_vec(py, one).reshape([n, w])?.into_any())
            }
        }
    }

    /// The tokens the model reads in `text`, one per row of `hidden_states`: words with
    /// `<eos>` at each line end (unknown words as `<unk>`), or characters.
    fn tokenize(&self, text: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let text = text_of(text)?;
        let g = job::lock(&self.inner)?;
        let (m, v) = &*g;
        let ids = v
            .encode(&text, m.config.level)
            .map_err(|e| FirthError::new_err(format!("text: {e}")))?;
        Ok(ids.iter().map(|&i| v.token(i).to_string()).collect())
    }

    /// The vocabulary, in id order (the columns of the output layer).
    #[getter]
    fn vocab(&self) -> PyResult<Vec<String>> {
        Ok(job::lock(&self.inner)?.1.tokens().to_vec())
    }

    /// The parameters as float32 arrays by name (copies): `out.weight` (vocab, hidden) and
    /// `out.bias` turn the top layer's hidden states into scores (a tied model uses
    /// `embedding.weight` instead of `out.weight`).
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        state_dict(py, job::lock(&self.inner)?.0.params())
    }

    /// Number of tokens in the vocabulary.
    #[getter]
    fn vocab_size(&self) -> PyResult<usize> {
        let g = job::lock(&self.inner)?;
        Ok(g.1.len())
    }

    /// The model's configuration (architecture, sizes, level), as saved in its file.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let g = job::lock(&self.inner)?;
        job::to_py(py, &g.0.config)
    }

    fn __repr__(&self) -> String {
        format!("<firth.lm.LanguageModel from {}>", self.path)
    }
}

/// A string, or a list of lines (joined with newlines, each line ended).
pub(crate) fn text_of(v: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = v.extract::<String>() {
        return Ok(s);
    }
    let lines: Vec<String> = v
        .extract()
        .map_err(|_| PyTypeError::new_err("give the text as a str or a list of str (lines)"))?;
    let mut s = String::new();
    for l in lines {
        s.push_str(&l);
        s.push('\n');
    }
    Ok(s)
}

/// `firth lm train`: returns the model (loaded from `out`) and the run's summary.
#[pyfunction]
#[pyo3(signature = (train, *, out, valid = None, test = None, valid_fraction = 0.1,
    resume = false, max_steps = None, max_seconds = None, threads = None, progress = true,
    **options))]
#[allow(clippy::too_many_arguments)]
fn lm_train<'py>(
    py: Python<'py>,
    train: PathBuf,
    out: PathBuf,
    valid: Option<PathBuf>,
    test: Option<PathBuf>,
    valid_fraction: f64,
    resume: bool,
    max_steps: Option<u64>,
    max_seconds: Option<f64>,
    threads: Option<usize>,
    progress: bool,
    options: Option<Bound<'py, PyDict>>,
) -> PyResult<LanguageModel> {
    let o = Opts(options);
    let activation: Option<String> = o.take("activation")?;
    let rnn_sigmoid = match activation.as_deref() {
        None | Some("tanh") => false,
        Some("sigmoid") => true,
        Some(a) => {
            return Err(FirthError::new_err(format!(
                "activation='{a}': choose tanh or sigmoid"
            )))
        }
    };
    let options = LmOptions {
        preset: o.choice::<LmPreset>("preset")?,
        arch: o.choice("arch")?,
        level: o.choice("level")?,
        layers: o.take("layers")?,
        hidden: o.take("hidden")?,
        emb: o.take("emb")?,
        bptt: o.take("bptt")?,
        batch: o.take("batch")?,
        lr: o.take("lr")?,
        optim: o.choice("optim")?,
        weight_decay: o.take("weight_decay")?,
        clip: o.take("clip")?,
        clip_value: o.take("clip_value")?,
        dropout: o.take("dropout")?,
        dropout_kind: o.choice("dropout_kind")?,
        epochs: o.take("epochs")?,
        lr_decay: o.take("lr_decay")?,
        lr_decay_start: o.take("lr_decay_start")?,
        plateau_decay: o.take("plateau_decay")?,
        init_range: o.take("init_range")?,
        forget_bias: o.take("forget_bias")?,
        tied: o.flag("tied")?,
        residual: o.flag("residual")?,
        context: o.take("context")?,
        rnn_sigmoid,
        reverse: o.flag("reverse")?,
        eval_batch: o.take("eval_batch")?,
        checkpoint_every: o.take("checkpoint_every")?.unwrap_or(0),
        seed: o.take("seed")?.unwrap_or(1),
    };
    o.done()?;
    if !(0.0..1.0).contains(&valid_fraction) {
        return Err(FirthError::new_err("valid_fraction must be in [0, 1)"));
    }
    self::threads(threads)?;
    let data = LmData {
        train,
        valid,
        test,
        valid_fraction,
        out: out.clone(),
        resume,
        limits: limits(max_steps, max_seconds),
    };
    let summary = train_detached(py, progress, "tok", |obs| {
        train_lm(&data, &options, obs).map(|(s, _)| s)
    })?;
    let mut model = py.detach(|| load_lm(&out))?;
    model.summary = Some(job::to_py(py, &summary)?.unbind());
    Ok(model)
}

// ---------------------------------------------------------------------------------------------
// Sentence classifiers

/// A trained sentence classifier (`DIR/model.safetensors` of `firth classify train`).
#[pyclass(module = "firth.classify", frozen)]
pub struct Classifier {
    /// The figures of the run that trained it (None when loaded from disk).
    #[pyo3(get)]
    summary: Option<Py<PyAny>>,
    inner: Mutex<Bundle>,
    #[pyo3(get)]
    labels: Vec<String>,
    #[pyo3(get)]
    path: String,
}

fn load_classifier(path: &Path) -> PyResult<Classifier> {
    let b = Bundle::load(path).map_err(|e| any_error(e, None))?;
    Ok(Classifier {
        summary: None,
        labels: b.labels.clone(),
        inner: Mutex::new(b),
        path: path.display().to_string(),
    })
}

/// Sentences as token lists: each a str (split on whitespace) or a list of tokens.
pub(crate) fn sentences_of(v: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<String>>> {
    if v.extract::<String>().is_ok() {
        return Err(PyTypeError::new_err(
            "give a list of sentences (each a str or a list of tokens), not one str",
        ));
    }
    let mut out = vec![];
    for (i, item) in v.try_iter()?.enumerate() {
        let item = item?;
        let toks: Vec<String> = match item.extract::<String>() {
            Ok(s) => s.split_whitespace().map(str::to_string).collect(),
            Err(_) => item.extract()?,
        };
        if toks.is_empty() {
            return Err(FirthError::new_err(format!("sentence {}: empty", i + 1)));
        }
        out.push(toks);
    }
    Ok(out)
}

impl Classifier {
    fn probs(&self, py: Python<'_>, sents: Vec<Vec<String>>) -> PyResult<(Vec<u32>, Vec<f32>)> {
        py.detach(|| {
            let mut b = job::lock(&self.inner)?;
            let enc = b
                .encode(&sents, Path::new("<sentences>"))
                .map_err(|e| any_error(e, None))?;
            let sc = classifier_scores(&mut b.model, &enc.sents, &enc.lm, None, 128);
            Ok((sc.predictions, sc.probs))
        })
    }
}

#[pymethods]
impl Classifier {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Classifier> {
        py.detach(|| load_classifier(&path))
    }

    /// The predicted label of each sentence (a str, split on whitespace, or a token list).
    fn predict(&self, py: Python<'_>, sentences: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let (pred, _) = self.probs(py, sentences_of(sentences)?)?;
        Ok(pred
            .iter()
            .map(|&p| self.labels[p as usize].clone())
            .collect())
    }

    /// Class probabilities, a (sentences, labels) float32 array; columns follow `labels`.
    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        sentences: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let sents = sentences_of(sentences)?;
        let n = sents.len();
        let (_, probs) = self.probs(py, sents)?;
        Ok(PyArray1::from_vec(py, probs)
            .reshape([n, self.labels.len()])?
            .into_any())
    }

    /// The sentence vectors, a (sentences, D) float32 array: the pooled encoder states the
    /// output layer turns into class scores (`softmax(v @ out.weight.T + out.bias)` is
    /// `predict_proba`), D = hidden (x 2 when bidirectional).
    fn sentence_vectors<'py>(
        &self,
        py: Python<'py>,
        sentences: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let sents = sentences_of(sentences)?;
        let n = sents.len();
        let (v, d) = py.detach(|| {
            let mut b = job::lock(&self.inner)?;
            let enc = b
                .encode(&sents, Path::new("<sentences>"))
                .map_err(|e| any_error(e, None))?;
            let v = sentence_vectors(&mut b.model, &enc.sents, &enc.lm, 128);
            Ok::<_, PyErr>((v, b.model.pool.dim))
        })?;
        Ok(PyArray1::from_vec(py, v).reshape([n, d])?.into_any())
    }

    /// The parameters as float32 arrays by name (copies); `out.weight` (labels, D) and
    /// `out.bias` are the output layer.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        state_dict(py, job::lock(&self.inner)?.model.params())
    }

    fn __repr__(&self) -> String {
        format!(
            "<firth.classify.Classifier from {} (labels {:?})>",
            self.path, self.labels
        )
    }
}

/// `firth classify train`: returns the classifier (the best epoch's, loaded from `out`) and
/// the run's summary.
#[pyfunction]
#[pyo3(signature = (train, *, out, dev = None, test = None, format = None, dev_fraction = 0.1,
    embeddings = None, char_lm = None, folds = None, resume = false, max_steps = None,
    max_seconds = None, threads = None, progress = true, **options))]
#[allow(clippy::too_many_arguments)]
fn classify_train<'py>(
    py: Python<'py>,
    train: PathBuf,
    out: PathBuf,
    dev: Option<PathBuf>,
    test: Option<PathBuf>,
    format: Option<String>,
    dev_fraction: f64,
    embeddings: Option<PathBuf>,
    char_lm: Option<(PathBuf, PathBuf)>,
    folds: Option<usize>,
    resume: bool,
    max_steps: Option<u64>,
    max_seconds: Option<f64>,
    threads: Option<usize>,
    progress: bool,
    options: Option<Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let o = Opts(options);
    let options = ClassifierOptions {
        preset: o.choice::<ClassifyPreset>("preset")?,
        sst_binary: o.take("sst_binary")?,
        phrases: o.take("phrases")?,
        cell: o.choice("cell")?,
        layers: o.take("layers")?,
        hidden: o.take("hidden")?,
        emb: o.take("emb")?,
        bidirectional: o.take("bidirectional")?,
        pooling: o.choice("pooling")?,
        dropout: o.take("dropout")?,
        word_dropout: o.take("word_dropout")?,
        lr: o.take("lr")?,
        optim: o.choice("optim")?,
        weight_decay: o.take("weight_decay")?,
        clip: o.take("clip")?,
        lr_decay: o.take("lr_decay")?,
        epochs: o.take("epochs")?,
        batch: o.take("batch")?,
        patience: o.take("patience")?,
        init_range: o.take("init_range")?,
        freeze: o.flag("freeze")?,
        multichannel: o.flag("multichannel")?,
        seed: o.take("seed")?.unwrap_or(1),
        average: o.take("average")?,
    };
    o.done()?;
    let format = match format {
        None => None,
        Some(f) => Some(
            firth_text::sentiment::Format::from_str(&f, true).map_err(|_| {
                FirthError::new_err(format!("format='{f}': choose sst, tsv or pair"))
            })?,
        ),
    };
    self::threads(threads)?;
    let data = ClassifyData {
        train,
        dev,
        test,
        format,
        dev_fraction,
        embeddings,
        char_lm: char_lm.map(|(f, b)| [f, b]),
        out: out.clone(),
        resume,
        limits: limits(max_steps, max_seconds),
    };
    if let Some(k) = folds {
        // As the command line: K new runs (`out/fold-k`), so nothing to resume.
        if resume {
            return Err(FirthError::new_err(
                "folds trains new models in out/fold-k; leave out resume",
            ));
        }
        let cv = train_detached(py, progress, "ex", |obs| {
            cross_validate(&data, &options, k, obs)
        })?;
        return job::to_py(py, &cv);
    }
    let summary = train_detached(py, progress, "ex", |obs| {
        train_classifier(&data, &options, obs).map(|(s, _)| s)
    })?;
    let mut model = py.detach(|| load_classifier(&out))?;
    model.summary = Some(job::to_py(py, &summary)?.unbind());
    Ok(Bound::new(py, model)?.into_any())
}

// ---------------------------------------------------------------------------------------------
// Sequence taggers

/// A trained sequence tagger (`DIR/model.safetensors` of `firth tag train`).
#[pyclass(module = "firth.tag", frozen)]
pub struct Tagger {
    /// The figures of the run that trained it (None when loaded from disk).
    #[pyo3(get)]
    summary: Option<Py<PyAny>>,
    inner: Mutex<(TaggerModel<f32>, TagVocab)>,
    #[pyo3(get)]
    path: String,
}

fn load_tagger(path: &Path) -> PyResult<Tagger> {
    let m = TaggerModel::load(path).map_err(|e| any_error(e, None))?;
    Ok(Tagger {
        summary: None,
        inner: Mutex::new(m),
        path: path.display().to_string(),
    })
}

#[pymethods]
impl Tagger {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Tagger> {
        py.detach(|| load_tagger(&path))
    }

    /// The tags of each sentence's tokens (sentences as token lists, or strings split on
    /// whitespace), in the training data's tag scheme.
    fn predict(&self, py: Python<'_>, sentences: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<String>>> {
        let sents: Vec<Sentence> = sentences_of(sentences)?
            .into_iter()
            .enumerate()
            .map(|(i, tokens)| Sentence {
                tokens,
                tags: vec![],
                line: i + 1,
                doc: 0,
            })
            .collect();
        py.detach(|| {
            let mut g = job::lock(&self.inner)?;
            let (m, v) = &mut *g;
            let enc = encode(
                &strip_tags(&sents),
                v,
                &m.config,
                m.char_lm.as_ref(),
                Path::new("<sentences>"),
            )
            .map_err(|e| any_error(e, None))?;
            let scheme = v.data_scheme.as_deref().and_then(Scheme::parse);
            Ok(predict_all(m, v, &sents, &enc, scheme, 256))
        })
    }

    /// The encoder's outputs for one sentence (a str, split on whitespace, or a list of
    /// tokens): a (tokens, 2 x hidden) float32 array, the forward and backward states side
    /// by side. The output layer (`out.weight`, `out.bias` in `state_dict`) turns each row
    /// into the tag scores that `predict` decodes (with the CRF's transitions, when it has
    /// one); its columns follow `tags`.
    fn hidden_states<'py>(
        &self,
        py: Python<'py>,
        sentence: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tokens = one_sentence(sentence)?;
        let n = tokens.len();
        let sent = Sentence {
            tokens,
            tags: vec![],
            line: 1,
            doc: 0,
        };
        let (h, d) = py.detach(|| {
            let mut g = job::lock(&self.inner)?;
            let (m, v) = &mut *g;
            let enc = encode(
                std::slice::from_ref(&sent),
                v,
                &m.config,
                m.char_lm.as_ref(),
                Path::new("<sentence>"),
            )
            .map_err(|e| any_error(e, None))?;
            let h = tagger_hidden_states(m, &enc, 1).swap_remove(0);
            Ok::<_, PyErr>((h, m.encoder.out_dim()))
        })?;
        Ok(PyArray1::from_vec(py, h).reshape([n, d])?.into_any())
    }

    /// The parameters as float32 arrays by name (copies); `out.weight` (tags, 2 x hidden) and
    /// `out.bias` are the output layer, `crf.*` the CRF's transitions.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        state_dict(py, job::lock(&self.inner)?.0.params())
    }

    /// The tag set.
    #[getter]
    fn tags(&self) -> PyResult<Vec<String>> {
        let g = job::lock(&self.inner)?;
        Ok(g.1.tags.clone())
    }

    fn __repr__(&self) -> String {
        format!("<firth.tag.Tagger from {}>", self.path)
    }
}

/// `firth tag train`: returns the tagger (the best epoch's, loaded from `out`) and the run's
/// summary.
#[pyfunction]
#[pyo3(signature = (train, *, out, dev = None, test = None, token_col = None, tag_col = None,
    embeddings = None, char_lm = None, resume = false, max_steps = None, max_seconds = None,
    threads = None, progress = true, **options))]
#[allow(clippy::too_many_arguments)]
fn tag_train<'py>(
    py: Python<'py>,
    train: PathBuf,
    out: PathBuf,
    dev: Option<PathBuf>,
    test: Option<PathBuf>,
    token_col: Option<usize>,
    tag_col: Option<usize>,
    embeddings: Option<PathBuf>,
    char_lm: Option<(PathBuf, PathBuf)>,
    resume: bool,
    max_steps: Option<u64>,
    max_seconds: Option<f64>,
    threads: Option<usize>,
    progress: bool,
    options: Option<Bound<'py, PyDict>>,
) -> PyResult<Tagger> {
    let o = Opts(options);
    let options = TaggerOptions {
        preset: o.choice::<TagPreset>("preset")?,
        cell: o.choice("cell")?,
        layers: o.take("layers")?,
        hidden: o.take("hidden")?,
        emb: o.take("emb")?,
        char_dim: o.take("char_dim")?,
        char_hidden: o.take("char_hidden")?,
        dropout: o.take("dropout")?,
        case_dim: o.take("case_dim")?,
        word_dropout: o.take("word_dropout")?,
        char_dropout: o.take("char_dropout")?,
        crf: o.take("crf")?,
        scheme: o.choice("scheme")?,
        init_range: o.take("init_range")?,
        lr: o.take("lr")?,
        optim: o.choice("optim")?,
        lr_decay: o.take("lr_decay")?,
        weight_decay: o.take("weight_decay")?,
        clip: o.take("clip")?,
        epochs: o.take("epochs")?,
        batch: o.take("batch")?,
        seed: o.take("seed")?.unwrap_or(1),
        cased: o.flag("cased")?,
        freeze: o.flag("freeze")?,
        multichannel: o.flag("multichannel")?,
        average: o.take("average")?,
        document_vote: o.flag("document_vote")?,
    };
    o.done()?;
    let columns = match (token_col, tag_col) {
        (None, None) => None,
        (token, tag) => Some(Columns {
            token: token.unwrap_or(0),
            tag,
        }),
    };
    self::threads(threads)?;
    let data = TagData {
        train,
        dev,
        test,
        columns,
        embeddings,
        char_lm: char_lm.map(|(f, b)| [f, b]),
        out: out.clone(),
        resume,
        limits: limits(max_steps, max_seconds),
    };
    let summary = train_detached(py, progress, "sent", |obs| {
        train_tagger(&data, &options, obs).map(|(s, _)| s)
    })?;
    let mut model = py.detach(|| load_tagger(&out))?;
    model.summary = Some(job::to_py(py, &summary)?.unbind());
    Ok(model)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LanguageModel>()?;
    m.add_class::<Classifier>()?;
    m.add_class::<Tagger>()?;
    m.add_function(wrap_pyfunction!(lm_train, m)?)?;
    m.add_function(wrap_pyfunction!(classify_train, m)?)?;
    m.add_function(wrap_pyfunction!(tag_train, m)?)?;
    Ok(())
}
