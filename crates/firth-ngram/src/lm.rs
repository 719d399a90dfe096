//! One query interface over both binary layouts: [`Scorer`] is what scoring needs from a model
//! (its vocabulary and one word's score from a state); text scoring, KenLM-style full scores
//! and sampling are written once on top of it. [`AnyModel`] is a model of either layout, as
//! loaded from a file whose kind is known only at run time: it picks the layout once per call,
//! so the per-word loop runs on the concrete type.

use crate::model::{Checksum, FullScore, Model, PplStats, Rng, State, WordScore};
use crate::trie::TrieModel;
use crate::util::shown;
use crate::{Error, Result, BOS, EOS, UNK};
use std::io::BufRead;
use std::path::Path;

/// What the scoring loops need from a model.
pub trait Scorer {
    fn order(&self) -> usize;
    fn vocab_size(&self) -> usize;
    fn is_chars(&self) -> bool;
    /// The id of `w`, or `<unk>`'s id 0 when it is not in the vocabulary.
    fn word_id(&self, w: &str) -> u32;
    /// The word with id `id`.
    fn word(&self, id: u32) -> &str;
    /// The state at the start of a sentence: the context `<s>`.
    fn begin_state(&self) -> State;
    /// A state with no context.
    fn null_state(&self) -> State;
    /// Scores `word` after `state`: log10 p(word | state) and the length of the n-gram used;
    /// writes the state after `word` into `out`.
    fn score(&self, state: &State, word: u32, out: &mut State) -> (f32, usize);
    /// What a layout can prepare for a word before scoring it.
    type Ahead: Copy + Default;
    /// A hint that the n-grams ending in the last word of `sentence` (ids after the implicit
    /// `<s>`) with up to `depth` context words are scored next: a layout that can fetch them
    /// early does, and returns what [`Scorer::score_ahead`] can reuse.
    fn prefetch_ngrams(&self, sentence: &[u32], depth: usize) -> Self::Ahead;
    /// [`Scorer::score`] given what [`Scorer::prefetch_ngrams`] returned for this word (with a
    /// depth of at least `state.len()`).
    #[inline]
    fn score_ahead(
        &self,
        state: &State,
        word: u32,
        out: &mut State,
        _ahead: &Self::Ahead,
    ) -> (f32, usize) {
        self.score(state, word, out)
    }

    /// Scores one sentence as KenLM's Python module does (`score`, `full_scores`): its
    /// whitespace-separated words (characters, for a character model), from the `<s>` context
    /// when `bos` and from no context otherwise, then `</s>` when `eos`.
    fn full_scores(&self, sentence: &str, bos: bool, eos: bool) -> Vec<FullScore> {
        let mut ids = Vec::new();
        if self.is_chars() {
            crate::corpus::for_each_token(sentence, true, |w| ids.push(self.word_id(w)));
        } else {
            ids.extend(sentence.split_whitespace().map(|w| self.word_id(w)));
        }
        let words = ids.len();
        if eos {
            ids.push(EOS);
        }
        let mut s = if bos {
            self.begin_state()
        } else {
            self.null_state()
        };
        let mut o = s;
        ids.iter()
            .enumerate()
            .map(|(i, &id)| {
                let (log10_prob, ngram_len) = self.score(&s, id, &mut o);
                std::mem::swap(&mut s, &mut o);
                FullScore {
                    log10_prob,
                    ngram_len,
                    oov: i < words && id == UNK,
                }
            })
            .collect()
    }

    /// log10 p(w | state) for every id w, `<s>` set to -inf: the next-word distribution.
    fn distribution(&self, state: &State) -> Vec<f32> {
        let mut out = self.null_state();
        (0..self.vocab_size() as u32)
            .map(|w| {
                if w == BOS {
                    f32::NEG_INFINITY
                } else {
                    self.score(state, w, &mut out).0
                }
            })
            .collect()
    }

    /// Scores text (one sentence per line) as KenLM's `query` does: each line starts in the `<s>`
    /// context and ends with `</s>`. Calls `each` on every token when given.
    fn score_text(
        &self,
        r: &mut dyn BufRead,
        path: &Path,
        mut each: Option<&mut dyn FnMut(WordScore)>,
    ) -> Result<PplStats> {
        let chars = self.is_chars();
        let mut st = PplStats::default();
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        let mut ids: Vec<u32> = Vec::new();
        let mut words: Vec<String> = Vec::new();
        loop {
            buf.clear();
            let n = r
                .read_until(b'\n', &mut buf)
                .map_err(|source| Error::Read {
                    path: shown(path),
                    err: source,
                })?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let line = std::str::from_utf8(&buf).map_err(|e| Error::Format {
                path: shown(path),
                line: line_no,
                msg: format!(
                    "invalid UTF-8 at byte {} of the line; convert the file to UTF-8 (e.g. with iconv)",
                    e.valid_up_to() + 1
                ),
            })?;
            ids.clear();
            words.clear();
            let want_words = each.is_some();
            crate::corpus::for_each_token(line, chars, |w| {
                ids.push(self.word_id(w));
                if want_words {
                    words.push(w.to_string());
                }
            });
            ids.push(EOS);
            // Two states used in turn: the references swap, not the states.
            let mut s0 = self.begin_state();
            let mut s1 = s0;
            let (mut s, mut o) = (&mut s0, &mut s1);
            let mut ahead = self.prefetch_ngrams(&ids[..1], s.len());
            for i in 0..ids.len() {
                // The next word's n-grams depend only on the words, not on this word's result:
                // fetch their slots now so they arrive while this word is scored. Its context
                // is at most this word's plus this word.
                let next = if i + 1 < ids.len() {
                    self.prefetch_ngrams(&ids[..i + 2], s.len() + 1)
                } else {
                    Default::default()
                };
                let id = ids[i];
                let (p, len) = self.score_ahead(s, id, o, &ahead);
                ahead = next;
                std::mem::swap(&mut s, &mut o);
                st.tokens += 1;
                st.log10_prob += p as f64;
                if id == UNK {
                    st.oov += 1;
                    st.log10_prob_oov += p as f64;
                }
                if let Some(f) = each.as_mut() {
                    let end = i + 1 == ids.len();
                    f(WordScore {
                        word: if end { "</s>" } else { &words[i] },
                        id,
                        ngram_len: len,
                        log10_prob: p,
                        end,
                    });
                }
            }
            st.sentences += 1;
        }
        Ok(st)
    }

    /// Samples one sentence (words, without `<s>`/`</s>`), at most `max_len` words. The next-word
    /// distribution is raised to `1 / temperature` and renormalised; `<unk>` is never drawn.
    fn generate(&self, rng: &mut Rng, temperature: f64, max_len: usize) -> Vec<String> {
        let mut s = self.begin_state();
        let mut out = Vec::new();
        let mut weights = vec![0f64; self.vocab_size()];
        while out.len() < max_len {
            let d = self.distribution(&s);
            let mut total = 0.0;
            for (i, &lp) in d.iter().enumerate() {
                let w = if i as u32 == UNK || i as u32 == BOS {
                    0.0
                } else {
                    10f64.powf(lp as f64 / temperature)
                };
                weights[i] = w;
                total += w;
            }
            let mut x = rng.next_f64() * total;
            let mut pick = EOS;
            for (i, &w) in weights.iter().enumerate() {
                if w > 0.0 {
                    pick = i as u32;
                    if x < w {
                        break;
                    }
                    x -= w;
                }
            }
            if pick == EOS {
                break;
            }
            let mut o = s;
            self.score(&s, pick, &mut o);
            s = o;
            out.push(self.word(pick).to_string());
        }
        out
    }

    /// One sampled sentence as text: words joined by spaces, or, for a character model, the
    /// characters run together with each `<sp>` (how a space is stored, since ARPA words
    /// cannot contain one) turned back into a space.
    fn generate_text(&self, rng: &mut Rng, temperature: f64, max_len: usize) -> String {
        let words = self.generate(rng, temperature, max_len);
        if self.is_chars() {
            words
                .iter()
                .map(|w| {
                    if w == crate::corpus::SPACE_TOKEN {
                        " "
                    } else {
                        w.as_str()
                    }
                })
                .collect()
        } else {
            words.join(" ")
        }
    }
}

impl Scorer for Model {
    fn order(&self) -> usize {
        Model::order(self)
    }
    fn vocab_size(&self) -> usize {
        Model::vocab_size(self)
    }
    fn is_chars(&self) -> bool {
        Model::is_chars(self)
    }
    fn word_id(&self, w: &str) -> u32 {
        Model::word_id(self, w)
    }
    fn word(&self, id: u32) -> &str {
        Model::word(self, id)
    }
    fn begin_state(&self) -> State {
        Model::begin_state(self)
    }
    fn null_state(&self) -> State {
        Model::null_state(self)
    }
    #[inline]
    fn score(&self, state: &State, word: u32, out: &mut State) -> (f32, usize) {
        Model::score(self, state, word, out)
    }
    type Ahead = crate::model::Ahead;
    #[inline]
    fn prefetch_ngrams(&self, sentence: &[u32], depth: usize) -> Self::Ahead {
        Model::prefetch_ngrams(self, sentence, depth)
    }
    #[inline]
    fn score_ahead(
        &self,
        state: &State,
        word: u32,
        out: &mut State,
        ahead: &Self::Ahead,
    ) -> (f32, usize) {
        Model::score_ahead(self, state, word, out, ahead)
    }
}

impl Scorer for TrieModel {
    fn order(&self) -> usize {
        TrieModel::order(self)
    }
    fn vocab_size(&self) -> usize {
        TrieModel::vocab_size(self)
    }
    fn is_chars(&self) -> bool {
        TrieModel::is_chars(self)
    }
    fn word_id(&self, w: &str) -> u32 {
        TrieModel::word_id(self, w)
    }
    fn word(&self, id: u32) -> &str {
        TrieModel::word(self, id)
    }
    fn begin_state(&self) -> State {
        TrieModel::begin_state(self)
    }
    fn null_state(&self) -> State {
        TrieModel::null_state(self)
    }
    #[inline]
    fn score(&self, state: &State, word: u32, out: &mut State) -> (f32, usize) {
        TrieModel::score(self, state, word, out)
    }
    // Only the unigram entry could be fetched early (the deeper records depend on it).
    type Ahead = ();
    fn prefetch_ngrams(&self, _sentence: &[u32], _depth: usize) {}
}

/// A model of either binary layout (an ARPA file loads as probing).
// One per loaded file, used in place: a box would only add a pointer hop to every query.
#[allow(clippy::large_enum_variant)]
pub enum AnyModel {
    Probing(Model),
    Trie(TrieModel),
}

/// Calls `$body` with `$m` bound to the concrete model.
macro_rules! either {
    ($self:expr, $m:ident => $body:expr) => {
        match $self {
            AnyModel::Probing($m) => $body,
            AnyModel::Trie($m) => $body,
        }
    };
}

impl AnyModel {
    /// Loads a probing binary, a trie binary or an ARPA file, whichever `path` is, verifying
    /// a binary file's checksum.
    pub fn load(path: &Path) -> Result<AnyModel> {
        AnyModel::load_with(path, Checksum::Verify)
    }

    /// [`AnyModel::load`], choosing whether a binary model's checksum is verified.
    pub fn load_with(path: &Path, checksum: Checksum) -> Result<AnyModel> {
        if crate::trie::is_trie(path)? {
            Ok(AnyModel::Trie(TrieModel::load(path, checksum)?))
        } else {
            Ok(AnyModel::Probing(Model::load_with(path, checksum)?))
        }
    }

    /// "probing" or "trie".
    pub fn layout(&self) -> &'static str {
        match self {
            AnyModel::Probing(_) => "probing",
            AnyModel::Trie(_) => "trie",
        }
    }

    /// Waits for a background checksum and returns its verdict.
    pub fn verified(&self) -> Result<()> {
        either!(self, m => m.verified())
    }

    /// Whether this is a probing file old enough to have no checksum.
    pub fn lacks_checksum(&self) -> bool {
        match self {
            AnyModel::Probing(m) => m.lacks_checksum(),
            AnyModel::Trie(_) => false,
        }
    }

    pub fn with_chars(self, chars: bool) -> AnyModel {
        match self {
            AnyModel::Probing(m) => AnyModel::Probing(m.with_chars(chars)),
            AnyModel::Trie(m) => AnyModel::Trie(m.with_chars(chars)),
        }
    }

    pub fn counts(&self) -> &[u64] {
        either!(self, m => m.counts())
    }

    /// Size of the model's structure in bytes.
    pub fn size_bytes(&self) -> usize {
        either!(self, m => m.size_bytes())
    }

    /// [`Scorer::score_text`] on the concrete layout.
    pub fn score_text(
        &self,
        r: &mut dyn BufRead,
        path: &Path,
        each: Option<&mut dyn FnMut(WordScore)>,
    ) -> Result<PplStats> {
        either!(self, m => Scorer::score_text(m, r, path, each))
    }

    /// [`Scorer::full_scores`] on the concrete layout.
    pub fn full_scores(&self, sentence: &str, bos: bool, eos: bool) -> Vec<FullScore> {
        either!(self, m => Scorer::full_scores(m, sentence, bos, eos))
    }

    /// [`Scorer::generate_text`] on the concrete layout.
    pub fn generate_text(&self, rng: &mut Rng, temperature: f64, max_len: usize) -> String {
        either!(self, m => Scorer::generate_text(m, rng, temperature, max_len))
    }
}

impl Scorer for AnyModel {
    fn order(&self) -> usize {
        either!(self, m => Scorer::order(m))
    }
    fn vocab_size(&self) -> usize {
        either!(self, m => Scorer::vocab_size(m))
    }
    fn is_chars(&self) -> bool {
        either!(self, m => Scorer::is_chars(m))
    }
    fn word_id(&self, w: &str) -> u32 {
        either!(self, m => Scorer::word_id(m, w))
    }
    fn word(&self, id: u32) -> &str {
        either!(self, m => Scorer::word(m, id))
    }
    fn begin_state(&self) -> State {
        either!(self, m => Scorer::begin_state(m))
    }
    fn null_state(&self) -> State {
        either!(self, m => Scorer::null_state(m))
    }
    #[inline]
    fn score(&self, state: &State, word: u32, out: &mut State) -> (f32, usize) {
        either!(self, m => Scorer::score(m, state, word, out))
    }
    // Per-word calls on an `AnyModel` prepare nothing; `score_text` runs on the concrete model.
    type Ahead = ();
    fn prefetch_ngrams(&self, _sentence: &[u32], _depth: usize) {}
    // The loops dispatch once, not per word.
    fn score_text(
        &self,
        r: &mut dyn BufRead,
        path: &Path,
        each: Option<&mut dyn FnMut(WordScore)>,
    ) -> Result<PplStats> {
        AnyModel::score_text(self, r, path, each)
    }
}
