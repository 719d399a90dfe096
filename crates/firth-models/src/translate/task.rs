//! The translator as a [`Task`] of the one training loop.
//!
//! A step is one batch of sentence pairs (bucketed by length, capped in padded target tokens,
//! drawn by [`plan_batches`] from the trainer's generator). With K threads the model and K-1
//! replicas each take a contiguous slice of the batch's sentences and run the body (encoder,
//! bridge, decoder, attention) forward on a thread of their own; the output layer then runs
//! once on the model over all N real target positions of all slices (one large GEMM, split
//! across the threads by the GEMM itself); each worker runs its body backward from its rows of
//! d h~, and the replicas' gradients are added to the model's. Every worker differentiates the
//! loss scaled for the whole batch (1/N), so the sum is the batch's gradient; with one thread
//! the model alone does the same steps. After each update the replicas copy the new weights.

use super::data::{plan_batches, BatchCap};
use super::decode::SearchConfig;
use super::model::{PairBatch, Translator};
use super::vocab::{TransVocab, BOS_ID, EOS_ID, PAD_ID};
use super::{bleu_score, Subwords};
use crate::trainer::{check_model_settings, check_resume_settings, Evaluation, StepOutcome, Task};
use anyhow::{bail, Context, Result};
use firth_nn::checkpoint::Tensors;
use firth_nn::{Param, ParamSet, Rng};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// A pair of token-id sentences.
pub type IdPair = (Vec<u32>, Vec<u32>);

/// The translator's own training settings (the loop's are in `TrainConfig`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TranslateSettings {
    /// Cap on sentences × (longest target + 1) per batch (0 = none).
    pub batch_tokens: usize,
    /// Cap on sentence pairs per batch (0 = none).
    #[serde(default)]
    pub batch_sentences: usize,
    /// Score the development set's greedy translations with BLEU each epoch (the score that
    /// picks the best epoch); off: the development perplexity picks it.
    pub valid_bleu: bool,
}

impl TranslateSettings {
    pub fn batch_cap(&self) -> BatchCap {
        BatchCap {
            tokens: self.batch_tokens,
            sentences: self.batch_sentences,
        }
    }

    /// Source tokens per greedy decoding batch: four training batches' worth (decoding keeps
    /// no activations for a backward pass).
    pub fn decode_batch_tokens(&self) -> usize {
        let per_batch = if self.batch_tokens > 0 {
            self.batch_tokens
        } else {
            // About a Multi30k sentence (13 tokens with </s>) per pair.
            13 * self.batch_sentences
        };
        4 * per_batch.max(1)
    }
}

/// Development data: encoded pairs, and each pair's reference as words.
pub struct DevSet {
    pub pairs: Vec<IdPair>,
    pub refs: Vec<String>,
}

/// A translator with its training and development pairs.
pub struct TranslateTask {
    pub model: Translator<f32>,
    pub vocab: TransVocab,
    pub settings: TranslateSettings,
    /// Subword settings saved with the model (how outputs are joined back into words).
    pub subwords: Subwords,
    pub train: Vec<IdPair>,
    pub dev: Option<DevSet>,
    lengths: Vec<(usize, usize)>,
    plan: Vec<Vec<usize>>,
    replicas: Vec<Translator<f32>>,
    shards: Vec<PairBatch>,
    top: Vec<f32>,
    targets: Vec<u32>,
    d_top: Vec<f32>,
}

impl TranslateTask {
    pub fn new(
        model: Translator<f32>,
        vocab: TransVocab,
        settings: TranslateSettings,
        subwords: Subwords,
        train: Vec<IdPair>,
        dev: Option<DevSet>,
    ) -> TranslateTask {
        TranslateTask {
            lengths: train.iter().map(|p| (p.0.len(), p.1.len())).collect(),
            model,
            vocab,
            settings,
            subwords,
            train,
            dev,
            plan: Vec::new(),
            replicas: Vec::new(),
            shards: Vec::new(),
            top: Vec::new(),
            targets: Vec::new(),
            d_top: Vec::new(),
        }
    }

    /// Forward and backward of the pairs `idx`, split over the workers; leaves the gradient
    /// of (1/N)·Σ smoothed loss in the model; returns (Σ -log p, N).
    fn forward_backward(&mut self, idx: &[usize], rng: &mut Rng) -> (f64, f64, usize) {
        use rayon::prelude::*;
        let workers = (self.replicas.len() + 1).min(idx.len()).max(1);
        self.shards.resize_with(workers, PairBatch::default);
        for (k, shard) in self.shards.iter_mut().enumerate() {
            let part = &idx[k * idx.len() / workers..(k + 1) * idx.len() / workers];
            let train = &self.train;
            shard.fill(
                part.iter().map(|&i| (&train[i].0[..], &train[i].1[..])),
                BOS_ID,
                EOS_ID,
                PAD_ID,
            );
        }
        let mut rngs: Vec<Rng> = (0..workers).map(|_| Rng::new(rng.next_u64())).collect();
        self.model.zero_grad();
        if workers == 1 {
            self.model.forward_body(&self.shards[0], true, &mut rngs[0]);
        } else {
            let mut all: Vec<&mut Translator<f32>> = std::iter::once(&mut self.model)
                .chain(self.replicas.iter_mut())
                .take(workers)
                .collect();
            let shards = &self.shards;
            all.par_iter_mut()
                .zip(rngs.par_iter_mut())
                .enumerate()
                .for_each(|(k, (m, r))| {
                    firth_nn::par::sequential(|| {
                        if k > 0 {
                            for p in m.body_params_mut() {
                                p.zero_grad();
                            }
                        }
                        m.forward_body(&shards[k], true, r)
                    })
                });
        }
        // The output layer once over every worker's rows.
        let mut top = std::mem::take(&mut self.top);
        let mut targets = std::mem::take(&mut self.targets);
        let mut d_top = std::mem::take(&mut self.d_top);
        top.clear();
        targets.clear();
        let mut offsets = vec![0];
        for m in std::iter::once(&self.model)
            .chain(self.replicas.iter())
            .take(workers)
        {
            top.extend_from_slice(&m.fwd.top);
            targets.extend_from_slice(&m.fwd.targets);
            offsets.push(top.len());
        }
        let n = targets.len();
        let (nll, loss) = self
            .model
            .output_step(&top, &targets, 1.0 / n as f64, true, &mut d_top);
        if loss.is_finite() {
            if workers == 1 {
                self.model.backward_body(&self.shards[0], &d_top);
            } else {
                let mut all: Vec<&mut Translator<f32>> = std::iter::once(&mut self.model)
                    .chain(self.replicas.iter_mut())
                    .take(workers)
                    .collect();
                let (shards, d) = (&self.shards, &d_top);
                all.par_iter_mut().enumerate().for_each(|(k, m)| {
                    firth_nn::par::sequential(|| {
                        m.backward_body(&shards[k], &d[offsets[k]..offsets[k + 1]])
                    })
                });
                let mut total = self.model.body_params_mut();
                for r in self.replicas.iter_mut().take(workers - 1) {
                    firth_nn::replicas::add_grads(&mut total, &mut r.body_params_mut());
                }
            }
        }
        (self.top, self.targets, self.d_top) = (top, targets, d_top);
        (nll, loss, n)
    }

    /// Σ -log p and target tokens of the development pairs (no dropout).
    pub fn dev_loss(&mut self) -> Option<(f64, usize)> {
        let dev = self.dev.as_ref()?;
        let lengths: Vec<(usize, usize)> =
            dev.pairs.iter().map(|p| (p.0.len(), p.1.len())).collect();
        let plan = plan_batches(&lengths, self.settings.batch_cap(), None);
        let (mut total, mut tokens) = (0.0, 0);
        let mut b = PairBatch::default();
        for idx in plan {
            let pairs = &self.dev.as_ref()?.pairs;
            let usable: Vec<usize> = idx
                .into_iter()
                .filter(|&i| !pairs[i].0.is_empty())
                .collect();
            if usable.is_empty() {
                continue;
            }
            b.fill(
                usable.iter().map(|&i| (&pairs[i].0[..], &pairs[i].1[..])),
                BOS_ID,
                EOS_ID,
                PAD_ID,
            );
            let (nll, _, n) = self.model.score_batch(&b);
            total += nll;
            tokens += n;
        }
        Some((total, tokens))
    }

    /// Greedy translations of the development sources, as words, and sentences per second.
    pub fn dev_translations(&mut self) -> Option<(Vec<String>, f64)> {
        let dev = self.dev.as_ref()?;
        let srcs: Vec<Vec<u32>> = dev.pairs.iter().map(|p| p.0.clone()).collect();
        let t0 = Instant::now();
        let ids = self.model.translate_ids(
            &srcs,
            SearchConfig::default(),
            self.settings.decode_batch_tokens(),
        );
        let rate = srcs.len() as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        let words = ids
            .iter()
            .map(|o| self.subwords.join(&self.vocab.tgt, o))
            .collect();
        Some((words, rate))
    }
}

impl Task for TranslateTask {
    fn kind(&self) -> &'static str {
        "translator"
    }

    fn trainable(&mut self) -> Vec<&mut Param<f32>> {
        self.model.params_mut()
    }

    fn plan_epoch(&mut self, rng: &mut Rng) -> usize {
        self.plan = plan_batches(&self.lengths, self.settings.batch_cap(), Some(rng));
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
        let (nll, loss, n) = self.forward_backward(&idx, rng);
        self.plan[step] = idx;
        StepOutcome {
            // The reported loss is the cross-entropy (its exponential the perplexity); the
            // gradient is the label-smoothed loss's. A non-finite smoothed loss stops too.
            loss: if loss.is_finite() { nll } else { loss },
            units: n,
            items: n,
            ..Default::default()
        }
    }

    fn after_update(&mut self, _sparse_sgd: bool) {
        if self.replicas.is_empty() {
            return;
        }
        let mut src = self.model.body_params_mut();
        for r in &mut self.replicas {
            firth_nn::replicas::copy_values(&mut r.body_params_mut(), &mut src, false);
        }
    }

    fn evaluate(&mut self) -> Evaluation {
        let Some((total, tokens)) = self.dev_loss() else {
            return Evaluation::default();
        };
        let loss = total / tokens.max(1) as f64;
        let mut eval = Evaluation {
            loss: Some(loss),
            score: Some(-loss),
            ..Default::default()
        };
        if self.settings.valid_bleu {
            if let Some((hyps, rate)) = self.dev_translations() {
                let refs = &self.dev.as_ref().expect("dev set").refs;
                let bleu = bleu_score(&hyps, refs).unwrap_or(0.0);
                eval.bleu = Some(bleu);
                // BLEU picks the best epoch; the perplexity breaks ties (an early model
                // that translates nothing right scores 0 every epoch, and a tie would count
                // as no progress for the plateau decay).
                eval.score = Some(bleu - 1e-6 * loss);
                eval.items_per_second = Some(rate);
            }
        }
        eval
    }

    fn reports_perplexity(&self) -> bool {
        true
    }

    /// ln(100·V): a perplexity 100 times a uniform guess's.
    fn loss_bound(&self) -> Option<f64> {
        Some((100.0 * self.model.config.tgt_vocab.max(1) as f64).ln())
    }

    fn model_tensors(&self) -> Result<Tensors> {
        let mut t =
            crate::trainer::model_tensors(&self.model.params(), &self.model.config, &self.vocab)?;
        t.metadata
            .insert("subwords".into(), serde_json::to_string(&self.subwords)?);
        Ok(t)
    }

    fn save_state(&self, t: &mut Tensors) -> Result<()> {
        t.metadata.insert(
            "translate-settings".into(),
            serde_json::to_string(&self.settings)?,
        );
        Ok(())
    }

    fn restore(&mut self, t: &Tensors, path: &Path) -> Result<()> {
        let (model, vocab, subwords) = super::load_tensors(t, path)?;
        if vocab != self.vocab {
            bail!(
                "{}: the checkpoint's vocabulary differs from this run's; resume with the same \
                 training files, --min-count and --bpe-merges",
                path.display()
            );
        }
        if subwords != self.subwords {
            bail!(
                "{}: the checkpoint's subword settings differ from this run's (--bpe-merges)",
                path.display()
            );
        }
        check_model_settings(path, &model.config, &self.model.config)?;
        let settings: TranslateSettings = serde_json::from_str(t.meta("translate-settings", path)?)
            .with_context(|| format!("{}: bad translation settings", path.display()))?;
        check_resume_settings(path, &settings, &settings, &self.settings)?;
        self.model = model;
        Ok(())
    }
}
