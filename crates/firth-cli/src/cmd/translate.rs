//! `firth translate`: train an attentional encoder-decoder, translate, score, show attention.

use super::set_threads;
use crate::plot::{line_chart, Series};
use crate::progress::Bars;
use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, Subcommand};
use firth_models::trainer::EpochRecord;
use firth_models::translate::data::read_lines;
use firth_models::translate::pipeline::segmenter;
use firth_models::translate::{
    attention_map, bleu_score, chrf_score, load, train_translator, translate_lines, AttentionType,
    SearchConfig, TranslateData, TranslateOptions, TranslatePreset, TranslateSummary,
};
use firth_nn::CellKind;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a translator on line-aligned source and target files.
    Train(Box<TrainArgs>),
    /// Translate one sentence per line (FILE, or stdin) to stdout.
    Run(RunArgs),
    /// Translate a source file and score it against references: BLEU and chrF.
    Eval(EvalArgs),
    /// Translate a sentence and draw its attention as a heat map (STEM.svg, STEM.png).
    Attention(AttentionArgs),
}

#[derive(ClapArgs)]
pub struct TrainArgs {
    /// Training source file, one sentence per line (tokenised).
    #[arg(long)]
    train_src: PathBuf,
    /// Training target file, line-aligned with --train-src.
    #[arg(long)]
    train_tgt: PathBuf,
    /// Development source, translated after every epoch (BLEU picks the best epoch).
    #[arg(long)]
    valid_src: Option<PathBuf>,
    #[arg(long)]
    valid_tgt: Option<PathBuf>,
    /// Test source, translated once at the end by the best epoch's model.
    #[arg(long)]
    test_src: Option<PathBuf>,
    #[arg(long)]
    test_tgt: Option<PathBuf>,
    /// Output directory: model.safetensors, checkpoint.safetensors, metrics.csv, summary.json,
    /// test.hyp, curves.svg.
    #[arg(long)]
    out: PathBuf,
    /// A documented recipe (docs/translate.md); explicit flags override it.
    #[arg(long, value_enum)]
    preset: Option<TranslatePreset>,
    /// Encoder and decoder cell.
    #[arg(long, value_enum)]
    cell: Option<CellKind>,
    #[arg(long, value_enum)]
    attention: Option<AttentionType>,
    /// Encoder and decoder layers.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    layers: Option<usize>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    enc_layers: Option<usize>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    dec_layers: Option<usize>,
    /// Source and target embedding size.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    emb: Option<usize>,
    /// Encoder units per direction; the decoder gets twice this (unless --dec-hidden).
    #[arg(long, value_parser = crate::validate::at_least_1)]
    hidden: Option<usize>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    dec_hidden: Option<usize>,
    /// Do not feed the previous attentional vector into the decoder.
    #[arg(long)]
    no_input_feeding: bool,
    #[arg(long, value_parser = crate::validate::fraction_below_1_f32)]
    dropout: Option<f32>,
    #[arg(long, value_parser = crate::validate::fraction_below_1_f32)]
    label_smoothing: Option<f32>,
    /// Tie the decoder's input and output embeddings (needs --emb = decoder width).
    #[arg(long)]
    tied: bool,
    #[arg(long, value_parser = crate::validate::finite_positive)]
    init_range: Option<f64>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    epochs: Option<usize>,
    /// Adam's learning rate.
    #[arg(long, value_parser = crate::validate::finite_positive)]
    lr: Option<f64>,
    /// Linear learning-rate warm-up over this many updates (0 = off).
    #[arg(long)]
    warmup_steps: Option<u64>,
    /// Multiply lr by this when the development score does not improve (1 = off).
    #[arg(long, value_parser = crate::validate::positive_probability)]
    plateau_decay: Option<f64>,
    /// Stop after this many epochs without a better development score (0 = never).
    #[arg(long)]
    patience: Option<usize>,
    /// Clip the global gradient norm (0 = off).
    #[arg(long, value_parser = crate::validate::non_negative)]
    clip: Option<f64>,
    /// Cap on sentences x (longest target + 1) per batch.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    batch_tokens: Option<usize>,
    /// Cap on sentence pairs per batch (alone, it replaces the token cap; with
    /// --batch-tokens, whichever is hit first closes a batch).
    #[arg(long, value_parser = crate::validate::at_least_1)]
    batch_sentences: Option<usize>,
    /// Words seen fewer times in training become <unk>.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    min_count: Option<usize>,
    /// Joint BPE merges learned on the training text (0 = word level).
    #[arg(long)]
    bpe_merges: Option<usize>,
    /// Skip training pairs with a side longer than this many tokens (with a warning).
    #[arg(long, value_parser = crate::validate::at_least_1)]
    max_len: Option<usize>,
    /// Beam width for the test set (1 = greedy).
    #[arg(long, value_parser = crate::validate::at_least_1)]
    beam: Option<usize>,
    /// GNMT length-penalty alpha for beam search.
    #[arg(long, value_parser = crate::validate::non_negative)]
    alpha: Option<f64>,
    /// Pick the best epoch by development perplexity instead of BLEU (no decoding each epoch).
    #[arg(long)]
    no_valid_bleu: bool,
    #[command(flatten)]
    stops: super::StopFlags,
    #[command(flatten)]
    pub run: super::RunFlags,
}

/// Decoding flags shared by `run`, `eval` and `attention`.
#[derive(ClapArgs, Clone)]
pub struct SearchFlags {
    /// Beam width (1 = greedy decoding, batched over sentences).
    #[arg(long, default_value_t = 1, value_parser = crate::validate::at_least_1)]
    beam: usize,
    /// GNMT length-penalty alpha for beam search.
    #[arg(long, default_value_t = 0.6, value_parser = crate::validate::non_negative)]
    alpha: f64,
    /// Replace each output <unk> by the source word it attends to most.
    #[arg(long)]
    replace_unk: bool,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    threads: Option<usize>,
}

impl SearchFlags {
    fn config(&self) -> SearchConfig {
        SearchConfig {
            beam: self.beam,
            alpha: self.alpha,
        }
    }
}

#[derive(ClapArgs)]
pub struct RunArgs {
    /// Model directory (from `translate train`).
    model: PathBuf,
    /// Source sentences, one per line, tokenised as the training text (default: stdin).
    file: Option<PathBuf>,
    /// Print the N best translations of each sentence as `LINE ||| translation ||| score`
    /// (Moses' n-best format; LINE counts from 0; score = log p / GNMT length penalty, best
    /// first); the beam is widened to N if narrower.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    n_best: Option<usize>,
    #[command(flatten)]
    search: SearchFlags,
}

#[derive(ClapArgs)]
pub struct EvalArgs {
    /// Model directory (from `translate train`).
    model: PathBuf,
    /// Source sentences, one per line.
    #[arg(long)]
    src: PathBuf,
    /// Reference translations, line-aligned with --src, tokenised as the training text.
    #[arg(long = "ref")]
    reference: PathBuf,
    /// Also write the translations here.
    #[arg(long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    search: SearchFlags,
    #[arg(long)]
    json: bool,
}

#[derive(ClapArgs)]
pub struct AttentionArgs {
    /// Model directory (from `translate train`).
    model: PathBuf,
    /// The source sentence, tokenised as the training text.
    #[arg(long)]
    src: String,
    /// Writes STEM.svg and STEM.png.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    search: SearchFlags,
}

pub fn run(a: Args) -> Result<()> {
    match a.command {
        Command::Train(t) => train(*t).map(|_| ()),
        Command::Run(r) => run_file(r),
        Command::Eval(e) => eval(e),
        Command::Attention(a) => attention(a),
    }
}

fn options(a: &TrainArgs) -> TranslateOptions {
    TranslateOptions {
        preset: a.preset,
        cell: a.cell,
        attention: a.attention,
        layers: a.layers,
        enc_layers: a.enc_layers,
        dec_layers: a.dec_layers,
        emb: a.emb,
        hidden: a.hidden,
        dec_hidden: a.dec_hidden,
        input_feeding: a.no_input_feeding.then_some(false),
        dropout: a.dropout,
        label_smoothing: a.label_smoothing,
        tied: a.tied,
        init_range: a.init_range,
        epochs: a.epochs,
        lr: a.lr,
        warmup_steps: a.warmup_steps,
        plateau_decay: a.plateau_decay,
        patience: a.patience,
        clip: a.clip,
        batch_tokens: a.batch_tokens,
        batch_sentences: a.batch_sentences,
        min_count: a.min_count,
        bpe_merges: a.bpe_merges,
        max_len: a.max_len,
        beam: a.beam,
        alpha: a.alpha,
        no_valid_bleu: a.no_valid_bleu,
        checkpoint_every: a.stops.checkpoint_every,
        seed: a.run.seed,
    }
}

pub fn train(a: TrainArgs) -> Result<TranslateSummary> {
    set_threads(a.run.threads)?;
    let data = TranslateData {
        train_src: a.train_src.clone(),
        train_tgt: a.train_tgt.clone(),
        valid_src: a.valid_src.clone(),
        valid_tgt: a.valid_tgt.clone(),
        test_src: a.test_src.clone(),
        test_tgt: a.test_tgt.clone(),
        out: a.out.clone(),
        resume: a.stops.resume,
        limits: a.stops.limits(),
    };
    let mut bars = Bars::new(a.run.quiet, false);
    let (summary, trainer) = train_translator(&data, &options(&a), &mut bars)?;
    drop(bars);
    write_curves(&a.out, &trainer.progress.history)?;
    if a.run.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else if !a.run.quiet {
        if let Some(b) = summary.valid_bleu {
            eprintln!("valid BLEU {b:.2} (epoch {} greedy)", summary.best_epoch);
        }
        if let Some(b) = summary.test_bleu {
            eprintln!(
                "test BLEU {b:.2} (beam {}), greedy {:.2}",
                summary.test_beam,
                summary.test_bleu_greedy.unwrap_or(f64::NAN)
            );
        }
        eprintln!(
            "{:.0} target tokens/s training, {:.0}s in all",
            summary.train_tokens_per_second, summary.wall_seconds
        );
    }
    Ok(summary)
}

fn write_curves(out: &Path, h: &[EpochRecord]) -> Result<()> {
    if h.is_empty() {
        return Ok(());
    }
    let bleu: Vec<(f64, f64)> = h
        .iter()
        .filter_map(|r| Some((r.epoch as f64, r.valid_bleu?)))
        .collect();
    if !bleu.is_empty() {
        line_chart(
            &out.join("curves.svg"),
            "Translator, development BLEU per epoch",
            "epoch",
            "BLEU",
            &[Series {
                name: "valid BLEU (greedy)".into(),
                points: bleu,
            }],
            false,
        )?;
    }
    let mut series = vec![Series {
        name: "train".into(),
        points: h
            .iter()
            .filter_map(|r| Some((r.epoch as f64, r.train_perplexity?)))
            .collect(),
    }];
    series.push(Series {
        name: "valid".into(),
        points: h
            .iter()
            .filter_map(|r| Some((r.epoch as f64, r.valid_perplexity?)))
            .collect(),
    });
    line_chart(
        &out.join("perplexity.svg"),
        "Translator, perplexity per epoch",
        "epoch",
        "perplexity",
        &series,
        true,
    )
}

fn run_file(a: RunArgs) -> Result<()> {
    set_threads(a.search.threads)?;
    let (mut model, vocab, subwords) = load(&a.model)?;
    let seg = segmenter(&a.model, &subwords)?;
    let lines = match &a.file {
        Some(p) => read_lines(p)?,
        None => {
            let mut v = Vec::new();
            for l in std::io::stdin().lock().lines() {
                v.push(l.context("reading stdin")?);
            }
            v
        }
    };
    let mut out = std::io::stdout().lock();
    if let Some(n) = a.n_best {
        if a.search.replace_unk {
            bail!("--replace-unk works on the one-best output; leave it out with --n-best");
        }
        let lists = firth_models::translate::pipeline::translate_n_best(
            &mut model,
            &vocab,
            &seg,
            &subwords,
            &lines,
            a.search.beam,
            a.search.alpha,
            n,
        );
        for (i, list) in lists.iter().enumerate() {
            for (text, score) in list {
                writeln!(out, "{i} ||| {text} ||| {score:.6}")?;
            }
        }
        return Ok(());
    }
    let t = translate_lines(
        &mut model,
        &vocab,
        &seg,
        &subwords,
        &lines,
        a.search.config(),
        a.search.replace_unk,
    );
    for l in &t.lines {
        writeln!(out, "{l}")?;
    }
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    set_threads(a.search.threads)?;
    let (mut model, vocab, subwords) = load(&a.model)?;
    let seg = segmenter(&a.model, &subwords)?;
    let src = read_lines(&a.src)?;
    let refs: Vec<String> = read_lines(&a.reference)?
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    if src.len() != refs.len() {
        bail!(
            "{} has {} lines but {} has {}: source and reference files must be line-aligned",
            a.src.display(),
            src.len(),
            a.reference.display(),
            refs.len()
        );
    }
    let t = translate_lines(
        &mut model,
        &vocab,
        &seg,
        &subwords,
        &src,
        a.search.config(),
        a.search.replace_unk,
    );
    let bleu = bleu_score(&t.lines, &refs)?;
    let chrf = chrf_score(&t.lines, &refs)?;
    if let Some(p) = &a.output {
        firth_nn::checkpoint::write_atomic(p, (t.lines.join("\n") + "\n").as_bytes())?;
    }
    if a.json {
        let o = serde_json::json!({"bleu": bleu, "chrf": chrf, "sentences": src.len(),
            "beam": a.search.beam, "sentences_per_second": t.sentences_per_second});
        println!("{o}");
    } else {
        println!(
            "BLEU {bleu:.2}  chrF {chrf:.2}  ({} sentences, beam {}, {:.0} sentences/s)",
            src.len(),
            a.search.beam,
            t.sentences_per_second
        );
    }
    Ok(())
}

fn attention(a: AttentionArgs) -> Result<()> {
    set_threads(a.search.threads)?;
    let (mut model, vocab, subwords) = load(&a.model)?;
    let seg = segmenter(&a.model, &subwords)?;
    let m = attention_map(
        &mut model,
        &vocab,
        &seg,
        &subwords,
        &a.src,
        a.search.config(),
    )
    .with_context(|| format!("{} (--src {:?})", a.model.display(), a.src))?;
    let [svg, png] = crate::plot::both(&a.out, |p| {
        crate::plot::heat_map(p, "Attention", &m.source, &m.target, &m.weights)
    })?;
    println!("{}", m.translation);
    eprintln!("wrote {} and {}", svg.display(), png.display());
    Ok(())
}
