//! Estimating a model from counts: interpolated modified Kneser-Ney (KenLM's `lmplz`), add-k,
//! and stupid backoff.
//!
//! **Modified Kneser-Ney.** For each order n, with `t_k` the number of n-grams whose adjusted
//! count is exactly k, the discounts are the closed form of Chen and Goodman (1998, eq. 26):
//!
//! ```text
//! Y = t_1 / (t_1 + 2 t_2)        D_k = k - (k + 1) Y t_{k+1} / t_k    for k = 1, 2, 3 (3 = "3+")
//! ```
//!
//! computed in `f32` in the same order of operations as KenLM, so models agree to the last bit.
//! For a context h with adjusted counts a(h w):
//!
//! ```text
//! p(w | h) = (a(h w) - D(a(h w))) / sum_x a(h x)  +  gamma(h) p(w | h')
//! gamma(h) = (D_1 N_1(h) + D_2 N_2(h) + D_3 N_3+(h) + pruned mass) / sum_x a(h x)
//! ```
//!
//! where h' drops the first word of h, `N_k(h)` counts the kept words after h with adjusted count
//! k (3 = 3 or more), and "pruned mass" is the adjusted count of pruned n-grams after h, so the
//! distribution still sums to one after pruning. Unigrams interpolate with the uniform
//! distribution over the vocabulary without `<s>`; `<unk>` gets only that interpolated mass.
//! `gamma(h)` is h's backoff in the ARPA file; `<s>` has probability 1 (log 0) so that scoring it
//! changes nothing.

use crate::arpa::{push_line, push_words};
use crate::corpus::Corpus;
use crate::count::{self, CountOptions, OrderCounts, Packing};
use crate::hash;
use crate::model::{Entry, Model, Parts, ProbBackoff, TableBuilder, MAX_ORDER};
use crate::util::write_atomic;
use crate::{Error, Result, BOS, EOS, UNK};
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Discounts for adjusted counts 0, 1, 2, 3+ (the first is always 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Discount(pub [f32; 4]);

impl Discount {
    /// KenLM's `--discount_fallback` default: 0.5, 1, 1.5.
    pub const FALLBACK: Discount = Discount([0.0, 0.5, 1.0, 1.5]);

    #[inline]
    pub fn get(&self, count: u64) -> f32 {
        self.0[count.min(3) as usize]
    }

    /// `count - D(count)`, in `f32` as KenLM computes it.
    #[inline]
    pub fn apply(&self, count: u64) -> f32 {
        count as f32 - self.get(count)
    }

    /// [`Discount::FALLBACK`] with its first values replaced by `given` (D1, D2, D3+), as
    /// lmplz's `--discount_fallback` takes zero to three numbers.
    pub fn fallback_with(given: &[f32]) -> Discount {
        let mut d = Discount::FALLBACK;
        for (slot, &x) in d.0[1..].iter_mut().zip(given) {
            *slot = x;
        }
        d
    }

    /// The closed-form estimate from `t[k]`, the number of n-grams of `order` with adjusted count
    /// k (k = 1..4). Errors say why and what to do, like KenLM's.
    pub fn estimate(order: usize, t: &[u64; 5]) -> std::result::Result<Discount, String> {
        for j in 1..4 {
            if t[j] == 0 {
                return Err(format!(
                    "could not estimate Kneser-Ney discounts for {order}-grams with adjusted count {}: no {order}-grams have adjusted count {j}. Is the corpus small or artificial? Deduplicating the input can help; otherwise rerun with --discount-fallback",
                    j + 1
                ));
            }
        }
        let mut d = [0f32; 4];
        let y = t[1] as f32 / (t[1] as f64 + 2.0 * t[2] as f64) as f32;
        for j in 1..4 {
            d[j] = j as f32 - (j + 1) as f32 * y * t[j + 1] as f32 / t[j] as f32;
            if d[j] < 0.0 || d[j] > j as f32 {
                return Err(format!(
                    "the {order}-gram discount for adjusted count {j} is {}, outside [0, {j}]: modified Kneser-Ney finds the count statistics odd. Rerun with --discount-fallback to use fixed discounts",
                    d[j]
                ));
            }
        }
        Ok(Discount(d))
    }
}

/// How probabilities are estimated from counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Smoothing {
    /// Interpolated modified Kneser-Ney, as KenLM's `lmplz`.
    KneserNey,
    /// Add-k (Laplace for k = 1) at every order, as a backoff model: `p(w | h) =
    /// (c(h w) + k) / (c(h) + k |V|)` for seen n-grams, with the unseen mass given to the
    /// next lower order through the backoff weight, so it stays a normalised ARPA model.
    AddK(f32),
    /// Stupid backoff (Brants et al. 2007): relative frequency, else `alpha` times the lower
    /// order's score. Scores do not sum to one; perplexities from it are not comparable.
    StupidBackoff(f32),
}

impl Smoothing {
    /// The smoothing called `name` (`kn`; `add-k`, `addk` or `laplace`; `stupid` or
    /// `stupid-backoff`), with its parameter: `k` for add-k, `alpha` for stupid backoff. The
    /// spellings of other toolkits are accepted so their users' commands carry over.
    pub fn from_name(name: &str, k: f32, alpha: f32) -> std::result::Result<Smoothing, String> {
        match name {
            "kn" => Ok(Smoothing::KneserNey),
            "add-k" | "addk" | "laplace" => Ok(Smoothing::AddK(k)),
            "stupid" | "stupid-backoff" => Ok(Smoothing::StupidBackoff(alpha)),
            s => Err(format!(
                "unknown --smoothing {s:?}; use kn, add-k or stupid"
            )),
        }
    }
}

/// Everything `build` needs besides the text.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub order: usize,
    pub smoothing: Smoothing,
    /// Discounts used where the closed-form estimate fails (`--discount-fallback`); `None` makes
    /// that an error.
    pub discount_fallback: Option<Discount>,
    /// Prune n-grams whose raw count is at most this, per order (the last value repeats), like
    /// lmplz `--prune`. Must not decrease.
    pub prune: Vec<u64>,
    /// Keep only the most frequent words (ties by first appearance); n-grams with other words
    /// are pruned, and those words become `<unk>` at query time.
    pub vocab_limit: Option<usize>,
    /// Keep only the words listed in this file (separated by whitespace), like lmplz
    /// `--limit_vocab_file`: n-grams with other words are pruned. Listed words the corpus lacks
    /// are ignored.
    pub limit_vocab_file: Option<PathBuf>,
    /// Memory for the counting buffer, in bytes (lmplz `-S`).
    pub memory: u64,
    /// Where counting and the streaming estimation keep their temporary files (lmplz `-T`).
    pub temp_dir: PathBuf,
    /// For [`build_to`]: `Some(false)` estimates in memory; `None` (the default) and
    /// `Some(true)` stream Kneser-Ney through temporary files (the external-memory estimation
    /// of the `stream` module), which keeps the whole build inside `memory`.
    pub external: Option<bool>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            order: 3,
            smoothing: Smoothing::KneserNey,
            discount_fallback: None,
            prune: vec![],
            vocab_limit: None,
            limit_vocab_file: None,
            memory: 1 << 30,
            temp_dir: std::env::temp_dir(),
            external: None,
        }
    }
}

/// A built model together with what is needed to write it as ARPA.
pub struct Built {
    pub model: Model,
    pub pack: Packing,
    /// Words of the corpus by corpus id.
    pub corpus_words: Vec<String>,
    /// Kept n-grams per order, as reversed keys of corpus ids, in suffix order.
    pub ngrams: Vec<Vec<u128>>,
    /// Corpus id -> model id (`u32::MAX` for pruned words).
    pub remap: Vec<u32>,
    /// Discounts per order (Kneser-Ney only).
    pub discounts: Vec<Discount>,
    /// Adjusted-count statistics t_1..t_4 per order (index 0 unused), as in lmplz's log.
    pub stats: Vec<[u64; 5]>,
}

impl Built {
    /// Writes a built model as ARPA (through a temporary file, renamed into place).
    pub fn write_arpa(&self, path: &Path) -> Result<()> {
        write_atomic(path, |w| self.write_arpa_to(w))
    }

    /// Writes a built model as ARPA to any writer, n-grams in suffix order as lmplz writes them.
    /// Lines are formatted in parallel in blocks and written in order.
    pub fn write_arpa_to(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let built = self;
        use rayon::prelude::*;
        let n_max = built.pack.order;
        writeln!(w, "\\data\\")?;
        for (i, g) in built.ngrams.iter().enumerate() {
            writeln!(w, "ngram {}={}", i + 1, g.len())?;
        }
        writeln!(w)?;
        const BLOCK: usize = 1 << 15;
        for (i, g) in built.ngrams.iter().enumerate() {
            let n = i + 1;
            writeln!(w, "\\{n}-grams:")?;
            for batch in g.chunks(BLOCK * 16) {
                let texts: Vec<String> = batch
                    .par_chunks(BLOCK)
                    .map(|keys| format_block(built, n, n < n_max, keys))
                    .collect();
                for t in texts {
                    w.write_all(t.as_bytes())?;
                }
            }
            writeln!(w)?;
        }
        writeln!(w, "\\end\\")
    }
}

fn format_block(built: &Built, n: usize, with_backoff: bool, keys: &[u128]) -> String {
    const BATCH: usize = 16;
    let mut out = String::with_capacity(keys.len() * (16 + 8 * n));
    let mut fb = zmij::Buffer::new();
    let m = &built.model;
    let mut hashes = [0u64; BATCH];
    let mut ids = [0u32; MAX_ORDER];
    for batch in keys.chunks(BATCH) {
        // Hash and prefetch the whole batch first so the table misses overlap.
        for (h, &k) in hashes.iter_mut().zip(batch) {
            for (j, id) in ids[..n].iter_mut().enumerate() {
                *id = built.remap[built.pack.rev_word(k, n, n - 1 - j) as usize];
            }
            if n > 1 {
                *h = hash::ngram(&ids[..n]);
                m.prefetch(n, *h);
            } else {
                *h = ids[0] as u64;
            }
        }
        for (&h, &k) in hashes.iter().zip(batch) {
            let e = if n > 1 {
                m.lookup_hash(n, h)
            } else {
                m.unigrams().get(h as usize).copied()
            }
            .expect("kept n-grams are in the model");
            push_line(&mut out, &mut fb, e, with_backoff, |out| {
                push_words(out, &built.pack, &built.corpus_words, k, n)
            });
        }
    }
    out
}

impl Built {
    /// Probability and backoff (log10) of the kept n-gram `key` of order `n`.
    pub fn entry(&self, n: usize, key: u128) -> ProbBackoff {
        let ids: Vec<u32> = self
            .pack
            .words(key, n)
            .into_iter()
            .map(|w| self.remap[w as usize])
            .collect();
        self.model
            .lookup(&ids)
            .expect("kept n-grams are in the model")
    }
}

/// The checks every build starts with: the order is in range, the pruning thresholds are
/// valid, and the n-grams fit the packed key. Returns the thresholds and the key packing.
pub(crate) fn checked_setup(corpus: &Corpus, opts: &BuildOptions) -> Result<(Vec<u64>, Packing)> {
    let n = opts.order;
    if n == 0 || n > MAX_ORDER {
        return Err(Error::Config(format!(
            "the order must be between 1 and {MAX_ORDER}, not {n}"
        )));
    }
    Ok((
        prune_thresholds(&opts.prune, n)?,
        Packing::new(n, corpus.vocab_size())?,
    ))
}

/// Parses lmplz-style pruning thresholds and pads them to `order`.
pub fn prune_thresholds(prune: &[u64], order: usize) -> Result<Vec<u64>> {
    if prune.len() > order {
        return Err(Error::Config(format!(
            "--prune gives thresholds for orders 1 to {} but the model has order {order}; give at most {order} values",
            prune.len()
        )));
    }
    if prune.windows(2).any(|w| w[0] > w[1]) {
        return Err(Error::Config("--prune thresholds must not decrease (e.g. 0 0 1): otherwise an n-gram could outlive its own suffix".into()));
    }
    let mut t = prune.to_vec();
    let last = t.last().copied().unwrap_or(0);
    t.resize(order, last);
    Ok(t)
}

/// Counts `corpus` and estimates a model. `progress` receives short stage names.
pub fn build(
    corpus: &Corpus,
    opts: &BuildOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Built> {
    let counted = count_stage(corpus, opts, progress)?;
    progress("estimating");
    estimate(corpus, counted, opts)
}

/// As [`build`], but frees the corpus's token stream as soon as it is counted.
pub fn build_owned(
    mut corpus: Corpus,
    opts: &BuildOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Built> {
    let counted = count_stage(&corpus, opts, progress)?;
    corpus.tokens = Vec::new();
    progress("estimating");
    estimate(&corpus, counted, opts)
}

pub(crate) struct Counted {
    pack: Packing,
    thresholds: Vec<u64>,
    orders: Vec<OrderCounts>,
    pruned_words: Option<Vec<bool>>,
}

fn count_stage(
    corpus: &Corpus,
    opts: &BuildOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Counted> {
    let (thresholds, pack) = checked_setup(corpus, opts)?;
    progress("counting");
    let raw = count::count(
        &corpus.tokens,
        &pack,
        &CountOptions {
            memory: opts.memory,
            temp_dir: opts.temp_dir.clone(),
        },
    )?;
    let pruned_words = pruned_words(corpus, opts)?;
    Ok(adjust_stage(
        raw,
        pack,
        thresholds,
        pruned_words,
        opts,
        progress,
    ))
}

/// Adjusted counts of every order, in memory.
pub(crate) fn adjust_stage(
    raw: count::RawCounts,
    pack: Packing,
    thresholds: Vec<u64>,
    pruned_words: Option<Vec<bool>>,
    opts: &BuildOptions,
    progress: &mut dyn FnMut(&str),
) -> Counted {
    progress("adjusting counts");
    let keep_raw = thresholds.iter().any(|&t| t > 0)
        || pruned_words.is_some()
        || !matches!(opts.smoothing, Smoothing::KneserNey);
    let orders = count::adjust(&raw, &pack, keep_raw);
    drop(raw);
    Counted {
        pack,
        thresholds,
        orders,
        pruned_words,
    }
}

/// Which corpus ids are cut from the vocabulary: those beyond `--vocab-limit` (the most
/// frequent are kept, ties by first appearance) and those missing from `--limit-vocab-file`.
/// `None` when nothing limits the vocabulary.
pub(crate) fn pruned_words(corpus: &Corpus, opts: &BuildOptions) -> Result<Option<Vec<bool>>> {
    if opts.vocab_limit.is_none() && opts.limit_vocab_file.is_none() {
        return Ok(None);
    }
    let mut pruned = vec![false; corpus.vocab_size()];
    if let Some(limit) = opts.vocab_limit {
        let counts = corpus.unigram_counts();
        let mut ids: Vec<u32> = (3..corpus.vocab_size() as u32).collect();
        ids.sort_by_key(|&i| std::cmp::Reverse(counts[i as usize]));
        for &i in ids.iter().skip(limit) {
            pruned[i as usize] = true;
        }
    }
    if let Some(path) = &opts.limit_vocab_file {
        let mut listed = vec![false; corpus.vocab_size()];
        let mut r = crate::input::open(path, &crate::input::Stdin::Direct)?;
        let mut buf = Vec::new();
        let mut line = 0u64;
        loop {
            buf.clear();
            let n = std::io::BufRead::read_until(&mut r, b'\n', &mut buf).map_err(|source| {
                Error::Read {
                    path: path.clone(),
                    err: source,
                }
            })?;
            if n == 0 {
                break;
            }
            line += 1;
            let text = std::str::from_utf8(&buf).map_err(|e| Error::Format {
                path: path.clone(),
                line,
                msg: format!(
                    "invalid UTF-8 at byte {}; the word list must be UTF-8 text, words separated by whitespace",
                    e.valid_up_to() + 1
                ),
            })?;
            // Whitespace as in the corpus (KenLM's delimiters); unknown words are ignored, as
            // lmplz does.
            crate::corpus::for_each_token(text, false, |w| {
                if let Some(id) = corpus.id(w) {
                    listed[id as usize] = true;
                }
            });
        }
        for (id, p) in pruned.iter_mut().enumerate().skip(3) {
            *p |= !listed[id];
        }
    }
    Ok(Some(pruned))
}

/// Which n-grams are pruned: raw count at most the order's threshold, or a word beyond the
/// vocabulary limit. `<unk>`, `<s>` and `</s>` are never pruned as unigrams.
fn marks(
    o: &OrderCounts,
    n: usize,
    threshold: u64,
    pack: &Packing,
    words: Option<&[bool]>,
) -> Vec<bool> {
    (0..o.len())
        .map(|i| is_pruned(o.keys[i], n, o.raw(i), threshold, pack, words))
        .collect()
}

/// Whether one n-gram is pruned (see [`marks`]).
#[inline]
pub(crate) fn is_pruned(
    key: u128,
    n: usize,
    raw: u64,
    threshold: u64,
    pack: &Packing,
    words: Option<&[bool]>,
) -> bool {
    if n == 1 && key <= EOS as u128 {
        return false;
    }
    if raw <= threshold {
        return true;
    }
    match words {
        Some(pw) => (0..n).any(|j| pw[pack.rev_word(key, n, j) as usize]),
        None => false,
    }
}

#[derive(Clone, Copy, Default)]
pub(crate) struct Acc {
    pub(crate) denominator: u64,
    pruned: u64,
    n: [u32; 3],
}

impl Acc {
    /// gamma(h) in f32, in KenLM's order of operations.
    pub(crate) fn gamma(&self, d: &Discount) -> f32 {
        let mut g = 0f32;
        for i in 0..3 {
            g += d.0[i + 1] * self.n[i] as f32;
        }
        g += self.pruned as f32;
        g / self.denominator as f32
    }
    pub(crate) fn add(&mut self, adjusted: u64, pruned: bool) {
        self.denominator += adjusted;
        if pruned {
            self.pruned += adjusted;
        } else if adjusted > 0 {
            self.n[(adjusted.min(3) - 1) as usize] += 1;
        }
    }
}

/// Model-id hash of a reversed corpus-id key's words `from..to` (0 = last word).
#[inline]
pub(crate) fn key_hash(
    pack: &Packing,
    remap: &[u32],
    key: u128,
    n: usize,
    from: usize,
    to: usize,
) -> u64 {
    // An empty remap is the identity (no word was cut): skip the indirection.
    let id = |w: u32| {
        if remap.is_empty() {
            w
        } else {
            remap[w as usize]
        }
    };
    let mut h = hash::word(id(pack.rev_word(key, n, from)));
    for i in from + 1..to {
        h = hash::extend(h, id(pack.rev_word(key, n, i)));
    }
    h
}

pub(crate) fn estimate(corpus: &Corpus, counted: Counted, opts: &BuildOptions) -> Result<Built> {
    let Counted {
        pack,
        thresholds,
        mut orders,
        pruned_words,
    } = counted;
    let (pack, thresholds) = (&pack, &thresholds[..]);
    let n_max = pack.order;
    let pruning = pruned_words.is_some() || thresholds.iter().any(|&t| t > 0);
    let marked: Vec<Vec<bool>> = if pruning {
        orders
            .iter()
            .enumerate()
            .map(|(i, o)| marks(o, i + 1, thresholds[i], pack, pruned_words.as_deref()))
            .collect()
    } else {
        orders.iter().map(|o| vec![false; o.len()]).collect()
    };
    // Statistics t_1..t_4 per order over all n-grams, pruned or not (as lmplz).
    let stats: Vec<[u64; 5]> = orders
        .iter()
        .map(|o| {
            let mut t = [0u64; 5];
            for i in 0..o.len() {
                let a = o.stat_count(i);
                if a < 5 {
                    t[a as usize] += 1;
                }
            }
            t
        })
        .collect();
    let discounts = discounts_for(&stats, opts)?;
    let (remap, words) = vocabulary(&corpus.words, &orders[0], &marked[0]);
    let v = words.len();
    // With no word cut, corpus ids are model ids and hashing skips the remap.
    let identity = v == corpus.vocab_size();
    let no_remap: Vec<u32> = Vec::new();
    let hashmap: &[u32] = if identity { &no_remap } else { &remap };
    let mut unigrams = vec![
        ProbBackoff {
            prob: 0.0,
            backoff: 1.0
        };
        v
    ];
    let mut tables: Vec<TableBuilder> = Vec::new();
    let mut counts = Vec::new();

    match opts.smoothing {
        Smoothing::KneserNey => {
            kn_unigrams(&orders[0], &marked[0], discounts[0], &remap, &mut unigrams);
            counts.push(v as u64);
            for n in 2..=n_max {
                let o = &orders[n - 1];
                let mk = &marked[n - 1];
                let d = discounts[n - 1];
                let kept = mk.iter().filter(|&&m| !m).count();
                let mut t = TableBuilder::new(kept);
                if o.len() > u32::MAX as usize {
                    return Err(Error::Config(format!(
                        "{} distinct {n}-grams: more than firth's per-order limit of 2^32",
                        o.len()
                    )));
                }
                // Phase A, parallel: where each n-gram's context lives in the lower order
                // (u32::MAX when the context was pruned away).
                let ctx_of: Vec<u32> = match tables.last() {
                    None => (0..o.len())
                        .into_par_iter()
                        .map(|i| remap[pack.rev_word(o.keys[i], n, 1) as usize])
                        .collect(),
                    Some(l) => l.find_all(o.len(), |i| {
                        let k = o.keys[i];
                        if !identity
                            && (1..n).any(|j| remap[pack.rev_word(k, n, j) as usize] == u32::MAX)
                        {
                            return None;
                        }
                        Some(key_hash(pack, hashmap, k, n, 1, n))
                    }),
                };
                // Phase B: group the n-grams by context (sort (context slot, index) pairs; 8
                // bytes per n-gram instead of an accumulator per lower-order slot), sum each
                // context's adjusted counts, and (phase C) write gamma(h) as h's backoff
                // (linear for now). Each n-gram keeps its context's denominator as f32, the
                // precision lmplz divides by.
                let mut by_ctx: Vec<u64> = ctx_of
                    .iter()
                    .enumerate()
                    .filter(|(_, &c)| c != u32::MAX)
                    .map(|(i, &c)| ((c as u64) << 32) | i as u64)
                    .collect();
                by_ctx.par_sort_unstable();
                let mut den_of = vec![0f32; o.len()];
                let mut j = 0;
                while j < by_ctx.len() {
                    let c = (by_ctx[j] >> 32) as usize;
                    let mut acc = Acc::default();
                    let mut e = j;
                    while e < by_ctx.len() && (by_ctx[e] >> 32) as usize == c {
                        let i = (by_ctx[e] & 0xffff_ffff) as usize;
                        acc.add(o.adjusted[i], mk[i]);
                        e += 1;
                    }
                    if acc.denominator > 0 {
                        let g = acc.gamma(&d);
                        if n == 2 {
                            unigrams[c].backoff = g;
                        } else {
                            tables[n - 3].slots[c].backoff = g;
                        }
                    }
                    let den = acc.denominator as f32;
                    for &x in &by_ctx[j..e] {
                        den_of[(x & 0xffff_ffff) as usize] = den;
                    }
                    j = e;
                }
                drop(by_ctx);
                // Phase D, parallel: p(w | h) = (a - D(a)) / sum_h + gamma(h) p(w | h').
                let sfx_of: Vec<u32> = match tables.last() {
                    None => Vec::new(),
                    Some(l) => l.find_all(o.len(), |i| {
                        (!mk[i]).then(|| key_hash(pack, hashmap, o.keys[i], n, 0, n - 1))
                    }),
                };
                let (hashes, probs): (Vec<u64>, Vec<f32>) = {
                    let lower = tables.last();
                    let (remap, unigrams, den_of, ctx_of, sfx_of) =
                        (&remap, &unigrams, &den_of, &ctx_of, &sfx_of);
                    (0..o.len())
                        .into_par_iter()
                        .filter(|&i| !mk[i])
                        .map(|i| {
                            let k = o.keys[i];
                            let c = ctx_of[i] as usize;
                            let (gamma, suffix_p) = match lower {
                                None => (
                                    unigrams[c].backoff,
                                    unigrams[remap[pack.rev_word(k, n, 0) as usize] as usize].prob,
                                ),
                                Some(l) => {
                                    let sfx = sfx_of[i] as usize;
                                    (l.slots[c].backoff, l.slots[sfx].prob)
                                }
                            };
                            let p = d.apply(o.adjusted[i]) / den_of[i] + gamma * suffix_p;
                            (key_hash(pack, hashmap, k, n, 0, n), p)
                        })
                        .unzip()
                };
                drop(sfx_of);
                // This order's adjusted counts are spent; only its keys are still needed.
                orders[n - 1].adjusted = Vec::new();
                drop(ctx_of);
                drop(den_of);
                // Phase E: into the table, prefetching a few inserts ahead.
                for (j, (&h, &p)) in hashes.iter().zip(&probs).enumerate() {
                    if let Some(&ahead) = hashes.get(j + 8) {
                        t.prefetch(ahead);
                    }
                    let (slot, _) = t.insert(h);
                    t.slots[slot].prob = p;
                    t.slots[slot].backoff = 1.0;
                }
                counts.push(kept as u64);
                tables.push(t);
            }
            // Linear to log10; n-grams ending in </s> or <unk> are never contexts.
            let to_log = kn_log;
            kn_unigrams_log(&mut unigrams, n_max);
            for (i, t) in tables.iter_mut().enumerate() {
                let top = i + 2 == n_max;
                t.slots.par_iter_mut().filter(|e| e.key != 0).for_each(|e| {
                    e.prob = to_log(e.prob);
                    e.backoff = if top { 0.0 } else { e.backoff.log10() };
                });
            }
            if n_max > 1 {
                // Backoff of n-grams ending in </s> or <unk> (never contexts): 0.
                for n in 2..n_max {
                    let o = &orders[n - 1];
                    for (i, &k) in o.keys.iter().enumerate() {
                        let last = pack.rev_word(k, n, 0);
                        if !marked[n - 1][i] && (last == EOS || last == UNK) {
                            let t = &mut tables[n - 2];
                            if let Some(s) = t.find(key_hash(pack, &remap, k, n, 0, n)) {
                                t.slots[s].backoff = 0.0;
                            }
                        }
                    }
                }
            }
        }
        Smoothing::AddK(kk) => estimate_add_k(
            pack,
            &orders,
            &marked,
            &remap,
            &mut unigrams,
            &mut tables,
            &mut counts,
            kk,
        ),
        Smoothing::StupidBackoff(alpha) => estimate_stupid(
            pack,
            &orders,
            &marked,
            &remap,
            &mut unigrams,
            &mut tables,
            &mut counts,
            alpha,
        ),
    }

    // The kept keys move into the result (filtered in place only when something was pruned).
    let ngrams = orders
        .into_iter()
        .zip(&marked)
        .map(|(o, m)| {
            let mut keys = o.keys;
            if m.iter().any(|&x| x) {
                let mut i = 0;
                keys.retain(|_| {
                    i += 1;
                    !m[i - 1]
                });
            }
            keys
        })
        .collect();
    let parts = Parts {
        words,
        unigrams,
        tables: tables.into_iter().map(|t| t.slots).collect(),
        counts,
        flags: 0,
    };
    Ok(Built {
        model: Model::from_parts(parts),
        pack: *pack,
        corpus_words: corpus.words.clone(),
        ngrams,
        remap,
        discounts,
        stats,
    })
}

/// Discounts per order: the closed form for Kneser-Ney (or the fallback where it fails), zero
/// for the other smoothings.
pub(crate) fn discounts_for(stats: &[[u64; 5]], opts: &BuildOptions) -> Result<Vec<Discount>> {
    let mut discounts = Vec::new();
    for (i, t) in stats.iter().enumerate() {
        let d = match opts.smoothing {
            Smoothing::KneserNey => match (Discount::estimate(i + 1, t), opts.discount_fallback) {
                (Ok(d), _) => d,
                (Err(_), Some(f)) => f,
                (Err(e), None) => return Err(Error::Config(e)),
            },
            _ => Discount([0.0; 4]),
        };
        discounts.push(d);
    }
    Ok(discounts)
}

/// The model vocabulary: kept unigrams in corpus-id order. Returns corpus id -> model id
/// (`u32::MAX` for cut words) and the model's words.
pub(crate) fn vocabulary(
    corpus_words: &[String],
    o: &OrderCounts,
    marked: &[bool],
) -> (Vec<u32>, Vec<String>) {
    let mut remap = vec![u32::MAX; corpus_words.len()];
    let mut words = Vec::new();
    for (i, &k) in o.keys.iter().enumerate() {
        if !marked[i] {
            remap[k as usize] = words.len() as u32;
            words.push(corpus_words[k as usize].clone());
        }
    }
    (remap, words)
}

/// Kneser-Ney unigram probabilities (linear) into `unigrams` (indexed by model id): one
/// context, the empty one, interpolated with the uniform distribution.
pub(crate) fn kn_unigrams(
    o: &OrderCounts,
    marked: &[bool],
    d: Discount,
    remap: &[u32],
    unigrams: &mut [ProbBackoff],
) {
    let mut acc = Acc::default();
    for i in 0..o.len() {
        acc.add(o.adjusted[i], marked[i]);
    }
    let gamma = acc.gamma(&d);
    let denom = acc.denominator as f32;
    // Uniform over the kept vocabulary without <s> (KenLM: the kept unigram count - 1). The
    // words cut by a vocabulary limit are read as <unk> at query time; <unk>'s share of the
    // uniform part is what they get, and the kept words' shares grow to match, so the
    // distribution still sums to one (their adjusted counts are in gamma as pruned mass).
    let kept = marked.iter().filter(|&&m| !m).count();
    let uniform = (1.0f64 / (kept - 1) as f32 as f64) as f32;
    for i in 0..o.len() {
        if marked[i] {
            continue;
        }
        let id = o.keys[i] as u32;
        let p = match id {
            UNK => gamma * uniform,
            BOS => 1.0,
            _ => d.apply(o.adjusted[i]) / denom + gamma * uniform,
        };
        unigrams[remap[id as usize] as usize].prob = p;
    }
}

/// A Kneser-Ney probability from linear to log10 (1 and above become 0).
#[inline]
pub(crate) fn kn_log(p: f32) -> f32 {
    let l = p.log10();
    if l < 0.0 {
        l
    } else {
        0.0
    }
}

/// Unigrams from linear to log10; `</s>` and `<unk>` are never contexts, so their backoff is 0.
pub(crate) fn kn_unigrams_log(unigrams: &mut [ProbBackoff], n_max: usize) {
    for (id, u) in unigrams.iter_mut().enumerate() {
        u.prob = kn_log(u.prob);
        u.backoff = if n_max == 1 || id as u32 == UNK || id as u32 == EOS {
            0.0
        } else {
            u.backoff.log10()
        };
    }
}

/// Raw counts of every kept context, per order, from the raw counts of the order above:
/// c(h) = sum_w c(h w). Lower-order raw counts are kept by `adjust` for all but the top order.
fn raw_of(o: &OrderCounts, i: usize) -> u64 {
    o.raw(i)
}

#[allow(clippy::too_many_arguments)]
fn estimate_add_k(
    pack: &Packing,
    orders: &[OrderCounts],
    marked: &[Vec<bool>],
    remap: &[u32],
    unigrams: &mut [ProbBackoff],
    tables: &mut Vec<TableBuilder>,
    counts: &mut Vec<u64>,
    k: f32,
) {
    // Unigrams: (c(w) + k) / (N + k |V'|) over V' = vocabulary without <s>; <s> gets 1 (log 0).
    let n_max = pack.order;
    let v = unigrams.len();
    let o = &orders[0];
    let total: u64 = (0..o.len()).map(|i| raw_of(o, i)).sum();
    let denom = total as f64 + k as f64 * (v - 1) as f64;
    for (i, &key) in o.keys.iter().enumerate() {
        if marked[0][i] {
            continue;
        }
        let id = remap[key as usize] as usize;
        unigrams[id].prob = if key as u32 == BOS {
            1.0
        } else {
            ((raw_of(o, i) as f64 + k as f64) / denom) as f32
        };
    }
    counts.push(v as u64);
    // Higher orders: seen n-grams get (c + k) / (c(h) + k |V'|); the rest of h's mass,
    // 1 - sum_seen, goes to the lower order, renormalised over the unseen words: backoff(h) =
    // (1 - sum_seen p) / (1 - sum_seen p_lower).
    let vv = (v - 1) as f64;
    for n in 2..=n_max {
        let o = &orders[n - 1];
        let mk = &marked[n - 1];
        let kept = mk.iter().filter(|&&m| !m).count();
        let mut t = TableBuilder::new(kept);
        let lower_len = if n == 2 { v } else { tables[n - 3].slots.len() };
        // (c(h), sum_seen p, sum_seen p_lower) per context.
        let mut acc = vec![(0u64, 0f64, 0f64); lower_len];
        let lower_prob =
            |tables: &Vec<TableBuilder>, unigrams: &[ProbBackoff], key: u128| -> Option<f64> {
                if n == 2 {
                    Some(unigrams[remap[pack.rev_word(key, n, 0) as usize] as usize].prob as f64)
                } else {
                    let l = &tables[n - 3];
                    l.find(key_hash(pack, remap, key, n, 0, n - 1))
                        .map(|s| l.slots[s].prob as f64)
                }
            };
        let ctx_slot = |tables: &Vec<TableBuilder>, key: u128| -> Option<usize> {
            if (1..n).any(|j| remap[pack.rev_word(key, n, j) as usize] == u32::MAX) {
                return None;
            }
            if n == 2 {
                Some(remap[pack.rev_word(key, n, 1) as usize] as usize)
            } else {
                tables[n - 3].find(key_hash(pack, remap, key, n, 1, n))
            }
        };
        for i in 0..o.len() {
            if let Some(s) = ctx_slot(tables, o.keys[i]) {
                acc[s].0 += raw_of(o, i);
            }
        }
        for i in 0..o.len() {
            if mk[i] {
                continue;
            }
            let key = o.keys[i];
            let Some(s) = ctx_slot(tables, key) else {
                continue;
            };
            let p = (raw_of(o, i) as f64 + k as f64) / (acc[s].0 as f64 + k as f64 * vv);
            let pl = lower_prob(tables, unigrams, key).unwrap_or(0.0);
            acc[s].1 += p;
            acc[s].2 += pl;
            let (slot, _) = t.insert(key_hash(pack, remap, key, n, 0, n));
            t.slots[slot].prob = p as f32;
            t.slots[slot].backoff = 1.0;
        }
        for (s, a) in acc.iter().enumerate() {
            if a.0 > 0 {
                let b = ((1.0 - a.1).max(0.0) / (1.0 - a.2).max(1e-12)) as f32;
                if n == 2 {
                    unigrams[s].backoff = b;
                } else {
                    tables[n - 3].slots[s].backoff = b;
                }
            }
        }
        counts.push(kept as u64);
        tables.push(t);
    }
    finish_log(unigrams, tables, n_max);
}

#[allow(clippy::too_many_arguments)]
fn estimate_stupid(
    pack: &Packing,
    orders: &[OrderCounts],
    marked: &[Vec<bool>],
    remap: &[u32],
    unigrams: &mut [ProbBackoff],
    tables: &mut Vec<TableBuilder>,
    counts: &mut Vec<u64>,
    alpha: f32,
) {
    // S(w | h) = c(h w) / c(h) when seen, else alpha S(w | h'): an ARPA model whose every
    // backoff is alpha.
    let n_max = pack.order;
    let v = unigrams.len();
    let o = &orders[0];
    let total: u64 = (0..o.len()).map(|i| raw_of(o, i)).sum();
    for (i, &key) in o.keys.iter().enumerate() {
        if marked[0][i] {
            continue;
        }
        let id = remap[key as usize] as usize;
        let c = raw_of(o, i);
        unigrams[id].prob = match key as u32 {
            BOS => 1.0,
            // Unseen words: as if seen once less than the rarest.
            UNK => 0.5 / total as f32,
            _ => c as f32 / total as f32,
        };
    }
    counts.push(v as u64);
    for n in 2..=n_max {
        let o = &orders[n - 1];
        let mk = &marked[n - 1];
        let kept = mk.iter().filter(|&&m| !m).count();
        let mut t = TableBuilder::new(kept);
        // c(h): the raw count of the context as an n-gram of the lower order, except that the
        // context <s> occurs once per sentence.
        let lower = &orders[n - 2];
        let mut ctx_count = crate::hash::FastMap::default();
        for i in 0..o.len() {
            *ctx_count
                .entry(o.keys[i] & ((1u128 << (pack.bits as usize * (n - 1))) - 1))
                .or_insert(0u64) += raw_of(o, i);
        }
        let _ = lower;
        for i in 0..o.len() {
            if mk[i] {
                continue;
            }
            let key = o.keys[i];
            if (0..n).any(|j| remap[pack.rev_word(key, n, j) as usize] == u32::MAX) {
                continue;
            }
            let ch = ctx_count[&(key & ((1u128 << (pack.bits as usize * (n - 1))) - 1))];
            let (slot, _) = t.insert(key_hash(pack, remap, key, n, 0, n));
            t.slots[slot].prob = raw_of(o, i) as f32 / ch as f32;
            t.slots[slot].backoff = alpha;
        }
        counts.push(kept as u64);
        tables.push(t);
    }
    for u in unigrams.iter_mut() {
        u.backoff = alpha;
    }
    finish_log(unigrams, tables, n_max);
}

fn finish_log(unigrams: &mut [ProbBackoff], tables: &mut [TableBuilder], n_max: usize) {
    for (id, u) in unigrams.iter_mut().enumerate() {
        u.prob = u.prob.log10().min(0.0);
        u.backoff = if n_max == 1 || id as u32 == EOS || id as u32 == UNK {
            0.0
        } else {
            u.backoff.log10()
        };
    }
    for (i, t) in tables.iter_mut().enumerate() {
        let top = i + 2 == n_max;
        for e in t.slots.iter_mut().filter(|e: &&mut Entry| e.key != 0) {
            e.prob = e.prob.log10().min(0.0);
            e.backoff = if top { 0.0 } else { e.backoff.log10() };
        }
    }
}
