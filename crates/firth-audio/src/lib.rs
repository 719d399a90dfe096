//! Audio for speech recognition, up to the network's input: WAV files in, normalised feature
//! frames out.
//!
//! - [`wav`]: reading any PCM WAV (8/16/24/32-bit integer, 32-bit float, any channel count) to
//!   mono samples in [-1, 1], writing 16-bit mono WAVs atomically;
//! - [`resample`]: a windowed-sinc (Kaiser) polyphase resampler to the model's rate;
//! - [`features`]: pre-emphasis, framing, power spectrum, mel filterbank, log-mel, MFCC,
//!   deltas, per-utterance and global mean/variance normalisation — with settings that
//!   reproduce python_speech_features exactly ([`features::FeatureConfig::python_speech_features`]);
//! - [`augment`]: SpecAugment-style time and frequency masks;
//! - [`digits`]: the Free Spoken Digit Dataset's file names and split, manifests
//!   (`path<TAB>transcript`), and connected-digit utterances made by joining recordings.
//!
//! Bad input (a file that is not a WAV, is cut short, holds nothing) is an [`Error`] naming the
//! file, never a panic.

pub mod augment;
pub mod digits;
pub mod features;
pub mod resample;
pub mod wav;

pub use augment::SpecAugment;
pub use features::{FeatureConfig, FeatureExtractor, FeatureKind, Features, GlobalNorm, Window};
pub use wav::{load_mono, read_wav, Audio};

use std::path::PathBuf;

/// Everything that can go wrong, with the file and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The I/O error is part of the message (not a `source`), so it is printed once.
    #[error("cannot read {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("cannot write {path}: {err}")]
    Write { path: PathBuf, err: std::io::Error },
    #[error("{path}: {msg}")]
    File { path: PathBuf, msg: String },
    #[error("{path}:{line}: {msg}")]
    Format {
        path: PathBuf,
        line: u64,
        msg: String,
    },
    #[error("{0}")]
    Config(String),
}

pub type Result<T> = std::result::Result<T, Error>;
