//! Hashing: word strings, n-grams of word ids, and the open-addressing tables built on them.
//!
//! An n-gram is hashed from its *last* word backwards, `h(w) = mix(w)`, `h(v u) = combine(h(u), v)`,
//! so a query extends the hash of a shorter match by one context word at a time, with no rehash.
//! Tables store only the 64-bit hash, not the words (as KenLM's probing model does): two n-grams
//! collide with probability about `n^2 / 2^65`, negligible at any corpus size that fits a disk.

use std::hash::{BuildHasherDefault, Hasher};

/// splitmix64's finalizer: a bijection on `u64` whose output bits each depend on all input bits.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// Hash of the unigram `w`.
#[inline]
pub fn word(w: u32) -> u64 {
    mix(w as u64 ^ 0x9e37_79b9_7f4a_7c15)
}

/// Hash of the n-gram `v + ngram`, where `h` is the hash of `ngram`.
#[inline]
pub fn extend(h: u64, v: u32) -> u64 {
    mix(h.rotate_left(21) ^ (v as u64 + 1).wrapping_mul(0xff51_afd7_ed55_8ccd))
}

/// Hash of an n-gram given in reading order.
pub fn ngram(words: &[u32]) -> u64 {
    let (&last, rest) = words.split_last().expect("an n-gram has at least one word");
    let mut h = word(last);
    for &v in rest.iter().rev() {
        h = extend(h, v);
    }
    h
}

/// Hash of a string (the vocabulary table's key).
pub fn string(s: &[u8]) -> u64 {
    let mut h = 0x243f_6a88_85a3_08d3u64 ^ s.len() as u64;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        h = mix(h ^ u64::from_le_bytes(c.try_into().unwrap()));
    }
    let mut tail = [0u8; 8];
    let r = chunks.remainder();
    tail[..r.len()].copy_from_slice(r);
    let h = mix(h ^ u64::from_le_bytes(tail));
    if h == 0 {
        1
    } else {
        h
    }
}

/// Table keys are never 0: 0 marks an empty slot.
#[inline]
pub fn key(h: u64) -> u64 {
    if h == 0 {
        1
    } else {
        h
    }
}

/// Number of slots for `n` entries: KenLM's default space multiplier of 1.5.
pub fn slots_for(n: usize) -> usize {
    (n + n / 2).max(n + 1)
}

/// The home slot of `key` in a table of `slots` slots (multiply-shift range reduction).
#[inline]
pub fn home(key: u64, slots: usize) -> usize {
    ((key as u128 * slots as u128) >> 64) as usize
}

/// A fast hasher for in-memory maps keyed by strings or integers (not DoS-resistant; inputs are
/// the user's own corpora).
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        mix(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = string(bytes) ^ self.0.rotate_left(7);
    }
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }
}

pub type FastMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FastHasher>>;
