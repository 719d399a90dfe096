//! `firth speech train`, `transcribe` and `eval` as library calls: presets, manifests read and
//! turned into features once (in parallel over files), the model trained through the one loop,
//! and the best epoch's model transcribing the test set.

use super::decode::{prefix_beam_search, BeamConfig, NgramScorer, NoLm};
use super::model::{SpeechConfig, SpeechModel};
use super::task::{greedy_transcripts, SpeechSettings, SpeechTask, Utterance};
use super::vocab::{SpeechVocab, UnitKind};
use super::MODEL;
use crate::trainer::{Limits, Observer, Schedule, TrainConfig, Trainer};
use anyhow::{anyhow, bail, Result};
use firth_audio::digits::{read_manifest, read_manifest_numbered};
use firth_audio::features::Normalize;
use firth_audio::{load_mono, FeatureConfig, FeatureExtractor, GlobalNorm, SpecAugment};
use firth_eval::asr::AsrTally;
use firth_nn::optim::OptimKind;
use firth_nn::{CellKind, ParamSet, Rng};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Documented recipes (docs/speech.md) for the Free Spoken Digit Dataset.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpeechPreset {
    /// Isolated digits: one word per recording (`firth speech fsdd`).
    #[cfg_attr(feature = "clap", value(name = "fsdd-digits"))]
    FsddDigits,
    /// Connected digits: strings of 2–7 digits (`firth speech digits`).
    #[cfg_attr(feature = "clap", value(name = "fsdd-connected"))]
    FsddConnected,
}

/// Settings given explicitly; each one overrides the preset's (or the default).
#[derive(Clone, Debug, Default)]
pub struct SpeechOptions {
    pub preset: Option<SpeechPreset>,
    /// How audio becomes frames (default: `FeatureConfig::default()`, 39 MFCC+Δ+ΔΔ).
    pub features: Option<FeatureConfig>,
    /// Output units (default: words).
    pub units: Option<UnitKind>,
    pub cell: Option<CellKind>,
    pub hidden: Option<usize>,
    pub layers: Option<usize>,
    /// Frames stacked per encoder step (1 = none).
    pub stack: Option<usize>,
    pub dropout: Option<f32>,
    pub epochs: Option<usize>,
    pub lr: Option<f64>,
    pub batch: Option<usize>,
    pub clip: Option<f64>,
    pub warmup_steps: Option<u64>,
    pub plateau_decay: Option<f64>,
    pub patience: Option<usize>,
    /// `Some(false)`: no SpecAugment.
    pub spec_augment: Option<bool>,
    pub checkpoint_every: Option<usize>,
    pub seed: u64,
}

/// The manifests of a run and where it writes.
#[derive(Clone, Debug)]
pub struct SpeechData {
    pub train: PathBuf,
    pub dev: Option<PathBuf>,
    pub test: Option<PathBuf>,
    pub out: PathBuf,
    pub resume: bool,
    pub limits: Limits,
}

/// Everything resolved from a preset and the options, but the number of units.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub model: SpeechConfig,
    pub train: TrainConfig,
    pub settings: SpeechSettings,
    pub features: FeatureConfig,
}

/// Applies the preset (or the defaults) and the explicit options.
pub fn resolve(o: &SpeechOptions) -> Result<Resolved> {
    // Connected digits are 5–15 times longer than one digit: stacking 3 frames keeps the
    // encoder's cost per epoch near the isolated preset's, and a third layer gives the
    // context to place word boundaries between digits.
    let (hidden, layers, stack, epochs, batch) = match o.preset {
        Some(SpeechPreset::FsddConnected) => (160, 3, 3, 15, 16),
        Some(SpeechPreset::FsddDigits) => (128, 2, 2, 30, 16),
        None => (128, 2, 2, 20, 16),
    };
    let features = o.features.clone().unwrap_or_default();
    let model = SpeechConfig {
        input: features.dim(),
        stack: o.stack.unwrap_or(stack),
        cell: o.cell.unwrap_or(CellKind::Lstm),
        hidden: o.hidden.unwrap_or(hidden),
        layers: o.layers.unwrap_or(layers),
        dropout: o.dropout.unwrap_or(0.25),
        units: 2,
        init_range: 0.1,
    };
    model.validate()?;
    // The best development epoch is kept; Adam, optional warm-up and plateau decay.
    let train = TrainConfig {
        plateau_decay: o.plateau_decay.unwrap_or(0.8),
        patience: o.patience.unwrap_or(0),
        checkpoint_every: o.checkpoint_every.unwrap_or(0),
        warmup_steps: o.warmup_steps.unwrap_or(100),
        average: 0.0,
        ..TrainConfig::best_epoch(
            o.epochs.unwrap_or(epochs),
            o.lr.unwrap_or(2e-3),
            Schedule::CONSTANT,
            OptimKind::Adam,
            0.0,
            o.clip.unwrap_or(5.0),
            o.seed,
        )
    };
    train.check()?;
    let batch = o.batch.unwrap_or(batch);
    if batch == 0 {
        bail!("--batch must be at least 1");
    }
    // Light masking: 13 cepstra per block and utterances of 30–80 frames per digit.
    let spec_augment = o.spec_augment.unwrap_or(true).then_some(SpecAugment {
        freq_masks: 1,
        freq_width: 3,
        time_masks: 1,
        time_width: 8,
        time_ratio: 0.2,
        fill: 0.0,
    });
    Ok(Resolved {
        model,
        train,
        settings: SpeechSettings {
            batch,
            spec_augment,
        },
        features,
    })
}

/// The summary of `firth speech train` (also written to `summary.json`). Rates in percent.
#[derive(Clone, Debug, Serialize)]
pub struct SpeechSummary {
    pub epochs_completed: usize,
    pub best_epoch: usize,
    pub steps: u64,
    pub parameters: usize,
    /// Words and the blank.
    pub units: usize,
    pub train_utterances: usize,
    pub dev_utterances: usize,
    /// Training utterances left out of a batch's mean (too short for their transcript).
    pub impossible_utterances: u64,
    /// Greedy development WER and utterance accuracy of the best epoch.
    pub valid_wer: Option<f64>,
    pub valid_accuracy: Option<f64>,
    pub test_utterances: usize,
    /// The best epoch's model on the test manifest, greedy decoding.
    pub test_wer: Option<f64>,
    pub test_cer: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub train_utterances_per_second: f64,
    /// Reading WAVs and computing features for every manifest.
    pub feature_seconds: f64,
    pub train_seconds: f64,
    pub wall_seconds: f64,
    pub threads: usize,
    pub stopped_early: bool,
}

/// Reads a WAV (resampled to the features' rate) into an utterance's features.
fn wav_utterance(
    path: &Path,
    extractor: &FeatureExtractor,
    transcript: String,
) -> firth_audio::Result<Utterance> {
    let audio = load_mono(path, extractor.config().sample_rate)?;
    Ok(Utterance {
        feats: extractor.extract(&audio.samples),
        labels: Vec::new(),
        transcript,
    })
}

/// Reads a manifest's WAVs and computes their features, in parallel over files. An
/// unreadable file is an error naming the manifest line and the WAV.
pub fn load_utterances(manifest: &Path, extractor: &FeatureExtractor) -> Result<Vec<Utterance>> {
    use rayon::prelude::*;
    let entries = read_manifest_numbered(manifest)?;
    if entries.is_empty() {
        bail!(
            "{}: the manifest lists no recordings; write one `path<TAB>transcript` line per WAV",
            manifest.display()
        );
    }
    entries
        .par_iter()
        .map(|(line, e)| {
            wav_utterance(&e.path, extractor, e.transcript.clone())
                .map_err(|err| anyhow!("{}:{line}: {err}", manifest.display()))
        })
        .collect()
}

/// The training manifest's utterances and the feature settings every other recording is read
/// with: for `Normalize::Global`, those settings carry statistics fitted here on the training
/// features (in manifest order, so a resumed run fits the same numbers).
pub fn load_training(
    manifest: &Path,
    features: &FeatureConfig,
) -> Result<(Vec<Utterance>, FeatureConfig)> {
    if features.normalize != Normalize::Global {
        let utts = load_utterances(manifest, &FeatureExtractor::new(features.clone())?)?;
        return Ok((utts, features.clone()));
    }
    let mut utts = load_utterances(manifest, &FeatureExtractor::new(features.unnormalized())?)?;
    let norm = GlobalNorm::fit(utts.iter().map(|u| &u.feats))?;
    for u in &mut utts {
        norm.apply(&mut u.feats)?;
    }
    let fitted = FeatureConfig {
        global_norm: Some(norm),
        ..features.clone()
    };
    fitted.validate()?;
    Ok((utts, fitted))
}

/// Features of WAV files given by path (for transcription), in parallel; an unreadable file
/// is an error naming it.
pub fn wav_utterances(paths: &[PathBuf], extractor: &FeatureExtractor) -> Result<Vec<Utterance>> {
    use rayon::prelude::*;
    paths
        .par_iter()
        .map(|p| Ok(wav_utterance(p, extractor, String::new())?))
        .collect()
}

/// How `transcribe` and `eval` decode.
#[derive(Clone, Debug, Default)]
pub struct Decoding {
    /// Beam width; 1 without an LM is greedy decoding.
    pub beam: usize,
    /// An n-gram model (ARPA or firth binary) fused into the beam search.
    pub lm: Option<PathBuf>,
    pub lm_weight: f64,
    pub word_bonus: f64,
}

/// Transcripts of `utts`: greedy, or a prefix beam search (with the LM when given). An LM
/// needs a beam: with `beam` 1 and an LM, the search keeps 8 prefixes.
pub fn recognize(
    model: &mut SpeechModel<f32>,
    vocab: &SpeechVocab,
    utts: &[Utterance],
    d: &Decoding,
) -> Result<Vec<String>> {
    if d.beam <= 1 && d.lm.is_none() {
        return Ok(greedy_transcripts(model, vocab, utts, 64));
    }
    let lm = match &d.lm {
        Some(p) => Some(firth_ngram::Model::load(p)?),
        None => None,
    };
    let cfg = BeamConfig {
        width: if d.lm.is_some() {
            d.beam.max(8)
        } else {
            d.beam
        },
        lm_weight: d.lm_weight,
        word_bonus: d.word_bonus,
        ..BeamConfig::default()
    };
    let units = vocab.decode_units();
    let v = model.config.units;
    let mut out = Vec::with_capacity(utts.len());
    let mut b = super::SpeechBatch::default();
    let mut rng = Rng::new(0);
    for chunk in utts.chunks(32) {
        b.fill(
            chunk
                .iter()
                .map(|u| (&u.feats.data[..], u.feats.frames, &[][..])),
            model.config.input,
            model.config.stack,
        );
        model.forward_logits(&b, false, &mut rng);
        for k in 0..chunk.len() {
            let mut rows = super::decode::item_rows(model.logits(), b.batch, v, k, b.lengths[k]);
            super::decode::log_softmax_rows(&mut rows, v);
            let hyps = match &lm {
                Some(m) => prefix_beam_search(&rows, &units, &cfg, Some(&NgramScorer { model: m })),
                None => prefix_beam_search::<NoLm>(&rows, &units, &cfg, None),
            };
            out.push(
                hyps.into_iter()
                    .next()
                    .map(|h| h.transcript)
                    .unwrap_or_default(),
            );
        }
    }
    Ok(out)
}

/// WER, CER and accuracy of `hyps` against the utterances' transcripts.
pub fn score(utts: &[Utterance], hyps: &[String]) -> AsrTally {
    let mut t = AsrTally::default();
    for (u, h) in utts.iter().zip(hyps) {
        t.add(&u.transcript, h);
    }
    t
}

/// Trains a recogniser as `firth speech train` does and tests the best epoch's model.
pub fn train_speech(
    data: &SpeechData,
    options: &SpeechOptions,
    obs: &mut dyn Observer,
) -> Result<(SpeechSummary, Trainer<SpeechTask>)> {
    let wall = Instant::now();
    let r = resolve(options)?;
    let t0 = Instant::now();
    let (mut train, features) = load_training(&data.train, &r.features)?;
    let extractor = FeatureExtractor::new(features.clone())?;
    let dev = data
        .dev
        .as_ref()
        .map(|p| load_utterances(p, &extractor))
        .transpose()?;
    let test = data
        .test
        .as_ref()
        .map(|p| load_utterances(p, &extractor))
        .transpose()?;
    let feature_seconds = t0.elapsed().as_secs_f64();
    let vocab = SpeechVocab::from_transcripts(
        options.units.unwrap_or_default(),
        train.iter().map(|u| u.transcript.as_str()),
    );
    for u in &mut train {
        u.labels = vocab
            .encode(&u.transcript)
            .expect("the vocabulary holds every training word and character");
    }
    let config = SpeechConfig {
        units: vocab.units(),
        ..r.model.clone()
    };
    let model = SpeechModel::new(config.clone(), &mut Rng::new(r.train.seed))?;
    let frames: usize = train.iter().map(|u| u.feats.frames).sum();
    let (n_train, n_dev) = (train.len(), dev.as_ref().map_or(0, Vec::len));
    obs.note(&format!(
        "{:?} CTC recogniser: {} x {} x 2 directions, stack {}, dropout {}, {} units (blank + {} {}), {} parameters; {} training utterances ({:.1} h), features in {:.1}s",
        config.cell,
        config.layers,
        config.hidden,
        config.stack,
        config.dropout,
        config.units,
        vocab.names.len(),
        match vocab.kind {
            UnitKind::Words => "words",
            UnitKind::Chars => "characters and the space",
        },
        model.num_params(),
        n_train,
        frames as f64 * features.hop_ms / 3.6e6,
        feature_seconds
    ));
    let task = SpeechTask::new(model, vocab, features, r.settings.clone(), train, dev);
    let mut trainer = Trainer::start(task, r.train.clone(), &data.out, data.resume)?;
    let run = trainer.run(data.limits, obs)?;
    let p = &trainer.progress;
    let best = p.history.iter().find(|h| h.epoch == p.best_epoch);
    let valid_wer = trainer
        .task
        .dev_wer
        .iter()
        .find(|&&(e, _)| e == p.best_epoch)
        .map(|&(_, w)| w);
    let mut summary = SpeechSummary {
        epochs_completed: run.epochs_completed,
        best_epoch: run.best_epoch,
        steps: run.steps,
        parameters: trainer.task.model.num_params(),
        units: config.units,
        train_utterances: n_train,
        dev_utterances: n_dev,
        impossible_utterances: trainer.task.impossible,
        valid_wer,
        valid_accuracy: best.and_then(|h| h.valid_accuracy),
        test_utterances: test.as_ref().map_or(0, Vec::len),
        test_wer: None,
        test_cer: None,
        test_accuracy: None,
        train_utterances_per_second: run.train_items_per_second,
        feature_seconds,
        train_seconds: p.train_seconds,
        wall_seconds: 0.0,
        threads: rayon::current_num_threads(),
        stopped_early: run.stopped_early,
    };
    if let (Some(test), Some(path)) = (&test, &data.test) {
        let (mut best, vocab, _) = super::load(&data.out.join(MODEL))?;
        let hyps = greedy_transcripts(&mut best, &vocab, test, 64);
        let t = score(test, &hyps);
        summary.test_wer = Some(t.wer());
        summary.test_cer = Some(t.cer());
        summary.test_accuracy = Some(t.accuracy());
        let entries = read_manifest(path)?;
        let text: String = entries
            .iter()
            .zip(&hyps)
            .map(|(e, h)| format!("{}\t{h}\n", e.path.display()))
            .collect();
        firth_nn::checkpoint::write_atomic(&data.out.join("test.hyp"), text.as_bytes())?;
    }
    summary.wall_seconds = wall.elapsed().as_secs_f64();
    firth_nn::checkpoint::write_atomic(
        &data.out.join("summary.json"),
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )?;
    let wer_csv: String = std::iter::once("epoch,valid_wer\n".to_string())
        .chain(
            trainer
                .task
                .dev_wer
                .iter()
                .map(|(e, w)| format!("{e},{w}\n")),
        )
        .collect();
    firth_nn::checkpoint::write_atomic(&data.out.join("dev_wer.csv"), wer_csv.as_bytes())?;
    Ok((summary, trainer))
}

/// The features a model was trained on, for reading new audio.
pub fn extractor_for(features: &FeatureConfig) -> Result<FeatureExtractor> {
    Ok(FeatureExtractor::new(features.clone())?)
}
