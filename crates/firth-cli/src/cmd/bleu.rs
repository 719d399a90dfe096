//! `firth bleu`: corpus BLEU and chrF of a translation against one or more references, computed
//! as sacrebleu 2.x computes them (see `firth_eval::bleu`).

use anyhow::{bail, Result};
use clap::Args as ClapArgs;
use firth_eval::bleu::{
    corpus_bleu_with, corpus_chrf_with, read_lines, split_lines, BleuOptions, BleuTokenize,
    ChrfOptions, Smoothing,
};
use std::io::Read;
use std::path::PathBuf;

#[derive(ClapArgs)]
pub struct Args {
    /// Hypotheses: the system's (detokenized) output, one segment a line; `-` reads stdin.
    hyp: PathBuf,
    /// References, line-aligned with HYP; several files give multi-reference scores.
    #[arg(required = true)]
    refs: Vec<PathBuf>,
    /// BLEU tokenizer: mteval-v13a (sacrebleu's default) or whitespace only.
    #[arg(long, value_enum, default_value_t = BleuTokenize::Thirteen13a)]
    tokenize: BleuTokenize,
    /// Case-insensitive BLEU (sacrebleu's `-lc`; chrF stays case-sensitive, as there).
    #[arg(long)]
    lowercase: bool,
    /// Case-insensitive chrF (sacrebleu's `--chrf-lowercase`).
    #[arg(long)]
    chrf_lowercase: bool,
    /// Word n-gram order of chrF: 0 is chrF (sacrebleu's default), 2 is chrF++.
    #[arg(long, default_value_t = 0)]
    chrf_word_order: usize,
    /// BLEU without smoothing: an n-gram order without a match makes the score 0 (sacrebleu's
    /// `--smooth-method none`; the default is its `exp`).
    #[arg(long)]
    no_smoothing: bool,
    /// Print one JSON object instead of the text lines.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let hyps = if a.hyp.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        split_lines(bytes, "<stdin>")?
    } else {
        read_lines(&a.hyp)?
    };
    let mut refs = Vec::with_capacity(a.refs.len());
    for r in &a.refs {
        let lines = read_lines(r)?;
        if lines.len() != hyps.len() {
            bail!(
                "{} has {} lines but {} has {}: hypotheses and references must be line-aligned",
                a.hyp.display(),
                hyps.len(),
                r.display(),
                lines.len()
            );
        }
        refs.push(lines);
    }
    let streams: Vec<&[String]> = refs.iter().map(|r| r.as_slice()).collect();
    let opts = BleuOptions {
        tokenize: a.tokenize,
        lowercase: a.lowercase,
        smoothing: if a.no_smoothing {
            Smoothing::None
        } else {
            Smoothing::Exp
        },
    };
    let bleu = corpus_bleu_with(&hyps, &streams, &opts)?;
    let chrf_opts = ChrfOptions {
        word_order: a.chrf_word_order,
        lowercase: a.chrf_lowercase,
        ..Default::default()
    };
    let chrf = corpus_chrf_with(&hyps, &streams, &chrf_opts)?;
    let signature = format!(
        "nrefs:{}|case:{}|eff:no|tok:{}|smooth:{}",
        refs.len(),
        if a.lowercase { "lc" } else { "mixed" },
        a.tokenize.name(),
        if a.no_smoothing { "none" } else { "exp" }
    );
    if a.json {
        let j = serde_json::json!({
            "bleu": bleu.score,
            "chrf": chrf,
            "chrf_name": chrf_opts.name(),
            "precisions": bleu.precisions,
            "brevity_penalty": bleu.brevity_penalty,
            "ratio": bleu.ratio,
            "hyp_len": bleu.hyp_len,
            "ref_len": bleu.ref_len,
            "counts": bleu.counts,
            "totals": bleu.totals,
            "segments": hyps.len(),
            "signature": signature,
        });
        println!("{j}");
    } else {
        println!("{bleu}");
        println!("{} = {chrf:.2}", chrf_opts.name());
        eprintln!("BLEU signature: {signature}");
    }
    Ok(())
}
