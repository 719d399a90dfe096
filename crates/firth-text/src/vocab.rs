//! A vocabulary maps tokens to dense ids. Word-level models split on whitespace and end every
//! line with `<eos>`; character-level models use Unicode scalar values (not bytes), with `\n`
//! as an ordinary symbol, so multi-byte letters are single tokens.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Stands in for every word not in the vocabulary.
pub const UNK: &str = "<unk>";
/// Marks the end of a line (sentence) in word-level models.
pub const EOS: &str = "<eos>";

/// How text is cut into tokens.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Whitespace-separated words; `<eos>` closes each line.
    Word,
    /// Unicode scalar values; newlines are kept as a symbol.
    Char,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "word" => Some(Level::Word),
            "char" => Some(Level::Char),
            _ => None,
        }
    }
}

/// Tokens in id order, with the inverse map. Ids are assigned in order of first appearance
/// unless built by [`Vocab::from_counts`], so a vocabulary built from the same text is the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vocab {
    tokens: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

impl Vocab {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_tokens(tokens: Vec<String>) -> Self {
        let mut v = Vocab::new();
        for t in tokens {
            v.add(&t);
        }
        v
    }

    /// Returns the id of `token`, adding it if new.
    pub fn add(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.index.get(token) {
            return id;
        }
        let id = self.tokens.len() as u32;
        self.tokens.push(token.to_string());
        self.index.insert(token.to_string(), id);
        id
    }

    pub fn get(&self, token: &str) -> Option<u32> {
        self.index.get(token).copied()
    }

    pub fn token(&self, id: u32) -> &str {
        &self.tokens[id as usize]
    }

    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Rebuilds the token -> id map after deserialising.
    pub fn reindex(&mut self) {
        self.index = self
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
    }

    /// Builds the vocabulary of `text` at `level`. Word vocabularies always contain `<eos>`
    /// and `<unk>` so that unseen words in held-out text have somewhere to go.
    pub fn build(text: &str, level: Level) -> Vocab {
        let mut v = Vocab::new();
        match level {
            Level::Word => {
                for line in text.lines() {
                    for w in line.split_whitespace() {
                        v.add(w);
                    }
                }
                v.add(EOS);
                v.add(UNK);
            }
            Level::Char => {
                for c in text.chars() {
                    let mut buf = [0u8; 4];
                    v.add(c.encode_utf8(&mut buf));
                }
            }
        }
        v
    }

    /// Turns `text` into ids. Unknown words map to `<unk>`; unknown characters are an error
    /// because a character model has no `<unk>` to fall back on.
    pub fn encode(&self, text: &str, level: Level) -> Result<Vec<u32>, String> {
        let mut ids = Vec::with_capacity(text.len() / 4);
        match level {
            Level::Word => {
                let unk = self.get(UNK);
                let eos = self.get(EOS).ok_or("vocabulary has no <eos>")?;
                for (n, line) in text.lines().enumerate() {
                    for w in line.split_whitespace() {
                        match self.get(w).or(unk) {
                            Some(id) => ids.push(id),
                            None => {
                                return Err(format!(
                                    "line {}: word {w:?} is not in the vocabulary",
                                    n + 1
                                ))
                            }
                        }
                    }
                    ids.push(eos);
                }
            }
            Level::Char => {
                let mut line = 1;
                for c in text.chars() {
                    let mut buf = [0u8; 4];
                    match self.get(c.encode_utf8(&mut buf)) {
                        Some(id) => ids.push(id),
                        None => {
                            return Err(format!(
                                "line {line}: character {c:?} never occurs in the training text"
                            ))
                        }
                    }
                    if c == '\n' {
                        line += 1;
                    }
                }
            }
        }
        Ok(ids)
    }

    /// Joins ids back into text: words with spaces (and `<eos>` as a newline), characters as is.
    pub fn decode(&self, ids: &[u32], level: Level) -> String {
        let mut out = String::new();
        for &id in ids {
            let t = self.token(id);
            match level {
                Level::Char => out.push_str(t),
                Level::Word if t == EOS => out.push('\n'),
                Level::Word => {
                    if !out.is_empty() && !out.ends_with('\n') {
                        out.push(' ');
                    }
                    out.push_str(t);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_round_trip_maps_unknowns() {
        let v = Vocab::build("the cat sat\nthe dog\n", Level::Word);
        assert_eq!(v.len(), 6);
        let ids = v.encode("the bird sat\n", Level::Word).unwrap();
        assert_eq!(v.decode(&ids, Level::Word), "the <unk> sat\n");
    }

    #[test]
    fn chars_are_scalar_values_not_bytes() {
        let v = Vocab::build("héé\n", Level::Char);
        assert_eq!(v.len(), 3);
        let ids = v.encode("éh", Level::Char).unwrap();
        assert_eq!(ids, vec![1, 0]);
        let err = v.encode("hx", Level::Char).unwrap_err();
        assert!(err.contains("'x'"), "{err}");
    }

    #[test]
    fn serde_round_trip_reindexes() {
        let v = Vocab::build("a b c", Level::Word);
        let json = serde_json::to_string(&v).unwrap();
        let mut back: Vocab = serde_json::from_str(&json).unwrap();
        back.reindex();
        assert_eq!(back, v);
        assert_eq!(back.get("c"), Some(2));
    }
}
