//! Column files for tagging: CoNLL-2003 style (`word POS chunk NER`, space separated,
//! `-DOCSTART-` lines), CoNLL-U (`.conllu`: ten tab-separated columns, `#` comments,
//! multi-word token and empty-node lines) and `word<TAB>tag` files. Sentences are separated
//! by blank lines. Every problem is reported as `file:line: what is wrong`.
//!
//! Tag schemes for spans: IOB1 (CoNLL-2003: `I-X` inside; `B-X` only where an X chunk
//! directly follows another X chunk), IOB2 (every chunk starts with `B-X`) and BIOES (`S-X`
//! single-token chunks, `E-X` chunk ends). Conversion goes through the chunks read with
//! conlleval's rules (see [`chunks`]), so any of the three, even ill-formed, converts.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// One sentence: tokens, their tags (empty when the file has no tag column), the line
/// number of its first token (1-based) and the document it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct Sentence {
    pub tokens: Vec<String>,
    pub tags: Vec<String>,
    pub line: usize,
    /// Which document of the file (0-based): each `-DOCSTART-` line after a sentence starts
    /// the next one; a file without them is one document.
    pub doc: usize,
}

/// Which columns hold the token and the tag (0-based). `tag = None` means the last column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Columns {
    pub token: usize,
    pub tag: Option<usize>,
}

impl Default for Columns {
    fn default() -> Self {
        Columns {
            token: 0,
            tag: None,
        }
    }
}

/// Reads a column file. CoNLL-U is recognised by the `.conllu` extension or by `#` comment
/// lines followed by numbered tokens; there the default columns are FORM (1) and UPOS (3)
/// unless `columns` says otherwise (`conllu_columns` is what `None` means there).
/// With `require_tags` false, lines may hold the token only (for prediction); otherwise every
/// token line must have the tag column.
pub fn read_columns(
    path: &Path,
    columns: Option<Columns>,
    require_tags: bool,
) -> Result<Vec<Sentence>> {
    let text = crate::read_text(path)?;
    parse_columns(
        &text,
        &path.display().to_string(),
        columns,
        require_tags,
        is_conllu(path, &text),
    )
}

fn is_conllu(path: &Path, text: &str) -> bool {
    if path.extension().is_some_and(|e| e == "conllu") {
        return true;
    }
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or("");
    first.starts_with('#')
        && lines
            .find(|l| !l.starts_with('#'))
            .is_some_and(|l| l.split('\t').count() == 10)
}

/// The columns a CoNLL-U file is read with by default: FORM and UPOS.
pub const CONLLU_COLUMNS: Columns = Columns {
    token: 1,
    tag: Some(3),
};

/// Parses column-file text; `name` is used in error messages.
pub fn parse_columns(
    text: &str,
    name: &str,
    columns: Option<Columns>,
    require_tags: bool,
    conllu: bool,
) -> Result<Vec<Sentence>> {
    let cols = columns.unwrap_or(if conllu {
        CONLLU_COLUMNS
    } else {
        Columns::default()
    });
    let mut out = Vec::new();
    let mut cur = Sentence {
        tokens: Vec::new(),
        tags: Vec::new(),
        line: 0,
        doc: 0,
    };
    let mut width: Option<(usize, usize)> = None; // (fields, line first seen)
    let flush = |cur: &mut Sentence, out: &mut Vec<Sentence>| {
        if !cur.tokens.is_empty() {
            let doc = cur.doc;
            out.push(std::mem::replace(
                cur,
                Sentence {
                    tokens: Vec::new(),
                    tags: Vec::new(),
                    line: 0,
                    doc,
                },
            ));
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            flush(&mut cur, &mut out);
            continue;
        }
        if conllu && line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = if line.contains('\t') {
            line.split('\t').collect()
        } else {
            line.split_whitespace().collect()
        };
        if fields[0] == "-DOCSTART-" {
            flush(&mut cur, &mut out);
            if out.last().is_some_and(|s| s.doc == cur.doc) {
                cur.doc += 1;
            }
            continue;
        }
        if conllu {
            if fields.len() != 10 {
                bail!(
                    "{name}:{line_no}: a CoNLL-U token line has 10 tab-separated columns, this one has {}; fix the line or give the file another extension to read it as plain columns",
                    fields.len()
                );
            }
            // Multi-word tokens (3-4) and empty nodes (8.1) are not words of the sentence.
            if fields[0].contains('-') || fields[0].contains('.') {
                continue;
            }
        }
        let n = fields.len();
        match width {
            None => width = Some((n, line_no)),
            Some((w, first)) if w != n && (require_tags || n > 1) => bail!(
                "{name}:{line_no}: {n} columns, but line {first} has {w}; every token line of a column file needs the same columns (is a token or tag containing a space, or a blank line missing?)"
            ),
            _ => {}
        }
        if cols.token >= n {
            bail!(
                "{name}:{line_no}: the token column is {} (0-based) but the line has {n} column(s); choose another with --token-col",
                cols.token
            );
        }
        let tag_col = cols.tag.unwrap_or(n - 1);
        let has_tag = n > 1 && tag_col < n && tag_col != cols.token;
        if require_tags && !has_tag {
            bail!(
                "{name}:{line_no}: no tag column: the line has {n} column(s) and the tag column is {}; a training or evaluation file needs `token ... tag` lines (choose the column with --tag-col)",
                cols.tag.map_or("the last one".to_string(), |c| c.to_string())
            );
        }
        if cur.tokens.is_empty() {
            cur.line = line_no;
        }
        cur.tokens.push(fields[cols.token].to_string());
        if has_tag {
            if cur.tags.len() + 1 != cur.tokens.len() {
                bail!("{name}:{line_no}: this line has a tag but earlier lines of its sentence have none");
            }
            cur.tags.push(fields[tag_col].to_string());
        }
    }
    flush(&mut cur, &mut out);
    for s in &out {
        if !s.tags.is_empty() && s.tags.len() != s.tokens.len() {
            bail!(
                "{name}:{}: some tokens of this sentence have a tag and some do not",
                s.line
            );
        }
    }
    if out.is_empty() {
        bail!("{name}: no sentences (the file holds no token lines)");
    }
    Ok(out)
}

/// A span tagging scheme.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Iob1,
    Iob2,
    Bioes,
}

impl Scheme {
    pub fn parse(s: &str) -> Option<Scheme> {
        match s.to_ascii_lowercase().as_str() {
            "iob1" | "iob" => Some(Scheme::Iob1),
            "iob2" | "bio" => Some(Scheme::Iob2),
            "bioes" | "iobes" => Some(Scheme::Bioes),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scheme::Iob1 => "iob1",
            Scheme::Iob2 => "iob2",
            Scheme::Bioes => "bioes",
        }
    }
}

/// Splits a tag into its prefix and type like conlleval: `B-PER` → (`B`, `PER`),
/// `O` → (`O`, ``), `B-a-b` → (`B`, `a-b`).
pub fn split_tag(tag: &str) -> (&str, &str) {
    match tag.split_once('-') {
        Some((p, t)) => (p, t),
        None => (tag, ""),
    }
}

/// conlleval's end-of-chunk rule: does a chunk end between (prev, prev_type) and (tag, ty)?
///
/// conlleval (2004) knows B, I, E, O (and `[`, `]`) but not S: it would merge `S-X S-X` into
/// one chunk. We add the rules that make BIOES read as intended (an S chunk has one token; B or
/// S after E, or S after B/I, starts anew). They involve an E or S tag, so IOB1/IOB2 input is
/// read exactly as conlleval reads it.
pub fn end_of_chunk(prev: &str, tag: &str, prev_type: &str, ty: &str) -> bool {
    prev == "S"
        || matches!(
            (prev, tag),
            ("E", "B") | ("E", "S") | ("B", "S") | ("I", "S")
        )
        || matches!(
            (prev, tag),
            ("B", "B")
                | ("B", "O")
                | ("I", "B")
                | ("I", "O")
                | ("E", "E")
                | ("E", "I")
                | ("E", "O")
        )
        || (prev != "O" && prev != "." && prev_type != ty)
        || prev == "]"
        || prev == "["
}

/// conlleval's start-of-chunk rule (with the BIOES additions of [`end_of_chunk`]): does a chunk start at (tag, ty) after (prev, prev_type)?
pub fn start_of_chunk(prev: &str, tag: &str, prev_type: &str, ty: &str) -> bool {
    tag == "S"
        || matches!(
            (prev, tag),
            ("E", "B") | ("S", "B") | ("S", "I") | ("S", "E")
        )
        || matches!(
            (prev, tag),
            ("B", "B")
                | ("I", "B")
                | ("O", "B")
                | ("O", "I")
                | ("E", "E")
                | ("E", "I")
                | ("O", "E")
        )
        || (tag != "O" && tag != "." && prev_type != ty)
        || tag == "["
        || tag == "]"
}

/// The chunks (start, end exclusive, type) of one sentence's tags, read with conlleval's
/// rules; a sentence boundary closes any open chunk.
pub fn chunks(tags: &[impl AsRef<str>]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let (mut prev, mut prev_type) = ("O", "");
    let mut open: Option<usize> = None;
    for (i, t) in tags.iter().enumerate() {
        let (p, ty) = split_tag(t.as_ref());
        if let Some(s) = open {
            if end_of_chunk(prev, p, prev_type, ty) {
                out.push((s, i, prev_type.to_string()));
                open = None;
            }
        }
        if start_of_chunk(prev, p, prev_type, ty) {
            open = Some(i);
        }
        prev = p;
        prev_type = ty;
    }
    if let Some(s) = open {
        out.push((s, tags.len(), prev_type.to_string()));
    }
    out
}

/// Re-tags one sentence in `to`, keeping the chunks conlleval would read from `tags`.
/// Tokens outside every chunk become `O`.
pub fn convert(tags: &[impl AsRef<str>], to: Scheme) -> Vec<String> {
    encode_chunks(tags.len(), &chunks(tags), to)
}

/// Tags in `to` for `len` tokens holding `found` chunks (start, end exclusive, type; in order,
/// not overlapping); tokens outside every chunk are `O`.
pub fn encode_chunks(len: usize, found: &[(usize, usize, String)], to: Scheme) -> Vec<String> {
    let mut out = vec!["O".to_string(); len];
    let mut prev_end: Option<(usize, &str)> = None;
    for &(s, e, ref ty) in found {
        for (i, slot) in out.iter_mut().enumerate().take(e).skip(s) {
            let p = match to {
                Scheme::Iob2 => {
                    if i == s {
                        "B"
                    } else {
                        "I"
                    }
                }
                Scheme::Iob1 => {
                    let adjacent = prev_end
                        .as_ref()
                        .is_some_and(|(pe, pt)| *pe == s && *pt == ty.as_str());
                    if i == s && adjacent {
                        "B"
                    } else {
                        "I"
                    }
                }
                Scheme::Bioes => {
                    if e - s == 1 {
                        "S"
                    } else if i == s {
                        "B"
                    } else if i + 1 == e {
                        "E"
                    } else {
                        "I"
                    }
                }
            };
            *slot = if ty.is_empty() {
                p.to_string()
            } else {
                format!("{p}-{ty}")
            };
        }
        prev_end = Some((e, ty.as_str()));
    }
    out
}

/// Document-level label consistency: a name keeps its type within a document (Krishnan &
/// Manning 2006), so in each document every predicted chunk whose words were predicted as
/// chunks of one other type more often than as its own takes that type (ties keep their own;
/// among other types tied for most, the first by name). Words match as written. `tags` are
/// the predicted span tags of `sents`, in `scheme`; changed sentences are rewritten in it.
/// Returns how many chunks changed type.
pub fn document_vote(sents: &[Sentence], tags: &mut [Vec<String>], scheme: Scheme) -> usize {
    use std::collections::{BTreeMap, HashMap};
    assert_eq!(sents.len(), tags.len(), "one tag sequence per sentence");
    let found: Vec<Vec<(usize, usize, String)>> = tags.iter().map(|t| chunks(t)).collect();
    // (document, the chunk's words) → how often each type was predicted for them.
    let mut votes: HashMap<(usize, &[String]), BTreeMap<&str, usize>> = HashMap::new();
    for (s, cs) in sents.iter().zip(&found) {
        for (a, b, ty) in cs {
            *votes
                .entry((s.doc, &s.tokens[*a..*b]))
                .or_default()
                .entry(ty.as_str())
                .or_default() += 1;
        }
    }
    let mut changed = 0;
    for ((s, cs), out) in sents.iter().zip(&found).zip(tags.iter_mut()) {
        let mut voted = cs.clone();
        for (a, b, ty) in &mut voted {
            let v = &votes[&(s.doc, &s.tokens[*a..*b])];
            let (mut top, mut most) = (ty.as_str(), v[ty.as_str()]);
            for (&t, &n) in v {
                if n > most {
                    (top, most) = (t, n);
                }
            }
            if top != ty {
                *ty = top.to_string();
                changed += 1;
            }
        }
        if voted != *cs {
            *out = encode_chunks(out.len(), &voted, scheme);
        }
    }
    changed
}

/// Whether a tag set looks like span tags (every tag is `O` or has a `X-TYPE` prefix).
pub fn is_span_tagset(tags: &[impl AsRef<str>]) -> bool {
    let mut any_prefixed = false;
    for t in tags {
        let t = t.as_ref();
        if t == "O" {
            continue;
        }
        match t.split_once('-') {
            Some((p, ty)) if matches!(p, "B" | "I" | "E" | "S") && !ty.is_empty() => {
                any_prefixed = true
            }
            _ => return false,
        }
    }
    any_prefixed
}

/// Reads the columns of `path` with context for the error if it fails.
pub fn read_tagged(path: &Path, columns: Option<Columns>) -> Result<Vec<Sentence>> {
    read_columns(path, columns, true)
        .with_context(|| format!("reading tagged file {}", path.display()))
}
