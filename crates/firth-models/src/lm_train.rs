//! Training a language model by truncated backpropagation through time, as a [`Task`] of the
//! one training loop.
//!
//! Each step (teacher forcing: the input at t+1 is the true token, never a prediction) takes a
//! block of `bptt` steps in each of B columns, runs forward from the carried state, sums the
//! cross-entropy and backpropagates Σ_t mean_b loss (Zaremba et al.'s scaling, so `--lr` and
//! `--clip` mean what they meant there); the loop clips and updates; the final state is
//! carried into the next block without its history (the truncation). The carried state goes
//! into every checkpoint, so a killed run resumes exactly.

use crate::data::{Batched, Corpus};
use crate::lm::{LanguageModel, LmConfig, LmState};
use crate::trainer::{
    Evaluation, Keep, Limits, Observer, Schedule, StepOutcome, Task, TrainConfig, Trainer, MODEL,
};
use anyhow::{bail, Context, Result};
use firth_nn::checkpoint::Tensors;
use firth_nn::optim::OptimKind;
use firth_nn::param::{Param, ParamSet};
use firth_nn::Rng;
use firth_text::{Level, Vocab};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The language model's own training settings (the loop's are in [`TrainConfig`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LmSettings {
    /// Columns the training stream is cut into.
    pub batch: usize,
    /// Steps of backpropagation through time per block.
    pub bptt: usize,
    /// Columns for evaluation (1 reads the text as one stream, as published figures do).
    pub eval_batch: usize,
}

/// Mean negative log-likelihood (nats per token) and the token count of `ids` under `model`,
/// read in `batch` columns with blocks of `bptt` steps and the state carried throughout.
pub fn evaluate(
    model: &mut LanguageModel<f32>,
    ids: &[u32],
    batch: usize,
    bptt: usize,
    pad: u32,
) -> (f64, usize) {
    let batch = batch.max(1).min(ids.len().max(2) / 2);
    let data = Batched::new(ids, batch);
    let mut state = model.start_state(batch, pad);
    let mut rng = Rng::new(0);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut total = 0.0;
    for k in 0..data.segments(bptt.max(1)) {
        let steps = data.segment(k, bptt.max(1), &mut x, &mut y);
        total += model.forward(&x, &y, steps, batch, &mut state, false, &mut rng);
    }
    let n = data.predictions();
    (total / n.max(1) as f64, n)
}

/// A language model with its corpus, as the training loop's [`Task`].
pub struct LmTask {
    pub model: LanguageModel<f32>,
    pub corpus: Corpus,
    pub settings: LmSettings,
    data: Batched,
    state: LmState<f32>,
    pad: u32,
    x: Vec<u32>, // (T, B)
    y: Vec<u32>, // (T, B)
    /// Data-parallel workers besides `model` (empty with one thread), see [`LmTask::forward_backward`].
    replicas: Vec<LanguageModel<f32>>,
    /// Data-parallel scratch: all shards' top activations (T·B, width), rows shard by shard,
    /// the output step's buffers (scores (T·B, V) and the rest) and d top.
    top: Vec<f32>,
    dz: firth_nn::linear::by_vocab::Scratch<f32>,
    d_top: Vec<f32>,
}

fn pad_id(vocab: &Vocab, level: Level) -> u32 {
    match level {
        Level::Word => vocab.get(firth_text::EOS).unwrap_or(0),
        Level::Char => vocab.get("\n").unwrap_or(0),
    }
}

impl LmTask {
    /// A freshly initialised model (from `seed`) over `corpus`.
    pub fn new(
        model_config: LmConfig,
        settings: LmSettings,
        corpus: Corpus,
        seed: u64,
    ) -> Result<LmTask> {
        let model =
            LanguageModel::new(model_config, &mut Rng::new(seed)).map_err(anyhow::Error::msg)?;
        let pad = pad_id(&corpus.vocab, corpus.level);
        let state = model.start_state(settings.batch, pad);
        Ok(LmTask {
            data: Batched::new(&corpus.train, settings.batch),
            model,
            corpus,
            settings,
            state,
            pad,
            x: Vec::new(),
            y: Vec::new(),
            replicas: Vec::new(),
            top: Vec::new(),
            dz: Default::default(),
            d_top: Vec::new(),
        })
    }

    pub fn pad(&self) -> u32 {
        self.pad
    }

    /// Mean nats per token of `ids` under the model as it is now.
    pub fn evaluate_ids(&mut self, ids: &[u32]) -> f64 {
        let bptt = self.settings.bptt.max(35);
        evaluate(
            &mut self.model,
            ids,
            self.settings.eval_batch,
            bptt,
            self.pad,
        )
        .0
    }

    /// Sets up data-parallel training over `workers` threads: the model itself and
    /// `workers - 1` replicas of it (none for one worker: the model then trains on its own).
    fn make_replicas(&mut self, workers: usize) {
        self.replicas.clear();
        if workers < 2 {
            return;
        }
        for _ in 1..workers {
            let mut r = self.model.clone();
            r.zero_grad();
            self.replicas.push(r);
        }
    }

    /// Forward and backward over one (T, B) block, leaving the gradient of (1/B)·Σ loss in the
    /// model's parameters; returns Σ loss in nats and, when the output step measured it, the
    /// squared norm of the (untied) output weight's gradient.
    ///
    /// With K threads, the model and K - 1 replicas split the batch's columns, worker k taking
    /// [kB/K, (k+1)B/K), each on a thread of its own with every kernel single-threaded (no
    /// hand-overs inside a step) and a dropout stream drawn from `rng`; with one thread the
    /// model is the only worker and takes the whole batch, through the same steps:
    /// 1. each worker runs its body (embedding, recurrent stack) forward on its columns;
    /// 2. the model's output layer runs once over all N = T·B rows of the gathered top
    ///    activations, split across the threads by vocabulary blocks
    ///    ([`LanguageModel::output_step_by_vocab`]): each thread packs only its block of the
    ///    (V, H) weight, and every product has all N rows;
    /// 3. each worker runs its body backward from its rows of d top, and the replicas' body
    ///    gradients (touched embedding rows, recurrent weights) are added to the model's.
    ///
    /// So the big output layer is never copied, zeroed or summed per replica, and the model's
    /// own shard needs no copy at all. Results are reproducible for a given thread count, and
    /// equal to the one-thread run (and to [`LanguageModel::forward`] then
    /// [`LanguageModel::backward`]) up to the order of floating-point additions.
    fn forward_backward(&mut self, t: usize, rng: &mut Rng) -> (f64, Option<f64>) {
        let batch = self.settings.batch;
        let scale = 1.0 / batch as f64;
        use rayon::prelude::*;
        struct Shard {
            x: Vec<u32>, // (T, b)
            y: Vec<u32>, // (T, b)
            state: LmState<f32>,
            rng: Rng,
        }
        let workers = self.replicas.len() + 1;
        let columns = |ids: &[u32], cols: &std::ops::Range<usize>| -> Vec<u32> {
            (0..t)
                .flat_map(|s| {
                    ids[s * batch + cols.start..s * batch + cols.end]
                        .iter()
                        .copied()
                })
                .collect()
        };
        let mut shards: Vec<Shard> = (0..workers)
            .map(|k| {
                let cols = k * batch / workers..(k + 1) * batch / workers;
                Shard {
                    x: columns(&self.x, &cols),
                    y: columns(&self.y, &cols),
                    state: self.state.select(&cols.collect::<Vec<_>>()),
                    rng: Rng::new(rng.next_u64()),
                }
            })
            .collect();
        // 1. Bodies forward, one worker per thread.
        {
            let mut all: Vec<&mut LanguageModel<f32>> = std::iter::once(&mut self.model)
                .chain(self.replicas.iter_mut())
                .collect();
            all.par_iter_mut()
                .zip(shards.par_iter_mut())
                .for_each(|(m, s)| {
                    firth_nn::par::sequential(|| {
                        m.zero_grad_body();
                        let b_n = s.state.batch;
                        m.forward_body(&s.x, t, b_n, &mut s.state, true, &mut s.rng);
                    })
                });
        }
        self.state = LmState::concat(shards.iter().map(|s| &s.state));
        // 2. The output layer once over all rows (shard by shard), split by vocabulary.
        let mut top = std::mem::take(&mut self.top);
        top.clear();
        top.extend_from_slice(self.model.top());
        for r in &self.replicas {
            top.extend_from_slice(r.top());
        }
        let targets: Vec<u32> = shards.iter().flat_map(|s| s.y.iter().copied()).collect();
        let (mut dz, mut d_top) = (
            std::mem::take(&mut self.dz),
            std::mem::take(&mut self.d_top),
        );
        let out = self
            .model
            .output_step_by_vocab(&top, &targets, scale, &mut dz, &mut d_top, workers);
        if out.loss.is_finite() {
            // 3. Bodies backward from their rows of d top; replica gradients added.
            let mut offsets = vec![0, self.model.top().len()];
            for r in &self.replicas {
                offsets.push(offsets.last().unwrap() + r.top().len());
            }
            let d = &d_top;
            let mut all: Vec<&mut LanguageModel<f32>> = std::iter::once(&mut self.model)
                .chain(self.replicas.iter_mut())
                .collect();
            all.par_iter_mut().enumerate().for_each(|(k, m)| {
                firth_nn::par::sequential(|| m.backward_body(&d[offsets[k]..offsets[k + 1]]))
            });
            let mut total = self.model.body_params_mut();
            for r in &mut self.replicas {
                firth_nn::replicas::add_grads(&mut total, &mut r.body_params_mut());
            }
        }
        (self.top, self.dz, self.d_top) = (top, dz, d_top);
        (out.loss, out.dw_sq_norm)
    }

    /// Copies the model's freshly updated weights into the replicas. After a sparse SGD step
    /// only the embedding rows this step touched have moved, so only those are copied.
    fn sync_replicas(&mut self, touched_only: bool) {
        if self.replicas.is_empty() {
            return;
        }
        // Replicas run only bodies (the output layer runs on the model itself).
        let mut src = self.model.body_params_mut();
        for r in &mut self.replicas {
            firth_nn::replicas::copy_values(&mut r.body_params_mut(), &mut src, touched_only);
        }
    }
}

impl Task for LmTask {
    fn kind(&self) -> &'static str {
        "lm"
    }

    fn trainable(&mut self) -> Vec<&mut Param<f32>> {
        self.model.params_mut()
    }

    fn plan_epoch(&mut self, _rng: &mut Rng) -> usize {
        self.data.segments(self.settings.bptt)
    }

    fn begin_epoch(&mut self) {
        self.state = self.model.start_state(self.settings.batch, self.pad);
    }

    fn set_workers(&mut self, workers: usize) {
        self.make_replicas(workers.min(self.settings.batch));
    }

    fn train_step(&mut self, step: usize, rng: &mut Rng) -> StepOutcome {
        let (mut x, mut y) = (std::mem::take(&mut self.x), std::mem::take(&mut self.y));
        let t = self.data.segment(step, self.settings.bptt, &mut x, &mut y);
        (self.x, self.y) = (x, y);
        let (loss, dw_sq_norm) = self.forward_backward(t, rng);
        // The output weight is the second-last trainable parameter when untied.
        let out_w = self.model.params().len() - 2;
        let tokens = t * self.settings.batch;
        StepOutcome {
            loss,
            units: tokens,
            items: tokens,
            correct: None,
            measured_sq_norms: dw_sq_norm.map(|sq| (out_w, sq)).into_iter().collect(),
        }
    }

    fn after_update(&mut self, sparse_sgd: bool) {
        self.sync_replicas(sparse_sgd);
    }

    fn evaluate(&mut self) -> Evaluation {
        let valid = std::mem::take(&mut self.corpus.valid);
        let loss = self.evaluate_ids(&valid);
        self.corpus.valid = valid;
        Evaluation {
            loss: Some(loss),
            score: Some(-loss),
            ..Default::default()
        }
    }

    fn reports_perplexity(&self) -> bool {
        true
    }

    /// ln(100·V): a perplexity 100 times a uniform guess's.
    fn loss_bound(&self) -> Option<f64> {
        Some((100.0 * self.model.config.vocab.max(1) as f64).ln())
    }

    fn model_tensors(&self) -> Result<Tensors> {
        self.model.to_tensors(&self.corpus.vocab)
    }

    fn save_state(&self, t: &mut Tensors) -> Result<()> {
        t.metadata
            .insert("lm-settings".into(), serde_json::to_string(&self.settings)?);
        for (l, h) in self.state.h.iter().enumerate() {
            t.insert(&format!("state.h.{l}"), &[h.len()], h.clone());
        }
        for (l, c) in self.state.c.iter().enumerate() {
            t.insert(&format!("state.c.{l}"), &[c.len()], c.clone());
        }
        if !self.state.history.is_empty() {
            t.insert(
                "state.history",
                &[self.state.history.len()],
                self.state.history.iter().map(|&v| v as f32).collect(),
            );
        }
        Ok(())
    }

    fn restore(&mut self, t: &Tensors, path: &Path) -> Result<()> {
        let mut vocab: Vocab = serde_json::from_str(t.meta("vocab", path)?)
            .with_context(|| format!("{}: bad vocabulary", path.display()))?;
        vocab.reindex();
        if vocab != self.corpus.vocab {
            bail!("{}: the training file's vocabulary differs from the checkpoint's; resume with the same --train file", path.display());
        }
        let saved: LmConfig = serde_json::from_str(t.meta("config", path)?)
            .with_context(|| format!("{}: bad model config", path.display()))?;
        crate::trainer::check_model_settings(path, &saved, &self.model.config)?;
        let settings: LmSettings = serde_json::from_str(t.meta("lm-settings", path)?)
            .with_context(|| format!("{}: bad LM settings", path.display()))?;
        crate::trainer::check_resume_settings(path, &settings, &settings, &self.settings)?;
        self.model.load_from(t, path)?;
        for l in 0..self.state.h.len() {
            self.state.h[l].copy_from_slice(t.get(&format!("state.h.{l}"), path)?.1);
        }
        for l in 0..self.state.c.len() {
            self.state.c[l].copy_from_slice(t.get(&format!("state.c.{l}"), path)?.1);
        }
        if !self.state.history.is_empty() {
            let (_, hist) = t.get("state.history", path)?;
            self.state.history = hist.iter().map(|&v| v as u32).collect();
        }
        Ok(())
    }
}

/// The result of `firth lm train`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub epochs_completed: usize,
    pub steps: u64,
    pub parameters: usize,
    pub train_tokens: u64,
    pub train_tokens_per_second: f64,
    /// Matrix-product throughput of training, from [`LanguageModel::train_flops_per_token`].
    pub train_gflops_per_second: f64,
    pub train_perplexity: Option<f64>,
    pub valid_loss: f64,
    pub valid_perplexity: f64,
    pub valid_bits_per_char: Option<f64>,
    pub test_loss: Option<f64>,
    pub test_perplexity: Option<f64>,
    pub test_bits_per_char: Option<f64>,
    pub wall_seconds: f64,
    pub stopped_early: bool,
}

/// The loop settings of a language model (the model keeps its last weights).
pub fn loop_config(settings: &LmTrainConfig) -> TrainConfig {
    TrainConfig {
        epochs: settings.epochs,
        lr: settings.lr,
        schedule: Schedule::Step {
            decay: settings.lr_decay,
            start: settings.lr_decay_start,
        },
        plateau_decay: settings.plateau_decay,
        patience: 0,
        optim: settings.optim,
        weight_decay: settings.weight_decay,
        clip: settings.clip,
        clip_value: settings.clip_value,
        seed: settings.seed,
        checkpoint_every: settings.checkpoint_every,
        keep: Keep::Last,
        warmup_steps: 0,
        average: 0.0,
    }
}

/// Everything `firth lm train` is told, after presets are resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmTrainConfig {
    pub epochs: usize,
    pub bptt: usize,
    pub batch: usize,
    pub lr: f64,
    pub optim: OptimKind,
    pub weight_decay: f64,
    /// Global-norm clipping threshold; 0 turns it off.
    pub clip: f64,
    /// Clip each gradient element into ±this instead (0 = off).
    pub clip_value: f64,
    /// From epoch `lr_decay_start` (1-based) on, lr is multiplied by `lr_decay` each epoch.
    pub lr_decay: f64,
    pub lr_decay_start: usize,
    /// When validation perplexity fails to improve, multiply lr by this (1 = off).
    pub plateau_decay: f64,
    pub seed: u64,
    pub eval_batch: usize,
    pub checkpoint_every: usize,
}

impl LmTrainConfig {
    pub fn settings(&self) -> LmSettings {
        LmSettings {
            batch: self.batch,
            bptt: self.bptt,
            eval_batch: self.eval_batch,
        }
    }
}

/// Documented recipes (docs/lm.md).
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LmPreset {
    /// Zaremba et al. (2014) "small": 2x200 LSTM, no dropout, bptt 20, batch 20, SGD lr 1
    /// halved each epoch from epoch 5, clip 5, 13 epochs, init ±0.1.
    PtbSmall,
    /// Zaremba et al. "medium": 2x650 LSTM, dropout 0.5, bptt 35, batch 20, SGD lr 1 divided
    /// by 1.2 each epoch from epoch 7, clip 5, 39 epochs, init ±0.05.
    PtbMedium,
    /// Character LSTM for Tiny Shakespeare, tuned for 30 minutes on two cores.
    CharShakespeare,
}

/// Settings given explicitly; each overrides the preset's (or the default).
#[derive(Clone, Debug, Default)]
pub struct LmOptions {
    pub preset: Option<LmPreset>,
    pub arch: Option<crate::lm::Arch>,
    pub level: Option<Level>,
    pub layers: Option<usize>,
    pub hidden: Option<usize>,
    /// Default: the hidden size.
    pub emb: Option<usize>,
    pub bptt: Option<usize>,
    pub batch: Option<usize>,
    pub lr: Option<f64>,
    pub optim: Option<OptimKind>,
    pub weight_decay: Option<f64>,
    pub clip: Option<f64>,
    pub clip_value: Option<f64>,
    pub dropout: Option<f64>,
    pub dropout_kind: Option<firth_nn::dropout::DropoutKind>,
    pub epochs: Option<usize>,
    pub lr_decay: Option<f64>,
    pub lr_decay_start: Option<usize>,
    pub plateau_decay: Option<f64>,
    pub init_range: Option<f64>,
    pub forget_bias: Option<f64>,
    pub tied: bool,
    pub residual: bool,
    pub context: Option<usize>,
    pub rnn_sigmoid: bool,
    /// Read every line backwards (character models only): a backward LM for
    /// [`crate::char_features`].
    pub reverse: bool,
    pub eval_batch: Option<usize>,
    pub checkpoint_every: usize,
    pub seed: u64,
}

/// The preset's values with explicit options applied (the vocabulary size comes from the data).
pub fn resolve_lm(o: &LmOptions) -> Result<(LmConfig, LmTrainConfig)> {
    use crate::lm::Arch;
    struct P {
        level: Level,
        layers: usize,
        hidden: usize,
        emb: Option<usize>,
        bptt: usize,
        batch: usize,
        lr: f64,
        optim: OptimKind,
        clip: f64,
        dropout: f64,
        epochs: usize,
        lr_decay: f64,
        lr_decay_start: usize,
        init: f64,
    }
    let p = match o.preset {
        Some(LmPreset::PtbSmall) => P {
            level: Level::Word,
            layers: 2,
            hidden: 200,
            emb: None,
            bptt: 20,
            batch: 20,
            lr: 1.0,
            optim: OptimKind::Sgd,
            clip: 5.0,
            dropout: 0.0,
            epochs: 13,
            lr_decay: 0.5,
            lr_decay_start: 5,
            init: 0.1,
        },
        Some(LmPreset::PtbMedium) => P {
            level: Level::Word,
            layers: 2,
            hidden: 650,
            emb: None,
            bptt: 35,
            batch: 20,
            lr: 1.0,
            optim: OptimKind::Sgd,
            clip: 5.0,
            dropout: 0.5,
            epochs: 39,
            lr_decay: 1.0 / 1.2,
            lr_decay_start: 7,
            init: 0.05,
        },
        Some(LmPreset::CharShakespeare) => P {
            level: Level::Char,
            layers: 2,
            hidden: 512,
            emb: Some(64),
            bptt: 100,
            batch: 32,
            lr: 2e-3,
            optim: OptimKind::Adam,
            clip: 5.0,
            dropout: 0.2,
            epochs: 30,
            lr_decay: 0.95,
            lr_decay_start: 2,
            init: 0.08,
        },
        None => P {
            level: Level::Word,
            layers: 2,
            hidden: 200,
            emb: None,
            bptt: 35,
            batch: 20,
            lr: 1.0,
            optim: OptimKind::Sgd,
            clip: 5.0,
            dropout: 0.0,
            epochs: 10,
            lr_decay: 1.0,
            lr_decay_start: 0,
            init: 0.1,
        },
    };
    let P {
        level,
        layers,
        hidden,
        emb,
        bptt,
        batch,
        lr,
        optim,
        clip,
        dropout,
        epochs,
        lr_decay,
        lr_decay_start,
        init,
    } = p;
    let chosen_optim = o.optim.unwrap_or(optim);
    // A preset's lr belongs to its optimizer; another optimizer gets that one's usual lr.
    let lr = o.lr.unwrap_or(if chosen_optim == optim {
        lr
    } else if chosen_optim == OptimKind::Sgd {
        1.0
    } else {
        2e-3
    });
    let hidden = o.hidden.unwrap_or(hidden);
    let model = LmConfig {
        arch: o.arch.unwrap_or(Arch::Lstm),
        level: o.level.unwrap_or(level),
        vocab: 0,
        emb: o.emb.or(emb).unwrap_or(hidden),
        hidden,
        layers: o.layers.unwrap_or(layers),
        dropout: o.dropout.unwrap_or(dropout),
        dropout_kind: o
            .dropout_kind
            .unwrap_or(firth_nn::dropout::DropoutKind::Standard),
        tied: o.tied,
        residual: o.residual,
        context: o.context.unwrap_or(4),
        init_range: o.init_range.unwrap_or(init),
        forget_bias: o.forget_bias.unwrap_or(0.0),
        rnn_sigmoid: o.rnn_sigmoid,
        reverse: o.reverse,
    };
    let train = LmTrainConfig {
        epochs: o.epochs.unwrap_or(epochs),
        bptt: o.bptt.unwrap_or(bptt),
        batch: o.batch.unwrap_or(batch),
        lr,
        optim: chosen_optim,
        weight_decay: o.weight_decay.unwrap_or(0.0),
        clip: o.clip.unwrap_or(clip),
        clip_value: o.clip_value.unwrap_or(0.0),
        lr_decay: o.lr_decay.unwrap_or(lr_decay),
        lr_decay_start: o.lr_decay_start.unwrap_or(lr_decay_start),
        plateau_decay: o.plateau_decay.unwrap_or(1.0),
        seed: o.seed,
        eval_batch: o.eval_batch.unwrap_or(1),
        checkpoint_every: o.checkpoint_every,
    };
    if model.reverse && model.level != Level::Char {
        bail!("--reverse reads each line's characters backwards; add --level char");
    }
    // Sizes of 0 are refused by lm_trainer, which every run goes through.
    if !(train.lr > 0.0 && train.lr.is_finite()) {
        bail!("--lr must be a positive number");
    }
    Ok((model, train))
}

/// The files of a language-model run and where it writes.
#[derive(Clone, Debug)]
pub struct LmData {
    pub train: std::path::PathBuf,
    pub valid: Option<std::path::PathBuf>,
    pub test: Option<std::path::PathBuf>,
    /// Fraction of training lines held out when there is no `valid`.
    pub valid_fraction: f64,
    pub out: std::path::PathBuf,
    pub resume: bool,
    pub limits: Limits,
}

/// Trains a language model as `firth lm train` does: reads the corpus, builds the model from
/// the resolved options, trains through the one loop and scores validation and test text.
/// The model's description goes to `obs.note`.
pub fn train_lm(
    data: &LmData,
    options: &LmOptions,
    obs: &mut dyn Observer,
) -> Result<(Summary, Trainer<LmTask>)> {
    let (model, config) = resolve_lm(options)?;
    let corpus = Corpus::load(
        &data.train,
        data.valid.as_deref(),
        data.test.as_deref(),
        model.level,
        data.valid_fraction,
        model.reverse,
    )?;
    let model = LmConfig {
        vocab: corpus.vocab.len(),
        ..model
    };
    let mut trainer = lm_trainer(model, &config, corpus, &data.out, data.resume)?;
    let (m, c) = (&trainer.task.model, &trainer.task.corpus);
    obs.note(&format!(
        "{:?} LM, {} layer(s) x {} hidden, emb {}, vocabulary {}, {} parameters; {} training {}",
        m.config.arch,
        m.config.layers,
        m.config.hidden,
        m.config.emb,
        c.vocab.len(),
        m.num_params(),
        c.train.len(),
        if c.level == Level::Char {
            "characters"
        } else {
            "tokens"
        }
    ));
    let summary = run_lm(&mut trainer, data.limits, obs)?;
    firth_nn::checkpoint::write_atomic(
        &data.out.join("summary.json"),
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )?;
    Ok((summary, trainer))
}

/// Sets up a language-model run in `out_dir` (fresh, or resumed from its checkpoint).
pub fn lm_trainer(
    model_config: LmConfig,
    config: &LmTrainConfig,
    corpus: Corpus,
    out_dir: &Path,
    resume: bool,
) -> Result<Trainer<LmTask>> {
    if config.bptt == 0 || config.batch == 0 || config.epochs == 0 || config.eval_batch == 0 {
        bail!("--bptt, --batch, --eval-batch and --epochs must be at least 1");
    }
    model_config.validate().map_err(anyhow::Error::msg)?;
    let task = LmTask::new(model_config, config.settings(), corpus, config.seed)?;
    Trainer::start(task, loop_config(config), out_dir, resume)
}

/// Trains, then scores the validation and test text with the final weights.
pub fn run_lm(
    trainer: &mut Trainer<LmTask>,
    limits: Limits,
    obs: &mut dyn Observer,
) -> Result<Summary> {
    let run = trainer.run(limits, obs)?;
    let task = &mut trainer.task;
    let valid_loss = match trainer.progress.history.last() {
        Some(r) if !run.stopped_early => r.valid_loss.unwrap_or(f64::NAN),
        _ => {
            let valid = std::mem::take(&mut task.corpus.valid);
            let l = task.evaluate_ids(&valid);
            task.corpus.valid = valid;
            l
        }
    };
    let test_loss = task.corpus.test.clone().map(|ids| task.evaluate_ids(&ids));
    let chars = task.corpus.level == Level::Char;
    let bits = |l: f64| l / std::f64::consts::LN_2;
    Ok(Summary {
        epochs_completed: run.epochs_completed,
        steps: run.steps,
        parameters: task.model.num_params(),
        train_tokens: run.train_items,
        train_tokens_per_second: run.train_items_per_second,
        train_gflops_per_second: run.train_items_per_second * task.model.train_flops_per_token()
            / 1e9,
        train_perplexity: trainer
            .progress
            .history
            .last()
            .and_then(|r| r.train_perplexity),
        valid_loss,
        valid_perplexity: valid_loss.exp(),
        valid_bits_per_char: chars.then(|| bits(valid_loss)),
        test_loss,
        test_perplexity: test_loss.map(f64::exp),
        test_bits_per_char: test_loss.filter(|_| chars).map(bits),
        wall_seconds: run.wall_seconds,
        stopped_early: run.stopped_early,
    })
}

impl LanguageModel<f32> {
    /// Weights plus the metadata needed to rebuild the model: its config and vocabulary.
    pub fn to_tensors(&self, vocab: &Vocab) -> Result<Tensors> {
        crate::trainer::model_tensors(&self.params(), &self.config, vocab)
    }

    pub fn load_from(&mut self, t: &Tensors, path: &Path) -> Result<()> {
        t.load_params("model.", &mut self.params_mut(), path)
    }

    /// Loads a trained model (`DIR/model.safetensors`, or a checkpoint file) with its vocabulary.
    pub fn load(path: &Path) -> Result<(LanguageModel<f32>, Vocab)> {
        let file = if path.is_dir() {
            path.join(MODEL)
        } else {
            path.to_path_buf()
        };
        let t = Tensors::load(&file)?;
        let kind = t.meta("firth", &file)?;
        if kind != "lm-model-v1" && kind != "lm-checkpoint-v2" {
            bail!(
                "{} holds a {kind}, not a firth language model",
                file.display()
            );
        }
        let config: LmConfig = serde_json::from_str(t.meta("config", &file)?)
            .with_context(|| format!("{}: bad config", file.display()))?;
        let mut vocab: Vocab = serde_json::from_str(t.meta("vocab", &file)?)
            .with_context(|| format!("{}: bad vocabulary", file.display()))?;
        vocab.reindex();
        if vocab.len() != config.vocab {
            bail!(
                "{}: vocabulary has {} entries but the model expects {}",
                file.display(),
                vocab.len(),
                config.vocab
            );
        }
        let mut model = LanguageModel::new(config, &mut Rng::new(0)).map_err(anyhow::Error::msg)?;
        model.load_from(&t, &file)?;
        Ok((model, vocab))
    }

    /// The id used to start a window model's history and to end generated lines.
    pub fn pad_for(vocab: &Vocab, level: Level) -> u32 {
        pad_id(vocab, level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lm::Arch;
    use firth_nn::dropout::DropoutKind;
    use firth_nn::optim::Optimizer;

    fn task(arch: Arch, tied: bool) -> LmTask {
        let text =
            "the cat sat on the mat\nthe dog ate the cat food\na bird sat on a dog\n".repeat(4);
        let vocab = Vocab::build(&text, Level::Word);
        let ids = vocab.encode(&text, Level::Word).unwrap();
        let model = LmConfig {
            arch,
            level: Level::Word,
            vocab: vocab.len(),
            emb: 6,
            hidden: 6,
            layers: if arch == Arch::Window { 1 } else { 2 },
            dropout: 0.0,
            dropout_kind: DropoutKind::Standard,
            tied,
            residual: false,
            context: if arch == Arch::Window { 3 } else { 0 },
            init_range: 0.3,
            forget_bias: 0.0,
            rnn_sigmoid: false,
            reverse: false,
        };
        let corpus = Corpus {
            level: Level::Word,
            vocab,
            train: ids.clone(),
            valid: ids,
            test: None,
        };
        let settings = LmSettings {
            batch: 6,
            bptt: 5,
            eval_batch: 1,
        };
        LmTask::new(model, settings, corpus, 7).unwrap()
    }

    fn grads(t: &mut LmTask) -> Vec<(String, Vec<f32>)> {
        t.model
            .params_mut()
            .into_iter()
            .map(|p: &mut Param<f32>| (p.name.clone(), p.grad.clone()))
            .collect()
    }

    /// A `--reverse` run trains on every line backwards: its corpus is the reversed text,
    /// its saved config says so, and its held-out loss is the loss of the same weights read
    /// as a forward model on the reversed text.
    #[test]
    fn a_reverse_run_reads_every_line_backwards() {
        let dir = std::env::temp_dir().join(format!("firth-lm-reverse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let train = dir.join("train.txt");
        let text = "abc de\nfgh\n".repeat(20);
        std::fs::write(&train, &text).unwrap();
        let data = LmData {
            train: train.clone(),
            valid: Some(train.clone()),
            test: None,
            valid_fraction: 0.1,
            out: dir.join("bwd"),
            resume: false,
            limits: Limits::default(),
        };
        let options = LmOptions {
            level: Some(Level::Char),
            hidden: Some(6),
            layers: Some(1),
            bptt: Some(5),
            batch: Some(2),
            epochs: Some(1),
            reverse: true,
            eval_batch: Some(1),
            seed: 3,
            ..Default::default()
        };
        let (summary, trainer) = train_lm(&data, &options, &mut ()).unwrap();
        let c = &trainer.task.corpus;
        assert_eq!(
            c.vocab.decode(&c.train, Level::Char),
            "ed cba\nhgf\n".repeat(20)
        );
        let (mut model, vocab) = LanguageModel::load(&data.out).unwrap();
        assert!(model.config.reverse);
        // The model reverses the text itself: scoring the text equals scoring the reversed
        // text with the same weights marked forward.
        let backward = crate::lm_text::score_text(&mut model, &vocab, &text, "t", 1, 35).unwrap();
        assert!((backward.loss - summary.valid_loss).abs() < 1e-9);
        model.config.reverse = false;
        let reversed = crate::data::reverse_lines(&text);
        let forward =
            crate::lm_text::score_text(&mut model, &vocab, &reversed, "t", 1, 35).unwrap();
        assert_eq!(backward, forward);
        let plain = crate::lm_text::score_text(&mut model, &vocab, &text, "t", 1, 35).unwrap();
        assert_ne!(plain.loss, forward.loss);
        // Word models have no characters to reverse.
        let e = resolve_lm(&LmOptions {
            reverse: true,
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("add --level char"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// The training step (bodies on column shards of 1 or 3 workers, then one output step over
    /// all rows split by vocabulary) gives the same loss, gradients, gradient norm and carried
    /// state as the model's plain forward and backward on the whole batch, for every kind of
    /// body and with tied embeddings; and two steps in a row (weights synced in between) too.
    #[test]
    fn data_parallel_step_equals_one_model() {
        for (arch, tied) in [
            (Arch::Lstm, false),
            (Arch::Gru, true),
            (Arch::Rnn, false),
            (Arch::Window, false),
        ] {
            for workers in [1, 3] {
                let mut one = task(arch, tied);
                let mut par = task(arch, tied);
                par.make_replicas(workers);
                let batch = one.settings.batch;
                let mut opt_one = Optimizer::new(OptimKind::Sgd, 0.0);
                let mut opt_par = Optimizer::new(OptimKind::Sgd, 0.0);
                let data = Batched::new(&one.corpus.train, batch);
                let (mut x, mut y) = (Vec::new(), Vec::new());
                for k in 0..2 {
                    let t = data.segment(k, 5, &mut x, &mut y);
                    let mut rng = Rng::new(1);
                    one.model.zero_grad();
                    let l1 = one
                        .model
                        .forward(&x, &y, t, batch, &mut one.state, true, &mut rng);
                    one.model.backward(1.0 / batch as f64);
                    (par.x, par.y) = (x.clone(), y.clone());
                    let (l2, dw_sq) = par.forward_backward(t, &mut rng);
                    let what = format!("{arch:?}, {workers} workers");
                    assert!(
                        (l1 - l2).abs() < 1e-4 * l1.abs(),
                        "{what}: loss {l1} vs {l2}"
                    );
                    for ((name, g1), (_, g2)) in grads(&mut one).iter().zip(&grads(&mut par)) {
                        for (a, b) in g1.iter().zip(g2) {
                            assert!((a - b).abs() < 1e-5, "{what} {name}: {a} vs {b}");
                        }
                    }
                    // The output step measures ‖dW‖² tile by tile (untied); the rest is read.
                    let n1 = firth_nn::optim::grad_norm(&mut one.model.params_mut());
                    let out_w = par.model.params().len() - 2;
                    assert_eq!(
                        dw_sq.is_some(),
                        !tied,
                        "{what}: dW norm measured iff untied"
                    );
                    let n2 = par
                        .model
                        .params_mut()
                        .iter_mut()
                        .enumerate()
                        .map(|(i, p)| match dw_sq {
                            Some(sq) if i == out_w => sq,
                            _ => p.grad_sq_norm(),
                        })
                        .sum::<f64>()
                        .sqrt();
                    assert!((n1 - n2).abs() < 1e-5 * n1, "{what}: norm {n1} vs {n2}");
                    for (h1, h2) in one.state.h.iter().zip(&par.state.h) {
                        for (a, b) in h1.iter().zip(h2) {
                            assert!((a - b).abs() < 1e-6, "{what}: carried state differs");
                        }
                    }
                    for (tr, opt) in [(&mut one, &mut opt_one), (&mut par, &mut opt_par)] {
                        opt.step_scaled(&mut tr.model.params_mut(), 0.5, 1.0);
                        tr.sync_replicas(true);
                    }
                }
            }
        }
    }
}
