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
pub use vocab::{SpeechVocab, UnitKind};

use anyhow::{bail, Context, Result};
use firth_audio::FeatureConfig;
use firth_nn::checkpoint::Tensors;
use firth_nn::{ParamSet, Rng};
use std::path::Path;

pub const MODEL: &str = "model.safetensors";

pub mod vocab {
    //! The output units: index 0 the blank, then the words of the training transcripts or
    //! their characters and a space.

    use serde::{Deserialize, Serialize};

    /// What a model's non-blank output units are.
    #[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub enum UnitKind {
        /// One unit per distinct training word: a closed vocabulary, short label sequences.
        #[default]
        Words,
        /// One unit per distinct character and one for the space between words: any word
        /// spelled with those characters can be recognised.
        Chars,
    }

    /// The space unit's text in a character vocabulary.
    pub const SPACE: &str = " ";

    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct SpeechVocab {
        /// Models written before character units existed hold words.
        #[serde(default)]
        pub kind: UnitKind,
        /// Sorted, distinct words or characters (with [`SPACE`] first); name i is unit i + 1.
        #[serde(alias = "words")]
        pub names: Vec<String>,
    }

    impl SpeechVocab {
        /// The distinct words (or characters and the space) of `transcripts`, sorted.
        pub fn from_transcripts<'a>(
            kind: UnitKind,
            transcripts: impl Iterator<Item = &'a str>,
        ) -> SpeechVocab {
            let mut set = std::collections::BTreeSet::<String>::new();
            for t in transcripts {
                match kind {
                    UnitKind::Words => set.extend(t.split_whitespace().map(String::from)),
                    UnitKind::Chars => {
                        set.extend(t.chars().filter(|c| !c.is_whitespace()).map(String::from))
                    }
                }
            }
            let mut names = Vec::with_capacity(set.len() + 1);
            if kind == UnitKind::Chars {
                names.push(SPACE.to_string());
            }
            names.extend(set);
            SpeechVocab { kind, names }
        }

        /// Units: the blank and the names.
        pub fn units(&self) -> usize {
            self.names.len() + 1
        }

        fn unit(&self, name: &str) -> Option<u32> {
            let found = match self.kind {
                UnitKind::Words => self.names.binary_search_by(|x| x.as_str().cmp(name)),
                // The space leads; the characters after it are sorted.
                UnitKind::Chars if name == SPACE => Ok(0),
                UnitKind::Chars => self.names[1..]
                    .binary_search_by(|x| x.as_str().cmp(name))
                    .map(|i| i + 1),
            };
            found.ok().map(|i| i as u32 + 1)
        }

        /// Unit ids of a transcript (words separated by single spaces); `Err` gives the first
        /// word or character the model does not know.
        pub fn encode(&self, transcript: &str) -> Result<Vec<u32>, String> {
            let mut out = Vec::new();
            for (i, w) in transcript.split_whitespace().enumerate() {
                match self.kind {
                    UnitKind::Words => out.push(self.unit(w).ok_or_else(|| w.to_string())?),
                    UnitKind::Chars => {
                        if i > 0 {
                            out.push(self.unit(SPACE).ok_or_else(|| SPACE.to_string())?);
                        }
                        let mut buf = [0u8; 4];
                        for c in w.chars() {
                            let c = &*c.encode_utf8(&mut buf);
                            out.push(self.unit(c).ok_or_else(|| c.to_string())?);
                        }
                    }
                }
            }
            Ok(out)
        }

        /// The transcript unit ids spell: words joined by single spaces (the blank and unknown
        /// ids are skipped).
        pub fn transcript(&self, labels: &[u32]) -> String {
            let names = labels
                .iter()
                .filter_map(|&l| self.names.get((l as usize).checked_sub(1)?))
                .map(String::as_str);
            match self.kind {
                UnitKind::Words => names.collect::<Vec<_>>().join(" "),
                UnitKind::Chars => names
                    .collect::<String>()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            }
        }

        /// The decoder's view: blank at 0, words or characters after it.
        pub fn decode_units(&self) -> super::decode::Units {
            let mut names = vec!["<blank>".to_string()];
            names.extend(self.names.iter().cloned());
            match self.kind {
                UnitKind::Words => super::decode::Units::words(names, super::BLANK),
                UnitKind::Chars => super::decode::Units::chars(
                    names,
                    super::BLANK,
                    self.unit(SPACE)
                        .expect("a character vocabulary holds the space"),
                ),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn word_units_round_trip_and_name_unknown_words() {
            let v = SpeechVocab::from_transcripts(UnitKind::Words, ["3 1 4", "1 5"].into_iter());
            assert_eq!(v.names, ["1", "3", "4", "5"]);
            assert_eq!(v.units(), 5);
            assert_eq!(v.encode("3 1 4").unwrap(), [2, 1, 3]);
            assert_eq!(v.transcript(&[2, 0, 1, 3]), "3 1 4");
            assert_eq!(v.encode("3 9").unwrap_err(), "9");
        }

        #[test]
        fn char_units_spell_words_with_a_space_unit() {
            let v = SpeechVocab::from_transcripts(UnitKind::Chars, ["one two", "zero"].into_iter());
            assert_eq!(v.names, [" ", "e", "n", "o", "r", "t", "w", "z"]);
            // " " is unit 1; "one two" = o n e ␣ t w o.
            assert_eq!(v.encode("one  two").unwrap(), [4, 3, 2, 1, 6, 7, 4]);
            assert_eq!(v.transcript(&[1, 4, 3, 2, 1, 1, 6, 7, 4, 1]), "one two");
            assert_eq!(v.encode("ten").unwrap(), [6, 2, 3]);
            assert_eq!(v.encode("six").unwrap_err(), "s");
            let units = v.decode_units();
            assert_eq!(
                units.words_of(&v.encode("zero one").unwrap()),
                ["zero", "one"]
            );
        }

        #[test]
        fn models_written_with_words_only_still_load() {
            let v: SpeechVocab = serde_json::from_str(r#"{"words":["1","2"]}"#).unwrap();
            assert_eq!(v.kind, UnitKind::Words);
            assert_eq!(v.encode("2 1").unwrap(), [2, 1]);
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
