//! Dropout, standard or locked (variational).
//!
//! Inverted dropout: kept units are scaled by 1/(1-p) during training so evaluation needs no
//! rescaling. Standard dropout draws a fresh mask for every element of (T, B, D); locked
//! dropout (Gal & Ghahramani; Merity et al.) draws one (B, D) mask per sequence and reuses it at
//! every time step.

use crate::{Real, Rng};
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DropoutKind {
    #[default]
    Standard,
    Locked,
}

#[derive(Clone, Debug)]
pub struct Dropout<T> {
    pub p: f64,
    pub kind: DropoutKind,
    mask: Vec<T>, // (T, B, D), or (B, D) when locked
    active: bool,
}

impl<T: Real> Dropout<T> {
    pub fn new(p: f64, kind: DropoutKind) -> Self {
        Dropout {
            p,
            kind,
            mask: Vec::new(),
            active: false,
        }
    }

    /// Applies dropout in place to `x` (T, B, D) with `row` = B·D elements per step. Does
    /// nothing when not training or p = 0.
    pub fn forward(&mut self, x: &mut [T], row: usize, train: bool, rng: &mut Rng) {
        self.active = train && self.p > 0.0;
        if !self.active {
            return;
        }
        let keep = 1.0 - self.p;
        let scale = T::from_f64(1.0 / keep);
        let n = match self.kind {
            DropoutKind::Standard => x.len(),
            DropoutKind::Locked => row,
        };
        self.mask.clear();
        self.mask.extend((0..n).map(|_| {
            if (rng.uniform_f32() as f64) < keep {
                scale
            } else {
                T::ZERO
            }
        }));
        for chunk in x.chunks_mut(n) {
            for (v, &m) in chunk.iter_mut().zip(&self.mask) {
                *v *= m;
            }
        }
    }

    /// dx = dy ⊙ mask, in place.
    pub fn backward(&self, dy: &mut [T]) {
        if !self.active {
            return;
        }
        for chunk in dy.chunks_mut(self.mask.len()) {
            for (v, &m) in chunk.iter_mut().zip(&self.mask) {
                *v *= m;
            }
        }
    }
}

/// Word dropout: each id becomes 0 (`<unk>`) with probability `p`, one uniform draw per id in
/// order; the caller passes only real tokens (no padding). The taggers' and classifiers' way to
/// train the `<unk>` row that unseen words read.
pub fn drop_words<'a>(ids: impl IntoIterator<Item = &'a mut u32>, p: f32, rng: &mut Rng) {
    for id in ids {
        if rng.uniform_f32() < p {
            *id = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_mask_repeats_over_time_and_keeps_expectation() {
        let mut rng = Rng::new(3);
        let mut d = Dropout::<f64>::new(0.5, DropoutKind::Locked);
        let (t, row) = (4, 1000);
        let mut x = vec![1.0; t * row];
        d.forward(&mut x, row, true, &mut rng);
        for s in 1..t {
            assert_eq!(x[..row], x[s * row..(s + 1) * row]);
        }
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        assert!((mean - 1.0).abs() < 0.1, "{mean}");
        assert!(x.iter().all(|&v| v == 0.0 || v == 2.0));
        let mut g = vec![1.0; t * row];
        d.backward(&mut g);
        assert_eq!(g, x);
        let mut y = vec![1.0; 8];
        d.forward(&mut y, 8, false, &mut rng);
        assert_eq!(y, vec![1.0; 8]);
    }
}
