//! Readers for sentence-classification data: labelled sentences as token lists.
//!
//! * **SST** (Stanford Sentiment Treebank, PTB-style trees): one tree per line,
//!   `(3 (2 The) (4 (3 good) (2 film)))`, every node labelled 0-4. The sentence's label is the
//!   root's. Fine-grained keeps the five classes (labels `0`..`4`); binary drops neutral (2)
//!   and maps 0-1 to `negative`, 3-4 to `positive`. With `phrases`, every labelled node (each
//!   distinct phrase of the file once, first label wins) becomes an example too, as in Tai et
//!   al. (2015) training on the treebank's phrases.
//! * **TSV**: `label<TAB>text` per line; text split on whitespace.
//! * **Pos/neg** (MR style): a directory whose entries are named `pos*`/`neg*` (files, or
//!   folders of files), one sentence per line; or a file `X.pos` with its sibling `X.neg`.
//!   Labels `positive`/`negative`, the same names as binary SST, so one model serves both.
//!
//! Files must be UTF-8, as for every firth reader: invalid bytes are an error naming the line
//! and the `iconv` command that converts the file (the MR release is Latin-1).
//!
//! Every problem is reported with file, line (and column for trees) and what to do next.

use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One labelled sentence (or phrase).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub tokens: Vec<String>,
    pub label: String,
}

#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Sst,
    Tsv,
    #[cfg_attr(feature = "clap", value(name = "posneg"))]
    PosNeg,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "sst" => Some(Format::Sst),
            "tsv" => Some(Format::Tsv),
            "posneg" => Some(Format::PosNeg),
            _ => None,
        }
    }
}

/// How SST trees become examples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SstOptions {
    /// Binary (drop neutral) instead of five classes.
    pub binary: bool,
    /// Also every labelled phrase (for training).
    pub phrases: bool,
}

pub const NEGATIVE: &str = "negative";
pub const POSITIVE: &str = "positive";

/// Guesses the format of `path`: a directory is pos/neg; a file whose first non-blank line
/// starts with `(digit` is SST; a line with a tab is TSV.
pub fn detect(path: &Path) -> Result<Format> {
    if path.is_dir() || path.extension().is_some_and(|e| e == "pos" || e == "neg") {
        return Ok(Format::PosNeg);
    }
    let text = read_utf8(path)?;
    let first = text.lines().find(|l| !l.trim().is_empty());
    match first {
        None => bail!(
            "{}: the file is empty; give a file with one labelled sentence per line",
            path.display()
        ),
        Some(l) => {
            let t = l.trim_start();
            if t.starts_with('(')
                && t[1..]
                    .trim_start()
                    .starts_with(|c: char| c.is_ascii_digit())
            {
                Ok(Format::Sst)
            } else if l.contains('\t') {
                Ok(Format::Tsv)
            } else {
                bail!(
                    "{}: cannot tell the format from the first line {:?}; expected an SST tree \
                     `(label ...)`, `label<TAB>text`, or a directory of pos/neg files; pass --format",
                    path.display(),
                    truncate(l, 60)
                )
            }
        }
    }
}

/// Reads labelled examples in `format` (or the detected one).
pub fn read(path: &Path, format: Option<Format>, sst: SstOptions) -> Result<Vec<Example>> {
    let format = match format {
        Some(f) => f,
        None => detect(path)?,
    };
    let ex = match format {
        Format::Sst => read_sst(path, sst)?,
        Format::Tsv => read_tsv(path)?,
        Format::PosNeg => read_posneg(path)?,
    };
    if ex.is_empty() {
        bail!("{}: no examples found", path.display());
    }
    Ok(ex)
}

/// Reads unlabelled sentences for prediction: one per line, split on whitespace. Blank lines
/// are kept as empty token lists so the output lines up with the input; callers decide.
pub fn read_sentences(path: &Path) -> Result<Vec<Vec<String>>> {
    let text = read_utf8(path)?;
    Ok(text
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect())
}

/// The file as text; invalid UTF-8 is an error naming the line and how to convert the file.
fn read_utf8(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        let column = at - bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        anyhow::anyhow!(
            "{}:{line}: invalid UTF-8 at byte {column} of the line; firth reads UTF-8 text. \
             If the file is Latin-1 (as the MR release is), convert it: iconv -f latin1 -t utf-8 {} > converted.txt",
            path.display(),
            path.display()
        )
    })
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

pub fn read_tsv(path: &Path) -> Result<Vec<Example>> {
    parse_tsv(&read_utf8(path)?, path)
}

/// [`read_tsv`] on text already read; `path` names it in errors.
pub fn parse_tsv(text: &str, path: &Path) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let Some((label, sentence)) = line.split_once('\t') else {
            bail!(
                "{}:{n}: no tab in {:?}; each line must be `label<TAB>text`",
                path.display(),
                truncate(line, 60)
            );
        };
        let label = label.trim();
        if label.is_empty() {
            bail!("{}:{n}: empty label before the tab", path.display());
        }
        let tokens: Vec<String> = sentence.split_whitespace().map(str::to_string).collect();
        if tokens.is_empty() {
            bail!(
                "{}:{n}: empty sentence after the label {label:?}; remove the line or add text",
                path.display()
            );
        }
        out.push(Example {
            tokens,
            label: label.to_string(),
        });
    }
    Ok(out)
}

pub fn read_posneg(path: &Path) -> Result<Vec<Example>> {
    let (pos, neg): (Vec<PathBuf>, Vec<PathBuf>) = if path.is_dir() {
        let mut pos = Vec::new();
        let mut neg = Vec::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            let name = e
                .file_name()
                .map(|s| s.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            let ext = e
                .extension()
                .map(|s| s.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            let files = if e.is_dir() {
                files_in(&e)?
            } else {
                vec![e.clone()]
            };
            if name.starts_with("pos") || ext == "pos" {
                pos.extend(files);
            } else if name.starts_with("neg") || ext == "neg" {
                neg.extend(files);
            }
        }
        (pos, neg)
    } else {
        let ext = path.extension().map(|s| s.to_string_lossy().to_string());
        match ext.as_deref() {
            Some("pos") => (vec![path.to_path_buf()], vec![path.with_extension("neg")]),
            Some("neg") => (vec![path.with_extension("pos")], vec![path.to_path_buf()]),
            _ => bail!(
                "{}: pos/neg data is a directory with pos*/neg* files or folders, or a file X.pos with X.neg beside it",
                path.display()
            ),
        }
    };
    if pos.is_empty() || neg.is_empty() {
        bail!(
            "{}: found {} positive and {} negative files; pos/neg data needs entries named pos*/neg* (or *.pos/*.neg)",
            path.display(),
            pos.len(),
            neg.len()
        );
    }
    let mut out = Vec::new();
    for (files, label) in [(pos, POSITIVE), (neg, NEGATIVE)] {
        for f in files {
            if !f.exists() {
                bail!("{}: missing (pos and neg files come in pairs)", f.display());
            }
            let text = read_utf8(&f)?;
            for line in text.lines() {
                let tokens: Vec<String> = line.split_whitespace().map(str::to_string).collect();
                if !tokens.is_empty() {
                    out.push(Example {
                        tokens,
                        label: label.to_string(),
                    });
                }
            }
        }
    }
    Ok(out)
}

fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    Ok(v)
}

pub fn read_sst(path: &Path, opt: SstOptions) -> Result<Vec<Example>> {
    parse_sst(&read_utf8(path)?, path, opt)
}

/// [`read_sst`] on text already read; `path` names it in errors.
pub fn parse_sst(text: &str, path: &Path, opt: SstOptions) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let tree = parse_tree(line)
            .map_err(|(col, msg)| anyhow::anyhow!("{}:{}:{col}: {msg}", path.display(), i + 1))?;
        let mut nodes = Vec::new();
        let tokens = collect(&tree, &mut nodes);
        // The root first, then the phrases in the order their subtrees close.
        let mut items = vec![(tree.label, tokens)];
        if opt.phrases {
            items.extend(nodes.into_iter().rev().skip(1));
        }
        for (k, (label, tokens)) in items.into_iter().enumerate() {
            if opt.phrases && !seen.insert(tokens.clone()) && k > 0 {
                continue;
            }
            let label = if opt.binary {
                match label {
                    0 | 1 => NEGATIVE,
                    3 | 4 => POSITIVE,
                    _ => continue,
                }
                .to_string()
            } else {
                label.to_string()
            };
            out.push(Example { tokens, label });
        }
    }
    Ok(out)
}

/// A labelled tree node: a leaf word or children.
#[derive(Debug)]
struct Node {
    label: u8,
    word: Option<String>,
    children: Vec<Node>,
}

/// Leaves of `n` in order; pushes (label, tokens) of every node, children before parents.
fn collect(n: &Node, nodes: &mut Vec<(u8, Vec<String>)>) -> Vec<String> {
    let tokens = match &n.word {
        Some(w) => vec![w.clone()],
        None => n.children.iter().flat_map(|c| collect(c, nodes)).collect(),
    };
    nodes.push((n.label, tokens.clone()));
    tokens
}

/// Parses one PTB-style tree; errors carry a 1-based column.
fn parse_tree(line: &str) -> std::result::Result<Node, (usize, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut pos = 0;
    let skip = |pos: &mut usize| {
        while *pos < chars.len() && chars[*pos].is_whitespace() {
            *pos += 1;
        }
    };
    fn node(
        chars: &[char],
        pos: &mut usize,
        skip: &dyn Fn(&mut usize),
        depth: usize,
    ) -> std::result::Result<Node, (usize, String)> {
        if depth > 10_000 {
            return Err((*pos + 1, "tree nested too deeply".into()));
        }
        skip(pos);
        if *pos >= chars.len() || chars[*pos] != '(' {
            return Err((
                *pos + 1,
                "expected `(` opening a node; SST lines look like `(3 (2 a) (3 film))`".into(),
            ));
        }
        *pos += 1;
        skip(pos);
        let start = *pos;
        while *pos < chars.len()
            && !chars[*pos].is_whitespace()
            && chars[*pos] != '('
            && chars[*pos] != ')'
        {
            *pos += 1;
        }
        let lab: String = chars[start..*pos].iter().collect();
        let label = match lab.parse::<u8>() {
            Ok(v) if v <= 4 => v,
            _ => {
                return Err((
                    start + 1,
                    format!("node label {lab:?} is not a sentiment class 0-4"),
                ))
            }
        };
        skip(pos);
        if *pos >= chars.len() {
            return Err((*pos + 1, "tree ends before its `)`".into()));
        }
        if chars[*pos] == '(' {
            let mut children = Vec::new();
            while *pos < chars.len() && chars[*pos] == '(' {
                children.push(node(chars, pos, skip, depth + 1)?);
                skip(pos);
            }
            if *pos >= chars.len() || chars[*pos] != ')' {
                return Err((*pos + 1, "expected `)` closing a node".into()));
            }
            *pos += 1;
            Ok(Node {
                label,
                word: None,
                children,
            })
        } else {
            // A leaf runs to its `)`; a few SST leaves hold a space ("8 1\/2", a no-break
            // space in the original), kept as one token with a no-break space.
            let start = *pos;
            while *pos < chars.len() && chars[*pos] != ')' && chars[*pos] != '(' {
                *pos += 1;
            }
            if *pos >= chars.len() || chars[*pos] != ')' {
                return Err((*pos + 1, "expected `)` after the leaf word".into()));
            }
            let word: String = chars[start..*pos]
                .iter()
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join("\u{a0}");
            if word.is_empty() {
                return Err((
                    *pos + 1,
                    "empty leaf (a node with a label but no word)".into(),
                ));
            }
            *pos += 1;
            Ok(Node {
                label,
                word: Some(word),
                children: Vec::new(),
            })
        }
    }
    let tree = node(&chars, &mut pos, &skip, 0)?;
    skip(&mut pos);
    if pos < chars.len() {
        return Err((
            pos + 1,
            "text after the end of the tree (unbalanced parentheses?)".into(),
        ));
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/sentiment")
            .join(name)
    }

    fn toks(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn sst_roots_fine_and_binary() {
        let p = fixture("sst.txt");
        assert_eq!(detect(&p).unwrap(), Format::Sst);
        let fine = read(&p, None, SstOptions::default()).unwrap();
        let labels: Vec<&str> = fine.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels, ["3", "1", "2", "4", "1"]);
        // A leaf with a space (as in SST's "8 1\/2") is one token.
        assert_eq!(fine[4].tokens, ["like", "8\u{a0}1\\/2"]);
        assert_eq!(fine[0].tokens, toks("The film is good ."));
        let bin = read(
            &p,
            None,
            SstOptions {
                binary: true,
                phrases: false,
            },
        )
        .unwrap();
        let labels: Vec<&str> = bin.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels, [POSITIVE, NEGATIVE, POSITIVE, NEGATIVE]);
    }

    #[test]
    fn sst_phrases_once_each() {
        let p = fixture("sst.txt");
        let all = read_sst(
            &p,
            SstOptions {
                binary: false,
                phrases: true,
            },
        )
        .unwrap();
        // The first tree, (3 (2 The) (3 (2 film) (3 (2 is) (3 good))) ... has these phrases.
        assert_eq!(all[0].tokens, toks("The film is good ."));
        assert!(all
            .iter()
            .any(|e| e.tokens == toks("is good") && e.label == "3"));
        // "The" occurs in two trees but is listed once.
        assert_eq!(all.iter().filter(|e| e.tokens == toks("The")).count(), 1);
        let bin = read_sst(
            &p,
            SstOptions {
                binary: true,
                phrases: true,
            },
        )
        .unwrap();
        assert!(bin
            .iter()
            .all(|e| e.label == POSITIVE || e.label == NEGATIVE));
        assert!(bin.len() < all.len());
    }

    #[test]
    fn sst_errors_name_line_and_column() {
        let p = fixture("bad_sst.txt");
        let e = format!(
            "{:#}",
            read(&p, Some(Format::Sst), SstOptions::default()).unwrap_err()
        );
        assert!(e.contains("bad_sst.txt:2:"), "{e}");
        assert!(e.contains("expected `)`"), "{e}");
        for (tree, want) in [
            ("(7 (2 a) (2 b))", "not a sentiment class"),
            ("(2 (2 a) (2 b)", "expected `)`"),
            ("(2 a) extra", "text after the end"),
            ("2 a", "expected `(`"),
            ("(2 a (2 b))", "expected `)` after the leaf"),
        ] {
            let err = parse_tree(tree).unwrap_err().1;
            assert!(err.contains(want), "{tree}: {err}");
        }
    }

    #[test]
    fn tsv_and_its_errors() {
        let p = fixture("tiny.tsv");
        assert_eq!(detect(&p).unwrap(), Format::Tsv);
        let ex = read(&p, None, SstOptions::default()).unwrap();
        assert_eq!(ex.len(), 4);
        assert_eq!(ex[0].label, "positive");
        assert_eq!(ex[0].tokens, toks("a fine , moving film"));
        let e = format!("{:#}", read_tsv(&fixture("bad.tsv")).unwrap_err());
        assert!(e.contains("bad.tsv:2: no tab"), "{e}");
        let e = format!(
            "{:#}",
            read_tsv(&fixture("empty_sentence.tsv")).unwrap_err()
        );
        assert!(e.contains("empty_sentence.tsv:3: empty sentence"), "{e}");
    }

    #[test]
    fn posneg_directory_and_pair() {
        let d = fixture("mr");
        assert_eq!(detect(&d).unwrap(), Format::PosNeg);
        let ex = read(&d, None, SstOptions::default()).unwrap();
        assert_eq!(ex.iter().filter(|e| e.label == POSITIVE).count(), 2);
        assert_eq!(ex.iter().filter(|e| e.label == NEGATIVE).count(), 2);
        assert!(
            ex.iter().any(|e| e.tokens.iter().any(|t| t == "café")),
            "{ex:?}"
        );
        let pair = read(&d.join("rt.pos"), None, SstOptions::default()).unwrap();
        assert_eq!(pair, ex);
        let e = format!(
            "{:#}",
            read(
                &fixture("tiny.tsv"),
                Some(Format::PosNeg),
                SstOptions::default()
            )
            .unwrap_err()
        );
        assert!(e.contains("pos/neg data"), "{e}");
    }

    #[test]
    fn latin1_is_refused_with_the_line_and_a_conversion() {
        let d = std::env::temp_dir().join(format!("firth-latin1-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("l.tsv");
        std::fs::write(&p, b"positive\tgood\nnegative\tmal caf\xe9\n").unwrap();
        let e = format!("{:#}", read_tsv(&p).unwrap_err());
        assert!(
            e.contains("l.tsv:2: invalid UTF-8 at byte 17") && e.contains("iconv -f latin1"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn undetectable_and_empty_files() {
        let e = format!("{:#}", detect(&fixture("plain.txt")).unwrap_err());
        assert!(e.contains("pass --format"), "{e}");
        let e = format!("{:#}", detect(&fixture("empty.txt")).unwrap_err());
        assert!(e.contains("empty"), "{e}");
    }
}
