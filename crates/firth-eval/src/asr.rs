//! Speech recognition metrics: word and character error rates and utterance accuracy.
//!
//! The error rate of a corpus is the total of its utterances' edit distances (Levenshtein:
//! substitutions + deletions + insertions, each costing 1) divided by the total length of the
//! references, in percent — not the mean of per-utterance rates, which would weight a short
//! utterance like a long one. It can exceed 100 when the hypotheses insert a lot.
//!
//! Words are whitespace-separated tokens. Characters are those of the words joined by single
//! spaces, spaces included (so "3 1 4" has 5), after whitespace is normalised; this is what
//! jiwer's `cer` and most toolkits count. An utterance is correct when its words equal the
//! reference's.

use serde::Serialize;

/// Substitutions, deletions and insertions of one optimal alignment of a hypothesis to a
/// reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EditCounts {
    pub substitutions: usize,
    pub deletions: usize,
    pub insertions: usize,
}

impl EditCounts {
    pub fn total(&self) -> usize {
        self.substitutions + self.deletions + self.insertions
    }

    fn add(&mut self, o: EditCounts) {
        self.substitutions += o.substitutions;
        self.deletions += o.deletions;
        self.insertions += o.insertions;
    }
}

/// Edits turning `reference` into `hypothesis`, with their kinds. Among alignments of the
/// minimal total, ties prefer substitutions, then deletions, then insertions (as sclite).
pub fn align<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> EditCounts {
    let (n, m) = (reference.len(), hypothesis.len());
    // (cost, substitutions, deletions, insertions) per cell, two rows at a time.
    type Cell = (usize, usize, usize, usize);
    let mut prev: Vec<Cell> = (0..=m).map(|j| (j, 0, 0, j)).collect();
    let mut cur: Vec<Cell> = vec![(0, 0, 0, 0); m + 1];
    for i in 1..=n {
        cur[0] = (i, 0, i, 0);
        for j in 1..=m {
            let same = reference[i - 1] == hypothesis[j - 1];
            let d = prev[j - 1];
            let diag = if same {
                d
            } else {
                (d.0 + 1, d.1 + 1, d.2, d.3)
            };
            let u = prev[j];
            let del = (u.0 + 1, u.1, u.2 + 1, u.3);
            let l = cur[j - 1];
            let ins = (l.0 + 1, l.1, l.2, l.3 + 1);
            let mut best = diag;
            for c in [del, ins] {
                if c.0 < best.0 {
                    best = c;
                }
            }
            cur[j] = best;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let (_, s, d, i) = prev[m];
    EditCounts {
        substitutions: s,
        deletions: d,
        insertions: i,
    }
}

/// The Levenshtein distance between two sequences.
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    align(a, b).total()
}

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

fn chars(s: &str) -> Vec<char> {
    words(s).join(" ").chars().collect()
}

/// Running totals over a corpus: add each (reference, hypothesis) pair, then read the rates.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AsrTally {
    pub utterances: usize,
    /// Utterances whose words equal the reference's.
    pub correct: usize,
    pub word_edits: EditCounts,
    pub reference_words: usize,
    pub char_edits: EditCounts,
    pub reference_chars: usize,
}

impl AsrTally {
    pub fn add(&mut self, reference: &str, hypothesis: &str) {
        let (rw, hw) = (words(reference), words(hypothesis));
        let (rc, hc) = (chars(reference), chars(hypothesis));
        self.utterances += 1;
        self.correct += (rw == hw) as usize;
        self.word_edits.add(align(&rw, &hw));
        self.reference_words += rw.len();
        self.char_edits.add(align(&rc, &hc));
        self.reference_chars += rc.len();
    }

    /// Word error rate in percent (see [`rate`] for empty references).
    pub fn wer(&self) -> f64 {
        rate(self.word_edits.total(), self.reference_words)
    }

    /// Character error rate in percent (spaces between words count as characters).
    pub fn cer(&self) -> f64 {
        rate(self.char_edits.total(), self.reference_chars)
    }

    /// Utterances recognised exactly, in percent (0 for an empty tally).
    pub fn accuracy(&self) -> f64 {
        if self.utterances == 0 {
            0.0
        } else {
            100.0 * self.correct as f64 / self.utterances as f64
        }
    }
}

/// 100 · edits / reference length; with an empty reference, 0 without edits and 100 with any
/// (every hypothesis word is then an insertion, and a rate has nothing to divide by).
pub fn rate(edits: usize, reference_len: usize) -> f64 {
    if reference_len == 0 {
        if edits == 0 {
            0.0
        } else {
            100.0
        }
    } else {
        100.0 * edits as f64 / reference_len as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_by_hand() {
        assert_eq!(edit_distance(b"kitten", b"sitting"), 3);
        assert_eq!(edit_distance::<u8>(b"", b"abc"), 3);
        assert_eq!(edit_distance::<u8>(b"abc", b""), 3);
        assert_eq!(edit_distance(b"flaw", b"lawn"), 2);
        // kitten → sitting: k→s, e→i substitutions, g inserted.
        assert_eq!(
            align(b"kitten", b"sitting"),
            EditCounts {
                substitutions: 2,
                deletions: 0,
                insertions: 1
            }
        );
    }

    #[test]
    fn corpus_rates_by_hand() {
        let mut t = AsrTally::default();
        // Reference "3 1 4 1" vs "3 4 1 5": 1 deleted, 5 inserted → 2 word edits of 4.
        t.add("3 1 4 1", "3 4 1 5");
        // Exact.
        t.add("2 7", " 2   7 ");
        // One substitution of 1 word.
        t.add("9", "8");
        assert_eq!(t.utterances, 3);
        assert_eq!(t.correct, 1);
        assert_eq!(t.reference_words, 7);
        assert_eq!(t.word_edits.total(), 3);
        assert!((t.wer() - 300.0 / 7.0).abs() < 1e-12);
        assert!((t.accuracy() - 100.0 / 3.0).abs() < 1e-12);
        // Characters: "3 1 4 1" (7) vs "3 4 1 5" (7): position by position 1/4, 4/1, 1/5
        // differ, 3 substitutions (cheaper than deleting "1 " and inserting " 5", 4 edits);
        // "2 7" (3) exact; "9" vs "8" 1. Total 4 of 11.
        assert_eq!(t.reference_chars, 11);
        assert_eq!(t.char_edits.total(), 4);
        assert_eq!(t.char_edits.substitutions, 4);
        assert!((t.cer() - 400.0 / 11.0).abs() < 1e-12);
        // Insertions can push the rate past 100.
        let mut u = AsrTally::default();
        u.add("1", "1 2 3");
        assert_eq!(u.wer(), 200.0);
        assert_eq!(rate(0, 0), 0.0);
        assert_eq!(rate(2, 0), 100.0);
        assert_eq!(AsrTally::default().accuracy(), 0.0);
    }
}
