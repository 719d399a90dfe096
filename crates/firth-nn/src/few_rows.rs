//! C (m×n) [+]= A (m×k)·B (k×n), row-major, for products with few rows: a recurrent layer's
//! per-step `h_{t-1}·W_h` (B, H)·(H, G·H), where B is the handful of sequences one thread
//! carries.
//!
//! A general GEMM packs its operands on every call and is tuned for many rows; with ten rows
//! the packing and the partly filled micro-tiles cost about half its speed (faer: 88 GFLOP/s
//! for 10×800×200 on one AVX-512 core whose large-product rate is 160). But W_h is the same
//! for all T steps of a pass, so it is packed once ([`pack`]) into column panels of 64, each
//! k contiguous rows of 64, and every step streams the panels front to back: for a block of
//! up to R rows of A and a strip of V vectors of a panel, each p loads V vectors of the
//! panel's row p, broadcasts one element of A per row, and does R·V fused multiply-adds into
//! accumulators that stay in registers for the whole k loop (6 rows × 4 vectors of 16: 24 of
//! the 32 registers). Stores past n are masked, so any shape works.
//!
//! x86-64 with AVX-512F, chosen at run time ([`crate::simd::level`]); elsewhere [`available`]
//! is false and the caller uses the general GEMM. (An AVX2 version, 4 rows × 3 vectors of 8,
//! was written and could only be measured on an AVX-512 machine, where faer's AVX-512 kernels
//! beat it: 11.3k against 11.9k tokens/s on the PTB bench with `FIRTH_SIMD=avx2`. Without an
//! AVX2-only machine to show a gain it was left out.)

/// Products with up to this many rows take this path (beyond it a packed GEMM is as fast).
pub const MAX_ROWS: usize = 32;

/// Columns per panel of a packed B: four 16-lane vectors.
const PANEL: usize = 64;

/// Packing B costs about two products' worth of memory traffic; below this many products
/// per packing (a one-step forward while generating) the plain GEMM is cheaper.
pub const MIN_USES: usize = 4;

/// [`crate::gemm::pack_rhs_upto`] for f32: packs when the CPU has the kernel, the products
/// have at most `max_rows` rows and B serves at least [`MIN_USES`] of them. The default limit
/// is [`MAX_ROWS`]; products whose B is large (a decoder step's (B, 768)·(768, 2048)) pass a
/// higher one, since the general GEMM repacks B on every call and the few-row kernel stays
/// ahead to about a hundred rows (`examples/gemm_shapes.rs`: 42 rows, 107 against 74 GFLOP/s;
/// 85 rows, 102 against 83).
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_upto(
    b: &[f32],
    k: usize,
    n: usize,
    transposed: bool,
    m: usize,
    uses: usize,
    max_rows: usize,
    packed: &mut Vec<f32>,
) -> bool {
    if m > max_rows || uses < MIN_USES || k == 0 || !available() {
        return false;
    }
    pack(b, k, n, transposed, packed);
    true
}

/// [`pack_upto`] for f64 (gradient checks): never packs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn never_pack_upto(
    _: &[f64],
    _: usize,
    _: usize,
    _: bool,
    _: usize,
    _: usize,
    _: usize,
    _: &mut Vec<f64>,
) -> bool {
    false
}

/// Never called: [`never_pack_upto`] never packs.
pub(crate) fn never_packed(
    _: &mut [f64],
    _: &[f64],
    _: &[f64],
    _: usize,
    _: usize,
    _: usize,
    _: bool,
) {
    unreachable!("f64 has no packed product")
}

/// Whether this CPU can run [`gemm_packed`].
pub fn available() -> bool {
    crate::simd::level() == crate::simd::Level::Avx512
}

/// Packs the right-hand operand B (k, n) into column panels of [`PANEL`]: panel q holds
/// B[:, 64q..64q+64] as k contiguous rows of 64 (zero-padded past n), so the kernel streams it
/// front to back. `b` is B row-major (k, n), or when `transposed` the (n, k) matrix whose
/// transpose is B (a recurrent layer's W_h read as W_hᵀ for the backward sweep).
pub fn pack(b: &[f32], k: usize, n: usize, transposed: bool, out: &mut Vec<f32>) {
    assert_eq!(b.len(), k * n, "B is not {k}x{n}");
    let panels = n.div_ceil(PANEL);
    out.clear();
    out.resize(panels * k * PANEL, 0.0);
    for (q, panel) in out.chunks_exact_mut(k * PANEL).enumerate() {
        let j0 = q * PANEL;
        let cols = (n - j0).min(PANEL);
        if transposed {
            // B[p][j0 + c] = b[(j0 + c)·k + p], in blocks of 16 p so that the 16 panel rows
            // being written stay in L1 while the stored rows are read 16 elements at a time.
            for p0 in (0..k).step_by(16) {
                let ps = (k - p0).min(16);
                for c in 0..cols {
                    let src = &b[(j0 + c) * k + p0..(j0 + c) * k + p0 + ps];
                    for (i, &x) in src.iter().enumerate() {
                        panel[(p0 + i) * PANEL + c] = x;
                    }
                }
            }
        } else {
            for p in 0..k {
                panel[p * PANEL..p * PANEL + cols]
                    .copy_from_slice(&b[p * n + j0..p * n + j0 + cols]);
            }
        }
    }
}

/// C (m×n) = [C +] A (m×k)·B, A and C row-major, B from [`pack`]. Requires [`available`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed(
    c: &mut [f32],
    a: &[f32],
    packed: &[f32],
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    assert!(
        available(),
        "few_rows::gemm_packed needs AVX-512F (check available())"
    );
    assert_eq!(c.len(), m * n, "C is not {m}x{n}");
    assert_eq!(a.len(), m * k, "A is not {m}x{k}");
    assert_eq!(
        packed.len(),
        n.div_ceil(PANEL) * k * PANEL,
        "B is not packed {k}x{n}"
    );
    #[cfg(not(target_arch = "x86_64"))]
    let _ = accumulate; // unreachable: available() is false off x86-64
    #[cfg(target_arch = "x86_64")]
    // SAFETY: available() saw AVX-512F on this CPU, and the asserts above bound every index
    // the kernel forms (rows < m, columns < n under the store masks, p < k, panels < ⌈n/64⌉).
    unsafe {
        avx512::gemm_packed(
            c.as_mut_ptr(),
            a.as_ptr(),
            packed.as_ptr(),
            m,
            n,
            k,
            accumulate,
        )
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::PANEL;
    use std::arch::x86_64::*;

    /// Rows per register block: 6 rows × 4 vectors = 24 accumulators, plus 4 for B's row,
    /// of the 32 vector registers.
    const ROWS: usize = 6;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn gemm_packed(
        c: *mut f32,
        a: *const f32,
        packed: *const f32,
        m: usize,
        n: usize,
        k: usize,
        accumulate: bool,
    ) {
        // Split m into blocks of at most ROWS, as even as possible (10 rows: 5 + 5).
        let blocks = m.div_ceil(ROWS);
        let mut j = 0;
        while j < n {
            let cols = (n - j).min(PANEL);
            let vectors = cols.div_ceil(16);
            let tail = cols - 16 * (vectors - 1);
            let mask: __mmask16 = if tail == 16 {
                0xFFFF
            } else {
                (1u16 << tail) - 1
            };
            let panel = packed.add(j * k);
            let mut i = 0;
            for blk in 0..blocks {
                let rows = (m - i) / (blocks - blk);
                let (cp, ap) = (c.add(i * n + j), a.add(i * k));
                macro_rules! go {
                    ($r:literal) => {
                        match vectors {
                            1 => tile::<$r, 1>(cp, n, ap, k, panel, k, mask, accumulate),
                            2 => tile::<$r, 2>(cp, n, ap, k, panel, k, mask, accumulate),
                            3 => tile::<$r, 3>(cp, n, ap, k, panel, k, mask, accumulate),
                            _ => tile::<$r, 4>(cp, n, ap, k, panel, k, mask, accumulate),
                        }
                    };
                }
                match rows {
                    1 => go!(1),
                    2 => go!(2),
                    3 => go!(3),
                    4 => go!(4),
                    5 => go!(5),
                    _ => go!(6),
                }
                i += rows;
            }
            j += cols;
        }
    }

    /// C (R, 16·V) [+]= A (R, k)·P (k, 16·V), P one packed panel (rows of [`PANEL`]); the last
    /// vector of each row of C is stored under `mask`. `ldc`, `lda` are row strides.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    #[inline]
    unsafe fn tile<const R: usize, const V: usize>(
        c: *mut f32,
        ldc: usize,
        a: *const f32,
        lda: usize,
        panel: *const f32,
        k: usize,
        mask: __mmask16,
        accumulate: bool,
    ) {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for p in 0..k {
            let row = panel.add(p * PANEL);
            let mut bv = [_mm512_setzero_ps(); V];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(row.add(16 * v));
            }
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*a.add(r * lda + p));
                for (acc_rv, &bv) in acc_r.iter_mut().zip(&bv) {
                    *acc_rv = _mm512_fmadd_ps(x, bv, *acc_rv);
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (v, &x) in acc_r.iter().enumerate() {
                let m = if v == V - 1 { mask } else { 0xFFFF };
                let out = c.add(r * ldc + 16 * v);
                let x = if accumulate {
                    _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, out))
                } else {
                    x
                };
                _mm512_mask_storeu_ps(out, m, x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packing runs on every CPU: panel q, row p, column c holds B[p][64q + c], zero past n,
    /// whether B comes as itself or as its stored transpose.
    #[test]
    fn packed_layout() {
        let (k, n) = (3, 70);
        let b: Vec<f32> = (0..k * n).map(|i| i as f32 + 1.0).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let (mut packed, mut packed_t) = (Vec::new(), Vec::new());
        pack(&b, k, n, false, &mut packed);
        pack(&bt, k, n, true, &mut packed_t);
        assert_eq!(packed.len(), 2 * k * PANEL);
        assert_eq!(packed, packed_t);
        for q in 0..2 {
            for p in 0..k {
                for c in 0..PANEL {
                    let j = q * PANEL + c;
                    let want = if j < n { b[p * n + j] } else { 0.0 };
                    assert_eq!(
                        packed[(q * k + p) * PANEL + c],
                        want,
                        "panel {q} row {p} col {c}"
                    );
                }
            }
        }
    }

    /// Without the kernel (or when B serves too few products, or A has too many rows) the
    /// caller is told to use the general GEMM.
    #[test]
    fn packs_only_when_it_pays() {
        let b = vec![1.0f32; 8 * 8];
        let mut packed = Vec::new();
        assert!(!pack_upto(
            &b,
            8,
            8,
            false,
            MAX_ROWS + 1,
            MIN_USES,
            MAX_ROWS,
            &mut packed
        ));
        assert!(!pack_upto(
            &b,
            8,
            8,
            false,
            4,
            MIN_USES - 1,
            MAX_ROWS,
            &mut packed
        ));
        assert_eq!(
            pack_upto(&b, 8, 8, false, 4, MIN_USES, MAX_ROWS, &mut packed),
            available()
        );
    }

    /// Where this CPU has AVX-512, the kernel gives the plain product (in f64) for row counts up to
    /// MAX_ROWS and column counts around the panel and vector widths, replacing and
    /// accumulating, with B packed from itself and from its transpose. Elsewhere it says so.
    #[test]
    fn equals_the_plain_product() {
        if !available() {
            eprintln!(
                "few_rows::equals_the_plain_product skipped: no AVX-512 on this CPU \
                 (packing and the fallback decision are still tested)"
            );
            return;
        }
        for &(m, n, k) in &[
            (1, 1, 1),
            (10, 800, 200),
            (10, 200, 800),
            (7, 65, 3),
            (13, 17, 31),
            (32, 130, 9),
            (6, 48, 5),
            (5, 15, 1),
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.25)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.5)
                .collect();
            let mut want = vec![0.0f64; m * n];
            for i in 0..m {
                for j in 0..n {
                    for p in 0..k {
                        want[i * n + j] += a[i * k + p] as f64 * b[p * n + j] as f64;
                    }
                }
            }
            // B packed from itself and from its stored transpose.
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let mut packed = Vec::new();
            for (src, transposed) in [(&b, false), (&bt, true)] {
                pack(src, k, n, transposed, &mut packed);
                let mut c = vec![1.0f32; m * n];
                gemm_packed(&mut c, &a, &packed, m, n, k, true);
                for (x, y) in c.iter().zip(&want) {
                    assert_eq!(*x as f64, y + 1.0, "{m}x{n}x{k} accumulate");
                }
                gemm_packed(&mut c, &a, &packed, m, n, k, false);
                for (x, y) in c.iter().zip(&want) {
                    assert_eq!(*x as f64, *y, "{m}x{n}x{k}");
                }
            }
        }
    }
}
