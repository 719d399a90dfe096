//! The binary on malformed files and flags, one test per kind of bad input in
//! `docs/reliability.md`: each must end with a clear error (exit 1, or clap's 2 for a flag) that
//! names the file, never a panic (exit 101) or an abort (a signal), and never exit 0 with a
//! wrong result. Every file is made here.

mod common;

use common::{firth, refused, s, succeeded, tmp};
use std::path::{Path, PathBuf};

/// A sentence corpus from a toy grammar, reproducible.
fn corpus(dir: &Path, name: &str, lines: usize, seed: u64) -> PathBuf {
    let words = [
        "the", "cat", "dog", "sees", "likes", "a", "book", "old", "man", "door",
    ];
    let mut x = seed;
    let mut text = String::new();
    for _ in 0..lines {
        for _ in 0..6 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push_str(words[(x >> 33) as usize % words.len()]);
            text.push(' ');
        }
        text.push('\n');
    }
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn small_vectors(dir: &Path) -> PathBuf {
    let p = dir.join("v.txt");
    std::fs::write(&p, "3 2\nthe 1 0\ncat 0.5 0.5\ndog 0 1\n").unwrap();
    p
}

#[test]
fn numeric_flags_are_checked_where_they_are_parsed() {
    let d = tmp("flags");
    let v = small_vectors(&d);
    let text = corpus(&d, "t.txt", 5, 1);
    // Panicked before: index out of bounds with -k 0.
    refused(
        firth(&["vectors", "similar", s(&v), "the", "-k", "0"]),
        &["-k", "at least 1"],
    );
    refused(
        firth(&["vectors", "analogy", s(&v), "the", "cat", "dog", "-k", "0"]),
        &["at least 1"],
    );
    // Panicked before: division by zero.
    refused(
        firth(&["lm", "eval", s(&d), s(&text), "--bptt", "0"]),
        &["--bptt", "at least 1"],
    );
    for alpha in ["nan", "-1", "1e30"] {
        refused(
            firth(&[
                "vectors",
                "word2vec",
                "--input",
                s(&text),
                "--output",
                "o.bin",
                &format!("--alpha={alpha}"),
            ]),
            &["--alpha"],
        );
    }
    refused(
        firth(&[
            "vectors",
            "word2vec",
            "--input",
            s(&text),
            "--output",
            "o.bin",
            "--sample",
            "nan",
        ]),
        &["--sample", "not a finite number"],
    );
    refused(
        firth(&[
            "vectors",
            "glove",
            "--input",
            s(&text),
            "--output",
            "o.bin",
            "--eta",
            "nan",
        ]),
        &["--eta"],
    );
    refused(
        firth(&[
            "lm",
            "train",
            "--train",
            s(&text),
            "--out",
            "o",
            "--clip",
            "nan",
        ]),
        &["--clip", "not a finite number"],
    );
    refused(
        firth(&[
            "lm",
            "train",
            "--train",
            s(&text),
            "--out",
            "o",
            "--dropout",
            "1",
        ]),
        &["--dropout", "[0, 1)"],
    );
    refused(
        firth(&[
            "tag",
            "train",
            "--train",
            s(&text),
            "--out",
            "o",
            "--lr",
            "nan",
        ]),
        &["--lr"],
    );
    refused(
        firth(&[
            "classify",
            "train",
            "--train",
            s(&text),
            "--out",
            "o",
            "--lr",
            "inf",
        ]),
        &["--lr"],
    );
    refused(
        firth(&["ngram", "generate", s(&text), "--temperature=-1"]),
        &["--temperature", "> 0"],
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn headers_claiming_huge_sizes_are_refused_before_allocating() {
    let d = tmp("huge");
    let arpa = d.join("huge.arpa");
    std::fs::write(
        &arpa,
        "\\data\\\nngram 1=100000000000\nngram 2=100000000000\n\n\\1-grams:\n-1 <s>\n",
    )
    .unwrap();
    let text = corpus(&d, "t.txt", 3, 2);
    refused(
        firth(&["ngram", "ppl", s(&arpa), s(&text)]),
        &["huge.arpa:", "more than a file of"],
    );
    let bin = d.join("huge.bin");
    let mut bytes = b"100000000000 300\n".to_vec();
    bytes.extend_from_slice(b"the ");
    bytes.extend_from_slice(&[0u8; 1200]);
    std::fs::write(&bin, &bytes).unwrap();
    refused(
        firth(&["vectors", "similar", s(&bin), "the"]),
        &["huge.bin", "declares 100000000000 words", "truncated"],
    );
    let conll = d.join("train.conll");
    std::fs::write(&conll, "EU B-ORG\nrejects O\n\nPeter B-PER\n").unwrap();
    refused(
        firth(&[
            "tag",
            "train",
            "--train",
            s(&conll),
            "--out",
            s(&d.join("o")),
            "--epochs",
            "1",
            "--embeddings",
            s(&bin),
            "--quiet",
        ]),
        &["huge.bin"],
    );
    let _ = std::fs::remove_dir_all(d);
}

/// Builds a small binary n-gram model and returns it with its text.
fn ngram_model(d: &Path) -> (PathBuf, PathBuf) {
    let text = corpus(d, "ng.txt", 200, 3);
    let bin = d.join("m.bin");
    succeeded(firth(&[
        "ngram",
        "build",
        "--order",
        "3",
        "--discount-fallback",
        "--binary",
        s(&bin),
        s(&text),
    ]));
    (bin, text)
}

#[test]
fn damaged_ngram_models_are_refused() {
    let d = tmp("ngdamage");
    let (bin, text) = ngram_model(&d);
    let good = std::fs::read(&bin).unwrap();
    let (out, _) = succeeded(firth(&["ngram", "ppl", s(&bin), s(&text)]));
    assert!(out.contains("Perplexity"), "{out}");
    // One flipped bit in the middle of the tables.
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x04;
    std::fs::write(&bin, &bad).unwrap();
    refused(
        firth(&["ngram", "ppl", s(&bin), s(&text)]),
        &["m.bin", "damaged (checksum mismatch", "rebuild it"],
    );
    refused(
        firth(&["ngram", "query", s(&bin), s(&text)]),
        &["m.bin", "damaged"],
    );
    // Tables overwritten with zeros.
    let mut bad = good.clone();
    for b in &mut bad[200..600] {
        *b = 0;
    }
    std::fs::write(&bin, &bad).unwrap();
    refused(
        firth(&["ngram", "ppl", s(&bin), s(&text)]),
        &["m.bin", "damaged"],
    );
    // Cut at 100 bytes: said "bad order 3" before.
    std::fs::write(&bin, &good[..100]).unwrap();
    let e = refused(
        firth(&["ngram", "ppl", s(&bin), s(&text)]),
        &["m.bin", "damaged", "truncated"],
    );
    assert!(!e.contains("bad order"), "{e}");
    std::fs::write(&bin, &good[..good.len() - 1]).unwrap();
    refused(
        firth(&["ngram", "ppl", s(&bin), s(&text)]),
        &["m.bin", "damaged"],
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn impossible_arpa_probabilities_are_refused() {
    let d = tmp("arpa");
    let arpa = d.join("p.arpa");
    std::fs::write(
        &arpa,
        "\\data\\\nngram 1=3\n\n\\1-grams:\n-1 <s>\n0.5 </s>\n-0.5 a\n\n\\end\\\n",
    )
    .unwrap();
    let text = corpus(&d, "t.txt", 3, 4);
    refused(
        firth(&["ngram", "ppl", s(&arpa), s(&text)]),
        &["p.arpa:6:", "above 0"],
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn empty_text_to_score_is_an_error_for_query_and_ppl() {
    let d = tmp("ngempty");
    let (bin, _) = ngram_model(&d);
    let empty = d.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    refused(
        firth(&["ngram", "query", s(&bin), s(&empty)]),
        &["empty.txt", "no sentences"],
    );
    refused(
        firth(&["ngram", "ppl", s(&bin), s(&empty)]),
        &["empty.txt", "no sentences"],
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn impossible_values_in_vector_files_are_refused() {
    let d = tmp("vecvalues");
    let cases: [(&str, &[u8], &str); 6] = [
        ("nan.txt", b"2 2\nthe nan 1\ncat 1 0\n", "nan.txt:2:"),
        ("inf.txt", b"the 1 inf\ncat 1 0\n", "inf.txt:1:"),
        ("dup.txt", b"the 1 0\ncat 1 0\nthe 0 1\n", "appears twice"),
        // A GloVe file cut inside its last number still parses as numbers: the missing
        // newline gives it away.
        ("cut.txt", b"the 1 0.25\ncat 0.5 0.12", "cut.txt:2:"),
        // More dimensions declared than the rows have: said "word 5 is empty" before.
        (
            "dims.txt",
            b"2 10\nthe 1 2 3 4 5\ncat 1 2 3 4 5\n",
            "declares 10 dimensions but this row has 5",
        ),
        ("dupbin.bin", &[], "appears twice"),
    ];
    for (name, bytes, needle) in cases {
        let p = d.join(name);
        if name == "dupbin.bin" {
            let mut b = b"2 1\n".to_vec();
            for w in ["the", "the"] {
                b.extend_from_slice(w.as_bytes());
                b.push(b' ');
                b.extend_from_slice(&1f32.to_le_bytes());
                b.push(b'\n');
            }
            std::fs::write(&p, b).unwrap();
        } else {
            std::fs::write(&p, bytes).unwrap();
        }
        refused(
            firth(&["vectors", "similar", s(&p), "the"]),
            &[name, needle],
        );
    }
    // NaN in a binary file.
    let p = d.join("nan.bin");
    let mut b = b"2 1\n".to_vec();
    for (w, x) in [("the", 1f32), ("cat", f32::NAN)] {
        b.extend_from_slice(w.as_bytes());
        b.push(b' ');
        b.extend_from_slice(&x.to_le_bytes());
        b.push(b'\n');
    }
    std::fs::write(&p, b).unwrap();
    refused(
        firth(&["vectors", "analogy", s(&p), "the", "cat", "the"]),
        &["nan.bin", "non-finite"],
    );
    // NaN pretrained vectors: said "loss became NaN ... lower --lr" before.
    let conll = d.join("train.conll");
    std::fs::write(&conll, "EU B-ORG\nrejects O\n\nPeter B-PER\n").unwrap();
    refused(
        firth(&[
            "tag",
            "train",
            "--train",
            s(&conll),
            "--out",
            s(&d.join("o")),
            "--epochs",
            "1",
            "--embeddings",
            s(&d.join("nan.txt")),
            "--quiet",
        ]),
        &["nan.txt:2:", "not a finite number"],
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn malformed_evaluation_lines_are_counted_and_empty_files_refused() {
    let d = tmp("vecaval");
    let v = d.join("v.txt");
    std::fs::write(
        &v,
        "man 1 0\nwoman 1 0.2\nking 0.2 1\nqueen -1 -0.3\napple 5 5\n",
    )
    .unwrap();
    let q = d.join("q.txt");
    std::fs::write(
        &q,
        ": royal\nman king woman queen\nthree words only\nman king woman apple\nfive words are here now\n",
    )
    .unwrap();
    let (out, err) = succeeded(firth(&["vectors", "eval", s(&v), "--analogy", s(&q)]));
    assert!(out.contains("analogy accuracy"), "{out}");
    assert!(
        err.contains("q.txt: skipped 2 malformed lines") && err.contains("line 3, 5"),
        "{err}"
    );
    let p = d.join("p.tsv");
    std::fs::write(
        &p,
        "man\tking\t9\nman\twoman\t1\nking\tqueen\tnan\nking\tqueen\t5\nbroken line\n",
    )
    .unwrap();
    let (_, err) = succeeded(firth(&["vectors", "eval", s(&v), "--similarity", s(&p)]));
    assert!(
        err.contains("p.tsv: skipped 2 malformed lines") && err.contains("line 3, 5"),
        "{err}"
    );
    let empty = d.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    refused(
        firth(&["vectors", "eval", s(&v), "--analogy", s(&empty)]),
        &["empty.txt", "no analogy questions"],
    );
    refused(
        firth(&["vectors", "eval", s(&v), "--similarity", s(&empty)]),
        &["empty.txt", "no word pairs"],
    );
    let nan_only = d.join("nan.tsv");
    std::fs::write(&nan_only, "man\tking\tnan\n").unwrap();
    refused(
        firth(&["vectors", "eval", s(&v), "--similarity", s(&nan_only)]),
        &["nan.tsv", "no word pairs"],
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn invalid_utf8_is_refused_by_classify_like_every_reader() {
    let d = tmp("utf8");
    let tsv = d.join("latin1.tsv");
    std::fs::write(&tsv, b"positive\tgood film\nnegative\tmauvais caf\xe9\n").unwrap();
    refused(
        firth(&[
            "classify",
            "train",
            "--train",
            s(&tsv),
            "--out",
            s(&d.join("o")),
            "--quiet",
        ]),
        &["latin1.tsv:2:", "invalid UTF-8", "iconv"],
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_stray_tag_does_not_turn_a_span_tagger_into_a_plain_one() {
    let d = tmp("xper");
    let conll = d.join("train.conll");
    std::fs::write(
        &conll,
        "EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn X-PER\n",
    )
    .unwrap();
    refused(
        firth(&[
            "tag",
            "train",
            "--train",
            s(&conll),
            "--out",
            s(&d.join("o")),
            "--epochs",
            "1",
            "--quiet",
        ]),
        &["train.conll", "line 5", "\"X-PER\" is not a span tag"],
    );
    let _ = std::fs::remove_dir_all(d);
}

/// `firth lm train` of a tiny LSTM on `train`/`valid` into `out` for `epochs`, one thread.
fn train_tiny_lm(train: &Path, valid: &Path, out: &Path, epochs: &str, extra: &[&str]) {
    let base = [
        "lm",
        "train",
        "--train",
        s(train),
        "--valid",
        s(valid),
        "--out",
        s(out),
        "--arch",
        "lstm",
        "--hidden",
        "8",
        "--layers",
        "1",
        "--bptt",
        "5",
        "--batch",
        "2",
        "--epochs",
        epochs,
        "--threads",
        "1",
        "--quiet",
    ];
    succeeded(firth(&[&base[..], extra].concat()));
}

/// Trains a tiny LM for one epoch and returns its directory and text.
fn tiny_lm(d: &Path) -> (PathBuf, PathBuf) {
    let train = corpus(d, "train.txt", 60, 5);
    let valid = corpus(d, "valid.txt", 10, 6);
    let out = d.join("lm");
    train_tiny_lm(&train, &valid, &out, "1", &[]);
    (out, valid)
}

#[test]
fn damaged_lm_models_and_checkpoints_are_refused() {
    let d = tmp("lmdamage");
    let (out, valid) = tiny_lm(&d);
    succeeded(firth(&["lm", "eval", s(&out), s(&valid)]));
    for name in ["model.safetensors", "checkpoint.safetensors"] {
        let file = out.join(name);
        let good = std::fs::read(&file).unwrap();
        // Random bytes in a tensor (the data follows the header).
        let mut bad = good.clone();
        let n = bad.len();
        for (i, b) in bad[n - 40..n - 24].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        std::fs::write(&file, &bad).unwrap();
        refused(
            firth(&["lm", "eval", s(&file), s(&valid)]),
            &[name, "is damaged (checksum mismatch"],
        );
        // A NaN weight.
        let mut bad = good.clone();
        bad[n - 8..n - 4].copy_from_slice(&f32::NAN.to_le_bytes());
        std::fs::write(&file, &bad).unwrap();
        refused(
            firth(&["lm", "generate", s(&file), "--max-tokens", "5"]),
            &[name, "is damaged"],
        );
        // One flipped bit, and a truncated file.
        let mut bad = good.clone();
        bad[n / 2] ^= 0x20;
        std::fs::write(&file, &bad).unwrap();
        refused(
            firth(&["lm", "eval", s(&file), s(&valid)]),
            &[name, "is damaged"],
        );
        std::fs::write(&file, &good[..n - 3]).unwrap();
        refused(
            firth(&["lm", "eval", s(&file), s(&valid)]),
            &[name, "is damaged"],
        );
        std::fs::write(&file, &good).unwrap();
    }
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn diverging_training_stops_with_a_message() {
    let d = tmp("diverge");
    let train = corpus(&d, "train.txt", 60, 7);
    let valid = corpus(&d, "valid.txt", 10, 8);
    let out = d.join("lm");
    let e = refused(
        firth(&[
            "lm",
            "train",
            "--train",
            s(&train),
            "--valid",
            s(&valid),
            "--out",
            s(&out),
            "--arch",
            "rnn",
            "--hidden",
            "8",
            "--layers",
            "1",
            "--bptt",
            "5",
            "--batch",
            "2",
            "--epochs",
            "2",
            "--threads",
            "1",
            "--optim",
            "sgd",
            "--lr",
            "1e30",
            "--clip",
            "0",
            "--quiet",
        ]),
        &["smaller --lr"],
    );
    assert!(e.contains("checkpoint.safetensors"), "{e}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn resume_removes_temporaries_of_a_killed_write() {
    let d = tmp("stale");
    let (out, valid) = tiny_lm(&d);
    let train = d.join("train.txt");
    let stale = out.join(".checkpoint.safetensors.4294967295.tmp");
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    train_tiny_lm(&train, &valid, &out, "2", &["--resume"]);
    assert!(!stale.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(out.join("summary.json").exists());
    let _ = std::fs::remove_dir_all(d);
}
