//! `firth bpe`: byte-pair encoding (Sennrich et al. 2016) compatible with subword-nmt: learn
//! merges from text, segment text with them (`@@ ` marks), and join segmented text back.

use anyhow::{Context, Result};
use clap::{Args as ClapArgs, Subcommand};
use firth_text::bpe::{join_subwords, Bpe};
use std::io::{BufRead, BufWriter, Write};
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

/// Streams `input` (a file, or stdin) line by line through `f` into `output` (a file, written
/// under a temporary name and renamed at the end so a failure leaves no partial file, or
/// stdout). Line ends are kept as they were; invalid UTF-8 stops with the file and line.
fn map_lines(
    input: Option<&Path>,
    output: Option<&Path>,
    f: impl Fn(&str) -> String,
) -> Result<()> {
    let (reader, name): (Box<dyn BufRead>, String) = match input {
        Some(p) => {
            let file =
                std::fs::File::open(p).with_context(|| format!("cannot read {}", p.display()))?;
            (
                Box::new(std::io::BufReader::new(file)),
                p.display().to_string(),
            )
        }
        None => (Box::new(std::io::stdin().lock()), "<stdin>".to_string()),
    };
    match output {
        None => {
            let mut w = BufWriter::new(std::io::stdout().lock());
            transform(reader, &name, &mut w, &f)?;
            w.flush()?;
            Ok(())
        }
        Some(out) => {
            let mut tmp_name = out
                .file_name()
                .with_context(|| format!("{} is not a file name", out.display()))?
                .to_os_string();
            tmp_name.push(format!(".{}.tmp", std::process::id()));
            let tmp = out.with_file_name(tmp_name);
            let result = (|| -> Result<()> {
                let file = std::fs::File::create(&tmp)
                    .with_context(|| format!("cannot write {}", out.display()))?;
                let mut w = BufWriter::new(file);
                transform(reader, &name, &mut w, &f)?;
                w.flush()
                    .with_context(|| format!("cannot write {}", out.display()))?;
                std::fs::rename(&tmp, out)
                    .with_context(|| format!("cannot write {}", out.display()))
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result
        }
    }
}

fn transform(
    mut reader: Box<dyn BufRead + '_>,
    name: &str,
    w: &mut impl Write,
    f: &impl Fn(&str) -> String,
) -> Result<()> {
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read {name}"))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        let newline = buf.last() == Some(&b'\n');
        let body = if newline {
            &buf[..buf.len() - 1]
        } else {
            &buf[..]
        };
        let line = std::str::from_utf8(body).map_err(|e| {
            anyhow::anyhow!(
                "{name}:{line_no}: invalid UTF-8 (byte {} of the line); convert the file to UTF-8, e.g. with iconv",
                e.valid_up_to() + 1
            )
        })?;
        w.write_all(f(line).as_bytes())?;
        if newline {
            w.write_all(b"\n")?;
        }
    }
}
