//! Text plumbing shared by every firth model: vocabularies, tokenizers and corpus readers
//! that report bad input by file and line.

pub mod bpe;
pub mod conll;
pub mod corpus;
pub mod sentiment;
pub mod vocab;

pub use corpus::{read_text, TextError};
pub use vocab::{Level, Vocab, EOS, UNK};
