//! The tagger as a [`Task`] of the one training loop.

use super::batch::{make_batches, Batch};
use super::eval::evaluate;
use super::vocab::{Encoded, TagVocab};
use super::Tagger;
use crate::trainer::{check_model_settings, Evaluation, Schedule, StepOutcome, Task, TrainConfig};
use anyhow::{bail, Result};
use firth_nn::checkpoint::Tensors;
use firth_nn::optim::OptimKind;
use firth_nn::{Param, ParamSet, Rng};
use firth_text::conll::Sentence;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A tagger's training settings.
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
    /// Decay of the moving average of the weights that is scored and kept (0 = off).
    #[serde(default)]
    pub average: f64,
}

impl TagTrainConfig {
    /// The loop's settings: the model of the best development epoch is kept.
    pub fn loop_config(&self) -> TrainConfig {
        let schedule = Schedule::Inverse {
            decay: self.lr_decay,
        };
        TrainConfig {
            average: self.average,
            ..TrainConfig::best_epoch(
                self.epochs,
                self.lr,
                schedule,
                self.optim,
                self.weight_decay,
                self.clip,
                self.seed,
            )
        }
    }
}

/// A tagger with its training and development sentences.
pub struct TagTask {
    pub model: Tagger<f32>,
    pub vocab: TagVocab,
    /// Sentences per batch.
    pub batch_size: usize,
    pub train: Vec<Encoded>,
    /// Gold development sentences (tags compared as strings) and their encoding.
    pub dev: Option<(Vec<Sentence>, Vec<Encoded>)>,
    plan: Vec<Vec<usize>>,
    batch: Batch,
}

impl TagTask {
    pub fn new(
        model: Tagger<f32>,
        vocab: TagVocab,
        batch_size: usize,
        train: Vec<Encoded>,
        dev: Option<(Vec<Sentence>, Vec<Encoded>)>,
    ) -> TagTask {
        TagTask {
            model,
            vocab,
            batch_size,
            train,
            dev,
            plan: Vec::new(),
            batch: Batch::default(),
        }
    }
}

impl Task for TagTask {
    fn kind(&self) -> &'static str {
        "tagger"
    }

    fn trainable(&mut self) -> Vec<&mut Param<f32>> {
        self.model.trainable_mut()
    }

    /// Shuffled batches of sentences of similar length.
    fn plan_epoch(&mut self, rng: &mut Rng) -> usize {
        self.plan = make_batches(&self.train, self.batch_size, rng);
        self.plan.len()
    }

    fn train_step(&mut self, step: usize, rng: &mut Rng) -> StepOutcome {
        self.batch.fill(&self.train, &self.plan[step]);
        let b = &self.batch;
        self.model.zero_grad();
        let loss = self.model.forward(b, true, rng);
        // Mean over sentences for a CRF, over tokens for softmax (PyTorch's defaults).
        let units = if self.model.config.crf {
            b.batch
        } else {
            b.rows.len()
        };
        if loss.is_finite() {
            self.model.backward(b, 1.0 / units as f64);
        }
        StepOutcome {
            loss,
            units,
            items: b.batch,
            ..Default::default()
        }
    }

    /// Token accuracy; entity F1 for span tags, which is then the score.
    fn evaluate(&mut self) -> Evaluation {
        let Some((gold, enc)) = &self.dev else {
            return Evaluation::default();
        };
        let s = evaluate(&mut self.model, &self.vocab, gold, enc, 256);
        let f1 = s.ner.as_ref().map(|r| r.f1);
        Evaluation {
            loss: None,
            accuracy: Some(s.accuracy),
            f1,
            items_per_second: Some(s.sentences_per_second),
            score: Some(f1.unwrap_or(s.accuracy)),

            ..Default::default()
        }
    }

    fn model_tensors(&self) -> Result<Tensors> {
        self.model.to_tensors(&self.vocab)
    }

    fn restore(&mut self, t: &Tensors, path: &Path) -> Result<()> {
        let (model, saved) = Tagger::from_tensors(t, path)?;
        if saved.tags != self.vocab.tags {
            bail!(
                "{}: the checkpoint's label set differs from the training file's:\n  checkpoint: {}\n  this file:  {}\nresume with the same --train file and --scheme, or start over without --resume",
                path.display(),
                saved.tags.join(" "),
                self.vocab.tags.join(" ")
            );
        }
        if saved.words != self.vocab.words || saved.chars != self.vocab.chars {
            bail!("{}: the checkpoint's vocabulary differs from this run's; resume with the same --train/--dev/--test and --embeddings files", path.display());
        }
        check_model_settings(path, &model.config, &self.model.config)?;
        self.model = model;
        self.vocab = saved;
        Ok(())
    }
}
