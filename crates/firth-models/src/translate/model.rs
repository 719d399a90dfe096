//! The attentional encoder-decoder (Luong et al. 2015), forward and backward.
//!
//! Per batch of B sentence pairs, sources padded to S tokens, decoder inputs to T:
//!
//! ```text
//! src ids (S, B) ─emb─▶ (S, B, E) ─dropout─▶ bi-RNN encoder ─▶ memory M (S, B, Dv = 2He)
//!                                              └─ final (h, c) of layer k, both directions
//! bridge, per decoder layer l (reading encoder layer k(l)):
//!   h0_l = tanh(W_h [h→_k ; h←_k] + b_h)      c0_l = W_c0 [c→_k ; c←_k] + b_c   (LSTM)
//! step t = 0..T-1 (teacher forcing: y_{t-1} is the reference word, y_{-1} = <s>):
//!   x_t   = [emb(y_{t-1}) ; h~_{t-1}]          (input feeding; h~_{-1} = 0)   or emb(y_{t-1})
//!   h_t   = stacked RNN step (dropout between layers)
//!   α_t   = softmax over s < len_b of score(h_t, m_s)     (dot, general or additive)
//!   c_t   = Σ_s α_{t,s} m_s
//!   h~_t  = dropout(tanh(W_a [c_t ; h_t]))     (no attention: h~_t = dropout(h_t))
//! after the loop, over the N real target positions at once:
//!   z = h~·W_outᵀ + b_out (N, V),  L = Σ_n (1-ε)·(-log p(y_n)) + ε·mean_v(-log p(v))
//! ```
//!
//! General attention, e = h_tᵀ W m_s, is run as dot attention over keys K' = M·W computed
//! once per batch (S·B, Hd); backward gathers dK' over all steps and then does
//! dW += Mᵀ·dK', dM += dK'·Wᵀ once. Dot attention uses K' = M (it needs Hd = Dv).
//!
//! Backward. The output layer gives d h~ at the real positions (zero elsewhere). With input
//! feeding, h~_t also feeds step t+1, so the sweep runs one step at a time from t = T-1 down,
//! each step's decoder layers backpropagating with [`Recurrent::backward_step`]:
//!
//! ```text
//! dh~_t  = d(output)_t + d x_{t+1}[E..]                       (the input-feeding part)
//! da     = dh~_t ⊙ mask_t,   dpre = da ⊙ (1 - a²)             (a = tanh(W_a [c ; h]))
//! d[c;h] = dpre·W_a,         dW_a += dpreᵀ·[c;h] (one GEMM over all steps at the end)
//! attention backward: dh_t += from the scores, dM += α-weighted dc, dK' += from the scores
//! top layer backward_step(dh_t) → dx; through the dropout mask to the layer below; …
//! layer 0 → d x_t = [d emb_t ; d h~_{t-1}]
//! ```
//!
//! then dL/dh0, dL/dc0 of each decoder layer go back through the bridge (tanh' for h) to the
//! encoder's final states ([`SeqEncoder::add_d_final`]), dM and those run the encoder
//! backward, and the embedding gradients land on the rows that were read.

use super::loss::smoothed_cross_entropy;
use crate::encoder::{EncoderConfig, SeqEncoder};
use anyhow::{bail, Result};
use firth_nn::attention::{
    attention_backward, attention_forward, AttentionCache, AttentionKind, AttentionParams,
};
use firth_nn::dropout::{Dropout, DropoutKind};
use firth_nn::embedding::Embedding;
use firth_nn::gemm::{gemm, gemm_packed, pack_rhs_upto, Op, Out};
use firth_nn::kernels;
use firth_nn::linear::Linear;
use firth_nn::recurrent::Recurrent;
use firth_nn::{CellKind, Gemm, Param, ParamSet, Rng};
use serde::{Deserialize, Serialize};

/// How decoder states score encoder states.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionType {
    /// No attention: the decoder's top state alone predicts the next word.
    None,
    /// Luong dot: e = h·m (the decoder as wide as the encoder's output).
    Dot,
    /// Luong general: e = hᵀ W m.
    General,
    /// Bahdanau additive: e = vᵀ tanh(W_q h + W_k m), A = the decoder width.
    Additive,
}

/// The model's shape and regularisation; saved with the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TranslatorConfig {
    /// Encoder and decoder cell (LSTM or GRU).
    pub cell: CellKind,
    pub src_vocab: usize,
    pub tgt_vocab: usize,
    /// Source and target embedding width.
    pub emb: usize,
    /// Encoder units per direction (the encoder is bidirectional: outputs are 2·this wide).
    pub enc_hidden: usize,
    pub enc_layers: usize,
    pub dec_hidden: usize,
    pub dec_layers: usize,
    pub attention: AttentionType,
    /// Feed h~_{t-1} into the decoder's first layer with the embedding of y_{t-1}.
    pub input_feeding: bool,
    /// On embeddings, between recurrent layers and on h~.
    pub dropout: f32,
    /// ε of the label-smoothed loss (0 = plain cross-entropy).
    pub label_smoothing: f32,
    /// The output layer shares the target embedding table (needs emb = dec_hidden).
    pub tied: bool,
    pub init_range: f64,
}

impl TranslatorConfig {
    /// Refuses impossible shapes with the flag to change.
    pub fn validate(&self) -> Result<()> {
        let c = self;
        if c.src_vocab == 0 || c.tgt_vocab == 0 {
            bail!("a translator needs non-empty source and target vocabularies");
        }
        if c.emb == 0 || c.enc_hidden == 0 || c.dec_hidden == 0 {
            bail!("--emb and --hidden must be at least 1");
        }
        if c.enc_layers == 0 || c.dec_layers == 0 {
            bail!("--enc-layers and --dec-layers must be at least 1");
        }
        if !matches!(c.cell, CellKind::Lstm | CellKind::Gru) {
            bail!("--cell must be lstm or gru");
        }
        if c.tied && c.emb != c.dec_hidden {
            bail!(
                "--tied needs --emb equal to the decoder width (got {} and {}): the output layer \
                 shares the target embedding table; set both to one size or drop --tied",
                c.emb,
                c.dec_hidden
            );
        }
        if c.attention == AttentionType::Dot && c.dec_hidden != 2 * c.enc_hidden {
            bail!(
                "--attention dot needs a decoder as wide as the bidirectional encoder's output \
                 (2 x {} = {}), got {}; use --attention general or set the widths",
                c.enc_hidden,
                2 * c.enc_hidden,
                c.dec_hidden
            );
        }
        if !(0.0..1.0).contains(&c.dropout) {
            bail!("--dropout must be in [0, 1), not {}", c.dropout);
        }
        if !(0.0..1.0).contains(&c.label_smoothing) {
            bail!(
                "--label-smoothing must be in [0, 1), not {}",
                c.label_smoothing
            );
        }
        Ok(())
    }

    /// The encoder layer whose final states start decoder layer `l`: the top layers are
    /// aligned (decoder layer D-1 reads encoder layer E-1), and a decoder deeper than the
    /// encoder starts its extra bottom layers from encoder layer 0.
    pub fn bridge_source(&self, l: usize) -> usize {
        (l + self.enc_layers).saturating_sub(self.dec_layers)
    }

    /// Width of the encoder's outputs (the attention's values), 2·He.
    pub fn memory(&self) -> usize {
        2 * self.enc_hidden
    }

    fn feed(&self) -> usize {
        if self.input_feeding {
            self.dec_hidden
        } else {
            0
        }
    }
}

/// A batch of sentence pairs, time-major and padded.
#[derive(Clone, Debug, Default)]
pub struct PairBatch {
    pub batch: usize,
    /// S, the longest source.
    pub src_steps: usize,
    /// (S, B) source ids, `pad` beyond each length.
    pub src: Vec<u32>,
    /// (B) source lengths, each ≥ 1.
    pub src_len: Vec<usize>,
    /// T, the longest target plus one.
    pub tgt_steps: usize,
    /// (T, B) decoder inputs: <s> y_1 … y_n, then pad.
    pub tgt_in: Vec<u32>,
    /// (T, B) decoder targets: y_1 … y_n </s>, then pad.
    pub tgt_out: Vec<u32>,
    /// (B) target lengths n + 1 (with </s>).
    pub tgt_len: Vec<usize>,
}

impl PairBatch {
    /// Lays out pairs (source ids, target ids) with the special ids. Sources must not be empty.
    pub fn fill<'a>(
        &mut self,
        pairs: impl ExactSizeIterator<Item = (&'a [u32], &'a [u32])> + Clone,
        bos: u32,
        eos: u32,
        pad: u32,
    ) {
        let b_n = pairs.len();
        self.batch = b_n;
        self.src_len.clear();
        self.src_len.extend(pairs.clone().map(|(s, _)| s.len()));
        self.tgt_len.clear();
        self.tgt_len.extend(pairs.clone().map(|(_, t)| t.len() + 1));
        self.src_steps = self.src_len.iter().copied().max().unwrap_or(0);
        self.tgt_steps = self.tgt_len.iter().copied().max().unwrap_or(0);
        self.src.clear();
        self.src.resize(self.src_steps * b_n, pad);
        self.tgt_in.clear();
        self.tgt_in.resize(self.tgt_steps * b_n, pad);
        self.tgt_out.clear();
        self.tgt_out.resize(self.tgt_steps * b_n, pad);
        for (b, (s, t)) in pairs.enumerate() {
            assert!(!s.is_empty(), "a source sentence is empty");
            for (i, &w) in s.iter().enumerate() {
                self.src[i * b_n + b] = w;
            }
            self.tgt_in[b] = bos;
            for (i, &w) in t.iter().enumerate() {
                self.tgt_in[(i + 1) * b_n + b] = w;
                self.tgt_out[i * b_n + b] = w;
            }
            self.tgt_out[t.len() * b_n + b] = eos;
        }
    }

    /// Target tokens, </s> included.
    pub fn tokens(&self) -> usize {
        self.tgt_len.iter().sum()
    }
}

/// The learned map from an encoder layer's final states to a decoder layer's initial state.
#[derive(Clone, Debug)]
pub struct Bridge<T> {
    /// h0 = tanh(W [h→ ; h←] + b), (Hd, 2He).
    pub h: Linear<T>,
    /// c0 = W [c→ ; c←] + b, LSTM only.
    pub c: Option<Linear<T>>,
}

/// The encoder-decoder with the activations of its last forward pass.
#[derive(Clone, Debug)]
pub struct Translator<T> {
    pub config: TranslatorConfig,
    pub src_emb: Embedding<T>,
    pub tgt_emb: Embedding<T>,
    pub encoder: SeqEncoder<T>,
    pub bridge: Vec<Bridge<T>>,
    pub decoder: Vec<Recurrent<T>>,
    /// Additive: (W_q, W_k, v). General: W stored (Dv, Hd). Dot: no weights. None: unused.
    pub attn: AttentionParams<T>,
    /// W_a of h~ = tanh(W_a [c ; h]), (Hd, Dv + Hd), no bias; absent without attention.
    pub combine: Option<Linear<T>>,
    /// (V, Hd); absent when tied to the target embedding.
    pub out_w: Option<Param<T>>,
    pub out_b: Param<T>,
    /// Dot attention over precomputed keys (no weights of its own).
    dot: AttentionParams<T>,
    src_drop: Dropout<T>,
    tgt_drop: Dropout<T>,
    pub(super) fwd: Activations<T>,
    pub(super) inf: super::decode::Inference<T>,
}

/// What the training forward keeps for the backward, and backward scratch.
#[derive(Clone, Debug, Default)]
pub(super) struct Activations<T> {
    pub steps: usize,
    pub batch: usize,
    pub src_steps: usize,
    pub src_len: Vec<usize>,
    x_src: Vec<T>,  // (S, B, E) after dropout
    keys: Vec<T>,   // (S, B, Hd) general: M·W
    b_in_h: Vec<T>, // (Ld, B, 2He) bridge inputs
    b_in_c: Vec<T>, // (Ld, B, 2He) LSTM
    h0: Vec<T>,     // (Ld, B, Hd)
    c0: Vec<T>,     // (Ld, B, Hd) LSTM
    x_tgt: Vec<T>,  // (T, B, E) after dropout
    /// Dropout masks on the input of decoder layers 1.., (Ld-1, T, B, Hd); empty = none.
    layer_mask: Vec<T>,
    /// Dropout mask on h~, (T, B, Hd); empty = none.
    feed_mask: Vec<T>,
    x0: Vec<T>,       // (B, E + F) scratch
    layer_in: Vec<T>, // (B, Hd) scratch
    pub caches: Vec<AttentionCache<T>>,
    context: Vec<T>, // (B, Dv) scratch
    cat: Vec<T>,     // (T, B, Dv + Hd) [c_t ; h_t]
    act: Vec<T>,     // (T, B, Hd) a = tanh(W_a [c ; h]) (or h without attention)
    htilde: Vec<T>,  // (T, B, Hd) after dropout
    /// Rows t·B + b of the real target positions, in order; N = rows.len().
    pub rows: Vec<usize>,
    pub targets: Vec<u32>, // (N)
    pub top: Vec<T>,       // (N, Hd) h~ at the real positions
    // backward scratch
    d_htilde: Vec<T>, // (T, B, Hd)
    d_feed: Vec<T>,   // (B, Hd)
    d_act: Vec<T>,    // (B, Hd)
    d_pre: Vec<T>,    // (T, B, Hd)
    d_cat: Vec<T>,    // (B, Dv + Hd)
    d_ctx: Vec<T>,    // (B, Dv)
    d_q: Vec<T>,      // (B, Hd)
    d_x: Vec<T>,      // (B, max input width)
    d_keys: Vec<T>,   // (S, B, Dk)
    d_mem: Vec<T>,    // (S, B, Dv)
    d_x_tgt: Vec<T>,  // (T, B, E)
    d_x_src: Vec<T>,  // (S, B, E)
    d_bridge: Vec<T>, // (B, 2He)
    d_pre_b: Vec<T>,  // (B, Hd)
    d_fin_h: Vec<T>,  // (Le·2, B, He)
    d_fin_c: Vec<T>,  // (Le·2, B, He)
    logits: Vec<T>,   // (N, V)
    per_row: Vec<f64>,
    /// W_aᵀ (forward) and W_a (backward) packed for the per-step products, when that pays.
    comb_t: Vec<T>,
    comb_n: Vec<T>,
    comb_packed: bool,
}

/// Per-step products of up to this many rows take the few-row kernel (see
/// [`firth_nn::gemm::pack_rhs_upto`]).
const PACK_ROWS: usize = 128;

pub(super) fn resize<T: Gemm>(v: &mut Vec<T>, n: usize) {
    if v.len() != n {
        v.resize(n, T::ZERO);
    }
}

/// Fills `mask` with n inverted-dropout factors (0 or 1/(1-p)); empty when off.
fn draw_mask<T: Gemm>(mask: &mut Vec<T>, n: usize, p: f32, train: bool, rng: &mut Rng) {
    mask.clear();
    if !train || p <= 0.0 {
        return;
    }
    let keep = 1.0 - p;
    let scale = T::from_f64(1.0 / keep as f64);
    mask.extend((0..n).map(|_| {
        if rng.uniform_f32() < keep {
            scale
        } else {
            T::ZERO
        }
    }));
}

fn apply_mask<T: Gemm>(x: &mut [T], mask: &[T]) {
    if !mask.is_empty() {
        for (v, &m) in x.iter_mut().zip(mask) {
            *v *= m;
        }
    }
}

impl<T: Gemm> Translator<T> {
    pub fn new(config: TranslatorConfig, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
        let c = &config;
        let r = c.init_range;
        let (e, he, hd, dv) = (c.emb, c.enc_hidden, c.dec_hidden, c.memory());
        let src_emb = Embedding::new("src_emb", c.src_vocab, e, r, rng);
        let tgt_emb = Embedding::new("tgt_emb", c.tgt_vocab, e, r, rng);
        let encoder = SeqEncoder::new(
            &EncoderConfig {
                cell: c.cell,
                input: e,
                hidden: he,
                layers: c.enc_layers,
                bidirectional: true,
                dropout: c.dropout,
            },
            r,
            rng,
        );
        let lstm = c.cell == CellKind::Lstm;
        let bridge = (0..c.dec_layers)
            .map(|l| Bridge {
                h: Linear::new(&format!("bridge.l{l}.h"), dv, hd, true, r, rng),
                c: lstm.then(|| Linear::new(&format!("bridge.l{l}.c"), dv, hd, true, r, rng)),
            })
            .collect();
        let decoder = (0..c.dec_layers)
            .map(|l| {
                let input = if l == 0 { e + c.feed() } else { hd };
                Recurrent::new(&format!("decoder.l{l}"), c.cell, input, hd, r, 1.0, rng)
            })
            .collect();
        let attn = match c.attention {
            AttentionType::General => {
                AttentionParams::new("attn", AttentionKind::General, hd, dv, r, rng)
            }
            AttentionType::Additive => AttentionParams::new(
                "attn",
                AttentionKind::Additive { hidden: hd },
                hd,
                dv,
                r,
                rng,
            ),
            AttentionType::Dot | AttentionType::None => {
                AttentionParams::new("attn", AttentionKind::Dot, hd, hd, r, rng)
            }
        };
        let combine = (c.attention != AttentionType::None)
            .then(|| Linear::new("combine", dv + hd, hd, false, r, rng));
        let out_w = (!c.tied).then(|| Param::uniform("out.weight", &[c.tgt_vocab, hd], r, rng));
        let out_b = Param::zeros("out.bias", &[c.tgt_vocab]);
        let p = c.dropout as f64;
        Ok(Translator {
            dot: AttentionParams::new("dot", AttentionKind::Dot, hd, hd, r, rng),
            src_drop: Dropout::new(p, DropoutKind::Standard),
            tgt_drop: Dropout::new(p, DropoutKind::Standard),
            src_emb,
            tgt_emb,
            encoder,
            bridge,
            decoder,
            attn,
            combine,
            out_w,
            out_b,
            fwd: Activations::default(),
            inf: Default::default(),
            config,
        })
    }

    /// The parameters below the output layer (all but `out.weight` and `out.bias`); a tied
    /// output layer's weight is the target embedding, which is among them.
    pub fn body_params_mut(&mut self) -> Vec<&mut Param<T>> {
        let n = if self.config.tied { 1 } else { 2 };
        let mut v = self.params_mut();
        v.truncate(v.len() - n);
        v
    }

    /// (V, Hd): the output layer's weight, or the tied target embedding.
    pub fn out_weight(&self) -> &[T] {
        match &self.out_w {
            Some(w) => &w.value,
            None => &self.tgt_emb.weight.value,
        }
    }

    /// Runs the encoder and the teacher-forced decoder over `b`, leaving h~ of every real
    /// target position in `fwd.top` (N, Hd), their targets in `fwd.targets` and the attention
    /// weights of step t in `fwd.caches[t]`.
    pub fn forward_body(&mut self, b: &PairBatch, train: bool, rng: &mut Rng) {
        let c = self.config.clone();
        let (e, hd, dv, f) = (c.emb, c.dec_hidden, c.memory(), c.feed());
        let (s_n, b_n, t_n) = (b.src_steps, b.batch, b.tgt_steps);
        let ld = c.dec_layers;
        let lstm = c.cell == CellKind::Lstm;
        let a = &mut self.fwd;
        a.steps = t_n;
        a.batch = b_n;
        a.src_steps = s_n;
        a.src_len.clear();
        a.src_len.extend_from_slice(&b.src_len);
        // 1. Encoder.
        resize(&mut a.x_src, s_n * b_n * e);
        self.src_emb.forward(&b.src, &mut a.x_src);
        self.src_drop.forward(&mut a.x_src, b_n * e, train, rng);
        self.encoder
            .forward(&a.x_src, s_n, b_n, &b.src_len, train, rng);
        // 2. Bridge.
        let he = c.enc_hidden;
        resize(&mut a.b_in_h, ld * b_n * dv);
        resize(&mut a.h0, ld * b_n * hd);
        if lstm {
            resize(&mut a.b_in_c, ld * b_n * dv);
            resize(&mut a.c0, ld * b_n * hd);
        }
        for l in 0..ld {
            let k = c.bridge_source(l);
            let fh = self.encoder.final_h();
            gather_directions(fh, &mut a.b_in_h[l * b_n * dv..][..b_n * dv], k, b_n, he);
            let h0 = &mut a.h0[l * b_n * hd..][..b_n * hd];
            self.bridge[l]
                .h
                .forward(&a.b_in_h[l * b_n * dv..][..b_n * dv], h0);
            h0.iter_mut().for_each(|v| *v = v.tanh());
            if let Some(bc) = &self.bridge[l].c {
                let fc = self.encoder.final_c();
                let x = &mut a.b_in_c[l * b_n * dv..][..b_n * dv];
                gather_directions(fc, x, k, b_n, he);
                bc.forward(x, &mut a.c0[l * b_n * hd..][..b_n * hd]);
            }
        }
        // 3. Keys.
        let memory = self.encoder.output();
        if c.attention == AttentionType::General {
            resize(&mut a.keys, s_n * b_n * hd);
            let w = &self.attn.w.as_ref().expect("general attention has W").value;
            // K' (S·B, Hd) = M (S·B, Dv) · W (Dv, Hd)
            gemm(
                &mut a.keys,
                Out::Set,
                memory,
                Op::N,
                w,
                Op::N,
                s_n * b_n,
                hd,
                dv,
            );
        }
        // 4. Target embeddings and dropout masks.
        resize(&mut a.x_tgt, t_n * b_n * e);
        self.tgt_emb.forward(&b.tgt_in, &mut a.x_tgt);
        self.tgt_drop.forward(&mut a.x_tgt, b_n * e, train, rng);
        let p = c.dropout;
        draw_mask(&mut a.layer_mask, (ld - 1) * t_n * b_n * hd, p, train, rng);
        draw_mask(&mut a.feed_mask, t_n * b_n * hd, p, train, rng);
        // 5. The decoder, step by step.
        for (l, dec) in self.decoder.iter_mut().enumerate() {
            let h0 = &a.h0[l * b_n * hd..][..b_n * hd];
            let c0 = if lstm {
                &a.c0[l * b_n * hd..][..b_n * hd]
            } else {
                &[][..]
            };
            // The step products' weights packed once for all T steps where that pays.
            dec.begin_packed(b_n, h0, c0, t_n);
        }
        // W_aᵀ likewise for the T products [c ; h]·W_aᵀ.
        a.comb_packed = match &self.combine {
            Some(comb) => pack_rhs_upto(
                &comb.weight.value,
                Op::T,
                dv + hd,
                hd,
                b_n,
                t_n,
                PACK_ROWS,
                &mut a.comb_t,
            ),
            None => false,
        };
        if a.caches.len() < t_n {
            a.caches.resize(t_n, AttentionCache::default());
        }
        resize(&mut a.x0, b_n * (e + f));
        resize(&mut a.layer_in, b_n * hd);
        resize(&mut a.context, b_n * dv);
        resize(&mut a.cat, t_n * b_n * (dv + hd));
        resize(&mut a.act, t_n * b_n * hd);
        resize(&mut a.htilde, t_n * b_n * hd);
        let bh = b_n * hd;
        for t in 0..t_n {
            for r in 0..b_n {
                let x = &mut a.x0[r * (e + f)..][..e + f];
                x[..e].copy_from_slice(&a.x_tgt[(t * b_n + r) * e..][..e]);
                if f > 0 {
                    if t == 0 {
                        x[e..].fill(T::ZERO);
                    } else {
                        x[e..].copy_from_slice(&a.htilde[((t - 1) * b_n + r) * hd..][..hd]);
                    }
                }
            }
            let mut h = self.decoder[0].step(&a.x0);
            for l in 1..ld {
                a.layer_in.copy_from_slice(h);
                if !a.layer_mask.is_empty() {
                    let m = &a.layer_mask[((l - 1) * t_n + t) * bh..][..bh];
                    apply_mask(&mut a.layer_in, m);
                }
                h = self.decoder[l].step(&a.layer_in);
            }
            let act = &mut a.act[t * bh..][..bh];
            match &self.combine {
                None => act.copy_from_slice(h),
                Some(comb) => {
                    let (params, keys) = match c.attention {
                        AttentionType::General => (&self.dot, &a.keys[..]),
                        AttentionType::Dot => (&self.dot, memory),
                        _ => (&self.attn, memory),
                    };
                    attention_forward(
                        params,
                        h,
                        keys,
                        memory,
                        &b.src_len,
                        &mut a.caches[t],
                        &mut a.context,
                    );
                    let cat = &mut a.cat[t * b_n * (dv + hd)..][..b_n * (dv + hd)];
                    for r in 0..b_n {
                        let row = &mut cat[r * (dv + hd)..][..dv + hd];
                        row[..dv].copy_from_slice(&a.context[r * dv..][..dv]);
                        row[dv..].copy_from_slice(&h[r * hd..][..hd]);
                    }
                    if a.comb_packed {
                        gemm_packed(act, Out::Set, cat, &a.comb_t, b_n, hd, dv + hd);
                    } else {
                        comb.forward(cat, act);
                    }
                    act.iter_mut().for_each(|v| *v = v.tanh());
                }
            }
            let ht = &mut a.htilde[t * bh..][..bh];
            ht.copy_from_slice(act);
            if !a.feed_mask.is_empty() {
                apply_mask(ht, &a.feed_mask[t * bh..][..bh]);
            }
        }
        // 6. The real target positions.
        a.rows.clear();
        a.targets.clear();
        for t in 0..t_n {
            for r in 0..b_n {
                if t < b.tgt_len[r] {
                    a.rows.push(t * b_n + r);
                    a.targets.push(b.tgt_out[t * b_n + r]);
                }
            }
        }
        resize(&mut a.top, a.rows.len() * hd);
        for (k, &row) in a.rows.iter().enumerate() {
            a.top[k * hd..][..hd].copy_from_slice(&a.htilde[row * hd..][..hd]);
        }
    }

    /// The output layer and the label-smoothed loss over `top` (N, Hd) with `targets` (N):
    /// returns (Σ -log p(y), Σ smoothed loss). With `grad`, adds the gradient of
    /// `scale`·Σ smoothed loss into the output weights (the tied embedding's gradient becomes
    /// dense) and overwrites `d_top` (N, Hd) with its gradient.
    pub fn output_step(
        &mut self,
        top: &[T],
        targets: &[u32],
        scale: f64,
        grad: bool,
        d_top: &mut Vec<T>,
    ) -> (f64, f64) {
        let (hd, v) = (self.config.dec_hidden, self.config.tgt_vocab);
        let n = targets.len();
        assert_eq!(top.len(), n * hd, "top is not (N, Hd)");
        let mut logits = std::mem::take(&mut self.fwd.logits);
        let mut per_row = std::mem::take(&mut self.fwd.per_row);
        resize(&mut logits, n * v);
        firth_nn::linear::affine_forward(
            top,
            self.out_weight(),
            Some(&self.out_b.value),
            &mut logits,
            hd,
            v,
        );
        let eps = self.config.label_smoothing as f64;
        let (nll, loss) = smoothed_cross_entropy(
            &mut logits,
            targets,
            v,
            eps,
            grad.then_some(scale),
            &mut per_row,
        );
        if grad && loss.is_finite() {
            resize(d_top, n * hd);
            let w = match &mut self.out_w {
                Some(w) => w,
                None => {
                    self.tgt_emb.weight.dense_grad = true;
                    &mut self.tgt_emb.weight
                }
            };
            // dW (V, Hd) += dZᵀ·X, db += Σ dZ, dX (N, Hd) = dZ·W
            gemm(&mut w.grad, Out::Add, &logits, Op::T, top, Op::N, v, hd, n);
            kernels::sum_rows_into(&logits, &mut self.out_b.grad);
            gemm(d_top, Out::Set, &logits, Op::N, &w.value, Op::N, n, hd, v);
        }
        self.fwd.logits = logits;
        self.fwd.per_row = per_row;
        (nll, loss)
    }

    /// Forward and backward of one batch on this model alone: returns (Σ -log p, Σ smoothed
    /// loss, target tokens) and leaves the gradient of (1/tokens)·Σ smoothed loss.
    pub fn train_batch(&mut self, b: &PairBatch, rng: &mut Rng) -> (f64, f64, usize) {
        self.forward_body(b, true, rng);
        let top = std::mem::take(&mut self.fwd.top);
        let targets = std::mem::take(&mut self.fwd.targets);
        let n = targets.len();
        let mut d_top = Vec::new();
        let (nll, loss) = self.output_step(&top, &targets, 1.0 / n as f64, true, &mut d_top);
        (self.fwd.top, self.fwd.targets) = (top, targets);
        if loss.is_finite() {
            self.backward_body(b, &d_top);
        }
        (nll, loss, n)
    }

    /// Backpropagates d h~ at the real target positions, `d_top` (N, Hd) in the order of
    /// `fwd.rows`, through the last [`Self::forward_body`] on the same batch, adding into every
    /// body parameter's gradient.
    pub fn backward_body(&mut self, b: &PairBatch, d_top: &[T]) {
        let c = self.config.clone();
        let (e, hd, dv, f, he) = (c.emb, c.dec_hidden, c.memory(), c.feed(), c.enc_hidden);
        let a = &mut self.fwd;
        let (s_n, b_n, t_n) = (a.src_steps, a.batch, a.steps);
        let ld = c.dec_layers;
        let lstm = c.cell == CellKind::Lstm;
        let bh = b_n * hd;
        assert_eq!(d_top.len(), a.rows.len() * hd, "d_top is not (N, Hd)");
        resize(&mut a.d_htilde, t_n * bh);
        a.d_htilde.fill(T::ZERO);
        for (k, &row) in a.rows.iter().enumerate() {
            a.d_htilde[row * hd..][..hd].copy_from_slice(&d_top[k * hd..][..hd]);
        }
        let dk = if c.attention == AttentionType::General {
            hd
        } else {
            dv
        };
        resize(&mut a.d_keys, s_n * b_n * dk);
        a.d_keys.fill(T::ZERO);
        resize(&mut a.d_mem, s_n * b_n * dv);
        a.d_mem.fill(T::ZERO);
        resize(&mut a.d_feed, bh);
        a.d_feed.fill(T::ZERO);
        resize(&mut a.d_act, bh);
        resize(&mut a.d_pre, t_n * bh);
        resize(&mut a.d_cat, b_n * (dv + hd));
        resize(&mut a.d_ctx, b_n * dv);
        resize(&mut a.d_q, bh);
        resize(&mut a.d_x, b_n * (e + f).max(hd));
        resize(&mut a.d_x_tgt, t_n * b_n * e);
        for dec in &mut self.decoder {
            dec.backward_steps_begin();
        }
        // W_a for the T products dPre·W_a.
        a.comb_packed = match &self.combine {
            Some(comb) => pack_rhs_upto(
                &comb.weight.value,
                Op::N,
                hd,
                dv + hd,
                b_n,
                t_n,
                PACK_ROWS,
                &mut a.comb_n,
            ),
            None => false,
        };
        let memory = self.encoder.output();
        for t in (0..t_n).rev() {
            // dh~_t = from the output + from step t+1's input; through h~'s dropout.
            for ((d, &o), &fd) in a
                .d_act
                .iter_mut()
                .zip(&a.d_htilde[t * bh..][..bh])
                .zip(&a.d_feed)
            {
                *d = o + fd;
            }
            if !a.feed_mask.is_empty() {
                apply_mask(&mut a.d_act, &a.feed_mask[t * bh..][..bh]);
            }
            match &self.combine {
                None => a.d_q.copy_from_slice(&a.d_act),
                Some(comb) => {
                    // a = tanh(pre): dpre = da ⊙ (1 - a²); d[c ; h] = dpre·W_a.
                    let act = &a.act[t * bh..][..bh];
                    let d_pre = &mut a.d_pre[t * bh..][..bh];
                    for ((p, &g), &y) in d_pre.iter_mut().zip(&a.d_act).zip(act) {
                        *p = g * (T::ONE - y * y);
                    }
                    // (B, Dv + Hd) = (B, Hd)·(Hd, Dv + Hd)
                    if a.comb_packed {
                        gemm_packed(&mut a.d_cat, Out::Set, d_pre, &a.comb_n, b_n, dv + hd, hd);
                    } else {
                        gemm(
                            &mut a.d_cat,
                            Out::Set,
                            d_pre,
                            Op::N,
                            &comb.weight.value,
                            Op::N,
                            b_n,
                            dv + hd,
                            hd,
                        );
                    }
                    for r in 0..b_n {
                        let row = &a.d_cat[r * (dv + hd)..][..dv + hd];
                        a.d_ctx[r * dv..][..dv].copy_from_slice(&row[..dv]);
                        a.d_q[r * hd..][..hd].copy_from_slice(&row[dv..]);
                    }
                    let top = self.decoder[ld - 1].output();
                    let q = &top[t * bh..][..bh];
                    let (params, keys) = match c.attention {
                        AttentionType::General => (&mut self.dot, &a.keys[..]),
                        AttentionType::Dot => (&mut self.dot, memory),
                        _ => (&mut self.attn, memory),
                    };
                    attention_backward(
                        params,
                        q,
                        keys,
                        memory,
                        &mut a.caches[t],
                        &a.d_ctx,
                        Some(&mut a.d_q),
                        Some(&mut a.d_keys),
                        Some(&mut a.d_mem),
                    );
                }
            }
            // Down the decoder stack at step t.
            for l in (0..ld).rev() {
                let width = if l == 0 { e + f } else { hd };
                let dx = &mut a.d_x[..b_n * width];
                dx.fill(T::ZERO);
                self.decoder[l].backward_step(&a.d_q, Some(dx));
                if l > 0 {
                    a.d_q.copy_from_slice(dx);
                    if !a.layer_mask.is_empty() {
                        apply_mask(&mut a.d_q, &a.layer_mask[((l - 1) * t_n + t) * bh..][..bh]);
                    }
                }
            }
            for r in 0..b_n {
                let dx = &a.d_x[r * (e + f)..][..e + f];
                a.d_x_tgt[(t * b_n + r) * e..][..e].copy_from_slice(&dx[..e]);
                if f > 0 {
                    a.d_feed[r * hd..][..hd].copy_from_slice(&dx[e..]);
                }
            }
        }
        for dec in &mut self.decoder {
            dec.backward_steps_end();
        }
        if let Some(comb) = &mut self.combine {
            // dW_a (Hd, Dv + Hd) += dPreᵀ (Hd, T·B) · [C ; H] (T·B, Dv + Hd)
            gemm(
                &mut comb.weight.grad,
                Out::Add,
                &a.d_pre,
                Op::T,
                &a.cat,
                Op::N,
                hd,
                dv + hd,
                t_n * b_n,
            );
            match c.attention {
                AttentionType::General => {
                    let w = self.attn.w.as_mut().expect("general attention has W");
                    // dW (Dv, Hd) += Mᵀ·dK';  dM (S·B, Dv) += dK'·Wᵀ
                    gemm(
                        &mut w.grad,
                        Out::Add,
                        memory,
                        Op::T,
                        &a.d_keys,
                        Op::N,
                        dv,
                        hd,
                        s_n * b_n,
                    );
                    gemm(
                        &mut a.d_mem,
                        Out::Add,
                        &a.d_keys,
                        Op::N,
                        &w.value,
                        Op::T,
                        s_n * b_n,
                        dv,
                        hd,
                    );
                }
                _ => kernels::add_into(&mut a.d_mem, &a.d_keys),
            }
        }
        // The bridge: dL/dh0, dL/dc0 of each decoder layer to the encoder's final states.
        let fin = c.enc_layers * 2 * b_n * he;
        resize(&mut a.d_fin_h, fin);
        a.d_fin_h.fill(T::ZERO);
        if lstm {
            resize(&mut a.d_fin_c, fin);
            a.d_fin_c.fill(T::ZERO);
        }
        resize(&mut a.d_bridge, b_n * dv);
        resize(&mut a.d_pre_b, bh);
        for l in 0..ld {
            let k = c.bridge_source(l);
            let h0 = &a.h0[l * bh..][..bh];
            for ((p, &g), &y) in a.d_pre_b.iter_mut().zip(self.decoder[l].d_h0()).zip(h0) {
                *p = g * (T::ONE - y * y);
            }
            a.d_bridge.fill(T::ZERO);
            self.bridge[l].h.backward(
                &a.b_in_h[l * b_n * dv..][..b_n * dv],
                &a.d_pre_b,
                Some(&mut a.d_bridge),
            );
            scatter_directions(&a.d_bridge, &mut a.d_fin_h, k, b_n, he);
            if let Some(bc) = &mut self.bridge[l].c {
                a.d_bridge.fill(T::ZERO);
                bc.backward(
                    &a.b_in_c[l * b_n * dv..][..b_n * dv],
                    self.decoder[l].d_c0(),
                    Some(&mut a.d_bridge),
                );
                scatter_directions(&a.d_bridge, &mut a.d_fin_c, k, b_n, he);
            }
        }
        self.encoder
            .add_d_final(&a.d_fin_h, lstm.then_some(&a.d_fin_c[..]));
        resize(&mut a.d_x_src, s_n * b_n * e);
        a.d_x_src.fill(T::ZERO);
        self.encoder
            .backward(&a.x_src, &a.d_mem, Some(&mut a.d_x_src));
        self.src_drop.backward(&mut a.d_x_src);
        self.src_emb.backward(&b.src, &a.d_x_src);
        self.tgt_drop.backward(&mut a.d_x_tgt);
        self.tgt_emb.backward(&b.tgt_in, &a.d_x_tgt);
    }

    /// Σ -log p and Σ smoothed loss of the batch's targets, without gradients (no dropout).
    pub fn score_batch(&mut self, b: &PairBatch) -> (f64, f64, usize) {
        self.loss(b, false, &mut Rng::new(0))
    }

    /// (Σ -log p, Σ smoothed loss, target tokens) of a forward without gradients; `train`
    /// applies dropout drawn from `rng` (the masks [`Self::train_batch`] would draw from the
    /// same generator).
    pub fn loss(&mut self, b: &PairBatch, train: bool, rng: &mut Rng) -> (f64, f64, usize) {
        self.forward_body(b, train, rng);
        let top = std::mem::take(&mut self.fwd.top);
        let targets = std::mem::take(&mut self.fwd.targets);
        let mut unused = Vec::new();
        let (nll, loss) = self.output_step(&top, &targets, 1.0, false, &mut unused);
        let n = targets.len();
        (self.fwd.top, self.fwd.targets) = (top, targets);
        (nll, loss, n)
    }

    /// h~ at the real target positions of the last forward, (N, Hd), rows in (t, b) order.
    pub fn top(&self) -> &[T] {
        &self.fwd.top
    }

    /// Row t·B + b of each of the N real target positions of the last forward.
    pub fn top_rows(&self) -> &[usize] {
        &self.fwd.rows
    }

    /// The attention weights of step t of the last forward, (B, S) (empty without attention).
    pub fn attention_weights(&self, t: usize) -> &[T] {
        if self.combine.is_none() || t >= self.fwd.steps {
            return &[];
        }
        self.fwd.caches[t].weights()
    }
}

/// x (B, 2He) row b = [final_h of (layer k, forward) ; (layer k, backward)] from the encoder's
/// (layers·2, B, He) finals.
fn gather_directions<T: Gemm>(fin: &[T], x: &mut [T], k: usize, b_n: usize, he: usize) {
    for b in 0..b_n {
        let row = &mut x[b * 2 * he..][..2 * he];
        row[..he].copy_from_slice(&fin[((2 * k) * b_n + b) * he..][..he]);
        row[he..].copy_from_slice(&fin[((2 * k + 1) * b_n + b) * he..][..he]);
    }
}

/// The adjoint of [`gather_directions`], adding.
fn scatter_directions<T: Gemm>(dx: &[T], fin: &mut [T], k: usize, b_n: usize, he: usize) {
    for b in 0..b_n {
        let row = &dx[b * 2 * he..][..2 * he];
        kernels::add_into(&mut fin[((2 * k) * b_n + b) * he..][..he], &row[..he]);
        kernels::add_into(&mut fin[((2 * k + 1) * b_n + b) * he..][..he], &row[he..]);
    }
}

impl<T: Gemm> ParamSet<T> for Translator<T> {
    fn params(&self) -> Vec<&Param<T>> {
        let mut v = vec![&self.src_emb.weight, &self.tgt_emb.weight];
        v.extend(self.encoder.params());
        for b in &self.bridge {
            v.extend(b.h.params());
            if let Some(c) = &b.c {
                v.extend(c.params());
            }
        }
        for d in &self.decoder {
            v.extend(d.params());
        }
        if self.config.attention != AttentionType::None {
            v.extend(self.attn.params());
        }
        if let Some(c) = &self.combine {
            v.extend(c.params());
        }
        v.extend(self.out_w.as_ref());
        v.push(&self.out_b);
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut v = vec![&mut self.src_emb.weight, &mut self.tgt_emb.weight];
        v.extend(self.encoder.params_mut());
        for b in &mut self.bridge {
            v.extend(b.h.params_mut());
            if let Some(c) = &mut b.c {
                v.extend(c.params_mut());
            }
        }
        for d in &mut self.decoder {
            v.extend(d.params_mut());
        }
        if self.config.attention != AttentionType::None {
            v.extend(self.attn.params_mut());
        }
        if let Some(c) = &mut self.combine {
            v.extend(c.params_mut());
        }
        v.extend(self.out_w.as_mut());
        v.push(&mut self.out_b);
        v
    }
}
