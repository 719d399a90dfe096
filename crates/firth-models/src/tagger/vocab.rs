//! The tagger's vocabularies (words, characters, labels) and sentences as ids.

use super::TaggerConfig;
use crate::char_features::CharFeatures;
use anyhow::{bail, Context, Result};
use firth_text::conll::{convert, is_span_tagset, split_tag, Scheme, Sentence};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

const UNK: &str = "<unk>";

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

    pub(super) fn scheme(&self) -> Option<Scheme> {
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

    /// A span model cannot even convert tags that are not O or B-/I-/E-/S-TYPE: such a
    /// sentence comes from another task's file (or the wrong --tag-col).
    fn check_span_tags(&self, s: &Sentence, file: &Path) -> Result<()> {
        if self.scheme.is_none() {
            return Ok(());
        }
        let stray = s
            .tags
            .iter()
            .enumerate()
            .find(|(_, t)| t.as_str() != "O" && !is_span_tagset(&[t.as_str()]));
        if let Some((i, t)) = stray {
            bail!(
                "{}:{}: tag {t:?} is not in the model's label set (span tags O, B-/I-/E-/S-TYPE: {}); check --tag-col, or use a model trained on these labels",
                file.display(),
                s.line + i,
                self.tags.join(" ")
            );
        }
        Ok(())
    }

    /// Gold tags of `sentences` the model cannot predict (absent from training). Held-out
    /// files may have a few (they count as errors; callers warn); a file where no tag is
    /// known is refused, since it is most likely the wrong --tag-col or another task's file.
    pub fn unseen_tags(&self, sentences: &[Sentence], file: &Path) -> Result<UnseenTags> {
        let mut u = UnseenTags::default();
        for s in sentences {
            self.check_span_tags(s, file)?;
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
    /// Frozen character-LM features, (tokens, char_lm_dim) row-major; empty without them.
    pub lm: Vec<f32>,
}

/// Encodes sentences; gold tags outside the label set are an error naming file and line.
/// A model with character-LM features (`cfg.char_lm_dim` > 0) needs its LMs, `char_lm`
/// ([`super::Tagger::char_lm`]), which read every sentence here, once.
pub fn encode(
    sentences: &[Sentence],
    vocab: &TagVocab,
    cfg: &TaggerConfig,
    char_lm: Option<&CharFeatures>,
    file: &Path,
) -> Result<Vec<Encoded>> {
    let lm = CharFeatures::for_model(cfg.char_lm_dim, char_lm, file)?;
    let mut features = match lm {
        Some(lm) => {
            let words: Vec<&[String]> = sentences.iter().map(|s| &s.tokens[..]).collect();
            lm.extract(&words)
        }
        None => vec![Vec::new(); sentences.len()],
    };
    sentences
        .iter()
        .zip(&mut features)
        .map(|(s, lm)| {
            if s.tokens.is_empty() {
                bail!("{}:{}: empty sentence", file.display(), s.line);
            }
            let tags = if s.tags.is_empty() {
                Vec::new()
            } else {
                vocab.check_span_tags(s, file)?;
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
                lm: std::mem::take(lm),
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
