//! Column-file reader and tag-scheme conversion.

use firth_text::conll::{chunks, convert, parse_columns, read_columns, Columns, Scheme};
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
