//! Padded batches of token sequences and the cross-entropy that ignores their padding.
//!
//! Sequences of different lengths go side by side into a time-major (T, B) grid, T the longest
//! length, with `pad` after each sequence's end. A loss over (T, B, V) logits then has to skip
//! the padded cells: [`masked_cross_entropy`] sums -log p(y_{t,b}) over the real positions
//! only, so the total is the sum of each sequence's own unpadded loss, and
//! [`masked_cross_entropy_backward`] gives the padded rows zero gradient.

use crate::softmax::softmax_rows;
use crate::Real;
use anyhow::{ensure, Result};

/// Token ids (T, B), time-major, `pad` beyond each sequence's length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PaddedBatch {
    /// (T, B): ids[t·B + b] is token t of sequence b, or the pad id when t ≥ lengths[b].
    pub ids: Vec<u32>,
    /// (B) real tokens per sequence.
    pub lengths: Vec<usize>,
    /// (T, B) true at real tokens, false at padding.
    pub mask: Vec<bool>,
    /// T, the longest length.
    pub steps: usize,
    /// B, the number of sequences.
    pub batch: usize,
}

impl PaddedBatch {
    /// Lays `seqs` out time-major with `pad` after each one's end. Empty sequences are allowed
    /// (all their cells are padding); T = 0 when all are empty.
    pub fn new(seqs: &[Vec<u32>], pad: u32) -> Self {
        let batch = seqs.len();
        let steps = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = vec![pad; steps * batch];
        let mut mask = vec![false; steps * batch];
        for (b, seq) in seqs.iter().enumerate() {
            for (t, &id) in seq.iter().enumerate() {
                ids[t * batch + b] = id;
                mask[t * batch + b] = true;
            }
        }
        PaddedBatch {
            ids,
            lengths: seqs.iter().map(Vec::len).collect(),
            mask,
            steps,
            batch,
        }
    }

    /// The decoder's inputs and targets under teacher forcing: inputs `bos y_1 … y_n`, targets
    /// `y_1 … y_n eos`, both of length n + 1 per sequence, padded with `pad`.
    pub fn teacher_forcing(
        seqs: &[Vec<u32>],
        bos: u32,
        eos: u32,
        pad: u32,
    ) -> (PaddedBatch, PaddedBatch) {
        let inputs: Vec<Vec<u32>> = seqs
            .iter()
            .map(|s| std::iter::once(bos).chain(s.iter().copied()).collect())
            .collect();
        let targets: Vec<Vec<u32>> = seqs
            .iter()
            .map(|s| s.iter().copied().chain(std::iter::once(eos)).collect())
            .collect();
        (Self::new(&inputs, pad), Self::new(&targets, pad))
    }

    /// The number of real (unpadded) tokens.
    pub fn tokens(&self) -> usize {
        self.lengths.iter().sum()
    }
}

/// Cross-entropy of `logits` (T, B, V) against `targets` over real positions only:
/// L = Σ_{t < len_b} -log softmax(z_{t,b})_{y_{t,b}} = Σ_{t < len_b} (logsumexp(z_{t,b}) - z_{t,b,y}).
/// Returns (L, number of real tokens), L in f64. The rows of real positions are turned into
/// probabilities in place for [`masked_cross_entropy_backward`]; padded rows are left as they
/// were. Fails if a real target is outside the vocabulary.
pub fn masked_cross_entropy<T: Real>(
    logits: &mut [T],
    targets: &PaddedBatch,
    v: usize,
) -> Result<(f64, usize)> {
    ensure!(
        logits.len() == targets.ids.len() * v,
        "logits have {} values but the targets are ({}, {}) over a vocabulary of {v}; \
         the model's output must be (T, B, V) for the same batch",
        logits.len(),
        targets.steps,
        targets.batch
    );
    let mut total = 0.0;
    let mut nll = [0.0];
    for (k, row) in logits.chunks_exact_mut(v).enumerate() {
        if !targets.mask[k] {
            continue;
        }
        let y = targets.ids[k];
        ensure!(
            (y as usize) < v,
            "target id {y} (step {}, sequence {}) is outside a vocabulary of {v}; \
             encode targets with the model's vocabulary",
            k / targets.batch,
            k % targets.batch
        );
        softmax_rows(row, &[y], &mut nll, v);
        total += nll[0];
    }
    Ok((total, targets.tokens()))
}

/// dz = scale · (p - onehot(y)) at real positions, 0 at padded ones, in place over what
/// [`masked_cross_entropy`] left behind (`scale` = 1 / tokens gives the mean's gradient).
pub fn masked_cross_entropy_backward<T: Real>(
    probs: &mut [T],
    targets: &PaddedBatch,
    v: usize,
    scale: f64,
) {
    assert_eq!(
        probs.len(),
        targets.ids.len() * v,
        "probabilities are not (T, B, V)"
    );
    let s = T::from_f64(scale);
    for (k, row) in probs.chunks_exact_mut(v).enumerate() {
        if targets.mask[k] {
            row[targets.ids[k] as usize] -= T::ONE;
            for z in row.iter_mut() {
                *z *= s;
            }
        } else {
            row.fill(T::ZERO);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::check_input;
    use crate::softmax::softmax_cross_entropy;

    fn seqs() -> Vec<Vec<u32>> {
        vec![vec![1, 2, 3], vec![4], vec![0, 4]]
    }

    #[test]
    fn layout_lengths_and_mask() {
        let p = PaddedBatch::new(&seqs(), 9);
        assert_eq!((p.steps, p.batch), (3, 3));
        assert_eq!(p.ids, vec![1, 4, 0, 2, 9, 4, 3, 9, 9]);
        assert_eq!(p.lengths, vec![3, 1, 2]);
        let mask: Vec<bool> = p.ids.iter().map(|&i| i != 9).collect();
        assert_eq!(p.mask, mask);
        assert_eq!(p.tokens(), 6);
        let (inp, tgt) = PaddedBatch::teacher_forcing(&seqs(), 7, 8, 9);
        assert_eq!(inp.lengths, vec![4, 2, 3]);
        assert_eq!(&inp.ids[..3], &[7, 7, 7]);
        // Targets (1 2 3 8), (4 8), (0 4 8): step 1 holds 2, the eos of sequence 1, and 4.
        assert_eq!(&tgt.ids[3..6], &[2, 8, 4]);
        assert_eq!(&tgt.ids[6..], &[3, 9, 8, 8, 9, 9]);
    }

    fn logits(n: usize) -> Vec<f64> {
        (0..n).map(|i| ((i * 7 % 17) as f64 - 8.0) / 5.0).collect()
    }

    #[test]
    fn loss_is_the_sum_of_unpadded_losses_and_padding_gets_no_gradient() {
        let v = 5;
        let batch = PaddedBatch::new(&seqs(), 9); // pad id outside V: never read
        let z = logits(batch.ids.len() * v);
        let mut probs = z.clone();
        let (loss, count) = masked_cross_entropy(&mut probs, &batch, v).unwrap();
        assert_eq!(count, 6);
        // Each sequence alone, its rows gathered from the padded grid.
        let mut want = 0.0;
        for (b, seq) in seqs().iter().enumerate() {
            let mut rows: Vec<f64> = (0..seq.len())
                .flat_map(|t| z[(t * 3 + b) * v..][..v].to_vec())
                .collect();
            want += softmax_cross_entropy(&mut rows, seq, v, &mut Vec::new());
        }
        assert!((loss - want).abs() < 1e-12, "{loss} vs {want}");
        masked_cross_entropy_backward(&mut probs, &batch, v, 0.5);
        for k in 0..batch.ids.len() {
            let row = &probs[k * v..][..v];
            if !batch.mask[k] {
                assert!(row.iter().all(|&g| g == 0.0), "padded row {k} has gradient");
            }
        }
        let f = |x: &[f64]| 0.5 * masked_cross_entropy(&mut x.to_vec(), &batch, v).unwrap().0;
        assert!(check_input(&z, &probs, f) < 1e-7);
    }

    #[test]
    fn out_of_vocabulary_target_is_an_error() {
        let batch = PaddedBatch::new(&[vec![1, 6]], 0);
        let mut z = logits(2 * 5);
        let err = masked_cross_entropy(&mut z, &batch, 5).unwrap_err();
        assert!(err.to_string().contains("target id 6 (step 1"), "{err}");
    }
}
