//! `firth tokenize`: Penn-Treebank-style tokenization of raw English text, line by line (see
//! `firth_text::tokenize`), for training word vectors that share tokens with treebank data.

use super::map_lines;
use anyhow::Result;
use clap::Args as ClapArgs;
use firth_text::tokenize::{tokenize_line, TokenizeOptions};
use std::path::PathBuf;

#[derive(ClapArgs)]
pub struct Args {
    /// Text to tokenize, UTF-8 (default: stdin).
    file: Option<PathBuf>,
    /// Where to write (default: stdout; a file is written atomically).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Lower-case every token.
    #[arg(long)]
    lowercase: bool,
    /// Map the digits 0-9 to 0, as `tag train` looks words up unless `--cased` (use with
    /// --lowercase for vectors a tagger reads).
    #[arg(long)]
    zero_digits: bool,
}

pub fn run(a: Args) -> Result<()> {
    let opts = TokenizeOptions {
        lowercase: a.lowercase,
        zero_digits: a.zero_digits,
    };
    map_lines(a.file.as_deref(), a.output.as_deref(), |l| {
        tokenize_line(l, opts)
    })
}
