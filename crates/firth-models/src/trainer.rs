//! The one training loop every model trains through.
//!
//! A model plugs in by implementing [`Task`]: how to cut an epoch into steps, one step's
//! forward and backward, its evaluation, and what its files hold. [`Trainer`] owns everything
//! else, the same for every model: epochs and steps, the learning-rate [`Schedule`] and plateau
//! decay, clipping by global norm or by value, the optimizer, early stopping, the non-finite
//! stop, `--max-steps`/`--max-seconds`, checkpoints and `--resume`, `metrics.csv`, progress
//! reports and the run's summary.
//!
//! Resuming is exact: the checkpoint holds the weights, the optimizer's moments, the task's
//! carried state, the random generator (now and at the start of the epoch, so the epoch's
//! shuffled plan is drawn again identically) and the position in the epoch. A run killed at any
//! point and resumed ends with the weights of an uninterrupted run (bit for bit with one thread).

use anyhow::{bail, Context, Result};
use firth_nn::checkpoint::{write_atomic, Tensors};
use firth_nn::optim::{clip_grad_value, clip_scale, OptimKind, Optimizer};
use firth_nn::param::Param;
use firth_nn::Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const MODEL: &str = "model.safetensors";
pub const METRICS: &str = "metrics.csv";

/// What one training step did. The task leaves in its trainable parameters the gradient of the
/// loss it trains on (for the LM Σ_t mean_b, for the tagger and classifier the batch mean).
#[derive(Clone, Debug, Default)]
pub struct StepOutcome {
    /// Σ loss over the step's units, in nats.
    pub loss: f64,
    /// What the loss is averaged over when reported: tokens (LM, softmax tagger) or sentences.
    pub units: usize,
    /// What the rate counts: tokens, sentences or examples.
    pub items: usize,
    /// Training predictions that were right, when the task counts them.
    pub correct: Option<usize>,
    /// Σ g² of some parameters, measured by the step while their gradients were in cache,
    /// as (index in [`Task::trainable`], Σ g²): the loop takes these instead of reading those
    /// gradients again for the clipping norm.
    pub measured_sq_norms: Vec<(usize, f64)>,
}

/// A development-set evaluation after an epoch.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    pub loss: Option<f64>,
    pub accuracy: Option<f64>,
    pub f1: Option<f64>,
    pub items_per_second: Option<f64>,
    /// Corpus BLEU of the development set's translations (translators).
    pub bleu: Option<f64>,
    /// Higher is better; `None` (no development data): every epoch counts as the best.
    pub score: Option<f64>,
}

/// A model as the training loop sees it.
pub trait Task {
    /// The model's file kind: checkpoints say `{kind}-checkpoint-v2`, models `{kind}-model-v1`.
    fn kind(&self) -> &'static str;
    /// The parameters the optimizer updates, always in the same order (the optimizer's state
    /// is stored in that order).
    fn trainable(&mut self) -> Vec<&mut Param<f32>>;
    /// Cuts the coming epoch into steps (e.g. shuffled, length-bucketed batches) drawing only
    /// from `rng`, and returns how many there are. On resume mid-epoch it is called again with
    /// the generator as it was at the epoch's start, so it must draw the same plan.
    fn plan_epoch(&mut self, rng: &mut Rng) -> usize;
    /// Called before the first step of an epoch (not on resume mid-epoch): reset carried state.
    fn begin_epoch(&mut self) {}
    /// Training runs on `workers` threads; a data-parallel task makes its replicas here.
    fn set_workers(&mut self, _workers: usize) {}
    /// Forward and backward of step `step` of the epoch's plan.
    fn train_step(&mut self, step: usize, rng: &mut Rng) -> StepOutcome;
    /// After each optimizer update (`sparse_sgd`: only the rows the step touched moved).
    fn after_update(&mut self, _sparse_sgd: bool) {}
    /// Scores the development data.
    fn evaluate(&mut self) -> Evaluation;
    /// A development loss above this is divergence, not learning (the LM: 100 times worse
    /// than a uniform guess over its vocabulary): training stops, keeping the last checkpoint.
    fn loss_bound(&self) -> Option<f64> {
        None
    }
    /// The loss is a per-token cross-entropy whose exponential (perplexity) is reported.
    fn reports_perplexity(&self) -> bool {
        false
    }
    /// Weights with the metadata that rebuilds the model (config, vocabulary, labels).
    fn model_tensors(&self) -> Result<Tensors>;
    /// Adds what else a checkpoint needs (carried state, the task's own settings).
    fn save_state(&self, _t: &mut Tensors) -> Result<()> {
        Ok(())
    }
    /// Restores weights and state from a checkpoint, after checking that its model settings,
    /// vocabulary and labels are this run's.
    fn restore(&mut self, t: &Tensors, path: &Path) -> Result<()>;
}

/// A model file's contents: the weights under `model.`, and the config and vocabulary that
/// rebuild the model, as JSON metadata.
pub fn model_tensors(
    params: &[&Param<f32>],
    config: &impl Serialize,
    vocab: &impl Serialize,
) -> Result<Tensors> {
    let mut t = Tensors::default();
    t.insert_params("model.", params);
    t.metadata
        .insert("config".into(), serde_json::to_string(config)?);
    t.metadata
        .insert("vocab".into(), serde_json::to_string(vocab)?);
    Ok(t)
}

/// How the learning rate moves from epoch to epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// From epoch `start` (1-based) on, multiplied by `decay` each epoch (Zaremba et al.);
    /// `start` 0 keeps it constant.
    Step { decay: f64, start: usize },
    /// lr / (1 + decay · (epoch - 1)) (Lample et al.).
    Inverse { decay: f64 },
}

impl Schedule {
    pub const CONSTANT: Schedule = Schedule::Step {
        decay: 1.0,
        start: 0,
    };

    /// The learning rate of a 1-based epoch, before plateau decay.
    pub fn lr(&self, base: f64, epoch: usize) -> f64 {
        match *self {
            Schedule::Step { decay, start } => {
                let k = if start > 0 && epoch >= start {
                    epoch + 1 - start
                } else {
                    0
                };
                base * decay.powi(k as i32)
            }
            Schedule::Inverse { decay } => base / (1.0 + decay * (epoch.max(1) - 1) as f64),
        }
    }
}

/// Which weights `model.safetensors` holds at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Keep {
    /// The latest weights (language models: their schedule anneals to the end).
    Last,
    /// The epoch with the best development score (taggers, classifiers).
    Best,
}

/// The loop's settings; the task's own (batch, bptt) live in the task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub lr: f64,
    pub schedule: Schedule,
    /// When the development score fails to improve, multiply lr by this (1 = off).
    pub plateau_decay: f64,
    /// Stop after this many epochs without a better development score (0 = never).
    pub patience: usize,
    pub optim: OptimKind,
    pub weight_decay: f64,
    /// Global-norm clipping threshold (0 = off).
    pub clip: f64,
    /// Clip each gradient element into ±this after norm clipping (0 = off).
    pub clip_value: f64,
    pub seed: u64,
    /// Write a checkpoint every this many steps within an epoch (0 = only at epoch ends).
    pub checkpoint_every: usize,
    pub keep: Keep,
    /// Linear learning-rate warm-up: update k (1-based, counted over the whole run) uses
    /// lr · min(1, k / warmup_steps) on top of the schedule (0 = off).
    #[serde(default)]
    pub warmup_steps: u64,
    /// Decay of an exponential moving average of the weights ([`WeightAverage`]), which the
    /// development score and the saved model use (0 = off: the weights as trained).
    #[serde(default)]
    pub average: f64,
}

impl TrainConfig {
    /// The factor the warm-up puts on the learning rate of update `step` (1-based):
    /// min(1, step / warmup_steps), or 1 without warm-up.
    pub fn warmup_factor(&self, step: u64) -> f64 {
        if self.warmup_steps == 0 {
            1.0
        } else {
            (step as f64 / self.warmup_steps as f64).min(1.0)
        }
    }

    /// Refuses settings no run can use, naming the flag.
    pub fn check(&self) -> anyhow::Result<()> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            anyhow::bail!("--lr must be a positive number");
        }
        if self.epochs == 0 {
            anyhow::bail!("--epochs must be at least 1");
        }
        if !(0.0..1.0).contains(&self.average) {
            anyhow::bail!("--average must be in [0, 1): the decay of the weights' moving average");
        }
        Ok(())
    }

    /// A model trained epoch by epoch and kept at its best development epoch: checkpoints at
    /// epoch ends, no value clipping, no plateau decay, no early stop (set `patience`).
    #[allow(clippy::too_many_arguments)]
    pub fn best_epoch(
        epochs: usize,
        lr: f64,
        schedule: Schedule,
        optim: OptimKind,
        weight_decay: f64,
        clip: f64,
        seed: u64,
    ) -> TrainConfig {
        TrainConfig {
            epochs,
            lr,
            schedule,
            plateau_decay: 1.0,
            patience: 0,
            optim,
            weight_decay,
            clip,
            clip_value: 0.0,
            seed,
            checkpoint_every: 0,
            keep: Keep::Best,
            warmup_steps: 0,
            average: 0.0,
        }
    }
}

/// One finished epoch: a row of `metrics.csv`. Columns a model does not measure stay empty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    #[serde(default)]
    pub train_perplexity: Option<f64>,
    #[serde(default)]
    pub train_accuracy: Option<f64>,
    #[serde(default, alias = "dev_loss")]
    pub valid_loss: Option<f64>,
    #[serde(default)]
    pub valid_perplexity: Option<f64>,
    #[serde(default, alias = "dev_accuracy")]
    pub valid_accuracy: Option<f64>,
    #[serde(default, alias = "dev_f1")]
    pub valid_f1: Option<f64>,
    #[serde(default)]
    pub valid_bleu: Option<f64>,
    /// Training throughput in the task's items (tokens, sentences, examples) per second.
    #[serde(
        alias = "tokens_per_second",
        alias = "train_sentences_per_second",
        alias = "examples_per_second"
    )]
    pub items_per_second: f64,
    #[serde(default, alias = "predict_sentences_per_second")]
    pub predict_items_per_second: Option<f64>,
    pub seconds: f64,
    #[serde(default)]
    pub clipped_fraction: f64,
}

/// Writes `metrics.csv` atomically.
pub fn write_metrics(path: &Path, records: &[EpochRecord]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if records.is_empty() {
        // serde only writes the header with the first record.
        w.write_record(METRIC_COLUMNS)?;
    }
    for r in records {
        w.serialize(r)?;
    }
    let bytes = w.into_inner().context("writing metrics")?;
    write_atomic(path, &bytes)
}

const METRIC_COLUMNS: [&str; 14] = [
    "epoch",
    "lr",
    "train_loss",
    "train_perplexity",
    "train_accuracy",
    "valid_loss",
    "valid_perplexity",
    "valid_accuracy",
    "valid_f1",
    "valid_bleu",
    "items_per_second",
    "predict_items_per_second",
    "seconds",
    "clipped_fraction",
];

/// Reads a `metrics.csv` written by [`write_metrics`] (or by an older firth: the LM's, the
/// tagger's and the classifier's column names are understood).
pub fn read_metrics(path: &Path) -> Result<Vec<EpochRecord>> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    r.deserialize()
        .enumerate()
        .map(|(i, row)| {
            row.with_context(|| {
                format!(
                    "{}: line {}: not a firth metrics row",
                    path.display(),
                    i + 2
                )
            })
        })
        .collect()
}

/// Where training stands; restored exactly on resume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// 0-based epoch in progress (= epochs completed).
    pub epoch: usize,
    /// Steps of this epoch already trained.
    pub step_in_epoch: usize,
    pub global_step: u64,
    pub lr_scale: f64,
    pub best_score: Option<f64>,
    pub best_epoch: usize,
    pub epochs_without_gain: usize,
    /// The generator now, and as it was when this epoch's plan was drawn.
    pub rng: [u64; 4],
    pub epoch_rng: [u64; 4],
    pub epoch_loss: f64,
    pub epoch_units: u64,
    pub epoch_items: u64,
    pub epoch_correct: Option<u64>,
    pub epoch_clipped: u64,
    pub epoch_seconds: f64,
    pub train_seconds: f64,
    pub train_items: u64,
    pub history: Vec<EpochRecord>,
}

impl Progress {
    fn new(seed: u64) -> Progress {
        let rng = Rng::new(seed).state();
        Progress {
            epoch: 0,
            step_in_epoch: 0,
            global_step: 0,
            lr_scale: 1.0,
            best_score: None,
            best_epoch: 0,
            epochs_without_gain: 0,
            rng,
            epoch_rng: rng,
            epoch_loss: 0.0,
            epoch_units: 0,
            epoch_items: 0,
            epoch_correct: None,
            epoch_clipped: 0,
            epoch_seconds: 0.0,
            train_seconds: 0.0,
            train_items: 0,
            history: Vec::new(),
        }
    }

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
    /// Mean loss per unit of this step.
    pub loss: f64,
    pub lr: f64,
    pub items_per_second: f64,
    pub grad_norm: f64,
}

/// The user interface of a run: progress bars, messages.
pub trait Observer {
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _steps: usize, _done: usize) {}
    fn step(&mut self, _r: &StepReport) {}
    fn epoch_end(&mut self, _r: &EpochRecord, _best: bool) {}
    fn note(&mut self, _msg: &str) {}
    /// Asked before every step: true ends the run there as a reached limit does (checkpoint
    /// saved, `stopped_early`), so a caller can stop it from outside (Python's Ctrl-C).
    fn should_stop(&mut self) -> bool {
        false
    }
}

impl Observer for () {}

/// Limits that end a run early without changing its results up to that point.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    pub max_steps: Option<u64>,
    pub max_seconds: Option<f64>,
}

impl Limits {
    /// Only a wall-time limit.
    pub fn seconds(max_seconds: Option<f64>) -> Limits {
        Limits {
            max_steps: None,
            max_seconds,
        }
    }
}

/// How a run went, for the model's own summary.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub epochs_completed: usize,
    pub best_epoch: usize,
    pub steps: u64,
    pub train_items: u64,
    pub train_items_per_second: f64,
    pub wall_seconds: f64,
    /// Ended by `--max-seconds` or `--max-steps` before its epochs were done (the checkpoint
    /// is kept and `--resume` goes on). A stop by `--patience` is not this one: that run is
    /// finished, with `epochs_completed` below `--epochs`.
    pub stopped_early: bool,
}

/// Refuses to resume when a checkpoint's settings differ from this run's in anything but the
/// number of epochs. `saved_as_asked` is `saved` with this run's epoch count.
pub fn check_resume_settings<C: PartialEq + Serialize>(
    path: &Path,
    saved: &C,
    saved_as_asked: &C,
    asked: &C,
) -> Result<()> {
    refuse_if_different(
        path,
        "training settings differ from this run's (only --epochs may change on resume)",
        saved,
        saved_as_asked == asked,
        asked,
        "",
    )
}

/// Refuses to resume when a checkpoint's model settings differ from this run's.
pub fn check_model_settings<C: PartialEq + Serialize>(
    path: &Path,
    saved: &C,
    asked: &C,
) -> Result<()> {
    refuse_if_different(
        path,
        "model settings differ from this run's",
        saved,
        saved == asked,
        asked,
        "\nrerun with the saved settings, or without --resume to start over",
    )
}

/// The error of both checks above: both settings shown as JSON.
fn refuse_if_different<C: Serialize>(
    path: &Path,
    what: &str,
    saved: &C,
    same: bool,
    asked: &C,
    hint: &str,
) -> Result<()> {
    if !same {
        bail!(
            "{}: the checkpoint's {what}:\n  saved: {}\n  asked: {}{hint}",
            path.display(),
            serde_json::to_string(saved)?,
            serde_json::to_string(asked)?
        );
    }
    Ok(())
}

/// Polyak averaging: an exponential moving average of the trainable weights, kept beside them.
/// It starts at the weights after the first update; after update k it moves toward the new
/// weights, a ← a + (1 − d_k)(w − a), with d_k = min(decay, (1 + k) / (10 + k)) so that the
/// early weights, far from where training ends, fade quickly (TensorFlow's
/// `ExponentialMovingAverage` with `num_updates`). The average of the last steps sits nearer
/// the middle of the valley the optimizer bounces around in than any one step, which often
/// scores higher on held-out data; on the taggers' and classifiers' recipes it moved test
/// accuracy by less than the seed spread (docs/classify.md, docs/tagging.md, session 15).
#[derive(Clone, Debug, Default)]
pub struct WeightAverage {
    pub decay: f64,
    pub updates: u64,
    /// One buffer per trainable parameter, in [`Task::trainable`]'s order; empty before the
    /// first update.
    pub values: Vec<Vec<f32>>,
}

impl WeightAverage {
    pub fn new(decay: f64) -> WeightAverage {
        WeightAverage {
            decay,
            ..WeightAverage::default()
        }
    }

    pub fn enabled(&self) -> bool {
        self.decay > 0.0
    }

    /// Moves the average toward the weights just updated.
    pub fn update(&mut self, params: &[&mut Param<f32>]) {
        if !self.enabled() {
            return;
        }
        if self.values.is_empty() {
            self.values = params.iter().map(|p| p.value.clone()).collect();
        }
        self.updates += 1;
        let k = self.updates as f64;
        let keep = self.decay.min((1.0 + k) / (10.0 + k));
        let step = (1.0 - keep) as f32;
        for (a, p) in self.values.iter_mut().zip(params) {
            for (a, &w) in a.iter_mut().zip(&p.value) {
                *a += step * (w - *a);
            }
        }
    }

    /// Exchanges the weights and the average (twice restores both); false when there is no
    /// average yet, and then nothing moves.
    pub fn swap(&mut self, params: &mut [&mut Param<f32>]) -> bool {
        if self.values.is_empty() {
            return false;
        }
        for (a, p) in self.values.iter_mut().zip(params.iter_mut()) {
            std::mem::swap(a, &mut p.value);
        }
        true
    }

    fn insert_into(&self, t: &mut Tensors) {
        if self.values.is_empty() {
            return;
        }
        t.metadata
            .insert("average_updates".into(), self.updates.to_string());
        for (i, a) in self.values.iter().enumerate() {
            t.insert(&format!("avg.{i}"), &[a.len()], a.clone());
        }
    }

    /// Restores what a checkpoint stored (`lens`: the trainable parameters' sizes).
    fn load_from(&mut self, t: &Tensors, lens: &[usize], path: &Path) -> Result<()> {
        self.values.clear();
        self.updates = 0;
        if !self.enabled() || !t.metadata.contains_key("average_updates") {
            return Ok(());
        }
        self.updates = t
            .meta("average_updates", path)?
            .parse()
            .with_context(|| format!("{}: bad weight-average update count", path.display()))?;
        for (i, &len) in lens.iter().enumerate() {
            let (_, a) = t.get(&format!("avg.{i}"), path)?;
            if a.len() != len {
                bail!("{}: weight average {i} has the wrong size", path.display());
            }
            self.values.push(a.to_vec());
        }
        Ok(())
    }
}

/// A training run: a task, the optimizer, the loop's settings and where it writes.
pub struct Trainer<T: Task> {
    pub task: T,
    pub optimizer: Optimizer<f32>,
    pub average: WeightAverage,
    pub config: TrainConfig,
    pub progress: Progress,
    pub out_dir: PathBuf,
}

impl<T: Task> Trainer<T> {
    /// A fresh run.
    pub fn new(task: T, config: TrainConfig, out_dir: &Path) -> Trainer<T> {
        Trainer {
            task,
            optimizer: Optimizer::new(config.optim, config.weight_decay),
            average: WeightAverage::new(config.average),
            progress: Progress::new(config.seed),
            config,
            out_dir: out_dir.to_path_buf(),
        }
    }

    /// Continues the run saved in `out_dir`; the task checks that the checkpoint is its model.
    pub fn resume(task: T, config: TrainConfig, out_dir: &Path) -> Result<Trainer<T>> {
        let path = out_dir.join(CHECKPOINT);
        if !path.exists() {
            bail!("--resume: no checkpoint at {}", path.display());
        }
        let t = Tensors::load(&path)?;
        let kind = t.meta("firth", &path)?;
        let want = format!("{}-checkpoint-v2", task.kind());
        if kind != want {
            bail!(
                "{} holds a {kind}, not a {want}; start over without --resume (or with another --out)",
                path.display()
            );
        }
        let saved: TrainConfig = serde_json::from_str(t.meta("train", &path)?)
            .with_context(|| format!("{}: bad training settings", path.display()))?;
        check_resume_settings(
            &path,
            &saved,
            &TrainConfig {
                epochs: config.epochs,
                ..saved.clone()
            },
            &config,
        )?;
        let mut tr = Trainer::new(task, config, out_dir);
        tr.task.restore(&t, &path)?;
        tr.progress = serde_json::from_str(t.meta("progress", &path)?)
            .with_context(|| format!("{}: bad progress record", path.display()))?;
        let lens: Vec<usize> = tr.task.trainable().iter().map(|p| p.len()).collect();
        t.load_optimizer(&mut tr.optimizer, &lens, &path)?;
        tr.average.load_from(&t, &lens, &path)?;
        Ok(tr)
    }

    /// A fresh run, or the one in `out_dir` when `resume`; refuses to overwrite a run that
    /// `resume` was not asked for.
    pub fn start(task: T, config: TrainConfig, out_dir: &Path, resume: bool) -> Result<Trainer<T>> {
        config.check()?;
        if resume {
            return Trainer::resume(task, config, out_dir);
        }
        if out_dir.join(CHECKPOINT).exists() {
            bail!(
                "{} already holds a training run; add --resume to continue it, or choose another --out",
                out_dir.display()
            );
        }
        Ok(Trainer::new(task, config, out_dir))
    }

    fn save_checkpoint(&self) -> Result<()> {
        let mut t = self.task.model_tensors()?;
        t.metadata.insert(
            "firth".into(),
            format!("{}-checkpoint-v2", self.task.kind()),
        );
        t.metadata
            .insert("train".into(), serde_json::to_string(&self.config)?);
        t.metadata
            .insert("progress".into(), serde_json::to_string(&self.progress)?);
        t.insert_optimizer(&self.optimizer);
        self.average.insert_into(&mut t);
        self.task.save_state(&mut t)?;
        t.save(&self.out_dir.join(CHECKPOINT))
    }

    fn save_model(&self) -> Result<()> {
        let mut t = self.task.model_tensors()?;
        t.metadata
            .insert("firth".into(), format!("{}-model-v1", self.task.kind()));
        t.save(&self.out_dir.join(MODEL))
    }

    fn stop_message(&self, what: &str, value: f64, epoch: usize, step: usize) -> String {
        format!(
            "the {what} became {value} at epoch {epoch}, step {step}; the last good checkpoint is {}. \
             Rerun with a smaller --lr or a --clip, then --resume",
            self.out_dir.join(CHECKPOINT).display()
        )
    }

    /// Trains until the configured epochs are done, early stopping, or a limit.
    pub fn run(&mut self, limits: Limits, obs: &mut dyn Observer) -> Result<RunSummary> {
        let wall = Instant::now();
        std::fs::create_dir_all(&self.out_dir)
            .with_context(|| format!("cannot create {}", self.out_dir.display()))?;
        let cfg = self.config.clone();
        self.task.set_workers(rayon::current_num_threads());
        let mut rng = Rng::from_state(self.progress.rng);
        let mut stopped_early = false;
        let session_start_steps = self.progress.global_step;
        let perplexity = self.task.reports_perplexity();
        'epochs: while self.progress.epoch < cfg.epochs {
            if cfg.patience > 0 && self.progress.epochs_without_gain >= cfg.patience {
                obs.note(&format!(
                    "early stop: no better development score for {} epochs (best at epoch {})",
                    cfg.patience, self.progress.best_epoch
                ));
                break;
            }
            let epoch = self.progress.epoch + 1;
            let lr = cfg.schedule.lr(cfg.lr, epoch) * self.progress.lr_scale;
            let steps = if self.progress.step_in_epoch == 0 {
                self.progress.epoch_rng = rng.state();
                let steps = self.task.plan_epoch(&mut rng);
                self.task.begin_epoch();
                steps
            } else {
                self.task
                    .plan_epoch(&mut Rng::from_state(self.progress.epoch_rng))
            };
            if steps == 0 {
                bail!("the training data is too small for one batch; use a smaller --batch or more data");
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
                    || obs.should_stop()
                {
                    stopped_early = true;
                    self.progress.rng = rng.state();
                    self.progress.add_time(&mut clock);
                    self.save_checkpoint()?;
                    break 'epochs;
                }
                let k = self.progress.step_in_epoch;
                let out = self.task.train_step(k, &mut rng);
                if !out.loss.is_finite() {
                    bail!(self.stop_message("training loss", out.loss, epoch, k + 1));
                }
                let step_lr = lr * cfg.warmup_factor(self.progress.global_step + 1);
                let norm = self.step(&out, step_lr)?;
                if !norm.is_finite() {
                    bail!(self.stop_message("gradient norm", norm, epoch, k + 1));
                }
                let p = &mut self.progress;
                p.epoch_loss += out.loss;
                p.epoch_units += out.units as u64;
                p.epoch_items += out.items as u64;
                p.train_items += out.items as u64;
                if let Some(c) = out.correct {
                    *p.epoch_correct.get_or_insert(0) += c as u64;
                }
                if cfg.clip > 0.0 && norm > cfg.clip {
                    p.epoch_clipped += 1;
                }
                p.step_in_epoch += 1;
                p.global_step += 1;
                let elapsed = p.epoch_seconds + clock.elapsed().as_secs_f64();
                obs.step(&StepReport {
                    epoch,
                    step: p.step_in_epoch,
                    steps,
                    loss: out.loss / out.units.max(1) as f64,
                    lr: step_lr,
                    items_per_second: p.epoch_items as f64 / elapsed.max(1e-9),
                    grad_norm: norm,
                });
                if cfg.checkpoint_every > 0
                    && p.step_in_epoch % cfg.checkpoint_every == 0
                    && p.step_in_epoch < steps
                {
                    p.add_time(&mut clock);
                    p.rng = rng.state();
                    self.save_checkpoint()?;
                }
            }
            self.progress.add_time(&mut clock);
            // The development score, and the model saved for it, are the averaged weights'.
            let averaged = self.swap_average();
            let eval = self.task.evaluate();
            let bad = [eval.loss, eval.score]
                .into_iter()
                .flatten()
                .find(|v| !v.is_finite());
            if let Some(bad) = bad {
                bail!(
                    "the development loss or score became {bad} after epoch {epoch}: training diverged. The last good checkpoint is {}; \
                     rerun with a smaller --lr or a --clip, then --resume",
                    self.out_dir.join(CHECKPOINT).display()
                );
            }
            if let (Some(loss), Some(bound)) = (eval.loss, self.task.loss_bound()) {
                if loss > bound {
                    bail!(
                        "training diverged: the development loss became {loss:.4} after epoch {epoch} (bound {bound:.4}, \
                         100 times a uniform guess); the last good checkpoint is {}. Rerun with a smaller --lr or a --clip, then --resume",
                        self.out_dir.join(CHECKPOINT).display()
                    );
                }
            }
            let p = &mut self.progress;
            let train_loss = p.epoch_loss / p.epoch_units.max(1) as f64;
            let record = EpochRecord {
                epoch,
                lr,
                train_loss,
                train_perplexity: perplexity.then(|| train_loss.exp()),
                train_accuracy: p
                    .epoch_correct
                    .map(|c| 100.0 * c as f64 / p.epoch_items.max(1) as f64),
                valid_loss: eval.loss,
                valid_perplexity: eval.loss.filter(|_| perplexity).map(f64::exp),
                valid_accuracy: eval.accuracy,
                valid_f1: eval.f1,
                valid_bleu: eval.bleu,
                items_per_second: p.epoch_items as f64 / p.epoch_seconds.max(1e-9),
                predict_items_per_second: eval.items_per_second,
                seconds: p.epoch_seconds,
                clipped_fraction: p.epoch_clipped as f64 / steps as f64,
            };
            let better = match (eval.score, p.best_score) {
                (Some(s), Some(b)) => s > b,
                _ => true,
            };
            if better {
                p.best_score = eval.score;
                p.best_epoch = epoch;
                p.epochs_without_gain = 0;
            } else {
                p.epochs_without_gain += 1;
                if cfg.plateau_decay < 1.0 {
                    p.lr_scale *= cfg.plateau_decay;
                    obs.note(&format!(
                        "the development score did not improve; learning rate scaled by {}",
                        cfg.plateau_decay
                    ));
                }
            }
            p.history.push(record.clone());
            p.epoch += 1;
            p.step_in_epoch = 0;
            p.epoch_loss = 0.0;
            p.epoch_units = 0;
            p.epoch_items = 0;
            p.epoch_correct = None;
            p.epoch_clipped = 0;
            p.epoch_seconds = 0.0;
            p.rng = rng.state();
            obs.epoch_end(&record, better);
            if better || cfg.keep == Keep::Last {
                self.save_model()?;
            }
            if averaged {
                self.swap_average();
            }
            self.save_checkpoint()?;
            write_metrics(&self.out_dir.join(METRICS), &self.progress.history)?;
        }
        let trained = self.progress.global_step > session_start_steps;
        let nothing_saved = !self.out_dir.join(MODEL).exists();
        if nothing_saved || (cfg.keep == Keep::Last && trained) {
            let averaged = self.swap_average();
            let saved = self.save_model();
            if averaged {
                self.swap_average();
            }
            saved?;
        }
        let p = &self.progress;
        Ok(RunSummary {
            epochs_completed: p.history.len(),
            best_epoch: p.best_epoch,
            steps: p.global_step,
            train_items: p.train_items,
            train_items_per_second: p.train_items as f64 / p.train_seconds.max(1e-9),
            wall_seconds: wall.elapsed().as_secs_f64(),
            stopped_early,
        })
    }

    /// Exchanges the trainable weights with their average (when averaging and after the first
    /// update; returns whether it did), and lets the task copy the new values to its replicas.
    fn swap_average(&mut self) -> bool {
        if !self.average.enabled() {
            return false;
        }
        let swapped = self.average.swap(&mut self.task.trainable());
        if swapped {
            self.task.after_update(false);
        }
        swapped
    }

    /// Clips and applies the step's gradient; returns its global norm before clipping.
    fn step(&mut self, out: &StepOutcome, lr: f64) -> Result<f64> {
        let cfg = &self.config;
        let mut params = self.task.trainable();
        let mut sq = 0.0;
        for (i, p) in params.iter_mut().enumerate() {
            sq += match out.measured_sq_norms.iter().find(|m| m.0 == i) {
                Some(&(_, known)) => known,
                None => p.grad_sq_norm(),
            };
        }
        let norm = sq.sqrt();
        if !norm.is_finite() {
            return Ok(norm);
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
        self.average.update(&params);
        drop(params);
        self.task.after_update(cfg.optim == OptimKind::Sgd);
        Ok(norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model type plugs into the loop by implementing [`Task`], nothing more: logistic
    /// regression on four points, with a shuffled mini-batch plan, in ~60 lines.
    struct Logistic {
        w: Param<f32>, // (2): weight, bias
        xs: Vec<(f32, f32)>,
        plan: Vec<usize>,
        /// Makes the loss NaN from this global step on (for the divergence stop).
        poison_at: Option<usize>,
        steps: usize,
    }

    impl Logistic {
        fn new() -> Logistic {
            Logistic {
                w: Param::zeros("w", &[2]),
                xs: vec![(-2.0, 0.0), (-1.0, 0.0), (1.0, 1.0), (3.0, 1.0)],
                plan: Vec::new(),
                poison_at: None,
                steps: 0,
            }
        }

        /// Σ -log p(y|x) over `idx`, and its gradient added into w.grad when `grad`.
        fn loss(&mut self, idx: &[usize], grad: bool) -> f64 {
            let mut total = 0.0;
            for &i in idx {
                let (x, y) = self.xs[i];
                let p = 1.0 / (1.0 + (-(self.w.value[0] * x + self.w.value[1])).exp());
                total -= f64::from(if y > 0.5 { p } else { 1.0 - p }).ln();
                if grad {
                    // d/dz -log p(y|z) = σ(z) - y, z = w·x + b.
                    self.w.grad[0] += (p - y) * x / idx.len() as f32;
                    self.w.grad[1] += (p - y) / idx.len() as f32;
                }
            }
            total
        }
    }

    impl Task for Logistic {
        fn kind(&self) -> &'static str {
            "logistic"
        }
        fn trainable(&mut self) -> Vec<&mut Param<f32>> {
            vec![&mut self.w]
        }
        fn plan_epoch(&mut self, rng: &mut Rng) -> usize {
            self.plan = (0..self.xs.len()).collect();
            for i in (1..self.plan.len()).rev() {
                self.plan.swap(i, rng.below(i as u64 + 1) as usize);
            }
            self.plan.len() / 2
        }
        fn train_step(&mut self, step: usize, _rng: &mut Rng) -> StepOutcome {
            self.w.zero_grad();
            self.steps += 1;
            let idx = self.plan[2 * step..2 * step + 2].to_vec();
            let mut loss = self.loss(&idx, true);
            if self.poison_at.is_some_and(|k| self.steps >= k) {
                loss = f64::NAN;
            }
            StepOutcome {
                loss,
                units: 2,
                items: 2,
                ..Default::default()
            }
        }
        fn evaluate(&mut self) -> Evaluation {
            let loss = self.loss(&[0, 1, 2, 3], false) / 4.0;
            Evaluation {
                loss: Some(loss),
                score: Some(-loss),
                ..Default::default()
            }
        }
        fn model_tensors(&self) -> Result<Tensors> {
            let mut t = Tensors::default();
            t.insert_params("model.", &[&self.w]);
            Ok(t)
        }
        fn restore(&mut self, t: &Tensors, path: &Path) -> Result<()> {
            t.load_params("model.", &mut [&mut self.w], path)
        }
    }

    fn config(epochs: usize) -> TrainConfig {
        TrainConfig {
            epochs,
            lr: 0.5,
            schedule: Schedule::Inverse { decay: 0.1 },
            plateau_decay: 1.0,
            patience: 0,
            optim: OptimKind::Adam,
            weight_decay: 0.0,
            clip: 1.0,
            clip_value: 0.0,
            seed: 3,
            checkpoint_every: 1,
            keep: Keep::Best,
            warmup_steps: 0,
            average: 0.0,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("firth-trainer-{}-{name}", std::process::id()));
        std::fs::remove_dir_all(&d).ok();
        d
    }

    #[test]
    fn a_new_model_type_trains_resumes_and_stops_through_the_trait() {
        // Trains: the development loss falls from ln 2 (w = 0).
        let full_dir = temp("full");
        let mut full = Trainer::new(Logistic::new(), config(6), &full_dir);
        let run = full.run(Limits::default(), &mut ()).unwrap();
        assert_eq!((run.epochs_completed, run.steps), (6, 12));
        let first = full.progress.history[0].valid_loss.unwrap();
        let last = full.progress.history[5].valid_loss.unwrap();
        assert!(first < 2f64.ln() && last < 0.5 * first, "{first} -> {last}");
        assert_eq!(
            read_metrics(&full_dir.join(METRICS)).unwrap(),
            full.progress.history
        );

        // Stopped after 5 steps (mid-epoch), then resumed: the same weights, bit for bit.
        let part_dir = temp("part");
        let mut part = Trainer::new(Logistic::new(), config(6), &part_dir);
        let limits = Limits {
            max_steps: Some(5),
            max_seconds: None,
        };
        assert!(part.run(limits, &mut ()).unwrap().stopped_early);
        // An observer that asks to stop ends the run the same way, checkpoint included.
        struct StopAfter(u32);
        impl Observer for StopAfter {
            fn should_stop(&mut self) -> bool {
                self.0 = self.0.saturating_sub(1);
                self.0 == 0
            }
        }
        let stop_dir = temp("stop");
        let mut stopped = Trainer::new(Logistic::new(), config(6), &stop_dir);
        let run = stopped.run(Limits::default(), &mut StopAfter(6)).unwrap();
        assert!(run.stopped_early);
        assert_eq!(stopped.progress.global_step, 5);
        assert!(stop_dir.join(CHECKPOINT).exists());
        let mut resumed = Trainer::resume(Logistic::new(), config(6), &part_dir).unwrap();
        assert_eq!(resumed.progress.step_in_epoch, 1);
        resumed.run(Limits::default(), &mut ()).unwrap();
        assert_eq!(resumed.task.w.value, full.task.w.value);
        assert_eq!(resumed.progress.history.len(), 6);

        // A changed setting other than --epochs is refused on resume.
        let mut other = config(6);
        other.lr = 0.25;
        let e = Trainer::resume(Logistic::new(), other, &part_dir)
            .err()
            .unwrap();
        assert!(
            format!("{e:#}").contains("only --epochs may change"),
            "{e:#}"
        );

        // A non-finite loss stops with a message naming the last good checkpoint.
        let bad_dir = temp("bad");
        let mut task = Logistic::new();
        task.poison_at = Some(4);
        let mut bad = Trainer::new(task, config(6), &bad_dir);
        let e = bad.run(Limits::default(), &mut ()).unwrap_err().to_string();
        assert!(
            e.contains("training loss became NaN") && e.contains(CHECKPOINT),
            "{e}"
        );
        // A development loss past the task's bound stops too (after the first epoch).
        struct Bounded(Logistic);
        impl Task for Bounded {
            fn kind(&self) -> &'static str {
                "logistic"
            }
            fn trainable(&mut self) -> Vec<&mut Param<f32>> {
                self.0.trainable()
            }
            fn plan_epoch(&mut self, rng: &mut Rng) -> usize {
                self.0.plan_epoch(rng)
            }
            fn train_step(&mut self, step: usize, rng: &mut Rng) -> StepOutcome {
                self.0.train_step(step, rng)
            }
            fn evaluate(&mut self) -> Evaluation {
                self.0.evaluate()
            }
            fn loss_bound(&self) -> Option<f64> {
                Some(0.01)
            }
            fn model_tensors(&self) -> Result<Tensors> {
                self.0.model_tensors()
            }
            fn restore(&mut self, t: &Tensors, path: &Path) -> Result<()> {
                self.0.restore(t, path)
            }
        }
        let bounded_dir = temp("bounded");
        let mut bounded = Trainer::new(Bounded(Logistic::new()), config(6), &bounded_dir);
        let e = bounded
            .run(Limits::default(), &mut ())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("training diverged") && e.contains("after epoch 1"),
            "{e}"
        );
        std::fs::remove_dir_all(&bounded_dir).ok();
        // The checkpoint of step 3 is there and loads.
        let ok = Trainer::resume(Logistic::new(), config(6), &bad_dir).unwrap();
        assert_eq!(ok.progress.global_step, 3);
        for d in [full_dir, part_dir, bad_dir] {
            std::fs::remove_dir_all(d).ok();
        }
    }

    /// The average follows a ← a + (1 − d_k)(w − a) with d_k = min(decay, (1 + k)/(10 + k)),
    /// starting at the weights of the first update.
    #[test]
    fn weight_average_follows_its_formula() {
        let mut p = Param::<f32>::zeros("w", &[2]);
        let mut avg = WeightAverage::new(0.5);
        let ws = [[1.0f32, -2.0], [3.0, 0.0], [0.0, 4.0]];
        for w in ws {
            p.value.copy_from_slice(&w);
            avg.update(&[&mut p]);
        }
        // a1 = w1; a2 = a1 + 0.75 (w2 − a1) (d = 3/12); a3 = a2 + (1 − 4/13)(w3 − a2).
        let a2 = [1.0 + 0.75 * 2.0, -2.0 + 0.75 * 2.0];
        let k3 = 1.0 - 4.0 / 13.0;
        let want = [a2[0] + k3 * (0.0 - a2[0]), a2[1] + k3 * (4.0 - a2[1])];
        for (a, b) in avg.values[0].iter().zip(want) {
            assert!(
                (*a as f64 - b).abs() < 1e-6,
                "{:?} vs {want:?}",
                avg.values[0]
            );
        }
        // Swapping twice restores both; off, nothing is kept.
        assert!(avg.swap(&mut [&mut p]));
        assert!((p.value[1] as f64 - want[1]).abs() < 1e-6);
        avg.swap(&mut [&mut p]);
        assert_eq!(p.value, vec![0.0, 4.0]);
        let mut off = WeightAverage::new(0.0);
        off.update(&[&mut p]);
        assert!(off.values.is_empty() && !off.swap(&mut [&mut p]));
    }

    /// With averaging, the development score and the saved model are the average's, training
    /// continues from the weights as trained, and a resumed run keeps the same average.
    #[test]
    fn averaged_weights_are_scored_saved_and_resumed() {
        let mut cfg = config(6);
        cfg.average = 0.8;
        cfg.keep = Keep::Last;
        let full_dir = temp("avg-full");
        let mut full = Trainer::new(Logistic::new(), cfg.clone(), &full_dir);
        full.run(Limits::default(), &mut ()).unwrap();
        let avg = full.average.values[0].clone();
        assert_ne!(
            avg, full.task.w.value,
            "the average differs from the last weights"
        );
        let saved = Tensors::load(&full_dir.join(MODEL)).unwrap();
        assert_eq!(saved.get("model.w", &full_dir).unwrap().1, &avg[..]);
        let mut scored = Logistic::new();
        scored.w.value = avg.clone();
        let dev = scored.evaluate().loss.unwrap();
        assert_eq!(full.progress.history[5].valid_loss, Some(dev));
        // Without averaging the same run trains the same weights (the average only watches).
        let plain_dir = temp("avg-plain");
        let mut plain = Trainer::new(Logistic::new(), config(6), &plain_dir);
        plain.run(Limits::default(), &mut ()).unwrap();
        assert_eq!(plain.task.w.value, full.task.w.value);

        let part_dir = temp("avg-part");
        let mut part = Trainer::new(Logistic::new(), cfg.clone(), &part_dir);
        let limits = Limits {
            max_steps: Some(7),
            max_seconds: None,
        };
        assert!(part.run(limits, &mut ()).unwrap().stopped_early);
        let mut resumed = Trainer::resume(Logistic::new(), cfg, &part_dir).unwrap();
        assert_eq!(resumed.average.updates, 7);
        resumed.run(Limits::default(), &mut ()).unwrap();
        assert_eq!(resumed.task.w.value, full.task.w.value);
        assert_eq!(resumed.average.values[0], avg);
        for d in [full_dir, plain_dir, part_dir] {
            std::fs::remove_dir_all(d).ok();
        }
        // A decay outside [0, 1) is refused before anything runs.
        let mut bad = config(6);
        bad.average = 1.0;
        let dir = temp("avg-bad");
        let e = Trainer::start(Logistic::new(), bad, &dir, false)
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("--average"), "{e:#}");
    }

    #[test]
    fn schedules_match_their_formulas() {
        let zaremba = Schedule::Step {
            decay: 0.5,
            start: 5,
        };
        let lrs: Vec<f64> = (1..=7).map(|e| zaremba.lr(1.0, e)).collect();
        assert_eq!(lrs, vec![1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125]);
        let inverse = Schedule::Inverse { decay: 0.05 };
        assert_eq!(inverse.lr(0.015, 1), 0.015);
        assert!((inverse.lr(0.015, 3) - 0.015 / 1.1).abs() < 1e-15);
        assert_eq!(Schedule::CONSTANT.lr(0.3, 9), 0.3);
    }

    /// Warm-up: update k uses lr·min(1, k/N) on top of the epoch's schedule, counted over the
    /// run (so it continues across epochs and a resume).
    #[test]
    fn warmup_ramps_the_learning_rate_linearly() {
        struct Lrs(Vec<f64>);
        impl Observer for Lrs {
            fn step(&mut self, r: &StepReport) {
                self.0.push(r.lr);
            }
        }
        let dir = temp("warmup");
        let mut cfg = config(3);
        cfg.schedule = Schedule::CONSTANT;
        cfg.warmup_steps = 3;
        let mut t = Trainer::new(Logistic::new(), cfg.clone(), &dir);
        let mut lrs = Lrs(Vec::new());
        t.run(Limits::default(), &mut lrs).unwrap();
        let want = [0.5 / 3.0, 1.0 / 3.0, 0.5, 0.5, 0.5, 0.5];
        assert_eq!(lrs.0.len(), want.len());
        for (a, b) in lrs.0.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{:?}", lrs.0);
        }
        assert_eq!(cfg.warmup_factor(1), 1.0 / 3.0);
        assert_eq!(cfg.warmup_factor(7), 1.0);
        cfg.warmup_steps = 0;
        assert_eq!(cfg.warmup_factor(1), 1.0);
        // Old checkpoints without the field read as no warm-up.
        let mut json: serde_json::Value = serde_json::to_value(&cfg).unwrap();
        json.as_object_mut().unwrap().remove("warmup_steps");
        let old: TrainConfig = serde_json::from_value(json).unwrap();
        assert_eq!(old.warmup_steps, 0);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn metrics_round_trip_and_old_headers_read() {
        let dir = std::env::temp_dir().join(format!("firth-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rec = EpochRecord {
            epoch: 2,
            lr: 0.5,
            train_loss: 4.25,
            train_perplexity: Some(70.1),
            train_accuracy: None,
            valid_loss: Some(4.5),
            valid_perplexity: Some(90.0),
            valid_accuracy: None,
            valid_f1: None,
            valid_bleu: Some(30.5),
            items_per_second: 1234.5,
            predict_items_per_second: None,
            seconds: 3.0,
            clipped_fraction: 0.25,
        };
        let path = dir.join("metrics.csv");
        write_metrics(&path, &[rec.clone()]).unwrap();
        assert_eq!(read_metrics(&path).unwrap(), vec![rec]);
        // A tagger's metrics.csv from before the one loop.
        std::fs::write(
            &path,
            "epoch,lr,train_loss,dev_accuracy,dev_f1,train_sentences_per_second,predict_sentences_per_second,seconds\n1,0.015,2.5,80.5,71.25,100.0,300.0,9.5\n",
        )
        .unwrap();
        let old = &read_metrics(&path).unwrap()[0];
        assert_eq!(old.valid_accuracy, Some(80.5));
        assert_eq!(old.valid_f1, Some(71.25));
        assert_eq!(old.items_per_second, 100.0);
        assert_eq!(old.predict_items_per_second, Some(300.0));
        assert_eq!(old.train_perplexity, None);
        std::fs::write(&path, "epoch,lr\n1,x\n").unwrap();
        let err = read_metrics(&path).unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
        write_metrics(&path, &[]).unwrap();
        assert!(read_metrics(&path).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }
}
