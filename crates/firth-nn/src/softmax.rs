//! Fused softmax and cross-entropy.
//!
//! For logits z and target y, L = -log softmax(z)_y = logsumexp(z) - z_y, and
//! dL/dz = softmax(z) - onehot(y). Fusing the two lets the backward pass reuse the
//! probabilities in place of the logits: no second (N, V) buffer.

use crate::{dispatch, Real};

/// Lanes of independent accumulators: float reductions may not be reordered by the compiler,
/// so we keep 16 partial maxima and sums ourselves, which it then maps onto SIMD registers.
const LANES: usize = 16;

dispatch! {
    /// Turns each row of `logits` (N, V) into probabilities in place, and writes
    /// -log p(target) of each row into `nll` (N).
    pub fn softmax_rows<T: Real>(logits: &mut [T], targets: &[u32], nll: &mut [f64], v: usize) {
        for ((row, &y), out) in logits.chunks_exact_mut(v).zip(targets).zip(nll.iter_mut()) {
            let zy = row[y as usize];
            let mut mx = [row[0]; LANES];
            let mut chunks = row.chunks_exact(LANES);
            for c in &mut chunks {
                for i in 0..LANES {
                    mx[i] = if c[i] > mx[i] { c[i] } else { mx[i] };
                }
            }
            let mut m = mx[0];
            for &z in mx.iter().chain(chunks.remainder()) {
                m = if z > m { z } else { m };
            }
            let mut acc = [T::ZERO; LANES];
            let mut chunks = row.chunks_exact_mut(LANES);
            for c in &mut chunks {
                for i in 0..LANES {
                    let e = (c[i] - m).exp();
                    c[i] = e;
                    acc[i] += e;
                }
            }
            let mut s = T::ZERO;
            for z in chunks.into_remainder() {
                let e = (*z - m).exp();
                *z = e;
                s += e;
            }
            let s = acc.iter().fold(s, |a, &b| a + b);
            let inv = T::ONE / s;
            for z in row.iter_mut() {
                *z *= inv;
            }
            *out = s.to_f64().ln() + m.to_f64() - zy.to_f64();
        }
    }
}

/// Softmax in place over rows of `logits` (N, V); returns Σ_n -log p(target_n), in f64 so the
/// loss over an epoch does not drift.
pub fn softmax_cross_entropy<T: Real>(
    logits: &mut [T],
    targets: &[u32],
    v: usize,
    nll: &mut Vec<f64>,
) -> f64 {
    assert_eq!(logits.len(), targets.len() * v, "logits are not (N, V)");
    if let Some(&bad) = targets.iter().find(|&&y| y as usize >= v) {
        panic!("target id {bad} is outside a vocabulary of {v}");
    }
    nll.resize(targets.len(), 0.0);
    crate::par::for_rows2(logits, v, nll, 1, |first, z, out| {
        softmax_rows(z, &targets[first..first + out.len()], out, v)
    });
    nll.iter().sum()
}

/// dz = scale · (p - onehot(y)), in place over the probabilities that
/// [`softmax_cross_entropy`] left behind.
pub fn softmax_cross_entropy_backward<T: Real>(
    probs: &mut [T],
    targets: &[u32],
    v: usize,
    scale: f64,
) {
    let s = T::from_f64(scale);
    crate::par::for_rows(probs, v, |first, rows| {
        for (row, &y) in rows.chunks_exact_mut(v).zip(&targets[first..]) {
            row[y as usize] -= T::ONE;
            for z in row.iter_mut() {
                *z *= s;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_case() {
        // logits (0, ln 2, ln 3): p = (1/6, 2/6, 3/6); target 2: loss = ln 2.
        let mut z = vec![0.0f64, 2f64.ln(), 3f64.ln()];
        let mut nll = Vec::new();
        let loss = softmax_cross_entropy(&mut z, &[2], 3, &mut nll);
        assert!((loss - 2f64.ln()).abs() < 1e-12);
        softmax_cross_entropy_backward(&mut z, &[2], 3, 1.0);
        let want = [1.0 / 6.0, 2.0 / 6.0, -0.5];
        for (a, b) in z.iter().zip(want) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn large_logits_stay_finite() {
        let mut z = vec![1000.0f32, 0.0, -1000.0];
        let mut nll = Vec::new();
        let loss = softmax_cross_entropy(&mut z, &[1], 3, &mut nll);
        assert!((loss - 1000.0).abs() < 1e-3, "{loss}");
    }
}
