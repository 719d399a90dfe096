pub mod quickstart;
