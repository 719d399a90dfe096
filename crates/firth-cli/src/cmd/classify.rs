//! `firth classify`: train, evaluate and apply sentence classifiers (SST, MR, `label<TAB>text`).

use crate::cmd::lm::set_threads;
use crate::plot::{line_chart, Series};
use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use firth_models::classifier::{
    encode_tokens, evaluate, Bundle, Classifier, ClassifierConfig, ClassifySummary,
    ClassifyTrainConfig, ClassifyTrainer, Encoded, CHECKPOINT,
};
use firth_nn::optim::OptimKind;
use firth_nn::param::ParamSet;
use firth_nn::pooling::PoolKind;
use firth_nn::{CellKind, Rng};
use firth_text::sentiment::{self, Example, Format, SstOptions};
use firth_text::{Vocab, UNK};
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
enum Preset {
    /// Binary sentiment (SST-2 or any two-class data): BiLSTM, max pooling, dropout 0.5,
    /// SGD lr 0.5, trained on labelled phrases where the data has them.
    Sst2,
    /// Five-class sentiment (SST-5): as sst2 with the fine-grained labels.
    Sst5,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum FormatArg {
    Sst,
    Tsv,
    Posneg,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum SstLabels {
    /// Five classes 0-4.
    Fine,
    /// Drop neutral; 0-1 negative, 3-4 positive.
    Binary,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum ArchArg {
    Rnn,
    Lstm,
    Gru,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum PoolArg {
    Last,
    Mean,
    Max,
    Attention,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum OptimArg {
    Sgd,
    Adam,
    Adamw,
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
    format: Option<FormatArg>,
    /// SST only: five classes or binary (default: binary with --preset sst2, else fine).
    #[arg(long, value_enum)]
    sst_labels: Option<SstLabels>,
    /// SST only: train on every labelled phrase, not just the sentences (on with the presets).
    #[arg(long)]
    phrases: Option<bool>,
    /// A documented recipe; explicit flags override it.
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    #[arg(long, value_enum)]
    arch: Option<ArchArg>,
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
    pooling: Option<PoolArg>,
    #[arg(long, value_parser = crate::validate::fraction_below_1)]
    dropout: Option<f64>,
    #[arg(long, value_parser = crate::validate::finite_positive)]
    lr: Option<f64>,
    #[arg(long, value_enum)]
    optim: Option<OptimArg>,
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
    format: Option<FormatArg>,
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
    format: Option<FormatArg>,
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
        Command::Train(t) => train(*t).map(|_| ()),
        Command::Predict(p) => predict(p),
        Command::Eval(e) => eval(e),
    }
}

fn format_of(f: Option<FormatArg>) -> Option<Format> {
    f.map(|f| match f {
        FormatArg::Sst => Format::Sst,
        FormatArg::Tsv => Format::Tsv,
        FormatArg::Posneg => Format::PosNeg,
    })
}

struct Resolved {
    cell: CellKind,
    layers: usize,
    hidden: usize,
    emb: Option<usize>,
    bidirectional: bool,
    pooling: PoolKind,
    dropout: f64,
    init_range: f64,
    sst: SstOptions,
    train: ClassifyTrainConfig,
}

fn resolve(a: &TrainArgs) -> Result<Resolved> {
    let preset = a.preset.is_some();
    let binary = match a.sst_labels {
        Some(l) => l == SstLabels::Binary,
        None => a.preset == Some(Preset::Sst2),
    };
    // The presets use SGD: it updates only the embedding rows a batch touched, while Adam
    // updates the whole table at every step (see docs/classify.md), and it measured better
    // on SST-5.
    let optim = a.optim.unwrap_or(if preset {
        OptimArg::Sgd
    } else {
        OptimArg::Adam
    });
    let lr =
        a.lr.unwrap_or(if optim == OptimArg::Sgd { 0.5 } else { 1e-3 });
    let r = Resolved {
        cell: match a.arch.unwrap_or(ArchArg::Lstm) {
            ArchArg::Rnn => CellKind::RnnTanh,
            ArchArg::Lstm => CellKind::Lstm,
            ArchArg::Gru => CellKind::Gru,
        },
        layers: a.layers.unwrap_or(1),
        hidden: a.hidden.unwrap_or(if preset { 150 } else { 100 }),
        emb: a.emb,
        bidirectional: a.bidirectional.unwrap_or(preset),
        pooling: match a
            .pooling
            .unwrap_or(if preset { PoolArg::Max } else { PoolArg::Last })
        {
            PoolArg::Last => PoolKind::Last,
            PoolArg::Mean => PoolKind::Mean,
            PoolArg::Max => PoolKind::Max,
            PoolArg::Attention => PoolKind::Attention,
        },
        dropout: a.dropout.unwrap_or(if preset { 0.5 } else { 0.0 }),
        init_range: a.init_range.unwrap_or(0.1),
        sst: SstOptions {
            binary,
            phrases: a.phrases.unwrap_or(preset),
        },
        train: ClassifyTrainConfig {
            epochs: a.epochs.unwrap_or(if preset { 8 } else { 10 }),
            batch: a.batch.unwrap_or(if preset { 32 } else { 25 }),
            lr,
            optim: match optim {
                OptimArg::Sgd => OptimKind::Sgd,
                OptimArg::Adam => OptimKind::Adam,
                OptimArg::Adamw => OptimKind::AdamW,
            },
            weight_decay: a.weight_decay.unwrap_or(0.0),
            clip: a.clip.unwrap_or(5.0),
            lr_decay: a.lr_decay.unwrap_or(if preset { 0.9 } else { 1.0 }),
            patience: a.patience.unwrap_or(if preset { 3 } else { 0 }),
            seed: a.run.seed,
        },
    };
    if r.train.batch == 0 || r.train.epochs == 0 {
        bail!("--batch and --epochs must be at least 1");
    }
    if !(r.train.lr > 0.0 && r.train.lr.is_finite()) {
        bail!("--lr must be a positive number");
    }
    if !(0.0..1.0).contains(&a.dev_fraction) {
        bail!("--dev-fraction must be in [0, 1)");
    }
    Ok(r)
}

/// Labels in order of first appearance in the training data.
fn label_set(ex: &[Example]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for e in ex {
        if !labels.contains(&e.label) {
            labels.push(e.label.clone());
        }
    }
    // Sorted, so the same label set gives the same ids whatever the data order.
    labels.sort();
    labels
}

fn encode_set(vocab: &Vocab, labels: &[String], ex: &[Example], what: &Path) -> Result<Encoded> {
    let mut out = Encoded::default();
    for (i, e) in ex.iter().enumerate() {
        let y = labels.iter().position(|l| l == &e.label).with_context(|| {
            format!(
                "{}: example {} has the label {:?}, which the training data does not have (its labels: {})",
                what.display(),
                i + 1,
                e.label,
                labels.join(", ")
            )
        })?;
        out.sents.push(encode_tokens(vocab, &e.tokens));
        out.labels.push(y as u32);
    }
    Ok(out)
}

/// Trains as `firth classify train` does and returns the summary.
pub fn train(a: TrainArgs) -> Result<ClassifySummary> {
    set_threads(a.run.threads)?;
    let r = resolve(&a)?;
    let format = format_of(a.format);
    let train_ex = sentiment::read(&a.train, format, r.sst)?;
    let no_phrases = SstOptions {
        phrases: false,
        ..r.sst
    };
    let (train_ex, dev_ex) = match &a.dev {
        Some(d) => (train_ex, sentiment::read(d, format, no_phrases)?),
        None => {
            if a.dev_fraction <= 0.0 {
                bail!("give --dev, or a --dev-fraction above 0");
            }
            // A seeded shuffle, then the last fraction is held out.
            let mut ex = train_ex;
            let mut rng = Rng::new(a.run.seed ^ 0x5eed);
            for i in (1..ex.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                ex.swap(i, j);
            }
            let n_dev = ((ex.len() as f64 * a.dev_fraction).round() as usize).max(1);
            if n_dev >= ex.len() {
                bail!(
                    "{}: too few examples to hold out a development set; give --dev",
                    a.train.display()
                );
            }
            let dev = ex.split_off(ex.len() - n_dev);
            (ex, dev)
        }
    };
    let test_ex = match &a.test {
        Some(t) => Some(sentiment::read(t, format, no_phrases)?),
        None => None,
    };
    let labels = label_set(&train_ex);
    let vectors = match &a.embeddings {
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
            a.embeddings.as_ref().unwrap().display()
        ),
        (Some(v), _) => v.dim,
        (None, e) => e.unwrap_or(100),
    };
    let config = ClassifierConfig {
        cell: r.cell,
        vocab: vocab.len(),
        emb,
        hidden: r.hidden,
        layers: r.layers,
        bidirectional: r.bidirectional,
        pooling: r.pooling,
        dropout: r.dropout,
        classes: labels.len(),
        init_range: r.init_range,
        freeze_emb: a.freeze,
    };
    let mut rng = Rng::new(r.train.seed);
    let mut model = Classifier::<f32>::new(config, &mut rng)?;
    let mut found = 0usize;
    if vectors.is_some() {
        for (i, w) in vocab.tokens().iter().enumerate().skip(1) {
            if let Some(v) = lookup(w) {
                model.emb.weight.value[i * emb..(i + 1) * emb].copy_from_slice(v);
                found += 1;
            }
        }
    }
    let train_set = encode_set(&vocab, &labels, &train_ex, &a.train)?;
    let dev_path = a.dev.clone().unwrap_or_else(|| a.train.clone());
    let dev_set = encode_set(&vocab, &labels, &dev_ex, &dev_path)?;
    let test_set = match (&test_ex, &a.test) {
        (Some(t), Some(p)) => Some(encode_set(&vocab, &labels, t, p)?),
        _ => None,
    };
    if !a.run.quiet {
        eprintln!(
            "{} {:?} x{} hidden {}, emb {}, {:?} pooling, {} parameters; labels [{}]; {} training / {} dev{} examples; vocabulary {}{}",
            if r.bidirectional { "bidirectional" } else { "unidirectional" },
            r.cell,
            r.layers,
            r.hidden,
            emb,
            r.pooling,
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
        );
    }
    drop(vectors);
    let bundle = Bundle {
        model,
        labels,
        vocab,
    };
    let mut trainer =
        ClassifyTrainer::new(bundle, r.train, train_set, dev_set, test_set, &a.out, rng);
    if a.resume {
        if !a.out.join(CHECKPOINT).exists() {
            bail!(
                "--resume: no checkpoint at {}",
                a.out.join(CHECKPOINT).display()
            );
        }
        trainer.resume()?;
    } else if a.out.join(CHECKPOINT).exists() {
        bail!(
            "{} already holds a training run; add --resume to continue it, or choose another --out",
            a.out.display()
        );
    }
    let mut bars = crate::progress::Bars::for_task(a.run.quiet);
    let summary = trainer.run(a.max_seconds, &mut bars)?;
    drop(bars);
    write_curves(&a.out, &trainer)?;
    firth_nn::checkpoint::write_atomic(
        &a.out.join("summary.json"),
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )?;
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

fn write_curves(out: &Path, t: &ClassifyTrainer) -> Result<()> {
    let h = &t.progress.history;
    if h.is_empty() {
        return Ok(());
    }
    let series = vec![
        Series {
            name: "train (with dropout)".into(),
            points: h
                .iter()
                .map(|r| (r.epoch as f64, r.train_accuracy))
                .collect(),
        },
        Series {
            name: "dev".into(),
            points: h.iter().map(|r| (r.epoch as f64, r.dev_accuracy)).collect(),
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
    let sents: Vec<Vec<String>> = match format_of(a.format) {
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
    let ids: Vec<Vec<u32>> = sents.iter().map(|t| encode_tokens(&b.vocab, t)).collect();
    let mut model = b.model;
    let sc = evaluate(&mut model, &ids, None, 128);
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
    let ex = sentiment::read(&a.file, format_of(a.format), sst_for(&b, a.sst_labels))?;
    let y = b.label_ids(
        &ex.iter().map(|e| e.label.clone()).collect::<Vec<_>>(),
        &a.file,
    )?;
    let ids: Vec<Vec<u32>> = ex
        .iter()
        .map(|e| encode_tokens(&b.vocab, &e.tokens))
        .collect();
    let unknown: HashSet<&str> = ex
        .iter()
        .flat_map(|e| e.tokens.iter())
        .filter(|t| b.vocab.get(t).is_none())
        .map(|t| t.as_str())
        .collect();
    let mut model = b.model;
    let sc = evaluate(&mut model, &ids, Some(&y), 128);
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
