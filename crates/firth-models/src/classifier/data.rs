//! Labelled sentences as ids (and character-LM features, for a model that reads them).

use super::ClassifierConfig;
use crate::char_features::CharFeatures;
use anyhow::{bail, Context, Result};
use firth_text::sentiment::Example;
use firth_text::Vocab;
use std::path::Path;

/// A data set as ids.
#[derive(Clone, Debug, Default)]
pub struct Encoded {
    pub sents: Vec<Vec<u32>>,
    /// Frozen character-LM features of each sentence, (tokens, char_lm_dim) row-major; no
    /// entries at all for a model without them (what [`super::Classifier::forward`] takes).
    pub lm: Vec<Vec<f32>>,
    /// One per sentence; empty for unlabelled sentences ([`encode_sentences`]).
    pub labels: Vec<u32>,
}

/// Ids of `tokens`, with unknown words mapped to `<unk>` (id 0).
pub fn encode_tokens(vocab: &Vocab, tokens: &[String]) -> Vec<u32> {
    tokens.iter().map(|t| vocab.get(t).unwrap_or(0)).collect()
}

/// Labels in order of first appearance in the training data.
pub fn label_set(ex: &[Example]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for e in ex {
        if !labels.contains(&e.label) {
            labels.push(e.label.clone());
        }
    }
    // Sorted, so the same label set gives the same ids whatever the data order.
    labels.sort();
    labels
}

/// Unlabelled sentences (each non-empty) as the inputs of a model with `config`: ids, and
/// for a model with character-LM features (`char_lm_dim` > 0) their features from `char_lm`
/// (the model's [`super::Classifier::char_lm`]), which reads every sentence here once. An
/// empty sentence, or a model without its LMs, is an error naming `what`.
pub fn encode_sentences<S: AsRef<[String]> + Sync>(
    vocab: &Vocab,
    config: &ClassifierConfig,
    char_lm: Option<&CharFeatures>,
    sents: &[S],
    what: &Path,
) -> Result<Encoded> {
    if let Some(i) = sents.iter().position(|s| s.as_ref().is_empty()) {
        bail!(
            "{}: sentence {} is empty; give each sentence at least one token",
            what.display(),
            i + 1
        );
    }
    let lm = match CharFeatures::for_model(config.char_lm_dim, char_lm, what)? {
        Some(lm) => lm.extract(sents),
        None => Vec::new(),
    };
    Ok(Encoded {
        sents: sents
            .iter()
            .map(|s| encode_tokens(vocab, s.as_ref()))
            .collect(),
        lm,
        labels: Vec::new(),
    })
}

/// Ids (and features, as [`encode_sentences`]) of examples; a label outside `labels` is an
/// error naming the file and example.
pub fn encode_set(
    vocab: &Vocab,
    labels: &[String],
    config: &ClassifierConfig,
    char_lm: Option<&CharFeatures>,
    ex: &[Example],
    what: &Path,
) -> Result<Encoded> {
    let mut y = Vec::with_capacity(ex.len());
    for (i, e) in ex.iter().enumerate() {
        let id = labels.iter().position(|l| l == &e.label).with_context(|| {
            format!(
                "{}: example {} has the label {:?}, which the training data does not have (its labels: {})",
                what.display(),
                i + 1,
                e.label,
                labels.join(", ")
            )
        })?;
        y.push(id as u32);
    }
    let tokens: Vec<&[String]> = ex.iter().map(|e| &e.tokens[..]).collect();
    let mut out = encode_sentences(vocab, config, char_lm, &tokens, what)?;
    out.labels = y;
    Ok(out)
}
