//! firth's BLEU and chrF against the values sacrebleu 2.6.0 computed for the fixture files in
//! `tests/fixtures/bleu/` (written by `gen_expected.py` there). Every statistic must agree
//! exactly and every score to 1e-9.

use firth_eval::bleu::{
    corpus_bleu, corpus_bleu_with, corpus_chrf, corpus_chrf_with, read_lines, tokenize_13a,
    BleuOptions, BleuTokenize, ChrfOptions, Smoothing,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bleu")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn lines(name: &str) -> Vec<String> {
    read_lines(&dir().join(name)).unwrap()
}

fn assert_close(what: &str, a: f64, e: f64) {
    assert!(
        (a - e).abs() <= 1e-9 * e.abs().max(1.0),
        "{what}: firth {a} vs sacrebleu {e}"
    );
}

#[test]
fn tokenizer_13a_matches_sacrebleu_line_by_line() {
    let exp = expected();
    let files = exp["tokenized_13a"].as_object().unwrap();
    let mut n = 0;
    for (file, toks) in files {
        for (i, (line, tok)) in lines(file).iter().zip(toks.as_array().unwrap()).enumerate() {
            assert_eq!(
                BleuTokenize::Thirteen13a.preprocess(line, false),
                tok.as_str().unwrap(),
                "{file}:{}",
                i + 1
            );
            n += 1;
        }
    }
    assert!(n >= 50, "{n} lines checked");
    assert_eq!(tokenize_13a("a.b"), "a . b");
}

#[test]
fn bleu_and_chrf_match_sacrebleu() {
    let exp = expected();
    let mut checked = 0;
    for case in exp["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let hyps = lines(case["hyp"].as_str().unwrap());
        let refs: Vec<Vec<String>> = case["refs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| lines(r.as_str().unwrap()))
            .collect();
        let streams: Vec<&[String]> = refs.iter().map(|r| r.as_slice()).collect();
        for e in case["bleu"].as_array().unwrap() {
            let tokenize = match e["tokenize"].as_str().unwrap() {
                "13a" => BleuTokenize::Thirteen13a,
                _ => BleuTokenize::None,
            };
            let lowercase = e["lowercase"].as_bool().unwrap();
            let smoothing = match e["smooth"].as_str().unwrap() {
                "exp" => Smoothing::Exp,
                _ => Smoothing::None,
            };
            let what = format!("{name} tok={tokenize:?} lc={lowercase} smooth={smoothing:?}");
            let b = corpus_bleu_with(
                &hyps,
                &streams,
                &BleuOptions {
                    tokenize,
                    lowercase,
                    smoothing,
                },
            )
            .unwrap();
            let ints = |k: &str| -> Vec<usize> {
                e[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as usize)
                    .collect()
            };
            assert_eq!(b.counts.to_vec(), ints("counts"), "{what}");
            assert_eq!(b.totals.to_vec(), ints("totals"), "{what}");
            assert_eq!(b.hyp_len as u64, e["hyp_len"].as_u64().unwrap(), "{what}");
            assert_eq!(b.ref_len as u64, e["ref_len"].as_u64().unwrap(), "{what}");
            assert_close(&what, b.score, e["score"].as_f64().unwrap());
            assert_close(&what, b.brevity_penalty, e["bp"].as_f64().unwrap());
            assert_close(&what, b.ratio, e["ratio"].as_f64().unwrap());
            for (n, p) in e["precisions"].as_array().unwrap().iter().enumerate() {
                assert_close(&what, b.precisions[n], p.as_f64().unwrap());
            }
            // The two-decimal figure people quote is identical.
            assert_eq!(
                format!("{:.2}", b.score),
                format!("{:.2}", e["score"].as_f64().unwrap()),
                "{what}"
            );
            if refs.len() == 1 && smoothing == Smoothing::Exp {
                let simple = corpus_bleu(&hyps, &refs[0], tokenize, lowercase).unwrap();
                assert_eq!(simple, b);
            }
            checked += 1;
        }
        for (key, word_order) in [("chrf", 0), ("chrf_pp", 2)] {
            for e in case[key].as_array().unwrap() {
                let lowercase = e["lowercase"].as_bool().unwrap();
                let opts = ChrfOptions {
                    word_order,
                    lowercase,
                    ..Default::default()
                };
                let f = corpus_chrf_with(&hyps, &streams, &opts).unwrap();
                let what = format!("{name} {key} lc={lowercase}");
                assert_close(&what, f, e["score"].as_f64().unwrap());
                if refs.len() == 1 && word_order == 0 && !lowercase {
                    assert_eq!(corpus_chrf(&hyps, &refs[0]).unwrap(), f);
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 70, "{checked} scores checked");
}
