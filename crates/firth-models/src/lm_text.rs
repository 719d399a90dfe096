//! Using a trained language model on text, as `firth lm eval` and `firth lm generate` do:
//! scoring a file and continuing a prompt. Here rather than in the command line so scripts and
//! tests get the same tokenisation of prompts and the same figures.

use crate::decode::{beam_search, generate, Strategy};
use crate::lm::LanguageModel;
use crate::lm_train::evaluate;
use anyhow::{bail, Result};
use firth_nn::Rng;
use firth_text::{Level, UNK};
use serde::Serialize;
use std::path::Path;

/// How well a model predicts a text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TextScore {
    /// Mean negative log-likelihood, nats per token.
    pub loss: f64,
    pub perplexity: f64,
    /// Tokens predicted.
    pub tokens: usize,
    /// For a character model: the loss in bits, the unit character-level results are quoted in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits_per_char: Option<f64>,
}

/// Scores `file` with the model at `model`, reading `batch` columns in blocks of `bptt`.
pub fn score_file(model: &Path, file: &Path, batch: usize, bptt: usize) -> Result<TextScore> {
    let (mut model, vocab) = LanguageModel::load(model)?;
    let text = firth_text::read_text(file)?;
    score_text(
        &mut model,
        &vocab,
        &text,
        &file.display().to_string(),
        batch,
        bptt,
    )
}

/// Scores `text` (named `what` in errors) with a loaded model, as [`score_file`] scores a
/// file: what Python's `firth.lm` calls on strings, keeping the model loaded between calls.
pub fn score_text(
    model: &mut LanguageModel<f32>,
    vocab: &firth_text::Vocab,
    text: &str,
    what: &str,
    batch: usize,
    bptt: usize,
) -> Result<TextScore> {
    let level = model.config.level;
    let ids = vocab
        .encode(&model_order(model, text), level)
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if ids.len() < 2 {
        bail!("{what}: too little text to score");
    }
    let pad = LanguageModel::pad_for(vocab, level);
    let (loss, tokens) = evaluate(model, &ids, batch, bptt, pad);
    Ok(TextScore {
        loss,
        perplexity: loss.exp(),
        tokens,
        bits_per_char: (level == Level::Char).then(|| loss / std::f64::consts::LN_2),
    })
}

/// What each layer of a model computes over a text ([`hidden_states`]).
#[derive(Clone, Debug, PartialEq)]
pub struct HiddenStates {
    /// The token ids the model read, one per row.
    pub ids: Vec<u32>,
    /// Per layer, bottom first: (tokens, width) row-major.
    pub layers: Vec<Vec<f32>>,
    pub width: usize,
}

/// Steps per forward pass of [`hidden_states`]; the state carries across them, so this only
/// bounds the activations kept at once.
const HIDDEN_BLOCK: usize = 256;

/// `text` as the model reads it: each line backwards for a backward (`--reverse`) model.
fn model_order<'a>(model: &LanguageModel<f32>, text: &'a str) -> std::borrow::Cow<'a, str> {
    if model.config.reverse {
        crate::data::reverse_lines(text).into()
    } else {
        text.into()
    }
}

/// The output of every layer at every token of `text` (named `what` in errors), the text read
/// as one stream from the start state, as [`score_text`] reads it with one column: row t is
/// the state after reading token t, from which the model predicts token t + 1. A backward
/// model reads (and its rows follow) each line backwards.
pub fn hidden_states(
    model: &mut LanguageModel<f32>,
    vocab: &firth_text::Vocab,
    text: &str,
    what: &str,
) -> Result<HiddenStates> {
    let level = model.config.level;
    let ids = vocab
        .encode(&model_order(model, text), level)
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if ids.is_empty() {
        bail!("{what}: no tokens to read");
    }
    let pad = LanguageModel::pad_for(vocab, level);
    let mut state = model.start_state(1, pad);
    let mut rng = Rng::new(0);
    let mut layers: Vec<Vec<f32>> = Vec::new();
    for block in ids.chunks(HIDDEN_BLOCK) {
        model.forward_body(block, block.len(), 1, &mut state, false, &mut rng);
        let outs = model.layer_outputs();
        layers.resize(outs.len(), Vec::new());
        for (all, out) in layers.iter_mut().zip(outs) {
            all.extend_from_slice(out);
        }
    }
    Ok(HiddenStates {
        width: layers[0].len() / ids.len(),
        ids,
        layers,
    })
}

/// How to continue a prompt.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub prompt: String,
    /// Always take the most probable token (ignores the sampling settings).
    pub greedy: bool,
    pub temperature: f64,
    /// Sample among the `top_k` most probable tokens (0: all) ...
    pub top_k: usize,
    /// ... and then among the most probable whose probabilities add up to `top_p`.
    pub top_p: f64,
    /// Beam search with this many hypotheses instead of sampling; the best is returned.
    pub beam: Option<usize>,
    pub max_tokens: usize,
    pub seed: u64,
}

/// The prompt followed by the model's continuation, as text.
///
/// A word prompt is one line without its end, so no `<eos>` follows it; a word the model does
/// not know is read as `<unk>` where the vocabulary has one, and is an error where it has not.
pub fn continue_prompt(model: &Path, o: &GenerateOptions) -> Result<String> {
    let (mut model, vocab) = LanguageModel::load(model)?;
    continue_text(&mut model, &vocab, o)
}

/// [`continue_prompt`] with a loaded model.
pub fn continue_text(
    model: &mut LanguageModel<f32>,
    vocab: &firth_text::Vocab,
    o: &GenerateOptions,
) -> Result<String> {
    let level = model.config.level;
    let pad = LanguageModel::pad_for(vocab, level);
    let prompt = encode_prompt(model, vocab, o)?;
    let out = match o.beam {
        Some(b) => {
            let beams = beam_search(model, &prompt, pad, b, o.max_tokens, Some(pad));
            beams.into_iter().next().map(|b| b.0).unwrap_or_default()
        }
        None => generate(
            model,
            &prompt,
            pad,
            o.max_tokens,
            o.strategy(),
            None,
            &mut Rng::new(o.seed),
        ),
    };
    let mut text = vocab.decode(&prompt, level);
    if level == Level::Word && !text.is_empty() && !out.is_empty() {
        text.push(' ');
    }
    text.push_str(&vocab.decode(&out, level));
    // A backward model wrote the text before the prompt, right to left.
    let text = model_order(model, &text).into_owned();
    Ok(text.trim_end().to_string())
}

impl GenerateOptions {
    fn strategy(&self) -> Strategy {
        if self.greedy {
            Strategy::Greedy
        } else {
            Strategy::Sample {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
            }
        }
    }
}

/// The prompt's token ids in the order the model reads them, after checking the sampling
/// settings.
fn encode_prompt(
    model: &LanguageModel<f32>,
    vocab: &firth_text::Vocab,
    o: &GenerateOptions,
) -> Result<Vec<u32>> {
    let level = model.config.level;
    let prompt = match level {
        Level::Word => {
            let unk = vocab.get(UNK);
            o.prompt
                .split_whitespace()
                .map(|w| {
                    vocab.get(w).or(unk).ok_or_else(|| {
                        anyhow::anyhow!("prompt word {w:?} is not in the vocabulary")
                    })
                })
                .collect::<Result<Vec<u32>>>()?
        }
        Level::Char => vocab
            .encode(&model_order(model, &o.prompt), level)
            .map_err(|e| anyhow::anyhow!("--prompt: {e}"))?,
    };
    // Written so that NaN fails too.
    let sane = o.temperature > 0.0 && 0.0 < o.top_p && o.top_p <= 1.0;
    if !sane {
        bail!("--temperature must be positive and --top-p in (0, 1]");
    }
    Ok(prompt)
}

/// One generated token and how sure the model was of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenChoice {
    pub token: String,
    /// p(token | prompt and the tokens before it), from the model's softmax at temperature 1
    /// (what the model believes, whatever the sampler's settings were).
    pub prob: f64,
    /// The most probable tokens at this position with their probabilities, most probable first.
    pub top: Vec<(String, f64)>,
}

/// A continuation with its evidence, for showing a model's uncertainty (`firth serve`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explained {
    /// The prompt as the model read it, one entry per token.
    pub prompt: Vec<String>,
    pub tokens: Vec<TokenChoice>,
}

/// Continues a prompt as [`continue_text`] does without a beam (the same tokens for the same
/// options and seed) and keeps, for every generated token, its probability and the
/// `alternatives` most probable tokens at its position.
pub fn continue_explained(
    model: &mut LanguageModel<f32>,
    vocab: &firth_text::Vocab,
    o: &GenerateOptions,
    alternatives: usize,
) -> Result<Explained> {
    use crate::decode::{choose, log_softmax, prime, StepDecoder};
    let level = model.config.level;
    let pad = LanguageModel::pad_for(vocab, level);
    let prompt = encode_prompt(model, vocab, o)?;
    let name = |id: u32| vocab.decode(&[id], level);
    let strategy = o.strategy();
    let mut rng = Rng::new(o.seed);
    let (mut state, mut z) = prime(model, &prompt, pad);
    let mut tokens = Vec::with_capacity(o.max_tokens);
    for n in 0..o.max_tokens {
        let tok = choose(&z, strategy, &mut rng);
        let lp = log_softmax(&z);
        let mut order: Vec<u32> = (0..lp.len() as u32).collect();
        order.sort_by(|&a, &b| lp[b as usize].total_cmp(&lp[a as usize]).then(a.cmp(&b)));
        order.truncate(alternatives);
        tokens.push(TokenChoice {
            token: name(tok),
            prob: lp[tok as usize].exp(),
            top: order
                .iter()
                .map(|&i| (name(i), lp[i as usize].exp()))
                .collect(),
        });
        if n + 1 == o.max_tokens {
            break;
        }
        z.clear();
        z.extend_from_slice(model.step(&mut state, &[tok]));
    }
    Ok(Explained {
        prompt: prompt.iter().map(|&i| name(i)).collect(),
        tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lm::{Arch, LmConfig};
    use firth_text::Vocab;

    /// A freshly initialised word model saved in a temporary directory.
    fn saved_model(name: &str, text: &str, level: Level) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("firth-lm-text-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let vocab = Vocab::build(text, level);
        let config = LmConfig::new(Arch::Lstm, level, vocab.len(), 8);
        let model = LanguageModel::<f32>::new(config, &mut Rng::new(3)).unwrap();
        let mut t = model.to_tensors(&vocab).unwrap();
        t.metadata.insert("firth".into(), "lm-model-v1".into());
        t.save(&dir.join(crate::trainer::MODEL)).unwrap();
        dir
    }

    #[test]
    fn the_output_layer_on_the_top_hidden_states_gives_the_text_score() {
        use firth_nn::ParamSet;
        // More tokens than one block, so the state must carry across blocks.
        let text = "the cat sat on the mat\nthe dog ate the cat food\n".repeat(30);
        let vocab = Vocab::build(&text, Level::Word);
        for (arch, layers, residual, tied) in [
            (Arch::Lstm, 2, true, false),
            (Arch::Gru, 1, false, true),
            (Arch::Window, 1, false, false),
        ] {
            let config = LmConfig {
                layers,
                residual,
                tied,
                ..LmConfig::new(arch, Level::Word, vocab.len(), 6)
            };
            let mut model = LanguageModel::<f32>::new(config, &mut Rng::new(5)).unwrap();
            let hs = hidden_states(&mut model, &vocab, &text, "text").unwrap();
            let n = hs.ids.len();
            assert!(n > HIDDEN_BLOCK);
            assert_eq!(hs.layers.len(), layers);
            assert_eq!(hs.width, 6);
            assert!(hs.layers.iter().all(|l| l.len() == n * 6));
            // -log softmax(W h_t + b)[id_{t+1}], averaged, by hand in f64, is the loss
            // score_text reports for one column.
            let params = model.params();
            let find = |name: &str| params.iter().find(|p| p.name == name).map(|p| &p.value);
            let w = find("out.weight").or(find("embedding.weight")).unwrap();
            let b = find("out.bias").unwrap();
            let (v, top) = (vocab.len(), &hs.layers[layers - 1]);
            let mut nll = 0.0;
            for t in 0..n - 1 {
                let h = &top[t * 6..(t + 1) * 6];
                let z: Vec<f64> = (0..v)
                    .map(|c| {
                        b[c] as f64
                            + (0..6)
                                .map(|k| w[c * 6 + k] as f64 * h[k] as f64)
                                .sum::<f64>()
                    })
                    .collect();
                let m = z.iter().cloned().fold(f64::MIN, f64::max);
                let lse = m + z.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
                nll += lse - z[hs.ids[t + 1] as usize];
            }
            drop(params);
            let s = score_text(&mut model, &vocab, &text, "text", 1, 35).unwrap();
            assert_eq!(s.tokens, n - 1);
            let mean = nll / (n - 1) as f64;
            assert!(
                (mean - s.loss).abs() < 1e-5,
                "{arch:?}: {mean} vs {}",
                s.loss
            );
        }
        let e = hidden_states(
            &mut LanguageModel::<f32>::new(
                LmConfig::new(Arch::Lstm, Level::Word, vocab.len(), 6),
                &mut Rng::new(1),
            )
            .unwrap(),
            &vocab,
            "",
            "text",
        )
        .unwrap_err();
        assert!(e.to_string().contains("text: no tokens"), "{e}");
    }

    #[test]
    fn a_character_text_is_scored_in_bits_too() {
        let text = "abcabcabd\n".repeat(5);
        let dir = saved_model("score", &text, Level::Char);
        let file = dir.join("t.txt");
        std::fs::write(&file, &text).unwrap();
        let s = score_file(&dir, &file, 1, 5).unwrap();
        // Every character but the first is predicted.
        assert_eq!(s.tokens, text.chars().count() - 1);
        assert!((s.perplexity - s.loss.exp()).abs() < 1e-12);
        let bits = s.bits_per_char.unwrap();
        assert!((bits * std::f64::consts::LN_2 - s.loss).abs() < 1e-12);
        // An untrained model is close to uniform over its 5 symbols (a b c d and newline).
        assert!((s.loss - 5f64.ln()).abs() < 0.1, "{}", s.loss);
        let j = serde_json::to_value(&s).unwrap();
        assert!(j.get("bits_per_char").is_some());
        std::fs::write(&file, "a").unwrap();
        let e = score_file(&dir, &file, 1, 5).unwrap_err();
        assert!(e.to_string().ends_with("too little text to score"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn prompts_continue_and_bad_settings_are_refused() {
        let text = "the cat sat\nthe dog ran\n".repeat(3);
        let dir = saved_model("gen", &text, Level::Word);
        let o = GenerateOptions {
            prompt: "the cat".into(),
            greedy: true,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            beam: None,
            max_tokens: 4,
            seed: 1,
        };
        let s = continue_prompt(&dir, &o).unwrap();
        assert!(s.starts_with("the cat"), "{s}");
        // The same settings give the same text.
        assert_eq!(continue_prompt(&dir, &o).unwrap(), s);
        let beam = continue_prompt(
            &dir,
            &GenerateOptions {
                beam: Some(2),
                ..o.clone()
            },
        );
        assert!(beam.unwrap().starts_with("the cat"));
        // A word vocabulary has <unk>, which stands in for a word it lacks.
        let unk = continue_prompt(
            &dir,
            &GenerateOptions {
                prompt: "the zebra".into(),
                ..o.clone()
            },
        );
        assert!(unk.unwrap().starts_with(&format!("the {UNK}")));
        let e = continue_prompt(
            &dir,
            &GenerateOptions {
                top_p: 0.0,
                ..o.clone()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("--top-p in (0, 1]"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn explained_continuations_match_generation_and_a_fresh_forward() {
        let text = "the cat sat\nthe dog ran\n".repeat(3);
        let dir = saved_model("explain", &text, Level::Word);
        let (mut model, vocab) = LanguageModel::load(&dir).unwrap();
        let o = GenerateOptions {
            prompt: "the cat".into(),
            greedy: false,
            temperature: 0.9,
            top_k: 0,
            top_p: 1.0,
            beam: None,
            max_tokens: 5,
            seed: 7,
        };
        let e = continue_explained(&mut model, &vocab, &o, 3).unwrap();
        assert_eq!(e.prompt, vec!["the", "cat"]);
        // The same tokens as plain generation with the same seed.
        let pad = LanguageModel::pad_for(&vocab, Level::Word);
        let mut ids: Vec<u32> = ["the", "cat"]
            .iter()
            .map(|w| vocab.get(w).unwrap())
            .collect();
        let plain = generate(
            &mut model,
            &ids,
            pad,
            5,
            o.strategy(),
            None,
            &mut Rng::new(7),
        );
        let words: Vec<String> = plain
            .iter()
            .map(|&i| vocab.decode(&[i], Level::Word))
            .collect();
        let shown: Vec<String> = e.tokens.iter().map(|t| t.token.clone()).collect();
        assert_eq!(shown, words);
        // Each probability equals the softmax of a fresh forward over prompt + earlier tokens.
        for (t, &id) in e.tokens.iter().zip(&plain) {
            let (_, z) = crate::decode::prime(&mut model, &ids, pad);
            let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
            let total: f64 = z.iter().map(|&v| (v as f64 - m).exp()).sum();
            let p = (z[id as usize] as f64 - m).exp() / total;
            assert!((p - t.prob).abs() < 1e-5, "{p} {}", t.prob);
            assert_eq!(t.top.len(), 3);
            assert!(t.top.windows(2).all(|w| w[0].1 >= w[1].1));
            let best = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let p_best = (best - m).exp() / total;
            assert!((t.top[0].1 - p_best).abs() < 1e-5);
            ids.push(id);
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
