//! `firth vectors`: train word2vec / GloVe vectors, query them, evaluate them, plot them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use firth_vectors::embeddings::AnalogyMethod;
use firth_vectors::formats::{self, Format};
use firth_vectors::pipeline::{self, Counted, Event};
use firth_vectors::{eval, glove, word2vec};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train skip-gram or CBOW vectors (negative sampling and/or hierarchical softmax).
    Word2vec(W2vArgs),
    /// Train GloVe vectors (co-occurrence counting under a memory budget, AdaGrad).
    Glove(GloveArgs),
    /// The nearest words to WORD by cosine similarity.
    Similar {
        vectors: PathBuf,
        word: String,
        #[arg(short, default_value_t = 10, value_parser = crate::validate::at_least_1)]
        k: usize,
    },
    /// "a is to b as c is to ?": the words nearest b - a + c (query words excluded).
    Analogy {
        vectors: PathBuf,
        a: String,
        b: String,
        c: String,
        #[arg(short, default_value_t = 5, value_parser = crate::validate::at_least_1)]
        k: usize,
        /// 3CosAdd (cosadd) or 3CosMul (cosmul).
        #[arg(long, value_enum, default_value_t = AnalogyMethod::CosAdd)]
        method: AnalogyMethod,
    },
    /// Analogy accuracy per section and Spearman rho on similarity sets (gensim-compatible).
    Eval(EvalArgs),
    /// A 2-D PCA map of the given words, as SVG or PNG (chosen by the --out name).
    Plot {
        vectors: PathBuf,
        words: Vec<String>,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct W2vArgs {
    #[arg(long)]
    input: PathBuf,
    #[arg(long)]
    output: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Word2VecBin)]
    format: Format,
    #[arg(long, value_enum, default_value_t = word2vec::Model::SkipGram)]
    model: word2vec::Model,
    #[arg(long, default_value_t = 100, value_parser = crate::validate::at_least_1)]
    dim: usize,
    #[arg(long, default_value_t = 5, value_parser = crate::validate::at_least_1)]
    window: usize,
    #[arg(long, default_value_t = 5)]
    negative: usize,
    /// Use hierarchical softmax (Huffman tree) as well / instead (with --negative 0).
    #[arg(long)]
    hs: bool,
    #[arg(long, default_value_t = 1e-3, value_parser = crate::validate::probability)]
    sample: f64,
    #[arg(long, default_value_t = 5)]
    min_count: u64,
    /// Keep at most this many words (0: no limit).
    #[arg(long, default_value_t = 0)]
    max_vocab: usize,
    /// Starting learning rate (default 0.025 for skip-gram, 0.05 for CBOW).
    #[arg(long, value_parser = crate::validate::word2vec_alpha)]
    alpha: Option<f32>,
    #[arg(long, default_value_t = 5, value_parser = crate::validate::at_least_1_u32)]
    epochs: u32,
    #[arg(long, default_value_t = 2, value_parser = crate::validate::at_least_1)]
    threads: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON summary object at the end.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct GloveArgs {
    #[arg(long)]
    input: PathBuf,
    #[arg(long)]
    output: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Word2VecBin)]
    format: Format,
    #[arg(long, default_value_t = 50, value_parser = crate::validate::at_least_1)]
    dim: usize,
    #[arg(long, default_value_t = 15, value_parser = crate::validate::at_least_1)]
    window: usize,
    #[arg(long, default_value_t = 10.0, value_parser = crate::validate::finite_positive)]
    x_max: f64,
    /// Exponent of the weighting function f(x) = (x / x_max)^alpha.
    #[arg(long, default_value_t = 0.75, value_parser = crate::validate::finite_positive)]
    alpha: f64,
    /// AdaGrad learning rate.
    #[arg(long, default_value_t = 0.05, value_parser = crate::validate::finite_positive)]
    eta: f64,
    #[arg(long, default_value_t = 15, value_parser = crate::validate::at_least_1_u32)]
    epochs: u32,
    #[arg(long, default_value_t = 5)]
    min_count: u64,
    #[arg(long, default_value_t = 0)]
    max_vocab: usize,
    /// Memory budget for co-occurrence counting and shuffling, in GB (beyond it, sorted runs
    /// and shuffled chunks spill to temporary files and training streams from disk).
    #[arg(long, default_value_t = 4.0, value_parser = crate::validate::finite_positive)]
    memory: f64,
    #[arg(long, default_value_t = 2, value_parser = crate::validate::at_least_1)]
    threads: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = glove::Vectors::Sum)]
    vectors: glove::Vectors,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct EvalArgs {
    vectors: PathBuf,
    /// Analogy questions (questions-words.txt format).
    #[arg(long)]
    analogy: Option<PathBuf>,
    /// Word-pair similarity files (word1 TAB word2 TAB score); repeatable.
    #[arg(long)]
    similarity: Vec<PathBuf>,
    /// Only the most frequent N words answer or are asked analogies (gensim restrict_vocab).
    #[arg(long, default_value_t = 30000, value_parser = crate::validate::at_least_1)]
    restrict: usize,
    /// Vocabulary limit for similarity pairs (gensim's default 300000).
    #[arg(long, default_value_t = 300000, value_parser = crate::validate::at_least_1)]
    restrict_pairs: usize,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    match a.cmd {
        Cmd::Word2vec(w) => run_word2vec(w),
        Cmd::Glove(g) => run_glove(g),
        Cmd::Similar { vectors, word, k } => {
            let e = formats::load(&vectors)?;
            let r = e
                .similar(&word, k)
                .with_context(|| format!("'{word}' is not in {}", vectors.display()))?;
            for (w, s) in r {
                println!("{w}\t{s:.4}");
            }
            Ok(())
        }
        Cmd::Analogy {
            vectors,
            a,
            b,
            c,
            k,
            method,
        } => {
            let e = formats::load(&vectors)?;
            let r = e
                .analogy(&a, &b, &c, k, method)
                .map_err(anyhow::Error::msg)?;
            for (w, s) in r {
                println!("{w}\t{s:.4}");
            }
            Ok(())
        }
        Cmd::Eval(e) => run_eval(e),
        Cmd::Plot {
            vectors,
            words,
            out,
        } => run_plot(vectors, words, out),
    }
}

fn bar(total: u64, json: bool) -> ProgressBar {
    let pb = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    pb.set_style(
        ProgressStyle::with_template("{bar:30} {percent:>3}% {msg} ETA {eta}")
            .expect("valid template"),
    );
    pb
}

/// Prints what counting found: the UTF-8 warning always (it is about the data), the rest only
/// for people (`--json` keeps stderr to warnings).
fn report_counted(c: &Counted, input: &Path, json: bool, vocab_line: String) {
    if let Some(w) = c.utf8_warning(input) {
        eprintln!("warning: {w}");
    }
    if !json {
        if let Some(n) = c.prune_note() {
            eprintln!("note: {n}");
        }
        eprintln!("{vocab_line}");
    }
}

fn run_word2vec(a: W2vArgs) -> anyhow::Result<()> {
    let cfg = word2vec::Config {
        model: a.model,
        dim: a.dim,
        window: a.window,
        negative: a.negative,
        hs: a.hs,
        sample: a.sample,
        min_count: a.min_count,
        max_vocab: a.max_vocab,
        alpha: a.alpha.unwrap_or(a.model.default_alpha()),
        epochs: a.epochs,
        threads: a.threads.max(1),
        seed: a.seed,
        ..Default::default()
    };
    let pb = bar(0, a.json);
    let s =
        pipeline::train_word2vec_file(&a.input, &a.output, a.format, &cfg, &mut |ev| match ev {
            Event::Counted(c) => {
                let line = format!(
                    "vocabulary {} words, {} training words",
                    c.vocab_size, c.train_words
                );
                report_counted(c, &a.input, a.json, line);
                pb.set_length(cfg.epochs as u64 * c.train_words);
            }
            Event::Training(p) => {
                pb.set_position(p.words_done);
                let wps = p.words_done as f64 / p.elapsed.max(1e-9);
                pb.set_message(format!(
                    "epoch {} {:.0}k words/s lr {:.5} loss {:.4}",
                    p.epoch + 1,
                    wps / 1e3,
                    p.alpha,
                    p.loss
                ));
            }
        });
    pb.finish_and_clear();
    let s = s?;
    if a.json {
        println!("{}", serde_json::to_value(&s)?);
    } else {
        eprintln!(
            "trained {} words in {:.1}s ({:.0} words/s, {:.0} words/thread/s), loss {:.4}; wall {:.1}s; wrote {}",
            s.words_processed,
            s.train_seconds,
            s.words_per_second,
            s.words_per_second / cfg.threads as f64,
            s.final_loss,
            s.wall_seconds,
            a.output.display()
        );
    }
    Ok(())
}

fn run_glove(a: GloveArgs) -> anyhow::Result<()> {
    let cfg = glove::Config {
        dim: a.dim,
        window: a.window,
        x_max: a.x_max,
        alpha: a.alpha,
        eta: a.eta,
        epochs: a.epochs,
        min_count: a.min_count,
        max_vocab: a.max_vocab,
        memory_bytes: (a.memory * 1e9) as u64,
        threads: a.threads.max(1),
        seed: a.seed,
    };
    let pb = bar(cfg.epochs as u64, a.json);
    let s = pipeline::train_glove_file(&a.input, &a.output, a.format, &cfg, a.vectors, &mut |ev| {
        match ev {
            Event::Counted(c) => {
                let line = format!("vocabulary {} words ({:.1}s)", c.vocab_size, c.seconds);
                report_counted(c, &a.input, a.json, line);
            }
            Event::Training(p) => {
                pb.set_position(p.epoch as u64);
                pb.set_message(format!("{} cost {:.5}", p.stage, p.cost));
            }
        }
    });
    pb.finish_and_clear();
    let s = s?;
    if a.json {
        println!("{}", serde_json::to_value(&s)?);
    } else {
        eprintln!(
            "vocab {:.1}s, cooccur {:.1}s ({} nonzeros, {} runs spilled), shuffle {:.1}s ({} chunks on disk), train {:.1}s (cost {:.5}); wall {:.1}s; wrote {}",
            s.vocab_seconds,
            s.cooccur_seconds,
            s.nonzeros,
            s.spilled_runs,
            s.shuffle_seconds,
            s.shuffle_chunks,
            s.train_seconds,
            s.final_cost,
            s.wall_seconds,
            a.output.display()
        );
    }
    Ok(())
}

fn run_eval(a: EvalArgs) -> anyhow::Result<()> {
    if a.analogy.is_none() && a.similarity.is_empty() {
        bail!("give --analogy FILE and/or --similarity FILE");
    }
    let e = formats::load(&a.vectors)?;
    let mut out = json!({ "vocab_size": e.len(), "dim": e.dim });
    if let Some(q) = &a.analogy {
        let (t, skipped) = eval::evaluate_analogies(&e, q, a.restrict)?;
        if let Some(w) = skipped.warning(q, "`: section` or four words") {
            eprintln!("warning: {w}");
        }
        out["analogy_skipped_lines"] = json!(skipped.count);
        if !a.json {
            for s in &t.sections {
                println!(
                    "{:<30} {:>6.2}%  ({}/{}, {} oov)",
                    s.name,
                    s.accuracy(),
                    s.correct,
                    s.attempted(),
                    s.oov
                );
            }
            println!(
                "analogy accuracy {:.2}% ({}/{}), coverage {:.2}% (restrict {})",
                t.accuracy(),
                t.correct(),
                t.attempted(),
                100.0 * t.coverage(),
                a.restrict
            );
        }
        out["analogy_accuracy"] = json!(t.accuracy());
        out["analogy_coverage"] = json!(t.coverage());
        out["analogy_correct"] = json!(t.correct());
        out["analogy_attempted"] = json!(t.attempted());
        out["analogy_questions"] = json!(t.questions());
        out["analogy_sections"] = json!(t
            .sections
            .iter()
            .map(|s| json!({"section": s.name, "accuracy": s.accuracy(), "correct": s.correct, "attempted": s.attempted(), "oov": s.oov}))
            .collect::<Vec<_>>());
    }
    let mut sims = vec![];
    for f in &a.similarity {
        let r = eval::evaluate_pairs(&e, f, a.restrict_pairs)?;
        if let Some(w) = r.skipped.warning(f, "word1<TAB>word2<TAB>finite score") {
            eprintln!("warning: {w}");
        }
        if !a.json {
            println!(
                "{}: spearman {:.4} ({} pairs, coverage {:.2}%)",
                f.display(),
                r.spearman,
                r.pairs,
                100.0 * r.coverage
            );
        }
        let name = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        sims.push(json!({"file": r.file, "name": name, "spearman": r.spearman, "pairs": r.pairs, "oov": r.oov, "coverage": r.coverage}));
    }
    out["similarity"] = json!(sims);
    if a.json {
        println!("{out}");
    }
    Ok(())
}

fn run_plot(vectors: PathBuf, words: Vec<String>, out: PathBuf) -> anyhow::Result<()> {
    if words.len() < 2 {
        bail!("give at least two words to plot");
    }
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if ext != "svg" && ext != "png" {
        bail!("{}: name the map .svg or .png", out.display());
    }
    let map = pipeline::embedding_map(&vectors, &words)?;
    crate::plot::scatter_labels(
        &out,
        &map.title,
        "principal component 1",
        "principal component 2",
        &map.points,
    )?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
