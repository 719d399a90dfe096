//! Corpora for language models: the vocabulary and the three token streams, and the cutting of
//! a stream into B parallel columns for truncated BPTT.

use anyhow::{bail, Result};
use firth_text::{read_text, Level, Vocab};
use std::path::Path;

/// Training, validation and (optional) test streams over one vocabulary built from training.
#[derive(Clone, Debug)]
pub struct Corpus {
    pub level: Level,
    pub vocab: Vocab,
    pub train: Vec<u32>,
    pub valid: Vec<u32>,
    pub test: Option<Vec<u32>>,
}

impl Corpus {
    /// Reads the files. Without a validation file, the last `valid_fraction` of the training
    /// file's lines is held out (and is then not part of training). With `reverse`, every
    /// line of every file is read backwards ([`reverse_lines`]).
    pub fn load(
        train: &Path,
        valid: Option<&Path>,
        test: Option<&Path>,
        level: Level,
        valid_fraction: f64,
        reverse: bool,
    ) -> Result<Corpus> {
        let read = |p: &Path| -> Result<String> {
            let text = read_text(p)?;
            Ok(if reverse { reverse_lines(&text) } else { text })
        };
        let text = read(train)?;
        let (train_text, valid_text) = match valid {
            Some(v) => (text, read(v)?),
            None => {
                let (a, b) = split_last_lines(&text, valid_fraction);
                if b.trim().is_empty() {
                    bail!("{}: too short to hold out {:.0}% of its lines for validation; pass --valid FILE", train.display(), valid_fraction * 100.0);
                }
                (a.to_string(), b.to_string())
            }
        };
        let vocab = Vocab::build(&train_text, level);
        let encode = |t: &str, p: &Path| -> Result<Vec<u32>> {
            vocab
                .encode(t, level)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
        };
        let train_ids = encode(&train_text, train)?;
        let valid_ids = encode(&valid_text, valid.unwrap_or(train))?;
        let test_ids = match test {
            Some(p) => Some(encode(&read(p)?, p)?),
            None => None,
        };
        Ok(Corpus {
            level,
            vocab,
            train: train_ids,
            valid: valid_ids,
            test: test_ids,
        })
    }
}

/// Each line's characters in reverse order, line ends kept where they are: what a backward
/// character LM reads. "ab c\nde\n" becomes "c ba\ned\n"; a `\r` before a `\n` stays
/// before it, so Windows line ends survive the round trip.
pub fn reverse_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line
            .strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l));
        let body = body.unwrap_or(line);
        out.extend(body.chars().rev());
        out.push_str(&line[body.len()..]);
    }
    out
}

/// Splits text before the first line of its last `fraction` of lines.
pub fn split_last_lines(text: &str, fraction: f64) -> (&str, &str) {
    let lines = text.lines().count();
    let keep = lines - ((lines as f64 * fraction).round() as usize).min(lines);
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i == keep {
            break;
        }
        offset += line.len();
    }
    text.split_at(offset)
}

/// A stream cut into `batch` equal columns, stored (L, B) row-major: column b is the b-th
/// contiguous piece of the stream and row t is time. The tail that does not fill a row is
/// dropped, as in every PTB setup.
#[derive(Clone, Debug)]
pub struct Batched {
    pub data: Vec<u32>,
    pub len: usize,
    pub batch: usize,
}

impl Batched {
    pub fn new(ids: &[u32], batch: usize) -> Batched {
        let len = ids.len() / batch;
        let mut data = vec![0; len * batch];
        for b in 0..batch {
            for t in 0..len {
                data[t * batch + b] = ids[b * len + t];
            }
        }
        Batched { data, len, batch }
    }

    /// Number of blocks of at most `bptt` steps (each needs one step more for its targets).
    pub fn segments(&self, bptt: usize) -> usize {
        if self.len < 2 {
            0
        } else {
            (self.len - 1).div_ceil(bptt)
        }
    }

    /// Block `k`: inputs rows [k·bptt, k·bptt+T) and targets one row later. Returns T.
    pub fn segment(
        &self,
        k: usize,
        bptt: usize,
        inputs: &mut Vec<u32>,
        targets: &mut Vec<u32>,
    ) -> usize {
        let start = k * bptt;
        let steps = bptt.min(self.len - 1 - start);
        let b = self.batch;
        inputs.clear();
        inputs.extend_from_slice(&self.data[start * b..(start + steps) * b]);
        targets.clear();
        targets.extend_from_slice(&self.data[(start + 1) * b..(start + 1 + steps) * b]);
        steps
    }

    /// Tokens predicted in one pass: (L-1)·B.
    pub fn predictions(&self) -> usize {
        self.len.saturating_sub(1) * self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batchify_columns_are_contiguous_pieces() {
        let ids: Vec<u32> = (0..11).collect();
        let b = Batched::new(&ids, 2);
        assert_eq!(b.len, 5);
        assert_eq!(b.data, vec![0, 5, 1, 6, 2, 7, 3, 8, 4, 9]);
        assert_eq!(b.segments(3), 2);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        assert_eq!(b.segment(1, 3, &mut x, &mut y), 1);
        assert_eq!(x, vec![3, 8]);
        assert_eq!(y, vec![4, 9]);
        assert_eq!(b.predictions(), 8);
    }

    #[test]
    fn lines_reverse_in_place_and_back() {
        assert_eq!(reverse_lines("ab c\nde\n"), "c ba\ned\n");
        assert_eq!(reverse_lines("xyz"), "zyx");
        assert_eq!(reverse_lines("ab\r\n\nçé\n"), "ba\r\n\néç\n");
        let t = "Peter Blackburn\nEU rejects German call .\n";
        assert_eq!(reverse_lines(&reverse_lines(t)), t);
    }

    #[test]
    fn split_holds_out_last_lines() {
        let (a, b) = split_last_lines("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", 0.1);
        assert_eq!(b, "10\n");
        assert!(a.ends_with("9\n"));
    }
}
