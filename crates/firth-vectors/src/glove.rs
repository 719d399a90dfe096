//! GloVe (Pennington et al. 2014): co-occurrence counting under a memory budget, shuffling, and
//! AdaGrad training of the weighted least-squares objective.
//!
//! # Objective and gradient
//!
//! For every non-zero co-occurrence X_ij (word i, context j, weighted 1/distance as GloVe C
//! does):
//!
//! ```text
//! J = Σ_ij ½ f(X_ij) (w_i·w̃_j + b_i + b̃_j - log X_ij)²,  f(x) = min(1, (x / x_max)^α)
//! ```
//!
//! With d = w_i·w̃_j + b_i + b̃_j - log X_ij the derivatives are
//!
//! ```text
//! dJ/dw_i = f(X_ij) d w̃_j,  dJ/dw̃_j = f(X_ij) d w_i,  dJ/db_i = dJ/db̃_j = f(X_ij) d
//! ```
//!
//! and AdaGrad moves each parameter by `-g / sqrt(G)` where G (initialised to 1) accumulates
//! g², exactly as `glove.c`: for the vectors g is the gradient clipped at ±100 and scaled by η;
//! for the biases `glove.c` uses the unscaled gradient, and so do we (it matters for quality).
//!
//! # Counting under a memory budget
//!
//! As in `cooccur.c`, pairs of frequent words (rank product <= P) are accumulated in a dense
//! table whose row r holds min(P / r, V) columns; P is chosen so the table fits about 30% of the
//! budget. Other pairs go to a buffer that is sorted and merged when full, and spilled to a
//! temporary file as a sorted run; the runs are merged (summing equal pairs) at the end.
//!
//! # Shuffling under the same budget
//!
//! The merged records go straight into a [`Shuffler`] holding at most 40% of the budget
//! (12 bytes a record). If they all fit, they are shuffled in memory and trained from there;
//! otherwise every full buffer is shuffled and written to a temporary file, and the files are
//! merged as GloVe C's `shuffle` does (a share of each file per round, shuffled together), into
//! one file that the training threads stream, each from its own contiguous slice.

use std::collections::BinaryHeap;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::hogwild::HogwildRows;
use crate::tokens::{file_len, CountedVocab, Tok, TokenStream};
use crate::word2vec::Lcg;
use crate::VecError;

#[derive(Debug, Clone)]
pub struct Config {
    pub dim: usize,
    pub window: usize,
    pub x_max: f64,
    /// Exponent α of the weighting function.
    pub alpha: f64,
    /// AdaGrad learning rate η.
    pub eta: f64,
    pub epochs: u32,
    pub min_count: u64,
    pub max_vocab: usize,
    pub memory_bytes: u64,
    pub threads: usize,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dim: 50,
            window: 15,
            x_max: 10.0,
            alpha: 0.75,
            eta: 0.05,
            epochs: 15,
            min_count: 5,
            max_vocab: 0,
            memory_bytes: 4_000_000_000,
            threads: 2,
            seed: 1,
        }
    }
}

/// Progress: the stage, the epoch being trained, and the last epoch's mean cost.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub stage: &'static str,
    pub epoch: u32,
    pub cost: f64,
}

/// One co-occurrence record: 0-based word ids and the (distance-weighted) count.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct Crec {
    pub w1: u32,
    pub w2: u32,
    pub x: f32,
}

pub struct Trained {
    pub vocab: CountedVocab,
    pub dim: usize,
    /// Word vectors W and context vectors W̃ (`V × dim` each, biases dropped).
    pub w: Vec<f32>,
    pub wt: Vec<f32>,
    pub nonzeros: usize,
    pub spilled_runs: usize,
    /// Shuffled chunks written to disk (0: the records were shuffled and trained in memory).
    pub shuffle_chunks: usize,
    pub cooccur_seconds: f64,
    pub shuffle_seconds: f64,
    pub train_seconds: f64,
    pub final_cost: f64,
    /// Mean cost Σ ½ f(x) d² / records of every epoch (glove.c prints the same figure).
    pub epoch_costs: Vec<f64>,
}

/// Which of the two trained matrices is written out.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vectors {
    /// W + W~ (GloVe C's default `-model 2`).
    Sum,
    Word,
    Context,
}

impl Trained {
    /// The chosen vectors, `vocab.len() × dim`. The sum is the default: with symmetric
    /// co-occurrences the two matrices differ only by their random start, and Pennington et al.
    /// found their sum usually a little better than either.
    pub fn vectors(&self, which: Vectors) -> Vec<f32> {
        match which {
            Vectors::Word => self.w.clone(),
            Vectors::Context => self.wt.clone(),
            Vectors::Sum => self.w.iter().zip(&self.wt).map(|(x, y)| x + y).collect(),
        }
    }
}

/// A per-process temporary directory, created on first use and removed with everything in it
/// when dropped.
struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        static DIRS: AtomicU64 = AtomicU64::new(0);
        TempDir(std::env::temp_dir().join(format!(
            "firth-glove-{tag}-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        )))
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sort_merge(buf: &mut Vec<(u64, f32)>) {
    buf.sort_unstable_by_key(|e| e.0);
    let mut out = 0;
    for i in 0..buf.len() {
        if out > 0 && buf[out - 1].0 == buf[i].0 {
            buf[out - 1].1 += buf[i].1;
        } else {
            buf[out] = buf[i];
            out += 1;
        }
    }
    buf.truncate(out);
}

fn write_run(path: &Path, run: &[(u64, f32)]) -> Result<(), VecError> {
    let f = std::fs::File::create(path).map_err(|e| VecError::io(path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    for &(k, x) in run {
        w.write_all(&k.to_le_bytes())
            .map_err(|e| VecError::io(path, e))?;
        w.write_all(&x.to_le_bytes())
            .map_err(|e| VecError::io(path, e))?;
    }
    w.flush().map_err(|e| VecError::io(path, e))
}

struct RunReader {
    r: BufReader<std::fs::File>,
}
impl RunReader {
    fn next(&mut self) -> Option<(u64, f32)> {
        let mut b = [0u8; 12];
        self.r.read_exact(&mut b).ok()?;
        Some((
            u64::from_le_bytes(b[..8].try_into().ok()?),
            f32::from_le_bytes(b[8..].try_into().ok()?),
        ))
    }
}

/// Counts co-occurrences (symmetric window, weight 1/distance, OOV words skipped, lines reset
/// the window). Returns the records (unordered) and the number of runs spilled to disk.
pub fn cooccur(
    input: &Path,
    vocab: &CountedVocab,
    window: usize,
    memory_bytes: u64,
) -> Result<(Vec<Crec>, usize), VecError> {
    let mut recs = vec![];
    let spilled = cooccur_into(input, vocab, window, memory_bytes, &mut |c| {
        recs.push(c);
        Ok(())
    })?;
    Ok((recs, spilled))
}

/// [`cooccur`], handing every record to `emit` instead of collecting them; returns the number
/// of sorted runs spilled to disk.
pub fn cooccur_into(
    input: &Path,
    vocab: &CountedVocab,
    window: usize,
    memory_bytes: u64,
    emit: &mut dyn FnMut(Crec) -> Result<(), VecError>,
) -> Result<usize, VecError> {
    let v = vocab.len() as u64;
    // Dense table: about 30% of the budget (8-byte entries), rows r = 1..V of min(P/r, V).
    let dense_entries = (0.30 * memory_bytes as f64 / 8.0).max(1024.0);
    let mut n = 1e5f64;
    for _ in 0..100 {
        n = dense_entries / (n.ln() + 0.154_431_329_8);
    }
    let p = (n as u64).max(1);
    let mut off = Vec::with_capacity(v as usize + 2);
    off.push(0u64); // off[r - 1] is the start of row r
    for r in 1..=v {
        let len = (p / r).min(v);
        off.push(off[r as usize - 1] + len);
    }
    let mut dense = vec![0f64; off[v as usize] as usize];
    // Overflow buffer: about 30% of the budget (16-byte entries). Reserved once; pages are only
    // touched as it fills. The remaining 40% holds the merged records (12 bytes each).
    let overflow_cap = ((0.30 * memory_bytes as f64) / 16.0).max(1024.0) as usize;
    let mut buf: Vec<(u64, f32)> = Vec::with_capacity(overflow_cap);
    let tmp = TempDir::new("runs");
    let mut runs: Vec<PathBuf> = vec![];
    let len = file_len(input)?;
    let mut ts = TokenStream::open(input, 0, len)?;
    let mut hist = vec![0u32; window.max(1)];
    let mut j = 0usize;
    let mut add = |a: u32,
                   b: u32,
                   x: f64,
                   buf: &mut Vec<(u64, f32)>,
                   runs: &mut Vec<PathBuf>|
     -> Result<(), VecError> {
        let (r1, r2) = (a as u64 + 1, b as u64 + 1);
        if r1 * r2 <= p && r2 <= (off[r1 as usize] - off[r1 as usize - 1]) {
            dense[(off[r1 as usize - 1] + r2 - 1) as usize] += x;
        } else {
            buf.push(((a as u64) << 32 | b as u64, x as f32));
            if buf.len() >= overflow_cap {
                sort_merge(buf);
                // Merging shrank it enough: keep going in memory.
                if buf.len() < overflow_cap / 2 {
                    return Ok(());
                }
                std::fs::create_dir_all(&tmp.0).map_err(|e| VecError::io(&tmp.0, e))?;
                let path = tmp.0.join(format!("run{}", runs.len()));
                write_run(&path, buf)?;
                runs.push(path);
                buf.clear();
            }
        }
        Ok(())
    };
    loop {
        match ts.next_tok().map_err(|e| VecError::io(input, e))? {
            None => break,
            Some(Tok::Newline) => j = 0,
            Some(Tok::Word(w)) => {
                let Some(w2) = vocab.get(w) else { continue };
                let lo = j.saturating_sub(window);
                for k in (lo..j).rev() {
                    let w1 = hist[k % window];
                    let x = 1.0 / (j - k) as f64;
                    add(w1, w2, x, &mut buf, &mut runs)?;
                    add(w2, w1, x, &mut buf, &mut runs)?;
                }
                hist[j % window] = w2;
                j += 1;
            }
        }
    }
    sort_merge(&mut buf);
    for r in 1..=v {
        let s = off[r as usize - 1] as usize;
        let e = off[r as usize] as usize;
        for (c, &x) in dense[s..e].iter().enumerate() {
            if x > 0.0 {
                emit(Crec {
                    w1: r as u32 - 1,
                    w2: c as u32,
                    x: x as f32,
                })?;
            }
        }
    }
    drop(dense);
    let spilled = runs.len();
    if runs.is_empty() {
        for &(k, x) in &buf {
            emit(Crec {
                w1: (k >> 32) as u32,
                w2: k as u32,
                x,
            })?;
        }
    } else {
        // K-way merge of the spilled runs and the in-memory remainder, summing equal pairs.
        let mut readers: Vec<RunReader> = runs
            .iter()
            .map(|p| {
                std::fs::File::open(p)
                    .map(|f| RunReader {
                        r: BufReader::with_capacity(1 << 20, f),
                    })
                    .map_err(|e| VecError::io(p, e))
            })
            .collect::<Result<_, _>>()?;
        let mut mem = buf.into_iter();
        let mut heap = BinaryHeap::new();
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some((k, x)) = r.next() {
                heap.push(std::cmp::Reverse((k, i, x.to_bits())));
            }
        }
        let mem_id = readers.len();
        if let Some((k, x)) = mem.next() {
            heap.push(std::cmp::Reverse((k, mem_id, x.to_bits())));
        }
        let mut cur: Option<(u64, f32)> = None;
        while let Some(std::cmp::Reverse((k, i, xb))) = heap.pop() {
            let x = f32::from_bits(xb);
            match cur {
                Some((ck, cx)) if ck == k => cur = Some((ck, cx + x)),
                _ => {
                    if let Some((ck, cx)) = cur {
                        emit(Crec {
                            w1: (ck >> 32) as u32,
                            w2: ck as u32,
                            x: cx,
                        })?;
                    }
                    cur = Some((k, x));
                }
            }
            let nxt = if i == mem_id {
                mem.next()
            } else {
                readers[i].next()
            };
            if let Some((k2, x2)) = nxt {
                heap.push(std::cmp::Reverse((k2, i, x2.to_bits())));
            }
        }
        if let Some((ck, cx)) = cur {
            emit(Crec {
                w1: (ck >> 32) as u32,
                w2: ck as u32,
                x: cx,
            })?;
        }
    }
    Ok(spilled)
}

/// Fisher-Yates shuffle with word2vec's LCG (deterministic for a seed).
pub fn shuffle(recs: &mut [Crec], seed: u64) {
    shuffle_with(recs, &mut Lcg(seed ^ 0x9E37_79B9_7F4A_7C15));
}

fn shuffle_with(recs: &mut [Crec], rng: &mut Lcg) {
    for i in (1..recs.len()).rev() {
        let r = rng.next_u64();
        let j = ((r >> 16) % (i as u64 + 1)) as usize;
        recs.swap(i, j);
    }
}

/// Bytes of one record on disk: w1, w2 (u32) and x (f32), little-endian.
const REC_BYTES: usize = 12;

fn write_recs(w: &mut impl Write, recs: &[Crec]) -> std::io::Result<()> {
    for c in recs {
        w.write_all(&c.w1.to_le_bytes())?;
        w.write_all(&c.w2.to_le_bytes())?;
        w.write_all(&c.x.to_le_bytes())?;
    }
    Ok(())
}

/// Streams `left` records from a record file, from a given record on.
struct RecReader {
    path: PathBuf,
    r: BufReader<std::fs::File>,
    left: u64,
    bytes: Vec<u8>,
}

impl RecReader {
    fn open(path: &Path, first: u64, count: u64) -> Result<Self, VecError> {
        let mut f = std::fs::File::open(path).map_err(|e| VecError::io(path, e))?;
        f.seek(SeekFrom::Start(first * REC_BYTES as u64))
            .map_err(|e| VecError::io(path, e))?;
        Ok(RecReader {
            path: path.to_path_buf(),
            r: BufReader::with_capacity(1 << 20, f),
            left: count,
            bytes: vec![],
        })
    }

    /// Replaces `out` with the next (at most `max`) records; returns how many were read.
    fn read_block(&mut self, out: &mut Vec<Crec>, max: usize) -> Result<usize, VecError> {
        let n = (max as u64).min(self.left) as usize;
        self.bytes.resize(n * REC_BYTES, 0);
        self.r.read_exact(&mut self.bytes).map_err(|e| {
            VecError::Invalid(format!(
                "{}: temporary record file ended early ({e}); is the disk full or the file being changed?",
                self.path.display()
            ))
        })?;
        self.left -= n as u64;
        out.clear();
        out.extend(self.bytes.chunks_exact(REC_BYTES).map(|b| Crec {
            w1: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            w2: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            x: f32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        }));
        Ok(n)
    }
}

/// Shuffled records: in memory, or in a file on disk when they did not fit the budget.
pub enum Shuffled {
    Memory(Vec<Crec>),
    Disk {
        path: PathBuf,
        len: usize,
        chunks: usize,
    },
}

impl Shuffled {
    pub fn len(&self) -> usize {
        match self {
            Shuffled::Memory(r) => r.len(),
            Shuffled::Disk { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Shuffles records while holding at most `cap` of them in memory (GloVe C's `shuffle`).
///
/// Records are gathered in a buffer; each time it holds `cap`, it is shuffled and written to
/// a temporary file in `dir` (a chunk). [`Shuffler::finish`] shuffles in memory when nothing
/// was spilled (the same permutation as [`shuffle`] with the seed); otherwise it merges the k
/// chunks by rounds, taking the next cap/k records of every chunk, shuffling them together and
/// appending them to one file. Like GloVe C's, the result is not a uniform permutation (a
/// record stays in the part of the output that corresponds to its place in its chunk), but
/// every stretch of the output mixes records from the whole corpus.
pub struct Shuffler {
    cap: usize,
    buf: Vec<Crec>,
    dir: PathBuf,
    chunks: Vec<PathBuf>,
    seed: u64,
    rng: Lcg,
}

impl Shuffler {
    pub fn new(dir: &Path, cap: usize, seed: u64) -> Self {
        let cap = cap.max(2);
        Shuffler {
            cap,
            buf: Vec::with_capacity(cap),
            dir: dir.to_path_buf(),
            chunks: vec![],
            seed,
            rng: Lcg(seed ^ 0x5851_F42D_4C95_7F2D),
        }
    }

    pub fn push(&mut self, c: Crec) -> Result<(), VecError> {
        self.buf.push(c);
        if self.buf.len() >= self.cap {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), VecError> {
        shuffle_with(&mut self.buf, &mut self.rng);
        std::fs::create_dir_all(&self.dir).map_err(|e| VecError::io(&self.dir, e))?;
        let path = self.dir.join(format!("chunk{}", self.chunks.len()));
        let f = std::fs::File::create(&path).map_err(|e| VecError::io(&path, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        write_recs(&mut w, &self.buf)
            .and_then(|_| w.flush())
            .map_err(|e| VecError::io(&path, e))?;
        self.chunks.push(path);
        self.buf.clear();
        Ok(())
    }

    pub fn finish(mut self) -> Result<Shuffled, VecError> {
        if self.chunks.is_empty() {
            let mut recs = std::mem::take(&mut self.buf);
            shuffle(&mut recs, self.seed);
            return Ok(Shuffled::Memory(recs));
        }
        if !self.buf.is_empty() {
            self.spill()?;
        }
        self.buf = vec![];
        let k = self.chunks.len();
        let per = (self.cap / k).max(1);
        let mut readers = vec![];
        for p in &self.chunks {
            let n = std::fs::metadata(p).map_err(|e| VecError::io(p, e))?.len();
            readers.push(RecReader::open(p, 0, n / REC_BYTES as u64)?);
        }
        let out = self.dir.join("shuffled");
        let f = std::fs::File::create(&out).map_err(|e| VecError::io(&out, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut round = Vec::with_capacity(per * k);
        let mut part = vec![];
        let mut len = 0;
        loop {
            round.clear();
            for r in &mut readers {
                r.read_block(&mut part, per)?;
                round.extend_from_slice(&part);
            }
            if round.is_empty() {
                break;
            }
            shuffle_with(&mut round, &mut self.rng);
            write_recs(&mut w, &round).map_err(|e| VecError::io(&out, e))?;
            len += round.len();
        }
        w.flush().map_err(|e| VecError::io(&out, e))?;
        drop(readers);
        for p in &self.chunks {
            let _ = std::fs::remove_file(p);
        }
        Ok(Shuffled::Disk {
            path: out,
            len,
            chunks: k,
        })
    }
}

/// Asks for the word and context rows of record `at` (when there is one) in every matrix, a few
/// records ahead of the one being updated, so they are in cache when its turn comes.
#[inline(always)]
fn prefetch_rows(recs: &[Crec], at: usize, v: usize, matrices: [&HogwildRows; 2]) {
    if let Some(c) = recs.get(at) {
        for m in matrices {
            m.prefetch(c.w1 as usize);
            m.prefetch(c.w2 as usize + v);
        }
    }
}

/// One AdaGrad pass over `recs`; returns Σ ½ f(x) d². `w` holds the 2V rows [w (dim), b]
/// (words, then contexts), `g` their AdaGrad sums. Portable path: each record copies its two
/// rows of each in, updates the copies and writes them back (see [`HogwildRows`]). An invalid
/// word id (>= V) panics.
fn epoch_portable(
    recs: &[Crec],
    w: &HogwildRows,
    g: &HogwildRows,
    v: usize,
    x_max: f32,
    alpha: f32,
    eta: f32,
) -> f64 {
    let width = w.width();
    let dim = width - 1;
    let mut cost = 0.0f64;
    // Padded copies: whole blocks move, no tail to split.
    let padded = w.padded_width();
    let (mut w1, mut w2) = (vec![0f32; padded], vec![0f32; padded]);
    let (mut g1, mut g2) = (vec![0f32; padded], vec![0f32; padded]);
    let mut u1 = vec![0f32; dim];
    let mut u2 = vec![0f32; dim];
    for (n, c) in recs.iter().enumerate() {
        prefetch_rows(recs, n + 4, v, [w, g]);
        // The word's row and the context's row: never the same row (the second is >= V).
        let (r1, r2) = (c.w1 as usize, c.w2 as usize + v);
        w.read(r1, &mut w1);
        w.read(r2, &mut w2);
        let diff = crate::simd::dot_portable(&w1[..dim], &w2[..dim]) + w1[dim] + w2[dim] - c.x.ln();
        let fx = if c.x > x_max {
            1.0
        } else {
            (c.x / x_max).powf(alpha)
        };
        let fdiff = fx * diff;
        if !fdiff.is_finite() {
            continue;
        }
        g.read(r1, &mut g1);
        g.read(r2, &mut g2);
        cost += 0.5 * (fdiff * diff) as f64;
        // As glove.c: the vector gradients are clipped, then scaled by η; the bias
        // gradients are used unscaled (their AdaGrad step is fdiff / sqrt(G)).
        for b in 0..dim {
            let t1 = (fdiff * w2[b]).clamp(-100.0, 100.0) * eta;
            let t2 = (fdiff * w1[b]).clamp(-100.0, 100.0) * eta;
            u1[b] = t1 / g1[b].sqrt();
            u2[b] = t2 / g2[b].sqrt();
            g1[b] += t1 * t1;
            g2[b] += t2 * t2;
        }
        for b in 0..dim {
            w1[b] -= u1[b];
            w2[b] -= u2[b];
        }
        w1[dim] -= fdiff / g1[dim].sqrt();
        w2[dim] -= fdiff / g2[dim].sqrt();
        g1[dim] += fdiff * fdiff;
        g2[dim] += fdiff * fdiff;
        w.write(r1, &w1);
        w.write(r2, &w2);
        g.write(r1, &g1);
        g.write(r2, &g2);
    }
    cost
}

/// [`epoch_portable`] on AVX2+FMA, fused: no row is copied. Per record, the dot product loads
/// the blocks of w and w̃ (one atomic 16-byte load each, [`crate::hogwild::avx::Blocks`])
/// straight into the accumulators, then one pass over the blocks loads w, w̃, G, G̃, computes
/// the AdaGrad step in registers and stores the four blocks back. Each element gets exactly
/// the operations of the copy-based kernels with [`crate::simd::avx2::dot`] (same
/// accumulators and sum order; multiply, clamp, multiply, sqrt, divide, multiply-add as
/// separate roundings), so one thread writes the same bits.
///
/// The bias sits in the row's last block at lane dim mod 4. Its update has the vector form
/// with t = fd instead of the clipped, scaled gradient (w -= t/√G, G += t²), so the last
/// block puts fd in that lane of t; lanes past it are padding and are stored back unchanged
/// (their G is 0, so t/√G would be 0/0).
///
/// # Safety
/// The CPU must support AVX2 and FMA. An invalid word id (>= V) panics.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn epoch_avx2(
    recs: &[Crec],
    w: &HogwildRows,
    g: &HogwildRows,
    v: usize,
    x_max: f32,
    alpha: f32,
    eta: f32,
) -> f64 {
    use crate::hogwild::avx::{blocks, Blocks};
    use std::arch::x86_64::*;
    let dim = w.width() - 1;
    // Blocks 0..last hold only vector floats; block `last` holds the rest, the bias, padding.
    let last = dim / 4;
    let lanes = _mm_set_ps(3.0, 2.0, 1.0, 0.0);
    let bias_lane = _mm_cmpeq_ps(lanes, _mm_set1_ps((dim % 4) as f32));
    let kept_lanes = _mm_cmple_ps(lanes, _mm_set1_ps((dim % 4) as f32));
    // `avx2::dot` over dim floats: 16 per step into two 8-wide sums, then maybe 8 more into
    // the first; here each 8-wide sum is two 4-wide halves (the lanes add the same way).
    let (steps16, one8) = (dim / 16, dim % 16 >= 8);
    let dotted = 8 * (dim / 8);
    let (lo, hi, veta) = (_mm_set1_ps(-100.0), _mm_set1_ps(100.0), _mm_set1_ps(eta));
    let (lo8, hi8, eta8) = (
        _mm256_set1_ps(-100.0),
        _mm256_set1_ps(100.0),
        _mm256_set1_ps(eta),
    );
    let lane = |x: __m128, i: usize| {
        let mut a = [0f32; 4];
        _mm_storeu_ps(a.as_mut_ptr(), x);
        a[i]
    };
    let mut cost = 0.0f64;
    for (n, c) in recs.iter().enumerate() {
        prefetch_rows(recs, n + 4, v, [w, g]);
        // The word's row and the context's row: never the same row (the second is >= V).
        let (r1, r2) = (c.w1 as usize, c.w2 as usize + v);
        let (w1, w2) = (blocks(w, r1), blocks(w, r2));
        let (g1, g2) = (blocks(g, r1), blocks(g, r2));
        // Every row has last + 1 blocks; checked once here, the indexing below needs no checks.
        assert!(w1.len() == last + 1 && w2.len() == last + 1);
        assert!(g1.len() == last + 1 && g2.len() == last + 1);
        let z = _mm_setzero_ps();
        let (mut s0l, mut s0h, mut s1l, mut s1h) = (z, z, z, z);
        for k in 0..steps16 {
            let q = 4 * k;
            s0l = _mm_fmadd_ps(w1.load(q), w2.load(q), s0l);
            s0h = _mm_fmadd_ps(w1.load(q + 1), w2.load(q + 1), s0h);
            s1l = _mm_fmadd_ps(w1.load(q + 2), w2.load(q + 2), s1l);
            s1h = _mm_fmadd_ps(w1.load(q + 3), w2.load(q + 3), s1h);
        }
        if one8 {
            let q = 4 * steps16;
            s0l = _mm_fmadd_ps(w1.load(q), w2.load(q), s0l);
            s0h = _mm_fmadd_ps(w1.load(q + 1), w2.load(q + 1), s0h);
        }
        let s = _mm_add_ps(_mm_add_ps(s0l, s1l), _mm_add_ps(s0h, s1h));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
        let mut dot = _mm_cvtss_f32(s);
        // The dot's scalar tail (floats dotted..dim), then the biases, from the same blocks.
        for q in dotted / 4..=last {
            let (a, b) = (w1.load(q), w2.load(q));
            for i in 0..4 {
                if 4 * q + i < dim {
                    dot += lane(a, i) * lane(b, i);
                }
            }
        }
        let (b1, b2) = (lane(w1.load(last), dim % 4), lane(w2.load(last), dim % 4));
        let diff = dot + b1 + b2 - c.x.ln();
        let fx = if c.x > x_max {
            1.0
        } else {
            (c.x / x_max).powf(alpha)
        };
        let fdiff = fx * diff;
        if !fdiff.is_finite() {
            continue;
        }
        cost += 0.5 * (fdiff * diff) as f64;
        let fd = _mm_set1_ps(fdiff);
        let fd8 = _mm256_set1_ps(fdiff);
        // As glove.c: t = clip(fd · other vector, ±100) · η; w -= t / √G; G += t². f32::clamp
        // is `max(lo, x)` then `min(hi, x)` in the operand order that keeps a NaN x, as
        // maxps/minps return their second operand on NaN.
        let mut q = 0;
        // Two blocks at a time as one 8-wide vector while both hold only vector floats.
        while q + 2 <= last {
            let pair = |b: Blocks, q: usize| _mm256_set_m128(b.load(q + 1), b.load(q));
            let (a1, a2, h1, h2) = (pair(w1, q), pair(w2, q), pair(g1, q), pair(g2, q));
            let t1 = _mm256_mul_ps(fd8, a2);
            let t1 = _mm256_mul_ps(_mm256_min_ps(hi8, _mm256_max_ps(lo8, t1)), eta8);
            let t2 = _mm256_mul_ps(fd8, a1);
            let t2 = _mm256_mul_ps(_mm256_min_ps(hi8, _mm256_max_ps(lo8, t2)), eta8);
            let n1 = _mm256_sub_ps(a1, _mm256_div_ps(t1, _mm256_sqrt_ps(h1)));
            let n2 = _mm256_sub_ps(a2, _mm256_div_ps(t2, _mm256_sqrt_ps(h2)));
            let m1 = _mm256_add_ps(h1, _mm256_mul_ps(t1, t1));
            let m2 = _mm256_add_ps(h2, _mm256_mul_ps(t2, t2));
            for (b, x) in [(w1, n1), (w2, n2), (g1, m1), (g2, m2)] {
                b.store(q, _mm256_castps256_ps128(x));
                b.store(q + 1, _mm256_extractf128_ps::<1>(x));
            }
            q += 2;
        }
        // The rest one block at a time; the last block's bias lane takes t = fd and its
        // padding lanes are stored back as they were.
        while q <= last {
            let (a1, a2, h1, h2) = (w1.load(q), w2.load(q), g1.load(q), g2.load(q));
            let mut t1 = _mm_mul_ps(_mm_min_ps(hi, _mm_max_ps(lo, _mm_mul_ps(fd, a2))), veta);
            let mut t2 = _mm_mul_ps(_mm_min_ps(hi, _mm_max_ps(lo, _mm_mul_ps(fd, a1))), veta);
            if q == last {
                t1 = _mm_blendv_ps(t1, fd, bias_lane);
                t2 = _mm_blendv_ps(t2, fd, bias_lane);
            }
            let mut n1 = _mm_sub_ps(a1, _mm_div_ps(t1, _mm_sqrt_ps(h1)));
            let mut n2 = _mm_sub_ps(a2, _mm_div_ps(t2, _mm_sqrt_ps(h2)));
            let mut m1 = _mm_add_ps(h1, _mm_mul_ps(t1, t1));
            let mut m2 = _mm_add_ps(h2, _mm_mul_ps(t2, t2));
            if q == last {
                n1 = _mm_blendv_ps(a1, n1, kept_lanes);
                n2 = _mm_blendv_ps(a2, n2, kept_lanes);
                m1 = _mm_blendv_ps(h1, m1, kept_lanes);
                m2 = _mm_blendv_ps(h2, m2, kept_lanes);
            }
            w1.store(q, n1);
            w2.store(q, n2);
            g1.store(q, m1);
            g2.store(q, m2);
            q += 1;
        }
    }
    cost
}

type EpochFn = unsafe fn(&[Crec], &HogwildRows, &HogwildRows, usize, f32, f32, f32) -> f64;

/// Records the shuffle may hold in memory: 40% of the budget (the co-occurrence counting uses
/// the other 60%), at least 1024.
fn shuffle_capacity(memory_bytes: u64) -> usize {
    ((0.40 * memory_bytes as f64 / REC_BYTES as f64) as usize).max(1024)
}

/// Counts, shuffles and trains. `progress` is called between stages and epochs.
pub fn train(
    input: &Path,
    cfg: &Config,
    vocab: CountedVocab,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Trained, VecError> {
    train_until(input, cfg, vocab, &AtomicBool::new(false), progress)
}

/// [`train`] that ends early with [`VecError::Stopped`] once `stop` is set (by `progress`, or
/// by another thread), looked at between stages and epochs.
pub fn train_until(
    input: &Path,
    cfg: &Config,
    vocab: CountedVocab,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Trained, VecError> {
    let stopped = || {
        if stop.load(Ordering::Relaxed) {
            Err(VecError::Stopped)
        } else {
            Ok(())
        }
    };
    if cfg.dim == 0 || cfg.window == 0 || cfg.epochs == 0 {
        return Err(VecError::Invalid(
            "--dim, --window and --epochs must be positive".into(),
        ));
    }
    if vocab.is_empty() {
        return Err(VecError::Invalid("empty vocabulary".into()));
    }
    progress(&Progress {
        stage: "counting co-occurrences",
        epoch: 0,
        cost: 0.0,
    });
    let t = Instant::now();
    let tmp = TempDir::new("shuffle");
    let mut shuffler = Shuffler::new(&tmp.0, shuffle_capacity(cfg.memory_bytes), cfg.seed);
    let spilled = cooccur_into(input, &vocab, cfg.window, cfg.memory_bytes, &mut |c| {
        shuffler.push(c)
    })?;
    let cooccur_seconds = t.elapsed().as_secs_f64();
    stopped()?;
    progress(&Progress {
        stage: "shuffling",
        epoch: 0,
        cost: 0.0,
    });
    stopped()?;
    let t = Instant::now();
    let recs = shuffler.finish()?;
    let shuffle_seconds = t.elapsed().as_secs_f64();
    if recs.is_empty() {
        return Err(VecError::Invalid(format!(
            "{}: no co-occurrences (every line has one word?)",
            input.display()
        )));
    }

    let t = Instant::now();
    let v = vocab.len();
    let dim = cfg.dim;
    let mut rng = Lcg(cfg.seed);
    // Each row is [w (dim), b], words then contexts; AdaGrad sums start at 1, as in glove.c.
    let w = HogwildRows::from_fn(2 * v, dim + 1, |_, _| {
        (((rng.next_u64() >> 16) & 0xFFFF) as f32 / 65536.0 - 0.5) / (dim + 1) as f32
    });
    let g = HogwildRows::from_fn(2 * v, dim + 1, |_, _| 1.0);
    let epoch_fn: EpochFn = {
        #[cfg(target_arch = "x86_64")]
        {
            if crate::simd::has_avx2() {
                epoch_avx2
            } else {
                epoch_portable
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            epoch_portable
        }
    };
    let threads = cfg.threads.max(1);
    let n = recs.len();
    let chunk = n.div_ceil(threads);
    let (x_max, alpha, eta) = (cfg.x_max as f32, cfg.alpha as f32, cfg.eta as f32);
    let mut epoch_costs = vec![];
    for epoch in 0..cfg.epochs {
        stopped()?;
        let total: Result<f64, VecError> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (lo, hi) = ((t * chunk).min(n), ((t + 1) * chunk).min(n));
                    let (w, g, recs) = (&w, &g, &recs);
                    s.spawn(move || -> Result<f64, VecError> {
                        // SAFETY: `epoch_fn` is a kernel this CPU can run (chosen above).
                        let run =
                            |part: &[Crec]| unsafe { epoch_fn(part, w, g, v, x_max, alpha, eta) };
                        match recs {
                            Shuffled::Memory(r) => Ok(run(&r[lo..hi])),
                            Shuffled::Disk { path, .. } => {
                                let mut rd = RecReader::open(path, lo as u64, (hi - lo) as u64)?;
                                let (mut block, mut cost) = (vec![], 0.0);
                                while rd.read_block(&mut block, 1 << 16)? > 0 {
                                    cost += run(&block);
                                }
                                Ok(cost)
                            }
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(VecError::Invalid("a GloVe training thread panicked".into()))
                    })
                })
                .sum()
        });
        let cost = total? / n as f64;
        epoch_costs.push(cost);
        progress(&Progress {
            stage: "training",
            epoch: epoch + 1,
            cost,
        });
    }
    stopped()?;
    let train_seconds = t.elapsed().as_secs_f64();
    let w = w.to_vec();
    let mut wv = vec![0f32; v * dim];
    let mut wt = vec![0f32; v * dim];
    for i in 0..v {
        let (word, context) = (i * (dim + 1), (i + v) * (dim + 1));
        wv[i * dim..(i + 1) * dim].copy_from_slice(&w[word..word + dim]);
        wt[i * dim..(i + 1) * dim].copy_from_slice(&w[context..context + dim]);
    }
    Ok(Trained {
        vocab,
        dim,
        w: wv,
        wt,
        nonzeros: n,
        spilled_runs: spilled,
        shuffle_chunks: match &recs {
            Shuffled::Memory(_) => 0,
            Shuffled::Disk { chunks, .. } => *chunks,
        },
        cooccur_seconds,
        shuffle_seconds,
        train_seconds,
        final_cost: epoch_costs.last().copied().unwrap_or(0.0),
        epoch_costs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str, text: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("firth-glove-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn cooccurrence_counts_by_hand() {
        // "a b c" with window 2: (a,b) 1, (b,c) 1, (a,c) 1/2, symmetric; "x" is OOV and skipped;
        // the newline resets the window.
        let p = corpus("co.txt", "a x b c\nc a\n");
        let (v, _) = CountedVocab::count_file(&p, 1, 0, 1000).unwrap();
        let v = CountedVocab::from_counts(
            v.words
                .iter()
                .zip(&v.counts)
                .filter(|(w, _)| *w != "x")
                .map(|(w, c)| (w.as_bytes().to_vec(), *c))
                .collect(),
            1,
            0,
        );
        let id = |w: &str| v.get(w.as_bytes()).unwrap();
        for mem in [1u64 << 30, 64] {
            let (recs, _) = cooccur(&p, &v, 2, mem).unwrap();
            let get = |a: &str, b: &str| {
                recs.iter()
                    .find(|r| r.w1 == id(a) && r.w2 == id(b))
                    .map(|r| r.x)
            };
            assert_eq!(get("a", "b"), Some(1.0));
            assert_eq!(get("b", "a"), Some(1.0));
            assert_eq!(get("a", "c"), Some(1.5)); // 1/2 from line 1, 1 from line 2
            assert_eq!(get("c", "a"), Some(1.5));
            assert_eq!(get("b", "c"), Some(1.0));
            assert_eq!(recs.len(), 6);
        }
    }

    #[test]
    fn spilled_runs_merge_to_the_same_counts() {
        let words: Vec<String> = (0..300).map(|i| format!("w{}", (i * 7919) % 97)).collect();
        let p = corpus("spill.txt", &words.join(" "));
        let (v, _) = CountedVocab::count_file(&p, 1, 0, 1000).unwrap();
        let (mut big, s0) = cooccur(&p, &v, 5, 1 << 30).unwrap();
        let (mut small, s1) = cooccur(&p, &v, 5, 20_000).unwrap();
        assert_eq!(s0, 0);
        assert!(s1 > 0, "the tiny budget must spill");
        let key = |r: &Crec| (r.w1, r.w2);
        big.sort_by_key(key);
        small.sort_by_key(key);
        assert_eq!(big.len(), small.len());
        for (a, b) in big.iter().zip(&small) {
            assert_eq!(key(a), key(b));
            assert!((a.x - b.x).abs() < 1e-4);
        }
    }

    #[test]
    fn training_reduces_cost() {
        let text: String = (0..400)
            .map(|i| ["the cat sat on the mat ", "a dog ran in the park "][i % 2])
            .collect();
        let p = corpus("train.txt", &text);
        let (v, _) = CountedVocab::count_file(&p, 1, 0, 1000).unwrap();
        let mut costs = vec![];
        let cfg = Config {
            dim: 8,
            window: 3,
            epochs: 10,
            threads: 1,
            ..Default::default()
        };
        let t = train(&p, &cfg, v, &mut |p| {
            if p.stage == "training" {
                costs.push(p.cost)
            }
        })
        .unwrap();
        assert_eq!(costs.len(), 10);
        assert!(costs[9] < costs[0] * 0.5, "{costs:?}");
        assert_eq!(t.w.len(), t.vocab.len() * 8);
    }

    /// One record, two AdaGrad steps through the real kernel, against the update rule computed
    /// by hand in f64: d = w·w̃ + b + b̃ - ln x, fd = f(x) d; each vector component moves by
    /// -η·fd·(other vector) / sqrt(G) with G (from 1) += (η·fd·other)², each bias by
    /// -fd / sqrt(G_b) with G_b += fd².
    #[test]
    fn adagrad_steps_match_hand_computation() {
        let (v, dim) = (2usize, 2usize);
        let (x_max, alpha, eta) = (10.0f64, 0.75f64, 0.05f64);
        // Word 0: (0.1, -0.2), bias 0.05; context of word 1 (row v + 1): (0.3, 0.4), bias -0.1.
        let (r1, r2) = (0, 1 + v);
        let start = |r: usize, c: usize| match r {
            0 => [0.1, -0.2, 0.05][c],
            3 => [0.3, 0.4, -0.1][c],
            _ => 0.0,
        };
        let w = HogwildRows::from_fn(2 * v, dim + 1, start);
        let g = HogwildRows::from_fn(2 * v, dim + 1, |_, _| 1.0);
        let rec = [Crec {
            w1: 0,
            w2: 1,
            x: 2.0,
        }];
        let (mut a, mut b) = ([0.1f64, -0.2, 0.05], [0.3f64, 0.4, -0.1]);
        let (mut ga, mut gb) = ([1f64; 3], [1f64; 3]);
        let f = (2.0 / x_max).powf(alpha);
        for _ in 0..2 {
            let cost = epoch_portable(&rec, &w, &g, v, x_max as f32, alpha as f32, eta as f32);
            let d = a[0] * b[0] + a[1] * b[1] + a[2] + b[2] - 2f64.ln();
            let fd = f * d;
            assert!((cost - 0.5 * fd * d).abs() < 1e-6, "{cost}");
            let (a0, b0) = (a, b);
            for k in 0..dim {
                let (ta, tb) = (eta * fd * b0[k], eta * fd * a0[k]);
                a[k] -= ta / ga[k].sqrt();
                b[k] -= tb / gb[k].sqrt();
                ga[k] += ta * ta;
                gb[k] += tb * tb;
            }
            a[2] -= fd / ga[2].sqrt();
            b[2] -= fd / gb[2].sqrt();
            ga[2] += fd * fd;
            gb[2] += fd * fd;
            let (wv, gv) = (w.to_vec(), g.to_vec());
            let at = |r: usize, k: usize| r * (dim + 1) + k;
            for k in 0..3 {
                assert!((wv[at(r1, k)] as f64 - a[k]).abs() < 1e-6, "w {k}");
                assert!((wv[at(r2, k)] as f64 - b[k]).abs() < 1e-6, "w~ {k}");
                assert!((gv[at(r1, k)] as f64 - ga[k]).abs() < 1e-5, "G {k}");
                assert!((gv[at(r2, k)] as f64 - gb[k]).abs() < 1e-5, "G~ {k}");
            }
        }
        // The other rows are untouched.
        let wv = w.to_vec();
        assert!(wv[at_row(1, dim)].iter().all(|&x| x == 0.0));
        assert!(wv[at_row(2, dim)].iter().all(|&x| x == 0.0));
    }

    /// The fused AVX2 kernel writes the bits of the update done in place on plain rows (the
    /// kernel before `HogwildRows`, restated here single-threaded), for widths that end at
    /// every lane of a block and past the 8- and 16-float steps of the dot product.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn fused_avx2_kernel_equals_in_place_update() {
        if !crate::simd::has_avx2() {
            return;
        }
        let v = 5usize;
        let (x_max, alpha, eta) = (10.0f32, 0.75f32, 0.05f32);
        let recs: Vec<Crec> = (0..40u32)
            .map(|i| Crec {
                w1: i % 5,
                w2: (i * 3 + 1) % 5,
                // Some counts above x_max (weight 1), a huge one (steps clipped at ±100).
                x: [0.5, 2.0, 12.0, 1.0 / 3.0, 4e30][i as usize % 5],
            })
            .collect();
        for dim in [1usize, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 31, 50, 100] {
            let stride = dim + 1;
            let start = |r: usize, c: usize| ((r * 131 + c * 7) as f32 * 0.37).sin() * 0.5;
            let gstart = |r: usize, c: usize| 1.0 + ((r + c) % 3) as f32;
            let w = HogwildRows::from_fn(2 * v, stride, start);
            let g = HogwildRows::from_fn(2 * v, stride, gstart);
            let mut pw: Vec<f32> = (0..2 * v * stride)
                .map(|i| start(i / stride, i % stride))
                .collect();
            let mut pg: Vec<f32> = (0..2 * v * stride)
                .map(|i| gstart(i / stride, i % stride))
                .collect();
            let mut want_cost = 0.0f64;
            for c in &recs {
                let (l1, l2) = (c.w1 as usize * stride, (c.w2 as usize + v) * stride);
                // SAFETY: AVX2 and FMA were detected above.
                let dot = unsafe { crate::simd::avx2::dot(&pw[l1..l1 + dim], &pw[l2..l2 + dim]) };
                let diff = dot + pw[l1 + dim] + pw[l2 + dim] - c.x.ln();
                let fx = if c.x > x_max {
                    1.0
                } else {
                    (c.x / x_max).powf(alpha)
                };
                let fdiff = fx * diff;
                want_cost += 0.5 * (fdiff * diff) as f64;
                let mut u = vec![0f32; 2 * dim];
                for b in 0..dim {
                    let t1 = (fdiff * pw[l2 + b]).clamp(-100.0, 100.0) * eta;
                    let t2 = (fdiff * pw[l1 + b]).clamp(-100.0, 100.0) * eta;
                    u[b] = t1 / pg[l1 + b].sqrt();
                    u[dim + b] = t2 / pg[l2 + b].sqrt();
                    pg[l1 + b] += t1 * t1;
                    pg[l2 + b] += t2 * t2;
                }
                for b in 0..dim {
                    pw[l1 + b] -= u[b];
                    pw[l2 + b] -= u[dim + b];
                }
                pw[l1 + dim] -= fdiff / pg[l1 + dim].sqrt();
                pw[l2 + dim] -= fdiff / pg[l2 + dim].sqrt();
                pg[l1 + dim] += fdiff * fdiff;
                pg[l2 + dim] += fdiff * fdiff;
            }
            // SAFETY: AVX2 and FMA were detected above.
            let cost = unsafe { epoch_avx2(&recs, &w, &g, v, x_max, alpha, eta) };
            let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&w.to_vec()), bits(&pw), "w, dim {dim}");
            assert_eq!(bits(&g.to_vec()), bits(&pg), "G, dim {dim}");
            assert_eq!(cost.to_bits(), want_cost.to_bits(), "cost, dim {dim}");
            // The padding stayed zero: a padded read shows it.
            let mut padded = vec![1f32; g.padded_width()];
            g.read(1, &mut padded);
            assert!(padded[stride..].iter().all(|&x| x == 0.0), "dim {dim}");
        }
    }

    /// The elements of row `r` in a `to_vec` of rows [w (dim), b].
    fn at_row(r: usize, dim: usize) -> std::ops::Range<usize> {
        r * (dim + 1)..(r + 1) * (dim + 1)
    }

    fn recs(n: u32) -> Vec<Crec> {
        (0..n)
            .map(|i| Crec {
                w1: i,
                w2: i % 7,
                x: i as f32 * 0.5,
            })
            .collect()
    }

    fn sorted(mut r: Vec<Crec>) -> Vec<Crec> {
        r.sort_by_key(|c| c.w1);
        r
    }

    fn read_all(s: &Shuffled) -> Vec<Crec> {
        match s {
            Shuffled::Memory(r) => r.clone(),
            Shuffled::Disk { path, len, .. } => {
                let mut rd = RecReader::open(path, 0, *len as u64).unwrap();
                let (mut out, mut block) = (vec![], vec![]);
                while rd.read_block(&mut block, 100).unwrap() > 0 {
                    out.extend_from_slice(&block);
                }
                out
            }
        }
    }

    #[test]
    fn shuffle_in_memory_and_spilled_round_trip() {
        let input = recs(1000);
        let dir = TempDir::new("test-shuffle");
        // Fits: shuffled in memory, the same permutation as `shuffle` with the seed.
        let mut sh = Shuffler::new(&dir.0, 5000, 3);
        for &c in &input {
            sh.push(c).unwrap();
        }
        let mem = sh.finish().unwrap();
        assert!(matches!(mem, Shuffled::Memory(_)));
        let mut expect = input.clone();
        shuffle(&mut expect, 3);
        assert_eq!(read_all(&mem), expect);
        // Does not fit: chunks of 64 on disk, merged into one file with every record once.
        let mut sh = Shuffler::new(&dir.0, 64, 3);
        for &c in &input {
            sh.push(c).unwrap();
        }
        let disk = sh.finish().unwrap();
        let Shuffled::Disk { len, chunks, .. } = &disk else {
            panic!("expected a spill")
        };
        assert_eq!((*len, *chunks), (1000, 16));
        let back = read_all(&disk);
        assert_ne!(back, input, "the order must change");
        assert_eq!(sorted(back.clone()), input);
        // Records from the end of the input reach the first part of the output.
        assert!(back[..100].iter().any(|c| c.w1 >= 900));
        // A reader started in the middle sees the tail of the file.
        let Shuffled::Disk { path, .. } = &disk else {
            unreachable!()
        };
        let mut rd = RecReader::open(path, 990, 10).unwrap();
        let mut block = vec![];
        assert_eq!(rd.read_block(&mut block, 100).unwrap(), 10);
        assert_eq!(block, back[990..]);
        assert_eq!(rd.read_block(&mut block, 100).unwrap(), 0);
    }

    #[test]
    fn training_streams_from_disk_under_a_small_budget() {
        let words: Vec<String> = (0..6000)
            .map(|i| format!("w{}", (i * 7919) % 997))
            .collect();
        let p = corpus("disk.txt", &words.join(" "));
        let (v, _) = CountedVocab::count_file(&p, 1, 0, 1000).unwrap();
        let mut costs = vec![];
        let cfg = Config {
            dim: 8,
            window: 5,
            epochs: 5,
            threads: 2,
            memory_bytes: 20_000,
            ..Default::default()
        };
        let t = train(&p, &cfg, v, &mut |p| {
            if p.stage == "training" {
                costs.push(p.cost)
            }
        })
        .unwrap();
        assert!(
            t.shuffle_chunks > 1,
            "the tiny budget must spill the shuffle"
        );
        let (all, _) = cooccur(&p, &t.vocab, 5, 1 << 30).unwrap();
        assert_eq!(t.nonzeros, all.len());
        assert!(costs[4] < costs[0], "{costs:?}");
        assert!(t.w.iter().all(|x| x.is_finite()));
    }
}
