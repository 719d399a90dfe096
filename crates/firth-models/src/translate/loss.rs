//! The label-smoothed cross-entropy (Szegedy et al. 2016) over rows of output scores.
//!
//! For scores z (V) with target y, log p = z - logsumexp(z) and
//!
//! ```text
//! L = (1-ε)·(-log p_y) + ε·(1/V)·Σ_v (-log p_v)
//!   = (1-ε)·(lse - z_y) + ε·(lse - mean(z))
//! dL/dz_j = p_j - (1-ε)·[j = y] - ε/V
//! ```
//!
//! (the smoothing term's gradient is (1/V)·Σ_v (p_j - [j = v]) = p_j - 1/V). ε = 0 is the
//! plain cross-entropy.

use firth_nn::Real;

/// Over the rows of `logits` (N, V): returns (Σ -log p(y_n), Σ L_n). With `grad_scale` = s,
/// overwrites each row with s·dL_n/dz. `per_row` is scratch (2N).
pub fn smoothed_cross_entropy<T: Real>(
    logits: &mut [T],
    targets: &[u32],
    v: usize,
    eps: f64,
    grad_scale: Option<f64>,
    per_row: &mut Vec<f64>,
) -> (f64, f64) {
    assert_eq!(logits.len(), targets.len() * v, "logits are not (N, V)");
    if let Some(&bad) = targets.iter().find(|&&y| y as usize >= v) {
        panic!("target id {bad} is outside a vocabulary of {v}");
    }
    per_row.clear();
    per_row.resize(2 * targets.len(), 0.0);
    firth_nn::par::for_rows2(logits, v, per_row, 2, |first, z, out| {
        for ((row, &y), o) in z
            .chunks_exact_mut(v)
            .zip(&targets[first..])
            .zip(out.chunks_exact_mut(2))
        {
            let y = y as usize;
            let zy = row[y].to_f64();
            let mut m = row[0];
            let mut total = 0.0f64;
            for &q in row.iter() {
                m = if q > m { q } else { m };
                total += q.to_f64();
            }
            let mean = total / v as f64;
            let mut s = T::ZERO;
            for q in row.iter_mut() {
                let e = (*q - m).exp();
                *q = e;
                s += e;
            }
            let lse = m.to_f64() + s.to_f64().ln();
            let nll = lse - zy;
            o[0] = nll;
            o[1] = (1.0 - eps) * nll + eps * (lse - mean);
            if let Some(scale) = grad_scale {
                let inv = T::from_f64(scale / s.to_f64());
                let off = T::from_f64(scale * eps / v as f64);
                for q in row.iter_mut() {
                    *q = *q * inv - off;
                }
                row[y] -= T::from_f64(scale * (1.0 - eps));
            }
        }
    });
    let nll = per_row.iter().step_by(2).sum();
    let loss = per_row.iter().skip(1).step_by(2).sum();
    (nll, loss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use firth_nn::gradcheck::check_input;

    #[test]
    fn smoothed_loss_matches_its_definition_and_gradient() {
        let (n, v) = (4, 7);
        let z: Vec<f64> = (0..n * v)
            .map(|i| ((i * 5 % 11) as f64 - 5.0) / 3.0)
            .collect();
        let y = [0u32, 6, 3, 3];
        for eps in [0.0, 0.1, 0.3] {
            let mut scratch = Vec::new();
            let (nll, loss) =
                smoothed_cross_entropy(&mut z.clone(), &y, v, eps, None, &mut scratch);
            // Direct: log softmax per row.
            let (mut want_nll, mut want) = (0.0, 0.0);
            for (r, &t) in y.iter().enumerate() {
                let row = &z[r * v..][..v];
                let lse = row.iter().map(|q| q.exp()).sum::<f64>().ln();
                let lp: Vec<f64> = row.iter().map(|q| q - lse).collect();
                want_nll -= lp[t as usize];
                want += -(1.0 - eps) * lp[t as usize] - eps * lp.iter().sum::<f64>() / v as f64;
            }
            assert!((nll - want_nll).abs() < 1e-12 && (loss - want).abs() < 1e-12);
            let mut g = z.clone();
            smoothed_cross_entropy(&mut g, &y, v, eps, Some(0.5), &mut scratch);
            let worst = check_input(&z, &g, |x| {
                0.5 * smoothed_cross_entropy(&mut x.to_vec(), &y, v, eps, None, &mut Vec::new()).1
            });
            assert!(worst < 1e-6, "ε {eps}: {worst:e}");
        }
    }
}
