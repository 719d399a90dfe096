//! `firth.vectors`: word2vec and GloVe training, and `KeyedVectors` shaped like gensim's.

use std::path::PathBuf;

use firth_vectors::embeddings::{QueryError, Term};
use firth_vectors::formats::{self, Format};
use firth_vectors::pipeline::{self, Event};
use firth_vectors::{eval, glove, word2vec, Embeddings};
use numpy::ndarray::{ArrayView1, ArrayView2};
use numpy::{AllowTypeChange, PyArray1, PyArray2, PyArrayLike1, PyArrayMethods};
use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::job::{self, vec_error, Job};
use crate::FirthError;

/// Word vectors: `index_to_key[i]` has row `i` of `vectors`, most frequent words first.
/// Queries follow gensim's `KeyedVectors` (same arguments, same results).
#[pyclass(module = "firth.vectors", frozen)]
pub struct KeyedVectors {
    e: Embeddings,
}

/// A query input owned on the Rust side, so the query can run without the GIL.
enum Owned {
    Key(String),
    Vector(Vec<f32>),
}

impl Owned {
    fn term(&self) -> Term<'_> {
        match self {
            Owned::Key(k) => Term::Key(k),
            Owned::Vector(v) => Term::Vector(v),
        }
    }
}

fn is_ndarray(v: &Bound<'_, PyAny>) -> bool {
    v.hasattr("ndim").unwrap_or(false) && v.hasattr("dtype").unwrap_or(false)
}

fn vector_of(v: &Bound<'_, PyAny>) -> PyResult<Vec<f32>> {
    let a: PyArrayLike1<'_, f32, AllowTypeChange> = v.extract()?;
    Ok(a.as_array().to_vec())
}

fn key_or_vector(v: &Bound<'_, PyAny>) -> PyResult<Owned> {
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Owned::Key(s.to_cow()?.into_owned()));
    }
    if is_ndarray(v) {
        return Ok(Owned::Vector(vector_of(v)?));
    }
    Err(PyTypeError::new_err(format!(
        "expected a word (str) or a vector (1-D numpy array), got {}",
        v.get_type().name()?
    )))
}

/// gensim's accepted forms of `positive` / `negative`: None, one word, one vector, a 2-D
/// array of vectors, or a list of words, vectors and (word or vector, weight) pairs.
fn terms(v: Option<&Bound<'_, PyAny>>, weight: f32) -> PyResult<Vec<(Owned, f32)>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(vec![]);
    };
    if v.is_instance_of::<PyString>() {
        return Ok(vec![(key_or_vector(v)?, weight)]);
    }
    if is_ndarray(v) {
        let ndim: usize = v.getattr("ndim")?.extract()?;
        if ndim == 1 {
            return Ok(vec![(Owned::Vector(vector_of(v)?), weight)]);
        }
    }
    let mut out = vec![];
    for item in v.try_iter()? {
        let item = item?;
        if let Ok(t) = item.cast::<PyTuple>() {
            if t.len() == 2 {
                out.push((key_or_vector(&t.get_item(0)?)?, t.get_item(1)?.extract()?));
                continue;
            }
        }
        out.push((key_or_vector(&item)?, weight));
    }
    Ok(out)
}

fn query_error(e: QueryError) -> PyErr {
    match e {
        QueryError::NotInVocabulary(_) => PyKeyError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

impl KeyedVectors {
    fn index(&self, key: &str) -> PyResult<usize> {
        self.e
            .index_of(key)
            .ok_or_else(|| PyKeyError::new_err(format!("Key '{key}' not present")))
    }

    fn limit(&self, restrict_vocab: Option<usize>) -> usize {
        restrict_vocab.unwrap_or(self.e.len()).min(self.e.len())
    }

    /// A read-only numpy view of `data` (inside `slf`'s buffers), which keeps `slf` alive.
    fn view2<'py>(
        slf: &Bound<'py, Self>,
        data: &[f32],
        rows: usize,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let dim = slf.get().e.dim;
        let view = ArrayView2::from_shape((rows, dim), data)
            .map_err(|e| FirthError::new_err(e.to_string()))?;
        // SAFETY: `data` lives in `slf`'s `Embeddings` (its matrix or its cached unit rows),
        // which never move or change after construction; the array holds `slf` as its base
        // object, so the buffer outlives the array.
        let a = unsafe { PyArray2::borrow_from_array(&view, slf.clone().into_any()) };
        read_only(a.as_any())?;
        Ok(a)
    }
}

/// Clears numpy's WRITEABLE flag: the buffer is firth's, shared with its queries.
fn read_only(a: &Bound<'_, PyAny>) -> PyResult<()> {
    a.getattr("flags")?.setattr("writeable", false)
}

fn ranked<'py>(py: Python<'py>, r: Vec<(String, f32)>) -> PyResult<Bound<'py, PyAny>> {
    let items: Vec<(String, f64)> = r.into_iter().map(|(w, s)| (w, s as f64)).collect();
    Ok(PyList::new(py, items)?.into_any())
}

#[pymethods]
impl KeyedVectors {
    /// Loads vectors saved by word2vec (binary or text), GloVe (text) or firth; the format is
    /// read from the file itself, so `binary` need not be given. `limit` keeps the first
    /// `limit` vectors.
    #[staticmethod]
    #[pyo3(signature = (fname, binary = None, limit = None))]
    fn load_word2vec_format(
        py: Python<'_>,
        fname: PathBuf,
        binary: Option<bool>,
        limit: Option<usize>,
    ) -> PyResult<KeyedVectors> {
        let _ = binary;
        let e = py
            .detach(|| formats::load(&fname))
            .map_err(|e| vec_error(e, None))?;
        let e = match limit {
            Some(n) if n < e.len() => Embeddings::new(
                e.words[..n].to_vec(),
                e.dim,
                e.matrix()[..n * e.dim].to_vec(),
            ),
            _ => e,
        };
        Ok(KeyedVectors { e })
    }

    /// Vectors from `keys` and a (len(keys), dim) array (copied into firth's buffer).
    #[staticmethod]
    fn from_arrays(
        keys: Vec<String>,
        vectors: numpy::PyReadonlyArray2<'_, f32>,
    ) -> PyResult<KeyedVectors> {
        let a = vectors.as_array();
        if a.nrows() != keys.len() {
            return Err(PyValueError::new_err(format!(
                "{} keys but {} rows of vectors",
                keys.len(),
                a.nrows()
            )));
        }
        let dim = a.ncols();
        Ok(KeyedVectors {
            e: Embeddings::new(keys, dim, a.iter().copied().collect()),
        })
    }

    /// Saves in word2vec's text format, or its binary format with `binary=True`.
    #[pyo3(signature = (fname, binary = false))]
    fn save_word2vec_format(&self, py: Python<'_>, fname: PathBuf, binary: bool) -> PyResult<()> {
        let format = if binary {
            Format::Word2VecBin
        } else {
            Format::Word2VecText
        };
        py.detach(|| formats::save(&fname, format, &self.e.words, self.e.dim, self.e.matrix()))
            .map_err(|e| vec_error(e, None))
    }

    /// The (len, vector_size) float32 matrix: a read-only view of firth's own buffer, no copy.
    #[getter]
    fn vectors<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let e = &slf.get().e;
        Self::view2(slf, e.matrix(), e.len())
    }

    /// The rows scaled to unit length (computed once, then shared, read-only).
    fn get_normed_vectors<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let e = &slf.get().e;
        Self::view2(slf, e.normed(), e.len())
    }

    /// Address of firth's vector buffer (for checking that `vectors` is not a copy).
    fn _buffer_address(&self) -> usize {
        self.e.matrix().as_ptr() as usize
    }

    #[getter]
    fn vector_size(&self) -> usize {
        self.e.dim
    }

    #[getter]
    fn index_to_key(&self) -> Vec<String> {
        self.e.words.clone()
    }

    #[getter]
    fn key_to_index<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        // The first occurrence of a repeated word wins, as in gensim and `index_of`.
        for (i, w) in self.e.words.iter().enumerate().rev() {
            d.set_item(w, i)?;
        }
        Ok(d)
    }

    fn get_index(&self, key: &str) -> PyResult<usize> {
        self.index(key)
    }

    /// The vector of `key`: a read-only view of its row (unit length with `norm=True`).
    #[pyo3(signature = (key, norm = false))]
    fn get_vector<'py>(
        slf: &Bound<'py, Self>,
        key: &str,
        norm: bool,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let me = slf.get();
        let i = me.index(key)?;
        let d = me.e.dim;
        let data = if norm {
            &me.e.normed()[i * d..(i + 1) * d]
        } else {
            me.e.vector(i)
        };
        let view = ArrayView1::from(data);
        // SAFETY: as in `view2`: the row lives in `slf`, the array's base object.
        let a = unsafe { PyArray1::borrow_from_array(&view, slf.clone().into_any()) };
        read_only(a.as_any())?;
        Ok(a)
    }

    /// `kv["word"]` is its vector (a view); `kv[["a", "b"]]` stacks them (a copy).
    fn __getitem__<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(s) = key.cast::<PyString>() {
            return Ok(Self::get_vector(slf, &s.to_cow()?, false)?.into_any());
        }
        let me = slf.get();
        let keys: Vec<String> = key.extract()?;
        let mut data = Vec::with_capacity(keys.len() * me.e.dim);
        for k in &keys {
            data.extend_from_slice(me.e.vector(me.index(k)?));
        }
        let a = PyArray1::from_vec(slf.py(), data);
        Ok(a.reshape([keys.len(), me.e.dim])?.into_any())
    }

    fn __contains__(&self, key: &str) -> bool {
        self.e.index_of(key).is_some()
    }

    fn has_index_for(&self, key: &str) -> bool {
        self.e.index_of(key).is_some()
    }

    fn __len__(&self) -> usize {
        self.e.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "<firth.vectors.KeyedVectors: {} keys, vector_size {}>",
            self.e.len(),
            self.e.dim
        )
    }

    /// Cosine similarity of two words.
    fn similarity(&self, w1: &str, w2: &str) -> PyResult<f64> {
        self.index(w1)?;
        self.index(w2)?;
        Ok(self.e.similarity(w1, w2).unwrap_or(0.0) as f64)
    }

    /// 1 - similarity.
    fn distance(&self, w1: &str, w2: &str) -> PyResult<f64> {
        Ok(1.0 - self.similarity(w1, w2)?)
    }

    /// The `topn` words nearest (cosine) to the mean of the positive words' unit vectors minus
    /// the negative ones', the query words left out; `(word, weight)` pairs and raw vectors
    /// are accepted, as in gensim. With `topn=None`, the similarity of every word (an array).
    /// `restrict_vocab` limits the answers to the most frequent words.
    #[pyo3(signature = (positive = None, negative = None, topn = Some(10), restrict_vocab = None))]
    fn most_similar<'py>(
        &self,
        py: Python<'py>,
        positive: Option<&Bound<'py, PyAny>>,
        negative: Option<&Bound<'py, PyAny>>,
        topn: Option<usize>,
        restrict_vocab: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut t = terms(positive, 1.0)?;
        t.extend(terms(negative, -1.0)?);
        let limit = self.limit(restrict_vocab);
        let owned: Vec<(Term, f32)> = t.iter().map(|(o, w)| (o.term(), *w)).collect();
        match topn {
            None => {
                let q = self.e.mean_vector(&owned).map_err(query_error)?;
                let all = py.detach(|| self.e.cosines(&q, limit));
                Ok(PyArray1::from_vec(py, all).into_any())
            }
            Some(0) => Ok(PyList::empty(py).into_any()),
            Some(n) => {
                let r = py
                    .detach(|| self.e.most_similar(&owned, n, limit))
                    .map_err(query_error)?;
                ranked(py, r)
            }
        }
    }

    /// `most_similar(positive=[word], topn=topn)`.
    #[pyo3(signature = (word, topn = Some(10), restrict_vocab = None))]
    fn similar_by_word<'py>(
        &self,
        py: Python<'py>,
        word: &Bound<'py, PyAny>,
        topn: Option<usize>,
        restrict_vocab: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.most_similar(py, Some(word), None, topn, restrict_vocab)
    }

    /// `most_similar(positive=[vector], topn=topn)`.
    #[pyo3(signature = (vector, topn = Some(10), restrict_vocab = None))]
    fn similar_by_vector<'py>(
        &self,
        py: Python<'py>,
        vector: &Bound<'py, PyAny>,
        topn: Option<usize>,
        restrict_vocab: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let v = Owned::Vector(vector_of(vector)?);
        let limit = self.limit(restrict_vocab);
        let t = [(v.term(), 1.0)];
        match topn {
            None => {
                let q = self.e.mean_vector(&t).map_err(query_error)?;
                Ok(PyArray1::from_vec(py, self.e.cosines(&q, limit)).into_any())
            }
            Some(n) => ranked(py, self.e.most_similar(&t, n, limit).map_err(query_error)?),
        }
    }

    /// 3CosMul (Levy and Goldberg 2014): the `topn` words maximising the product of shifted
    /// cosines to the positive words over that to the negative ones, as gensim computes it.
    #[pyo3(signature = (positive = None, negative = None, topn = Some(10), restrict_vocab = None))]
    fn most_similar_cosmul<'py>(
        &self,
        py: Python<'py>,
        positive: Option<&Bound<'py, PyAny>>,
        negative: Option<&Bound<'py, PyAny>>,
        topn: Option<usize>,
        restrict_vocab: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pos: Vec<Owned> = terms(positive, 1.0)?.into_iter().map(|t| t.0).collect();
        let neg: Vec<Owned> = terms(negative, -1.0)?.into_iter().map(|t| t.0).collect();
        let p: Vec<Term> = pos.iter().map(Owned::term).collect();
        let n: Vec<Term> = neg.iter().map(Owned::term).collect();
        let limit = self.limit(restrict_vocab);
        match topn {
            None => {
                let s = py
                    .detach(|| self.e.cosmul_scores(&p, &n, limit))
                    .map_err(query_error)?;
                Ok(PyArray1::from_vec(py, s).into_any())
            }
            Some(0) => Ok(PyList::empty(py).into_any()),
            Some(k) => {
                let r = py
                    .detach(|| self.e.most_similar_cosmul(&p, &n, k, limit))
                    .map_err(query_error)?;
                ranked(py, r)
            }
        }
    }

    /// The word least like the others (words outside the vocabulary are ignored).
    fn doesnt_match(&self, words: Vec<String>) -> PyResult<String> {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        self.e.doesnt_match(&w).map_err(|e| match e {
            QueryError::NoInput => PyValueError::new_err("cannot select a word from an empty list"),
            e => query_error(e),
        })
    }

    /// Analogy accuracy with 3CosAdd as gensim computes it: returns (score, sections), each
    /// section a dict with 'section', 'correct' and 'incorrect' (lists of four uppercased
    /// words), the last one 'Total accuracy'. With `dummy4unknown=True` questions with a word
    /// outside the first `restrict_vocab` words count as incorrect (listed after the others
    /// of their section) instead of being skipped.
    #[pyo3(signature = (analogies, restrict_vocab = 300000, case_insensitive = true,
        dummy4unknown = false, similarity_function = "most_similar"))]
    fn evaluate_word_analogies<'py>(
        &self,
        py: Python<'py>,
        analogies: PathBuf,
        restrict_vocab: usize,
        case_insensitive: bool,
        dummy4unknown: bool,
        similarity_function: &str,
    ) -> PyResult<(f64, Bound<'py, PyList>)> {
        if !case_insensitive {
            return Err(PyValueError::new_err(
                "firth evaluates analogies case-insensitively (gensim's default); case_insensitive=False is not supported",
            ));
        }
        if similarity_function != "most_similar" {
            return Err(PyValueError::new_err(
                "firth answers analogies with 3CosAdd (similarity_function='most_similar')",
            ));
        }
        let (sections, skipped) = py
            .detach(|| eval::analogy_outcomes(&self.e, &analogies, restrict_vocab))
            .map_err(|e| vec_error(e, None))?;
        if let Some(w) = skipped.warning(&analogies, "four words") {
            py.import("warnings")?.call_method1("warn", (w,))?;
        }
        let tuple = |q: &[String; 4]| (q[0].clone(), q[1].clone(), q[2].clone(), q[3].clone());
        let out = PyList::empty(py);
        let (mut all_correct, mut all_incorrect) = (vec![], vec![]);
        for s in &sections {
            let correct: Vec<_> = s.correct.iter().map(tuple).collect();
            let mut incorrect: Vec<_> = s.incorrect.iter().map(tuple).collect();
            if dummy4unknown {
                incorrect.extend(s.oov.iter().map(tuple));
            }
            let d = PyDict::new(py);
            d.set_item("section", &s.name)?;
            d.set_item("correct", correct.clone())?;
            d.set_item("incorrect", incorrect.clone())?;
            out.append(d)?;
            all_correct.extend(correct);
            all_incorrect.extend(incorrect);
        }
        let (c, i) = (all_correct.len(), all_incorrect.len());
        let d = PyDict::new(py);
        d.set_item("section", "Total accuracy")?;
        d.set_item("correct", all_correct)?;
        d.set_item("incorrect", all_incorrect)?;
        out.append(d)?;
        let score = if c + i == 0 {
            0.0
        } else {
            c as f64 / (c + i) as f64
        };
        Ok((score, out))
    }

    /// Word-pair similarity as gensim computes it: returns (pearson, spearman, oov_ratio),
    /// the first two as scipy's results (statistic, pvalue), oov_ratio in percent.
    #[pyo3(signature = (pairs, delimiter = "\t", encoding = "utf8", restrict_vocab = 300000,
        case_insensitive = true, dummy4unknown = false))]
    #[allow(clippy::too_many_arguments)]
    fn evaluate_word_pairs<'py>(
        &self,
        py: Python<'py>,
        pairs: PathBuf,
        delimiter: &str,
        encoding: &str,
        restrict_vocab: usize,
        case_insensitive: bool,
        dummy4unknown: bool,
    ) -> PyResult<Bound<'py, PyTuple>> {
        if delimiter != "\t" || !matches!(encoding, "utf8" | "utf-8") {
            return Err(PyValueError::new_err(
                "firth reads word-pair files as UTF-8 with tab-separated fields (gensim's defaults)",
            ));
        }
        if !case_insensitive || dummy4unknown {
            return Err(PyValueError::new_err(
                "firth evaluates word pairs case-insensitively, skipping pairs with unknown words (gensim's defaults)",
            ));
        }
        let r = py
            .detach(|| eval::evaluate_pairs(&self.e, &pairs, restrict_vocab))
            .map_err(|e| vec_error(e, None))?;
        if let Some(w) = r.skipped.warning(&pairs, "word1<TAB>word2<TAB>score") {
            py.import("warnings")?.call_method1("warn", (w,))?;
        }
        let results = py.import("firth._results")?;
        let pearson = results
            .getattr("PearsonRResult")?
            .call1((r.pearson, r.pearson_p))?;
        let spearman = results
            .getattr("SignificanceResult")?
            .call1((r.spearman, r.spearman_p))?;
        let oov_ratio = 100.0 * r.oov as f64 / (r.pairs + r.oov) as f64;
        PyTuple::new(
            py,
            [pearson, spearman, oov_ratio.into_pyobject(py)?.into_any()],
        )
    }
}

/// Trains word2vec on `corpus_file` (one sentence per line, words separated by whitespace)
/// with the command line's pipeline; returns the vectors and the run's summary (as
/// `firth vectors word2vec --json` prints it).
#[pyfunction]
#[pyo3(signature = (corpus_file, *, vector_size, window, min_count, max_vocab, sg, hs,
    negative, sample, alpha, epochs, workers, seed, progress))]
#[allow(clippy::too_many_arguments)]
fn train_word2vec<'py>(
    py: Python<'py>,
    corpus_file: PathBuf,
    vector_size: usize,
    window: usize,
    min_count: u64,
    max_vocab: usize,
    sg: bool,
    hs: bool,
    negative: usize,
    sample: f64,
    alpha: f32,
    epochs: u32,
    workers: usize,
    seed: u64,
    progress: bool,
) -> PyResult<(KeyedVectors, Bound<'py, PyAny>)> {
    if vector_size == 0 || window == 0 || epochs == 0 || workers == 0 {
        return Err(FirthError::new_err(
            "vector_size, window, epochs and workers must be at least 1",
        ));
    }
    if !(0.0..=1.0).contains(&sample) {
        return Err(FirthError::new_err("sample must be between 0 and 1"));
    }
    if !(alpha > 0.0 && alpha.is_finite()) {
        return Err(FirthError::new_err("alpha must be positive"));
    }
    let model = if sg {
        word2vec::Model::SkipGram
    } else {
        word2vec::Model::Cbow
    };
    let cfg = word2vec::Config {
        model,
        dim: vector_size,
        window,
        negative,
        hs,
        sample,
        min_count,
        max_vocab,
        alpha,
        epochs,
        threads: workers,
        seed,
        ..Default::default()
    };
    let job = Job::new();
    let r = py.detach(|| {
        let pb = job::bar(0, progress, "{bar:30} {percent:>3}% {msg} ETA {eta}");
        let r = pipeline::train_word2vec(&corpus_file, &cfg, &job.stop, &mut |ev| {
            job.poll();
            match ev {
                Event::Counted(c) => {
                    if let Some(w) = c.utf8_warning(&corpus_file) {
                        eprintln!("warning: {w}");
                    }
                    if progress {
                        eprintln!(
                            "vocabulary {} words, {} training words",
                            c.vocab_size, c.train_words
                        );
                    }
                    pb.set_length(cfg.epochs as u64 * c.train_words);
                }
                Event::Training(p) => {
                    pb.set_position(p.words_done);
                    let wps = p.words_done as f64 / p.elapsed.max(1e-9);
                    pb.set_message(format!(
                        "epoch {} {:.0}k words/s lr {:.5} loss {:.4}",
                        p.epoch + 1,
                        wps / 1e3,
                        p.alpha,
                        p.loss
                    ));
                }
            }
        });
        pb.finish_and_clear();
        if let (Ok((_, s)), true) = (&r, progress) {
            eprintln!(
                "trained {} words in {:.1}s ({:.0} words/s, {:.0} words/thread/s), loss {:.4}",
                s.words_processed,
                s.train_seconds,
                s.words_per_second,
                s.words_per_second / workers as f64,
                s.final_loss
            );
        }
        r
    });
    let (e, summary) = r.map_err(|e| vec_error(e, Some(&job)))?;
    Ok((KeyedVectors { e }, job::to_py(py, &summary)?))
}

/// Trains GloVe on `corpus_file` with the command line's pipeline; returns the vectors and
/// the run's summary.
#[pyfunction]
#[pyo3(signature = (corpus_file, *, vector_size, window, x_max, alpha, eta, epochs,
    min_count, max_vocab, memory, workers, seed, vectors, progress))]
#[allow(clippy::too_many_arguments)]
fn train_glove<'py>(
    py: Python<'py>,
    corpus_file: PathBuf,
    vector_size: usize,
    window: usize,
    x_max: f64,
    alpha: f64,
    eta: f64,
    epochs: u32,
    min_count: u64,
    max_vocab: usize,
    memory: f64,
    workers: usize,
    seed: u64,
    vectors: &str,
    progress: bool,
) -> PyResult<(KeyedVectors, Bound<'py, PyAny>)> {
    if vector_size == 0 || window == 0 || epochs == 0 || workers == 0 {
        return Err(FirthError::new_err(
            "vector_size, window, epochs and workers must be at least 1",
        ));
    }
    for (name, v) in [
        ("x_max", x_max),
        ("alpha", alpha),
        ("eta", eta),
        ("memory", memory),
    ] {
        if !(v > 0.0 && v.is_finite()) {
            return Err(FirthError::new_err(format!("{name} must be positive")));
        }
    }
    let which = match vectors {
        "sum" => glove::Vectors::Sum,
        "word" => glove::Vectors::Word,
        "context" => glove::Vectors::Context,
        other => {
            return Err(FirthError::new_err(format!(
                "vectors='{other}': choose 'sum', 'word' or 'context'"
            )))
        }
    };
    let cfg = glove::Config {
        dim: vector_size,
        window,
        x_max,
        alpha,
        eta,
        epochs,
        min_count,
        max_vocab,
        memory_bytes: (memory * 1e9) as u64,
        threads: workers,
        seed,
    };
    let job = Job::new();
    let r = py.detach(|| {
        let pb = job::bar(
            cfg.epochs as u64,
            progress,
            "{bar:30} {percent:>3}% {msg} ETA {eta}",
        );
        let r = pipeline::train_glove(&corpus_file, &cfg, which, &job.stop, &mut |ev| {
            job.poll();
            match ev {
                Event::Counted(c) => {
                    if let Some(w) = c.utf8_warning(&corpus_file) {
                        eprintln!("warning: {w}");
                    }
                    if progress {
                        eprintln!("vocabulary {} words ({:.1}s)", c.vocab_size, c.seconds);
                    }
                }
                Event::Training(p) => {
                    pb.set_position(p.epoch as u64);
                    pb.set_message(format!("{} cost {:.5}", p.stage, p.cost));
                }
            }
        });
        pb.finish_and_clear();
        r
    });
    let (e, summary) = r.map_err(|e| vec_error(e, Some(&job)))?;
    Ok((KeyedVectors { e }, job::to_py(py, &summary)?))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<KeyedVectors>()?;
    m.add_function(wrap_pyfunction!(train_word2vec, m)?)?;
    m.add_function(wrap_pyfunction!(train_glove, m)?)?;
    Ok(())
}
