pub mod lm;
pub mod quickstart;
