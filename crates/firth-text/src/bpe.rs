//! Byte-pair encoding of words into subword units (Sennrich, Haddow & Birch 2016, "Neural
//! Machine Translation of Rare Words with Subword Units"), compatible with subword-nmt: codes
//! files load in both directions, learning gives the same merges, applying gives the same text.
//!
//! Why subwords: a translation model with a closed vocabulary cannot produce a word it has not
//! seen; splitting rare words into frequent pieces ("hau@@ s") keeps the vocabulary small and
//! every word spellable, while frequent words stay whole.
//!
//! **Learning** repeatedly merges the most frequent pair of adjacent symbols, counted over the
//! word types weighted by their frequency. Words start as their characters, the last one
//! marked as word-final (`</w>` appended, subword-nmt's codes version 0.2), so a word-final
//! "s</w>" and a word-internal "s" are different symbols. After each merge only the words that
//! contain the merged pair are touched (an index maps every pair to the words containing it)
//! and the pair counts are updated by differences, never recounted.
//!
//! To give *exactly* subword-nmt's merges (`learn_bpe.py`, version 0.3.8), firth reproduces its
//! choices, including two that are not in the paper:
//!
//! * **Ties** between pairs of equal frequency go to the lexicographically greatest pair
//!   (compare the first symbols by code point, then the second): Python's
//!   `max(stats, key=lambda x: (stats[x], x))`.
//! * **Pruning.** subword-nmt looks for the best pair only among pairs at least as frequent as a
//!   threshold (a tenth of the largest count at the start, then `best * i / (i + 10000)` at the
//!   i-th merge), moving the rest to a full table every 100 merges and rescanning the full table
//!   when the best remaining pair falls below the threshold. Its bookkeeping is not exact in
//!   rare cases (a pruned pair that later gains occurrences, e.g. when the same symbol string is
//!   reached by two different merges, keeps only the new count), which can change which pair is
//!   picked. firth runs the same bookkeeping, so it picks the same pairs; it also makes the
//!   search fast (the working table stays small).
//!
//! Words are what lies between spaces and line breaks (`\n`, `\r` and the other characters
//! Python's `str.splitlines` breaks at); other whitespace such as a tab belongs to the word, as in
//! subword-nmt. Agreement with subword-nmt therefore holds for any text whose words do not
//! contain whitespace characters (subword-nmt's regex-based merge treats those as symbol
//! boundaries; firth never does).
//!
//! **Applying** a codes file to a word starts from its characters and repeatedly merges the
//! adjacent pair that was learned earliest (all its non-overlapping occurrences, left to right)
//! until no learned pair is left. Every unit but the last of a word gets the continuation mark
//! `@@`, and units are separated by a space, so [`join_subwords`] (deleting every `@@ `)
//! restores the text. Unlike subword-nmt, which collapses runs of spaces inside a line, firth
//! keeps the whitespace between words exactly as it was, so applying and joining gives back the
//! original line byte for byte (unless the text itself has a word ending in `@@`, which the
//! scheme cannot tell from a mark).

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::sync::RwLock;

/// The end-of-word marker of the codes files (appended to a word's last symbol).
pub const END_OF_WORD: &str = "</w>";
/// The continuation mark put after every subword unit but a word's last.
pub const SEPARATOR: &str = "@@";
/// The header line firth writes, subword-nmt's current codes format.
pub const CODES_HEADER: &str = "#version: 0.2";
/// Applied words remembered by a [`Bpe`]; beyond this many distinct words, new ones are
/// segmented every time (memory stays bounded on huge, noisy inputs).
const CACHE_LIMIT: usize = 1 << 20;

/// A small fast hash for integer keys (the multiply-rotate of rustc's FxHash); learning spends
/// its time in pair-count lookups, where SipHash would be the main cost.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u32(&mut self, x: u32) {
        self.write_u64(x as u64);
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Characters that end a word: the space, and every line boundary of Python's
/// `str.splitlines` (which is how subword-nmt, reading through `codecs`, splits its input).
pub fn is_word_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\n'
            | '\r'
            | '\u{0b}'
            | '\u{0c}'
            | '\u{1c}'
            | '\u{1d}'
            | '\u{1e}'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// The words of a text: the non-empty runs between [`is_word_separator`] characters.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_word_separator).filter(|w| !w.is_empty())
}

/// Codes-file versions: 0.1 (no header) marks the end of a word with a separate `</w>` symbol,
/// 0.2 appends it to the word's last character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V01,
    V02,
}

/// A learned merge table, ready to segment words. Cheap to share between threads (the cache of
/// segmented words is behind a lock).
pub struct Bpe {
    /// The merges in the order learned (rank = position).
    codes: Vec<(String, String)>,
    version: Version,
    /// Single characters, word-internal and word-final ("c" and "c</w>"), to symbol ids.
    char_ids: HashMap<char, u32>,
    final_char_ids: HashMap<char, u32>,
    /// The lone `</w>` symbol of version 0.1 codes.
    eow_id: Option<u32>,
    /// (left, right) -> (rank, merged symbol). For a pair listed twice, the first rank wins.
    merge: FxMap<(u32, u32), (u32, u32)>,
    cache: RwLock<HashMap<String, Vec<String>>>,
}

impl Clone for Bpe {
    fn clone(&self) -> Self {
        Bpe::from_codes_versioned(self.codes.clone(), self.version)
    }
}

impl std::fmt::Debug for Bpe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bpe")
            .field("merges", &self.codes.len())
            .field("version", &self.version)
            .finish()
    }
}

impl PartialEq for Bpe {
    fn eq(&self, o: &Bpe) -> bool {
        self.codes == o.codes && self.version == o.version
    }
}

/// Unknown characters get this id: they can never be part of a learned pair.
const NO_SYMBOL: u32 = u32::MAX;

impl Bpe {
    /// A merge table from learned pairs (in order), e.g. from another tool, in codes version
    /// 0.2 (end-of-word marker appended to the last symbol, as in `"s t</w>"`).
    pub fn from_codes(codes: Vec<(String, String)>) -> Bpe {
        Bpe::from_codes_versioned(codes, Version::V02)
    }

    fn from_codes_versioned(codes: Vec<(String, String)>, version: Version) -> Bpe {
        // Symbol strings to ids; equal strings share an id however they were formed.
        let mut symbols: HashMap<String, u32> = HashMap::new();
        let intern = |s: &str, symbols: &mut HashMap<String, u32>| -> u32 {
            if let Some(&id) = symbols.get(s) {
                return id;
            }
            let id = symbols.len() as u32;
            symbols.insert(s.to_string(), id);
            id
        };
        let mut merge = FxMap::default();
        for (rank, (a, b)) in codes.iter().enumerate() {
            let ia = intern(a, &mut symbols);
            let ib = intern(b, &mut symbols);
            let iab = intern(&format!("{a}{b}"), &mut symbols);
            merge.entry((ia, ib)).or_insert((rank as u32, iab));
        }
        let (mut char_ids, mut final_char_ids) = (HashMap::new(), HashMap::new());
        for (s, &id) in &symbols {
            let mut cs = s.chars();
            if let (Some(c), None) = (cs.next(), cs.next()) {
                char_ids.insert(c, id);
            }
            if let Some(stem) = s.strip_suffix(END_OF_WORD) {
                let mut cs = stem.chars();
                if let (Some(c), None) = (cs.next(), cs.next()) {
                    final_char_ids.insert(c, id);
                }
            }
        }
        let eow_id = symbols.get(END_OF_WORD).copied();
        Bpe {
            codes,
            version,
            char_ids,
            final_char_ids,
            eow_id,
            merge,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Learns up to `merges` merges from word frequencies, stopping early when no pair occurs
    /// at least `min_frequency` times (subword-nmt's `--min-frequency`, default 2 there; 0 is
    /// taken as 1, since a merge of a pair that never occurs means nothing). Words with a zero
    /// count and empty words are ignored. The result does not depend on the map's order.
    pub fn learn(word_counts: &HashMap<String, u64>, merges: usize, min_frequency: u64) -> Bpe {
        let mut sorted: Vec<(&str, u64)> = word_counts
            .iter()
            .filter(|(w, &c)| c > 0 && !w.is_empty())
            .map(|(w, &c)| (w.as_str(), c))
            .collect();
        // Frequency order as subword-nmt; the order changes no result, only memory locality.
        sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let codes = Learner::new(&sorted).run(merges, min_frequency.max(1) as i64);
        Bpe::from_codes(codes)
    }

    /// Counts the words of UTF-8 text files (jointly: one table over all of them, as for a
    /// shared source/target vocabulary) and learns from them. Errors name the file, and the
    /// line for invalid UTF-8.
    pub fn learn_files(paths: &[&Path], merges: usize, min_frequency: u64) -> Result<Bpe> {
        if paths.is_empty() {
            bail!("no input file to learn BPE merges from");
        }
        let mut counts: HashMap<String, u64> = HashMap::new();
        for p in paths {
            let text = crate::read_text(p)?;
            for w in words(&text) {
                if let Some(c) = counts.get_mut(w) {
                    *c += 1;
                } else {
                    counts.insert(w.to_string(), 1);
                }
            }
        }
        Ok(Bpe::learn(&counts, merges, min_frequency))
    }

    /// The number of merges.
    pub fn merges(&self) -> usize {
        self.codes.len()
    }

    /// The merges in the order learned.
    pub fn codes(&self) -> &[(String, String)] {
        &self.codes
    }

    /// The subword units of one word, without continuation marks.
    pub fn word_units(&self, word: &str) -> Vec<String> {
        if let Ok(cache) = self.cache.read() {
            if let Some(u) = cache.get(word) {
                return u.clone();
            }
        }
        let units: Vec<String> = self
            .encode(word)
            .into_iter()
            .map(|(a, b)| word[a..b].to_string())
            .collect();
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() < CACHE_LIMIT {
                cache.insert(word.to_string(), units.clone());
            }
        }
        units
    }

    /// Segments one word: byte spans of its units in `word`. Merges the earliest-learned pair
    /// present, all its non-overlapping occurrences from the left, until none is learned (the
    /// loop of subword-nmt's `encode`).
    fn encode(&self, word: &str) -> Vec<(usize, usize)> {
        // (symbol id, start, end); a version-0.1 lone `</w>` is the empty span at the end.
        let mut syms: Vec<(u32, usize, usize)> = Vec::with_capacity(word.len() + 1);
        let mut it = word.char_indices().peekable();
        while let Some((i, c)) = it.next() {
            let end = i + c.len_utf8();
            let last = it.peek().is_none();
            let id = if last && self.version == Version::V02 {
                self.final_char_ids.get(&c)
            } else {
                self.char_ids.get(&c)
            };
            syms.push((id.copied().unwrap_or(NO_SYMBOL), i, end));
        }
        if self.version == Version::V01 {
            syms.push((self.eow_id.unwrap_or(NO_SYMBOL), word.len(), word.len()));
        }
        while syms.len() > 1 {
            let mut best: Option<(u32, u32, u32, u32)> = None; // rank, left, right, merged
            for w in syms.windows(2) {
                if let Some(&(rank, merged)) = self.merge.get(&(w[0].0, w[1].0)) {
                    if !matches!(best, Some(b) if b.0 <= rank) {
                        best = Some((rank, w[0].0, w[1].0, merged));
                    }
                }
            }
            let Some((_, left, right, merged)) = best else {
                break;
            };
            let mut out = Vec::with_capacity(syms.len());
            let mut i = 0;
            while i < syms.len() {
                if i + 1 < syms.len() && syms[i].0 == left && syms[i + 1].0 == right {
                    out.push((merged, syms[i].1, syms[i + 1].2));
                    i += 2;
                } else {
                    out.push(syms[i]);
                    i += 1;
                }
            }
            syms = out;
        }
        // Drop the end-of-word marker: a lone `</w>` (version 0.1) is an empty span.
        if syms.len() > 1 && syms.last().is_some_and(|s| s.1 == s.2) {
            syms.pop();
        }
        syms.into_iter().map(|(_, a, b)| (a, b)).collect()
    }

    /// Segments each word; every unit but a word's last carries the `@@` mark
    /// (`["das", "haus"]` -> `["das", "hau@@", "s"]`). Empty words are skipped.
    pub fn apply_words(&self, words: &[&str]) -> Vec<String> {
        let mut out = Vec::with_capacity(words.len() * 2);
        for w in words.iter().filter(|w| !w.is_empty()) {
            let units = self.word_units(w);
            let n = units.len();
            for (k, u) in units.into_iter().enumerate() {
                out.push(if k + 1 < n { u + SEPARATOR } else { u });
            }
        }
        out
    }

    /// Segments every word of a line (`"das haus"` -> `"das hau@@ s"`), keeping the whitespace
    /// between words as it was, so that [`join_subwords`] gives back `line` exactly.
    pub fn apply_line(&self, line: &str) -> String {
        let mut out = String::with_capacity(line.len() + line.len() / 2);
        let mut rest = line;
        while !rest.is_empty() {
            let start = rest.find(|c| !is_word_separator(c)).unwrap_or(rest.len());
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let end = rest.find(is_word_separator).unwrap_or(rest.len());
            if end > 0 {
                let units = self.word_units(&rest[..end]);
                for (k, u) in units.iter().enumerate() {
                    if k > 0 {
                        out.push_str(SEPARATOR);
                        out.push(' ');
                    }
                    out.push_str(u);
                }
            }
            rest = &rest[end..];
        }
        out
    }

    /// Writes the codes in subword-nmt's format (header, then one `left right` pair a line),
    /// through a temporary file renamed into place, so an interrupted write never leaves a
    /// truncated codes file behind.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = String::new();
        if self.version == Version::V02 {
            text.push_str(CODES_HEADER);
            text.push('\n');
        }
        for (a, b) in &self.codes {
            text.push_str(a);
            text.push(' ');
            text.push_str(b);
            text.push('\n');
        }
        write_atomically(path, text.as_bytes())
    }

    /// Reads a codes file written by firth or by subword-nmt (versions 0.1 and 0.2). Errors
    /// name the file and the line.
    pub fn load(path: &Path) -> Result<Bpe> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            let line = 1 + e.as_bytes()[..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            anyhow::anyhow!(
                "{}:{line}: invalid UTF-8 in a BPE codes file",
                path.display()
            )
        })?;
        Bpe::parse_codes(&text).map_err(|(line, msg)| {
            anyhow::anyhow!("{}:{line}: {msg} (not a BPE codes file?)", path.display())
        })
    }

    /// Parses codes text as subword-nmt does: an optional `#version: X.Y` first line, then one
    /// pair per line (surrounding spaces and `\r` ignored, trailing blank lines ignored).
    /// Errors are (1-based line, message).
    fn parse_codes(text: &str) -> std::result::Result<Bpe, (usize, String)> {
        let mut lines: Vec<&str> = text.trim_end_matches('\n').split('\n').collect();
        let mut version = Version::V01;
        let mut first_line = 1;
        if lines.first().is_some_and(|l| l.starts_with("#version:")) {
            let v = lines[0].split_whitespace().last().unwrap_or("");
            let mut v = v.trim_end_matches('\r');
            while let Some(s) = v.strip_suffix(".0") {
                v = s;
            }
            version = match v {
                "0.2" => Version::V02,
                "0.1" | "0" => Version::V01,
                _ => return Err((1, format!("unsupported codes version {:?}", lines[0]))),
            };
            lines.remove(0);
            first_line = 2;
        }
        if text.trim_end_matches('\n').is_empty() {
            return Err((1, "the file is empty".into()));
        }
        let mut codes = Vec::with_capacity(lines.len());
        if !(lines.len() == 1 && lines[0].is_empty() && first_line == 2) {
            for (i, l) in lines.iter().enumerate() {
                let parts: Vec<&str> = l
                    .trim_matches(|c| c == '\r' || c == '\n' || c == ' ')
                    .split(' ')
                    .collect();
                match parts[..] {
                    [a, b] if !a.is_empty() && !b.is_empty() => {
                        codes.push((a.to_string(), b.to_string()))
                    }
                    _ => {
                        return Err((
                            i + first_line,
                            format!("expected two symbols separated by one space, found {l:?}"),
                        ))
                    }
                }
            }
        }
        Ok(Bpe::from_codes_versioned(codes, version))
    }
}

/// Undoes [`Bpe::apply_line`]: deletes every `@@ ` (and a `@@` ending the line), as
/// subword-nmt's `sed -r 's/(@@ )|(@@ ?$)//g'`.
pub fn join_subwords(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(p) = rest.find(SEPARATOR) {
        out.push_str(&rest[..p]);
        let after = &rest[p + SEPARATOR.len()..];
        if let Some(a) = after.strip_prefix(' ') {
            rest = a;
        } else if after.is_empty() {
            rest = after;
        } else {
            out.push_str(SEPARATOR);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Writes `bytes` to `path` via a temporary file in the same directory and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("cannot write {}: {e}", path.display())
    })
}

/// The learning state, a mirror of subword-nmt's `learn_bpe` with interned symbols.
struct Learner {
    /// Symbol strings by id, and the inverse.
    names: Vec<String>,
    ids: HashMap<String, u32>,
    /// Word types as symbol ids, with their frequencies.
    words: Vec<Vec<u32>>,
    freqs: Vec<i64>,
    /// The working pair counts (pruned) and the full ones (`big_stats`).
    stats: FxMap<(u32, u32), i64>,
    big_stats: FxMap<(u32, u32), i64>,
    /// For each pair, how many times each word contains it (`indices`).
    indices: FxMap<(u32, u32), FxMap<u32, i64>>,
}

impl Learner {
    fn new(sorted_vocab: &[(&str, u64)]) -> Learner {
        let mut l = Learner {
            names: Vec::new(),
            ids: HashMap::new(),
            words: Vec::with_capacity(sorted_vocab.len()),
            freqs: Vec::with_capacity(sorted_vocab.len()),
            stats: FxMap::default(),
            big_stats: FxMap::default(),
            indices: FxMap::default(),
        };
        let mut buf = String::new();
        for (j, &(w, f)) in sorted_vocab.iter().enumerate() {
            let mut syms = Vec::with_capacity(w.len());
            let mut it = w.chars().peekable();
            while let Some(c) = it.next() {
                buf.clear();
                buf.push(c);
                if it.peek().is_none() {
                    buf.push_str(END_OF_WORD);
                }
                syms.push(l.intern_buf(&buf));
            }
            let f = f as i64;
            for p in syms.windows(2) {
                *l.stats.entry((p[0], p[1])).or_insert(0) += f;
                *l.indices
                    .entry((p[0], p[1]))
                    .or_default()
                    .entry(j as u32)
                    .or_insert(0) += 1;
            }
            l.words.push(syms);
            l.freqs.push(f);
        }
        l.big_stats = l.stats.clone();
        l
    }

    fn intern_buf(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.to_string());
        self.ids.insert(s.to_string(), id);
        id
    }

    /// The pair with the largest count, ties to the greatest (left, right) strings.
    fn most_frequent(&self) -> Option<((u32, u32), i64)> {
        let mut best: Option<((u32, u32), i64)> = None;
        for (&p, &c) in &self.stats {
            best = match best {
                None => Some((p, c)),
                Some((bp, bc)) => {
                    let better = c > bc
                        || (c == bc
                            && (
                                self.names[p.0 as usize].as_str(),
                                self.names[p.1 as usize].as_str(),
                            ) > (
                                self.names[bp.0 as usize].as_str(),
                                self.names[bp.1 as usize].as_str(),
                            ));
                    if better {
                        Some((p, c))
                    } else {
                        Some((bp, bc))
                    }
                }
            };
        }
        best
    }

    /// subword-nmt's `prune_stats`: moves pairs below the threshold out of the working table;
    /// a negative entry is a pending difference for a pair already moved out, and is added.
    fn prune(&mut self, threshold: f64) {
        let big = &mut self.big_stats;
        self.stats.retain(|&p, &mut c| {
            if (c as f64) < threshold {
                if c < 0 {
                    *big.entry(p).or_insert(0) += c;
                } else {
                    big.insert(p, c);
                }
                false
            } else {
                true
            }
        });
    }

    fn run(mut self, num_symbols: usize, min_frequency: i64) -> Vec<(String, String)> {
        let mut codes = Vec::new();
        let Some(max) = self.stats.values().copied().max() else {
            return codes; // no word has two symbols
        };
        let mut threshold = max as f64 / 10.0;
        for i in 0..num_symbols {
            let mut best = self.most_frequent();
            if best.is_none() || (i > 0 && best.is_some_and(|(_, c)| (c as f64) < threshold)) {
                self.prune(threshold);
                self.stats = self.big_stats.clone();
                best = self.most_frequent();
                let Some((_, c)) = best else { break };
                threshold = (c * i as i64) as f64 / (i as f64 + 10000.0);
                self.prune(threshold);
            }
            let Some((pair, _)) = best else { break };
            let count = self.stats.get(&pair).copied().unwrap_or(0);
            if count < min_frequency {
                break;
            }
            codes.push((
                self.names[pair.0 as usize].clone(),
                self.names[pair.1 as usize].clone(),
            ));
            let changes = self.replace_pair(pair);
            self.update_pair_statistics(pair, &changes);
            self.stats.insert(pair, 0);
            if i % 100 == 0 {
                self.prune(threshold);
            }
        }
        codes
    }

    /// Merges every occurrence of `pair` in the words that contain it; returns (word, old
    /// symbols) for each word changed.
    fn replace_pair(&mut self, pair: (u32, u32)) -> Vec<(u32, Vec<u32>)> {
        let merged = {
            let s = format!(
                "{}{}",
                self.names[pair.0 as usize], self.names[pair.1 as usize]
            );
            self.intern_buf(&s)
        };
        let js: Vec<u32> = match self.indices.get(&pair) {
            Some(m) => m.iter().filter(|(_, &c)| c >= 1).map(|(&j, _)| j).collect(),
            None => Vec::new(),
        };
        let mut changes = Vec::with_capacity(js.len());
        for j in js {
            let old = &self.words[j as usize];
            let mut new = Vec::with_capacity(old.len());
            let mut i = 0;
            while i < old.len() {
                if i + 1 < old.len() && old[i] == pair.0 && old[i + 1] == pair.1 {
                    new.push(merged);
                    i += 2;
                } else {
                    new.push(old[i]);
                    i += 1;
                }
            }
            let old = std::mem::replace(&mut self.words[j as usize], new);
            changes.push((j, old));
        }
        changes
    }

    fn add(&mut self, p: (u32, u32), j: u32, freq: i64, sign: i64) {
        *self.stats.entry(p).or_insert(0) += sign * freq;
        *self.indices.entry(p).or_default().entry(j).or_insert(0) += sign;
    }

    /// subword-nmt's `update_pair_statistics`, step for step: takes away the pairs around each
    /// replaced occurrence in the old word and adds the pairs around each occurrence of the
    /// merged symbol in the new word.
    fn update_pair_statistics(&mut self, pair: (u32, u32), changes: &[(u32, Vec<u32>)]) {
        self.stats.insert(pair, 0);
        self.indices.insert(pair, FxMap::default());
        let (first, second) = pair;
        let new_pair = self.ids[&format!(
            "{}{}",
            self.names[first as usize], self.names[second as usize]
        )];
        for (j, old) in changes {
            let j = *j;
            let freq = self.freqs[j as usize];
            let n = old.len();
            let mut i = 0;
            while let Some(k) = old[i.min(n)..].iter().position(|&s| s == first) {
                i += k;
                if i + 1 < n && old[i + 1] == second {
                    if i > 0 {
                        self.add((old[i - 1], old[i]), j, freq, -1);
                    }
                    if i + 2 < n && (old[i + 2] != first || i + 3 >= n || old[i + 3] != second) {
                        self.add((old[i + 1], old[i + 2]), j, freq, -1);
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }
            let word = std::mem::take(&mut self.words[j as usize]);
            let n = word.len();
            let mut i = 0;
            while let Some(k) = word[i.min(n)..].iter().position(|&s| s == new_pair) {
                i += k;
                if i > 0 {
                    self.add((word[i - 1], word[i]), j, freq, 1);
                }
                if i + 1 < n && word[i + 1] != new_pair {
                    self.add((word[i], word[i + 1]), j, freq, 1);
                }
                i += 1;
            }
            self.words[j as usize] = word;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(ws: &[(&str, u64)]) -> HashMap<String, u64> {
        ws.iter().map(|&(w, c)| (w.to_string(), c)).collect()
    }

    fn pairs(b: &Bpe) -> Vec<String> {
        b.codes().iter().map(|(a, b)| format!("{a} {b}")).collect()
    }

    /// Sennrich et al.'s example vocabulary (low 5, lower 2, newest 6, widest 3), merged by
    /// hand. Initial counts: e s = s t</w> = 9 (tie: "s" > "e", so s t</w> first), then
    /// e st</w> 9, l o 7; then n e, e w, w est</w> at 6 go by their first symbol (w > n > e),
    /// e w dying with w est</w>, so ne west</w> follows; lo w</w> 5; the 3-count pairs of
    /// "widest" (w i > i d > d est</w>, each merge making the next); the 2-count pairs of
    /// "lower" (w e > lo w > e r</w>, then we r</w> > lo we, then lo wer</w>). Then every pair
    /// count is 0 < min_frequency 2 and learning stops at 13 merges, as subword-nmt does.
    #[test]
    fn learns_the_hand_worked_merges() {
        let b = Bpe::learn(
            &counts(&[("low", 5), ("lower", 2), ("newest", 6), ("widest", 3)]),
            100,
            2,
        );
        assert_eq!(
            pairs(&b),
            [
                "s t</w>",
                "e st</w>",
                "l o",
                "w est</w>",
                "n e",
                "ne west</w>",
                "lo w</w>",
                "w i",
                "wi d",
                "wid est</w>",
                "w e",
                "we r</w>",
                "lo wer</w>",
            ]
        );
        // A cap on the number of merges takes a prefix.
        let b3 = Bpe::learn(
            &counts(&[("low", 5), ("lower", 2), ("newest", 6), ("widest", 3)]),
            3,
            2,
        );
        assert_eq!(pairs(&b3), pairs(&b)[..3]);
        // "lowest": s t</w> (rank 0), e st</w>, l o, w est</w>; "lo w" is not a code.
        assert_eq!(b.apply_line("lowest"), "lo@@ west");
        assert_eq!(b.apply_line("newest low"), "newest low");
        assert_eq!(b.apply_words(&["lowest", "x"]), ["lo@@", "west", "x"]);
        assert_eq!(b.merges(), 13);
    }

    #[test]
    fn apply_keeps_whitespace_and_joins_back() {
        let b = Bpe::from_codes(vec![("h".into(), "a".into()), ("ha".into(), "u".into())]);
        assert_eq!(b.apply_line("das haus"), "d@@ a@@ s hau@@ s");
        let line = "  das\thaus  haus \r";
        let applied = b.apply_line(line);
        // A tab is part of the word (as in subword-nmt); spaces and \r separate words.
        assert_eq!(applied, "  d@@ a@@ s@@ \t@@ hau@@ s  hau@@ s \r");
        assert_eq!(join_subwords(&applied), line);
        assert_eq!(join_subwords("a@@ b c@@"), "ab c");
        assert_eq!(join_subwords("a@@b"), "a@@b");
        assert_eq!(b.apply_line(""), "");
        assert_eq!(b.apply_line("ä"), "ä");
    }

    /// Merges apply in rank order, all non-overlapping occurrences from the left, and a pair
    /// listed twice keeps its first rank (as subword-nmt's reversed dict).
    #[test]
    fn apply_order_and_overlaps() {
        let b = Bpe::from_codes(vec![
            ("a".into(), "a".into()),
            ("aa".into(), "a</w>".into()),
            ("a".into(), "a".into()),
        ]);
        // aaaa = a a a a</w>: rank 0 merges positions 0-1 (1-2 overlaps it; 2-3 is "a a</w>",
        // not a code) -> aa a a</w>, and nothing else applies.
        assert_eq!(b.word_units("aaaa"), ["aa", "a", "a"]);
        // aaaaa: rank 0 twice -> aa aa a</w>, then rank 1 -> aa aaa</w>.
        assert_eq!(b.word_units("aaaaa"), ["aa", "aaa"]);
        // aaa -> aa a</w> -> aaa</w>.
        assert_eq!(b.word_units("aaa"), ["aaa"]);
    }

    #[test]
    fn codes_round_trip_and_errors() {
        let dir = std::env::temp_dir().join(format!("firth-bpe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let b = Bpe::learn(&counts(&[("hello", 3), ("help", 2), ("yellow", 2)]), 20, 2);
        let p = dir.join("codes");
        b.save(&p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("#version: 0.2\n"), "{text}");
        let back = Bpe::load(&p).unwrap();
        assert_eq!(back, b);
        assert_eq!(
            back.apply_line("hello yellow"),
            b.apply_line("hello yellow")
        );
        // Version 0.1 (no header): `</w>` is a symbol of its own.
        std::fs::write(&p, "l o\nlo </w>\n").unwrap();
        let v1 = Bpe::load(&p).unwrap();
        assert_eq!(v1.apply_line("lo low"), "lo lo@@ w");
        std::fs::write(&p, "#version: 0.2\nl o\nbad line here\n").unwrap();
        let e = Bpe::load(&p).unwrap_err().to_string();
        assert!(e.contains("codes:3:") && e.contains("bad line here"), "{e}");
        std::fs::write(&p, "#version: 0.2\n").unwrap();
        assert_eq!(Bpe::load(&p).unwrap().merges(), 0);
        std::fs::write(&p, "#version: 0.3\na b\n").unwrap();
        assert!(Bpe::load(&p).unwrap_err().to_string().contains("codes:1:"));
        std::fs::write(&p, b"#version: 0.2\na \xff\n").unwrap();
        let e = Bpe::load(&p).unwrap_err().to_string();
        assert!(e.contains("codes:2: invalid UTF-8"), "{e}");
        assert!(Bpe::load(&dir.join("missing")).is_err());
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(Bpe::learn(&HashMap::new(), 10, 2).merges(), 0);
        assert_eq!(
            Bpe::learn(&counts(&[("a", 10), ("b", 3)]), 10, 2).merges(),
            0
        );
        // min_frequency stops learning; 0 counts and empty words are ignored.
        let b = Bpe::learn(&counts(&[("ab", 1), ("", 5), ("cd", 0)]), 10, 2);
        assert_eq!(b.merges(), 0);
        let b = Bpe::learn(&counts(&[("ab", 1)]), 10, 0);
        assert_eq!(pairs(&b), ["a b</w>"]);
        assert_eq!(
            words(" a  b\u{2028}c\td ").collect::<Vec<_>>(),
            ["a", "b", "c\td"]
        );
    }
}
