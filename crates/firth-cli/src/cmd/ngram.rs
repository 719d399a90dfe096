//! `firth ngram`: build, query and sample count language models (the CLI is a thin layer over
//! `firth_ngram`).

use anyhow::{bail, Context, Result};
use firth_ngram::build::{build_files, BuildEvent};
use firth_ngram::kn::{BuildOptions, Discount, Smoothing};
use firth_ngram::model::{Checksum, Rng};
use firth_ngram::shard::Vocab;
use firth_ngram::stream::Outputs;
use firth_ngram::trie::{Quant, Target};
use firth_ngram::{AnyModel, CorpusOptions, Scorer};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Count a corpus (one sentence per line) and estimate a model, like KenLM's lmplz.
    Build(BuildArgs),
    /// Shard step 1: the vocabulary of one shard's text, or (--merge) of all shards' files.
    Vocab(VocabArgs),
    /// Shard step 2: count one shard's n-grams with the merged vocabulary into a count file.
    Count(CountArgs),
    /// Shard step 3: merge the shards' count files and estimate the model, exactly as `build`.
    Merge(MergeArgs),
    /// Score text word by word, like KenLM's query: log10 probability, n-gram length, OOVs.
    Query(QueryArgs),
    /// Perplexity of a text, with and without OOVs.
    Ppl(PplArgs),
    /// Sample sentences from a model.
    Generate(GenerateArgs),
    /// Convert a model between ARPA, the probing layout and the trie layout.
    Convert(ConvertArgs),
}

/// Binary layout and quantization flags, shared by `build` and `convert`.
#[derive(clap::Args)]
struct LayoutFlags {
    /// Binary layout: probing (hash tables, fastest) or trie (bit-packed, smallest; like KenLM's
    /// trie).
    #[arg(long, default_value = "probing", value_parser = ["probing", "trie"])]
    layout: String,
    /// Trie only: quantize probabilities to this many bits (1-25), like build_binary -q.
    #[arg(short = 'q', long, value_name = "BITS")]
    prob_bits: Option<u8>,
    /// Trie only: quantize backoffs to this many bits (2-25; default: -q's), like build_binary -b.
    #[arg(short = 'b', long, value_name = "BITS")]
    backoff_bits: Option<u8>,
}

impl LayoutFlags {
    /// The trie's quantization, or an error for quantization flags without a trie.
    fn quant(&self) -> Result<Option<Quant>> {
        match (self.prob_bits, self.backoff_bits) {
            (None, None) => Ok(None),
            (None, Some(_)) => bail!("-b needs -q (quantize probabilities too), e.g. -q 8 -b 8"),
            (Some(q), b) => {
                if self.layout != "trie" {
                    bail!("-q/-b quantize the trie layout only: add --layout trie");
                }
                Ok(Some(Quant::new(q, b.unwrap_or(q))?))
            }
        }
    }
}

#[derive(clap::Args)]
struct ConvertArgs {
    /// Model to read: ARPA or a trie file (a probing file keeps no words and cannot be read back).
    input: PathBuf,
    /// File to write.
    output: PathBuf,
    /// What to write: arpa, probing or trie.
    #[arg(long, value_parser = ["arpa", "probing", "trie"])]
    to: String,
    /// Trie only: quantize probabilities to this many bits (1-25).
    #[arg(short = 'q', long, value_name = "BITS")]
    prob_bits: Option<u8>,
    /// Trie only: quantize backoffs to this many bits (2-25; default: -q's).
    #[arg(short = 'b', long, value_name = "BITS")]
    backoff_bits: Option<u8>,
    /// Mark the output as a character model.
    #[arg(long)]
    chars: bool,
}

#[derive(clap::Args)]
struct BuildArgs {
    /// Order of the model (lmplz -o).
    #[arg(short = 'o', long, value_parser = crate::validate::at_least_1)]
    order: usize,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    text: TextArgs,
    /// Text files, one sentence per line, plain or gzip/xz/zstd; standard input when none.
    files: Vec<PathBuf>,
}

/// How text is split into tokens.
#[derive(clap::Args)]
struct TextArgs {
    /// Model characters instead of words.
    #[arg(long)]
    chars: bool,
    /// Treat <s>, </s>, <unk> in the text as whitespace instead of failing.
    #[arg(long)]
    skip_symbols: bool,
}

/// Estimation and output flags, the same for `build` and `merge`.
#[derive(clap::Args)]
struct ModelArgs {
    /// Write the model as ARPA text here.
    #[arg(long)]
    arpa: Option<PathBuf>,
    /// Write the model in firth's binary format here (loads by mmap), in the --layout.
    #[arg(long)]
    binary: Option<PathBuf>,
    #[command(flatten)]
    mem: MemArgs,
    #[command(flatten)]
    layout: LayoutFlags,
    /// Hold the whole model in memory while estimating instead of streaming temporary files
    /// (same files; more memory, and --memory then bounds only counting).
    #[arg(long)]
    in_memory: bool,
    /// Use fixed discounts (default 0.5 1 1.5) where the closed-form Kneser-Ney estimate fails.
    #[arg(long, num_args = 0..=3, value_name = "D", value_parser = crate::validate::finite_positive_f32)]
    discount_fallback: Option<Vec<f32>>,
    /// Prune n-grams with count at most the threshold, one value per order, last repeats (e.g. 0 0 1).
    #[arg(long, num_args = 1.., value_name = "COUNT")]
    prune: Vec<u64>,
    /// Keep only the K most frequent words; n-grams with other words are pruned.
    #[arg(long, value_name = "K", value_parser = crate::validate::at_least_1)]
    vocab_limit: Option<usize>,
    /// Keep only the words listed in FILE (separated by whitespace); n-grams with other words
    /// are pruned (lmplz --limit_vocab_file).
    #[arg(long, value_name = "FILE")]
    limit_vocab_file: Option<PathBuf>,
    /// Smoothing: kn (interpolated modified Kneser-Ney), add-k, stupid (stupid backoff).
    #[arg(long, default_value = "kn")]
    smoothing: String,
    /// k for add-k smoothing.
    #[arg(long, default_value_t = 1.0, value_parser = crate::validate::finite_positive_f32)]
    k: f32,
    /// Backoff factor for stupid backoff.
    #[arg(long, default_value_t = 0.4, value_parser = crate::validate::finite_positive_f32)]
    alpha: f32,
}

/// The memory budget and the temporary directory.
#[derive(clap::Args)]
struct MemArgs {
    /// Memory budget for the whole step, e.g. 500M, 2G, 40% (lmplz -S). Counting spills sorted
    /// runs to --temp-dir and the estimation streams sorted files there.
    #[arg(short = 'S', long, default_value = "1G")]
    memory: String,
    /// Directory for spilled runs and the streaming estimation's files (lmplz -T).
    #[arg(short = 'T', long)]
    temp_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct VocabArgs {
    /// Write the vocabulary file here.
    #[arg(long)]
    out: PathBuf,
    /// The inputs are shard vocabulary files, in shard order, to merge into one.
    #[arg(long)]
    merge: bool,
    #[command(flatten)]
    text: TextArgs,
    /// One shard's text files (plain or gzip/xz/zstd; standard input when none), or with
    /// --merge the shards' vocabulary files in shard order.
    files: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct CountArgs {
    /// Order of the model.
    #[arg(short = 'o', long, value_parser = crate::validate::at_least_1)]
    order: usize,
    /// The merged vocabulary of all shards (`firth ngram vocab --merge`).
    #[arg(long)]
    vocab: PathBuf,
    /// Write the shard's sorted count file here.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    mem: MemArgs,
    /// This shard's text files (the same as given to `firth ngram vocab`).
    files: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct MergeArgs {
    /// The merged vocabulary the shards were counted with.
    #[arg(long)]
    vocab: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// The shards' count files (any order).
    #[arg(required = true)]
    counts: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct QueryArgs {
    /// Model: firth binary or ARPA.
    model: PathBuf,
    /// Text to score; standard input when absent.
    file: Option<PathBuf>,
    /// Print only the totals, not every word.
    #[arg(long)]
    summary: bool,
    /// Split text into characters (for ARPA character models; binary models know).
    #[arg(long)]
    chars: bool,
    #[command(flatten)]
    open: OpenFlags,
}

/// How a binary model is opened.
#[derive(clap::Args)]
struct OpenFlags {
    /// Skip verifying a binary model's checksum: opens a large model without reading all of
    /// it, but damage to the file goes unnoticed.
    #[arg(long)]
    no_verify: bool,
}

#[derive(clap::Args)]
struct PplArgs {
    model: PathBuf,
    file: PathBuf,
    /// Print JSON: perplexity, perplexity_excluding_oov, oov, tokens, ...
    #[arg(long)]
    json: bool,
    #[arg(long)]
    chars: bool,
    #[command(flatten)]
    open: OpenFlags,
}

#[derive(clap::Args)]
struct GenerateArgs {
    model: PathBuf,
    /// Number of sentences.
    #[arg(long, default_value_t = 10, value_parser = crate::validate::at_least_1)]
    count: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Below 1 sharpens the distribution, above 1 flattens it.
    #[arg(long, default_value_t = 1.0, value_parser = crate::validate::finite_positive)]
    temperature: f64,
    /// Longest sentence, in tokens.
    #[arg(long, default_value_t = 100)]
    max_len: usize,
    #[command(flatten)]
    open: OpenFlags,
}

pub fn run(a: Args) -> Result<()> {
    match a.cmd {
        Sub::Build(b) => build(b),
        Sub::Vocab(v) => vocab(v),
        Sub::Count(c) => count(c),
        Sub::Merge(m) => merge(m),
        Sub::Query(q) => query(q),
        Sub::Ppl(p) => ppl(p),
        Sub::Generate(g) => generate(g),
        Sub::Convert(c) => convert(c),
    }
}

/// The build options and outputs the flags ask for.
fn model_options(m: &ModelArgs, order: usize) -> Result<(BuildOptions, Smoothing, u64)> {
    if m.arpa.is_none() && m.binary.is_none() {
        bail!("give an output: --arpa OUT.arpa and/or --binary OUT.bin");
    }
    let smoothing = Smoothing::from_name(&m.smoothing, m.k, m.alpha).map_err(anyhow::Error::msg)?;
    let (memory, temp_dir) = mem_options(&m.mem)?;
    let opts = BuildOptions {
        order,
        smoothing,
        discount_fallback: m.discount_fallback.as_deref().map(Discount::fallback_with),
        prune: m.prune.clone(),
        vocab_limit: m.vocab_limit,
        limit_vocab_file: m.limit_vocab_file.clone(),
        memory,
        temp_dir,
        external: m.in_memory.then_some(false),
    };
    Ok((opts, smoothing, memory))
}

fn mem_options(m: &MemArgs) -> Result<(u64, PathBuf)> {
    let memory = firth_ngram::util::parse_size(&m.memory).map_err(anyhow::Error::msg)?;
    Ok((
        memory,
        m.temp_dir.clone().unwrap_or_else(std::env::temp_dir),
    ))
}

/// How a trie gets written: it is made from the ARPA file (written to the temporary directory
/// when --arpa is not given), since it needs the n-grams' words, which the estimation's
/// probing tables do not keep.
struct TriePlan {
    quant: Option<Quant>,
    /// The trie file (--binary with --layout trie).
    out: Option<PathBuf>,
    /// The ARPA file made only to build the trie from, removed afterwards.
    temp_arpa: Option<PathBuf>,
}

impl TriePlan {
    fn new(m: &ModelArgs, temp_dir: &Path) -> Result<TriePlan> {
        let quant = m.layout.quant()?;
        let out = m.binary.clone().filter(|_| m.layout.layout == "trie");
        let temp_arpa = (out.is_some() && m.arpa.is_none())
            .then(|| temp_dir.join(format!(".firth-trie-{}.arpa", std::process::id())));
        Ok(TriePlan {
            quant,
            out,
            temp_arpa,
        })
    }

    /// Removes the temporary ARPA file (after a failed estimation, or once the trie is built).
    fn remove_temp(&self) {
        if let Some(t) = &self.temp_arpa {
            let _ = std::fs::remove_file(t);
        }
    }

    /// After the estimation: builds the trie from the ARPA file when one was asked for, and
    /// removes the temporary ARPA file. Returns the trie's size.
    fn write(&self, outputs: &Outputs, t0: Instant) -> Result<Option<u64>> {
        let result = match (&self.out, outputs.arpa) {
            (Some(out), Some(arpa)) => {
                let t = Instant::now();
                let r = firth_ngram::trie::arpa_to_trie(arpa, out, self.quant, outputs.flags);
                eprintln!(
                    "{:>7.2}s wrote the trie in {:.2}s",
                    t0.elapsed().as_secs_f64(),
                    t.elapsed().as_secs_f64()
                );
                r.map(Some)
            }
            _ => Ok(None),
        };
        self.remove_temp();
        Ok(result?)
    }
}

/// The files the estimation writes: a trie's ARPA goes where `TriePlan` says, and the probing
/// binary only when no trie was asked for.
fn outputs<'a>(m: &'a ModelArgs, trie: &'a TriePlan, chars: bool) -> Outputs<'a> {
    Outputs {
        arpa: m.arpa.as_deref().or(trie.temp_arpa.as_deref()),
        binary: if trie.out.is_some() {
            None
        } else {
            m.binary.as_deref()
        },
        flags: if chars {
            firth_ngram::model::FLAG_CHARS
        } else {
            0
        },
    }
}

fn build(a: BuildArgs) -> Result<()> {
    let t0 = Instant::now();
    let (opts, smoothing, memory) = model_options(&a.model, a.order)?;
    let trie = TriePlan::new(&a.model, &opts.temp_dir)?;
    let outputs = outputs(&a.model, &trie, a.text.chars);
    let corpus_options = CorpusOptions {
        chars: a.text.chars,
        skip_symbols: a.text.skip_symbols,
    };
    let bar = indicatif::ProgressBar::new(1);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message("reading");
    let mut spinner: Option<indicatif::ProgressBar> = None;
    let summary = build_files(
        &a.files,
        corpus_options,
        &opts,
        &outputs,
        &mut |ev| match ev {
            BuildEvent::Read { bytes, total } => {
                bar.set_length(total.max(1));
                bar.set_position(bytes);
            }
            BuildEvent::Corpus(c) => {
                bar.finish_and_clear();
                eprintln!(
                    "read {} sentences, {} words, {} types in {:.2}s",
                    c.sentences,
                    c.word_tokens,
                    c.types,
                    t0.elapsed().as_secs_f64()
                );
                let s = indicatif::ProgressBar::new_spinner();
                s.enable_steady_tick(std::time::Duration::from_millis(200));
                spinner = Some(s);
            }
            BuildEvent::Stage(stage) => {
                if let Some(s) = &spinner {
                    s.suspend(|| eprintln!("{:>7.2}s {stage}", t0.elapsed().as_secs_f64()));
                    s.set_message(stage.to_string());
                }
            }
        },
    );
    bar.finish_and_clear();
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let summary = summary.inspect_err(|_| trie.remove_temp())?;
    let trie_bytes = trie.write(&outputs, t0)?;
    report(
        &summary.build,
        smoothing,
        a.order,
        trie_bytes.or(summary.binary_bytes),
        memory,
        t0,
    );
    Ok(())
}

/// The lines lmplz prints (count and discounts per order) and firth's summary.
fn report(
    b: &firth_ngram::stream::Summary,
    smoothing: Smoothing,
    order: usize,
    binary_bytes: Option<u64>,
    memory: u64,
    t0: Instant,
) {
    if matches!(smoothing, Smoothing::KneserNey) {
        for (i, (d, n)) in b.discounts.iter().zip(&b.counts).enumerate() {
            eprintln!("{} {} D1={} D2={} D3+={}", i + 1, n, d.0[1], d.0[2], d.0[3]);
        }
    }
    let size = binary_bytes
        .map(|n| format!(", binary size {n} bytes"))
        .unwrap_or_default();
    eprintln!(
        "built order-{} model in {:.2}s wall, peak RSS {:.0} MB (budget {:.0} MB, {}, {} counting runs spilled){size}",
        order,
        t0.elapsed().as_secs_f64(),
        firth_text::peak_rss_bytes() as f64 / (1 << 20) as f64,
        memory as f64 / (1 << 20) as f64,
        if b.external {
            "streamed through temporary files"
        } else {
            "estimated in memory"
        },
        b.count_runs,
    );
}

fn vocab(a: VocabArgs) -> Result<()> {
    let t0 = Instant::now();
    let v = if a.merge {
        if a.text.chars || a.text.skip_symbols {
            bail!("--chars and --skip-symbols are read from the shard vocabularies; leave them out with --merge");
        }
        Vocab::merge(&a.files)?
    } else {
        let stdin = [PathBuf::from("-")];
        let files = if a.files.is_empty() {
            &stdin[..]
        } else {
            &a.files[..]
        };
        Vocab::scan(
            files,
            CorpusOptions {
                chars: a.text.chars,
                skip_symbols: a.text.skip_symbols,
            },
        )?
    };
    v.write(&a.out)?;
    let c = &v.corpus;
    eprintln!(
        "wrote {}: {} sentences, {} words, {} types in {:.2}s",
        a.out.display(),
        c.sentences,
        c.word_tokens,
        c.vocab_size(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn count(a: CountArgs) -> Result<()> {
    let t0 = Instant::now();
    let v = Vocab::read(&a.vocab)?;
    let (memory, temp_dir) = mem_options(&a.mem)?;
    let opts = BuildOptions {
        order: a.order,
        memory,
        temp_dir,
        ..BuildOptions::default()
    };
    let stdin = [PathBuf::from("-")];
    let files = if a.files.is_empty() {
        &stdin[..]
    } else {
        &a.files[..]
    };
    let n = firth_ngram::shard::count_shard(files, &v, &opts, &a.out)?;
    eprintln!(
        "wrote {}: {n} distinct {}-grams in {:.2}s, peak RSS {:.0} MB (budget {:.0} MB)",
        a.out.display(),
        a.order,
        t0.elapsed().as_secs_f64(),
        firth_text::peak_rss_bytes() as f64 / (1 << 20) as f64,
        memory as f64 / (1 << 20) as f64,
    );
    Ok(())
}

fn merge(a: MergeArgs) -> Result<()> {
    let t0 = Instant::now();
    let v = Vocab::read(&a.vocab)?;
    // The order comes from the count files.
    let (opts, smoothing, memory) = model_options(&a.model, 0)?;
    let trie = TriePlan::new(&a.model, &opts.temp_dir)?;
    let outputs = outputs(&a.model, &trie, v.options.chars);
    let summary = firth_ngram::shard::merge_build(&v, &a.counts, &opts, &outputs, &mut |stage| {
        eprintln!("{:>7.2}s {stage}", t0.elapsed().as_secs_f64())
    })
    .inspect_err(|_| trie.remove_temp())?;
    let trie_bytes = trie.write(&outputs, t0)?;
    let binary_bytes = trie_bytes.or_else(|| {
        a.model
            .binary
            .as_deref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
    });
    report(
        &summary,
        smoothing,
        summary.counts.len(),
        binary_bytes,
        memory,
        t0,
    );
    Ok(())
}

fn load(path: &Path, chars: bool, open: &OpenFlags) -> Result<AnyModel> {
    let t = Instant::now();
    // Verified on another thread while the input is read and scored; every command waits
    // for the verdict before it prints a result.
    let checksum = if open.no_verify {
        Checksum::Skip
    } else {
        Checksum::Background
    };
    let m = AnyModel::load_with(path, checksum)?;
    if m.lacks_checksum() {
        eprintln!(
            "warning: {} was written by an older firth and has no checksum, so damage cannot be detected; rebuild it with `firth ngram build --binary`",
            path.display()
        );
    }
    let m = if chars { m.with_chars(true) } else { m };
    eprintln!(
        "loaded {} ({}, order {}, {} words) in {:.1} ms",
        path.display(),
        m.layout(),
        m.order(),
        m.vocab_size(),
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(m)
}

fn open_text(file: Option<&Path>) -> Result<(Box<dyn BufRead>, PathBuf)> {
    match file {
        None => Ok((
            Box::new(BufReader::new(std::io::stdin().lock())),
            PathBuf::from("-"),
        )),
        Some(p) if p == Path::new("-") => Ok((
            Box::new(BufReader::new(std::io::stdin().lock())),
            PathBuf::from("-"),
        )),
        Some(p) => {
            let f =
                std::fs::File::open(p).with_context(|| format!("cannot read {}", p.display()))?;
            Ok((
                Box::new(BufReader::with_capacity(1 << 20, f)),
                p.to_path_buf(),
            ))
        }
    }
}

fn print_summary(out: &mut dyn Write, st: &firth_ngram::PplStats) -> std::io::Result<()> {
    writeln!(out, "Perplexity including OOVs:\t{}", st.perplexity())?;
    writeln!(
        out,
        "Perplexity excluding OOVs:\t{}",
        st.perplexity_excluding_oov()
    )?;
    writeln!(out, "OOVs:\t{}", st.oov)?;
    writeln!(out, "Tokens:\t{}", st.tokens)
}

/// Standard output that waits for the model's background checksum before its first byte.
struct AfterVerification<'m, W> {
    model: &'m AnyModel,
    inner: W,
    verified: bool,
}

impl<W: Write> Write for AfterVerification<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.verified {
            self.model.verified().map_err(std::io::Error::other)?;
            self.verified = true;
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn query(q: QueryArgs) -> Result<()> {
    let m = load(&q.model, q.chars, &q.open)?;
    let (mut r, path) = open_text(q.file.as_deref())?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(
        1 << 16,
        AfterVerification {
            model: &m,
            inner: stdout.lock(),
            verified: false,
        },
    );
    let t = Instant::now();
    let mut io_err: Option<std::io::Error> = None;
    let mut line_total = 0f64;
    let mut line_oov = 0u64;
    let st = if q.summary {
        m.score_text(&mut r, &path, None)?
    } else {
        let mut each = |w: firth_ngram::model::WordScore| {
            line_total += w.log10_prob as f64;
            if w.id == 0 {
                line_oov += 1;
            }
            let res = write!(
                out,
                "{}={} {} {}\t",
                w.word, w.id, w.ngram_len, w.log10_prob
            )
            .and_then(|_| {
                if w.end {
                    let r = writeln!(out, "Total: {} OOV: {}", line_total as f32, line_oov);
                    line_total = 0.0;
                    line_oov = 0;
                    r
                } else {
                    Ok(())
                }
            });
            if let Err(e) = res {
                io_err.get_or_insert(e);
            }
        };
        m.score_text(&mut r, &path, Some(&mut each))?
    };
    m.verified()?;
    if st.tokens == 0 {
        bail!("{}: no sentences to score", path.display());
    }
    if let Some(e) = io_err {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
        return Ok(());
    }
    let secs = t.elapsed().as_secs_f64();
    print_summary(&mut out, &st)?;
    out.flush()?;
    eprintln!(
        "scored {} tokens in {:.3}s ({:.0} tokens/s)",
        st.tokens,
        secs,
        st.tokens as f64 / secs.max(1e-9)
    );
    Ok(())
}

fn ppl(p: PplArgs) -> Result<()> {
    let m = load(&p.model, p.chars, &p.open)?;
    let (mut r, path) = open_text(Some(&p.file))?;
    let st = m.score_text(&mut r, &path, None)?;
    m.verified()?;
    if st.tokens == 0 {
        bail!("{}: no sentences to score", p.file.display());
    }
    if p.json {
        let j = serde_json::json!({
            "perplexity": st.perplexity(),
            "perplexity_excluding_oov": st.perplexity_excluding_oov(),
            "oov": st.oov,
            "tokens": st.tokens,
            "sentences": st.sentences,
            "log10_prob": st.log10_prob,
        });
        println!("{j}");
    } else {
        print_summary(&mut std::io::stdout().lock(), &st)?;
    }
    Ok(())
}

fn generate(g: GenerateArgs) -> Result<()> {
    let positive = g.temperature > 0.0; // false for NaN too
    if !positive {
        bail!("--temperature must be positive");
    }
    let m = load(&g.model, false, &g.open)?;
    m.verified()?;
    let mut rng = Rng::new(g.seed);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for _ in 0..g.count {
        let s = m.generate_text(&mut rng, g.temperature, g.max_len);
        writeln!(out, "{s}")?;
    }
    Ok(())
}

fn convert(c: ConvertArgs) -> Result<()> {
    let to = match c.to.as_str() {
        "trie" => Target::Trie(
            LayoutFlags {
                layout: "trie".into(),
                prob_bits: c.prob_bits,
                backoff_bits: c.backoff_bits,
            }
            .quant()?,
        ),
        _ if c.prob_bits.is_some() || c.backoff_bits.is_some() => {
            bail!("-q/-b quantize the trie layout only: use --to trie")
        }
        "arpa" => Target::Arpa,
        _ => Target::Probing,
    };
    let t = Instant::now();
    let bytes = firth_ngram::trie::convert(&c.input, &c.output, to, c.chars)?;
    eprintln!(
        "wrote {} ({}, {bytes} bytes) in {:.2}s",
        c.output.display(),
        c.to,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
