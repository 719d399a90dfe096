//! `firth tag`: train, run and evaluate sequence taggers (POS, NER) on CoNLL column files.

use super::set_threads;
use crate::plot::{line_chart, Series};
use crate::progress::Bars;
use anyhow::{Context, Result};
use clap::{Args as ClapArgs, Subcommand};
use firth_models::tagger::pipeline::strip_tags;
use firth_models::tagger::{
    encode, evaluate, predict_all, train_tagger, TagData, TagPreset, TagSummary, TagVocab, Tagger,
    TaggerOptions,
};
use firth_models::trainer::{EpochRecord, Limits};
use firth_nn::optim::OptimKind;
use firth_nn::CellKind;
use firth_text::conll::{read_columns, Columns, Scheme, Sentence};
use std::io::Write;
use std::path::{Path, PathBuf};

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
    preset: Option<TagPreset>,
    #[arg(long, value_enum)]
    arch: Option<CellKind>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    layers: Option<usize>,
    /// Units per direction of the word-level encoder.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    hidden: Option<usize>,
    /// Word embedding size (default: the --embeddings file's, else 100).
    #[arg(long, value_parser = crate::validate::at_least_1)]
    emb: Option<usize>,
    /// Character embedding size; 0 turns character features off.
    #[arg(long)]
    char_dim: Option<usize>,
    /// Character BiLSTM units per direction.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    char_hidden: Option<usize>,
    #[arg(long, value_parser = crate::validate::fraction_below_1_f32)]
    dropout: Option<f32>,
    /// Size of the capitalisation-class embedding (all-lower, First-upper, ALL-UPPER,
    /// has-digit, other) added to each word's input; 0 = off.
    #[arg(long)]
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
    optim: Option<OptimKind>,
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
    scheme: Option<Scheme>,
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
    /// Also read a frozen copy of the --embeddings vectors beside the trained ones (Kim 2014's
    /// two channels): words seen only outside training keep a row in the space the trained
    /// words started from.
    #[arg(long, requires = "embeddings", conflicts_with = "freeze")]
    multichannel: bool,
    /// Score and keep an exponential moving average of the weights with this decay per update
    /// (Polyak averaging; e.g. 0.999), instead of the weights as trained.
    #[arg(long, value_parser = crate::validate::fraction_below_1)]
    average: Option<f64>,
    /// Span tags: within each `-DOCSTART-` document, a predicted name whose words are predicted
    /// as another type in more of their mentions takes that type (dev scores and the saved
    /// model's predictions use it). A file without -DOCSTART- lines is one document.
    #[arg(long)]
    document_vote: bool,
    /// A forward and a backward character LM (`firth lm train --level char`, the second with
    /// --reverse) whose states around each word are frozen extra word features (Akbik et al.
    /// 2018); both are copied into --out.
    #[arg(long, value_name = "FWD_DIR,BWD_DIR", value_parser = firth_models::char_features::parse_dirs)]
    char_lm: Option<[PathBuf; 2]>,
    /// Look words up as written (default: lower-cased, digits as 0; characters keep case).
    #[arg(long)]
    cased: bool,
    /// Initialise weights uniformly in ±R.
    #[arg(long, value_parser = crate::validate::finite_positive)]
    init_range: Option<f64>,
    /// Stop after this many seconds of wall time (a checkpoint is kept; --resume goes on).
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
    /// `true` or `false`: vote span types per `-DOCSTART-` document (`tag train
    /// --document-vote`) or not, whatever the model was trained with (default: as trained).
    #[arg(long, value_name = "BOOL")]
    document_vote: Option<bool>,
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
    /// `true` or `false`: vote span types per `-DOCSTART-` document (`tag train
    /// --document-vote`) or not, whatever the model was trained with (default: as trained).
    #[arg(long, value_name = "BOOL")]
    document_vote: Option<bool>,
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

fn options(a: &TrainArgs) -> TaggerOptions {
    TaggerOptions {
        preset: a.preset,
        cell: a.arch,
        layers: a.layers,
        hidden: a.hidden,
        emb: a.emb,
        char_dim: a.char_dim,
        char_hidden: a.char_hidden,
        dropout: a.dropout,
        case_dim: a.case_dim,
        word_dropout: a.word_dropout,
        char_dropout: a.char_dropout,
        crf: if a.crf {
            Some(true)
        } else if a.softmax {
            Some(false)
        } else {
            None
        },
        scheme: a.scheme,
        init_range: a.init_range,
        lr: a.lr,
        optim: a.optim,
        lr_decay: a.lr_decay,
        weight_decay: a.weight_decay,
        clip: a.clip,
        epochs: a.epochs,
        batch: a.batch,
        seed: a.run.seed,
        cased: a.cased,
        freeze: a.freeze,
        multichannel: a.multichannel,
        average: a.average,
        document_vote: a.document_vote,
    }
}

fn read(path: &Path, cols: Option<Columns>, what: &str) -> Result<Vec<Sentence>> {
    read_columns(path, cols, true).with_context(|| format!("reading the {what} file"))
}

pub fn train(a: TrainArgs) -> Result<TagSummary> {
    set_threads(a.run.threads)?;
    let data = TagData {
        train: a.train.clone(),
        dev: a.dev.clone(),
        test: a.test.clone(),
        columns: columns(a.token_col, a.tag_col),
        embeddings: a.embeddings.clone(),
        char_lm: a.char_lm.clone(),
        out: a.out.clone(),
        resume: a.resume,
        limits: Limits::seconds(a.max_seconds),
    };
    let mut bars = Bars::for_task(a.run.quiet, "sent");
    let (summary, trainer) = train_tagger(&data, &options(&a), &mut bars)?;
    drop(bars);
    write_curves(&a.out, &trainer.progress.history)?;
    if a.run.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else if !a.run.quiet {
        if let Some(s) = &summary.test {
            match &s.ner {
                Some(n) => eprint!(
                    "test (epoch {} model):\n{}",
                    summary.best_epoch,
                    n.conlleval_text()
                ),
                None => eprintln!(
                    "test (epoch {} model): accuracy {:.2}%",
                    summary.best_epoch, s.accuracy
                ),
            }
        }
    }
    Ok(summary)
}

fn write_curves(out: &Path, h: &[EpochRecord]) -> Result<()> {
    if h.is_empty() {
        return Ok(());
    }
    let mut series = vec![Series {
        name: "dev accuracy".into(),
        points: h
            .iter()
            .filter_map(|r| Some((r.epoch as f64, r.valid_accuracy?)))
            .collect(),
    }];
    if h.iter().any(|r| r.valid_f1.is_some()) {
        series.push(Series {
            name: "dev F1".into(),
            points: h
                .iter()
                .filter_map(|r| r.valid_f1.map(|f| (r.epoch as f64, f)))
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

/// A saved tagger, with `--document-vote true|false` (when given) replacing its own setting.
fn load(path: &Path, document_vote: Option<bool>) -> Result<(Tagger<f32>, TagVocab)> {
    let (mut model, vocab) = Tagger::load(path)?;
    if let Some(vote) = document_vote {
        model.config.document_vote = vote;
    }
    Ok((model, vocab))
}

fn predict(a: PredictArgs) -> Result<()> {
    set_threads(a.threads)?;
    let (mut model, vocab) = load(&a.model, a.document_vote)?;
    let sents = read_columns(&a.input, columns(a.token_col, a.tag_col), false)
        .with_context(|| format!("reading {}", a.input.display()))?;
    // Gold tags, if present, are only copied through; they need not be in the label set.
    let enc = encode(
        &strip_tags(&sents),
        &vocab,
        &model.config,
        model.char_lm.as_ref(),
        &a.input,
    )?;
    let scheme = vocab.data_scheme.as_deref().and_then(Scheme::parse);
    let pred = predict_all(&mut model, &vocab, &sents, &enc, scheme, 256);
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
    let (mut model, vocab) = load(&a.model, a.document_vote)?;
    let gold = read(&a.file, columns(a.token_col, a.tag_col), "evaluation")?;
    // As in training: gold tags the model cannot predict count as errors, with a warning.
    if let Some(w) = vocab.unseen_tags(&gold, &a.file)?.warning(&a.file) {
        eprintln!("warning: {w}");
    }
    let enc = encode(
        &strip_tags(&gold),
        &vocab,
        &model.config,
        model.char_lm.as_ref(),
        &a.file,
    )?;
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
