//! SpecAugment's masking (Park et al., 2019), without time warping: blocks of consecutive
//! frequency channels and of consecutive frames are set to a constant, so the network cannot
//! lean on any one band or moment.
//!
//! For each of `freq_masks` masks a width f is drawn uniformly from 0..=`freq_width` and a first
//! channel from 0..=F-f, where F is the *base* dimension (mel bands or cepstra): with deltas the
//! same channels are masked in the static, delta and delta-delta blocks, as if the mask had been
//! applied before the deltas. Time masks likewise, with widths in 0..=min(`time_width`,
//! ⌊`time_ratio` · T⌋) so short utterances are not blanked out.
//!
//! Apply it to training features only, after normalisation, where `fill` = 0 is the mean.

use crate::features::Features;
use firth_nn::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecAugment {
    pub freq_masks: usize,
    pub freq_width: usize,
    pub time_masks: usize,
    pub time_width: usize,
    /// Largest fraction of the frames one time mask may cover.
    pub time_ratio: f64,
    /// The value written into masked cells.
    pub fill: f32,
}

impl Default for SpecAugment {
    /// Two frequency masks of up to 4 channels and two time masks of up to 10 frames (at most
    /// a fifth of the utterance each): sized for 13 cepstra or 26 bands and digit-length audio.
    fn default() -> Self {
        SpecAugment {
            freq_masks: 2,
            freq_width: 4,
            time_masks: 2,
            time_width: 10,
            time_ratio: 0.2,
            fill: 0.0,
        }
    }
}

impl SpecAugment {
    /// Masks `f` in place. `base_dim` is the width of one block (`FeatureConfig::base_dim`); it
    /// must divide `f.dim`. The draws come from `rng` only, so a seed reproduces the masks.
    pub fn apply(&self, f: &mut Features, base_dim: usize, rng: &mut Rng) {
        assert!(base_dim > 0, "SpecAugment: base dimension 0");
        assert_eq!(
            f.dim % base_dim,
            0,
            "SpecAugment: base dimension {base_dim} does not divide the feature dimension {}",
            f.dim
        );
        let blocks = f.dim / base_dim;
        for _ in 0..self.freq_masks {
            let w = rng.below(self.freq_width.min(base_dim) as u64 + 1) as usize;
            let start = rng.below((base_dim - w) as u64 + 1) as usize;
            for row in f.data.chunks_exact_mut(f.dim) {
                for b in 0..blocks {
                    row[b * base_dim + start..b * base_dim + start + w].fill(self.fill);
                }
            }
        }
        let cap = self
            .time_width
            .min((self.time_ratio * f.frames as f64).floor() as usize);
        for _ in 0..self.time_masks {
            let w = rng.below(cap.min(f.frames) as u64 + 1) as usize;
            let start = rng.below((f.frames - w) as u64 + 1) as usize;
            f.data[start * f.dim..(start + w) * f.dim].fill(self.fill);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ones(frames: usize, dim: usize) -> Features {
        Features {
            frames,
            dim,
            data: vec![1.0; frames * dim],
        }
    }

    #[test]
    fn masks_are_bounded_shared_across_blocks_and_reproducible() {
        let aug = SpecAugment {
            freq_masks: 1,
            freq_width: 3,
            time_masks: 1,
            time_width: 5,
            time_ratio: 1.0,
            fill: 0.0,
        };
        let mut seen_freq = false;
        for seed in 0..50 {
            let mut f = ones(40, 12);
            aug.apply(&mut f, 4, &mut Rng::new(seed));
            // Masked channels: columns that are zero in a frame no time mask touched.
            let frames_all_zero = (0..40)
                .filter(|&t| f.frame(t).iter().all(|&v| v == 0.0))
                .count();
            assert!(frames_all_zero <= 5, "seed {seed}");
            let clean = (0..40)
                .find(|&t| f.frame(t).iter().any(|&v| v != 0.0))
                .unwrap();
            let zero_cols: Vec<usize> = (0..12).filter(|&d| f.frame(clean)[d] == 0.0).collect();
            assert!(zero_cols.len() <= 9);
            for &d in &zero_cols {
                // The same channel in each of the three blocks.
                assert!(zero_cols.contains(&(d % 4)) && zero_cols.contains(&(d % 4 + 8)));
            }
            seen_freq |= !zero_cols.is_empty();
            let mut g = ones(40, 12);
            aug.apply(&mut g, 4, &mut Rng::new(seed));
            assert_eq!(f, g);
        }
        assert!(seen_freq);
        // A two-frame utterance with ratio 0.2 gets no time mask at all.
        let mut f = ones(2, 4);
        SpecAugment {
            freq_masks: 0,
            ..SpecAugment::default()
        }
        .apply(&mut f, 4, &mut Rng::new(1));
        assert!(f.data.iter().all(|&v| v == 1.0));
    }
}
