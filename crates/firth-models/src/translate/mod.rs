//! Neural machine translation: an attentional encoder-decoder (Luong et al. 2015) trained
//! through the one training loop, greedy and beam-search decoding, and the `firth translate`
//! pipeline.
//!
//! - [`model`]: the model (bidirectional encoder, bridge, step-wise decoder with dot, general
//!   or additive attention and input feeding, label-smoothed loss), forward and backward;
//! - [`decode`]: the inference step, batched greedy decoding, beam search through
//!   [`crate::decode::StepDecoder`], alignments for `<unk>` replacement and attention maps;
//! - [`task`]: the [`crate::trainer::Task`] (length-bucketed batches capped in tokens,
//!   data-parallel workers, development perplexity and BLEU);
//! - [`data`], [`vocab`]: parallel files and vocabularies;
//! - [`pipeline`]: `train_translator`, the presets, translating files and scoring them.

pub mod data;
pub mod decode;
mod loss;
pub mod model;
pub mod pipeline;
pub mod task;
pub mod vocab;

pub use crate::trainer::{CHECKPOINT, MODEL};
pub use decode::{DecodeState, SearchConfig};
pub use loss::smoothed_cross_entropy;
pub use model::{AttentionType, PairBatch, Translator, TranslatorConfig};
pub use pipeline::{
    attention_map, train_translator, translate_lines, AttentionMap, TranslateData,
    TranslateOptions, TranslatePreset, TranslateSummary, Translation,
};
pub use task::{TranslateSettings, TranslateTask};
pub use vocab::TransVocab;

use anyhow::{bail, Context, Result};
use firth_nn::checkpoint::Tensors;
use firth_nn::{ParamSet, Rng};
use firth_text::Vocab;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How the model's text is cut below words; saved with the model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subwords {
    /// Joint BPE merges learned on the training text (0 = words); the codes are in the model
    /// directory's `bpe.codes`.
    pub bpe_merges: usize,
}

/// The file in a model directory holding the BPE codes.
pub const BPE_CODES: &str = "bpe.codes";

impl Subwords {
    /// Output tokens joined into a line (subwords back into words).
    pub fn join_tokens(&self, tokens: &[String]) -> String {
        let line = tokens.join(" ");
        if self.bpe_merges > 0 {
            join_subwords(&line)
        } else {
            line
        }
    }

    /// Output ids as a line of words.
    pub fn join(&self, vocab: &Vocab, ids: &[u32]) -> String {
        let tokens: Vec<String> = ids.iter().map(|&i| vocab.token(i).to_string()).collect();
        self.join_tokens(&tokens)
    }
}

/// subword-nmt's joining ([`firth_text::bpe::join_subwords`]): "@@ " marks a word that
/// continues.
pub use firth_text::bpe::join_subwords;

/// Corpus BLEU (percent) of tokenised hypotheses against one reference each, exactly as
/// sacrebleu computes it with `tokenize='none'` (the text is already tokenised).
pub fn bleu_score(hyps: &[String], refs: &[String]) -> Result<f64> {
    Ok(
        firth_eval::bleu::corpus_bleu(hyps, refs, firth_eval::bleu::BleuTokenize::None, false)?
            .score,
    )
}

/// Corpus chrF (chrF2, sacrebleu's default) of hypotheses against one reference each.
pub fn chrf_score(hyps: &[String], refs: &[String]) -> Result<f64> {
    firth_eval::bleu::corpus_chrf(hyps, refs)
}

/// The model, vocabularies and subword settings in `t` (read from `path`).
pub fn load_tensors(t: &Tensors, path: &Path) -> Result<(Translator<f32>, TransVocab, Subwords)> {
    let kind = t.meta("firth", path)?;
    if kind != "translator-model-v1" && kind != "translator-checkpoint-v2" {
        bail!("{} holds a {kind}, not a firth translator", path.display());
    }
    let config: TranslatorConfig = serde_json::from_str(t.meta("config", path)?)
        .with_context(|| format!("{}: bad translator config", path.display()))?;
    let mut vocab: TransVocab = serde_json::from_str(t.meta("vocab", path)?)
        .with_context(|| format!("{}: bad translator vocabulary", path.display()))?;
    vocab.reindex();
    if !vocab.well_formed()
        || vocab.src.len() != config.src_vocab
        || vocab.tgt.len() != config.tgt_vocab
    {
        bail!(
            "{}: the stored vocabularies do not match the model",
            path.display()
        );
    }
    let subwords: Subwords = match t.metadata.get("subwords") {
        Some(s) => serde_json::from_str(s)
            .with_context(|| format!("{}: bad subword settings", path.display()))?,
        None => Subwords::default(),
    };
    let mut model = Translator::new(config, &mut Rng::new(0))?;
    t.load_params("model.", &mut model.params_mut(), path)?;
    Ok((model, vocab, subwords))
}

/// Loads `DIR/model.safetensors` (or a model or checkpoint file).
pub fn load(path: &Path) -> Result<(Translator<f32>, TransVocab, Subwords)> {
    let file = if path.is_dir() {
        let f = path.join(MODEL);
        if !f.exists() {
            bail!(
                "{} is not a firth model directory (no {MODEL})",
                path.display()
            );
        }
        f
    } else {
        path.to_path_buf()
    };
    load_tensors(&Tensors::load(&file)?, &file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bleu_of_identical_text_is_100_and_joins_undo_bpe() {
        let h = vec!["a b c d e".to_string(), "f g h i".to_string()];
        assert!((bleu_score(&h, &h).unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(
            join_subwords("un@@ believ@@ able fast"),
            "unbelievable fast"
        );
        assert_eq!(join_subwords("ab@@"), "ab");
    }
}
