//! Training a language model by truncated backpropagation through time.
//!
//! The loop (teacher forcing: the input at t+1 is the true token, never a prediction):
//! for each block of `bptt` steps in each of B columns, forward from the carried state, sum the
//! cross-entropy, backpropagate Σ_t mean_b loss (Zaremba et al.'s scaling, so `--lr` and
//! `--clip` mean what they meant there), clip by global norm, update, and carry the final state
//! into the next block without its history (the truncation).
//!
//! Everything a run depends on — weights, optimizer moments, the carried state, the random
//! generator, the position in the epoch, the learning-rate schedule — goes into one checkpoint
//! file, written atomically every `checkpoint_every` steps and at each epoch's end, so a run
//! killed at any point resumes to the same final weights (exactly, with one thread).

use crate::data::{Batched, Corpus};
use crate::lm::{LanguageModel, LmConfig, LmState};
use anyhow::{bail, Context, Result};
use firth_nn::checkpoint::{write_atomic, Tensors};
use firth_nn::optim::{clip_grad_value, clip_scale, OptimKind, Optimizer};
use firth_nn::param::ParamSet;
use firth_nn::Rng;
use firth_text::{Level, Vocab};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const MODEL: &str = "model.safetensors";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
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

impl TrainConfig {
    /// Learning rate for a 1-based epoch, before plateau decay.
    pub fn scheduled_lr(&self, epoch: usize) -> f64 {
        let k = if self.lr_decay_start > 0 && epoch >= self.lr_decay_start {
            epoch + 1 - self.lr_decay_start
        } else {
            0
        };
        self.lr * self.lr_decay.powi(k as i32)
    }
}

/// One finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_perplexity: f64,
    pub valid_loss: f64,
    pub valid_perplexity: f64,
    pub tokens_per_second: f64,
    pub seconds: f64,
    pub clipped_fraction: f64,
}

/// Where training stands; restored exactly on resume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// 0-based epoch in progress.
    pub epoch: usize,
    /// Blocks of this epoch already trained.
    pub step_in_epoch: usize,
    pub global_step: u64,
    pub lr_scale: f64,
    pub best_valid: Option<f64>,
    pub rng: [u64; 4],
    pub epoch_loss: f64,
    pub epoch_tokens: u64,
    pub epoch_clipped: u64,
    pub epoch_seconds: f64,
    pub train_seconds: f64,
    pub train_tokens: u64,
    pub history: Vec<EpochRecord>,
}

impl Progress {
    /// Books the training time since `clock` was last reset, and resets it.
    fn add_time(&mut self, clock: &mut Instant) {
        let dt = clock.elapsed().as_secs_f64();
        self.epoch_seconds += dt;
        self.train_seconds += dt;
        *clock = Instant::now();
    }
}

/// What one training step reports to the user interface.
pub struct StepReport {
    pub epoch: usize,
    pub step: usize,
    pub steps: usize,
    pub loss: f64,
    pub lr: f64,
    pub tokens_per_second: f64,
    pub grad_norm: f64,
}

/// The user interface of a run: progress bars, messages.
pub trait Observer {
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _steps: usize, _done: usize) {}
    fn step(&mut self, _r: &StepReport) {}
    fn epoch_end(&mut self, _r: &EpochRecord) {}
    fn note(&mut self, _msg: &str) {}
}

impl Observer for () {}

/// Limits that end a run early without changing its results up to that point.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    pub max_steps: Option<u64>,
    pub max_seconds: Option<f64>,
}

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
    for k in 0..data.segments(bptt) {
        let steps = data.segment(k, bptt, &mut x, &mut y);
        total += model.forward(&x, &y, steps, batch, &mut state, false, &mut rng);
    }
    let n = data.predictions();
    (total / n.max(1) as f64, n)
}

/// Refuses to resume when a checkpoint's training settings differ from this run's in anything
/// but the number of epochs. `saved_as_asked` is `saved` with this run's epoch count.
pub fn check_resume_settings<C: PartialEq + Serialize>(
    path: &Path,
    saved: &C,
    saved_as_asked: &C,
    asked: &C,
) -> Result<()> {
    if saved_as_asked != asked {
        bail!(
            "{}: the checkpoint's training settings differ from this run's (only --epochs may change on resume):\n  saved: {}\n  asked: {}",
            path.display(),
            serde_json::to_string(saved)?,
            serde_json::to_string(asked)?
        );
    }
    Ok(())
}

/// A training run: model, optimizer, data, and where it writes.
pub struct Trainer {
    pub model: LanguageModel<f32>,
    pub optimizer: Optimizer<f32>,
    pub config: TrainConfig,
    pub progress: Progress,
    pub corpus: Corpus,
    pub out_dir: PathBuf,
    state: LmState<f32>,
    pad: u32,
    /// Data-parallel workers besides `model` (empty with one thread), see [`Trainer::forward_backward`].
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

impl Trainer {
    /// A fresh run.
    pub fn new(
        model_config: LmConfig,
        config: TrainConfig,
        corpus: Corpus,
        out_dir: &Path,
    ) -> Result<Trainer> {
        let mut rng = Rng::new(config.seed);
        let model = LanguageModel::new(model_config, &mut rng).map_err(anyhow::Error::msg)?;
        let pad = pad_id(&corpus.vocab, corpus.level);
        let state = model.start_state(config.batch, pad);
        Ok(Trainer {
            optimizer: Optimizer::new(config.optim, config.weight_decay),
            progress: Progress {
                epoch: 0,
                step_in_epoch: 0,
                global_step: 0,
                lr_scale: 1.0,
                best_valid: None,
                rng: rng.state(),
                epoch_loss: 0.0,
                epoch_tokens: 0,
                epoch_clipped: 0,
                epoch_seconds: 0.0,
                train_seconds: 0.0,
                train_tokens: 0,
                history: Vec::new(),
            },
            model,
            config,
            corpus,
            out_dir: out_dir.to_path_buf(),
            state,
            pad,
            replicas: Vec::new(),
            top: Vec::new(),
            dz: Default::default(),
            d_top: Vec::new(),
        })
    }

    /// Continues the run saved in `out_dir`. The model and training settings must equal the
    /// saved ones, and the vocabulary built from the training file must be the saved one.
    pub fn resume(
        model_config: LmConfig,
        config: TrainConfig,
        corpus: Corpus,
        out_dir: &Path,
    ) -> Result<Trainer> {
        let path = out_dir.join(CHECKPOINT);
        let t = Tensors::load(&path)?;
        if t.meta("firth", &path)? != "lm-checkpoint-v1" {
            bail!(
                "{} is not a firth language-model checkpoint",
                path.display()
            );
        }
        let mut vocab: Vocab = serde_json::from_str(t.meta("vocab", &path)?)?;
        vocab.reindex();
        if vocab != corpus.vocab {
            bail!("{}: the training file's vocabulary differs from the checkpoint's; resume with the same --train file", path.display());
        }
        let saved: LmConfig = serde_json::from_str(t.meta("config", &path)?)
            .with_context(|| format!("{}: bad model config", path.display()))?;
        if saved != model_config {
            bail!(
                "{}: the checkpoint's model settings differ from this run's:\n  saved: {}\n  asked: {}\nrerun with the saved settings, or without --resume to start over",
                path.display(),
                serde_json::to_string(&saved)?,
                serde_json::to_string(&model_config)?
            );
        }
        let saved_train: TrainConfig = serde_json::from_str(t.meta("train", &path)?)?;
        check_resume_settings(
            &path,
            &saved_train,
            &TrainConfig {
                epochs: config.epochs,
                ..saved_train.clone()
            },
            &config,
        )?;
        let mut tr = Trainer::new(model_config, config, corpus, out_dir)?;
        tr.model.load_from(&t, &path)?;
        tr.progress = serde_json::from_str(t.meta("progress", &path)?)?;
        let lens: Vec<usize> = tr.model.params().iter().map(|p| p.len()).collect();
        t.load_optimizer(&mut tr.optimizer, &lens, &path)?;
        for l in 0..tr.state.h.len() {
            tr.state.h[l].copy_from_slice(t.get(&format!("state.h.{l}"), &path)?.1);
        }
        for l in 0..tr.state.c.len() {
            tr.state.c[l].copy_from_slice(t.get(&format!("state.c.{l}"), &path)?.1);
        }
        if !tr.state.history.is_empty() {
            let (_, hist) = t.get("state.history", &path)?;
            tr.state.history = hist.iter().map(|&v| v as u32).collect();
        }
        Ok(tr)
    }

    fn save_checkpoint(&self) -> Result<()> {
        let mut t = self.model.to_tensors(&self.corpus.vocab)?;
        t.metadata.insert("firth".into(), "lm-checkpoint-v1".into());
        t.metadata
            .insert("train".into(), serde_json::to_string(&self.config)?);
        t.metadata
            .insert("progress".into(), serde_json::to_string(&self.progress)?);
        t.insert_optimizer(&self.optimizer);
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
        t.save(&self.out_dir.join(CHECKPOINT))
    }

    fn save_model(&self) -> Result<()> {
        let mut t = self.model.to_tensors(&self.corpus.vocab)?;
        t.metadata.insert("firth".into(), "lm-model-v1".into());
        t.save(&self.out_dir.join(MODEL))
    }

    fn write_metrics(&self) -> Result<()> {
        let mut csv = String::from("epoch,lr,train_loss,train_perplexity,valid_loss,valid_perplexity,tokens_per_second,seconds,clipped_fraction\n");
        for r in &self.progress.history {
            csv.push_str(&format!(
                "{},{},{:.6},{:.4},{:.6},{:.4},{:.1},{:.2},{:.4}\n",
                r.epoch,
                r.lr,
                r.train_loss,
                r.train_perplexity,
                r.valid_loss,
                r.valid_perplexity,
                r.tokens_per_second,
                r.seconds,
                r.clipped_fraction
            ));
        }
        write_atomic(&self.out_dir.join("metrics.csv"), csv.as_bytes())
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
    /// model's parameters; returns Σ loss in nats.
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
    fn forward_backward(&mut self, x: &[u32], y: &[u32], t: usize, rng: &mut Rng) -> f64 {
        let batch = self.config.batch;
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
                    x: columns(x, &cols),
                    y: columns(y, &cols),
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
        let loss = self
            .model
            .output_step_by_vocab(&top, &targets, scale, &mut dz, &mut d_top, workers);
        if loss.is_finite() {
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
        loss
    }

    /// Copies the model's freshly updated weights into the replicas. After a sparse SGD step
    /// only the embedding rows this step touched have moved, so only those are copied.
    fn sync_replicas(&mut self) {
        if self.replicas.is_empty() {
            return;
        }
        let touched_only = self.optimizer.kind == OptimKind::Sgd;
        // Replicas run only bodies (the output layer runs on the model itself).
        let mut src = self.model.body_params_mut();
        for r in &mut self.replicas {
            firth_nn::replicas::copy_values(&mut r.body_params_mut(), &mut src, touched_only);
        }
    }

    /// Trains until the configured epochs are done or a limit is reached, then evaluates.
    pub fn run(&mut self, limits: Limits, obs: &mut dyn Observer) -> Result<Summary> {
        let wall = Instant::now();
        std::fs::create_dir_all(&self.out_dir)
            .with_context(|| format!("cannot create {}", self.out_dir.display()))?;
        let cfg = self.config.clone();
        let data = Batched::new(&self.corpus.train, cfg.batch);
        let steps = data.segments(cfg.bptt);
        if steps == 0 {
            bail!("the training text has {} tokens, too few for --batch {}; use a smaller --batch or more text", self.corpus.train.len(), cfg.batch);
        }
        let mut rng = Rng::from_state(self.progress.rng);
        self.make_replicas(rayon::current_num_threads().min(cfg.batch));
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let mut stopped_early = false;
        let session_start_steps = self.progress.global_step;
        'epochs: while self.progress.epoch < cfg.epochs {
            let epoch = self.progress.epoch + 1;
            let lr = cfg.scheduled_lr(epoch) * self.progress.lr_scale;
            if self.progress.step_in_epoch == 0 {
                self.state = self.model.start_state(cfg.batch, self.pad);
            }
            obs.epoch_start(epoch, cfg.epochs, steps, self.progress.step_in_epoch);
            let mut clock = Instant::now();
            while self.progress.step_in_epoch < steps {
                if limits
                    .max_steps
                    .is_some_and(|m| self.progress.global_step >= m)
                    || limits
                        .max_seconds
                        .is_some_and(|s| wall.elapsed().as_secs_f64() >= s)
                {
                    stopped_early = true;
                    self.progress.rng = rng.state();
                    self.progress.add_time(&mut clock);
                    self.save_checkpoint()?;
                    break 'epochs;
                }
                let k = self.progress.step_in_epoch;
                let t = data.segment(k, cfg.bptt, &mut x, &mut y);
                let loss = self.forward_backward(&x, &y, t, &mut rng);
                if !loss.is_finite() {
                    bail!(
                        "the training loss became {loss} at epoch {epoch}, step {}; the last good checkpoint is {}. \
                         Rerun with a smaller --lr or a --clip, then --resume",
                        k + 1,
                        self.out_dir.join(CHECKPOINT).display()
                    );
                }
                let mut params = self.model.params_mut();
                let norm = firth_nn::optim::grad_norm(&mut params);
                if !norm.is_finite() {
                    bail!(
                        "the gradient norm became {norm} at epoch {epoch}, step {}; the last good checkpoint is {}. \
                         Rerun with a smaller --lr or a --clip, then --resume",
                        k + 1,
                        self.out_dir.join(CHECKPOINT).display()
                    );
                }
                let mut scale = clip_scale(norm, cfg.clip);
                if cfg.clip_value > 0.0 {
                    // Value clipping applies to the norm-clipped gradient, so scale it first.
                    if scale != 1.0 {
                        let s = scale as f32;
                        for p in params.iter_mut() {
                            p.for_each_grad(|_, g| g.iter_mut().for_each(|g| *g *= s));
                        }
                        scale = 1.0;
                    }
                    clip_grad_value(&mut params, cfg.clip_value);
                }
                self.optimizer.step_scaled(&mut params, lr, scale);
                drop(params);
                self.sync_replicas();
                let tokens = (t * cfg.batch) as u64;
                self.progress.epoch_loss += loss;
                self.progress.epoch_tokens += tokens;
                self.progress.train_tokens += tokens;
                if cfg.clip > 0.0 && norm > cfg.clip {
                    self.progress.epoch_clipped += 1;
                }
                self.progress.step_in_epoch += 1;
                self.progress.global_step += 1;
                let elapsed = self.progress.epoch_seconds + clock.elapsed().as_secs_f64();
                obs.step(&StepReport {
                    epoch,
                    step: self.progress.step_in_epoch,
                    steps,
                    loss: loss / tokens as f64,
                    lr,
                    tokens_per_second: self.progress.epoch_tokens as f64 / elapsed.max(1e-9),
                    grad_norm: norm,
                });
                if cfg.checkpoint_every > 0
                    && self.progress.step_in_epoch % cfg.checkpoint_every == 0
                    && self.progress.step_in_epoch < steps
                {
                    self.progress.add_time(&mut clock);
                    self.progress.rng = rng.state();
                    self.save_checkpoint()?;
                }
            }
            self.progress.add_time(&mut clock);
            let (valid_loss, _) = evaluate(
                &mut self.model,
                &self.corpus.valid,
                cfg.eval_batch,
                cfg.bptt.max(35),
                self.pad,
            );
            // Worse than 100x a uniform guess over the vocabulary is divergence, not learning.
            let bound = (100.0 * self.model.config.vocab.max(1) as f64).ln();
            if !(valid_loss <= bound) {
                bail!(
                    "training diverged: the validation perplexity became {:.4e} after epoch {epoch} (a uniform guess scores {}); \
                     the last good checkpoint is {}. Rerun with a smaller --lr or a --clip, then --resume",
                    valid_loss.exp(),
                    self.model.config.vocab,
                    self.out_dir.join(CHECKPOINT).display()
                );
            }
            let p = &mut self.progress;
            let record = EpochRecord {
                epoch,
                lr,
                train_loss: p.epoch_loss / p.epoch_tokens.max(1) as f64,
                train_perplexity: (p.epoch_loss / p.epoch_tokens.max(1) as f64).exp(),
                valid_loss,
                valid_perplexity: valid_loss.exp(),
                tokens_per_second: p.epoch_tokens as f64 / p.epoch_seconds.max(1e-9),
                seconds: p.epoch_seconds,
                clipped_fraction: p.epoch_clipped as f64 / steps as f64,
            };
            if cfg.plateau_decay < 1.0 && p.best_valid.is_some_and(|b| valid_loss.exp() >= b) {
                p.lr_scale *= cfg.plateau_decay;
                obs.note(&format!(
                    "validation perplexity did not improve; learning rate scaled by {}",
                    cfg.plateau_decay
                ));
            }
            p.best_valid = Some(
                p.best_valid
                    .map_or(valid_loss.exp(), |b| b.min(valid_loss.exp())),
            );
            p.history.push(record.clone());
            p.epoch += 1;
            p.step_in_epoch = 0;
            p.epoch_loss = 0.0;
            p.epoch_tokens = 0;
            p.epoch_clipped = 0;
            p.epoch_seconds = 0.0;
            p.rng = rng.state();
            obs.epoch_end(&record);
            self.save_model()?;
            self.save_checkpoint()?;
            self.write_metrics()?;
        }
        if self.progress.global_step > session_start_steps || self.progress.history.is_empty() {
            self.save_model()?;
        }
        let valid_loss = match self.progress.history.last() {
            Some(r) if !stopped_early => r.valid_loss,
            _ => {
                evaluate(
                    &mut self.model,
                    &self.corpus.valid,
                    cfg.eval_batch,
                    cfg.bptt.max(35),
                    self.pad,
                )
                .0
            }
        };
        let test_loss = self.corpus.test.clone().map(|ids| {
            evaluate(
                &mut self.model,
                &ids,
                cfg.eval_batch,
                cfg.bptt.max(35),
                self.pad,
            )
            .0
        });
        let chars = self.corpus.level == Level::Char;
        let p = &self.progress;
        Ok(Summary {
            epochs_completed: p.history.len(),
            steps: p.global_step,
            parameters: self.model.num_params(),
            train_tokens: p.train_tokens,
            train_tokens_per_second: p.train_tokens as f64 / p.train_seconds.max(1e-9),
            train_gflops_per_second: p.train_tokens as f64 / p.train_seconds.max(1e-9)
                * self.model.train_flops_per_token()
                / 1e9,
            train_perplexity: p.history.last().map(|r| r.train_perplexity),
            valid_loss,
            valid_perplexity: valid_loss.exp(),
            valid_bits_per_char: chars.then(|| valid_loss / std::f64::consts::LN_2),
            test_loss,
            test_perplexity: test_loss.map(f64::exp),
            test_bits_per_char: test_loss
                .filter(|_| chars)
                .map(|l| l / std::f64::consts::LN_2),
            wall_seconds: wall.elapsed().as_secs_f64(),
            stopped_early,
        })
    }
}

impl LanguageModel<f32> {
    /// Weights plus the metadata needed to rebuild the model: its config and vocabulary.
    pub fn to_tensors(&self, vocab: &Vocab) -> Result<Tensors> {
        let mut t = Tensors::default();
        t.insert_params("model.", &self.params());
        t.metadata
            .insert("config".into(), serde_json::to_string(&self.config)?);
        t.metadata
            .insert("vocab".into(), serde_json::to_string(vocab)?);
        Ok(t)
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
        if kind != "lm-model-v1" && kind != "lm-checkpoint-v1" {
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
    use firth_nn::param::Param;

    fn trainer(arch: Arch, tied: bool) -> Trainer {
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
        };
        let config = TrainConfig {
            epochs: 1,
            bptt: 5,
            batch: 6,
            lr: 0.1,
            optim: OptimKind::Sgd,
            weight_decay: 0.0,
            clip: 0.0,
            clip_value: 0.0,
            lr_decay: 1.0,
            lr_decay_start: 0,
            plateau_decay: 1.0,
            seed: 7,
            eval_batch: 1,
            checkpoint_every: 0,
        };
        let corpus = Corpus {
            level: Level::Word,
            vocab,
            train: ids.clone(),
            valid: ids,
            test: None,
        };
        Trainer::new(model, config, corpus, Path::new("unused")).unwrap()
    }

    fn grads(t: &mut Trainer) -> Vec<(String, Vec<f32>)> {
        t.model
            .params_mut()
            .into_iter()
            .map(|p: &mut Param<f32>| (p.name.clone(), p.grad.clone()))
            .collect()
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
                let mut one = trainer(arch, tied);
                let mut par = trainer(arch, tied);
                par.make_replicas(workers);
                let batch = one.config.batch;
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
                    let l2 = par.forward_backward(&x, &y, t, &mut rng);
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
                    // The output step measures ‖dW‖² tile by tile (untied).
                    let n1 = firth_nn::optim::grad_norm(&mut one.model.params_mut());
                    let n2 = firth_nn::optim::grad_norm(&mut par.model.params_mut());
                    assert!((n1 - n2).abs() < 1e-5 * n1, "{what}: norm {n1} vs {n2}");
                    for (h1, h2) in one.state.h.iter().zip(&par.state.h) {
                        for (a, b) in h1.iter().zip(h2) {
                            assert!((a - b).abs() < 1e-6, "{what}: carried state differs");
                        }
                    }
                    for tr in [&mut one, &mut par] {
                        let mut params = tr.model.params_mut();
                        tr.optimizer.step_scaled(&mut params, 0.5, 1.0);
                        drop(params);
                        tr.sync_replicas();
                    }
                }
            }
        }
    }
}
