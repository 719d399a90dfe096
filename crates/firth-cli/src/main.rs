//! `firth`: word vectors, n-gram and recurrent language models, and recurrent sequence models.

mod cli;
mod cmd;
mod plot;
mod progress;
mod validate;

fn main() {
    if let Err(e) = cli::run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
