//! The speech recogniser as a [`Task`] of the one training loop.
//!
//! A step is one batch of utterances of similar frame counts. With K threads the model and K-1
//! replicas each take a contiguous slice of the batch and run forward through the CTC on a
//! thread of their own; the feasible utterances of all slices are then counted, so that every
//! worker weights its utterances for the whole batch's mean (1/(B'·|y_b|)), and each runs its
//! backward; the replicas' gradients are added to the model's. After each update the replicas
//! copy the new weights.
//!
//! The development score is minus the greedy word error rate: the epoch with the lowest WER is
//! kept (ties go to the earlier epoch, as the loop keeps the first best).

use super::model::{SpeechBatch, SpeechModel, BLANK};
use super::vocab::SpeechVocab;
use crate::trainer::{check_model_settings, check_resume_settings, Evaluation, StepOutcome, Task};
use anyhow::{bail, Context, Result};
use firth_audio::{FeatureConfig, Features, SpecAugment};
use firth_eval::asr::AsrTally;
use firth_nn::checkpoint::Tensors;
use firth_nn::{Param, ParamSet, Rng};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// One utterance in memory: its features and transcript.
#[derive(Clone, Debug)]
pub struct Utterance {
    pub feats: Features,
    /// Unit ids of the transcript (training data; empty where unused).
    pub labels: Vec<u32>,
    /// Words separated by single spaces.
    pub transcript: String,
}

/// The recogniser's own training settings (the loop's are in `TrainConfig`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeechSettings {
    /// Utterances per batch.
    pub batch: usize,
    /// Masks drawn afresh for every training utterance of every epoch (None: off).
    pub spec_augment: Option<SpecAugment>,
}

pub struct SpeechTask {
    pub model: SpeechModel<f32>,
    pub vocab: SpeechVocab,
    pub features: FeatureConfig,
    pub settings: SpeechSettings,
    pub train: Vec<Utterance>,
    pub dev: Option<Vec<Utterance>>,
    /// Development WER after each evaluation, by epoch (metrics.csv has no WER column).
    pub dev_wer: Vec<(usize, f64)>,
    /// Training utterances too short for their transcript once stacked (fewer encoder steps
    /// than CTC needs: loss +∞): left out of every step's mean. Counted once from the data,
    /// so the figure is the same after `--resume`.
    pub impossible: u64,
    plan: Vec<Vec<usize>>,
    replicas: Vec<SpeechModel<f32>>,
    shards: Vec<SpeechBatch>,
}

/// Batches of `batch` utterances of similar length: the items are shuffled, cut into pools of
/// 50 batches, each pool sorted by frame count and cut into batches, and the batches shuffled,
/// so padding stays small while batches still differ from epoch to epoch.
pub fn plan_batches(frames: &[usize], batch: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..frames.len()).collect();
    shuffle(&mut idx, rng);
    let mut plan = Vec::new();
    for pool in idx.chunks_mut(50 * batch.max(1)) {
        pool.sort_by_key(|&i| frames[i]);
        plan.extend(pool.chunks(batch.max(1)).map(|c| c.to_vec()));
    }
    shuffle(&mut plan, rng);
    plan
}

/// Fisher–Yates.
fn shuffle<X>(v: &mut [X], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i as u64 + 1) as usize);
    }
}

impl SpeechTask {
    pub fn new(
        model: SpeechModel<f32>,
        vocab: SpeechVocab,
        features: FeatureConfig,
        settings: SpeechSettings,
        train: Vec<Utterance>,
        dev: Option<Vec<Utterance>>,
    ) -> SpeechTask {
        let stack = model.config.stack.max(1);
        let impossible = train
            .iter()
            .filter(|u| {
                u.feats.frames.div_ceil(stack).max(1) < firth_nn::ctc::min_frames(&u.labels)
            })
            .count() as u64;
        SpeechTask {
            model,
            vocab,
            features,
            settings,
            train,
            dev,
            dev_wer: Vec::new(),
            impossible,
            plan: Vec::new(),
            replicas: Vec::new(),
            shards: Vec::new(),
        }
    }

    /// Forward and backward of the utterances `feats` (already augmented), split over the
    /// workers; leaves the gradient of the batch's mean loss in the model and returns
    /// (Σ loss_b/|y_b| over feasible b, B').
    fn forward_backward(&mut self, items: &[(&Features, &[u32])], rng: &mut Rng) -> (f64, usize) {
        use rayon::prelude::*;
        let workers = (self.replicas.len() + 1).min(items.len()).max(1);
        let (dim, stack) = (self.model.config.input, self.model.config.stack);
        self.shards.resize_with(workers, SpeechBatch::default);
        for (k, shard) in self.shards.iter_mut().enumerate() {
            let part = &items[k * items.len() / workers..(k + 1) * items.len() / workers];
            shard.fill(
                part.iter().map(|(f, y)| (&f.data[..], f.frames, *y)),
                dim,
                stack,
            );
        }
        let mut rngs: Vec<Rng> = (0..workers).map(|_| Rng::new(rng.next_u64())).collect();
        self.model.zero_grad();
        let shards = &self.shards;
        {
            let mut all: Vec<&mut SpeechModel<f32>> = std::iter::once(&mut self.model)
                .chain(self.replicas.iter_mut())
                .take(workers)
                .collect();
            if workers == 1 {
                all[0].forward(&shards[0], true, &mut rngs[0]);
            } else {
                all.par_iter_mut()
                    .zip(rngs.par_iter_mut())
                    .enumerate()
                    .for_each(|(k, (m, r))| {
                        firth_nn::par::sequential(|| {
                            if k > 0 {
                                m.zero_grad();
                            }
                            m.forward(&shards[k], true, r);
                        })
                    });
            }
        }
        let models: Vec<&SpeechModel<f32>> = std::iter::once(&self.model)
            .chain(self.replicas.iter())
            .take(workers)
            .collect();
        let feasible: usize = models
            .iter()
            .zip(shards)
            .map(|(m, s)| (0..s.batch).filter(|&i| m.ctc().feasible(i)).count())
            .sum();
        let weights: Vec<Vec<f64>> = models
            .iter()
            .zip(shards)
            .map(|(m, s)| m.mean_weights(s, feasible))
            .collect();
        // Σ loss_b/|y_b|: B' times the mean, so the loop's report (÷ units = B') is the mean.
        let loss: f64 = models
            .iter()
            .zip(&weights)
            .map(|(m, w)| {
                m.ctc()
                    .losses()
                    .iter()
                    .zip(w)
                    .filter(|(_, &w)| w > 0.0)
                    .map(|(l, w)| l * w * feasible as f64)
                    .sum::<f64>()
            })
            .sum();
        if feasible == 0 || !loss.is_finite() {
            return (loss, feasible);
        }
        let mut all: Vec<&mut SpeechModel<f32>> = std::iter::once(&mut self.model)
            .chain(self.replicas.iter_mut())
            .take(workers)
            .collect();
        if workers == 1 {
            all[0].backward(&weights[0]);
        } else {
            all.par_iter_mut()
                .zip(weights.par_iter())
                .for_each(|(m, w)| firth_nn::par::sequential(|| m.backward(w)));
            drop(all);
            let mut total = self.model.params_mut();
            for r in self.replicas.iter_mut().take(workers - 1) {
                firth_nn::replicas::add_grads(&mut total, &mut r.params_mut());
            }
        }
        (loss, feasible)
    }
}

/// Greedy transcripts of `utts` (no dropout), decoded in batches of similar length, in order.
pub fn greedy_transcripts(
    model: &mut SpeechModel<f32>,
    vocab: &SpeechVocab,
    utts: &[Utterance],
    batch: usize,
) -> Vec<String> {
    let frames: Vec<usize> = utts.iter().map(|u| u.feats.frames).collect();
    let mut order: Vec<usize> = (0..utts.len()).collect();
    order.sort_by_key(|&i| frames[i]);
    let mut out = vec![String::new(); utts.len()];
    let mut b = SpeechBatch::default();
    let (dim, stack, v) = (model.config.input, model.config.stack, model.config.units);
    let mut rng = Rng::new(0);
    for chunk in order.chunks(batch.max(1)) {
        b.fill(
            chunk
                .iter()
                .map(|&i| (&utts[i].feats.data[..], utts[i].feats.frames, &[][..])),
            dim,
            stack,
        );
        model.forward_logits(&b, false, &mut rng);
        for (k, &i) in chunk.iter().enumerate() {
            let rows = super::decode::item_rows(model.logits(), b.batch, v, k, b.lengths[k]);
            let labels = super::decode::greedy(&rows, v, BLANK);
            out[i] = vocab.transcript(&labels);
        }
    }
    out
}

impl Task for SpeechTask {
    fn kind(&self) -> &'static str {
        "speech"
    }

    fn trainable(&mut self) -> Vec<&mut Param<f32>> {
        self.model.params_mut()
    }

    fn plan_epoch(&mut self, rng: &mut Rng) -> usize {
        let frames: Vec<usize> = self.train.iter().map(|u| u.feats.frames).collect();
        self.plan = plan_batches(&frames, self.settings.batch, rng);
        self.plan.len()
    }

    fn set_workers(&mut self, workers: usize) {
        self.replicas.clear();
        for _ in 1..workers {
            let mut r = self.model.clone();
            r.zero_grad();
            self.replicas.push(r);
        }
    }

    fn train_step(&mut self, step: usize, rng: &mut Rng) -> StepOutcome {
        let idx = std::mem::take(&mut self.plan[step]);
        let augmented: Option<Vec<Features>> = self.settings.spec_augment.as_ref().map(|sa| {
            let base = self.features.base_dim();
            idx.iter()
                .map(|&i| {
                    let mut f = self.train[i].feats.clone();
                    sa.apply(&mut f, base, rng);
                    f
                })
                .collect()
        });
        let train = std::mem::take(&mut self.train);
        let items: Vec<(&Features, &[u32])> = idx
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let f = augmented.as_ref().map_or(&train[i].feats, |a| &a[k]);
                (f, &train[i].labels[..])
            })
            .collect();
        let (loss, feasible) = self.forward_backward(&items, rng);
        drop(items);
        self.train = train;
        let n = idx.len();
        self.plan[step] = idx;
        StepOutcome {
            loss,
            units: feasible.max(1),
            items: n,
            ..Default::default()
        }
    }

    fn after_update(&mut self, _sparse_sgd: bool) {
        if self.replicas.is_empty() {
            return;
        }
        let mut src = self.model.params_mut();
        for r in &mut self.replicas {
            firth_nn::replicas::copy_values(&mut r.params_mut(), &mut src, false);
        }
    }

    /// Greedy WER (percent) of the development set; the score is −WER.
    fn evaluate(&mut self) -> Evaluation {
        let Some(dev) = &self.dev else {
            return Evaluation::default();
        };
        let t0 = Instant::now();
        let hyps = greedy_transcripts(&mut self.model, &self.vocab, dev, 64);
        let rate = dev.len() as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        let mut tally = AsrTally::default();
        for (u, h) in dev.iter().zip(&hyps) {
            tally.add(&u.transcript, h);
        }
        let epoch = self.dev_wer.last().map_or(1, |&(e, _)| e + 1);
        self.dev_wer.push((epoch, tally.wer()));
        Evaluation {
            accuracy: Some(tally.accuracy()),
            items_per_second: Some(rate),
            // −WER, with the utterance accuracy to break ties between equal WERs.
            score: Some(-tally.wer() + 1e-6 * tally.accuracy()),
            ..Default::default()
        }
    }

    fn model_tensors(&self) -> Result<Tensors> {
        let mut t =
            crate::trainer::model_tensors(&self.model.params(), &self.model.config, &self.vocab)?;
        t.metadata
            .insert("features".into(), serde_json::to_string(&self.features)?);
        Ok(t)
    }

    fn save_state(&self, t: &mut Tensors) -> Result<()> {
        t.metadata.insert(
            "speech-settings".into(),
            serde_json::to_string(&self.settings)?,
        );
        t.metadata.insert(
            "speech-dev-wer".into(),
            serde_json::to_string(&self.dev_wer)?,
        );
        Ok(())
    }

    fn restore(&mut self, t: &Tensors, path: &Path) -> Result<()> {
        let (model, vocab, features) = super::load_tensors(t, path)?;
        if vocab != self.vocab {
            bail!(
                "{}: the checkpoint's words differ from this run's training transcripts; resume with the same --train manifest",
                path.display()
            );
        }
        if features != self.features {
            bail!(
                "{}: the checkpoint was trained on other features; resume with the same feature settings",
                path.display()
            );
        }
        check_model_settings(path, &model.config, &self.model.config)?;
        let settings: SpeechSettings = serde_json::from_str(t.meta("speech-settings", path)?)
            .with_context(|| format!("{}: bad speech settings", path.display()))?;
        check_resume_settings(path, &settings, &settings, &self.settings)?;
        if let Some(w) = t.metadata.get("speech-dev-wer") {
            self.dev_wer = serde_json::from_str(w)
                .with_context(|| format!("{}: bad development WER history", path.display()))?;
        }
        self.model = model;
        Ok(())
    }
}
