//! Speech recognition: a CTC acoustic model over MFCC features ([`model`]), its training task
//! ([`task`]), the `firth speech` pipelines ([`pipeline`]) and CTC decoding ([`decode`]). The
//! CTC loss is `firth_nn::ctc`, audio and features are `firth_audio`, error rates
//! `firth_eval::asr`. See docs/speech.md.

pub mod decode;
pub mod model;
pub mod pipeline;
pub mod task;

pub use model::{SpeechBatch, SpeechConfig, SpeechModel, BLANK};
pub use pipeline::{
    load_utterances, recognize, train_speech, Decoding, SpeechData, SpeechOptions, SpeechPreset,
    SpeechSummary,
};
pub use task::{SpeechSettings, SpeechTask, Utterance};
pub use vocab::SpeechVocab;

use anyhow::{bail, Context, Result};
use firth_audio::FeatureConfig;
use firth_nn::checkpoint::Tensors;
use firth_nn::{ParamSet, Rng};
use std::path::Path;

pub const MODEL: &str = "model.safetensors";

pub mod vocab {
    //! The output units: index 0 the blank, then the words of the training transcripts.

    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct SpeechVocab {
        /// Sorted, distinct words; word i is output unit i + 1.
        pub words: Vec<String>,
    }

    impl SpeechVocab {
        /// The distinct words of `transcripts`, sorted.
        pub fn from_transcripts<'a>(transcripts: impl Iterator<Item = &'a str>) -> SpeechVocab {
            let set: std::collections::BTreeSet<&str> =
                transcripts.flat_map(|t| t.split_whitespace()).collect();
            SpeechVocab {
                words: set.into_iter().map(String::from).collect(),
            }
        }

        /// Units: the blank and the words.
        pub fn units(&self) -> usize {
            self.words.len() + 1
        }

        /// Unit ids of a transcript; `None` names the first word the model does not know.
        pub fn encode<'a>(&self, transcript: &'a str) -> Result<Vec<u32>, &'a str> {
            transcript
                .split_whitespace()
                .map(
                    |w| match self.words.binary_search_by(|x| x.as_str().cmp(w)) {
                        Ok(i) => Ok(i as u32 + 1),
                        Err(_) => Err(w),
                    },
                )
                .collect()
        }

        /// Words of unit ids (the blank and unknown ids are skipped).
        pub fn transcript(&self, labels: &[u32]) -> String {
            labels
                .iter()
                .filter_map(|&l| self.words.get((l as usize).checked_sub(1)?))
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        }

        /// The decoder's view: blank at 0, words after it.
        pub fn decode_units(&self) -> super::decode::Units {
            let mut names = vec!["<blank>".to_string()];
            names.extend(self.words.iter().cloned());
            super::decode::Units::words(names, super::BLANK)
        }
    }
}

/// The model, its words and its feature settings in `t` (read from `path`).
pub fn load_tensors(
    t: &Tensors,
    path: &Path,
) -> Result<(SpeechModel<f32>, SpeechVocab, FeatureConfig)> {
    let kind = t.meta("firth", path)?;
    if kind != "speech-model-v1" && kind != "speech-checkpoint-v2" {
        bail!(
            "{} holds a {kind}, not a firth speech model (train one with `firth speech train`)",
            path.display()
        );
    }
    let config: SpeechConfig = serde_json::from_str(t.meta("config", path)?)
        .with_context(|| format!("{}: bad speech model config", path.display()))?;
    let vocab: SpeechVocab = serde_json::from_str(t.meta("vocab", path)?)
        .with_context(|| format!("{}: bad speech model words", path.display()))?;
    let features: FeatureConfig = serde_json::from_str(t.meta("features", path)?)
        .with_context(|| format!("{}: bad feature settings", path.display()))?;
    if vocab.units() != config.units || features.dim() != config.input {
        bail!(
            "{}: the stored words or features do not match the model",
            path.display()
        );
    }
    let mut model = SpeechModel::new(config, &mut Rng::new(0))?;
    t.load_params("model.", &mut model.params_mut(), path)?;
    Ok((model, vocab, features))
}

/// Loads `DIR/model.safetensors` (or a model or checkpoint file).
pub fn load(path: &Path) -> Result<(SpeechModel<f32>, SpeechVocab, FeatureConfig)> {
    let file = if path.is_dir() {
        let f = path.join(MODEL);
        if !f.exists() {
            bail!(
                "{} is not a firth model directory (no {MODEL}); give the --out folder of `firth speech train`",
                path.display()
            );
        }
        f
    } else {
        path.to_path_buf()
    };
    load_tensors(&Tensors::load(&file)?, &file)
}
