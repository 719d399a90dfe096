//! Properties every model must have, on synthetic text: normalisation, round trips, and adjusted
//! counts / discounts against a brute-force reference.
mod common;
use common::*;
use firth_ngram::count::{self, CountOptions, Packing};
use firth_ngram::kn::{BuildOptions, Discount, Smoothing};
use firth_ngram::model::Rng;
use firth_ngram::{Corpus, CorpusOptions, Model};
use std::collections::{HashMap, HashSet};

fn sums_to_one(m: &Model, texts: &str, tol: f64) {
    // States reached by scoring prefixes of real sentences, plus the empty and <s> states.
    let mut states = vec![m.null_state(), m.begin_state()];
    for line in texts.lines().take(40) {
        let mut s = m.begin_state();
        for w in line.split(' ') {
            let mut o = s;
            m.score(&s, m.word_id(w), &mut o);
            s = o;
            states.push(s);
        }
    }
    for s in &states {
        let total: f64 = m
            .distribution(s)
            .iter()
            .map(|&lp| 10f64.powf(lp as f64))
            .sum();
        assert!((total - 1.0).abs() < tol, "sum {total} for {:?}", &s);
    }
}

#[test]
fn kneser_ney_distributions_sum_to_one() {
    let text = synthetic(3000, 1);
    for order in [1, 2, 3, 5] {
        let b = build_text(
            &text,
            &BuildOptions {
                order,
                ..Default::default()
            },
        );
        sums_to_one(&b.model, &text, 1e-4);
    }
}

#[test]
fn pruned_and_vocab_limited_models_sum_to_one() {
    let text = synthetic(3000, 2);
    let b = build_text(
        &text,
        &BuildOptions {
            order: 4,
            prune: vec![0, 1, 1, 2],
            ..Default::default()
        },
    );
    sums_to_one(&b.model, &text, 1e-4);
    let b = build_text(
        &text,
        &BuildOptions {
            order: 3,
            vocab_limit: Some(50),
            ..Default::default()
        },
    );
    assert_eq!(b.model.vocab_size(), 53);
    sums_to_one(&b.model, &text, 1e-4);
}

#[test]
fn add_k_sums_to_one() {
    let text = synthetic(2000, 3);
    let b = build_text(
        &text,
        &BuildOptions {
            order: 3,
            smoothing: Smoothing::AddK(0.5),
            ..Default::default()
        },
    );
    sums_to_one(&b.model, &text, 1e-3);
}

#[test]
fn stupid_backoff_scores_relative_frequencies() {
    let b = build_text(
        "a b c\na b d\n",
        &BuildOptions {
            order: 3,
            smoothing: Smoothing::StupidBackoff(0.4),
            ..Default::default()
        },
    );
    let m = &b.model;
    let ids = |ws: &[&str]| ws.iter().map(|w| m.word_id(w)).collect::<Vec<_>>();
    // S(c | a b) = c(a b c) / c(a b) = 1/2.
    assert!((m.lookup(&ids(&["a", "b", "c"])).unwrap().prob - 0.5f32.log10()).abs() < 1e-6);
    // S(a | c) unseen: 0.4 * S(a) = 0.4 * 2/8 (8 tokens with </s>).
    let mut s = m.null_state();
    let mut o = s;
    m.score(&s, m.word_id("c"), &mut o);
    s = o;
    let (lp, _) = m.score(&s, m.word_id("a"), &mut o);
    assert!((lp - (0.4f32 * 0.25).log10()).abs() < 1e-6, "{lp}");
}

#[test]
fn arpa_and_binary_round_trip() {
    let text = synthetic(2000, 4);
    let dir = tmpdir("roundtrip");
    let b = build_text(
        &text,
        &BuildOptions {
            order: 4,
            ..Default::default()
        },
    );
    let ap = dir.join("m.arpa");
    b.write_arpa(&ap).unwrap();
    let a = Model::load(&ap).unwrap();
    let bp = dir.join("m.bin");
    b.model.write_binary(&bp).unwrap();
    let bin = Model::load(&bp).unwrap();
    assert_eq!(a.counts(), b.model.counts());
    assert_eq!(bin.counts(), b.model.counts());
    for (i, keys) in b.ngrams.iter().enumerate() {
        for &k in keys {
            let words: Vec<String> = b
                .pack
                .words(k, i + 1)
                .into_iter()
                .map(|w| b.corpus_words[w as usize].clone())
                .collect();
            let ours = b.entry(i + 1, k);
            for m in [&a, &bin] {
                let ids: Vec<u32> = words.iter().map(|w| m.word_id(w)).collect();
                assert_eq!(m.lookup(&ids), Some(ours), "{words:?}");
            }
        }
    }
    // Writing the re-read ARPA model as binary and scoring gives identical totals.
    let score = |m: &Model| {
        m.score_text(&mut text.as_bytes(), std::path::Path::new("t"), None)
            .unwrap()
    };
    assert_eq!(score(&a), score(&b.model));
    assert_eq!(score(&bin), score(&b.model));
    let _ = std::fs::remove_dir_all(dir);
}

/// Adjusted counts by their definition, with sets: n-grams of the padded sentences; for n < N
/// and not starting with <s>, the number of distinct words to the left.
fn brute_force(corpus: &Corpus, order: usize) -> Vec<HashMap<Vec<u32>, u64>> {
    let mut raw: Vec<HashMap<Vec<u32>, u64>> = vec![HashMap::new(); order];
    let mut left: Vec<HashMap<Vec<u32>, HashSet<u32>>> = vec![HashMap::new(); order];
    let mut sent = vec![1u32];
    for &t in &corpus.tokens {
        sent.push(t);
        if t == 2 {
            for j in 1..sent.len() {
                for n in 1..=order.min(j + 1) {
                    let g = sent[j + 1 - n..=j].to_vec();
                    *raw[n - 1].entry(g.clone()).or_default() += 1;
                    if n < order && j + 1 > n {
                        left[n - 1].entry(g).or_default().insert(sent[j - n]);
                    }
                }
            }
            sent = vec![1];
        }
    }
    let mut out = vec![HashMap::new(); order];
    for n in 1..=order {
        for (g, &c) in &raw[n - 1] {
            let a = if n == order || g[0] == 1 {
                c
            } else {
                left[n - 1][g].len() as u64
            };
            out[n - 1].insert(g.clone(), a);
        }
    }
    out
}

#[test]
fn adjusted_counts_and_discounts_match_definitions() {
    let text = synthetic(1500, 5);
    let c = Corpus::from_text(&text, CorpusOptions::default()).unwrap();
    for order in [1, 2, 3, 4] {
        let p = Packing::new(order, c.vocab_size()).unwrap();
        let raw = count::count(&c.tokens, &p, &CountOptions::default()).unwrap();
        let oc = count::adjust(&raw, &p, true);
        let reference = brute_force(&c, order);
        for n in 1..=order {
            let mut ours: HashMap<Vec<u32>, u64> = HashMap::new();
            for (i, &k) in oc[n - 1].keys.iter().enumerate() {
                if n == 1 && k <= 1 {
                    continue; // <unk> and <s> carry count 0 by convention
                }
                ours.insert(p.words(k, n), oc[n - 1].adjusted[i]);
            }
            assert_eq!(ours, reference[n - 1], "order {n} of {order}");
            // Closed form, Chen & Goodman eq. 26, in f64.
            let mut t = [0u64; 5];
            for i in 0..oc[n - 1].len() {
                let a = oc[n - 1].stat_count(i);
                if a < 5 {
                    t[a as usize] += 1;
                }
            }
            if let Ok(d) = Discount::estimate(n, &t) {
                let y = t[1] as f64 / (t[1] as f64 + 2.0 * t[2] as f64);
                for k in 1..4 {
                    let want = k as f64 - (k + 1) as f64 * y * t[k + 1] as f64 / t[k] as f64;
                    assert!(
                        (d.0[k] as f64 - want).abs() < 1e-5,
                        "D{k} {} vs {want}",
                        d.0[k]
                    );
                }
            }
        }
    }
}

#[test]
fn discount_estimate_closed_form_and_errors() {
    // t1=100, t2=40, t3=20, t4=10: Y = 100 / 180.
    let d = Discount::estimate(3, &[0, 100, 40, 20, 10]).unwrap();
    let y = 100.0 / 180.0;
    assert!((d.0[1] as f64 - (1.0 - 2.0 * y * 40.0 / 100.0)).abs() < 1e-6);
    assert!((d.0[2] as f64 - (2.0 - 3.0 * y * 20.0 / 40.0)).abs() < 1e-6);
    assert!((d.0[3] as f64 - (3.0 - 4.0 * y * 10.0 / 20.0)).abs() < 1e-6);
    let e = Discount::estimate(2, &[0, 5, 0, 1, 1]).unwrap_err();
    assert!(
        e.contains("adjusted count 3") && e.contains("--discount-fallback"),
        "{e}"
    );
    let e = Discount::estimate(2, &[0, 10, 1, 1, 100]).unwrap_err();
    assert!(e.contains("outside"), "{e}");
}

#[test]
fn generate_is_deterministic_per_seed() {
    let text = synthetic(1000, 6);
    let b = build_text(
        &text,
        &BuildOptions {
            order: 3,
            ..Default::default()
        },
    );
    let g = |seed| {
        let mut r = Rng::new(seed);
        (0..5)
            .map(|_| b.model.generate(&mut r, 1.0, 30).join(" "))
            .collect::<Vec<_>>()
    };
    assert_eq!(g(1), g(1));
    assert_ne!(g(1), g(2));
    for s in g(3) {
        assert!(!s.contains("<unk>") && !s.contains("<s>"));
        assert!(s.split(' ').count() <= 30);
    }
}

#[test]
fn spilled_counting_gives_the_same_model() {
    let text = synthetic(3000, 7);
    let a = build_text(
        &text,
        &BuildOptions {
            order: 3,
            ..Default::default()
        },
    );
    let dir = tmpdir("spill");
    let b = build_text(
        &text,
        &BuildOptions {
            order: 3,
            memory: 16 * 4096,
            temp_dir: dir.clone(),
            ..Default::default()
        },
    );
    assert_eq!(a.ngrams, b.ngrams);
    let score = |m: &Model| {
        m.score_text(&mut text.as_bytes(), std::path::Path::new("t"), None)
            .unwrap()
    };
    assert_eq!(score(&a.model), score(&b.model));
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "spilled runs are removed"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn character_models() {
    let text = "abc abd\nabc\n";
    let opts = CorpusOptions {
        chars: true,
        ..Default::default()
    };
    let c = Corpus::from_text(text, opts).unwrap();
    let b = firth_ngram::kn::build(
        &c,
        &BuildOptions {
            order: 3,
            discount_fallback: Some(Discount::FALLBACK),
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    let m = b.model.with_chars(true);
    assert!(m.word_id("<sp>") > 2);
    let st = m
        .score_text(&mut "abc\n".as_bytes(), std::path::Path::new("t"), None)
        .unwrap();
    assert_eq!(st.tokens, 4);
    assert_eq!(st.oov, 0);
}
