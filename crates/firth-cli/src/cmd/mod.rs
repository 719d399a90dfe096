pub mod classify;
pub mod insight;
pub mod lm;
pub mod ngram;
pub mod quickstart;
pub mod tag;
pub mod vectors;
