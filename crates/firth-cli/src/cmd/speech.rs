//! `firth speech`: features, FSDD manifests and connected digits, train a CTC recogniser,
//! transcribe WAVs, evaluate on a manifest. Manifests are TSV `path<TAB>words`.

use super::set_threads;
use crate::plot::{line_chart, Series};
use crate::progress::Bars;
use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use firth_audio::digits::{
    fsdd_recordings, synthesize_connected_digits, write_manifest, ConnectedDigits, ManifestEntry,
    Split,
};
use firth_audio::features::Normalize;
use firth_audio::{load_mono, FeatureConfig, FeatureExtractor, FeatureKind};
use firth_models::speech::pipeline::{extractor_for, score, wav_utterances};
use firth_models::speech::{
    load, load_utterances, recognize, train_speech, Decoding, SpeechData, SpeechOptions,
    SpeechPreset, SpeechSummary, UnitKind,
};
use firth_models::trainer::EpochRecord;
use firth_nn::CellKind;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a WAV's features as CSV: one frame per line, the frame's numbers comma-separated.
    Features(FeaturesArgs),
    /// Make connected-digit utterances (2-7 digits of one speaker) from FSDD recordings.
    Digits(DigitsArgs),
    /// Write FSDD's isolated-digit manifests: train.tsv (index 10-49), dev.tsv (5-9), test.tsv (0-4).
    Fsdd(FsddArgs),
    /// Train a CTC recogniser (BiLSTM over MFCCs) on manifests.
    Train(Box<TrainArgs>),
    /// Transcribe WAV files: one `path<TAB>transcript` line each.
    Transcribe(TranscribeArgs),
    /// Transcribe a manifest's WAVs and score them: WER, CER, utterance accuracy.
    Eval(EvalArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Norm {
    /// Raw features.
    None,
    /// Mean 0, variance 1 per dimension over the utterance.
    Utterance,
    /// Mean 0, variance 1 per dimension with the training set's statistics (`train` fits
    /// them and stores them with the model).
    Global,
}

#[derive(ClapArgs)]
pub struct FeaturesArgs {
    wav: PathBuf,
    /// The CSV to write (atomically).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    features: FeatureFlags,
}

/// How audio becomes feature frames (shared by `features` and `train`; a model keeps its own).
#[derive(ClapArgs)]
pub struct FeatureFlags {
    /// MFCCs (the default): 13 cepstra, c0 replaced by the log energy.
    #[arg(long, conflicts_with = "fbank")]
    mfcc: bool,
    /// Log mel filterbank energies (26 bands) instead of MFCCs.
    #[arg(long)]
    fbank: bool,
    /// Frame length in milliseconds.
    #[arg(long, default_value_t = 25.0, value_parser = crate::validate::finite_positive)]
    win_ms: f64,
    /// Frame shift in milliseconds.
    #[arg(long, default_value_t = 10.0, value_parser = crate::validate::finite_positive)]
    hop_ms: f64,
    /// 0: static features only; 1: + deltas; 2: + deltas and delta-deltas.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=2))]
    deltas: u8,
    #[arg(long, value_enum, default_value_t = Norm::Utterance)]
    norm: Norm,
    /// Sample rate the audio is resampled to before the features.
    #[arg(long, default_value_t = 8000, value_parser = crate::validate::at_least_1_u32)]
    rate: u32,
}

impl FeatureFlags {
    fn config(&self) -> FeatureConfig {
        FeatureConfig {
            sample_rate: self.rate,
            frame_ms: self.win_ms,
            hop_ms: self.hop_ms,
            kind: if self.fbank {
                FeatureKind::LogMel
            } else {
                FeatureKind::Mfcc
            },
            deltas: self.deltas as usize,
            normalize: match self.norm {
                Norm::None => Normalize::None,
                Norm::Utterance => Normalize::Utterance,
                Norm::Global => Normalize::Global,
            },
            ..FeatureConfig::default()
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum SplitArg {
    /// Recording index 5-49.
    Train,
    /// Recording index 0-4.
    Test,
}

#[derive(ClapArgs)]
pub struct DigitsArgs {
    /// FSDD's `recordings` folder ({digit}_{speaker}_{index}.wav).
    #[arg(long)]
    recordings: PathBuf,
    #[arg(long, value_enum)]
    split: SplitArg,
    /// Utterances to make.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    count: usize,
    /// Folder for the WAVs and manifest.tsv (created if missing).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 15)]
    seed: u64,
    #[arg(long, default_value_t = 2, value_parser = crate::validate::at_least_1)]
    min_digits: usize,
    #[arg(long, default_value_t = 7, value_parser = crate::validate::at_least_1)]
    max_digits: usize,
}

#[derive(ClapArgs)]
pub struct FsddArgs {
    /// FSDD's `recordings` folder.
    #[arg(long)]
    recordings: PathBuf,
    /// Folder for train.tsv, dev.tsv and test.tsv (created if missing).
    #[arg(long)]
    out: PathBuf,
}

#[derive(ClapArgs)]
pub struct TrainArgs {
    /// Training manifest (`path<TAB>words`).
    #[arg(long)]
    train: PathBuf,
    /// Development manifest: greedy WER after each epoch picks the best epoch.
    #[arg(long)]
    dev: Option<PathBuf>,
    /// Test manifest, transcribed once at the end by the best epoch's model.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Output directory: model.safetensors, checkpoint.safetensors, metrics.csv,
    /// dev_wer.csv, summary.json, test.hyp, curves.svg.
    #[arg(long)]
    out: PathBuf,
    /// A documented recipe (docs/speech.md); explicit flags override it.
    #[arg(long, value_enum)]
    preset: Option<SpeechPreset>,
    /// Output units: the training transcripts' words, or their characters and a space
    /// (default: words).
    #[arg(long, value_enum)]
    units: Option<UnitKind>,
    #[arg(long, value_enum)]
    cell: Option<CellKind>,
    /// Units per direction.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    hidden: Option<usize>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    layers: Option<usize>,
    /// Stack this many consecutive frames into one encoder step (1 = none).
    #[arg(long, value_parser = crate::validate::at_least_1)]
    stack: Option<usize>,
    #[arg(long, value_parser = crate::validate::fraction_below_1_f32)]
    dropout: Option<f32>,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    epochs: Option<usize>,
    /// Adam's learning rate.
    #[arg(long, value_parser = crate::validate::finite_positive)]
    lr: Option<f64>,
    /// Utterances per batch.
    #[arg(long, value_parser = crate::validate::at_least_1)]
    batch: Option<usize>,
    /// Clip the global gradient norm (0 = off).
    #[arg(long, value_parser = crate::validate::non_negative)]
    clip: Option<f64>,
    /// Linear learning-rate warm-up over this many updates (0 = off).
    #[arg(long)]
    warmup_steps: Option<u64>,
    /// Multiply lr by this when the development WER does not improve (1 = off).
    #[arg(long, value_parser = crate::validate::positive_probability)]
    plateau_decay: Option<f64>,
    /// Stop after this many epochs without a better development WER (0 = never).
    #[arg(long)]
    patience: Option<usize>,
    /// Train without SpecAugment masks.
    #[arg(long)]
    no_spec_augment: bool,
    #[command(flatten)]
    features: FeatureFlags,
    #[command(flatten)]
    stops: super::StopFlags,
    #[command(flatten)]
    pub run: super::RunFlags,
}

/// Decoding flags shared by `transcribe` and `eval`.
#[derive(ClapArgs, Clone)]
pub struct DecodeFlags {
    /// An n-gram LM (`firth ngram build` binary or ARPA) over transcripts, fused into a
    /// prefix beam search.
    #[arg(long)]
    lm: Option<PathBuf>,
    /// Beam width (1 without --lm = greedy decoding; with --lm at least 8 is used).
    #[arg(long, default_value_t = 1, value_parser = crate::validate::at_least_1)]
    beam: usize,
    /// Weight of the LM's log-probability.
    #[arg(long, default_value_t = 0.5, value_parser = crate::validate::non_negative)]
    lm_weight: f64,
    /// Added per word (offsets the LM's pull towards fewer words).
    #[arg(long, default_value_t = 0.0, value_parser = crate::validate::finite_any)]
    word_bonus: f64,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    threads: Option<usize>,
}

impl DecodeFlags {
    fn decoding(&self) -> Decoding {
        Decoding {
            beam: self.beam,
            lm: self.lm.clone(),
            lm_weight: self.lm_weight,
            word_bonus: self.word_bonus,
        }
    }
}

#[derive(ClapArgs)]
pub struct TranscribeArgs {
    /// Model directory (from `speech train`).
    model: PathBuf,
    /// WAV files.
    #[arg(required = true)]
    wavs: Vec<PathBuf>,
    #[command(flatten)]
    decode: DecodeFlags,
}

#[derive(ClapArgs)]
pub struct EvalArgs {
    /// Model directory (from `speech train`).
    model: PathBuf,
    /// Manifest of WAVs and reference transcripts.
    manifest: PathBuf,
    /// Also write `path<TAB>hypothesis` lines here.
    #[arg(long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    decode: DecodeFlags,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    match a.command {
        Command::Features(f) => features(f),
        Command::Digits(d) => digits(d),
        Command::Fsdd(f) => fsdd(f),
        Command::Train(t) => train(*t).map(|_| ()),
        Command::Transcribe(t) => transcribe(t),
        Command::Eval(e) => eval(e),
    }
}

fn features(a: FeaturesArgs) -> Result<()> {
    let cfg = a.features.config();
    let audio = load_mono(&a.wav, cfg.sample_rate)?;
    let ex = FeatureExtractor::new(cfg)?;
    let f = ex.extract(&audio.samples);
    let mut text = String::with_capacity(f.data.len() * 10);
    for t in 0..f.frames {
        let row: Vec<String> = f.frame(t).iter().map(|v| format!("{v}")).collect();
        text.push_str(&row.join(","));
        text.push('\n');
    }
    firth_nn::checkpoint::write_atomic(&a.out, text.as_bytes())?;
    eprintln!(
        "{}: {} frames of {} numbers",
        a.out.display(),
        f.frames,
        f.dim
    );
    Ok(())
}

fn digits(a: DigitsArgs) -> Result<()> {
    let cfg = ConnectedDigits {
        count: a.count,
        min_digits: a.min_digits,
        max_digits: a.max_digits,
        seed: a.seed,
        ..ConnectedDigits::default()
    };
    let split = match a.split {
        SplitArg::Train => Split::Train,
        SplitArg::Test => Split::Test,
    };
    let entries = synthesize_connected_digits(&a.recordings, split, &a.out, &cfg)?;
    eprintln!(
        "wrote {} utterances and {}",
        entries.len(),
        a.out.join("manifest.tsv").display()
    );
    Ok(())
}

fn fsdd(a: FsddArgs) -> Result<()> {
    let dir = a.recordings.canonicalize().with_context(|| {
        format!(
            "cannot read {}; give FSDD's recordings folder",
            a.recordings.display()
        )
    })?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let train = fsdd_recordings(&dir, Split::Train)?;
    let test = fsdd_recordings(&dir, Split::Test)?;
    let entries = |rs: &mut dyn Iterator<Item = &firth_audio::digits::Recording>| {
        rs.map(|r| ManifestEntry {
            path: r.path.clone(),
            transcript: r.digit.to_string(),
        })
        .collect::<Vec<_>>()
    };
    // The development set is FSDD's indices 5-9 of every speaker and digit: held out from the
    // training split, balanced like the test set.
    let parts = [
        (
            "train.tsv",
            entries(&mut train.iter().filter(|r| r.index >= 10)),
        ),
        (
            "dev.tsv",
            entries(&mut train.iter().filter(|r| r.index < 10)),
        ),
        ("test.tsv", entries(&mut test.iter())),
    ];
    for (name, e) in &parts {
        if e.is_empty() {
            bail!(
                "{}: no FSDD recordings for {name}; is it the `recordings` folder ({{digit}}_{{speaker}}_{{index}}.wav)?",
                dir.display()
            );
        }
        write_manifest(&a.out.join(name), e)?;
        eprintln!("{}: {} recordings", a.out.join(name).display(), e.len());
    }
    Ok(())
}

pub fn train(a: TrainArgs) -> Result<SpeechSummary> {
    set_threads(a.run.threads)?;
    let data = SpeechData {
        train: a.train.clone(),
        dev: a.dev.clone(),
        test: a.test.clone(),
        out: a.out.clone(),
        resume: a.stops.resume,
        limits: a.stops.limits(),
    };
    let options = SpeechOptions {
        features: Some(a.features.config()),
        preset: a.preset,
        units: a.units,
        cell: a.cell,
        hidden: a.hidden,
        layers: a.layers,
        stack: a.stack,
        dropout: a.dropout,
        epochs: a.epochs,
        lr: a.lr,
        batch: a.batch,
        clip: a.clip,
        warmup_steps: a.warmup_steps,
        plateau_decay: a.plateau_decay,
        patience: a.patience,
        spec_augment: a.no_spec_augment.then_some(false),
        checkpoint_every: a.stops.checkpoint_every,
        seed: a.run.seed,
    };
    let mut bars = Bars::for_task(a.run.quiet, "utt");
    let (summary, trainer) = train_speech(&data, &options, &mut bars)?;
    drop(bars);
    write_curves(&a.out, &trainer.progress.history, &trainer.task.dev_wer)?;
    if a.run.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else if !a.run.quiet {
        if let Some(w) = summary.valid_wer {
            eprintln!("dev WER {w:.2}% (epoch {}, greedy)", summary.best_epoch);
        }
        if let (Some(w), Some(c), Some(acc)) =
            (summary.test_wer, summary.test_cer, summary.test_accuracy)
        {
            eprintln!(
                "test WER {w:.2}%  CER {c:.2}%  utterances right {acc:.2}% ({} utterances, greedy)",
                summary.test_utterances
            );
        }
        eprintln!(
            "{:.0} utterances/s training, {:.0}s in all",
            summary.train_utterances_per_second, summary.wall_seconds
        );
    }
    Ok(summary)
}

fn write_curves(out: &Path, h: &[EpochRecord], wer: &[(usize, f64)]) -> Result<()> {
    if h.is_empty() {
        return Ok(());
    }
    if !wer.is_empty() {
        line_chart(
            &out.join("curves.svg"),
            "Speech recogniser, development WER per epoch",
            "epoch",
            "WER (%)",
            &[Series {
                name: "dev WER (greedy)".into(),
                points: wer.iter().map(|&(e, w)| (e as f64, w)).collect(),
            }],
            false,
        )?;
    }
    line_chart(
        &out.join("loss.svg"),
        "Speech recogniser, training CTC loss per word",
        "epoch",
        "loss (nats)",
        &[Series {
            name: "train".into(),
            points: h.iter().map(|r| (r.epoch as f64, r.train_loss)).collect(),
        }],
        true,
    )
}

fn transcribe(a: TranscribeArgs) -> Result<()> {
    set_threads(a.decode.threads)?;
    let (mut model, vocab, features) = load(&a.model)?;
    let utts = wav_utterances(&a.wavs, &extractor_for(&features)?)?;
    let hyps = recognize(&mut model, &vocab, &utts, &a.decode.decoding())?;
    let mut out = std::io::stdout().lock();
    for (p, h) in a.wavs.iter().zip(&hyps) {
        writeln!(out, "{}\t{h}", p.display())?;
    }
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    set_threads(a.decode.threads)?;
    let (mut model, vocab, features) = load(&a.model)?;
    let utts = load_utterances(&a.manifest, &extractor_for(&features)?)?;
    let t0 = std::time::Instant::now();
    let hyps = recognize(&mut model, &vocab, &utts, &a.decode.decoding())?;
    let secs = t0.elapsed().as_secs_f64();
    let t = score(&utts, &hyps);
    if let Some(p) = &a.output {
        let entries = firth_audio::digits::read_manifest(&a.manifest)?;
        let text: String = entries
            .iter()
            .zip(&hyps)
            .map(|(e, h)| format!("{}\t{h}\n", e.path.display()))
            .collect();
        firth_nn::checkpoint::write_atomic(p, text.as_bytes())?;
    }
    if a.json {
        let o = serde_json::json!({"wer": t.wer(), "cer": t.cer(), "accuracy": t.accuracy(),
            "utterances": t.utterances, "reference_words": t.reference_words,
            "beam": a.decode.beam, "lm": a.decode.lm.as_ref().map(|p| p.display().to_string()),
            "lm_weight": a.decode.lm_weight, "word_bonus": a.decode.word_bonus,
            "decode_seconds": secs});
        println!("{o}");
    } else {
        println!(
            "WER {:.2}%  CER {:.2}%  utterances right {:.2}%  ({} utterances, {} words)",
            t.wer(),
            t.cer(),
            t.accuracy(),
            t.utterances,
            t.reference_words
        );
    }
    Ok(())
}
