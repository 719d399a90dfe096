//! `firth quickstart`: the main job on bundled data, with nothing to download or set up.

use anyhow::Result;
use firth_models::quickstart::{self, SHAKESPEARE};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Seconds of training.
    #[arg(long, default_value_t = 120.0, value_parser = crate::validate::finite_positive)]
    seconds: f64,
    /// Where the model, metrics and plots go.
    #[arg(long, default_value = "runs/quickstart")]
    out: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = crate::validate::at_least_1)]
    threads: Option<usize>,
}

pub fn run(a: Args) -> Result<()> {
    let input = quickstart::prepare(&a.out)?;
    eprintln!(
        "firth quickstart: a character-level LSTM on Tiny Shakespeare ({} characters; the last 10% of lines held out), {:.0} seconds of training.",
        SHAKESPEARE.chars().count(),
        a.seconds
    );
    let (data, options) = quickstart::lm_run(&input, &a.out, a.seconds);
    let run = super::RunFlags {
        seed: options.seed,
        threads: a.threads,
        json: false,
        quiet: false,
    };
    let summary = super::train_lm(&data, &options, &run)?;
    let baseline = quickstart::ngram_baseline(&a.out)?;
    let sample = quickstart::sample(&a.out)?;
    println!();
    println!("held-out loss (last 10% of lines):");
    println!(
        "  {:<30} {:.4} nats/char  ({:.3} bits/char, perplexity {:.2})",
        format!("character LSTM ({:.0} s)", summary.wall_seconds),
        summary.valid_loss,
        summary.valid_loss / std::f64::consts::LN_2,
        summary.valid_perplexity
    );
    println!(
        "  {:<30} {:.4} nats/char  ({:.3} bits/char)",
        "character 7-gram, Kneser-Ney",
        baseline,
        baseline / std::f64::consts::LN_2
    );
    println!(
        "  {:<30} {:.4} nats/char",
        "uniform guess",
        (sample.vocab_size as f64).ln()
    );
    println!();
    println!("sample (temperature 0.8, top-p 0.95):");
    println!("{}{}", sample.prompt, sample.continuation);
    println!();
    println!(
        "model, metrics.csv and curves.svg/.png are in {}",
        a.out.display()
    );
    println!(
        "next: firth lm generate {} --prompt 'JULIET:' --temperature 0.7",
        a.out.display()
    );
    Ok(())
}
