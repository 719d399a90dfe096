//! `firth bpe`: byte-pair encoding (Sennrich et al. 2016) compatible with subword-nmt: learn
//! merges from text, segment text with them (`@@ ` marks), and join segmented text back.

use super::map_lines;
use anyhow::Result;
use clap::{Args as ClapArgs, Subcommand};
use firth_text::bpe::{join_subwords, Bpe};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Learn merges from tokenized text (words separated by spaces). Several --input files
    /// give one joint table, as for a vocabulary shared by source and target.
    Learn(LearnArgs),
    /// Segment text with learned merges, line by line ("das haus" -> "das hau@@ s").
    Apply(ApplyArgs),
    /// Undo `apply`: delete every "@@ " (and a "@@" ending a line).
    Join(JoinArgs),
}

#[derive(ClapArgs)]
pub struct LearnArgs {
    /// Training text (UTF-8); repeat the flag for several files.
    #[arg(long = "input", required = true)]
    inputs: Vec<PathBuf>,
    /// Number of merges to learn (subword-nmt's --symbols).
    #[arg(long)]
    merges: usize,
    /// Stop when no pair of symbols occurs this often.
    #[arg(long, default_value_t = 2)]
    min_frequency: u64,
    /// Codes file to write (subword-nmt's format, `#version: 0.2`).
    #[arg(long)]
    output: PathBuf,
}

#[derive(ClapArgs)]
pub struct ApplyArgs {
    /// Codes file from `firth bpe learn` or subword-nmt's learn-bpe.
    #[arg(long)]
    codes: PathBuf,
    /// Text to segment (default: stdin).
    file: Option<PathBuf>,
    /// Where to write (default: stdout).
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(ClapArgs)]
pub struct JoinArgs {
    /// Segmented text (default: stdin).
    file: Option<PathBuf>,
    /// Where to write (default: stdout).
    #[arg(long)]
    output: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    match a.command {
        Command::Learn(a) => learn(a),
        Command::Apply(a) => {
            let bpe = Bpe::load(&a.codes)?;
            map_lines(a.file.as_deref(), a.output.as_deref(), |l| {
                bpe.apply_line(l)
            })
        }
        Command::Join(a) => map_lines(a.file.as_deref(), a.output.as_deref(), join_subwords),
    }
}

fn learn(a: LearnArgs) -> Result<()> {
    let t = Instant::now();
    let paths: Vec<&Path> = a.inputs.iter().map(|p| p.as_path()).collect();
    let bpe = Bpe::learn_files(&paths, a.merges, a.min_frequency)?;
    bpe.save(&a.output)?;
    let stopped = if bpe.merges() < a.merges {
        format!(
            " (stopped early: no pair occurs {} times or more)",
            a.min_frequency
        )
    } else {
        String::new()
    };
    eprintln!(
        "learned {} merges{stopped} in {:.2} s -> {}",
        bpe.merges(),
        t.elapsed().as_secs_f64(),
        a.output.display()
    );
    Ok(())
}
