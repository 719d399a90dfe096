//! Fused softmax and cross-entropy.
//!
//! For logits z and target y, L = -log softmax(z)_y = logsumexp(z) - z_y, and
//! dL/dz = softmax(z) - onehot(y). Fusing the two lets the backward pass reuse the
//! probabilities in place of the logits: no second (N, V) buffer.

use crate::{dispatch, Real};

/// Lanes of independent accumulators: float reductions may not be reordered by the compiler,
/// so we keep 16 partial maxima and sums ourselves, which it then maps onto SIMD registers.
const LANES: usize = 16;

/// z ← exp(z - m) over a row, returning Σ exp(z - m). Inlined into the dispatched kernels
/// below, so it is compiled for each one's instruction set.
#[inline(always)]
fn exp_shifted_sum<T: Real>(row: &mut [T], m: T) -> T {
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
    acc.iter().fold(s, |a, &b| a + b)
}

/// z ← z + b over a row, returning max z. Inlined into the dispatched kernels like
/// [`exp_shifted_sum`].
#[inline(always)]
fn add_bias_max<T: Real>(row: &mut [T], bias: &[T]) -> T {
    let mut mx = [T::from_f64(f64::NEG_INFINITY); LANES];
    let mut rc = row.chunks_exact_mut(LANES);
    let mut bc = bias.chunks_exact(LANES);
    for (c, b) in (&mut rc).zip(&mut bc) {
        for i in 0..LANES {
            c[i] += b[i];
            mx[i] = if c[i] > mx[i] { c[i] } else { mx[i] };
        }
    }
    let mut m = mx[0];
    for &q in &mx {
        m = if q > m { q } else { m };
    }
    for (c, &b) in rc.into_remainder().iter_mut().zip(bc.remainder()) {
        *c += b;
        m = if *c > m { *c } else { m };
    }
    m
}

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
            let s = exp_shifted_sum(row, m);
            let inv = T::ONE / s;
            for z in row.iter_mut() {
                *z *= inv;
            }
            *out = s.to_f64().ln() + m.to_f64() - zy.to_f64();
        }
    }
}

dispatch! {
    /// First pass over one vocabulary tile of the split softmax
    /// ([`crate::linear::by_vocab::softmax_step`]): each row of the tile's scores `z` (N, w)
    /// gets the tile's `bias`, then becomes e = exp(z - m) with m the row's maximum over the
    /// tile; `m` and `s` (N) receive each row's m and Σ e. The row's softmax over the whole
    /// vocabulary is then e · exp(m - logsumexp), with logsumexp from all tiles' (m, s).
    pub fn tile_exp_rows<T: Real>(z: &mut [T], bias: &[T], m: &mut [T], s: &mut [T], w: usize) {
        for ((row, m), s) in z.chunks_exact_mut(w).zip(m.iter_mut()).zip(s.iter_mut()) {
            let top = add_bias_max(row, bias);
            *m = top;
            *s = exp_shifted_sum(row, top);
        }
    }
}

dispatch! {
    /// Second pass over a tile of the split softmax: row i of e (N, w) times `f[i]`
    /// (= scale · exp(m_i - logsumexp_i), so the row becomes scale · softmax), with the column
    /// sums added to `db` (w). The caller subtracts scale at each row's target.
    pub fn tile_scale_rows<T: Real>(z: &mut [T], f: &[T], db: &mut [T], w: usize) {
        for (row, &f) in z.chunks_exact_mut(w).zip(f) {
            for (q, d) in row.iter_mut().zip(db.iter_mut()) {
                *q *= f;
                *d += *q;
            }
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
