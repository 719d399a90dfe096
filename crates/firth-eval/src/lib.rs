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

/// Two-sided p-value of a correlation coefficient `r` measured on `n` pairs, against the null
/// hypothesis of no correlation: the t test with n - 2 degrees of freedom, which is what scipy's
/// `pearsonr` and `spearmanr` report (`gensim`'s `evaluate_word_pairs` returns both). NaN for
/// fewer than three pairs or a non-finite `r`, where the test has no degrees of freedom.
pub fn correlation_p_value(r: f64, n: usize) -> f64 {
    if n < 3 || !r.is_finite() {
        return f64::NAN;
    }
    let df = (n - 2) as f64;
    // t^2 = df r^2 / (1 - r^2), and P(|T| > |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2), where
    // df / (df + t^2) = 1 - r^2.
    regularized_incomplete_beta(df / 2.0, 0.5, (1.0 - r * r).clamp(0.0, 1.0))
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine coefficients: about 15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, &c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function I_x(a, b), by its continued fraction (modified
/// Lentz), evaluated where it converges fast and mirrored otherwise.
fn regularized_incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=1000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for num in [
            m * (b - m) * x / ((a + m2 - 1.0) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0)),
        ] {
            d = 1.0 + num * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + num / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
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
    fn correlation_p_values_equal_scipys() {
        // scipy.stats.pearsonr / spearmanr p-values for these r and n (scipy 1.x, computed
        // once and pasted here).
        for (r, n, p) in [
            (0.5, 10, 0.14111328125),
            (0.3, 353, 8.952860489744293e-09),
            (-0.72, 20, 0.0003441281438327841),
            (0.05, 999, 0.11425409982933793),
            (0.99, 5, 0.0011986195114020066),
            (0.1, 3, 0.9362314391414802),
        ] {
            let got = correlation_p_value(r, n);
            assert!(
                (got - p).abs() <= 1e-10 + 1e-8 * p,
                "r {r} n {n}: {got} vs {p}"
            );
        }
        assert_eq!(correlation_p_value(1.0, 10), 0.0);
        assert_eq!(correlation_p_value(0.0, 10), 1.0);
        assert!(correlation_p_value(0.5, 2).is_nan());
        assert!(correlation_p_value(f64::NAN, 20).is_nan());
        // Γ(5) = 24, Γ(1/2) = √π.
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-13);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-13);
    }

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
