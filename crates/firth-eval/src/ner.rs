//! Tagging metrics: token accuracy and entity-level precision, recall and F1 computed exactly
//! as conlleval (CoNLL-2000/2003 shared tasks) computes them.
//!
//! conlleval reads the gold and guessed tags token by token with a boundary (a blank line,
//! read as `O O`) between sentences. A chunk starts and ends where its start/end rules say
//! ([`firth_text::conll::start_of_chunk`], [`firth_text::conll::end_of_chunk`]: e.g. `I-X`
//! after `O` starts a chunk, a change of type ends one). A guessed chunk is correct when gold
//! and guess start together with the same type and next end together with the same type;
//! precision = correct / guessed chunks, recall = correct / gold chunks,
//! F1 = 2PR / (P + R), token accuracy = tokens whose whole tag matches / tokens. All in percent.

use firth_text::conll::{end_of_chunk, split_tag, start_of_chunk};
use serde::Serialize;
use std::collections::BTreeMap;

/// Counts for one chunk type (or all).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ChunkCounts {
    pub correct: usize,
    pub guessed: usize,
    pub gold: usize,
}

impl ChunkCounts {
    pub fn precision(&self) -> f64 {
        if self.guessed == 0 {
            0.0
        } else {
            100.0 * self.correct as f64 / self.guessed as f64
        }
    }
    pub fn recall(&self) -> f64 {
        if self.gold == 0 {
            0.0
        } else {
            100.0 * self.correct as f64 / self.gold as f64
        }
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// conlleval's counters, fed one sentence at a time.
#[derive(Clone, Debug, Default)]
pub struct ConllEval {
    pub tokens: usize,
    pub correct_tags: usize,
    pub all: ChunkCounts,
    pub by_type: BTreeMap<String, ChunkCounts>,
}

impl ConllEval {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sentence of gold and guessed tags (same length). A boundary follows it.
    pub fn add_sentence(&mut self, gold: &[impl AsRef<str>], guess: &[impl AsRef<str>]) {
        assert_eq!(
            gold.len(),
            guess.len(),
            "gold and guessed tags differ in length"
        );
        let (mut lc, mut lct, mut lg, mut lgt) = ("O", "", "O", "");
        let mut in_correct = false;
        let n = gold.len();
        for i in 0..=n {
            // Position n is the sentence boundary, read as O O and not counted as a token.
            let ((c, ct), (g, gt)) = if i < n {
                (split_tag(gold[i].as_ref()), split_tag(guess[i].as_ref()))
            } else {
                (("O", ""), ("O", ""))
            };
            let end_c = end_of_chunk(lc, c, lct, ct);
            let end_g = end_of_chunk(lg, g, lgt, gt);
            if in_correct {
                if end_c && end_g && lgt == lct {
                    in_correct = false;
                    self.all.correct += 1;
                    self.by_type.entry(lct.to_string()).or_default().correct += 1;
                } else if end_c != end_g || gt != ct {
                    in_correct = false;
                }
            }
            let start_c = start_of_chunk(lc, c, lct, ct);
            let start_g = start_of_chunk(lg, g, lgt, gt);
            if start_c && start_g && gt == ct {
                in_correct = true;
            }
            if start_c {
                self.all.gold += 1;
                self.by_type.entry(ct.to_string()).or_default().gold += 1;
            }
            if start_g {
                self.all.guessed += 1;
                self.by_type.entry(gt.to_string()).or_default().guessed += 1;
            }
            if i < n {
                if c == g && ct == gt {
                    self.correct_tags += 1;
                }
                self.tokens += 1;
            }
            (lc, lct, lg, lgt) = (c, ct, g, gt);
        }
        // conlleval also closes a chunk still open at the end of its input; the boundary
        // above has already done that here.
        debug_assert!(!in_correct);
    }

    /// Token accuracy in percent.
    pub fn accuracy(&self) -> f64 {
        if self.tokens == 0 {
            0.0
        } else {
            100.0 * self.correct_tags as f64 / self.tokens as f64
        }
    }

    pub fn report(&self) -> NerReport {
        NerReport {
            tokens: self.tokens,
            accuracy: self.accuracy(),
            precision: self.all.precision(),
            recall: self.all.recall(),
            f1: self.all.f1(),
            gold_chunks: self.all.gold,
            guessed_chunks: self.all.guessed,
            correct_chunks: self.all.correct,
            by_type: self
                .by_type
                .iter()
                .map(|(t, c)| {
                    (
                        t.clone(),
                        TypeReport {
                            precision: c.precision(),
                            recall: c.recall(),
                            f1: c.f1(),
                            guessed: c.guessed,
                        },
                    )
                })
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TypeReport {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub guessed: usize,
}

/// conlleval's summary, in percent.
#[derive(Clone, Debug, Serialize)]
pub struct NerReport {
    pub tokens: usize,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub gold_chunks: usize,
    pub guessed_chunks: usize,
    pub correct_chunks: usize,
    pub by_type: BTreeMap<String, TypeReport>,
}

impl NerReport {
    /// conlleval's text output (its first two lines and one line per type).
    pub fn conlleval_text(&self) -> String {
        let mut s = format!(
            "processed {} tokens with {} phrases; found: {} phrases; correct: {}.\n",
            self.tokens, self.gold_chunks, self.guessed_chunks, self.correct_chunks
        );
        s += &format!(
            "accuracy: {:6.2}%; precision: {:6.2}%; recall: {:6.2}%; FB1: {:6.2}\n",
            self.accuracy, self.precision, self.recall, self.f1
        );
        for (t, r) in &self.by_type {
            s += &format!(
                "{:>17}: precision: {:6.2}%; recall: {:6.2}%; FB1: {:6.2}  {}\n",
                t, r.precision, r.recall, r.f1, r.guessed
            );
        }
        s
    }
}
