pub mod ngram;
pub mod quickstart;
