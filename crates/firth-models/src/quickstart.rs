//! `firth quickstart` as library calls: the bundled corpus, the character LSTM's settings, the
//! n-gram baseline it is compared with, and the sample it ends with. Training itself goes
//! through [`crate::lm_train::train_lm`] like any other run, so the quickstart shows what
//! `firth lm train` does, not a special path.

use crate::data::split_last_lines;
use crate::decode::{generate, Strategy};
use crate::lm::{Arch, LanguageModel};
use crate::lm_train::{LmData, LmOptions};
use crate::trainer::Limits;
use anyhow::{Context, Result};
use firth_nn::checkpoint::write_atomic;
use firth_nn::optim::OptimKind;
use firth_nn::Rng;
use firth_text::Level;
use std::path::{Path, PathBuf};

/// Tiny Shakespeare (public domain), see data/tinyshakespeare/SOURCE.md: bundled so that the
/// first thing a new user runs needs nothing downloaded.
pub const SHAKESPEARE: &str = include_str!("../../../data/tinyshakespeare/input.txt");

/// The share of lines held out; the LSTM and the baseline are scored on the same lines.
pub const HELD_OUT: f64 = 0.1;

/// Makes `out` a fresh run with the corpus in it, and returns the corpus's path. An earlier
/// quickstart's model and checkpoint are removed, since a checkpoint would otherwise be resumed
/// or refused as a different run.
pub fn prepare(out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for f in ["checkpoint.safetensors", "model.safetensors", "metrics.csv"] {
        let _ = std::fs::remove_file(out.join(f));
    }
    let input = out.join("tinyshakespeare.txt");
    write_atomic(&input, SHAKESPEARE.as_bytes())?;
    Ok(input)
}

/// The run: a 2x256 character LSTM with 64-wide embeddings and Adam at 3e-3. It is stopped by
/// time, not by epochs (100 is more than a quickstart reaches), so the quickstart takes the
/// `seconds` it promises on any machine.
pub fn lm_run(input: &Path, out: &Path, seconds: f64) -> (LmData, LmOptions) {
    let data = LmData {
        train: input.to_path_buf(),
        valid: None,
        test: None,
        valid_fraction: HELD_OUT,
        out: out.to_path_buf(),
        resume: false,
        limits: Limits {
            max_steps: None,
            max_seconds: Some(seconds),
        },
    };
    let options = LmOptions {
        arch: Some(Arch::Lstm),
        level: Some(Level::Char),
        layers: Some(2),
        hidden: Some(256),
        emb: Some(64),
        bptt: Some(64),
        batch: Some(32),
        lr: Some(3e-3),
        optim: Some(OptimKind::Adam),
        clip: Some(5.0),
        dropout: Some(0.0),
        epochs: Some(100),
        init_range: Some(0.08),
        forget_bias: Some(1.0),
        eval_batch: Some(16),
        checkpoint_every: 200,
        seed: 1,
        ..LmOptions::default()
    };
    (data, options)
}

/// Held-out loss (nats per character, newlines included) of a character 7-gram model with
/// modified Kneser-Ney smoothing, trained on the same lines as the LSTM: the bar a neural model
/// has to clear to be worth its training time. The split is written to `out` for inspection.
pub fn ngram_baseline(out: &Path) -> Result<f64> {
    use firth_ngram::kn::{self, BuildOptions, Discount, Smoothing};
    use firth_ngram::{Corpus, CorpusOptions};
    let (train, valid) = split_last_lines(SHAKESPEARE, HELD_OUT);
    let (train_path, valid_path) = (out.join("train-90.txt"), out.join("heldout-10.txt"));
    write_atomic(&train_path, train.as_bytes())?;
    write_atomic(&valid_path, valid.as_bytes())?;
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

/// What the trained model writes when prompted.
#[derive(Clone, Debug)]
pub struct Sample {
    pub prompt: String,
    pub continuation: String,
    /// Characters the model knows: a uniform guess among them costs ln(vocab_size) nats.
    pub vocab_size: usize,
}

/// 400 characters after "ROMEO:\n" from the model in `out`, at temperature 0.8 and top-p 0.95
/// (less random than the model's own distribution, so the sample reads as a play), seed 7.
pub fn sample(out: &Path) -> Result<Sample> {
    let (mut model, vocab) = LanguageModel::load(out)?;
    let pad = LanguageModel::pad_for(&vocab, Level::Char);
    let prompt = "ROMEO:\n";
    let ids = vocab
        .encode(prompt, Level::Char)
        .map_err(anyhow::Error::msg)?;
    let continuation = generate(
        &mut model,
        &ids,
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
    Ok(Sample {
        prompt: prompt.to_string(),
        continuation: vocab.decode(&continuation, Level::Char),
        vocab_size: vocab.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_is_a_character_lstm_stopped_by_time() {
        let (data, o) = lm_run(Path::new("in.txt"), Path::new("out"), 42.0);
        assert_eq!(data.limits.max_seconds, Some(42.0));
        assert_eq!(data.valid_fraction, 0.1);
        assert!(!data.resume);
        let (model, train) = crate::lm_train::resolve_lm(&o).unwrap();
        assert_eq!((model.arch, model.level), (Arch::Lstm, Level::Char));
        assert_eq!((model.layers, model.hidden, model.emb), (2, 256, 64));
        assert_eq!((train.bptt, train.batch, train.epochs), (64, 32, 100));
        assert_eq!(train.lr, 3e-3);
    }

    #[test]
    fn prepare_writes_the_corpus_and_clears_an_old_run() {
        let out = std::env::temp_dir().join(format!("firth-quickstart-{}", std::process::id()));
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("checkpoint.safetensors"), "old").unwrap();
        let input = prepare(&out).unwrap();
        assert!(!out.join("checkpoint.safetensors").exists());
        assert_eq!(std::fs::read_to_string(&input).unwrap(), SHAKESPEARE);
        std::fs::remove_dir_all(&out).ok();
    }
}
