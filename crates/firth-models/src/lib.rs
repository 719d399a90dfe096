//! Models built on firth-nn: language models (fixed-window, RNN, LSTM, GRU), their training
//! loop (truncated BPTT), evaluation and decoding.

pub mod agreement;
pub mod char_features;
pub mod classifier;
pub mod data;
pub mod decode;
pub mod encoder;
pub mod gradients;
pub mod insight;
pub mod lm;
pub mod lm_text;
pub mod lm_train;
pub mod quickstart;
pub mod speech;
pub mod tagger;
pub mod trainer;
pub mod translate;

pub use lm::{Arch, LanguageModel, LmConfig, LmState};
