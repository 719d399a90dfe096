//! Affine layer y = x·Wᵀ + b, with W stored (O, I) as in PyTorch so that an output layer can
//! share its matrix with a (V, E) embedding table (tied embeddings).

use crate::gemm::{gemm, Gemm, Op, Out};
use crate::kernels;
use crate::param::{Param, ParamSet};
use crate::Rng;

#[derive(Clone, Debug)]
pub struct Linear<T> {
    pub weight: Param<T>,       // (O, I)
    pub bias: Option<Param<T>>, // (O)
}

impl<T: Gemm> Linear<T> {
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
pub fn affine_forward<T: Gemm>(x: &[T], w: &[T], b: Option<&[T]>, y: &mut [T], i: usize, o: usize) {
    let n = x.len() / i;
    gemm(y, Out::Set, x, Op::N, w, Op::T, n, o, i);
    if let Some(b) = b {
        crate::par::for_rows(y, o, |_, rows| kernels::add_bias(rows, b));
    }
}

/// The gradients of [`affine_forward`]: dW (O, I) += dyᵀ·x, db += Σ_rows dy, dx (N, I) += dy·W.
#[allow(clippy::too_many_arguments)]
pub fn affine_backward<T: Gemm>(
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
    gemm(dw, Out::Add, dy, Op::T, x, Op::N, o, i, n);
    if let Some(db) = db {
        kernels::sum_rows_into(dy, db);
    }
    if let Some(dx) = dx {
        gemm(dx, Out::Add, dy, Op::N, w, Op::N, n, i, o);
    }
}

impl<T: Gemm> ParamSet<T> for Linear<T> {
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

    /// Bytes of scores per vocabulary tile: small enough that a tile stays in L2 between the
    /// product that writes it and the softmax pass over it, and again between the gradient
    /// pass and the two products that read it. (PTB, N = 400 rows, 2 threads: 1 MiB tiles
    /// took the output step from 21.4 to 20.5 ms against the unsplit products around a
    /// row-wise softmax; 0.25 MiB was slower than unsplit, one tile per block in between.)
    const TILE_BYTES: usize = 1 << 20;

    /// One thread's share of [`softmax_step`]: vocabulary columns [s, e) and the slices of
    /// the outputs that only it writes.
    struct Block<'a, T> {
        s: usize,
        e: usize,
        z: &'a mut [T],     // tiles of scores, each (N, w) row-major, tile after tile
        m: &'a mut [T],     // (tiles, N) row maxima per tile
        sum: &'a mut [T],   // (tiles, N) Σ exp(z - m) per tile
        dw: &'a mut [T],    // (e - s, H) rows of dW
        db: &'a mut [T],    // (e - s) entries of db
        zy: &'a mut Vec<T>, // (N) the target's score, for rows whose target is in [s, e)
        dx: &'a mut Vec<T>, // (N, H) this block's part of dX
        f: &'a mut Vec<T>,  // (N) per-row factors of the current tile
        dw_sq: f64,         // Σ dW² over the block
    }

    /// Buffers [`softmax_step`] reuses from call to call (the scores alone are N·V).
    #[derive(Clone, Debug, Default)]
    pub struct Scratch<T> {
        /// Columns per tile; `None` sizes tiles by [`TILE_BYTES`] (tests set it).
        tile_columns: Option<usize>,
        z: Vec<T>,
        stats: Vec<T>,
        lse: Vec<f64>,
        per_block: Vec<(Vec<T>, Vec<T>, Vec<T>)>,
    }

    /// What [`softmax_step`] returns besides the gradients.
    #[derive(Clone, Copy, Debug)]
    pub struct StepLoss {
        /// Σ_n -ln p(y_n), in nats.
        pub loss: f64,
        /// Σ dW², measured tile by tile while each tile of dW was in cache (0 when the loss
        /// is not finite).
        pub dw_sq_norm: f64,
    }

    /// The whole training step of a softmax output layer, split by vocabulary blocks, one per
    /// thread, and within a block by tiles that fit in L2. For X (N, H), W (V, H), bias b (V)
    /// and targets y: z = X·Wᵀ + b, L = scale · Σ_n (logsumexp(z_n) - z_n,y), and overwrites
    /// dW = dZᵀ·X (V, H), db = Σ_n dZ (V) and dX = dZ·W (N, H) with dZ = scale·(softmax(z) -
    /// onehot(y)). Writes -ln p(y_n) per row into `nll` and returns their sum with ‖dW‖²; when
    /// the sum is not finite, no gradient is computed.
    ///
    /// Two sweeps over the tiles with one exchange of N numbers in between, so every tile of
    /// scores is produced, exponentiated, turned into a gradient and consumed by both products
    /// while it is in cache: (1) z_tile = X·W_tileᵀ + b_tile, each row's tile maximum m and
    /// e = exp(z - m) in place, with s = Σ e; (2) logsumexp_n = M + ln Σ_tiles s·exp(m - M)
    /// over all tiles (M the largest m); (3) dZ_tile = e · scale·exp(m - logsumexp) minus scale
    /// at the target, then dW_tile = dZ_tileᵀ·X and dX += dZ_tile·W_tile. The products have
    /// all N rows; each thread packs only its own tiles of W. Results depend
    /// only on `blocks`, not on which thread runs what.
    #[allow(clippy::too_many_arguments)]
    pub fn softmax_step<T: Real + ComplexField>(
        scratch: &mut Scratch<T>,
        x: &[T],
        w: &[T],
        bias: &[T],
        targets: &[u32],
        scale: f64,
        dw: &mut [T],
        db: &mut [T],
        dx: &mut [T],
        nll: &mut Vec<f64>,
        h: usize,
        blocks: usize,
    ) -> StepLoss {
        let (n, v) = (targets.len(), bias.len());
        let tw = scratch.tile_columns.unwrap_or(
            (TILE_BYTES / (n.max(1) * std::mem::size_of::<T>()) / 16 * 16).clamp(64, 2048),
        );
        assert_eq!(x.len(), n * h, "X is not (N, H)");
        assert_eq!(w.len(), v * h, "W is not (V, H)");
        assert_eq!(dw.len(), v * h, "dW is not (V, H)");
        assert_eq!(dx.len(), n * h, "dX is not (N, H)");
        if let Some(&bad) = targets.iter().find(|&&y| y as usize >= v) {
            panic!("target id {bad} is outside a vocabulary of {v}");
        }
        let r = ranges(v, blocks);
        let tiles: Vec<usize> = r.iter().map(|&(s, e)| (e - s).div_ceil(tw)).collect();
        let total_tiles: usize = tiles.iter().sum();
        let Scratch {
            tile_columns: _,
            z,
            stats,
            lse,
            per_block,
        } = scratch;
        z.resize(n * v, T::ZERO);
        stats.resize(2 * total_tiles * n, T::ZERO);
        per_block.resize(r.len(), Default::default());
        let (m_all, s_all) = stats.split_at_mut(total_tiles * n);
        let mut parts: Vec<Block<T>> = Vec::with_capacity(r.len());
        {
            let (mut z, mut m, mut sum, mut dw, mut db) = (&mut z[..], m_all, s_all, dw, db);
            for ((&(s, e), &t), (zy, dx, f)) in r.iter().zip(&tiles).zip(per_block.iter_mut()) {
                let (zb, zr) = z.split_at_mut(n * (e - s));
                let (mb, mr) = m.split_at_mut(n * t);
                let (sb, sr) = sum.split_at_mut(n * t);
                let (wb, wr) = dw.split_at_mut(h * (e - s));
                let (bb, br) = db.split_at_mut(e - s);
                (z, m, sum, dw, db) = (zr, mr, sr, wr, br);
                parts.push(Block {
                    s,
                    e,
                    z: zb,
                    m: mb,
                    sum: sb,
                    dw: wb,
                    db: bb,
                    zy,
                    dx,
                    f,
                    dw_sq: 0.0,
                });
            }
        }
        let xm = MatRef::from_row_major_slice(x, n, h);
        let tiles_of =
            |s: usize, e: usize| (s..e).step_by(tw).map(move |c0| (c0, (c0 + tw).min(e)));
        // (1) scores, tile maxima and exponentials.
        parts.par_iter_mut().for_each(|b| {
            b.zy.clear();
            b.zy.resize(n, T::ZERO);
            for (t, (c0, c1)) in tiles_of(b.s, b.e).enumerate() {
                let cols = c1 - c0;
                let zt = &mut b.z[n * (c0 - b.s)..n * (c1 - b.s)];
                let wt = MatRef::from_row_major_slice(&w[c0 * h..c1 * h], cols, h);
                faer::linalg::matmul::matmul(
                    MatMut::from_row_major_slice_mut(zt, n, cols),
                    Accum::Replace,
                    xm,
                    wt.transpose(),
                    T::one_impl(),
                    Par::Seq,
                );
                for (i, &y) in targets.iter().enumerate() {
                    let y = y as usize;
                    if (c0..c1).contains(&y) {
                        b.zy[i] = zt[i * cols + y - c0] + bias[y];
                    }
                }
                crate::softmax::tile_exp_rows(
                    zt,
                    &bias[c0..c1],
                    &mut b.m[t * n..(t + 1) * n],
                    &mut b.sum[t * n..(t + 1) * n],
                    cols,
                );
            }
        });
        // (2) logsumexp per row over all tiles, in tile order.
        let per = r[0].1 - r[0].0;
        lse.clear();
        lse.resize(n, 0.0);
        nll.clear();
        nll.resize(n, 0.0);
        for i in 0..n {
            let mut top = f64::NEG_INFINITY;
            for b in &parts {
                for t in 0..b.m.len() / n {
                    top = top.max(b.m[t * n + i].to_f64());
                }
            }
            let mut total = 0.0;
            for b in &parts {
                for t in 0..b.m.len() / n {
                    let shift = (b.m[t * n + i] - T::from_f64(top)).exp();
                    total += (b.sum[t * n + i] * shift).to_f64();
                }
            }
            lse[i] = top + total.ln();
            let y = targets[i] as usize;
            nll[i] = lse[i] - parts[y / per].zy[i].to_f64();
        }
        let loss: f64 = nll.iter().sum();
        if !loss.is_finite() {
            return StepLoss {
                loss,
                dw_sq_norm: 0.0,
            };
        }
        // (3) gradient tile by tile, each consumed by dW and dX while in cache.
        let scale_t = T::from_f64(scale);
        parts.par_iter_mut().for_each(|b| {
            b.db.fill(T::ZERO);
            b.dx.resize(n * h, T::ZERO);
            b.f.resize(n, T::ZERO);
            b.dw_sq = 0.0;
            for (t, (c0, c1)) in tiles_of(b.s, b.e).enumerate() {
                let cols = c1 - c0;
                for (i, f) in b.f.iter_mut().enumerate() {
                    *f = T::from_f64(b.m[t * n + i].to_f64() - lse[i]).exp() * scale_t;
                }
                let zt = &mut b.z[n * (c0 - b.s)..n * (c1 - b.s)];
                crate::softmax::tile_scale_rows(zt, b.f, &mut b.db[c0 - b.s..c1 - b.s], cols);
                for (i, &y) in targets.iter().enumerate() {
                    let y = y as usize;
                    if (c0..c1).contains(&y) {
                        zt[i * cols + y - c0] -= scale_t;
                        b.db[y - b.s] -= scale_t;
                    }
                }
                let ztm = MatRef::from_row_major_slice(zt, n, cols);
                let dwt = &mut b.dw[(c0 - b.s) * h..(c1 - b.s) * h];
                faer::linalg::matmul::matmul(
                    MatMut::from_row_major_slice_mut(dwt, cols, h),
                    Accum::Replace,
                    ztm.transpose(),
                    xm,
                    T::one_impl(),
                    Par::Seq,
                );
                b.dw_sq += crate::param::sum_squares(dwt);
                faer::linalg::matmul::matmul(
                    MatMut::from_row_major_slice_mut(b.dx, n, h),
                    if t == 0 { Accum::Replace } else { Accum::Add },
                    ztm,
                    MatRef::from_row_major_slice(&w[c0 * h..c1 * h], cols, h),
                    T::one_impl(),
                    Par::Seq,
                );
            }
        });
        dx.copy_from_slice(parts[0].dx);
        for b in &parts[1..] {
            crate::kernels::add_into(dx, b.dx);
        }
        StepLoss {
            loss,
            dw_sq_norm: parts.iter().map(|b| b.dw_sq).sum(),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::gemm::{gemm, Op, Out};

        /// The split softmax step equals the plain products around a separate softmax, for any
        /// number of blocks and tiles (uneven ones too), and its loss is the sum of -ln p.
        #[test]
        fn softmax_step_equals_the_unsplit_layer() {
            let (n, v, h) = (6, 37, 4);
            let f = |len: usize, a: f64| -> Vec<f64> {
                (0..len).map(|i| 2.0 * (i as f64 * a).sin()).collect()
            };
            let (x, w, bias) = (f(n * h, 0.7), f(v * h, 0.3), f(v, 0.9));
            let targets: Vec<u32> = (0..n as u32).map(|i| (i * 7 + 3) % v as u32).collect();
            let scale = 0.25;
            // Unsplit: z = X·Wᵀ + b, softmax, dZ = scale·(p - onehot), db = Σ_rows dZ.
            let mut dz = vec![0.0; n * v];
            gemm(&mut dz, Out::Set, &x, Op::N, &w, Op::T, n, v, h);
            for row in dz.chunks_mut(v) {
                crate::kernels::add_into(row, &bias);
            }
            let mut nll_want = Vec::new();
            let loss_want =
                crate::softmax::softmax_cross_entropy(&mut dz, &targets, v, &mut nll_want);
            crate::softmax::softmax_cross_entropy_backward(&mut dz, &targets, v, scale);
            let mut db_want = vec![0.0; v];
            crate::kernels::sum_rows_into(&dz, &mut db_want);
            let mut dw_want = vec![0.0; v * h];
            gemm(&mut dw_want, Out::Set, &dz, Op::T, &x, Op::N, v, h, n);
            let mut dx_want = vec![0.0; n * h];
            gemm(&mut dx_want, Out::Set, &dz, Op::N, &w, Op::N, n, h, v);
            for blocks in [1, 2, 3, 5, 20] {
                for tw in [1, 4, 7, 64] {
                    let (mut z, mut nll) = (Scratch::default(), Vec::new());
                    z.tile_columns = Some(tw);
                    let (mut dw, mut db, mut dx) =
                        (vec![9.0; v * h], vec![9.0; v], vec![9.0; n * h]);
                    let got = softmax_step(
                        &mut z, &x, &w, &bias, &targets, scale, &mut dw, &mut db, &mut dx,
                        &mut nll, h, blocks,
                    );
                    assert!(
                        (got.loss - loss_want).abs() < 1e-12,
                        "{blocks} blocks, tiles of {tw}: loss"
                    );
                    let sq: f64 = dw_want.iter().map(|g| g * g).sum();
                    assert!(
                        (got.dw_sq_norm - sq).abs() < 1e-12 * sq,
                        "{blocks} blocks, tiles of {tw}: ‖dW‖²"
                    );
                    for (got, want) in [
                        (&dw, &dw_want),
                        (&db, &db_want),
                        (&dx, &dx_want),
                        (&nll, &nll_want),
                    ] {
                        for (a, b) in got.iter().zip(want.iter()) {
                            assert!(
                                (a - b).abs() < 1e-12,
                                "{blocks} blocks, tiles of {tw}: {a} vs {b}"
                            );
                        }
                    }
                }
            }
        }
    }
}
