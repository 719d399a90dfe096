//! ARPA files, the interchange format of KenLM, SRILM and IRSTLM: a `\data\` header with
//! `ngram n=count` lines, then one `\n-grams:` section per order with lines
//! `log10 prob <tab> w1 .. wn [<tab> log10 backoff]`, then `\end\`.

use crate::hash;
use crate::model::{is_binary, Checksum, Model, Parts, ProbBackoff, TableBuilder, MAX_ORDER};
use crate::quantize::{extends, NO_EXTENSION};
use crate::util::shown;
use crate::{Error, Result};
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Shortest round-trip decimal of `x`; zero as `0` (as KenLM writes it).
pub(crate) fn push_float(out: &mut String, fb: &mut zmij::Buffer, x: f32) {
    if x == 0.0 {
        out.push('0');
    } else {
        out.push_str(fb.format(x));
    }
}

/// One ARPA line: `prob <tab> words [<tab> backoff]`.
#[inline]
pub(crate) fn push_line(
    out: &mut String,
    fb: &mut zmij::Buffer,
    e: ProbBackoff,
    with_backoff: bool,
    words: impl FnOnce(&mut String),
) {
    push_float(out, fb, e.prob);
    out.push('\t');
    words(out);
    if with_backoff {
        out.push('\t');
        push_float(out, fb, e.backoff);
    }
    out.push('\n');
}

/// The words of a reversed corpus-id key in reading order, separated by spaces.
#[inline]
pub(crate) fn push_words(
    out: &mut String,
    pack: &crate::count::Packing,
    corpus_words: &[String],
    k: u128,
    n: usize,
) {
    for j in 0..n {
        if j > 0 {
            out.push(' ');
        }
        out.push_str(&corpus_words[pack.rev_word(k, n, n - 1 - j) as usize]);
    }
}

struct Lines<R> {
    r: R,
    line: u64,
    path: std::path::PathBuf,
}

impl<R: BufRead> Lines<R> {
    /// The next line without its end, or None at the end of the file.
    fn next<'a>(&mut self, buf: &'a mut Vec<u8>) -> Result<Option<&'a str>> {
        buf.clear();
        let n = self
            .r
            .read_until(b'\n', buf)
            .map_err(|source| Error::Read {
                path: self.path.clone(),
                err: source,
            })?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        match std::str::from_utf8(buf) {
            Ok(s) => Ok(Some(s)),
            Err(e) => Err(Error::Format {
                path: self.path.clone(),
                line: self.line,
                msg: format!(
                    "invalid UTF-8 at byte {}; an ARPA file is text (is this a binary model or a compressed file? decompress it first)",
                    e.valid_up_to() + 1
                ),
            }),
        }
    }
    fn err(&self, msg: impl Into<String>) -> Error {
        Error::Format {
            path: self.path.clone(),
            line: self.line,
            msg: msg.into(),
        }
    }
}

fn parse_prob(s: &str) -> Option<f32> {
    match s {
        "-inf" | "-Infinity" => Some(-99.0),
        _ => s.parse::<f32>().ok().filter(|x| x.is_finite()),
    }
}

/// Reads an ARPA file (plain, or gzip/xz/zstd by its first bytes) into a model. `<unk>` is
/// added with log10 probability -100 when absent (as KenLM does); `<s>` and `</s>` must be
/// present.
pub fn read_arpa(path: &Path) -> Result<Model> {
    let (r, len) = open_arpa(path)?;
    read_arpa_from(r, path, len)
}

/// Opens an ARPA file, plain or gzip/xz/zstd (by its first bytes), with its size in bytes when
/// plain: the decompressed size is unknown, so the `\data\` header's counts are then not
/// checked against it.
pub fn open_arpa(path: &Path) -> Result<(Box<dyn BufRead>, Option<u64>)> {
    let rd = |source| Error::Read {
        path: shown(path),
        err: source,
    };
    let mut head = [0u8; 6];
    let mut f = std::fs::File::open(path).map_err(rd)?;
    let got = std::io::Read::read(&mut f, &mut head).map_err(rd)?;
    let len = f.metadata().map_err(rd)?.len();
    if crate::input::Compression::detect(&head[..got]) != crate::input::Compression::None {
        return Ok((
            crate::input::open(path, &crate::input::Stdin::Direct)?,
            None,
        ));
    }
    drop(f);
    let file = std::fs::File::open(path).map_err(rd)?;
    Ok((Box::new(BufReader::with_capacity(1 << 20, file)), Some(len)))
}

/// Reads ARPA text from any reader; `path` names it in errors. With `len` (the input's size in
/// bytes), counts in the `\data\` header that the input cannot hold are refused before the
/// tables are allocated.
pub fn read_arpa_from<R: BufRead>(r: R, path: &Path, len: Option<u64>) -> Result<Model> {
    // Both callbacks fill the tables; they never run at the same time. A zero backoff is
    // stored as -0.0 (no longer n-gram has this context) until a longer n-gram shows that it
    // is one, so queries can drop it from their state (see `Model::score`).
    let tables: std::cell::RefCell<Vec<TableBuilder>> = Default::default();
    let unigram_extends: std::cell::RefCell<Vec<bool>> = Default::default();
    let v = parse_arpa(
        r,
        path,
        len,
        &mut |n, count, vocab| {
            let mut t = tables.borrow_mut();
            t.push(TableBuilder::new(count as usize));
            debug_assert_eq!(t.len() + 1, n);
            if n == 2 {
                *unigram_extends.borrow_mut() = vec![false; vocab];
            }
        },
        &mut |n, ids, prob, backoff| {
            let mut tables = tables.borrow_mut();
            if n == 2 {
                unigram_extends.borrow_mut()[ids[0] as usize] = true;
            } else {
                let ctx = &mut tables[n - 3];
                if let Some(c) = ctx.find(hash::ngram(&ids[..n - 1])) {
                    if !extends(ctx.slots[c].backoff) {
                        ctx.slots[c].backoff = 0.0;
                    }
                }
            }
            let t = &mut tables[n - 2];
            let (slot, dup) = t.insert(hash::ngram(ids));
            if dup {
                return Err(format!("duplicate {n}-gram"));
            }
            t.slots[slot].prob = prob;
            t.slots[slot].backoff = if backoff == 0.0 {
                NO_EXTENSION
            } else {
                backoff
            };
            Ok(())
        },
    )?;
    let mut unigrams = v.unigrams;
    let ext = unigram_extends.into_inner();
    for (i, u) in unigrams.iter_mut().enumerate() {
        if u.backoff == 0.0 {
            u.backoff = if ext.get(i).copied().unwrap_or(false) {
                0.0
            } else {
                NO_EXTENSION
            };
        }
    }
    Ok(Model::from_parts(Parts {
        words: v.words,
        unigrams,
        tables: tables.into_inner().into_iter().map(|t| t.slots).collect(),
        counts: v.counts,
        flags: 0,
    }))
}

/// An ARPA file's vocabulary and unigrams (ids: `<unk>` 0, `<s>` 1, `</s>` 2, then the other
/// unigrams in file order) and its n-gram counts (`<unk>` counted when it was added).
pub(crate) struct ArpaVocab {
    pub words: Vec<String>,
    pub unigrams: Vec<ProbBackoff>,
    pub counts: Vec<u64>,
}

/// Receives one n-gram of order >= 2: order, ids in reading order, log10 prob and backoff.
pub(crate) type EntrySink<'a> =
    dyn FnMut(usize, &[u32], f32, f32) -> std::result::Result<(), String> + 'a;

/// Parses ARPA text; the one reader behind both binary layouts. `begin(n, count, vocab)` is
/// called before the n-grams of each order n >= 2, `entry(n, ids, prob, backoff)` for each of
/// them (ids in reading order; backoff 0 where the file has none); an `Err` from `entry`
/// becomes an error at that line.
pub(crate) fn parse_arpa<R: BufRead>(
    r: R,
    path: &Path,
    len: Option<u64>,
    begin: &mut dyn FnMut(usize, u64, usize),
    entry: &mut EntrySink,
) -> Result<ArpaVocab> {
    let mut l = Lines {
        r,
        line: 0,
        path: shown(path),
    };
    let mut buf = Vec::new();
    // Anything before \data\ is a comment.
    loop {
        match l.next(&mut buf)? {
            None => {
                return Err(l.err("no \\data\\ header: this is not an ARPA file (or it is empty)"))
            }
            Some(s) if s.trim() == "\\data\\" => break,
            Some(_) => {}
        }
    }
    let mut declared: Vec<u64> = Vec::new();
    let first_section = loop {
        let Some(s) = l.next(&mut buf)? else {
            return Err(l.err("the file ends inside the \\data\\ header; it is truncated"));
        };
        let s = s.trim();
        if s.is_empty() {
            continue;
        }
        if let Some(rest) = s.strip_prefix("ngram ") {
            let (o, c) = rest
                .split_once('=')
                .ok_or_else(|| l.err(format!("expected `ngram N=COUNT`, found {s:?}")))?;
            let o: usize = o
                .trim()
                .parse()
                .map_err(|_| l.err(format!("bad order in {s:?}")))?;
            let c: u64 = c
                .trim()
                .parse()
                .map_err(|_| l.err(format!("bad count in {s:?}")))?;
            if o != declared.len() + 1 {
                return Err(l.err(format!(
                    "expected the count of order {}, found order {o}",
                    declared.len() + 1
                )));
            }
            declared.push(c);
            continue;
        }
        break s.to_string();
    };
    let n_max = declared.len();
    if n_max == 0 {
        return Err(l.err("the \\data\\ header declares no `ngram N=COUNT` lines"));
    }
    if n_max > MAX_ORDER {
        return Err(l.err(format!(
            "order {n_max} is above the supported maximum {MAX_ORDER}"
        )));
    }
    if let Some(len) = len {
        // The shortest n-gram line is "p w1 .. wn\n": 2n + 2 bytes.
        let needed = declared.iter().enumerate().try_fold(0u64, |sum, (i, &c)| {
            c.checked_mul(2 * i as u64 + 4)?.checked_add(sum)
        });
        if !matches!(needed, Some(n) if n <= len) {
            return Err(l.err(format!(
                "the \\data\\ header declares {} n-grams ({}), more than a file of {len} bytes can hold; the counts are wrong or the file is truncated",
                declared.iter().map(|&c| c as u128).sum::<u128>(),
                declared
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("ngram {}={c}", i + 1))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let mut words: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut index: hash::FastMap<String, u32> = hash::FastMap::default();
    for (i, w) in words.iter().enumerate() {
        index.insert(w.clone(), i as u32);
    }
    let mut unigrams: Vec<ProbBackoff> = vec![ProbBackoff::default(); 3];
    let mut seen_special = [false; 3];
    let mut header = first_section;
    let mut ids: Vec<u32> = Vec::with_capacity(n_max);
    for n in 1..=n_max {
        if header != format!("\\{n}-grams:") {
            return Err(l.err(format!(
                "expected the section header \\{n}-grams:, found {header:?}"
            )));
        }
        if n > 1 {
            begin(n, declared[n - 1], words.len());
        }
        let mut got = 0u64;
        let next_header = loop {
            let Some(s) = l.next(&mut buf)? else {
                return Err(l.err(format!(
                    "the file ends inside \\{n}-grams: after {got} of {} entries; it is truncated",
                    declared[n - 1]
                )));
            };
            if s.trim().is_empty() {
                continue;
            }
            if s.starts_with('\\') {
                break s.trim().to_string();
            }
            let mut f = s.split_ascii_whitespace();
            let prob = f.next().and_then(parse_prob).ok_or_else(|| {
                l.err(format!(
                    "expected a log10 probability at the start of {s:?}"
                ))
            })?;
            if prob > 0.0 {
                return Err(l.err(format!(
                    "log10 probability {prob} is above 0 (a probability above 1) in {s:?}; the file is corrupt or not made by an ARPA writer"
                )));
            }
            ids.clear();
            for _ in 0..n {
                let w = f
                    .next()
                    .ok_or_else(|| l.err(format!("a {n}-gram line needs {n} words: {s:?}")))?;
                if n == 1 {
                    let id = match index.get(w) {
                        Some(&id) if id < 3 => {
                            if seen_special[id as usize] {
                                return Err(l.err(format!("duplicate unigram {w}")));
                            }
                            seen_special[id as usize] = true;
                            id
                        }
                        Some(_) => return Err(l.err(format!("duplicate unigram {w}"))),
                        None => {
                            let id = words.len() as u32;
                            words.push(w.to_string());
                            index.insert(w.to_string(), id);
                            unigrams.push(ProbBackoff::default());
                            id
                        }
                    };
                    ids.push(id);
                } else {
                    let id = *index.get(w).ok_or_else(|| {
                        l.err(format!("the word {w:?} in this {n}-gram is not among the unigrams; the file is inconsistent"))
                    })?;
                    ids.push(id);
                }
            }
            let backoff = match f.next() {
                Some(b) if n < n_max => {
                    parse_prob(b).ok_or_else(|| l.err(format!("bad backoff {b:?}")))?
                }
                Some(b) => {
                    return Err(l.err(format!(
                        "unexpected field {b:?}: the highest order has no backoff"
                    )))
                }
                None => 0.0,
            };
            if let Some(x) = f.next() {
                return Err(l.err(format!("unexpected extra field {x:?}")));
            }
            got += 1;
            if got > declared[n - 1] {
                return Err(l.err(format!(
                    "\\{n}-grams: has more entries than the {} the header declares",
                    declared[n - 1]
                )));
            }
            if n == 1 {
                unigrams[ids[0] as usize] = ProbBackoff { prob, backoff };
            } else if let Err(msg) = entry(n, &ids, prob, backoff) {
                return Err(l.err(format!("{msg} {s:?}")));
            }
        };
        if got != declared[n - 1] {
            return Err(l.err(format!(
                "\\{n}-grams: has {got} entries but the header declares {}; the file is truncated or its counts are wrong",
                declared[n - 1]
            )));
        }
        header = next_header;
    }
    if header != "\\end\\" {
        return Err(l.err(format!(
            "expected \\end\\ after the {n_max}-grams, found {header:?}"
        )));
    }
    for (i, w) in ["<s>", "</s>"].iter().enumerate() {
        if !seen_special[i + 1] {
            return Err(Error::File {
                path: shown(path),
                msg: format!(
                    "the model has no unigram {w}; every sentence model needs <s> and </s>"
                ),
            });
        }
    }
    let mut counts = declared;
    if !seen_special[0] {
        unigrams[0] = ProbBackoff {
            prob: -100.0,
            backoff: 0.0,
        };
        counts[0] += 1;
    }
    Ok(ArpaVocab {
        words,
        unigrams,
        counts,
    })
}

/// Loading a model of either format lives here, beside the ARPA reader, so that the model
/// (the data structure) knows nothing of the text format.
impl Model {
    /// Loads a model from a binary file or an ARPA file (plain or gzip), whichever `path` is.
    pub fn load(path: &Path) -> Result<Model> {
        Model::load_with(path, Checksum::Verify)
    }

    /// [`Model::load`], choosing whether a binary model's checksum is verified.
    pub fn load_with(path: &Path, checksum: Checksum) -> Result<Model> {
        if is_binary(path)? {
            Model::load_binary(path, checksum)
        } else {
            read_arpa(path)
        }
    }
}
