//! Sentence classification: embedding → [`SeqEncoder`] → [`Pooling`] → linear → softmax.
//!
//! For a batch of B sentences padded to L tokens (time-major, padding after each end):
//!
//! ```text
//! ids (L, B) → x = dropout([E[ids] ; S[ids] ; F]) (L, B, E + Es + Kl) → h = encoder(x) (L, B, D)
//!   → s = dropout(pool(h, lengths)) (B, D) → z = s·Wᵀ + b (B, C) → L = mean_b −log softmax(z)_y
//! ```
//!
//! S is the static channel (`--multichannel`, Kim 2014; Es = E, or 0 without it): a frozen
//! copy of the pretrained vectors beside the trained table E. Fine-tuning moves the rows of
//! training words while words seen only in development or test text keep their pretrained
//! rows; S gives the encoder one input in which the two still live in the same space.
//!
//! F (L, B, Kl) are the frozen contextual character-LM features of each word
//! ([`crate::char_features`], `--char-lm`; Kl = `char_lm_dim`, 0 = none), zero at padding.
//! They are computed once per sentence when the data is encoded ([`encode_set`],
//! [`Bundle::encode`]) and are inputs, not parameters: no gradient flows into the LMs.
//!
//! Backward runs the same chain in reverse: dz = (softmax(z) − onehot(y)) / B (fused in
//! [`softmax_cross_entropy_backward`]), ds = dz·W, dh from the pooling layer (only valid
//! positions receive gradient), dx from the encoder, and the embedding rows of the sentence's
//! words get dx's first E columns (unless the embeddings are frozen, when that last step is
//! skipped); the static and feature columns of dx are dropped.
//!
//! Training goes through the one loop ([`crate::trainer`]) as a [`ClassifyTask`]: early
//! stopping on the development set, `model.safetensors` holding the epoch with the best
//! development accuracy, and the test set scored with it ([`train_classifier`]).

use crate::char_features::CharFeatures;
use crate::encoder::{EncoderConfig, SeqEncoder};
use anyhow::{bail, Result};
use firth_nn::dropout::{drop_words, Dropout, DropoutKind};
use firth_nn::embedding::Embedding;
use firth_nn::linear::Linear;
use firth_nn::pooling::{PoolKind, Pooling};
use firth_nn::softmax::{softmax_cross_entropy, softmax_cross_entropy_backward};
use firth_nn::{CellKind, Gemm, Param, ParamSet, Rng};
use serde::{Deserialize, Serialize};

mod bundle;
mod data;
mod eval;
mod pipeline;
mod task;

pub use crate::trainer::{CHECKPOINT, MODEL};
pub use bundle::Bundle;
pub use data::{encode_sentences, encode_set, encode_tokens, label_set, Encoded};
pub use eval::{evaluate, sentence_vectors, Scores};
pub use pipeline::{
    cross_validate, train_classifier, ClassifierOptions, ClassifyData, ClassifyPreset,
    ClassifySummary, CrossValidation,
};
pub use task::{ClassifyTask, ClassifyTrainConfig};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    pub cell: CellKind,
    pub vocab: usize,
    pub emb: usize,
    pub hidden: usize,
    pub layers: usize,
    pub bidirectional: bool,
    pub pooling: PoolKind,
    /// Dropout on the embeddings, between encoder layers, and on the pooled vector.
    pub dropout: f64,
    pub classes: usize,
    pub init_range: f64,
    /// Embeddings are not trained.
    pub freeze_emb: bool,
    /// Width of the frozen contextual character-LM features ([`crate::char_features`])
    /// concatenated after each word's embedding; 0 = off. A model with them keeps copies of
    /// its two LMs next to its weights ([`crate::char_features::DIRS`]). Configs saved before
    /// the field existed read as 0, so those models load unchanged.
    #[serde(default)]
    pub char_lm_dim: usize,
    /// Training only: probability that a token's id is replaced by `<unk>` (id 0), so the
    /// `<unk>` row that unseen words read is trained and no single word decides a sentence.
    /// Configs saved before the field existed read as 0.
    #[serde(default)]
    pub word_dropout: f64,
    /// A frozen copy of the (pretrained) embeddings read beside the trained ones, so the
    /// encoder's input is E + E (+ Kl) wide (`--multichannel`). Configs saved before the
    /// field existed read as false.
    #[serde(default)]
    pub static_channel: bool,
}

impl ClassifierConfig {
    pub fn validate(&self) -> Result<()> {
        if self.vocab == 0 || self.emb == 0 || self.hidden == 0 || self.layers == 0 {
            bail!("vocabulary, --emb, --hidden and --layers must all be at least 1");
        }
        if self.classes < 2 {
            bail!(
                "the training data has {} label(s); a classifier needs at least 2",
                self.classes
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            bail!("--dropout must be in [0, 1)");
        }
        if !(0.0..1.0).contains(&self.word_dropout) {
            bail!("--word-dropout must be in [0, 1)");
        }
        if self.static_channel && self.freeze_emb {
            bail!("--multichannel adds a frozen copy beside trained embeddings; with --freeze both would be frozen: leave one of the two out");
        }
        Ok(())
    }

    /// Width of the static channel's columns in the encoder's input (0 without it).
    pub fn static_dim(&self) -> usize {
        if self.static_channel {
            self.emb
        } else {
            0
        }
    }

    /// Width of the encoder's input: trained embedding, static channel, character-LM features.
    pub fn input_dim(&self) -> usize {
        self.emb + self.static_dim() + self.char_lm_dim
    }
}

/// The model with the activations of its last forward pass.
pub struct Classifier<T> {
    pub config: ClassifierConfig,
    pub emb: Embedding<T>,
    /// The static channel (`static_channel`): saved with the model, never trained.
    pub static_emb: Option<Embedding<T>>,
    pub enc: SeqEncoder<T>,
    pub pool: Pooling<T>,
    pub out: Linear<T>,
    /// The LMs behind the character-LM features (`char_lm_dim` > 0), which encoding runs.
    pub char_lm: Option<CharFeatures>,
    emb_drop: Dropout<T>,
    pool_drop: Dropout<T>,
    steps: usize,
    batch: usize,
    lengths: Vec<usize>,
    ids: Vec<u32>,     // (L, B), padding id 0
    targets: Vec<u32>, // (B)
    x: Vec<T>,         // (L, B, E + Es + Kl) after dropout
    pooled: Vec<T>,    // (B, D) after dropout
    probs: Vec<T>,     // (B, C) logits, then probabilities
    nll: Vec<f64>,     // (B)
    d_pooled: Vec<T>,  // (B, D)
    d_h: Vec<T>,       // (L, B, D)
    d_x: Vec<T>,       // (L, B, E + Es + Kl)
    d_emb: Vec<T>,     // (L, B, E), the trained embedding's columns of d_x (when Es + Kl > 0)
}

impl<T: Gemm> Classifier<T> {
    pub fn new(config: ClassifierConfig, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
        let c = &config;
        let r = c.init_range;
        let emb = Embedding::new("emb", c.vocab, c.emb, r, rng);
        let enc = SeqEncoder::new(
            &EncoderConfig {
                cell: c.cell,
                input: c.input_dim(),
                hidden: c.hidden,
                layers: c.layers,
                bidirectional: c.bidirectional,
                dropout: c.dropout as f32,
            },
            r,
            rng,
        );
        let d = enc.out_dim();
        let pool = Pooling::new("pool", c.pooling, d, c.bidirectional, r, rng);
        let out = Linear::new("out", d, c.classes, true, r, rng);
        // Drawn last, so a model without it draws the same weights as before it existed;
        // training overwrites it with the pretrained vectors.
        let static_emb = c
            .static_channel
            .then(|| Embedding::new("emb_static", c.vocab, c.emb, r, rng));
        Ok(Classifier {
            emb_drop: Dropout::new(c.dropout, DropoutKind::Standard),
            pool_drop: Dropout::new(c.dropout, DropoutKind::Standard),
            config,
            emb,
            static_emb,
            enc,
            pool,
            out,
            char_lm: None,
            steps: 0,
            batch: 0,
            lengths: Vec::new(),
            ids: Vec::new(),
            targets: Vec::new(),
            x: Vec::new(),
            pooled: Vec::new(),
            probs: Vec::new(),
            nll: Vec::new(),
            d_pooled: Vec::new(),
            d_h: Vec::new(),
            d_x: Vec::new(),
            d_emb: Vec::new(),
        })
    }

    /// Forward over `sents` (token ids, each non-empty) with their character-LM features
    /// `lm` (one (len, Kl) slice per sentence; empty for a model without them). With
    /// `labels`, returns the summed cross-entropy; without, 0. Probabilities are left in
    /// [`Self::probs`] either way.
    pub fn forward(
        &mut self,
        sents: &[&[u32]],
        lm: &[&[f32]],
        labels: Option<&[u32]>,
        train: bool,
        rng: &mut Rng,
    ) -> f64 {
        let b = sents.len();
        let l = sents.iter().map(|s| s.len()).max().unwrap_or(0);
        assert!(
            b > 0 && sents.iter().all(|s| !s.is_empty()),
            "empty sentence in a batch"
        );
        let (e, c) = (self.config.emb, self.config.classes);
        let kl = self.config.char_lm_dim;
        let es = self.config.static_dim();
        let din = self.config.input_dim();
        assert!(
            if kl == 0 {
                lm.is_empty()
            } else {
                lm.len() == b && lm.iter().zip(sents).all(|(f, s)| f.len() == s.len() * kl)
            },
            "character-LM features: one (len, char_lm_dim) slice per sentence, or none without them"
        );
        self.steps = l;
        self.batch = b;
        self.lengths.clear();
        self.lengths.extend(sents.iter().map(|s| s.len()));
        self.ids.clear();
        self.ids.resize(l * b, 0);
        let wp = self.config.word_dropout as f32;
        for (j, s) in sents.iter().enumerate() {
            for (t, &id) in s.iter().enumerate() {
                self.ids[t * b + j] = id;
            }
            if train && wp > 0.0 {
                // Sentence j's tokens, (L, B) strided; padding is never dropped.
                let real = self.ids.iter_mut().skip(j).step_by(b).take(s.len());
                drop_words(real, wp, rng);
            }
        }
        self.x.resize(l * b * din, T::ZERO);
        if din == e {
            self.emb.forward(&self.ids, &mut self.x);
        } else {
            // Row r = t·B + j of x is [E[ids[r]] ; S[ids[r]] ; F_j[t]], or [E[0] ; S[0] ; 0]
            // past the sentence's end (padding, which the encoder does not read).
            for (r, row) in self.x.chunks_exact_mut(din).enumerate() {
                let (t, j) = (r / b, r % b);
                let (emb, rest) = row.split_at_mut(e);
                let (stat, feat) = rest.split_at_mut(es);
                self.emb.forward(&self.ids[r..r + 1], emb);
                if let Some(s) = &self.static_emb {
                    s.forward(&self.ids[r..r + 1], stat);
                }
                match lm.get(j).and_then(|f| f.get(t * kl..(t + 1) * kl)) {
                    Some(f) => {
                        for (d, &v) in feat.iter_mut().zip(f) {
                            *d = T::from_f32(v);
                        }
                    }
                    None => feat.fill(T::ZERO),
                }
            }
        }
        self.emb_drop.forward(&mut self.x, b * din, train, rng);
        self.enc.forward(&self.x, l, b, &self.lengths, train, rng);
        let pooled = self.pool.forward(self.enc.output(), l, b, &self.lengths);
        self.pooled.clear();
        self.pooled.extend_from_slice(pooled);
        let d = self.pool.dim;
        self.pool_drop.forward(&mut self.pooled, b * d, train, rng);
        self.probs.resize(b * c, T::ZERO);
        self.out.forward(&self.pooled, &mut self.probs);
        match labels {
            Some(y) => {
                assert_eq!(y.len(), b, "one label per sentence");
                self.targets.clear();
                self.targets.extend_from_slice(y);
                softmax_cross_entropy(&mut self.probs, y, c, &mut self.nll)
            }
            None => {
                // Softmax without a loss: any target works, the NLL is discarded.
                self.targets.clear();
                self.targets.resize(b, 0);
                softmax_cross_entropy(&mut self.probs, &self.targets, c, &mut self.nll);
                0.0
            }
        }
    }

    /// Probabilities of the last forward, (B, C).
    pub fn probs(&self) -> &[T] {
        &self.probs
    }

    /// The pooled sentence vectors of the last forward, (B, D): exactly what the output layer
    /// read (dropout is the identity outside training), so features taken from here are the
    /// ones the predictions were made from.
    pub fn pooled(&self) -> &[T] {
        &self.pooled
    }

    /// Backpropagates `scale` × the summed loss of the last forward (which had labels).
    pub fn backward(&mut self, scale: f64) {
        let (l, b, c) = (self.steps, self.batch, self.config.classes);
        let d = self.pool.dim;
        softmax_cross_entropy_backward(&mut self.probs, &self.targets, c, scale);
        self.d_pooled.clear();
        self.d_pooled.resize(b * d, T::ZERO);
        self.out
            .backward(&self.pooled, &self.probs, Some(&mut self.d_pooled));
        self.pool_drop.backward(&mut self.d_pooled);
        self.d_h.clear();
        self.d_h.resize(l * b * d, T::ZERO);
        self.pool
            .backward(self.enc.output(), &self.d_pooled, &mut self.d_h);
        if self.config.freeze_emb {
            self.enc.backward(&self.x, &self.d_h, None);
        } else {
            self.d_x.clear();
            self.d_x.resize(self.x.len(), T::ZERO);
            self.enc.backward(&self.x, &self.d_h, Some(&mut self.d_x));
            self.emb_drop.backward(&mut self.d_x);
            let (e, din) = (self.config.emb, self.config.input_dim());
            if din == e {
                self.emb.backward(&self.ids, &self.d_x);
            } else {
                // d_emb (L, B, E) = the trained embedding's columns of d_x (L, B, E + Es + Kl);
                // the static and feature columns have nowhere to go (both are frozen).
                self.d_emb.clear();
                for row in self.d_x.chunks_exact(din) {
                    self.d_emb.extend_from_slice(&row[..e]);
                }
                self.emb.backward(&self.ids, &self.d_emb);
            }
        }
    }

    /// The parameters the optimizer updates (all but frozen embeddings), in a fixed order.
    pub fn trainable_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut v = Vec::new();
        if !self.config.freeze_emb {
            v.extend(self.emb.params_mut());
        }
        v.extend(self.enc.params_mut());
        v.extend(self.pool.params_mut());
        v.extend(self.out.params_mut());
        v
    }
}

/// Every parameter, the static channel last (saved and loaded with the rest; the optimizer
/// sees [`Classifier::trainable_mut`] instead).
impl<T: Gemm> ParamSet<T> for Classifier<T> {
    fn params(&self) -> Vec<&Param<T>> {
        let mut v = self.emb.params();
        v.extend(self.enc.params());
        v.extend(self.pool.params());
        v.extend(self.out.params());
        v.extend(self.static_emb.iter().flat_map(|s| s.params()));
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut v = self.emb.params_mut();
        v.extend(self.enc.params_mut());
        v.extend(self.pool.params_mut());
        v.extend(self.out.params_mut());
        v.extend(self.static_emb.iter_mut().flat_map(|s| s.params_mut()));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::eval::evaluate;
    use firth_nn::gradcheck::check_params;

    fn config(pooling: PoolKind, bidirectional: bool, cell: CellKind) -> ClassifierConfig {
        ClassifierConfig {
            cell,
            vocab: 7,
            emb: 3,
            hidden: 4,
            layers: 2,
            bidirectional,
            pooling,
            dropout: 0.0,
            classes: 3,
            init_range: 0.5,
            freeze_emb: false,
            char_lm_dim: 0,
            word_dropout: 0.0,
            static_channel: false,
        }
    }

    #[test]
    fn whole_model_gradients_match_finite_differences() {
        let sents: Vec<Vec<u32>> = vec![vec![1, 2, 3, 4], vec![5], vec![6, 2, 1]];
        let labels = [2u32, 0, 1];
        for (pooling, bi, cell) in [
            (PoolKind::Last, true, CellKind::Lstm),
            (PoolKind::Last, false, CellKind::Gru),
            (PoolKind::Mean, true, CellKind::Lstm),
            (PoolKind::Max, true, CellKind::RnnTanh),
            (PoolKind::Attention, true, CellKind::Lstm),
        ] {
            let mut rng = Rng::new(5);
            let mut m = Classifier::<f64>::new(config(pooling, bi, cell), &mut rng).unwrap();
            let refs: Vec<&[u32]> = sents.iter().map(|s| &s[..]).collect();
            let (err, at) = check_params(
                &mut m,
                |m| {
                    let mut r = Rng::new(1);
                    let l = m.forward(&refs, &[], Some(&labels), true, &mut r);
                    m.backward(1.0);
                    l
                },
                |m| m.forward(&refs, &[], Some(&labels), false, &mut Rng::new(1)),
                20,
            );
            assert!(err < 1e-5, "{pooling:?} bi={bi} {cell:?}: {err} at {at}");
        }
    }

    /// The same check with character-LM features (frozen inputs, random here) widening the
    /// encoder's input, with dropout on (the same mask in the analytic and the numeric pass):
    /// every element of every parameter is checked, so the input columns that read the
    /// features are covered. The features reach the loss, and padding reads none.
    #[test]
    fn whole_model_gradients_with_character_lm_features() {
        let sents: Vec<Vec<u32>> = vec![vec![1, 2, 3, 4], vec![5], vec![6, 2, 1]];
        let labels = [2u32, 0, 1];
        let kl = 3;
        let mut rng = Rng::new(9);
        let mut lm: Vec<Vec<f32>> = sents
            .iter()
            .map(|s| (0..s.len() * kl).map(|_| rng.uniform_f32() - 0.5).collect())
            .collect();
        for (pooling, bi, cell, dropout) in [
            (PoolKind::Max, true, CellKind::Lstm, 0.0),
            (PoolKind::Attention, true, CellKind::Gru, 0.3),
            (PoolKind::Last, false, CellKind::RnnTanh, 0.0),
        ] {
            let c = ClassifierConfig {
                char_lm_dim: kl,
                dropout,
                ..config(pooling, bi, cell)
            };
            let mut m = Classifier::<f64>::new(c, &mut Rng::new(5)).unwrap();
            let refs: Vec<&[u32]> = sents.iter().map(|s| &s[..]).collect();
            let feats: Vec<&[f32]> = lm.iter().map(|f| &f[..]).collect();
            let (err, at) = check_params(
                &mut m,
                |m| {
                    let l = m.forward(&refs, &feats, Some(&labels), true, &mut Rng::new(1));
                    m.backward(1.0);
                    l
                },
                |m| m.forward(&refs, &feats, Some(&labels), true, &mut Rng::new(1)),
                usize::MAX,
            );
            assert!(err < 1e-5, "{pooling:?} bi={bi} {cell:?}: {err} at {at}");
        }
        let mut m = Classifier::<f64>::new(
            ClassifierConfig {
                char_lm_dim: kl,
                ..config(PoolKind::Mean, true, CellKind::Lstm)
            },
            &mut Rng::new(5),
        )
        .unwrap();
        let refs: Vec<&[u32]> = sents.iter().map(|s| &s[..]).collect();
        let loss = |m: &mut Classifier<f64>, lm: &[Vec<f32>]| {
            let feats: Vec<&[f32]> = lm.iter().map(|f| &f[..]).collect();
            m.forward(&refs, &feats, Some(&labels), false, &mut Rng::new(0))
        };
        let before = loss(&mut m, &lm);
        lm[1][2] += 1.0;
        assert_ne!(loss(&mut m, &lm), before);
        // Row t·B + j of x is [E[ids] ; F_j[t]]: sentence 1 (one word) reads its features at
        // t = 0 and zeros in its padded rows.
        let (x, din) = (&m.x, 3 + kl);
        let want: Vec<f64> = lm[1].iter().map(|&v| v as f64).collect();
        assert_eq!(&x[din + 3..2 * din], &want[..]);
        for t in 1..4 {
            let r = t * 3 + 1;
            assert!(x[r * din + 3..(r + 1) * din].iter().all(|&v| v == 0.0));
        }
    }

    /// The trained parameters of a classifier, as the optimizer sees them: the gradient check
    /// of a model with a static channel compares these (the static table is frozen, so its
    /// analytic gradient is zero by design).
    struct Trainable(Classifier<f64>);

    impl ParamSet<f64> for Trainable {
        fn params(&self) -> Vec<&Param<f64>> {
            // All but the static table, which ParamSet lists last: trainable_mut's order.
            let mut v = self.0.params();
            v.pop();
            v
        }
        fn params_mut(&mut self) -> Vec<&mut Param<f64>> {
            self.0.trainable_mut()
        }
    }

    /// With the static channel (`--multichannel`) the encoder reads [E[id] ; S[id]]: every
    /// trained parameter's gradient matches finite differences (with character-LM features
    /// too, and dropout on), S gets no gradient, the loss depends on S, and S is among the
    /// saved parameters but not the trained ones.
    #[test]
    fn static_channel_gradients_and_frozen_copy() {
        let sents: Vec<Vec<u32>> = vec![vec![1, 2, 3, 4], vec![5], vec![6, 2, 1]];
        let labels = [2u32, 0, 1];
        let refs: Vec<&[u32]> = sents.iter().map(|s| &s[..]).collect();
        let kl = 2;
        let mut rng = Rng::new(9);
        let lm: Vec<Vec<f32>> = sents
            .iter()
            .map(|s| (0..s.len() * kl).map(|_| rng.uniform_f32() - 0.5).collect())
            .collect();
        let feats: Vec<&[f32]> = lm.iter().map(|f| &f[..]).collect();
        for (kl, dropout, feats) in [(0, 0.0, &[][..]), (kl, 0.3, &feats[..])] {
            let c = ClassifierConfig {
                static_channel: true,
                char_lm_dim: kl,
                dropout,
                ..config(PoolKind::Max, true, CellKind::Lstm)
            };
            assert_eq!(c.input_dim(), 3 + 3 + kl);
            let m = Classifier::<f64>::new(c, &mut Rng::new(5)).unwrap();
            let mut t = Trainable(m);
            let (err, at) = check_params(
                &mut t,
                |t| {
                    let l =
                        t.0.forward(&refs, feats, Some(&labels), true, &mut Rng::new(1));
                    t.0.backward(1.0);
                    l
                },
                |t| {
                    t.0.forward(&refs, feats, Some(&labels), true, &mut Rng::new(1))
                },
                usize::MAX,
            );
            assert!(err < 1e-5, "kl={kl}: {err} at {at}");
            let m = &mut t.0;
            let s = m.static_emb.as_ref().unwrap();
            assert!(s.weight.grad.iter().all(|&g| g == 0.0));
            let names: Vec<String> = m.params().iter().map(|p| p.name.clone()).collect();
            assert_eq!(names.last().unwrap(), "emb_static.weight");
            assert_eq!(m.trainable_mut().len(), names.len() - 1);
            let before = m.forward(&refs, feats, Some(&labels), false, &mut Rng::new(0));
            m.static_emb.as_mut().unwrap().weight.value[2 * 3 + 1] += 0.5;
            let after = m.forward(&refs, feats, Some(&labels), false, &mut Rng::new(0));
            assert_ne!(before, after, "the static channel reaches the loss");
        }
        // Without the channel, nothing is drawn for it: the weights are those of a model
        // built before the field existed.
        let plain = Classifier::<f64>::new(
            config(PoolKind::Max, true, CellKind::Lstm),
            &mut Rng::new(5),
        )
        .unwrap();
        let with = Classifier::<f64>::new(
            ClassifierConfig {
                static_channel: true,
                ..config(PoolKind::Max, true, CellKind::Lstm)
            },
            &mut Rng::new(5),
        )
        .unwrap();
        assert!(plain.static_emb.is_none());
        assert_eq!(plain.emb.weight.value, with.emb.weight.value);
        let bad = ClassifierConfig {
            static_channel: true,
            freeze_emb: true,
            ..config(PoolKind::Max, true, CellKind::Lstm)
        };
        assert!(bad.validate().is_err());
    }

    /// A config saved before `char_lm_dim`, `word_dropout` and `static_channel` existed (an
    /// older model's) still reads, as a model without them.
    #[test]
    fn a_config_without_the_later_fields_reads_with_them_off() {
        let c = config(PoolKind::Max, true, CellKind::Lstm);
        let mut j = serde_json::to_value(&c).unwrap();
        for field in ["char_lm_dim", "word_dropout", "static_channel"] {
            j.as_object_mut().unwrap().remove(field).unwrap();
        }
        let back: ClassifierConfig = serde_json::from_value(j).unwrap();
        assert_eq!(back, c);
    }

    /// Word dropout replaces tokens by `<unk>` (id 0) in training only, at about its rate, and
    /// the `<unk>` row then receives the dropped tokens' gradient.
    #[test]
    fn word_dropout_reads_unk_in_training_only() {
        let c = ClassifierConfig {
            word_dropout: 0.3,
            ..config(PoolKind::Mean, true, CellKind::Lstm)
        };
        let mut m = Classifier::<f32>::new(c, &mut Rng::new(2)).unwrap();
        let sents: Vec<Vec<u32>> = (0..50)
            .map(|i| (0..40).map(|t| 1 + (i + t) % 6).collect())
            .collect();
        let refs: Vec<&[u32]> = sents.iter().map(|s| &s[..]).collect();
        let labels: Vec<u32> = (0..50).map(|i| i % 3).collect();
        let mut rng = Rng::new(9);
        m.forward(&refs, &[], Some(&labels), true, &mut rng);
        let dropped = m.ids.iter().filter(|&&id| id == 0).count() as f64 / m.ids.len() as f64;
        assert!((dropped - 0.3).abs() < 0.03, "{dropped}");
        m.backward(1.0);
        assert!(
            m.emb.weight.grad[..3].iter().any(|&g| g != 0.0),
            "<unk> row trained"
        );
        m.forward(&refs, &[], None, false, &mut rng);
        assert!(
            m.ids.iter().all(|&id| id != 0),
            "no dropout outside training"
        );
        let bad = ClassifierConfig {
            word_dropout: 1.0,
            ..config(PoolKind::Mean, true, CellKind::Lstm)
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn frozen_embeddings_get_no_gradient_and_are_not_trained() {
        let mut c = config(PoolKind::Mean, true, CellKind::Lstm);
        c.freeze_emb = true;
        let mut m = Classifier::<f64>::new(c, &mut Rng::new(2)).unwrap();
        let s: Vec<&[u32]> = vec![&[1, 2], &[3]];
        m.forward(&s, &[], Some(&[0, 1]), true, &mut Rng::new(0));
        m.backward(1.0);
        assert!(m.emb.weight.grad.iter().all(|&g| g == 0.0));
        let n_all = m.params().len();
        assert_eq!(m.trainable_mut().len(), n_all - 1);
    }

    #[test]
    fn the_output_layer_on_the_sentence_vectors_gives_the_probabilities() {
        let s = vec![vec![1u32, 2, 3, 4, 5, 6], vec![2u32], vec![6, 5, 1]];
        for pooling in [
            PoolKind::Last,
            PoolKind::Mean,
            PoolKind::Max,
            PoolKind::Attention,
        ] {
            let mut m =
                Classifier::<f32>::new(config(pooling, true, CellKind::Lstm), &mut Rng::new(6))
                    .unwrap();
            let d = m.pool.dim;
            assert_eq!(d, 8, "two directions of 4 units");
            let v = sentence_vectors(&mut m, &s, &[], 2);
            assert_eq!(v.len(), s.len() * d);
            let probs = evaluate(&mut m, &s, &[], None, 3).probs;
            let (w, b) = (&m.out.weight.value, &m.out.bias.as_ref().unwrap().value);
            for (i, row) in v.chunks_exact(d).enumerate() {
                // softmax(W v + b), by hand in f64.
                let z: Vec<f64> = (0..3)
                    .map(|c| {
                        b[c] as f64
                            + (0..d)
                                .map(|k| w[c * d + k] as f64 * row[k] as f64)
                                .sum::<f64>()
                    })
                    .collect();
                let top = z.iter().cloned().fold(f64::MIN, f64::max);
                let sum: f64 = z.iter().map(|x| (x - top).exp()).sum();
                for c in 0..3 {
                    let p = (z[c] - top).exp() / sum;
                    assert!((p - probs[i * 3 + c] as f64).abs() < 1e-6, "{pooling:?}");
                }
            }
            // A sentence's vector does not depend on its batch companions.
            let alone = sentence_vectors(&mut m, &s[1..2], &[], 1);
            for (x, y) in alone.iter().zip(&v[d..2 * d]) {
                assert!((x - y).abs() < 1e-6, "{pooling:?}");
            }
        }
    }

    #[test]
    fn predictions_do_not_depend_on_batch_companions() {
        let mut m = Classifier::<f32>::new(
            config(PoolKind::Last, true, CellKind::Lstm),
            &mut Rng::new(3),
        )
        .unwrap();
        let a = vec![vec![1u32, 2, 3, 4, 5, 6], vec![2u32]];
        let alone = evaluate(&mut m, &a[1..], &[], None, 8).probs;
        let together = evaluate(&mut m, &a, &[], None, 8).probs;
        for (x, y) in alone.iter().zip(&together[3..]) {
            assert!((x - y).abs() < 1e-6);
        }
    }

    #[test]
    fn accuracy_is_hand_countable() {
        // A model whose output layer is zero except its bias predicts the bias's argmax for
        // every sentence: labels [1, 1, 0, 2] -> 2 of 4 correct with bias favouring class 1.
        let mut m = Classifier::<f32>::new(
            config(PoolKind::Max, false, CellKind::Lstm),
            &mut Rng::new(4),
        )
        .unwrap();
        m.out.weight.value.fill(0.0);
        m.out.bias.as_mut().unwrap().value = vec![0.0, 1.0, 0.0];
        let s = vec![vec![1u32], vec![2, 3], vec![4], vec![5, 6, 1]];
        let sc = evaluate(&mut m, &s, &[], Some(&[1, 1, 0, 2]), 3);
        assert_eq!(sc.predictions, vec![1, 1, 1, 1]);
        assert!((sc.accuracy - 50.0).abs() < 1e-9);
        // loss = -log softmax((0,1,0))_y averaged: two of log(e/(2+e)), two of log(1/(2+e)).
        let e = std::f64::consts::E;
        let want = (2.0 * -(e / (2.0 + e)).ln() + 2.0 * -(1.0 / (2.0 + e)).ln()) / 4.0;
        assert!((sc.loss - want).abs() < 1e-5, "{} vs {want}", sc.loss);
    }
}
