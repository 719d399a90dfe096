//! Speech recognition: CTC decoding so far (the CTC loss is `firth_nn::ctc`, audio and
//! features are `firth_audio`, error rates `firth_eval::asr`). See docs/speech.md.

pub mod decode;
