//! End-to-end checks of `firth bleu` and `firth bpe` (learn, apply, join): the sacrebleu and
//! subword-nmt figures of the library fixtures through the binary, stdin/stdout, and bad input
//! (missing files, misaligned files, invalid UTF-8, malformed codes) ending in a clear error.

mod common;

use common::{firth, firth_stdin, ok, refused, s, tmp};
use std::path::Path;

fn bleu_fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../firth-eval/tests/fixtures/bleu")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

fn bpe_fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../firth-text/tests/fixtures/bpe")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn bleu_prints_sacrebleus_figures() {
    let out = ok(firth(&[
        "bleu",
        &bleu_fixture("hyp.txt"),
        &bleu_fixture("ref.txt"),
    ]));
    // sacrebleu 2.6.0: `sacrebleu ref.txt -i hyp.txt -m bleu chrf -f text -w 2`.
    assert_eq!(
        out,
        "BLEU = 61.84 77.5/64.8/57.0/51.1 (BP = 1.000 ratio = 1.030 hyp_len = 138 ref_len = 134)\n\
         chrF2 = 67.20\n"
    );
    let out = ok(firth(&[
        "bleu",
        &bleu_fixture("hyp.txt"),
        &bleu_fixture("ref.txt"),
        "--tokenize",
        "none",
        "--lowercase",
    ]));
    // `sacrebleu ref.txt -i hyp.txt -m bleu -f text -w 2 -tok none -lc`
    assert!(
        out.starts_with(
            "BLEU = 40.33 60.7/45.1/36.8/26.2 (BP = 1.000 ratio = 1.081 hyp_len = 107 ref_len = 99)"
        ),
        "{out}"
    );
}

#[test]
fn bleu_json_and_several_references() {
    let out = ok(firth(&[
        "bleu",
        &bleu_fixture("hyp.txt"),
        &bleu_fixture("ref.txt"),
        &bleu_fixture("ref2.txt"),
        "--json",
    ]));
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    for k in [
        "bleu",
        "chrf",
        "precisions",
        "brevity_penalty",
        "ratio",
        "hyp_len",
        "ref_len",
    ] {
        assert!(j.get(k).is_some(), "no {k} in {out}");
    }
    // sacrebleu 2.6.0 with both reference files.
    assert!(
        (j["bleu"].as_f64().unwrap() - 69.85466979953837).abs() < 1e-9,
        "{out}"
    );
    assert!(
        (j["chrf"].as_f64().unwrap() - 79.82969629373112).abs() < 1e-9,
        "{out}"
    );
    assert_eq!(
        j["signature"],
        "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp"
    );
    // The hypotheses from stdin.
    let hyp = std::fs::read(bleu_fixture("zero4.hyp")).unwrap();
    let out = ok(firth_stdin(
        &["bleu", "-", &bleu_fixture("zero4.ref"), "--json"],
        &hyp,
    ));
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!((j["bleu"].as_f64().unwrap() - 25.000000000000007).abs() < 1e-9);
    let out = ok(firth(&[
        "bleu",
        &bleu_fixture("zero4.hyp"),
        &bleu_fixture("zero4.ref"),
        "--no-smoothing",
        "--json",
    ]));
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["bleu"].as_f64().unwrap(), 0.0);
}

#[test]
fn bleu_bad_input() {
    let d = tmp("bleu-bad");
    let hyp = bleu_fixture("hyp.txt");
    refused(
        firth(&["bleu", &hyp, s(&d.join("nope.txt"))]),
        &["cannot read", "nope.txt"],
    );
    let short = d.join("short.txt");
    std::fs::write(&short, "one line\n").unwrap();
    refused(
        firth(&["bleu", &hyp, s(&short)]),
        &["hyp.txt has 18 lines", "short.txt has 1"],
    );
    let bad = d.join("bad.txt");
    std::fs::write(&bad, b"fine\nalso fine\nbroken \xc3\x28 here\n").unwrap();
    refused(
        firth(&["bleu", s(&bad), s(&bad)]),
        &["bad.txt:3: invalid UTF-8"],
    );
    refused(
        firth(&["bleu", &hyp, &hyp, "--tokenize", "intl"]),
        &["invalid value 'intl'"],
    );
    refused(firth(&["bleu", &hyp]), &["REFS"]);
}

#[test]
fn bpe_learn_apply_join_round_trip() {
    let d = tmp("bpe");
    let shakespeare =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/tinyshakespeare/input.txt");
    let codes = d.join("codes");
    let o = firth(&[
        "bpe",
        "learn",
        "--input",
        s(&shakespeare),
        "--merges",
        "2000",
        "--output",
        s(&codes),
    ]);
    ok(o);
    // The codes subword-nmt learns from the same text (crates/firth-text/tests/fixtures/bpe).
    assert_eq!(
        std::fs::read_to_string(&codes).unwrap(),
        std::fs::read_to_string(bpe_fixture("shakespeare.2000.codes")).unwrap()
    );
    let applied = d.join("sample.bpe");
    ok(firth(&[
        "bpe",
        "apply",
        "--codes",
        s(&codes),
        &bpe_fixture("sample.txt"),
        "--output",
        s(&applied),
    ]));
    assert_eq!(
        std::fs::read_to_string(&applied).unwrap(),
        std::fs::read_to_string(bpe_fixture("sample.2000.bpe")).unwrap()
    );
    let joined = ok(firth(&["bpe", "join", s(&applied)]));
    assert_eq!(
        joined,
        std::fs::read_to_string(bpe_fixture("sample.txt")).unwrap()
    );
    // stdin -> stdout, odd whitespace and no final newline kept.
    let text = "das  haus\tist alt\r\nkein ende";
    let a = ok(firth_stdin(
        &["bpe", "apply", "--codes", s(&codes)],
        text.as_bytes(),
    ));
    assert!(a.contains("@@ "), "{a}");
    let j = ok(firth_stdin(&["bpe", "join"], a.as_bytes()));
    assert_eq!(j, text);
}

#[test]
fn bpe_bad_input() {
    let d = tmp("bpe-bad");
    let codes = d.join("codes");
    refused(
        firth(&[
            "bpe",
            "learn",
            "--input",
            s(&d.join("missing.txt")),
            "--merges",
            "10",
            "--output",
            s(&codes),
        ]),
        &["missing.txt"],
    );
    assert!(!codes.exists());
    let bad = d.join("bad.txt");
    std::fs::write(&bad, b"ok line\nsecond \xff line\n").unwrap();
    refused(
        firth(&[
            "bpe",
            "learn",
            "--input",
            s(&bad),
            "--merges",
            "10",
            "--output",
            s(&codes),
        ]),
        &["bad.txt:2: invalid UTF-8"],
    );
    std::fs::write(&codes, "#version: 0.2\na b\nthree symbols here\n").unwrap();
    refused(
        firth(&[
            "bpe",
            "apply",
            "--codes",
            s(&codes),
            &bpe_fixture("sample.txt"),
        ]),
        &["codes:3:", "three symbols here"],
    );
    std::fs::write(&codes, "#version: 0.2\na b\n").unwrap();
    let out = d.join("out.txt");
    refused(
        firth(&[
            "bpe",
            "apply",
            "--codes",
            s(&codes),
            s(&bad),
            "--output",
            s(&out),
        ]),
        &["bad.txt:2: invalid UTF-8"],
    );
    assert!(!out.exists(), "no partial output file");
    refused(
        firth(&["bpe", "apply", "--codes", s(&d.join("nocodes")), s(&bad)]),
        &["cannot read", "nocodes"],
    );
    refused(firth(&["bpe", "join", s(&d.join("nofile"))]), &["nofile"]);
    refused(
        firth(&["bpe", "learn", "--input", s(&bad), "--output", s(&codes)]),
        &["--merges"],
    );
}

#[test]
fn tokenize_splits_like_the_treebank_and_names_bad_lines() {
    let out = ok(firth_stdin(
        &["tokenize", "--lowercase", "--zero-digits"],
        "\u{201C}I don\u{2019}t know,\u{201D} said Mr. Pump in 1820.\n\nIt's _his_ inn--yes!\n"
            .as_bytes(),
    ));
    assert_eq!(
        out,
        "`` i do n't know , '' said mr. pump in 0000 .\n\nit 's his inn -- yes !\n"
    );
    let d = tmp("tokenize");
    let bad = d.join("bad.txt");
    std::fs::write(&bad, b"fine\nalso fine\n\xff\xfe\n").unwrap();
    let out = d.join("out.txt");
    refused(
        firth(&["tokenize", s(&bad), "--output", s(&out)]),
        &["bad.txt:3: invalid UTF-8"],
    );
    assert!(!out.exists(), "a failed run leaves no output file");
}
