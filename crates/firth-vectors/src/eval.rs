//! Analogy and word-pair evaluation that reproduces gensim 4's
//! `KeyedVectors.evaluate_word_analogies(restrict_vocab=R)` and `evaluate_word_pairs`
//! (case-insensitive, the same skipping rules, the same tie-averaged Spearman).

use std::collections::HashMap;
use std::path::Path;

use firth_eval::{spearman, AnalogyTally};
use rayon::prelude::*;
use serde::Serialize;

use crate::embeddings::{cosadd_query, top_k_ids, Embeddings};
use crate::quantized::{fast_kernel_available, NeighbourQuery, QuantizedRows};
use crate::VecError;

/// gensim's `ok_vocab`: uppercased word -> id of its first (most frequent) spelling among the
/// first `restrict` words.
fn ok_vocab(e: &Embeddings, restrict: usize) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for i in (0..restrict.min(e.len())).rev() {
        m.insert(e.words[i].to_uppercase(), i);
    }
    m
}

fn read_lines(path: &Path) -> Result<Vec<String>, VecError> {
    let bytes = std::fs::read(path).map_err(|e| VecError::io(path, e))?;
    let mut out = vec![];
    for (n, l) in bytes.split(|&b| b == b'\n').enumerate() {
        match std::str::from_utf8(l) {
            Ok(s) => out.push(s.to_string()),
            Err(_) => return Err(VecError::format(path, n as u64 + 1, "invalid UTF-8")),
        }
    }
    if out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    Ok(out)
}

/// Malformed lines that an evaluation skipped (as gensim does), so callers can warn: how many,
/// and the first few line numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Skipped {
    pub count: usize,
    pub first_lines: Vec<u64>,
}

impl Skipped {
    const SHOWN: usize = 5;

    fn record(&mut self, line: u64) {
        self.count += 1;
        if self.first_lines.len() < Self::SHOWN {
            self.first_lines.push(line);
        }
    }

    /// "3 malformed lines skipped (lines 4, 9, 12)", or None when nothing was skipped.
    pub fn warning(&self, path: &Path, expected: &str) -> Option<String> {
        if self.count == 0 {
            return None;
        }
        let lines: Vec<String> = self.first_lines.iter().map(|l| l.to_string()).collect();
        Some(format!(
            "{}: skipped {} malformed line{} (expected {expected}); first: line {}",
            path.display(),
            self.count,
            if self.count == 1 { "" } else { "s" },
            lines.join(", ")
        ))
    }
}

/// One analogy question as gensim lists it: its four words, uppercased.
pub type Question = [String; 4];

/// The questions of one section by outcome, as gensim's `evaluate_word_analogies` lists them
/// (`{'section': name, 'correct': [...], 'incorrect': [...]}`), plus those it skipped because a
/// word is outside the (restricted) vocabulary.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SectionOutcome {
    pub name: String,
    pub correct: Vec<Question>,
    pub incorrect: Vec<Question>,
    pub oov: Vec<Question>,
}

/// Every question of an analogy file answered with 3CosAdd over the `restrict` most frequent
/// words, by section, as gensim answers them. Lines that are not four words are skipped and
/// counted. Unlike [`evaluate_analogies`], a file without questions is not an error here.
pub fn analogy_outcomes(
    e: &Embeddings,
    path: &Path,
    restrict: usize,
) -> Result<(Vec<SectionOutcome>, Skipped), VecError> {
    let mut skipped = Skipped::default();
    let ok = ok_vocab(e, restrict);
    let limit = restrict.min(e.len());
    let norm = e.normed();
    let d = e.dim;
    // Parse first (sections and questions), then score in parallel.
    enum Item {
        Section(String),
        Oov(Question),
        Q([usize; 4], Question),
    }
    let mut items = vec![];
    for (n, line) in read_lines(path)?.iter().enumerate() {
        if let Some(rest) = line.strip_prefix(": ") {
            items.push(Item::Section(
                rest.trim_start_matches([':', ' ']).trim().to_string(),
            ));
            continue;
        }
        if items.is_empty() {
            return Err(VecError::format(
                path,
                n as u64 + 1,
                "missing section header",
            ));
        }
        let ws: Vec<String> = line.split_whitespace().map(|w| w.to_uppercase()).collect();
        let Ok(q) = <Question>::try_from(ws) else {
            if !line.trim().is_empty() {
                skipped.record(n as u64 + 1);
            }
            continue;
        };
        match [&q[0], &q[1], &q[2], &q[3]].map(|w| ok.get(w).copied()) {
            [Some(a), Some(b), Some(c), Some(x)] => items.push(Item::Q([a, b, c, x], q)),
            _ => items.push(Item::Oov(q)),
        }
    }
    let row = |i: usize| &norm[i * d..(i + 1) * d];
    // Each question's query and left-out words, then its 5 nearest rows: through the 8-bit
    // copy where the CPU has VNNI (exactly top_k_ids's answers, several times faster), in
    // batches that share each pass over the rows.
    let asked: Vec<(Vec<f32>, Vec<usize>)> = items
        .iter()
        .filter_map(|it| match it {
            Item::Q(ids, _) => {
                let mut excl = vec![ids[0], ids[1], ids[2]];
                excl.dedup();
                Some((cosadd_query(row(ids[0]), row(ids[1]), row(ids[2])), excl))
            }
            _ => None,
        })
        .collect();
    let rows = &norm[..limit * d];
    let quantized = if fast_kernel_available() && asked.len() >= 64 {
        QuantizedRows::new(rows, d)
    } else {
        None
    };
    let tops: Vec<Vec<(usize, f32)>> = asked
        .par_chunks(64)
        .flat_map_iter(|batch| match &quantized {
            Some(qr) => {
                let queries: Vec<NeighbourQuery> = batch
                    .iter()
                    .map(|(q, excl)| NeighbourQuery {
                        q,
                        k: 5,
                        exclude: excl,
                    })
                    .collect();
                qr.top_k(rows, &queries)
            }
            None => batch
                .iter()
                .map(|(q, excl)| top_k_ids(norm, d, q, 5, excl, limit))
                .collect(),
        })
        .collect();
    let mut tops = tops.into_iter();
    let results: Vec<bool> = items
        .iter()
        .map(|it| match it {
            Item::Q(_, q) => {
                // gensim: top 5 after dropping the query ids, then the first whose uppercase form
                // is not a query word; if none qualifies the last one stands.
                let top = tops.next().expect("one answer per question");
                let mut predicted = None;
                for (i, _) in &top {
                    let p = e.words[*i].to_uppercase();
                    let qualifies = ok.contains_key(&p) && !q[..3].contains(&p);
                    predicted = Some(p);
                    if qualifies {
                        break;
                    }
                }
                predicted.as_deref() == Some(q[3].as_str())
            }
            _ => false,
        })
        .collect();
    let mut sections: Vec<SectionOutcome> = vec![];
    for (it, correct) in items.into_iter().zip(results) {
        // The first item is a section (checked while parsing).
        match it {
            Item::Section(name) => sections.push(SectionOutcome {
                name,
                ..Default::default()
            }),
            Item::Oov(q) => sections.last_mut().expect("a section").oov.push(q),
            Item::Q(_, q) => {
                let s = sections.last_mut().expect("a section");
                if correct {
                    s.correct.push(q)
                } else {
                    s.incorrect.push(q)
                }
            }
        }
    }
    Ok((sections, skipped))
}

/// Analogy accuracy with 3CosAdd over the `restrict` most frequent words. Lines that are not
/// four words are skipped and counted; a file with no question at all is an error.
pub fn evaluate_analogies(
    e: &Embeddings,
    path: &Path,
    restrict: usize,
) -> Result<(AnalogyTally, Skipped), VecError> {
    let (sections, skipped) = analogy_outcomes(e, path, restrict)?;
    let mut tally = AnalogyTally::default();
    for s in &sections {
        tally.start_section(&s.name);
        for _ in &s.oov {
            tally.record_oov();
        }
        for _ in &s.correct {
            tally.record(true);
        }
        for _ in &s.incorrect {
            tally.record(false);
        }
    }
    if tally.questions() == 0 {
        return Err(VecError::Invalid(format!(
            "{}: no analogy questions (`: section` lines followed by lines of four words); is this a questions-words.txt file?",
            path.display()
        )));
    }
    if tally.attempted() == 0 {
        return Err(VecError::Invalid(format!(
            "{}: none of the {} questions has all four words among the first {restrict} words of the vectors; raise --restrict or check the vectors' vocabulary",
            path.display(),
            tally.questions()
        )));
    }
    Ok((tally, skipped))
}

/// Result of a word-pair similarity set.
#[derive(Debug, Clone, Serialize)]
pub struct PairsResult {
    pub file: String,
    pub spearman: f64,
    pub pairs: usize,
    pub oov: usize,
    /// Fraction (0..1) of pairs with both words in the vocabulary.
    pub coverage: f64,
    pub skipped: Skipped,
    /// Pearson's r of the same scores, and the two-sided p-values of both coefficients, which
    /// gensim's `evaluate_word_pairs` returns (through scipy) beside Spearman's rho.
    pub pearson: f64,
    pub pearson_p: f64,
    pub spearman_p: f64,
}

/// Spearman correlation between gold scores and cosine similarity on a tab-separated
/// `word1<TAB>word2<TAB>score` file (`#` lines are comments), over the first `restrict` words.
pub fn evaluate_pairs(
    e: &Embeddings,
    path: &Path,
    restrict: usize,
) -> Result<PairsResult, VecError> {
    let ok = ok_vocab(e, restrict);
    let mut gold = vec![];
    let mut model = vec![];
    let mut oov = 0;
    let norm = |i: usize| {
        let v = e.vector(i);
        let n = crate::simd::dot(v, v).sqrt();
        (v, n)
    };
    let mut skipped = Skipped::default();
    for (n, line) in read_lines(path)?.iter().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let sim = match f[..] {
            [_, _, score] => score.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
            _ => None,
        };
        let Some(sim) = sim else {
            skipped.record(n as u64 + 1);
            continue;
        };
        let (a, b) = (f[0].to_uppercase(), f[1].to_uppercase());
        let (Some(&ia), Some(&ib)) = (ok.get(&a), ok.get(&b)) else {
            oov += 1;
            continue;
        };
        let ((va, na), (vb, nb)) = (norm(ia), norm(ib));
        let cos = if na > 0.0 && nb > 0.0 {
            crate::simd::dot(va, vb) / (na * nb)
        } else {
            0.0
        };
        gold.push(sim);
        model.push(cos as f64);
    }
    let pairs = gold.len();
    if pairs + oov == 0 {
        return Err(VecError::Invalid(format!(
            "{}: no word pairs (lines of word1<TAB>word2<TAB>score); is this a similarity file?",
            path.display()
        )));
    }
    let Some(rho) = spearman(&gold, &model).filter(|r| r.is_finite()) else {
        return Err(VecError::Invalid(format!(
            "{}: Spearman's rho is undefined: {pairs} of {} pairs have both words among the first {restrict} words of the vectors, and it needs at least 2 with varying scores; raise --restrict-pairs or check the vocabulary",
            path.display(),
            pairs + oov
        )));
    };
    let pearson = firth_eval::pearson(&gold, &model).unwrap_or(f64::NAN);
    Ok(PairsResult {
        file: path.display().to_string(),
        spearman: rho,
        pearson,
        pearson_p: firth_eval::correlation_p_value(pearson, pairs),
        spearman_p: firth_eval::correlation_p_value(rho, pairs),
        skipped,
        pairs,
        oov,
        coverage: if pairs + oov > 0 {
            pairs as f64 / (pairs + oov) as f64
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analogy_file_on_toy_vectors() {
        let words = ["man", "woman", "king", "queen", "apple", "Apple"]
            .map(String::from)
            .to_vec();
        #[rustfmt::skip]
        let data = vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.2, 0.2, 1.0, -1.0, -0.3, 5.0, 5.0];
        let e = Embeddings::new(words, 2, data);
        let dir = std::env::temp_dir().join(format!("firth-eval-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let q = dir.join("q.txt");
        std::fs::write(&q, ": royal\nman king woman queen\nMAN KING WOMAN QUEEN\nman king woman apple\n: other\nman king robot queen\nbad line\n").unwrap();
        let (t, skipped) = evaluate_analogies(&e, &q, 30000).unwrap();
        assert_eq!(
            skipped,
            Skipped {
                count: 1,
                first_lines: vec![7]
            }
        );
        assert_eq!(t.sections.len(), 2);
        assert_eq!(t.sections[0].name, "royal");
        assert_eq!((t.sections[0].correct, t.sections[0].incorrect), (2, 1));
        assert_eq!(t.sections[1].oov, 1);
        assert!((t.accuracy() - 200.0 / 3.0).abs() < 1e-9);
        assert!((t.coverage() - 0.75).abs() < 1e-9);
        // Restricting to the first 2 words makes everything out of vocabulary.
        let err = evaluate_analogies(&e, &q, 2).unwrap_err().to_string();
        assert!(err.contains("none of the 4 questions"), "{err}");

        let p = dir.join("p.tsv");
        std::fs::write(
            &p,
            "# comment\nman\tking\t9\nman\twoman\t1\nking\tqueen\t5\nman\trobot\t3\nman\tking\tnan\n",
        )
        .unwrap();
        let r = evaluate_pairs(&e, &p, 300000).unwrap();
        assert_eq!((r.pairs, r.oov), (3, 1));
        assert_eq!(r.skipped.first_lines, vec![6]);
        // cos: man-king 0.98, man-woman 0, king-queen 0.38 -> same order as gold.
        assert!((r.spearman - 1.0).abs() < 1e-12);
        assert_eq!(r.spearman_p, 0.0);
        assert!(r.pearson > 0.9 && r.pearson < 1.0, "{}", r.pearson);
        assert!(r.pearson_p > 0.0 && r.pearson_p < 0.3, "{}", r.pearson_p);

        // The questions themselves, by outcome, as gensim lists them.
        let (sections, _) = analogy_outcomes(&e, &q, 30000).unwrap();
        let q4 = |s: &str| -> Question {
            let w: Vec<String> = s.split(' ').map(String::from).collect();
            w.try_into().unwrap()
        };
        assert_eq!(sections[0].name, "royal");
        assert_eq!(
            sections[0].correct,
            vec![q4("MAN KING WOMAN QUEEN"), q4("MAN KING WOMAN QUEEN")]
        );
        assert_eq!(sections[0].incorrect, vec![q4("MAN KING WOMAN APPLE")]);
        assert_eq!(sections[1].oov, vec![q4("MAN KING ROBOT QUEEN")]);
    }
}
