//! Matrix products, row-major, through faer (and, for a recurrent step's few rows, our own
//! packed kernel, [`crate::few_rows`]).
//!
//! faer picks its SIMD kernels (AVX2, AVX-512, NEON) at run time. Products too small to pay
//! for a thread handoff run on the calling thread; larger ones use the rayon pool, whose size
//! `--threads` sets.
//!
//! A call site reads as the formula it computes:
//! `gemm(dw, Out::Add, dy, Op::T, x, Op::N, o, i, n)` is dW (o×i) += dYᵀ (o×n) · X (n×i).

use crate::Real;
use faer::{Accum, MatMut, MatRef, Par};

/// Below this many multiply-adds a product stays on one thread: handing out work costs a few
/// microseconds, about what a 20×200×800 product takes.
const PARALLEL_MIN_MACS: usize = 1 << 22;

/// How an operand enters the product: as stored (`N`), or transposed (`T`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// op(A) = A: an m×k operand is stored (m, k).
    N,
    /// op(A) = Aᵀ: an m×k operand is stored (k, m).
    T,
}

/// What the product does with C.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out {
    /// C = op(A)·op(B).
    Set,
    /// C += op(A)·op(B) (backward passes accumulate).
    Add,
}

impl Out {
    /// `Add` when `add`, else `Set`.
    pub fn add_if(add: bool) -> Out {
        if add {
            Out::Add
        } else {
            Out::Set
        }
    }
}

/// The scalars that have matrix products: f32 (training) and f64 (gradient checks).
/// [`Real`] holds the scalar math; this trait the products on top of it.
pub trait Gemm: Real {
    /// See [`gemm`].
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        c: &mut [Self],
        out: Out,
        a: &[Self],
        op_a: Op,
        b: &[Self],
        op_b: Op,
        m: usize,
        n: usize,
        k: usize,
    );

    /// See [`pack_rhs_upto`].
    #[allow(clippy::too_many_arguments)]
    fn pack_rhs_upto(
        b: &[Self],
        op_b: Op,
        k: usize,
        n: usize,
        m: usize,
        uses: usize,
        max_rows: usize,
        packed: &mut Vec<Self>,
    ) -> bool;

    /// See [`gemm_packed`].
    #[allow(clippy::too_many_arguments)]
    fn gemm_packed(
        c: &mut [Self],
        out: Out,
        a: &[Self],
        packed: &[Self],
        m: usize,
        n: usize,
        k: usize,
    );
}

/// C (m×n) = [C +] op(A) · op(B), all row-major: op(A) is m×k, op(B) is k×n, and [`Op`] says
/// whether each is stored as it enters the product or transposed.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Gemm>(
    c: &mut [T],
    out: Out,
    a: &[T],
    op_a: Op,
    b: &[T],
    op_b: Op,
    m: usize,
    n: usize,
    k: usize,
) {
    T::gemm(c, out, a, op_a, b, op_b, m, n, k)
}

/// Prepares the right-hand operand op(B) (k×n) of `uses` products with `m` rows each for
/// [`gemm_packed`], and returns true; returns false where the packed path would not pay or
/// does not exist (f64, CPUs without AVX-512, many rows, few uses), and the caller uses
/// [`gemm`]. See [`crate::few_rows`].
pub fn pack_rhs<T: Gemm>(
    b: &[T],
    op_b: Op,
    k: usize,
    n: usize,
    m: usize,
    uses: usize,
    packed: &mut Vec<T>,
) -> bool {
    T::pack_rhs_upto(b, op_b, k, n, m, uses, crate::few_rows::MAX_ROWS, packed)
}

/// [`pack_rhs`] with its own row limit: packs op(B) for products of up to `max_rows` rows
/// (where the kernel exists and B serves enough products). For large B, where the general GEMM
/// repacks B on every call: a decoder's per-step products (see [`crate::few_rows`]).
#[allow(clippy::too_many_arguments)]
pub fn pack_rhs_upto<T: Gemm>(
    b: &[T],
    op_b: Op,
    k: usize,
    n: usize,
    m: usize,
    uses: usize,
    max_rows: usize,
    packed: &mut Vec<T>,
) -> bool {
    T::pack_rhs_upto(b, op_b, k, n, m, uses, max_rows, packed)
}

/// C (m×n) = [C +] A (m×k) · op(B), with op(B) prepared by [`pack_rhs`].
pub fn gemm_packed<T: Gemm>(
    c: &mut [T],
    out: Out,
    a: &[T],
    packed: &[T],
    m: usize,
    n: usize,
    k: usize,
) {
    T::gemm_packed(c, out, a, packed, m, n, k)
}

/// f32 takes the packed few-row kernel where it pays; f64 (gradient checks) never packs.
macro_rules! impl_gemm {
    ($t:ty, upto: $upto:path, packed: $packed:path) => {
        impl Gemm for $t {
            fn gemm(
                c: &mut [$t],
                out: Out,
                a: &[$t],
                op_a: Op,
                b: &[$t],
                op_b: Op,
                m: usize,
                n: usize,
                k: usize,
            ) {
                gemm_faer(
                    c,
                    a,
                    b,
                    m,
                    n,
                    k,
                    op_a == Op::T,
                    op_b == Op::T,
                    out == Out::Add,
                )
            }
            fn pack_rhs_upto(
                b: &[$t],
                op_b: Op,
                k: usize,
                n: usize,
                m: usize,
                uses: usize,
                max_rows: usize,
                packed: &mut Vec<$t>,
            ) -> bool {
                $upto(b, k, n, op_b == Op::T, m, uses, max_rows, packed)
            }
            fn gemm_packed(
                c: &mut [$t],
                out: Out,
                a: &[$t],
                packed: &[$t],
                m: usize,
                n: usize,
                k: usize,
            ) {
                $packed(c, a, packed, m, n, k, out == Out::Add)
            }
        }
    };
}

impl_gemm!(f32, upto: crate::few_rows::pack_upto, packed: crate::few_rows::gemm_packed);
impl_gemm!(f64, upto: crate::few_rows::never_pack_upto, packed: crate::few_rows::never_packed);

#[allow(clippy::too_many_arguments)]
fn gemm_faer<T: faer::traits::ComplexField + Copy>(
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
                let op = |t: bool| if t { Op::T } else { Op::N };
                gemm(&mut c, Out::Add, &a, op(ta), &b, op(tb), m, n, k);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - (y + 1.0)).abs() < 1e-12);
                }
                gemm(&mut c, Out::Set, &a, op(ta), &b, op(tb), m, n, k);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-12);
                }
            }
        }
    }
}
