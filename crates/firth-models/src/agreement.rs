//! Long-range subject-verb agreement (Linzen et al. 2016): does a language model prefer
//! "the writer of the books *is*" to "… *are*"?
//!
//! Each test item is a sentence prefix ending just before a present-tense (or was/were) verb,
//! the verb form that agrees with the subject and the one that does not, and the number of
//! words between the subject's head noun and the verb — the distance the model must carry the
//! subject's number. A model passes an item when it gives the agreeing form the higher
//! probability after the prefix; accuracy is reported per distance, with counts.
//!
//! Items come from two places: dependency-parsed sentences in CoNLL-U (UD English EWT:
//! nsubj arcs, `Number` features and VBZ/VBP tags) and a small built-in template generator
//! ("the analyst of the banks that the firm joined also *has*"). Words are written the way Penn
//! Treebank LM data writes them: lower case, numbers as `N`, no punctuation.

use crate::lm::LanguageModel;
use anyhow::{bail, Result};
use firth_nn::Rng;
use firth_text::{Level, Vocab};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One test item.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgreementItem {
    /// Words before the verb, from the sentence start.
    pub prefix: Vec<String>,
    /// Index of the subject's head noun in `prefix`.
    pub subject: usize,
    pub correct: String,
    pub wrong: String,
    /// Words strictly between the subject and the verb.
    pub distance: usize,
}

/// Accuracy at one distance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DistanceScore {
    pub distance: usize,
    pub correct: usize,
    pub total: usize,
}

impl DistanceScore {
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.total.max(1) as f64
    }
}

/// Counts, per distance, the items a model got right (`right[i]` for `items[i]`).
pub fn score_by_distance(items: &[AgreementItem], right: &[bool]) -> Vec<DistanceScore> {
    let mut m: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for (it, &ok) in items.iter().zip(right) {
        let e = m.entry(it.distance).or_default();
        e.0 += ok as usize;
        e.1 += 1;
    }
    m.into_iter()
        .map(|(distance, (correct, total))| DistanceScore {
            distance,
            correct,
            total,
        })
        .collect()
}

/// PTB's spelling of a token: lower case, a number becomes `N`.
fn ptb_word(form: &str) -> String {
    let lower = form.to_lowercase();
    if lower.chars().any(|c| c.is_ascii_digit())
        && lower
            .chars()
            .all(|c| c.is_ascii_digit() || ",.:/-".contains(c))
    {
        "N".to_string()
    } else {
        lower
    }
}

/// The third-person singular present of a verb from its base form (VBP = lemma for every verb
/// but *be*).
fn third_singular(base: &str) -> String {
    match base {
        "have" => return "has".into(),
        "do" => return "does".into(),
        "go" => return "goes".into(),
        _ => {}
    }
    let b = base.as_bytes();
    if ["s", "x", "z", "ch", "sh", "o"]
        .iter()
        .any(|e| base.ends_with(e))
    {
        format!("{base}es")
    } else if base.len() > 1 && b[b.len() - 1] == b'y' && !b"aeiou".contains(&b[b.len() - 2]) {
        format!("{}ies", &base[..base.len() - 1])
    } else {
        format!("{base}s")
    }
}

struct Token {
    form: String,
    lemma: String,
    upos: String,
    xpos: String,
    feats: String,
    head: usize,
    deprel: String,
}

fn number(feats: &str) -> Option<&str> {
    feats
        .split('|')
        .find_map(|f| f.strip_prefix("Number="))
        .filter(|n| *n == "Sing" || *n == "Plur")
}

/// Items from a CoNLL-U file's text: every finite present-tense verb or auxiliary (VBZ/VBP, and
/// was/were) whose subject (nsubj or nsubj:pass of the verb, or of the predicate a copula or
/// auxiliary hangs on) is a noun with a `Number` feature that agrees with the verb, with the
/// subject before the verb. Punctuation is dropped before distances are counted. `name` is
/// used in error messages.
pub fn from_conllu(text: &str, name: &str) -> Result<Vec<AgreementItem>> {
    let mut items = Vec::new();
    let mut sent: Vec<Token> = Vec::new();
    let mut start_line = 1;
    for (n, line) in text.lines().chain(std::iter::once("")).enumerate() {
        let line = line.trim_end();
        if line.is_empty() {
            if !sent.is_empty() {
                sentence_items(&sent, &mut items);
                sent.clear();
            }
            start_line = n + 2;
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 10 {
            bail!(
                "{name}:{}: expected 10 tab-separated CoNLL-U columns, found {}; is this a .conllu file?",
                n + 1,
                f.len()
            );
        }
        if f[0].contains('-') || f[0].contains('.') {
            continue; // multiword token ranges and empty nodes
        }
        let id: usize = f[0]
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}:{}: bad token id {:?}", n + 1, f[0]))?;
        if id != sent.len() + 1 {
            bail!(
                "{name}:{}: token id {id} out of order in the sentence starting at line {start_line}",
                n + 1
            );
        }
        let head = if f[6] == "_" {
            0
        } else {
            f[6].parse()
                .map_err(|_| anyhow::anyhow!("{name}:{}: bad head {:?}", n + 1, f[6]))?
        };
        sent.push(Token {
            form: f[1].to_string(),
            lemma: f[2].to_string(),
            upos: f[3].to_string(),
            xpos: f[4].to_string(),
            feats: f[5].to_string(),
            head,
            deprel: f[7].to_string(),
        });
    }
    Ok(items)
}

fn sentence_items(sent: &[Token], items: &mut Vec<AgreementItem>) {
    // Position of each token once punctuation is dropped.
    let mut pos = vec![usize::MAX; sent.len()];
    let mut words = Vec::new();
    for (i, t) in sent.iter().enumerate() {
        if t.upos != "PUNCT" && t.upos != "SYM" {
            pos[i] = words.len();
            words.push(ptb_word(&t.form));
        }
    }
    for (v, t) in sent.iter().enumerate() {
        let form = t.form.to_lowercase();
        let (plural_verb, alt) = match (t.xpos.as_str(), form.as_str()) {
            (_, "is") if t.lemma == "be" => (false, "are".to_string()),
            (_, "are") if t.lemma == "be" => (true, "is".to_string()),
            (_, "was") if t.lemma == "be" => (false, "were".to_string()),
            (_, "were") if t.lemma == "be" => (true, "was".to_string()),
            ("VBZ", _) if t.lemma != "be" => (false, t.lemma.to_lowercase()),
            ("VBP", _) if t.lemma != "be" => (true, third_singular(&t.lemma.to_lowercase())),
            _ => continue,
        };
        if form.contains('\'') || alt == form || pos[v] == usize::MAX {
            continue;
        }
        let anchor = if matches!(t.deprel.as_str(), "cop" | "aux" | "aux:pass") && t.head > 0 {
            t.head - 1
        } else {
            v
        };
        let subj = sent.iter().enumerate().find(|(_, s)| {
            s.head == anchor + 1 && (s.deprel == "nsubj" || s.deprel == "nsubj:pass")
        });
        let Some((s, st)) = subj else { continue };
        if s >= v || st.upos != "NOUN" || pos[s] == usize::MAX {
            continue;
        }
        let plural_subj = match number(&st.feats) {
            Some("Plur") => true,
            Some(_) => false,
            None => continue,
        };
        if plural_subj != plural_verb {
            continue; // annotation disagreement or a collective noun: not a clean test
        }
        items.push(AgreementItem {
            prefix: words[..pos[v]].to_vec(),
            subject: pos[s],
            correct: form,
            wrong: alt,
            distance: pos[v] - pos[s] - 1,
        });
    }
}

/// Singular/plural noun pairs, all frequent in PTB.
const NOUNS: &[(&str, &str)] = &[
    ("company", "companies"),
    ("executive", "executives"),
    ("analyst", "analysts"),
    ("bank", "banks"),
    ("investor", "investors"),
    ("official", "officials"),
    ("manager", "managers"),
    ("director", "directors"),
    ("trader", "traders"),
    ("plan", "plans"),
    ("report", "reports"),
    ("firm", "firms"),
    ("economist", "economists"),
    ("lawyer", "lawyers"),
    ("dealer", "dealers"),
    ("unit", "units"),
    ("program", "programs"),
    ("customer", "customers"),
];
const VERBS: &[(&str, &str)] = &[("is", "are"), ("has", "have"), ("was", "were")];
const ADVERBS: &[&str] = &["also", "still", "now", "often", "usually"];
const PREPOSITIONS: &[&str] = &["of", "for", "with", "from", "at"];
const PAST_VERBS: &[&str] = &["joined", "criticized", "bought", "sold", "left", "made"];

/// Built-in items: "the N1 [adv] (P the N2)* [that the N3 V-ed] [adv] V", where every noun
/// between subject and verb is drawn with random number (so some attract the wrong form) and
/// the subject is singular in half the items. `per_pattern` items for each of the 32
/// arrangements of the optional parts, giving distances from 0 to 15.
pub fn templates(per_pattern: usize, seed: u64) -> Vec<AgreementItem> {
    let mut rng = Rng::new(seed);
    let pick = |n: usize, rng: &mut Rng| rng.below(n as u64) as usize;
    let mut items = Vec::new();
    for pattern in 0..32usize {
        let adv1 = pattern & 1 != 0;
        let pps = (pattern >> 1) & 3;
        let rc = pattern & 8 != 0;
        let adv2 = pattern & 16 != 0;
        for k in 0..per_pattern {
            let plural = k % 2 == 1;
            let noun = |rng: &mut Rng, pl: bool| {
                let (s, p) = NOUNS[rng.below(NOUNS.len() as u64) as usize];
                if pl {
                    p
                } else {
                    s
                }
            };
            let mut w: Vec<String> = vec!["the".into(), noun(&mut rng, plural).into()];
            if adv1 {
                w.push(ADVERBS[pick(ADVERBS.len(), &mut rng)].into());
            }
            for _ in 0..pps {
                w.push(PREPOSITIONS[pick(PREPOSITIONS.len(), &mut rng)].into());
                w.push("the".into());
                let pl = rng.below(2) == 1;
                w.push(noun(&mut rng, pl).into());
            }
            if rc {
                w.push("that".into());
                w.push("the".into());
                let pl = rng.below(2) == 1;
                w.push(noun(&mut rng, pl).into());
                w.push(PAST_VERBS[pick(PAST_VERBS.len(), &mut rng)].into());
            }
            if adv2 {
                w.push(ADVERBS[pick(ADVERBS.len(), &mut rng)].into());
            }
            let (sg, pl) = VERBS[pick(VERBS.len(), &mut rng)];
            let (correct, wrong) = if plural { (pl, sg) } else { (sg, pl) };
            items.push(AgreementItem {
                distance: w.len() - 2,
                prefix: w,
                subject: 1,
                correct: correct.into(),
                wrong: wrong.into(),
            });
        }
    }
    items
}

/// Keeps the items whose subject and both verb forms are words the model knows (other
/// unknown words are read as `<unk>`).
pub fn known_items(items: Vec<AgreementItem>, knows: impl Fn(&str) -> bool) -> Vec<AgreementItem> {
    items
        .into_iter()
        .filter(|it| knows(&it.prefix[it.subject]) && knows(&it.correct) && knows(&it.wrong))
        .collect()
}

/// For each item, whether the n-gram `model` gives the agreeing verb the higher probability
/// after the sentence start and the prefix. Ties count as wrong. A model built from PTB with
/// `<unk>` renamed to `_unk_` (its builder reserves `<unk>`) reads unknown words as that
/// trained token, as the neural models do.
pub fn ngram_right(model: &firth_ngram::model::Model, items: &[AgreementItem]) -> Vec<bool> {
    let unk = model.word_id("_unk_");
    let id = |w: &str| match model.word_id(w) {
        0 => unk,
        i => i,
    };
    items
        .iter()
        .map(|it| {
            let mut st = model.begin_state();
            let mut next = st;
            for w in &it.prefix {
                let w = if w == "<unk>" { "_unk_" } else { w.as_str() };
                model.score(&st, id(w), &mut next);
                st = next;
            }
            let (pc, _) = model.score(&st, model.word_id(&it.correct), &mut next);
            let (pw, _) = model.score(&st, model.word_id(&it.wrong), &mut next);
            pc > pw
        })
        .collect()
}

/// For each item, whether `model` gives the agreeing verb the higher probability after
/// `<eos>` + prefix (the state a sentence starts in when the model reads running text). Items
/// of equal length are read `batch` at a time. Ties count as wrong.
pub fn lm_right(
    model: &mut LanguageModel<f32>,
    vocab: &Vocab,
    items: &[AgreementItem],
    batch: usize,
) -> Result<Vec<bool>> {
    if model.config.level != Level::Word {
        bail!("agreement needs a word-level model; this one reads characters");
    }
    let pad = LanguageModel::pad_for(vocab, Level::Word);
    let unk = vocab.get(firth_text::UNK).unwrap_or(pad);
    let id = |w: &str| vocab.get(w).unwrap_or(unk);
    let mut by_len: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        by_len.entry(it.prefix.len()).or_default().push(i);
    }
    let mut right = vec![false; items.len()];
    let v = model.vocab();
    let mut rng = Rng::new(0);
    let mut lens: Vec<_> = by_len.into_iter().collect();
    lens.sort();
    for (len, idx) in lens {
        let steps = len + 1;
        for chunk in idx.chunks(batch.max(1)) {
            let b_n = chunk.len();
            let mut x = vec![pad; steps * b_n]; // (T, B); row 0 is <eos>
            for (b, &i) in chunk.iter().enumerate() {
                for (s, w) in items[i].prefix.iter().enumerate() {
                    x[(s + 1) * b_n + b] = id(w);
                }
            }
            let mut state = model.start_state(b_n, pad);
            model.forward_logits(&x, steps, b_n, &mut state, false, &mut rng);
            let logits = model.logits();
            for (b, &i) in chunk.iter().enumerate() {
                let row = &logits[((steps - 1) * b_n + b) * v..((steps - 1) * b_n + b + 1) * v];
                right[i] = row[id(&items[i].correct) as usize] > row[id(&items[i].wrong) as usize];
            }
        }
    }
    Ok(right)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONLLU: &str = "# text = The writer of the books is here.
1\tThe\tthe\tDET\tDT\tDefinite=Def\t2\tdet\t_\t_
2\twriter\twriter\tNOUN\tNN\tNumber=Sing\t7\tnsubj\t_\t_
3\tof\tof\tADP\tIN\t_\t5\tcase\t_\t_
4\tthe\tthe\tDET\tDT\tDefinite=Def\t5\tdet\t_\t_
5\tbooks\tbook\tNOUN\tNNS\tNumber=Plur\t2\tnmod\t_\t_
6\tis\tbe\tAUX\tVBZ\tNumber=Sing|Person=3|Tense=Pres\t7\tcop\t_\t_
7\there\there\tADV\tRB\t_\t0\troot\t_\t_
8\t.\t.\tPUNCT\t.\t_\t7\tpunct\t_\t_

1\tDogs\tdog\tNOUN\tNNS\tNumber=Plur\t4\tnsubj\t_\t_
2\t,\t,\tPUNCT\t,\t_\t3\tpunct\t_\t_
3\tsurely\tsurely\tADV\tRB\t_\t4\tadvmod\t_\t_
4\tcatch\tcatch\tVERB\tVBP\tTense=Pres\t0\troot\t_\t_
5\t12\t12\tNUM\tCD\tNumType=Card\t6\tnummod\t_\t_
6\tballs\tball\tNOUN\tNNS\tNumber=Plur\t4\tobj\t_\t_
7\tthat\tthat\tPRON\tWDT\t_\t8\tnsubj\t_\t_
8\tflies\tfly\tVERB\tVBZ\tNumber=Sing\t6\tacl:relcl\t_\t_
";

    #[test]
    fn conllu_items_have_forms_and_distances() {
        let items = from_conllu(CONLLU, "test.conllu").unwrap();
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[0].prefix, ["the", "writer", "of", "the", "books"]);
        assert_eq!(
            (items[0].subject, items[0].distance),
            (1, 3),
            "the copula's subject hangs on the predicate"
        );
        assert_eq!(
            (items[0].correct.as_str(), items[0].wrong.as_str()),
            ("is", "are")
        );
        // Punctuation does not count; the relative pronoun is no noun subject.
        assert_eq!(items[1].prefix, ["dogs", "surely"]);
        assert_eq!(items[1].distance, 1);
        assert_eq!(
            (items[1].correct.as_str(), items[1].wrong.as_str()),
            ("catch", "catches")
        );
        assert!(from_conllu("1\tx\n", "bad.conllu").is_err());
    }

    #[test]
    fn forms_and_numbers() {
        assert_eq!(third_singular("fly"), "flies");
        assert_eq!(third_singular("say"), "says");
        assert_eq!(third_singular("push"), "pushes");
        assert_eq!(third_singular("have"), "has");
        assert_eq!(ptb_word("1,200"), "N");
        assert_eq!(ptb_word("Bank"), "bank");
    }

    #[test]
    fn templates_cover_distances_and_both_numbers() {
        let items = templates(4, 1);
        assert_eq!(items.len(), 128);
        let scores = score_by_distance(&items, &vec![true; items.len()]);
        let ds: Vec<usize> = scores.iter().map(|s| s.distance).collect();
        assert_eq!(ds.first(), Some(&0));
        assert_eq!(ds.last(), Some(&(1 + 9 + 4 + 1)));
        for it in &items {
            assert_eq!(it.prefix.len(), it.distance + 2);
            let plural = it.prefix[1].ends_with('s');
            assert_eq!(
                ["are", "have", "were"].contains(&it.correct.as_str()),
                plural
            );
        }
        assert_eq!(templates(4, 1), items, "same seed, same items");
    }

    #[test]
    fn scores_count_per_distance() {
        let mk = |d| AgreementItem {
            prefix: vec![],
            subject: 0,
            correct: "is".into(),
            wrong: "are".into(),
            distance: d,
        };
        let items = vec![mk(2), mk(0), mk(2), mk(2)];
        let s = score_by_distance(&items, &[true, false, false, true]);
        assert_eq!(
            s,
            vec![
                DistanceScore {
                    distance: 0,
                    correct: 0,
                    total: 1
                },
                DistanceScore {
                    distance: 2,
                    correct: 2,
                    total: 3
                }
            ]
        );
        assert!((s[1].accuracy() - 2.0 / 3.0).abs() < 1e-12);
    }
}
