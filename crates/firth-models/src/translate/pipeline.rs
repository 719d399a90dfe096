//! `firth translate train` as a library call: presets, reading and checking the parallel
//! files, vocabularies (optionally over joint BPE subwords), the model, training through the
//! one loop, and the best epoch's model translating and scoring the test set; and
//! [`translate_lines`], which `translate run`/`eval` and the pipeline share.

use super::data::{read_lines, read_parallel, tokens, Parallel, ReadRules};
use super::decode::SearchConfig;
use super::model::{AttentionType, Translator, TranslatorConfig};
use super::task::{DevSet, IdPair, TranslateSettings, TranslateTask};
use super::vocab::{encode, TransVocab, UNK_ID};
use super::{bleu_score, chrf_score, Subwords, BPE_CODES, MODEL};
use crate::trainer::{Limits, Observer, Schedule, TrainConfig, Trainer};
use anyhow::{bail, Context, Result};
use firth_nn::optim::OptimKind;
use firth_nn::{CellKind, ParamSet, Rng};
use firth_text::bpe::Bpe;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Documented recipes (docs/translate.md): Multi30k (WMT16 multimodal task 1) on the
/// lower-cased, tokenised `tok/` files.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TranslatePreset {
    /// German to English.
    #[cfg_attr(feature = "clap", value(name = "multi30k-de-en"))]
    Multi30kDeEn,
    /// English to German (the same settings).
    #[cfg_attr(feature = "clap", value(name = "multi30k-en-de"))]
    Multi30kEnDe,
}

/// Settings given explicitly; each one overrides the preset's (or the default).
#[derive(Clone, Debug, Default)]
pub struct TranslateOptions {
    pub preset: Option<TranslatePreset>,
    pub cell: Option<CellKind>,
    pub attention: Option<AttentionType>,
    /// Both encoder and decoder layers (each overridable below).
    pub layers: Option<usize>,
    pub enc_layers: Option<usize>,
    pub dec_layers: Option<usize>,
    pub emb: Option<usize>,
    /// Encoder units per direction; the decoder gets twice this unless `dec_hidden`.
    pub hidden: Option<usize>,
    pub dec_hidden: Option<usize>,
    /// `Some(false)`: no input feeding.
    pub input_feeding: Option<bool>,
    pub dropout: Option<f32>,
    pub label_smoothing: Option<f32>,
    pub tied: bool,
    pub init_range: Option<f64>,
    pub epochs: Option<usize>,
    pub lr: Option<f64>,
    pub warmup_steps: Option<u64>,
    pub plateau_decay: Option<f64>,
    pub patience: Option<usize>,
    pub clip: Option<f64>,
    pub batch_tokens: Option<usize>,
    /// Cap on sentence pairs per batch; alone, it replaces the token cap.
    pub batch_sentences: Option<usize>,
    pub min_count: Option<usize>,
    /// Joint BPE merges learned on the training text; 0 = word level.
    pub bpe_merges: Option<usize>,
    /// Training pairs with a side longer than this many tokens are skipped.
    pub max_len: Option<usize>,
    /// Beam width for the test set (1 = greedy).
    pub beam: Option<usize>,
    pub alpha: Option<f64>,
    /// Skip the development BLEU (then the development perplexity picks the best epoch).
    pub no_valid_bleu: bool,
    pub checkpoint_every: Option<usize>,
    pub seed: u64,
}

/// The files of a run and where it writes.
#[derive(Clone, Debug)]
pub struct TranslateData {
    pub train_src: PathBuf,
    pub train_tgt: PathBuf,
    pub valid_src: Option<PathBuf>,
    pub valid_tgt: Option<PathBuf>,
    pub test_src: Option<PathBuf>,
    pub test_tgt: Option<PathBuf>,
    pub out: PathBuf,
    pub resume: bool,
    pub limits: Limits,
}

/// Everything resolved from a preset and the options, but the vocabulary sizes.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub model: TranslatorConfig,
    pub train: TrainConfig,
    pub settings: TranslateSettings,
    pub min_count: usize,
    pub bpe_merges: usize,
    pub max_len: usize,
    pub search: SearchConfig,
}

/// Applies the preset (or the defaults) and the explicit options.
pub fn resolve(o: &TranslateOptions) -> Result<Resolved> {
    // The presets share one recipe; what differs is the data (the files given).
    // 18 epochs of Multi30k take about 50 minutes on two quiet cores (~2,400 target tokens/s).
    let epochs = if o.preset.is_some() { 18 } else { 10 };
    let hidden = o.hidden.unwrap_or(256);
    let layers = o.layers.unwrap_or(1);
    let model = TranslatorConfig {
        cell: o.cell.unwrap_or(CellKind::Lstm),
        src_vocab: 0,
        tgt_vocab: 0,
        emb: o.emb.unwrap_or(256),
        enc_hidden: hidden,
        enc_layers: o.enc_layers.unwrap_or(layers),
        dec_hidden: o.dec_hidden.unwrap_or(2 * hidden),
        dec_layers: o.dec_layers.unwrap_or(layers),
        attention: o.attention.unwrap_or(AttentionType::General),
        input_feeding: o.input_feeding.unwrap_or(true),
        dropout: o.dropout.unwrap_or(0.3),
        label_smoothing: o.label_smoothing.unwrap_or(0.1),
        tied: o.tied,
        init_range: o.init_range.unwrap_or(0.1),
    };
    // The best development epoch is kept; Adam, optional warm-up and plateau decay.
    let train = TrainConfig {
        plateau_decay: o.plateau_decay.unwrap_or(0.5),
        patience: o.patience.unwrap_or(0),
        checkpoint_every: o.checkpoint_every.unwrap_or(0),
        warmup_steps: o.warmup_steps.unwrap_or(200),
        average: 0.0,
        ..TrainConfig::best_epoch(
            o.epochs.unwrap_or(epochs),
            o.lr.unwrap_or(1e-3),
            Schedule::CONSTANT,
            OptimKind::Adam,
            0.0,
            o.clip.unwrap_or(5.0),
            o.seed,
        )
    };
    train.check()?;
    let settings = TranslateSettings {
        batch_tokens: match (o.batch_tokens, o.batch_sentences) {
            (Some(t), _) => t,
            (None, Some(_)) => 0,
            (None, None) => 1200,
        },
        batch_sentences: o.batch_sentences.unwrap_or(0),
        valid_bleu: !o.no_valid_bleu,
    };
    if o.batch_tokens == Some(0) {
        bail!("--batch-tokens must be at least 1");
    }
    if o.batch_sentences == Some(0) {
        bail!("--batch-sentences must be at least 1");
    }
    Ok(Resolved {
        model,
        train,
        settings,
        min_count: o.min_count.unwrap_or(2),
        bpe_merges: o.bpe_merges.unwrap_or(0),
        max_len: o.max_len.unwrap_or(80),
        search: SearchConfig {
            beam: o.beam.unwrap_or(5).max(1),
            alpha: o.alpha.unwrap_or(0.6),
        },
    })
}

/// The summary of `firth translate train` (also written to `summary.json`).
#[derive(Clone, Debug, Serialize)]
pub struct TranslateSummary {
    pub epochs_completed: usize,
    pub best_epoch: usize,
    pub steps: u64,
    pub parameters: usize,
    pub src_vocab: usize,
    pub tgt_vocab: usize,
    pub bpe_merges: usize,
    pub train_pairs: usize,
    /// Development BLEU of the best epoch (greedy decoding).
    pub valid_bleu: Option<f64>,
    pub valid_perplexity: Option<f64>,
    /// Test BLEU of the best epoch's model (beam `test_beam`).
    pub test_bleu: Option<f64>,
    pub test_beam: usize,
    /// chrF of the same test translations.
    pub test_chrf: Option<f64>,
    /// Greedy test BLEU, for comparison.
    pub test_bleu_greedy: Option<f64>,
    /// Greedy translation speed on the test set.
    pub greedy_sentences_per_second: Option<f64>,
    pub beam_sentences_per_second: Option<f64>,
    /// Target tokens (with </s>) trained on per second.
    pub train_tokens_per_second: f64,
    pub train_seconds: f64,
    pub wall_seconds: f64,
    pub stopped_early: bool,
}

/// Translated lines and the speed.
#[derive(Clone, Debug)]
pub struct Translation {
    pub lines: Vec<String>,
    pub sentences_per_second: f64,
}

/// The joint BPE of a model directory, when the model uses subwords.
pub struct Segmenter {
    bpe: Option<Bpe>,
}

impl Segmenter {
    /// Words only.
    pub fn words() -> Segmenter {
        Segmenter { bpe: None }
    }

    /// The line as the model reads it (subwords when the model uses them).
    pub fn apply(&self, line: &str) -> String {
        match &self.bpe {
            Some(b) => b.apply_line(line),
            None => line.to_string(),
        }
    }
}

/// Loads the subword codes a model needs from its directory (`bpe.codes`).
pub fn segmenter(dir: &Path, subwords: &Subwords) -> Result<Segmenter> {
    if subwords.bpe_merges == 0 {
        return Ok(Segmenter::words());
    }
    let dir = if dir.is_dir() {
        dir
    } else {
        dir.parent().unwrap_or(Path::new("."))
    };
    let path = dir.join(BPE_CODES);
    let bpe = Bpe::load(&path).with_context(|| {
        format!(
            "the model uses BPE subwords: {} should hold its codes",
            path.display()
        )
    })?;
    Ok(Segmenter { bpe: Some(bpe) })
}

/// Source tokens per decoding batch of `translate run`/`eval` (divided by the beam width).
const DECODE_BATCH_TOKENS: usize = 4000;

/// Translates `lines` (tokenised as the training text): sources split on whitespace (and cut
/// into subwords), encoded, decoded with `search`, and output tokens joined back into words.
/// With `replace_unk`, an output `<unk>` becomes the source token it attends to most.
#[allow(clippy::too_many_arguments)]
pub fn translate_lines(
    model: &mut Translator<f32>,
    vocab: &TransVocab,
    seg: &Segmenter,
    subwords: &Subwords,
    lines: &[String],
    search: SearchConfig,
    replace_unk: bool,
) -> Translation {
    let t0 = Instant::now();
    let src_tokens: Vec<Vec<String>> = lines.iter().map(|l| tokens(&seg.apply(l))).collect();
    let srcs: Vec<Vec<u32>> = src_tokens.iter().map(|t| encode(&vocab.src, t)).collect();
    let outs = model.translate_ids(&srcs, search, DECODE_BATCH_TOKENS);
    let align = if replace_unk && outs.iter().flatten().any(|&i| i == UNK_ID) {
        let idx: Vec<usize> = (0..srcs.len())
            .filter(|&i| !srcs[i].is_empty() && outs[i].contains(&UNK_ID))
            .collect();
        let mut al = vec![Vec::new(); srcs.len()];
        for chunk in idx.chunks(64) {
            let pairs: Vec<(&[u32], &[u32])> = chunk
                .iter()
                .map(|&i| (&srcs[i][..], &outs[i][..]))
                .collect();
            for (&i, a) in chunk.iter().zip(model.alignments(&pairs)) {
                al[i] = a;
            }
        }
        Some(al)
    } else {
        None
    };
    let out_lines = outs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let toks: Vec<String> = o
                .iter()
                .enumerate()
                .map(|(t, &id)| match &align {
                    Some(al) if id == UNK_ID && !al[i].is_empty() => {
                        src_tokens[i][al[i][t].min(src_tokens[i].len() - 1)].clone()
                    }
                    _ => vocab.tgt.token(id).to_string(),
                })
                .collect();
            subwords.join_tokens(&toks)
        })
        .collect();
    Translation {
        lines: out_lines,
        sentences_per_second: lines.len() as f64 / t0.elapsed().as_secs_f64().max(1e-9),
    }
}

/// The `n` best translations of each line by beam search of width `beam` (at least `n`),
/// best first, each with its score (log p over the GNMT length penalty, what the beam ranks
/// by; </s> counted). Lines are tokenised, cut into subwords and joined back as in
/// [`translate_lines`]; an empty line has no translations. Sentences are decoded in batches
/// of similar length, as the one-best search is.
#[allow(clippy::too_many_arguments)]
pub fn translate_n_best(
    model: &mut Translator<f32>,
    vocab: &TransVocab,
    seg: &Segmenter,
    subwords: &Subwords,
    lines: &[String],
    beam: usize,
    alpha: f64,
    n: usize,
) -> Vec<Vec<(String, f64)>> {
    let beam = beam.max(n).max(1);
    let srcs: Vec<Vec<u32>> = lines
        .iter()
        .map(|l| encode(&vocab.src, &tokens(&seg.apply(l))))
        .collect();
    let mut out = vec![Vec::new(); srcs.len()];
    for group in super::decode::similar_length_batches(&srcs, DECODE_BATCH_TOKENS, beam) {
        let batch: Vec<&[u32]> = group.iter().map(|&i| &srcs[i][..]).collect();
        let hyps = model.beam_batch(&batch, beam, alpha, n, &super::decode::max_output);
        for (&i, list) in group.iter().zip(hyps) {
            out[i] = list
                .into_iter()
                .map(|h| {
                    let words: Vec<String> = h
                        .tokens
                        .iter()
                        .filter(|&&id| id != super::vocab::EOS_ID)
                        .map(|&id| vocab.tgt.token(id).to_string())
                        .collect();
                    (subwords.join_tokens(&words), h.score)
                })
                .collect();
        }
    }
    out
}

/// A translation with the attention that produced it (what `translate attention` draws).
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionMap {
    /// The source tokens as the model read them (subwords when it uses them).
    pub source: Vec<String>,
    /// The output tokens, then `</s>`.
    pub target: Vec<String>,
    /// α: row t holds output step t's weights over the source tokens (each row sums to 1).
    pub weights: Vec<Vec<f32>>,
    /// The output as a line of words, as [`translate_lines`] writes it.
    pub translation: String,
}

/// Translates one line with `search` and returns the attention of each output step over the
/// source, from a teacher-forced pass over the output ([`Translator::forced_attention`]).
pub fn attention_map(
    model: &mut Translator<f32>,
    vocab: &TransVocab,
    seg: &Segmenter,
    subwords: &Subwords,
    line: &str,
    search: SearchConfig,
) -> Result<AttentionMap> {
    if model.config.attention == AttentionType::None {
        bail!("this model has no attention (it was trained with --attention none)");
    }
    let source = tokens(&seg.apply(line));
    if source.is_empty() {
        bail!("the source sentence is empty");
    }
    let src = encode(&vocab.src, &source);
    let out = model
        .translate_ids(std::slice::from_ref(&src), search, DECODE_BATCH_TOKENS)
        .remove(0);
    let weights = model.forced_attention(&src, &out);
    let mut target: Vec<String> = out
        .iter()
        .map(|&i| vocab.tgt.token(i).to_string())
        .collect();
    target.push(super::vocab::EOS.to_string());
    Ok(AttentionMap {
        source,
        target,
        weights,
        translation: subwords.join(&vocab.tgt, &out),
    })
}

/// Reference lines as words (whitespace normalised).
fn references(path: &Path) -> Result<Vec<String>> {
    Ok(read_lines(path)?
        .iter()
        .map(|l| tokens(l).join(" "))
        .collect())
}

fn encode_pairs(vocab: &TransVocab, p: &Parallel) -> Vec<IdPair> {
    p.pairs
        .iter()
        .map(|(s, t)| (encode(&vocab.src, s), encode(&vocab.tgt, t)))
        .collect()
}

/// Trains a translator as `firth translate train` does and tests the best epoch's model.
/// Messages (the model's description, warnings) go to `obs.note`.
pub fn train_translator(
    data: &TranslateData,
    options: &TranslateOptions,
    obs: &mut dyn Observer,
) -> Result<(TranslateSummary, Trainer<TranslateTask>)> {
    let wall = Instant::now();
    let r = resolve(options)?;
    r.model_check()?;
    if data.valid_src.is_some() != data.valid_tgt.is_some() {
        bail!("--valid-src and --valid-tgt go together");
    }
    if data.test_src.is_some() != data.test_tgt.is_some() {
        bail!("--test-src and --test-tgt go together");
    }
    let subwords = Subwords {
        bpe_merges: r.bpe_merges,
    };
    // Joint BPE over both training files: learned once and kept in the model directory (a
    // resumed run reads it back, so the segmentation cannot drift).
    // (Saved once the run is set up, so a refused run writes nothing.)
    let codes = data.out.join(BPE_CODES);
    let mut new_codes = false;
    let seg = if r.bpe_merges == 0 {
        Segmenter::words()
    } else {
        let bpe = if data.resume && codes.exists() {
            Bpe::load(&codes)?
        } else {
            new_codes = true;
            let bpe = Bpe::learn_files(
                &[data.train_src.as_path(), data.train_tgt.as_path()],
                r.bpe_merges,
                2,
            )?;
            obs.note(&format!(
                "learned {} joint BPE merges from the training text",
                bpe.merges()
            ));
            bpe
        };
        Segmenter { bpe: Some(bpe) }
    };
    let prep = |l: &str| seg.apply(l);
    let train = read_parallel(
        &data.train_src,
        &data.train_tgt,
        ReadRules {
            skip_empty: true,
            max_len: Some(r.max_len),
        },
        &prep,
    )?;
    for n in &train.notes {
        obs.note(n);
    }
    let held_out = ReadRules {
        skip_empty: false,
        max_len: None,
    };
    let valid = match (&data.valid_src, &data.valid_tgt) {
        (Some(s), Some(t)) => Some((read_parallel(s, t, held_out, &prep)?, references(t)?)),
        _ => None,
    };
    let test = match (&data.test_src, &data.test_tgt) {
        (Some(s), Some(t)) => Some((read_lines(s)?, references(t)?, s.clone(), t.clone())),
        _ => None,
    };
    if let Some((s, t, sp, tp)) = &test {
        if s.len() != t.len() {
            bail!(
                "{} has {} lines but {} has {}: source and target files must be line-aligned",
                sp.display(),
                s.len(),
                tp.display(),
                t.len()
            );
        }
    }
    let vocab = TransVocab::build(&train.pairs, r.min_count);
    let config = TranslatorConfig {
        src_vocab: vocab.src.len(),
        tgt_vocab: vocab.tgt.len(),
        ..r.model.clone()
    };
    let model = Translator::new(config.clone(), &mut Rng::new(r.train.seed))?;
    let train_ids = encode_pairs(&vocab, &train);
    let dev = valid.map(|(p, refs)| DevSet {
        pairs: encode_pairs(&vocab, &p),
        refs,
    });
    let task = TranslateTask::new(
        model,
        vocab.clone(),
        r.settings.clone(),
        subwords.clone(),
        train_ids,
        dev,
    );
    let mut trainer = Trainer::start(task, r.train.clone(), &data.out, data.resume)?;
    if let (true, Some(bpe)) = (new_codes, &seg.bpe) {
        std::fs::create_dir_all(&data.out)
            .with_context(|| format!("cannot create {}", data.out.display()))?;
        bpe.save(&codes)?;
    }
    obs.note(&format!(
        "{:?} encoder-decoder: {} x {} x 2 directions encoder, {} x {} decoder, {:?} attention{}, emb {}, vocabularies {} / {}, {} parameters; {} training pairs",
        config.cell,
        config.enc_layers,
        config.enc_hidden,
        config.dec_layers,
        config.dec_hidden,
        config.attention,
        if config.input_feeding { ", input feeding" } else { "" },
        config.emb,
        vocab.src.len(),
        vocab.tgt.len(),
        trainer.task.model.num_params(),
        train.pairs.len()
    ));
    let run = trainer.run(data.limits, obs)?;
    let p = &trainer.progress;
    let best = p.history.iter().find(|h| h.epoch == p.best_epoch);
    let (valid_bleu, valid_perplexity) = (
        best.and_then(|h| h.valid_bleu),
        best.and_then(|h| h.valid_perplexity),
    );
    let mut summary = TranslateSummary {
        epochs_completed: run.epochs_completed,
        best_epoch: run.best_epoch,
        steps: run.steps,
        parameters: trainer.task.model.num_params(),
        src_vocab: vocab.src.len(),
        tgt_vocab: vocab.tgt.len(),
        bpe_merges: r.bpe_merges,
        train_pairs: train.pairs.len(),
        valid_bleu,
        valid_perplexity,
        test_bleu: None,
        test_beam: r.search.beam,
        test_chrf: None,
        test_bleu_greedy: None,
        greedy_sentences_per_second: None,
        beam_sentences_per_second: None,
        train_tokens_per_second: run.train_items_per_second,
        train_seconds: p.train_seconds,
        wall_seconds: 0.0,
        stopped_early: run.stopped_early,
    };
    if let Some((src, refs, _, _)) = &test {
        // The best epoch's model.
        let (mut best, bv, bs) = super::load(&data.out.join(MODEL))?;
        let seg = segmenter(&data.out, &bs)?;
        let greedy = translate_lines(
            &mut best,
            &bv,
            &seg,
            &bs,
            src,
            SearchConfig::default(),
            false,
        );
        summary.test_bleu_greedy = Some(bleu_score(&greedy.lines, refs)?);
        summary.greedy_sentences_per_second = Some(greedy.sentences_per_second);
        let hyps = if r.search.beam > 1 {
            let b = translate_lines(&mut best, &bv, &seg, &bs, src, r.search, false);
            summary.beam_sentences_per_second = Some(b.sentences_per_second);
            b.lines
        } else {
            greedy.lines
        };
        summary.test_bleu = Some(bleu_score(&hyps, refs)?);
        summary.test_chrf = Some(chrf_score(&hyps, refs)?);
        firth_nn::checkpoint::write_atomic(
            &data.out.join("test.hyp"),
            (hyps.join("\n") + "\n").as_bytes(),
        )?;
    }
    summary.wall_seconds = wall.elapsed().as_secs_f64();
    firth_nn::checkpoint::write_atomic(
        &data.out.join("summary.json"),
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )?;
    Ok((summary, trainer))
}

impl Resolved {
    fn model_check(&self) -> Result<()> {
        // Vocabulary sizes are not known yet; check everything else.
        TranslatorConfig {
            src_vocab: 1,
            tgt_vocab: 1,
            ..self.model.clone()
        }
        .validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(attention: AttentionType) -> (Translator<f32>, TransVocab) {
        let pairs: Vec<(Vec<String>, Vec<String>)> = [
            ("der mann läuft .", "the man runs ."),
            ("ein kind isst .", "a child eats ."),
        ]
        .iter()
        .map(|(s, t)| (tokens(s), tokens(t)))
        .collect();
        let vocab = TransVocab::build(&pairs, 1);
        let config = TranslatorConfig {
            cell: CellKind::Lstm,
            src_vocab: vocab.src.len(),
            tgt_vocab: vocab.tgt.len(),
            emb: 4,
            enc_hidden: 3,
            enc_layers: 1,
            dec_hidden: 6,
            dec_layers: 1,
            attention,
            input_feeding: true,
            dropout: 0.0,
            label_smoothing: 0.0,
            tied: false,
            init_range: 0.5,
        };
        (Translator::new(config, &mut Rng::new(2)).unwrap(), vocab)
    }

    #[test]
    fn the_attention_map_is_the_translation_s_own() {
        let (mut m, vocab) = model(AttentionType::General);
        let (seg, sw) = (Segmenter::words(), Subwords::default());
        let line = "der kind läuft schnell .";
        for beam in [1, 3] {
            let search = SearchConfig { beam, alpha: 0.6 };
            let a = attention_map(&mut m, &vocab, &seg, &sw, line, search).unwrap();
            // The same output translate_lines gives, and one row per output token and </s>.
            let t = translate_lines(
                &mut m,
                &vocab,
                &seg,
                &sw,
                &[line.to_string()],
                search,
                false,
            );
            assert_eq!(a.translation, t.lines[0]);
            assert_eq!(a.source, tokens(line));
            assert_eq!(a.target.last().map(String::as_str), Some("</s>"));
            assert_eq!(a.target[..a.target.len() - 1].join(" "), a.translation);
            assert_eq!(a.weights.len(), a.target.len());
            for row in &a.weights {
                assert_eq!(row.len(), 5);
                let sum: f32 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "{sum}");
                assert!(row.iter().all(|&x| x >= 0.0));
            }
        }
        let e = attention_map(&mut m, &vocab, &seg, &sw, "  ", SearchConfig::default());
        assert!(e.unwrap_err().to_string().contains("empty"));
        let (mut none, vocab) = model(AttentionType::None);
        let e = attention_map(&mut none, &vocab, &seg, &sw, line, SearchConfig::default());
        assert!(e.unwrap_err().to_string().contains("no attention"));
    }
}
