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
