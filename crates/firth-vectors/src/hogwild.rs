//! The one place where training threads share parameters: a matrix of f32 rows that several
//! threads read and update at once without locks (Hogwild, Recht et al. 2011).
//!
//! # Why not `&mut [f32]`
//!
//! Hogwild threads update the same rows concurrently. In Rust, two threads touching the same
//! memory with at least one non-atomic access being a write is a data race and undefined
//! behaviour, whatever the hardware does; so the rows cannot be `&mut [f32]` slices (nor
//! plain raw-pointer reads and writes, as in word2vec C) that other threads may touch. Every
//! access to a shared row here is atomic, and a thread never holds a reference into another
//! thread's rows: it copies rows into its own buffers ([`HogwildRows::read`]), computes on
//! those, and adds its update into the shared row ([`HogwildRows::axpy`]) or writes the row
//! back ([`HogwildRows::write`]); or, on the AVX path, it streams a row's blocks through
//! registers one atomic load and store at a time ([`avx::Blocks`]), where a copy would cost
//! as much as the arithmetic on it (GloVe uses each float once per record).
//!
//! # Two ways to be atomic
//!
//! Rows are stored in 16-byte aligned blocks of four floats ([`Quad`]), zero-padded at the end
//! of a row.
//!
//! * **Portable**: each block is two `AtomicU64`, accessed with relaxed loads and stores (two
//!   float bit patterns side by side). Sound by the Rust memory model alone; the compiler will
//!   not vectorize these loops, so this path is slower.
//! * **AVX** ([`avx`]): each block is moved with one aligned 16-byte `vmovaps` in inline
//!   assembly. Intel documents that on processors with AVX such an access "will always be
//!   carried out atomically" (SDM vol. 3A, "Guaranteed Atomic Operations": MOVAPS/VMOVAPS
//!   encoded with VEX.128, 16-byte aligned), and AMD the same for naturally aligned 16-byte
//!   loads and stores on processors with AVX (APM vol. 2, "Access Atomicity"). An asm block
//!   may do whatever Rust code could do; each of these does one single-copy-atomic 16-byte
//!   access, whose every outcome two relaxed `AtomicU64` accesses of the block's halves could
//!   also produce, on memory that is only ever accessed atomically. So it races soundly, like
//!   the portable path, while the arithmetic around it is ordinary SIMD on registers and the
//!   path costs what word2vec C's plain (racy) loads and stores cost.
//!
//! # What a race still does
//!
//! Exactly what Hogwild accepts, and nothing undefined: an update of a row is a
//! read-modify-write of each block, so another thread's update of the same block in between
//! can be overwritten (lost), and a row copied while another thread updates it can mix old and
//! new blocks. Every float read is one that some thread wrote (no torn values, no NaN bits
//! from nowhere). With one thread, results are bit for bit those of updating the rows in place
//! with the kernels of [`crate::simd`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Four floats, 16-byte aligned so the AVX path can move them in one atomic access.
#[repr(C, align(16))]
struct Quad([AtomicU64; 2]);

impl Quad {
    fn new(v: [f32; 4]) -> Self {
        Quad([
            AtomicU64::new(pack(v[0], v[1])),
            AtomicU64::new(pack(v[2], v[3])),
        ])
    }

    #[inline(always)]
    fn load(&self) -> [f32; 4] {
        let (a, b) = unpack(self.0[0].load(Relaxed));
        let (c, d) = unpack(self.0[1].load(Relaxed));
        [a, b, c, d]
    }

    #[inline(always)]
    fn store(&self, v: [f32; 4]) {
        self.0[0].store(pack(v[0], v[1]), Relaxed);
        self.0[1].store(pack(v[2], v[3]), Relaxed);
    }
}

/// Two floats as one 64-bit word, `lo` first in memory on any byte order (so a [`Quad`] holds
/// its four floats in order, as the AVX path reads them).
#[inline(always)]
fn pack(lo: f32, hi: f32) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&lo.to_ne_bytes());
    bytes[4..].copy_from_slice(&hi.to_ne_bytes());
    u64::from_ne_bytes(bytes)
}

#[inline(always)]
fn unpack(bits: u64) -> (f32, f32) {
    let bytes = bits.to_ne_bytes();
    let lo = f32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let hi = f32::from_ne_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    (lo, hi)
}

/// `rows` rows of `width` f32 each, shared by Hogwild threads; see the module docs.
pub struct HogwildRows {
    quads: Box<[Quad]>,
    rows: usize,
    width: usize,
    quads_per_row: usize,
}

impl HogwildRows {
    /// A matrix whose element (r, c) is `init(r, c)`, called row by row, left to right.
    pub fn from_fn(rows: usize, width: usize, mut init: impl FnMut(usize, usize) -> f32) -> Self {
        let quads_per_row = width.div_ceil(4);
        let mut quads = Vec::with_capacity(rows * quads_per_row);
        for r in 0..rows {
            for q in 0..quads_per_row {
                let mut v = [0f32; 4];
                for (l, x) in v.iter_mut().enumerate() {
                    if 4 * q + l < width {
                        *x = init(r, 4 * q + l);
                    }
                }
                quads.push(Quad::new(v));
            }
        }
        HogwildRows {
            quads: quads.into_boxed_slice(),
            rows,
            width,
            quads_per_row,
        }
    }

    /// Floats in a row.
    #[inline(always)]
    pub fn width(&self) -> usize {
        self.width
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The blocks of row `row` (bounds-checked: an invalid row panics).
    #[inline(always)]
    fn row(&self, row: usize) -> &[Quad] {
        &self.quads[row * self.quads_per_row..(row + 1) * self.quads_per_row]
    }

    /// Floats in a row including the zero padding up to a whole block: buffers this long take
    /// the fast path of [`Self::read`] and [`Self::write`].
    pub fn padded_width(&self) -> usize {
        4 * self.quads_per_row
    }

    /// How much of a caller's buffer of `len` floats a copy covers: the padded row when the
    /// buffer holds it (whole blocks, no tail to split), else exactly the row.
    #[inline(always)]
    fn copy_len(&self, len: usize) -> usize {
        if len >= self.padded_width() {
            self.padded_width()
        } else {
            self.width
        }
    }

    /// Copies row `row` into `out[..width]`, or into `out[..padded_width]` when `out` is that
    /// long (portable path).
    #[inline(always)]
    pub fn read(&self, row: usize, out: &mut [f32]) {
        let n = self.copy_len(out.len());
        let out = &mut out[..n];
        let mut chunks = out.chunks_exact_mut(4);
        let quads = self.row(row);
        for (o, q) in (&mut chunks).zip(quads) {
            o.copy_from_slice(&q.load());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let n = rest.len();
            rest.copy_from_slice(&quads[self.quads_per_row - 1].load()[..n]);
        }
    }

    /// `out[..width]` += row `row` (portable path).
    #[inline(always)]
    pub fn add_into(&self, row: usize, out: &mut [f32]) {
        let out = &mut out[..self.width];
        for (q, o) in self.row(row).iter().zip(out.chunks_mut(4)) {
            for (y, x) in o.iter_mut().zip(q.load()) {
                *y += x;
            }
        }
    }

    /// Copies `src[..width]` over row `row`, or `src[..padded_width]` when `src` is that long
    /// (its padding should be the zeros a padded [`Self::read`] gave; portable path).
    #[inline(always)]
    pub fn write(&self, row: usize, src: &[f32]) {
        let src = &src[..self.copy_len(src.len())];
        let mut chunks = src.chunks_exact(4);
        let quads = self.row(row);
        for (s, q) in (&mut chunks).zip(quads) {
            q.store([s[0], s[1], s[2], s[3]]);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut v = [0f32; 4];
            v[..rest.len()].copy_from_slice(rest);
            quads[self.quads_per_row - 1].store(v);
        }
    }

    /// Row `row` += `a`·`x[..width]` (portable path), element by element as
    /// [`crate::simd::axpy_portable`] computes it.
    #[inline(always)]
    pub fn axpy(&self, row: usize, a: f32, x: &[f32]) {
        let x = &x[..self.width];
        for (q, xs) in self.row(row).iter().zip(x.chunks(4)) {
            let mut v = q.load();
            for (y, &xi) in v.iter_mut().zip(xs) {
                *y += a * xi;
            }
            q.store(v);
        }
    }

    /// Asks the CPU to start loading row `row` into cache (a hint: it reads nothing).
    #[inline(always)]
    pub fn prefetch(&self, row: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // One hint per 64-byte cache line (4 blocks).
            for q in self.row(row).iter().step_by(4) {
                // SAFETY: SSE is in every x86-64 CPU, and a prefetch is only a hint: it does
                // not access memory as far as the program can tell, and never faults.
                unsafe { _mm_prefetch::<_MM_HINT_T0>((q as *const Quad).cast::<i8>()) };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = row;
    }

    /// All rows, row-major (`rows × width`).
    pub fn to_vec(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.width];
        if self.width > 0 {
            for (r, row) in out.chunks_exact_mut(self.width).enumerate() {
                self.read(r, row);
            }
        }
        out
    }
}

/// The AVX path: the same operations as [`HogwildRows::read`], [`HogwildRows::write`] and
/// [`HogwildRows::axpy`], moving each block with one atomic 16-byte access (module docs).
#[cfg(target_arch = "x86_64")]
pub mod avx {
    use super::{HogwildRows, Quad};
    use std::arch::asm;
    use std::arch::x86_64::*;

    /// One atomic 16-byte load of a block.
    #[inline(always)]
    unsafe fn load(q: &Quad) -> __m128 {
        let v: __m128;
        // SAFETY: `q` is a live, 16-byte aligned block whose memory is only accessed
        // atomically; VEX.128 VMOVAPS of it is a single-copy-atomic load on AVX processors
        // (module docs), and the caller's target features guarantee AVX.
        asm!(
            "vmovaps {v}, xmmword ptr [{p}]",
            p = in(reg) q as *const Quad,
            v = lateout(xmm_reg) v,
            options(nostack, preserves_flags, readonly)
        );
        v
    }

    /// One atomic 16-byte store of a block.
    #[inline(always)]
    unsafe fn store(q: &Quad, v: __m128) {
        // SAFETY: as for `load`; writing through `&Quad` is allowed because its atomics are
        // interior-mutable.
        asm!(
            "vmovaps xmmword ptr [{p}], {v}",
            p = in(reg) q as *const Quad,
            v = in(xmm_reg) v,
            options(nostack, preserves_flags)
        );
    }

    /// The blocks of one row, for kernels that stream rows through registers a block at a
    /// time instead of copying them (GloVe: each float of a row is used once per record, so a
    /// copy pass would cost as much as the arithmetic). Each [`Blocks::load`] and
    /// [`Blocks::store`] is one atomic 16-byte access, as in [`read`] and [`write`].
    #[derive(Clone, Copy)]
    pub struct Blocks<'a>(&'a [Quad]);

    /// The blocks of row `row` (an invalid row panics): `width` floats, then zeros up to a
    /// whole block. The zero padding is the caller's to keep: a store must leave those lanes 0.
    #[inline(always)]
    pub fn blocks(m: &HogwildRows, row: usize) -> Blocks<'_> {
        Blocks(m.row(row))
    }

    impl Blocks<'_> {
        /// Blocks in the row.
        #[inline(always)]
        pub fn len(self) -> usize {
            self.0.len()
        }

        /// Whether the row has no blocks (width 0).
        #[inline(always)]
        pub fn is_empty(self) -> bool {
            self.0.is_empty()
        }

        /// Block `i` (floats 4i..4i+4), loaded atomically; an `i` past the row panics.
        ///
        /// # Safety
        /// The CPU must support AVX.
        #[inline(always)]
        pub unsafe fn load(self, i: usize) -> __m128 {
            load(&self.0[i])
        }

        /// Stores `v` into block `i` atomically; an `i` past the row panics.
        ///
        /// # Safety
        /// The CPU must support AVX.
        #[inline(always)]
        pub unsafe fn store(self, i: usize, v: __m128) {
            store(&self.0[i], v)
        }
    }

    /// [`HogwildRows::read`] with atomic 16-byte loads.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn read(m: &HogwildRows, row: usize, out: &mut [f32]) {
        let n = m.copy_len(out.len());
        let out = &mut out[..n];
        let quads = m.row(row);
        let full = out.len() / 4;
        let po = out.as_mut_ptr();
        // Two blocks per step, stored to the copy as one 8-float vector.
        let pairs = full / 2;
        for (i, q) in quads[..2 * pairs].chunks_exact(2).enumerate() {
            // SAFETY: 8i + 8 <= 4·full <= width = out.len().
            _mm256_storeu_ps(po.add(8 * i), _mm256_set_m128(load(&q[1]), load(&q[0])));
        }
        if full % 2 == 1 {
            // SAFETY: 4·full <= width.
            _mm_storeu_ps(po.add(4 * (full - 1)), load(&quads[full - 1]));
        }
        if full < m.quads_per_row {
            let mut v = [0f32; 4];
            _mm_storeu_ps(v.as_mut_ptr(), load(&quads[full]));
            for (o, x) in out[4 * full..].iter_mut().zip(v) {
                *o = x;
            }
        }
    }

    /// [`HogwildRows::add_into`] with atomic 16-byte loads.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn add_into(m: &HogwildRows, row: usize, out: &mut [f32]) {
        let out = &mut out[..m.width];
        let quads = m.row(row);
        let full = m.width / 4;
        let po = out.as_mut_ptr();
        let pairs = full / 2;
        for (i, q) in quads[..2 * pairs].chunks_exact(2).enumerate() {
            // SAFETY: 8i + 8 <= 4·full <= width = out.len().
            let p = po.add(8 * i);
            let v = _mm256_set_m128(load(&q[1]), load(&q[0]));
            _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), v));
        }
        if full % 2 == 1 {
            // SAFETY: 4·full <= width.
            let p = po.add(4 * (full - 1));
            _mm_storeu_ps(p, _mm_add_ps(_mm_loadu_ps(p), load(&quads[full - 1])));
        }
        if full < m.quads_per_row {
            let mut v = [0f32; 4];
            _mm_storeu_ps(v.as_mut_ptr(), load(&quads[full]));
            for (y, x) in out[4 * full..].iter_mut().zip(v) {
                *y += x;
            }
        }
    }

    /// [`HogwildRows::write`] with atomic 16-byte stores.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn write(m: &HogwildRows, row: usize, src: &[f32]) {
        let src = &src[..m.copy_len(src.len())];
        let quads = m.row(row);
        let full = src.len() / 4;
        let ps = src.as_ptr();
        let pairs = full / 2;
        for (i, q) in quads[..2 * pairs].chunks_exact(2).enumerate() {
            // SAFETY: 8i + 8 <= 4·full <= width = src.len().
            let v = _mm256_loadu_ps(ps.add(8 * i));
            store(&q[0], _mm256_castps256_ps128(v));
            store(&q[1], _mm256_extractf128_ps::<1>(v));
        }
        if full % 2 == 1 {
            // SAFETY: 4·full <= width.
            store(&quads[full - 1], _mm_loadu_ps(ps.add(4 * (full - 1))));
        }
        if full < m.quads_per_row {
            let mut v = [0f32; 4];
            for (x, s) in v.iter_mut().zip(&src[4 * full..]) {
                *x = *s;
            }
            store(&quads[full], _mm_loadu_ps(v.as_ptr()));
        }
    }

    /// [`HogwildRows::axpy`] with atomic 16-byte loads and stores, element by element as
    /// [`crate::simd::avx2::axpy`] computes it: fused multiply-add over whole 8-float blocks,
    /// multiply then add for the rest.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn axpy(m: &HogwildRows, row: usize, a: f32, x: &[f32]) {
        let x = &x[..m.width];
        let quads = m.row(row);
        let fused = m.width / 8 * 2;
        let full = m.width / 4;
        let va = _mm_set1_ps(a);
        let px = x.as_ptr();
        for (i, q) in quads[..fused].iter().enumerate() {
            // SAFETY: 4i + 4 <= width = x.len().
            store(q, _mm_fmadd_ps(va, _mm_loadu_ps(px.add(4 * i)), load(q)));
        }
        for (i, q) in quads[fused..full].iter().enumerate() {
            // SAFETY: 4(fused + i) + 4 <= 4·full <= width.
            let xv = _mm_loadu_ps(px.add(4 * (fused + i)));
            store(q, _mm_add_ps(load(q), _mm_mul_ps(va, xv)));
        }
        if full < m.quads_per_row {
            let mut v = [0f32; 4];
            v[..m.width - 4 * full].copy_from_slice(&x[4 * full..]);
            let q = &quads[full];
            // The padding stays 0: 0 + a·0.
            store(
                q,
                _mm_add_ps(load(q), _mm_mul_ps(va, _mm_loadu_ps(v.as_ptr()))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn rows_round_trip_for_every_width() {
        for width in [1usize, 2, 3, 4, 5, 8, 9, 15, 16, 17, 101] {
            let m = HogwildRows::from_fn(3, width, |r, c| (r * 1000 + c) as f32 - 0.5);
            assert_eq!((m.rows(), m.width()), (3, width));
            let mut row = vec![0f32; width];
            m.read(1, &mut row);
            let want: Vec<f32> = (0..width).map(|c| (1000 + c) as f32 - 0.5).collect();
            assert_eq!(row, want);
            // Writing one row leaves its neighbours alone; negative zero and NaN bits survive.
            let new: Vec<f32> = (0..width)
                .map(|c| match c % 3 {
                    0 => -0.0,
                    1 => f32::from_bits(0x7fc0_1234),
                    _ => c as f32 * 1e-30,
                })
                .collect();
            m.write(1, &new);
            m.read(1, &mut row);
            assert_eq!(bits(&row), bits(&new));
            let all = m.to_vec();
            let first: Vec<f32> = (0..width).map(|c| c as f32 - 0.5).collect();
            let last: Vec<f32> = (0..width).map(|c| (2000 + c) as f32 - 0.5).collect();
            assert_eq!(all[..width], first[..]);
            assert_eq!(all[2 * width..], last[..]);
            m.prefetch(2);
            // A padded buffer copies whole blocks; the padding reads as zero.
            let mut padded = vec![7f32; m.padded_width()];
            m.read(2, &mut padded);
            assert_eq!(padded[..width], last[..]);
            assert!(padded[width..].iter().all(|&x| x == 0.0));
            padded[0] = -1.0;
            m.write(2, &padded);
            assert_eq!(m.to_vec()[2 * width], -1.0);
            #[cfg(target_arch = "x86_64")]
            if crate::simd::has_avx2() {
                let mut fast = vec![7f32; m.padded_width()];
                // SAFETY: AVX2 and FMA were detected just above.
                unsafe { avx::read(&m, 2, &mut fast) };
                assert_eq!(bits(&fast), bits(&padded));
                fast[0] = -2.0;
                unsafe { avx::write(&m, 2, &fast) };
                assert_eq!(m.to_vec()[2 * width], -2.0);
            }
        }
    }

    /// The portable and AVX paths give the same bits as the in-place kernels of `simd`.
    #[test]
    fn updates_equal_the_in_place_kernels() {
        for width in [1usize, 3, 4, 7, 8, 12, 16, 17, 100, 101] {
            let start = |r: usize, c: usize| ((r * 31 + c) as f32 * 0.37).sin();
            let x: Vec<f32> = (0..width).map(|c| (c as f32 * 0.11).cos()).collect();
            let mut want = (0..width).map(|c| start(1, c)).collect::<Vec<_>>();
            crate::simd::axpy_portable(0.3, &x, &mut want);
            let m = HogwildRows::from_fn(2, width, start);
            m.axpy(1, 0.3, &x);
            let mut got = vec![0f32; width];
            m.read(1, &mut got);
            assert_eq!(bits(&got), bits(&want), "portable, width {width}");
            #[cfg(target_arch = "x86_64")]
            if crate::simd::has_avx2() {
                let mut want = (0..width).map(|c| start(1, c)).collect::<Vec<_>>();
                // SAFETY (all calls): AVX2 and FMA were detected just above.
                unsafe { crate::simd::avx2::axpy(0.3, &x, &mut want) };
                let m = HogwildRows::from_fn(2, width, start);
                unsafe { avx::axpy(&m, 1, 0.3, &x) };
                let mut got = vec![0f32; width];
                unsafe { avx::read(&m, 1, &mut got) };
                assert_eq!(bits(&got), bits(&want), "avx, width {width}");
                // The padding stayed zero, so reading through either path agrees.
                let mut portable = vec![0f32; width];
                m.read(1, &mut portable);
                assert_eq!(bits(&portable), bits(&got));
                let mut sum = x.clone();
                let mut want_sum = x.clone();
                unsafe { avx::add_into(&m, 1, &mut sum) };
                m.add_into(1, &mut want_sum);
                assert_eq!(bits(&sum), bits(&want_sum), "avx add_into, width {width}");
                unsafe { avx::write(&m, 0, &x) };
                m.read(0, &mut got);
                assert_eq!(bits(&got), bits(&x), "avx write, width {width}");
            }
        }
    }

    /// Threads updating disjoint rows of one matrix lose nothing; threads hammering the same
    /// row only ever see floats some thread wrote (no torn values).
    #[test]
    fn concurrent_updates() {
        let width = 7;
        let m = HogwildRows::from_fn(4, width, |_, _| 0.0);
        let ones = vec![1f32; width];
        std::thread::scope(|s| {
            for t in 0..4usize {
                let (m, ones) = (&m, &ones);
                s.spawn(move || {
                    for _ in 0..1000 {
                        m.axpy(t, 1.0, ones);
                    }
                });
            }
        });
        assert!(m.to_vec().iter().all(|&x| x == 1000.0));
        let shared = HogwildRows::from_fn(1, width, |_, _| 1.0);
        std::thread::scope(|s| {
            for t in 0..2 {
                let shared = &shared;
                s.spawn(move || {
                    let mut buf = vec![0f32; width];
                    let value = if t == 0 { 1.0 } else { 2.0 };
                    for _ in 0..1000 {
                        shared.read(0, &mut buf);
                        assert!(buf.iter().all(|&x| x == 1.0 || x == 2.0), "{buf:?}");
                        shared.write(0, &vec![value; width]);
                    }
                });
            }
        });
    }
}
