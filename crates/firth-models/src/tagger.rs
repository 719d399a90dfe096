//! Sequence tagger (POS, NER): word embeddings + character-level word features + a stacked
//! bidirectional [`SeqEncoder`] + a softmax or linear-chain CRF output (Huang et al. 2015;
//! Lample et al. 2016; Ma & Hovy 2016).
//!
//! Per batch of B sentences padded to L tokens, with N real tokens in all:
//!
//! ```text
//! word ids (L, B) ──emb──▶ (L, B, E) ─┐
//! chars of each token (Lc, N) ──char emb──▶ (Lc, N, Ec) ──char BiLSTM──▶ [h→_last ; h←_first]
//!                                      (N, 2C) scattered to the token rows ──▶ (L, B, 2C)
//! concat (L, B, E + 2C) ──dropout──▶ encoder ──▶ (L, B, D) ──gather real rows──▶ (N, D)
//!   ──dropout──▶ linear ──▶ scores (N, K) ──▶ softmax cross-entropy   or   CRF over (L, B, K)
//! ```
//!
//! Backward runs the same chain in reverse; every piece is a firth-nn layer whose backward
//! accumulates its parameter gradients, so the model's backward only routes gradients: the
//! gather of real rows becomes a scatter (padded rows get zero), the concatenation splits,
//! and the character features' gradient lands on the two encoder rows it was read from
//! (the forward direction's last real step, the backward direction's step 0).
//!
//! Words are looked up lower-cased with digits mapped to 0 when `lowercase` is set (the
//! character features keep the case); unknown words and characters map to id 0.

use crate::encoder::{EncoderConfig, SeqEncoder};
use anyhow::{bail, Context, Result};
use firth_eval::ner::{ConllEval, NerReport};
use firth_nn::checkpoint::{write_atomic, Tensors};
use firth_nn::crf::Crf;
use firth_nn::dropout::{Dropout, DropoutKind};
use firth_nn::embedding::Embedding;
use firth_nn::linear::Linear;
use firth_nn::optim::{clip_grad_norm, OptimKind, Optimizer};
use firth_nn::softmax::{softmax_cross_entropy, softmax_cross_entropy_backward};
use firth_nn::{CellKind, Param, ParamSet, Real, Rng};
use firth_text::conll::{convert, is_span_tagset, split_tag, Scheme, Sentence};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const MODEL: &str = "model.safetensors";
const UNK: &str = "<unk>";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaggerConfig {
    pub cell: CellKind,
    /// Word vocabulary size (id 0 is `<unk>`).
    pub words: usize,
    pub emb: usize,
    /// Character vocabulary size (id 0 is unknown/padding); ignored when `char_dim` is 0.
    pub chars: usize,
    /// Character embedding size; 0 turns character features off.
    pub char_dim: usize,
    /// Character BiLSTM units per direction.
    pub char_hidden: usize,
    /// Characters read per word (longer words keep their first and last halves).
    pub max_word_chars: usize,
    pub hidden: usize,
    pub layers: usize,
    pub dropout: f32,
    pub crf: bool,
    pub tags: usize,
    pub lowercase: bool,
    /// Word embeddings are not trained.
    pub freeze: bool,
    pub init_range: f64,
    /// Size of the embedding of each token's capitalisation class ([`case_class`]: all-lower,
    /// first-upper, all-upper, has-digit, other; Collobert et al. 2011), concatenated to the
    /// word input; 0 = off.
    #[serde(default)]
    pub case_dim: usize,
    /// Training only: probability that a token's word id is replaced by `<unk>` (id 0), so the
    /// `<unk>` row, which test words without a vector read, is trained and the model learns to
    /// lean on the character features when a word is unknown.
    #[serde(default)]
    pub word_dropout: f32,
    /// Training only: dropout on the character embeddings, before the character BiLSTM.
    #[serde(default)]
    pub char_dropout: f32,
}

/// Number of capitalisation classes [`case_class`] returns.
pub const CASE_CLASSES: usize = 5;

/// Capitalisation class of a token as written: 0 all letters lower-case, 1 first character
/// upper-case (and not all upper), 2 all letters upper-case (two or more letters), 3 contains a
/// digit, 4 anything else (no letters, or mixed case starting lower-case such as `iPhone`).
pub fn case_class(word: &str) -> u32 {
    if word.chars().any(|c| c.is_ascii_digit()) {
        return 3;
    }
    let letters: Vec<char> = word.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.is_empty() {
        4
    } else if letters.iter().all(|c| !c.is_uppercase()) {
        0
    } else if letters.len() > 1 && letters.iter().all(|c| !c.is_lowercase()) {
        2
    } else if word.chars().next().is_some_and(char::is_uppercase) {
        1
    } else {
        4
    }
}

/// The label and input vocabularies a model was trained with, stored in its checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagVocab {
    pub words: Vec<String>,
    pub chars: Vec<char>,
    pub tags: Vec<String>,
    /// The scheme the model predicts in (`None` for tags that are not spans).
    pub scheme: Option<String>,
    /// The scheme of the training file, which predictions are written in.
    pub data_scheme: Option<String>,
    #[serde(skip)]
    word_index: HashMap<String, u32>,
    #[serde(skip)]
    char_index: HashMap<char, u32>,
    #[serde(skip)]
    tag_index: HashMap<String, u32>,
}

/// Lower-cases and maps digits to 0 (when `lowercase`), the key words are looked up by.
pub fn normalize(word: &str, lowercase: bool) -> String {
    if lowercase {
        word.chars()
            .map(|c| if c.is_ascii_digit() { '0' } else { c })
            .flat_map(char::to_lowercase)
            .collect()
    } else {
        word.to_string()
    }
}

/// Refuses a file whose tags are mostly span tags (O, B-/I-/E-/S-TYPE) but not all: a stray
/// `X-PER` would otherwise silently turn the span tagger into a plain one.
fn check_span_tags_are_consistent(sentences: &[Sentence]) -> Result<()> {
    let is_span = |t: &str| t == "O" || is_span_tagset(&[t]);
    let any_prefixed = sentences
        .iter()
        .flat_map(|s| &s.tags)
        .any(|t| t != "O" && is_span_tagset(&[t.as_str()]));
    if !any_prefixed {
        return Ok(());
    }
    for s in sentences {
        if let Some((i, t)) = s.tags.iter().enumerate().find(|(_, t)| !is_span(t)) {
            bail!(
                "line {}: tag {t:?} is not a span tag, but the other tags are (O or B-/I-/E-/S-TYPE); fix the tag, or check --tag-col",
                s.line + i
            );
        }
    }
    Ok(())
}

/// The scheme a file's span tags are in: BIOES if it has S-/E- tags, IOB1 if some chunk
/// starts with I-, IOB2 otherwise; `None` for tags that are not spans.
pub fn detect_scheme(sentences: &[Sentence]) -> Option<Scheme> {
    let all: Vec<&str> = sentences
        .iter()
        .flat_map(|s| s.tags.iter().map(|t| t.as_str()))
        .collect();
    let mut set: Vec<&str> = all.clone();
    set.sort_unstable();
    set.dedup();
    if !is_span_tagset(&set) {
        return None;
    }
    if set
        .iter()
        .any(|t| t.starts_with("S-") || t.starts_with("E-"))
    {
        return Some(Scheme::Bioes);
    }
    for s in sentences {
        let mut prev = ("O", "");
        for t in &s.tags {
            let cur = split_tag(t);
            if cur.0 == "I" && (prev.0 == "O" || prev.1 != cur.1) {
                return Some(Scheme::Iob1);
            }
            prev = cur;
        }
    }
    Some(Scheme::Iob2)
}

impl TagVocab {
    /// Words of the training file (and of `extra`, e.g. pretrained words that occur in the
    /// dev/test files), characters of the training file, and its tags in `scheme`.
    pub fn build(
        train: &[Sentence],
        extra: &[String],
        lowercase: bool,
        scheme: Option<Scheme>,
    ) -> Result<TagVocab> {
        check_span_tags_are_consistent(train)?;
        let data_scheme = detect_scheme(train);
        let scheme = match (scheme, data_scheme) {
            (Some(s), Some(_)) => Some(s),
            (Some(s), None) => bail!(
                "--scheme {} asks for span tags, but the training tags are not all O or B-/I-/E-/S-TYPE",
                s.name()
            ),
            (None, d) => d,
        };
        let mut words = vec![UNK.to_string()];
        let mut chars = vec!['\0'];
        let mut tags = Vec::new();
        let mut v = TagVocab {
            words: Vec::new(),
            chars: Vec::new(),
            tags: Vec::new(),
            scheme: scheme.map(|s| s.name().to_string()),
            data_scheme: data_scheme.map(|s| s.name().to_string()),
            word_index: HashMap::new(),
            char_index: HashMap::new(),
            tag_index: HashMap::new(),
        };
        let mut seen_w: HashMap<String, ()> = HashMap::new();
        let mut seen_c: HashMap<char, ()> = HashMap::new();
        let mut seen_t: HashMap<String, ()> = HashMap::new();
        for s in train {
            for w in &s.tokens {
                let k = normalize(w, lowercase);
                if seen_w.insert(k.clone(), ()).is_none() {
                    words.push(k);
                }
                for c in w.chars() {
                    if seen_c.insert(c, ()).is_none() {
                        chars.push(c);
                    }
                }
            }
            for t in v.convert_in(&s.tags)? {
                if seen_t.insert(t.clone(), ()).is_none() {
                    tags.push(t);
                }
            }
        }
        for w in extra {
            let k = normalize(w, lowercase);
            if seen_w.insert(k.clone(), ()).is_none() {
                words.push(k);
            }
        }
        // Sorted tags make label ids independent of the order sentences come in.
        tags.sort();
        v.words = words;
        v.chars = chars;
        v.tags = tags;
        v.reindex();
        Ok(v)
    }

    /// Rebuilds the lookup tables after deserialising.
    pub fn reindex(&mut self) {
        self.word_index = self
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
        self.char_index = self
            .chars
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u32))
            .collect();
        self.tag_index = self
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
    }

    fn scheme(&self) -> Option<Scheme> {
        self.scheme.as_deref().and_then(Scheme::parse)
    }

    /// Tags of a file converted into the model's scheme.
    pub fn convert_in(&self, tags: &[String]) -> Result<Vec<String>> {
        Ok(match self.scheme() {
            Some(s) => convert(tags, s),
            None => tags.to_vec(),
        })
    }

    pub fn word_id(&self, w: &str, lowercase: bool) -> u32 {
        *self.word_index.get(&normalize(w, lowercase)).unwrap_or(&0)
    }

    pub fn char_id(&self, c: char) -> u32 {
        *self.char_index.get(&c).unwrap_or(&0)
    }

    pub fn tag_id(&self, t: &str) -> Option<u32> {
        self.tag_index.get(t).copied()
    }

    /// Gold tags of `sentences` the model cannot predict (absent from training). Held-out
    /// files may have a few (they count as errors; callers warn); a file where no tag is
    /// known is refused, since it is most likely the wrong --tag-col or another task's file.
    pub fn unseen_tags(&self, sentences: &[Sentence], file: &Path) -> Result<UnseenTags> {
        let mut u = UnseenTags::default();
        for s in sentences {
            if self.scheme.is_some() {
                // A span model cannot even convert other tags: another task's file.
                if let Some((i, t)) = s
                    .tags
                    .iter()
                    .enumerate()
                    .find(|(_, t)| t.as_str() != "O" && !is_span_tagset(&[t.as_str()]))
                {
                    bail!(
                        "{}:{}: tag {t:?} is not in the model's label set (span tags O, B-/I-/E-/S-TYPE: {}); check --tag-col, or use a model trained on these labels",
                        file.display(),
                        s.line + i,
                        self.tags.join(" ")
                    );
                }
            }
            for (i, t) in self.convert_in(&s.tags)?.iter().enumerate() {
                u.tokens += 1;
                if self.tag_id(t).is_none() {
                    u.count += 1;
                    u.first.get_or_insert((s.line + i, s.tags[i].clone()));
                }
            }
        }
        if u.tokens > 0 && u.count == u.tokens {
            bail!(
                "{}: its tags are not in the model's label set ({}), none of them; check --tag-col, or use a model trained on these labels",
                file.display(),
                self.tags.join(" ")
            );
        }
        Ok(u)
    }
}

/// Held-out tokens whose gold tag the training file does not have.
#[derive(Clone, Debug, Default)]
pub struct UnseenTags {
    pub count: usize,
    pub tokens: usize,
    /// Line and tag of the first one.
    pub first: Option<(usize, String)>,
}

impl UnseenTags {
    pub fn warning(&self, file: &Path) -> Option<String> {
        let (line, tag) = self.first.as_ref()?;
        Some(format!(
            "{}: {} of {} tokens carry tags that the training file does not have (first: {tag:?} on line {line}); they count as errors",
            file.display(),
            self.count,
            self.tokens
        ))
    }
}

/// A sentence as ids.
#[derive(Clone, Debug)]
pub struct Encoded {
    pub words: Vec<u32>,
    /// Characters of each token, already cut to `max_word_chars`.
    pub chars: Vec<Vec<u32>>,
    /// Tag ids in the model's scheme (empty when the file has no tags).
    pub tags: Vec<u32>,
    /// Capitalisation class of each token ([`case_class`]).
    pub cases: Vec<u32>,
}

/// Encodes sentences; gold tags outside the label set are an error naming file and line.
pub fn encode(
    sentences: &[Sentence],
    vocab: &TagVocab,
    cfg: &TaggerConfig,
    file: &Path,
) -> Result<Vec<Encoded>> {
    sentences
        .iter()
        .map(|s| {
            if s.tokens.is_empty() {
                bail!("{}:{}: empty sentence", file.display(), s.line);
            }
            let tags = if s.tags.is_empty() {
                Vec::new()
            } else {
                if vocab.scheme.is_some() {
                    if let Some((i, t)) = s
                        .tags
                        .iter()
                        .enumerate()
                        .find(|(_, t)| t.as_str() != "O" && !is_span_tagset(&[t.as_str()]))
                    {
                        bail!(
                            "{}:{}: tag {t:?} is not in the model's label set (span tags O, B-/I-/E-/S-TYPE: {}); check --tag-col, or use a model trained on these labels",
                            file.display(),
                            s.line + i,
                            vocab.tags.join(" ")
                        );
                    }
                }
                vocab
                    .convert_in(&s.tags)?
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        vocab.tag_id(t).with_context(|| {
                            format!(
                                "{}:{}: tag {:?} ({t:?} in the model's scheme) is not in the model's label set ({}); the model was trained on other labels — check --tag-col, or retrain with this file's labels",
                                file.display(),
                                s.line + i,
                                s.tags[i],
                                vocab.tags.join(" ")
                            )
                        })
                    })
                    .collect::<Result<_>>()?
            };
            Ok(Encoded {
                words: s.tokens.iter().map(|w| vocab.word_id(w, cfg.lowercase)).collect(),
                chars: s
                    .tokens
                    .iter()
                    .map(|w| {
                        let cs: Vec<u32> = w.chars().map(|c| vocab.char_id(c)).collect();
                        clip_chars(cs, cfg.max_word_chars)
                    })
                    .collect(),
                tags,
                cases: s.tokens.iter().map(|w| case_class(w)).collect(),
            })
        })
        .collect()
}

/// Keeps the first and last halves of a word longer than `max` characters.
fn clip_chars(cs: Vec<u32>, max: usize) -> Vec<u32> {
    if cs.len() <= max || max == 0 {
        return cs;
    }
    let head = max.div_ceil(2);
    let tail = max - head;
    cs[..head]
        .iter()
        .chain(&cs[cs.len() - tail..])
        .copied()
        .collect()
}

/// One padded batch, built into reused buffers.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub steps: usize,
    pub batch: usize,
    pub lengths: Vec<usize>,
    pub words: Vec<u32>, // (L, B), 0 at padding
    pub tags: Vec<u32>,  // (L, B), 0 at padding
    /// Row t·B + b of each real token, in row order; N = rows.len().
    pub rows: Vec<usize>,
    /// Token index n of each row in `rows`: which sentence and position it came from.
    pub origin: Vec<(usize, usize)>,
    pub char_steps: usize,
    pub char_ids: Vec<u32>,       // (Lc, N)
    pub char_lengths: Vec<usize>, // (N)
    pub cases: Vec<u32>,          // (N) capitalisation class of each real token
}

impl Batch {
    /// Fills the batch from `sents` (indices into `data`).
    pub fn fill(&mut self, data: &[Encoded], sents: &[usize]) {
        let b_n = sents.len();
        let l_n = sents
            .iter()
            .map(|&i| data[i].words.len())
            .max()
            .unwrap_or(0);
        self.steps = l_n;
        self.batch = b_n;
        self.lengths.clear();
        self.lengths
            .extend(sents.iter().map(|&i| data[i].words.len()));
        self.words.clear();
        self.words.resize(l_n * b_n, 0);
        self.tags.clear();
        self.tags.resize(l_n * b_n, 0);
        self.rows.clear();
        self.origin.clear();
        for t in 0..l_n {
            for (b, &i) in sents.iter().enumerate() {
                let s = &data[i];
                if t < s.words.len() {
                    self.words[t * b_n + b] = s.words[t];
                    if let Some(&g) = s.tags.get(t) {
                        self.tags[t * b_n + b] = g;
                    }
                    self.rows.push(t * b_n + b);
                    self.origin.push((i, t));
                }
            }
        }
        let n = self.rows.len();
        self.cases.clear();
        self.cases.extend(
            self.origin
                .iter()
                .map(|&(i, t)| data[i].cases.get(t).copied().unwrap_or(4)),
        );
        self.char_lengths.clear();
        self.char_lengths.extend(
            self.origin
                .iter()
                .map(|&(i, t)| data[i].chars[t].len().max(1)),
        );
        self.char_steps = self.char_lengths.iter().copied().max().unwrap_or(1);
        self.char_ids.clear();
        self.char_ids.resize(self.char_steps * n, 0);
        for (k, &(i, t)) in self.origin.iter().enumerate() {
            for (c, &id) in data[i].chars[t].iter().enumerate() {
                self.char_ids[c * n + k] = id;
            }
        }
    }
}

/// The tagger's layers and the activations of its last forward pass.
#[derive(Clone, Debug)]
pub struct Tagger<T> {
    pub config: TaggerConfig,
    pub word_emb: Embedding<T>,
    pub char_emb: Option<Embedding<T>>,
    pub char_enc: Option<SeqEncoder<T>>,
    pub case_emb: Option<Embedding<T>>,
    pub encoder: SeqEncoder<T>,
    pub out: Linear<T>,
    pub crf: Option<Crf<T>>,
    in_drop: Dropout<T>,
    out_drop: Dropout<T>,
    char_drop: Dropout<T>,
    x: Vec<T>,      // (L, B, E + 2C + Ek) encoder input
    cx: Vec<T>,     // (Lc, N, Ec)
    hr: Vec<T>,     // (N, D) encoder outputs at real rows, after dropout
    logits: Vec<T>, // (N, K) scores; softmax probabilities after a softmax loss
    emis: Vec<T>,   // (L, B, K) CRF only
    gold: Vec<u32>, // (N)
    nll: Vec<f64>,
    d_h: Vec<T>,    // (L, B, D)
    d_hr: Vec<T>,   // (N, D)
    d_x: Vec<T>,    // (L, B, E + 2C + Ek)
    d_case: Vec<T>, // (N, Ek)
    d_cout: Vec<T>,
    d_cx: Vec<T>,
    d_we: Vec<T>, // (N, E)
    word_ids: Vec<u32>,
}

impl<T: Real> Tagger<T> {
    pub fn new(config: TaggerConfig, rng: &mut Rng) -> Result<Self> {
        let c = &config;
        if c.words == 0 || c.tags == 0 || c.hidden == 0 || c.layers == 0 || c.emb == 0 {
            bail!("a tagger needs words, tags, --emb, --hidden and --layers all above 0");
        }
        let r = c.init_range;
        let word_emb = Embedding::new("word_emb", c.words, c.emb, r, rng);
        let (char_emb, char_enc) = if c.char_dim > 0 {
            let cfg = EncoderConfig {
                cell: CellKind::Lstm,
                input: c.char_dim,
                hidden: c.char_hidden,
                layers: 1,
                bidirectional: true,
                dropout: 0.0,
            };
            (
                Some(Embedding::new(
                    "char_emb",
                    c.chars.max(1),
                    c.char_dim,
                    r,
                    rng,
                )),
                Some(SeqEncoder::with_name("char_enc", &cfg, r, rng)),
            )
        } else {
            (None, None)
        };
        let case_emb =
            (c.case_dim > 0).then(|| Embedding::new("case_emb", CASE_CLASSES, c.case_dim, r, rng));
        let enc_cfg = EncoderConfig {
            cell: c.cell,
            input: c.emb + if c.char_dim > 0 { 2 * c.char_hidden } else { 0 } + c.case_dim,
            hidden: c.hidden,
            layers: c.layers,
            bidirectional: true,
            dropout: c.dropout,
        };
        let encoder = SeqEncoder::new(&enc_cfg, r, rng);
        let out = Linear::new("out", encoder.out_dim(), c.tags, true, r, rng);
        let crf = c.crf.then(|| Crf::new("crf", c.tags, 0.0, rng));
        Ok(Tagger {
            word_emb,
            char_emb,
            char_enc,
            case_emb,
            encoder,
            out,
            crf,
            in_drop: Dropout::new(c.dropout as f64, DropoutKind::Standard),
            out_drop: Dropout::new(c.dropout as f64, DropoutKind::Standard),
            char_drop: Dropout::new(c.char_dropout as f64, DropoutKind::Standard),
            config,
            x: Vec::new(),
            cx: Vec::new(),
            hr: Vec::new(),
            logits: Vec::new(),
            emis: Vec::new(),
            gold: Vec::new(),
            nll: Vec::new(),
            d_h: Vec::new(),
            d_hr: Vec::new(),
            d_x: Vec::new(),
            d_case: Vec::new(),
            d_cout: Vec::new(),
            d_cx: Vec::new(),
            d_we: Vec::new(),
            word_ids: Vec::new(),
        })
    }

    fn char_feat(&self) -> usize {
        if self.config.char_dim > 0 {
            2 * self.config.char_hidden
        } else {
            0
        }
    }

    /// Computes the tag scores of every real token into `self.logits` (N, K).
    pub fn scores(&mut self, b: &Batch, train: bool, rng: &mut Rng) {
        let (l_n, b_n) = (b.steps, b.batch);
        let e = self.config.emb;
        let cf = self.char_feat();
        let kc = self.config.case_dim;
        let din = e + cf + kc;
        let n = b.rows.len();
        resize(&mut self.x, l_n * b_n * din);
        self.x.fill(T::ZERO);
        self.word_ids.clear();
        self.word_ids.extend(b.rows.iter().map(|&r| b.words[r]));
        let wp = self.config.word_dropout;
        if train && wp > 0.0 {
            for id in &mut self.word_ids {
                if rng.uniform_f32() < wp {
                    *id = 0;
                }
            }
        }
        let ev = &self.word_emb.weight.value;
        for (&r, &id) in b.rows.iter().zip(&self.word_ids) {
            let id = id as usize;
            self.x[r * din..r * din + e].copy_from_slice(&ev[id * e..(id + 1) * e]);
        }
        if let (Some(ce), Some(enc)) = (&self.char_emb, &mut self.char_enc) {
            let (lc, ec, ch) = (b.char_steps, self.config.char_dim, self.config.char_hidden);
            resize(&mut self.cx, lc * n * ec);
            ce.forward(&b.char_ids, &mut self.cx);
            self.char_drop.forward(&mut self.cx, n * ec, train, rng);
            let y = enc.forward(&self.cx, lc, n, &b.char_lengths, train, rng);
            for (k, &r) in b.rows.iter().enumerate() {
                let last = b.char_lengths[k] - 1;
                let dst = &mut self.x[r * din + e..r * din + e + cf];
                dst[..ch].copy_from_slice(&y[(last * n + k) * 2 * ch..][..ch]);
                dst[ch..2 * ch].copy_from_slice(&y[k * 2 * ch + ch..][..ch]);
            }
        }
        if let Some(ke) = &self.case_emb {
            let kv = &ke.weight.value;
            for (&r, &c) in b.rows.iter().zip(&b.cases) {
                let c = c as usize;
                self.x[r * din + e + cf..(r + 1) * din].copy_from_slice(&kv[c * kc..(c + 1) * kc]);
            }
        }
        self.in_drop.forward(&mut self.x, b_n * din, train, rng);
        let d = self.encoder.out_dim();
        let h = self
            .encoder
            .forward(&self.x, l_n, b_n, &b.lengths, train, rng);
        resize(&mut self.hr, n * d);
        for (k, &r) in b.rows.iter().enumerate() {
            self.hr[k * d..(k + 1) * d].copy_from_slice(&h[r * d..(r + 1) * d]);
        }
        self.out_drop.forward(&mut self.hr, d, train, rng);
        let kt = self.config.tags;
        resize(&mut self.logits, n * kt);
        self.out.forward(&self.hr, &mut self.logits);
    }

    /// Forward pass with the loss: Σ over tokens of -log p (softmax) or Σ over sentences of
    /// the CRF's NLL. Call [`Self::backward`] next to get gradients.
    pub fn forward(&mut self, b: &Batch, train: bool, rng: &mut Rng) -> f64 {
        self.scores(b, train, rng);
        let kt = self.config.tags;
        self.gold.clear();
        self.gold.extend(b.rows.iter().map(|&r| b.tags[r]));
        if let Some(crf) = &mut self.crf {
            scatter_rows(&self.logits, &b.rows, kt, b.steps * b.batch, &mut self.emis);
            crf.forward(&self.emis, b.steps, b.batch, &b.lengths, &b.tags)
        } else {
            softmax_cross_entropy(&mut self.logits, &self.gold, kt, &mut self.nll)
        }
    }

    /// Backpropagates `scale`·loss of the last [`Self::forward`], adding into the gradients.
    pub fn backward(&mut self, b: &Batch, scale: f64) {
        let (l_n, b_n) = (b.steps, b.batch);
        let kt = self.config.tags;
        let n = b.rows.len();
        let d = self.encoder.out_dim();
        let e = self.config.emb;
        let cf = self.char_feat();
        let kc = self.config.case_dim;
        let din = e + cf + kc;
        // d scores (N, K), into self.logits.
        if let Some(crf) = &mut self.crf {
            self.emis.fill(T::ZERO);
            crf.backward(scale, &mut self.emis);
            for (k, &r) in b.rows.iter().enumerate() {
                self.logits[k * kt..(k + 1) * kt].copy_from_slice(&self.emis[r * kt..(r + 1) * kt]);
            }
        } else {
            softmax_cross_entropy_backward(&mut self.logits, &self.gold, kt, scale);
        }
        resize(&mut self.d_hr, n * d);
        self.d_hr.fill(T::ZERO);
        self.out
            .backward(&self.hr, &self.logits, Some(&mut self.d_hr));
        self.out_drop.backward(&mut self.d_hr);
        scatter_rows(&self.d_hr, &b.rows, d, l_n * b_n, &mut self.d_h);
        resize(&mut self.d_x, l_n * b_n * din);
        self.encoder
            .backward(&self.x, &self.d_h, Some(&mut self.d_x));
        self.in_drop.backward(&mut self.d_x);
        // The case embedding's input columns of the real rows: dW_case[class] += dx row.
        if let Some(ke) = &mut self.case_emb {
            resize(&mut self.d_case, n * kc);
            for (k, &r) in b.rows.iter().enumerate() {
                self.d_case[k * kc..(k + 1) * kc]
                    .copy_from_slice(&self.d_x[r * din + e + cf..(r + 1) * din]);
            }
            ke.backward(&b.cases, &self.d_case);
        }
        if let (Some(ce), Some(enc)) = (&mut self.char_emb, &mut self.char_enc) {
            let (lc, ec, ch) = (b.char_steps, self.config.char_dim, self.config.char_hidden);
            resize(&mut self.d_cout, lc * n * 2 * ch);
            self.d_cout.fill(T::ZERO);
            for (k, &r) in b.rows.iter().enumerate() {
                let last = b.char_lengths[k] - 1;
                let src = &self.d_x[r * din + e..r * din + e + cf];
                self.d_cout[(last * n + k) * 2 * ch..][..ch].copy_from_slice(&src[..ch]);
                self.d_cout[k * 2 * ch + ch..][..ch].copy_from_slice(&src[ch..]);
            }
            resize(&mut self.d_cx, lc * n * ec);
            enc.backward(&self.cx, &self.d_cout, Some(&mut self.d_cx));
            self.char_drop.backward(&mut self.d_cx);
            ce.backward(&b.char_ids, &self.d_cx);
        }
        if !self.config.freeze {
            resize(&mut self.d_we, n * e);
            for (k, &r) in b.rows.iter().enumerate() {
                self.d_we[k * e..(k + 1) * e].copy_from_slice(&self.d_x[r * din..r * din + e]);
            }
            self.word_emb.backward(&self.word_ids, &self.d_we);
        }
    }

    /// Best tag ids of every real token, in the batch's row order.
    pub fn predict(&mut self, b: &Batch, out: &mut Vec<u32>) {
        let mut rng = Rng::new(0);
        self.scores(b, false, &mut rng);
        let kt = self.config.tags;
        out.clear();
        if let Some(crf) = &self.crf {
            scatter_rows(&self.logits, &b.rows, kt, b.steps * b.batch, &mut self.emis);
            let mut best = vec![0u32; b.steps * b.batch];
            crf.viterbi(&self.emis, b.steps, b.batch, &b.lengths, &mut best);
            out.extend(b.rows.iter().map(|&r| best[r]));
        } else {
            out.extend(self.logits.chunks_exact(kt).map(|row| {
                let mut arg = 0;
                for (i, &v) in row.iter().enumerate() {
                    if v > row[arg] {
                        arg = i;
                    }
                }
                arg as u32
            }));
        }
    }

    /// The parameters the optimizer updates (all but frozen word embeddings).
    pub fn trainable_mut(&mut self) -> Vec<&mut Param<T>> {
        let freeze = self.config.freeze;
        let mut v = self.params_mut();
        if freeze {
            v.remove(0);
        }
        v
    }
}

/// dst (rows_total, w) = zero except row rows[k] = src row k.
fn scatter_rows<T: Real>(src: &[T], rows: &[usize], w: usize, rows_total: usize, dst: &mut Vec<T>) {
    resize(dst, rows_total * w);
    dst.fill(T::ZERO);
    for (k, &r) in rows.iter().enumerate() {
        dst[r * w..(r + 1) * w].copy_from_slice(&src[k * w..(k + 1) * w]);
    }
}

fn resize<T: Real>(v: &mut Vec<T>, n: usize) {
    if v.len() != n {
        v.resize(n, T::ZERO);
    }
}

impl<T: Real> ParamSet<T> for Tagger<T> {
    fn params(&self) -> Vec<&Param<T>> {
        let mut v = vec![&self.word_emb.weight];
        if let (Some(ce), Some(enc)) = (&self.char_emb, &self.char_enc) {
            v.push(&ce.weight);
            v.extend(enc.params());
        }
        if let Some(ke) = &self.case_emb {
            v.push(&ke.weight);
        }
        v.extend(self.encoder.params());
        v.extend(self.out.params());
        if let Some(c) = &self.crf {
            v.extend(c.params());
        }
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut v = vec![&mut self.word_emb.weight];
        if let (Some(ce), Some(enc)) = (&mut self.char_emb, &mut self.char_enc) {
            v.push(&mut ce.weight);
            v.extend(enc.params_mut());
        }
        if let Some(ke) = &mut self.case_emb {
            v.push(&mut ke.weight);
        }
        v.extend(self.encoder.params_mut());
        v.extend(self.out.params_mut());
        if let Some(c) = &mut self.crf {
            v.extend(c.params_mut());
        }
        v
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation, saving and loading.

/// Scores of a tagged data set.
#[derive(Clone, Debug, Serialize)]
pub struct TagScores {
    /// Token accuracy in percent, on tags in the file's own scheme.
    pub accuracy: f64,
    /// conlleval's report, for span tags.
    pub ner: Option<NerReport>,
    pub sentences: usize,
    pub sentences_per_second: f64,
}

/// Predicted tags (strings, in `out_scheme` for span tags) of every sentence.
pub fn predict_all(
    model: &mut Tagger<f32>,
    vocab: &TagVocab,
    data: &[Encoded],
    out_scheme: Option<Scheme>,
    batch: usize,
) -> Vec<Vec<String>> {
    // Sentences sorted by length make batches with little padding.
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.sort_by_key(|&i| data[i].words.len());
    let mut out: Vec<Vec<String>> = data
        .iter()
        .map(|s| vec![String::new(); s.words.len()])
        .collect();
    let mut b = Batch::default();
    let mut pred = Vec::new();
    for chunk in order.chunks(batch.max(1)) {
        b.fill(data, chunk);
        model.predict(&b, &mut pred);
        for (&(i, t), &p) in b.origin.iter().zip(&pred) {
            out[i][t] = vocab.tags[p as usize].clone();
        }
    }
    if let (Some(s), Some(_)) = (out_scheme, vocab.scheme()) {
        for tags in &mut out {
            *tags = convert(tags, s);
        }
    }
    out
}

/// Accuracy (and conlleval figures for span tags) of the model on gold sentences; predictions
/// are converted to the gold file's scheme first, so the figures are conlleval's on the
/// predictions `firth tag predict` writes.
pub fn evaluate(
    model: &mut Tagger<f32>,
    vocab: &TagVocab,
    gold: &[Sentence],
    data: &[Encoded],
    batch: usize,
) -> TagScores {
    let start = Instant::now();
    let file_scheme = detect_scheme(gold).or(vocab.scheme());
    let pred = predict_all(model, vocab, data, file_scheme, batch);
    let secs = start.elapsed().as_secs_f64();
    let mut ev = ConllEval::new();
    for (g, p) in gold.iter().zip(&pred) {
        ev.add_sentence(&g.tags, p);
    }
    let report = ev.report();
    TagScores {
        accuracy: report.accuracy,
        ner: vocab.scheme().map(|_| report),
        sentences: gold.len(),
        sentences_per_second: gold.len() as f64 / secs.max(1e-9),
    }
}

impl Tagger<f32> {
    pub fn to_tensors(&self, vocab: &TagVocab) -> Result<Tensors> {
        let mut t = Tensors::default();
        t.insert_params("model.", &self.params());
        t.metadata
            .insert("config".into(), serde_json::to_string(&self.config)?);
        t.metadata
            .insert("vocab".into(), serde_json::to_string(vocab)?);
        Ok(t)
    }

    /// Loads `DIR/model.safetensors` (or a checkpoint file) with its vocabularies.
    pub fn load(path: &Path) -> Result<(Tagger<f32>, TagVocab)> {
        let file = if path.is_dir() {
            path.join(MODEL)
        } else {
            path.to_path_buf()
        };
        let t = Tensors::load(&file)?;
        let kind = t.meta("firth", &file)?;
        if kind != "tagger-model-v1" && kind != "tagger-checkpoint-v1" {
            bail!("{} holds a {kind}, not a firth tagger", file.display());
        }
        let config: TaggerConfig = serde_json::from_str(t.meta("config", &file)?)
            .with_context(|| format!("{}: bad tagger config", file.display()))?;
        let mut vocab: TagVocab = serde_json::from_str(t.meta("vocab", &file)?)
            .with_context(|| format!("{}: bad tagger vocabulary", file.display()))?;
        vocab.reindex();
        if vocab.tags.len() != config.tags || vocab.words.len() != config.words {
            bail!(
                "{}: the stored label set or vocabulary does not match the model's size",
                file.display()
            );
        }
        let mut model = Tagger::new(config, &mut Rng::new(0))?;
        t.load_params("model.", &mut model.params_mut(), &file)?;
        Ok((model, vocab))
    }
}

/// Copies pretrained vectors into the rows of the words they have (looked up as stored, then
/// normalised); returns how many rows were set.
pub fn init_embeddings(
    model: &mut Tagger<f32>,
    vocab: &TagVocab,
    lookup: impl Fn(&str) -> Option<Vec<f32>>,
) -> usize {
    let e = model.config.emb;
    let mut hits = 0;
    for (i, w) in vocab.words.iter().enumerate().skip(1) {
        if let Some(v) = lookup(w) {
            model.word_emb.weight.value[i * e..(i + 1) * e].copy_from_slice(&v[..e]);
            hits += 1;
        }
    }
    hits
}

// ---------------------------------------------------------------------------------------
// Training.

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagTrainConfig {
    pub epochs: usize,
    /// Sentences per batch.
    pub batch: usize,
    pub lr: f64,
    pub optim: OptimKind,
    /// lr_epoch = lr / (1 + lr_decay · epoch) (Lample et al.; 0 = constant).
    pub lr_decay: f64,
    pub weight_decay: f64,
    /// Global-norm clipping threshold (0 = off).
    pub clip: f64,
    pub seed: u64,
}

/// One finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagEpoch {
    pub epoch: usize,
    pub lr: f64,
    /// Mean training loss per token (softmax) or per sentence (CRF).
    pub train_loss: f64,
    pub dev_accuracy: f64,
    pub dev_f1: Option<f64>,
    pub train_sentences_per_second: f64,
    pub predict_sentences_per_second: f64,
    pub seconds: f64,
}

/// Where training stands, restored on resume (at an epoch boundary).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagProgress {
    pub epoch: usize,
    pub global_step: u64,
    pub rng: [u64; 4],
    pub best_dev: Option<f64>,
    pub best_epoch: usize,
    pub train_seconds: f64,
    pub history: Vec<TagEpoch>,
}

/// A training run's data and where it writes.
pub struct TagRun<'a> {
    pub train: &'a [Encoded],
    pub dev: Option<(&'a [Sentence], &'a [Encoded])>,
    pub out_dir: PathBuf,
}

/// User-interface hooks (progress bars, messages).
pub use crate::train::{Observer, StepReport};

pub struct TagTrainer {
    pub model: Tagger<f32>,
    pub vocab: TagVocab,
    pub optimizer: Optimizer<f32>,
    pub config: TagTrainConfig,
    pub progress: TagProgress,
}

impl TagTrainer {
    pub fn new(model: Tagger<f32>, vocab: TagVocab, config: TagTrainConfig) -> TagTrainer {
        TagTrainer {
            model,
            vocab,
            optimizer: Optimizer::new(config.optim, config.weight_decay),
            progress: TagProgress {
                epoch: 0,
                global_step: 0,
                rng: Rng::new(config.seed).state(),
                best_dev: None,
                best_epoch: 0,
                train_seconds: 0.0,
                history: Vec::new(),
            },
            config,
        }
    }

    /// Continues from `DIR/checkpoint.safetensors`; the model settings, label set and vocabulary
    /// must match this run's (only `epochs` may change).
    pub fn resume(
        out_dir: &Path,
        config: TagTrainConfig,
        model_config: &TaggerConfig,
        vocab: &TagVocab,
    ) -> Result<TagTrainer> {
        let path = out_dir.join(CHECKPOINT);
        let t = Tensors::load(&path)?;
        if t.meta("firth", &path)? != "tagger-checkpoint-v1" {
            bail!("{} is not a firth tagger checkpoint", path.display());
        }
        let (model, saved_vocab) = Tagger::load(&path)?;
        if saved_vocab.tags != vocab.tags {
            bail!(
                "{}: the checkpoint's label set differs from the training file's:\n  checkpoint: {}\n  this file:  {}\nresume with the same --train file and --scheme, or start over without --resume",
                path.display(),
                saved_vocab.tags.join(" "),
                vocab.tags.join(" ")
            );
        }
        if saved_vocab.words != vocab.words || saved_vocab.chars != vocab.chars {
            bail!("{}: the checkpoint's vocabulary differs from this run's; resume with the same --train/--dev/--test and --embeddings files", path.display());
        }
        if &model.config != model_config {
            bail!(
                "{}: the checkpoint's model settings differ from this run's:\n  saved: {}\n  asked: {}",
                path.display(),
                serde_json::to_string(&model.config)?,
                serde_json::to_string(model_config)?
            );
        }
        let saved: TagTrainConfig = serde_json::from_str(t.meta("train", &path)?)?;
        crate::train::check_resume_settings(
            &path,
            &saved,
            &TagTrainConfig {
                epochs: config.epochs,
                ..saved.clone()
            },
            &config,
        )?;
        let mut tr = TagTrainer::new(model, saved_vocab, config);
        tr.progress = serde_json::from_str(t.meta("progress", &path)?)?;
        let lens: Vec<usize> = tr.model.trainable_mut().iter().map(|p| p.len()).collect();
        t.load_optimizer(&mut tr.optimizer, &lens, &path)?;
        Ok(tr)
    }

    fn save(&self, dir: &Path, checkpoint: bool) -> Result<()> {
        let mut t = self.model.to_tensors(&self.vocab)?;
        if checkpoint {
            t.metadata
                .insert("firth".into(), "tagger-checkpoint-v1".into());
            t.metadata
                .insert("train".into(), serde_json::to_string(&self.config)?);
            t.metadata
                .insert("progress".into(), serde_json::to_string(&self.progress)?);
            t.insert_optimizer(&self.optimizer);
            t.save(&dir.join(CHECKPOINT))
        } else {
            t.metadata.insert("firth".into(), "tagger-model-v1".into());
            t.save(&dir.join(MODEL))
        }
    }

    fn write_metrics(&self, dir: &Path) -> Result<()> {
        let mut csv = String::from("epoch,lr,train_loss,dev_accuracy,dev_f1,train_sentences_per_second,predict_sentences_per_second,seconds\n");
        for r in &self.progress.history {
            csv.push_str(&format!(
                "{},{},{:.6},{:.4},{},{:.1},{:.1},{:.2}\n",
                r.epoch,
                r.lr,
                r.train_loss,
                r.dev_accuracy,
                r.dev_f1.map_or(String::new(), |f| format!("{f:.4}")),
                r.train_sentences_per_second,
                r.predict_sentences_per_second,
                r.seconds
            ));
        }
        write_atomic(&dir.join("metrics.csv"), csv.as_bytes())
    }

    /// Trains the remaining epochs: each epoch shuffles the sentences, groups them by length
    /// into batches, updates after every batch, then scores the dev set, writes the
    /// checkpoint, metrics.csv and (when dev improved) the model. Stops with an error when the
    /// loss is not finite. `max_seconds` ends the run early after an epoch.
    pub fn run(
        &mut self,
        run: &TagRun,
        max_seconds: Option<f64>,
        obs: &mut dyn Observer,
    ) -> Result<()> {
        std::fs::create_dir_all(&run.out_dir)
            .with_context(|| format!("cannot create {}", run.out_dir.display()))?;
        let data = run.train;
        let crf = self.model.config.crf;
        let mut batch = Batch::default();
        let wall = Instant::now();
        while self.progress.epoch < self.config.epochs {
            let epoch = self.progress.epoch;
            let mut rng = Rng::from_state(self.progress.rng);
            let lr = self.config.lr / (1.0 + self.config.lr_decay * epoch as f64);
            let batches = make_batches(data, self.config.batch, &mut rng);
            obs.epoch_start(epoch + 1, self.config.epochs, batches.len(), 0);
            let start = Instant::now();
            let (mut loss_sum, mut units, mut sents) = (0.0f64, 0usize, 0usize);
            for (k, sel) in batches.iter().enumerate() {
                batch.fill(data, sel);
                let loss = self.model.forward(&batch, true, &mut rng);
                if !loss.is_finite() {
                    bail!(
                        "the training loss became {loss} at epoch {} batch {}; lower --lr or use --clip (the last good checkpoint is in {})",
                        epoch + 1,
                        k + 1,
                        run.out_dir.display()
                    );
                }
                // Mean over sentences for a CRF, over tokens for softmax (PyTorch's defaults).
                let denom = if crf { batch.batch } else { batch.rows.len() };
                self.model.zero_grad();
                self.model.backward(&batch, 1.0 / denom as f64);
                let mut params = self.model.trainable_mut();
                let norm = if self.config.clip > 0.0 {
                    clip_grad_norm(&mut params, self.config.clip)
                } else {
                    firth_nn::optim::grad_norm(&mut params)
                };
                self.optimizer.step(&mut params, lr);
                loss_sum += loss;
                units += denom;
                sents += batch.batch;
                self.progress.global_step += 1;
                obs.step(&StepReport {
                    epoch: epoch + 1,
                    step: k + 1,
                    steps: batches.len(),
                    loss: loss / denom as f64,
                    lr,
                    tokens_per_second: sents as f64 / start.elapsed().as_secs_f64().max(1e-9),
                    grad_norm: norm,
                });
            }
            let train_secs = start.elapsed().as_secs_f64();
            let (dev_accuracy, dev_f1, pred_sps) = match run.dev {
                Some((gold, enc)) => {
                    let s = evaluate(&mut self.model, &self.vocab, gold, enc, 256);
                    (
                        s.accuracy,
                        s.ner.as_ref().map(|r| r.f1),
                        s.sentences_per_second,
                    )
                }
                None => (f64::NAN, None, 0.0),
            };
            let rec = TagEpoch {
                epoch: epoch + 1,
                lr,
                train_loss: loss_sum / units.max(1) as f64,
                dev_accuracy,
                dev_f1,
                train_sentences_per_second: sents as f64 / train_secs.max(1e-9),
                predict_sentences_per_second: pred_sps,
                seconds: train_secs,
            };
            obs.epoch_end(&crate::train::EpochRecord {
                epoch: epoch + 1,
                lr,
                train_loss: rec.train_loss,
                train_perplexity: rec.train_loss.exp(),
                valid_loss: f64::NAN,
                valid_perplexity: f64::NAN,
                tokens_per_second: rec.train_sentences_per_second,
                seconds: train_secs,
                clipped_fraction: 0.0,
            });
            obs.note(&format!(
                "epoch {:>3}  train loss {:.4}  dev accuracy {:.2}%{}  {:.0} sent/s train, {:.0} sent/s predict",
                epoch + 1,
                rec.train_loss,
                dev_accuracy,
                dev_f1.map_or(String::new(), |f| format!("  dev F1 {f:.2}")),
                rec.train_sentences_per_second,
                pred_sps
            ));
            let score = dev_f1.unwrap_or(dev_accuracy);
            self.progress.train_seconds += train_secs;
            self.progress.history.push(rec);
            self.progress.epoch += 1;
            self.progress.rng = rng.state();
            let improved = run.dev.is_none() || self.progress.best_dev.map_or(true, |b| score > b);
            if improved {
                self.progress.best_dev = Some(score);
                self.progress.best_epoch = epoch + 1;
                self.save(&run.out_dir, false)?;
            }
            self.save(&run.out_dir, true)?;
            self.write_metrics(&run.out_dir)?;
            if max_seconds.is_some_and(|m| wall.elapsed().as_secs_f64() > m) {
                obs.note("time limit reached; stopping after this epoch (resume with --resume)");
                break;
            }
        }
        Ok(())
    }
}

/// Shuffles sentence indices, sorts them by length within pools of 50 batches (so a batch
/// holds sentences of similar length and little padding), cuts batches, shuffles their order.
pub fn make_batches(data: &[Encoded], batch: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let batch = batch.max(1);
    let mut idx: Vec<usize> = (0..data.len()).collect();
    shuffle(&mut idx, rng);
    let mut out = Vec::new();
    for pool in idx.chunks_mut(batch * 50) {
        pool.sort_by_key(|&i| data[i].words.len());
        out.extend(pool.chunks(batch).map(|c| c.to_vec()));
    }
    shuffle(&mut out, rng);
    out
}

fn shuffle<X>(v: &mut [X], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}
