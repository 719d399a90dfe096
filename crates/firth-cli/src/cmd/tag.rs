//! `firth tag`: train, run and evaluate sequence taggers (POS, NER) on CoNLL column files.

use crate::cmd::lm::set_threads;
use crate::plot::{line_chart, Series};
use crate::progress::Bars;
use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use firth_models::tagger::{
    encode, evaluate, init_embeddings, normalize, predict_all, TagRun, TagTrainConfig, TagTrainer,
    TagVocab, Tagger, TaggerConfig, CHECKPOINT, MODEL,
};
use firth_nn::optim::OptimKind;
use firth_nn::{CellKind, ParamSet, Rng};
use firth_text::conll::{read_columns, Columns, Scheme, Sentence};
use serde::Serialize;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a BiLSTM/GRU/RNN tagger (softmax or CRF output) on a column file.
    Train(Box<TrainArgs>),
    /// Tag a file: writes `token tag` lines (`token gold predicted` when the file has tags,
    /// which conlleval reads).
    Predict(PredictArgs),
    /// Token accuracy, and conlleval's entity precision/recall/F1 for span tags.
    Eval(EvalArgs),
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Debug)]
enum Preset {
    /// CoNLL-2003 English NER: BiLSTM-CRF with a char BiLSTM, BIOES, Adam (Lample et al. 2016's
    /// architecture), a capitalisation embedding, word dropout 0.05 and char-embedding dropout.
    Conll03Ner,
    /// UD English EWT UPOS: BiLSTM + char BiLSTM, softmax, Adam with lr decay 0.1, 15 epochs.
    EwtUpos,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Debug)]
enum ArchArg {
    Lstm,
    Gru,
    Rnn,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Debug)]
enum OptimArg {
    Sgd,
    Adam,
    Adamw,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Debug)]
enum SchemeArg {
    Iob1,
    Iob2,
    Bioes,
}

#[derive(ClapArgs)]
pub struct TrainArgs {
    /// Training file: CoNLL columns (`-DOCSTART-`, blank lines between sentences),
    /// CoNLL-U, or word<TAB>tag.
    #[arg(long)]
    train: PathBuf,
    /// Development file, scored after every epoch; the best epoch's model is kept.
    #[arg(long)]
    dev: Option<PathBuf>,
    /// Test file, scored once at the end with the best model.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Output directory: model.safetensors, checkpoint.safetensors, metrics.csv, curves.svg.
    #[arg(long)]
    out: PathBuf,
    /// A documented recipe (docs/tagging.md); explicit flags override it.
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    #[arg(long, value_enum)]
    arch: Option<ArchArg>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    layers: Option<usize>,
    /// Units per direction of the word-level encoder.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    hidden: Option<usize>,
    /// Word embedding size (default: the --embeddings file's, else 100).
    #[arg(long, value_parser = crate::validate::at_least_1)]
    emb: Option<usize>,
    /// Character embedding size; 0 turns character features off.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    char_dim: Option<usize>,
    /// Character BiLSTM units per direction.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    char_hidden: Option<usize>,
    #[arg(long, value_parser = crate::validate::fraction_below_1_f32)]
    dropout: Option<f32>,
    /// Size of the capitalisation-class embedding (all-lower, First-upper, ALL-UPPER,
    /// has-digit, other) added to each word's input; 0 = off.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    case_dim: Option<usize>,
    /// Training: probability of replacing a word by <unk> (trains the unknown-word vector).
    #[arg(long, value_parser = crate::validate::fraction_below_1_f32)]
    word_dropout: Option<f32>,
    /// Training: dropout on the character embeddings.
    #[arg(long, value_parser = crate::validate::fraction_below_1_f32)]
    char_dropout: Option<f32>,
    #[arg(long, value_parser = crate::validate::finite_positive)]
    lr: Option<f64>,
    #[arg(long, value_enum)]
    optim: Option<OptimArg>,
    /// lr at epoch e (0-based) is lr / (1 + lr_decay·e).
    #[arg(long, value_parser = crate::validate::non_negative)]
    lr_decay: Option<f64>,
    #[arg(long, value_parser = crate::validate::non_negative)]
    weight_decay: Option<f64>,
    /// Clip the global gradient norm (0 = off).
    #[arg(long, value_parser = crate::validate::non_negative)]
    clip: Option<f64>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    epochs: Option<usize>,
    /// Sentences per batch.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    batch: Option<usize>,
    /// Linear-chain CRF output (the default for span tags).
    #[arg(long, conflicts_with = "softmax")]
    crf: bool,
    /// Independent softmax per token.
    #[arg(long)]
    softmax: bool,
    /// Tag scheme the model learns span tags in; files in any scheme are converted, and
    /// predictions are written in the training file's scheme.
    #[arg(long, value_enum)]
    scheme: Option<SchemeArg>,
    /// Token column (0-based; default 0, CoNLL-U: 1).
    #[arg(long)]
    token_col: Option<usize>,
    /// Tag column (0-based; default the last, CoNLL-U: 3 = UPOS).
    #[arg(long)]
    tag_col: Option<usize>,
    /// Pretrained word vectors (word2vec text/binary, GloVe text, firth) to start from.
    #[arg(long)]
    embeddings: Option<PathBuf>,
    /// Keep the word embeddings fixed.
    #[arg(long)]
    freeze: bool,
    /// Look words up as written (default: lower-cased, digits as 0; characters keep case).
    #[arg(long)]
    cased: bool,
    /// Initialise weights uniformly in ±R.
    #[arg(long, value_parser = crate::validate::finite_positive)]
    init_range: Option<f64>,
    /// Stop after the epoch during which this many seconds passed (--resume goes on).
    #[arg(long, value_parser = crate::validate::finite_positive)]
    max_seconds: Option<f64>,
    /// Continue the run saved in --out (same data and settings; --epochs may grow).
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    pub run: super::RunFlags,
}

#[derive(ClapArgs)]
pub struct PredictArgs {
    /// Model directory (or a .safetensors file).
    model: PathBuf,
    /// Tokens one per line, blank lines between sentences (extra columns are kept aside).
    input: PathBuf,
    /// Where to write (default: stdout).
    #[arg(long)]
    output: Option<PathBuf>,
    #[arg(long)]
    token_col: Option<usize>,
    #[arg(long)]
    tag_col: Option<usize>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    threads: Option<usize>,
}

#[derive(ClapArgs)]
pub struct EvalArgs {
    /// Model directory (or a .safetensors file).
    model: PathBuf,
    /// Gold column file.
    file: PathBuf,
    #[arg(long)]
    token_col: Option<usize>,
    #[arg(long)]
    tag_col: Option<usize>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    threads: Option<usize>,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    match a.command {
        Command::Train(t) => train(*t).map(|_| ()),
        Command::Predict(p) => predict(p),
        Command::Eval(e) => eval(e),
    }
}

fn columns(token: Option<usize>, tag: Option<usize>) -> Option<Columns> {
    if token.is_none() && tag.is_none() {
        None
    } else {
        Some(Columns {
            token: token.unwrap_or(0),
            tag,
        })
    }
}

struct Resolved {
    cell: CellKind,
    layers: usize,
    hidden: usize,
    emb: Option<usize>,
    char_dim: usize,
    char_hidden: usize,
    dropout: f32,
    case_dim: usize,
    word_dropout: f32,
    char_dropout: f32,
    crf: Option<bool>,
    scheme: Option<Scheme>,
    init_range: f64,
    train: TagTrainConfig,
}

fn resolve(a: &TrainArgs) -> Resolved {
    // Preset values; explicit flags override each one.
    let (
        hidden,
        char_dim,
        char_hidden,
        dropout,
        lr,
        optim,
        lr_decay,
        clip,
        epochs,
        batch,
        crf,
        scheme,
    ) = match a.preset {
        Some(Preset::Conll03Ner) => (
            200,
            30,
            25,
            0.5,
            2e-3,
            OptimArg::Adam,
            0.05,
            5.0,
            20,
            16,
            Some(true),
            Some(Scheme::Bioes),
        ),
        Some(Preset::EwtUpos) => (
            200,
            30,
            25,
            0.5,
            2e-3,
            OptimArg::Adam,
            0.1,
            5.0,
            15,
            32,
            Some(false),
            None,
        ),
        None => (
            200,
            30,
            25,
            0.5,
            1e-3,
            OptimArg::Adam,
            0.0,
            5.0,
            20,
            32,
            None,
            None,
        ),
    };
    // Regularisers and input features added for NER: (case_dim, word_dropout, char_dropout).
    let (case_dim, word_dropout, char_dropout) = match a.preset {
        Some(Preset::Conll03Ner) => (10, 0.05, 0.5),
        Some(Preset::EwtUpos) | None => (0, 0.0, 0.0),
    };
    let crf = if a.crf {
        Some(true)
    } else if a.softmax {
        Some(false)
    } else {
        crf
    };
    Resolved {
        cell: match a.arch.unwrap_or(ArchArg::Lstm) {
            ArchArg::Lstm => CellKind::Lstm,
            ArchArg::Gru => CellKind::Gru,
            ArchArg::Rnn => CellKind::RnnTanh,
        },
        layers: a.layers.unwrap_or(1),
        hidden: a.hidden.unwrap_or(hidden),
        emb: a.emb,
        char_dim: a.char_dim.unwrap_or(char_dim),
        char_hidden: a.char_hidden.unwrap_or(char_hidden),
        dropout: a.dropout.unwrap_or(dropout),
        case_dim: a.case_dim.unwrap_or(case_dim),
        word_dropout: a.word_dropout.unwrap_or(word_dropout),
        char_dropout: a.char_dropout.unwrap_or(char_dropout),
        crf,
        scheme: a
            .scheme
            .map(|s| match s {
                SchemeArg::Iob1 => Scheme::Iob1,
                SchemeArg::Iob2 => Scheme::Iob2,
                SchemeArg::Bioes => Scheme::Bioes,
            })
            .or(scheme),
        init_range: a.init_range.unwrap_or(0.1),
        train: TagTrainConfig {
            epochs: a.epochs.unwrap_or(epochs),
            batch: a.batch.unwrap_or(batch),
            lr: a.lr.unwrap_or(lr),
            optim: match a.optim.unwrap_or(optim) {
                OptimArg::Sgd => OptimKind::Sgd,
                OptimArg::Adam => OptimKind::Adam,
                OptimArg::Adamw => OptimKind::AdamW,
            },
            lr_decay: a.lr_decay.unwrap_or(lr_decay),
            weight_decay: a.weight_decay.unwrap_or(0.0),
            clip: a.clip.unwrap_or(clip),
            seed: a.run.seed,
        },
    }
}

/// The JSON summary of `firth tag train`.
#[derive(Serialize)]
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
}

fn read(path: &Path, cols: Option<Columns>, what: &str) -> Result<Vec<Sentence>> {
    read_columns(path, cols, true).with_context(|| format!("reading the {what} file"))
}

pub fn train(a: TrainArgs) -> Result<TagSummary> {
    let wall = Instant::now();
    set_threads(a.run.threads)?;
    let r = resolve(&a);
    let cols = columns(a.token_col, a.tag_col);
    let train = read(&a.train, cols, "training")?;
    let dev = a.dev.as_deref().map(|p| read(p, cols, "dev")).transpose()?;
    let test = a
        .test
        .as_deref()
        .map(|p| read(p, cols, "test"))
        .transpose()?;
    let lowercase = !a.cased;
    let pretrained = a
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
        .with_context(|| format!("{}: building the label set", a.train.display()))?;
    let span = vocab.scheme.is_some();
    let emb = match (r.emb, &pretrained) {
        (Some(e), Some(v)) if e != v.dim => bail!(
            "--emb {e} but {} holds {}-dimensional vectors; drop --emb or use matching vectors",
            a.embeddings.as_ref().unwrap().display(),
            v.dim
        ),
        (Some(e), _) => e,
        (None, Some(v)) => v.dim,
        (None, None) => 100,
    };
    let cfg = TaggerConfig {
        cell: r.cell,
        words: vocab.words.len(),
        emb,
        chars: vocab.chars.len(),
        char_dim: r.char_dim,
        char_hidden: r.char_hidden,
        max_word_chars: 20,
        hidden: r.hidden,
        layers: r.layers,
        dropout: r.dropout,
        crf: r.crf.unwrap_or(span),
        tags: vocab.tags.len(),
        lowercase,
        freeze: a.freeze,
        init_range: r.init_range,
        case_dim: r.case_dim,
        word_dropout: r.word_dropout,
        char_dropout: r.char_dropout,
    };
    for (name, p) in [
        ("--word-dropout", cfg.word_dropout),
        ("--char-dropout", cfg.char_dropout),
    ] {
        if !(0.0..1.0).contains(&p) {
            bail!("{name} must be in [0, 1)");
        }
    }
    if !(0.0..1.0).contains(&cfg.dropout) {
        bail!("--dropout must be in [0, 1)");
    }
    if r.train.batch == 0 || r.train.epochs == 0 {
        bail!("--batch and --epochs must be at least 1");
    }
    let train_enc = encode(&train, &vocab, &cfg, &a.train)?;
    // Dev and test tags are compared as strings; a tag never seen in training counts as an
    // error (the model cannot predict it), with a warning.
    let held_out = |d: &Option<Vec<Sentence>>, p: &Option<PathBuf>| -> Result<Option<Vec<_>>> {
        let (Some(d), Some(p)) = (d, p) else {
            return Ok(None);
        };
        if let Some(w) = vocab.unseen_tags(d, p)?.warning(p) {
            eprintln!("warning: {w}");
        }
        Ok(Some(encode(&strip_tags(d), &vocab, &cfg, p)?))
    };
    let dev_enc = held_out(&dev, &a.dev)?;
    let test_enc = held_out(&test, &a.test)?;
    let mut hits = None;
    let mut trainer = if a.resume {
        if !a.out.join(CHECKPOINT).exists() {
            bail!(
                "--resume: no checkpoint at {}",
                a.out.join(CHECKPOINT).display()
            );
        }
        TagTrainer::resume(&a.out, r.train.clone(), &cfg, &vocab)?
    } else {
        if a.out.join(CHECKPOINT).exists() {
            bail!("{} already holds a training run; add --resume to continue it, or choose another --out", a.out.display());
        }
        let mut model = Tagger::new(cfg.clone(), &mut Rng::new(a.run.seed))?;
        if let Some(v) = &pretrained {
            hits = Some(init_embeddings(&mut model, &vocab, |w| {
                v.get(w).map(|s| s.to_vec())
            }));
        }
        TagTrainer::new(model, vocab.clone(), r.train.clone())
    };
    if !a.run.quiet {
        eprintln!(
            "{:?} tagger, {} layer(s) x {} x 2 directions, emb {}, chars {}x{}, {} output, {} labels{}, vocabulary {}{}, {} parameters; {} training sentences",
            cfg.cell,
            cfg.layers,
            cfg.hidden,
            cfg.emb,
            cfg.char_dim,
            cfg.char_hidden,
            if cfg.crf { "CRF" } else { "softmax" },
            cfg.tags,
            vocab.scheme.as_ref().map_or(String::new(), |s| format!(" ({s})")),
            cfg.words,
            hits.map_or(String::new(), |h| format!(" ({h} pretrained)")),
            trainer.model.num_params(),
            train.len()
        );
    }
    let run = TagRun {
        train: &train_enc,
        dev: dev.as_deref().zip(dev_enc.as_deref()),
        out_dir: a.out.clone(),
    };
    let mut bars = Bars::for_task(a.run.quiet);
    trainer.run(&run, a.max_seconds, &mut bars)?;
    drop(bars);
    write_curves(&a.out, &trainer)?;
    // Test with the best epoch's model.
    let (mut best, best_vocab) = Tagger::load(&a.out.join(MODEL))?;
    let test_scores = match (&test, &test_enc) {
        (Some(g), Some(e)) => Some(evaluate(&mut best, &best_vocab, g, e, 256)),
        _ => None,
    };
    let p = &trainer.progress;
    let best_rec = p.history.iter().find(|h| h.epoch == p.best_epoch);
    let summary = TagSummary {
        epochs_completed: p.epoch,
        best_epoch: p.best_epoch,
        parameters: trainer.model.num_params(),
        labels: trainer.vocab.tags.len(),
        scheme: trainer.vocab.scheme.clone(),
        dev_accuracy: best_rec.filter(|_| dev.is_some()).map(|h| h.dev_accuracy),
        dev_f1: best_rec.and_then(|h| h.dev_f1),
        test_accuracy: test_scores.as_ref().map(|s| s.accuracy),
        test_f1: test_scores
            .as_ref()
            .and_then(|s| s.ner.as_ref().map(|n| n.f1)),
        test_precision: test_scores
            .as_ref()
            .and_then(|s| s.ner.as_ref().map(|n| n.precision)),
        test_recall: test_scores
            .as_ref()
            .and_then(|s| s.ner.as_ref().map(|n| n.recall)),
        train_sentences_per_second: p
            .history
            .iter()
            .map(|h| h.train_sentences_per_second)
            .sum::<f64>()
            / p.history.len().max(1) as f64,
        predict_sentences_per_second: test_scores.as_ref().map(|s| s.sentences_per_second),
        pretrained_words: hits,
        train_seconds: p.train_seconds,
        wall_seconds: wall.elapsed().as_secs_f64(),
    };
    firth_nn::checkpoint::write_atomic(
        &a.out.join("summary.json"),
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )?;
    if a.run.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else if !a.run.quiet {
        if let Some(s) = &test_scores {
            match &s.ner {
                Some(n) => eprint!(
                    "test (epoch {} model):\n{}",
                    p.best_epoch,
                    n.conlleval_text()
                ),
                None => eprintln!(
                    "test (epoch {} model): accuracy {:.2}%",
                    p.best_epoch, s.accuracy
                ),
            }
        }
    }
    Ok(summary)
}

fn write_curves(out: &Path, t: &TagTrainer) -> Result<()> {
    let h = &t.progress.history;
    if h.is_empty() {
        return Ok(());
    }
    let mut series = vec![Series {
        name: "dev accuracy".into(),
        points: h.iter().map(|r| (r.epoch as f64, r.dev_accuracy)).collect(),
    }];
    if h.iter().any(|r| r.dev_f1.is_some()) {
        series.push(Series {
            name: "dev F1".into(),
            points: h
                .iter()
                .filter_map(|r| r.dev_f1.map(|f| (r.epoch as f64, f)))
                .collect(),
        });
    }
    line_chart(
        &out.join("curves.svg"),
        "Tagger, dev set per epoch",
        "epoch",
        "percent",
        &series,
        false,
    )?;
    line_chart(
        &out.join("loss.svg"),
        "Training loss per epoch",
        "epoch",
        "loss",
        &[Series {
            name: "train".into(),
            points: h.iter().map(|r| (r.epoch as f64, r.train_loss)).collect(),
        }],
        true,
    )
}

fn strip_tags(sents: &[Sentence]) -> Vec<Sentence> {
    sents
        .iter()
        .map(|s| Sentence {
            tokens: s.tokens.clone(),
            tags: Vec::new(),
            line: s.line,
        })
        .collect()
}

fn predict(a: PredictArgs) -> Result<()> {
    set_threads(a.threads)?;
    let (mut model, vocab) = Tagger::load(&a.model)?;
    let sents = read_columns(&a.input, columns(a.token_col, a.tag_col), false)
        .with_context(|| format!("reading {}", a.input.display()))?;
    // Gold tags, if present, are only copied through; they need not be in the label set.
    let enc = encode(&strip_tags(&sents), &vocab, &model.config, &a.input)?;
    let scheme = vocab.data_scheme.as_deref().and_then(Scheme::parse);
    let pred = predict_all(&mut model, &vocab, &enc, scheme, 256);
    let mut out = String::new();
    for (s, p) in sents.iter().zip(&pred) {
        for (i, tok) in s.tokens.iter().enumerate() {
            match s.tags.get(i) {
                Some(g) => out.push_str(&format!("{tok} {g} {}\n", p[i])),
                None => out.push_str(&format!("{tok}\t{}\n", p[i])),
            }
        }
        out.push('\n');
    }
    match &a.output {
        Some(path) => firth_nn::checkpoint::write_atomic(path, out.as_bytes())?,
        None => std::io::stdout().write_all(out.as_bytes())?,
    }
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    set_threads(a.threads)?;
    let (mut model, vocab) = Tagger::load(&a.model)?;
    let gold = read(&a.file, columns(a.token_col, a.tag_col), "evaluation")?;
    // As in training: gold tags the model cannot predict count as errors, with a warning.
    if let Some(w) = vocab.unseen_tags(&gold, &a.file)?.warning(&a.file) {
        eprintln!("warning: {w}");
    }
    let enc = encode(&strip_tags(&gold), &vocab, &model.config, &a.file)?;
    let s = evaluate(&mut model, &vocab, &gold, &enc, 256);
    if a.json {
        let mut o = serde_json::json!({"accuracy": s.accuracy, "sentences": s.sentences,
            "sentences_per_second": s.sentences_per_second});
        if let Some(n) = &s.ner {
            o["f1"] = n.f1.into();
            o["precision"] = n.precision.into();
            o["recall"] = n.recall.into();
            o["by_type"] = serde_json::to_value(&n.by_type)?;
        }
        println!("{o}");
    } else {
        match &s.ner {
            Some(n) => print!("{}", n.conlleval_text()),
            None => println!("accuracy: {:.2}% ({} sentences)", s.accuracy, s.sentences),
        }
    }
    Ok(())
}
