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
    args.run.threads = a.threads;
    let summary = super::lm::train(args)?;
    let baseline = ngram_baseline(&a.out)?;

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
        (vocab.len() as f64).ln()
    );
    println!();
    println!("sample (temperature 0.8, top-p 0.95):");
    println!("ROMEO:\n{}", vocab.decode(&sample, Level::Char));
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

/// Held-out loss (nats per character, newlines included) of a character 7-gram model with
/// modified Kneser-Ney smoothing, trained on the same 90% of lines as the LSTM.
fn ngram_baseline(out: &std::path::Path) -> Result<f64> {
    use firth_ngram::kn::{self, BuildOptions, Discount, Smoothing};
    use firth_ngram::{Corpus, CorpusOptions};
    let (train, valid) = firth_models::data::split_last_lines(SHAKESPEARE, 0.1);
    let (train_path, valid_path) = (out.join("train-90.txt"), out.join("heldout-10.txt"));
    firth_nn::checkpoint::write_atomic(&train_path, train.as_bytes())?;
    firth_nn::checkpoint::write_atomic(&valid_path, valid.as_bytes())?;
    let opts = CorpusOptions {
        chars: true,
        skip_symbols: false,
    };
    let corpus = Corpus::read(std::slice::from_ref(&train_path), opts, &mut |_| {})?;
    // 65 character types are too few for the closed-form unigram discounts; KenLM users pass
    // --discount-fallback here too.
    let build = BuildOptions {
        order: 7,
        smoothing: Smoothing::KneserNey,
        discount_fallback: Some(Discount::FALLBACK),
        ..BuildOptions::default()
    };
    let built = kn::build_owned(corpus, &build, &mut |_| {})?;
    let model = built.model.with_chars(true);
    let mut reader = std::io::BufReader::new(
        std::fs::File::open(&valid_path)
            .with_context(|| format!("cannot read {}", valid_path.display()))?,
    );
    let st = model.score_text(&mut reader, &valid_path, None)?;
    Ok(-st.log10_prob * std::f64::consts::LN_10 / st.tokens as f64)
}
