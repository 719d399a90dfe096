//! firth against KenLM: the fixtures' `*.kenlm.*.arpa` files were written by `lmplz` (KenLM,
//! commit of kpu/kenlm master) on the fixture corpora; firth must give every n-gram the same
//! probability and backoff.
mod common;
use common::*;
use firth_ngram::kn::{BuildOptions, Discount};
use firth_ngram::Model;

/// Compares every n-gram of `reference` with `built`, by words.
fn assert_same(built: &firth_ngram::kn::Built, reference: &Model, tol: f32) {
    let m = &built.model;
    assert_eq!(m.order(), reference.order());
    assert_eq!(m.counts(), reference.counts(), "n-gram counts per order");
    for (i, keys) in built.ngrams.iter().enumerate() {
        let n = i + 1;
        for &k in keys {
            let words: Vec<&str> = built
                .pack
                .words(k, n)
                .into_iter()
                .map(|w| built.corpus_words[w as usize].as_str())
                .collect();
            let ours = built.entry(n, k);
            let ids: Vec<u32> = words.iter().map(|w| reference.word_id(w)).collect();
            let theirs = reference
                .lookup(&ids)
                .unwrap_or_else(|| panic!("{words:?} missing from the KenLM model"));
            assert!(
                (ours.prob - theirs.prob).abs() <= tol
                    && (ours.backoff - theirs.backoff).abs() <= tol,
                "{words:?}: firth {ours:?} KenLM {theirs:?}"
            );
        }
    }
}

#[test]
fn trigram_matches_lmplz() {
    let b = build_file(
        "toy.txt",
        &BuildOptions {
            order: 3,
            ..Default::default()
        },
    );
    let k = Model::load(&fixture("toy.kenlm.o3.arpa")).unwrap();
    // lmplz's log for this corpus: "1 223 D1=0.225 D2=0.91129 D3+=2.478".
    assert!((b.discounts[0].0[1] - 0.225).abs() < 1e-5);
    assert!((b.discounts[0].0[3] - 2.478).abs() < 1e-3);
    assert!((b.discounts[2].0[2] - 1.48697).abs() < 1e-5);
    assert_same(&b, &k, 0.0);
}

#[test]
fn pruned_4gram_matches_lmplz() {
    let b = build_file(
        "toy.txt",
        &BuildOptions {
            order: 4,
            prune: vec![0, 1],
            ..Default::default()
        },
    );
    let k = Model::load(&fixture("toy.kenlm.o4.prune01.arpa")).unwrap();
    assert_eq!(b.model.counts(), &[223, 626, 520, 158]);
    assert_same(&b, &k, 0.0);
}

/// The lecture corpus, by hand (bigram, fallback discounts 0.5 / 1 / 1.5 since the corpus has
/// no adjusted count 3). Unigram adjusted counts: every word has one left neighbour, `</s>` two
/// (books, exams); sum 8, so gamma = (0.5 * 6 + 1 * 1) / 8 = 1/2 and the uniform share over 8
/// words (all but `<s>`) is 1/8:
///   p(the) = (1 - 0.5) / 8 + 0.5 / 8 = 0.125      p(</s>) = (2 - 1) / 8 + 1/16 = 0.1875
///   p(<unk>) = 1/16
/// Bigrams: context "their" has books:1, exams:1, so gamma(their) = 0.5 * 2 / 2 = 0.5 and
///   p(books | their) = 0.5 / 2 + 0.5 * 0.125 = 0.3125
/// context "the" has students:2 (D2 = 1), so gamma(the) = 1 / 2 and
///   p(students | the) = (2 - 1) / 2 + 0.5 * 0.125 = 0.5625,  p(books | the) = 0.5 * 0.125.
#[test]
fn students_by_hand() {
    let b = build_file(
        "students.txt",
        &BuildOptions {
            order: 2,
            discount_fallback: Some(Discount::FALLBACK),
            ..Default::default()
        },
    );
    let m = &b.model;
    let p = |ws: &[&str]| {
        let ids: Vec<u32> = ws.iter().map(|w| m.word_id(w)).collect();
        10f64.powf(m.lookup(&ids).unwrap().prob as f64)
    };
    let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    close(p(&["the"]), 0.125);
    close(p(&["</s>"]), 0.1875);
    close(p(&["<unk>"]), 0.0625);
    close(p(&["their", "books"]), 0.3125);
    close(p(&["the", "students"]), 0.5625);
    close(p(&["<s>", "the"]), 0.5625);
    // Unseen bigram: backoff(the) * p(books).
    let mut s = m.null_state();
    let mut o = s;
    m.score(&s, m.word_id("the"), &mut o);
    s = o;
    let (lp, len) = m.score(&s, m.word_id("books"), &mut o);
    assert_eq!(len, 1);
    close(10f64.powf(lp as f64), 0.5 * 0.125);
    // And the whole model equals lmplz --discount_fallback.
    let k = Model::load(&fixture("students.kenlm.o2.arpa")).unwrap();
    assert_same(&b, &k, 0.0);
}

#[test]
fn tiny_corpus_asks_for_discount_fallback() {
    let c = firth_ngram::Corpus::read(&[fixture("students.txt")], Default::default(), &mut |_| {})
        .unwrap();
    let e = firth_ngram::kn::build(
        &c,
        &BuildOptions {
            order: 2,
            ..Default::default()
        },
        &mut |_| {},
    )
    .err()
    .expect("the closed form needs adjusted counts 1 to 4")
    .to_string();
    assert!(e.contains("--discount-fallback"), "{e}");
}
