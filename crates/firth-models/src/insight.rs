//! The experiments behind `firth lm gradients` and `firth lm agreement`, and the reading of
//! the CSVs they and training write (`firth plot`), as library calls: which models are
//! measured, on what, what the numbers say. Drawing the charts is the caller's business, so
//! that the measurements do not depend on a plotting library.

use crate::agreement::{
    from_conllu, known_items, lm_right, ngram_right, score_by_distance, templates, AgreementItem,
    DistanceScore,
};
use crate::gradients::{GradientFlow, GradientProbe};
use crate::lm::{Arch, LanguageModel, LmConfig};
use anyhow::{bail, Context, Result};
use firth_nn::checkpoint::write_atomic;
use firth_nn::Rng;
use firth_text::{file_label, Level, Vocab};
use std::path::{Path, PathBuf};

/// The lower-case name an architecture has on the command line and in saved configs, used in
/// labels so a chart legend reads like the flags that made the model.
pub fn arch_name(a: Arch) -> &'static str {
    match a {
        Arch::Window => "window",
        Arch::Rnn => "rnn",
        Arch::Lstm => "lstm",
        Arch::Gru => "gru",
    }
}

/// How often a run clipped its gradient norm, from the `clipped_fraction` column of its
/// metrics.csv. Exploding gradients show as clipping, so this sits beside the gradient-flow
/// measurement of the same model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClippedShare {
    /// Mean over all epochs.
    pub all: f64,
    pub first_epoch: f64,
    pub last_epoch: f64,
}

/// The clipping record of the run in `dir`; `None` when it has no readable metrics.csv or no
/// epochs yet (a measurement of a model alone is still worth making).
pub fn clipped_share(dir: &Path) -> Option<ClippedShare> {
    let records = crate::trainer::read_metrics(&dir.join("metrics.csv")).ok()?;
    let v: Vec<f64> = records.iter().map(|r| r.clipped_fraction).collect();
    let (&first_epoch, &last_epoch) = (v.first()?, v.last()?);
    Some(ClippedShare {
        all: v.iter().sum::<f64>() / v.len() as f64,
        first_epoch,
        last_epoch,
    })
}

/// First distance at which the mean norm is below a tenth of its value at distance 0: one
/// number for "how far back the signal reaches" that, unlike a fitted decay rate, means the
/// same for curves that are not exponential.
pub fn tenfold_distance(g: &[f64]) -> Option<usize> {
    let g0 = *g.first()?;
    g.iter().position(|&v| v < g0 / 10.0)
}

/// A label as a file name: runs of anything but letters, digits, '-' and '.' become one '-'.
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

/// What `firth lm gradients` measures.
#[derive(Clone, Debug)]
pub struct GradientOptions {
    /// Trained model directories (or .safetensors files).
    pub models: Vec<PathBuf>,
    /// Freshly initialised models of these recurrent kinds.
    pub archs: Vec<Arch>,
    /// Size, depth, weight range and seed of the initialised models.
    pub hidden: usize,
    pub layers: usize,
    pub init_range: f64,
    pub seed: u64,
    /// Text whose positions are measured (initialised models take their vocabulary from it).
    pub train: PathBuf,
    /// Where the per-model CSVs go.
    pub out: PathBuf,
    pub max_distance: usize,
    pub warmup: usize,
    pub positions: usize,
    pub batch: usize,
}

/// Progress of [`measure_gradients`].
pub enum GradientEvent<'a> {
    /// Measuring the model called `label` starts; `positions` positions are to be measured.
    Start { label: &'a str, positions: usize },
    /// Positions measured so far.
    Progress(usize),
    /// The model is measured.
    Finished,
}

/// One measured curve. An LSTM gives two, its hidden state's and its cell state's.
#[derive(Clone, Debug)]
pub struct Measured {
    pub label: String,
    pub arch: Arch,
    /// Where the model came from: its path, or how it was initialised.
    pub source: String,
    pub flow: GradientFlow,
    pub clipped: Option<ClippedShare>,
    /// The `distance,grad_norm` CSV written for this curve.
    pub csv: PathBuf,
}

/// Measures gradient flow through time for every model asked for, on the same text, and
/// writes one `gradients-<label>.csv` per curve into `o.out`.
pub fn measure_gradients(
    o: &GradientOptions,
    on: &mut dyn FnMut(GradientEvent<'_>),
) -> Result<Vec<Measured>> {
    if o.models.is_empty() && o.archs.is_empty() {
        bail!("give model directories, or --arch rnn,lstm,gru for initialised models");
    }
    let text = firth_text::read_text(&o.train)?;
    std::fs::create_dir_all(&o.out)
        .with_context(|| format!("cannot create {}", o.out.display()))?;
    let mut results: Vec<Measured> = Vec::new();
    let mut run = |label: String,
                   source: String,
                   model: &LanguageModel<f32>,
                   vocab: &Vocab,
                   clipped: Option<ClippedShare>|
     -> Result<()> {
        let ids = vocab
            .encode(&text, model.config.level)
            .map_err(|e| anyhow::anyhow!("{}: {e}", o.train.display()))?;
        let mut probe = GradientProbe::<f64>::new(model)
            .with_context(|| format!("{source}: cannot measure gradients"))?;
        on(GradientEvent::Start {
            label: &label,
            positions: o.positions,
        });
        let flow = probe.measure(
            &ids,
            o.max_distance,
            o.warmup,
            o.positions,
            o.batch,
            |d, _| on(GradientEvent::Progress(d)),
        )?;
        on(GradientEvent::Finished);
        // An LSTM's cell state is its memory; its gradient is measured and drawn as a curve of
        // its own, beside the hidden state's.
        let cell = flow.cell().map(|f| (format!("{label} cell c"), f));
        for (label, flow) in std::iter::once((label, flow)).chain(cell) {
            let csv = o.out.join(format!("gradients-{}.csv", slug(&label)));
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
    for dir in &o.models {
        let (model, vocab) = LanguageModel::load(dir)?;
        let label = format!("{} ({})", file_label(dir), arch_name(model.config.arch));
        let clipped = if dir.is_dir() {
            clipped_share(dir)
        } else {
            None
        };
        run(label, dir.display().to_string(), &model, &vocab, clipped)?;
    }
    if !o.archs.is_empty() {
        let vocab = Vocab::build(&text, Level::Word);
        for &arch in &o.archs {
            let config = LmConfig {
                layers: o.layers,
                init_range: o.init_range,
                context: 0,
                ..LmConfig::new(arch, Level::Word, vocab.len(), o.hidden)
            };
            let model =
                LanguageModel::new(config, &mut Rng::new(o.seed)).map_err(anyhow::Error::msg)?;
            let label = format!("{} init", arch_name(arch));
            let source = format!(
                "initialised {}x{} {}, weights uniform in ±{}, seed {}",
                o.layers,
                o.hidden,
                arch_name(arch),
                o.init_range,
                o.seed
            );
            run(label, source, &model, &vocab, None)?;
        }
    }
    Ok(results)
}

/// One paragraph saying what the gradient curves show, for readers who do not want to decode a
/// log-scale chart: how much each model loses over `d` steps, and which loses most.
pub fn reading(models: &[(&str, Arch, &GradientFlow)], d: usize) -> String {
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

/// What `firth lm agreement` tests.
#[derive(Clone, Debug)]
pub struct AgreementOptions {
    /// Word-level model directories (or .safetensors files).
    pub models: Vec<PathBuf>,
    /// n-gram models (ARPA or firth binary).
    pub ngram: Vec<PathBuf>,
    /// CoNLL-U files to draw test sentences from.
    pub conllu: Vec<PathBuf>,
    /// Use the built-in template items, this many per arrangement of the template's parts.
    pub templates: bool,
    pub per_pattern: usize,
    pub seed: u64,
}

/// Every model's scores on one source of items.
#[derive(Clone, Debug)]
pub struct SourceScores {
    /// `templates` or `corpus`.
    pub source: String,
    /// Items every model knows the words of, and those left out for a word some model lacks.
    pub items: usize,
    pub dropped: usize,
    /// (model label, accuracy per distance), in the order the models were given, language
    /// models first.
    pub models: Vec<(String, Vec<DistanceScore>)>,
}

/// The result of the agreement experiment.
#[derive(Clone, Debug)]
pub struct AgreementReport {
    pub sources: Vec<SourceScores>,
    /// The smallest distance at which the subject is outside every n-gram model's context
    /// (`None` without n-gram models): beyond it an n-gram model can only guess.
    pub beyond: Option<usize>,
}

impl AgreementReport {
    /// `agreement.csv`: one row per source, distance and model, the format `firth plot` reads
    /// back. Commas in labels become spaces, since the reader splits on every comma.
    pub fn csv(&self) -> String {
        let mut csv = String::from("source,distance,model,correct,total,accuracy\n");
        for s in &self.sources {
            for (label, scores) in &s.models {
                for d in scores {
                    csv.push_str(&format!(
                        "{},{},{},{},{},{:.4}\n",
                        s.source,
                        d.distance,
                        label.replace(',', " "),
                        d.correct,
                        d.total,
                        d.accuracy()
                    ));
                }
            }
        }
        csv
    }
}

/// (correct, total) over the distances from `from` on: per-distance counts are small at long
/// distances, and the pooled figure is the one worth quoting.
pub fn pooled(scores: &[DistanceScore], from: usize) -> (usize, usize) {
    scores
        .iter()
        .filter(|s| s.distance >= from)
        .fold((0, 0), |(c, t), s| (c + s.correct, t + s.total))
}

/// Scores every model on the template items and/or the CoNLL-U items, each on the same items:
/// those whose subject and verb forms every model knows, so the accuracies compare.
pub fn run_agreement(o: &AgreementOptions) -> Result<AgreementReport> {
    if o.models.is_empty() && o.ngram.is_empty() {
        bail!("give model directories and/or --ngram models to test");
    }
    let mut sources: Vec<(String, Vec<AgreementItem>)> = Vec::new();
    if o.templates {
        sources.push(("templates".into(), templates(o.per_pattern, o.seed)));
    }
    if !o.conllu.is_empty() {
        let mut items = Vec::new();
        for p in &o.conllu {
            let text = firth_text::read_text(p)?;
            items.extend(from_conllu(&text, &p.display().to_string())?);
        }
        sources.push(("corpus".into(), items));
    }
    if sources.is_empty() {
        bail!("no test items: give --conllu files or leave out --no-templates");
    }
    let mut lms = Vec::new();
    for p in &o.models {
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
    for p in &o.ngram {
        let m = firth_ngram::model::Model::load(p)?;
        ngrams.push((format!("{} ({}-gram)", file_label(p), m.order()), m));
    }
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
    let mut report = Vec::new();
    for (source, before, items) in sources {
        let mut models: Vec<(String, Vec<DistanceScore>)> = Vec::new();
        for (label, m, v) in lms.iter_mut() {
            let right = lm_right(m, v, &items, 64)?;
            models.push((label.clone(), score_by_distance(&items, &right)));
        }
        for (label, m) in &ngrams {
            let right = ngram_right(m, &items);
            models.push((label.clone(), score_by_distance(&items, &right)));
        }
        report.push(SourceScores {
            source,
            items: items.len(),
            dropped: before - items.len(),
            models,
        });
    }
    Ok(AgreementReport {
        sources: report,
        beyond,
    })
}

/// A named line of (x, y) points.
pub type Curve = (String, Vec<(f64, f64)>);

/// The kinds of CSV firth writes that `firth plot` draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsvKind {
    /// A training run's metrics.csv.
    Metrics,
    /// `distance,grad_norm` from `firth lm gradients`.
    Gradients,
    /// agreement.csv from `firth lm agreement`.
    Agreement,
}

/// A tiny reader for the CSVs firth writes: a header and comma-separated numbers or words.
/// They never quote fields, so this needs no CSV library and gives line-numbered errors.
#[derive(Clone, Debug, PartialEq)]
pub struct Csv {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Csv {
    pub fn parse(text: &str) -> Result<Csv> {
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

    pub fn index(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// The column's values as numbers; `None` for a cell that is not one (an empty cell of a
    /// metric the model does not measure).
    pub fn column(&self, name: &str) -> Option<Vec<Option<f64>>> {
        let i = self.index(name)?;
        Some(self.rows.iter().map(|r| r[i].parse().ok()).collect())
    }

    /// Which file this is, told by its columns (the names are what matter; files from older
    /// versions with extra columns still read).
    pub fn kind(&self) -> Option<CsvKind> {
        let has = |c: &str| self.index(c).is_some();
        if has("valid_perplexity") && has("epoch") {
            Some(CsvKind::Metrics)
        } else if has("distance") && has("grad_norm") {
            Some(CsvKind::Gradients)
        } else if has("accuracy") && has("model") {
            Some(CsvKind::Agreement)
        } else {
            None
        }
    }

    /// The (x, y) points of rows where both columns hold numbers.
    pub fn xy(&self, x: &str, y: &str) -> Vec<(f64, f64)> {
        let (Some(xs), Some(ys)) = (self.column(x), self.column(y)) else {
            return Vec::new();
        };
        xs.into_iter()
            .zip(ys)
            .filter_map(|(x, y)| Some((x?, y?)))
            .collect()
    }

    /// An agreement CSV's curves: per source (in file order), per model, (distance, accuracy).
    pub fn agreement_curves(&self) -> Result<Vec<(String, Vec<Curve>)>> {
        let (Some(si), Some(mi)) = (self.index("source"), self.index("model")) else {
            bail!("agreement CSV without source/model columns");
        };
        let mut sources: Vec<String> = self.rows.iter().map(|r| r[si].clone()).collect();
        sources.dedup();
        let mut out = Vec::new();
        for source in sources {
            let mut models: Vec<String> = self
                .rows
                .iter()
                .filter(|r| r[si] == source)
                .map(|r| r[mi].clone())
                .collect();
            models.dedup();
            let curves = models
                .into_iter()
                .map(|m| {
                    let points = self
                        .rows
                        .iter()
                        .filter(|r| r[si] == source && r[mi] == m)
                        .filter_map(|r| {
                            Some((
                                r[self.index("distance")?].parse().ok()?,
                                r[self.index("accuracy")?].parse().ok()?,
                            ))
                        })
                        .collect();
                    (m, points)
                })
                .collect();
            out.push((source, curves));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(rate: f64) -> GradientFlow {
        GradientFlow {
            grad_norm: (0..=50).map(|d| rate.powi(d)).collect(),
            cell_grad_norm: None,
            positions: 10,
            mean_loss: 1.0,
            saturated: 0.0,
        }
    }

    #[test]
    fn reading_names_the_faster_vanishing_model() {
        let (rnn, lstm) = (flow(0.5), flow(0.98));
        let s = reading(&[("rnn", Arch::Rnn, &rnn), ("lstm", Arch::Lstm, &lstm)], 50);
        // 50 log10(2) = 15.05 orders for the RNN, 50 log10(1/0.98) = 0.44 for the LSTM.
        assert!(s.contains("15.1 orders of magnitude"), "{s}");
        assert!(s.contains("0.4 orders of magnitude"), "{s}");
        assert!(
            s.contains("about 10^14.6 times less gradient in rnn than in lstm"),
            "{s}"
        );
        assert!(s.contains("the plain RNN's training signal"), "{s}");
        // 0.5^4 = 0.0625 is the first below 0.1; 0.98^114 would be, beyond 50 steps.
        assert!(s.contains("distance 4"), "{s}");
        assert!(
            s.contains("stays within a factor 10 of its start over all 50 steps"),
            "{s}"
        );
        assert!(s.starts_with(
            "How far back does the loss of one prediction reach? Averaged over 10 positions"
        ));
        assert!(!s.contains("exploding"));
        let growing = flow(1.1);
        assert!(reading(&[("g", Arch::Gru, &growing)], 50).contains("exploding"));
    }

    #[test]
    fn tenfold_distance_is_the_first_step_below_a_tenth() {
        assert_eq!(
            tenfold_distance(&[1.0, 0.5, 0.11, 0.1, 0.09, 0.01]),
            Some(4)
        );
        assert_eq!(tenfold_distance(&[2.0, 1.0, 0.5]), None);
        assert_eq!(tenfold_distance(&[]), None);
    }

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(slug("ptb (lstm) cell c"), "ptb-lstm-cell-c");
        assert_eq!(slug("lstm init"), "lstm-init");
        assert_eq!(slug("a.b--c"), "a.b-c");
    }

    #[test]
    fn clipped_share_reads_the_run_metrics() {
        let dir = std::env::temp_dir().join(format!("firth-clipped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(clipped_share(&dir), None);
        std::fs::write(
            dir.join("metrics.csv"),
            "epoch,lr,train_loss,train_perplexity,valid_loss,valid_perplexity,tokens_per_second,seconds,clipped_fraction\n\
             1,1,5.5,250,5.2,180,1000,10,0.1\n2,1,4.9,134,5.0,143,1000,10,0.5\n3,0.5,4.6,100,4.9,131,1000,10,1.0\n",
        )
        .unwrap();
        assert_eq!(
            clipped_share(&dir),
            Some(ClippedShare {
                all: (0.1 + 0.5 + 1.0) / 3.0,
                first_epoch: 0.1,
                last_epoch: 1.0
            })
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    fn score(distance: usize, correct: usize, total: usize) -> DistanceScore {
        DistanceScore {
            distance,
            correct,
            total,
        }
    }

    #[test]
    fn agreement_csv_round_trips_through_the_reader() {
        let report = AgreementReport {
            sources: vec![SourceScores {
                source: "templates".into(),
                items: 30,
                dropped: 2,
                models: vec![
                    ("ptb (lstm)".into(), vec![score(0, 9, 10), score(3, 14, 20)]),
                    (
                        "kn, 5 (5-gram)".into(),
                        vec![score(0, 8, 10), score(3, 10, 20)],
                    ),
                ],
            }],
            beyond: Some(4),
        };
        let text = report.csv();
        assert_eq!(
            text,
            "source,distance,model,correct,total,accuracy\n\
             templates,0,ptb (lstm),9,10,0.9000\n\
             templates,3,ptb (lstm),14,20,0.7000\n\
             templates,0,kn  5 (5-gram),8,10,0.8000\n\
             templates,3,kn  5 (5-gram),10,20,0.5000\n"
        );
        let csv = Csv::parse(&text).unwrap();
        assert_eq!(csv.kind(), Some(CsvKind::Agreement));
        let curves = csv.agreement_curves().unwrap();
        assert_eq!(curves.len(), 1);
        assert_eq!(curves[0].0, "templates");
        assert_eq!(
            curves[0].1,
            vec![
                ("ptb (lstm)".to_string(), vec![(0.0, 0.9), (3.0, 0.7)]),
                ("kn  5 (5-gram)".to_string(), vec![(0.0, 0.8), (3.0, 0.5)]),
            ]
        );
    }

    #[test]
    fn pooled_sums_from_a_distance_on() {
        let s = [score(0, 9, 10), score(3, 14, 20), score(7, 1, 4)];
        assert_eq!(pooled(&s, 0), (24, 34));
        assert_eq!(pooled(&s, 3), (15, 24));
        assert_eq!(pooled(&s, 8), (0, 0));
    }

    #[test]
    fn csv_reader_tells_the_kinds_and_refuses_ragged_rows() {
        let g = Csv::parse("distance,grad_norm\n0,1e-1\n1,x\n\n2,1e-3\n").unwrap();
        assert_eq!(g.kind(), Some(CsvKind::Gradients));
        assert_eq!(
            g.xy("distance", "grad_norm"),
            vec![(0.0, 0.1), (2.0, 0.001)]
        );
        assert_eq!(g.column("grad_norm").unwrap()[1], None);
        assert!(g.xy("distance", "nope").is_empty());
        let m = Csv::parse("epoch,lr,valid_perplexity\n1,1,180\n").unwrap();
        assert_eq!(m.kind(), Some(CsvKind::Metrics));
        assert_eq!(Csv::parse("a,b\n1,2\n").unwrap().kind(), None);
        let e = Csv::parse("a,b\n1,2\n3\n").unwrap_err();
        assert_eq!(e.to_string(), "line 3: 1 fields, but the header has 2");
        assert_eq!(
            Csv::parse("\n\n").unwrap_err().to_string(),
            "the file is empty"
        );
    }
}
