//! Text to word ids. One sentence per line, tokens split on space, tab, CR and NUL (KenLM's
//! delimiters). `<s>`, `</s>` and `<unk>` are reserved: by default their appearance in the text is
//! an error naming the line, with `skip_symbols` they are treated as whitespace (KenLM's
//! `--skip_symbols`). Invalid UTF-8 is an error naming the line, never silently replaced.

use crate::hash::FastMap;
use crate::input::{for_each_line, Stdin};
use crate::util::shown;
use crate::{Error, Result, BOS, EOS, UNK};
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
    /// All sentences, each terminated by [`EOS`]; empty after [`Corpus::scan`], which keeps
    /// only the vocabulary.
    pub tokens: Vec<u32>,
    /// Occurrences of each id (`</s>` once per sentence; `<unk>` and `<s>` 0).
    pub counts: Vec<u64>,
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
        self.counts.push(0);
        self.index.insert(w.into(), id);
        id
    }

    /// Reads the files (`-` is standard input) in order, keeping the token stream (for
    /// [`crate::kn::build`]). `progress` is called with the number of bytes read so far, every
    /// few megabytes.
    pub fn read(
        paths: &[PathBuf],
        opts: CorpusOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Corpus> {
        Self::read_with(paths, opts, &Stdin::Direct, true, progress)
    }

    /// The vocabulary pass of a build: reads the files like [`Corpus::read`] but keeps only
    /// the words, their counts and the sentence and token totals, not the token stream, so its
    /// memory is the vocabulary's whatever the corpus size. `stdin` says where `-` is read from
    /// (and whether it is spooled for a second pass).
    pub fn scan(
        paths: &[PathBuf],
        opts: CorpusOptions,
        stdin: &Stdin,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Corpus> {
        Self::read_with(paths, opts, stdin, false, progress)
    }

    fn read_with(
        paths: &[PathBuf],
        opts: CorpusOptions,
        stdin: &Stdin,
        keep_tokens: bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Corpus> {
        let mut c = Corpus::new();
        let mut scratch = Vec::new();
        for_each_line(paths, stdin, progress, &mut |line| {
            scratch.clear();
            c.add_line(line.text, opts, line.path, line.number, &mut scratch)?;
            if line.unterminated_last {
                // lmplz gives a final line without a newline no </s>; so does firth.
                scratch.pop();
                c.counts[EOS as usize] -= 1;
            }
            if keep_tokens {
                c.tokens.extend_from_slice(&scratch);
            }
            Ok(())
        })?;
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

    /// The id of `word`, if it is in the vocabulary.
    #[inline]
    pub fn id(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }

    /// A vocabulary from its words in id order (the first three `<unk> <s> </s>`) and their
    /// counts, as read back from a vocabulary file.
    /// Fails with the first word listed twice.
    pub(crate) fn from_vocab(
        words: Vec<String>,
        counts: Vec<u64>,
        sentences: u64,
        word_tokens: u64,
    ) -> std::result::Result<Corpus, String> {
        let mut index = FastMap::default();
        for (i, w) in words.iter().enumerate() {
            if index
                .insert(Box::<str>::from(w.as_str()), i as u32)
                .is_some()
            {
                return Err(w.clone());
            }
        }
        Ok(Corpus {
            words,
            index,
            tokens: Vec::new(),
            counts,
            sentences,
            word_tokens,
        })
    }

    /// Adds the vocabulary of the text that follows this one: its words not seen yet get the
    /// next ids in its order, and all counts add up, as if the two texts had been read as one.
    pub(crate) fn absorb(&mut self, next: &Corpus) {
        for (w, &n) in next.words.iter().zip(&next.counts) {
            let id = self.intern(w);
            self.counts[id as usize] += n;
        }
        self.sentences += next.sentences;
        self.word_tokens += next.word_tokens;
    }

    /// Builds a corpus from in-memory text (tests, library users).
    pub fn from_text(text: &str, opts: CorpusOptions) -> Result<Corpus> {
        let mut c = Corpus::new();
        let mut toks = Vec::new();
        for (i, line) in text.lines().enumerate() {
            c.add_line(line, opts, Path::new("<text>"), i as u64 + 1, &mut toks)?;
        }
        c.tokens = toks;
        if c.word_tokens == 0 {
            return Err(Error::Config("no words in the input text".into()));
        }
        Ok(c)
    }

    /// Appends the line's ids and `</s>` to `toks`, counting them.
    fn add_line(
        &mut self,
        line: &str,
        opts: CorpusOptions,
        path: &Path,
        line_no: u64,
        toks: &mut Vec<u32>,
    ) -> Result<()> {
        let mut err = None;
        let mut words = 0u64;
        for_each_token(line, opts.chars, |t| {
            let id = self.intern(t);
            if id == UNK || id == BOS || id == EOS {
                if !opts.skip_symbols && err.is_none() {
                    err = Some(t.to_string());
                }
                return;
            }
            self.counts[id as usize] += 1;
            toks.push(id);
            words += 1;
        });
        self.counts[EOS as usize] += 1;
        toks.push(EOS);
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
    pub fn unigram_counts(&self) -> &[u64] {
        &self.counts
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
