//! Seeing inside models: `firth lm gradients` (gradient flow through time), `firth lm
//! agreement` (long-range subject-verb agreement per distance) and `firth plot` (training
//! curves, gradient and agreement CSVs, embedding maps), all drawn as SVG and PNG. The
//! measurements are `firth_models::insight`'s; this file holds the flags, the bars, the
//! tables and the charts.

use super::set_threads;
use crate::plot::{both, line_chart_with, scatter_labels, LineChart, Series};
use anyhow::{bail, Context, Result};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args as ClapArgs;
use firth_models::insight::{
    arch_name, measure_gradients, pooled, reading, run_agreement, tenfold_distance,
    AgreementOptions, Csv, CsvKind, GradientEvent, GradientOptions,
};
use firth_models::lm::Arch;
use firth_models::trainer::{read_metrics, EpochRecord};
use firth_nn::checkpoint::write_atomic;
use firth_text::file_label;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::path::{Path, PathBuf};

/// `--arch` takes the recurrent architectures only: the window model has no state to measure
/// gradients through.
fn recurrent_arch() -> impl TypedValueParser<Value = Arch> {
    PossibleValuesParser::new(["rnn", "lstm", "gru"])
        .map(|s| Arch::parse(&s).expect("every listed value is an architecture"))
}

/// `firth lm gradients`.
#[derive(ClapArgs, Debug)]
pub struct GradientsArgs {
    /// Trained model directories (or .safetensors files), each measured and drawn side by side.
    models: Vec<PathBuf>,
    /// Also (or instead) measure freshly initialised models of these kinds, e.g. --arch rnn,lstm,gru.
    #[arg(long, value_delimiter = ',', value_parser = recurrent_arch())]
    arch: Vec<Arch>,
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

pub fn gradients(a: GradientsArgs) -> Result<()> {
    set_threads(a.threads)?;
    let options = GradientOptions {
        models: a.models.clone(),
        archs: a.arch.clone(),
        hidden: a.hidden,
        layers: a.layers,
        init_range: a.init_range,
        seed: a.seed,
        train: a.train.clone(),
        out: a.out.clone(),
        max_distance: a.max_distance,
        warmup: a.warmup,
        positions: a.positions,
        batch: a.batch,
    };
    let mut pb: Option<ProgressBar> = None;
    let results = measure_gradients(&options, &mut |ev| match ev {
        GradientEvent::Start { label, positions } => pb = bar(positions, a.quiet, label),
        GradientEvent::Progress(d) => {
            if let Some(b) = &pb {
                b.set_position(d as u64);
            }
        }
        GradientEvent::Finished => {
            if let Some(b) = pb.take() {
                b.finish_and_clear();
            }
        }
    })?;
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
                    "clipped_fraction": m.clipped.map(|c| c.all),
                    "clipped_fraction_first_epoch": m.clipped.map(|c| c.first_epoch),
                    "clipped_fraction_last_epoch": m.clipped.map(|c| c.last_epoch),
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
                    .map_or("-".into(), |c| format!("{:.1}%", 100.0 * c.all)),
            );
        }
        println!();
        println!("{reading}");
        for m in &results {
            if let Some(c) = m.clipped {
                println!(
                    "{}: gradient norm clipped in {:.1}% of training steps (first epoch {:.1}%, last {:.1}%).",
                    m.label,
                    100.0 * c.all,
                    100.0 * c.first_epoch,
                    100.0 * c.last_epoch
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

pub fn agreement(a: AgreementArgs) -> Result<()> {
    set_threads(a.threads)?;
    let r = run_agreement(&AgreementOptions {
        models: a.models.clone(),
        ngram: a.ngram.clone(),
        conllu: a.conllu.clone(),
        templates: !a.no_templates,
        per_pattern: a.per_pattern,
        seed: a.seed,
    })?;
    let mut report = Vec::new();
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut plots = Vec::new();
    for src in &r.sources {
        let (source, per_model) = (&src.source, &src.models);
        if !a.json {
            println!(
                "{source}: {} items ({} dropped for words a model does not know)",
                src.items, src.dropped
            );
            let w = per_model
                .iter()
                .map(|(l, _)| l.len())
                .max()
                .unwrap_or(0)
                .max(20);
            print!("{:>8} {:>6}", "distance", "items");
            for (label, _) in per_model {
                print!(" {:>w$}", label);
            }
            println!();
            if let Some((_, first)) = per_model.first() {
                for (i, s) in first.iter().enumerate() {
                    print!("{:>8} {:>6}", s.distance, s.total);
                    for (_, scores) in per_model {
                        let t = &scores[i];
                        print!(
                            " {:>w$}",
                            format!("{:.3} ({}/{})", t.accuracy(), t.correct, t.total)
                        );
                    }
                    println!();
                }
                let pooled_row = |name: String, from: usize| {
                    let (_, n) = pooled(first, from);
                    print!("{:>8} {:>6}", name, n);
                    for (_, scores) in per_model {
                        let (c, _) = pooled(scores, from);
                        print!(
                            " {:>w$}",
                            format!("{:.3} ({}/{})", c as f64 / n.max(1) as f64, c, n)
                        );
                    }
                };
                pooled_row("all".into(), 0);
                println!();
                if let Some(k) = r.beyond {
                    pooled_row(format!("d>={k}"), k);
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
            "items": src.items,
            "dropped": src.dropped,
            "models": per_model.iter().map(|(l, s)| json!({"model": l, "by_distance": s})).collect::<Vec<_>>(),
        }));
    }
    let csv_path = a.out.join("agreement.csv");
    write_atomic(&csv_path, r.csv().as_bytes())?;
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

pub fn plot(a: PlotArgs) -> Result<()> {
    let mut written = Vec::new();
    if let Some(vectors) = &a.vectors {
        if a.words.len() < 2 {
            bail!("give at least two words to place on the map with --words w1,w2,...");
        }
        let map = firth_vectors::pipeline::embedding_map(vectors, &a.words)?;
        let stem = a
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("embedding-map"));
        written.extend(both(&stem, |p| {
            scatter_labels(
                p,
                &map.title,
                "principal component 1",
                "principal component 2",
                &map.points,
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
        match csv.kind() {
            Some(CsvKind::Metrics) => {
                let records = read_metrics(&file)?;
                metrics.push((label, file, records));
            }
            Some(CsvKind::Gradients) => grads.push((label, file, csv)),
            Some(CsvKind::Agreement) => agree.push((label, file, csv)),
            None => bail!(
                "{}: not a file firth knows how to plot (header {:?}); expected a training metrics.csv, a distance,grad_norm CSV or agreement.csv",
                file.display(),
                csv.header.join(",")
            ),
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
    if !metrics.is_empty() {
        let mut series = Vec::new();
        for (label, _, records) in &metrics {
            type Column = (fn(&EpochRecord) -> Option<f64>, &'static str);
            let columns: [Column; 2] = [
                (|r| r.train_perplexity, "train"),
                (|r| r.valid_perplexity, "valid"),
            ];
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
                points: csv.xy("distance", "grad_norm"),
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
        let curves = csv
            .agreement_curves()
            .with_context(|| format!("{}", file.display()))?;
        for (source, models) in curves {
            let series: Vec<Series> = models
                .into_iter()
                .map(|(name, points)| Series { name, points })
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
