//! A classifier's file: weights, config, labels and vocabulary (and, for a model with
//! character-LM features, the two LMs kept next to it).

use super::data::{encode_sentences, Encoded};
use super::{Classifier, ClassifierConfig, MODEL};
use crate::char_features::CharFeatures;
use anyhow::{bail, Context, Result};
use firth_nn::checkpoint::Tensors;
use firth_nn::{ParamSet, Rng};
use firth_text::Vocab;
use std::path::Path;

pub(super) const CKPT_KIND: &str = "classifier-checkpoint-v2";
pub(super) const MODEL_KIND: &str = "classifier-model-v1";

/// Everything a classifier needs besides its weights: config, labels, vocabulary.
pub struct Bundle {
    pub model: Classifier<f32>,
    pub labels: Vec<String>,
    pub vocab: Vocab,
}

impl Bundle {
    /// Weights and metadata (the file kind is set by the training loop).
    pub fn to_tensors(&self) -> Result<Tensors> {
        let mut t =
            crate::trainer::model_tensors(&self.model.params(), &self.model.config, &self.vocab)?;
        t.metadata
            .insert("labels".into(), serde_json::to_string(&self.labels)?);
        Ok(t)
    }

    /// The classifier in `t`, read from `file`; a model with character-LM features also
    /// loads the LMs kept in `file`'s directory ([`CharFeatures::of_model`]).
    pub fn from_tensors(t: &Tensors, file: &Path) -> Result<Bundle> {
        let kind = t.meta("firth", file)?;
        if kind != MODEL_KIND && kind != CKPT_KIND {
            bail!("{} holds a {kind}, not a firth classifier", file.display());
        }
        let config: ClassifierConfig = serde_json::from_str(t.meta("config", file)?)
            .with_context(|| format!("{}: bad classifier config", file.display()))?;
        let labels: Vec<String> = serde_json::from_str(t.meta("labels", file)?)
            .with_context(|| format!("{}: bad label list", file.display()))?;
        let mut vocab: Vocab = serde_json::from_str(t.meta("vocab", file)?)
            .with_context(|| format!("{}: bad vocabulary", file.display()))?;
        vocab.reindex();
        if vocab.len() != config.vocab || labels.len() != config.classes {
            bail!(
                "{}: vocabulary ({}) or labels ({}) do not match the config ({}, {})",
                file.display(),
                vocab.len(),
                labels.len(),
                config.vocab,
                config.classes
            );
        }
        let mut model = Classifier::new(config, &mut Rng::new(0))?;
        t.load_params("model.", &mut model.params_mut(), file)?;
        model.char_lm = CharFeatures::of_model(file, model.config.char_lm_dim)?;
        Ok(Bundle {
            model,
            labels,
            vocab,
        })
    }

    /// Loads `DIR/model.safetensors` (or a given classifier file).
    pub fn load(path: &Path) -> Result<Bundle> {
        let file = if path.is_dir() {
            path.join(MODEL)
        } else {
            path.to_path_buf()
        };
        let t = Tensors::load(&file)?;
        Self::from_tensors(&t, &file)
    }

    /// Sentences (token lists, each non-empty) as this model's inputs: ids and, for a model
    /// with character-LM features, the features its LMs give them. Errors name `what`.
    pub fn encode<S: AsRef<[String]> + Sync>(&self, sents: &[S], what: &Path) -> Result<Encoded> {
        encode_sentences(
            &self.vocab,
            &self.model.config,
            self.model.char_lm.as_ref(),
            sents,
            what,
        )
    }

    /// Label ids of `labels` in this model's label set; unknown labels are an error naming them.
    pub fn label_ids(&self, labels: &[String], what: &Path) -> Result<Vec<u32>> {
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                self.labels
                    .iter()
                    .position(|m| m == l)
                    .map(|p| p as u32)
                    .with_context(|| {
                        format!(
                            "{}: example {} has the label {l:?}, which the model does not know (its labels: {}); \
                             evaluate on data with the same label set (binary SST and pos/neg use positive/negative)",
                            what.display(),
                            i + 1,
                            self.labels.join(", ")
                        )
                    })
            })
            .collect()
    }
}
