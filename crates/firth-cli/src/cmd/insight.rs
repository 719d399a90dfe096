//! Seeing inside models: `firth lm gradients` (gradient flow through time), `firth lm
//! agreement` (long-range subject-verb agreement per distance) and `firth plot` (training
//! curves, gradient and agreement CSVs, embedding maps), all drawn as SVG and PNG.

use super::set_threads;
use crate::plot::{both, line_chart_with, scatter_labels, LineChart, Series};
use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, ValueEnum};
use firth_models::agreement::{
    from_conllu, known_items, lm_right, ngram_right, score_by_distance, templates, AgreementItem,
    DistanceScore,
};
use firth_models::gradients::{GradientFlow, GradientProbe};
use firth_models::lm::{Arch, LanguageModel, LmConfig};
use firth_models::trainer::{read_metrics, EpochRecord};
use firth_nn::checkpoint::write_atomic;
use firth_nn::Rng;
use firth_text::{Level, Vocab};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum RecurrentArch {
    Rnn,
    Lstm,
    Gru,
}

/// `firth lm gradients`.
#[derive(ClapArgs, Debug)]
pub struct GradientsArgs {
    /// Trained model directories (or .safetensors files), each measured and drawn side by side.
    models: Vec<PathBuf>,
    /// Also (or instead) measure freshly initialised models of these kinds, e.g. --arch rnn,lstm,gru.
    #[arg(long, value_enum, value_delimiter = ',')]
    arch: Vec<RecurrentArch>,
    /// Hidden (and embedding) size of initialised models.
    #[arg(long, default_value_t = 200, value_parser = crate::validate::at_least_1)]
    hidden: usize,
    /// Layers of initialised models.
    #[arg(long, default_value_t = 2, value_parser = crate::validate::at_least_1)]
    layers: usize,
    /// Initialised models' weights are uniform in ±this.
    #[arg(long, default_value_t = 0.1, value_parser = crate::validate::finite_positive)]
    init_range: f64,
    /// Seed for initialised models.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Text whose positions are measured (word level; initialised models take their vocabulary
    /// from it).
    #[arg(long)]
    train: PathBuf,
    /// Output directory: gradients-<model>.csv, gradients.svg, gradients.png.
    #[arg(long)]
    out: PathBuf,
    /// Largest distance t-k measured.
    #[arg(long, default_value_t = 50, value_parser = crate::validate::at_least_1)]
    max_distance: usize,
    /// Tokens read before the farthest state measured, so no measured state is near the zero start.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Positions t averaged over, spread evenly over the text.
    #[arg(long, default_value_t = 1000, value_parser = crate::validate::at_least_1)]
    positions: usize,
    /// Positions measured in one pass.
    #[arg(long, default_value_t = 100, value_parser = crate::validate::at_least_1)]
    batch: usize,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    threads: Option<usize>,
    /// Print one JSON summary on stdout.
    #[arg(long)]
    json: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

/// The accuracy-against-distance chart of `firth lm agreement` and `firth plot`.
fn agreement_chart(title: &str) -> LineChart<'_> {
    LineChart {
        title,
        x_label: "words between subject and verb",
        y_label: "accuracy (agreeing verb preferred)",
        log_y: false,
        y_range: Some((0.0, 1.0)),
    }
}

/// `firth lm agreement`.
#[derive(ClapArgs, Debug)]
pub struct AgreementArgs {
    /// Word-level model directories (or .safetensors files).
    models: Vec<PathBuf>,
    /// n-gram models (ARPA or firth binary) to score alongside.
    #[arg(long)]
    ngram: Vec<PathBuf>,
    /// CoNLL-U files with dependency heads and Number features (e.g. UD English EWT) to draw
    /// test sentences from.
    #[arg(long)]
    conllu: Vec<PathBuf>,
    /// Template items per arrangement of the template's optional parts (32 arrangements).
    #[arg(long, default_value_t = 40, value_parser = crate::validate::at_least_1)]
    per_pattern: usize,
    /// Leave out the built-in template items.
    #[arg(long)]
    no_templates: bool,
    /// Output directory: agreement.csv, agreement-<source>.svg/.png.
    #[arg(long, default_value = "agreement")]
    out: PathBuf,
    /// Distances with fewer items than this are listed but left out of the plot.
    #[arg(long, default_value_t = 10)]
    min_count: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_parser = crate::validate::at_least_1)]
    threads: Option<usize>,
    #[arg(long)]
    json: bool,
}

/// `firth plot`.
#[derive(ClapArgs, Debug)]
pub struct PlotArgs {
    /// Run directories (their metrics.csv) or CSV files: training metrics, `distance,grad_norm`
    /// from `firth lm gradients`, or agreement.csv from `firth lm agreement`.
    paths: Vec<PathBuf>,
    /// Word vectors (word2vec text/binary or GloVe) for an embedding map.
    #[arg(long)]
    vectors: Option<PathBuf>,
    /// Words to place on the embedding map, comma-separated.
    #[arg(long, value_delimiter = ',')]
    words: Vec<String>,
    /// Where to write, without extension (both .svg and .png are written). Default: next to
    /// the input (curves, gradients, agreement) or `embedding-map`.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn bar(len: usize, quiet: bool, what: &str) -> Option<ProgressBar> {
    (!quiet).then(|| {
        let b = ProgressBar::new(len as u64);
        b.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        b.set_prefix(what.to_string());
        b
    })
}

/// The share of training steps whose gradient norm was clipped, from a run's metrics.csv:
/// (over all epochs, first epoch, last epoch).
fn clipped_share(dir: &Path) -> Option<(f64, f64, f64)> {
    let records = firth_models::trainer::read_metrics(&dir.join("metrics.csv")).ok()?;
    let v: Vec<f64> = records.iter().map(|r| r.clipped_fraction).collect();
    if v.is_empty() {
        return None;
    }
    Some((
        v.iter().sum::<f64>() / v.len() as f64,
        v[0],
        *v.last().unwrap_or(&v[0]),
    ))
}

fn file_label(p: &Path) -> String {
    let p = if p.is_dir() {
        p.to_path_buf()
    } else {
        p.with_extension("")
    };
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into())
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn arch_name(a: Arch) -> &'static str {
    match a {
        Arch::Window => "window",
        Arch::Rnn => "rnn",
        Arch::Lstm => "lstm",
        Arch::Gru => "gru",
    }
}

/// First distance at which the mean norm is below a tenth of its value at distance 0.
fn tenfold_distance(g: &[f64]) -> Option<usize> {
    let g0 = *g.first()?;
    g.iter().position(|&v| v < g0 / 10.0)
}

pub fn gradients(a: GradientsArgs) -> Result<()> {
    set_threads(a.threads)?;
    if a.models.is_empty() && a.arch.is_empty() {
        bail!("give model directories, or --arch rnn,lstm,gru for initialised models");
    }
    let text = firth_text::read_text(&a.train)?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    struct Measured {
        label: String,
        arch: Arch,
        source: String,
        flow: GradientFlow,
        clipped: Option<(f64, f64, f64)>,
        csv: PathBuf,
    }
    let mut results: Vec<Measured> = Vec::new();
    let mut run = |label: String,
                   source: String,
                   model: &LanguageModel<f32>,
                   vocab: &Vocab,
                   clipped: Option<(f64, f64, f64)>|
     -> Result<()> {
        let level = model.config.level;
        let ids = vocab
            .encode(&text, level)
            .map_err(|e| anyhow::anyhow!("{}: {e}", a.train.display()))?;
        let mut probe = GradientProbe::<f64>::new(model)
            .with_context(|| format!("{source}: cannot measure gradients"))?;
        let pb = bar(a.positions, a.quiet, &label);
        let flow = probe.measure(
            &ids,
            a.max_distance,
            a.warmup,
            a.positions,
            a.batch,
            |d, _| {
                if let Some(b) = &pb {
                    b.set_position(d as u64);
                }
            },
        )?;
        if let Some(b) = pb {
            b.finish_and_clear();
        }
        // An LSTM's cell state is its memory; its gradient is measured and drawn as a curve of
        // its own, beside the hidden state's.
        let cell = flow.cell().map(|f| (format!("{label} cell c"), f));
        for (label, flow) in std::iter::once((label, flow)).chain(cell) {
            let csv = a.out.join(format!("gradients-{}.csv", slug(&label)));
            write_atomic(&csv, flow.to_csv().as_bytes())?;
            results.push(Measured {
                label,
                arch: model.config.arch,
                source: source.clone(),
                flow,
                clipped,
                csv,
            });
        }
        Ok(())
    };
    for dir in &a.models {
        let (model, vocab) = LanguageModel::load(dir)?;
        let label = format!("{} ({})", file_label(dir), arch_name(model.config.arch));
        let clipped = if dir.is_dir() {
            clipped_share(dir)
        } else {
            None
        };
        run(label, dir.display().to_string(), &model, &vocab, clipped)?;
    }
    if !a.arch.is_empty() {
        let vocab = Vocab::build(&text, Level::Word);
        for &arch in &a.arch {
            let arch = match arch {
                RecurrentArch::Rnn => Arch::Rnn,
                RecurrentArch::Lstm => Arch::Lstm,
                RecurrentArch::Gru => Arch::Gru,
            };
            let config = LmConfig {
                layers: a.layers,
                init_range: a.init_range,
                context: 0,
                ..LmConfig::new(arch, Level::Word, vocab.len(), a.hidden)
            };
            let model =
                LanguageModel::new(config, &mut Rng::new(a.seed)).map_err(anyhow::Error::msg)?;
            let label = format!("{} init", arch_name(arch));
            let source = format!(
                "initialised {}x{} {}, weights uniform in ±{}, seed {}",
                a.layers,
                a.hidden,
                arch_name(arch),
                a.init_range,
                a.seed
            );
            run(label, source, &model, &vocab, None)?;
        }
    }
    let series: Vec<Series> = results
        .iter()
        .map(|m| Series {
            name: m.label.clone(),
            points: m
                .flow
                .grad_norm
                .iter()
                .enumerate()
                .map(|(d, &g)| (d as f64, g))
                .collect(),
        })
        .collect();
    let chart = LineChart {
        title: "Gradient flow through time (top layer)",
        x_label: "distance t - k (steps)",
        y_label: "mean ||dJ(t)/dh(k)|| (LSTM cell: dJ(t)/dc(k))",
        log_y: true,
        y_range: None,
    };
    let plots = both(&a.out.join("gradients"), |p| {
        line_chart_with(p, &chart, &series)
    })?;
    let d = a.max_distance;
    let reading = reading(
        &results
            .iter()
            .map(|m| (m.label.as_str(), m.arch, &m.flow))
            .collect::<Vec<_>>(),
        d,
    );
    if a.json {
        let models: Vec<_> = results
            .iter()
            .map(|m| {
                json!({
                    "label": m.label,
                    "arch": arch_name(m.arch),
                    "source": m.source,
                    "positions": m.flow.positions,
                    "mean_loss": m.flow.mean_loss,
                    "saturated_fraction": m.flow.saturated,
                    "grad_norm": m.flow.grad_norm,
                    "orders_lost": m.flow.orders_lost(d),
                    "tenfold_distance": tenfold_distance(&m.flow.grad_norm),
                    "clipped_fraction": m.clipped.map(|c| c.0),
                    "clipped_fraction_first_epoch": m.clipped.map(|c| c.1),
                    "clipped_fraction_last_epoch": m.clipped.map(|c| c.2),
                    "csv": m.csv,
                })
            })
            .collect();
        println!(
            "{}",
            json!({"max_distance": d, "warmup": a.warmup, "models": models, "plots": plots, "reading": reading})
        );
    } else {
        println!(
            "{:<34} {:>10} {:>10} {:>10} {:>10} {:>7} {:>8} {:>9}",
            "model",
            "d=0",
            "d=10",
            "d=20",
            format!("d={d}"),
            "orders",
            "|h|>.99",
            "clipped"
        );
        for m in &results {
            let g = &m.flow.grad_norm;
            let at = |k: usize| g.get(k).map_or("-".to_string(), |v| format!("{v:.3e}"));
            println!(
                "{:<34} {:>10} {:>10} {:>10} {:>10} {:>7} {:>8} {:>9}",
                m.label,
                at(0),
                at(10),
                at(20),
                at(d),
                m.flow
                    .orders_lost(d)
                    .map_or("-".into(), |o| format!("{o:.2}")),
                format!("{:.1}%", 100.0 * m.flow.saturated),
                m.clipped
                    .map_or("-".into(), |c| format!("{:.1}%", 100.0 * c.0)),
            );
        }
        println!();
        println!("{reading}");
        for m in &results {
            if let Some((all, first, last)) = m.clipped {
                println!(
                    "{}: gradient norm clipped in {:.1}% of training steps (first epoch {:.1}%, last {:.1}%).",
                    m.label,
                    100.0 * all,
                    100.0 * first,
                    100.0 * last
                );
            }
        }
        for m in &results {
            eprintln!("wrote {}", m.csv.display());
        }
        eprintln!("wrote {} and {}", plots[0].display(), plots[1].display());
    }
    Ok(())
}

/// One paragraph saying what the curves show.
fn reading(models: &[(&str, Arch, &GradientFlow)], d: usize) -> String {
    let arch_of = |label: &str| models.iter().find(|m| m.0 == label).map(|m| m.1);
    let mut parts = Vec::new();
    for (label, _, f) in models {
        let lost = f.orders_lost(d).map_or_else(
            || "below the smallest f64, 1e-308: it underflowed".to_string(),
            |o| format!("{o:.1} orders of magnitude"),
        );
        let ten = tenfold_distance(&f.grad_norm).map_or(
            format!("stays within a factor 10 of its start over all {d} steps"),
            |k| format!("first drops below a tenth of its start at distance {k}"),
        );
        parts.push(format!(
            "for {label} the mean norm goes from {:.2e} at distance 0 to {:.2e} at distance {d} ({lost}) and {ten}",
            f.grad_norm[0],
            f.grad_norm[d.min(f.grad_norm.len() - 1)]
        ));
    }
    let mut s = format!(
        "How far back does the loss of one prediction reach? Averaged over {} positions, {}.",
        models.first().map_or(0, |m| m.2.positions),
        parts.join("; ")
    );
    let worst = models
        .iter()
        .filter_map(|m| m.2.orders_lost(d).map(|o| (m.0, o)))
        .fold(None, |b: Option<(&str, f64)>, x| match b {
            Some(b) if b.1 >= x.1 => Some(b),
            _ => Some(x),
        });
    let best = models
        .iter()
        .filter_map(|m| m.2.orders_lost(d).map(|o| (m.0, o)))
        .fold(None, |b: Option<(&str, f64)>, x| match b {
            Some(b) if b.1 <= x.1 => Some(b),
            _ => Some(x),
        });
    if let (Some(w), Some(b)) = (worst, best) {
        if w.0 != b.0 {
            s.push_str(&format!(
                " Relative to the nearest state, a state {d} steps back receives about 10^{:.1} times less gradient in {} than in {}: {}",
                w.1 - b.1,
                w.0,
                b.0,
                match (w.1 - b.1 >= 2.0, arch_of(w.0), arch_of(b.0)) {
                    (true, Some(Arch::Rnn), Some(Arch::Lstm | Arch::Gru)) => "the plain RNN's training signal from distant words has all but vanished, which is what the gated cell's additive path is built to prevent.",
                    (true, _, _) => "its training signal from distant words has all but vanished.",
                    _ => "the difference is modest at this distance.",
                }
            ));
        }
    }
    if models
        .iter()
        .any(|m| m.2.orders_lost(d).is_some_and(|o| o < 0.0))
    {
        s.push_str(" A negative number of orders means the norm grew with distance: exploding rather than vanishing gradients, the case norm clipping exists for.");
    }
    s
}

/// A tiny reader for the CSVs firth writes: a header and comma-separated numbers or words.
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Csv {
    fn parse(text: &str) -> Result<Csv> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<String> = lines
            .next()
            .context("the file is empty")?
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        let mut rows = Vec::new();
        for (i, l) in lines.enumerate() {
            let r: Vec<String> = l.split(',').map(|s| s.trim().to_string()).collect();
            if r.len() != header.len() {
                bail!(
                    "line {}: {} fields, but the header has {}",
                    i + 2,
                    r.len(),
                    header.len()
                );
            }
            rows.push(r);
        }
        Ok(Csv { header, rows })
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    fn column(&self, name: &str) -> Option<Vec<Option<f64>>> {
        let i = self.index(name)?;
        Some(self.rows.iter().map(|r| r[i].parse().ok()).collect())
    }
}

pub fn agreement(a: AgreementArgs) -> Result<()> {
    set_threads(a.threads)?;
    if a.models.is_empty() && a.ngram.is_empty() {
        bail!("give model directories and/or --ngram models to test");
    }
    let mut sources: Vec<(String, Vec<AgreementItem>)> = Vec::new();
    if !a.no_templates {
        sources.push(("templates".into(), templates(a.per_pattern, a.seed)));
    }
    if !a.conllu.is_empty() {
        let mut items = Vec::new();
        for p in &a.conllu {
            let text = firth_text::read_text(p)?;
            items.extend(from_conllu(&text, &p.display().to_string())?);
        }
        sources.push(("corpus".into(), items));
    }
    if sources.is_empty() {
        bail!("no test items: give --conllu files or leave out --no-templates");
    }
    let mut lms = Vec::new();
    for p in &a.models {
        let (m, v) = LanguageModel::load(p)?;
        if m.config.level != Level::Word {
            bail!(
                "{}: a character model; agreement needs a word-level model",
                p.display()
            );
        }
        lms.push((
            format!("{} ({})", file_label(p), arch_name(m.config.arch)),
            m,
            v,
        ));
    }
    let mut ngrams = Vec::new();
    for p in &a.ngram {
        let m = firth_ngram::model::Model::load(p)?;
        ngrams.push((format!("{} ({}-gram)", file_label(p), m.order()), m));
    }
    // Every model is scored on the same items: those whose subject and verb forms all know.
    let knows = |w: &str| {
        lms.iter().all(|(_, _, v)| v.get(w).is_some())
            && ngrams.iter().all(|(_, m)| m.word_id(w) != 0)
    };
    let sources: Vec<(String, usize, Vec<AgreementItem>)> = sources
        .into_iter()
        .map(|(s, items)| (s, items.len(), known_items(items, knows)))
        .collect();
    // The subject d+1 words back is in an n-gram's context of n-1 words iff d <= n-2.
    let beyond = ngrams
        .iter()
        .map(|(_, m)| m.order().saturating_sub(1))
        .min();
    let mut csv = String::from("source,distance,model,correct,total,accuracy\n");
    let mut report = Vec::new();
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut plots = Vec::new();
    for (source, before, items) in sources {
        let mut per_model: Vec<(String, Vec<DistanceScore>)> = Vec::new();
        for (label, m, v) in lms.iter_mut() {
            let right = lm_right(m, v, &items, 64)?;
            per_model.push((label.clone(), score_by_distance(&items, &right)));
        }
        for (label, m) in &ngrams {
            let right = ngram_right(m, &items);
            per_model.push((label.clone(), score_by_distance(&items, &right)));
        }
        for (label, scores) in &per_model {
            for s in scores {
                csv.push_str(&format!(
                    "{source},{},{},{},{},{:.4}\n",
                    s.distance,
                    label.replace(',', " "),
                    s.correct,
                    s.total,
                    s.accuracy()
                ));
            }
        }
        if !a.json {
            println!(
                "{source}: {} items ({} dropped for words a model does not know)",
                items.len(),
                before - items.len()
            );
            let w = per_model
                .iter()
                .map(|(l, _)| l.len())
                .max()
                .unwrap_or(0)
                .max(20);
            print!("{:>8} {:>6}", "distance", "items");
            for (label, _) in &per_model {
                print!(" {:>w$}", label);
            }
            println!();
            if let Some((_, first)) = per_model.first() {
                for (i, s) in first.iter().enumerate() {
                    print!("{:>8} {:>6}", s.distance, s.total);
                    for (_, scores) in &per_model {
                        let t = &scores[i];
                        print!(
                            " {:>w$}",
                            format!("{:.3} ({}/{})", t.accuracy(), t.correct, t.total)
                        );
                    }
                    println!();
                }
                let total: usize = first.iter().map(|s| s.total).sum();
                print!("{:>8} {:>6}", "all", total);
                for (_, scores) in &per_model {
                    let c: usize = scores.iter().map(|s| s.correct).sum();
                    print!(
                        " {:>w$}",
                        format!("{:.3} ({}/{})", c as f64 / total.max(1) as f64, c, total)
                    );
                }
                println!();
                if let Some(k) = beyond {
                    let n: usize = first
                        .iter()
                        .filter(|s| s.distance >= k)
                        .map(|s| s.total)
                        .sum();
                    print!("{:>8} {:>6}", format!("d>={k}"), n);
                    for (_, scores) in &per_model {
                        let c: usize = scores
                            .iter()
                            .filter(|s| s.distance >= k)
                            .map(|s| s.correct)
                            .sum();
                        print!(
                            " {:>w$}",
                            format!("{:.3} ({}/{})", c as f64 / n.max(1) as f64, c, n)
                        );
                    }
                    println!("   (subject outside the n-gram context: distance >= order - 1)");
                }
                println!();
            }
        }
        let series: Vec<Series> = per_model
            .iter()
            .map(|(label, scores)| Series {
                name: label.clone(),
                points: scores
                    .iter()
                    .filter(|s| s.total >= a.min_count)
                    .map(|s| (s.distance as f64, s.accuracy()))
                    .collect(),
            })
            .collect();
        let title = format!("Subject-verb agreement ({source})");
        let chart = agreement_chart(&title);
        let p = both(&a.out.join(format!("agreement-{source}")), |p| {
            line_chart_with(p, &chart, &series)
        })?;
        plots.extend(p);
        report.push(json!({
            "source": source,
            "items": items.len(),
            "dropped": before - items.len(),
            "models": per_model.iter().map(|(l, s)| json!({"model": l, "by_distance": s})).collect::<Vec<_>>(),
        }));
    }
    let csv_path = a.out.join("agreement.csv");
    write_atomic(&csv_path, csv.as_bytes())?;
    if a.json {
        println!(
            "{}",
            json!({"sources": report, "csv": csv_path, "plots": plots})
        );
    } else {
        eprintln!("wrote {}", csv_path.display());
        for p in &plots {
            eprintln!("wrote {}", p.display());
        }
    }
    Ok(())
}

/// The words' vectors projected on their first two principal components, labelled, and the
/// chart's title: the embedding map that `firth plot --vectors` and `firth vectors plot` draw.
pub fn embedding_map_points(
    vectors: &std::path::Path,
    words: &[String],
) -> Result<(Vec<(String, f64, f64)>, String)> {
    let e = firth_vectors::formats::load(vectors)
        .with_context(|| format!("cannot read word vectors from {}", vectors.display()))?;
    let mut rows = Vec::new();
    for w in words {
        let v = e.get(w).with_context(|| {
            format!(
                "'{w}' is not in {}; choose words from its vocabulary",
                vectors.display()
            )
        })?;
        rows.extend_from_slice(v);
    }
    let pts = firth_vectors::embeddings::pca2(&rows, e.dim);
    let labelled = words
        .iter()
        .zip(&pts)
        .map(|(w, &(x, y))| (w.clone(), x as f64, y as f64))
        .collect();
    let title = format!("Word vectors, 2-D PCA ({})", file_label(vectors));
    Ok((labelled, title))
}

pub fn plot(a: PlotArgs) -> Result<()> {
    let mut written = Vec::new();
    if let Some(vectors) = &a.vectors {
        if a.words.len() < 2 {
            bail!("give at least two words to place on the map with --words w1,w2,...");
        }
        let (labelled, title) = embedding_map_points(vectors, &a.words)?;
        let stem = a
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("embedding-map"));
        written.extend(both(&stem, |p| {
            scatter_labels(
                p,
                &title,
                "principal component 1",
                "principal component 2",
                &labelled,
            )
        })?);
    } else if !a.words.is_empty() {
        bail!("--words needs --vectors FILE");
    }
    if a.paths.is_empty() && a.vectors.is_none() {
        bail!("give a run directory or CSV file to plot, or --vectors FILE --words ...");
    }
    // Group the inputs by kind; inputs of one kind are drawn on one chart.
    let mut metrics: Vec<(String, PathBuf, Vec<EpochRecord>)> = Vec::new();
    let mut grads: Vec<(String, PathBuf, Csv)> = Vec::new();
    let mut agree: Vec<(String, PathBuf, Csv)> = Vec::new();
    for p in &a.paths {
        let file = if p.is_dir() {
            p.join("metrics.csv")
        } else {
            p.clone()
        };
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let csv = Csv::parse(&text).with_context(|| format!("{}", file.display()))?;
        let label = if p.is_dir() {
            file_label(p)
        } else {
            file_label(&file)
        };
        let label = label
            .strip_prefix("gradients-")
            .map(str::to_string)
            .unwrap_or(label);
        if csv.index("valid_perplexity").is_some() && csv.index("epoch").is_some() {
            let records = read_metrics(&file)?;
            metrics.push((label, file, records));
        } else if csv.index("distance").is_some() && csv.index("grad_norm").is_some() {
            grads.push((label, file, csv));
        } else if csv.index("accuracy").is_some() && csv.index("model").is_some() {
            agree.push((label, file, csv));
        } else {
            bail!(
                "{}: not a file firth knows how to plot (header {:?}); expected a training metrics.csv, a distance,grad_norm CSV or agreement.csv",
                file.display(),
                csv.header.join(",")
            );
        }
    }
    let kinds = [!metrics.is_empty(), !grads.is_empty(), !agree.is_empty()]
        .iter()
        .filter(|&&k| k)
        .count();
    let default_stem = |first: &Path, name: &str| -> PathBuf {
        match &a.out {
            Some(o) if kinds > 1 => o.with_file_name(format!("{}-{name}", file_label(o))),
            Some(o) => o.clone(),
            None => first.with_file_name(name),
        }
    };
    let xy = |csv: &Csv, x: &str, y: &str| -> Vec<(f64, f64)> {
        let (Some(xs), Some(ys)) = (csv.column(x), csv.column(y)) else {
            return Vec::new();
        };
        xs.into_iter()
            .zip(ys)
            .filter_map(|(x, y)| Some((x?, y?)))
            .collect()
    };
    if !metrics.is_empty() {
        let mut series = Vec::new();
        for (label, _, records) in &metrics {
            let train = |r: &EpochRecord| r.train_perplexity;
            let valid = |r: &EpochRecord| r.valid_perplexity;
            let columns: [(&dyn Fn(&EpochRecord) -> Option<f64>, &str); 2] =
                [(&train, "train"), (&valid, "valid")];
            for (col, name) in columns {
                series.push(Series {
                    name: if metrics.len() == 1 {
                        name.into()
                    } else {
                        format!("{label} {name}")
                    },
                    points: records
                        .iter()
                        .filter_map(|r| Some((r.epoch as f64, col(r)?)))
                        .collect(),
                });
            }
        }
        let title = if metrics.len() == 1 {
            format!("Perplexity per epoch ({})", metrics[0].0)
        } else {
            "Perplexity per epoch".to_string()
        };
        let chart = LineChart {
            title: &title,
            x_label: "epoch",
            y_label: "perplexity",
            log_y: true,
            y_range: None,
        };
        written.extend(both(&default_stem(&metrics[0].1, "curves"), |p| {
            line_chart_with(p, &chart, &series)
        })?);
    }
    if !grads.is_empty() {
        let series: Vec<Series> = grads
            .iter()
            .map(|(label, _, csv)| Series {
                name: label.clone(),
                points: xy(csv, "distance", "grad_norm"),
            })
            .collect();
        let chart = LineChart {
            title: "Gradient flow through time (top layer)",
            x_label: "distance t - k (steps)",
            y_label: "mean ||dJ(t)/dh(k)||",
            log_y: true,
            y_range: None,
        };
        written.extend(both(&default_stem(&grads[0].1, "gradients"), |p| {
            line_chart_with(p, &chart, &series)
        })?);
    }
    for (label, file, csv) in &agree {
        let (Some(si), Some(mi)) = (csv.index("source"), csv.index("model")) else {
            bail!(
                "{}: agreement CSV without source/model columns",
                file.display()
            );
        };
        let mut sources: Vec<String> = csv.rows.iter().map(|r| r[si].clone()).collect();
        sources.dedup();
        for source in sources {
            let mut models: Vec<String> = csv
                .rows
                .iter()
                .filter(|r| r[si] == source)
                .map(|r| r[mi].clone())
                .collect();
            models.dedup();
            let series: Vec<Series> = models
                .iter()
                .map(|m| Series {
                    name: m.clone(),
                    points: csv
                        .rows
                        .iter()
                        .filter(|r| r[si] == source && &r[mi] == m)
                        .filter_map(|r| {
                            Some((
                                r[csv.index("distance")?].parse().ok()?,
                                r[csv.index("accuracy")?].parse().ok()?,
                            ))
                        })
                        .collect(),
                })
                .collect();
            let title = format!("Subject-verb agreement ({source})");
            let chart = agreement_chart(&title);
            let stem = match &a.out {
                Some(o) => o.with_file_name(format!("{}-{source}", file_label(o))),
                None => file.with_file_name(format!("{label}-{source}")),
            };
            written.extend(both(&stem, |p| line_chart_with(p, &chart, &series))?);
        }
    }
    for p in &written {
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::tests::assert_real_png;

    #[test]
    fn reading_names_the_faster_vanishing_model() {
        let f = |r: f64| GradientFlow {
            grad_norm: (0..=50).map(|d| r.powi(d)).collect(),
            cell_grad_norm: None,
            positions: 10,
            mean_loss: 1.0,
            saturated: 0.0,
        };
        let (rnn, lstm) = (f(0.5), f(0.98));
        let s = reading(&[("rnn", Arch::Rnn, &rnn), ("lstm", Arch::Lstm, &lstm)], 50);
        assert!(s.contains("15.1 orders of magnitude"), "{s}");
        assert!(s.contains("in rnn than in lstm"), "{s}");
        assert!(s.contains("distance 4"), "{s}");
    }

    #[test]
    fn plot_reads_metrics_gradient_and_agreement_csvs() {
        let dir = std::env::temp_dir().join(format!("firth-insight-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("metrics.csv"),
            "epoch,lr,train_loss,train_perplexity,valid_loss,valid_perplexity,tokens_per_second,seconds,clipped_fraction\n\
             1,1,5.5,250,5.2,180,1000,10,0.1\n2,1,4.9,134,5.0,143,1000,10,0.5\n3,0.5,4.6,100,4.9,131,1000,10,1.0\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("gradients-rnn.csv"),
            "distance,grad_norm\n0,1e-1\n1,1e-2\n2,1e-3\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("agreement.csv"),
            "source,distance,model,correct,total,accuracy\ntemplates,0,lstm,9,10,0.9\ntemplates,3,lstm,7,10,0.7\n",
        )
        .unwrap();
        assert_eq!(
            clipped_share(&dir),
            Some(((0.1 + 0.5 + 1.0) / 3.0, 0.1, 1.0))
        );
        plot(PlotArgs {
            paths: vec![
                dir.clone(),
                dir.join("gradients-rnn.csv"),
                dir.join("agreement.csv"),
            ],
            vectors: None,
            words: vec![],
            out: None,
        })
        .unwrap();
        for f in ["curves.png", "gradients.png", "agreement-templates.png"] {
            assert_real_png(&dir.join(f));
        }
        assert!(dir.join("curves.svg").exists());
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, "a,b\n1,2\n").unwrap();
        let e = plot(PlotArgs {
            paths: vec![bad],
            vectors: None,
            words: vec![],
            out: None,
        });
        assert!(format!("{:#}", e.unwrap_err()).contains("not a file firth knows how to plot"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
