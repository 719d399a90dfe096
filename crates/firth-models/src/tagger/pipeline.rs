//! `firth tag train` as a library call: presets, reading the files, the vocabulary (with
//! pretrained words), the model, training through the one loop, and testing the best epoch.

use super::task::{TagTask, TagTrainConfig};
use super::vocab::{encode, normalize, TagVocab};
use super::{evaluate, TagScores, Tagger, TaggerConfig, MODEL};
use crate::char_features::CharFeatures;
use crate::trainer::{Limits, Observer, Trainer};
use anyhow::{bail, Context, Result};
use firth_nn::optim::OptimKind;
use firth_nn::{CellKind, ParamSet, Rng};
use firth_text::conll::{read_columns, Columns, Scheme, Sentence};
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Documented recipes (docs/tagging.md).
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagPreset {
    /// CoNLL-2003 English NER: BiLSTM-CRF with a char BiLSTM, BIOES, Adam (Lample et al.
    /// 2016's architecture), a capitalisation embedding, word dropout 0.05, char dropout 0.5.
    Conll03Ner,
    /// UD English EWT UPOS: 2-layer BiLSTM + char BiLSTM (50 per direction), softmax, lazy
    /// Adam with lr decay 0.1, 15 epochs.
    EwtUpos,
}

/// Settings given explicitly; each one overrides the preset's (or the default).
#[derive(Clone, Debug, Default)]
pub struct TaggerOptions {
    pub preset: Option<TagPreset>,
    pub cell: Option<CellKind>,
    pub layers: Option<usize>,
    pub hidden: Option<usize>,
    pub emb: Option<usize>,
    pub char_dim: Option<usize>,
    pub char_hidden: Option<usize>,
    pub dropout: Option<f32>,
    pub case_dim: Option<usize>,
    pub word_dropout: Option<f32>,
    pub char_dropout: Option<f32>,
    pub crf: Option<bool>,
    pub scheme: Option<Scheme>,
    pub init_range: Option<f64>,
    pub lr: Option<f64>,
    pub optim: Option<OptimKind>,
    pub lr_decay: Option<f64>,
    pub weight_decay: Option<f64>,
    pub clip: Option<f64>,
    pub epochs: Option<usize>,
    pub batch: Option<usize>,
    pub seed: u64,
    /// Look words up as written (default: lower-cased, digits as 0).
    pub cased: bool,
    /// Keep the word embeddings fixed.
    pub freeze: bool,
    /// Read a frozen copy of the pretrained vectors beside the trained word embeddings.
    pub multichannel: bool,
    /// Score and keep a moving average of the weights with this decay (0 = off).
    pub average: Option<f64>,
    /// Vote span types per document when decoding ([`TaggerConfig::document_vote`]).
    pub document_vote: bool,
}

/// The files of a run and where it writes.
#[derive(Clone, Debug)]
pub struct TagData {
    pub train: PathBuf,
    pub dev: Option<PathBuf>,
    pub test: Option<PathBuf>,
    pub columns: Option<Columns>,
    /// Pretrained word vectors to start from.
    pub embeddings: Option<PathBuf>,
    /// A forward and a backward character LM (`--char-lm FWD_DIR,BWD_DIR`) whose states
    /// become frozen word features ([`crate::char_features`]); copied into `out`.
    pub char_lm: Option<[PathBuf; 2]>,
    pub out: PathBuf,
    pub resume: bool,
    pub limits: Limits,
}

/// The preset's values with explicit options applied: everything but the sizes that come from
/// the data (vocabulary, labels, embedding size of pretrained vectors).
struct Resolved {
    model: TaggerConfig,
    /// None: CRF for span tags, softmax otherwise.
    crf: Option<bool>,
    emb: Option<usize>,
    scheme: Option<Scheme>,
    train: TagTrainConfig,
}

/// What a preset sets; explicit options override each field.
struct PresetValues {
    layers: usize,
    char_hidden: usize,
    optim: OptimKind,
    lr: f64,
    lr_decay: f64,
    epochs: usize,
    batch: usize,
    /// None: CRF for span tags, softmax otherwise.
    crf: Option<bool>,
    scheme: Option<Scheme>,
    case_dim: usize,
    word_dropout: f32,
    char_dropout: f32,
}

impl PresetValues {
    // UPOS uses lazy Adam (touched embedding rows only): test 95.19 ± 0.08 over 3 seeds against
    // dense Adam's 95.05 ± 0.03 (docs/tagging.md); NER keeps dense Adam, which is what was
    // measured there. UPOS's two layers and 50-unit character LSTM each raised dev accuracy by
    // 0.15-0.2 over three seeds (session 13, docs/tagging.md), together at 2.4 times the time
    // per epoch; NER with two layers was lower on dev (one seed), so it keeps one.
    fn of(preset: Option<TagPreset>) -> PresetValues {
        match preset {
            Some(TagPreset::Conll03Ner) => PresetValues {
                layers: 1,
                char_hidden: 25,
                optim: OptimKind::Adam,
                lr: 2e-3,
                lr_decay: 0.05,
                epochs: 20,
                batch: 16,
                crf: Some(true),
                scheme: Some(Scheme::Bioes),
                case_dim: 10,
                word_dropout: 0.05,
                char_dropout: 0.5,
            },
            Some(TagPreset::EwtUpos) => PresetValues {
                layers: 2,
                char_hidden: 50,
                optim: OptimKind::LazyAdam,
                lr: 2e-3,
                lr_decay: 0.1,
                epochs: 15,
                batch: 32,
                crf: Some(false),
                scheme: None,
                case_dim: 0,
                word_dropout: 0.0,
                char_dropout: 0.0,
            },
            None => PresetValues {
                layers: 1,
                char_hidden: 25,
                optim: OptimKind::Adam,
                lr: 1e-3,
                lr_decay: 0.0,
                epochs: 20,
                batch: 32,
                crf: None,
                scheme: None,
                case_dim: 0,
                word_dropout: 0.0,
                char_dropout: 0.0,
            },
        }
    }
}

fn resolve(o: &TaggerOptions) -> Resolved {
    let p = PresetValues::of(o.preset);
    Resolved {
        model: TaggerConfig {
            cell: o.cell.unwrap_or(CellKind::Lstm),
            words: 0,
            emb: 0,
            chars: 0,
            char_dim: o.char_dim.unwrap_or(30),
            char_hidden: o.char_hidden.unwrap_or(p.char_hidden),
            max_word_chars: 20,
            hidden: o.hidden.unwrap_or(200),
            layers: o.layers.unwrap_or(p.layers),
            dropout: o.dropout.unwrap_or(0.5),
            crf: false,
            tags: 0,
            lowercase: !o.cased,
            freeze: o.freeze,
            init_range: o.init_range.unwrap_or(0.1),
            case_dim: o.case_dim.unwrap_or(p.case_dim),
            word_dropout: o.word_dropout.unwrap_or(p.word_dropout),
            char_dropout: o.char_dropout.unwrap_or(p.char_dropout),
            char_lm_dim: 0,
            static_channel: o.multichannel,
            document_vote: o.document_vote,
        },
        crf: o.crf.or(p.crf),
        emb: o.emb,
        scheme: o.scheme.or(p.scheme),
        train: TagTrainConfig {
            epochs: o.epochs.unwrap_or(p.epochs),
            batch: o.batch.unwrap_or(p.batch),
            lr: o.lr.unwrap_or(p.lr),
            optim: o.optim.unwrap_or(p.optim),
            lr_decay: o.lr_decay.unwrap_or(p.lr_decay),
            weight_decay: o.weight_decay.unwrap_or(0.0),
            clip: o.clip.unwrap_or(5.0),
            seed: o.seed,
            average: o.average.unwrap_or(0.0),
        },
    }
}

/// The summary of `firth tag train` (also written to `summary.json`).
#[derive(Clone, Debug, Serialize)]
pub struct TagSummary {
    pub epochs_completed: usize,
    pub best_epoch: usize,
    pub parameters: usize,
    pub labels: usize,
    pub scheme: Option<String>,
    pub dev_accuracy: Option<f64>,
    pub dev_f1: Option<f64>,
    /// Token accuracy on the test file, percent.
    pub test_accuracy: Option<f64>,
    /// conlleval entity F1 on the test file, percent (span tags only).
    pub test_f1: Option<f64>,
    pub test_precision: Option<f64>,
    pub test_recall: Option<f64>,
    pub train_sentences_per_second: f64,
    pub predict_sentences_per_second: Option<f64>,
    pub pretrained_words: Option<usize>,
    pub train_seconds: f64,
    pub wall_seconds: f64,
    pub stopped_early: bool,
    /// The test scores in full (conlleval's report for span tags); not in the JSON.
    #[serde(skip)]
    pub test: Option<TagScores>,
}

fn read(path: &Path, cols: Option<Columns>, what: &str) -> Result<Vec<Sentence>> {
    read_columns(path, cols, true).with_context(|| format!("reading the {what} file"))
}

/// Sentences without their tags (dev and test tags are compared as strings, so they need
/// not be in the label set).
pub fn strip_tags(sents: &[Sentence]) -> Vec<Sentence> {
    sents
        .iter()
        .map(|s| Sentence {
            tokens: s.tokens.clone(),
            tags: Vec::new(),
            line: s.line,
            doc: s.doc,
        })
        .collect()
}

/// Trains a tagger as `firth tag train` does and tests the best epoch's model. Messages (the
/// model's description, warnings) go to `obs.note`. Returns the summary and the finished run.
pub fn train_tagger(
    data: &TagData,
    options: &TaggerOptions,
    obs: &mut dyn Observer,
) -> Result<(TagSummary, Trainer<TagTask>)> {
    let wall = Instant::now();
    let r = resolve(options);
    let cols = data.columns;
    let train = read(&data.train, cols, "training")?;
    let dev = data
        .dev
        .as_deref()
        .map(|p| read(p, cols, "dev"))
        .transpose()?;
    let test = data
        .test
        .as_deref()
        .map(|p| read(p, cols, "test"))
        .transpose()?;
    let lowercase = r.model.lowercase;
    if r.model.static_channel && data.embeddings.is_none() {
        bail!("--multichannel reads a frozen copy of pretrained vectors; give them with --embeddings FILE");
    }
    let pretrained = data
        .embeddings
        .as_deref()
        .map(|p| {
            firth_vectors::formats::load(p)
                .with_context(|| format!("loading word vectors {}", p.display()))
        })
        .transpose()?;
    // Pretrained words seen in the dev/test files join the vocabulary (their vectors are
    // known even though training never sees them), as in Lample et al.
    let mut extra = Vec::new();
    if let Some(v) = &pretrained {
        let mut seen = HashSet::new();
        for s in dev.iter().chain(test.iter()).flatten() {
            for w in &s.tokens {
                let k = normalize(w, lowercase);
                if v.index_of(&k).is_some() && seen.insert(k.clone()) {
                    extra.push(k);
                }
            }
        }
    }
    let vocab = TagVocab::build(&train, &extra, lowercase, r.scheme)
        .with_context(|| format!("{}: building the label set", data.train.display()))?;
    let span = vocab.scheme.is_some();
    if r.model.document_vote && !span {
        bail!(
            "--document-vote votes on the types of spans, but {} holds tags that are not spans (B-/I-/E-/S- prefixed); drop --document-vote",
            data.train.display()
        );
    }
    let emb = match (r.emb, &pretrained) {
        (Some(e), Some(v)) if e != v.dim => bail!(
            "--emb {e} but {} holds {}-dimensional vectors; drop --emb or use matching vectors",
            data.embeddings
                .as_ref()
                .expect("vectors were loaded")
                .display(),
            v.dim
        ),
        (Some(e), _) => e,
        (None, Some(v)) => v.dim,
        (None, None) => 100,
    };
    let cfg = TaggerConfig {
        words: vocab.words.len(),
        emb,
        chars: vocab.chars.len(),
        crf: r.crf.unwrap_or(span),
        tags: vocab.tags.len(),
        ..r.model
    };
    for (name, p) in [
        ("--dropout", cfg.dropout),
        ("--word-dropout", cfg.word_dropout),
        ("--char-dropout", cfg.char_dropout),
    ] {
        if !(0.0..1.0).contains(&p) {
            bail!("{name} must be in [0, 1), not {p}");
        }
    }
    if r.train.batch == 0 || r.train.epochs == 0 {
        bail!("--batch and --epochs must be at least 1");
    }
    let char_lm = data
        .char_lm
        .as_ref()
        .map(|[f, b]| CharFeatures::load(f, b))
        .transpose()?;
    let cfg = TaggerConfig {
        char_lm_dim: char_lm.as_ref().map_or(0, CharFeatures::dim),
        ..cfg
    };
    let lm_start = Instant::now();
    let train_enc = encode(&train, &vocab, &cfg, char_lm.as_ref(), &data.train)?;
    // A dev or test tag never seen in training counts as an error (the model cannot
    // predict it), with a warning.
    let mut held_out = |d: &Option<Vec<Sentence>>, p: &Option<PathBuf>| -> Result<Option<_>> {
        let (Some(d), Some(p)) = (d, p) else {
            return Ok(None);
        };
        if let Some(w) = vocab.unseen_tags(d, p)?.warning(p) {
            obs.note(&format!("warning: {w}"));
        }
        Ok(Some(encode(
            &strip_tags(d),
            &vocab,
            &cfg,
            char_lm.as_ref(),
            p,
        )?))
    };
    let dev_enc = held_out(&dev, &data.dev)?;
    let test_enc = held_out(&test, &data.test)?;
    if let Some(lm) = &char_lm {
        obs.note(&lm.note(lm_start.elapsed().as_secs_f64()));
        std::fs::create_dir_all(&data.out)
            .with_context(|| format!("creating {}", data.out.display()))?;
        lm.save_to(&data.out)?;
    }
    let mut model = Tagger::new(cfg.clone(), &mut Rng::new(r.train.seed))?;
    model.char_lm = char_lm;
    let hits = match (&pretrained, data.resume) {
        (Some(v), false) => Some(super::init_embeddings(&mut model, &vocab, |w| {
            v.get(w).map(|s| s.to_vec())
        })),
        _ => None,
    };
    let task = TagTask::new(
        model,
        vocab.clone(),
        r.train.batch,
        train_enc,
        dev.clone().zip(dev_enc),
    );
    let mut trainer = Trainer::start(task, r.train.loop_config(), &data.out, data.resume)?;
    obs.note(&format!(
        "{:?} tagger, {} layer(s) x {} x 2 directions, emb {}{}, chars {}x{}{}, {} output{}, {} labels{}, vocabulary {}{}, {} parameters; {} training sentences",
        cfg.cell,
        cfg.layers,
        cfg.hidden,
        cfg.emb,
        if cfg.static_channel { " + static copy" } else { "" },
        cfg.char_dim,
        cfg.char_hidden,
        match cfg.char_lm_dim {
            0 => String::new(),
            d => format!(", character-LM features {d}"),
        },
        if cfg.crf { "CRF" } else { "softmax" },
        if cfg.document_vote {
            " voted per document"
        } else {
            ""
        },
        cfg.tags,
        vocab.scheme.as_ref().map_or(String::new(), |s| format!(" ({s})")),
        cfg.words,
        hits.map_or(String::new(), |h| format!(" ({h} pretrained)")),
        trainer.task.model.num_params(),
        train.len()
    ));
    let run = trainer.run(data.limits, obs)?;
    // Test with the best epoch's model.
    let (mut best, best_vocab) = Tagger::load(&data.out.join(MODEL))?;
    let test_scores = match (&test, &test_enc) {
        (Some(g), Some(e)) => Some(evaluate(&mut best, &best_vocab, g, e, 256)),
        _ => None,
    };
    let p = &trainer.progress;
    let best_rec = p.history.iter().find(|h| h.epoch == p.best_epoch);
    let ner = |f: fn(&firth_eval::ner::NerReport) -> f64| {
        test_scores.as_ref().and_then(|s| s.ner.as_ref().map(f))
    };
    let summary = TagSummary {
        epochs_completed: run.epochs_completed,
        best_epoch: run.best_epoch,
        parameters: trainer.task.model.num_params(),
        labels: trainer.task.vocab.tags.len(),
        scheme: trainer.task.vocab.scheme.clone(),
        dev_accuracy: best_rec.and_then(|h| h.valid_accuracy),
        dev_f1: best_rec.and_then(|h| h.valid_f1),
        test_accuracy: test_scores.as_ref().map(|s| s.accuracy),
        test_f1: ner(|n| n.f1),
        test_precision: ner(|n| n.precision),
        test_recall: ner(|n| n.recall),
        train_sentences_per_second: run.train_items_per_second,
        predict_sentences_per_second: test_scores.as_ref().map(|s| s.sentences_per_second),
        pretrained_words: hits,
        train_seconds: p.train_seconds,
        wall_seconds: wall.elapsed().as_secs_f64(),
        stopped_early: run.stopped_early,
        test: test_scores,
    };
    firth_nn::checkpoint::write_atomic(
        &data.out.join("summary.json"),
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )?;
    Ok((summary, trainer))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options a user gives with `--preset` and nothing else.
    fn only(preset: Option<TagPreset>) -> TaggerOptions {
        TaggerOptions {
            preset,
            ..Default::default()
        }
    }

    #[test]
    fn ewt_upos_preset_is_two_layers_with_a_wider_char_lstm_and_flags_override_it() {
        let model = |preset, layers| {
            resolve(&TaggerOptions {
                layers,
                ..only(preset)
            })
            .model
        };
        let upos = model(Some(TagPreset::EwtUpos), None);
        assert_eq!((upos.layers, upos.char_hidden), (2, 50));
        let ner = model(Some(TagPreset::Conll03Ner), None);
        assert_eq!((ner.layers, ner.char_hidden), (1, 25));
        assert_eq!(model(Some(TagPreset::EwtUpos), Some(1)).layers, 1);
    }

    #[test]
    fn presets_pick_their_optimizer_and_flags_override_it() {
        let with = |preset, optim| {
            resolve(&TaggerOptions {
                optim,
                ..only(preset)
            })
            .train
            .optim
        };
        assert_eq!(with(Some(TagPreset::EwtUpos), None), OptimKind::LazyAdam);
        assert_eq!(with(Some(TagPreset::Conll03Ner), None), OptimKind::Adam);
        assert_eq!(with(None, None), OptimKind::Adam);
        assert_eq!(
            with(Some(TagPreset::EwtUpos), Some(OptimKind::Adam)),
            OptimKind::Adam
        );
    }
}
