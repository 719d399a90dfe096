//! `firth classify train` as a library call: presets, reading the data (or holding out a
//! development fraction), the vocabulary with pretrained words, training through the one
//! loop, and scoring the best epoch's model on the development and test data.

use super::bundle::Bundle;
use super::data::{encode_set, label_set};
use super::eval::evaluate;
use super::task::{ClassifyTask, ClassifyTrainConfig};
use super::{Classifier, ClassifierConfig, MODEL};
use crate::trainer::{Limits, Observer, Trainer};
use anyhow::{bail, Context, Result};
use firth_nn::optim::OptimKind;
use firth_nn::pooling::PoolKind;
use firth_nn::{CellKind, ParamSet, Rng};
use firth_text::sentiment::{self, Format, SstOptions};
use firth_text::{Vocab, UNK};
use serde::Serialize;
use std::path::PathBuf;

/// Documented recipes (docs/classify.md).
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassifyPreset {
    /// Binary sentiment (SST-2 or any two-class data): BiLSTM, max pooling, dropout 0.5,
    /// SGD lr 0.5, trained on labelled phrases where the data has them.
    Sst2,
    /// Five-class sentiment (SST-5): as sst2 with the fine-grained labels.
    Sst5,
}

/// Settings given explicitly; each one overrides the preset's (or the default).
#[derive(Clone, Debug, Default)]
pub struct ClassifierOptions {
    pub preset: Option<ClassifyPreset>,
    /// SST: binary labels (default: with the sst2 preset) or five classes.
    pub sst_binary: Option<bool>,
    /// SST: train on every labelled phrase (default: with a preset).
    pub phrases: Option<bool>,
    pub cell: Option<CellKind>,
    pub layers: Option<usize>,
    pub hidden: Option<usize>,
    pub emb: Option<usize>,
    pub bidirectional: Option<bool>,
    pub pooling: Option<PoolKind>,
    pub dropout: Option<f64>,
    pub lr: Option<f64>,
    pub optim: Option<OptimKind>,
    pub weight_decay: Option<f64>,
    pub clip: Option<f64>,
    pub lr_decay: Option<f64>,
    pub epochs: Option<usize>,
    pub batch: Option<usize>,
    pub patience: Option<usize>,
    pub init_range: Option<f64>,
    /// Keep the embeddings fixed.
    pub freeze: bool,
    pub seed: u64,
}

/// The data of a run and where it writes.
#[derive(Clone, Debug)]
pub struct ClassifyData {
    pub train: PathBuf,
    pub dev: Option<PathBuf>,
    pub test: Option<PathBuf>,
    /// None: detected from the content.
    pub format: Option<Format>,
    /// Held out of the training data when there is no `dev`.
    pub dev_fraction: f64,
    pub embeddings: Option<PathBuf>,
    pub out: PathBuf,
    pub resume: bool,
    pub limits: Limits,
}

/// The summary of `firth classify train` (also written to `summary.json`).
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

struct Resolved {
    model: ClassifierConfig,
    emb: Option<usize>,
    sst: SstOptions,
    train: ClassifyTrainConfig,
}

fn resolve(o: &ClassifierOptions) -> Result<Resolved> {
    let preset = o.preset.is_some();
    // The presets use SGD: it updates only the embedding rows a batch touched, while Adam
    // updates the whole table at every step (see docs/classify.md), and it measured better
    // on SST-5.
    let optim = o.optim.unwrap_or(if preset {
        OptimKind::Sgd
    } else {
        OptimKind::Adam
    });
    let lr =
        o.lr.unwrap_or(if optim == OptimKind::Sgd { 0.5 } else { 1e-3 });
    let r = Resolved {
        model: ClassifierConfig {
            cell: o.cell.unwrap_or(CellKind::Lstm),
            vocab: 0,
            emb: 0,
            hidden: o.hidden.unwrap_or(if preset { 150 } else { 100 }),
            layers: o.layers.unwrap_or(1),
            bidirectional: o.bidirectional.unwrap_or(preset),
            pooling: o.pooling.unwrap_or(if preset {
                PoolKind::Max
            } else {
                PoolKind::Last
            }),
            dropout: o.dropout.unwrap_or(if preset { 0.5 } else { 0.0 }),
            classes: 0,
            init_range: o.init_range.unwrap_or(0.1),
            freeze_emb: o.freeze,
        },
        emb: o.emb,
        sst: SstOptions {
            binary: o
                .sst_binary
                .unwrap_or(o.preset == Some(ClassifyPreset::Sst2)),
            phrases: o.phrases.unwrap_or(preset),
        },
        train: ClassifyTrainConfig {
            epochs: o.epochs.unwrap_or(if preset { 8 } else { 10 }),
            batch: o.batch.unwrap_or(if preset { 32 } else { 25 }),
            lr,
            optim,
            weight_decay: o.weight_decay.unwrap_or(0.0),
            clip: o.clip.unwrap_or(5.0),
            lr_decay: o.lr_decay.unwrap_or(if preset { 0.9 } else { 1.0 }),
            patience: o.patience.unwrap_or(if preset { 3 } else { 0 }),
            seed: o.seed,
        },
    };
    if r.train.batch == 0 || r.train.epochs == 0 {
        bail!("--batch and --epochs must be at least 1");
    }
    if !(r.train.lr > 0.0 && r.train.lr.is_finite()) {
        bail!("--lr must be a positive number");
    }
    Ok(r)
}

/// Trains a classifier as `firth classify train` does and scores the best epoch's model.
/// Messages go to `obs.note`. Returns the summary and the finished run.
pub fn train_classifier(
    data: &ClassifyData,
    options: &ClassifierOptions,
    obs: &mut dyn Observer,
) -> Result<(ClassifySummary, Trainer<ClassifyTask>)> {
    let wall = std::time::Instant::now();
    let r = resolve(options)?;
    if !(0.0..1.0).contains(&data.dev_fraction) {
        bail!("--dev-fraction must be in [0, 1)");
    }
    let format = data.format;
    let train_ex = sentiment::read(&data.train, format, r.sst)?;
    let no_phrases = SstOptions {
        phrases: false,
        ..r.sst
    };
    let (train_ex, dev_ex) = match &data.dev {
        Some(d) => (train_ex, sentiment::read(d, format, no_phrases)?),
        None => {
            if data.dev_fraction <= 0.0 {
                bail!("give --dev, or a --dev-fraction above 0");
            }
            // A seeded shuffle, then the last fraction is held out.
            let mut ex = train_ex;
            let mut rng = Rng::new(r.train.seed ^ 0x5eed);
            for i in (1..ex.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                ex.swap(i, j);
            }
            let n_dev = ((ex.len() as f64 * data.dev_fraction).round() as usize).max(1);
            if n_dev >= ex.len() {
                bail!(
                    "{}: too few examples to hold out a development set; give --dev",
                    data.train.display()
                );
            }
            let dev = ex.split_off(ex.len() - n_dev);
            (ex, dev)
        }
    };
    let test_ex = match &data.test {
        Some(t) => Some(sentiment::read(t, format, no_phrases)?),
        None => None,
    };
    let labels = label_set(&train_ex);
    let vectors = match &data.embeddings {
        Some(p) => Some(
            firth_vectors::formats::load(p)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("cannot load word vectors {}", p.display()))?,
        ),
        None => None,
    };
    let lookup = |w: &str| -> Option<&[f32]> {
        let v = vectors.as_ref()?;
        v.get(w).or_else(|| v.get(&w.to_lowercase()))
    };
    // Vocabulary: <unk>, the training words, then development/test words the vectors know
    // (they get useful rows without ever being trained on).
    let mut vocab = Vocab::new();
    vocab.add(UNK);
    for e in &train_ex {
        for t in &e.tokens {
            vocab.add(t);
        }
    }
    if vectors.is_some() {
        for e in dev_ex.iter().chain(test_ex.iter().flatten()) {
            for t in &e.tokens {
                if vocab.get(t).is_none() && lookup(t).is_some() {
                    vocab.add(t);
                }
            }
        }
    }
    let emb = match (&vectors, r.emb) {
        (Some(v), Some(e)) if e != v.dim => bail!(
            "--emb {e} differs from the {} dimensions of {}; leave --emb out to use the file's",
            v.dim,
            data.embeddings
                .as_ref()
                .expect("vectors were loaded")
                .display()
        ),
        (Some(v), _) => v.dim,
        (None, e) => e.unwrap_or(100),
    };
    let config = ClassifierConfig {
        vocab: vocab.len(),
        emb,
        classes: labels.len(),
        ..r.model
    };
    let mut model = Classifier::<f32>::new(config.clone(), &mut Rng::new(r.train.seed))?;
    let mut found = 0usize;
    if vectors.is_some() {
        for (i, w) in vocab.tokens().iter().enumerate().skip(1) {
            if let Some(v) = lookup(w) {
                model.emb.weight.value[i * emb..(i + 1) * emb].copy_from_slice(v);
                found += 1;
            }
        }
    }
    let train_set = encode_set(&vocab, &labels, &train_ex, &data.train)?;
    let dev_path = data.dev.clone().unwrap_or_else(|| data.train.clone());
    let dev_set = encode_set(&vocab, &labels, &dev_ex, &dev_path)?;
    let test_set = match (&test_ex, &data.test) {
        (Some(t), Some(p)) => Some(encode_set(&vocab, &labels, t, p)?),
        _ => None,
    };
    obs.note(&format!(
        "{} {:?} x{} hidden {}, emb {}, {:?} pooling, {} parameters; labels [{}]; {} training / {} dev{} examples; vocabulary {}{}",
        if config.bidirectional { "bidirectional" } else { "unidirectional" },
        config.cell,
        config.layers,
        config.hidden,
        emb,
        config.pooling,
        model.num_params(),
        labels.join(", "),
        train_set.sents.len(),
        dev_set.sents.len(),
        test_set
            .as_ref()
            .map_or(String::new(), |t| format!(" / {} test", t.sents.len())),
        vocab.len(),
        if vectors.is_some() {
            format!(", {found} initialised from the vectors")
        } else {
            String::new()
        }
    ));
    drop(vectors);
    let bundle = Bundle {
        model,
        labels,
        vocab,
    };
    let n_train = train_set.sents.len();
    let task = ClassifyTask::new(bundle, r.train.batch, train_set, dev_set);
    let mut trainer = Trainer::start(task, r.train.loop_config(), &data.out, data.resume)?;
    let run = trainer.run(data.limits, obs)?;
    // Score with the best epoch's weights.
    let best = Bundle::load(&data.out.join(MODEL))?;
    let mut model = best.model;
    let dev = &trainer.task.dev;
    let dev = evaluate(&mut model, &dev.sents, Some(&dev.labels), 128);
    let test = test_set.as_ref().map(|t| {
        (
            evaluate(&mut model, &t.sents, Some(&t.labels), 128),
            t.sents.len(),
        )
    });
    let summary = ClassifySummary {
        epochs_completed: run.epochs_completed,
        best_epoch: run.best_epoch,
        steps: run.steps,
        parameters: model.num_params(),
        train_examples: n_train,
        train_examples_per_second: run.train_items_per_second,
        dev_accuracy: dev.accuracy,
        dev_loss: dev.loss,
        test_accuracy: test.as_ref().map(|t| t.0.accuracy),
        test_loss: test.as_ref().map(|t| t.0.loss),
        test_examples: test.as_ref().map(|t| t.1),
        wall_seconds: wall.elapsed().as_secs_f64(),
        stopped_early: run.stopped_early,
    };
    firth_nn::checkpoint::write_atomic(
        &data.out.join("summary.json"),
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )?;
    Ok((summary, trainer))
}
