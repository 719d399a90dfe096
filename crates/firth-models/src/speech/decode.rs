//! Turning per-frame unit scores of a CTC model into transcripts: greedy decoding and prefix
//! beam search with optional shallow fusion of a word language model.
//!
//! **Units.** A model emits V units per frame, one of them the blank. [`Units`] says what the
//! others mean: either each is a *word* (the digit recognisers: "0".."9" or "zero".."nine"),
//! or each is a *character* and one of them the *space* that separates words.
//!
//! **Greedy**: the best unit of every frame, repeats collapsed, blanks dropped. Not the most
//! probable transcript (that sums over alignments), but the usual fast approximation.
//!
//! **Prefix beam search** (Hannun et al., 2014, "First-pass large vocabulary continuous speech
//! recognition using bi-directional recurrent DNNs"). A prefix ℓ (a collapsed label sequence)
//! carries two log-probabilities after frame t: p_b(ℓ), of the alignments of frames 0..=t that
//! collapse to ℓ and end in a blank, and p_nb(ℓ), of those ending in ℓ's last unit. With y_t(k)
//! the log-probability of unit k at frame t and ⊕ the log-sum-exp:
//!
//! ```text
//! blank:            p_b(ℓ)     ⊕= (p_b(ℓ) ⊕ p_nb(ℓ)) + y_t(∅)
//! repeat last c:    p_nb(ℓ)    ⊕= p_nb(ℓ) + y_t(c)                 (collapses: same prefix)
//! extend by c:      p_nb(ℓ+c)  ⊕= p_b(ℓ) + y_t(c)                   if c is ℓ's last unit
//!                   p_nb(ℓ+c)  ⊕= (p_b(ℓ) ⊕ p_nb(ℓ)) + y_t(c)       otherwise
//! ```
//!
//! After each frame only the `width` prefixes with the largest p_b ⊕ p_nb are kept. With a
//! width at least the number of distinct prefixes this is exact: the result is the most
//! probable collapsed sequence (the tests check it against enumerating every path).
//!
//! **Shallow fusion.** With a [`WordScorer`] the search ranks
//! log p_ctc(ℓ) + α Σ_i ln p_lm(w_i | w_<i) + β · |words|, α = `lm_weight`, β = `word_bonus`
//! (which offsets the LM's pull towards fewer words). The factor of a word is multiplied into
//! p_nb when the extension that completes it is made — with word units every unit completes a
//! word; with characters the space does (a space after a space or at the start completes
//! nothing) — and the prefix's descendants inherit it, as in Hannun et al. The last word of a
//! character prefix is scored at the end, followed, with `end_of_sentence`, by
//! α ln p_lm(</s> | words). The LM's scores are natural logarithms (see [`WordScorer`]).

use firth_nn::ctc::lse;
use std::collections::HashMap;

/// What the non-blank units of a CTC model's output stand for.
#[derive(Clone, Debug, PartialEq)]
pub struct Units {
    names: Vec<String>,
    blank: u32,
    space: Option<u32>,
}

impl Units {
    /// Every non-blank unit is a word: `names[k]` is unit k's word (`names[blank]` is unused).
    pub fn words(names: Vec<String>, blank: u32) -> Units {
        assert!(
            (blank as usize) < names.len(),
            "blank {blank} is not a unit"
        );
        Units {
            names,
            blank,
            space: None,
        }
    }

    /// Units are characters (`names[k]` unit k's text), and `space` separates words.
    pub fn chars(names: Vec<String>, blank: u32, space: u32) -> Units {
        assert!(
            (blank as usize) < names.len() && (space as usize) < names.len() && space != blank,
            "blank {blank} and space {space} must be two different units"
        );
        Units {
            names,
            blank,
            space: Some(space),
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn blank(&self) -> u32 {
        self.blank
    }

    /// The words a label sequence spells.
    pub fn words_of(&self, labels: &[u32]) -> Vec<String> {
        match self.space {
            None => labels
                .iter()
                .map(|&k| self.names[k as usize].clone())
                .collect(),
            Some(space) => labels
                .split(|&k| k == space)
                .filter(|w| !w.is_empty())
                .map(|w| w.iter().map(|&k| self.names[k as usize].as_str()).collect())
                .collect(),
        }
    }

    /// The transcript a label sequence spells: its words joined by single spaces.
    pub fn transcript(&self, labels: &[u32]) -> String {
        self.words_of(labels).join(" ")
    }
}

/// A word language model for shallow fusion. Scores are **natural** logarithms (an n-gram
/// model's log10 scores are converted by [`NgramScorer`]).
pub trait WordScorer {
    /// The history a word is scored in.
    type State: Clone;
    /// The history at the start of an utterance.
    fn start(&self) -> Self::State;
    /// ln p(word | state), and the state after `word`.
    fn score(&self, state: &Self::State, word: &str) -> (f64, Self::State);
    /// ln p(end of utterance | state).
    fn finish(&self, state: &Self::State) -> f64;
}

/// Shallow fusion through a `firth_ngram` model: each utterance is a sentence (`<s>` context
/// at the start, `</s>` at the end). Words outside the model's vocabulary get `<unk>`'s
/// probability.
#[derive(Clone, Copy)]
pub struct NgramScorer<'a> {
    pub model: &'a firth_ngram::Model,
}

impl WordScorer for NgramScorer<'_> {
    type State = firth_ngram::State;

    fn start(&self) -> Self::State {
        self.model.begin_state()
    }

    fn score(&self, state: &Self::State, word: &str) -> (f64, Self::State) {
        let mut out = self.model.null_state();
        let (log10, _) = self.model.score(state, self.model.word_id(word), &mut out);
        (log10 as f64 * std::f64::consts::LN_10, out)
    }

    fn finish(&self, state: &Self::State) -> f64 {
        let mut out = self.model.null_state();
        let (log10, _) = self.model.score(state, firth_ngram::EOS, &mut out);
        log10 as f64 * std::f64::consts::LN_10
    }
}

/// A scorer that scores nothing: the type to name when decoding without a language model.
pub struct NoLm;

impl WordScorer for NoLm {
    type State = ();
    fn start(&self) {}
    fn score(&self, _: &(), _: &str) -> (f64, ()) {
        (0.0, ())
    }
    fn finish(&self, _: &()) -> f64 {
        0.0
    }
}

/// Settings of [`prefix_beam_search`].
#[derive(Clone, Debug, PartialEq)]
pub struct BeamConfig {
    /// Prefixes kept after each frame.
    pub width: usize,
    /// α: the weight of the LM's log-probabilities (used only with a scorer).
    pub lm_weight: f64,
    /// β: added per word (used only with a scorer).
    pub word_bonus: f64,
    /// Score `</s>` after the last word (used only with a scorer).
    pub end_of_sentence: bool,
    /// Units whose log-probability at a frame is below this are not tried as extensions there;
    /// `f64::NEG_INFINITY` tries all (exact), ln(1e-4) or so is a safe speed-up.
    pub prune_below: f64,
}

impl Default for BeamConfig {
    fn default() -> Self {
        BeamConfig {
            width: 16,
            lm_weight: 0.5,
            word_bonus: 0.0,
            end_of_sentence: true,
            prune_below: f64::NEG_INFINITY,
        }
    }
}

/// One result of [`prefix_beam_search`].
#[derive(Clone, Debug, PartialEq)]
pub struct Hypothesis {
    /// The collapsed label sequence (no blanks).
    pub labels: Vec<u32>,
    pub transcript: String,
    /// The rank score: `ctc` + `lm`.
    pub score: f64,
    /// ln p_ctc(labels | audio), summed over alignments (approximately, when the beam pruned
    /// some of them).
    pub ctc: f64,
    /// α Σ ln p_lm + β · words (+ α ln p(</s>)); 0 without a scorer.
    pub lm: f64,
}

/// Best unit per frame of `log_probs` (T, V) — or logits: only the argmax matters — with
/// repeats collapsed and blanks dropped.
pub fn greedy(log_probs: &[f32], units: usize, blank: u32) -> Vec<u32> {
    assert!(units > 0, "no units");
    assert_eq!(log_probs.len() % units, 0, "scores are not (T, V)");
    let mut out = Vec::new();
    let mut prev = None;
    for row in log_probs.chunks_exact(units) {
        let best = (0..units)
            .reduce(|a, b| if row[b] > row[a] { b } else { a })
            .expect("units > 0") as u32;
        if Some(best) != prev && best != blank {
            out.push(best);
        }
        prev = Some(best);
    }
    out
}

/// Rows of item `b` from time-major scores (T, B, V): its first `len` frames as (len, V), the
/// layout the decoders take.
pub fn item_rows(scores: &[f32], batch: usize, units: usize, b: usize, len: usize) -> Vec<f32> {
    assert_eq!(
        scores.len() % (batch * units),
        0,
        "scores are not (T, B, V)"
    );
    assert!(
        b < batch && len <= scores.len() / (batch * units),
        "item or length out of range"
    );
    (0..len)
        .flat_map(|t| {
            scores[(t * batch + b) * units..(t * batch + b + 1) * units]
                .iter()
                .copied()
        })
        .collect()
}

/// log softmax over each row of `x` (N, V), in place: turns logits into what
/// [`prefix_beam_search`] takes.
pub fn log_softmax_rows(x: &mut [f32], units: usize) {
    for row in x.chunks_exact_mut(units) {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        let s: f64 = row.iter().map(|&v| ((v - m) as f64).exp()).sum();
        let log_z = m as f64 + s.ln();
        for v in row.iter_mut() {
            *v = (*v as f64 - log_z) as f32;
        }
    }
}

/// What a prefix carries besides its probabilities; a function of the prefix alone.
#[derive(Clone)]
struct Meta<S> {
    /// LM history after the prefix's completed words.
    state: S,
    /// Where the prefix's unfinished word starts (characters only).
    word_start: usize,
    /// α Σ ln p_lm + β · words over the completed words.
    fused: f64,
}

struct Entry<S> {
    pb: f64,
    pnb: f64,
    meta: Meta<S>,
}

/// Prefix beam search over `log_probs` (T, V), log-softmax outputs of one utterance, with
/// `scorer` fused in when given. Returns the final beam, best first (at most `width`).
pub fn prefix_beam_search<W: WordScorer>(
    log_probs: &[f32],
    units: &Units,
    cfg: &BeamConfig,
    scorer: Option<&W>,
) -> Vec<Hypothesis> {
    let v = units.len();
    assert!(v > 0, "no units");
    assert_eq!(log_probs.len() % v, 0, "log-probabilities are not (T, V)");
    assert!(cfg.width > 0, "beam width must be at least 1");
    let blank = units.blank as usize;
    let (alpha, beta) = (cfg.lm_weight, cfg.word_bonus);

    // α ln p(word | state) + β, and the next state.
    let word_score = |state: &W::State, word: &str| -> (f64, Option<W::State>) {
        match scorer {
            Some(s) => {
                let (lp, next) = s.score(state, word);
                (alpha * lp + beta, Some(next))
            }
            None => (0.0, None),
        }
    };
    // The meta of `labels` = parent's labels + c.
    let extend = |parent: &Meta<W::State>, labels: &[u32]| -> Meta<W::State> {
        let c = *labels.last().expect("an extension has a unit");
        let word: Option<String> = match units.space {
            None => Some(units.names[c as usize].clone()),
            Some(space) if c == space => {
                let w = &labels[parent.word_start..labels.len() - 1];
                (!w.is_empty()).then(|| units.transcript(w))
            }
            Some(_) => None,
        };
        let word_start = match units.space {
            Some(space) if c == space => labels.len(),
            _ => parent.word_start,
        };
        match word {
            Some(w) => {
                let (delta, next) = word_score(&parent.state, &w);
                Meta {
                    state: next.unwrap_or_else(|| parent.state.clone()),
                    word_start,
                    fused: parent.fused + delta,
                }
            }
            None => Meta {
                state: parent.state.clone(),
                word_start,
                fused: parent.fused,
            },
        }
    };

    let Some(start_state) = scorer.map(|s| s.start()) else {
        // Without a language model nothing is fused: run with the scorer that scores nothing
        // and weights that add nothing, so `score` is the CTC log-probability alone.
        let plain = BeamConfig {
            lm_weight: 0.0,
            word_bonus: 0.0,
            end_of_sentence: false,
            ..cfg.clone()
        };
        return prefix_beam_search(log_probs, units, &plain, Some(&NoLm));
    };
    let mut beam: Vec<(Vec<u32>, Entry<W::State>)> = vec![(
        Vec::new(),
        Entry {
            pb: 0.0,
            pnb: f64::NEG_INFINITY,
            meta: Meta {
                state: start_state,
                word_start: 0,
                fused: 0.0,
            },
        },
    )];
    for row in log_probs.chunks_exact(v) {
        let mut next: HashMap<Vec<u32>, Entry<W::State>> = HashMap::with_capacity(beam.len() * 4);
        for (labels, h) in &beam {
            let total = lse(h.pb, h.pnb);
            let same = next.entry(labels.clone()).or_insert_with(|| Entry {
                pb: f64::NEG_INFINITY,
                pnb: f64::NEG_INFINITY,
                meta: h.meta.clone(),
            });
            same.pb = lse(same.pb, total + row[blank] as f64);
            let last = labels.last().copied();
            if let Some(c) = last {
                same.pnb = lse(same.pnb, h.pnb + row[c as usize] as f64);
            }
            for (c, &y) in row.iter().enumerate() {
                if c == blank || (y as f64) < cfg.prune_below {
                    continue;
                }
                let from = if last == Some(c as u32) { h.pb } else { total } + y as f64;
                if from == f64::NEG_INFINITY {
                    continue;
                }
                let mut child = labels.clone();
                child.push(c as u32);
                let e = next.entry(child).or_insert_with_key(|k| Entry {
                    pb: f64::NEG_INFINITY,
                    pnb: f64::NEG_INFINITY,
                    meta: extend(&h.meta, k),
                });
                // The child's fused score is a function of the child alone, so the factor this
                // extension brings is the difference from the parent's.
                e.pnb = lse(e.pnb, from + e.meta.fused - h.meta.fused);
            }
        }
        let mut all: Vec<(Vec<u32>, Entry<W::State>)> = next.into_iter().collect();
        let key = |e: &Entry<W::State>| lse(e.pb, e.pnb);
        all.sort_by(|a, b| key(&b.1).total_cmp(&key(&a.1)).then_with(|| a.0.cmp(&b.0)));
        all.truncate(cfg.width);
        beam = all;
    }

    let mut out: Vec<Hypothesis> = beam
        .into_iter()
        .map(|(labels, e)| {
            let mut fused = e.meta.fused;
            let mut state = e.meta.state.clone();
            if units.space.is_some() {
                let w = &labels[e.meta.word_start.min(labels.len())..];
                if !w.is_empty() {
                    let (delta, next) = word_score(&state, &units.transcript(w));
                    fused += delta;
                    state = next.unwrap_or(state);
                }
            }
            if cfg.end_of_sentence {
                if let Some(s) = scorer {
                    fused += alpha * s.finish(&state);
                }
            }
            let total = lse(e.pb, e.pnb);
            let ctc = total - e.meta.fused;
            Hypothesis {
                transcript: units.transcript(&labels),
                labels,
                score: ctc + fused,
                ctc,
                lm: fused,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.labels.cmp(&b.labels))
    });
    out
}
