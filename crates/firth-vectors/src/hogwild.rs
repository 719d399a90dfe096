//! The one place where training threads share parameters: a matrix of f32 rows that several
//! threads read and update at once without locks (Hogwild, Recht et al. 2011).
//!
//! # Why atomics, and why they cost (almost) nothing
//!
//! Hogwild threads update the same rows concurrently. In Rust, two threads touching the same
//! memory with at least one non-atomic write is a data race and undefined behaviour, whatever
//! the hardware does, so the rows cannot be `&mut [f32]` slices (nor raw-pointer reads and
//! writes, as in word2vec C) that other threads may touch. Here every element lives in relaxed
//! atomics, two f32 to an `AtomicU64` (the float bits side by side), and a thread never works
//! on the shared memory in place: it copies the rows it needs into its own buffers
//! ([`HogwildRows::read`]), computes on those with the ordinary SIMD kernels, and copies the
//! results back ([`HogwildRows::write`]). On x86-64 and aarch64 a relaxed 64-bit load or store
//! is an ordinary `mov`/`ldr`/`str`, so the copies cost about what word2vec C's own reads and
//! writes of the row cost; what is lost is only that the compiler may not vectorize the copy
//! loops themselves (measured in `docs/vectors.md`).
//!
//! # What a race still does
//!
//! Exactly what Hogwild accepts, and nothing undefined: a thread's update of a row is a
//! read-modify-write spread over its copy in and copy out, so another thread's update of the
//! same row in between can be overwritten (lost), and a row read while another thread writes it
//! can mix old and new elements. Each 32-bit float is always one that some thread wrote (a
//! relaxed 64-bit atomic never tears), so no NaN or garbage bits appear. Single-threaded, the
//! copies change nothing: results are bit-for-bit those of updating the rows in place.
//!
//! The sharing needs no `unsafe`: the type is `Sync` because `AtomicU64` is, and every index is
//! bounds-checked once per row. (The one `unsafe` block is the prefetch hint.)

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// `rows` rows of `width` f32 each, shared by Hogwild threads; see the module docs.
pub struct HogwildRows {
    /// Row r's elements 2i and 2i+1 are the low and high 32 bits of
    /// `cells[r * pairs_per_row + i]`; an odd width leaves the last high half 0.
    cells: Box<[AtomicU64]>,
    rows: usize,
    width: usize,
    pairs_per_row: usize,
}

impl HogwildRows {
    /// A matrix whose element (r, c) is `init(r, c)`, filled row by row.
    pub fn from_fn(rows: usize, width: usize, mut init: impl FnMut(usize, usize) -> f32) -> Self {
        let pairs_per_row = width.div_ceil(2);
        let mut cells = Vec::with_capacity(rows * pairs_per_row);
        for r in 0..rows {
            for p in 0..pairs_per_row {
                let lo = init(r, 2 * p);
                let hi = if 2 * p + 1 < width {
                    init(r, 2 * p + 1)
                } else {
                    0.0
                };
                cells.push(AtomicU64::new(pack(lo, hi)));
            }
        }
        HogwildRows {
            cells: cells.into_boxed_slice(),
            rows,
            width,
            pairs_per_row,
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

    #[inline(always)]
    fn cells_of(&self, row: usize) -> &[AtomicU64] {
        &self.cells[row * self.pairs_per_row..(row + 1) * self.pairs_per_row]
    }

    /// Copies row `row` into `out` (`width` floats).
    #[inline(always)]
    pub fn read(&self, row: usize, out: &mut [f32]) {
        let cells = self.cells_of(row);
        let out = &mut out[..self.width];
        let mut pairs = out.chunks_exact_mut(2);
        for (pair, cell) in (&mut pairs).zip(cells) {
            let (lo, hi) = unpack(cell.load(Relaxed));
            pair[0] = lo;
            pair[1] = hi;
        }
        if let [last] = pairs.into_remainder() {
            *last = unpack(cells[self.pairs_per_row - 1].load(Relaxed)).0;
        }
    }

    /// Copies `src` (`width` floats) over row `row`.
    #[inline(always)]
    pub fn write(&self, row: usize, src: &[f32]) {
        let cells = self.cells_of(row);
        let src = &src[..self.width];
        let mut pairs = src.chunks_exact(2);
        for (pair, cell) in (&mut pairs).zip(cells) {
            cell.store(pack(pair[0], pair[1]), Relaxed);
        }
        if let [last] = pairs.remainder() {
            cells[self.pairs_per_row - 1].store(pack(*last, 0.0), Relaxed);
        }
    }

    /// Asks the CPU to start loading row `row` into cache (a hint: it reads nothing).
    #[inline(always)]
    pub fn prefetch(&self, row: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let cells = self.cells_of(row);
            // One hint per 64-byte cache line (8 cells).
            for cell in cells.iter().step_by(8) {
                // SAFETY: SSE is in every x86-64 CPU, and a prefetch is only a hint: it does
                // not access memory as far as the program can tell, and never faults.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(cell.as_ptr().cast::<i8>()) };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = row;
    }

    /// All rows, row-major (`rows × width`); call when no other thread is writing.
    pub fn to_vec(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.width];
        for (r, row) in out.chunks_exact_mut(self.width.max(1)).enumerate() {
            self.read(r, row);
        }
        out
    }
}

/// Two floats as one 64-bit word: `lo` in the low half.
#[inline(always)]
fn pack(lo: f32, hi: f32) -> u64 {
    lo.to_bits() as u64 | (hi.to_bits() as u64) << 32
}

#[inline(always)]
fn unpack(bits: u64) -> (f32, f32) {
    (
        f32::from_bits(bits as u32),
        f32::from_bits((bits >> 32) as u32),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_for_odd_and_even_widths() {
        for width in [1usize, 2, 5, 8, 101] {
            let m = HogwildRows::from_fn(3, width, |r, c| (r * 1000 + c) as f32 - 0.5);
            assert_eq!((m.rows(), m.width()), (3, width));
            let mut row = vec![0f32; width];
            m.read(1, &mut row);
            let want: Vec<f32> = (0..width).map(|c| (1000 + c) as f32 - 0.5).collect();
            assert_eq!(row, want);
            // Writing one row leaves its neighbours alone, negative zero and NaN bits survive.
            let new: Vec<f32> = (0..width)
                .map(|c| match c % 3 {
                    0 => -0.0,
                    1 => f32::from_bits(0x7fc0_1234),
                    _ => c as f32 * 1e-30,
                })
                .collect();
            m.write(1, &new);
            m.read(1, &mut row);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&row), bits(&new));
            let all = m.to_vec();
            assert_eq!(
                all[..width],
                (0..width).map(|c| c as f32 - 0.5).collect::<Vec<_>>()[..]
            );
            assert_eq!(
                all[2 * width..],
                (0..width)
                    .map(|c| (2000 + c) as f32 - 0.5)
                    .collect::<Vec<_>>()[..]
            );
            m.prefetch(2);
        }
    }

    /// Threads updating disjoint rows of one matrix through copies lose nothing; threads
    /// hammering the same row only ever see floats some thread wrote (no torn values).
    #[test]
    fn concurrent_updates() {
        let width = 7;
        let m = HogwildRows::from_fn(4, width, |_, _| 0.0);
        std::thread::scope(|s| {
            for t in 0..4usize {
                let m = &m;
                s.spawn(move || {
                    let mut buf = vec![0f32; width];
                    for _ in 0..1000 {
                        m.read(t, &mut buf);
                        for x in &mut buf {
                            *x += 1.0;
                        }
                        m.write(t, &buf);
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
