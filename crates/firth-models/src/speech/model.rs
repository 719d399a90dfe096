//! The acoustic model: feature frames → optional frame stacking → stacked bidirectional
//! recurrent encoder → dropout → linear layer to the units and the blank → CTC.
//!
//! **Units.** Output k = 0 is the CTC blank; k = 1..V are the words of the training
//! transcripts in sorted order (digits "0".."9" for FSDD). Blank first is PyTorch's default
//! (`nn.CTCLoss(blank=0)`), so a model's logits line up with a PyTorch port unit for unit.
//!
//! **Frame stacking.** With `stack` = k > 1, frames k·t .. k·t + k - 1 are concatenated into one
//! input frame of k·C numbers and only every k-th position is kept: the encoder runs over
//! ⌈T/k⌉ steps instead of T, which divides its cost by k, while no frame is thrown away (the
//! missing frames past the end of an utterance are zeros). A digit lasts 30–80 frames of
//! 10 ms; after stacking by 2 or 3 it still has several times the frames CTC needs (one per
//! word, plus one between repeated words). Stacking has no parameters, so it happens when the
//! batch is built ([`SpeechBatch::fill`]).
//!
//! **Loss.** PyTorch's `CTCLoss(reduction='mean')`: each utterance's loss is divided by its
//! number of target words, then averaged over the feasible utterances of the batch,
//!
//! ```text
//! L = 1/B' Σ_b loss_b / max(1, |y_b|),      B' = utterances with a finite loss.
//! ```
//!
//! so dL/d loss_b = 1/(B'·|y_b|), which is the `dloss` weight [`firth_nn::ctc::ctc_backward`]
//! takes. Per-word normalisation keeps long connected-digit strings from dominating a batch.
//! An utterance too short for its transcript has loss +∞ and is left out of B' (and counted).
//!
//! **Backward** (llm.c style, each stage adding into its inputs' gradients): the CTC gives
//! dlogits = Σ_b w_b (softmax − γ) per frame; the linear layer maps it to dW, db and
//! dh = dlogits·W; dropout multiplies by its mask; the encoder takes dh as its output gradient.
//! Padded frames have zero dlogits (the CTC ignores them), and the encoder zeroes their rows
//! anyway.

use crate::encoder::{EncoderConfig, SeqEncoder};
use anyhow::{bail, Result};
use firth_nn::ctc::{ctc_backward, ctc_forward, CtcCache};
use firth_nn::dropout::{Dropout, DropoutKind};
use firth_nn::linear::Linear;
use firth_nn::{CellKind, Gemm, Param, ParamSet, Rng};
use serde::{Deserialize, Serialize};

/// The blank's output index.
pub const BLANK: u32 = 0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeechConfig {
    /// Numbers per feature frame (before stacking).
    pub input: usize,
    /// Frames stacked into one encoder step (1 = no stacking).
    pub stack: usize,
    pub cell: CellKind,
    /// Units per direction.
    pub hidden: usize,
    pub layers: usize,
    /// Between encoder layers and before the output layer.
    pub dropout: f32,
    /// Outputs: the words and the blank.
    pub units: usize,
    pub init_range: f64,
}

impl SpeechConfig {
    pub fn validate(&self) -> Result<()> {
        if self.input == 0 || self.stack == 0 || self.hidden == 0 || self.layers == 0 {
            bail!("speech model: input, --stack, --hidden and --layers must be at least 1");
        }
        if self.units < 2 {
            bail!("speech model: the training transcripts hold no words; check the manifest's transcripts (`path<TAB>words`)");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            bail!("--dropout must be in [0, 1)");
        }
        Ok(())
    }
}

/// A padded, stacked batch: what one forward reads.
#[derive(Clone, Debug, Default)]
pub struct SpeechBatch {
    /// Encoder steps (after stacking): the longest utterance's.
    pub steps: usize,
    pub batch: usize,
    /// Numbers per encoder step: stack · C.
    pub dim: usize,
    pub x: Vec<f32>, // (T', B, k·C), zero past each utterance's end
    pub lengths: Vec<usize>,
    /// All transcripts' unit ids one after another.
    pub targets: Vec<u32>,
    pub target_lengths: Vec<usize>,
}

impl SpeechBatch {
    /// Builds the batch of `items` (features (T, C) row-major with T frames, and unit ids),
    /// stacking `stack` frames per step. Every utterance needs at least one frame.
    pub fn fill<'a>(
        &mut self,
        items: impl Iterator<Item = (&'a [f32], usize, &'a [u32])>,
        dim: usize,
        stack: usize,
    ) {
        let items: Vec<(&[f32], usize, &[u32])> = items.collect();
        self.batch = items.len();
        self.dim = dim * stack;
        self.lengths.clear();
        self.lengths
            .extend(items.iter().map(|&(_, t, _)| t.div_ceil(stack).max(1)));
        self.steps = self.lengths.iter().copied().max().unwrap_or(0);
        self.x.clear();
        self.x.resize(self.steps * self.batch * self.dim, 0.0);
        let (b_n, d) = (self.batch, self.dim);
        for (b, &(f, frames, _)) in items.iter().enumerate() {
            // Frame s lands in step s / k at offset (s % k)·C: the stacked rows are the
            // contiguous frames themselves.
            for s in 0..frames {
                let (t, j) = (s / stack, s % stack);
                let at = (t * b_n + b) * d + j * dim;
                self.x[at..at + dim].copy_from_slice(&f[s * dim..(s + 1) * dim]);
            }
        }
        self.targets.clear();
        self.target_lengths.clear();
        for &(_, _, y) in &items {
            self.targets.extend_from_slice(y);
            self.target_lengths.push(y.len());
        }
    }
}

/// The acoustic model; see the module documentation.
#[derive(Clone, Debug)]
pub struct SpeechModel<T> {
    pub config: SpeechConfig,
    pub encoder: SeqEncoder<T>,
    pub out: Linear<T>,
    drop: Dropout<T>,
    x: Vec<T>,      // (T', B, k·C)
    h: Vec<T>,      // (T', B, 2H) encoder output after dropout
    logits: Vec<T>, // (T', B, V)
    dlogits: Vec<T>,
    dh: Vec<T>,
    ctc: CtcCache,
    steps: usize,
    batch: usize,
}

impl<T: Gemm> SpeechModel<T> {
    pub fn new(config: SpeechConfig, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
        let enc = EncoderConfig {
            cell: config.cell,
            input: config.input * config.stack,
            hidden: config.hidden,
            layers: config.layers,
            bidirectional: true,
            dropout: config.dropout,
        };
        let encoder = SeqEncoder::new(&enc, config.init_range, rng);
        let out = Linear::new(
            "output",
            encoder.out_dim(),
            config.units,
            true,
            config.init_range,
            rng,
        );
        Ok(SpeechModel {
            drop: Dropout::new(config.dropout as f64, DropoutKind::Standard),
            config,
            encoder,
            out,
            x: Vec::new(),
            h: Vec::new(),
            logits: Vec::new(),
            dlogits: Vec::new(),
            dh: Vec::new(),
            ctc: CtcCache::default(),
            steps: 0,
            batch: 0,
        })
    }

    /// Logits of the last forward, (T', B, V).
    pub fn logits(&self) -> &[T] {
        &self.logits
    }

    pub fn ctc(&self) -> &CtcCache {
        &self.ctc
    }

    /// Encoder, dropout and output layer: fills the logits (T', B, V).
    pub fn forward_logits(&mut self, b: &SpeechBatch, train: bool, rng: &mut Rng) {
        assert_eq!(b.dim, self.config.input * self.config.stack, "batch width");
        self.steps = b.steps;
        self.batch = b.batch;
        self.x.clear();
        self.x.extend(b.x.iter().map(|&v| T::from_f32(v)));
        let out = self
            .encoder
            .forward(&self.x, b.steps, b.batch, &b.lengths, train, rng);
        self.h.clear();
        self.h.extend_from_slice(out);
        let od = self.encoder.out_dim();
        self.drop.forward(&mut self.h, b.batch * od, train, rng);
        self.logits.clear();
        self.logits
            .resize(b.steps * b.batch * self.config.units, T::ZERO);
        self.out.forward(&self.h, &mut self.logits);
    }

    /// Forward through the CTC: returns the sum of the finite per-utterance losses (nats).
    pub fn forward(&mut self, b: &SpeechBatch, train: bool, rng: &mut Rng) -> f64 {
        self.forward_logits(b, train, rng);
        ctc_forward(
            &self.logits,
            self.config.units,
            &b.lengths,
            &b.targets,
            &b.target_lengths,
            BLANK as usize,
            &mut self.ctc,
        )
    }

    /// The PyTorch 'mean' weights of the last forward's utterances: 1/(B'·max(1, |y_b|)) for
    /// a feasible one, 0 for an impossible one, with B' = `feasible` (the caller's count,
    /// which may span several shards of one batch).
    pub fn mean_weights(&self, b: &SpeechBatch, feasible: usize) -> Vec<f64> {
        (0..b.batch)
            .map(|i| {
                if self.ctc.feasible(i) {
                    1.0 / (feasible.max(1) * b.target_lengths[i].max(1)) as f64
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Adds the gradient of Σ_b dloss[b]·loss_b of the last forward into the parameters.
    pub fn backward(&mut self, dloss: &[f64]) {
        let v = self.config.units;
        self.dlogits.clear();
        self.dlogits.resize(self.steps * self.batch * v, T::ZERO);
        ctc_backward(&self.ctc, dloss, &mut self.dlogits);
        self.dh.clear();
        self.dh.resize(self.h.len(), T::ZERO);
        self.out
            .backward(&self.h, &self.dlogits, Some(&mut self.dh[..]));
        // Dropout's backward multiplies by the mask, which is what the forward multiplied in:
        // the pre-dropout h is never needed.
        self.drop.backward(&mut self.dh);
        self.encoder.backward(&self.x, &self.dh, None);
    }
}

impl<T: Gemm> ParamSet<T> for SpeechModel<T> {
    fn params(&self) -> Vec<&Param<T>> {
        let mut p = self.encoder.params();
        p.extend(self.out.params());
        p
    }

    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut p = self.encoder.params_mut();
        p.extend(self.out.params_mut());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firth_nn::gradcheck::check_params;

    fn tiny(stack: usize, cell: CellKind) -> SpeechModel<f64> {
        let cfg = SpeechConfig {
            input: 3,
            stack,
            cell,
            hidden: 4,
            layers: 2,
            dropout: 0.0,
            units: 4,
            init_range: 0.5,
        };
        SpeechModel::new(cfg, &mut Rng::new(3)).unwrap()
    }

    fn batch(stack: usize) -> SpeechBatch {
        let mut rng = Rng::new(9);
        let feats: Vec<Vec<f32>> = [7usize, 5, 9]
            .iter()
            .map(|&t| (0..t * 3).map(|_| rng.uniform_f32() * 2.0 - 1.0).collect())
            .collect();
        // Repeated label (needs a blank between), a single word, and an impossible item for
        // stacking 3 (3 frames for 4 labels with a repeat).
        let ys: [&[u32]; 3] = [&[1, 1], &[3], &[2, 1, 2, 3]];
        let mut b = SpeechBatch::default();
        b.fill(
            feats.iter().zip(ys).map(|(f, y)| (&f[..], f.len() / 3, y)),
            3,
            stack,
        );
        b
    }

    fn mean_loss(m: &mut SpeechModel<f64>, b: &SpeechBatch) -> f64 {
        m.forward(b, false, &mut Rng::new(1));
        let feasible = (0..b.batch).filter(|&i| m.ctc().feasible(i)).count();
        let w = m.mean_weights(b, feasible);
        m.ctc()
            .losses()
            .iter()
            .zip(&w)
            .filter(|(_, &w)| w > 0.0)
            .map(|(l, w)| l * w)
            .sum()
    }

    #[test]
    fn stacking_concatenates_consecutive_frames() {
        let f: Vec<f32> = (0..10).map(|v| v as f32).collect(); // 5 frames of 2
        let mut b = SpeechBatch::default();
        b.fill(std::iter::once((&f[..], 5, &[1u32][..])), 2, 2);
        assert_eq!((b.steps, b.dim, b.lengths[0]), (3, 4, 3));
        assert_eq!(b.x, vec![0., 1., 2., 3., 4., 5., 6., 7., 8., 9., 0., 0.]);
    }

    #[test]
    fn whole_model_gradient_matches_finite_differences() {
        for (stack, cell) in [(1, CellKind::Lstm), (2, CellKind::Gru), (3, CellKind::Lstm)] {
            let mut m = tiny(stack, cell);
            let b = batch(stack);
            let (worst, at) = check_params(
                &mut m,
                |m| {
                    let loss = mean_loss(m, &b);
                    let feasible = (0..b.batch).filter(|&i| m.ctc().feasible(i)).count();
                    let w = m.mean_weights(&b, feasible);
                    m.backward(&w);
                    loss
                },
                |m| mean_loss(m, &b),
                12,
            );
            assert!(worst < 1e-6, "stack {stack} {cell:?}: {worst} at {at}");
            if stack == 3 {
                assert!(!m.ctc().feasible(2), "the third item should be impossible");
            }
        }
    }

    #[test]
    fn dropout_backward_uses_the_forward_mask() {
        let mut m = tiny(1, CellKind::Lstm);
        m.config.dropout = 0.3;
        m.drop = Dropout::new(0.3, DropoutKind::Standard);
        let b = batch(1);
        let (worst, at) = check_params(
            &mut m,
            |m| {
                let loss = m.forward(&b, true, &mut Rng::new(5));
                let w = vec![1.0; b.batch];
                m.backward(&w);
                loss
            },
            |m| m.forward(&b, true, &mut Rng::new(5)),
            8,
        );
        assert!(worst < 1e-6, "{worst} at {at}");
    }
}
