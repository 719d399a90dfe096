//! `firth classify`: train, evaluate and apply sentence classifiers (SST, MR, `label<TAB>text`).

use super::set_threads;
use crate::plot::{line_chart, Series};
use anyhow::{bail, Result};
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use firth_models::classifier::{
    cross_validate, evaluate, train_classifier, Bundle, ClassifierOptions, ClassifyData,
    ClassifyPreset, ClassifySummary,
};
use firth_models::trainer::{EpochRecord, Limits};
use firth_nn::optim::OptimKind;
use firth_nn::pooling::PoolKind;
use firth_nn::CellKind;
use firth_text::sentiment::{self, Format, SstOptions};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a classifier; scores the test set with the best epoch on the development set.
    Train(Box<TrainArgs>),
    /// Label each line (one sentence per line) of a file.
    Predict(PredictArgs),
    /// Accuracy of a trained classifier on labelled data.
    Eval(EvalArgs),
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum SstLabels {
    /// Five classes 0-4.
    Fine,
    /// Drop neutral; 0-1 negative, 3-4 positive.
    Binary,
}

/// Hyperparameters are optional: `--preset` fills them in, explicit flags override it, and
/// built-in defaults fill the rest.
#[derive(ClapArgs, Debug)]
#[command(args_override_self = true)]
pub struct TrainArgs {
    /// Training data: SST trees, `label<TAB>text`, or a pos/neg directory.
    #[arg(long)]
    train: PathBuf,
    /// Development data for early stopping; without it --dev-fraction of the training data.
    #[arg(long)]
    dev: Option<PathBuf>,
    /// Test data, scored once at the end with the best model.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Output directory: model.safetensors, checkpoint.safetensors, metrics.csv, curves.svg.
    #[arg(long)]
    out: PathBuf,
    /// Data format (default: detected from the content).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// SST only: five classes or binary (default: binary with --preset sst2, else fine).
    #[arg(long, value_enum)]
    sst_labels: Option<SstLabels>,
    /// SST only: train on every labelled phrase, not just the sentences (on with the presets).
    #[arg(long)]
    phrases: Option<bool>,
    /// A documented recipe; explicit flags override it.
    #[arg(long, value_enum)]
    preset: Option<ClassifyPreset>,
    #[arg(long, value_enum)]
    arch: Option<CellKind>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    layers: Option<usize>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    hidden: Option<usize>,
    /// Embedding size (default: the --embeddings file's, else 100).
    #[arg(long, value_parser = crate::validate::at_least_1)]
    emb: Option<usize>,
    /// Run a second encoder right to left and concatenate the states.
    #[arg(long)]
    bidirectional: Option<bool>,
    #[arg(long, value_enum)]
    pooling: Option<PoolKind>,
    #[arg(long, value_parser = crate::validate::fraction_below_1)]
    dropout: Option<f64>,
    /// In training, replace each token by <unk> with this probability (default 0.1; 0 with a
    /// preset).
    #[arg(long, value_parser = crate::validate::fraction_below_1)]
    word_dropout: Option<f64>,
    #[arg(long, value_parser = crate::validate::finite_positive)]
    lr: Option<f64>,
    #[arg(long, value_enum)]
    optim: Option<OptimKind>,
    #[arg(long, value_parser = crate::validate::non_negative)]
    weight_decay: Option<f64>,
    /// Clip the global gradient norm (0 = off).
    #[arg(long, value_parser = crate::validate::non_negative)]
    clip: Option<f64>,
    /// Multiply the learning rate by this after every epoch.
    #[arg(long, value_parser = crate::validate::positive_probability)]
    lr_decay: Option<f64>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    epochs: Option<usize>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    batch: Option<usize>,
    /// Stop after this many epochs without a better development accuracy (0 = never).
    #[arg(long)]
    patience: Option<usize>,
    /// Initialise weights uniformly in ±R.
    #[arg(long, value_parser = crate::validate::finite_positive)]
    init_range: Option<f64>,
    /// Word vectors (word2vec binary/text, GloVe text, firth) to initialise the embeddings;
    /// words missing from the file are looked up lowercased, then drawn at random.
    #[arg(long)]
    embeddings: Option<PathBuf>,
    /// Keep the embeddings fixed.
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
    /// A forward and a backward character LM (`firth lm train --level char`, the second with
    /// --reverse) whose states around each word are frozen extra word features (Akbik et al.
    /// 2018), next to its embedding; both are copied into --out (each fold's directory with
    /// --folds).
    #[arg(long, value_name = "FWD_DIR,BWD_DIR", value_parser = firth_models::char_features::parse_dirs)]
    char_lm: Option<[PathBuf; 2]>,
    /// K-fold cross-validation instead of one run: each fold of the training file's
    /// sentences in turn is the test set of a model trained on the others (models in
    /// OUT/fold-k, the per-fold and mean test accuracy in OUT/cv.json). Takes no --test.
    #[arg(long, value_parser = crate::validate::at_least_1, conflicts_with_all = ["test", "resume"])]
    folds: Option<usize>,
    /// Fraction of the training data held out for development when --dev is not given.
    #[arg(long, default_value_t = 0.1, value_parser = crate::validate::fraction_below_1)]
    dev_fraction: f64,
    /// Stop after this many seconds of wall time (the best model so far is kept).
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
    /// Model directory (or its model.safetensors).
    model: PathBuf,
    /// One sentence per line (tokens separated by spaces); with --format, labelled data whose
    /// labels are ignored.
    file: PathBuf,
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Print each prediction as a JSON object with the class probabilities.
    #[arg(long)]
    json: bool,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    threads: Option<usize>,
}

#[derive(ClapArgs)]
pub struct EvalArgs {
    /// Model directory (or its model.safetensors).
    model: PathBuf,
    /// Labelled data.
    file: PathBuf,
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// SST only (default: binary when the model's labels are negative/positive, else fine).
    #[arg(long, value_enum)]
    sst_labels: Option<SstLabels>,
    #[arg(long)]
    json: bool,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    threads: Option<usize>,
}

pub fn run(a: Args) -> Result<()> {
    match a.command {
        Command::Train(t) if t.folds.is_some() => folds(*t),
        Command::Train(t) => train(*t).map(|_| ()),
        Command::Predict(p) => predict(p),
        Command::Eval(e) => eval(e),
    }
}

fn options(a: &TrainArgs) -> ClassifierOptions {
    ClassifierOptions {
        preset: a.preset,
        sst_binary: a.sst_labels.map(|l| l == SstLabels::Binary),
        phrases: a.phrases,
        cell: a.arch,
        layers: a.layers,
        hidden: a.hidden,
        emb: a.emb,
        bidirectional: a.bidirectional,
        pooling: a.pooling,
        dropout: a.dropout,
        word_dropout: a.word_dropout,
        lr: a.lr,
        optim: a.optim,
        weight_decay: a.weight_decay,
        clip: a.clip,
        lr_decay: a.lr_decay,
        epochs: a.epochs,
        batch: a.batch,
        patience: a.patience,
        init_range: a.init_range,
        freeze: a.freeze,
        multichannel: a.multichannel,
        seed: a.run.seed,
        average: a.average,
    }
}

/// Trains as `firth classify train` does and returns the summary.
pub fn train(a: TrainArgs) -> Result<ClassifySummary> {
    set_threads(a.run.threads)?;
    let data = ClassifyData {
        train: a.train.clone(),
        dev: a.dev.clone(),
        test: a.test.clone(),
        format: a.format,
        dev_fraction: a.dev_fraction,
        embeddings: a.embeddings.clone(),
        char_lm: a.char_lm.clone(),
        out: a.out.clone(),
        resume: a.resume,
        limits: Limits::seconds(a.max_seconds),
    };
    let mut bars = crate::progress::Bars::for_task(a.run.quiet, "ex");
    let (summary, trainer) = train_classifier(&data, &options(&a), &mut bars)?;
    drop(bars);
    write_curves(&a.out, &trainer.progress.history)?;
    if a.run.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else if !a.run.quiet {
        eprintln!(
            "done: {} epoch(s), best epoch {}, dev accuracy {:.2}%{}, {:.0} training examples/s, {:.1}s wall",
            summary.epochs_completed,
            summary.best_epoch,
            summary.dev_accuracy,
            summary
                .test_accuracy
                .map_or(String::new(), |t| format!(", test accuracy {t:.2}%")),
            summary.train_examples_per_second,
            summary.wall_seconds
        );
    }
    Ok(summary)
}

/// `classify train --folds K`: K runs, one per held-out fold, and their mean.
fn folds(a: TrainArgs) -> Result<()> {
    set_threads(a.run.threads)?;
    let data = ClassifyData {
        train: a.train.clone(),
        dev: a.dev.clone(),
        test: None,
        format: a.format,
        dev_fraction: a.dev_fraction,
        embeddings: a.embeddings.clone(),
        char_lm: a.char_lm.clone(),
        out: a.out.clone(),
        resume: false,
        limits: Limits::seconds(a.max_seconds),
    };
    let k = a.folds.expect("called with --folds");
    let mut bars = crate::progress::Bars::for_task(a.run.quiet, "ex");
    let cv = cross_validate(&data, &options(&a), k, &mut bars)?;
    drop(bars);
    if a.run.json {
        println!("{}", serde_json::to_string(&cv)?);
    } else if !a.run.quiet {
        let each: Vec<String> = cv.fold_accuracy.iter().map(|x| format!("{x:.2}")).collect();
        eprintln!(
            "{k}-fold cross-validation over {} examples: test accuracy {:.2}% ± {:.2} (folds: {}), {:.1}s wall; {}",
            cv.examples,
            cv.mean_accuracy,
            cv.std_accuracy,
            each.join(", "),
            cv.wall_seconds,
            a.out.join("cv.json").display()
        );
    }
    Ok(())
}

fn write_curves(out: &Path, h: &[EpochRecord]) -> Result<()> {
    if h.is_empty() {
        return Ok(());
    }
    let series = vec![
        Series {
            name: "train (with dropout)".into(),
            points: h
                .iter()
                .filter_map(|r| Some((r.epoch as f64, r.train_accuracy?)))
                .collect(),
        },
        Series {
            name: "dev".into(),
            points: h
                .iter()
                .filter_map(|r| Some((r.epoch as f64, r.valid_accuracy?)))
                .collect(),
        },
    ];
    line_chart(
        &out.join("curves.svg"),
        "Accuracy per epoch",
        "epoch",
        "accuracy (%)",
        &series,
        false,
    )
}

fn predict(a: PredictArgs) -> Result<()> {
    set_threads(a.threads)?;
    let b = Bundle::load(&a.model)?;
    let sents: Vec<Vec<String>> = match a.format {
        Some(f) => sentiment::read(&a.file, Some(f), sst_for(&b, None))?
            .into_iter()
            .map(|e| e.tokens)
            .collect(),
        None => {
            let s = sentiment::read_sentences(&a.file)?;
            if let Some(i) = s.iter().position(|t| t.is_empty()) {
                bail!(
                    "{}:{}: empty sentence; give one sentence per line with no blank lines",
                    a.file.display(),
                    i + 1
                );
            }
            s
        }
    };
    if sents.is_empty() {
        bail!("{}: no sentences", a.file.display());
    }
    let enc = b.encode(&sents, &a.file)?;
    let mut model = b.model;
    let sc = evaluate(&mut model, &enc.sents, &enc.lm, None, 128);
    let c = b.labels.len();
    let mut out = String::new();
    for (i, toks) in sents.iter().enumerate() {
        let label = &b.labels[sc.predictions[i] as usize];
        if a.json {
            let probs: serde_json::Map<String, serde_json::Value> = b
                .labels
                .iter()
                .zip(&sc.probs[i * c..(i + 1) * c])
                .map(|(l, &p)| (l.clone(), serde_json::json!(p)))
                .collect();
            out.push_str(
                &serde_json::json!({"label": label, "probs": probs, "text": toks.join(" ")})
                    .to_string(),
            );
            out.push('\n');
        } else {
            out.push_str(&format!("{label}\t{}\n", toks.join(" ")));
        }
    }
    print!("{out}");
    Ok(())
}

/// SST reading options matching a model: binary when its labels are negative/positive.
fn sst_for(b: &Bundle, labels: Option<SstLabels>) -> SstOptions {
    let binary = match labels {
        Some(l) => l == SstLabels::Binary,
        None => b.labels == [sentiment::NEGATIVE, sentiment::POSITIVE],
    };
    SstOptions {
        binary,
        phrases: false,
    }
}

fn eval(a: EvalArgs) -> Result<()> {
    set_threads(a.threads)?;
    let b = Bundle::load(&a.model)?;
    let ex = sentiment::read(&a.file, a.format, sst_for(&b, a.sst_labels))?;
    let y = b.label_ids(
        &ex.iter().map(|e| e.label.clone()).collect::<Vec<_>>(),
        &a.file,
    )?;
    let tokens: Vec<&[String]> = ex.iter().map(|e| &e.tokens[..]).collect();
    let enc = b.encode(&tokens, &a.file)?;
    let unknown: HashSet<&str> = ex
        .iter()
        .flat_map(|e| e.tokens.iter())
        .filter(|t| b.vocab.get(t).is_none())
        .map(|t| t.as_str())
        .collect();
    let mut model = b.model;
    let sc = evaluate(&mut model, &enc.sents, &enc.lm, Some(&y), 128);
    let c = b.labels.len();
    // confusion[gold][predicted]
    let mut confusion = vec![vec![0usize; c]; c];
    for (&g, &p) in y.iter().zip(&sc.predictions) {
        confusion[g as usize][p as usize] += 1;
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "accuracy": sc.accuracy,
                "loss": sc.loss,
                "examples": ex.len(),
                "labels": b.labels,
                "confusion": confusion,
                "unknown_word_types": unknown.len(),
            })
        );
    } else {
        println!(
            "accuracy {:.2}%  loss {:.4}  examples {}  unknown word types {}",
            sc.accuracy,
            sc.loss,
            ex.len(),
            unknown.len()
        );
        println!(
            "confusion (rows gold, columns predicted): {}",
            b.labels.join(" ")
        );
        for (l, row) in b.labels.iter().zip(&confusion) {
            println!(
                "  {l:>10} {}",
                row.iter().map(|v| format!("{v:>6}")).collect::<String>()
            );
        }
    }
    Ok(())
}
