//! The source and target vocabularies of a translator, with the four special symbols.

use firth_text::Vocab;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub const UNK: &str = "<unk>";
pub const PAD: &str = "<pad>";
pub const BOS: &str = "<s>";
pub const EOS: &str = "</s>";
/// The specials' ids, the same in both vocabularies.
pub const UNK_ID: u32 = 0;
pub const PAD_ID: u32 = 1;
pub const BOS_ID: u32 = 2;
pub const EOS_ID: u32 = 3;
const SPECIALS: [&str; 4] = [UNK, PAD, BOS, EOS];

/// Source and target vocabularies: the specials, then the training words seen at least
/// `min_count` times, most frequent first (ties in byte order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransVocab {
    pub src: Vocab,
    pub tgt: Vocab,
}

/// The vocabulary of `sents` as described on [`TransVocab`].
pub fn build_side<'a>(sents: impl Iterator<Item = &'a [String]>, min_count: usize) -> Vocab {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for s in sents {
        for w in s {
            *counts.entry(w.as_str()).or_default() += 1;
        }
    }
    let mut keep: Vec<(&str, usize)> = counts
        .into_iter()
        .filter(|(w, c)| *c >= min_count.max(1) && !SPECIALS.contains(w))
        .collect();
    keep.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let tokens = SPECIALS
        .iter()
        .map(|s| s.to_string())
        .chain(keep.into_iter().map(|(w, _)| w.to_string()))
        .collect();
    Vocab::from_tokens(tokens)
}

impl TransVocab {
    /// Both sides from training pairs.
    pub fn build(pairs: &[(Vec<String>, Vec<String>)], min_count: usize) -> TransVocab {
        TransVocab {
            src: build_side(pairs.iter().map(|p| &p.0[..]), min_count),
            tgt: build_side(pairs.iter().map(|p| &p.1[..]), min_count),
        }
    }

    /// Rebuilds the lookup maps after deserialising.
    pub fn reindex(&mut self) {
        self.src.reindex();
        self.tgt.reindex();
    }

    /// True when both sides start with the specials in their fixed places.
    pub fn well_formed(&self) -> bool {
        [&self.src, &self.tgt].iter().all(|v| {
            v.len() >= SPECIALS.len()
                && SPECIALS
                    .iter()
                    .enumerate()
                    .all(|(i, s)| v.token(i as u32) == *s)
        })
    }
}

/// Ids of `words` in `vocab`, `<unk>` for the unknown.
pub fn encode(vocab: &Vocab, words: &[String]) -> Vec<u32> {
    words
        .iter()
        .map(|w| vocab.get(w).unwrap_or(UNK_ID))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specials_first_then_by_count() {
        let s = |t: &str| t.split_whitespace().map(String::from).collect::<Vec<_>>();
        let pairs = vec![(s("a b b c"), s("x y")), (s("b a d"), s("y <s>"))];
        let v = TransVocab::build(&pairs, 2);
        assert_eq!(v.src.tokens(), &["<unk>", "<pad>", "<s>", "</s>", "b", "a"]);
        assert_eq!(v.tgt.tokens(), &["<unk>", "<pad>", "<s>", "</s>", "y"]);
        assert!(v.well_formed());
        assert_eq!(encode(&v.src, &s("a z b")), vec![5, UNK_ID, 4]);
    }
}
