//! Sequence tagger (POS, NER): word embeddings + character-level word features + a stacked
//! bidirectional [`SeqEncoder`] + a softmax or linear-chain CRF output (Huang et al. 2015;
//! Lample et al. 2016; Ma & Hovy 2016).
//!
//! Per batch of B sentences padded to L tokens, with N real tokens in all:
//!
//! ```text
//! word ids (L, B) ──emb──▶ (L, B, E) ─┐   (and ──static emb──▶ (L, B, Es), frozen)
//! chars of each token (Lc, N) ──char emb──▶ (Lc, N, Ec) ──char BiLSTM──▶ [h→_last ; h←_first]
//!                                      (N, 2C) scattered to the token rows ──▶ (L, B, 2C)
//! capitalisation class ──case emb──▶ (N, Ek); character-LM features (N, Kl), frozen
//! concat (L, B, E + Es + 2C + Ek + Kl) ──dropout──▶ encoder ──▶ (L, B, D) ──gather real rows──▶ (N, D)
//!   ──dropout──▶ linear ──▶ scores (N, K) ──▶ softmax cross-entropy   or   CRF over (L, B, K)
//! ```
//!
//! Backward runs the same chain in reverse; every piece is a firth-nn layer whose backward
//! accumulates its parameter gradients, so the model's backward only routes gradients: the
//! gather of real rows becomes a scatter (padded rows get zero), the concatenation splits,
//! and the character features' gradient lands on the two encoder rows it was read from
//! (the forward direction's last real step, the backward direction's step 0).
//!
//! The static channel (`--multichannel`, Kim 2014; Es = E, or 0 without it) is a frozen copy
//! of the pretrained vectors read beside the trained table. Fine-tuning moves the rows of
//! training words, while pretrained words met only in development or test text keep their
//! pretrained rows; the static columns give the encoder one input where both still share the
//! space the vectors were trained in. Its rows get no gradient.
//!
//! Words are looked up lower-cased with digits mapped to 0 when `lowercase` is set (the
//! character features keep the case); unknown words and characters map to id 0.
//!
//! The character-LM features ([`crate::char_features`], `--char-lm`) are computed once per
//! sentence when it is encoded ([`encode`]) and are inputs, not parameters: no gradient flows
//! into the LMs.

use crate::char_features::CharFeatures;
use crate::encoder::{EncoderConfig, SeqEncoder};
use anyhow::{bail, Context, Result};
use firth_nn::checkpoint::Tensors;
use firth_nn::crf::Crf;
use firth_nn::dropout::{Dropout, DropoutKind};
use firth_nn::embedding::Embedding;
use firth_nn::linear::Linear;
use firth_nn::softmax::{softmax_cross_entropy, softmax_cross_entropy_backward};
use firth_nn::{CellKind, Gemm, Param, ParamSet, Rng};
use serde::{Deserialize, Serialize};
use std::path::Path;

mod batch;
mod eval;
pub mod pipeline;
mod task;
mod vocab;

pub use crate::trainer::{CHECKPOINT, MODEL};
pub use batch::{make_batches, Batch};
pub use eval::{evaluate, hidden_states, predict_all, TagScores};
pub use pipeline::{train_tagger, TagData, TagPreset, TagSummary, TaggerOptions};
pub use task::{TagTask, TagTrainConfig};
pub use vocab::{
    case_class, detect_scheme, encode, normalize, Encoded, TagVocab, UnseenTags, CASE_CLASSES,
};

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
    /// Width of the frozen contextual character-LM features ([`crate::char_features`])
    /// concatenated last to each word's input; 0 = off. A model with them keeps copies of
    /// its two LMs next to its weights ([`crate::char_features::DIRS`]).
    #[serde(default)]
    pub char_lm_dim: usize,
    /// A frozen copy of the pretrained word vectors read beside the trained ones
    /// (`--multichannel`), so the word part of the input is 2E wide. Configs saved before the
    /// field existed read as false.
    #[serde(default)]
    pub static_channel: bool,
    /// Decoding: within each `-DOCSTART-` document, a predicted span whose words are predicted
    /// as another type in more of their mentions takes that type
    /// ([`firth_text::conll::document_vote`]; `--document-vote`). Span tags only.
    #[serde(default)]
    pub document_vote: bool,
}

impl TaggerConfig {
    /// Width of the static channel's columns in the encoder's input (0 without it).
    pub fn static_dim(&self) -> usize {
        if self.static_channel {
            self.emb
        } else {
            0
        }
    }

    /// Width of the character BiLSTM's columns in the encoder's input (0 without it).
    pub fn char_feat_dim(&self) -> usize {
        if self.char_dim > 0 {
            2 * self.char_hidden
        } else {
            0
        }
    }

    /// Width of the encoder's input: trained word embedding, static channel, character
    /// BiLSTM, capitalisation embedding, character-LM features, in that order.
    pub fn input_dim(&self) -> usize {
        self.emb + self.static_dim() + self.char_feat_dim() + self.case_dim + self.char_lm_dim
    }
}

/// The tagger's layers and the activations of its last forward pass.
#[derive(Clone, Debug)]
pub struct Tagger<T> {
    pub config: TaggerConfig,
    pub word_emb: Embedding<T>,
    /// The static channel (`static_channel`): saved with the model, never trained.
    pub static_emb: Option<Embedding<T>>,
    pub char_emb: Option<Embedding<T>>,
    pub char_enc: Option<SeqEncoder<T>>,
    pub case_emb: Option<Embedding<T>>,
    pub encoder: SeqEncoder<T>,
    pub out: Linear<T>,
    pub crf: Option<Crf<T>>,
    /// The LMs behind the character-LM features (`char_lm_dim` > 0), which [`encode`] runs.
    pub char_lm: Option<CharFeatures>,
    in_drop: Dropout<T>,
    out_drop: Dropout<T>,
    char_drop: Dropout<T>,
    x: Vec<T>,      // (L, B, E + Es + 2C + Ek + Kl) encoder input
    cx: Vec<T>,     // (Lc, N, Ec)
    hr: Vec<T>,     // (N, D) encoder outputs at real rows, after dropout
    logits: Vec<T>, // (N, K) scores; softmax probabilities after a softmax loss
    emis: Vec<T>,   // (L, B, K) CRF only
    gold: Vec<u32>, // (N)
    nll: Vec<f64>,
    d_h: Vec<T>,    // (L, B, D)
    d_hr: Vec<T>,   // (N, D)
    d_x: Vec<T>,    // (L, B, E + Es + 2C + Ek + Kl)
    d_case: Vec<T>, // (N, Ek)
    d_cout: Vec<T>,
    d_cx: Vec<T>,
    d_we: Vec<T>, // (N, E)
    word_ids: Vec<u32>,
}

impl<T: Gemm> Tagger<T> {
    pub fn new(config: TaggerConfig, rng: &mut Rng) -> Result<Self> {
        let c = &config;
        if c.words == 0 || c.tags == 0 || c.hidden == 0 || c.layers == 0 || c.emb == 0 {
            bail!("a tagger needs words, tags, --emb, --hidden and --layers all above 0");
        }
        if c.static_channel && c.freeze {
            bail!("--multichannel adds a frozen copy beside trained embeddings; with --freeze both would be frozen: leave one of the two out");
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
            input: c.input_dim(),
            hidden: c.hidden,
            layers: c.layers,
            bidirectional: true,
            dropout: c.dropout,
        };
        let encoder = SeqEncoder::new(&enc_cfg, r, rng);
        let out = Linear::new("out", encoder.out_dim(), c.tags, true, r, rng);
        let crf = c.crf.then(|| Crf::new("crf", c.tags, 0.0, rng));
        // Drawn last, so a model without it draws the same weights as before it existed;
        // training overwrites it with the table the pretrained vectors were copied into.
        let static_emb = c
            .static_channel
            .then(|| Embedding::new("static_emb", c.words, c.emb, r, rng));
        Ok(Tagger {
            word_emb,
            static_emb,
            char_emb,
            char_enc,
            case_emb,
            encoder,
            out,
            crf,
            char_lm: None,
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

    /// Computes the tag scores of every real token into `self.logits` (N, K).
    pub fn scores(&mut self, b: &Batch, train: bool, rng: &mut Rng) {
        let (l_n, b_n) = (b.steps, b.batch);
        let e = self.config.emb;
        // Columns before the character features: the trained and the static word embedding.
        let w = e + self.config.static_dim();
        let cf = self.config.char_feat_dim();
        let kc = self.config.case_dim;
        let kl = self.config.char_lm_dim;
        let din = self.config.input_dim();
        let n = b.rows.len();
        assert_eq!(
            b.lm.len(),
            n * kl,
            "the batch's character-LM features are (N, char_lm_dim)"
        );
        resize(&mut self.x, l_n * b_n * din);
        self.x.fill(T::ZERO);
        self.word_ids.clear();
        self.word_ids.extend(b.rows.iter().map(|&r| b.words[r]));
        let wp = self.config.word_dropout;
        if train && wp > 0.0 {
            firth_nn::dropout::drop_words(&mut self.word_ids, wp, rng);
        }
        let ev = &self.word_emb.weight.value;
        let sv = self.static_emb.as_ref().map(|s| &s.weight.value);
        for (&r, &id) in b.rows.iter().zip(&self.word_ids) {
            let (id, row) = (id as usize, &mut self.x[r * din..r * din + w]);
            row[..e].copy_from_slice(&ev[id * e..(id + 1) * e]);
            // The static row of the same (possibly dropped) id: a word dropped to `<unk>` is
            // unknown in both channels.
            if let Some(sv) = sv {
                row[e..].copy_from_slice(&sv[id * e..(id + 1) * e]);
            }
        }
        if let (Some(ce), Some(enc)) = (&self.char_emb, &mut self.char_enc) {
            let (lc, ec, ch) = (b.char_steps, self.config.char_dim, self.config.char_hidden);
            resize(&mut self.cx, lc * n * ec);
            ce.forward(&b.char_ids, &mut self.cx);
            self.char_drop.forward(&mut self.cx, n * ec, train, rng);
            let y = enc.forward(&self.cx, lc, n, &b.char_lengths, train, rng);
            for (k, &r) in b.rows.iter().enumerate() {
                let last = b.char_lengths[k] - 1;
                let dst = &mut self.x[r * din + w..r * din + w + cf];
                dst[..ch].copy_from_slice(&y[(last * n + k) * 2 * ch..][..ch]);
                dst[ch..2 * ch].copy_from_slice(&y[k * 2 * ch + ch..][..ch]);
            }
        }
        if let Some(ke) = &self.case_emb {
            let kv = &ke.weight.value;
            for (&r, &c) in b.rows.iter().zip(&b.cases) {
                let c = c as usize;
                self.x[r * din + w + cf..r * din + w + cf + kc]
                    .copy_from_slice(&kv[c * kc..(c + 1) * kc]);
            }
        }
        if kl > 0 {
            for (&r, f) in b.rows.iter().zip(b.lm.chunks_exact(kl)) {
                let dst = &mut self.x[(r + 1) * din - kl..(r + 1) * din];
                for (d, &v) in dst.iter_mut().zip(f) {
                    *d = T::from_f32(v);
                }
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

    /// The encoder's outputs at the real tokens of the last [`Self::scores`], (N, D) in the
    /// batch's row order, D = 2 × hidden: what the output layer read (dropout is the identity
    /// outside training), so features taken from here are the ones the tags came from.
    pub fn hidden(&self) -> &[T] {
        &self.hr
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
        let w = e + self.config.static_dim();
        let cf = self.config.char_feat_dim();
        let kc = self.config.case_dim;
        let din = self.config.input_dim();
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
        // The encoder's backward adds into d x.
        self.d_x.fill(T::ZERO);
        self.encoder
            .backward(&self.x, &self.d_h, Some(&mut self.d_x));
        self.in_drop.backward(&mut self.d_x);
        // The case embedding's input columns of the real rows: dW_case[class] += dx row.
        if let Some(ke) = &mut self.case_emb {
            resize(&mut self.d_case, n * kc);
            for (k, &r) in b.rows.iter().enumerate() {
                self.d_case[k * kc..(k + 1) * kc]
                    .copy_from_slice(&self.d_x[r * din + w + cf..r * din + w + cf + kc]);
            }
            ke.backward(&b.cases, &self.d_case);
        }
        if let (Some(ce), Some(enc)) = (&mut self.char_emb, &mut self.char_enc) {
            let (lc, ec, ch) = (b.char_steps, self.config.char_dim, self.config.char_hidden);
            resize(&mut self.d_cout, lc * n * 2 * ch);
            self.d_cout.fill(T::ZERO);
            for (k, &r) in b.rows.iter().enumerate() {
                let last = b.char_lengths[k] - 1;
                let src = &self.d_x[r * din + w..r * din + w + cf];
                self.d_cout[(last * n + k) * 2 * ch..][..ch].copy_from_slice(&src[..ch]);
                self.d_cout[k * 2 * ch + ch..][..ch].copy_from_slice(&src[ch..]);
            }
            resize(&mut self.d_cx, lc * n * ec);
            self.d_cx.fill(T::ZERO);
            enc.backward(&self.cx, &self.d_cout, Some(&mut self.d_cx));
            self.char_drop.backward(&mut self.d_cx);
            ce.backward(&b.char_ids, &self.d_cx);
        }
        // The static columns of d x have nowhere to go: that table is frozen.
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

    /// The parameters the optimizer updates: all but frozen word embeddings and the static
    /// channel (which [`ParamSet`] lists last).
    pub fn trainable_mut(&mut self) -> Vec<&mut Param<T>> {
        let freeze = self.config.freeze;
        let fixed_last = self.static_emb.is_some();
        let mut v = self.params_mut();
        if fixed_last {
            v.pop();
        }
        if freeze {
            v.remove(0);
        }
        v
    }
}

/// dst (rows_total, w) = zero except row rows[k] = src row k.
fn scatter_rows<T: Gemm>(src: &[T], rows: &[usize], w: usize, rows_total: usize, dst: &mut Vec<T>) {
    resize(dst, rows_total * w);
    dst.fill(T::ZERO);
    for (k, &r) in rows.iter().enumerate() {
        dst[r * w..(r + 1) * w].copy_from_slice(&src[k * w..(k + 1) * w]);
    }
}

fn resize<T: Gemm>(v: &mut Vec<T>, n: usize) {
    if v.len() != n {
        v.resize(n, T::ZERO);
    }
}

impl<T: Gemm> ParamSet<T> for Tagger<T> {
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
        v.extend(self.static_emb.iter().map(|s| &s.weight));
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
        v.extend(self.static_emb.iter_mut().map(|s| &mut s.weight));
        v
    }
}

impl Tagger<f32> {
    pub fn to_tensors(&self, vocab: &TagVocab) -> Result<Tensors> {
        crate::trainer::model_tensors(&self.params(), &self.config, vocab)
    }

    /// Loads `DIR/model.safetensors` (or a checkpoint file) with its vocabularies.
    pub fn load(path: &Path) -> Result<(Tagger<f32>, TagVocab)> {
        let file = if path.is_dir() {
            path.join(MODEL)
        } else {
            path.to_path_buf()
        };
        Tagger::from_tensors(&Tensors::load(&file)?, &file)
    }

    /// The model and vocabularies stored in `t` (read from `file`).
    pub fn from_tensors(t: &Tensors, file: &Path) -> Result<(Tagger<f32>, TagVocab)> {
        let kind = t.meta("firth", file)?;
        if kind != "tagger-model-v1" && kind != "tagger-checkpoint-v2" {
            bail!("{} holds a {kind}, not a firth tagger", file.display());
        }
        let config: TaggerConfig = serde_json::from_str(t.meta("config", file)?)
            .with_context(|| format!("{}: bad tagger config", file.display()))?;
        let mut vocab: TagVocab = serde_json::from_str(t.meta("vocab", file)?)
            .with_context(|| format!("{}: bad tagger vocabulary", file.display()))?;
        vocab.reindex();
        if vocab.tags.len() != config.tags || vocab.words.len() != config.words {
            bail!(
                "{}: the stored label set or vocabulary does not match the model's size",
                file.display()
            );
        }
        let mut model = Tagger::new(config, &mut Rng::new(0))?;
        t.load_params("model.", &mut model.params_mut(), file)?;
        model.char_lm = CharFeatures::of_model(file, model.config.char_lm_dim)?;
        Ok((model, vocab))
    }
}

/// Copies pretrained vectors into the rows of the words they have (looked up as stored, then
/// normalised), and the whole table into the static channel if there is one (words without a
/// vector keep their random row in both); returns how many rows were set.
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
    if let Some(s) = &mut model.static_emb {
        s.weight.value.copy_from_slice(&model.word_emb.weight.value);
    }
    hits
}
