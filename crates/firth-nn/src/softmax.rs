//! Fused softmax and cross-entropy.
//!
//! For logits z and target y, L = -log softmax(z)_y = logsumexp(z) - z_y, and
//! dL/dz = softmax(z) - onehot(y). Fusing the two lets the backward pass reuse the
//! probabilities in place of the logits: no second (N, V) buffer.
//!
//! The plain softmax, for places where it is not followed by a cross-entropy (attention
//! weights), is the pair [`softmax_forward`] / [`softmax_backward`] over caller-owned rows.

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
    /// (the vocabulary-split output step, `linear::by_vocab::softmax_step`): each row of the tile's scores `z` (N, w)
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

/// y = softmax(x) over each row of `x` (N, V) into `y` (N, V):
/// y_j = exp(x_j - m) / Σ_k exp(x_k - m) with m the row's maximum, which leaves y unchanged and
/// keeps exp from overflowing. With `lengths` (N), row n is a softmax over its first
/// `lengths[n]` entries only (each in 1..=V) and its other entries get y = 0, as if their x were
/// -∞: the masked softmax of attention over sources of different lengths.
pub fn softmax_forward<T: Real>(x: &[T], y: &mut [T], v: usize, lengths: Option<&[usize]>) {
    assert!(v > 0, "softmax rows must not be empty");
    assert_eq!(x.len() % v, 0, "softmax input is not (N, V)");
    assert_eq!(y.len(), x.len(), "softmax output is not the input's shape");
    let rows = x.len() / v;
    if let Some(lengths) = lengths {
        assert_eq!(lengths.len(), rows, "softmax lengths are not (N)");
    }
    for (n, (xr, yr)) in x.chunks_exact(v).zip(y.chunks_exact_mut(v)).enumerate() {
        let len = lengths.map_or(v, |l| l[n]);
        assert!(
            (1..=v).contains(&len),
            "softmax length {len} is not in 1..={v}"
        );
        let (live, masked) = yr.split_at_mut(len);
        let m = xr[..len].iter().fold(xr[0], |a, &b| a.max(b));
        live.copy_from_slice(&xr[..len]);
        let inv = T::ONE / exp_shifted_sum(live, m);
        for e in live.iter_mut() {
            *e *= inv;
        }
        masked.fill(T::ZERO);
    }
}

/// dx += dL/dx for y = softmax(x) over rows (N, V), given y and dy = dL/dy. With
/// ∂y_i/∂x_j = y_i (δ_ij - y_j), dL/dx_j = Σ_i dy_i y_i (δ_ij - y_j) = y_j (dy_j - Σ_i dy_i y_i).
/// Entries that a length mask set to y = 0 get no gradient, so no mask is needed here.
pub fn softmax_backward<T: Real>(y: &[T], dy: &[T], dx: &mut [T], v: usize) {
    assert_eq!(y.len() % v.max(1), 0, "softmax output is not (N, V)");
    assert_eq!(dy.len(), y.len(), "softmax output gradient is not (N, V)");
    assert_eq!(dx.len(), y.len(), "softmax input gradient is not (N, V)");
    for ((yr, dyr), dxr) in y
        .chunks_exact(v)
        .zip(dy.chunks_exact(v))
        .zip(dx.chunks_exact_mut(v))
    {
        let dot: T = yr.iter().zip(dyr).map(|(&a, &b)| a * b).sum();
        for ((d, &yj), &dyj) in dxr.iter_mut().zip(yr).zip(dyr) {
            *d += yj * (dyj - dot);
        }
    }
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

    #[test]
    fn softmax_by_hand() {
        // x = (0, ln 2, ln 3, 5) with the first three live: y = (1/6, 2/6, 3/6, 0).
        let x = [0.0f64, 2f64.ln(), 3f64.ln(), 5.0];
        let mut y = [9.0; 4];
        softmax_forward(&x, &mut y, 4, Some(&[3]));
        let want = [1.0 / 6.0, 2.0 / 6.0, 0.5, 0.0];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{y:?}");
        }
        // dy = (1, 0, 0, 7): Σ dy·y = 1/6, dx = y ⊙ (dy - 1/6) = (5/36, -2/36, -3/36, 0),
        // added to what dx held.
        let mut dx = [1.0; 4];
        softmax_backward(&y, &[1.0, 0.0, 0.0, 7.0], &mut dx, 4);
        let want = [1.0 + 5.0 / 36.0, 1.0 - 2.0 / 36.0, 1.0 - 3.0 / 36.0, 1.0];
        for (a, b) in dx.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{dx:?}");
        }
    }

    #[test]
    fn softmax_gradient_matches_finite_differences() {
        let (n, v) = (3, 5);
        let lengths = [5, 2, 1];
        let x: Vec<f64> = (0..n * v)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0)
            .collect();
        let r: Vec<f64> = (0..n * v)
            .map(|i| ((i * 5 % 13) as f64 - 6.0) / 4.0)
            .collect();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; n * v];
            softmax_forward(x, &mut y, v, Some(&lengths));
            y.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut y = vec![0.0; n * v];
        softmax_forward(&x, &mut y, v, Some(&lengths));
        let mut dx = vec![0.0; n * v];
        softmax_backward(&y, &r, &mut dx, v);
        let worst = crate::gradcheck::check_input(&x, &dx, loss);
        assert!(worst < 1e-7, "{worst:e}");
        // Masked entries get exactly nothing.
        assert!(dx[v + 2..2 * v].iter().all(|&d| d == 0.0));
        // A row of one live entry is constant: no gradient at all.
        assert!(dx[2 * v..].iter().all(|&d| d == 0.0));
    }
}
