//! Affine layer y = x·Wᵀ + b, with W stored (O, I) as in PyTorch so that an output layer can
//! share its matrix with a (V, E) embedding table (tied embeddings).

use crate::gemm::gemm;
use crate::kernels;
use crate::param::{Param, ParamSet};
use crate::{Real, Rng};

#[derive(Clone, Debug)]
pub struct Linear<T> {
    pub weight: Param<T>,       // (O, I)
    pub bias: Option<Param<T>>, // (O)
}

impl<T: Real> Linear<T> {
    pub fn new(
        name: &str,
        input: usize,
        output: usize,
        bias: bool,
        init_range: f64,
        rng: &mut Rng,
    ) -> Self {
        Linear {
            weight: Param::uniform(&format!("{name}.weight"), &[output, input], init_range, rng),
            bias: bias.then(|| Param::uniform(&format!("{name}.bias"), &[output], init_range, rng)),
        }
    }

    pub fn input(&self) -> usize {
        self.weight.shape[1]
    }

    pub fn output(&self) -> usize {
        self.weight.shape[0]
    }

    /// y (N, O) = x (N, I)·Wᵀ + b.
    pub fn forward(&self, x: &[T], y: &mut [T]) {
        affine_forward(
            x,
            &self.weight.value,
            self.bias.as_ref().map(|b| &b.value[..]),
            y,
            self.input(),
            self.output(),
        );
    }

    /// dW += dyᵀ·x, db += Σ_rows dy, dx += dy·W.
    pub fn backward(&mut self, x: &[T], dy: &[T], dx: Option<&mut [T]>) {
        let (i, o) = (self.input(), self.output());
        affine_backward(
            x,
            dy,
            &self.weight.value,
            &mut self.weight.grad,
            self.bias.as_mut().map(|b| &mut b.grad[..]),
            dx,
            i,
            o,
        );
    }
}

/// y (N, O) = x (N, I)·Wᵀ + b with W (O, I).
pub fn affine_forward<T: Real>(x: &[T], w: &[T], b: Option<&[T]>, y: &mut [T], i: usize, o: usize) {
    let n = x.len() / i;
    gemm(y, x, w, n, o, i, false, true, false);
    if let Some(b) = b {
        crate::par::for_rows(y, o, |_, rows| kernels::add_bias(rows, b));
    }
}

/// The gradients of [`affine_forward`]: dW (O, I) += dyᵀ·x, db += Σ_rows dy, dx (N, I) += dy·W.
#[allow(clippy::too_many_arguments)]
pub fn affine_backward<T: Real>(
    x: &[T],
    dy: &[T],
    w: &[T],
    dw: &mut [T],
    db: Option<&mut [T]>,
    dx: Option<&mut [T]>,
    i: usize,
    o: usize,
) {
    let n = x.len() / i;
    gemm(dw, dy, x, o, i, n, true, false, true);
    if let Some(db) = db {
        kernels::sum_rows_into(dy, db);
    }
    if let Some(dx) = dx {
        gemm(dx, dy, w, n, i, o, false, false, true);
    }
}

impl<T: Real> ParamSet<T> for Linear<T> {
    fn params(&self) -> Vec<&Param<T>> {
        let mut v = vec![&self.weight];
        v.extend(self.bias.as_ref());
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut v = vec![&mut self.weight];
        v.extend(self.bias.as_mut());
        v
    }
}

/// The output layer split by vocabulary blocks, for data-parallel training with a big output
/// (V ≫ H): each of `blocks` threads owns rows [v0, v1) of W (V, H), so it packs only that
/// block, and every product has all N rows.
pub mod by_vocab {
    use crate::Real;
    use faer::traits::ComplexField;
    use faer::{Accum, MatMut, MatRef, Par};
    use rayon::prelude::*;

    fn ranges(v: usize, blocks: usize) -> Vec<(usize, usize)> {
        let per = v.div_ceil(blocks.max(1));
        (0..v)
            .step_by(per.max(1))
            .map(|s| (s, (s + per).min(v)))
            .collect()
    }

    /// Z (N, V) = X (N, H) · Wᵀ, one column block of Z per thread (the bias is added by the
    /// fused softmax that follows).
    pub fn scores<T: Real + ComplexField>(
        z: &mut [T],
        x: &[T],
        w: &[T],
        n: usize,
        v: usize,
        h: usize,
        blocks: usize,
    ) {
        assert_eq!(z.len(), n * v, "Z is not (N, V)");
        let mut rest = MatMut::from_row_major_slice_mut(z, n, v);
        let mut parts = Vec::new();
        let r = ranges(v, blocks);
        for &(s, e) in &r {
            let (head, tail) = rest.split_at_col_mut(e - s);
            parts.push((head, s, e));
            rest = tail;
        }
        let x = MatRef::from_row_major_slice(x, n, h);
        parts.into_par_iter().for_each(|(zb, s, e)| {
            let wb = MatRef::from_row_major_slice(&w[s * h..e * h], e - s, h);
            faer::linalg::matmul::matmul(
                zb,
                Accum::Replace,
                x,
                wb.transpose(),
                T::one_impl(),
                Par::Seq,
            );
        });
    }

    /// From dZ (N, V): dW (V, H) = dZᵀ·X (overwritten) and dX (N, H) = dZ·W (overwritten), one
    /// vocabulary block per thread (its rows of dW, and a partial dX over its block, summed in
    /// block order so the result depends only on `blocks`).
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Real + ComplexField>(
        dz: &[T],
        x: &[T],
        w: &[T],
        dw: &mut [T],
        dx: &mut [T],
        n: usize,
        v: usize,
        h: usize,
        blocks: usize,
    ) {
        let r = ranges(v, blocks);
        let per = r[0].1 - r[0].0;
        let dzm = MatRef::from_row_major_slice(dz, n, v);
        let xm = MatRef::from_row_major_slice(x, n, h);
        let partials: Vec<Vec<T>> = dw
            .par_chunks_mut(per * h)
            .zip(r.par_iter())
            .map(|(dwb, &(s, e))| {
                let zb = dzm.subcols(s, e - s);
                let dwm = MatMut::from_row_major_slice_mut(dwb, e - s, h);
                faer::linalg::matmul::matmul(
                    dwm,
                    Accum::Replace,
                    zb.transpose(),
                    xm,
                    T::one_impl(),
                    Par::Seq,
                );
                let mut part = vec![T::ZERO; n * h];
                let pm = MatMut::from_row_major_slice_mut(&mut part, n, h);
                let wb = MatRef::from_row_major_slice(&w[s * h..e * h], e - s, h);
                faer::linalg::matmul::matmul(pm, Accum::Replace, zb, wb, T::one_impl(), Par::Seq);
                part
            })
            .collect();
        dx.copy_from_slice(&partials[0]);
        for p in &partials[1..] {
            crate::kernels::add_into(dx, p);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::gemm::gemm;

        /// Any number of blocks, including uneven ones and more blocks than fit, gives the
        /// plain products.
        #[test]
        fn blocks_give_the_plain_products() {
            let (n, v, h) = (5, 11, 3);
            let f = |len: usize, a: f64| -> Vec<f64> {
                (0..len).map(|i| (i as f64 * a).sin()).collect()
            };
            let (x, w, dz) = (f(n * h, 0.7), f(v * h, 0.3), f(n * v, 0.11));
            let mut z_want = vec![0.0; n * v];
            gemm(&mut z_want, &x, &w, n, v, h, false, true, false);
            let mut dw_want = vec![0.0; v * h];
            gemm(&mut dw_want, &dz, &x, v, h, n, true, false, false);
            let mut dx_want = vec![0.0; n * h];
            gemm(&mut dx_want, &dz, &w, n, h, v, false, false, false);
            for blocks in [1, 2, 3, 4, 20] {
                let mut z = vec![9.0; n * v];
                scores(&mut z, &x, &w, n, v, h, blocks);
                let (mut dw, mut dx) = (vec![9.0; v * h], vec![9.0; n * h]);
                backward(&dz, &x, &w, &mut dw, &mut dx, n, v, h, blocks);
                for (got, want) in [(&z, &z_want), (&dw, &dw_want), (&dx, &dx_want)] {
                    for (a, b) in got.iter().zip(want.iter()) {
                        assert!((a - b).abs() < 1e-12, "{blocks} blocks: {a} vs {b}");
                    }
                }
            }
        }
    }
}
