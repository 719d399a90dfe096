//! word2vec: skip-gram and CBOW with negative sampling and/or hierarchical softmax, trained
//! Hogwild-style on several threads, each streaming its own byte slice of the corpus (and
//! replaying the ids it read for later epochs, see [`EpochIds`]).
//!
//! # Objective and gradient
//!
//! For an input vector v (a context word's row of `syn0` in skip-gram, the mean of the context
//! rows in CBOW) and output vectors u_t (rows of `syn1neg` for the true word and the negative
//! samples, or rows of `syn1` for the inner nodes of the word's Huffman path) with labels
//! y_t ∈ {0, 1}, the loss is the logistic loss
//!
//! ```text
//! L = -Σ_t [ y_t log σ(u_t·v) + (1 - y_t) log σ(-u_t·v) ]
//! ```
//!
//! Since d/dx log σ(x) = 1 - σ(x) and d/dx log σ(-x) = -σ(x), each term differentiates to
//!
//! ```text
//! dL/dv   = -Σ_t (y_t - σ(u_t·v)) u_t
//! dL/du_t = -(y_t - σ(u_t·v)) v
//! ```
//!
//! so one SGD step with rate α is `v += Σ_t g_t u_t`, `u_t += g_t v` with
//! `g_t = α (y_t - σ(u_t·v))`, which is what the kernels below compute.
//!
//! # Sharing negatives across a window (skip-gram)
//!
//! word2vec C draws fresh negatives for every (centre, context) pair and updates one pair at a
//! time. Here the k context words of one centre word share the centre's positive and negative
//! output vectors (as in Ji et al., "Parallelizing Word2Vec in Shared and Distributed Memory"):
//! with X the k×d context rows and U the T×d output rows, the scores are S = X Uᵀ, the
//! coefficients G = α (Y - σ(S)), and the updates ΔX = G U, ΔU = Gᵀ X are small matrix
//! products over rows that stay in cache, instead of k·T scattered dot/axpy pairs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::hogwild::HogwildRows;
use crate::huffman::Huffman;
use crate::tokens::{file_len, split_ranges, CountedVocab, Tok, TokenStream};
use crate::VecError;

/// Skip-gram (predict the context from the centre word) or CBOW (the centre from the context).
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    #[cfg_attr(feature = "clap", value(name = "skipgram"))]
    SkipGram,
    Cbow,
}

impl Model {
    /// The starting learning rate when none is given: word2vec C's (its `-alpha` defaults to
    /// 0.05 with `-cbow 1`), so runs compare with it flag for flag.
    pub fn default_alpha(self) -> f32 {
        match self {
            Model::SkipGram => 0.025,
            Model::Cbow => 0.05,
        }
    }
}

/// Training settings; the defaults are word2vec C's.
#[derive(Debug, Clone)]
pub struct Config {
    pub model: Model,
    pub dim: usize,
    pub window: usize,
    pub negative: usize,
    pub hs: bool,
    pub sample: f64,
    pub min_count: u64,
    pub max_vocab: usize,
    pub alpha: f32,
    pub epochs: u32,
    pub threads: usize,
    pub seed: u64,
    /// Prune the counting table when it holds more than this many words.
    pub prune_at: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            model: Model::SkipGram,
            dim: 100,
            window: 5,
            negative: 5,
            hs: false,
            sample: 1e-3,
            min_count: 5,
            max_vocab: 0,
            alpha: Model::SkipGram.default_alpha(),
            epochs: 5,
            threads: 1,
            seed: 1,
            prune_at: 21_000_000,
        }
    }
}

/// Snapshot for progress display.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub words_done: u64,
    pub words_total: u64,
    pub alpha: f32,
    /// Mean loss per (input, true word) example in the current epoch.
    pub loss: f64,
    pub epoch: u32,
    pub elapsed: f64,
}

/// Trained vectors and run figures.
pub struct Trained {
    pub vocab: CountedVocab,
    pub dim: usize,
    /// Input vectors, `vocab.len() × dim`, row-major.
    pub vectors: Vec<f32>,
    pub train_seconds: f64,
    /// Corpus words (in vocabulary, before subsampling) processed over all epochs.
    pub words_processed: u64,
    pub final_loss: f64,
}

const MAX_SENTENCE: usize = 1000;

/// The most word ids (4 bytes each) all threads together keep in memory to replay later epochs:
/// 2^27 ids is 512 MiB, a corpus of 134M in-vocabulary words. See [`EpochIds`].
const REPLAY_IDS: usize = 1 << 27;

/// Marks a line end in a replayed id stream (no vocabulary reaches u32::MAX words).
const LINE_END: u32 = u32::MAX;

/// One training thread's corpus slice as the ids its first epoch read, replayed by the later
/// epochs. Tokenizing and hashing every word again each epoch (as word2vec C does) was a fifth
/// of a skip-gram run's time on gut8; replaying the ids skips it. The replay is the same ids
/// and line ends in the same order, and subsampling still draws afresh per epoch, so a run is
/// unchanged, bit for bit, whether it replays or not. Past its share of [`REPLAY_IDS`] a thread
/// drops what it recorded and reads the file every epoch.
enum EpochIds {
    /// Recording while the first epoch reads the file.
    Recording(Vec<u32>),
    /// Complete: later epochs replay it.
    Ready(Vec<u32>),
    /// Too large to keep (or one epoch only): every epoch reads the file.
    Off,
}
const EXP_TABLE_SIZE: usize = 1000;
const MAX_EXP: f32 = 6.0;

/// σ(x) and -log σ(x) tabulated on [-MAX_EXP, MAX_EXP] (word2vec C's `expTable`).
pub struct SigTable {
    sig: Vec<f32>,
    nlogsig: Vec<f32>,
}

impl Default for SigTable {
    fn default() -> Self {
        Self::new()
    }
}

impl SigTable {
    pub fn new() -> Self {
        let mut sig = Vec::with_capacity(EXP_TABLE_SIZE + 1);
        let mut nlogsig = Vec::with_capacity(EXP_TABLE_SIZE + 1);
        for i in 0..=EXP_TABLE_SIZE {
            let x = (i as f64 / EXP_TABLE_SIZE as f64 * 2.0 - 1.0) * MAX_EXP as f64;
            let s = 1.0 / (1.0 + (-x).exp());
            sig.push(s as f32);
            nlogsig.push(-(s.ln()) as f32);
        }
        SigTable { sig, nlogsig }
    }
    #[inline(always)]
    fn idx(f: f32) -> usize {
        ((f + MAX_EXP) * (EXP_TABLE_SIZE as f32 / MAX_EXP / 2.0)) as usize
    }
    /// σ(f) for |f| < MAX_EXP.
    #[inline(always)]
    pub fn sigmoid(&self, f: f32) -> f32 {
        self.sig[Self::idx(f)]
    }
    /// -log σ(f), with the tails approximated by 0 and -f.
    #[inline(always)]
    pub fn nlog_sigmoid(&self, f: f32) -> f32 {
        if f >= MAX_EXP {
            0.0
        } else if f <= -MAX_EXP {
            -f
        } else {
            self.nlogsig[Self::idx(f)]
        }
    }
    /// Gradient coefficient for negative sampling (word2vec C clipping: outside ±MAX_EXP the
    /// sigmoid is taken as exactly 0 or 1).
    #[inline(always)]
    pub fn neg_coef(&self, f: f32, label: f32) -> f32 {
        if f > MAX_EXP {
            label - 1.0
        } else if f < -MAX_EXP {
            label
        } else {
            label - self.sigmoid(f)
        }
    }
    /// -log of the probability of `label` given score f.
    #[inline(always)]
    pub fn loss(&self, f: f32, label: f32) -> f32 {
        if label > 0.5 {
            self.nlog_sigmoid(f)
        } else {
            self.nlog_sigmoid(-f)
        }
    }
}

/// The loss of the docs above in f64 (for tests and reference).
pub fn logistic_loss(v: &[f64], outs: &[Vec<f64>], labels: &[f64]) -> f64 {
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    outs.iter()
        .zip(labels)
        .map(|(u, &y)| {
            let s: f64 = u.iter().zip(v).map(|(a, b)| a * b).sum();
            -(y * sig(s).ln() + (1.0 - y) * sig(-s).ln())
        })
        .sum()
}

/// Its analytic gradient: (dL/dv, [dL/du_t]) = (-Σ (y-σ) u_t, [-(y-σ) v]).
pub fn logistic_grad(v: &[f64], outs: &[Vec<f64>], labels: &[f64]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let mut dv = vec![0.0; v.len()];
    let mut du = vec![];
    for (u, &y) in outs.iter().zip(labels) {
        let s: f64 = u.iter().zip(v).map(|(a, b)| a * b).sum();
        let c = -(y - sig(s));
        for (d, ui) in dv.iter_mut().zip(u) {
            *d += c * ui;
        }
        du.push(v.iter().map(|vi| c * vi).collect());
    }
    (dv, du)
}

/// Scratch buffers of one thread.
#[derive(Default)]
pub struct Scratch {
    xbuf: Vec<f32>, // (k, dim) context rows as they were before this update
    ubuf: Vec<f32>, // (T, dim) output rows as they were before this update
    g: Vec<f32>,    // (k, T) coefficients
    row: Vec<f32>,  // (dim) the row being updated
    neu1: Vec<f32>,
    neu1e: Vec<f32>,
}

/// Skip-gram kernel signature: (syn0, out, context ids, target ids, labels, alpha,
/// hierarchical?, table, scratch) -> loss.
type SgFn = unsafe fn(
    &HogwildRows,
    &HogwildRows,
    &[u32],
    &[u32],
    &[f32],
    f32,
    bool,
    &SigTable,
    &mut Scratch,
) -> f64;

/// CBOW kernel signature: (syn0, syn1neg, syn1, context, neg targets, neg labels, hs points,
/// hs codes, alpha, table, scratch) -> loss.
type CbowFn = unsafe fn(
    &HogwildRows,
    &HogwildRows,
    &HogwildRows,
    &[u32],
    &[u32],
    &[f32],
    &[u32],
    &[u8],
    f32,
    &SigTable,
    &mut Scratch,
) -> f64;

macro_rules! kernels {
    ($modname:ident, $dot:path, $axpy:path, $read:path, $write:path, $add_into:path, $axpy_shared:path $(, #[$attr:meta])*) => {
        pub mod $modname {
            use super::*;

            /// Batched skip-gram update of k context rows of `syn0` against T output rows of
            /// `out` (see the module docs: S = X Uᵀ, G = α(Y - σ(S)), ΔX = G U, ΔU = Gᵀ X).
            /// With `hs`, pairs whose score is outside ±MAX_EXP are skipped, as word2vec C does.
            /// X and U are copied out of the shared rows first (see [`HogwildRows`]).
            ///
            /// # Safety
            /// The CPU must have the target features the kernel is compiled for. Ids must be
            /// valid rows (an invalid one panics).
            $(#[$attr])*
            #[allow(clippy::too_many_arguments)]
            pub unsafe fn sg(
                syn0: &HogwildRows,
                out: &HogwildRows,
                ctx: &[u32],
                tgt: &[u32],
                lab: &[f32],
                alpha: f32,
                hs: bool,
                tab: &SigTable,
                s: &mut Scratch,
            ) -> f64 {
                let dim = syn0.width();
                let (k, t) = (ctx.len(), tgt.len());
                s.xbuf.resize(k * dim, 0.0);
                s.ubuf.resize(t * dim, 0.0);
                s.g.resize(k * t, 0.0);
                s.row.resize(dim, 0.0);
                // Start fetching every row before copying the first, so their cache misses
                // overlap.
                for &u in tgt {
                    out.prefetch(u as usize);
                }
                for (i, &c) in ctx.iter().enumerate() {
                    $read(syn0, c as usize, &mut s.xbuf[i * dim..(i + 1) * dim]);
                }
                for (j, &u) in tgt.iter().enumerate() {
                    $read(out, u as usize, &mut s.ubuf[j * dim..(j + 1) * dim]);
                }
                let mut loss = 0.0f64;
                for i in 0..k {
                    let x = &s.xbuf[i * dim..(i + 1) * dim];
                    for j in 0..t {
                        let f = $dot(x, &s.ubuf[j * dim..(j + 1) * dim]);
                        let g = if hs {
                            if f <= -MAX_EXP || f >= MAX_EXP {
                                0.0
                            } else {
                                lab[j] - tab.sigmoid(f)
                            }
                        } else {
                            tab.neg_coef(f, lab[j])
                        };
                        loss += tab.loss(f, lab[j]) as f64;
                        s.g[i * t + j] = g * alpha;
                    }
                }
                // ΔX = G U with the old U, then ΔU = Gᵀ X with the old X. Each row's update is
                // summed on a copy of the row (the one taken above, or a fresh one where the
                // word came earlier in the list and its row has changed since) and written
                // back once: the same operations, in the same order, as updating it in place.
                for i in 0..k {
                    let gi = &s.g[i * t..(i + 1) * t];
                    if gi.iter().all(|&g| g == 0.0) {
                        continue;
                    }
                    if ctx[..i].contains(&ctx[i]) {
                        $read(syn0, ctx[i] as usize, &mut s.row);
                    } else {
                        s.row.copy_from_slice(&s.xbuf[i * dim..(i + 1) * dim]);
                    }
                    for (j, &g) in gi.iter().enumerate() {
                        if g != 0.0 {
                            $axpy(g, &s.ubuf[j * dim..(j + 1) * dim], &mut s.row);
                        }
                    }
                    $write(syn0, ctx[i] as usize, &s.row);
                }
                for j in 0..t {
                    if (0..k).all(|i| s.g[i * t + j] == 0.0) {
                        continue;
                    }
                    if tgt[..j].contains(&tgt[j]) {
                        $read(out, tgt[j] as usize, &mut s.row);
                    } else {
                        s.row.copy_from_slice(&s.ubuf[j * dim..(j + 1) * dim]);
                    }
                    for i in 0..k {
                        let g = s.g[i * t + j];
                        if g != 0.0 {
                            $axpy(g, &s.xbuf[i * dim..(i + 1) * dim], &mut s.row);
                        }
                    }
                    $write(out, tgt[j] as usize, &s.row);
                }
                loss
            }

            /// CBOW update (word2vec C with `cbow_mean`): h = mean of the context rows,
            /// e = Σ_t g_t u_t over the Huffman nodes and the negatives, u_t += g_t h, and every
            /// context row += e (dL/dx_c = dL/dh / k, but C applies e unscaled; we follow C).
            ///
            /// # Safety
            /// As for `sg`.
            $(#[$attr])*
            #[allow(clippy::too_many_arguments)]
            pub unsafe fn cbow(
                syn0: &HogwildRows,
                syn1neg: &HogwildRows,
                syn1: &HogwildRows,
                ctx: &[u32],
                tgt: &[u32],
                lab: &[f32],
                points: &[u32],
                codes: &[u8],
                alpha: f32,
                tab: &SigTable,
                s: &mut Scratch,
            ) -> f64 {
                let dim = syn0.width();
                s.row.resize(dim, 0.0);
                s.neu1.clear();
                s.neu1.resize(dim, 0.0);
                s.neu1e.clear();
                s.neu1e.resize(dim, 0.0);
                // Start fetching the output rows now, so their cache misses overlap.
                for &p in points {
                    syn1.prefetch(p as usize);
                }
                for &u in tgt {
                    syn1neg.prefetch(u as usize);
                }
                // h += x_c: the same sums as axpy with a = 1 (a fused 1·x + h rounds once too).
                for &c in ctx {
                    $add_into(syn0, c as usize, &mut s.neu1);
                }
                let inv = 1.0 / ctx.len() as f32;
                for h in s.neu1.iter_mut() {
                    *h *= inv;
                }
                let mut loss = 0.0f64;
                for (&p, &code) in points.iter().zip(codes) {
                    $read(syn1, p as usize, &mut s.row);
                    let f = $dot(&s.neu1, &s.row);
                    let label = 1.0 - code as f32;
                    loss += tab.loss(f, label) as f64;
                    if f <= -MAX_EXP || f >= MAX_EXP {
                        continue;
                    }
                    let g = (label - tab.sigmoid(f)) * alpha;
                    $axpy(g, &s.row, &mut s.neu1e);
                    $axpy(g, &s.neu1, &mut s.row);
                    $write(syn1, p as usize, &s.row);
                }
                for (&t, &l) in tgt.iter().zip(lab) {
                    $read(syn1neg, t as usize, &mut s.row);
                    let f = $dot(&s.neu1, &s.row);
                    loss += tab.loss(f, l) as f64;
                    let g = tab.neg_coef(f, l) * alpha;
                    $axpy(g, &s.row, &mut s.neu1e);
                    $axpy(g, &s.neu1, &mut s.row);
                    $write(syn1neg, t as usize, &s.row);
                }
                for &c in ctx {
                    $axpy_shared(syn0, c as usize, 1.0, &s.neu1e);
                }
                loss
            }
        }
    };
}

kernels!(
    portable,
    crate::simd::dot_portable,
    crate::simd::axpy_portable,
    HogwildRows::read,
    HogwildRows::write,
    HogwildRows::add_into,
    HogwildRows::axpy
);
#[cfg(target_arch = "x86_64")]
kernels!(
    avx2k,
    crate::simd::avx2::dot,
    crate::simd::avx2::axpy,
    crate::hogwild::avx::read,
    crate::hogwild::avx::write,
    crate::hogwild::avx::add_into,
    crate::hogwild::avx::axpy,
    #[target_feature(enable = "avx2,fma")]
);

fn pick_kernels() -> (SgFn, CbowFn) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx2() {
        return (avx2k::sg, avx2k::cbow);
    }
    (portable::sg, portable::cbow)
}

/// word2vec C's linear congruential generator (fast, and good enough for sampling).
#[derive(Clone, Copy)]
pub struct Lcg(pub u64);
impl Lcg {
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(25_214_903_917).wrapping_add(11);
        self.0
    }
}

/// Probability of keeping an occurrence of a word with count `cn` out of `total` words under
/// subsampling threshold `sample` (word2vec C): p = (sqrt(cn / (s·N)) + 1) · (s·N) / cn,
/// capped at 1. With `sample <= 0` every word is kept.
pub fn keep_probability(cn: u64, total: u64, sample: f64) -> f64 {
    if sample <= 0.0 {
        return 1.0;
    }
    let t = sample * total as f64;
    let cn = cn as f64;
    (((cn / t).sqrt() + 1.0) * t / cn).min(1.0)
}

/// Table for drawing negatives with probability ∝ count^0.75 (word2vec C's `InitUnigramTable`).
pub fn unigram_table(counts: &[u64], size: usize) -> Vec<u32> {
    let power = 0.75;
    let total: f64 = counts.iter().map(|&c| (c as f64).powf(power)).sum();
    let mut table = Vec::with_capacity(size);
    let mut i = 0usize;
    let mut d1 = (counts[0] as f64).powf(power) / total;
    for a in 0..size {
        table.push(i as u32);
        if a as f64 / size as f64 > d1 && i + 1 < counts.len() {
            i += 1;
            d1 += (counts[i] as f64).powf(power) / total;
        }
    }
    table
}

struct ThreadStat {
    loss_bits: AtomicU64,
    pairs: AtomicU64,
    epoch: AtomicU64,
}

/// Trains on `input` with a vocabulary counted beforehand. `progress` is called from the
/// calling thread about five times a second.
pub fn train(
    input: &Path,
    cfg: &Config,
    vocab: CountedVocab,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Trained, VecError> {
    train_until(input, cfg, vocab, &AtomicBool::new(false), progress)
}

/// [`train`] that ends early with [`VecError::Stopped`] once `stop` is set (by `progress`, or
/// by another thread): a caller that must stay responsive (Python's Ctrl-C) sets it. Every
/// training thread looks at it once per sentence, so the run ends within a few milliseconds.
pub fn train_until(
    input: &Path,
    cfg: &Config,
    vocab: CountedVocab,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Trained, VecError> {
    train_replaying(input, cfg, vocab, stop, progress, REPLAY_IDS)
}

/// [`train_until`] keeping at most `replay_ids` ids in memory for later epochs ([`EpochIds`]).
fn train_replaying(
    input: &Path,
    cfg: &Config,
    vocab: CountedVocab,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
    replay_ids: usize,
) -> Result<Trained, VecError> {
    if vocab.is_empty() {
        return Err(VecError::Invalid("empty vocabulary".into()));
    }
    if cfg.dim == 0 || cfg.window == 0 || cfg.epochs == 0 {
        return Err(VecError::Invalid(
            "--dim, --window and --epochs must be positive".into(),
        ));
    }
    if cfg.negative == 0 && !cfg.hs {
        return Err(VecError::Invalid("need --negative > 0 or --hs".into()));
    }
    let v = vocab.len();
    let dim = cfg.dim;
    let threads = cfg.threads.max(1);
    let train_words = vocab.total();
    let mut rng = Lcg(cfg.seed);
    // Row-major in the order word2vec C initialises them, so a seed gives C's start.
    let syn0 = HogwildRows::from_fn(v, dim, |_, _| {
        (((rng.next_u64() & 0xFFFF) as f32 / 65536.0) - 0.5) / dim as f32
    });
    let syn1neg = HogwildRows::from_fn(if cfg.negative > 0 { v } else { 1 }, dim, |_, _| 0.0);
    let syn1 = HogwildRows::from_fn(if cfg.hs { v.max(2) } else { 1 }, dim, |_, _| 0.0);
    let huff = if cfg.hs {
        Huffman::build(&vocab.counts)
    } else {
        Huffman::default()
    };
    let table_size = (v * 100).clamp(10_000_000, 100_000_000);
    let table = if cfg.negative > 0 {
        unigram_table(&vocab.counts, table_size)
    } else {
        vec![]
    };
    // Subsampling thresholds as 16-bit fixed point, compared with 16 random bits (as in C).
    let keep: Vec<u32> = vocab
        .counts
        .iter()
        .map(|&c| {
            if cfg.sample > 0.0 {
                (keep_probability(c, train_words, cfg.sample) * 65536.0) as u32
            } else {
                65536
            }
        })
        .collect();
    let len = file_len(input)?;
    let ranges = split_ranges(len, threads);
    let (sg_k, cbow_k) = pick_kernels();
    let tab = SigTable::new();
    let word_count_actual = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let stats: Vec<ThreadStat> = (0..threads)
        .map(|_| ThreadStat {
            loss_bits: AtomicU64::new(0),
            pairs: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
        })
        .collect();
    let total_words = cfg.epochs as u64 * train_words;
    let start = Instant::now();
    let alpha_now = |wca: u64| -> f32 {
        let a = cfg.alpha * (1.0 - wca as f32 / (total_words as f32 + 1.0));
        a.max(cfg.alpha * 1e-4)
    };

    let result: Result<(), VecError> = std::thread::scope(|scope| {
        let mut handles = vec![];
        for (tid, &(rs, re)) in ranges.iter().enumerate() {
            let (syn0, syn1neg, syn1) = (&syn0, &syn1neg, &syn1);
            let (vocab, keep, table, huff, tab) = (&vocab, &keep, &table, &huff, &tab);
            let (wca, st) = (&word_count_actual, &stats[tid]);
            let alpha_now = &alpha_now;
            handles.push(scope.spawn(move || -> Result<(), VecError> {
                let mut rng = Lcg(cfg.seed.wrapping_add(tid as u64));
                let mut scratch = Scratch::default();
                let mut sen: Vec<u32> = Vec::with_capacity(MAX_SENTENCE);
                let mut ctx: Vec<u32> = Vec::with_capacity(2 * cfg.window);
                let mut tgt: Vec<u32> = Vec::with_capacity(cfg.negative + 1);
                let mut lab: Vec<f32> = Vec::with_capacity(cfg.negative + 1);
                let mut word_count = 0u64;
                let mut last_word_count = 0u64;
                let mut alpha = cfg.alpha;
                let empty_p: &[u32] = &[];
                let empty_c: &[u8] = &[];
                let replay_cap = replay_ids / threads;
                let mut ids = if cfg.epochs > 1 {
                    EpochIds::Recording(Vec::new())
                } else {
                    EpochIds::Off
                };
                for epoch in 0..cfg.epochs {
                    let mut loss = 0.0f64;
                    let mut pairs = 0u64;
                    st.epoch.store(epoch as u64, Ordering::Relaxed);
                    // This epoch reads the file, or replays (and then hands back) the ids.
                    let mut replay = match std::mem::replace(&mut ids, EpochIds::Off) {
                        EpochIds::Ready(v) => Ok((v, 0usize)),
                        other => {
                            ids = other;
                            Err(TokenStream::open(input, rs, re)?)
                        }
                    };
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        sen.clear();
                        let mut ended = false;
                        while sen.len() < MAX_SENTENCE {
                            // The next id, or LINE_END; None at the end of the slice.
                            let next = match &mut replay {
                                Ok((v, at)) => {
                                    *at += 1;
                                    v.get(*at - 1).copied()
                                }
                                Err(ts) => {
                                    let id =
                                        match ts.next_tok().map_err(|e| VecError::io(input, e))? {
                                            None => None,
                                            Some(Tok::Newline) => Some(LINE_END),
                                            Some(Tok::Word(w)) => match vocab.get(w) {
                                                Some(id) => Some(id),
                                                None => continue,
                                            },
                                        };
                                    if let (EpochIds::Recording(v), Some(id)) = (&mut ids, id) {
                                        if v.len() < replay_cap {
                                            v.push(id);
                                        } else {
                                            ids = EpochIds::Off;
                                        }
                                    }
                                    id
                                }
                            };
                            match next {
                                None => {
                                    ended = true;
                                    break;
                                }
                                Some(LINE_END) => break,
                                Some(id) => {
                                    word_count += 1;
                                    let k = keep[id as usize];
                                    if k < 65536 && k < (rng.next_u64() & 0xFFFF) as u32 {
                                        continue;
                                    }
                                    sen.push(id);
                                }
                            }
                        }
                        if word_count - last_word_count > 10_000 {
                            let w = wca.fetch_add(word_count - last_word_count, Ordering::Relaxed)
                                + (word_count - last_word_count);
                            last_word_count = word_count;
                            alpha = alpha_now(w);
                            st.loss_bits
                                .store((loss / pairs.max(1) as f64).to_bits(), Ordering::Relaxed);
                            st.pairs.store(pairs, Ordering::Relaxed);
                        }
                        for pos in 0..sen.len() {
                            let word = sen[pos];
                            let b = (rng.next_u64() % cfg.window as u64) as usize;
                            ctx.clear();
                            for a in b..cfg.window * 2 + 1 - b {
                                if a == cfg.window {
                                    continue;
                                }
                                let c = pos as isize - cfg.window as isize + a as isize;
                                if c < 0 || c >= sen.len() as isize {
                                    continue;
                                }
                                ctx.push(sen[c as usize]);
                            }
                            if ctx.is_empty() {
                                continue;
                            }
                            tgt.clear();
                            lab.clear();
                            if cfg.negative > 0 {
                                tgt.push(word);
                                lab.push(1.0);
                                for _ in 0..cfg.negative {
                                    let r = rng.next_u64();
                                    let t = table[((r >> 16) % table.len() as u64) as usize];
                                    if t == word {
                                        continue;
                                    }
                                    tgt.push(t);
                                    lab.push(0.0);
                                }
                            }
                            // SAFETY: `pick_kernels` chose kernels this CPU can run. (Rows are
                            // shared through `HogwildRows`, which needs no unsafe.)
                            unsafe {
                                match cfg.model {
                                    Model::SkipGram => {
                                        if cfg.hs {
                                            let p = &huff.points[word as usize];
                                            let labs: Vec<f32> = huff.codes[word as usize]
                                                .iter()
                                                .map(|&c| 1.0 - c as f32)
                                                .collect();
                                            loss += sg_k(
                                                syn0,
                                                syn1,
                                                &ctx,
                                                p,
                                                &labs,
                                                alpha,
                                                true,
                                                tab,
                                                &mut scratch,
                                            );
                                        }
                                        if cfg.negative > 0 {
                                            loss += sg_k(
                                                syn0,
                                                syn1neg,
                                                &ctx,
                                                &tgt,
                                                &lab,
                                                alpha,
                                                false,
                                                tab,
                                                &mut scratch,
                                            );
                                        }
                                        pairs += ctx.len() as u64;
                                    }
                                    Model::Cbow => {
                                        let (p, c) = if cfg.hs {
                                            (
                                                &huff.points[word as usize][..],
                                                &huff.codes[word as usize][..],
                                            )
                                        } else {
                                            (empty_p, empty_c)
                                        };
                                        loss += cbow_k(
                                            syn0,
                                            syn1neg,
                                            syn1,
                                            &ctx,
                                            &tgt,
                                            &lab,
                                            p,
                                            c,
                                            alpha,
                                            tab,
                                            &mut scratch,
                                        );
                                        pairs += 1;
                                    }
                                }
                            }
                        }
                        if ended {
                            break;
                        }
                    }
                    st.loss_bits
                        .store((loss / pairs.max(1) as f64).to_bits(), Ordering::Relaxed);
                    st.pairs.store(pairs, Ordering::Relaxed);
                    ids = match (ids, replay) {
                        (_, Ok((v, _))) => EpochIds::Ready(v),
                        (EpochIds::Recording(v), Err(_)) => EpochIds::Ready(v),
                        (other, Err(_)) => other,
                    };
                }
                wca.fetch_add(word_count - last_word_count, Ordering::Relaxed);
                Ok(())
            }));
        }
        // Progress reporting from the calling thread.
        let report = |progress: &mut dyn FnMut(&Progress)| {
            let wca = word_count_actual.load(Ordering::Relaxed);
            let mut loss = 0.0;
            let mut n = 0.0;
            for s in &stats {
                if s.pairs.load(Ordering::Relaxed) > 0 {
                    loss += f64::from_bits(s.loss_bits.load(Ordering::Relaxed));
                    n += 1.0;
                }
            }
            progress(&Progress {
                words_done: wca.min(total_words),
                words_total: total_words,
                alpha: alpha_now(wca),
                loss: if n > 0.0 { loss / n } else { 0.0 },
                epoch: stats
                    .iter()
                    .map(|s| s.epoch.load(Ordering::Relaxed))
                    .min()
                    .unwrap_or(0) as u32,
                elapsed: start.elapsed().as_secs_f64(),
            });
        };
        while !handles.iter().all(|h| h.is_finished()) {
            report(progress);
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        report(progress);
        done.store(true, Ordering::Relaxed);
        let mut res = Ok(());
        for h in handles {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => res = Err(e),
                Err(_) => res = Err(VecError::Invalid("a training thread panicked".into())),
            }
        }
        res
    });
    result?;
    if stop.load(Ordering::Relaxed) {
        return Err(VecError::Stopped);
    }
    let train_seconds = start.elapsed().as_secs_f64();
    let mut final_loss = 0.0;
    let mut n = 0.0;
    for s in &stats {
        if s.pairs.load(Ordering::Relaxed) > 0 {
            final_loss += f64::from_bits(s.loss_bits.load(Ordering::Relaxed));
            n += 1.0;
        }
    }
    drop(syn1neg);
    drop(syn1);
    let syn0 = syn0.to_vec();
    Ok(Trained {
        vocab,
        dim,
        vectors: syn0,
        train_seconds,
        words_processed: word_count_actual.load(Ordering::Relaxed),
        final_loss: if n > 0.0 { final_loss / n } else { 0.0 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let v: Vec<f64> = (0..7).map(|i| (i as f64 * 0.7).sin() * 0.5).collect();
        let outs: Vec<Vec<f64>> = (0..4)
            .map(|t| {
                (0..7)
                    .map(|i| ((i * 3 + t * 5) as f64 * 0.3).cos() * 0.4)
                    .collect()
            })
            .collect();
        let labels = [1.0, 0.0, 0.0, 0.0];
        let (dv, du) = logistic_grad(&v, &outs, &labels);
        let h = 1e-6;
        for i in 0..v.len() {
            let mut vp = v.clone();
            vp[i] += h;
            let mut vm = v.clone();
            vm[i] -= h;
            let fd = (logistic_loss(&vp, &outs, &labels) - logistic_loss(&vm, &outs, &labels))
                / (2.0 * h);
            assert!((fd - dv[i]).abs() < 1e-8, "dv[{i}] {fd} vs {}", dv[i]);
        }
        for t in 0..outs.len() {
            for i in 0..v.len() {
                let mut op = outs.clone();
                op[t][i] += h;
                let mut om = outs.clone();
                om[t][i] -= h;
                let fd =
                    (logistic_loss(&v, &op, &labels) - logistic_loss(&v, &om, &labels)) / (2.0 * h);
                assert!((fd - du[t][i]).abs() < 1e-8, "du[{t}][{i}]");
            }
        }
    }

    /// One step of the real (f32, tabulated-sigmoid) kernel moves every parameter by
    /// -α·∂L/∂θ, where ∂L/∂θ is the finite-difference gradient of the f64 loss.
    #[test]
    fn kernel_step_is_minus_alpha_gradient() {
        let dim = 9;
        let ctx_rows = 3usize;
        let x0: Vec<f32> = (0..ctx_rows * dim)
            .map(|i| ((i as f32) * 0.61).sin() * 0.3)
            .collect();
        let u0: Vec<f32> = (0..4 * dim)
            .map(|i| ((i as f32) * 0.23).cos() * 0.3)
            .collect();
        let ctx = [0u32, 1, 2];
        let tgt = [0u32, 1, 2, 3];
        let lab = [1.0f32, 0.0, 0.0, 0.0];
        let alpha = 1e-3f32;
        let tab = SigTable::new();
        let mut s = Scratch::default();
        for (sgk, _) in [
            pick_kernels(),
            (portable::sg as SgFn, portable::cbow as CbowFn),
        ] {
            let syn0_rows = HogwildRows::from_fn(ctx_rows, dim, |r, c| x0[r * dim + c]);
            let out_rows = HogwildRows::from_fn(4, dim, |r, c| u0[r * dim + c]);
            // SAFETY: `pick_kernels` chose kernels this CPU can run.
            unsafe {
                sgk(
                    &syn0_rows, &out_rows, &ctx, &tgt, &lab, alpha, false, &tab, &mut s,
                )
            };
            let (syn0, out) = (syn0_rows.to_vec(), out_rows.to_vec());
            let f64row = |m: &[f32], r: usize| -> Vec<f64> {
                m[r * dim..(r + 1) * dim]
                    .iter()
                    .map(|&x| x as f64)
                    .collect()
            };
            let outs: Vec<Vec<f64>> = (0..4).map(|t| f64row(&u0, t)).collect();
            let labs: Vec<f64> = lab.iter().map(|&l| l as f64).collect();
            let mut du_total = vec![vec![0.0; dim]; 4];
            for c in 0..ctx_rows {
                let (dv, du) = logistic_grad(&f64row(&x0, c), &outs, &labs);
                for i in 0..dim {
                    let step = (syn0[c * dim + i] - x0[c * dim + i]) as f64;
                    // Tabulated sigmoid: error up to ~0.003 in each coefficient.
                    assert!(
                        (step + alpha as f64 * dv[i]).abs() < alpha as f64 * 0.02,
                        "x{c}[{i}]"
                    );
                }
                for t in 0..4 {
                    for i in 0..dim {
                        du_total[t][i] += du[t][i];
                    }
                }
            }
            for t in 0..4 {
                for i in 0..dim {
                    let step = (out[t * dim + i] - u0[t * dim + i]) as f64;
                    assert!(
                        (step + alpha as f64 * du_total[t][i]).abs() < alpha as f64 * 0.03,
                        "u{t}[{i}]"
                    );
                }
            }
        }
    }

    #[test]
    fn subsampling_keep_probability() {
        // N = 1e6, s = 1e-3: t = 1000. A word with count 1e4 (f = 0.01):
        // p = (sqrt(10/1) ... ) = (sqrt(1e4/1e3) + 1) * 1e3 / 1e4 = (3.16227766 + 1) / 10.
        let p = keep_probability(10_000, 1_000_000, 1e-3);
        assert!((p - 0.416227766016838).abs() < 1e-12, "{p}");
        // Rare words are always kept.
        assert_eq!(keep_probability(100, 1_000_000, 1e-3), 1.0);
        assert_eq!(keep_probability(10_000, 1_000_000, 0.0), 1.0);
    }

    #[test]
    fn unigram_table_follows_power() {
        let counts = [16u64, 1];
        let t = unigram_table(&counts, 100_000);
        let zeros = t.iter().filter(|&&x| x == 0).count() as f64 / t.len() as f64;
        // 16^0.75 = 8 -> P(0) = 8/9.
        assert!((zeros - 8.0 / 9.0).abs() < 1e-3, "{zeros}");
    }

    fn topic_corpus() -> std::path::PathBuf {
        // Two topics whose words never share a sentence.
        let mut rng = Lcg(7);
        let mut text = String::new();
        for line in 0..400 {
            let t = if line % 2 == 0 { 'a' } else { 'b' };
            for _ in 0..30 {
                text.push_str(&format!("{t}{} ", rng.next_u64() >> 16 & 7));
            }
            text.push('\n');
        }
        let d = std::env::temp_dir().join(format!("firth-w2v-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("topics.txt");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn cos(v: &[f32], d: usize, i: usize, j: usize) -> f32 {
        let (a, b) = (&v[i * d..(i + 1) * d], &v[j * d..(j + 1) * d]);
        crate::simd::dot(a, b) / (crate::simd::dot(a, a).sqrt() * crate::simd::dot(b, b).sqrt())
    }

    /// Replaying the first epoch's ids gives the run that reads the file every epoch, bit for
    /// bit: with out-of-vocabulary words, short and long lines (past MAX_SENTENCE), subsampling,
    /// and a cap that stops the recording part-way.
    #[test]
    fn replaying_ids_changes_nothing() {
        let mut rng = Lcg(3);
        let mut text = String::new();
        for line in 0..60 {
            let len = if line == 7 {
                2500
            } else {
                1 + (rng.next_u64() >> 20) as usize % 40
            };
            for _ in 0..len {
                // Ids 0..40 by a skewed law, so some words fall under min_count 3.
                let r = (rng.next_u64() >> 20) % 1600;
                text.push_str(&format!("w{} ", (r as f64).sqrt() as u64));
            }
            text.push('\n');
        }
        let d = std::env::temp_dir().join(format!("firth-w2v-replay-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("replay.txt");
        std::fs::write(&p, text).unwrap();
        let (v, _) = CountedVocab::count_file(&p, 3, 0, 1000).unwrap();
        assert!(v.len() < 40, "some words must be out of vocabulary");
        for model in [Model::SkipGram, Model::Cbow] {
            let cfg = Config {
                model,
                dim: 8,
                window: 3,
                min_count: 3,
                sample: 1e-2,
                epochs: 3,
                threads: 1,
                seed: 5,
                ..Default::default()
            };
            let run = |cap| {
                train_replaying(
                    &p,
                    &cfg,
                    v.clone(),
                    &AtomicBool::new(false),
                    &mut |_| {},
                    cap,
                )
                .unwrap()
            };
            let streamed = run(0);
            for cap in [REPLAY_IDS, 500] {
                let t = run(cap);
                assert_eq!(t.vectors, streamed.vectors, "{model:?} cap {cap}");
                assert_eq!(t.words_processed, streamed.words_processed);
            }
        }
        std::fs::remove_dir_all(d).ok();
    }

    #[test]
    fn learns_topics_and_seed_is_exact_with_one_thread() {
        let p = topic_corpus();
        for (model, negative, hs) in [
            (Model::SkipGram, 5, false),
            (Model::Cbow, 5, false),
            (Model::SkipGram, 0, true),
            (Model::Cbow, 0, true),
        ] {
            let cfg = Config {
                model,
                negative,
                hs,
                dim: 16,
                window: 3,
                min_count: 1,
                sample: 0.0,
                epochs: 3,
                threads: 1,
                seed: 42,
                ..Default::default()
            };
            let (v, _) = CountedVocab::count_file(&p, 1, 0, 1000).unwrap();
            let t1 = train(&p, &cfg, v.clone(), &mut |_| {}).unwrap();
            let t2 = train(&p, &cfg, v.clone(), &mut |_| {}).unwrap();
            assert_eq!(
                t1.vectors, t2.vectors,
                "{model:?} seed must be exact with one thread"
            );
            assert_eq!(t1.words_processed, 3 * 400 * 30);
            let id = |w: &str| v.get(w.as_bytes()).unwrap() as usize;
            let (mut same, mut diff) = (0.0, 0.0);
            for i in 0..8 {
                for j in 0..8 {
                    if i != j {
                        same += cos(&t1.vectors, 16, id(&format!("a{i}")), id(&format!("a{j}")));
                    }
                    diff += cos(&t1.vectors, 16, id(&format!("a{i}")), id(&format!("b{j}")));
                }
            }
            let (same, diff) = (same / 56.0, diff / 64.0);
            assert!(
                same > diff + 0.3,
                "{model:?} neg {negative} hs {hs}: same-topic {same} vs cross-topic {diff}"
            );
            // Two threads run (Hogwild) and give vectors of the same quality shape.
            let cfg2 = Config { threads: 2, ..cfg };
            let t3 = train(&p, &cfg2, v, &mut |_| {}).unwrap();
            assert_eq!(t3.words_processed, 3 * 400 * 30);
        }
    }

    #[test]
    fn sigmoid_table() {
        let t = SigTable::new();
        for &x in &[-5.9f32, -1.0, 0.0, 0.5, 3.0] {
            let s = 1.0 / (1.0 + (-x).exp());
            assert!((t.sigmoid(x) - s).abs() < 0.01);
        }
    }
}
