//! Parallel text: reading a source and a target file line by line, checking them, and cutting
//! an epoch into length-bucketed batches capped in target tokens.

use anyhow::{bail, Context, Result};
use firth_nn::Rng;
use std::path::Path;

/// The lines of a UTF-8 text file (an invalid byte is an error naming the line).
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        anyhow::anyhow!("{}: line {line}: not UTF-8 text", path.display())
    })?;
    Ok(text
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect())
}

/// Tokens of a line (whitespace-separated).
pub fn tokens(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

/// Sentence pairs read from two files, with what was left out.
#[derive(Clone, Debug, Default)]
pub struct Parallel {
    pub pairs: Vec<(Vec<String>, Vec<String>)>,
    /// 1-based line number of each kept pair.
    pub lines: Vec<usize>,
    /// Warnings about skipped lines, for the user.
    pub notes: Vec<String>,
}

/// How [`read_parallel`] treats lines.
#[derive(Clone, Copy, Debug)]
pub struct ReadRules {
    /// Skip pairs with an empty side (training); otherwise keep them (an empty source
    /// translates to an empty line).
    pub skip_empty: bool,
    /// Skip pairs with a side longer than this many tokens (training only).
    pub max_len: Option<usize>,
}

/// Reads `src` and `tgt` as line-aligned parallel text, each line passed through `prep` (BPE,
/// or nothing) before it is cut into tokens. Files of different line counts are an error
/// naming both; empty and over-long pairs are skipped (per `rules`) with a warning in `notes`
/// naming the file, how many, and the first line.
pub fn read_parallel(
    src: &Path,
    tgt: &Path,
    rules: ReadRules,
    prep: &dyn Fn(&str) -> String,
) -> Result<Parallel> {
    let s = read_lines(src)?;
    let t = read_lines(tgt)?;
    if s.len() != t.len() {
        bail!(
            "{} has {} lines but {} has {}: source and target files must be line-aligned",
            src.display(),
            s.len(),
            tgt.display(),
            t.len()
        );
    }
    let mut out = Parallel::default();
    let (mut empty, mut first_empty) = (0, 0);
    let (mut long, mut first_long) = (0, 0);
    for (i, (a, b)) in s.iter().zip(&t).enumerate() {
        let (a, b) = (tokens(&prep(a)), tokens(&prep(b)));
        if rules.skip_empty && (a.is_empty() || b.is_empty()) {
            empty += 1;
            if first_empty == 0 {
                first_empty = i + 1;
            }
            continue;
        }
        if rules.max_len.is_some_and(|m| a.len() > m || b.len() > m) {
            long += 1;
            if first_long == 0 {
                first_long = i + 1;
            }
            continue;
        }
        out.pairs.push((a, b));
        out.lines.push(i + 1);
    }
    if empty > 0 {
        out.notes.push(format!(
            "warning: {} / {}: skipped {empty} pair(s) with an empty line (first at line {first_empty})",
            src.display(),
            tgt.display()
        ));
    }
    if long > 0 {
        out.notes.push(format!(
            "warning: {} / {}: skipped {long} pair(s) longer than --max-len {} tokens (first at line {first_long})",
            src.display(),
            tgt.display(),
            rules.max_len.unwrap_or(0)
        ));
    }
    if out.pairs.is_empty() {
        bail!(
            "{} / {}: no sentence pairs left to use",
            src.display(),
            tgt.display()
        );
    }
    Ok(out)
}

fn shuffle<X>(v: &mut [X], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// How big a training batch may be; a batch closes when the next pair would break either cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchCap {
    /// Padded decoder size, sentences × (longest target + 1); 0 = no cap.
    pub tokens: usize,
    /// Sentence pairs; 0 = no cap.
    pub sentences: usize,
}

/// Cuts pairs, given their (source, target) lengths, into batches of similar lengths: sorted
/// by target then source length (after a shuffle when `rng` is given, so equal lengths mix),
/// then cut so that each batch stays within `cap` (a pair longer than the token cap is a batch
/// of its own); the batch order is shuffled too when `rng` is given.
pub fn plan_batches(
    lengths: &[(usize, usize)],
    cap: BatchCap,
    rng: Option<&mut Rng>,
) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..lengths.len()).collect();
    let mut rng = rng;
    if let Some(r) = rng.as_deref_mut() {
        shuffle(&mut idx, r);
    }
    idx.sort_by_key(|&i| (lengths[i].1, lengths[i].0));
    let mut out = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let mut longest = 0;
    for i in idx {
        let t = lengths[i].1 + 1;
        let m = longest.max(t);
        let over_tokens = cap.tokens > 0 && (cur.len() + 1) * m > cap.tokens;
        let over_sentences = cap.sentences > 0 && cur.len() + 1 > cap.sentences;
        if !cur.is_empty() && (over_tokens || over_sentences) {
            out.push(std::mem::take(&mut cur));
            longest = 0;
        }
        longest = longest.max(t);
        cur.push(i);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    if let Some(r) = rng {
        shuffle(&mut out, r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_pair_once_within_the_cap() {
        let lengths: Vec<(usize, usize)> =
            (0..200).map(|i| (1 + i % 13, 1 + (i * 7) % 17)).collect();
        let mut rng = Rng::new(5);
        let cap = BatchCap {
            tokens: 100,
            sentences: 0,
        };
        let plan = plan_batches(&lengths, cap, Some(&mut rng));
        let mut seen: Vec<usize> = plan.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..200).collect::<Vec<_>>());
        for b in &plan {
            let longest = b.iter().map(|&i| lengths[i].1 + 1).max().unwrap();
            assert!(b.len() * longest <= 100, "{b:?}");
        }
        // The same generator state draws the same plan.
        let again = plan_batches(&lengths, cap, Some(&mut Rng::new(5)));
        assert_eq!(plan, again);
    }

    #[test]
    fn a_sentence_cap_cuts_equal_batches_of_sorted_lengths() {
        let lengths: Vec<(usize, usize)> = (0..150).map(|i| (1 + i % 7, 1 + i % 11)).collect();
        let cap = BatchCap {
            tokens: 0,
            sentences: 64,
        };
        let plan = plan_batches(&lengths, cap, None);
        let sizes: Vec<usize> = plan.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![64, 64, 22]);
        // Unshuffled, the batches follow the (target, source) length order.
        let flat: Vec<(usize, usize)> = plan.iter().flatten().map(|&i| lengths[i]).collect();
        let mut sorted = flat.clone();
        sorted.sort_by_key(|&(s, t)| (t, s));
        assert_eq!(flat, sorted);
        // Both caps: whichever is hit first closes the batch.
        let both = BatchCap {
            tokens: 120,
            sentences: 64,
        };
        for b in plan_batches(&lengths, both, Some(&mut Rng::new(3))) {
            let longest = b.iter().map(|&i| lengths[i].1 + 1).max().unwrap();
            assert!(b.len() <= 64 && b.len() * longest <= 120, "{b:?}");
        }
    }
}
