//! Text to word ids. One sentence per line, tokens split on space, tab, CR and NUL (KenLM's
//! delimiters). `<s>`, `</s>` and `<unk>` are reserved: by default their appearance in the text is
//! an error naming the line, with `skip_symbols` they are treated as whitespace (KenLM's
//! `--skip_symbols`). Invalid UTF-8 is an error naming the line, never silently replaced.

use crate::hash::FastMap;
use crate::util::shown;
use crate::{Error, Result, BOS, EOS, UNK};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// How text becomes tokens.
#[derive(Clone, Copy, Debug, Default)]
pub struct CorpusOptions {
    /// Model characters instead of words: every character is a token, whitespace becomes `<sp>`.
    pub chars: bool,
    /// Treat `<s>`, `</s>`, `<unk>` in the text as whitespace instead of failing.
    pub skip_symbols: bool,
}

/// Token written for a whitespace character in `chars` mode (ARPA words cannot contain spaces).
pub const SPACE_TOKEN: &str = "<sp>";

/// A corpus as word ids: each sentence is its words followed by `</s>` (id 2); `<s>` is implicit.
#[derive(Debug, Default)]
pub struct Corpus {
    /// Word strings by id; ids 0, 1, 2 are `<unk>`, `<s>`, `</s>`.
    pub words: Vec<String>,
    index: FastMap<Box<str>, u32>,
    /// All sentences, each terminated by [`EOS`].
    pub tokens: Vec<u32>,
    /// Number of sentences (lines).
    pub sentences: u64,
    /// Number of word tokens, not counting `</s>`.
    pub word_tokens: u64,
}

/// Splits a line into tokens the way KenLM does (delimiters `\0 \t \n \r` and space), or into
/// characters in `chars` mode, calling `f` on each token.
pub fn for_each_token(line: &str, chars: bool, mut f: impl FnMut(&str)) {
    if chars {
        let mut buf = [0u8; 4];
        for c in line.chars() {
            match c {
                '\n' | '\r' | '\0' => {}
                c if c.is_whitespace() => f(SPACE_TOKEN),
                c => f(c.encode_utf8(&mut buf)),
            }
        }
    } else {
        // The delimiters are ASCII, so splitting the bytes cuts only at character boundaries.
        let b = line.as_bytes();
        let mut start = 0;
        for (i, &c) in b.iter().enumerate() {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0) {
                if i > start {
                    f(&line[start..i]);
                }
                start = i + 1;
            }
        }
        if b.len() > start {
            f(&line[start..]);
        }
    }
}

impl Corpus {
    fn new() -> Self {
        let mut c = Corpus::default();
        for w in ["<unk>", "<s>", "</s>"] {
            c.intern(w);
        }
        c
    }

    fn intern(&mut self, w: &str) -> u32 {
        if let Some(&id) = self.index.get(w) {
            return id;
        }
        let id = self.words.len() as u32;
        self.words.push(w.to_string());
        self.index.insert(w.into(), id);
        id
    }

    /// Reads the files (`-` is standard input) in order. `progress` is called with the number of
    /// bytes read so far, every few megabytes.
    pub fn read(
        paths: &[PathBuf],
        opts: CorpusOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Corpus> {
        let mut c = Corpus::new();
        let mut bytes = 0u64;
        for p in paths {
            let rd = |source| Error::Read {
                path: shown(p),
                err: source,
            };
            let inner: Box<dyn Read> = if p == Path::new("-") {
                Box::new(std::io::stdin().lock())
            } else {
                Box::new(std::fs::File::open(p).map_err(rd)?)
            };
            let mut r = BufReader::with_capacity(1 << 20, inner);
            let mut buf = Vec::new();
            let mut line_no = 0u64;
            let mut last_report = 0u64;
            loop {
                buf.clear();
                let n = r.read_until(b'\n', &mut buf).map_err(rd)?;
                if n == 0 {
                    break;
                }
                line_no += 1;
                bytes += n as u64;
                let line = std::str::from_utf8(&buf).map_err(|e| Error::Format {
                    path: shown(p),
                    line: line_no,
                    msg: format!(
                        "invalid UTF-8 at byte {} of the line; convert the file to UTF-8 (e.g. with iconv) or remove binary data",
                        e.valid_up_to() + 1
                    ),
                })?;
                // lmplz gives a final line without a newline no </s>; so does firth, for parity.
                let unterminated = !buf.ends_with(b"\n") && p == paths.last().unwrap();
                c.add_line(line, opts, p, line_no)?;
                if unterminated {
                    c.tokens.pop();
                }
                if bytes - last_report > (8 << 20) {
                    last_report = bytes;
                    progress(bytes);
                }
            }
        }
        progress(bytes);
        if c.word_tokens == 0 {
            let names: Vec<String> = paths
                .iter()
                .map(|p| shown(p).display().to_string())
                .collect();
            return Err(Error::File {
                path: PathBuf::from(names.join(", ")),
                msg: "no words in the input (empty or whitespace only); give a corpus with one sentence per line".into(),
            });
        }
        Ok(c)
    }

    /// Builds a corpus from in-memory text (tests, library users).
    pub fn from_text(text: &str, opts: CorpusOptions) -> Result<Corpus> {
        let mut c = Corpus::new();
        for (i, line) in text.lines().enumerate() {
            c.add_line(line, opts, Path::new("<text>"), i as u64 + 1)?;
        }
        if c.word_tokens == 0 {
            return Err(Error::Config("no words in the input text".into()));
        }
        Ok(c)
    }

    fn add_line(
        &mut self,
        line: &str,
        opts: CorpusOptions,
        path: &Path,
        line_no: u64,
    ) -> Result<()> {
        let mut err = None;
        let mut words = 0u64;
        let mut toks = std::mem::take(&mut self.tokens);
        for_each_token(line, opts.chars, |t| {
            let id = self.intern(t);
            if id == UNK || id == BOS || id == EOS {
                if !opts.skip_symbols && err.is_none() {
                    err = Some(t.to_string());
                }
                return;
            }
            toks.push(id);
            words += 1;
        });
        toks.push(EOS);
        self.tokens = toks;
        if let Some(t) = err {
            return Err(Error::Format {
                path: shown(path),
                line: line_no,
                msg: format!(
                    "the text contains the reserved word {t}; rename it (e.g. sed 's/<unk>/_unk_/g') or rerun with --skip-symbols to read <s>, </s> and <unk> as whitespace"
                ),
            });
        }
        self.word_tokens += words;
        self.sentences += 1;
        Ok(())
    }

    /// Number of distinct ids, including the three reserved words.
    pub fn vocab_size(&self) -> usize {
        self.words.len()
    }

    /// Occurrences of each id (reserved words included, `</s>` once per sentence).
    pub fn unigram_counts(&self) -> Vec<u64> {
        let mut c = vec![0u64; self.words.len()];
        for &t in &self.tokens {
            c[t as usize] += 1;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_sentences() {
        let c = Corpus::from_text("a b\n\nb  c\n", CorpusOptions::default()).unwrap();
        assert_eq!(c.words, ["<unk>", "<s>", "</s>", "a", "b", "c"]);
        assert_eq!(c.tokens, [3, 4, 2, 2, 4, 5, 2]);
        assert_eq!(c.sentences, 3);
        assert_eq!(c.word_tokens, 4);
    }

    #[test]
    fn reserved_words() {
        let e = Corpus::from_text("a <unk> b\n", CorpusOptions::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("<text>:1: the text contains the reserved word <unk>"),
            "{e}"
        );
        let opts = CorpusOptions {
            skip_symbols: true,
            ..Default::default()
        };
        let c = Corpus::from_text("a <unk> b\n", opts).unwrap();
        assert_eq!(c.tokens, [3, 4, 2]);
    }

    #[test]
    fn chars() {
        let opts = CorpusOptions {
            chars: true,
            ..Default::default()
        };
        let c = Corpus::from_text("ab é\n", opts).unwrap();
        assert_eq!(&c.words[3..], ["a", "b", "<sp>", "é"]);
    }
}
