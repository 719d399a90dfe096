//! Corpus BLEU (Papineni et al. 2002, "BLEU: a Method for Automatic Evaluation of Machine
//! Translation") and chrF / chrF++ (Popović 2015, "chrF: character n-gram F-score for automatic
//! MT evaluation"; Popović 2017 for the word n-grams of chrF++), computed the way sacrebleu 2.x
//! computes them, so that a firth score can be quoted next to published sacrebleu scores.
//!
//! Why copy sacrebleu's arithmetic and not just the papers' formulas: BLEU is only comparable
//! across papers when tokenization, casing and smoothing are the same (Post 2018, "A Call for
//! Clarity in Reporting BLEU Scores"). The details that change numbers, all reproduced here:
//!
//! * **Segments.** Every segment is lowercased (when asked) and then stripped of trailing
//!   whitespace, where "whitespace" is Python's `str.isspace` (Unicode `White_Space` plus the
//!   ASCII separators U+001C..U+001F), and then tokenized.
//! * **Tokenizer `13a`** is mteval-v13a's: drop `<skipped>`, join `-\n` line breaks, undo the
//!   four HTML entities `&quot; &amp; &lt; &gt;`, then split off ASCII punctuation except
//!   `' , - .`; split `.` and `,` unless they sit between digits; split `-` after a digit.
//!   `none` splits the segment on whitespace only.
//! * **Counts.** Hypothesis n-grams (n = 1..4) are clipped by their largest count in any one
//!   reference of the segment; sufficient statistics are summed over the corpus before any
//!   division (corpus BLEU, not an average of sentence scores).
//! * **Reference length.** With several references, the one closest in length to the
//!   hypothesis, the shorter on a tie.
//! * **Brevity penalty** `exp(1 - r/c)` when the hypothesis corpus is shorter (`c < r`), 0 when
//!   it is empty.
//! * **Zero counts** (sacrebleu's defaults): if no n-gram of any order matches, BLEU is 0 and
//!   every precision is reported as 0. Otherwise the default `exp` smoothing (mteval's NIST
//!   smoothing, Chen & Cherry 2014 method 3) replaces the k-th zero precision by
//!   `100 / (2^k * total_n)`, so a corpus without a single 4-gram match does *not* score 0.
//!   [`Smoothing::None`] scores it 0 (sacrebleu `--smooth-method none`: the log of a zero
//!   precision is floored at -9999999999). An order with no hypothesis n-grams at all ends the
//!   loop, leaving that and the higher precisions at 0, so the score is 0 in both modes.
//!
//! chrF follows sacrebleu's `CHRF` defaults: character n-grams of orders 1..6 over the segment
//! with all whitespace removed, no word n-grams (2 for chrF++), beta = 2, and the precision and
//! recall averaged over the orders that have both hypothesis and reference n-grams
//! ("effective order", sacrebleu's default rather than the epsilon smoothing of chrF++.py).

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::hash::Hash;
use std::path::Path;

/// The n-gram order of BLEU (sacrebleu's `MAX_NGRAM_ORDER`).
pub const NGRAM_ORDER: usize = 4;

/// How segments are split into words before counting n-grams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum BleuTokenize {
    /// mteval-v13a's tokenizer, sacrebleu's default (`--tokenize 13a`).
    #[default]
    #[cfg_attr(feature = "clap", value(name = "13a"))]
    #[serde(rename = "13a")]
    Thirteen13a,
    /// Split on whitespace only: for text that is already tokenized the way it should be scored.
    #[cfg_attr(feature = "clap", value(name = "none"))]
    #[serde(rename = "none")]
    None,
}

impl BleuTokenize {
    /// The name sacrebleu uses in its signature (`tok:13a`).
    pub fn name(self) -> &'static str {
        match self {
            BleuTokenize::Thirteen13a => "13a",
            BleuTokenize::None => "none",
        }
    }

    /// The segment after lowercasing (optional), trailing-whitespace stripping and tokenizing,
    /// as sacrebleu's `BLEU._preprocess_segment`; words are separated by single spaces.
    pub fn preprocess(self, segment: &str, lowercase: bool) -> String {
        let lowered;
        let s = if lowercase {
            lowered = segment.to_lowercase();
            lowered.as_str()
        } else {
            segment
        };
        let s = s.trim_end_matches(py_space);
        match self {
            BleuTokenize::Thirteen13a => tokenize_13a(s),
            BleuTokenize::None => s.to_string(),
        }
    }
}

/// What to do with an n-gram order that has no match (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Smoothing {
    /// sacrebleu's default: the k-th zero precision becomes `100 / (2^k * total)`.
    #[default]
    Exp,
    /// No smoothing: any zero precision makes BLEU 0.
    None,
}

/// Everything that changes a BLEU score besides the text. The default is sacrebleu's default
/// (`13a`, mixed case, `exp` smoothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BleuOptions {
    pub tokenize: BleuTokenize,
    pub lowercase: bool,
    pub smoothing: Smoothing,
}

/// A corpus BLEU score with the statistics sacrebleu prints next to it. Percentages
/// (`score`, `precisions`) are on sacrebleu's 0-100 scale.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bleu {
    pub score: f64,
    /// Modified (clipped) n-gram precisions for n = 1..4, in percent.
    pub precisions: [f64; 4],
    pub brevity_penalty: f64,
    /// hyp_len / ref_len (0 when ref_len is 0).
    pub ratio: f64,
    /// Words in the tokenized hypotheses.
    pub hyp_len: usize,
    /// Words in the closest-length references.
    pub ref_len: usize,
    /// Clipped n-gram matches for n = 1..4.
    pub counts: [usize; 4],
    /// Hypothesis n-grams for n = 1..4.
    pub totals: [usize; 4],
}

impl std::fmt::Display for Bleu {
    /// sacrebleu's text line: `BLEU = 35.12 67.1/42.3/28.9/19.8 (BP = 1.000 ratio = 1.012
    /// hyp_len = 9 ref_len = 9)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.precisions;
        write!(
            f,
            "BLEU = {:.2} {:.1}/{:.1}/{:.1}/{:.1} (BP = {:.3} ratio = {:.3} hyp_len = {} ref_len = {})",
            self.score,
            p[0],
            p[1],
            p[2],
            p[3],
            self.brevity_penalty,
            self.ratio,
            self.hyp_len,
            self.ref_len
        )
    }
}

/// BLEU's sufficient statistics, summed over segments. Keeping them (rather than scores) is
/// what makes corpus BLEU a corpus statistic, and lets a caller add segments incrementally.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BleuStats {
    pub hyp_len: usize,
    pub ref_len: usize,
    pub counts: [usize; 4],
    pub totals: [usize; 4],
}

impl std::ops::AddAssign for BleuStats {
    fn add_assign(&mut self, o: BleuStats) {
        self.hyp_len += o.hyp_len;
        self.ref_len += o.ref_len;
        for n in 0..NGRAM_ORDER {
            self.counts[n] += o.counts[n];
            self.totals[n] += o.totals[n];
        }
    }
}

impl BleuStats {
    /// The statistics of one segment whose hypothesis and references are already preprocessed
    /// ([`BleuTokenize::preprocess`]). Clipping uses each n-gram's largest count in any one
    /// reference; the reference length is the one closest to the hypothesis, the shorter on a
    /// tie (sacrebleu's `_get_closest_ref_len`).
    pub fn segment<R: AsRef<str>>(hyp: &str, refs: &[R]) -> BleuStats {
        let mut ref_max: HashMap<&[&str], usize> = HashMap::new();
        let ref_tokens: Vec<Vec<&str>> = refs.iter().map(|r| py_split(r.as_ref())).collect();
        let mut ref_lens = Vec::with_capacity(refs.len());
        for toks in &ref_tokens {
            ref_lens.push(toks.len());
            for (g, c) in ngram_counts(toks, NGRAM_ORDER) {
                let e = ref_max.entry(g).or_insert(0);
                *e = (*e).max(c);
            }
        }
        let hyp_tokens = py_split(hyp);
        let hyp_len = hyp_tokens.len();
        let mut s = BleuStats {
            hyp_len,
            ref_len: closest_ref_len(hyp_len, &ref_lens),
            ..Default::default()
        };
        for (g, c) in ngram_counts(&hyp_tokens, NGRAM_ORDER) {
            let n = g.len() - 1;
            s.totals[n] += c;
            if let Some(&r) = ref_max.get(g) {
                s.counts[n] += c.min(r);
            }
        }
        s
    }

    /// The score of these statistics, step for step as sacrebleu's `BLEU.compute_bleu`
    /// (same operations in the same order, so the same floating-point result).
    pub fn score(&self, smoothing: Smoothing) -> Bleu {
        let (sys_len, ref_len) = (self.hyp_len, self.ref_len);
        let bp = if sys_len < ref_len {
            if sys_len > 0 {
                (1.0 - ref_len as f64 / sys_len as f64).exp()
            } else {
                0.0
            }
        } else {
            1.0
        };
        let ratio = if ref_len > 0 {
            sys_len as f64 / ref_len as f64
        } else {
            0.0
        };
        let mut out = Bleu {
            score: 0.0,
            precisions: [0.0; 4],
            brevity_penalty: bp,
            ratio,
            hyp_len: sys_len,
            ref_len,
            counts: self.counts,
            totals: self.totals,
        };
        // No match of any order: 0, with every precision reported as 0 (sacrebleu issue #141).
        if self.counts.iter().all(|&c| c == 0) {
            return out;
        }
        let mut smooth_mteval = 1.0f64;
        for n in 0..NGRAM_ORDER {
            let (correct, total) = (self.counts[n], self.totals[n]);
            if total == 0 {
                break;
            }
            if correct == 0 {
                if smoothing == Smoothing::Exp {
                    smooth_mteval *= 2.0;
                    out.precisions[n] = 100.0 / (smooth_mteval * total as f64);
                }
            } else {
                out.precisions[n] = 100.0 * correct as f64 / total as f64;
            }
        }
        let log_sum = out
            .precisions
            .iter()
            .fold(0.0f64, |acc, &p| acc + floored_log(p));
        out.score = bp * (log_sum / NGRAM_ORDER as f64).exp();
        out
    }
}

/// sacrebleu's `my_log`: the natural log, with log(0) floored at -9999999999 so that a zero
/// precision gives exp(-2.5e9) = 0 instead of a NaN.
fn floored_log(x: f64) -> f64 {
    if x == 0.0 {
        -9_999_999_999.0
    } else {
        x.ln()
    }
}

fn closest_ref_len(hyp_len: usize, ref_lens: &[usize]) -> usize {
    let mut best: Option<(usize, usize)> = None; // (diff, len)
    for &r in ref_lens {
        let diff = hyp_len.abs_diff(r);
        best = match best {
            None => Some((diff, r)),
            Some((d, l)) if diff < d || (diff == d && r < l) => Some((diff, r)),
            keep => keep,
        };
    }
    best.map_or(0, |(_, l)| l)
}

/// Counts of all n-grams of orders 1..=max_order, keyed by token slices.
fn ngram_counts<T: Eq + Hash>(tokens: &[T], max_order: usize) -> HashMap<&[T], usize> {
    let mut m = HashMap::new();
    for n in 1..=max_order {
        if tokens.len() < n {
            break;
        }
        for g in tokens.windows(n) {
            *m.entry(g).or_insert(0) += 1;
        }
    }
    m
}

/// Corpus BLEU against one reference per hypothesis, with sacrebleu's defaults for everything
/// but the tokenizer and casing (4-grams, `exp` smoothing). An error if the two lists differ in
/// length.
pub fn corpus_bleu<S: AsRef<str>>(
    hyps: &[S],
    refs: &[S],
    tokenize: BleuTokenize,
    lowercase: bool,
) -> Result<Bleu> {
    corpus_bleu_with(
        hyps,
        &[refs],
        &BleuOptions {
            tokenize,
            lowercase,
            smoothing: Smoothing::Exp,
        },
    )
}

/// Corpus BLEU against one or more reference streams (each a list as long as `hyps`; stream k
/// holds the k-th reference of every segment).
pub fn corpus_bleu_with<H: AsRef<str>, R: AsRef<str>>(
    hyps: &[H],
    ref_streams: &[&[R]],
    opts: &BleuOptions,
) -> Result<Bleu> {
    Ok(corpus_bleu_stats(hyps, ref_streams, opts.tokenize, opts.lowercase)?.score(opts.smoothing))
}

/// The summed sufficient statistics of [`corpus_bleu_with`], before scoring.
pub fn corpus_bleu_stats<H: AsRef<str>, R: AsRef<str>>(
    hyps: &[H],
    ref_streams: &[&[R]],
    tokenize: BleuTokenize,
    lowercase: bool,
) -> Result<BleuStats> {
    check_streams(hyps.len(), ref_streams)?;
    let mut total = BleuStats::default();
    let mut refs = Vec::with_capacity(ref_streams.len());
    for (i, h) in hyps.iter().enumerate() {
        refs.clear();
        refs.extend(
            ref_streams
                .iter()
                .map(|s| tokenize.preprocess(s[i].as_ref(), lowercase)),
        );
        let hyp = tokenize.preprocess(h.as_ref(), lowercase);
        total += BleuStats::segment(&hyp, &refs);
    }
    Ok(total)
}

fn check_streams<R>(n_hyps: usize, ref_streams: &[&[R]]) -> Result<()> {
    if ref_streams.is_empty() {
        bail!("no reference stream given");
    }
    for (k, s) in ref_streams.iter().enumerate() {
        if s.len() != n_hyps {
            bail!(
                "{n_hyps} hypotheses but {} references{}",
                s.len(),
                if ref_streams.len() > 1 {
                    format!(" in reference stream {}", k + 1)
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}

/// mteval-v13a's tokenization as sacrebleu's `Tokenizer13a` (itself a reimplementation of the
/// Perl script used by WMT), applied to one segment; words come out separated by one space.
pub fn tokenize_13a(line: &str) -> String {
    let mut s = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if s.contains('&') {
        s = s
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    // Rule 1: ASCII punctuation other than ' , - . becomes its own token. The regex class is
    // [{-~[-` -&(-+:-@/]; the space it includes only adds spaces, which the final split drops.
    let mut chars: Vec<char> = Vec::with_capacity(s.len() * 2 + 2);
    chars.push(' ');
    for c in s.chars() {
        if matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/') {
            chars.extend([' ', c, ' ']);
        } else {
            chars.push(c);
        }
    }
    chars.push(' ');
    // Rules 2-4 are regex substitutions of two-character patterns, each a left-to-right scan
    // of non-overlapping matches over the output of the previous rule (as `re.sub` does).
    let digit = |c: char| c.is_ascii_digit();
    let period_comma = |c: char| c == '.' || c == ',';
    // Rule 2: ([^0-9])([.,]) -> "\1 \2 "
    let chars = substitute(
        &chars,
        |a, b| !digit(a) && period_comma(b),
        |a, b| [Some(a), Some(' '), Some(b), Some(' ')],
    );
    // Rule 3: ([.,])([^0-9]) -> " \1 \2"
    let chars = substitute(
        &chars,
        |a, b| period_comma(a) && !digit(b),
        |a, b| [Some(' '), Some(a), Some(' '), Some(b)],
    );
    // Rule 4: ([0-9])(-) -> "\1 \2 "
    let chars = substitute(
        &chars,
        |a, b| digit(a) && b == '-',
        |a, b| [Some(a), Some(' '), Some(b), Some(' ')],
    );
    let s: String = chars.into_iter().collect();
    py_split(&s).join(" ")
}

/// One pass of a two-character regex substitution: scans left to right, replacing each match
/// of (a, b) and resuming after it.
fn substitute(
    chars: &[char],
    matches: impl Fn(char, char) -> bool,
    replace: impl Fn(char, char) -> [Option<char>; 4],
) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len() + chars.len() / 4);
    let mut i = 0;
    while i < chars.len() {
        if i + 1 < chars.len() && matches(chars[i], chars[i + 1]) {
            out.extend(replace(chars[i], chars[i + 1]).into_iter().flatten());
            i += 2;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Python's `str.isspace`: Unicode White_Space plus U+001C..U+001F, which Python counts as
/// whitespace (bidirectional class B or S) and Rust's `char::is_whitespace` does not. Using
/// Python's set is what makes `split()` and `rstrip()` here agree with sacrebleu.
pub fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.split()` without arguments: runs of [`py_space`] separate words.
fn py_split(s: &str) -> Vec<&str> {
    s.split(py_space).filter(|w| !w.is_empty()).collect()
}

// ---------------------------------------------------------------------------------------------
// chrF

/// chrF settings; the default is sacrebleu's `CHRF()` (chrF2: 6 character orders, no words).
/// `word_order: 2` gives chrF++.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChrfOptions {
    pub char_order: usize,
    pub word_order: usize,
    /// Recall is weighted beta times as much as precision.
    pub beta: u32,
    pub lowercase: bool,
    /// Keep whitespace inside character n-grams (sacrebleu `--chrf-whitespace`).
    pub whitespace: bool,
    /// chrF++.py's epsilon smoothing instead of the effective-order average.
    pub eps_smoothing: bool,
}

impl Default for ChrfOptions {
    fn default() -> Self {
        ChrfOptions {
            char_order: 6,
            word_order: 0,
            beta: 2,
            lowercase: false,
            whitespace: false,
            eps_smoothing: false,
        }
    }
}

impl ChrfOptions {
    /// chrF++ (Popović 2017): chrF plus word unigrams and bigrams.
    pub fn chrf_plus_plus() -> Self {
        ChrfOptions {
            word_order: 2,
            ..Default::default()
        }
    }

    /// sacrebleu's name for the metric: `chrF2`, `chrF2++`.
    pub fn name(&self) -> String {
        format!("chrF{}{}", self.beta, "+".repeat(self.word_order))
    }

    /// The F-score of summed statistics (`[hyp, ref, match]` per order), as sacrebleu's
    /// `CHRF._compute_f_score`, on the 0-100 scale.
    pub fn f_score(&self, stats: &[usize]) -> f64 {
        let eps = 1e-16;
        let factor = (self.beta * self.beta) as f64;
        let order = self.char_order + self.word_order;
        let (mut score, mut avg_prec, mut avg_rec) = (0.0f64, 0.0f64, 0.0f64);
        let mut effective_order = 0usize;
        for i in 0..order {
            let (n_hyp, n_ref, n_match) = (stats[3 * i], stats[3 * i + 1], stats[3 * i + 2]);
            let prec = if n_hyp > 0 {
                n_match as f64 / n_hyp as f64
            } else {
                eps
            };
            let rec = if n_ref > 0 {
                n_match as f64 / n_ref as f64
            } else {
                eps
            };
            let denom = factor * prec + rec;
            score += if denom > 0.0 {
                (1.0 + factor) * prec * rec / denom
            } else {
                eps
            };
            if n_hyp > 0 && n_ref > 0 {
                avg_prec += prec;
                avg_rec += rec;
                effective_order += 1;
            }
        }
        if self.eps_smoothing {
            return 100.0 * score / order as f64;
        }
        if effective_order == 0 {
            avg_prec = 0.0;
            avg_rec = 0.0;
        } else {
            avg_prec /= effective_order as f64;
            avg_rec /= effective_order as f64;
        }
        if avg_prec + avg_rec != 0.0 {
            let mut score = (1.0 + factor) * avg_prec * avg_rec;
            score /= (factor * avg_prec) + avg_rec;
            100.0 * score
        } else {
            0.0
        }
    }
}

/// Counts of the character n-grams of one order, keyed by slices of `text`.
fn char_ngrams<'a>(text: &'a str, bounds: &[usize], n: usize) -> HashMap<&'a str, usize> {
    let n_chars = bounds.len() - 1;
    let mut m = HashMap::new();
    for i in 0..(n_chars + 1).saturating_sub(n) {
        *m.entry(&text[bounds[i]..bounds[i + n]]).or_insert(0) += 1;
    }
    m
}

/// Counts of the word n-grams of one order.
fn word_ngrams<'a>(words: &'a [&'a str], n: usize) -> HashMap<&'a [&'a str], usize> {
    let mut m = HashMap::new();
    if words.len() >= n {
        for g in words.windows(n) {
            *m.entry(g).or_insert(0) += 1;
        }
    }
    m
}

/// `[hyp, ref, match]` for one order, as sacrebleu's `_get_match_statistics`: hypothesis
/// n-grams count only when the reference has n-grams of that order.
fn push_match_stats<K: Eq + Hash>(
    hyp: &HashMap<K, usize>,
    r: &HashMap<K, usize>,
    out: &mut Vec<usize>,
) {
    let (mut matched, mut hyp_count) = (0, 0);
    for (g, &c) in hyp {
        hyp_count += c;
        if let Some(&rc) = r.get(g) {
            matched += c.min(rc);
        }
    }
    out.extend([
        if r.is_empty() { 0 } else { hyp_count },
        r.values().sum(),
        matched,
    ]);
}

/// One segment prepared for chrF: lowercased when asked, whitespace removed for the
/// character n-grams, split into words for the word n-grams.
struct ChrfSegment {
    text: String,
    bounds: Vec<usize>,
    seg: String,
}

impl ChrfSegment {
    fn new(seg: &str, opts: &ChrfOptions) -> Self {
        let seg = if opts.lowercase {
            seg.to_lowercase()
        } else {
            seg.to_string()
        };
        let text = if opts.whitespace {
            seg.clone()
        } else {
            seg.split(py_space).collect()
        };
        let bounds = text
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(text.len()))
            .collect();
        ChrfSegment { text, bounds, seg }
    }
}

/// The `[hyp, ref, match]` statistics of one segment; with several references, those of the
/// reference with the best segment F-score (the first on a tie), as sacrebleu does.
fn chrf_segment_stats<R: AsRef<str>>(hyp: &str, refs: &[R], opts: &ChrfOptions) -> Vec<usize> {
    let h = ChrfSegment::new(hyp, opts);
    let h_words = chrf_words(&h.seg);
    let h_chars: Vec<_> = (1..=opts.char_order)
        .map(|n| char_ngrams(&h.text, &h.bounds, n))
        .collect();
    let h_wgrams: Vec<_> = (1..=opts.word_order)
        .map(|n| word_ngrams(&h_words, n))
        .collect();
    let mut best: Option<(f64, Vec<usize>)> = None;
    for r in refs {
        let r = ChrfSegment::new(r.as_ref(), opts);
        let r_words = chrf_words(&r.seg);
        let mut stats = Vec::with_capacity(3 * (opts.char_order + opts.word_order));
        for (n, hc) in h_chars.iter().enumerate() {
            push_match_stats(hc, &char_ngrams(&r.text, &r.bounds, n + 1), &mut stats);
        }
        for (n, hw) in h_wgrams.iter().enumerate() {
            push_match_stats(hw, &word_ngrams(&r_words, n + 1), &mut stats);
        }
        let f = opts.f_score(&stats);
        if !matches!(&best, Some((bf, _)) if f <= *bf) {
            best = Some((f, stats));
        }
    }
    best.map(|(_, s)| s).unwrap_or_default()
}

/// Corpus chrF2 (sacrebleu's `CHRF()` defaults) of hypotheses against one reference each, on
/// the 0-100 scale. An error if the two lists differ in length.
pub fn corpus_chrf<S: AsRef<str>>(hyps: &[S], refs: &[S]) -> Result<f64> {
    corpus_chrf_with(hyps, &[refs], &ChrfOptions::default())
}

/// Corpus chrF with any settings (e.g. [`ChrfOptions::chrf_plus_plus`]) and one or more
/// reference streams. Statistics are summed over segments, then scored once.
pub fn corpus_chrf_with<H: AsRef<str>, R: AsRef<str>>(
    hyps: &[H],
    ref_streams: &[&[R]],
    opts: &ChrfOptions,
) -> Result<f64> {
    check_streams(hyps.len(), ref_streams)?;
    if opts.char_order + opts.word_order == 0 {
        bail!("chrF needs at least one character or word n-gram order");
    }
    let mut total = vec![0usize; 3 * (opts.char_order + opts.word_order)];
    let mut refs: Vec<&str> = Vec::with_capacity(ref_streams.len());
    for (i, h) in hyps.iter().enumerate() {
        refs.clear();
        refs.extend(ref_streams.iter().map(|s| s[i].as_ref()));
        for (t, s) in total
            .iter_mut()
            .zip(chrf_segment_stats(h.as_ref(), &refs, opts))
        {
            *t += s;
        }
    }
    Ok(opts.f_score(&total))
}

/// sacrebleu's `CHRF._remove_punctuation` (from Popović's chrF++.py): split on whitespace, and
/// split one ASCII punctuation character off the end of a word, or else off its start.
fn chrf_words(sent: &str) -> Vec<&str> {
    const PUNCTS: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    let is_punct = |c: &char| PUNCTS.contains(*c);
    let mut out = Vec::new();
    for w in py_split(sent) {
        let mut chars = w.chars();
        let (first, last) = (chars.next(), chars.next_back());
        if last.is_none() {
            out.push(w); // one character
        } else if let Some(l) = last.filter(is_punct) {
            let cut = w.len() - l.len_utf8();
            out.extend([&w[..cut], &w[cut..]]);
        } else if let Some(f) = first.filter(is_punct) {
            let cut = f.len_utf8();
            out.extend([&w[..cut], &w[cut..]]);
        } else {
            out.push(w);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Files

/// The segments of a hypothesis or reference file, one per line, as sacrebleu reads them: the
/// text is split at `\n` only (a final newline does not start another segment; `\r` and other
/// trailing whitespace are stripped later, by the metric). Invalid UTF-8 is an error naming
/// the file and line: a replaced character would silently change the score.
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    split_lines(bytes, &path.display().to_string())
}

/// [`read_lines`] on bytes already read; `name` is what errors call the source.
pub fn split_lines(bytes: Vec<u8>, name: &str) -> Result<Vec<String>> {
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        anyhow::anyhow!(
            "{name}:{line}: invalid UTF-8 (byte offset {offset} in the file); convert the file to UTF-8, e.g. with iconv"
        )
    })?;
    let body = text.strip_suffix('\n').unwrap_or(&text);
    if text.is_empty() {
        return Ok(Vec::new());
    }
    Ok(body.split('\n').map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn identical_is_100() {
        let h = ["the cat sat on the mat"];
        let b = corpus_bleu(&h, &h, BleuTokenize::None, false).unwrap();
        assert!(close(b.score, 100.0), "{b:?}");
        assert_eq!(b.counts, [6, 5, 4, 3]);
        assert_eq!(b.totals, [6, 5, 4, 3]);
        assert_eq!(b.brevity_penalty, 1.0);
        assert!(close(corpus_chrf(&h, &h).unwrap(), 100.0));
    }

    /// Papineni et al. 2002, section 2.1: "the" seven times against "the cat is on the mat"
    /// gets unigram precision 2/7 after clipping. No bigram matches, so `exp` smoothing
    /// replaces p2, p3, p4 by 100/(2*6), 100/(4*5), 100/(8*4).
    #[test]
    fn clipping_and_exp_smoothing_by_hand() {
        let h = ["the the the the the the the"];
        let r = ["the cat is on the mat"];
        let b = corpus_bleu(&h, &r, BleuTokenize::Thirteen13a, false).unwrap();
        assert_eq!(b.counts, [2, 0, 0, 0]);
        assert_eq!(b.totals, [7, 6, 5, 4]);
        let p = [200.0 / 7.0, 100.0 / 12.0, 100.0 / 20.0, 100.0 / 32.0];
        for (a, e) in b.precisions.iter().zip(p) {
            assert!(close(*a, e), "{a} vs {e}");
        }
        let expected = ((p.iter().map(|x: &f64| x.ln()).sum::<f64>()) / 4.0).exp();
        assert!(close(b.score, expected), "{} vs {expected}", b.score);
        assert_eq!(b.brevity_penalty, 1.0); // 7 words against 6
        let none = corpus_bleu_with(
            &h,
            &[&r[..]],
            &BleuOptions {
                smoothing: Smoothing::None,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(none.score, 0.0);
        assert_eq!(none.precisions, [200.0 / 7.0, 0.0, 0.0, 0.0]);
    }

    /// Two words against six: BP = exp(1 - 6/2). There are no hypothesis trigrams, so the
    /// precision loop stops at n = 3 and BLEU is 0 even with smoothing (as sacrebleu).
    #[test]
    fn brevity_penalty_and_missing_orders() {
        let b = corpus_bleu(
            &["the cat"],
            &["the cat sat on the mat"],
            BleuTokenize::None,
            false,
        )
        .unwrap();
        assert!(close(b.brevity_penalty, (-2.0f64).exp()));
        assert_eq!(b.precisions, [100.0, 100.0, 0.0, 0.0]);
        assert_eq!(b.score, 0.0);
        assert!(close(b.ratio, 2.0 / 6.0));
        // No match at all: 0, precisions all reported as 0.
        let z = corpus_bleu(&["a b c d e"], &["f g h i j"], BleuTokenize::None, false).unwrap();
        assert_eq!((z.score, z.precisions), (0.0, [0.0; 4]));
        // An empty hypothesis corpus: BP 0.
        let e = corpus_bleu(&[""], &["a b"], BleuTokenize::None, false).unwrap();
        assert_eq!(
            (e.score, e.brevity_penalty, e.hyp_len, e.ref_len),
            (0.0, 0.0, 0, 2)
        );
    }

    /// Clipping takes the largest count over references; the reference length is the closest,
    /// the shorter on a tie (5 words against 4 and 6 -> 4).
    #[test]
    fn several_references() {
        let h = ["a a b c d"];
        let r1 = ["a b c d"];
        let r2 = ["a a x y z w"];
        let s = corpus_bleu_stats(&h, &[&r1[..], &r2[..]], BleuTokenize::None, false).unwrap();
        assert_eq!(s.ref_len, 4);
        // unigrams: a x2 (max ref count 2), b, c, d -> 5; bigrams: "a a" (r2), "a b", "b c",
        // "c d" (r1) -> 4; trigrams "a b c", "b c d" -> 2 of 3; 4-grams "a b c d" -> 1 of 2.
        assert_eq!(s.counts, [5, 4, 2, 1]);
        assert_eq!(s.totals, [5, 4, 3, 2]);
        assert_eq!(closest_ref_len(5, &[6, 4]), 4);
        assert_eq!(closest_ref_len(5, &[7, 3, 6]), 6);
    }

    #[test]
    fn lengths_must_agree() {
        let e = corpus_bleu(&["a", "b"], &["a"], BleuTokenize::None, false).unwrap_err();
        assert!(
            e.to_string().contains("2 hypotheses but 1 references"),
            "{e}"
        );
        assert!(corpus_chrf(&["a"], &["a", "b"]).is_err());
    }

    #[test]
    fn tokenizer_13a_by_hand() {
        let t = tokenize_13a;
        assert_eq!(t("Hello, world!"), "Hello , world !");
        assert_eq!(t("pi is 3.14, or 3,14."), "pi is 3.14 , or 3,14 .");
        assert_eq!(t("1990-2000 and well-known"), "1990 - 2000 and well-known");
        assert_eq!(t("It's \"quoted\" (yes)"), "It's \" quoted \" ( yes )");
        assert_eq!(t("&quot;a&quot; &amp; b"), "\" a \" & b");
        assert_eq!(t("<skipped> x  y\t z"), "x y z");
        assert_eq!(t("e.g. $5/h"), "e . g . $ 5 / h");
        // Lowercasing happens before the <skipped> and entity rules, as in sacrebleu.
        assert_eq!(
            BleuTokenize::Thirteen13a.preprocess("<SKIPPED> &QUOT;X&QUOT;  ", true),
            "\" x \""
        );
        assert_eq!(BleuTokenize::None.preprocess("a  b \u{1f}", false), "a  b");
    }

    /// Hand-worked chrF: "ab" vs "ac". Unigrams match 1 of 2 each way (P = R = 1/2), bigrams
    /// match none (P = R = 0), orders 3..6 are empty on both sides and do not count. So
    /// P = R = 1/4 and F2 = 5 P R / (4 P + R) = 1/4.
    #[test]
    fn chrf_by_hand() {
        let f = corpus_chrf(&["ab"], &["ac"]).unwrap();
        assert!(close(f, 25.0), "{f}");
        // Whitespace is removed before counting characters.
        let g = corpus_chrf(&["a b"], &["ab"]).unwrap();
        assert!(close(g, 100.0), "{g}");
        // chrF++ adds word unigrams and bigrams: "a b" vs "a c" at word level: unigram P = R =
        // 1/2, bigram 0; characters "ab" vs "ac" as above. Effective orders: char 1, 2 and
        // word 1, 2 -> P = R = (1/2 + 0 + 1/2 + 0) / 4 = 1/4.
        let pp =
            corpus_chrf_with(&["a b"], &[&["a c"][..]], &ChrfOptions::chrf_plus_plus()).unwrap();
        assert!(close(pp, 25.0), "{pp}");
        assert_eq!(
            chrf_words("(hi) well, ok !x"),
            ["(hi", ")", "well", ",", "ok", "!", "x"]
        );
    }

    #[test]
    fn display_matches_sacrebleu_layout() {
        let b = Bleu {
            score: 35.1234,
            precisions: [67.12, 42.34, 28.96, 19.81],
            brevity_penalty: 1.0,
            ratio: 1.0123,
            hyp_len: 10,
            ref_len: 9,
            counts: [0; 4],
            totals: [0; 4],
        };
        assert_eq!(
            b.to_string(),
            "BLEU = 35.12 67.1/42.3/29.0/19.8 (BP = 1.000 ratio = 1.012 hyp_len = 10 ref_len = 9)"
        );
    }

    #[test]
    fn lines_like_sacrebleu() {
        let l = |b: &[u8]| split_lines(b.to_vec(), "x").unwrap();
        assert_eq!(l(b"a\nb\n"), ["a", "b"]);
        assert_eq!(l(b"a\nb"), ["a", "b"]);
        assert_eq!(l(b"\n\n"), ["", ""]);
        assert!(l(b"").is_empty());
        assert_eq!(l(b"a\r\n"), ["a\r"]);
        let e = split_lines(b"ok\nbad \xff\n".to_vec(), "h.txt").unwrap_err();
        assert!(e.to_string().contains("h.txt:2: invalid UTF-8"), "{e}");
    }
}
