//! The query structure, which is also the binary file format.
//!
//! Layout (little-endian, every section 8-byte aligned, so a `mmap` of the file is used in place):
//!
//! ```text
//! header   magic "FIRTHNG\x01", 0x01020304 (endianness check), version, order, |V|,
//!          vocabulary slots, string bytes, flags, then (count, slots) per order
//! unigrams |V| x (log10 prob: f32, log10 backoff: f32), indexed by word id
//! order n  slots x (key: u64, log10 prob: f32, log10 backoff: f32) for n = 2..N, open addressing
//!          with linear probing; key = 64-bit hash of the word ids (see [`crate::hash`]), 0 = empty
//! vocab    slots x (string hash: u64, id: u32, pad: u32): word -> id
//! offsets  (|V| + 1) x u64 into the string bytes: id -> word
//! strings  the words, concatenated
//! trailer  CRC-32 (IEEE) of every byte before it: u32, then the tag "CRC1" (version 2 on)
//! ```
//!
//! Loading checks the trailer against the file, so a flipped bit or an overwritten table is
//! reported as damage instead of scoring wrong numbers ([`Checksum::Skip`] trades that for
//! speed). Version 1 files, written before the trailer existed, load without the check.
//!
//! A built model, a model read from ARPA and a model mapped from disk are all these bytes, so all
//! share one query path. Scoring follows the backoff recursion of an ARPA model:
//! `log p(w | c_k .. c_1) = log p(w | c_m .. c_1) + sum_{j = m}^{k} log b(c_j .. c_1)` where
//! `c_m .. c_1 w` is the longest n-gram in the model. The [`State`] after a word carries the words
//! and backoffs of the n-grams just matched, which are exactly the next word's contexts, so each
//! word costs one probe per matched order and no backoff lookups.

use crate::hash;
use crate::lm::Scorer;
use crate::quantize::extends;
use crate::util::{shown, write_atomic};
use crate::{Error, Result, BOS, EOS, UNK};
use std::io::{BufRead, Write};
use std::path::Path;

/// Highest supported order.
pub const MAX_ORDER: usize = 16;
const MAGIC: &[u8; 8] = b"FIRTHNG\x01";
pub(crate) const ENDIAN: u32 = 0x0102_0304;
const VERSION: u32 = 2;
/// The last version without a checksum trailer; still readable.
const VERSION_WITHOUT_CHECKSUM: u32 = 1;
const HEADER: usize = 56;
pub(crate) const TRAILER: usize = 8;
pub(crate) const TRAILER_TAG: &[u8; 4] = b"CRC1";

/// Whether loading a binary model verifies its checksum (reading the whole file once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    Verify,
    /// Verify on another thread while the caller starts on its work: the checksum's read of
    /// the file overlaps the caller's reading and scoring of its input instead of adding to
    /// it. The caller must call [`Model::verified`] before it shows or trusts any result.
    Background,
    /// Map the file without reading it all: faster to open a large model for a few queries,
    /// but damage inside the tables goes unnoticed.
    Skip,
}

/// A writer that keeps the CRC-32 of everything written through it.
pub(crate) struct CrcWriter<'a, W: Write> {
    inner: &'a mut W,
    hasher: crc32fast::Hasher,
}

impl<'a, W: Write> CrcWriter<'a, W> {
    pub(crate) fn new(inner: &'a mut W) -> Self {
        CrcWriter {
            inner,
            hasher: crc32fast::Hasher::new(),
        }
    }
    /// Appends the trailer: the CRC of everything written so far and the tag.
    pub(crate) fn finish(self) -> std::io::Result<()> {
        let crc = self.hasher.finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        self.inner.write_all(TRAILER_TAG)
    }
}

impl<W: Write> Write for CrcWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
/// Flag bit: the model is over characters (`--chars`).
pub const FLAG_CHARS: u64 = 1;

/// Probability and backoff of one n-gram, as log10.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProbBackoff {
    pub prob: f32,
    pub backoff: f32,
}

/// One slot of an order's hash table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Entry {
    /// Hash of the n-gram's word ids; 0 for an empty slot.
    pub key: u64,
    pub prob: f32,
    pub backoff: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct VocabSlot {
    key: u64,
    id: u32,
    _pad: u32,
}

/// An open-addressing table under construction.
#[derive(Debug, Clone)]
pub struct TableBuilder {
    pub slots: Vec<Entry>,
}

impl TableBuilder {
    pub fn new(entries: usize) -> Self {
        TableBuilder {
            slots: crate::util::huge_vec(hash::slots_for(entries), Entry::default()),
        }
    }
    /// Inserts `key` (or finds it) and returns its slot and whether it was already present.
    pub fn insert(&mut self, key: u64) -> (usize, bool) {
        let key = hash::key(key);
        let n = self.slots.len();
        let mut i = hash::home(key, n);
        loop {
            let s = &mut self.slots[i];
            if s.key == key {
                return (i, true);
            }
            if s.key == 0 {
                s.key = key;
                return (i, false);
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }
    pub fn find(&self, key: u64) -> Option<usize> {
        find(&self.slots, key)
    }
    /// Starts loading the home slot of `key` into cache.
    #[inline]
    pub fn prefetch(&self, key: u64) {
        prefetch(&self.slots, key)
    }
    /// Finds many keys, prefetching a batch of home slots before probing any of them: the
    /// cache misses of a batch overlap instead of queueing. `key_of(i)` gives item i's key, or
    /// None to skip it; the result holds slot numbers, `u32::MAX` for skipped or absent keys.
    pub fn find_all(&self, items: usize, key_of: impl Fn(usize) -> Option<u64> + Sync) -> Vec<u32> {
        use rayon::prelude::*;
        const BATCH: usize = 16;
        let mut out = vec![u32::MAX; items];
        out.par_chunks_mut(4096)
            .enumerate()
            .for_each(|(ci, chunk)| {
                let base = ci * 4096;
                let mut keys = [None; BATCH];
                for b in (0..chunk.len()).step_by(BATCH) {
                    let m = (chunk.len() - b).min(BATCH);
                    for (j, k) in keys[..m].iter_mut().enumerate() {
                        *k = key_of(base + b + j);
                        if let Some(h) = *k {
                            self.prefetch(h);
                        }
                    }
                    for (j, k) in keys[..m].iter().enumerate() {
                        if let Some(h) = *k {
                            chunk[b + j] = self.find(h).map_or(u32::MAX, |s| s as u32);
                        }
                    }
                }
            });
        out
    }
}

#[inline]
fn prefetch(slots: &[Entry], key: u64) {
    #[cfg(target_arch = "x86_64")]
    {
        let i = hash::home(hash::key(key), slots.len());
        // SAFETY: prefetching is only a hint and never faults; `i` is in bounds anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch(
                slots.as_ptr().add(i) as *const i8,
                std::arch::x86_64::_MM_HINT_T0,
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slots, key);
}

#[inline]
fn find(slots: &[Entry], key: u64) -> Option<usize> {
    let key = hash::key(key);
    let n = slots.len();
    let mut i = hash::home(key, n);
    loop {
        let k = slots[i].key;
        if k == key {
            return Some(i);
        }
        if k == 0 {
            return None;
        }
        i += 1;
        if i == n {
            i = 0;
        }
    }
}

/// A model's contents before they are laid out: what builders and the ARPA reader produce.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    /// Words by id; 0, 1, 2 must be `<unk>`, `<s>`, `</s>`.
    pub words: Vec<String>,
    pub unigrams: Vec<ProbBackoff>,
    /// Tables for orders 2..=N.
    pub tables: Vec<Vec<Entry>>,
    /// Number of n-grams per order.
    pub counts: Vec<u64>,
    pub flags: u64,
}

pub(crate) enum Backing {
    Owned(Vec<u64>),
    /// Shared with the thread of a background checksum.
    Mapped(std::sync::Arc<memmap2::Mmap>),
}

/// Where a model's checksum stands.
pub(crate) enum Verification {
    Done,
    /// A background check: the thread returns the damage message, if any.
    Pending(std::thread::JoinHandle<std::result::Result<(), String>>),
    Failed(String),
}

#[derive(Debug, Clone)]
struct Layout {
    order: usize,
    vocab: usize,
    vocab_slots: usize,
    strings_len: usize,
    flags: u64,
    counts: Vec<u64>,
    slots: Vec<usize>,
    unigrams: usize,
    tables: Vec<usize>,
    vocab_table: usize,
    offsets: usize,
    strings: usize,
    total: usize,
}

/// Waits for a pending checksum and returns the verdict; `source` names the file in errors.
pub(crate) fn settle(
    verification: &std::sync::Mutex<Verification>,
    source: Option<&Path>,
) -> Result<()> {
    let mut v = verification
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *v = match std::mem::replace(&mut *v, Verification::Done) {
        Verification::Pending(handle) => match handle.join() {
            Ok(Ok(())) => Verification::Done,
            Ok(Err(msg)) => Verification::Failed(msg),
            Err(_) => Verification::Failed("the checksum thread failed".into()),
        },
        settled => settled,
    };
    match &*v {
        Verification::Failed(msg) => Err(Error::File {
            path: shown(source.unwrap_or(Path::new("model"))),
            msg: msg.clone(),
        }),
        _ => Ok(()),
    }
}

/// `x` rounded up to a multiple of 8; None when that overflows (a corrupt header's size).
pub(crate) fn pad8(x: usize) -> Option<usize> {
    Some(x.checked_add(7)? & !7)
}

impl Layout {
    fn compute(
        order: usize,
        vocab: usize,
        vocab_slots: usize,
        strings_len: usize,
        flags: u64,
        counts: Vec<u64>,
        slots: Vec<usize>,
    ) -> Option<Layout> {
        let mut off = HEADER.checked_add(order.checked_mul(16)?)?;
        let unigrams = off;
        off = off.checked_add(pad8(vocab.checked_mul(8)?)?)?;
        let mut tables = Vec::new();
        for &s in slots.iter().skip(1) {
            tables.push(off);
            off = off.checked_add(s.checked_mul(16)?)?;
        }
        let vocab_table = off;
        off = off.checked_add(vocab_slots.checked_mul(16)?)?;
        let offsets = off;
        off = off.checked_add(vocab.checked_add(1)?.checked_mul(8)?)?;
        let strings = off;
        off = off.checked_add(pad8(strings_len)?)?;
        Some(Layout {
            order,
            vocab,
            vocab_slots,
            strings_len,
            flags,
            counts,
            slots,
            unigrams,
            tables,
            vocab_table,
            offsets,
            strings,
            total: off,
        })
    }
}

/// A loaded n-gram model: built in memory, read from ARPA, or mapped from a binary file.
pub struct Model {
    backing: Backing,
    l: Layout,
    /// Where each section starts, resolved once: the query path indexes these directly.
    p: Sections,
    verification: std::sync::Mutex<Verification>,
    /// The file it came from, for a background checksum's error.
    source: Option<std::path::PathBuf>,
}

/// Start pointers of a model's sections. They point into `Model::backing`, whose bytes never
/// move (a heap buffer or a mapping), and are valid for the lengths in `Model::l`.
#[derive(Clone, Copy)]
struct Sections {
    unigrams: *const ProbBackoff,
    tables: [*const Entry; MAX_ORDER],
    vocab: *const VocabSlot,
    offsets: *const u64,
    strings: *const u8,
}

// SAFETY: a Model is immutable after construction; the pointers only alias its own read-only
// bytes, so sharing or sending it between threads is as safe as sharing a `&[u8]`.
unsafe impl Send for Model {}
// SAFETY: as above, all access through the pointers is read-only.
unsafe impl Sync for Model {}

impl Sections {
    fn empty() -> Sections {
        Sections {
            unigrams: std::ptr::null(),
            tables: [std::ptr::null(); MAX_ORDER],
            vocab: std::ptr::null(),
            offsets: std::ptr::null(),
            strings: std::ptr::null(),
        }
    }
}

/// Hashes of one word's n-grams, computed ahead of scoring it (see [`Model::prefetch_ngrams`]).
pub type Ahead = [u64; MAX_ORDER];

/// The history a word is scored in: up to N-1 previous words (most recent first) and their
/// backoffs. Only as many words as the model has as a context are kept.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct State {
    pub(crate) len: usize,
    pub(crate) words: [u32; MAX_ORDER],
    pub(crate) backoffs: [f32; MAX_ORDER],
}

impl State {
    /// No context.
    pub(crate) fn null() -> State {
        State {
            len: 0,
            words: [0; MAX_ORDER],
            backoffs: [0.0; MAX_ORDER],
        }
    }

    /// The context `<s>` with its backoff, for a model of `order` > 1 (no context for a unigram
    /// model): the state every layout starts a sentence in.
    pub(crate) fn sentence_start(order: usize, bos_backoff: f32) -> State {
        let mut s = State::null();
        if order > 1 {
            s.len = 1;
            s.words[0] = BOS;
            s.backoffs[0] = bos_backoff;
        }
        s
    }

    /// Number of context words kept.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Totals for scoring a text: what `ppl` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct PplStats {
    /// Sum of log10 probabilities over every token, `</s>` and OOVs included.
    pub log10_prob: f64,
    /// The part of `log10_prob` that comes from OOV tokens.
    pub log10_prob_oov: f64,
    /// Tokens scored: words plus one `</s>` per sentence.
    pub tokens: u64,
    /// Tokens not in the vocabulary (scored as `<unk>`).
    pub oov: u64,
    pub sentences: u64,
}

impl PplStats {
    /// `10^(-log10_prob / tokens)`, OOVs included (KenLM's "Perplexity including OOVs").
    pub fn perplexity(&self) -> f64 {
        10f64.powf(-self.log10_prob / self.tokens as f64)
    }
    /// Perplexity over in-vocabulary tokens only.
    pub fn perplexity_excluding_oov(&self) -> f64 {
        10f64.powf(-(self.log10_prob - self.log10_prob_oov) / (self.tokens - self.oov) as f64)
    }
}

/// One scored token, for `query`'s per-word output.
#[derive(Clone, Copy, Debug)]
pub struct WordScore<'a> {
    pub word: &'a str,
    pub id: u32,
    /// Length of the longest n-gram used.
    pub ngram_len: usize,
    pub log10_prob: f32,
    /// True at `</s>`, the end of a sentence.
    pub end: bool,
}

/// One token of a sentence as KenLM's Python module's `full_scores` yields it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FullScore {
    pub log10_prob: f32,
    /// Length of the longest n-gram used.
    pub ngram_len: usize,
    /// The word is not in the vocabulary (scored as `<unk>`); never true for `</s>`.
    pub oov: bool,
}

impl Model {
    /// Scores one sentence as KenLM's Python module does (see [`Scorer::full_scores`]).
    pub fn full_scores(&self, sentence: &str, bos: bool, eos: bool) -> Vec<FullScore> {
        Scorer::full_scores(self, sentence, bos, eos)
    }

    /// Lays out `parts` in memory.
    pub fn from_parts(mut parts: Parts) -> Model {
        let vocab = parts.words.len();
        let vocab_slots = hash::slots_for(vocab);
        let strings_len: usize = parts.words.iter().map(|w| w.len()).sum();
        let mut slots = vec![vocab];
        slots.extend(parts.tables.iter().map(|t| t.len()));
        let l = Layout::compute(
            parts.counts.len(),
            vocab,
            vocab_slots,
            strings_len,
            parts.flags,
            parts.counts.clone(),
            slots,
        )
        .expect("model size fits in memory");
        // Zeroed pages are only touched as sections are copied in (and tables are freed as
        // they go), so this buffer does not add a whole model to the peak.
        let mut buf = vec![0u64; l.total / 8];
        crate::util::advise_huge(buf.as_mut_ptr() as *mut u8, buf.len() * 8);
        {
            // SAFETY: a u64 buffer is valid as bytes, and the byte view covers exactly its memory.
            let bytes = unsafe {
                std::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut u8, buf.len() * 8)
            };
            write_header(bytes, &l);
            let mut o = l.unigrams;
            for u in &parts.unigrams {
                bytes[o..o + 4].copy_from_slice(&u.prob.to_le_bytes());
                bytes[o + 4..o + 8].copy_from_slice(&u.backoff.to_le_bytes());
                o += 8;
            }
            // Each table is dropped as soon as it is copied, so building peaks at one table
            // over the final size, not at twice the model.
            let tables = std::mem::take(&mut parts.tables);
            for (t, &off) in tables.into_iter().zip(&l.tables) {
                #[cfg(target_endian = "little")]
                {
                    // SAFETY: Entry is repr(C) of u64, f32, f32 (16 bytes, no padding), so its
                    // bytes on a little-endian machine are exactly the file's encoding.
                    let src = unsafe {
                        std::slice::from_raw_parts(t.as_ptr() as *const u8, t.len() * 16)
                    };
                    bytes[off..off + src.len()].copy_from_slice(src);
                }
                #[cfg(not(target_endian = "little"))]
                for (j, e) in t.iter().enumerate() {
                    let o = off + 16 * j;
                    bytes[o..o + 8].copy_from_slice(&e.key.to_le_bytes());
                    bytes[o + 8..o + 12].copy_from_slice(&e.prob.to_le_bytes());
                    bytes[o + 12..o + 16].copy_from_slice(&e.backoff.to_le_bytes());
                }
            }
            write_vocab(&mut bytes[l.vocab_table..], l.vocab_slots, &parts.words);
        }
        Model::new(Backing::Owned(buf), l)
    }

    /// Writes a binary model to `path` section by section, without holding the whole model:
    /// `unigrams` are indexed by model id (log10), and `table(n)` builds the table of order n
    /// (2..=N, `counts[n - 1]` entries) when its turn comes, so only one table is in memory.
    /// The bytes equal [`Model::from_parts`] + [`Model::write_binary`] for the same parts.
    pub fn write_binary_streamed(
        path: &Path,
        words: &[String],
        unigrams: &[ProbBackoff],
        counts: &[u64],
        flags: u64,
        table: &mut dyn FnMut(usize) -> Result<Vec<Entry>>,
    ) -> Result<()> {
        let vocab = words.len();
        let vocab_slots = hash::slots_for(vocab);
        let strings_len: usize = words.iter().map(|w| w.len()).sum();
        let mut slots = vec![vocab];
        slots.extend(counts.iter().skip(1).map(|&c| hash::slots_for(c as usize)));
        let l = Layout::compute(
            counts.len(),
            vocab,
            vocab_slots,
            strings_len,
            flags,
            counts.to_vec(),
            slots,
        )
        .ok_or_else(|| Error::Config("model too large for this machine's address space".into()))?;
        let mut inner: Option<Error> = None;
        let res = write_atomic(path, |out| {
            let mut w = CrcWriter::new(out);
            let mut head = vec![0u8; l.unigrams];
            write_header(&mut head, &l);
            w.write_all(&head)?;
            let mut ub = Vec::with_capacity(unigrams.len() * 8);
            for u in unigrams {
                ub.extend_from_slice(&u.prob.to_le_bytes());
                ub.extend_from_slice(&u.backoff.to_le_bytes());
            }
            w.write_all(&ub)?;
            for n in 2..=l.order {
                let t = match table(n) {
                    Ok(t) => t,
                    Err(e) => {
                        inner = Some(e);
                        return Err(std::io::Error::other("table"));
                    }
                };
                if t.len() != l.slots[n - 1] {
                    inner = Some(Error::Config(format!(
                        "internal error: the {n}-gram table has {} slots, the layout {}",
                        t.len(),
                        l.slots[n - 1]
                    )));
                    return Err(std::io::Error::other("table"));
                }
                #[cfg(target_endian = "little")]
                {
                    // SAFETY: Entry is repr(C) of u64, f32, f32 (16 bytes, no padding), so its
                    // bytes on a little-endian machine are exactly the file's encoding.
                    let src = unsafe {
                        std::slice::from_raw_parts(t.as_ptr() as *const u8, t.len() * 16)
                    };
                    w.write_all(src)?;
                }
                #[cfg(not(target_endian = "little"))]
                for e in &t {
                    w.write_all(&e.key.to_le_bytes())?;
                    w.write_all(&e.prob.to_le_bytes())?;
                    w.write_all(&e.backoff.to_le_bytes())?;
                }
            }
            let mut tail = vec![0u8; l.total - l.vocab_table];
            write_vocab(&mut tail, l.vocab_slots, words);
            w.write_all(&tail)?;
            w.finish()
        });
        match inner {
            Some(e) => Err(e),
            None => res,
        }
    }

    fn new(backing: Backing, l: Layout) -> Model {
        let mut m = Model {
            backing,
            l,
            p: Sections::empty(),
            verification: std::sync::Mutex::new(Verification::Done),
            source: None,
        };
        // Resolve (and bounds- and alignment-check) every section once.
        let l = &m.l;
        let mut p = Sections::empty();
        p.unigrams = m.slice::<ProbBackoff>(l.unigrams, l.vocab).as_ptr();
        for n in 2..=l.order {
            p.tables[n - 2] = m.slice::<Entry>(l.tables[n - 2], l.slots[n - 1]).as_ptr();
        }
        p.vocab = m.slice::<VocabSlot>(l.vocab_table, l.vocab_slots).as_ptr();
        p.offsets = m.slice::<u64>(l.offsets, l.vocab + 1).as_ptr();
        p.strings = m.bytes()[l.strings..l.strings + l.strings_len].as_ptr();
        m.p = p;
        m
    }

    /// Maps a binary model file. Validates the header, the size and (with [`Checksum::Verify`])
    /// the checksum of the whole file; the tables are used in place.
    pub fn load_binary(path: &Path, checksum: Checksum) -> Result<Model> {
        let map = map_model_file(path)?;
        let bad = |msg: String| Error::File {
            path: shown(path),
            msg,
        };
        let now = match checksum {
            Checksum::Background => Checksum::Skip,
            c => c,
        };
        let l = check_binary(&map, now).map_err(bad)?;
        let map = std::sync::Arc::new(map);
        let mut m = Model::new(Backing::Mapped(map.clone()), l);
        m.check_vocab().map_err(bad)?;
        if checksum == Checksum::Background {
            m.source = Some(path.to_path_buf());
            let pending =
                std::thread::spawn(move || check_binary(&map[..], Checksum::Background).map(drop));
            m.verification = std::sync::Mutex::new(Verification::Pending(pending));
        }
        Ok(m)
    }

    /// Waits for a background checksum ([`Checksum::Background`]) and returns its verdict;
    /// at once for a model verified at load or not verified at all. A damaged file is an
    /// error on every call.
    pub fn verified(&self) -> Result<()> {
        settle(&self.verification, self.source.as_deref())
    }

    /// [`Model::load_binary`] on the bytes of a file (copied); `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], checksum: Checksum, path: &Path) -> Result<Model> {
        let bad = |msg: String| Error::File {
            path: shown(path),
            msg,
        };
        let l = check_binary(bytes, checksum).map_err(bad)?;
        let words: Vec<u64> = bytes[..l.total]
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let m = Model::new(Backing::Owned(words), l);
        m.check_vocab().map_err(bad)?;
        Ok(m)
    }

    /// Writes the model's bytes: the binary format, loadable with [`Model::load_binary`].
    pub fn write_binary(&self, path: &Path) -> Result<()> {
        // A model mapped from a file may carry an old version number and a trailer: write the
        // current version and a fresh trailer.
        let bytes = &self.bytes()[..self.l.total];
        write_atomic(path, |out| {
            let mut w = CrcWriter::new(out);
            w.write_all(&bytes[..12])?;
            w.write_all(&VERSION.to_le_bytes())?;
            w.write_all(&bytes[16..])?;
            w.finish()
        })
    }

    /// Whether this model came from a binary file old enough to have no checksum.
    pub fn lacks_checksum(&self) -> bool {
        u32::from_le_bytes(self.bytes()[12..16].try_into().expect("4 bytes"))
            == VERSION_WITHOUT_CHECKSUM
    }

    fn bytes(&self) -> &[u8] {
        match &self.backing {
            // SAFETY: viewing initialised u64s as bytes is always valid.
            Backing::Owned(v) => unsafe {
                std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len() * 8)
            },
            Backing::Mapped(m) => &m[..],
        }
    }

    fn slice<T>(&self, off: usize, len: usize) -> &[T] {
        let b = &self.bytes()[off..off + len * std::mem::size_of::<T>()];
        assert_eq!(b.as_ptr() as usize % std::mem::align_of::<T>(), 0);
        // SAFETY: the range is in bounds and aligned (checked above), and T is a repr(C) struct
        // of plain numbers for which every bit pattern is valid.
        unsafe { std::slice::from_raw_parts(b.as_ptr() as *const T, len) }
    }

    fn check_vocab(&self) -> std::result::Result<(), String> {
        let offs: &[u64] = self.slice(self.l.offsets, self.l.vocab + 1);
        let s = &self.bytes()[self.l.strings..self.l.strings + self.l.strings_len];
        check_vocab_sections(offs, s)?;
        for (i, &s) in self.l.slots.iter().enumerate().skip(1) {
            if s == 0 {
                return Err(format!("order {} has an empty table", i + 1));
            }
        }
        Ok(())
    }

    /// Marks the model as a character model (or not), so queries split text into characters.
    pub fn with_chars(mut self, chars: bool) -> Model {
        if chars {
            self.l.flags |= FLAG_CHARS;
        } else {
            self.l.flags &= !FLAG_CHARS;
        }
        if let Backing::Owned(v) = &mut self.backing {
            v[6] = self.l.flags.to_le();
        }
        self
    }

    pub fn order(&self) -> usize {
        self.l.order
    }
    /// Number of n-grams of each order.
    pub fn counts(&self) -> &[u64] {
        &self.l.counts
    }
    pub fn vocab_size(&self) -> usize {
        self.l.vocab
    }
    /// True for a character model.
    pub fn is_chars(&self) -> bool {
        self.l.flags & FLAG_CHARS != 0
    }
    /// Size in bytes of the in-memory (and on-disk binary) structure.
    pub fn size_bytes(&self) -> usize {
        self.l.total
    }

    #[inline]
    pub fn unigrams(&self) -> &[ProbBackoff] {
        // SAFETY: resolved and checked in `Model::new`; lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.p.unigrams, self.l.vocab) }
    }

    /// The hash table of order `n` (2..=N).
    #[inline]
    pub fn table(&self, n: usize) -> &[Entry] {
        assert!((2..=self.l.order).contains(&n));
        // SAFETY: resolved and checked in `Model::new` for every order 2..=N.
        unsafe { std::slice::from_raw_parts(self.p.tables[n - 2], self.l.slots[n - 1]) }
    }

    #[inline]
    fn word_bytes(&self, id: u32) -> &[u8] {
        // SAFETY: offsets were resolved in `Model::new`; `check_vocab` (mapped files) or
        // construction (built models) guarantees they are non-decreasing and in bounds.
        unsafe {
            let offs = std::slice::from_raw_parts(self.p.offsets, self.l.vocab + 1);
            let (a, b) = (offs[id as usize] as usize, offs[id as usize + 1] as usize);
            std::slice::from_raw_parts(self.p.strings.add(a), b - a)
        }
    }

    /// The word with id `id`.
    pub fn word(&self, id: u32) -> &str {
        assert!((id as usize) < self.l.vocab);
        // Checked to be UTF-8 at load; a word's bytes are whole (offsets come from whole words).
        std::str::from_utf8(self.word_bytes(id)).unwrap_or("<bad>")
    }

    /// The id of `w`, or `<unk>`'s id 0 when it is not in the vocabulary.
    pub fn word_id(&self, w: &str) -> u32 {
        // SAFETY: resolved and checked in `Model::new`; offsets checked by `check_vocab`
        // (mapped files) or made from whole words (built models).
        let (slots, offsets, strings) = unsafe {
            (
                std::slice::from_raw_parts(self.p.vocab, self.l.vocab_slots),
                std::slice::from_raw_parts(self.p.offsets, self.l.vocab + 1),
                std::slice::from_raw_parts(self.p.strings, self.l.strings_len),
            )
        };
        vocab_lookup(slots, offsets, strings, w)
    }

    /// Probability and backoff of an n-gram given by ids in reading order, if present.
    pub fn lookup(&self, ids: &[u32]) -> Option<ProbBackoff> {
        match ids.len() {
            0 => None,
            1 => self.unigrams().get(ids[0] as usize).copied(),
            n if n <= self.order() => {
                let t = self.table(n);
                find(t, hash::ngram(ids)).map(|i| ProbBackoff {
                    prob: t[i].prob,
                    backoff: t[i].backoff,
                })
            }
            _ => None,
        }
    }

    /// Starts loading the slot of the order-`n` n-gram with hash `h` (n >= 2).
    #[inline]
    pub fn prefetch(&self, n: usize, h: u64) {
        prefetch(self.table(n), h)
    }

    /// Probability and backoff of the order-`n` n-gram (n >= 2) whose hash is `h`.
    #[inline]
    pub fn lookup_hash(&self, n: usize, h: u64) -> Option<ProbBackoff> {
        let t = self.table(n);
        find(t, h).map(|i| ProbBackoff {
            prob: t[i].prob,
            backoff: t[i].backoff,
        })
    }

    /// Hashes the n-grams ending in the last word of `sentence` (word ids after the implicit
    /// `<s>`) with up to `depth` context words (up to the model's order) and prefetches their
    /// slots; [`Model::score_ahead`] then probes with these hashes.
    #[inline]
    pub fn prefetch_ngrams(&self, sentence: &[u32], depth: usize) -> Ahead {
        let mut hashes = [0u64; MAX_ORDER];
        let Some((&w, ctx)) = sentence.split_last() else {
            return hashes;
        };
        let mut h = hash::word(w);
        for (k, &c) in ctx.iter().rev().chain(std::iter::once(&BOS)).enumerate() {
            if k + 2 > self.order() || k >= depth {
                break;
            }
            h = hash::extend(h, c);
            hashes[k] = h;
            prefetch(self.table(k + 2), h);
        }
        hashes
    }

    /// The state at the start of a sentence: the context `<s>`.
    pub fn begin_state(&self) -> State {
        State::sentence_start(self.order(), self.unigrams()[BOS as usize].backoff)
    }

    /// A state with no context.
    pub fn null_state(&self) -> State {
        State::null()
    }

    /// Scores `word` after `state`: returns log10 p(word | state) and the length of the n-gram
    /// used, and writes the state after `word` into `out`.
    #[inline]
    pub fn score(&self, state: &State, word: u32, out: &mut State) -> (f32, usize) {
        // Hash every candidate n-gram and prefetch all their slots before probing any: the
        // probes of one word then overlap their cache misses.
        let mut hashes = [0u64; MAX_ORDER];
        let mut h = hash::word(word);
        for k in 0..state.len {
            h = hash::extend(h, state.words[k]);
            hashes[k] = h;
            prefetch(self.table(k + 2), h);
        }
        self.score_ahead(state, word, out, &hashes)
    }

    /// [`Model::score`] with the hashes of `word`'s n-grams already computed (and their slots
    /// prefetched) by [`Model::prefetch_ngrams`] for the same words with a depth of at least
    /// `state.len()`.
    #[inline]
    pub fn score_ahead(
        &self,
        state: &State,
        word: u32,
        out: &mut State,
        hashes: &Ahead,
    ) -> (f32, usize) {
        let n = self.order();
        let uni = self.unigrams()[word as usize];
        let mut prob = uni.prob;
        let mut matched = 1;
        out.words[0] = word;
        out.backoffs[0] = uni.backoff;
        // The state keeps context up to the longest matched n-gram that may extend to the
        // right: a backoff of -0.0 marks one that is no longer n-gram's context, so the next
        // word cannot match through it (and its backoff adds nothing).
        let mut keep = extends(uni.backoff) as usize;
        let mut k = 0;
        while k < state.len {
            let t = self.table(k + 2);
            match find(t, hashes[k]) {
                Some(i) => {
                    prob = t[i].prob;
                    matched = k + 2;
                    if k + 1 < n - 1 {
                        let b = t[i].backoff;
                        out.words[k + 1] = state.words[k];
                        out.backoffs[k + 1] = b;
                        if extends(b) {
                            keep = matched;
                        }
                    }
                }
                None => break,
            }
            k += 1;
        }
        for j in matched - 1..state.len {
            prob += state.backoffs[j];
        }
        out.len = keep.min(n - 1);
        (prob, matched)
    }

    /// log10 p(w | state) for every id w, `<s>` set to -inf (see [`Scorer::distribution`]).
    pub fn distribution(&self, state: &State) -> Vec<f32> {
        Scorer::distribution(self, state)
    }

    /// Scores text as KenLM's `query` does (see [`Scorer::score_text`]).
    pub fn score_text(
        &self,
        r: &mut dyn BufRead,
        path: &Path,
        each: Option<&mut dyn FnMut(WordScore)>,
    ) -> Result<PplStats> {
        Scorer::score_text(self, r, path, each)
    }

    /// Samples one sentence (see [`Scorer::generate`]).
    pub fn generate(&self, rng: &mut Rng, temperature: f64, max_len: usize) -> Vec<String> {
        Scorer::generate(self, rng, temperature, max_len)
    }

    /// One sampled sentence as text (see [`Scorer::generate_text`]).
    pub fn generate_text(&self, rng: &mut Rng, temperature: f64, max_len: usize) -> String {
        Scorer::generate_text(self, rng, temperature, max_len)
    }
}

/// A small deterministic generator (splitmix64) so samples repeat for a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        hash::mix(self.0)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Bytes of the vocabulary sections: the hash table, the word offsets and the strings, which
/// follow each other in both binary layouts.
pub(crate) fn vocab_bytes(vocab_slots: usize, vocab: usize, strings_len: usize) -> Option<usize> {
    vocab_slots
        .checked_mul(16)?
        .checked_add(vocab.checked_add(1)?.checked_mul(8)?)?
        .checked_add(pad8(strings_len)?)
}

/// The vocabulary table, word offsets and strings into `b`, which starts at the table.
pub(crate) fn write_vocab(b: &mut [u8], vocab_slots: usize, words: &[String]) {
    let mut vs = vec![VocabSlot::default(); vocab_slots];
    for (id, w) in words.iter().enumerate() {
        let k = hash::string(w.as_bytes());
        let mut i = hash::home(k, vocab_slots);
        while vs[i].key != 0 {
            i = if i + 1 == vocab_slots { 0 } else { i + 1 };
        }
        vs[i] = VocabSlot {
            key: k,
            id: id as u32,
            _pad: 0,
        };
    }
    let mut o = 0;
    for s in &vs {
        b[o..o + 8].copy_from_slice(&s.key.to_le_bytes());
        b[o + 8..o + 12].copy_from_slice(&s.id.to_le_bytes());
        o += 16;
    }
    let mut so = 0u64;
    let mut sp = o + (words.len() + 1) * 8;
    for w in words {
        b[o..o + 8].copy_from_slice(&so.to_le_bytes());
        o += 8;
        b[sp..sp + w.len()].copy_from_slice(w.as_bytes());
        sp += w.len();
        so += w.len() as u64;
    }
    b[o..o + 8].copy_from_slice(&so.to_le_bytes());
}

/// The bytes of word `id` given the offsets and strings sections (offsets checked at load).
#[inline]
pub(crate) fn vocab_word<'a>(offsets: &[u64], strings: &'a [u8], id: u32) -> &'a [u8] {
    let (a, b) = (
        offsets[id as usize] as usize,
        offsets[id as usize + 1] as usize,
    );
    &strings[a..b]
}

/// The id of `w` in a vocabulary table, or `<unk>`'s id 0.
#[inline]
pub(crate) fn vocab_lookup(slots: &[VocabSlot], offsets: &[u64], strings: &[u8], w: &str) -> u32 {
    let k = hash::string(w.as_bytes());
    let n = slots.len();
    let vocab = offsets.len() - 1;
    let mut i = hash::home(k, n);
    loop {
        let s = slots[i];
        if s.key == 0 {
            return UNK;
        }
        if s.key == k
            && (s.id as usize) < vocab
            && vocab_word(offsets, strings, s.id) == w.as_bytes()
        {
            return s.id;
        }
        i = if i + 1 == n { 0 } else { i + 1 };
    }
}

/// Checks the word offsets and strings of a mapped file: offsets non-decreasing and in bounds,
/// strings UTF-8, and `<unk>`, `<s>`, `</s>` at ids 0, 1, 2.
pub(crate) fn check_vocab_sections(
    offsets: &[u64],
    strings: &[u8],
) -> std::result::Result<(), String> {
    let mut prev = 0;
    for &o in offsets {
        if o < prev || o as usize > strings.len() {
            return Err(format!(
                "the file is damaged: corrupt vocabulary offsets; {REBUILD}"
            ));
        }
        prev = o;
    }
    if std::str::from_utf8(strings).is_err() {
        return Err(format!(
            "the file is damaged: its vocabulary is not UTF-8; {REBUILD}"
        ));
    }
    if offsets.len() < 4
        || vocab_word(offsets, strings, UNK) != b"<unk>"
        || vocab_word(offsets, strings, BOS) != b"<s>"
        || vocab_word(offsets, strings, EOS) != b"</s>"
    {
        return Err("vocabulary lacks <unk>, <s>, </s> at ids 0, 1, 2".into());
    }
    Ok(())
}

fn write_header(b: &mut [u8], l: &Layout) {
    b[0..8].copy_from_slice(MAGIC);
    b[8..12].copy_from_slice(&ENDIAN.to_le_bytes());
    b[12..16].copy_from_slice(&VERSION.to_le_bytes());
    let put = |b: &mut [u8], o: usize, v: u64| b[o..o + 8].copy_from_slice(&v.to_le_bytes());
    put(b, 16, l.order as u64);
    put(b, 24, l.vocab as u64);
    put(b, 32, l.vocab_slots as u64);
    put(b, 40, l.strings_len as u64);
    put(b, 48, l.flags);
    for i in 0..l.order {
        put(b, HEADER + 16 * i, l.counts[i]);
        put(b, HEADER + 16 * i + 8, l.slots[i] as u64);
    }
}

/// CRC-32 of `b`, computed over chunks on all threads and combined: the same value as
/// `crc32fast::hash(b)`, in a fraction of the time for a large model.
pub(crate) fn crc32_parallel(b: &[u8]) -> u32 {
    use rayon::prelude::*;
    const CHUNK: usize = 8 << 20;
    if b.len() <= CHUNK {
        return crc32fast::hash(b);
    }
    let parts: Vec<crc32fast::Hasher> = b
        .par_chunks(CHUNK)
        .map(|c| {
            let mut h = crc32fast::Hasher::new();
            h.update(c);
            h
        })
        .collect();
    let mut all = crc32fast::Hasher::new();
    for p in &parts {
        all.combine(p);
    }
    all.finalize()
}

/// The header, the size against it and (unless skipped) the checksum of a binary model's bytes.
fn check_binary(b: &[u8], checksum: Checksum) -> std::result::Result<Layout, String> {
    let (l, version) = read_header(b)?;
    let trailer = if version == VERSION_WITHOUT_CHECKSUM {
        0
    } else {
        TRAILER
    };
    if b.len() != l.total + trailer {
        return Err(format!(
            "the file is damaged: it is {} bytes but its header describes {} (truncated or overwritten); {REBUILD}",
            b.len(),
            l.total + trailer
        ));
    }
    if trailer > 0 && checksum != Checksum::Skip {
        let stored = u32::from_le_bytes(b[l.total..l.total + 4].try_into().expect("4 bytes"));
        // In the background one thread is enough, and leaves the other cores to the caller.
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

/// Maps a binary model file (probing or trie) read-only, asking for huge pages before the
/// checksum reads the pages in, so they can come in as huge pages.
pub(crate) fn map_model_file(path: &Path) -> Result<memmap2::Mmap> {
    let rd = |source| Error::Read {
        path: shown(path),
        err: source,
    };
    let file = std::fs::File::open(path).map_err(rd)?;
    // SAFETY: the file is mapped read-only; like every mmap user we assume nobody truncates
    // or rewrites it while mapped (firth itself only ever replaces files by rename).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(rd)?;
    #[cfg(target_os = "linux")]
    let _ = map.advise(memmap2::Advice::HugePage);
    Ok(map)
}

pub(crate) const REBUILD: &str =
    "rebuild it with `firth ngram build --binary` (or from the ARPA file) or restore a copy";

/// Bits in which `b`'s first 8 bytes differ from the magic (64 when shorter).
fn magic_distance(b: &[u8]) -> u32 {
    magic_distance_to(b, MAGIC)
}

/// Bits in which `b`'s first 8 bytes differ from `magic` (64 when shorter).
pub(crate) fn magic_distance_to(b: &[u8], magic: &[u8; 8]) -> u32 {
    if b.len() < 8 {
        return 64;
    }
    b[..8]
        .iter()
        .zip(magic)
        .map(|(x, y)| (x ^ y).count_ones())
        .sum()
}

/// Magic numbers this close to ours are ours with flipped bits, not another format.
pub(crate) const MAGIC_DAMAGE_BITS: u32 = 3;

/// The checks every firth binary model's header starts with, for the probing and trie files
/// alike: the magic (a few flipped bits are damage; more is another format, `not_ours`), the
/// header's `header_len` bytes present, and the endianness mark. Returns the version field.
pub(crate) fn check_header_start(
    b: &[u8],
    magic: &[u8; 8],
    header_len: usize,
    not_ours: &str,
) -> std::result::Result<u32, String> {
    let distance = magic_distance_to(b, magic);
    if distance > MAGIC_DAMAGE_BITS {
        return Err(not_ours.into());
    }
    if distance > 0 {
        return Err(format!(
            "the file is damaged: {distance} bits of its magic number are flipped; {REBUILD}"
        ));
    }
    if b.len() < header_len {
        return Err(format!(
            "the file is damaged: it ends at byte {} inside the {header_len}-byte header (truncated); {REBUILD}",
            b.len()
        ));
    }
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    if u32_at(8) == ENDIAN.swap_bytes() {
        return Err("binary model was written on a machine of the other endianness; rebuild it here or use the ARPA file".into());
    }
    if u32_at(8) != ENDIAN {
        return Err(format!(
            "the file is damaged: its endianness mark is corrupt; {REBUILD}"
        ));
    }
    Ok(u32_at(12))
}

fn read_header(b: &[u8]) -> std::result::Result<(Layout, u32), String> {
    let version = check_header_start(
        b,
        MAGIC,
        HEADER,
        "not a firth binary n-gram model (bad magic); pass an ARPA file or rebuild with `firth ngram build --binary`",
    )?;
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    if version != VERSION && version != VERSION_WITHOUT_CHECKSUM {
        return Err(format!("binary model version {version} is not supported (this firth reads versions {VERSION_WITHOUT_CHECKSUM} and {VERSION}); the file is damaged or from a newer firth; {REBUILD}"));
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
    let vocab = u64_at(24) as usize;
    let vocab_slots = u64_at(32) as usize;
    let strings_len = u64_at(40) as usize;
    let flags = u64_at(48);
    let counts: Vec<u64> = (0..order).map(|i| u64_at(HEADER + 16 * i)).collect();
    let slots: Vec<usize> = (0..order)
        .map(|i| u64_at(HEADER + 16 * i + 8) as usize)
        .collect();
    if slots[0] != vocab || vocab_slots <= vocab {
        return Err(format!(
            "the file is damaged: its header is inconsistent (corrupt); {REBUILD}"
        ));
    }
    let l = Layout::compute(order, vocab, vocab_slots, strings_len, flags, counts, slots)
        .ok_or_else(|| {
            format!(
                "the file is damaged: its header describes impossible sizes (corrupt); {REBUILD}"
            )
        })?;
    Ok((l, version))
}

/// True when `path` starts with the binary magic.
pub fn is_binary(path: &Path) -> Result<bool> {
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
    Ok(got == 8 && magic_distance(&m) <= MAGIC_DAMAGE_BITS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn full_scores_are_query_s_scores_sentence_by_sentence() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let m = super::Model::load(&dir.join("toy.kenlm.o3.arpa")).unwrap();
        let text = std::fs::read_to_string(dir.join("toy.txt")).unwrap();
        let text: String = text
            .lines()
            .take(50)
            .map(|l| format!("{l} zzz-oov\n"))
            .collect();
        let mut by_query = vec![];
        m.score_text(
            &mut text.as_bytes(),
            std::path::Path::new("toy"),
            Some(&mut |w: super::WordScore| {
                by_query.push((w.log10_prob, w.ngram_len, w.id == 0 && !w.end))
            }),
        )
        .unwrap();
        let mine: Vec<_> = text
            .lines()
            .flat_map(|l| m.full_scores(l, true, true))
            .map(|f| (f.log10_prob, f.ngram_len, f.oov))
            .collect();
        assert_eq!(mine, by_query);
        assert!(mine.iter().any(|f| f.2), "the OOV word is flagged");
        // Without <s> the first word is a unigram; without </s> there is one score per word.
        let l = text.lines().next().unwrap();
        let first = m.full_scores(l, false, false);
        assert_eq!(first.len(), l.split_whitespace().count());
        assert_eq!(first[0].ngram_len, 1);
        let w0 = m.word_id(l.split_whitespace().next().unwrap());
        assert_eq!(first[0].log10_prob, m.unigrams()[w0 as usize].prob);
        assert!(m.full_scores("", true, false).is_empty());
    }

    #[test]
    fn parallel_crc_equals_the_serial_one() {
        let bytes: Vec<u8> = (0..(8 << 20) * 2 + 12345u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        assert_eq!(super::crc32_parallel(&bytes), crc32fast::hash(&bytes));
        assert_eq!(
            super::crc32_parallel(&bytes[..100]),
            crc32fast::hash(&bytes[..100])
        );
    }
}
