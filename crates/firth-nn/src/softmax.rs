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
    /// Training's fused output step, for rows of scores z = x·Wᵀ (N, V) that still lack the
    /// bias b: per row, z += b, p = softmax(z), nll = logsumexp(z) - z_y, and in place
    /// dz = scale · (p - onehot(y)), with db += Σ_rows dz. A row (V floats) stays in cache
    /// across its three passes, so the (N, V) block crosses memory once instead of four
    /// times (bias, softmax, gradient, bias gradient).
    pub fn softmax_xent_grad_rows<T: Real>(
        z: &mut [T],
        bias: &[T],
        targets: &[u32],
        nll: &mut [f64],
        db: &mut [T],
        v: usize,
        scale: T,
    ) {
        for ((row, &y), out) in z.chunks_exact_mut(v).zip(targets).zip(nll.iter_mut()) {
            let m = add_bias_max(row, bias);
            let zy = row[y as usize];
            let s = exp_shifted_sum(row, m);
            *out = s.to_f64().ln() + m.to_f64() - zy.to_f64();
            let k = scale / s;
            for (q, d) in row.iter_mut().zip(db.iter_mut()) {
                *q *= k;
                *d += *q;
            }
            row[y as usize] -= scale;
            db[y as usize] -= scale;
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

/// The training form of [`softmax_cross_entropy`] plus its backward pass and the output bias:
/// `scores` (N, V) = x·Wᵀ without the bias become dL/dz for L = scale · Σ_n -log p(y_n); the bias
/// gradient is added to `db`. Returns Σ_n -log p(y_n). Runs on the calling thread: data-parallel
/// training splits the batch across threads instead.
pub fn softmax_cross_entropy_grad<T: Real>(
    scores: &mut [T],
    bias: &[T],
    targets: &[u32],
    v: usize,
    scale: f64,
    nll: &mut Vec<f64>,
    db: &mut [T],
) -> f64 {
    assert_eq!(scores.len(), targets.len() * v, "scores are not (N, V)");
    assert_eq!(bias.len(), v, "bias is not (V)");
    if let Some(&bad) = targets.iter().find(|&&y| y as usize >= v) {
        panic!("target id {bad} is outside a vocabulary of {v}");
    }
    nll.resize(targets.len(), 0.0);
    let scale = T::from_f64(scale);
    let threads = crate::par::threads();
    let n = targets.len();
    if threads == 1 || scores.len() < crate::par::MIN_PARALLEL || n < 2 * threads {
        softmax_xent_grad_rows(scores, bias, targets, nll, db, v, scale);
    } else {
        // One contiguous block of rows per thread, each summing its own bias gradient; the
        // partial sums are added in block order, so the result depends only on the thread count.
        use rayon::prelude::*;
        let per = n.div_ceil(threads);
        let partial: Vec<Vec<T>> = scores
            .par_chunks_mut(per * v)
            .zip(nll.par_chunks_mut(per))
            .zip(targets.par_chunks(per))
            .map(|((z, out), y)| {
                let mut part = vec![T::ZERO; v];
                softmax_xent_grad_rows(z, bias, y, out, &mut part, v, scale);
                part
            })
            .collect();
        for part in &partial {
            crate::kernels::add_into(db, part);
        }
    }
    nll.iter().sum()
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
    fn fused_gradient_equals_separate_steps() {
        let (n, v) = (3, 21); // v not a multiple of the 16 lanes
        let z: Vec<f64> = (0..n * v)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) * 0.3)
            .collect();
        let b: Vec<f64> = (0..v).map(|i| (i as f64 * 0.37).sin()).collect();
        let y = [4u32, 0, 20];
        let mut want = z.clone();
        for r in want.chunks_mut(v) {
            for (a, bb) in r.iter_mut().zip(&b) {
                *a += bb;
            }
        }
        let mut nll = Vec::new();
        let loss = softmax_cross_entropy(&mut want, &y, v, &mut nll);
        softmax_cross_entropy_backward(&mut want, &y, v, 0.5);
        let mut want_db = vec![1.0; v];
        for r in want.chunks(v) {
            for (d, g) in want_db.iter_mut().zip(r) {
                *d += g;
            }
        }
        let mut got = z.clone();
        let mut db = vec![1.0; v];
        let mut nll2 = Vec::new();
        let loss2 = softmax_cross_entropy_grad(&mut got, &b, &y, v, 0.5, &mut nll2, &mut db);
        assert!((loss - loss2).abs() < 1e-12);
        for (a, b) in got.iter().zip(&want).chain(db.iter().zip(&want_db)) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn large_logits_stay_finite() {
        let mut z = vec![1000.0f32, 0.0, -1000.0];
        let mut nll = Vec::new();
        let loss = softmax_cross_entropy(&mut z, &[1], 3, &mut nll);
        assert!((loss - 1000.0).abs() < 1e-3, "{loss}");
    }

    /// The row-block-parallel fused gradient equals the one-thread one (loss, dz, db).
    #[test]
    fn fused_gradient_is_the_same_on_a_pool() {
        let (n, v) = (64, 2048);
        let mut rng = crate::Rng::new(5);
        let z0: Vec<f32> = (0..n * v)
            .map(|_| 4.0 * rng.uniform() as f32 - 2.0)
            .collect();
        let bias: Vec<f32> = (0..v).map(|i| (i as f32 * 0.01).sin()).collect();
        let targets: Vec<u32> = (0..n as u32).map(|i| (i * 37) % v as u32).collect();
        let run = |par: bool| {
            let (mut z, mut nll, mut db) = (z0.clone(), Vec::new(), vec![0.0f32; v]);
            let f =
                || softmax_cross_entropy_grad(&mut z, &bias, &targets, v, 0.05, &mut nll, &mut db);
            let loss = if par {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(3)
                    .build()
                    .unwrap()
                    .install(f)
            } else {
                crate::par::sequential(f)
            };
            (loss, z, db)
        };
        let (l1, z1, db1) = run(false);
        let (l2, z2, db2) = run(true);
        assert!((l1 - l2).abs() < 1e-9 * l1.abs());
        assert_eq!(z1, z2);
        for (a, b) in db1.iter().zip(&db2) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
