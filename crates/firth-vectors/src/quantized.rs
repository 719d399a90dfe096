//! Exact nearest neighbours through an 8-bit copy of the unit-length rows.
//!
//! A neighbour query scores every row: 50,000 × 100 multiply-adds, which is the whole cost of
//! answering it. In f32 one fused multiply-add handles 16 of them; with VNNI (`vpdpbusd`, on
//! Ice Lake / Zen 4 and later) one instruction multiplies 64 bytes by 64 bytes and adds them
//! in groups of four into 16 sums. So each row m is also kept as a scale s and integers
//! m̃ ∈ [-127, 127] with m̂ = s·m̃ ≈ m, each query q likewise (q̂ = s_q·q̃), and the scan
//! computes q̂·m̂ in integers. With the re-scoring below, a query costs 0.046-0.066 ms in
//! batches of 32-256 on 54,605 × 100 word vectors, against 0.14-0.22 ms for the f32 product
//! (one Zen 4 core; `examples/nearest_speed.rs` in firth-serve).
//!
//! The 8-bit scores come with a bound, which makes the answer exact rather than approximate:
//!
//!   q·m − q̂·m̂ = q·(m − m̂) + (q − q̂)·m̂,  so  |q·m − q̂·m̂| ≤ ‖q‖·‖m − m̂‖ + ‖q − q̂‖·‖m̂‖,
//!
//! with e_m = ‖m − m̂‖ and ‖m̂‖ kept per row, and ‖q‖ and e_q = ‖q − q̂‖ per query. Every row's
//! true score then lies in [q̂·m̂ − b, q̂·m̂ + b]. The k-th largest lower end L is at most the
//! k-th largest true score, so a row whose upper end is below L cannot be among the k best.
//! The rows that survive (a few dozen for word vectors, out of tens of thousands) are scored
//! again with the f32 [`dot`] that [`top_k_ids`](crate::embeddings::top_k_ids) uses, so the
//! answer is exactly `top_k_ids`'s: the same rows, the same scores, the same order.
//!
//! What is stored is not m but m − μ, μ the mean row: q·m = q·μ + q·(m − μ), and q·μ is the
//! same for every row, so it changes no ranking and is never computed. This matters because
//! word2vec's rare words barely move from where training leaves them all: tens of thousands
//! of rows crowd round one direction (the 10th best cosine of a rare word is often 0.96), and
//! a bound as wide as the error of m's own 8 bits lets thousands of them through. The error
//! of m − μ is proportional to its much smaller length. On 54,605 gut8 skip-gram vectors
//! (min-count 4, 200 random words, k = 10) the rows re-scored per query fell from 6,200 on
//! average (17,247 at most) to 138 (400 at most).

use crate::embeddings::top_k_ids;
use crate::simd::dot;

/// Rows per block of the 8-bit copy: one 64-byte vector holds four elements of 16 rows.
const LANES: usize = 16;
/// Rows scored together by the kernel (two blocks), and the row count is padded to it.
const TILE: usize = 2 * LANES;
/// Queries scored together by the kernel: 8 queries × 2 blocks = 16 accumulators.
const QUERIES: usize = 8;

/// An 8-bit copy of unit-length rows, laid out for the kernel, with each row's error bound.
pub struct QuantizedRows {
    rows: usize,
    dim: usize,
    /// ⌈dim / 4⌉: elements are multiplied in groups of four.
    groups: usize,
    /// (rows / 16, groups, 16, 4), rows padded to a multiple of [`TILE`]: block b, group g,
    /// lane l holds row 16b + l's elements 4g..4g+4 as m̃ + 128 (VNNI multiplies unsigned by
    /// signed bytes; the 128 is taken off through the query's [`Query::offset`]). Padding is
    /// 128, an element of 0.
    bytes: Vec<u8>,
    /// Per row, padded like `bytes`: s, e_m and ‖m̂‖ (rounded up).
    scale: Vec<f32>,
    err: Vec<f32>,
    norm: Vec<f32>,
    kernel: Kernel,
}

/// One neighbour query: `q` (of any length; the server's are unit vectors), how many rows,
/// and rows to leave out.
pub struct NeighbourQuery<'a> {
    pub q: &'a [f32],
    pub k: usize,
    pub exclude: &'a [usize],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// Plain loops over the same layout (any CPU; the reference the fast kernel is tested
    /// against).
    Portable,
    /// AVX-512 VNNI `vpdpbusd`.
    #[cfg(target_arch = "x86_64")]
    Vnni,
}

/// Whether this CPU has the 8-bit dot-product instructions that make [`QuantizedRows`]
/// faster than an f32 scan. `FIRTH_SIMD=avx2` or `baseline` turns them off, as it caps the
/// other kernels.
pub fn fast_kernel_available() -> bool {
    best_kernel() != Kernel::Portable
}

fn best_kernel() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        let capped = matches!(
            std::env::var("FIRTH_SIMD").as_deref(),
            Ok("avx2") | Ok("baseline")
        );
        if !capped
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
        {
            return Kernel::Vnni;
        }
    }
    Kernel::Portable
}

/// A query in the kernel's form: q̃ four bytes to a word, and what turns the kernel's sum
/// back into q̂·m̂.
struct Query {
    /// (groups,) q̃ elements 4g..4g+4 as little-endian bytes.
    words: Vec<i32>,
    /// s_q.
    scale: f32,
    /// 128·Σ q̃: Σ (m̃ + 128)·q̃ − offset = Σ m̃·q̃.
    offset: i32,
    /// e_q = ‖q − s_q·q̃‖, rounded up.
    err: f32,
    /// ‖q‖, rounded up (1 for the unit queries the server asks).
    len: f32,
    /// What widens each end beyond the bound: the rounding of the f32 dot product that ranks
    /// the survivors (at most dim·2⁻²⁴·‖q‖‖m‖ each way) and of the scores computed here.
    slack: f32,
}

/// Symmetric 8-bit quantization of `x`: (x̃, s, ‖x − s·x̃‖, ‖s·x̃‖), the norms computed in f64.
/// An all-zero `x` gets s = 1 and x̃ = 0, which is exact.
fn quantize(x: &[f64]) -> (Vec<i8>, f32, f64, f64) {
    let max = x.iter().fold(0f64, |m, v| m.max(v.abs())) as f32;
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    let q: Vec<i8> = x
        .iter()
        .map(|&v| (v / scale as f64).round().clamp(-127.0, 127.0) as i8)
        .collect();
    let (mut err, mut norm) = (0f64, 0f64);
    for (&v, &t) in x.iter().zip(&q) {
        let back = scale as f64 * t as f64;
        err += (v - back).powi(2);
        norm += back * back;
    }
    (q, scale, err.sqrt(), norm.sqrt())
}

/// `x` rounded up to an f32 that is surely not below it.
fn round_up(x: f64) -> f32 {
    (x * (1.0 + 1e-6) + 1e-12) as f32
}

impl QuantizedRows {
    /// The 8-bit copy of `norm` (rows of `dim` unit-length vectors), or None when a value is
    /// not finite (the f32 scan handles those as it always has).
    pub fn new(norm: &[f32], dim: usize) -> Option<QuantizedRows> {
        Self::with_kernel(norm, dim, best_kernel())
    }

    fn with_kernel(norm: &[f32], dim: usize, kernel: Kernel) -> Option<QuantizedRows> {
        // Past 66,000 dimensions the kernel's i32 sums (up to 255·127 per element) could
        // overflow.
        if dim == 0
            || dim > 66_000
            || !norm.len().is_multiple_of(dim)
            || norm.iter().any(|v| !v.is_finite())
        {
            return None;
        }
        let rows = norm.len() / dim;
        // μ, the mean row, in f64; each row is stored as m − μ (see the module comment).
        let mut mean = vec![0f64; dim];
        for row in norm.chunks_exact(dim) {
            for (a, &v) in mean.iter_mut().zip(row) {
                *a += v as f64;
            }
        }
        let mean: Vec<f64> = mean
            .iter()
            .map(|a| (a / rows as f64) as f32 as f64)
            .collect();
        let mut centred = vec![0f64; dim];
        let groups = dim.div_ceil(4);
        let padded = rows.div_ceil(TILE) * TILE;
        let mut bytes = vec![128u8; padded * groups * 4];
        let (mut scale, mut err, mut nrm) =
            (vec![0f32; padded], vec![0f32; padded], vec![0f32; padded]);
        for r in 0..rows {
            // Rounded in f64: 1e-16 of an element, far below the slack of the bounds.
            for ((c, &v), &m) in centred
                .iter_mut()
                .zip(&norm[r * dim..(r + 1) * dim])
                .zip(&mean)
            {
                *c = v as f64 - m;
            }
            let (q, s, e, n) = quantize(&centred);
            let (block, lane) = (r / LANES, r % LANES);
            for (i, &t) in q.iter().enumerate() {
                let at = ((block * groups + i / 4) * LANES + lane) * 4 + i % 4;
                bytes[at] = (t as i16 + 128) as u8;
            }
            scale[r] = s;
            err[r] = round_up(e);
            nrm[r] = round_up(n);
        }
        Some(QuantizedRows {
            rows,
            dim,
            groups,
            bytes,
            scale,
            err,
            norm: nrm,
            kernel,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    fn prepare(&self, q: &[f32]) -> Query {
        let q: Vec<f64> = q.iter().map(|&v| v as f64).collect();
        let (t, scale, err, _) = quantize(&q);
        let len = round_up(q.iter().map(|v| v * v).sum::<f64>().sqrt());
        let mut words = vec![0i32; self.groups];
        for (i, &v) in t.iter().enumerate() {
            words[i / 4] |= ((v as u8) as i32) << (8 * (i % 4));
        }
        Query {
            words,
            scale,
            offset: 128 * t.iter().map(|&v| v as i32).sum::<i32>(),
            err: round_up(err),
            len,
            slack: (1e-6 + 2e-7 * self.dim as f32) * len.max(1.0),
        }
    }

    /// The `k` rows nearest each query, each answer exactly what
    /// [`top_k_ids`](crate::embeddings::top_k_ids)`(norm, dim, q, k, exclude, rows)` gives.
    /// `norm` is the f32 matrix this copy was made from.
    pub fn top_k(&self, norm: &[f32], queries: &[NeighbourQuery]) -> Vec<Vec<(usize, f32)>> {
        assert_eq!(
            norm.len(),
            self.rows * self.dim,
            "not the matrix of this copy"
        );
        let nq = queries.len();
        let prepared: Vec<Query> = queries.iter().map(|b| self.prepare(b.q)).collect();
        let mut words = Vec::with_capacity(nq * self.groups);
        for p in &prepared {
            words.extend_from_slice(&p.words);
        }
        let mut states: Vec<Selection> = queries.iter().map(|b| Selection::new(b.k)).collect();
        for tile in 0..self.scale.len() / TILE {
            let mut i = 0;
            while i < nq {
                // Whole groups of QUERIES share each load of the tile; the rest go one by one.
                let q = if nq - i >= QUERIES { QUERIES } else { 1 };
                let range = i..i + q;
                let (w, s) = (
                    &words[i * self.groups..(i + q) * self.groups],
                    &mut states[range.clone()],
                );
                if q == QUERIES {
                    self.group::<QUERIES>(tile, w, s, &prepared[range.clone()], &queries[range]);
                } else {
                    self.group::<1>(tile, w, s, &prepared[range.clone()], &queries[range]);
                }
                i += q;
            }
        }
        states
            .into_iter()
            .zip(queries)
            .map(|(s, b)| s.finish(norm, self.dim, b))
            .collect()
    }

    /// Scores `Q` queries against one tile and hands each query the rows that may reach its
    /// list.
    #[inline]
    fn group<const Q: usize>(
        &self,
        tile: usize,
        words: &[i32],
        states: &mut [Selection],
        prepared: &[Query],
        queries: &[NeighbourQuery],
    ) {
        let base = tile * TILE;
        let rows = Rows {
            bytes: &self.bytes[base * self.groups * 4..(base + TILE) * self.groups * 4],
            scale: &self.scale[base..base + TILE],
            err: &self.err[base..base + TILE],
            norm: &self.norm[base..base + TILE],
        };
        let mut terms = [Terms::default(); Q];
        for ((t, p), s) in terms.iter_mut().zip(prepared).zip(states.iter()) {
            *t = Terms {
                scale: p.scale,
                offset: p.offset,
                err: p.err,
                len: p.len,
                // The kernel's ends leave out the slack and round differently from offer's;
                // a floor two slacks down lets through every row offer would take.
                floor: if s.k == 0 {
                    f32::INFINITY
                } else {
                    s.threshold() - 2.0 * p.slack
                },
            };
        }
        let mut dots = [[0i32; TILE]; Q];
        let masks = match self.kernel {
            Kernel::Portable => tile_portable::<Q>(&rows, words, self.groups, &terms, &mut dots),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Kernel::Vnni is chosen only where AVX-512F/BW/VNNI were detected; `rows`
            // holds one tile and `words` Q × groups words.
            Kernel::Vnni => unsafe {
                vnni::tile::<Q>(&rows, words, self.groups, &terms, &mut dots)
            },
        };
        let valid = TILE.min(self.rows - base);
        let in_file = if valid == TILE {
            u32::MAX
        } else {
            (1u32 << valid) - 1
        };
        for j in 0..Q {
            let mask = masks[j] & in_file;
            if mask != 0 {
                states[j].offer(
                    mask,
                    &dots[j],
                    &rows,
                    &prepared[j],
                    base,
                    queries[j].exclude,
                );
            }
        }
    }
}

/// One tile of the 8-bit copy: [`TILE`] rows' bytes and per-row terms.
struct Rows<'a> {
    bytes: &'a [u8],
    scale: &'a [f32],
    err: &'a [f32],
    norm: &'a [f32],
}

/// What the kernel needs of one query besides its words: the terms that turn its sums into
/// upper ends, and the floor an upper end must reach to be looked at.
#[derive(Clone, Copy, Default)]
struct Terms {
    scale: f32,
    offset: i32,
    err: f32,
    len: f32,
    floor: f32,
}

/// Σ (m̃ + 128)·q̃ for the tile's rows and `Q` queries into `dots`, and per query the mask of
/// rows whose upper end s_q·s·(Σ − offset) + ‖q‖·e_m + e_q·‖m̂‖ reaches the floor. Plain loops
/// (any CPU); [`vnni::tile`] computes the same.
fn tile_portable<const Q: usize>(
    rows: &Rows,
    words: &[i32],
    groups: usize,
    terms: &[Terms; Q],
    dots: &mut [[i32; TILE]; Q],
) -> [u32; Q] {
    let mut masks = [0u32; Q];
    for j in 0..Q {
        let w = &words[j * groups..(j + 1) * groups];
        for (half, o) in dots[j].chunks_exact_mut(LANES).enumerate() {
            let b = &rows.bytes[half * groups * LANES * 4..(half + 1) * groups * LANES * 4];
            o.fill(0);
            for (g, &word) in w.iter().enumerate() {
                let q = word.to_le_bytes().map(|x| x as i8 as i32);
                for (lane, acc) in o.iter_mut().enumerate() {
                    let m = &b[(g * LANES + lane) * 4..(g * LANES + lane) * 4 + 4];
                    *acc += (0..4).map(|t| m[t] as i32 * q[t]).sum::<i32>();
                }
            }
        }
        let t = &terms[j];
        for l in 0..TILE {
            let approx = t.scale * rows.scale[l] * (dots[j][l] - t.offset) as f32;
            if approx + t.len * rows.err[l] + t.err * rows.norm[l] >= t.floor {
                masks[j] |= 1 << l;
            }
        }
    }
    masks
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{Rows, Terms, LANES, TILE};
    use std::arch::x86_64::*;

    /// [`super::tile_portable`] with AVX-512: for each group of four elements, one load of
    /// each of the tile's two 16-row blocks, one broadcast per query, and 2·Q `vpdpbusd` into
    /// accumulators that stay in registers; then the upper ends and their masks, 16 rows per
    /// instruction.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, BW and VNNI; `rows` holds one tile (2 × groups × 64 bytes,
    /// TILE terms) and `words` Q × groups words.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn tile<const Q: usize>(
        rows: &Rows,
        words: &[i32],
        groups: usize,
        terms: &[Terms; Q],
        dots: &mut [[i32; TILE]; Q],
    ) -> [u32; Q] {
        assert!(rows.bytes.len() == 2 * groups * LANES * 4 && words.len() == Q * groups);
        assert!(rows.scale.len() == TILE && rows.err.len() == TILE && rows.norm.len() == TILE);
        let (b0, b1) = (
            rows.bytes.as_ptr(),
            rows.bytes.as_ptr().add(groups * LANES * 4),
        );
        let w = words.as_ptr();
        let mut acc = [[_mm512_setzero_si512(); 2]; Q];
        for g in 0..groups {
            // SAFETY: g < groups keeps both 64-byte loads inside `rows.bytes`, and
            // j·groups + g inside `words` (the asserts above).
            let m0 = _mm512_loadu_si512(b0.add(g * 64) as *const _);
            let m1 = _mm512_loadu_si512(b1.add(g * 64) as *const _);
            for (j, a) in acc.iter_mut().enumerate() {
                let q = _mm512_set1_epi32(*w.add(j * groups + g));
                a[0] = _mm512_dpbusd_epi32(a[0], m0, q);
                a[1] = _mm512_dpbusd_epi32(a[1], m1, q);
            }
        }
        let mut masks = [0u32; Q];
        for h in 0..2 {
            // SAFETY: h·16 + 16 <= TILE for the per-row terms (asserted above).
            let scale = _mm512_loadu_ps(rows.scale.as_ptr().add(h * LANES));
            let err = _mm512_loadu_ps(rows.err.as_ptr().add(h * LANES));
            let norm = _mm512_loadu_ps(rows.norm.as_ptr().add(h * LANES));
            for j in 0..Q {
                let t = &terms[j];
                // SAFETY: dots[j] holds TILE i32, so h·16..h·16 + 16 is inside it.
                _mm512_storeu_si512(dots[j].as_mut_ptr().add(h * LANES) as *mut _, acc[j][h]);
                let sum = _mm512_sub_epi32(acc[j][h], _mm512_set1_epi32(t.offset));
                let approx = _mm512_mul_ps(
                    _mm512_mul_ps(_mm512_set1_ps(t.scale), scale),
                    _mm512_cvtepi32_ps(sum),
                );
                let bound = _mm512_fmadd_ps(
                    _mm512_set1_ps(t.err),
                    norm,
                    _mm512_mul_ps(_mm512_set1_ps(t.len), err),
                );
                let upper = _mm512_add_ps(approx, bound);
                let m = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(upper, _mm512_set1_ps(t.floor));
                masks[j] |= (m as u32) << (h * LANES);
            }
        }
        masks
    }
}

/// One query's scan: the k largest lower ends seen (L is the smallest of them once there
/// are k), and every row whose upper end reached L when it was seen.
struct Selection {
    k: usize,
    /// The k largest lower ends, largest first.
    lower: Vec<f32>,
    candidates: Vec<(usize, f32)>,
}

impl Selection {
    fn new(k: usize) -> Selection {
        Selection {
            k,
            lower: Vec::with_capacity(k + 1),
            candidates: vec![],
        }
    }

    fn threshold(&self) -> f32 {
        if self.lower.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.lower[self.k - 1]
        }
    }

    /// Takes in the rows of one tile that the kernel's `mask` let through, from their 8-bit
    /// sums `dots`.
    #[allow(clippy::too_many_arguments)]
    fn offer(
        &mut self,
        mut mask: u32,
        dots: &[i32; TILE],
        rows: &Rows,
        q: &Query,
        base: usize,
        exclude: &[usize],
    ) {
        while mask != 0 {
            let l = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let approx = q.scale * rows.scale[l] * (dots[l] - q.offset) as f32;
            let bound = q.len * rows.err[l] + q.err * rows.norm[l] + q.slack;
            let upper = approx + bound;
            if upper < self.threshold() || exclude.contains(&(base + l)) {
                continue;
            }
            self.candidates.push((base + l, upper));
            let lower = approx - bound;
            if self.lower.len() < self.k || lower > self.threshold() {
                let pos = self.lower.partition_point(|&x| x >= lower);
                self.lower.insert(pos, lower);
                self.lower.truncate(self.k);
            }
        }
    }

    /// The survivors scored in f32, best first, ties to the lower row.
    fn finish(self, norm: &[f32], dim: usize, query: &NeighbourQuery) -> Vec<(usize, f32)> {
        if self.k == 0 {
            return vec![];
        }
        if query.q.iter().any(|v| !v.is_finite()) {
            // Its bounds mean nothing; the f32 scan gives what it always gave.
            return top_k_ids(norm, dim, query.q, self.k, query.exclude, norm.len() / dim);
        }
        let t = self.threshold();
        let mut best: Vec<(usize, f32)> = self
            .candidates
            .into_iter()
            .filter(|&(_, upper)| upper >= t)
            .map(|(r, _)| (r, dot(&norm[r * dim..(r + 1) * dim], query.q)))
            .collect();
        // partial_cmp, not total_cmp: -0.0 and 0.0 tie, as they do in top_k_ids.
        let order = |a: &(usize, f32), b: &(usize, f32)| {
            b.1.partial_cmp(&a.1)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.0.cmp(&b.0))
        };
        // Survivors can be a few hundred (frequent words sit in crowded regions); only the
        // k best need sorting.
        if best.len() > self.k {
            best.select_nth_unstable_by(self.k - 1, order);
            best.truncate(self.k);
        }
        best.sort_by(order);
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit rows with structure like word vectors: clusters around a few directions, plus
    /// exact duplicates (ties) and a zero row.
    fn rows(n: usize, d: usize, seed: u64, spread: f32) -> Vec<f32> {
        let mut x = seed;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let centres: Vec<f32> = (0..8 * d).map(|_| next()).collect();
        let mut m = vec![0f32; n * d];
        for r in 0..n {
            let c = r % 8;
            for i in 0..d {
                m[r * d + i] = centres[c * d + i] + spread * next();
            }
        }
        if n > 8 {
            m.copy_within(0..d, 5 * d); // row 5 = row 0: a tie
            m[7 * d..8 * d].fill(0.0); // a zero row
        }
        for r in 0..n {
            let row = &mut m[r * d..(r + 1) * d];
            let len = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if len > 0.0 {
                row.iter_mut().for_each(|v| *v /= len);
            }
        }
        m
    }

    fn check(kernel: Kernel) {
        // The last: rows crowded round 8 directions, as word2vec's rare words are, so that
        // most of the file lies within the bounds' width of the k-th score.
        for &(n, d, spread) in &[
            (1000, 100, 0.3),
            (77, 13, 0.3),
            (33, 4, 0.3),
            (5, 3, 0.3),
            (700, 50, 0.002),
        ] {
            let m = rows(n, d, n as u64, spread);
            let index = QuantizedRows::with_kernel(&m, d, kernel).unwrap();
            let excl: Vec<Vec<usize>> = (0..20).map(|i| vec![i % n, (i * 7) % n]).collect();
            let neg: Vec<f32> = m[d..2 * d].iter().map(|v| -v).collect();
            let long: Vec<f32> = m[2 * d..3 * d].iter().map(|v| 7.5 * v).collect();
            let mut qs: Vec<NeighbourQuery> = (0..20)
                .map(|i| NeighbourQuery {
                    q: &m[(i % n) * d..(i % n + 1) * d],
                    k: [10, 1, 0, 3, n + 5][i % 5],
                    exclude: &excl[i],
                })
                .collect();
            qs.push(NeighbourQuery {
                q: &neg,
                k: 4,
                exclude: &[],
            });
            // Not unit length: the bound scales with ‖q‖.
            qs.push(NeighbourQuery {
                q: &long,
                k: 6,
                exclude: &[],
            });
            let got = index.top_k(&m, &qs);
            for (g, q) in got.iter().zip(&qs) {
                let want = top_k_ids(&m, d, q.q, q.k, q.exclude, n);
                assert_eq!(g, &want, "n {n} d {d} k {}", q.k);
            }
        }
    }

    #[test]
    fn portable_answers_equal_the_f32_scan() {
        check(Kernel::Portable);
    }

    #[test]
    fn fast_answers_equal_the_f32_scan() {
        if best_kernel() == Kernel::Portable {
            eprintln!("no 8-bit dot-product instructions here; the portable kernel was tested");
            return;
        }
        check(best_kernel());
    }

    /// The kernel's integer sums are Σ (m̃ + 128)·q̃, checked by hand on one row and query,
    /// and its mask lets through the rows whose upper end reaches the floor.
    #[test]
    fn kernel_sums_by_hand() {
        // Rows ±[1, -0.5, 0, 0.25] have mean 0, so the stored rows are the rows themselves.
        // The first has max 1: m̃ = [127, -64 (−63.5 rounds away), 0, 32].
        let m = vec![1.0, -0.5, 0.0, 0.25, -1.0, 0.5, 0.0, -0.25];
        let index = QuantizedRows::with_kernel(&m, 4, Kernel::Portable).unwrap();
        let q = index.prepare(&[0.5, 0.5, -1.0, 0.0]); // q̃ = [64, 64, -127, 0]
        assert_eq!(q.offset, 128);
        let rows = Rows {
            bytes: &index.bytes,
            scale: &index.scale,
            err: &index.err,
            norm: &index.norm,
        };
        let mut terms = [Terms {
            scale: q.scale,
            offset: q.offset,
            err: q.err,
            len: q.len,
            floor: f32::NEG_INFINITY,
        }];
        let mut dots = [[0i32; TILE]];
        let masks = tile_portable::<1>(&rows, &q.words, 1, &terms, &mut dots);
        let by_hand = (127 + 128) * 64 + (-64 + 128) * 64 + 128 * -127;
        assert_eq!(dots[0][0], by_hand);
        assert_eq!(dots[0][0] - q.offset, 127 * 64 - 64 * 64);
        assert_eq!(masks[0], u32::MAX);
        // q̂·m̂ = s_q·s·(127·64 − 64·64) with s = 1/127 and s_q = 1/127; the floor just above
        // this row's upper end keeps it out, just below lets it in.
        let approx = (127.0 * 64.0 - 64.0 * 64.0) / (127.0f32 * 127.0);
        let upper = approx + q.len * index.err[0] + q.err * index.norm[0];
        terms[0].floor = upper + 1e-4;
        assert_eq!(
            tile_portable::<1>(&rows, &q.words, 1, &terms, &mut dots)[0] & 1,
            0
        );
        terms[0].floor = upper - 1e-4;
        assert_eq!(
            tile_portable::<1>(&rows, &q.words, 1, &terms, &mut dots)[0] & 1,
            1
        );
        #[cfg(target_arch = "x86_64")]
        if best_kernel() == Kernel::Vnni {
            for floor in [upper - 1e-4, upper + 1e-4, f32::NEG_INFINITY] {
                terms[0].floor = floor;
                let mut fast = [[0i32; TILE]];
                let want = tile_portable::<1>(&rows, &q.words, 1, &terms, &mut dots);
                // SAFETY: the VNNI kernel was detected; `rows` is one tile, `words` one query.
                let got = unsafe { vnni::tile::<1>(&rows, &q.words, 1, &terms, &mut fast) };
                assert_eq!((fast, got), (dots, want));
            }
        }
    }

    #[test]
    fn refuses_values_that_are_not_finite() {
        assert!(QuantizedRows::new(&[1.0, f32::NAN], 2).is_none());
        assert!(QuantizedRows::new(&[1.0, 0.0, 0.0], 2).is_none());
    }
}
