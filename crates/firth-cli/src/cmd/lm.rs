//! `firth lm`: train, evaluate and sample neural language models.

use super::set_threads;
use anyhow::Result;
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use firth_models::lm::Arch;
use firth_models::lm_text::{continue_prompt, score_file, GenerateOptions};
use firth_models::lm_train::{LmData, LmOptions, LmPreset};
use firth_models::trainer::Limits;
use firth_nn::dropout::DropoutKind;
use firth_nn::optim::OptimKind;
use firth_text::Level;
use std::path::PathBuf;

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a language model by truncated backpropagation through time.
    Train(Box<TrainArgs>),
    /// Perplexity of a trained model on a text file.
    Eval(EvalArgs),
    /// Generate text from a trained model.
    Generate(GenerateArgs),
    /// Gradient flow through time: mean ||dJ(t)/dh(k)|| per distance t-k, CSV + SVG/PNG plot.
    Gradients(crate::cmd::insight::GradientsArgs),
    /// Long-range subject-verb agreement accuracy per distance, for LMs and n-gram models.
    Agreement(crate::cmd::insight::AgreementArgs),
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Activation {
    Tanh,
    Sigmoid,
}

/// Hyperparameters are all optional here: a `--preset` fills them in, explicit flags override
/// it, and built-in defaults fill whatever is still unset. A flag given twice takes its last value.
#[derive(ClapArgs, Debug)]
#[command(args_override_self = true)]
pub struct TrainArgs {
    /// Training text (one sentence per line for word models).
    #[arg(long)]
    train: PathBuf,
    /// Validation text; without it the last --valid-fraction of the training lines is held out.
    #[arg(long)]
    valid: Option<PathBuf>,
    /// Test text, scored once at the end.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Output directory: model.safetensors, checkpoint.safetensors, metrics.csv, curves.svg and curves.png.
    #[arg(long)]
    out: PathBuf,
    /// A documented recipe setting every hyperparameter; explicit flags override it.
    #[arg(long, value_enum)]
    preset: Option<LmPreset>,
    #[arg(long, value_enum)]
    arch: Option<Arch>,
    /// Tokens are whitespace-separated words (with <eos> per line) or Unicode characters.
    #[arg(long, value_enum)]
    level: Option<Level>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    layers: Option<usize>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    hidden: Option<usize>,
    /// Embedding size (default: --hidden).
    #[arg(long, value_parser = crate::validate::at_least_1)]
    emb: Option<usize>,
    /// Steps of backpropagation through time per block.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    bptt: Option<usize>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    batch: Option<usize>,
    #[arg(long, value_parser = crate::validate::finite_positive)]
    lr: Option<f64>,
    #[arg(long, value_enum)]
    optim: Option<OptimKind>,
    #[arg(long, value_parser = crate::validate::non_negative)]
    weight_decay: Option<f64>,
    /// Clip the global gradient norm to this (0 = off). The loss differentiated is summed over
    /// the bptt steps and averaged over the batch, as in Zaremba et al.
    #[arg(long, value_parser = crate::validate::non_negative)]
    clip: Option<f64>,
    /// Clip every gradient element to ±this instead (0 = off).
    #[arg(long, value_parser = crate::validate::non_negative)]
    clip_value: Option<f64>,
    #[arg(long, value_parser = crate::validate::fraction_below_1)]
    dropout: Option<f64>,
    /// Standard dropout, or locked (one mask per sequence, reused at every step).
    #[arg(long, value_enum)]
    dropout_kind: Option<DropoutKind>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    epochs: Option<usize>,
    /// Multiply the learning rate by this each epoch from --lr-decay-start on.
    #[arg(long, value_parser = crate::validate::positive_probability)]
    lr_decay: Option<f64>,
    /// First epoch (1-based) whose learning rate is decayed.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    lr_decay_start: Option<usize>,
    /// Multiply the learning rate by this whenever validation perplexity does not improve.
    #[arg(long, value_parser = crate::validate::positive_probability)]
    plateau_decay: Option<f64>,
    /// Initialise weights uniformly in ±R.
    #[arg(long, value_parser = crate::validate::finite_positive)]
    init_range: Option<f64>,
    /// Added to the LSTM forget-gate bias at initialisation.
    #[arg(long, value_parser = crate::validate::finite_any)]
    forget_bias: Option<f64>,
    /// Share the input embedding with the output layer (needs --emb = --hidden).
    #[arg(long)]
    tied: bool,
    /// Residual connections between stacked layers.
    #[arg(long)]
    residual: bool,
    /// Window model: how many previous tokens it sees.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    context: Option<usize>,
    /// Read every line backwards (with --level char): a backward character LM, for
    /// `firth tag train --char-lm FWD_DIR,BWD_DIR`. Saved in the model, so `lm eval` and
    /// `lm generate` read text backwards too.
    #[arg(long)]
    reverse: bool,
    /// Vanilla RNN nonlinearity.
    #[arg(long, value_enum)]
    activation: Option<Activation>,
    /// Columns read in parallel during evaluation (1 = the whole text as one stream).
    #[arg(long, value_parser = crate::validate::at_least_1)]
    eval_batch: Option<usize>,
    /// Fraction of training lines held out when --valid is not given.
    #[arg(long, default_value_t = 0.1, value_parser = crate::validate::fraction_below_1)]
    valid_fraction: f64,
    /// Stop after this many training steps in total (a checkpoint is kept; --resume goes on).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Stop after this many seconds of wall time (a checkpoint is kept).
    #[arg(long, value_parser = crate::validate::finite_positive)]
    max_seconds: Option<f64>,
    /// Write a resumable checkpoint every this many steps (and at every epoch's end).
    #[arg(long, default_value_t = 200)]
    checkpoint_every: usize,
    /// Continue the run saved in --out (same data and settings; --epochs may grow).
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    pub run: super::RunFlags,
}

#[derive(ClapArgs)]
pub struct EvalArgs {
    /// Model directory (or a .safetensors file).
    model: PathBuf,
    /// Text to score.
    file: PathBuf,
    /// Columns read in parallel (1 = the whole text as one stream, the standard setting).
    #[arg(long, default_value_t = 1, value_parser = crate::validate::at_least_1)]
    batch: usize,
    #[arg(long, default_value_t = 35, value_parser = crate::validate::at_least_1)]
    bptt: usize,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    threads: Option<usize>,
    #[arg(long)]
    json: bool,
}

#[derive(ClapArgs)]
pub struct GenerateArgs {
    /// Model directory (or a .safetensors file).
    model: PathBuf,
    /// Text to continue.
    #[arg(long, default_value = "")]
    prompt: String,
    /// Always take the most probable token.
    #[arg(long, conflicts_with_all = ["temperature", "top_k", "top_p", "beam"])]
    greedy: bool,
    #[arg(long, default_value_t = 1.0, value_parser = crate::validate::finite_positive)]
    temperature: f64,
    /// Sample only among the K most probable tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Sample only among the most probable tokens whose probabilities add up to P.
    #[arg(long, default_value_t = 1.0, value_parser = crate::validate::positive_probability)]
    top_p: f64,
    /// Beam search with this many hypotheses; prints the best.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    beam: Option<usize>,
    #[arg(long, default_value_t = 200)]
    max_tokens: usize,
    /// Random seed; the same seed gives the same text.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(a: Args) -> Result<()> {
    match a.command {
        Command::Train(t) => train(*t),
        Command::Eval(e) => eval(e),
        Command::Generate(g) => generate_cmd(g),
        Command::Gradients(g) => crate::cmd::insight::gradients(g),
        Command::Agreement(g) => crate::cmd::insight::agreement(g),
    }
}

fn options(a: &TrainArgs) -> LmOptions {
    LmOptions {
        preset: a.preset,
        arch: a.arch,
        level: a.level,
        layers: a.layers,
        hidden: a.hidden,
        emb: a.emb,
        bptt: a.bptt,
        batch: a.batch,
        lr: a.lr,
        optim: a.optim,
        weight_decay: a.weight_decay,
        clip: a.clip,
        clip_value: a.clip_value,
        dropout: a.dropout,
        dropout_kind: a.dropout_kind,
        epochs: a.epochs,
        lr_decay: a.lr_decay,
        lr_decay_start: a.lr_decay_start,
        plateau_decay: a.plateau_decay,
        init_range: a.init_range,
        forget_bias: a.forget_bias,
        tied: a.tied,
        residual: a.residual,
        context: a.context,
        rnn_sigmoid: a.activation == Some(Activation::Sigmoid),
        reverse: a.reverse,
        eval_batch: a.eval_batch,
        checkpoint_every: a.checkpoint_every,
        seed: a.run.seed,
    }
}

fn train(a: TrainArgs) -> Result<()> {
    let data = LmData {
        train: a.train.clone(),
        valid: a.valid.clone(),
        test: a.test.clone(),
        valid_fraction: a.valid_fraction,
        out: a.out.clone(),
        resume: a.resume,
        limits: Limits {
            max_steps: a.max_steps,
            max_seconds: a.max_seconds,
        },
    };
    super::train_lm(&data, &options(&a), &a.run).map(|_| ())
}

fn eval(a: EvalArgs) -> Result<()> {
    set_threads(a.threads)?;
    let s = score_file(&a.model, &a.file, a.batch, a.bptt)?;
    if a.json {
        println!("{}", serde_json::to_value(&s)?);
    } else {
        print!(
            "{}: {} tokens, loss {:.4} nats/token, perplexity {:.3}",
            a.file.display(),
            s.tokens,
            s.loss,
            s.perplexity
        );
        match s.bits_per_char {
            Some(b) => println!(", {b:.4} bits/char"),
            None => println!(),
        }
    }
    Ok(())
}

fn generate_cmd(a: GenerateArgs) -> Result<()> {
    set_threads(Some(1))?;
    let text = continue_prompt(
        &a.model,
        &GenerateOptions {
            prompt: a.prompt,
            greedy: a.greedy,
            temperature: a.temperature,
            top_k: a.top_k,
            top_p: a.top_p,
            beam: a.beam,
            max_tokens: a.max_tokens,
            seed: a.seed,
        },
    )?;
    println!("{text}");
    Ok(())
}
