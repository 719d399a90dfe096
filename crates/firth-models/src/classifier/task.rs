//! The classifier as a [`Task`] of the one training loop.

use super::bundle::Bundle;
use super::data::Encoded;
use super::eval::{argmax, batch_features, evaluate};
use crate::trainer::{check_model_settings, Evaluation, Schedule, StepOutcome, Task, TrainConfig};
use anyhow::{bail, Result};
use firth_nn::checkpoint::Tensors;
use firth_nn::optim::OptimKind;
use firth_nn::{Param, ParamSet, Rng};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A classifier's training settings.
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
    /// Decay of the moving average of the weights that is scored and kept (0 = off).
    #[serde(default)]
    pub average: f64,
}

impl ClassifyTrainConfig {
    /// The loop's settings: the model of the best development epoch is kept.
    pub fn loop_config(&self) -> TrainConfig {
        let schedule = Schedule::Step {
            decay: self.lr_decay,
            start: 2,
        };
        TrainConfig {
            patience: self.patience,
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

/// A classifier with its training and development examples.
pub struct ClassifyTask {
    pub bundle: Bundle,
    pub batch_size: usize,
    pub train: Encoded,
    pub dev: Encoded,
    plan: Vec<Vec<usize>>,
}

impl ClassifyTask {
    pub fn new(bundle: Bundle, batch_size: usize, train: Encoded, dev: Encoded) -> ClassifyTask {
        ClassifyTask {
            bundle,
            batch_size,
            train,
            dev,
            plan: Vec::new(),
        }
    }
}

/// Fisher-Yates.
pub(crate) fn shuffle<X>(v: &mut [X], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

impl Task for ClassifyTask {
    fn kind(&self) -> &'static str {
        "classifier"
    }

    fn trainable(&mut self) -> Vec<&mut Param<f32>> {
        self.bundle.model.trainable_mut()
    }

    /// Shuffled, then grouped so each batch holds sentences of similar length (shuffle, sort
    /// windows of 50 batches by length, cut, shuffle the batches), which keeps padding, and
    /// so wasted work, small.
    fn plan_epoch(&mut self, rng: &mut Rng) -> usize {
        let n = self.train.sents.len();
        let bs = self.batch_size.max(1);
        let mut order: Vec<usize> = (0..n).collect();
        shuffle(&mut order, rng);
        self.plan.clear();
        for window in order.chunks_mut(bs * 50) {
            window.sort_by_key(|&i| self.train.sents[i].len());
            self.plan.extend(window.chunks(bs).map(|c| c.to_vec()));
        }
        shuffle(&mut self.plan, rng);
        self.plan.len()
    }

    fn train_step(&mut self, step: usize, rng: &mut Rng) -> StepOutcome {
        let idx = &self.plan[step];
        let sents: Vec<&[u32]> = idx.iter().map(|&i| &self.train.sents[i][..]).collect();
        // (len, Kl) per sentence, or none for a model without character-LM features.
        let lm = batch_features(&self.train.lm, idx.iter().copied());
        let y: Vec<u32> = idx.iter().map(|&i| self.train.labels[i]).collect();
        let model = &mut self.bundle.model;
        model.zero_grad();
        let loss = model.forward(&sents, &lm, Some(&y), true, rng);
        let c = model.config.classes;
        // The probabilities here are the training forward's, with dropout.
        let correct = model
            .probs()
            .chunks_exact(c)
            .zip(&y)
            .filter(|(row, &t)| argmax(row) == t)
            .count();
        if loss.is_finite() {
            model.backward(1.0 / idx.len() as f64);
        }
        StepOutcome {
            loss,
            units: idx.len(),
            items: idx.len(),
            correct: Some(correct),
            ..Default::default()
        }
    }

    fn evaluate(&mut self) -> Evaluation {
        let dev = evaluate(
            &mut self.bundle.model,
            &self.dev.sents,
            &self.dev.lm,
            Some(&self.dev.labels),
            128,
        );
        Evaluation {
            loss: Some(dev.loss),
            accuracy: Some(dev.accuracy),
            f1: None,
            items_per_second: None,
            score: Some(dev.accuracy),

            ..Default::default()
        }
    }

    fn model_tensors(&self) -> Result<Tensors> {
        self.bundle.to_tensors()
    }

    fn restore(&mut self, t: &Tensors, path: &Path) -> Result<()> {
        let saved = Bundle::from_tensors(t, path)?;
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
        let (a, b) = (&saved.model.config, &self.bundle.model.config);
        check_model_settings(path, a, b)?;
        self.bundle = saved;
        Ok(())
    }
}
