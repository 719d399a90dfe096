//! The trie layout: a smaller binary model than the probing tables, loaded by `mmap` the same way.
//!
//! An n-gram `w1 .. wn` is a path from the root through `wn, w(n-1), .., w1`: the same order in
//! which a query extends a context one word further back, so scoring a word walks down one path.
//! Each order is an array of bit-packed records sorted by that reversed path; the children of a
//! record (its left extensions, one order up) are a contiguous range, given by the record's
//! `next` pointer and its successor's. Records hold only the new word, so an n-gram costs
//!
//! ```text
//! middle orders   word (ceil(log2 |V|) bits) | prob (q or 32 bits) | backoff (b or 32) | next (p bits)
//! highest order   word | prob
//! ```
//!
//! plus, for a middle order, one extra record holding the end pointer. `next` pointers are
//! non-decreasing, so their high bits are cut off into a table of where each high value starts
//! (Raj and Whittaker's compression, KenLM's `-a`): `p` is the pointer width less the chopped
//! bits, chosen per order to minimise the order's size. Probabilities and backoffs are `f32`, or
//! codes of per-order bins ([`crate::quantize`]). Unigrams are `(prob, backoff)` by word id, with
//! their first bigram in a bit-packed array.
//!
//! File layout (little-endian, sections 8-byte aligned):
//!
//! ```text
//! header     magic "FIRTHTR\x01", 0x01020304, version, order, |V|, vocabulary slots,
//!            string bytes, flags, prob bits, backoff bits (0 = unquantized), then per order
//!            (count, chopped pointer bits)
//! quant      per order 2..N: 2^q prob centres, and for 2..N-1 2^b backoff centres (f32)
//! unigrams   |V| x (prob f32, backoff f32)
//! uni next   |V| + 1 bit-packed first-child indices into order 2
//! order n    records, then (middle orders) the pointer table: u64 per high value
//! vocab      as in the probing layout: word hash table, offsets, strings
//! trailer    CRC-32 of everything before it, "CRC1"
//! ```
//!
//! A zero backoff is stored as `-0.0` on an n-gram that is no context of a longer one and `+0.0`
//! otherwise: the query then drops such n-grams from the state (right-state minimisation, as in
//! KenLM), so the next word probes no longer contexts than can match.
//!
//! Word ids are the ARPA file's (firth's) ids, so `query` prints the same ids for both layouts
//! and an unquantized trie writes back the ARPA file it was made from.

use crate::model::{
    check_vocab_sections, crc32_parallel, magic_distance_to, pad8, settle, vocab_bytes,
    vocab_lookup, vocab_word, write_vocab, Backing, Checksum, CrcWriter, Model, Parts, ProbBackoff,
    State, TableBuilder, Verification, VocabSlot, ENDIAN, MAGIC_DAMAGE_BITS, MAX_ORDER, REBUILD,
    TRAILER, TRAILER_TAG,
};
use crate::quantize::{self, extends, NO_EXTENSION};
use crate::util::{shown, write_atomic};
use crate::{hash, Error, Result, BOS};
use std::io::Write;
use std::path::Path;

pub const MAGIC: &[u8; 8] = b"FIRTHTR\x01";
const VERSION: u32 = 1;
const HEADER: usize = 64;
/// Pointer bits at most moved into the table (KenLM's `-a` default is 22; more only helps).
const MAX_CHOP: u32 = 40;

/// Quantization: bits per probability and per backoff, or none (exact `f32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quant {
    pub prob_bits: u8,
    pub backoff_bits: u8,
}

impl Quant {
    /// Checks the bit counts: probabilities 1 to 25 bits, backoffs 2 to 25 (two codes are the
    /// exact zeros).
    pub fn new(prob_bits: u8, backoff_bits: u8) -> Result<Quant> {
        if !(1..=25).contains(&prob_bits) || !(2..=25).contains(&backoff_bits) {
            return Err(Error::Config(format!(
                "quantization bits out of range (-q {prob_bits}, -b {backoff_bits}): use -q 1..25 and -b 2..25, e.g. -q 8 -b 8"
            )));
        }
        Ok(Quant {
            prob_bits,
            backoff_bits,
        })
    }
}

/// The n-grams of one order >= 2: keys are the words packed in reverse (see [`rev_key`]),
/// sorted; `backoffs` is empty for the highest order.
#[derive(Clone, Debug, Default)]
pub struct OrderData {
    pub keys: Vec<u128>,
    pub probs: Vec<f32>,
    pub backoffs: Vec<f32>,
}

/// A trie model's contents before layout: what the ARPA reader and a loaded trie produce.
#[derive(Clone, Debug, Default)]
pub struct TrieParts {
    pub words: Vec<String>,
    pub unigrams: Vec<ProbBackoff>,
    /// Orders 2..=N.
    pub orders: Vec<OrderData>,
    pub flags: u64,
}

/// Bits to write any value in `0..=max` (at least 1).
fn bits_for(max: u64) -> u32 {
    (64 - max.leading_zeros()).max(1)
}

/// Bits per word id in keys and records.
fn word_bits(vocab: usize) -> u32 {
    bits_for(vocab.saturating_sub(1) as u64)
}

/// An n-gram's key: `ids` (reading order) packed `b` bits each with the *last* word highest, so
/// sorted keys are in reversed-path order, `key >> b` is the n-gram without its first word
/// (its parent in the trie) and the low `b` bits are that first word (the record's word).
pub fn rev_key(ids: &[u32], b: u32) -> u128 {
    ids.iter().rev().fold(0u128, |k, &w| (k << b) | w as u128)
}

fn key_words(key: u128, n: usize, b: u32) -> impl Iterator<Item = u32> {
    let mask = (1u128 << b) - 1;
    (0..n).map(move |j| ((key >> (b as usize * j)) & mask) as u32)
}

impl TrieParts {
    fn order(&self) -> usize {
        self.orders.len() + 1
    }

    fn describe(&self, key: u128, n: usize) -> String {
        let b = word_bits(self.words.len());
        key_words(key, n, b)
            .map(|w| self.words.get(w as usize).map_or("?", |s| s.as_str()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Reads an ARPA file's n-grams with their words (the probing reader keeps only hashes);
    /// plain or gzip/xz/zstd, as [`crate::arpa::read_arpa`].
    pub fn read_arpa(path: &Path) -> Result<TrieParts> {
        let (r, len) = crate::arpa::open_arpa(path)?;
        let orders: std::cell::RefCell<Vec<OrderData>> = Default::default();
        let bits = std::cell::Cell::new(0u32);
        let v = crate::arpa::parse_arpa(
            r,
            path,
            len,
            &mut |n, count, vocab| {
                let b = word_bits(vocab);
                bits.set(b);
                let mut o = orders.borrow_mut();
                o.push(OrderData {
                    keys: Vec::with_capacity(count as usize),
                    probs: Vec::with_capacity(count as usize),
                    backoffs: Vec::new(),
                });
                debug_assert_eq!(o.len() + 1, n);
            },
            &mut |n, ids, prob, backoff| {
                let b = bits.get();
                if n as u32 * b > 128 {
                    return Err(format!(
                        "{n}-grams of a {}-bit vocabulary do not fit the trie's 128-bit keys; use --layout probing for",
                        b
                    ));
                }
                let mut o = orders.borrow_mut();
                let d = &mut o[n - 2];
                d.keys.push(rev_key(ids, b));
                d.probs.push(prob);
                d.backoffs.push(backoff);
                Ok(())
            },
        )?;
        let mut orders = orders.into_inner();
        if let Some(last) = orders.last_mut() {
            last.backoffs = Vec::new();
        }
        let mut parts = TrieParts {
            words: v.words,
            unigrams: v.unigrams,
            orders,
            flags: 0,
        };
        parts.sort(path)?;
        Ok(parts)
    }

    /// Puts every order in key order (ARPA files from lmplz and firth already are) and refuses
    /// duplicates.
    fn sort(&mut self, path: &Path) -> Result<()> {
        let mut dup = None;
        for (i, d) in self.orders.iter_mut().enumerate() {
            *d = sorted(
                std::mem::take(&mut d.keys),
                std::mem::take(&mut d.probs),
                std::mem::take(&mut d.backoffs),
            );
            if let Some(w) = d.keys.windows(2).position(|w| w[0] == w[1]) {
                dup = Some((i + 2, d.keys[w]));
                break;
            }
        }
        match dup {
            Some((n, key)) => Err(Error::File {
                path: shown(path),
                msg: format!(
                    "duplicate {n}-gram \"{}\"; the file is corrupt",
                    self.describe(key, n)
                ),
            }),
            None => Ok(()),
        }
    }
}

/// Where everything is in a trie file, computed from the header alone.
#[derive(Clone, Debug)]
struct TrieLayout {
    order: usize,
    vocab: usize,
    vocab_slots: usize,
    strings_len: usize,
    flags: u64,
    quant: Option<Quant>,
    counts: Vec<u64>,
    /// Chopped pointer bits per order (index n - 1); nonzero only for middle orders.
    chops: Vec<u32>,
    word_bits: u32,
    unigrams: usize,
    uni_next: usize,
    uni_next_bits: u32,
    levels: Vec<LevelLayout>,
    /// The trie id of each ARPA id, to write the ARPA file back in its order.
    id_map: usize,
    vocab_table: usize,
    total: usize,
}

#[derive(Clone, Debug, Default)]
struct LevelLayout {
    /// Records in the array: count, plus the end-pointer record of a middle order.
    entries: u64,
    records: usize,
    total_bits: u32,
    prob_bits: u32,
    backoff_bits: u32,
    /// Bits of `next` kept in the record.
    next_bits: u32,
    table: usize,
    table_len: usize,
    prob_centres: usize,
    backoff_centres: usize,
}

/// Bytes of `entries` records of `bits` bits, plus 8 so an unaligned 8-byte read of the last
/// field stays inside the section.
fn packed_bytes(entries: u64, bits: u32) -> Option<usize> {
    let b = (entries as u128 * bits as u128).div_ceil(8);
    pad8(usize::try_from(b).ok()?)?.checked_add(8)
}

/// Most entries of a pointer table: 8 KB, so every child lookup searches it in the L1 cache.
/// Unbounded, the smallest file's tables reach hundreds of KB on a 5-gram of 19M words, and
/// their cache misses made trie queries 1.4x slower than KenLM's (which has no table by
/// default); the bound costs about 3 bits per record against the smallest size.
const MAX_TABLE: u64 = 1024;

/// The chopped bits that make an order smallest with a table of at most [`MAX_TABLE`] entries:
/// each chopped bit saves one bit per record and doubles the table of 64-bit starts.
fn best_chop(entries: u64, max_next: u64) -> u32 {
    let full = bits_for(max_next);
    let mut best = (0u32, i128::MAX);
    for c in 0..=full.min(MAX_CHOP) {
        if (max_next >> (full - c)) + 1 > MAX_TABLE {
            break;
        }
        let cost = (((max_next >> (full - c)) + 1) as i128) * 64 - (entries as i128) * c as i128;
        if cost < best.1 {
            best = (c, cost);
        }
    }
    best.0
}

impl TrieLayout {
    #[allow(clippy::too_many_arguments)]
    fn compute(
        order: usize,
        vocab: usize,
        vocab_slots: usize,
        strings_len: usize,
        flags: u64,
        quant: Option<Quant>,
        counts: Vec<u64>,
        chops: Vec<u32>,
    ) -> Option<TrieLayout> {
        if order == 0 || order > MAX_ORDER || counts.len() != order || chops.len() != order {
            return None;
        }
        if counts.iter().any(|&c| c >= 1 << 56) || vocab as u64 != counts[0] || vocab < 3 {
            return None;
        }
        let wb = word_bits(vocab);
        let mut off = HEADER.checked_add(order.checked_mul(16)?)?;
        let mut levels: Vec<LevelLayout> = (2..=order).map(|_| LevelLayout::default()).collect();
        if let Some(q) = quant {
            for n in 2..=order {
                let l = &mut levels[n - 2];
                l.prob_centres = off;
                off = off.checked_add(4usize << q.prob_bits)?;
                if n < order {
                    l.backoff_centres = off;
                    off = off.checked_add(4usize << q.backoff_bits)?;
                }
            }
            off = pad8(off)?;
        }
        let unigrams = off;
        off = off.checked_add(vocab.checked_mul(8)?)?;
        let uni_next = off;
        let uni_next_bits = if order > 1 { bits_for(counts[1]) } else { 0 };
        if order > 1 {
            off = off.checked_add(packed_bytes(vocab as u64 + 1, uni_next_bits)?)?;
        }
        for n in 2..=order {
            let middle = n < order;
            let l = &mut levels[n - 2];
            let (pb, bb) = match quant {
                Some(q) => (
                    q.prob_bits as u32,
                    if middle { q.backoff_bits as u32 } else { 0 },
                ),
                None => (32, if middle { 32 } else { 0 }),
            };
            l.prob_bits = pb;
            l.backoff_bits = bb;
            l.entries = counts[n - 1] + middle as u64;
            if middle {
                let max_next = counts[n];
                let full = bits_for(max_next);
                let chop = chops[n - 1];
                if chop > full.min(MAX_CHOP) {
                    return None;
                }
                l.next_bits = full - chop;
                l.table_len = ((max_next >> l.next_bits) + 1) as usize;
            } else if chops[n - 1] != 0 {
                return None;
            }
            l.total_bits = wb + pb + bb + l.next_bits;
            l.records = off;
            off = off.checked_add(packed_bytes(l.entries, l.total_bits)?)?;
            l.table = off;
            off = off.checked_add(l.table_len.checked_mul(8)?)?;
        }
        if chops[0] != 0 {
            return None;
        }
        let id_map = off;
        off = off.checked_add(pad8(vocab.checked_mul(4)?)?)?;
        let vocab_table = off;
        off = off.checked_add(vocab_bytes(vocab_slots, vocab, strings_len)?)?;
        Some(TrieLayout {
            order,
            vocab,
            vocab_slots,
            strings_len,
            flags,
            quant,
            counts,
            chops,
            word_bits: wb,
            unigrams,
            uni_next,
            uni_next_bits,
            levels,
            id_map,
            vocab_table,
            total: off,
        })
    }

    fn offsets(&self) -> usize {
        self.vocab_table + self.vocab_slots * 16
    }
    fn strings(&self) -> usize {
        self.offsets() + (self.vocab + 1) * 8
    }

    fn write_header(&self, b: &mut [u8]) {
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&ENDIAN.to_le_bytes());
        b[12..16].copy_from_slice(&VERSION.to_le_bytes());
        let put = |b: &mut [u8], o: usize, v: u64| b[o..o + 8].copy_from_slice(&v.to_le_bytes());
        put(b, 16, self.order as u64);
        put(b, 24, self.vocab as u64);
        put(b, 32, self.vocab_slots as u64);
        put(b, 40, self.strings_len as u64);
        put(b, 48, self.flags);
        let (q, bo) = self.quant.map_or((0, 0), |q| (q.prob_bits, q.backoff_bits));
        b[56] = q;
        b[57] = bo;
        for i in 0..self.order {
            put(b, HEADER + 16 * i, self.counts[i]);
            put(b, HEADER + 16 * i + 8, self.chops[i] as u64);
        }
    }

    fn read_header(b: &[u8]) -> std::result::Result<TrieLayout, String> {
        let version = crate::model::check_header_start(
            b,
            MAGIC,
            HEADER,
            "not a firth trie model (bad magic)",
        )?;
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        if version != VERSION {
            return Err(format!("trie model version {version} is not supported (this firth reads version {VERSION}); the file is damaged or from a newer firth; {REBUILD}"));
        }
        let order = u64_at(16) as usize;
        if order == 0 || order > MAX_ORDER {
            return Err(format!(
                "the file is damaged: its header has an impossible order {order} (1 to {MAX_ORDER}); {REBUILD}"
            ));
        }
        if b.len() < HEADER + 16 * order {
            return Err(format!(
                "the file is damaged: it ends at byte {} inside the header of an order-{order} model (truncated); {REBUILD}",
                b.len()
            ));
        }
        let quant = match (b[56], b[57]) {
            (0, 0) => None,
            (q, bo) => Some(Quant::new(q, bo).map_err(|_| {
                format!("the file is damaged: its header has impossible quantization bits {q} and {bo}; {REBUILD}")
            })?),
        };
        let counts: Vec<u64> = (0..order).map(|i| u64_at(HEADER + 16 * i)).collect();
        let chops: Vec<u32> = (0..order)
            .map(|i| u64_at(HEADER + 16 * i + 8).min(u32::MAX as u64) as u32)
            .collect();
        let vocab_slots = u64_at(32) as usize;
        let vocab = u64_at(24) as usize;
        if vocab_slots <= vocab {
            return Err(format!(
                "the file is damaged: its header is inconsistent (corrupt); {REBUILD}"
            ));
        }
        TrieLayout::compute(
            order,
            vocab,
            vocab_slots,
            u64_at(40) as usize,
            u64_at(48),
            quant,
            counts,
            chops,
        )
        .ok_or_else(|| {
            format!(
                "the file is damaged: its header describes impossible sizes (corrupt); {REBUILD}"
            )
        })
    }
}

/// Sets `bits` bits at bit offset `at` of `b` to `v` (which fits), over zeroed bits.
#[inline]
fn put_bits(b: &mut [u8], at: u64, bits: u32, v: u64) {
    debug_assert!(bits == 64 || v >> bits == 0);
    let byte = (at >> 3) as usize;
    let shift = (at & 7) as u32;
    let mut word = u64::from_le_bytes(b[byte..byte + 8].try_into().expect("8 bytes"));
    word |= v << shift;
    b[byte..byte + 8].copy_from_slice(&word.to_le_bytes());
    if shift + bits > 64 {
        b[byte + 8] |= (v >> (64 - shift)) as u8;
    }
}

/// Reads `mask`'s bits at bit offset `at` from `base`; fields are at most 57 bits wide.
///
/// # Safety
/// The 8 bytes from byte `at / 8` must lie inside the section (each ends in 8 spare bytes).
#[inline(always)]
unsafe fn get_bits(base: *const u8, at: u64, mask: u64) -> u64 {
    let w = std::ptr::read_unaligned(base.add((at >> 3) as usize) as *const u64);
    (u64::from_le(w) >> (at & 7)) & mask
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Builds the trie's bytes (without the trailer).
fn layout_bytes(arpa_parts: &TrieParts, quant: Option<Quant>) -> Result<(TrieLayout, Vec<u64>)> {
    use rayon::prelude::*;
    let (parts, to_trie) = renumber(arpa_parts);
    let parts = &parts;
    let order = parts.order();
    let vocab = parts.words.len();
    let b = word_bits(vocab);
    let mut counts = vec![vocab as u64];
    counts.extend(parts.orders.iter().map(|d| d.keys.len() as u64));
    if let Some(n) = (2..=order).find(|&n| counts[n - 1] == 0) {
        return Err(Error::Config(format!(
            "the model has no {n}-grams; a trie needs n-grams of every order up to its own"
        )));
    }
    // Child ranges: record j of order n-1 owns the order-n records whose key >> b is its key.
    // Every n-gram's suffix must be there (true of Kneser-Ney models).
    let mut firsts: Vec<Vec<u64>> = Vec::with_capacity(order);
    for n in 2..=order {
        let d = &parts.orders[n - 2];
        let parent_count = counts[n - 2] as usize;
        let parent_key = |j: usize| -> u128 {
            if n == 2 {
                j as u128
            } else {
                parts.orders[n - 3].keys[j]
            }
        };
        let mut first = Vec::with_capacity(parent_count + 1);
        let mut i = 0usize;
        for j in 0..parent_count {
            let pk = parent_key(j);
            let start = i;
            while i < d.keys.len() && d.keys[i] >> b == pk {
                i += 1;
            }
            first.push(start as u64);
            if i < d.keys.len() && d.keys[i] >> b < pk {
                return Err(missing_suffix(parts, n, d.keys[i]));
            }
        }
        if i < d.keys.len() {
            return Err(missing_suffix(parts, n, d.keys[i]));
        }
        first.push(d.keys.len() as u64);
        firsts.push(first);
    }
    // Extension marks: an n-gram extends when it is the context (prefix) of a longer one.
    let mut uni = parts.unigrams.clone();
    let mut backoffs: Vec<Vec<f32>> = parts.orders.iter().map(|d| d.backoffs.clone()).collect();
    for n in 2..=order {
        let d = &parts.orders[n - 2];
        let low = b * (n as u32 - 1);
        let marks: Vec<usize> = d
            .keys
            .par_iter()
            .map(|&k| {
                let prefix = k & ((1u128 << low) - 1);
                if n == 2 {
                    Some(prefix as usize)
                } else {
                    parts.orders[n - 3].keys.binary_search(&prefix).ok()
                }
            })
            .flatten()
            .collect();
        let mut ext = vec![false; counts[n - 2] as usize];
        for m in marks {
            ext[m] = true;
        }
        let mark = |x: &mut f32, e: bool| {
            if *x == 0.0 {
                *x = if e { 0.0 } else { NO_EXTENSION };
            }
        };
        if n == 2 {
            for (u, &e) in uni.iter_mut().zip(&ext) {
                mark(&mut u.backoff, e);
            }
        } else {
            for (x, &e) in backoffs[n - 3].iter_mut().zip(&ext) {
                mark(x, e);
            }
        }
    }
    // The highest order's backoffs do not exist; middle orders without a longer order do not
    // occur (order >= 2 has its last order as the highest).
    let mut chops = vec![0u32; order];
    for n in 2..order {
        chops[n - 1] = best_chop(counts[n - 1] + 1, counts[n]);
    }
    let vocab_slots = hash::slots_for(vocab);
    let strings_len: usize = parts.words.iter().map(|w| w.len()).sum();
    let l = TrieLayout::compute(
        order,
        vocab,
        vocab_slots,
        strings_len,
        parts.flags,
        quant,
        counts.clone(),
        chops,
    )
    .ok_or_else(|| Error::Config("model too large for the trie layout".into()))?;
    let mut words = vec![0u64; l.total / 8];
    // SAFETY: a u64 buffer is valid as bytes, and the byte view covers exactly its memory.
    let bytes =
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, words.len() * 8) };
    l.write_header(bytes);
    // Quantization tables.
    let mut centres: Vec<(Vec<f32>, Vec<f32>)> = Vec::new();
    if let Some(q) = quant {
        for n in 2..=order {
            let d = &parts.orders[n - 2];
            let pc = quantize::train_probs(d.probs.clone(), q.prob_bits);
            let bc = if n < order {
                quantize::train_backoffs(&backoffs[n - 2], q.backoff_bits)
            } else {
                Vec::new()
            };
            let lv = &l.levels[n - 2];
            for (i, c) in pc.iter().enumerate() {
                let o = lv.prob_centres + 4 * i;
                bytes[o..o + 4].copy_from_slice(&c.to_le_bytes());
            }
            for (i, c) in bc.iter().enumerate() {
                let o = lv.backoff_centres + 4 * i;
                bytes[o..o + 4].copy_from_slice(&c.to_le_bytes());
            }
            centres.push((pc, bc));
        }
    }
    for (i, u) in uni.iter().enumerate() {
        let o = l.unigrams + 8 * i;
        bytes[o..o + 4].copy_from_slice(&u.prob.to_le_bytes());
        bytes[o + 4..o + 8].copy_from_slice(&u.backoff.to_le_bytes());
    }
    if order > 1 {
        let sec = &mut bytes[l.uni_next..];
        for (j, &f) in firsts[0].iter().enumerate() {
            put_bits(sec, j as u64 * l.uni_next_bits as u64, l.uni_next_bits, f);
        }
    }
    let wmask = (1u128 << b) - 1;
    for n in 2..=order {
        let d = &parts.orders[n - 2];
        let lv = &l.levels[n - 2];
        let middle = n < order;
        let (sec, rest) = bytes[lv.records..].split_at_mut(lv.table - lv.records);
        let tb = lv.total_bits as u64;
        for i in 0..d.keys.len() {
            let at = i as u64 * tb;
            put_bits(sec, at, b, (d.keys[i] & wmask) as u64);
            let (p, bo) = match &centres.get(n - 2) {
                Some((pc, bc)) => (
                    quantize::encode(pc, 0, d.probs[i]),
                    if middle {
                        quantize::encode_backoff(bc, backoffs[n - 2][i])
                    } else {
                        0
                    },
                ),
                None => (
                    d.probs[i].to_bits() as u64,
                    if middle {
                        backoffs[n - 2][i].to_bits() as u64
                    } else {
                        0
                    },
                ),
            };
            put_bits(sec, at + b as u64, lv.prob_bits, p);
            if middle {
                put_bits(sec, at + (b + lv.prob_bits) as u64, lv.backoff_bits, bo);
            }
        }
        if middle {
            // Low bits of each pointer in its record; the table says where each high value
            // starts: table[h] = the first record whose pointer's high part is >= h.
            let first = &firsts[n - 1];
            let nb = lv.next_bits;
            let next_at = (b + lv.prob_bits + lv.backoff_bits) as u64;
            let mut table = vec![lv.entries; lv.table_len];
            let mut h = 0usize;
            for (i, &f) in first.iter().enumerate() {
                put_bits(sec, i as u64 * tb + next_at, nb, f & mask(nb));
                let high = (f >> nb) as usize;
                while h <= high {
                    table[h] = i as u64;
                    h += 1;
                }
            }
            for (j, t) in table.iter().enumerate() {
                rest[8 * j..8 * j + 8].copy_from_slice(&t.to_le_bytes());
            }
        }
    }
    for (i, &t) in to_trie.iter().enumerate() {
        let o = l.id_map + 4 * i;
        bytes[o..o + 4].copy_from_slice(&t.to_le_bytes());
    }
    write_vocab(&mut bytes[l.vocab_table..], l.vocab_slots, &parts.words);
    Ok((l, words))
}

/// The trie's own word ids: `<unk>`, `<s>`, `</s>` stay 0, 1, 2 and the other words are
/// numbered in the order of their strings' hashes, so any set of words (a node's children) has
/// ids spread evenly over the vocabulary and a search can interpolate (KenLM's trie sorts its
/// vocabulary by hash for the same reason). Returns the renumbered parts (keys re-sorted) and
/// each ARPA id's trie id.
fn renumber(p: &TrieParts) -> (TrieParts, Vec<u32>) {
    use rayon::prelude::*;
    let v = p.words.len();
    let mut rest: Vec<u32> = (3.min(v) as u32..v as u32).collect();
    rest.sort_by_cached_key(|&i| (hash::string(p.words[i as usize].as_bytes()), i));
    let mut to_trie: Vec<u32> = (0..v as u32).collect();
    for (j, &i) in rest.iter().enumerate() {
        to_trie[i as usize] = j as u32 + 3;
    }
    let mut words = vec![String::new(); v];
    let mut unigrams = vec![ProbBackoff::default(); v];
    for i in 0..v {
        words[to_trie[i] as usize] = p.words[i].clone();
        unigrams[to_trie[i] as usize] = p.unigrams[i];
    }
    let b = word_bits(v);
    let orders = p
        .orders
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let n = i + 2;
            let keys: Vec<u128> = d
                .keys
                .par_iter()
                .map(|&k| {
                    let mut out = 0u128;
                    for (j, w) in key_words(k, n, b).enumerate() {
                        out |= (to_trie[w as usize] as u128) << (b as usize * j);
                    }
                    out
                })
                .collect();
            sorted(keys, d.probs.clone(), d.backoffs.clone())
        })
        .collect();
    (
        TrieParts {
            words,
            unigrams,
            orders,
            flags: p.flags,
        },
        to_trie,
    )
}

/// One order's n-grams sorted by key.
fn sorted(keys: Vec<u128>, probs: Vec<f32>, backoffs: Vec<f32>) -> OrderData {
    use rayon::prelude::*;
    if keys.windows(2).all(|w| w[0] < w[1]) {
        return OrderData {
            keys,
            probs,
            backoffs,
        };
    }
    let mut perm: Vec<u32> = (0..keys.len() as u32).collect();
    perm.par_sort_unstable_by_key(|&j| keys[j as usize]);
    OrderData {
        keys: perm.iter().map(|&j| keys[j as usize]).collect(),
        probs: perm.iter().map(|&j| probs[j as usize]).collect(),
        backoffs: if backoffs.is_empty() {
            backoffs
        } else {
            perm.iter().map(|&j| backoffs[j as usize]).collect()
        },
    }
}

fn missing_suffix(parts: &TrieParts, n: usize, key: u128) -> Error {
    let b = word_bits(parts.words.len());
    Error::Config(format!(
        "the {n}-gram \"{}\" has no {}-gram \"{}\" in the model: the trie layout needs every n-gram's suffix (Kneser-Ney models have them; SRILM-pruned ones may not); use --layout probing",
        parts.describe(key, n),
        n - 1,
        parts.describe(key >> b, n - 1)
    ))
}

/// Writes `parts` as a trie file, atomically.
pub fn write_trie(parts: &TrieParts, quant: Option<Quant>, path: &Path) -> Result<u64> {
    let (l, words) = layout_bytes(parts, quant)?;
    // SAFETY: viewing initialised u64s as bytes is always valid.
    let bytes = unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, l.total) };
    write_atomic(path, |out| {
        let mut w = CrcWriter::new(out);
        w.write_all(bytes)?;
        w.finish()
    })?;
    Ok((l.total + TRAILER) as u64)
}

/// Converts an ARPA file to a trie file; returns the file's size.
pub fn arpa_to_trie(arpa: &Path, out: &Path, quant: Option<Quant>, flags: u64) -> Result<u64> {
    let mut parts = TrieParts::read_arpa(arpa)?;
    parts.flags = flags;
    write_trie(&parts, quant, out)
}

/// One order of a loaded trie, resolved for the query path.
#[derive(Clone, Copy)]
struct Level {
    base: *const u8,
    /// Records (without a middle order's end record).
    count: u64,
    total_bits: u64,
    word_mask: u64,
    prob_at: u64,
    prob_mask: u64,
    backoff_at: u64,
    backoff_mask: u64,
    next_at: u64,
    next_bits: u32,
    next_mask: u64,
    table: *const u64,
    table_len: usize,
    /// Words are below this.
    vocab: u64,
    /// Children live in the next level, which has this many records.
    child_count: u64,
    prob_centres: *const f32,
    backoff_centres: *const f32,
}

impl Level {
    fn empty() -> Level {
        Level {
            base: std::ptr::null(),
            count: 0,
            total_bits: 0,
            word_mask: 0,
            prob_at: 0,
            prob_mask: 0,
            backoff_at: 0,
            backoff_mask: 0,
            next_at: 0,
            next_bits: 0,
            next_mask: 0,
            table: std::ptr::null(),
            table_len: 0,
            vocab: 0,
            child_count: 0,
            prob_centres: std::ptr::null(),
            backoff_centres: std::ptr::null(),
        }
    }

    #[inline(always)]
    fn word(&self, i: u64) -> u64 {
        debug_assert!(i <= self.count);
        // SAFETY: i <= count (callers clamp ranges), so the record lies in the section.
        unsafe { get_bits(self.base, i * self.total_bits, self.word_mask) }
    }

    /// The record of `word` among records `lo..hi` (sorted by word), if there. Trie ids are
    /// spread evenly (see [`renumber`]), so the search guesses the position from the value,
    /// starting from the bounds 0 and |V| without reading a record (as KenLM's search does),
    /// and falls back to halving if guessing is slow.
    #[inline(always)]
    fn find(&self, mut lo: u64, mut hi: u64, word: u32) -> Option<u64> {
        let w = word as u64;
        let (mut lo_v, mut hi_v) = (0u64, self.vocab);
        // Keys in lo..hi are distinct, sorted and in lo_v..hi_v.
        let mut guesses = 0;
        while hi - lo > 4 {
            if w < lo_v || w >= hi_v {
                return None;
            }
            // A node's children are distinct words, so hi - lo <= |V| < 2^32 and the product
            // fits; the clamp keeps a damaged file's ranges inside lo..hi anyway.
            let pivot = if guesses < 6 {
                lo + ((w - lo_v).wrapping_mul(hi - lo) / (hi_v - lo_v)).min(hi - lo - 1)
            } else {
                lo + (hi - lo) / 2
            };
            guesses += 1;
            let k = self.word(pivot);
            if k == w {
                return Some(pivot);
            }
            if k < w {
                lo = pivot + 1;
                lo_v = k + 1;
            } else {
                hi = pivot;
                hi_v = k;
            }
        }
        (lo..hi).find(|&i| self.word(i) == w)
    }

    /// The probability of the record at bit `at` (a record's start, `i * total_bits`).
    #[inline(always)]
    fn prob(&self, at: u64) -> f32 {
        self.value(at + self.prob_at, self.prob_mask, self.prob_centres)
    }

    /// The backoff of the record at bit `at`.
    #[inline(always)]
    fn backoff(&self, at: u64) -> f32 {
        self.value(
            at + self.backoff_at,
            self.backoff_mask,
            self.backoff_centres,
        )
    }

    /// The value stored at bit `at`: a float's bits, or with `centres` (quantized) a code into
    /// that table of bin centres.
    #[inline(always)]
    fn value(&self, at: u64, mask: u64, centres: *const f32) -> f32 {
        // SAFETY: `at` lies in a record (i < count) of this level, and a code indexes a table of
        // 2^bits centres.
        unsafe {
            let raw = get_bits(self.base, at, mask);
            if centres.is_null() {
                f32::from_bits(raw as u32)
            } else {
                *centres.add(raw as usize)
            }
        }
    }

    /// The children of record `i`: the pointers stored with records `i` and `i + 1`, their high
    /// bits from the table (one search: the second high part is the first's or a little more).
    /// Clamped so a damaged file cannot point outside the arrays.
    #[inline(always)]
    fn children(&self, i: u64) -> (u64, u64) {
        let at = i * self.total_bits + self.next_at;
        self.children_at(i, at)
    }

    /// [`Level::children`] with `at` = the bit of record `i`'s pointer.
    #[inline(always)]
    fn children_at(&self, i: u64, at: u64) -> (u64, u64) {
        // SAFETY: i < count, so records i and i + 1 (the end record) lie in the section.
        let (la, lb) = unsafe {
            (
                get_bits(self.base, at, self.next_mask),
                get_bits(self.base, at + self.total_bits, self.next_mask),
            )
        };
        let (a, b) = if self.table_len <= 1 {
            (la, lb)
        } else {
            // SAFETY: the table has table_len entries inside the section.
            let table = unsafe { std::slice::from_raw_parts(self.table, self.table_len) };
            let mut h = table.partition_point(|&t| t <= i).saturating_sub(1);
            let a = ((h as u64) << self.next_bits) | la;
            while h + 1 < table.len() && table[h + 1] <= i + 1 {
                h += 1;
            }
            (a, ((h as u64) << self.next_bits) | lb)
        };
        let b = b.min(self.child_count);
        (a.min(b), b)
    }
}

/// A trie model, mapped from a file or built in memory; scores exactly as the probing
/// [`Model`] of the same ARPA file when unquantized.
pub struct TrieModel {
    backing: Backing,
    l: TrieLayout,
    levels: [Level; MAX_ORDER],
    unigrams: *const ProbBackoff,
    uni_next: *const u8,
    uni_next_mask: u64,
    uni_next_bits: u64,
    /// Records of order 2 (the unigrams' children).
    bigrams: u64,
    vocab: *const VocabSlot,
    offsets: *const u64,
    strings: *const u8,
    verification: std::sync::Mutex<Verification>,
    source: Option<std::path::PathBuf>,
}

// SAFETY: a TrieModel is immutable after construction; the pointers only alias its own
// read-only bytes, so sharing or sending it is as safe as sharing a `&[u8]`.
unsafe impl Send for TrieModel {}
// SAFETY: as above, all access through the pointers is read-only.
unsafe impl Sync for TrieModel {}

impl TrieModel {
    fn bytes(&self) -> &[u8] {
        match &self.backing {
            // SAFETY: viewing initialised u64s as bytes is always valid.
            Backing::Owned(v) => unsafe {
                std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len() * 8)
            },
            Backing::Mapped(m) => &m[..],
        }
    }

    fn new(backing: Backing, l: TrieLayout) -> std::result::Result<TrieModel, String> {
        let mut m = TrieModel {
            backing,
            l,
            levels: [Level::empty(); MAX_ORDER],
            unigrams: std::ptr::null(),
            uni_next: std::ptr::null(),
            uni_next_mask: 0,
            uni_next_bits: 0,
            bigrams: 0,
            vocab: std::ptr::null(),
            offsets: std::ptr::null(),
            strings: std::ptr::null(),
            verification: std::sync::Mutex::new(Verification::Done),
            source: None,
        };
        let l = m.l.clone();
        let bytes = m.bytes();
        assert!(bytes.len() >= l.total && (bytes.as_ptr() as usize).is_multiple_of(8));
        let base = bytes.as_ptr();
        // SAFETY (all `add`s below): every offset comes from `TrieLayout::compute`, which keeps
        // each section inside `l.total` bytes, checked above to be in the buffer; sections are
        // 8-byte aligned in an 8-byte aligned buffer.
        unsafe {
            m.unigrams = base.add(l.unigrams) as *const ProbBackoff;
            m.uni_next = base.add(l.uni_next);
            m.uni_next_mask = mask(l.uni_next_bits);
            m.uni_next_bits = l.uni_next_bits as u64;
            m.bigrams = l.counts.get(1).copied().unwrap_or(0);
            m.vocab = base.add(l.vocab_table) as *const VocabSlot;
            m.offsets = base.add(l.offsets()) as *const u64;
            m.strings = base.add(l.strings());
            let wb = l.word_bits as u64;
            for n in 2..=l.order {
                let ll = &l.levels[n - 2];
                let middle = n < l.order;
                m.levels[n - 2] = Level {
                    base: base.add(ll.records),
                    count: l.counts[n - 1],
                    total_bits: ll.total_bits as u64,
                    word_mask: mask(l.word_bits),
                    prob_at: wb,
                    prob_mask: mask(ll.prob_bits),
                    backoff_at: wb + ll.prob_bits as u64,
                    backoff_mask: mask(ll.backoff_bits),
                    next_at: wb + (ll.prob_bits + ll.backoff_bits) as u64,
                    next_bits: ll.next_bits,
                    next_mask: mask(ll.next_bits),
                    table: base.add(ll.table) as *const u64,
                    table_len: ll.table_len,
                    vocab: l.vocab as u64,
                    child_count: if middle { l.counts[n] } else { 0 },
                    prob_centres: if l.quant.is_some() {
                        base.add(ll.prob_centres) as *const f32
                    } else {
                        std::ptr::null()
                    },
                    backoff_centres: if l.quant.is_some() && middle {
                        base.add(ll.backoff_centres) as *const f32
                    } else {
                        std::ptr::null()
                    },
                };
            }
        }
        // SAFETY: offsets and strings were just resolved inside the buffer.
        let (offsets, strings) = unsafe {
            (
                std::slice::from_raw_parts(m.offsets, l.vocab + 1),
                std::slice::from_raw_parts(m.strings, l.strings_len),
            )
        };
        check_vocab_sections(offsets, strings)?;
        Ok(m)
    }

    /// Builds a trie in memory (quantized when `quant` is given).
    pub fn from_parts(parts: &TrieParts, quant: Option<Quant>) -> Result<TrieModel> {
        let (l, words) = layout_bytes(parts, quant)?;
        TrieModel::new(Backing::Owned(words), l).map_err(Error::Config)
    }

    /// Maps a trie file, validating header, size and (unless skipped) the checksum.
    pub fn load(path: &Path, checksum: Checksum) -> Result<TrieModel> {
        let map = crate::model::map_model_file(path)?;
        let bad = |msg: String| Error::File {
            path: shown(path),
            msg,
        };
        let now = match checksum {
            Checksum::Background => Checksum::Skip,
            c => c,
        };
        let l = check_trie(&map, now).map_err(bad)?;
        let map = std::sync::Arc::new(map);
        let mut m = TrieModel::new(Backing::Mapped(map.clone()), l).map_err(bad)?;
        if checksum == Checksum::Background {
            m.source = Some(path.to_path_buf());
            let pending =
                std::thread::spawn(move || check_trie(&map[..], Checksum::Background).map(drop));
            m.verification = std::sync::Mutex::new(Verification::Pending(pending));
        }
        Ok(m)
    }

    /// [`TrieModel::load`] on a file's bytes (copied); `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], checksum: Checksum, path: &Path) -> Result<TrieModel> {
        let bad = |msg: String| Error::File {
            path: shown(path),
            msg,
        };
        let l = check_trie(bytes, checksum).map_err(bad)?;
        let words: Vec<u64> = bytes[..l.total]
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        TrieModel::new(Backing::Owned(words), l).map_err(bad)
    }

    /// Waits for a background checksum and returns its verdict (see [`Model::verified`]).
    pub fn verified(&self) -> Result<()> {
        settle(&self.verification, self.source.as_deref())
    }

    pub fn order(&self) -> usize {
        self.l.order
    }
    pub fn counts(&self) -> &[u64] {
        &self.l.counts
    }
    pub fn vocab_size(&self) -> usize {
        self.l.vocab
    }
    pub fn quant(&self) -> Option<Quant> {
        self.l.quant
    }
    pub fn is_chars(&self) -> bool {
        self.l.flags & crate::model::FLAG_CHARS != 0
    }
    /// Marks the model as a character model (or not).
    pub fn with_chars(mut self, chars: bool) -> TrieModel {
        if chars {
            self.l.flags |= crate::model::FLAG_CHARS;
        } else {
            self.l.flags &= !crate::model::FLAG_CHARS;
        }
        self
    }
    /// Size in bytes of the structure (the file less its 8-byte trailer).
    pub fn size_bytes(&self) -> usize {
        self.l.total
    }

    #[inline]
    pub fn unigrams(&self) -> &[ProbBackoff] {
        // SAFETY: resolved in `TrieModel::new`; lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.unigrams, self.l.vocab) }
    }

    fn vocab_parts(&self) -> (&[VocabSlot], &[u64], &[u8]) {
        // SAFETY: resolved in `TrieModel::new`, offsets checked there.
        unsafe {
            (
                std::slice::from_raw_parts(self.vocab, self.l.vocab_slots),
                std::slice::from_raw_parts(self.offsets, self.l.vocab + 1),
                std::slice::from_raw_parts(self.strings, self.l.strings_len),
            )
        }
    }

    pub fn word_id(&self, w: &str) -> u32 {
        let (s, o, st) = self.vocab_parts();
        vocab_lookup(s, o, st, w)
    }

    pub fn word(&self, id: u32) -> &str {
        assert!((id as usize) < self.l.vocab);
        let (_, o, st) = self.vocab_parts();
        std::str::from_utf8(vocab_word(o, st, id)).unwrap_or("<bad>")
    }

    /// The bigrams ending in `w`: its children.
    #[inline(always)]
    fn unigram_children(&self, w: u32) -> (u64, u64) {
        let bits = self.uni_next_bits;
        let limit = self.bigrams;
        // SAFETY: w < vocab (the unigram lookup before this checked it), so entries w and w + 1
        // lie among the |V| + 1 packed entries.
        let (a, b) = unsafe {
            (
                get_bits(self.uni_next, w as u64 * bits, self.uni_next_mask),
                get_bits(self.uni_next, (w as u64 + 1) * bits, self.uni_next_mask),
            )
        };
        let b = b.min(limit);
        (a.min(b), b)
    }

    /// The state at the start of a sentence: the context `<s>`.
    pub fn begin_state(&self) -> State {
        State::sentence_start(self.order(), self.unigrams()[BOS as usize].backoff)
    }

    /// A state with no context.
    pub fn null_state(&self) -> State {
        State::null()
    }

    /// Scores `word` after `state` (see [`Model::score`]). The state written to `out` keeps
    /// only the context up to the longest matched n-gram that extends to the right.
    #[inline]
    pub fn score(&self, state: &State, word: u32, out: &mut State) -> (f32, usize) {
        let n = self.l.order;
        let uni = self.unigrams()[word as usize];
        let mut prob = uni.prob;
        let mut matched = 1;
        out.words[0] = word;
        out.backoffs[0] = uni.backoff;
        let mut keep = extends(uni.backoff) as usize;
        if n > 1 && state.len > 0 {
            let (mut lo, mut hi) = self.unigram_children(word);
            let mut k = 0;
            while k < state.len && lo < hi {
                let lv = &self.levels[k];
                let Some(i) = lv.find(lo, hi, state.words[k]) else {
                    break;
                };
                let at = i * lv.total_bits;
                prob = lv.prob(at);
                matched = k + 2;
                if matched < n {
                    let b = lv.backoff(at);
                    out.words[k + 1] = state.words[k];
                    out.backoffs[k + 1] = b;
                    if extends(b) {
                        keep = matched;
                    }
                    (lo, hi) = lv.children_at(i, at + lv.next_at);
                }
                k += 1;
            }
        }
        for j in matched - 1..state.len {
            prob += state.backoffs[j];
        }
        out.len = keep.min(n - 1);
        (prob, matched)
    }

    /// Every n-gram back out of the trie, in key order (the ARPA writer's order).
    pub fn to_parts(&self) -> Result<TrieParts> {
        let order = self.l.order;
        let b = self.l.word_bits;
        let mut orders: Vec<OrderData> = Vec::with_capacity(order.saturating_sub(1));
        for n in 2..=order {
            let lv = &self.levels[n - 2];
            let mut d = OrderData {
                keys: Vec::with_capacity(lv.count as usize),
                probs: Vec::with_capacity(lv.count as usize),
                backoffs: Vec::new(),
            };
            let parents = self.l.counts[n - 2];
            for j in 0..parents {
                let (pk, (lo, hi)) = if n == 2 {
                    (j as u128, self.unigram_children(j as u32))
                } else {
                    let pl = &self.levels[n - 3];
                    (orders[n - 3].keys[j as usize], pl.children(j))
                };
                for i in lo..hi {
                    let at = i * lv.total_bits;
                    d.keys.push((pk << b) | lv.word(i) as u128);
                    d.probs.push(lv.prob(at));
                    if n < order {
                        d.backoffs.push(lv.backoff(at));
                    }
                }
            }
            orders.push(d);
        }
        // Back to the ARPA file's ids and order.
        let v = self.l.vocab;
        let to_trie: Vec<u32> = self.bytes()[self.l.id_map..self.l.id_map + 4 * v]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        let mut to_arpa = vec![u32::MAX; v];
        for (i, &t) in to_trie.iter().enumerate() {
            match to_arpa.get_mut(t as usize) {
                Some(x) if *x == u32::MAX => *x = i as u32,
                _ => {
                    return Err(Error::Config(format!(
                        "the trie file is damaged: its word id map is not a permutation; {REBUILD}"
                    )))
                }
            }
        }
        let words = to_trie.iter().map(|&t| self.word(t).to_string()).collect();
        let unigrams = to_trie
            .iter()
            .map(|&t| self.unigrams()[t as usize])
            .collect();
        let orders = orders
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                let n = i + 2;
                let keys = d
                    .keys
                    .iter()
                    .map(|&k| {
                        let mut out = 0u128;
                        for (j, w) in key_words(k, n, b).enumerate() {
                            out |= (to_arpa[w as usize] as u128) << (b as usize * j);
                        }
                        out
                    })
                    .collect();
                sorted(keys, d.probs, d.backoffs)
            })
            .collect();
        Ok(TrieParts {
            words,
            unigrams,
            orders,
            flags: self.l.flags,
        })
    }

    /// The same model in the probing layout (ARPA ids).
    pub fn to_probing(&self) -> Result<Model> {
        Ok(parts_to_probing(&self.to_parts()?))
    }

    /// Writes the model as ARPA text, in the order of the ARPA file it was made from (the order
    /// lmplz and firth write).
    pub fn write_arpa(&self, path: &Path) -> Result<()> {
        let p = self.to_parts()?;
        write_atomic(path, |w| write_parts_arpa(&p, w))
    }
}

/// A probing model holding the same n-grams.
pub fn parts_to_probing(p: &TrieParts) -> Model {
    let b = word_bits(p.words.len());
    let mut tables = Vec::new();
    let mut counts = vec![p.words.len() as u64];
    let mut ids = Vec::with_capacity(MAX_ORDER);
    for (i, d) in p.orders.iter().enumerate() {
        let n = i + 2;
        let mut t = TableBuilder::new(d.keys.len());
        for (j, &k) in d.keys.iter().enumerate() {
            ids.clear();
            ids.extend(key_words(k, n, b));
            let (slot, _) = t.insert(hash::ngram(&ids));
            t.slots[slot].prob = d.probs[j];
            t.slots[slot].backoff = d.backoffs.get(j).copied().unwrap_or(0.0);
        }
        counts.push(d.keys.len() as u64);
        tables.push(t.slots);
    }
    Model::from_parts(Parts {
        words: p.words.clone(),
        unigrams: p.unigrams.clone(),
        tables,
        counts,
        flags: p.flags,
    })
}

fn write_parts_arpa(p: &TrieParts, w: &mut dyn Write) -> std::io::Result<()> {
    use crate::arpa::push_float;
    let order = p.order();
    let b = word_bits(p.words.len());
    writeln!(w, "\\data\\")?;
    writeln!(w, "ngram 1={}", p.words.len())?;
    for (i, d) in p.orders.iter().enumerate() {
        writeln!(w, "ngram {}={}", i + 2, d.keys.len())?;
    }
    writeln!(w)?;
    let mut fb = zmij::Buffer::new();
    let mut s = String::with_capacity(1 << 16);
    writeln!(w, "\\1-grams:")?;
    for (id, u) in p.unigrams.iter().enumerate() {
        push_float(&mut s, &mut fb, u.prob);
        s.push('\t');
        s.push_str(&p.words[id]);
        if order > 1 {
            s.push('\t');
            push_float(&mut s, &mut fb, u.backoff);
        }
        s.push('\n');
        if s.len() > 60_000 {
            w.write_all(s.as_bytes())?;
            s.clear();
        }
    }
    w.write_all(s.as_bytes())?;
    s.clear();
    writeln!(w)?;
    for (i, d) in p.orders.iter().enumerate() {
        let n = i + 2;
        writeln!(w, "\\{n}-grams:")?;
        for (j, &k) in d.keys.iter().enumerate() {
            push_float(&mut s, &mut fb, d.probs[j]);
            s.push('\t');
            for (x, id) in key_words(k, n, b).enumerate() {
                if x > 0 {
                    s.push(' ');
                }
                s.push_str(&p.words[id as usize]);
            }
            if n < order {
                s.push('\t');
                push_float(&mut s, &mut fb, d.backoffs[j]);
            }
            s.push('\n');
            if s.len() > 60_000 {
                w.write_all(s.as_bytes())?;
                s.clear();
            }
        }
        w.write_all(s.as_bytes())?;
        s.clear();
        writeln!(w)?;
    }
    writeln!(w, "\\end\\")
}

/// What [`convert`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Arpa,
    Probing,
    Trie(Option<Quant>),
}

/// Converts a model file between ARPA, the probing layout and the trie layout; `chars` marks
/// the output as a character model (binary outputs only; a trie input keeps its own mark).
/// Returns the output's size in bytes. A probing file cannot be the input: it keeps hashes of
/// the n-grams, not their words.
pub fn convert(input: &Path, output: &Path, to: Target, chars: bool) -> Result<u64> {
    let flags = if chars { crate::model::FLAG_CHARS } else { 0 };
    let parts = if is_trie(input)? {
        let mut p = TrieModel::load(input, Checksum::Verify)?.to_parts()?;
        p.flags |= flags;
        Some(p)
    } else if crate::model::is_binary(input)? {
        return Err(Error::File {
            path: shown(input),
            msg: "a probing binary keeps only hashes of its n-grams, not their words, so it cannot be converted; convert the ARPA file it was built from (or build again with --arpa)".into(),
        });
    } else {
        None
    };
    match (to, parts) {
        (Target::Trie(q), Some(p)) => write_trie(&p, q, output),
        (Target::Trie(q), None) => arpa_to_trie(input, output, q, flags),
        (Target::Probing, Some(p)) => {
            parts_to_probing(&p).write_binary(output)?;
            file_size(output)
        }
        (Target::Probing, None) => {
            crate::arpa::read_arpa(input)?
                .with_chars(chars)
                .write_binary(output)?;
            file_size(output)
        }
        (Target::Arpa, Some(p)) => {
            write_atomic(output, |w| write_parts_arpa(&p, w))?;
            file_size(output)
        }
        (Target::Arpa, None) => {
            let p = TrieParts::read_arpa(input)?;
            write_atomic(output, |w| write_parts_arpa(&p, w))?;
            file_size(output)
        }
    }
}

fn file_size(p: &Path) -> Result<u64> {
    std::fs::metadata(p)
        .map(|m| m.len())
        .map_err(|source| Error::Read {
            path: shown(p),
            err: source,
        })
}

/// The header, the size against it and (unless skipped) the checksum of a trie file's bytes.
fn check_trie(b: &[u8], checksum: Checksum) -> std::result::Result<TrieLayout, String> {
    let l = TrieLayout::read_header(b)?;
    if b.len() != l.total + TRAILER {
        return Err(format!(
            "the file is damaged: it is {} bytes but its header describes {} (truncated or overwritten); {REBUILD}",
            b.len(),
            l.total + TRAILER
        ));
    }
    if checksum != Checksum::Skip {
        let stored = u32::from_le_bytes(b[l.total..l.total + 4].try_into().expect("4 bytes"));
        let computed = if checksum == Checksum::Background {
            crc32fast::hash(&b[..l.total])
        } else {
            crc32_parallel(&b[..l.total])
        };
        if &b[l.total + 4..] != TRAILER_TAG || stored != computed {
            return Err(format!(
                "the file is damaged (checksum mismatch: stored {stored:08x}, computed {computed:08x}); {REBUILD}"
            ));
        }
    }
    Ok(l)
}

/// True when `path` starts with the trie magic (or a damaged copy of it).
pub fn is_trie(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|source| Error::Read {
        path: shown(path),
        err: source,
    })?;
    let mut m = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        match f.read(&mut m[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(source) => {
                return Err(Error::Read {
                    path: shown(path),
                    err: source,
                })
            }
        }
    }
    Ok(got == 8 && magic_distance_to(&m, MAGIC) <= MAGIC_DAMAGE_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip() {
        let mut b = vec![0u8; 64];
        let fields: Vec<(u64, u32, u64)> = vec![
            (0, 13, 4097),
            (13, 32, 0xdead_beef),
            (45, 57, (1 << 57) - 3),
            (102, 1, 1),
        ];
        for &(at, bits, v) in &fields {
            put_bits(&mut b, at, bits, v);
        }
        for &(at, bits, v) in &fields {
            // SAFETY: every field ends well before the buffer's last 8 bytes.
            assert_eq!(unsafe { get_bits(b.as_ptr(), at, mask(bits)) }, v);
        }
    }

    #[test]
    fn chop_trades_table_for_record_bits() {
        // No records: nothing to save, no chop.
        assert_eq!(best_chop(1, 1 << 20), 0);
        // Many records pointing into a few more: chopping pays until the table costs more.
        let c = best_chop(1_000_000, 3_000_000);
        assert!(c > 0 && c < 22, "{c}");
        // The table stays within its bound: 3M needs 22 bits, 1024 entries allow 10 chopped.
        assert!((3_000_000u64 >> (22 - c)) < MAX_TABLE, "{c}");
        assert_eq!(c, 10);
    }
}
