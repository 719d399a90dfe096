//! Scoring a tagger: accuracy, and conlleval's figures for span tags.

use super::batch::Batch;
use super::vocab::{detect_scheme, Encoded, TagVocab};
use super::Tagger;
use firth_eval::ner::{ConllEval, NerReport};
use firth_nn::Rng;
use firth_text::conll::{convert, document_vote, Scheme, Sentence};
use serde::Serialize;
use std::time::Instant;

/// Scores of a tagged data set.
#[derive(Clone, Debug, Serialize)]
pub struct TagScores {
    /// Token accuracy in percent, on tags in the file's own scheme.
    pub accuracy: f64,
    /// conlleval's report, for span tags.
    pub ner: Option<NerReport>,
    pub sentences: usize,
    pub sentences_per_second: f64,
}

/// Predicted tags (strings, in `out_scheme` for span tags) of every sentence of `sents`
/// (`data` is their encoding), voted per document ([`document_vote`]) when the model's config
/// asks for it.
pub fn predict_all(
    model: &mut Tagger<f32>,
    vocab: &TagVocab,
    sents: &[Sentence],
    data: &[Encoded],
    out_scheme: Option<Scheme>,
    batch: usize,
) -> Vec<Vec<String>> {
    assert_eq!(sents.len(), data.len(), "one encoding per sentence");
    // Sentences sorted by length make batches with little padding.
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.sort_by_key(|&i| data[i].words.len());
    let mut out: Vec<Vec<String>> = data
        .iter()
        .map(|s| vec![String::new(); s.words.len()])
        .collect();
    let mut b = Batch::default();
    let mut pred = Vec::new();
    for chunk in order.chunks(batch.max(1)) {
        b.fill(data, chunk);
        model.predict(&b, &mut pred);
        for (&(i, t), &p) in b.origin.iter().zip(&pred) {
            out[i][t] = vocab.tags[p as usize].clone();
        }
    }
    if let (Some(s), Some(_)) = (out_scheme, vocab.scheme()) {
        for tags in &mut out {
            *tags = convert(tags, s);
        }
    }
    if let (true, Some(s)) = (model.config.document_vote, out_scheme.or(vocab.scheme())) {
        document_vote(sents, &mut out, s);
    }
    out
}

/// The encoder's outputs for every token of every sentence ([`Tagger::hidden`]): one
/// (tokens, D) block per sentence, rows in token order, run in batches of `batch` sentences of
/// similar length as [`predict_all`] runs them.
pub fn hidden_states(model: &mut Tagger<f32>, data: &[Encoded], batch: usize) -> Vec<Vec<f32>> {
    let d = model.encoder.out_dim();
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.sort_by_key(|&i| data[i].words.len());
    let mut out: Vec<Vec<f32>> = data.iter().map(|s| vec![0.0; s.words.len() * d]).collect();
    let mut b = Batch::default();
    let mut rng = Rng::new(0);
    for chunk in order.chunks(batch.max(1)) {
        b.fill(data, chunk);
        model.scores(&b, false, &mut rng);
        for (&(i, t), h) in b.origin.iter().zip(model.hidden().chunks_exact(d)) {
            out[i][t * d..(t + 1) * d].copy_from_slice(h);
        }
    }
    out
}

/// Accuracy (and conlleval figures for span tags) of the model on gold sentences; predictions
/// are converted to the gold file's scheme first, so the figures are conlleval's on the
/// predictions `firth tag predict` writes.
pub fn evaluate(
    model: &mut Tagger<f32>,
    vocab: &TagVocab,
    gold: &[Sentence],
    data: &[Encoded],
    batch: usize,
) -> TagScores {
    let start = Instant::now();
    let file_scheme = detect_scheme(gold).or(vocab.scheme());
    let pred = predict_all(model, vocab, gold, data, file_scheme, batch);
    let secs = start.elapsed().as_secs_f64();
    let mut ev = ConllEval::new();
    for (g, p) in gold.iter().zip(&pred) {
        ev.add_sentence(&g.tags, p);
    }
    let report = ev.report();
    TagScores {
        accuracy: report.accuracy,
        ner: vocab.scheme().map(|_| report),
        sentences: gold.len(),
        sentences_per_second: gold.len() as f64 / secs.max(1e-9),
    }
}
