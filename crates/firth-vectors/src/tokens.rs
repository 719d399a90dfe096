//! Streaming whitespace tokenizer over a byte range of a file, and the counted vocabulary that
//! word2vec and GloVe share.
//!
//! The corpus is never loaded whole: a [`TokenStream`] reads it in 1 MiB blocks. Tokens are
//! separated by ASCII whitespace; a newline ends a sentence. Tokens that are not valid UTF-8 are
//! counted (with the first line they occur on) and skipped, never mangled.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::VecError;

/// Longest token kept; longer runs of non-space bytes are cut (word2vec C cuts at 100 bytes).
pub const MAX_TOKEN: usize = 100;
const BLOCK: usize = 1 << 20;

/// A small, fast, non-cryptographic hasher (the rustc "Fx" hash) for the word table.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);
impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            h = (h.rotate_left(5) ^ v).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
        self.0 = h;
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}
pub type FxBuild = BuildHasherDefault<FxHasher>;
pub type FxMap<K, V> = HashMap<K, V, FxBuild>;

/// One item of the token stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Tok<'a> {
    Word(&'a [u8]),
    /// End of a line (sentence boundary).
    Newline,
}

/// Reads the tokens whose first byte lies in `[start, end)` of a file.
pub struct TokenStream {
    file: File,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// File offset of `buf[0]`.
    base: u64,
    end: u64,
    eof: bool,
    /// Newlines seen so far (1-based line number of the current position when starting at 0).
    pub line: u64,
}

impl TokenStream {
    /// Opens `path` and positions the stream at the first token starting at or after `start`
    /// (a token straddling `start` belongs to the previous range).
    pub fn open(path: &Path, start: u64, end: u64) -> Result<TokenStream, VecError> {
        let mut file = File::open(path).map_err(|e| VecError::io(path, e))?;
        let mut skip_partial = false;
        let mut seek_to = start;
        if start > 0 {
            // Look at the byte before `start`: if it is not whitespace we are inside a token.
            seek_to = start - 1;
            skip_partial = true;
        }
        file.seek(SeekFrom::Start(seek_to))
            .map_err(|e| VecError::io(path, e))?;
        let mut s = TokenStream {
            file,
            buf: vec![0; BLOCK],
            pos: 0,
            len: 0,
            base: seek_to,
            end,
            eof: false,
            line: 1,
        };
        if skip_partial {
            s.fill().map_err(|e| VecError::io(path, e))?;
            // Consume the byte before `start`, then, if it was part of a token, the rest of it.
            if s.len > 0 {
                let prev = s.buf[0];
                s.pos = 1;
                if !prev.is_ascii_whitespace() {
                    loop {
                        while s.pos < s.len && !s.buf[s.pos].is_ascii_whitespace() {
                            s.pos += 1;
                        }
                        if s.pos < s.len || !s.fill().map_err(|e| VecError::io(path, e))? {
                            break;
                        }
                    }
                }
            }
        }
        Ok(s)
    }

    /// Moves unread bytes to the front and reads more; false at end of file.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.base += self.pos as u64;
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.file.read(&mut self.buf[self.len..])?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.len += n;
        Ok(true)
    }

    /// File offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The next token, or `None` at the end of the range.
    pub fn next_tok(&mut self) -> std::io::Result<Option<Tok<'_>>> {
        loop {
            // Skip spaces (not newlines).
            while self.pos < self.len {
                let b = self.buf[self.pos];
                if b == b'\n' {
                    if self.offset() >= self.end {
                        return Ok(None);
                    }
                    self.pos += 1;
                    self.line += 1;
                    return Ok(Some(Tok::Newline));
                }
                if !b.is_ascii_whitespace() {
                    break;
                }
                self.pos += 1;
            }
            if self.pos < self.len {
                break;
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
        if self.offset() >= self.end {
            return Ok(None);
        }
        // A token starts at pos; make sure its end is in the buffer.
        let mut i = self.pos;
        loop {
            while i < self.len && !self.buf[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < self.len || self.eof {
                break;
            }
            let off = i - self.pos;
            if !self.fill()? {
                i = self.len;
                break;
            }
            i = self.pos + off;
        }
        let start = self.pos;
        self.pos = i;
        let end = (start + MAX_TOKEN).min(i);
        Ok(Some(Tok::Word(&self.buf[start..end])))
    }
}

/// Size of a file in bytes.
pub fn file_len(path: &Path) -> Result<u64, VecError> {
    Ok(std::fs::metadata(path)
        .map_err(|e| VecError::io(path, e))?
        .len())
}

/// A vocabulary counted from a corpus: words sorted by count (descending), ids are positions.
#[derive(Debug, Clone, Default)]
pub struct CountedVocab {
    pub words: Vec<String>,
    pub counts: Vec<u64>,
    pub index: FxMap<Box<[u8]>, u32>,
}

/// What counting saw besides the vocabulary.
#[derive(Debug, Clone, Default)]
pub struct CountStats {
    /// Tokens read (before min-count).
    pub tokens: u64,
    pub lines: u64,
    /// Tokens skipped for not being valid UTF-8, and the first line where one occurred.
    pub invalid_utf8: u64,
    pub first_invalid_line: Option<u64>,
    /// Times the table was pruned during counting, and the last pruning threshold.
    pub prunes: u32,
    pub min_reduce: u64,
}

impl CountedVocab {
    pub fn len(&self) -> usize {
        self.words.len()
    }
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
    #[inline]
    pub fn get(&self, w: &[u8]) -> Option<u32> {
        self.index.get(w).copied()
    }
    /// Sum of the counts of the kept words.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Builds a vocabulary from (word, count) pairs: drops counts below `min_count`, sorts by
    /// count (descending, ties by word), and keeps at most `max_vocab` words (0 = no limit).
    pub fn from_counts(mut pairs: Vec<(Vec<u8>, u64)>, min_count: u64, max_vocab: usize) -> Self {
        pairs.retain(|(_, c)| *c >= min_count);
        pairs.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if max_vocab > 0 {
            pairs.truncate(max_vocab);
        }
        let mut v = CountedVocab::default();
        v.index.reserve(pairs.len());
        for (i, (w, c)) in pairs.into_iter().enumerate() {
            v.index.insert(w.clone().into_boxed_slice(), i as u32);
            // Only valid UTF-8 is ever counted, so this does not lose anything.
            v.words.push(String::from_utf8_lossy(&w).into_owned());
            v.counts.push(c);
        }
        v
    }

    /// Streams `path` once and counts its tokens. When the table grows past `prune_at` entries,
    /// words with count <= `min_reduce` are dropped and `min_reduce` grows by one (word2vec C's
    /// `ReduceVocab`), so huge corpora cannot exhaust memory.
    pub fn count_file(
        path: &Path,
        min_count: u64,
        max_vocab: usize,
        prune_at: usize,
    ) -> Result<(CountedVocab, CountStats), VecError> {
        let len = file_len(path)?;
        let mut ts = TokenStream::open(path, 0, len)?;
        let mut map: FxMap<Box<[u8]>, u64> = FxMap::default();
        let mut st = CountStats {
            min_reduce: 1,
            ..Default::default()
        };
        loop {
            let line = ts.line;
            let tok = ts.next_tok().map_err(|e| VecError::io(path, e))?;
            match tok {
                None => break,
                Some(Tok::Newline) => st.lines += 1,
                Some(Tok::Word(w)) => {
                    if std::str::from_utf8(w).is_err() {
                        st.invalid_utf8 += 1;
                        st.first_invalid_line.get_or_insert(line);
                        continue;
                    }
                    st.tokens += 1;
                    if let Some(c) = map.get_mut(w) {
                        *c += 1;
                    } else {
                        map.insert(w.to_vec().into_boxed_slice(), 1);
                        if map.len() > prune_at {
                            let mr = st.min_reduce;
                            map.retain(|_, c| *c > mr);
                            st.min_reduce += 1;
                            st.prunes += 1;
                        }
                    }
                }
            }
        }
        if st.tokens == 0 {
            return Err(VecError::EmptyCorpus(path.to_path_buf()));
        }
        let pairs: Vec<(Vec<u8>, u64)> = map.into_iter().map(|(k, v)| (k.into_vec(), v)).collect();
        let v = CountedVocab::from_counts(pairs, min_count, max_vocab);
        if v.is_empty() {
            return Err(VecError::EmptyVocab {
                path: path.to_path_buf(),
                min_count,
                tokens: st.tokens,
            });
        }
        Ok((v, st))
    }
}

/// Splits a file into `n` byte ranges of about equal size (one per thread).
pub fn split_ranges(len: u64, n: usize) -> Vec<(u64, u64)> {
    let n = n.max(1) as u64;
    (0..n).map(|t| (len * t / n, len * (t + 1) / n)).collect()
}

/// Path helper for error messages.
pub fn pb(p: &Path) -> PathBuf {
    p.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, data: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("firth-vectors-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    fn words_in(path: &Path, s: u64, e: u64) -> Vec<String> {
        let mut ts = TokenStream::open(path, s, e).unwrap();
        let mut out = vec![];
        while let Some(t) = ts.next_tok().unwrap() {
            match t {
                Tok::Word(w) => out.push(String::from_utf8(w.to_vec()).unwrap()),
                Tok::Newline => out.push("\n".into()),
            }
        }
        out
    }

    #[test]
    fn ranges_partition_tokens() {
        let text = b"alpha beta gamma\ndelta  epsilon zeta eta theta iota kappa\n";
        let p = tmp("ranges.txt", text);
        let all = words_in(&p, 0, text.len() as u64);
        for n in 1..8 {
            let mut got = vec![];
            for (s, e) in split_ranges(text.len() as u64, n) {
                got.extend(words_in(&p, s, e));
            }
            assert_eq!(got, all, "n = {n}");
        }
        assert_eq!(all.len(), 12);
    }

    #[test]
    fn counts_sort_and_prune() {
        let p = tmp("count.txt", b"a b a c a b d\xff\xfe e\nf a\n");
        let (v, st) = CountedVocab::count_file(&p, 1, 0, 1 << 20).unwrap();
        assert_eq!(v.words[..2], ["a".to_string(), "b".to_string()]);
        assert_eq!(v.counts[..2], [4, 2]);
        assert_eq!(st.invalid_utf8, 1);
        assert_eq!(st.first_invalid_line, Some(1));
        let (v, _) = CountedVocab::count_file(&p, 2, 0, 1 << 20).unwrap();
        assert_eq!(v.len(), 2);
        let (v, _) = CountedVocab::count_file(&p, 1, 1, 1 << 20).unwrap();
        assert_eq!(v.words, ["a"]);
        // A tiny table forces pruning; the frequent word survives.
        let (v, st) = CountedVocab::count_file(&p, 1, 0, 2).unwrap();
        assert!(st.prunes > 0);
        assert_eq!(v.words[0], "a");
    }

    #[test]
    fn empty_inputs_are_errors() {
        let p = tmp("empty.txt", b"  \n\n ");
        let e = CountedVocab::count_file(&p, 1, 0, 100).unwrap_err();
        assert!(e.to_string().contains("no words"), "{e}");
        let p = tmp("rare.txt", b"a b c");
        let e = CountedVocab::count_file(&p, 5, 0, 100).unwrap_err();
        assert!(e.to_string().contains("min-count"), "{e}");
    }
}
