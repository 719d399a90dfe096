//! Progress bars and run summaries on the terminal (stderr, so `--json` output stays clean).

use firth_models::trainer::{EpochRecord, Observer, StepReport};
use indicatif::{ProgressBar, ProgressStyle};

/// Shows one bar per epoch with tokens/s, loss, perplexity, learning rate and ETA.
pub struct Bars {
    bar: Option<ProgressBar>,
    quiet: bool,
    unit: &'static str,
    /// Language models: show perplexity on the bar and in the epoch lines; taggers and
    /// classifiers show accuracy (and F1) instead.
    language_model: bool,
}

impl Bars {
    /// Bars for language-model training (`chars`: the tokens are characters).
    pub fn new(quiet: bool, chars: bool) -> Bars {
        Bars {
            bar: None,
            quiet,
            unit: if chars { "chars" } else { "tok" },
            language_model: true,
        }
    }

    /// Bars for taggers and classifiers: loss, learning rate, gradient norm and `unit`s/s.
    pub fn for_task(quiet: bool, unit: &'static str) -> Bars {
        let mut b = Bars::new(quiet, false);
        b.language_model = false;
        b.unit = unit;
        b
    }
}

impl Observer for Bars {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize, done: usize) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{epochs}"));
        bar.set_position(done as u64);
        self.bar = Some(bar);
    }

    fn step(&mut self, r: &StepReport) {
        if let Some(bar) = &self.bar {
            bar.set_position(r.step as u64);
            if r.step % 10 == 0 || r.step == r.steps {
                let ppl = if self.language_model {
                    format!(" ppl {:.1}", r.loss.exp())
                } else {
                    String::new()
                };
                bar.set_message(format!(
                    "loss {:.3}{ppl} lr {:.3e} |g| {:.2} {:.0} {}/s",
                    r.loss, r.lr, r.grad_norm, r.items_per_second, self.unit
                ));
            }
        }
    }

    fn epoch_end(&mut self, r: &EpochRecord, best: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.quiet {
            return;
        }
        let opt =
            |name: &str, v: Option<f64>| v.map_or(String::new(), |v| format!("  {name} {v:.2}"));
        if self.language_model {
            eprintln!(
                "epoch {:>3}  lr {:.4}  train ppl {:>8.2}  valid ppl {:>8.2} (loss {:.4}){}  {:>7.0} {}/s  {:.1}s  clipped {:.0}%",
                r.epoch,
                r.lr,
                r.train_perplexity.unwrap_or(f64::NAN),
                r.valid_perplexity.unwrap_or(f64::NAN),
                r.valid_loss.unwrap_or(f64::NAN),
                r.valid_bleu.map_or(String::new(), |b| format!(
                    "  valid BLEU {b:.2}{}",
                    if best { " (best)" } else { "" }
                )),
                r.items_per_second,
                self.unit,
                r.seconds,
                r.clipped_fraction * 100.0
            );
        } else {
            eprintln!(
                "epoch {:>3}  lr {:.2e}  train loss {:.4}{}{}{}{}{}  {:.0} {}/s{}  {:.1}s",
                r.epoch,
                r.lr,
                r.train_loss,
                opt("train acc", r.train_accuracy),
                opt("dev loss", r.valid_loss),
                opt("dev acc", r.valid_accuracy),
                opt("dev F1", r.valid_f1),
                if best { " (best)" } else { "" },
                r.items_per_second,
                self.unit,
                r.predict_items_per_second
                    .map_or(String::new(), |p| format!(
                        ", {p:.0} {}/s predict",
                        self.unit
                    )),
                r.seconds,
            );
        }
    }

    fn note(&mut self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(msg),
            None if !self.quiet => eprintln!("{msg}"),
            None => {}
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
