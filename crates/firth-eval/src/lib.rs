//! Metrics: speech recognition error rates ([`asr`]), rank correlation (Spearman with tie-averaged ranks, as scipy's `spearmanr`) and
//! analogy-accuracy bookkeeping (per section, with coverage, as gensim's
//! `evaluate_word_analogies`).
//!
//! The functions here are deliberately small and general: they take plain numbers and counts so
//! that every model in firth can report the same figures the reference tools do.

pub mod asr;
pub mod bleu;
pub mod ner;

use serde::Serialize;

/// Ranks of `xs` (1-based), with tied values given the mean of the ranks they span
/// ("average" method, as `scipy.stats.rankdata`). NaN values are ranked last.
pub fn average_ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| {
        xs[a]
            .partial_cmp(&xs[b])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut ranks = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && xs[idx[j]] == xs[idx[i]] {
            j += 1;
        }
        // Positions i..j (0-based) share ranks i+1..=j, whose mean is (i + 1 + j) / 2.
        let r = (i + 1 + j) as f64 / 2.0;
        for &k in &idx[i..j] {
            ranks[k] = r;
        }
        i = j;
    }
    ranks
}

/// Pearson correlation coefficient; `None` when fewer than two points or a constant input.
pub fn pearson(xs: &[f64], ys: &[f64]) -> Option<f64> {
    if xs.len() != ys.len() || xs.len() < 2 {
        return None;
    }
    let n = xs.len() as f64;
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        let (dx, dy) = (x - mx, y - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some(sxy / (sxx * syy).sqrt())
}

/// Spearman's rho: the Pearson correlation of the tie-averaged ranks (what scipy computes).
pub fn spearman(xs: &[f64], ys: &[f64]) -> Option<f64> {
    if xs.len() != ys.len() {
        return None;
    }
    pearson(&average_ranks(xs), &average_ranks(ys))
}

/// Correct / incorrect counts of one analogy section (e.g. `capital-common-countries`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AnalogySection {
    pub name: String,
    pub correct: usize,
    pub incorrect: usize,
    /// Questions of this section skipped because a word was out of the (restricted) vocabulary.
    pub oov: usize,
}

impl AnalogySection {
    pub fn new(name: &str) -> Self {
        AnalogySection {
            name: name.to_string(),
            ..Default::default()
        }
    }
    pub fn attempted(&self) -> usize {
        self.correct + self.incorrect
    }
    /// Accuracy in percent over the questions attempted (0 when none were).
    pub fn accuracy(&self) -> f64 {
        if self.attempted() == 0 {
            0.0
        } else {
            100.0 * self.correct as f64 / self.attempted() as f64
        }
    }
}

/// Accumulates analogy results section by section; totals are over all sections.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AnalogyTally {
    pub sections: Vec<AnalogySection>,
}

impl AnalogyTally {
    pub fn start_section(&mut self, name: &str) {
        self.sections.push(AnalogySection::new(name));
    }
    fn current(&mut self) -> &mut AnalogySection {
        if self.sections.is_empty() {
            self.start_section("");
        }
        self.sections.last_mut().expect("a section exists")
    }
    pub fn record(&mut self, correct: bool) {
        let s = self.current();
        if correct {
            s.correct += 1
        } else {
            s.incorrect += 1
        }
    }
    pub fn record_oov(&mut self) {
        self.current().oov += 1;
    }
    pub fn correct(&self) -> usize {
        self.sections.iter().map(|s| s.correct).sum()
    }
    pub fn attempted(&self) -> usize {
        self.sections.iter().map(|s| s.attempted()).sum()
    }
    pub fn questions(&self) -> usize {
        self.sections.iter().map(|s| s.attempted() + s.oov).sum()
    }
    /// Accuracy in percent over the questions covered (gensim's "Total accuracy").
    pub fn accuracy(&self) -> f64 {
        if self.attempted() == 0 {
            0.0
        } else {
            100.0 * self.correct() as f64 / self.attempted() as f64
        }
    }
    /// Fraction (0..1) of questions whose four words were all in the vocabulary.
    pub fn coverage(&self) -> f64 {
        if self.questions() == 0 {
            0.0
        } else {
            self.attempted() as f64 / self.questions() as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 20.0, 5.0]),
            vec![2.0, 3.5, 3.5, 1.0]
        );
        assert_eq!(average_ranks(&[1.0, 1.0, 1.0]), vec![2.0, 2.0, 2.0]);
    }

    #[test]
    fn spearman_hand_computed() {
        // Perfect monotone relation.
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 100.0, 1000.0]).unwrap() - 1.0).abs() < 1e-12);
        // x ranks 1..5, y ranks [2,1,4,3,5]: d^2 sum = 1+1+1+1+0 = 4, rho = 1 - 6*4/(5*24) = 0.8.
        let r = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]).unwrap();
        assert!((r - 0.8).abs() < 1e-12, "{r}");
        // With ties: x = [1,2,2,3] -> ranks [1,2.5,2.5,4]; y = [1,2,3,4].
        // Pearson of ranks: mx = 2.5, dx = [-1.5,0,0,1.5], dy = [-1.5,-.5,.5,1.5],
        // sxy = 4.5, sxx = 4.5, syy = 5 -> rho = 4.5 / sqrt(22.5) = 0.9486832980505138.
        let r = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((r - 0.9486832980505138).abs() < 1e-12, "{r}");
        assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_none());
    }

    #[test]
    fn tally_counts() {
        let mut t = AnalogyTally::default();
        t.start_section("a");
        t.record(true);
        t.record(false);
        t.record_oov();
        t.start_section("b");
        t.record(true);
        assert_eq!(t.correct(), 2);
        assert_eq!(t.attempted(), 3);
        assert!((t.accuracy() - 200.0 / 3.0).abs() < 1e-12);
        assert!((t.coverage() - 0.75).abs() < 1e-12);
        assert_eq!(t.sections[0].accuracy(), 50.0);
    }
}
