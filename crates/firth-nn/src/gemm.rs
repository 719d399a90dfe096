//! Matrix products, row-major, through faer.
//!
//! faer picks its SIMD kernels (AVX2, AVX-512, NEON) at run time. Products too small to pay
//! for a thread handoff run on the calling thread; larger ones use the rayon pool, whose size
//! `--threads` sets.

use crate::Real;
use faer::{Accum, MatMut, MatRef, Par};

/// Below this many multiply-adds a product stays on one thread: handing out work costs a few
/// microseconds, about what a 20×200×800 product takes.
const PARALLEL_MIN_MACS: usize = 1 << 22;

/// C (m×n) = [C +] op(A) · op(B). See [`Real::gemm`] for the storage convention.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Real>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    m: usize,
    n: usize,
    k: usize,
    ta: bool,
    tb: bool,
    accumulate: bool,
) {
    T::gemm(c, a, b, m, n, k, ta, tb, accumulate)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_faer<T: faer::traits::ComplexField + Copy>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    m: usize,
    n: usize,
    k: usize,
    ta: bool,
    tb: bool,
    accumulate: bool,
) {
    assert_eq!(c.len(), m * n, "gemm: C is not {m}x{n}");
    assert_eq!(a.len(), m * k, "gemm: A is not {m}x{k}");
    assert_eq!(b.len(), k * n, "gemm: B is not {k}x{n}");
    if m == 0 || n == 0 {
        return;
    }
    let a = if ta {
        MatRef::from_row_major_slice(a, k, m).transpose()
    } else {
        MatRef::from_row_major_slice(a, m, k)
    };
    let b = if tb {
        MatRef::from_row_major_slice(b, n, k).transpose()
    } else {
        MatRef::from_row_major_slice(b, k, n)
    };
    let c = MatMut::from_row_major_slice_mut(c, m, n);
    let par = if m * n * k < PARALLEL_MIN_MACS || crate::par::threads() == 1 {
        Par::Seq
    } else {
        Par::rayon(0)
    };
    let accum = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    faer::linalg::matmul::matmul(c, accum, a, b, T::one_impl(), par);
}

/// C (m×n) = [C +] A[:, col0..col0+m]ᵀ · B, row-major, where A is (k, lda) and B is (k, n).
/// The weight gradient of a block of output units, dW[v0..v1] = dZ[:, v0..v1]ᵀ · H, read in
/// place from the whole (N, V) score gradient: data-parallel training splits the (V, H) weight
/// gradient by rows this way, so no thread needs a private copy of it. Runs on this thread.
#[allow(clippy::too_many_arguments)]
pub fn gemm_tn_cols<T: Real>(
    c: &mut [T],
    a: &[T],
    lda: usize,
    col0: usize,
    b: &[T],
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    T::gemm_tn_cols(c, a, lda, col0, b, m, n, k, accumulate)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_tn_cols_faer<T: faer::traits::ComplexField + Copy>(
    c: &mut [T],
    a: &[T],
    lda: usize,
    col0: usize,
    b: &[T],
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    assert_eq!(c.len(), m * n, "gemm_tn_cols: C is not {m}x{n}");
    assert_eq!(a.len(), k * lda, "gemm_tn_cols: A is not {k}x{lda}");
    assert!(
        col0 + m <= lda,
        "gemm_tn_cols: columns {col0}..{} outside A's {lda}",
        col0 + m
    );
    assert_eq!(b.len(), k * n, "gemm_tn_cols: B is not {k}x{n}");
    if m == 0 || n == 0 {
        return;
    }
    let a = MatRef::from_row_major_slice(a, k, lda)
        .subcols(col0, m)
        .transpose();
    let b = MatRef::from_row_major_slice(b, k, n);
    let c = MatMut::from_row_major_slice_mut(c, m, n);
    let accum = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    faer::linalg::matmul::matmul(c, accum, a, b, T::one_impl(), Par::Seq);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, n: usize, k: usize, ta: bool, tb: bool) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let av = if ta { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    c[i * n + j] += av * bv;
                }
            }
        }
        c
    }

    #[test]
    fn column_block_of_a_transposed_matches_naive() {
        let (k, lda, col0, m, n) = (4, 9, 3, 5, 2);
        let a: Vec<f64> = (0..k * lda).map(|i| (i as f64 * 0.29).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.13).cos()).collect();
        let block: Vec<f64> = (0..k)
            .flat_map(|r| a[r * lda + col0..r * lda + col0 + m].to_vec())
            .collect(); // (k, m)
        let want = naive(&block, &b, m, n, k, true, false);
        let mut c = vec![1.0; m * n];
        gemm_tn_cols(&mut c, &a, lda, col0, &b, m, n, k, true);
        for (x, y) in c.iter().zip(&want) {
            assert!((x - (y + 1.0)).abs() < 1e-12);
        }
        gemm_tn_cols(&mut c, &a, lda, col0, &b, m, n, k, false);
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() < 1e-12);
        }
    }

    #[test]
    fn all_transpose_combinations_match_naive() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        for ta in [false, true] {
            for tb in [false, true] {
                let want = naive(&a, &b, m, n, k, ta, tb);
                let mut c = vec![1.0; m * n];
                gemm(&mut c, &a, &b, m, n, k, ta, tb, true);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - (y + 1.0)).abs() < 1e-12);
                }
                gemm(&mut c, &a, &b, m, n, k, ta, tb, false);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-12);
                }
            }
        }
    }
}
