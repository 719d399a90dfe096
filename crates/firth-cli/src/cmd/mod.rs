pub mod quickstart;
pub mod vectors;
