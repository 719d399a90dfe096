//! `firth quickstart`: the main job on bundled data, with nothing to download or set up.

use anyhow::{Context, Result};
use firth_models::decode::{generate, Strategy};
use firth_models::lm::LanguageModel;
use firth_nn::Rng;
use firth_text::Level;
use std::path::PathBuf;

/// Tiny Shakespeare (public domain), see data/tinyshakespeare/SOURCE.md.
const SHAKESPEARE: &str = include_str!("../../../../data/tinyshakespeare/input.txt");

#[derive(clap::Args)]
pub struct Args {
    /// Seconds of training.
    #[arg(long, default_value_t = 120.0)]
    seconds: f64,
    /// Where the model, metrics and plots go.
    #[arg(long, default_value = "runs/quickstart")]
    out: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(a: Args) -> Result<()> {
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    // Each quickstart is a fresh run.
    for f in ["checkpoint.safetensors", "model.safetensors", "metrics.csv"] {
        let _ = std::fs::remove_file(a.out.join(f));
    }
    let input = a.out.join("tinyshakespeare.txt");
    firth_nn::checkpoint::write_atomic(&input, SHAKESPEARE.as_bytes())?;
    eprintln!(
        "firth quickstart: a character-level LSTM on Tiny Shakespeare ({} characters; the last 10% of lines held out), {:.0} seconds of training.",
        SHAKESPEARE.chars().count(),
        a.seconds
    );
    let mut args =
        super::lm::quick_args(input.clone(), a.out.clone(), a.seconds, 256, 2, 64, 64, 32);
    args.threads = a.threads;
    let summary = super::lm::train(args)?;

    let (mut model, vocab) = LanguageModel::load(&a.out)?;
    let pad = LanguageModel::pad_for(&vocab, Level::Char);
    let prompt = vocab
        .encode("ROMEO:\n", Level::Char)
        .map_err(anyhow::Error::msg)?;
    let sample = generate(
        &mut model,
        &prompt,
        pad,
        400,
        Strategy::Sample {
            temperature: 0.8,
            top_k: 0,
            top_p: 0.95,
        },
        None,
        &mut Rng::new(7),
    );
    println!();
    println!("held-out loss (last 10% of lines):");
    println!(
        "  LSTM ({} s)       {:.4} nats/char  ({:.3} bits/char, perplexity {:.2})",
        summary.wall_seconds.round(),
        summary.valid_loss,
        summary.valid_loss / std::f64::consts::LN_2,
        summary.valid_perplexity
    );
    println!(
        "  uniform guess     {:.4} nats/char",
        (vocab.len() as f64).ln()
    );
    println!();
    println!("sample (temperature 0.8, top-p 0.95):");
    println!("ROMEO:\n{}", vocab.decode(&sample, Level::Char));
    println!();
    println!(
        "model, metrics.csv and curves.svg are in {}",
        a.out.display()
    );
    println!(
        "next: firth lm generate {} --prompt 'JULIET:' --temperature 0.7",
        a.out.display()
    );
    Ok(())
}
