//! Entity F1 equals conlleval on a fixture with tricky boundaries: I- after O, B- inside a
//! run of one type (IOB1), type changes without O, chunks at sentence ends. Expected figures
//! computed by hand with conlleval's rules (see the comments).

use firth_eval::ner::ConllEval;
use firth_text::conll::{read_columns, Columns};
use std::path::Path;

#[test]
fn conlleval_figures_on_tricky_fixture() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tricky.conll");
    let gold = read_columns(
        &path,
        Some(Columns {
            token: 0,
            tag: Some(2),
        }),
        true,
    )
    .unwrap();
    let guess = read_columns(
        &path,
        Some(Columns {
            token: 0,
            tag: Some(3),
        }),
        true,
    )
    .unwrap();
    let mut ev = ConllEval::new();
    for (g, p) in gold.iter().zip(&guess) {
        ev.add_sentence(&g.tags, &p.tags);
    }
    let r = ev.report();
    // Gold chunks: PER(John Smith) ORG(Acme) ORG(Bank Corp) MISC(German) PER(Ann) |
    // LOC(Paris France) PER(Jo) = 7. Guessed: PER(John Smith) LOC(in) ORG(Acme Bank Corp)
    // MISC(German) PER(man) LOC(Ann) | LOC(Paris France) PER(Jo) = 8.
    // Correct: PER(John Smith), MISC(German: ends in both at "man" where the guess changes
    // type), LOC(Paris France), PER(Jo) = 4.
    assert_eq!(
        (r.gold_chunks, r.guessed_chunks, r.correct_chunks),
        (7, 8, 4)
    );
    // Tokens 13; whole-tag matches: John Smith Acme Corp and | France Jo = 7.
    assert_eq!(r.tokens, 13);
    assert!((r.accuracy - 100.0 * 7.0 / 13.0).abs() < 1e-9);
    assert!((r.precision - 50.0).abs() < 1e-9);
    assert!((r.recall - 400.0 / 7.0).abs() < 1e-9);
    assert!((r.f1 - 160.0 / 3.0).abs() < 1e-9, "{}", r.f1);
    let per = &r.by_type["PER"];
    assert!((per.precision - 200.0 / 3.0).abs() < 1e-9 && (per.recall - 200.0 / 3.0).abs() < 1e-9);
    let loc = &r.by_type["LOC"];
    assert!((loc.precision - 100.0 / 3.0).abs() < 1e-9 && (loc.recall - 100.0).abs() < 1e-9);
    assert_eq!(r.by_type["ORG"].f1, 0.0);
    assert_eq!(r.by_type["MISC"].f1, 100.0);
    let text = r.conlleval_text();
    assert!(text.starts_with("processed 13 tokens with 7 phrases; found: 8 phrases; correct: 4.\n"));
    assert!(text.contains("accuracy:  53.85%; precision:  50.00%; recall:  57.14%; FB1:  53.33"));
}

#[test]
fn perfect_and_empty_guesses() {
    let gold = ["B-PER", "I-PER", "O", "B-LOC"];
    let mut ev = ConllEval::new();
    ev.add_sentence(&gold, &gold);
    assert_eq!(ev.report().f1, 100.0);
    let mut ev = ConllEval::new();
    ev.add_sentence(&gold, &["O"; 4]);
    let r = ev.report();
    assert_eq!((r.f1, r.precision, r.recall), (0.0, 0.0, 0.0));
    assert_eq!(r.accuracy, 25.0);
}
