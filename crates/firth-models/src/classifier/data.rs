//! Labelled sentences as ids.

use anyhow::{Context, Result};
use firth_text::sentiment::Example;
use firth_text::Vocab;
use std::path::Path;

/// A labelled data set as ids.
#[derive(Clone, Debug, Default)]
pub struct Encoded {
    pub sents: Vec<Vec<u32>>,
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

/// Ids of examples; a label outside `labels` is an error naming the file and example.
pub fn encode_set(
    vocab: &Vocab,
    labels: &[String],
    ex: &[Example],
    what: &Path,
) -> Result<Encoded> {
    let mut out = Encoded::default();
    for (i, e) in ex.iter().enumerate() {
        let y = labels.iter().position(|l| l == &e.label).with_context(|| {
            format!(
                "{}: example {} has the label {:?}, which the training data does not have (its labels: {})",
                what.display(),
                i + 1,
                e.label,
                labels.join(", ")
            )
        })?;
        out.sents.push(encode_tokens(vocab, &e.tokens));
        out.labels.push(y as u32);
    }
    Ok(out)
}
