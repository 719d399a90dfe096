//! Sentence classification: embedding → [`SeqEncoder`] → [`Pooling`] → linear → softmax.
//!
//! For a batch of B sentences padded to L tokens (time-major, padding after each end):
//!
//! ```text
//! ids (L, B) → x = dropout(E[ids]) (L, B, E) → h = encoder(x) (L, B, D)
//!   → s = dropout(pool(h, lengths)) (B, D) → z = s·Wᵀ + b (B, C) → L = mean_b −log softmax(z)_y
//! ```
//!
//! Backward runs the same chain in reverse: dz = (softmax(z) − onehot(y)) / B (fused in
//! [`softmax_cross_entropy_backward`]), ds = dz·W, dh from the pooling layer (only valid
//! positions receive gradient), dx from the encoder, and the embedding rows of the sentence's
//! words get dx (unless the embeddings are frozen, when that last step is skipped).
//!
//! Training ([`train`]) uses the language models' machinery: the same optimizers and clipping,
//! one checkpoint file written atomically at every epoch's end (weights, optimizer moments,
//! random generator, history), `metrics.csv`, a stop with a clear message when the loss turns
//! NaN, and early stopping on the development set: `model.safetensors` always holds the
//! epoch with the best development accuracy, and the test set is scored with it.

use crate::encoder::{EncoderConfig, SeqEncoder};
use crate::train::{Observer, StepReport};
use anyhow::{bail, Context, Result};
use firth_nn::checkpoint::{write_atomic, Tensors};
use firth_nn::dropout::{Dropout, DropoutKind};
use firth_nn::embedding::Embedding;
use firth_nn::linear::Linear;
use firth_nn::optim::{clip_grad_norm, OptimKind, Optimizer};
use firth_nn::pooling::{PoolKind, Pooling};
use firth_nn::softmax::{softmax_cross_entropy, softmax_cross_entropy_backward};
use firth_nn::{CellKind, Param, ParamSet, Real, Rng};
use firth_text::Vocab;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const MODEL: &str = "model.safetensors";
const CKPT_KIND: &str = "classifier-checkpoint-v1";
const MODEL_KIND: &str = "classifier-model-v1";

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
        Ok(())
    }
}

/// The model with the activations of its last forward pass.
pub struct Classifier<T> {
    pub config: ClassifierConfig,
    pub emb: Embedding<T>,
    pub enc: SeqEncoder<T>,
    pub pool: Pooling<T>,
    pub out: Linear<T>,
    emb_drop: Dropout<T>,
    pool_drop: Dropout<T>,
    steps: usize,
    batch: usize,
    lengths: Vec<usize>,
    ids: Vec<u32>,     // (L, B), padding id 0
    targets: Vec<u32>, // (B)
    x: Vec<T>,         // (L, B, E) after dropout
    pooled: Vec<T>,    // (B, D) after dropout
    probs: Vec<T>,     // (B, C) logits, then probabilities
    nll: Vec<f64>,     // (B)
    d_pooled: Vec<T>,  // (B, D)
    d_h: Vec<T>,       // (L, B, D)
    d_x: Vec<T>,       // (L, B, E)
}

impl<T: Real> Classifier<T> {
    pub fn new(config: ClassifierConfig, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
        let c = &config;
        let r = c.init_range;
        let emb = Embedding::new("emb", c.vocab, c.emb, r, rng);
        let enc = SeqEncoder::new(
            &EncoderConfig {
                cell: c.cell,
                input: c.emb,
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
        Ok(Classifier {
            emb_drop: Dropout::new(c.dropout, DropoutKind::Standard),
            pool_drop: Dropout::new(c.dropout, DropoutKind::Standard),
            config,
            emb,
            enc,
            pool,
            out,
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
        })
    }

    /// Forward over `sents` (token ids, each non-empty). With `labels`, returns the summed
    /// cross-entropy; without, 0. Probabilities are left in [`Self::probs`] either way.
    pub fn forward(
        &mut self,
        sents: &[&[u32]],
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
        self.steps = l;
        self.batch = b;
        self.lengths.clear();
        self.lengths.extend(sents.iter().map(|s| s.len()));
        self.ids.clear();
        self.ids.resize(l * b, 0);
        for (j, s) in sents.iter().enumerate() {
            for (t, &id) in s.iter().enumerate() {
                self.ids[t * b + j] = id;
            }
        }
        self.x.resize(l * b * e, T::ZERO);
        self.emb.forward(&self.ids, &mut self.x);
        self.emb_drop.forward(&mut self.x, b * e, train, rng);
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
            self.emb.backward(&self.ids, &self.d_x);
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

impl<T: Real> ParamSet<T> for Classifier<T> {
    fn params(&self) -> Vec<&Param<T>> {
        let mut v = self.emb.params();
        v.extend(self.enc.params());
        v.extend(self.pool.params());
        v.extend(self.out.params());
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut v = self.emb.params_mut();
        v.extend(self.enc.params_mut());
        v.extend(self.pool.params_mut());
        v.extend(self.out.params_mut());
        v
    }
}

/// A labelled data set as ids.
#[derive(Clone, Debug, Default)]
pub struct Encoded {
    pub sents: Vec<Vec<u32>>,
    pub labels: Vec<u32>,
}

/// Ids of `tokens`, with unknown words mapped to `<unk>` (id 0).
pub fn encode_tokens(vocab: &Vocab, tokens: &[String]) -> Vec<u32> {
    tokens.iter().map(|t| vocab.get(t).unwrap_or(0)).collect()
}

/// Loss, accuracy and predictions of `model` on `data`.
#[derive(Clone, Debug)]
pub struct Scores {
    pub loss: f64,
    pub accuracy: f64,
    pub predictions: Vec<u32>,
    /// (N, C)
    pub probs: Vec<f32>,
}

/// Scores `sents` (with `labels`, or predictions only) in batches of `batch`.
pub fn evaluate(
    model: &mut Classifier<f32>,
    sents: &[Vec<u32>],
    labels: Option<&[u32]>,
    batch: usize,
) -> Scores {
    let batch = batch.max(1);
    let mut rng = Rng::new(0);
    let c = model.config.classes;
    let mut loss = 0.0;
    let mut correct = 0usize;
    let mut predictions = Vec::with_capacity(sents.len());
    let mut probs = Vec::with_capacity(sents.len() * c);
    for (k, chunk) in sents.chunks(batch).enumerate() {
        let refs: Vec<&[u32]> = chunk.iter().map(|s| &s[..]).collect();
        let y = labels.map(|l| &l[k * batch..k * batch + chunk.len()]);
        loss += model.forward(&refs, y, false, &mut rng);
        for (j, row) in model.probs().chunks_exact(c).enumerate() {
            let best = argmax(row);
            if y.is_some_and(|y| y[j] == best) {
                correct += 1;
            }
            predictions.push(best);
            probs.extend_from_slice(row);
        }
    }
    let n = sents.len().max(1) as f64;
    Scores {
        loss: loss / n,
        accuracy: 100.0 * correct as f64 / n,
        predictions,
        probs,
    }
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifyTrainConfig {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub optim: OptimKind,
    pub weight_decay: f64,
    /// Global-norm clipping (0 = off).
    pub clip: f64,
    /// lr is multiplied by this after every epoch.
    pub lr_decay: f64,
    /// Stop after this many epochs without a better development accuracy (0 = never).
    pub patience: usize,
    pub seed: u64,
}

/// One finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifyEpoch {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub dev_loss: f64,
    pub dev_accuracy: f64,
    pub examples_per_second: f64,
    pub seconds: f64,
}

/// Where training stands; saved at each epoch's end and restored on resume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifyProgress {
    /// Epochs completed.
    pub epoch: usize,
    pub global_step: u64,
    pub rng: [u64; 4],
    pub best_dev: Option<f64>,
    pub best_epoch: usize,
    pub epochs_without_gain: usize,
    pub train_seconds: f64,
    pub train_examples: u64,
    pub history: Vec<ClassifyEpoch>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClassifySummary {
    pub epochs_completed: usize,
    pub best_epoch: usize,
    pub steps: u64,
    pub parameters: usize,
    pub train_examples: usize,
    pub train_examples_per_second: f64,
    pub dev_accuracy: f64,
    pub dev_loss: f64,
    pub test_accuracy: Option<f64>,
    pub test_loss: Option<f64>,
    pub test_examples: Option<usize>,
    pub wall_seconds: f64,
    pub stopped_early: bool,
}

/// Everything a classifier needs besides its weights: config, labels, vocabulary.
pub struct Bundle {
    pub model: Classifier<f32>,
    pub labels: Vec<String>,
    pub vocab: Vocab,
}

impl Bundle {
    fn to_tensors(&self, kind: &str) -> Result<Tensors> {
        let mut t = Tensors::default();
        t.insert_params("model.", &self.model.params());
        t.metadata.insert("firth".into(), kind.into());
        t.metadata
            .insert("config".into(), serde_json::to_string(&self.model.config)?);
        t.metadata
            .insert("labels".into(), serde_json::to_string(&self.labels)?);
        t.metadata
            .insert("vocab".into(), serde_json::to_string(&self.vocab)?);
        Ok(t)
    }

    fn from_tensors(t: &Tensors, file: &Path) -> Result<Bundle> {
        let kind = t.meta("firth", file)?;
        if kind != MODEL_KIND && kind != CKPT_KIND {
            bail!("{} holds a {kind}, not a firth classifier", file.display());
        }
        let config: ClassifierConfig = serde_json::from_str(t.meta("config", file)?)
            .with_context(|| format!("{}: bad classifier config", file.display()))?;
        let labels: Vec<String> = serde_json::from_str(t.meta("labels", file)?)
            .with_context(|| format!("{}: bad label list", file.display()))?;
        let mut vocab: Vocab = serde_json::from_str(t.meta("vocab", file)?)
            .with_context(|| format!("{}: bad vocabulary", file.display()))?;
        vocab.reindex();
        if vocab.len() != config.vocab || labels.len() != config.classes {
            bail!(
                "{}: vocabulary ({}) or labels ({}) do not match the config ({}, {})",
                file.display(),
                vocab.len(),
                labels.len(),
                config.vocab,
                config.classes
            );
        }
        let mut model = Classifier::new(config, &mut Rng::new(0))?;
        t.load_params("model.", &mut model.params_mut(), file)?;
        Ok(Bundle {
            model,
            labels,
            vocab,
        })
    }

    /// Loads `DIR/model.safetensors` (or a given classifier file).
    pub fn load(path: &Path) -> Result<Bundle> {
        let file = if path.is_dir() {
            path.join(MODEL)
        } else {
            path.to_path_buf()
        };
        let t = Tensors::load(&file)?;
        Self::from_tensors(&t, &file)
    }

    /// Label ids of `labels` in this model's label set; unknown labels are an error naming them.
    pub fn label_ids(&self, labels: &[String], what: &Path) -> Result<Vec<u32>> {
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                self.labels
                    .iter()
                    .position(|m| m == l)
                    .map(|p| p as u32)
                    .with_context(|| {
                        format!(
                            "{}: example {} has the label {l:?}, which the model does not know (its labels: {}); \
                             evaluate on data with the same label set (binary SST and pos/neg use positive/negative)",
                            what.display(),
                            i + 1,
                            self.labels.join(", ")
                        )
                    })
            })
            .collect()
    }
}

/// A training run: model bundle, optimizer, data, output directory.
pub struct ClassifyTrainer {
    pub bundle: Bundle,
    pub optimizer: Optimizer<f32>,
    pub config: ClassifyTrainConfig,
    pub progress: ClassifyProgress,
    pub train: Encoded,
    pub dev: Encoded,
    pub test: Option<Encoded>,
    pub out_dir: PathBuf,
}

impl ClassifyTrainer {
    /// A fresh run; `init_emb` may overwrite embedding rows (pretrained vectors).
    pub fn new(
        bundle: Bundle,
        config: ClassifyTrainConfig,
        train: Encoded,
        dev: Encoded,
        test: Option<Encoded>,
        out_dir: &Path,
        rng: Rng,
    ) -> ClassifyTrainer {
        ClassifyTrainer {
            optimizer: Optimizer::new(config.optim, config.weight_decay),
            progress: ClassifyProgress {
                epoch: 0,
                global_step: 0,
                rng: rng.state(),
                best_dev: None,
                best_epoch: 0,
                epochs_without_gain: 0,
                train_seconds: 0.0,
                train_examples: 0,
                history: Vec::new(),
            },
            bundle,
            config,
            train,
            dev,
            test,
            out_dir: out_dir.to_path_buf(),
        }
    }

    /// Continues the run in `out_dir`: the model settings, labels and vocabulary must equal the
    /// saved ones, and the training settings too except `epochs`.
    pub fn resume(&mut self) -> Result<()> {
        let path = self.out_dir.join(CHECKPOINT);
        let t = Tensors::load(&path)?;
        if t.meta("firth", &path)? != CKPT_KIND {
            bail!("{} is not a firth classifier checkpoint", path.display());
        }
        let saved = Bundle::from_tensors(&t, &path)?;
        if saved.labels != self.bundle.labels {
            bail!(
                "{}: the checkpoint's label set [{}] differs from the training data's [{}]; resume with the same --train data and --format",
                path.display(),
                saved.labels.join(", "),
                self.bundle.labels.join(", ")
            );
        }
        if saved.vocab != self.bundle.vocab {
            bail!("{}: the vocabulary differs from the checkpoint's; resume with the same --train/--dev/--test files and --embeddings", path.display());
        }
        if saved.model.config != self.bundle.model.config {
            bail!(
                "{}: the checkpoint's model settings differ from this run's:\n  saved: {}\n  asked: {}\nrerun with the saved settings, or without --resume to start over",
                path.display(),
                serde_json::to_string(&saved.model.config)?,
                serde_json::to_string(&self.bundle.model.config)?
            );
        }
        let saved_train: ClassifyTrainConfig = serde_json::from_str(t.meta("train", &path)?)?;
        crate::train::check_resume_settings(
            &path,
            &saved_train,
            &ClassifyTrainConfig {
                epochs: self.config.epochs,
                ..saved_train.clone()
            },
            &self.config,
        )?;
        self.bundle = saved;
        self.progress = serde_json::from_str(t.meta("progress", &path)?)?;
        let lens: Vec<usize> = self
            .bundle
            .model
            .trainable_mut()
            .iter()
            .map(|p| p.len())
            .collect();
        t.load_optimizer(&mut self.optimizer, &lens, &path)?;
        Ok(())
    }

    fn save_checkpoint(&self) -> Result<()> {
        let mut t = self.bundle.to_tensors(CKPT_KIND)?;
        t.metadata
            .insert("train".into(), serde_json::to_string(&self.config)?);
        t.metadata
            .insert("progress".into(), serde_json::to_string(&self.progress)?);
        t.insert_optimizer(&self.optimizer);
        t.save(&self.out_dir.join(CHECKPOINT))
    }

    fn save_model(&self) -> Result<()> {
        self.bundle
            .to_tensors(MODEL_KIND)?
            .save(&self.out_dir.join(MODEL))
    }

    fn write_metrics(&self) -> Result<()> {
        let mut csv = String::from(
            "epoch,lr,train_loss,train_accuracy,dev_loss,dev_accuracy,examples_per_second,seconds\n",
        );
        for r in &self.progress.history {
            csv.push_str(&format!(
                "{},{:.6e},{:.6},{:.3},{:.6},{:.3},{:.1},{:.2}\n",
                r.epoch,
                r.lr,
                r.train_loss,
                r.train_accuracy,
                r.dev_loss,
                r.dev_accuracy,
                r.examples_per_second,
                r.seconds
            ));
        }
        write_atomic(&self.out_dir.join("metrics.csv"), csv.as_bytes())
    }

    /// Batches of one epoch: shuffled, then grouped so each batch holds sentences of similar
    /// length (shuffle, sort windows of 50 batches by length, cut, shuffle the batches), which
    /// keeps padding, and so wasted work, small.
    fn epoch_batches(&self, rng: &mut Rng) -> Vec<Vec<usize>> {
        let n = self.train.sents.len();
        let bs = self.config.batch.max(1);
        let mut order: Vec<usize> = (0..n).collect();
        shuffle(&mut order, rng);
        let mut batches = Vec::with_capacity(n.div_ceil(bs));
        for window in order.chunks_mut(bs * 50) {
            window.sort_by_key(|&i| self.train.sents[i].len());
            batches.extend(window.chunks(bs).map(|c| c.to_vec()));
        }
        shuffle(&mut batches, rng);
        batches
    }

    /// Trains until `epochs`, early stopping, or `max_seconds`; then scores dev and test with
    /// the best model.
    pub fn run(
        &mut self,
        max_seconds: Option<f64>,
        obs: &mut dyn Observer,
    ) -> Result<ClassifySummary> {
        let wall = Instant::now();
        std::fs::create_dir_all(&self.out_dir)
            .with_context(|| format!("cannot create {}", self.out_dir.display()))?;
        let cfg = self.config.clone();
        let eval_batch = 128;
        let mut stopped_early = false;
        let mut rng = Rng::from_state(self.progress.rng);
        'epochs: while self.progress.epoch < cfg.epochs {
            if cfg.patience > 0 && self.progress.epochs_without_gain >= cfg.patience {
                obs.note(&format!(
                    "early stop: no better development accuracy for {} epochs (best {:.2}% at epoch {})",
                    cfg.patience,
                    self.progress.best_dev.unwrap_or(0.0),
                    self.progress.best_epoch
                ));
                break;
            }
            let epoch = self.progress.epoch + 1;
            let lr = cfg.lr * cfg.lr_decay.powi(self.progress.epoch as i32);
            let batches = self.epoch_batches(&mut rng);
            obs.epoch_start(epoch, cfg.epochs, batches.len(), 0);
            let clock = Instant::now();
            let (mut loss_sum, mut correct, mut seen, mut tokens) = (0.0, 0usize, 0usize, 0usize);
            for (k, idx) in batches.iter().enumerate() {
                if max_seconds.is_some_and(|s| wall.elapsed().as_secs_f64() >= s) {
                    stopped_early = true;
                    obs.note("time limit reached; the last epoch's checkpoint is kept (--resume repeats the unfinished epoch)");
                    break 'epochs;
                }
                let sents: Vec<&[u32]> = idx.iter().map(|&i| &self.train.sents[i][..]).collect();
                let y: Vec<u32> = idx.iter().map(|&i| self.train.labels[i]).collect();
                let model = &mut self.bundle.model;
                model.zero_grad();
                let loss = model.forward(&sents, Some(&y), true, &mut rng);
                if !loss.is_finite() {
                    bail!(
                        "the training loss became {loss} at epoch {epoch}, batch {}; the last good checkpoint is {}. \
                         Rerun with a smaller --lr or a --clip, then --resume",
                        k + 1,
                        self.out_dir.join(CHECKPOINT).display()
                    );
                }
                let c = model.config.classes;
                for (row, &t) in model.probs().chunks_exact(c).zip(&y) {
                    // The probabilities here are the training forward's, with dropout.
                    if argmax(row) == t {
                        correct += 1;
                    }
                }
                model.backward(1.0 / idx.len() as f64);
                let mut params = model.trainable_mut();
                let norm = if cfg.clip > 0.0 {
                    clip_grad_norm(&mut params, cfg.clip)
                } else {
                    firth_nn::optim::grad_norm(&mut params)
                };
                if !norm.is_finite() {
                    bail!(
                        "the gradient norm became {norm} at epoch {epoch}, batch {}; the last good checkpoint is {}. \
                         Rerun with a smaller --lr or a --clip, then --resume",
                        k + 1,
                        self.out_dir.join(CHECKPOINT).display()
                    );
                }
                self.optimizer.step(&mut params, lr);
                loss_sum += loss;
                seen += idx.len();
                tokens += sents.iter().map(|s| s.len()).sum::<usize>();
                self.progress.global_step += 1;
                obs.step(&StepReport {
                    epoch,
                    step: k + 1,
                    steps: batches.len(),
                    loss: loss / idx.len() as f64,
                    lr,
                    tokens_per_second: tokens as f64 / clock.elapsed().as_secs_f64().max(1e-9),
                    grad_norm: norm,
                });
            }
            let seconds = clock.elapsed().as_secs_f64();
            let dev = evaluate(
                &mut self.bundle.model,
                &self.dev.sents,
                Some(&self.dev.labels),
                eval_batch,
            );
            let p = &mut self.progress;
            p.train_seconds += seconds;
            p.train_examples += seen as u64;
            let record = ClassifyEpoch {
                epoch,
                lr,
                train_loss: loss_sum / seen.max(1) as f64,
                train_accuracy: 100.0 * correct as f64 / seen.max(1) as f64,
                dev_loss: dev.loss,
                dev_accuracy: dev.accuracy,
                examples_per_second: seen as f64 / seconds.max(1e-9),
                seconds,
            };
            let better = p.best_dev.is_none_or(|b| dev.accuracy > b);
            if better {
                p.best_dev = Some(dev.accuracy);
                p.best_epoch = epoch;
                p.epochs_without_gain = 0;
            } else {
                p.epochs_without_gain += 1;
            }
            p.history.push(record.clone());
            p.epoch += 1;
            p.rng = rng.state();
            obs.note(&format!(
                "epoch {:>3}  lr {:.2e}  train loss {:.4} acc {:.2}%  dev loss {:.4} acc {:.2}%{}  {:.0} ex/s  {:.1}s",
                record.epoch,
                record.lr,
                record.train_loss,
                record.train_accuracy,
                record.dev_loss,
                record.dev_accuracy,
                if better { " (best)" } else { "" },
                record.examples_per_second,
                record.seconds
            ));
            if better {
                self.save_model()?;
            }
            self.save_checkpoint()?;
            self.write_metrics()?;
        }
        if self.progress.history.is_empty() {
            // Nothing finished (time limit in the first epoch): keep what we have.
            self.save_model()?;
        }
        // Score with the best epoch's weights.
        let best = Bundle::load(&self.out_dir.join(MODEL))?;
        let mut model = best.model;
        let dev = evaluate(
            &mut model,
            &self.dev.sents,
            Some(&self.dev.labels),
            eval_batch,
        );
        let test = self.test.as_ref().map(|t| {
            (
                evaluate(&mut model, &t.sents, Some(&t.labels), eval_batch),
                t.sents.len(),
            )
        });
        let p = &self.progress;
        Ok(ClassifySummary {
            epochs_completed: p.history.len(),
            best_epoch: p.best_epoch,
            steps: p.global_step,
            parameters: model.num_params(),
            train_examples: self.train.sents.len(),
            train_examples_per_second: p.train_examples as f64 / p.train_seconds.max(1e-9),
            dev_accuracy: dev.accuracy,
            dev_loss: dev.loss,
            test_accuracy: test.as_ref().map(|t| t.0.accuracy),
            test_loss: test.as_ref().map(|t| t.0.loss),
            test_examples: test.as_ref().map(|t| t.1),
            wall_seconds: wall.elapsed().as_secs_f64(),
            stopped_early,
        })
    }
}

/// Fisher-Yates.
fn shuffle<X>(v: &mut [X], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
                    let l = m.forward(&refs, Some(&labels), true, &mut r);
                    m.backward(1.0);
                    l
                },
                |m| m.forward(&refs, Some(&labels), false, &mut Rng::new(1)),
                20,
            );
            assert!(err < 1e-5, "{pooling:?} bi={bi} {cell:?}: {err} at {at}");
        }
    }

    #[test]
    fn frozen_embeddings_get_no_gradient_and_are_not_trained() {
        let mut c = config(PoolKind::Mean, true, CellKind::Lstm);
        c.freeze_emb = true;
        let mut m = Classifier::<f64>::new(c, &mut Rng::new(2)).unwrap();
        let s: Vec<&[u32]> = vec![&[1, 2], &[3]];
        m.forward(&s, Some(&[0, 1]), true, &mut Rng::new(0));
        m.backward(1.0);
        assert!(m.emb.weight.grad.iter().all(|&g| g == 0.0));
        let n_all = m.params().len();
        assert_eq!(m.trainable_mut().len(), n_all - 1);
    }

    #[test]
    fn predictions_do_not_depend_on_batch_companions() {
        let mut m = Classifier::<f32>::new(
            config(PoolKind::Last, true, CellKind::Lstm),
            &mut Rng::new(3),
        )
        .unwrap();
        let a = vec![vec![1u32, 2, 3, 4, 5, 6], vec![2u32]];
        let alone = evaluate(&mut m, &a[1..], None, 8).probs;
        let together = evaluate(&mut m, &a, None, 8).probs;
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
        let sc = evaluate(&mut m, &s, Some(&[1, 1, 0, 2]), 3);
        assert_eq!(sc.predictions, vec![1, 1, 1, 1]);
        assert!((sc.accuracy - 50.0).abs() < 1e-9);
        // loss = -log softmax((0,1,0))_y averaged: two of log(e/(2+e)), two of log(1/(2+e)).
        let e = std::f64::consts::E;
        let want = (2.0 * -(e / (2.0 + e)).ln() + 2.0 * -(1.0 / (2.0 + e)).ln()) / 4.0;
        assert!((sc.loss - want).abs() < 1e-5, "{} vs {want}", sc.loss);
    }
}
