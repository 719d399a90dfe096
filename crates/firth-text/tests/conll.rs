//! Column-file reader and tag-scheme conversion.

use firth_text::conll::{
    chunks, convert, document_vote, parse_columns, read_columns, Columns, Scheme, Sentence,
};
use std::path::Path;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn conll03_docstart_blank_lines_and_columns() {
    let text = "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\n\nPeter NNP I-NP I-PER\n-DOCSTART- -X- O O\nBonn NNP I-NP I-LOC\n";
    let s = parse_columns(text, "t", None, true, false).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].tokens, ["EU", "rejects"]);
    assert_eq!(s[0].tags, ["I-ORG", "O"]);
    assert_eq!(s[0].line, 3);
    assert_eq!(s[2].tokens, ["Bonn"]);
    // Sentences before the second -DOCSTART- are document 0, after it document 1.
    assert_eq!(s.iter().map(|s| s.doc).collect::<Vec<_>>(), [0, 0, 1]);
    let pos = parse_columns(
        text,
        "t",
        Some(Columns {
            token: 0,
            tag: Some(1),
        }),
        true,
        false,
    )
    .unwrap();
    assert_eq!(pos[0].tags, ["NNP", "VBZ"]);
    // word<TAB>tag, CRLF line ends.
    let tsv = parse_columns("a\tDET\r\nb c\tNOUN\r\n\r\n", "t", None, true, false).unwrap();
    assert_eq!(tsv[0].tokens, ["a", "b c"]);
    assert_eq!(tsv[0].tags, ["DET", "NOUN"]);
    // Tokens only, for prediction.
    let raw = parse_columns("a\nb\n\nc\n", "t", None, false, false).unwrap();
    assert_eq!(raw.len(), 2);
    assert!(raw[0].tags.is_empty());
}

#[test]
fn conllu_skips_comments_multiword_tokens_and_empty_nodes() {
    let s = read_columns(&fixture("sample.conllu"), None, true).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].tokens, ["I", "ca", "n't", "go", "."]);
    assert_eq!(s[0].tags, ["PRON", "AUX", "PART", "VERB", "PUNCT"]);
    assert_eq!(s[1].tags, ["INTJ"]);
}

#[test]
fn malformed_lines_are_reported_with_file_and_line() {
    let e = read_columns(&fixture("malformed.conll"), None, true).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("malformed.conll:3:"), "{msg}");
    let e = parse_columns("a\nb\n", "x.tsv", None, true, false).unwrap_err();
    assert!(format!("{e}").contains("x.tsv:1:"), "{e}");
    let e = parse_columns("-DOCSTART- -X- O O\n\n", "e", None, true, false).unwrap_err();
    assert!(format!("{e}").contains("no sentences"));
    let e = parse_columns(
        "a b\n",
        "c",
        Some(Columns {
            token: 3,
            tag: None,
        }),
        true,
        false,
    )
    .unwrap_err();
    assert!(format!("{e}").contains("c:1: the token column is 3"));
}

#[test]
fn scheme_conversion_round_trips() {
    let iob1 = [
        "I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "O", "I-MISC",
    ];
    let iob2 = [
        "B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "O", "B-MISC",
    ];
    let bioes = [
        "B-PER", "E-PER", "S-PER", "O", "S-LOC", "S-ORG", "O", "S-MISC",
    ];
    assert_eq!(convert(&iob1, Scheme::Iob2), iob2);
    assert_eq!(convert(&iob1, Scheme::Bioes), bioes);
    assert_eq!(convert(&iob2, Scheme::Iob1), iob1);
    assert_eq!(convert(&bioes, Scheme::Iob1), iob1);
    assert_eq!(convert(&bioes, Scheme::Iob2), iob2);
    assert_eq!(chunks(&bioes), chunks(&iob1));
    assert_eq!(
        chunks(&["S-A", "S-A", "B-A", "I-A", "E-A", "B-A", "E-A"]).len(),
        4
    );
    // Ill-formed input converts through conlleval's reading: I- after O starts a chunk.
    assert_eq!(
        convert(&["O", "I-X", "E-X", "I-X"], Scheme::Iob2),
        ["O", "B-X", "I-X", "B-X"]
    );
    assert_eq!(Scheme::parse("BIOES"), Some(Scheme::Bioes));
}

fn doc_sentence(doc: usize, tokens: &str) -> Sentence {
    Sentence {
        tokens: tokens.split(' ').map(String::from).collect(),
        tags: vec![],
        line: 1,
        doc,
    }
}

fn tags(t: &str) -> Vec<String> {
    t.split(' ').map(String::from).collect()
}

#[test]
fn document_vote_gives_a_name_its_majority_type_within_its_document_only() {
    let sents = [
        doc_sentence(0, "Japan beat Syria"),
        doc_sentence(0, "Japan and New York"),
        doc_sentence(0, "in Japan New York Japan"),
        // Another document: its one Japan keeps its type.
        doc_sentence(1, "Japan won"),
    ];
    // Document 0: Japan is LOC twice, ORG once, and O once (an O is no vote); New York is
    // LOC once and ORG once, a tie, so both keep their own type.
    let mut pred = vec![
        tags("S-LOC O S-LOC"),
        tags("S-ORG O B-LOC E-LOC"),
        tags("O S-LOC B-ORG E-ORG O"),
        tags("S-ORG O"),
    ];
    let changed = document_vote(&sents, &mut pred, Scheme::Bioes);
    assert_eq!(changed, 1);
    assert_eq!(pred[1], tags("S-LOC O B-LOC E-LOC"));
    assert_eq!(pred[0], tags("S-LOC O S-LOC"));
    assert_eq!(pred[2], tags("O S-LOC B-ORG E-ORG O"));
    assert_eq!(pred[3], tags("S-ORG O"));
}

#[test]
fn document_vote_rewrites_in_the_scheme_given_iob1_adjacent_chunks_included() {
    // In IOB1 a chunk that now directly follows a chunk of its new type needs a B- tag.
    let sents = [
        doc_sentence(0, "Munich won"),
        doc_sentence(0, "Munich lost"),
        doc_sentence(0, "Bayern Munich"),
    ];
    // Munich: ORG twice, LOC once (after the ORG chunk Bayern).
    let mut pred = vec![tags("I-ORG O"), tags("I-ORG O"), tags("I-ORG I-LOC")];
    assert_eq!(document_vote(&sents, &mut pred, Scheme::Iob1), 1);
    assert_eq!(pred[2], tags("I-ORG B-ORG"));
}
