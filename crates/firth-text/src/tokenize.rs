//! Penn-Treebank-style word tokenization of raw English text, so that word vectors trained on
//! raw prose (the cased Gutenberg books) share their tokens with the treebank-tokenized data
//! the taggers and classifiers read: SST, CoNLL-2003 and UD EWT write "do n't", "dog 's",
//! "``" and "''" for quotes, and split punctuation off words.
//!
//! The rules, per whitespace-separated chunk (after mapping typographic quotes and dashes to
//! their ASCII treebank forms):
//! - `--` (and em/en dashes) separate tokens: "word--word" is three tokens.
//! - Opening punctuation `" ' ( [ { < $ #` splits off the front; an opening `"` or `“` becomes
//!   "``" and an opening `'` or `‘` becomes "`", except in 'tis, 'twas, 'em (the word keeps it).
//! - Closing punctuation `, ; : ! ? ) ] } >`, "..." and closing quotes (`"` `”` as "''", `'`
//!   `’` as "'") split off the end; so does a final period, unless the word is an abbreviation
//!   (it holds another period, as "U.S.", is one letter, as "J.", or is a title such as "Mr.").
//! - Contractions split as the treebank does: "n't" ("don't" -> "do n't", "can't" -> "ca n't"),
//!   "'s", "'m", "'d", "'ll", "'re", "'ve"; "cannot" -> "can not".
//!
//! - Emphasis markup around a chunk (`_word_`, `*word*`, as in Gutenberg texts) is dropped.
//!
//! Tokenized text tokenizes to itself (the tests check it; on the Gutenberg books 121 of 22M
//! tokens change, dialect spellings such as "sha'n't" and roman numerals). Sentence boundaries
//! are not needed for word vectors and are not marked.

/// Tokens are lower-cased and/or have ASCII digits mapped to 0, as the taggers' `--cased false`
/// lookup normalises words (so such vectors are found by the tagger).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenizeOptions {
    pub lowercase: bool,
    pub zero_digits: bool,
}

/// Titles and common abbreviations that keep their final period (lower-case, without it).
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "gen", "col", "capt", "lt", "sgt", "rev",
    "hon", "gov", "sen", "rep", "messrs", "mme", "mlle", "vs", "etc", "viz", "cf", "co", "inc",
    "ltd", "corp", "vol", "vols", "ch", "chap", "no", "nos", "pp", "fig", "mt", "ft", "esq",
];

/// Words that keep a leading apostrophe ('tis, 'twas, 'em).
const APOSTROPHE_WORDS: &[&str] = &["'tis", "'twas", "'twill", "'twere", "'em"];

/// The clitics split off the word before them ("n't" is handled apart: "can't" -> "ca n't").
const CLITICS: &[&str] = &["'ll", "'re", "'ve", "'s", "'m", "'d"];

/// Splits one line into treebank-style tokens.
pub fn ptb_tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for chunk in line.split_whitespace() {
        let chunk = normalize_typography(chunk);
        let mut rest = chunk.as_str();
        // "--" separates tokens wherever it occurs.
        while let Some(i) = rest.find("--") {
            split_word(&rest[..i], &mut out);
            let dashes = rest[i..].bytes().take_while(|&b| b == b'-').count();
            out.push("--".to_string());
            rest = &rest[i + dashes..];
        }
        split_word(rest, &mut out);
    }
    out
}

/// `ptb_tokens`, optionally normalised, joined by single spaces.
pub fn tokenize_line(line: &str, opts: TokenizeOptions) -> String {
    let mut s = String::with_capacity(line.len() + 16);
    for t in ptb_tokens(line) {
        if !s.is_empty() {
            s.push(' ');
        }
        for c in t.chars() {
            let c = if opts.zero_digits && c.is_ascii_digit() {
                '0'
            } else {
                c
            };
            if opts.lowercase {
                s.extend(c.to_lowercase());
            } else {
                s.push(c);
            }
        }
    }
    s
}

/// Curly quotes to the ASCII characters the rules below know (keeping whether a double quote
/// opened or closed: “ always opens, ” always closes), dashes to "--", the ellipsis to "...".
fn normalize_typography(chunk: &str) -> String {
    let mut s = String::with_capacity(chunk.len());
    for c in chunk.chars() {
        match c {
            '\u{201C}' => s.push_str("\u{1}"), // “ : an opening quote, wherever it stands
            '\u{201D}' => s.push_str("\u{2}"), // ” : a closing quote
            '\u{2018}' => s.push('`'),
            '\u{2019}' => s.push('\''),
            '\u{2014}' | '\u{2013}' => s.push_str("--"),
            '\u{2026}' => s.push_str("..."),
            c => s.push(c),
        }
    }
    s
}

fn is_abbreviation(word: &str) -> bool {
    let lower = word.to_lowercase();
    word.contains('.')
        || (word.chars().count() == 1 && word.chars().all(char::is_alphabetic))
        || ABBREVIATIONS.contains(&lower.as_str())
}

/// One dash-free piece: opening punctuation, the word with its contraction split off, then the
/// closing punctuation in text order.
fn split_word(piece: &str, out: &mut Vec<String>) {
    // Opening punctuation.
    let mut w = piece;
    loop {
        // Emphasis markup (_word_, *word*) is not text.
        if let Some(rest) = w.strip_prefix(['_', '*']) {
            w = rest;
            continue;
        }
        // Treebank quotes already in the text stay as they are (tokenizing is idempotent).
        if let Some(q) = ["``", "''"].into_iter().find(|q| w.starts_with(q)) {
            out.push(q.to_string());
            w = &w[2..];
            continue;
        }
        let Some(c) = w.chars().next() else { break };
        let tok = match c {
            '"' | '\u{1}' => "``",
            '\u{2}' => "''",
            '`' => "`",
            '\'' if keeps_apostrophe(w) => break,
            // A lone apostrophe is a closing quote (below).
            '\'' if w.len() > 1 => "`",
            '(' | '[' | '{' | '<' | '$' | '#' => &w[..1],
            _ => break,
        };
        out.push(tok.to_string());
        w = &w[c.len_utf8()..];
    }
    // Closing punctuation, gathered from the end.
    let mut closing: Vec<&str> = Vec::new();
    loop {
        if w.ends_with("...") && w.len() > 3 || w == "..." {
            closing.push("...");
            w = &w[..w.len() - 3];
            continue;
        }
        if let Some(rest) = w.strip_suffix(['_', '*']) {
            w = rest;
            continue;
        }
        if let Some(q) = ["``", "''"].into_iter().find(|q| w.ends_with(q)) {
            closing.push(q);
            w = &w[..w.len() - 2];
            continue;
        }
        let Some(c) = w.chars().next_back() else {
            break;
        };
        let stem = &w[..w.len() - c.len_utf8()];
        let tok = match c {
            ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '>' => &w[w.len() - 1..],
            '"' | '\u{2}' => "''",
            '\u{1}' => "``",
            '\'' => "'",
            '.' if !stem.is_empty() && !is_abbreviation(stem) => ".",
            '.' if stem.is_empty() => ".",
            _ => break,
        };
        closing.push(tok);
        w = stem;
    }
    if !w.is_empty() {
        let (stem, clitic) = split_contraction(w);
        let stem = stem.trim_end_matches(['_', '*']); // "_William_'s
        if !stem.is_empty() {
            // A curly double quote inside a word (rare) becomes a plain one.
            out.push(stem.replace(['\u{1}', '\u{2}'], "\""));
        }
        if let Some(c) = clitic {
            out.push(c.to_string());
        }
    }
    out.extend(closing.iter().rev().map(|s| s.to_string()));
}

/// 'tis, 'twas, 'em (followed by nothing but punctuation) and a clitic already split off
/// ('s, 'll, ...) keep their leading apostrophe.
fn keeps_apostrophe(w: &str) -> bool {
    let lower = w.to_lowercase();
    let core = lower.trim_end_matches(|c: char| !c.is_alphanumeric());
    APOSTROPHE_WORDS.contains(&core) || CLITICS.contains(&lower.as_str())
}

/// The word and its clitic: "don't" -> ("do", "n't"), "dog's" -> ("dog", "'s"),
/// "cannot" -> ("can", "not").
fn split_contraction(w: &str) -> (&str, Option<&str>) {
    let lower = w.to_ascii_lowercase();
    if lower == "cannot" {
        return (&w[..3], Some(&w[3..]));
    }
    if lower.len() > 3 && lower.ends_with("n't") {
        let cut = w.len() - 3;
        return (&w[..cut], Some(&w[cut..]));
    }
    for clitic in CLITICS {
        if lower.len() > clitic.len() && lower.ends_with(clitic) {
            let cut = w.len() - clitic.len();
            return (&w[..cut], Some(&w[cut..]));
        }
    }
    (w, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> String {
        ptb_tokens(s).join(" ")
    }

    #[test]
    fn treebank_cases() {
        // Each expected line is written as the Penn Treebank (and SST, CoNLL-2003) tokenize it.
        let cases = [
            ("I don't know.", "I do n't know ."),
            ("It can't be, can it?", "It ca n't be , can it ?"),
            ("Won't you? I cannot!", "Wo n't you ? I can not !"),
            (
                "The dog's bone; the dogs' bones.",
                "The dog 's bone ; the dogs ' bones .",
            ),
            (
                "She'll go, we're here, I've seen, I'm, he'd",
                "She 'll go , we 're here , I 've seen , I 'm , he 'd",
            ),
            ("\"Hello,\" he said.", "`` Hello , '' he said ."),
            ("\u{201C}The Old Ship.\u{201D}", "`` The Old Ship . ''"),
            ("the man\u{2019}s hair", "the man 's hair"),
            ("\u{2018}Yes,\u{2019} said he", "` Yes , ' said he"),
            ("word--word", "word -- word"),
            ("and\u{2014}then", "and -- then"),
            (
                "Mr. Smith of the U.S. met J. Doe.",
                "Mr. Smith of the U.S. met J. Doe .",
            ),
            ("(see p. 5) [sic] $100", "( see p. 5 ) [ sic ] $ 100"),
            ("Wait... what\u{2026}", "Wait ... what ..."),
            ("'Tis true, 'em all", "'Tis true , 'em all"),
            ("1,000.5 people: yes", "1,000.5 people : yes"),
            ("well-known", "well-known"),
            (
                "_by the author_ *now*, _sincere_.",
                "by the author now , sincere .",
            ),
            ("'quoted'", "` quoted '"),
            ("'Emily' said", "` Emily ' said"),
            ("a\u{201C}b\u{201D}", "a\"b ''"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(toks(input), want, "input {input:?}");
            // Tokenized text tokenizes to itself.
            assert_eq!(toks(want), want, "again: {want:?}");
        }
    }

    #[test]
    fn options_lowercase_and_zero_digits() {
        let o = TokenizeOptions {
            lowercase: true,
            zero_digits: true,
        };
        assert_eq!(tokenize_line("In 1995, IBM's", o), "in 0000 , ibm 's");
        assert_eq!(
            tokenize_line("In 1995", TokenizeOptions::default()),
            "In 1995"
        );
    }
}
