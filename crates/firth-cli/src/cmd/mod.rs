pub mod bleu;
pub mod bpe;
pub mod classify;
pub mod insight;
pub mod lm;
pub mod ngram;
pub mod quickstart;
pub mod serve;
pub mod speech;
pub mod tag;
pub mod tokenize;
pub mod translate;
pub mod vectors;

use crate::plot::{line_chart, Series};
use crate::progress::Bars;
use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use firth_models::lm_train::{resolve_lm, LmData, LmOptions, Summary};
use firth_models::trainer::EpochRecord;
use firth_text::Level;
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

/// Flags every training command takes (`firth lm train`, `tag train`, `classify train`).
#[derive(ClapArgs, Clone, Debug)]
pub struct RunFlags {
    /// Random seed for initialisation, shuffling, dropout and sampling. Runs are bit-for-bit
    /// reproducible with --threads 1. With T > 1 threads each batch is split over T workers
    /// (data parallelism): sums then run in another order and dropout masks depend on T.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = crate::validate::at_least_1)]
    pub threads: Option<usize>,
    /// Print one JSON summary on stdout at the end.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// When a long training run writes checkpoints and stops early (`translate train`,
/// `speech train`).
#[derive(ClapArgs, Clone, Debug)]
pub struct StopFlags {
    /// Also write a checkpoint every this many steps.
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Stop after this many seconds of wall time (a checkpoint is kept; --resume goes on).
    #[arg(long, value_parser = crate::validate::finite_positive)]
    pub max_seconds: Option<f64>,
    /// Stop after this many updates (a checkpoint is kept).
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Continue the run saved in --out (same data and settings; --epochs may grow).
    #[arg(long)]
    pub resume: bool,
}

impl StopFlags {
    pub fn limits(&self) -> firth_models::trainer::Limits {
        firth_models::trainer::Limits {
            max_steps: self.max_steps,
            max_seconds: self.max_seconds,
        }
    }
}

/// Sets the size of the global thread pool used by the matrix products (an error if this
/// process already sized it differently; see [`firth_nn::par::set_global_threads`]).
pub fn set_threads(threads: Option<usize>) -> Result<()> {
    let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    firth_nn::par::set_global_threads(n)
}

/// Trains a language model with progress bars, draws its curves and prints its summary, so
/// that `firth lm train` and `firth quickstart` show a run the same way.
pub fn train_lm(data: &LmData, options: &LmOptions, run: &RunFlags) -> Result<Summary> {
    set_threads(run.threads)?;
    let chars = resolve_lm(options)?.0.level == Level::Char;
    let mut bars = Bars::new(run.quiet, chars);
    let (summary, trainer) = firth_models::lm_train::train_lm(data, options, &mut bars)?;
    drop(bars);
    write_curves(&data.out, &trainer.progress.history)?;
    if run.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else if !run.quiet {
        print_summary(&summary);
    }
    Ok(summary)
}

fn print_summary(s: &Summary) {
    eprintln!(
        "done: {} epoch(s), {} steps, {:.0} training tokens/s, {:.1}s wall{}",
        s.epochs_completed,
        s.steps,
        s.train_tokens_per_second,
        s.wall_seconds,
        if s.stopped_early {
            " (stopped early; --resume continues)"
        } else {
            ""
        }
    );
    eprint!(
        "valid: loss {:.4} perplexity {:.2}",
        s.valid_loss, s.valid_perplexity
    );
    if let Some(b) = s.valid_bits_per_char {
        eprint!(" bits/char {b:.4}");
    }
    eprintln!();
    if let (Some(l), Some(p)) = (s.test_loss, s.test_perplexity) {
        eprintln!("test:  loss {l:.4} perplexity {p:.2}");
    }
}

fn write_curves(out: &Path, h: &[EpochRecord]) -> Result<()> {
    if h.is_empty() {
        return Ok(());
    }
    let series = vec![
        Series {
            name: "train".into(),
            points: h
                .iter()
                .filter_map(|r| Some((r.epoch as f64, r.train_perplexity?)))
                .collect(),
        },
        Series {
            name: "valid".into(),
            points: h
                .iter()
                .filter_map(|r| Some((r.epoch as f64, r.valid_perplexity?)))
                .collect(),
        },
    ];
    crate::plot::both(&out.join("curves"), |path| {
        line_chart(
            path,
            "Perplexity per epoch",
            "epoch",
            "perplexity",
            &series,
            true,
        )
    })?;
    Ok(())
}

/// Streams `input` (a file, or stdin) line by line through `f` into `output` (a file, written
/// under a temporary name and renamed at the end so a failure leaves no partial file, or
/// stdout). Line ends are kept as they were; invalid UTF-8 stops with the file and line.
pub fn map_lines(
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
