//! Loss, accuracy and predictions of a classifier.

use super::Classifier;
use firth_nn::Rng;

/// Loss, accuracy and predictions of `model` on `data`.
#[derive(Clone, Debug)]
pub struct Scores {
    pub loss: f64,
    pub accuracy: f64,
    pub predictions: Vec<u32>,
    /// (N, C)
    pub probs: Vec<f32>,
}

/// Scores `sents` (with `labels`, or predictions only) in batches of `batch`; `lm` are their
/// character-LM features ([`super::Encoded::lm`]: one entry per sentence, or none for a model
/// without them).
pub fn evaluate(
    model: &mut Classifier<f32>,
    sents: &[Vec<u32>],
    lm: &[Vec<f32>],
    labels: Option<&[u32]>,
    batch: usize,
) -> Scores {
    let batch = batch.max(1);
    let mut rng = Rng::new(0);
    let c = model.config.classes;
    let mut loss = 0.0;
    let mut correct = 0usize;
    let mut predictions = Vec::with_capacity(sents.len());
    let mut probs = Vec::with_capacity(sents.len() * c);
    for (k, chunk) in sents.chunks(batch).enumerate() {
        let refs: Vec<&[u32]> = chunk.iter().map(|s| &s[..]).collect();
        let feats = batch_features(lm, k * batch..k * batch + chunk.len());
        let y = labels.map(|l| &l[k * batch..k * batch + chunk.len()]);
        loss += model.forward(&refs, &feats, y, false, &mut rng);
        for (j, row) in model.probs().chunks_exact(c).enumerate() {
            let best = argmax(row);
            if y.is_some_and(|y| y[j] == best) {
                correct += 1;
            }
            predictions.push(best);
            probs.extend_from_slice(row);
        }
    }
    let n = sents.len().max(1) as f64;
    Scores {
        loss: loss / n,
        accuracy: 100.0 * correct as f64 / n,
        predictions,
        probs,
    }
}

/// The sentence vectors of `sents` (N, D, rows in input order), in batches of `batch`: the
/// pooled encoder states the output layer turns into class scores ([`Classifier::pooled`]).
/// `lm` as for [`evaluate`].
pub fn sentence_vectors(
    model: &mut Classifier<f32>,
    sents: &[Vec<u32>],
    lm: &[Vec<f32>],
    batch: usize,
) -> Vec<f32> {
    let batch = batch.max(1);
    let mut rng = Rng::new(0);
    let mut out = Vec::with_capacity(sents.len() * model.pool.dim);
    for (k, chunk) in sents.chunks(batch).enumerate() {
        let refs: Vec<&[u32]> = chunk.iter().map(|s| &s[..]).collect();
        let feats = batch_features(lm, k * batch..k * batch + chunk.len());
        model.forward(&refs, &feats, None, false, &mut rng);
        out.extend_from_slice(model.pooled());
    }
    out
}

/// The features of the sentences `rows` ([`Classifier::forward`]'s `lm`): none when the
/// model reads none.
pub(super) fn batch_features(
    lm: &[Vec<f32>],
    rows: impl IntoIterator<Item = usize>,
) -> Vec<&[f32]> {
    if lm.is_empty() {
        return Vec::new();
    }
    rows.into_iter().map(|i| &lm[i][..]).collect()
}

pub(super) fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}
